//! Webhooks against a real receiving HTTP server on loopback: every event
//! type delivered with a valid signature (both backends), a receiver that
//! is down and then up gets the event again with the same id, secret
//! rotation signs with both secrets, private addresses are refused, a run
//! of failures disables a subscription (and the others are told), retries
//! back off and give up after `max_attempts`, a late attempt does not undo
//! another replica's claim, two replicas on PostgreSQL deliver each event
//! once, and `kill -9` of the real binary with deliveries pending and in
//! flight loses no event.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, Method, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::watch;
use update_server::config::{BlobConfig, Config};

use crate::both_backends;
use crate::support::{Backend, TestApp, fresh_bucket, fresh_pg_schema, ids};

const MODEL: &str = "nl-lock-v2";
const TARGET: &str = "nl-lock-v2/2.0.0.nlfw";
const BAD_MODEL: &str = "nl-lock-bad";
const BAD_TARGET: &str = "nl-lock-bad/2.0.0.nlfw";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Got {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Got {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

/// A receiving HTTP server on loopback that records every request and
/// answers with `status`.
pub struct Receiver {
    pub port: u16,
    pub got: Arc<Mutex<Vec<Got>>>,
    pub status: Arc<AtomicU16>,
    /// Milliseconds to wait before answering.
    pub delay_ms: Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::on(0).await
    }

    pub async fn on(port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind receiver");
        let port = listener.local_addr().unwrap().port();
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let delay_ms: Arc<std::sync::atomic::AtomicU64> = Arc::default();
        let (g, s, d) = (Arc::clone(&got), Arc::clone(&status), Arc::clone(&delay_ms));
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: bytes::Bytes| {
            let (g, s, d) = (Arc::clone(&g), Arc::clone(&s), Arc::clone(&d));
            async move {
                let wait = d.load(Ordering::SeqCst);
                if wait > 0 {
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                g.lock().unwrap().push(Got {
                    headers,
                    body: body.to_vec(),
                });
                StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap()
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            port,
            got,
            status,
            delay_ms,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub fn all(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

/// Check `X-Nightlatch-Signature` of `got` against `secret`, computed here
/// independently of the server's code: some `v1=` equals
/// HMAC-SHA256(secret, t + "." + body).
pub fn signed_with(got: &Got, secret: &str) -> bool {
    let header = got.header("x-nightlatch-signature");
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v.to_owned()),
            Some(("v1", v)) => sigs.push(v.to_owned()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(&got.body);
    let want = hex::encode(mac.finalize().into_bytes());
    sigs.contains(&want)
}

/// Wait until `f` holds (real time; deliveries run in the background).
pub async fn until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn config(dir: &std::path::Path) -> Config {
    let mut c = Config::for_data_dir(dir);
    c.webhooks.allow_private_addresses = true;
    c.webhooks.retry_backoff = Duration::from_secs(10);
    c.webhooks.retry_backoff_cap = Duration::from_secs(60);
    c.webhooks.poll_interval = Duration::from_millis(50);
    c.webhooks.claim_lease = Duration::from_secs(5);
    c
}

async fn app(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = config(dir.path());
    if backend == Backend::PostgresS3 {
        c.database_url = fresh_pg_schema().await;
        c.blob = BlobConfig::S3(fresh_bucket().await);
    }
    tweak(&mut c);
    TestApp::start(dir, c).await
}

/// Deliver in the background for `state` until the sender is dropped.
fn deliver(state: &update_server::AppState) -> watch::Sender<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(update_server::webhooks::deliver::run(state.clone(), rx));
    tx
}

async fn watch_once(app: &TestApp, seen: &mut HashSet<String>) {
    update_server::webhooks::watch::once(&app.state, seen)
        .await
        .expect("watch");
}

async fn create(app: &TestApp, url: &str, events: Value) -> (String, String) {
    let (s, v) = app
        .json(
            Method::POST,
            "/admin/v1/webhooks",
            Some(&app.admin),
            Some(json!({"url": url, "events": events, "description": "test receiver"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    (
        v["id"].as_str().unwrap().to_owned(),
        v["secret"].as_str().unwrap().to_owned(),
    )
}

async fn publish_model(app: &TestApp, model: &str) {
    let v1: Vec<u8> = (0..4_000u32).map(|i| (i % 251) as u8).collect();
    let mut v2 = v1.clone();
    v2[100..200].fill(7);
    let e1 = app.envelope(model, "1.0.0", 1, &v1);
    let e2 = app.envelope(model, "2.0.0", 2, &v2);
    app.publish(&[e1, e2]).await;
}

async fn act(app: &TestApp, id: &str, action: &str) {
    let (s, v) = app
        .json(
            Method::POST,
            &format!("/admin/v1/rollouts/{id}/{action}"),
            Some(&app.admin),
            Some(json!({"reason": format!("test {action}")})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{action}: {v}");
}

/// Rotate the image root: a new key for `targets` (the threshold stays 1,
/// so the current targets key still signs), signed by the root key(s).
async fn rotate_image_root(app: &TestApp) {
    use nightlatch_repo::keysource::{KeySpec, open_all};
    use nightlatch_repo::metadata::{Expiry, PublicKey, Root, Signed};
    let path = app.image_root();
    let root: Signed<Root> = Signed::parse(&std::fs::read(&path).unwrap(), &path).unwrap();
    let extra = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let next = nightlatch_repo::rotation::rotate(
        &root.signed,
        &[nightlatch_repo::rotation::Change::Add {
            role: "targets".into(),
            key: PublicKey::Ed25519(extra.verifying_key()),
        }],
        Expiry::from_unix(u64::try_from(crate::support::T0 / 1000).unwrap() + 400 * 86_400),
    )
    .unwrap();
    let mut signed = Signed::new(next).unwrap();
    let keys_dir = app.dir.path().join("keys/image/keys");
    for e in std::fs::read_dir(&keys_dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("root") && name.ends_with(".key") {
            let keys = open_all(&[KeySpec::File(e.path())]).unwrap();
            for k in &keys {
                signed
                    .sign_with(k.as_ref(), std::path::Path::new("2.root.json"))
                    .unwrap();
            }
        }
    }
    let (s, _, b) = app
        .call(
            Method::PUT,
            "/admin/v1/repo/roots/2.root.json",
            Some(&app.admin),
            &[("content-type", "application/json")],
            signed.to_bytes().unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
}

/// Every event type is delivered, signed with the subscription's secret,
/// with the documented shape.
async fn every_event_type_is_delivered_signed(backend: Backend) {
    let app = app(backend, |c| {
        // Every offline role "expires soon", so the expiry warning fires.
        c.webhooks.expiry_warning_days = 3650;
        c.webhooks.failure_batch_window = Duration::from_secs(60);
    })
    .await;
    let rx = Receiver::start().await;
    let (hook, secret) = create(&app, &rx.url(), json!(["*"])).await;
    let _stop = deliver(&app.state);
    let mut seen = HashSet::new();
    // First look: the failure cursor starts now.
    watch_once(&app, &mut seen).await;

    // test.ping
    let (s, v) = app
        .json(
            Method::POST,
            &format!("/admin/v1/webhooks/{hook}/test"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    // release.published
    publish_model(&app, MODEL).await;
    publish_model(&app, BAD_MODEL).await;
    // token.created / token.revoked
    let (s, v) = app
        .json(
            Method::POST,
            "/admin/v1/tokens",
            Some(&app.admin),
            Some(json!({"name": "ci-bot", "role": "viewer"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let token_id = v["id"].as_str().unwrap().to_owned();
    let (s, _) = app
        .json(
            Method::DELETE,
            &format!("/admin/v1/tokens/{token_id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // repo.key_rotation
    rotate_image_root(&app).await;

    // A rollout in two waves that completes: created, started, wave 0
    // started, paused/resumed by an operator, wave 0 completed, wave 1
    // started, wave 1 completed, rollout completed.
    let mut locks = app.register(&ids("wh", 12), MODEL, &[]).await;
    // device.below_minimum: the locks report 1.0.0, below this model's
    // minimum secure version.
    let (s, v) = app
        .json(
            Method::PUT,
            &format!("/admin/v1/fleet/minimums/{MODEL}"),
            Some(&app.admin),
            Some(json!({"min_version": "1.5.0"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ro = app
        .rollout(json!({
            "name": "webhook <b>drill</b>", "target": TARGET, "start": true,
            "waves": [{"share": 0.5, "min_soak": "1h"}, {"share": 1.0}],
            "failure_threshold": {"rate": 0.5, "min_sample": 100},
        }))
        .await;
    watch_once(&app, &mut seen).await;
    act(&app, &ro, "pause").await;
    act(&app, &ro, "resume").await;
    for _ in 0..2 {
        for r in app.check_in_all(&mut locks, 64).await {
            r.unwrap();
        }
        for l in locks.iter_mut() {
            if l.assigned().as_deref() == Some(TARGET) && l.version != "2.0.0" {
                l.install(TARGET, "2.0.0");
            }
        }
        for r in app.check_in_all(&mut locks, 64).await {
            r.unwrap();
        }
        app.clock.advance_ms(3_600_000);
        watch_once(&app, &mut seen).await;
    }
    assert!(locks.iter().all(|l| l.version == "2.0.0"));

    // A bad release: every lock rolls back, the rollout pauses itself,
    // the failures are reported after their minute, then it is aborted.
    let mut bad = app.register(&ids("whbad", 4), BAD_MODEL, &[]).await;
    let bad_ro = app
        .rollout(json!({
            "name": "bad", "target": BAD_TARGET, "start": true, "waves": [{"share": 1.0}],
            "failure_threshold": {"rate": 0.5, "min_sample": 2},
        }))
        .await;
    for r in app.check_in_all(&mut bad, 64).await {
        r.unwrap();
    }
    for l in bad.iter_mut() {
        assert_eq!(l.assigned().as_deref(), Some(BAD_TARGET));
        l.roll_back(BAD_TARGET, "boot loop <script>");
    }
    for r in app.check_in_all(&mut bad, 64).await {
        r.unwrap();
    }
    app.clock.advance_ms(120_000);
    watch_once(&app, &mut seen).await;
    act(&app, &bad_ro, "abort").await;

    let expected: BTreeMap<&str, usize> = [
        ("test.ping", 1),
        ("release.published", 2),
        ("token.revoked", 1),
        ("repo.key_rotation", 1),
        ("rollout.created", 2),
        ("rollout.started", 2),
        ("rollout.paused", 2),
        ("rollout.resumed", 1),
        ("rollout.aborted", 1),
        ("rollout.completed", 1),
        ("wave.started", 3),
        ("wave.completed", 2),
        ("device.update_failed", 1),
        ("device.below_minimum", 1),
    ]
    .into_iter()
    .collect();
    let count = |all: &[Got], kind: &str| all.iter().filter(|g| g.json()["type"] == kind).count();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    until("the events", Duration::from_secs(31), || {
        let all = rx.all();
        if std::time::Instant::now() > deadline {
            let mut m: BTreeMap<String, usize> = BTreeMap::new();
            for g in &all {
                *m.entry(g.json()["type"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
            panic!("got {m:?}, expected at least {expected:?} and repo.metadata_expiring");
        }
        count(&all, "repo.metadata_expiring") > 0
            && expected.iter().all(|(kind, n)| count(&all, kind) >= *n)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all = rx.all();
    let mut by_type: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for g in &all {
        assert!(signed_with(g, &secret), "bad signature on {:?}", g.json());
        assert!(!signed_with(g, "whsec_wrong"));
        let v = g.json();
        assert_eq!(g.header("x-nightlatch-delivery"), v["id"].as_str().unwrap());
        assert_eq!(g.header("x-nightlatch-event"), v["type"].as_str().unwrap());
        assert_eq!(g.header("content-type"), "application/json");
        by_type
            .entry(v["type"].as_str().unwrap().to_owned())
            .or_default()
            .push(v);
    }
    for (kind, n) in &expected {
        assert_eq!(
            by_type.get(*kind).map_or(0, Vec::len),
            *n,
            "{kind}: {:?}",
            by_type.get(*kind)
        );
    }
    assert!(by_type.contains_key("repo.metadata_expiring"));
    // Each event once (no duplicate ids).
    let unique: HashSet<&str> = all
        .iter()
        .map(|g| g.headers["x-nightlatch-delivery"].to_str().unwrap())
        .collect();
    assert_eq!(unique.len(), all.len(), "an event was delivered twice");

    // Shapes.
    let paused = &by_type["rollout.paused"];
    let manual = paused
        .iter()
        .find(|e| e["data"]["automatic"] == false)
        .unwrap();
    assert_eq!(manual["data"]["reason"], "test pause");
    assert_eq!(manual["data"]["rollout_id"], ro.as_str());
    assert_eq!(manual["data"]["name"], "webhook <b>drill</b>");
    let auto = paused
        .iter()
        .find(|e| e["data"]["automatic"] == true)
        .unwrap();
    assert_eq!(auto["data"]["rollout_id"], bad_ro.as_str());
    // All four reported in one check-in batch.
    assert_eq!(auto["data"]["failures"], 4);
    assert_eq!(auto["data"]["sample"], 4);
    assert_eq!(auto["data"]["failure_rate"], 1.0);
    assert_eq!(auto["data"]["min_sample"], 2);
    let failed = &by_type["device.update_failed"][0]["data"];
    assert_eq!(failed["count"], 4, "{failed}");
    assert_eq!(failed["devices"][0]["status"], "rolled_back");
    assert_eq!(failed["devices"][0]["reason"], "boot loop <script>");
    let waves: Vec<(i64, String)> = by_type["wave.started"]
        .iter()
        .map(|e| {
            (
                e["data"]["wave"].as_i64().unwrap(),
                e["data"]["rollout_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(waves.contains(&(0, ro.clone())) && waves.contains(&(1, ro.clone())));
    let done = &by_type["rollout.completed"][0]["data"];
    assert_eq!(done["rollout_id"], ro.as_str());
    assert_eq!(done["devices"]["confirmed"], 12, "{done}");
    let published: Vec<String> = by_type["release.published"]
        .iter()
        .flat_map(|e| e["data"]["targets"].as_array().unwrap().clone())
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    assert!(published.contains(&TARGET.to_owned()), "{published:?}");
    // Tokens the test harness made are there too; ci-bot once.
    let bots: Vec<&Value> = by_type["token.created"]
        .iter()
        .filter(|e| e["data"]["name"] == "ci-bot")
        .collect();
    assert_eq!(bots.len(), 1);
    assert_eq!(bots[0]["data"]["token_id"], token_id);
    assert_eq!(bots[0]["data"]["role"], "viewer");
    assert_eq!(by_type["token.revoked"][0]["data"]["token_id"], token_id);
    assert_eq!(
        by_type["repo.key_rotation"][0]["data"]["roles_changed"],
        json!(["targets"])
    );
    let below: HashSet<String> = by_type["device.below_minimum"]
        .iter()
        .flat_map(|e| e["data"]["devices"].as_array().unwrap().clone())
        .map(|d| {
            assert_eq!(d["firmware_version"], "1.0.0");
            assert_eq!(d["min_version"], "1.5.0");
            d["device_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        below,
        ids("wh", 12).into_iter().collect(),
        "every lock once"
    );
    let expiring = &by_type["repo.metadata_expiring"][0]["data"];
    assert!(expiring["repository"].is_string() && expiring["version"].is_u64());

    // The delivery log has every attempt, each delivered on the first try.
    let (s, v) = app
        .json(
            Method::GET,
            &format!("/admin/v1/webhooks/{hook}/deliveries?limit=1000"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let log = v["deliveries"].as_array().unwrap();
    assert_eq!(log.len(), all.len());
    assert!(
        log.iter()
            .all(|d| d["outcome"] == "delivered" && d["status_code"] == 200 && d["attempt"] == 1)
    );
    let (_, v) = app
        .json(
            Method::GET,
            &format!("/admin/v1/webhooks/{hook}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(v["stats"]["delivered"], all.len());
    assert_eq!(v["stats"]["pending"], 0);
    assert!(v.get("secret").is_none(), "the secret is shown only once");
    // A second look writes nothing new.
    let before = rx.all().len();
    watch_once(&app, &mut HashSet::new()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.all().len(), before, "events noticed twice");
    rx.stop();
}

/// The receiver is down, then up: the event comes again with the same id
/// (and body), after the backoff; the delivery log shows both attempts.
async fn a_receiver_down_then_up_gets_the_same_event(backend: Backend) {
    let app = app(backend, |_| {}).await;
    let port = crate::support::free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let (hook, secret) = create(&app, &url, json!(["token.*"])).await;
    let _stop = deliver(&app.state);
    app.token("viewer").await;
    // First attempt: connection refused.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if !log(&app, &hook).await.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no first attempt");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = log(&app, &hook).await;
    assert_eq!(first[0]["outcome"], "error", "{first:?}");
    let event_id = first[0]["event_id"].as_str().unwrap().to_owned();
    // Up, answering 503 first: still not delivered.
    let rx = Receiver::on(port).await;
    rx.status.store(503, Ordering::SeqCst);
    app.clock.advance_ms(15_000);
    until("the second attempt", Duration::from_secs(20), || {
        !rx.all().is_empty()
    })
    .await;
    logged(&app, &hook, 2).await;
    rx.status.store(200, Ordering::SeqCst);
    app.clock.advance_ms(60_000);
    until("the third attempt", Duration::from_secs(20), || {
        rx.all().len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = rx.all();
    assert_eq!(got.len(), 2, "delivered once more, then no more");
    for g in &got {
        assert_eq!(g.header("x-nightlatch-delivery"), event_id);
        assert!(signed_with(g, &secret));
    }
    assert_eq!(got[0].body, got[1].body, "the same body on every attempt");
    assert_eq!(got[1].header("x-nightlatch-attempt"), "3");
    let attempts = log(&app, &hook).await;
    let outcomes: Vec<(&str, i64)> = attempts
        .iter()
        .map(|a| {
            (
                a["outcome"].as_str().unwrap(),
                a["attempt"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [("delivered", 3), ("failed", 2), ("error", 1)],
        "{attempts:?}"
    );
    assert_eq!(attempts[1]["status_code"], 503);
    rx.stop();
}

/// Wait until the delivery log of `hook` holds `n` attempts. An attempt
/// reaches the receiver before its outcome is written, and the next one is
/// scheduled from the clock at that moment: a test that moves the manual
/// clock in between schedules the retry past its own advance (on a loaded
/// CI machine it then waited for an attempt that was never due).
async fn logged(app: &TestApp, hook: &str, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while log(app, hook).await.len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "attempt {n} of {hook} never logged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn log(app: &TestApp, hook: &str) -> Vec<Value> {
    let (_, v) = app
        .json(
            Method::GET,
            &format!("/admin/v1/webhooks/{hook}/deliveries"),
            Some(&app.admin),
            None,
        )
        .await;
    v["deliveries"].as_array().unwrap().clone()
}

/// Rotation: for the overlap both secrets sign; after it only the new one.
async fn rotated_secrets_both_sign_during_the_overlap(backend: Backend) {
    let app = app(backend, |_| {}).await;
    let rx = Receiver::start().await;
    let (hook, old) = create(&app, &rx.url(), json!(["*"])).await;
    let _stop = deliver(&app.state);
    let (s, v) = app
        .json(
            Method::POST,
            &format!("/admin/v1/webhooks/{hook}/rotate-secret"),
            Some(&app.admin),
            Some(json!({"overlap": "1h"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let new = v["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let ping = || async {
        let (s, _) = app
            .json(
                Method::POST,
                &format!("/admin/v1/webhooks/{hook}/test"),
                Some(&app.admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
    };
    ping().await;
    until("the ping", Duration::from_secs(20), || rx.all().len() == 1).await;
    let g = &rx.all()[0];
    assert!(signed_with(g, &old) && signed_with(g, &new));
    assert_eq!(g.header("x-nightlatch-signature").matches("v1=").count(), 2);
    app.clock.advance_ms(3_600_001);
    ping().await;
    until("the second ping", Duration::from_secs(20), || {
        rx.all().len() == 2
    })
    .await;
    let g = &rx.all()[1];
    assert!(signed_with(g, &new) && !signed_with(g, &old));
    rx.stop();
}

both_backends!(
    every_event_type_is_delivered_signed,
    a_receiver_down_then_up_gets_the_same_event,
    rotated_secrets_both_sign_during_the_overlap,
);

/// The events waiting for delivery, in the order they were written: (type,
/// body) of every due delivery, claimed here without sending (no receiver).
async fn outbox(app: &TestApp) -> Vec<(String, Value)> {
    let now = update_server::clock::Clock::now_ms(app.clock.as_ref());
    let mut due = app
        .state
        .store
        .claim_deliveries(now, 60_000, 1000)
        .await
        .unwrap();
    due.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    due.into_iter()
        .map(|d| (d.event_type, serde_json::from_str(&d.body).unwrap()))
        .collect()
}

/// A draft rollout is `rollout.created` (started: false) and nothing more;
/// starting it later is `rollout.started`, each written with its change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_rollout_is_created_then_started() {
    let app = app(Backend::Embedded, |_| {}).await;
    publish_model(&app, "nl-draft").await;
    create(&app, "http://127.0.0.1:9/hook", json!(["rollout.*"])).await;
    let id = app
        .rollout(json!({"name": "draft", "target": "nl-draft/2.0.0.nlfw"}))
        .await;
    let events = outbox(&app).await;
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["rollout.created"], "{events:?}");
    assert_eq!(events[0].1["data"]["started"], false, "{events:?}");
    assert_eq!(events[0].1["data"]["rollout_id"], id.as_str(), "{events:?}");
    act(&app, &id, "start").await;
    let events = outbox(&app).await;
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["rollout.started"], "{events:?}");
    assert_eq!(events[0].1["data"]["rollout_id"], id.as_str(), "{events:?}");
}

/// `recover-admin --revoke-security-admins` (the real binary, on the
/// server's data directory): `token.created` for the recovery token and
/// `token.revoked` for each token it revoked, as any revocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_admin_is_token_created_and_token_revoked() {
    let app = app(Backend::Embedded, |_| {}).await;
    create(&app, "http://127.0.0.1:9/hook", json!(["token.*"])).await;
    let (_, me) = app
        .json(Method::GET, "/admin/v1/whoami", Some(&app.admin), None)
        .await;
    let boot_id = me["id"].as_str().unwrap().to_owned();
    let out = app.recover_admin(&["--revoke-security-admins".as_ref()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = outbox(&app).await;
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["token.created", "token.revoked"], "{events:?}");
    assert_eq!(events[0].1["data"]["recovered"], true);
    assert_eq!(events[0].1["data"]["role"], "security-admin");
    assert_eq!(events[1].1["data"]["token_id"], boot_id.as_str());
    assert_eq!(events[1].1["data"]["by"], events[0].1["data"]["by"]);
}

/// A receiver that always fails: the retries wait longer each time, up to
/// the cap, and after `max_attempts` the delivery is given up — no more
/// attempts however long the clock runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_back_off_and_give_up_after_max_attempts() {
    let app = app(Backend::Embedded, |c| {
        c.webhooks.retry_backoff = Duration::from_secs(10);
        c.webhooks.retry_backoff_cap = Duration::from_secs(40);
        c.webhooks.max_attempts = 4;
    })
    .await;
    let rx = Receiver::start().await;
    rx.status.store(500, Ordering::SeqCst);
    let (hook, _) = create(&app, &rx.url(), json!(["token.*"])).await;
    let _stop = deliver(&app.state);
    app.token("viewer").await;
    until("the first attempt", Duration::from_secs(20), || {
        rx.all().len() == 1
    })
    .await;
    logged(&app, &hook, 1).await;
    // Attempt n+1 waits 10 s · 2^(n-1), capped at 40 s, plus up to a
    // quarter: 10–12.5 s, 20–25 s, 40–50 s. Just short of each wait
    // nothing comes; at its end plus the jitter the next attempt does.
    for (n, wait) in [(2, 10_000), (3, 20_000), (4, 40_000)] {
        app.clock.advance_ms(wait - 1_000);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(rx.all().len(), n - 1, "attempt {n} came before its backoff");
        app.clock.advance_ms(wait / 4 + 1_000);
        until("the next attempt", Duration::from_secs(20), || {
            rx.all().len() == n
        })
        .await;
        logged(&app, &hook, n).await;
    }
    // Given up: nothing more, even an hour later.
    app.clock.advance_ms(3_600_000);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rx.all().len(), 4);
    let attempts = log(&app, &hook).await;
    let numbers: Vec<i64> = attempts
        .iter()
        .map(|a| a["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [4, 3, 2, 1], "{attempts:?}");
    assert!(
        attempts
            .iter()
            .all(|a| a["outcome"] == "failed" && a["status_code"] == 500)
    );
    assert_eq!(app.state.store.pending_deliveries().await.unwrap(), 0);
    rx.stop();
}

/// A replica whose claim ran out (a slow batch) and another replica that
/// claimed the delivery since: the first one's attempt is logged but does
/// not move the delivery on (it stays the second one's to finish), so the
/// delivery is not reset for a third claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_after_the_claim_ran_out_leaves_the_delivery_to_the_new_claim() {
    use update_server::store::webhooks::{AfterAttempt, Attempt, RetryRules};
    let app = app(Backend::Embedded, |_| {}).await;
    let (hook, _) = create(&app, "http://127.0.0.1:9/hook", json!(["token.*"])).await;
    app.token("viewer").await;
    let store = &app.state.store;
    let now = update_server::clock::Clock::now_ms(app.clock.as_ref());
    let first = store.claim_deliveries(now, 30_000, 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        store
            .claim_deliveries(now + 1_000, 30_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The lease ran out: another replica claims it.
    let second = store
        .claim_deliveries(now + 31_000, 30_000, 10)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    let rules = RetryRules {
        backoff_ms: 5_000,
        backoff_cap_ms: 60_000,
        max_attempts: 20,
        disable_after: 50,
    };
    let failed = Attempt {
        status_code: Some(503),
        latency_ms: 30_500,
        error: None,
    };
    let late = store
        .record_attempt(&first[0], &failed, &rules, now + 31_500)
        .await
        .unwrap();
    assert_eq!(late.0, AfterAttempt::Superseded);
    // Still claimed by the second replica: nobody else can take it.
    assert!(
        store
            .claim_deliveries(now + 32_000, 30_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let delivered = Attempt {
        status_code: Some(200),
        latency_ms: 40,
        error: None,
    };
    let done = store
        .record_attempt(&second[0], &delivered, &rules, now + 32_000)
        .await
        .unwrap();
    assert_eq!(done.0, AfterAttempt::Delivered);
    assert_eq!(store.pending_deliveries().await.unwrap(), 0);
    // Both attempts are in the log.
    assert_eq!(log(&app, &hook).await.len(), 2);
}

/// Private, loopback and link-local addresses are refused unless the
/// config allows them; only http(s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_refused() {
    let app = app(Backend::Embedded, |c| {
        c.webhooks.allow_private_addresses = false
    })
    .await;
    for (url, code) in [
        ("http://127.0.0.1:8080/hook", "private_address"),
        ("http://localhost/hook", "private_address"),
        ("http://10.0.0.7/hook", "private_address"),
        ("http://169.254.169.254/latest/meta-data", "private_address"),
        ("http://[::1]/hook", "private_address"),
        ("http://[fd00::1]/hook", "private_address"),
        ("http://100.64.1.1/hook", "private_address"),
        ("http://[::ffff:192.168.1.1]/hook", "private_address"),
        ("ftp://example.com/x", "invalid"),
        ("not a url", "invalid"),
        ("https://u:p@example.com/x", "invalid"),
    ] {
        let (s, v) = app
            .json(
                Method::POST,
                "/admin/v1/webhooks",
                Some(&app.admin),
                Some(json!({"url": url})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {v}");
        assert_eq!(v["error"], code, "{url}: {v}");
    }
    let (s, v) = app
        .json(
            Method::POST,
            "/admin/v1/webhooks",
            Some(&app.admin),
            Some(json!({"url": "https://93.184.216.34/hook", "events": ["rollout.nothing"]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // Roles: an operator reads, only a security-admin changes.
    let operator = app.token("operator").await;
    let (s, _) = app
        .json(
            Method::POST,
            "/admin/v1/webhooks",
            Some(&operator),
            Some(json!({"url": "https://93.184.216.34/hook"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .json(Method::GET, "/admin/v1/webhooks", Some(&operator), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let viewer = app.token("viewer").await;
    let (s, _) = app
        .json(Method::GET, "/admin/v1/webhooks", Some(&viewer), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

/// A run of failures disables the subscription; the others get
/// `webhook.disabled`, the metric counts it, enable brings it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_failures_disables_the_subscription() {
    let app = app(Backend::Embedded, |c| {
        c.webhooks.disable_after_failures = 3;
        c.webhooks.retry_backoff = Duration::from_secs(1);
    })
    .await;
    let good = Receiver::start().await;
    let bad = Receiver::start().await;
    bad.status.store(500, Ordering::SeqCst);
    let (_, secret) = create(&app, &good.url(), json!(["webhook.disabled"])).await;
    let (bad_id, _) = create(&app, &bad.url(), json!(["token.created"])).await;
    let _stop = deliver(&app.state);
    app.token("viewer").await;
    for n in 1..=3 {
        until("a failed attempt", Duration::from_secs(20), || {
            bad.all().len() >= n
        })
        .await;
        logged(&app, &bad_id, n).await;
        app.clock.advance_ms(10_000);
    }
    until("webhook.disabled", Duration::from_secs(20), || {
        !good.all().is_empty()
    })
    .await;
    let g = &good.all()[0];
    assert!(signed_with(g, &secret));
    let v = g.json();
    assert_eq!(v["type"], "webhook.disabled");
    assert_eq!(v["data"]["webhook_id"], bad_id.as_str());
    assert_eq!(v["data"]["consecutive_failures"], 3);
    let (_, w) = app
        .json(
            Method::GET,
            &format!("/admin/v1/webhooks/{bad_id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(w["enabled"], false);
    assert!(w["disabled_reason"].as_str().unwrap().contains("HTTP 500"));
    assert_eq!(w["stats"]["pending"], 1, "kept for when it is enabled");
    let (_, _, metrics) = app.call(Method::GET, "/metrics", None, &[], "").await;
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("nightlatch_webhooks_disabled_total 1"),
        "{metrics}"
    );
    // No more attempts while disabled; enable, and the pending one goes.
    app.clock.advance_ms(120_000);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(bad.all().len(), 3);
    bad.status.store(200, Ordering::SeqCst);
    let (s, w) = app
        .json(
            Method::POST,
            &format!("/admin/v1/webhooks/{bad_id}/enable"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{w}");
    assert_eq!(w["enabled"], true);
    until(
        "the delivery after enabling",
        Duration::from_secs(20),
        || bad.all().len() == 4,
    )
    .await;
    good.stop();
    bad.stop();
}

/// Two replicas on one PostgreSQL database both deliver: every event
/// reaches the receiver exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_deliver_each_event_once() {
    let app = app(Backend::PostgresS3, |_| {}).await;
    let replica = app.replica().await;
    let rx = Receiver::start().await;
    let (_, secret) = create(&app, &rx.url(), json!(["*"])).await;
    let _a = deliver(&app.state);
    let _b = deliver(&replica);
    // 200 events from both replicas' sides (test pings through each).
    let router_b = update_server::router(replica.clone());
    let (s, v) = app
        .json(Method::GET, "/admin/v1/webhooks", Some(&app.admin), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let hook = v["webhooks"][0]["id"].as_str().unwrap().to_owned();
    let n = 200;
    for i in 0..n {
        let path = format!("/admin/v1/webhooks/{hook}/test");
        let (s, _, _) = if i % 2 == 0 {
            app.call(Method::POST, &path, Some(&app.admin), &[], "")
                .await
        } else {
            crate::support::call(&router_b, Method::POST, &path, Some(&app.admin), &[], "").await
        };
        assert_eq!(s, StatusCode::ACCEPTED);
    }
    until("every event", Duration::from_secs(60), || {
        rx.all().len() >= n
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let all = rx.all();
    let ids: HashSet<String> = all
        .iter()
        .map(|g| g.header("x-nightlatch-delivery"))
        .collect();
    assert_eq!(ids.len(), n, "every event delivered");
    assert_eq!(all.len(), n, "no event delivered twice");
    assert!(all.iter().all(|g| signed_with(g, &secret)));
    rx.stop();
}

/// `kill -9` with deliveries pending and in flight: after the restart every
/// event is delivered (at least once; a delivery in flight at the kill may
/// come twice, with the same id), none is lost. The real binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_deliveries_pending_loses_no_event() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        "[webhooks]\nallow_private_addresses = true\nconcurrency = 4\nclaim_lease = \"2s\"\nrequest_timeout = \"1s\"\nretry_backoff = \"1s\"\nretry_backoff_cap = \"2s\"\npoll_interval = \"100ms\"\n",
    )
    .unwrap();
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_nightlatch-server"))
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--config")
            .arg(&config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("NIGHTLATCH_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nightlatch-server")
    };
    let client = reqwest::Client::new();
    let ready = |client: reqwest::Client, base: String| async move {
        for _ in 0..300 {
            if let Ok(r) = client.get(format!("{base}/readyz")).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("server never became ready");
    };
    let mut server = start();
    ready(client.clone(), base.clone()).await;
    let token = std::fs::read_to_string(dir.path().join("admin-token"))
        .unwrap()
        .trim()
        .to_owned();
    // A slow receiver: each answer takes 300 ms, four at a time.
    let rx = Receiver::start().await;
    rx.delay_ms.store(300, Ordering::SeqCst);
    let r = client
        .post(format!("{base}/admin/v1/webhooks"))
        .bearer_auth(&token)
        .json(&json!({"url": rx.url()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let w: Value = r.json().await.unwrap();
    let (hook, secret) = (
        w["id"].as_str().unwrap().to_owned(),
        w["secret"].as_str().unwrap().to_owned(),
    );
    let n = 40;
    let mut ids = HashSet::new();
    for _ in 0..n {
        let r = client
            .post(format!("{base}/admin/v1/webhooks/{hook}/test"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let v: Value = r.json().await.unwrap();
        ids.insert(v["event_id"].as_str().unwrap().to_owned());
    }
    // Some delivered, more in flight, most pending: kill -9.
    until("the first deliveries", Duration::from_secs(20), || {
        rx.all().len() >= 4
    })
    .await;
    server.kill().unwrap();
    server.wait().unwrap();
    let before = rx.all().len();
    assert!(before < n, "all delivered before the kill ({before})");
    let mut server = start();
    ready(client.clone(), base.clone()).await;
    until(
        "every event after the restart",
        Duration::from_secs(60),
        || {
            let got: HashSet<String> = rx
                .all()
                .iter()
                .map(|g| g.header("x-nightlatch-delivery"))
                .collect();
            got == ids
        },
    )
    .await;
    let all = rx.all();
    assert!(all.iter().all(|g| signed_with(g, &secret)));
    let duplicates = all.len() - ids.len();
    assert!(
        duplicates <= 4,
        "only deliveries in flight at the kill may come twice ({duplicates})"
    );
    server.kill().unwrap();
    server.wait().unwrap();
    rx.stop();
}
