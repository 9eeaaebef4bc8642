//! What a client without a token (or a lock with a hostile idea) must not be
//! able to do to the server: grow its memory through metric labels, starve
//! it with slow connections, have one signed check-in counted twice, or get
//! a signature accepted in a batch that a lone check refuses.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use bytes::Bytes;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use ed25519_dalek::Signature;
use serde_json::json;
use sha2::{Digest, Sha512};
use update_server::checkin::Submission;
use update_server::config::Config;
use update_server::wire::{checkin_message, signature_header};

use crate::support::{Backend, Lock, TestApp, call, free_port, ids};

const MODEL: &str = "nl-lock-v2";
const TARGET: &str = "nl-lock-v2/2.0.0.nlfw";

// ---------------------------------------------------------------------------
// A signed check-in counts once.

/// A server with 1.0.0 and 2.0.0 published and a rollout of 2.0.0 to
/// everyone; `trial` locks assigned it, `background` locks checked in once.
async fn rollout_app(
    backend: Backend,
    trial: usize,
    background: usize,
) -> (TestApp, String, Vec<Lock>, Vec<Lock>) {
    let app = TestApp::with(backend).await;
    let v1: Vec<u8> = (0..8_000u32).map(|i| (i % 251) as u8).collect();
    let mut v2 = v1.clone();
    v2[100..200].fill(7);
    let e1 = app.envelope(MODEL, "1.0.0", 1, &v1);
    let e2 = app.envelope(MODEL, "2.0.0", 2, &v2);
    app.publish(&[e1, e2]).await;
    let mut trials = app.register(&ids("dup", trial), MODEL, &[]).await;
    let mut others = app.register(&ids("bg", background), MODEL, &[]).await;
    let rollout = app
        .rollout(json!({"name": "dup", "target": TARGET, "start": true}))
        .await;
    for r in app.check_in_all(&mut trials, 64).await {
        r.unwrap();
    }
    for r in app.check_in_all(&mut others, 64).await {
        r.unwrap();
    }
    for l in &trials {
        assert_eq!(l.assigned().as_deref(), Some(TARGET), "{}", l.id);
    }
    (app, rollout, trials, others)
}

async fn http_check_in(router: &axum::Router, s: &Submission) -> StatusCode {
    let sig = s.signature.clone().unwrap();
    call(
        router,
        Method::POST,
        &format!("/v1/devices/{}/check-in", s.path_id),
        None,
        &[
            ("content-type", "application/json"),
            ("nightlatch-signature", sig.as_str()),
        ],
        s.body.clone(),
    )
    .await
    .0
}

/// 125 locks each report a confirmed install once, signed once, and that
/// one signed check-in is sent 8 times at once (1,000 sends), while other
/// locks keep checking in: each is accepted exactly once, its outcome is
/// counted once, its history has it once. On PostgreSQL the copies go to
/// two replicas.
async fn a_signed_check_in_counts_once(backend: Backend) {
    const TRIALS: usize = 125;
    const COPIES: usize = 8;
    let (app, rollout, mut trials, mut others) = rollout_app(backend, TRIALS, 200).await;
    let mut routers = vec![app.router.clone()];
    if backend == Backend::PostgresS3 {
        routers.push(update_server::router(app.replica().await));
    }
    // Background load: the other locks check in over HTTP all along.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let router = app.router.clone();
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut set = tokio::task::JoinSet::new();
                for l in others.iter_mut().take(32) {
                    let s = l.submission();
                    let router = router.clone();
                    set.spawn(async move { http_check_in(&router, &s).await });
                }
                while let Some(r) = set.join_next().await {
                    assert_eq!(r.unwrap(), StatusCode::OK);
                    n += 1;
                }
                others.rotate_left(32);
            }
            n
        })
    };
    let mut accepted_total = 0;
    for lock in &mut trials {
        lock.install(TARGET, "2.0.0");
        let s = lock.submission();
        let mut set = tokio::task::JoinSet::new();
        for copy in 0..COPIES {
            let router = routers[copy % routers.len()].clone();
            let s = s.clone();
            set.spawn(async move { http_check_in(&router, &s).await });
        }
        let mut statuses = Vec::new();
        while let Some(r) = set.join_next().await {
            statuses.push(r.unwrap());
        }
        let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(ok, 1, "{}: {statuses:?}", lock.id);
        assert!(
            statuses
                .iter()
                .all(|s| *s == StatusCode::OK || *s == StatusCode::CONFLICT),
            "{statuses:?}"
        );
        accepted_total += ok;
    }
    stop.store(true, Ordering::Relaxed);
    let background = load.await.unwrap();
    assert!(background > 0);
    assert_eq!(accepted_total, TRIALS);

    // Rollout counts: one success per lock.
    let (s, v) = app
        .json(
            Method::GET,
            &format!("/admin/v1/rollouts/{rollout}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["successes"], TRIALS as i64, "{v}");
    assert_eq!(v["failures"], 0, "{v}");
    assert_eq!(v["waves"][0]["devices"]["confirmed"], TRIALS as i64, "{v}");
    // History: the report recorded once per lock.
    for lock in &trials {
        let (s, h) = app
            .json(
                Method::GET,
                &format!("/admin/v1/devices/{}/history", lock.id),
                Some(&app.admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{h}");
        let reports = h["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "update_result")
            .count();
        assert_eq!(reports, 1, "{}: {h}", lock.id);
        let (_, d) = app
            .json(
                Method::GET,
                &format!("/admin/v1/devices/{}", lock.id),
                Some(&app.admin),
                None,
            )
            .await;
        assert_eq!(d["last_counter"], lock.counter, "{d}");
    }
}

crate::both_backends!(a_signed_check_in_counts_once);

// ---------------------------------------------------------------------------
// Batch verification never accepts what strict verification refuses.

/// A signature by `lock`'s own key over `body` whose R carries a point of
/// order 4: it satisfies the cofactored equation, not the strict one.
fn torsion_signature(lock: &Lock, body: &[u8], attempt: u64) -> Signature {
    let a = lock.key.to_scalar();
    let a_pub = lock.key.verifying_key().to_bytes();
    let msg = checkin_message(body);
    // Order-4 point (x = sqrt(-1), y = 0).
    let t: EdwardsPoint = CompressedEdwardsY([0u8; 32]).decompress().unwrap();
    assert!(t.is_small_order() && !t.is_identity_point());
    let r = Scalar::from_bytes_mod_order_wide(
        &Sha512::digest([&attempt.to_le_bytes()[..], body].concat()).into(),
    );
    let big_r = EdwardsPoint::mul_base(&r) + t;
    let r_bytes = big_r.compress().to_bytes();
    let k = Scalar::from_bytes_mod_order_wide(
        &Sha512::new()
            .chain_update(r_bytes)
            .chain_update(a_pub)
            .chain_update(&msg)
            .finalize()
            .into(),
    );
    let s = r + k * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r_bytes);
    sig[32..].copy_from_slice(&s.to_bytes());
    Signature::from_bytes(&sig)
}

trait IsIdentity {
    fn is_identity_point(&self) -> bool;
}

impl IsIdentity for EdwardsPoint {
    fn is_identity_point(&self) -> bool {
        *self == EdwardsPoint::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_refused_alone_is_refused_in_a_batch() {
    let app = TestApp::new().await;
    let mut locks = app.register(&ids("tor", 5), MODEL, &[]).await;
    // The crafted signature really is what the cofactored check accepts and
    // the strict one refuses.
    let body = locks[0].body();
    let sig = torsion_signature(&locks[0], &body, 0);
    let vk = locks[0].key.verifying_key();
    assert!(vk.verify_strict(&checkin_message(&body), &sig).is_err());
    // Alone: refused.
    let alone = Submission {
        path_id: locks[0].id.clone(),
        signature: Some(signature_header(&sig)),
        body: Bytes::from(body),
    };
    let r = app.state.pipeline.process(vec![alone]).await;
    assert_eq!(r[0].as_ref().unwrap_err().code(), "bad_signature");
    // In batches with four good check-ins, 40 times (a batch equation with
    // random 128-bit weights lets it through whenever the weight is a
    // multiple of 4: about 1 in 4 tries).
    for attempt in 1..=40u64 {
        let body = locks[0].body();
        let sig = torsion_signature(&locks[0], &body, attempt);
        let mut batch = vec![Submission {
            path_id: locks[0].id.clone(),
            signature: Some(signature_header(&sig)),
            body: Bytes::from(body),
        }];
        for l in &mut locks[1..] {
            batch.push(l.submission());
        }
        let results = app.state.pipeline.process(batch).await;
        match &results[0] {
            Err(e) => assert_eq!(e.code(), "bad_signature"),
            Ok(_) => panic!("attempt {attempt}: the crafted signature was accepted in a batch"),
        }
        for r in &results[1..] {
            assert!(r.is_ok(), "{r:?}");
        }
        // The good locks' responses are not checked here; keep their
        // counters in step with what the server accepted.
    }
}

// ---------------------------------------------------------------------------
// Metric labels come from a fixed set.

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// One raw HTTP/1.1 exchange on a fresh connection; the response text.
fn raw(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

struct ServerProcess {
    child: std::process::Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(config: &str) -> ServerProcess {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("server.toml");
    std::fs::write(&cfg, config).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_nightlatch-server"))
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--config")
        .arg(&cfg)
        .env("NIGHTLATCH_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let p = ServerProcess {
        child,
        addr,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if TcpStream::connect(addr).is_ok()
            && raw(
                addr,
                "GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            )
            .starts_with("HTTP/1.1 200")
        {
            return p;
        }
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn metric_series(metrics: &str, name: &str) -> usize {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .count()
}

/// 10,000 requests with made-up methods (as anyone can send) add no metric
/// series and leave the server's memory where it was.
#[test]
fn made_up_methods_do_not_grow_the_metrics() {
    let server = start_server("[http]\npublic_rate = 100000\npublic_burst = 100000\n");
    let get_metrics = || {
        raw(
            server.addr,
            "GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
    };
    let before = metric_series(&get_metrics(), "nightlatch_http_requests_total");
    let rss_before = rss_kib(server.child.id());
    // Keep-alive connections, 1,000 requests each.
    for c in 0..10 {
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut batch = String::new();
        for i in 0..1000 {
            batch.push_str(&format!(
                "X{c}M{i:04}Z /healthz HTTP/1.1\r\nhost: x\r\n{}\r\n",
                if i == 999 {
                    "connection: close\r\n"
                } else {
                    ""
                }
            ));
        }
        s.write_all(batch.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let answered = String::from_utf8_lossy(&out).matches("HTTP/1.1 ").count();
        assert_eq!(answered, 1000, "connection {c}");
    }
    let text = get_metrics();
    let after = metric_series(&text, "nightlatch_http_requests_total");
    let rss_after = rss_kib(server.child.id());
    println!(
        "series {before} -> {after}; RSS {rss_before} -> {rss_after} KiB; /metrics {} bytes",
        text.len()
    );
    assert!(after <= before + 4, "series grew from {before} to {after}");
    assert!(
        text.contains("method=\"other\""),
        "unknown methods are counted as other"
    );
    assert!(text.len() < 64 * 1024, "/metrics is {} bytes", text.len());
    assert!(
        rss_after < rss_before + 16 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
}

// ---------------------------------------------------------------------------
// Slow clients.

/// A connection from `from` (a loopback address) to `to` that sends half a
/// request header and stops.
fn slow_connection(from: IpAddr, to: SocketAddr) -> std::io::Result<std::net::TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(from, 0).into())?;
    socket.connect(&to.into())?;
    let mut s: std::net::TcpStream = socket.into();
    s.write_all(b"GET /readyz HTTP/1.1\r\nhost: nightlatch\r\nx-slow: ")?;
    Ok(s)
}

/// `app` served by the real accept loop (`server::run`: limits, timeouts,
/// the peer address) on a loopback port, until [`Served::stop`].
struct Served {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Served {
    async fn start(app: &TestApp) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(update_server::server::run(
            app.state.clone(),
            listener,
            async move {
                let _ = stop_rx.await;
            },
        ));
        Self { addr, stop, task }
    }

    /// Stop accepting, and check the loop ended cleanly.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// More half-header connections from one address than the per-client limit:
/// the excess is refused with a 503 at once, the rest are closed after the
/// header-read timeout, and meanwhile `/readyz` and a signed check-in from
/// another address answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_cannot_starve_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_data_dir(dir.path());
    config.http.header_read_timeout = Duration::from_secs(2);
    config.http.max_connections_per_client = 100;
    config.http.max_connections = 400;
    let app = TestApp::start(dir, config).await;
    let mut locks = app.register(&ids("slow", 1), MODEL, &[]).await;
    let served = Served::start(&app).await;
    let addr = served.addr;

    let attacker: IpAddr = "127.0.0.2".parse().unwrap();
    let slow: Vec<std::net::TcpStream> = tokio::task::spawn_blocking(move || {
        (0..300)
            .map(|_| slow_connection(attacker, addr).unwrap())
            .collect()
    })
    .await
    .unwrap();
    // The excess (200 of 300) gets a 503 and is closed.
    let (refused, held) = tokio::task::spawn_blocking(move || {
        let mut refused = 0;
        let mut held = Vec::new();
        for mut s in slow {
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let mut buf = [0u8; 512];
            match s.read(&mut buf) {
                Ok(n) if n > 0 => {
                    let text = String::from_utf8_lossy(&buf[..n]);
                    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
                    assert!(text.contains("too_many_client_connections"), "{text}");
                    refused += 1;
                }
                _ => held.push(s),
            }
        }
        (refused, held)
    })
    .await
    .unwrap();
    assert_eq!(refused, 200);
    assert_eq!(held.len(), 100);

    // Meanwhile the server answers everyone else.
    let client = reqwest::Client::new();
    let t = Instant::now();
    let ready = client
        .get(format!("http://{addr}/readyz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), reqwest::StatusCode::OK);
    let s = locks[0].submission();
    let r = client
        .post(format!("http://{addr}/v1/devices/{}/check-in", s.path_id))
        .header("content-type", "application/json")
        .header("nightlatch-signature", s.signature.clone().unwrap())
        .body(s.body.clone())
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    println!("readyz and a check-in answered in {:?}", t.elapsed());

    // The held ones are closed once the header timeout passes.
    let closed = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(6);
        let mut closed = 0;
        for mut s in held {
            let left = deadline.saturating_duration_since(Instant::now());
            s.set_read_timeout(Some(left.max(Duration::from_millis(10))))
                .unwrap();
            let mut buf = [0u8; 64];
            // EOF, or a reset: either way the server let go.
            if matches!(s.read(&mut buf), Ok(0) | Err(_)) && Instant::now() < deadline {
                closed += 1;
            }
        }
        closed
    })
    .await
    .unwrap();
    assert_eq!(
        closed, 100,
        "slow connections still open after the header timeout"
    );

    let (_, _, m) = app.call(Method::GET, "/metrics", None, &[], "").await;
    let m = String::from_utf8_lossy(&m).into_owned();
    assert!(
        m.contains("nightlatch_http_refused_total{reason=\"client_connection_limit\"} 200"),
        "{m}"
    );
    served.stop().await;
}

/// One keep-alive request on `s` and its answer: status line and body.
fn keep_alive_get(s: &mut std::net::TcpStream, path: &str) -> std::io::Result<(String, String)> {
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: nightlatch\r\n\r\n").as_bytes())?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    s.read_exact(&mut body)?;
    let status = head.lines().next().unwrap_or_default().to_owned();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The first-request deadline closes a connection that has not sent a
/// request in time, never one in use: a keep-alive connection that keeps
/// sending requests is served for several times the header-read timeout,
/// and once it falls idle it is closed after about that timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_keep_alive_connection_outlives_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_data_dir(dir.path());
    config.http.header_read_timeout = Duration::from_secs(1);
    let app = TestApp::start(dir, config).await;
    let served = Served::start(&app).await;
    let addr = served.addr;
    let (answered, idle_closed_after) = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let start = Instant::now();
        let mut answered = 0;
        while start.elapsed() < Duration::from_millis(3500) {
            let (status, _) = keep_alive_get(&mut s, "/readyz").unwrap_or_else(|e| {
                panic!("request {} at {:?}: {e}", answered + 1, start.elapsed())
            });
            assert!(status.starts_with("HTTP/1.1 200"), "{status}");
            answered += 1;
            std::thread::sleep(Duration::from_millis(250));
        }
        // Now idle: the server lets go after about the header-read timeout.
        let idle = Instant::now();
        let mut buf = [0u8; 16];
        let closed = matches!(s.read(&mut buf), Ok(0) | Err(_));
        assert!(closed, "an idle connection got bytes");
        (answered, idle.elapsed())
    })
    .await
    .unwrap();
    assert!(answered >= 10, "{answered} requests answered");
    assert!(
        idle_closed_after < Duration::from_secs(4),
        "idle connection closed after {idle_closed_after:?}"
    );
    served.stop().await;
}

/// A client sending check-ins for locks that do not exist is cut off after
/// its refusal budget (429 before any work); another client is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_check_ins_exhaust_only_their_own_budget() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_data_dir(dir.path());
    config.http.refusal_rate = 1;
    config.http.refusal_burst = 20;
    let app = TestApp::start(dir, config).await;
    let mut locks = app.register(&ids("budget", 1), MODEL, &[]).await;
    let served = Served::start(&app).await;
    let addr = served.addr;
    let attacker = reqwest::Client::builder()
        .local_address("127.0.0.3".parse::<IpAddr>().unwrap())
        .build()
        .unwrap();
    let mut statuses = Vec::new();
    for i in 0..60 {
        let mut ghost = Lock::new(&format!("ghost-{i}"), MODEL);
        let s = ghost.submission();
        let r = attacker
            .post(format!("http://{addr}/v1/devices/{}/check-in", s.path_id))
            .header("content-type", "application/json")
            .header("nightlatch-signature", s.signature.clone().unwrap())
            .body(s.body.clone())
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    let unknown = statuses.iter().filter(|s| **s == 404).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!((20..=23).contains(&unknown), "{statuses:?}");
    assert_eq!(unknown + limited, 60, "{statuses:?}");
    // A lock from another address checks in as usual.
    let s = locks[0].submission();
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/v1/devices/{}/check-in", s.path_id))
        .header("content-type", "application/json")
        .header("nightlatch-signature", s.signature.clone().unwrap())
        .body(s.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    served.stop().await;
    let seen: HashSet<u16> = statuses.into_iter().collect();
    assert_eq!(seen, HashSet::from([404, 429]));
}

/// The console's cookie is `Secure` when a proxy listed in
/// `http.trusted_proxies` says the client came over HTTPS — and only then:
/// the same header from any other peer is dropped before the console reads
/// it (a client cannot claim HTTPS, nor make a plain-HTTP deployment set
/// cookies its browser will not send back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_scheme_counts_only_from_a_trusted_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_data_dir(dir.path());
    let proxy: IpAddr = "127.0.0.4".parse().unwrap();
    config.http.trusted_proxies = vec![proxy];
    let app = TestApp::start(dir, config).await;
    let served = Served::start(&app).await;
    let addr = served.addr;
    let cookie_from = |from: &str, proto: Option<&str>| {
        let client = reqwest::Client::builder()
            .local_address(from.parse::<IpAddr>().unwrap())
            .build()
            .unwrap();
        let mut req = client.get(format!("http://{addr}/console/login"));
        if let Some(p) = proto {
            req = req.header("x-forwarded-proto", p);
        }
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), reqwest::StatusCode::OK);
            r.headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    let trusted = cookie_from("127.0.0.4", Some("https")).await;
    assert!(trusted.contains("; Secure"), "{trusted}");
    assert!(trusted.contains("HttpOnly; SameSite=Strict"), "{trusted}");
    let plain_proxy = cookie_from("127.0.0.4", Some("http")).await;
    assert!(!plain_proxy.contains("Secure"), "{plain_proxy}");
    let spoofed = cookie_from("127.0.0.5", Some("https")).await;
    assert!(
        !spoofed.contains("Secure"),
        "a client's own claim counted: {spoofed}"
    );
    let direct = cookie_from("127.0.0.1", None).await;
    assert!(!direct.contains("Secure"), "{direct}");
    served.stop().await;
}

// ---------------------------------------------------------------------------
// Data at rest.

/// The data directory is 0700 and the database with its WAL 0600, also when
/// an older version left them readable to others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_and_data_directory_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    // As an older version left it: everything world-readable.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = dir.path().join("fleet.sqlite");
    std::fs::File::create(&db).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = Config::for_data_dir(dir.path());
    let app = TestApp::start(dir, config).await;
    // A write, so the WAL exists.
    app.register(&ids("perm", 3), MODEL, &[]).await;
    let data = app.dir.path();
    assert_eq!(mode(data), 0o700, "data directory");
    assert_eq!(mode(&data.join("fleet.sqlite")), 0o600, "database");
    let wal = data.join("fleet.sqlite-wal");
    assert!(wal.exists());
    assert_eq!(mode(&wal), 0o600, "WAL");
    let shm = data.join("fleet.sqlite-shm");
    if shm.exists() {
        assert_eq!(mode(&shm), 0o600, "shared memory file");
    }
    assert_eq!(mode(&data.join("admin-token")), 0o600, "admin token");
}
