//! Console benchmark (issue 14): server time of the operator console's
//! fleet page, device searches, a device page and a rollout page, with
//! 100,000 locks and 1,000,000 history rows, on SQLite and on PostgreSQL.
//! It prints figures; it does not gate CI. Aim: p50 ≤ 50 ms per page.
//!
//! ```sh
//! bash .ci/services start                              # PostgreSQL (for `postgres`)
//! cargo bench -p update-server --bench console         # both backends
//! cargo bench -p update-server --bench console -- sqlite
//! cargo bench -p update-server --bench console -- postgres --runs 100
//! ```
//!
//! Options: `--locks N` (100000), `--history N` (1000000 rows in
//! `device_events`), `--runs N` (50), `--warmup N` (5), `--keep` (keep the
//! data directory and the PostgreSQL schema, to inspect them). PostgreSQL is found
//! through `NIGHTLATCH_TEST_PG_URL` (default
//! `postgres://nightlatch@127.0.0.1:55432/nightlatch`); each run uses a
//! fresh schema, dropped at the end.
//!
//! Setup, per backend, on a fresh data directory with a manual clock (no
//! wall-clock dates in the data; "now" is 2030-01-01T00:00:00Z):
//!
//! * releases for the rollout's model (1.3.0, 1.4.0, 2.0.0 and a patch
//!   1.3.0 → 2.0.0), published through the admin API as
//!   `nightlatch-sign publish --server` does;
//! * the locks imported through `POST /admin/v1/devices/import` 400 days
//!   earlier, in chunks of 5,000: 10 models, 5 versions each (skewed to the
//!   newest), 200 sites, a region group each and a 5 % pilot group;
//! * a rollout of `nl-lock-v1/2.0.0.nlfw` with 3 waves (2 %, 20 %, 100 %),
//!   started 60 hours before now;
//! * real signed check-ins through the check-in pipeline
//!   (`state.pipeline.process`, batches of 256): every lock once (1 % of
//!   them 20 days ago, the rest over the last day), then the locks the
//!   rollout assigned report their results (confirmed, on trial, rolled
//!   back); 90 locks revoked through the API; after the bulk load below,
//!   a tenth of the locks check in once more (the last 18 minutes);
//! * the rest of the history bulk-inserted straight into `device_events`
//!   with multi-row INSERTs (the output says how many): update stories
//!   (assigned, installed, firmware change, confirmed, unassigned, some
//!   failures) at times spread over the 400 days.
//!
//! Then each page is requested through the real router
//! (`update_server::router`, `tower::ServiceExt::oneshot`) with a console
//! session cookie (signed in through `/console/login` like a browser), and
//! the admin API calls behind the pages with the admin token: warm-up
//! rounds, then `--runs` timed rounds, each requesting every page once
//! (interleaved); p50, p95 and max in ms.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use bytes::Bytes;
use ed25519_dalek::{Signer, SigningKey};
use http_body_util::BodyExt;
use nightlatch_repo::FixedClock;
use nightlatch_repo::keysource::{KeySpec, open_all};
use nightlatch_repo::repo::Expiries;
use nightlatch_repo::repo::remote::{Transport, publish_remote};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower::ServiceExt;
use update_server::AppState;
use update_server::checkin::Submission;
use update_server::clock::{Clock, ManualClock};
use update_server::config::Config;
use update_server::store::Backend;
use update_server::wire::{b64, checkin_message, signature_header};

/// "Now" for every measurement: 2030-01-01T00:00:00Z.
const T0: i64 = 1_893_456_000_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// When the locks were imported.
const T_IMPORT: i64 = T0 - 400 * DAY;
/// When the rollout started.
const T_ROLLOUT: i64 = T0 - 60 * HOUR;

const DEFAULT_PG_URL: &str = "postgres://nightlatch@127.0.0.1:55432/nightlatch";

const MODELS: [&str; 10] = [
    "nl-lock-v1",
    "nl-lock-v2",
    "nl-lock-v3",
    "nl-deadbolt-a",
    "nl-deadbolt-b",
    "nl-padlock-1",
    "nl-cylinder-s",
    "nl-cylinder-m",
    "nl-gate-1",
    "nl-cabinet-2",
];
/// Versions every model runs, and how many locks in 100 run each.
const VERSIONS: [(&str, u64); 5] = [
    ("1.0.0", 5),
    ("1.1.0", 10),
    ("1.2.0", 15),
    ("1.3.0", 30),
    ("1.4.0", 40),
];
const SITES: u64 = 200;
const TARGET_VERSION: &str = "2.0.0";
const BATCH: usize = 256;
const IMPORT_CHUNK: usize = 5_000;
/// Rows per multi-row INSERT of the bulk history (5 columns each).
const INSERT_ROWS: usize = 1_000;

#[derive(Debug, Clone)]
struct Params {
    backends: Vec<Backend>,
    locks: usize,
    history: usize,
    runs: usize,
    warmup: usize,
    /// Keep the data directory and the PostgreSQL schema (to inspect them).
    keep: bool,
}

fn parse_args() -> Result<Params> {
    let mut p = Params {
        backends: Vec::new(),
        locks: 100_000,
        history: 1_000_000,
        runs: 50,
        warmup: 5,
        keep: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut number = |what: &str| -> Result<usize> {
            args.next()
                .with_context(|| format!("{what} needs a number"))?
                .replace('_', "")
                .parse()
                .with_context(|| format!("{what} needs a number"))
        };
        match a.as_str() {
            "sqlite" => p.backends.push(Backend::Sqlite),
            "postgres" | "postgresql" => p.backends.push(Backend::Postgres),
            "--locks" => p.locks = number("--locks")?,
            "--history" => p.history = number("--history")?,
            "--runs" => p.runs = number("--runs")?,
            "--warmup" => p.warmup = number("--warmup")?,
            "--keep" => p.keep = true,
            // `cargo bench` passes `--bench`; libtest filters are ignored.
            s if s.starts_with("--") => {}
            other => bail!(
                "unknown argument {other:?} (sqlite, postgres, --locks N, --history N, --runs N, --warmup N, --keep)"
            ),
        }
    }
    ensure!(p.locks >= 1_000, "--locks must be at least 1000");
    ensure!(p.runs >= 1, "--runs must be at least 1");
    if p.backends.is_empty() {
        p.backends = vec![Backend::Sqlite, Backend::Postgres];
    }
    Ok(p)
}

fn main() -> Result<()> {
    let p = parse_args()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut all = Vec::new();
        for backend in &p.backends {
            all.push((*backend, bench(*backend, &p).await?));
        }
        if all.len() > 1 {
            print_combined(&all);
        }
        Ok(())
    })
}

// --- the simulated fleet ------------------------------------------------------

/// A deterministic 64-bit mix (splitmix64).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One simulated lock.
#[derive(Debug)]
struct Lock {
    id: String,
    key: SigningKey,
    model: &'static str,
    version: String,
    security_counter: u32,
    site: String,
    groups: Vec<String>,
    counter: u64,
    director_version: u64,
    boot: &'static str,
    last_update: Option<Value>,
    /// Checks in 20 days before now (and not since).
    stale: bool,
    /// Assigned the rollout's target at its last check-in.
    assigned: bool,
    revoked: bool,
}

fn lock(i: usize) -> Lock {
    let n = i as u64;
    let h = mix(n);
    let id = format!("lock-{i:06}");
    let key = SigningKey::from_bytes(&Sha256::digest(id.as_bytes()).into());
    let mut pick = h % 100;
    let mut version = VERSIONS[VERSIONS.len() - 1].0;
    for (v, w) in VERSIONS {
        if pick < w {
            version = v;
            break;
        }
        pick -= w;
    }
    let site = mix(n ^ 0x5175) % SITES;
    let mut groups = vec![format!("region-{}", site % 8)];
    if (h >> 16).is_multiple_of(20) {
        groups.push("pilot".to_owned());
    }
    Lock {
        id,
        key,
        model: MODELS[i % MODELS.len()],
        version: version.to_owned(),
        security_counter: 1,
        site: format!("site-{site:03}"),
        groups,
        counter: 0,
        director_version: 0,
        boot: "confirmed",
        last_update: None,
        stale: (h >> 32).is_multiple_of(100),
        assigned: false,
        revoked: false,
    }
}

impl Lock {
    /// The next signed check-in.
    fn submission(&mut self) -> Submission {
        self.counter += 1;
        let nonce = update_server::ids::random_bytes::<16>();
        let mut report = json!({
            "hardware_model": self.model,
            "firmware": {"version": self.version, "security_counter": self.security_counter},
            "boot_state": self.boot,
            "battery_percent": 20 + mix(self.counter ^ u64::from(nonce[0])) % 80,
            "time_zone": "Europe/Berlin",
        });
        if let Some(u) = &self.last_update {
            report["last_update"] = u.clone();
        }
        let body = json!({
            "device_id": self.id,
            "counter": self.counter,
            "nonce": b64::encode(nonce),
            "director_targets_version": self.director_version,
            "report": report,
        })
        .to_string()
        .into_bytes();
        Submission {
            path_id: self.id.clone(),
            signature: Some(signature_header(&self.key.sign(&checkin_message(&body)))),
            body: Bytes::from(body),
        }
    }
}

// --- the server, in process ---------------------------------------------------

struct App {
    tmp: tempfile::TempDir,
    dir: PathBuf,
    state: AppState,
    router: Router,
    clock: Arc<ManualClock>,
    admin: String,
    /// PostgreSQL: the base URL and the schema to drop.
    pg: Option<(String, String)>,
}

async fn pg_connect(url: &str) -> Result<sqlx::AnyConnection> {
    sqlx::any::install_default_drivers();
    <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .with_context(|| {
            format!(
                "PostgreSQL is not reachable at {url}: start it with `bash .ci/services start` \
                 (or set NIGHTLATCH_TEST_PG_URL)"
            )
        })
}

/// A fresh schema on the test PostgreSQL server: (base URL, schema, URL using it).
async fn fresh_pg_schema() -> Result<(String, String, String)> {
    let url = std::env::var("NIGHTLATCH_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned());
    let mut conn = pg_connect(&url).await?;
    let schema = format!(
        "bench_{}",
        hex::encode(update_server::ids::random_bytes::<6>())
    );
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await?;
    let sep = if url.contains('?') { '&' } else { '?' };
    let with = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    Ok((url, schema, with))
}

impl App {
    async fn start(backend: Backend) -> Result<Self> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().to_owned();
        let mut config = Config::for_data_dir(&dir);
        let mut pg = None;
        if backend == Backend::Postgres {
            let (base, schema, url) = fresh_pg_schema().await?;
            config.database_url = url;
            pg = Some((base, schema));
        }
        let clock = Arc::new(ManualClock::new(T_IMPORT));
        let state = AppState::build_with_clock(
            config,
            Arc::clone(&clock) as Arc<dyn Clock>,
            Some(Arc::clone(&clock)),
        )
        .await
        .context("the server starts")?;
        let admin = std::fs::read_to_string(dir.join("admin-token"))?
            .trim()
            .to_owned();
        Ok(Self {
            router: update_server::router(state.clone()),
            tmp,
            dir,
            state,
            clock,
            admin,
            pg,
        })
    }

    /// Drop the PostgreSQL schema and the data directory, or keep them.
    async fn finish(self, keep: bool) -> Result<()> {
        self.state.store.close().await;
        if keep {
            println!("  kept: data directory {}", self.tmp.keep().display());
            if let Some((_, schema)) = &self.pg {
                println!("  kept: PostgreSQL schema {schema}");
            }
            return Ok(());
        }
        if let Some((url, schema)) = &self.pg {
            let mut conn = pg_connect(url).await?;
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&mut conn)
                .await?;
        }
        Ok(())
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Result<(StatusCode, HeaderMap, Bytes)> {
        call(&self.router, method, path, headers, body).await
    }

    /// An admin API call with the bootstrap token; the JSON answer.
    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let auth = format!("Bearer {}", self.admin);
        let mut headers = vec![("authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, _, bytes) = self.call(method.clone(), path, &headers, body).await?;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        ensure!(status.is_success(), "{method} {path}: {status} {v}");
        Ok(v)
    }

    /// Publish `files` as `nightlatch-sign publish --server` does.
    async fn publish(&self, files: Vec<PathBuf>) -> Result<()> {
        let token = self
            .admin(
                Method::POST,
                "/admin/v1/tokens",
                Some(json!({"name": "bench-release", "role": "release"})),
            )
            .await?["token"]
            .as_str()
            .context("token")?
            .to_owned();
        let t = InProcess {
            router: self.router.clone(),
            token,
            handle: tokio::runtime::Handle::current(),
        };
        let key = self.dir.join("keys/image/keys/targets.key");
        let root = self.dir.join("keys/image/1.root.json");
        // Signed on the server's (manual) clock.
        let clock = FixedClock::at_unix(u64::try_from(self.clock.now_secs()).unwrap_or(0));
        tokio::task::spawn_blocking(move || -> Result<()> {
            let keys = open_all(&[KeySpec::File(key)]).map_err(|e| anyhow!("{e}"))?;
            publish_remote(
                &t,
                "in-process",
                &keys,
                &files,
                &Expiries::default(),
                Some(&root),
                &clock,
            )
            .map_err(|e| anyhow!("publish: {e}"))?;
            Ok(())
        })
        .await?
    }

    /// A firmware envelope for `model` `version`; its path.
    fn envelope(
        &self,
        model: &str,
        version: &str,
        counter: u32,
        payload: &[u8],
    ) -> Result<PathBuf> {
        let release = nightlatch_repo::envelope::Release {
            model: nightlatch_repo::params::parse_model(model).map_err(|e| anyhow!("{e}"))?,
            version: nightlatch_repo::params::parse_version(version).map_err(|e| anyhow!("{e}"))?,
            security_counter: counter,
        };
        let key = SigningKey::from_bytes(&[42; 32]);
        let bytes = nightlatch_repo::envelope::sign_payload(&release, payload, &[key])
            .map_err(|e| anyhow!("{e}"))?;
        let path = self.dir.join(format!("{model}-{version}.nlfw"));
        std::fs::write(&path, bytes)?;
        Ok(path)
    }

    /// Check `locks[which]` in through the pipeline, batches of [`BATCH`],
    /// the clock moving from `from` to `to` over the batches.
    async fn check_in(
        &self,
        locks: &mut [Lock],
        which: &[usize],
        from: i64,
        to: i64,
    ) -> Result<usize> {
        let target = format!("\"{}/{TARGET_VERSION}.nlfw\"", MODELS[0]);
        let batches = which.len().div_ceil(BATCH).max(1);
        let mut accepted = 0;
        for (b, chunk) in which.chunks(BATCH).enumerate() {
            self.clock
                .set_ms(from + (to - from) * b as i64 / batches as i64);
            let subs: Vec<Submission> = chunk.iter().map(|&i| locks[i].submission()).collect();
            let results = self.state.pipeline.process(subs).await;
            for (&i, r) in chunk.iter().zip(results) {
                let resp = r.map_err(|e| anyhow!("check-in of {}: {}", locks[i].id, e.code()))?;
                let l = &mut locks[i];
                if let Some(raw) = &resp.director_targets {
                    l.assigned = raw.get().contains(&target);
                }
                l.director_version = resp.director_targets_version;
                accepted += 1;
            }
        }
        Ok(accepted)
    }
}

async fn call(
    router: &Router,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Result<(StatusCode, HeaderMap, Bytes)> {
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = router.clone().oneshot(req.body(body.into())?).await?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((status, headers, bytes))
}

struct InProcess {
    router: Router,
    token: String,
    handle: tokio::runtime::Handle,
}

impl Transport for InProcess {
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        let (s, _, b) = self
            .handle
            .block_on(call(&self.router, Method::GET, path, &[], Body::empty()))
            .map_err(|e| e.to_string())?;
        match s {
            StatusCode::OK => Ok(Some(b.to_vec())),
            StatusCode::NOT_FOUND => Ok(None),
            s => Err(format!("GET {path}: {s}")),
        }
    }

    fn put(&self, path: &str, body: &[u8]) -> Result<(), String> {
        let auth = format!("Bearer {}", self.token);
        let (s, _, b) = self
            .handle
            .block_on(call(
                &self.router,
                Method::PUT,
                path,
                &[("authorization", auth.as_str())],
                Body::from(body.to_vec()),
            ))
            .map_err(|e| e.to_string())?;
        if s.is_success() {
            Ok(())
        } else {
            Err(format!("PUT {path}: {s}: {}", String::from_utf8_lossy(&b)))
        }
    }
}

// --- setup --------------------------------------------------------------------

/// What the measurements need from the setup.
#[derive(Debug)]
struct Fixture {
    rollout: String,
    /// A lock of the rollout with a long history.
    device: String,
    /// A prefix matching about 100 locks.
    prefix: String,
    model: &'static str,
    version: &'static str,
}

fn since(t: Instant) -> String {
    format!("{:.1} s", t.elapsed().as_secs_f64())
}

async fn setup(app: &App, p: &Params) -> Result<Fixture> {
    let start = Instant::now();

    // Releases of the rollout's model.
    let t = Instant::now();
    let base: Vec<u8> = (0..65_536u32)
        .map(|i| (mix(u64::from(i)) % 251) as u8)
        .collect();
    let mut v14 = base.clone();
    v14[1_000..1_200].fill(1);
    let mut v2 = base.clone();
    v2[30_000..31_000].fill(2);
    let e13 = app.envelope(MODELS[0], "1.3.0", 1, &base)?;
    let e14 = app.envelope(MODELS[0], "1.4.0", 1, &v14)?;
    let e2 = app.envelope(MODELS[0], TARGET_VERSION, 2, &v2)?;
    let made = nightlatch_repo::delta::make_patch(
        &std::fs::read(&e13)?,
        &std::fs::read(&e2)?,
        &nightlatch_repo::delta::NoProgress,
    )
    .map_err(|e| anyhow!("patch: {e}"))?;
    let patch = app.dir.join("1.3.0-to-2.0.0.nldp");
    std::fs::write(&patch, &made.patch)?;
    app.publish(vec![e13, e14, e2, patch]).await?;
    println!("  releases published ({})", since(t));

    // Locks.
    let t = Instant::now();
    app.clock.set_ms(T_IMPORT);
    let mut locks: Vec<Lock> = (0..p.locks).map(lock).collect();
    for chunk in locks.chunks(IMPORT_CHUNK) {
        let devices: Vec<Value> = chunk
            .iter()
            .map(|l| {
                json!({
                    "id": l.id, "hardware_model": l.model, "site": l.site, "groups": l.groups,
                    "public_key": hex::encode(l.key.verifying_key().as_bytes()),
                })
            })
            .collect();
        app.admin(
            Method::POST,
            "/admin/v1/devices/import",
            Some(json!({ "devices": devices })),
        )
        .await?;
    }
    println!(
        "  {} locks imported through POST /admin/v1/devices/import, {IMPORT_CHUNK} at a time ({})",
        locks.len(),
        since(t)
    );

    // Locks that went quiet 20 days ago.
    let t = Instant::now();
    let stale: Vec<usize> = (0..locks.len()).filter(|&i| locks[i].stale).collect();
    let n_stale = app
        .check_in(&mut locks, &stale, T0 - 20 * DAY, T0 - 20 * DAY + HOUR)
        .await?;

    // The rollout.
    app.clock.set_ms(T_ROLLOUT);
    let target = format!("{}/{TARGET_VERSION}.nlfw", MODELS[0]);
    let rollout = app
        .admin(
            Method::POST,
            "/admin/v1/rollouts",
            Some(json!({
                "name": "nl-lock-v1 2.0.0 staged",
                "target": target,
                "from_versions": ["1.2.0", "1.3.0", "1.4.0"],
                "waves": [
                    {"share": 0.02, "min_soak": "1d"},
                    {"share": 0.20, "min_soak": "2d"},
                    {"share": 1.0},
                ],
                "failure_threshold": {"rate": 0.10, "min_sample": 50},
                "start": true,
            })),
        )
        .await?["id"]
        .as_str()
        .context("rollout id")?
        .to_owned();

    // Everyone else over the last day.
    let rest: Vec<usize> = (0..locks.len()).filter(|&i| !locks[i].stale).collect();
    let n_rest = app
        .check_in(&mut locks, &rest, T0 - 24 * HOUR, T0 - HOUR)
        .await?;

    // The assigned locks report: most confirmed, some on trial, some rolled back.
    let assigned: Vec<usize> = (0..locks.len()).filter(|&i| locks[i].assigned).collect();
    let mut reporting = Vec::new();
    for (k, &i) in assigned.iter().enumerate() {
        let l = &mut locks[i];
        let (boot, outcome, reason) = match mix(k as u64 ^ 0xabc) % 100 {
            0..=84 => ("confirmed", "confirmed", None),
            85..=91 => ("trial", "installed", None),
            92..=95 => ("reverted", "rolled_back", Some("self_test_motor")),
            _ => continue,
        };
        if outcome != "rolled_back" {
            l.version = TARGET_VERSION.to_owned();
            l.security_counter = 2;
        }
        l.boot = boot;
        l.last_update = Some(json!({"target": target, "outcome": outcome, "reason": reason}));
        reporting.push(i);
    }
    let n_report = app
        .check_in(&mut locks, &reporting, T0 - 50 * 60_000, T0 - 30 * 60_000)
        .await?;
    println!(
        "  {} real check-ins through state.pipeline.process, batches of {BATCH}: {n_stale} 20 days ago, \
         {n_rest} over the last day ({} assigned the rollout), {n_report} reporting results ({}; {})",
        n_stale + n_rest + n_report,
        assigned.len(),
        since(t),
        stage_times(app).await?
    );

    // A few revoked locks (not of the rollout's model).
    app.clock.set_ms(T0 - 20 * 60_000);
    let step = locks.len() / 100;
    for l in locks
        .iter_mut()
        .filter(|l| l.model != MODELS[0])
        .step_by(step)
    {
        app.admin(
            Method::POST,
            &format!("/admin/v1/devices/{}/revoke", l.id),
            Some(json!({"reason": "reported stolen"})),
        )
        .await?;
        l.revoked = true;
    }

    // The rest of the history, bulk-inserted.
    let t = Instant::now();
    let real = count(app, "device_events").await?;
    let bulk = p.history.saturating_sub(real);
    insert_history(app, &locks, bulk).await?;
    if app.state.store.backend() == Backend::Postgres {
        // What autovacuum does after a bulk load, done now (SQLite's
        // planner runs without statistics: the server never analyzes).
        sqlx::query("VACUUM ANALYZE devices, device_tags, device_events, rollout_devices")
            .execute(app.state.store.pool())
            .await?;
    }
    println!(
        "  {real} history rows written by the API and the check-ins, {bulk} bulk-inserted into device_events \
         with multi-row INSERTs of {INSERT_ROWS} ({})",
        since(t)
    );

    // A live fleet keeps checking in: a tenth of the locks in the last 18
    // minutes (their rows rewritten after the bulk load, as between two
    // autovacuums of a busy fleet on PostgreSQL).
    let t = Instant::now();
    let recent: Vec<usize> = (0..locks.len())
        .filter(|&i| {
            !locks[i].stale && !locks[i].revoked && mix(i as u64 ^ 0x77).is_multiple_of(10)
        })
        .collect();
    let n_recent = app
        .check_in(&mut locks, &recent, T0 - 18 * 60_000, T0 - 60_000)
        .await?;
    let total = count(app, "device_events").await?;
    println!(
        "  {n_recent} more check-ins in the last 18 minutes ({}); device_events holds {total} rows",
        since(t)
    );
    check_counts(app, &locks, &rollout).await?;

    app.clock.set_ms(T0);
    println!("  setup: {}", since(start));

    // The device page's lock: one of the rollout's, with its history.
    let device = reporting
        .first()
        .or(assigned.first())
        .map(|&i| locks[i].id.clone())
        .context("no lock was assigned")?;
    let prefix_n = (p.locks / 2 / 100).min(9_999);
    Ok(Fixture {
        rollout,
        device,
        prefix: format!("lock-{prefix_n:04}"),
        model: MODELS[3],
        version: VERSIONS[2].0,
    })
}

/// The check-in pipeline's time per stage so far, from `/metrics`.
async fn stage_times(app: &App) -> Result<String> {
    let (_, _, body) = app
        .call(Method::GET, "/metrics", &[], Body::empty())
        .await?;
    let text = String::from_utf8_lossy(&body);
    let stages: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("nightlatch_checkin_stage_seconds_sum{"))
        .filter_map(|l| {
            let stage = l.split("stage=\"").nth(1)?.split('"').next()?;
            let secs: f64 = l.rsplit(' ').next()?.parse().ok()?;
            Some(format!("{stage} {secs:.1} s"))
        })
        .collect();
    Ok(stages.join(", "))
}

/// The fleet queries count what the simulated fleet runs (active locks by
/// model and version, revoked ones left out), on this backend.
async fn check_counts(app: &App, locks: &[Lock], rollout: &str) -> Result<()> {
    let mut want: HashMap<(String, String), i64> = HashMap::new();
    for l in locks.iter().filter(|l| !l.revoked) {
        *want
            .entry((l.model.to_owned(), l.version.clone()))
            .or_default() += 1;
    }
    let v = app
        .admin(Method::GET, "/admin/v1/fleet/versions", None)
        .await?;
    let mut got: HashMap<(String, String), i64> = HashMap::new();
    for c in v["counts"].as_array().context("counts")? {
        let key = (
            c["hardware_model"].as_str().unwrap_or_default().to_owned(),
            c["firmware_version"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        got.insert(key, c["count"].as_i64().context("count")?);
    }
    ensure!(
        got == want,
        "fleet/versions counts {got:?}, the fleet runs {want:?}"
    );
    let v = app
        .admin(Method::GET, &format!("/admin/v1/rollouts/{rollout}"), None)
        .await?;
    let of_model: i64 = want
        .iter()
        .filter(|((m, _), _)| m == MODELS[0])
        .map(|(_, n)| n)
        .sum();
    let shown: i64 = v["fleet_by_version"]
        .as_array()
        .context("fleet_by_version")?
        .iter()
        .filter_map(|c| c["count"].as_i64())
        .sum();
    ensure!(
        shown == of_model,
        "rollout fleet_by_version sums to {shown}, want {of_model}"
    );
    Ok(())
}

async fn count(app: &App, table: &str) -> Result<usize> {
    use sqlx::Row;
    let n: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
        .fetch_one(app.state.store.pool())
        .await?
        .try_get("n")?;
    Ok(usize::try_from(n)?)
}

/// Step `step` of one lock's update story `cycle` (rollout id, from, to,
/// whether this update fails): (kind, detail). Six events an update.
fn story(l: &Lock, step: usize, cycle: &(String, String, String, bool)) -> (&'static str, Value) {
    let (rollout, from, to, fails) = cycle;
    let target = format!("{}/{to}.nlfw", l.model);
    let status =
        |s: &str, reason: Option<&str>| json!({"rollout": rollout, "status": s, "reason": reason});
    let result = |outcome: &str, reason: Option<&str>| json!({"target": target, "outcome": outcome, "reason": reason});
    match (step % 6, *fails) {
        (0, _) => (
            "assigned",
            json!({"rollout": rollout, "wave": step % 3, "target": target,
                   "patch": format!("{}/{to}.from-{from}.nldp", l.model)}),
        ),
        (1, false) => ("rollout_status", status("installed", None)),
        (1, true) => ("update_result", result("installed", None)),
        (2, _) => (
            "firmware",
            json!({"from": from, "to": to, "security_counter": 1, "boot_state": "trial"}),
        ),
        (3, false) => ("update_result", result("confirmed", None)),
        (3, true) => (
            "update_result",
            result("rolled_back", Some("self_test_motor")),
        ),
        (4, false) => ("rollout_status", status("confirmed", None)),
        (4, true) => (
            "firmware",
            json!({"from": to, "to": from, "security_counter": 1, "boot_state": "reverted"}),
        ),
        (_, false) => ("unassigned", json!({})),
        (_, true) => (
            "rollout_status",
            status("rolled_back", Some("self_test_motor")),
        ),
    }
}

/// Bulk-insert `n` history rows, spread evenly over the locks, at times
/// between the import and 40 days before now.
async fn insert_history(app: &App, locks: &[Lock], n: usize) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let pool = app.state.store.pool();
    let backend = app.state.store.backend();
    let per_lock = n / locks.len();
    let extra = n % locks.len();
    let span = (T0 - 40 * DAY) - (T_IMPORT + DAY);
    let mut rows: Vec<(String, String, i64, &'static str, String)> =
        Vec::with_capacity(INSERT_ROWS);
    let mut tx = pool.begin().await?;
    let mut in_tx = 0;
    for (i, l) in locks.iter().enumerate() {
        let k = per_lock + usize::from(i < extra);
        if k == 0 {
            continue;
        }
        let step_ms = span / k as i64;
        let mut cycle = (String::new(), String::new(), String::new(), false);
        for s in 0..k {
            let at = T_IMPORT
                + DAY
                + step_ms * s as i64
                + (mix((i * 64 + s) as u64) % (step_ms.max(2) as u64 / 2)) as i64;
            if s % 6 == 0 {
                let c = s / 6;
                cycle = (
                    update_server::ids::new_id("ro", at),
                    format!("1.{}.0", c % 4),
                    format!("1.{}.0", c % 4 + 1),
                    mix((i * 7 + c) as u64).is_multiple_of(12),
                );
            }
            let (kind, detail) = story(l, s, &cycle);
            rows.push((
                update_server::ids::new_id("ev", at),
                l.id.clone(),
                at,
                kind,
                detail.to_string(),
            ));
            if rows.len() == INSERT_ROWS {
                insert_rows(&mut tx, backend, &rows).await?;
                rows.clear();
                in_tx += 1;
                if in_tx == 50 {
                    tx.commit().await?;
                    tx = pool.begin().await?;
                    in_tx = 0;
                }
            }
        }
    }
    if !rows.is_empty() {
        insert_rows(&mut tx, backend, &rows).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn insert_rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    rows: &[(String, String, i64, &'static str, String)],
) -> Result<()> {
    // `?` on SQLite (numbered parameters are looked up linearly there),
    // `$N` on PostgreSQL.
    let mut next = 0;
    let mut ph = || {
        next += 1;
        match backend {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${next}"),
        }
    };
    let values: Vec<String> = rows
        .iter()
        .map(|_| format!("({}, {}, {}, {}, {})", ph(), ph(), ph(), ph(), ph()))
        .collect();
    let sql = format!(
        "INSERT INTO device_events (id, device_id, at, kind, detail) VALUES {}",
        values.join(", ")
    );
    let mut q = sqlx::query(&sql);
    for (id, device, at, kind, detail) in rows {
        q = q.bind(id).bind(device).bind(*at).bind(*kind).bind(detail);
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

// --- measurement --------------------------------------------------------------

/// The value of cookie `name` among the Set-Cookie headers.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().to_owned())
}

fn form_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sign in to the console as a browser does; the `Cookie` header value.
async fn sign_in(app: &App) -> Result<String> {
    let token = std::fs::read_to_string(app.dir.join("admin-token"))?
        .trim()
        .to_owned();
    let (status, headers, body) = app
        .call(Method::GET, "/console/login", &[], Body::empty())
        .await?;
    ensure!(status == StatusCode::OK, "GET /console/login: {status}");
    let login = set_cookie(&headers, "nl_login").context("no nl_login cookie")?;
    let html = String::from_utf8_lossy(&body);
    let csrf = html
        .split_once("name=\"csrf\" value=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(v, _)| v.to_owned())
        .context("no csrf field on the sign-in page")?;
    let form = format!("token={}&csrf={}", form_encode(&token), form_encode(&csrf));
    let cookie = format!("nl_login={login}");
    let (status, headers, _) = app
        .call(
            Method::POST,
            "/console/login",
            &[
                ("cookie", cookie.as_str()),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            form,
        )
        .await?;
    ensure!(
        status == StatusCode::SEE_OTHER,
        "POST /console/login: {status}"
    );
    let session = set_cookie(&headers, "nl_console").context("no nl_console cookie")?;
    Ok(format!("nl_console={session}"))
}

/// Timings of one page, ms.
#[derive(Debug, Clone)]
struct Row {
    name: String,
    p50: f64,
    p95: f64,
    max: f64,
    bytes: usize,
    /// Not an API call: a page that must meet the aim.
    page: bool,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One timed GET; its time and size.
async fn get_once(app: &App, path: &str, header: (&str, &str)) -> Result<(Duration, usize)> {
    let t = Instant::now();
    let (status, _, body) = app
        .call(Method::GET, path, &[header], Body::empty())
        .await?;
    let elapsed = t.elapsed();
    ensure!(
        status == StatusCode::OK,
        "GET {path}: {status} {}",
        String::from_utf8_lossy(&body)
            .chars()
            .take(300)
            .collect::<String>()
    );
    Ok((elapsed, body.len()))
}

/// One timed request: (name, path, a console page (else an API call),
/// with the fleet's model × version table counted afresh (else as cached,
/// see `store::fleet`)).
type Page = (String, String, bool, bool);

/// Time every page: warm-up rounds, then `runs` rounds, each requesting
/// every page once (interleaved, so a burst of load elsewhere on the
/// machine touches all pages alike). Pages with the console cookie, API
/// calls with the admin token.
async fn measure(app: &App, p: &Params, pages: &[Page], cookie: &str) -> Result<Vec<Row>> {
    let auth = format!("Bearer {}", app.admin);
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(p.runs); pages.len()];
    let mut sizes = vec![0; pages.len()];
    for round in 0..p.warmup + p.runs {
        for (k, (_, path, page, cold)) in pages.iter().enumerate() {
            let header = if *page {
                ("cookie", cookie)
            } else {
                ("authorization", auth.as_str())
            };
            if *cold {
                app.state.store.fleet_changed();
            }
            let (elapsed, size) = get_once(app, path, header).await?;
            sizes[k] = size;
            if round >= p.warmup {
                times[k].push(elapsed.as_secs_f64() * 1000.0);
            }
        }
    }
    Ok(pages
        .iter()
        .zip(times)
        .zip(sizes)
        .map(|(((name, _, page, _), mut ms), bytes)| {
            ms.sort_by(f64::total_cmp);
            Row {
                name: name.clone(),
                p50: percentile(&ms, 0.50),
                p95: percentile(&ms, 0.95),
                max: ms.last().copied().unwrap_or(0.0),
                bytes,
                page: *page,
            }
        })
        .collect())
}

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    }
}

async fn bench(backend: Backend, p: &Params) -> Result<Vec<Row>> {
    println!(
        "\n== {}: {} locks, {} history rows ==",
        backend_name(backend),
        p.locks,
        p.history
    );
    let app = App::start(backend).await?;
    let result = async {
        let fx = setup(&app, p).await?;
        let cookie = sign_in(&app).await?;
        let pages: Vec<Page> = vec![
            (
                "console: fleet".into(),
                "/console/fleet".into(),
                true,
                false,
            ),
            (
                "console: fleet, counts not cached".into(),
                "/console/fleet".into(),
                true,
                true,
            ),
            (
                format!("console: devices prefix={} (~100)", fx.prefix),
                format!("/console/devices?prefix={}", fx.prefix),
                true,
                false,
            ),
            (
                "console: devices model+version".into(),
                format!("/console/devices?model={}&version={}", fx.model, fx.version),
                true,
                false,
            ),
            (
                "console: device page (history)".into(),
                format!("/console/devices/{}", fx.device),
                true,
                false,
            ),
            (
                "console: rollout page".into(),
                format!("/console/rollouts/{}", fx.rollout),
                true,
                false,
            ),
            (
                "api: fleet/versions".into(),
                "/admin/v1/fleet/versions".into(),
                false,
                false,
            ),
            (
                "api: fleet/versions, not cached".into(),
                "/admin/v1/fleet/versions".into(),
                false,
                true,
            ),
            (
                "api: fleet/stale?days=7&limit=20".into(),
                "/admin/v1/fleet/stale?days=7&limit=20".into(),
                false,
                false,
            ),
            (
                "api: rollouts".into(),
                "/admin/v1/rollouts".into(),
                false,
                false,
            ),
            (
                "api: repo/health".into(),
                "/admin/v1/repo/health".into(),
                false,
                false,
            ),
            (
                "api: devices?prefix".into(),
                format!("/admin/v1/devices?prefix={}&limit=50", fx.prefix),
                false,
                false,
            ),
            (
                "api: devices?model&version".into(),
                format!(
                    "/admin/v1/devices?model={}&version={}&limit=50",
                    fx.model, fx.version
                ),
                false,
                false,
            ),
            (
                "api: devices/{id}".into(),
                format!("/admin/v1/devices/{}", fx.device),
                false,
                false,
            ),
            (
                "api: devices/{id}/history?limit=100".into(),
                format!("/admin/v1/devices/{}/history?limit=100", fx.device),
                false,
                false,
            ),
            (
                "api: rollouts/{id}".into(),
                format!("/admin/v1/rollouts/{}", fx.rollout),
                false,
                false,
            ),
            (
                "api: rollouts/{id}/devices?status=failed,…".into(),
                format!(
                    "/admin/v1/rollouts/{}/devices?status=failed,rolled_back&limit=100",
                    fx.rollout
                ),
                false,
                false,
            ),
        ];
        let rows = measure(&app, p, &pages, &cookie).await?;
        print_table(backend, p, &fx, &rows);
        Ok::<_, anyhow::Error>(rows)
    }
    .await;
    let dropped = app.finish(p.keep).await;
    let rows = result?;
    dropped?;
    Ok(rows)
}

fn print_table(backend: Backend, p: &Params, fx: &Fixture, rows: &[Row]) {
    println!(
        "\n{} — {} timed runs after {} warm-up, in process (router.oneshot), ms; aim p50 ≤ 50 ms for console pages",
        backend_name(backend),
        p.runs,
        p.warmup
    );
    println!("(rollout {}, device {})", fx.rollout, fx.device);
    println!(
        "| {:<48} | {:>8} | {:>8} | {:>8} | {:>9} | {:<6} |",
        "request", "p50", "p95", "max", "bytes", "≤ 50?"
    );
    println!(
        "|{:-<50}|{:->10}|{:->10}|{:->10}|{:->11}|{:-<8}|",
        "", "", "", "", "", ""
    );
    for r in rows {
        let ok = if !r.page {
            ""
        } else if r.p50 <= 50.0 {
            "yes"
        } else {
            "NO"
        };
        println!(
            "| {:<48} | {:>8.1} | {:>8.1} | {:>8.1} | {:>9} | {:<6} |",
            r.name, r.p50, r.p95, r.max, r.bytes, ok
        );
    }
}

fn print_combined(all: &[(Backend, Vec<Row>)]) {
    println!("\n== summary: p50 / p95 / max, ms ==");
    let mut by_name: HashMap<&str, Vec<String>> = HashMap::new();
    let mut order = Vec::new();
    for (_, rows) in all {
        for r in rows {
            let e = by_name.entry(r.name.as_str()).or_insert_with(|| {
                order.push(r.name.as_str());
                Vec::new()
            });
            let mark = if r.page && r.p50 > 50.0 { " (!)" } else { "" };
            e.push(format!("{:.1} / {:.1} / {:.1}{mark}", r.p50, r.p95, r.max));
        }
    }
    let header: Vec<&str> = all.iter().map(|(b, _)| backend_name(*b)).collect();
    println!(
        "| {:<48} | {} |",
        "request",
        header
            .iter()
            .map(|h| format!("{h:<26}"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!(
        "|{:-<50}|{}",
        "",
        header
            .iter()
            .map(|_| format!("{:-<28}|", ""))
            .collect::<String>()
    );
    for name in order {
        let cells = by_name
            .get(name)
            .map(|c| {
                c.iter()
                    .map(|c| format!("{c:<26}"))
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .unwrap_or_default();
        println!("| {name:<48} | {cells} |");
    }
}
