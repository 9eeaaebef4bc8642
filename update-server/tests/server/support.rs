//! The test harness: a server on a fresh data directory with a manual clock,
//! driven in-process (`tower::ServiceExt::oneshot`, no socket), on either
//! backend pair:
//!
//! * `Backend::Embedded`: SQLite file + local directory (the defaults);
//! * `Backend::PostgresS3`: a real PostgreSQL server (a fresh schema per
//!   test) and a real S3-compatible server (a fresh bucket per test), found
//!   through `NIGHTLATCH_TEST_PG_URL` and `NIGHTLATCH_TEST_S3_ENDPOINT`
//!   (defaults below). If they do not answer, the test FAILS and says to
//!   run `bash .ci/setup`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use bytes::Bytes;
use ed25519_dalek::{Signer, SigningKey};
use http_body_util::BodyExt;
use nightlatch_repo::FixedClock;
use nightlatch_repo::keysource::{KeySpec, open_all};
use nightlatch_repo::metadata::{Root, Signed, Targets};
use nightlatch_repo::repo::Expiries;
use nightlatch_repo::repo::remote::{RemoteReport, Transport, publish_remote};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower::ServiceExt;
use update_server::AppState;
use update_server::checkin::Submission;
use update_server::clock::{Clock, ManualClock};
use update_server::config::{BlobConfig, Config, S3Config};
use update_server::wire::{
    BootState, CheckinRequest, CheckinResponse, Firmware, Outcome, Report, UpdateResult, b64,
    checkin_message, signature_header, time_leaf, verify_signed_time,
};

/// Default PostgreSQL URL (the server `.ci/setup` starts).
pub const DEFAULT_PG_URL: &str = "postgres://nightlatch@127.0.0.1:55432/nightlatch";
/// Default S3 endpoint (the s3s-fs server `.ci/setup` starts).
pub const DEFAULT_S3_ENDPOINT: &str = "http://127.0.0.1:59000";
/// Credentials of that S3 server.
pub const S3_KEY: (&str, &str) = ("nightlatch", "nightlatch-secret");
/// Start of the manual clock: 2030-01-01T00:00:00Z.
pub const T0: i64 = 1_893_456_000_000;

/// Which backends a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite + local directory.
    Embedded,
    /// PostgreSQL + S3.
    PostgresS3,
}

fn setup_hint(what: &str, target: &str, e: &dyn std::fmt::Display) -> String {
    format!(
        "{what} is not reachable at {target}: {e}\n\
         The PostgreSQL + S3 tests need both servers running: run `bash .ci/setup` \
         (it installs and starts them), or point NIGHTLATCH_TEST_PG_URL / NIGHTLATCH_TEST_S3_ENDPOINT at yours."
    )
}

/// A fresh PostgreSQL schema; the URL that uses it.
pub async fn fresh_pg_schema() -> String {
    let url = std::env::var("NIGHTLATCH_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned());
    sqlx::any::install_default_drivers();
    let mut conn = match <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await {
        Ok(c) => c,
        Err(e) => panic!("{}", setup_hint("PostgreSQL", &url, &e)),
    };
    let schema = format!("t_{}", hex::encode(update_server::ids::random_bytes::<8>()));
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .expect("create schema");
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// A fresh S3 bucket.
pub async fn fresh_bucket() -> S3Config {
    let endpoint = std::env::var("NIGHTLATCH_TEST_S3_ENDPOINT")
        .unwrap_or_else(|_| DEFAULT_S3_ENDPOINT.to_owned());
    let config = S3Config {
        endpoint: Some(endpoint.clone()),
        bucket: format!(
            "nl-test-{}",
            hex::encode(update_server::ids::random_bytes::<6>())
        ),
        region: "us-east-1".into(),
        prefix: "nightlatch/".into(),
        access_key_id: S3_KEY.0.into(),
        secret_access_key: S3_KEY.1.into(),
    };
    let creds = aws_sdk_s3::config::Credentials::new(S3_KEY.0, S3_KEY.1, None, None, "test");
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(creds)
            .endpoint_url(&endpoint)
            .force_path_style(true)
            .build(),
    );
    if let Err(e) = client.create_bucket().bucket(&config.bucket).send().await {
        panic!(
            "{}",
            setup_hint(
                "the S3 server",
                &endpoint,
                &aws_sdk_s3::error::DisplayErrorContext(e)
            )
        );
    }
    config
}

/// A running (in-process) server.
pub struct TestApp {
    /// Its data directory.
    pub dir: tempfile::TempDir,
    /// Its state.
    pub state: AppState,
    /// Its router.
    pub router: Router,
    /// Its clock.
    pub clock: Arc<ManualClock>,
    /// The bootstrap security-admin token.
    pub admin: String,
}

impl TestApp {
    /// SQLite + local directory.
    pub async fn new() -> Self {
        Self::with(Backend::Embedded).await
    }

    /// On `backend`.
    pub async fn with(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::for_data_dir(dir.path());
        if backend == Backend::PostgresS3 {
            config.database_url = fresh_pg_schema().await;
            config.blob = BlobConfig::S3(fresh_bucket().await);
        }
        Self::start(dir, config).await
    }

    /// With a custom configuration (on a fresh data directory).
    pub async fn start(dir: tempfile::TempDir, config: Config) -> Self {
        let clock = Arc::new(ManualClock::new(T0));
        let state = AppState::build_with_clock(
            config,
            Arc::clone(&clock) as Arc<dyn Clock>,
            Some(Arc::clone(&clock)),
        )
        .await
        .expect("server starts");
        let admin = std::fs::read_to_string(dir.path().join("admin-token"))
            .expect("admin token")
            .trim()
            .to_owned();
        Self {
            router: update_server::router(state.clone()),
            dir,
            state,
            clock,
            admin,
        }
    }

    /// Now on the server's (manual) clock, for what the test signs as a
    /// release engineer or keyholder would: their machine agrees with the
    /// server on the date.
    pub fn repo_clock(&self) -> FixedClock {
        FixedClock::at_unix(u64::try_from(self.clock.now_secs()).expect("after 1970"))
    }

    /// A second replica on the same database and blob store (PostgreSQL + S3).
    pub async fn replica(&self) -> AppState {
        let mut config = self.state.config.clone();
        let dir = tempfile::tempdir().expect("tempdir").keep();
        // Same keys (the dev keys of the first replica).
        copy_dir(&self.dir.path().join("keys"), &dir.join("keys"));
        config.data_dir = dir;
        AppState::build_with_clock(
            config,
            Arc::clone(&self.clock) as Arc<dyn Clock>,
            Some(Arc::clone(&self.clock)),
        )
        .await
        .expect("replica starts")
    }

    /// One request.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> (StatusCode, HeaderMap, Bytes) {
        call(&self.router, method, path, token, headers, body).await
    }

    /// A JSON request; the status and JSON answer (Null if not JSON).
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let headers: &[(&str, &str)] = if body.is_empty() {
            &[]
        } else {
            &[("content-type", "application/json")]
        };
        let (status, _, bytes) = self.call(method, path, token, headers, body).await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A new token of `role`.
    pub async fn token(&self, role: &str) -> String {
        let (s, v) = self
            .json(
                Method::POST,
                "/admin/v1/tokens",
                Some(&self.admin),
                Some(json!({"name": format!("test-{role}"), "role": role})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["token"].as_str().expect("token").to_owned()
    }

    /// The dev image targets key (offline in production).
    pub fn targets_key(&self) -> PathBuf {
        self.dir.path().join("keys/image/keys/targets.key")
    }

    /// Publish files through the admin API, as `nightlatch-sign publish --server` does.
    pub async fn publish(&self, files: &[PathBuf]) -> RemoteReport {
        let token = self.token("release").await;
        self.publish_with(files, &token, &self.targets_key())
            .await
            .expect("publish")
    }

    /// The image repository's first root, from the key ceremony.
    pub fn image_root(&self) -> PathBuf {
        self.dir.path().join("keys/image/1.root.json")
    }

    /// Publish with a given token and release key; the error text on refusal.
    pub async fn publish_with(
        &self,
        files: &[PathBuf],
        token: &str,
        key: &Path,
    ) -> Result<RemoteReport, String> {
        self.publish_trusting(files, token, key, &self.image_root())
            .await
    }

    /// Publish trusting `root` (`--trusted-root`); the error text on refusal.
    pub async fn publish_trusting(
        &self,
        files: &[PathBuf],
        token: &str,
        key: &Path,
        root: &Path,
    ) -> Result<RemoteReport, String> {
        let t = InProcess {
            router: self.router.clone(),
            token: token.to_owned(),
            handle: tokio::runtime::Handle::current(),
        };
        let files = files.to_vec();
        let key = key.to_owned();
        let root = root.to_owned();
        let clock = self.repo_clock();
        tokio::task::spawn_blocking(move || {
            let keys = open_all(&[KeySpec::File(key)]).map_err(|e| e.to_string())?;
            publish_remote(
                &t,
                "in-process",
                &keys,
                &files,
                &Expiries::default(),
                Some(&root),
                &clock,
            )
            .map_err(|e| format!("{e}: {e:?}"))
        })
        .await
        .expect("join")
    }

    /// Copy the served repository's current metadata into `dir`, as a
    /// release engineer's tool sees it.
    pub async fn mirror(&self, dir: &Path) {
        let t = InProcess {
            router: self.router.clone(),
            token: String::new(),
            handle: tokio::runtime::Handle::current(),
        };
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || {
            nightlatch_repo::repo::remote::mirror(&t, "in-process", &dir).expect("mirror")
        })
        .await
        .expect("join");
    }

    /// PUT raw bytes with `token`; status and body text.
    pub async fn put(&self, path: &str, token: &str, body: Vec<u8>) -> (StatusCode, String) {
        let (s, _, b) = self.call(Method::PUT, path, Some(token), &[], body).await;
        (s, String::from_utf8_lossy(&b).into_owned())
    }

    /// Write a firmware envelope for `model` `version` and return its path.
    pub fn envelope(&self, model: &str, version: &str, counter: u32, payload: &[u8]) -> PathBuf {
        let release = nightlatch_repo::envelope::Release {
            model: nightlatch_repo::params::parse_model(model).expect("model"),
            version: nightlatch_repo::params::parse_version(version).expect("version"),
            security_counter: counter,
        };
        let key = SigningKey::from_bytes(&[42; 32]);
        let bytes =
            nightlatch_repo::envelope::sign_payload(&release, payload, &[key]).expect("sign");
        let path = self.dir.path().join(format!("{model}-{version}.nlfw"));
        std::fs::write(&path, bytes).expect("write envelope");
        path
    }

    /// Register locks (id, model, version-less) in one import; returns them.
    pub async fn register(&self, ids: &[String], model: &str, groups: &[&str]) -> Vec<Lock> {
        let token = &self.admin;
        let locks: Vec<Lock> = ids.iter().map(|id| Lock::new(id, model)).collect();
        let devices: Vec<Value> = locks
            .iter()
            .map(|l| json!({"id": l.id, "hardware_model": model, "public_key": hex::encode(l.key.verifying_key().as_bytes()), "groups": groups}))
            .collect();
        for chunk in devices.chunks(5000) {
            let (s, v) = self
                .json(
                    Method::POST,
                    "/admin/v1/devices/import",
                    Some(token),
                    Some(json!({"devices": chunk})),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
        }
        locks
    }

    /// Create (and start) a rollout; its id.
    pub async fn rollout(&self, body: Value) -> String {
        let token = self.token("operator").await;
        let (s, v) = self
            .json(Method::POST, "/admin/v1/rollouts", Some(&token), Some(body))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().expect("id").to_owned()
    }

    /// Check in every lock in-process through the real pipeline (no HTTP),
    /// in batches of `batch`; the responses.
    pub async fn check_in_all(
        &self,
        locks: &mut [Lock],
        batch: usize,
    ) -> Vec<Result<CheckinResponse, (StatusCode, String)>> {
        let mut out = Vec::with_capacity(locks.len());
        let root = self.director_root();
        for chunk in locks.chunks_mut(batch) {
            let subs: Vec<Submission> = chunk.iter_mut().map(|l| l.submission()).collect();
            let results = self.state.pipeline.process(subs).await;
            for (lock, r) in chunk.iter_mut().zip(results) {
                out.push(match r {
                    Ok(resp) => {
                        lock.accept(&resp, &root);
                        Ok(resp)
                    }
                    Err(e) => Err((e.status(), e.code().to_owned())),
                });
            }
        }
        out
    }

    /// The director root (as locks are provisioned with it).
    pub fn director_root(&self) -> Signed<Root> {
        Signed::parse(self.state.director.root_bytes(), Path::new("director root"))
            .expect("director root")
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

/// One request to `router`.
pub async fn call(
    router: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> (StatusCode, HeaderMap, Bytes) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = router
        .clone()
        .oneshot(req.body(body.into()).expect("request"))
        .await
        .expect("infallible");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, headers, bytes)
}

struct InProcess {
    router: Router,
    token: String,
    handle: tokio::runtime::Handle,
}

impl Transport for InProcess {
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        let (s, _, b) = self.handle.block_on(call(
            &self.router,
            Method::GET,
            path,
            None,
            &[],
            Body::empty(),
        ));
        match s {
            StatusCode::OK => Ok(Some(b.to_vec())),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(format!("GET {path}: {s}")),
        }
    }

    fn put(&self, path: &str, body: &[u8]) -> Result<(), String> {
        let (s, _, b) = self.handle.block_on(call(
            &self.router,
            Method::PUT,
            path,
            Some(&self.token),
            &[],
            Body::from(body.to_vec()),
        ));
        if s.is_success() {
            Ok(())
        } else {
            Err(format!("PUT {path}: {s}: {}", String::from_utf8_lossy(&b)))
        }
    }
}

/// A simulated lock: its key, counter, what it runs, what it holds.
#[derive(Debug, Clone)]
pub struct Lock {
    /// Id.
    pub id: String,
    /// Device key.
    pub key: SigningKey,
    /// Model.
    pub model: String,
    /// Last counter used.
    pub counter: u64,
    /// Running version.
    pub version: String,
    /// Running security counter.
    pub security_counter: u32,
    /// Boot state.
    pub boot: BootState,
    /// Last update result to report.
    pub last_update: Option<UpdateResult>,
    /// Director targets version held.
    pub director_version: u64,
    /// Director targets held (signed JSON).
    pub director_targets: Option<Value>,
    /// Last nonce sent.
    pub nonce: Vec<u8>,
    /// A usage summary (`lock_app::scheduler::summary` text, e.g. from
    /// [`learned_usage`]) to send as `report.usage` with the next check-in,
    /// then cleared: like a real lock, which sends it at most once a day or
    /// when it changes, not with every check-in.
    pub usage: Option<String>,
}

impl Lock {
    /// A lock running 1.0.0, with a key derived from its id.
    pub fn new(id: &str, model: &str) -> Self {
        Self {
            id: id.to_owned(),
            key: SigningKey::from_bytes(&Sha256::digest(id.as_bytes()).into()),
            model: model.to_owned(),
            counter: 0,
            version: "1.0.0".into(),
            security_counter: 1,
            boot: BootState::Confirmed,
            last_update: None,
            director_version: 0,
            director_targets: None,
            nonce: Vec::new(),
            usage: None,
        }
    }

    /// The next check-in body (counter +1, fresh nonce).
    pub fn body(&mut self) -> Vec<u8> {
        self.counter += 1;
        self.nonce = update_server::ids::random_bytes::<16>().to_vec();
        let req = CheckinRequest {
            device_id: self.id.clone(),
            counter: self.counter,
            nonce: b64::encode(&self.nonce),
            director_targets_version: self.director_version,
            report: Report {
                hardware_model: self.model.clone(),
                firmware: Firmware {
                    version: self.version.clone(),
                    security_counter: self.security_counter,
                },
                boot_state: self.boot,
                last_update: self.last_update.clone(),
                battery_percent: Some(80),
                time_zone: Some("Europe/Berlin".into()),
                usage: self.usage.take(),
            },
        };
        serde_json::to_vec(&req).expect("json")
    }

    /// The signature header for `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        signature_header(&self.key.sign(&checkin_message(body)))
    }

    /// The next check-in as a pipeline submission.
    pub fn submission(&mut self) -> Submission {
        let body = self.body();
        Submission {
            path_id: self.id.clone(),
            signature: Some(self.sign(&body)),
            body: Bytes::from(body),
        }
    }

    /// Check a response as the lock would (director targets signed by the
    /// director root's targets key, version not lower, signed time bound to
    /// our nonce) and keep it.
    pub fn accept(&mut self, r: &CheckinResponse, root: &Signed<Root>) {
        assert!(
            r.director_targets_version >= self.director_version,
            "director rollback"
        );
        if let Some(raw) = &r.director_targets {
            let meta: Signed<Targets> =
                Signed::parse(raw.get().as_bytes(), Path::new("director targets"))
                    .expect("targets parse");
            let role = root.signed.role("targets").expect("targets role");
            meta.require(&root.signed.keys, role, "director targets", "targets")
                .expect("director targets signed by the director targets key");
            assert_eq!(meta.signed.header.version, r.director_targets_version);
            let sha = b64::encode(Sha256::digest(meta.canonical().expect("canonical")));
            assert_eq!(sha, r.director_targets_sha256);
            self.director_targets = Some(serde_json::from_str(raw.get()).expect("json"));
            self.director_version = r.director_targets_version;
        }
        assert_eq!(
            r.director_targets_version, self.director_version,
            "lock holds the current version"
        );
        let ts_key = root
            .signed
            .role("timestamp")
            .expect("timestamp role")
            .keyids[0]
            .clone();
        let nightlatch_repo::metadata::PublicKey::Ed25519(key) = root.signed.keys[&ts_key] else {
            panic!("the director timestamp key is not Ed25519");
        };
        let sha: [u8; 32] = b64::decode_array(&r.director_targets_sha256).expect("32 bytes");
        let leaf = time_leaf(
            &self.id,
            &self.nonce,
            self.counter,
            r.director_targets_version,
            &sha,
        );
        verify_signed_time(&r.time, &key, &leaf).expect("signed time bound to our nonce");
    }

    /// The image target the director assigns now, if any.
    pub fn assigned(&self) -> Option<String> {
        let t = self
            .director_targets
            .as_ref()?
            .get("signed")?
            .get("targets")?
            .as_object()?;
        t.iter()
            .find(|(_, v)| v["custom"]["director"]["role"] == "image")
            .map(|(k, _)| k.clone())
    }

    /// The patch target assigned with it, if any.
    pub fn assigned_patch(&self) -> Option<String> {
        let t = self
            .director_targets
            .as_ref()?
            .get("signed")?
            .get("targets")?
            .as_object()?;
        t.iter()
            .find(|(_, v)| v["custom"]["director"]["role"] == "patch")
            .map(|(k, _)| k.clone())
    }

    /// Install `version` and confirm it (what the lock reports next).
    pub fn install(&mut self, target: &str, version: &str) {
        self.version = version.to_owned();
        self.boot = BootState::Confirmed;
        self.last_update = Some(UpdateResult {
            target: target.to_owned(),
            outcome: Outcome::Confirmed,
            reason: None,
        });
    }

    /// Try `target` and roll back.
    pub fn roll_back(&mut self, target: &str, reason: &str) {
        self.boot = BootState::Reverted;
        self.last_update = Some(UpdateResult {
            target: target.to_owned(),
            outcome: Outcome::RolledBack,
            reason: Some(reason.to_owned()),
        });
    }
}

/// What a lock in `zone` (the time zone its locks report) has learned of
/// its door after three weeks, packed as it reports it: the door used
/// `uses(weekday, hour)` times in that local hour (weekday 0 = Monday) on
/// each of the 21 days before T0; quiet slots for installs of up to an
/// hour in an all-day window.
pub fn learned_usage(
    zone: &str,
    uses: impl Fn(usize, i64) -> usize,
) -> lock_app::scheduler::summary::UsageSummary {
    use lock_app::scheduler::tz::{DAY, rule_for_zone};
    use lock_app::scheduler::{UsageProfile, Window};
    let tz = rule_for_zone(zone).expect("a known time zone");
    let t0 = T0 / 1000;
    let mut p = UsageProfile::new();
    for day in (1..=21i64).rev() {
        // The local day `day` days before T0's, and its weekday (Monday
        // 1970-01-05 is day 4).
        let midnight = (t0.div_euclid(DAY) - day) * DAY;
        let weekday = (midnight.div_euclid(DAY) - 4).rem_euclid(7) as usize;
        for hour in 0..24 {
            for n in 0..uses(weekday, hour) {
                let local = midnight + hour * 3600 + 60 + 7 * n as i64;
                let guess = local - i64::from(tz.offset_at(local));
                p.observe(local - i64::from(tz.offset_at(guess)), &tz);
            }
        }
    }
    lock_app::scheduler::summary::UsageSummary::from_profile(
        &p,
        &tz,
        Window::ALL_DAY,
        60,
        t0 as u64,
    )
}

/// Ids `prefix-00000` … for `n` locks.
pub fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:05}")).collect()
}

/// A loopback port free at the moment.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestApp {
    /// `nightlatch-server --data-dir DIR recover-admin ARGS…`, the real
    /// binary on this app's data directory, as an operator runs it on the
    /// server's machine: its output (the caller checks the status).
    pub fn recover_admin(&self, args: &[&std::ffi::OsStr]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_nightlatch-server"))
            .arg("--data-dir")
            .arg(self.dir.path())
            .arg("recover-admin")
            .args(args)
            .env("NIGHTLATCH_LOG", "warn")
            .output()
            .expect("run nightlatch-server recover-admin")
    }
}
