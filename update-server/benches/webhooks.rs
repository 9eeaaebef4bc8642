//! Webhook benchmark (issue 15): what writing events costs the change that
//! causes them, and how fast one replica delivers. Prints figures; gates
//! nothing.
//!
//! ```sh
//! bash .ci/services start                               # PostgreSQL (for `postgres`)
//! cargo bench -p update-server --bench webhooks         # both backends
//! cargo bench -p update-server --bench webhooks -- sqlite
//! ```
//!
//! Per backend, on a fresh data directory (SQLite) or a fresh schema
//! (PostgreSQL, `NIGHTLATCH_TEST_PG_URL`, default
//! `postgres://nightlatch@127.0.0.1:55432/nightlatch`):
//!
//! 1. **Added latency**: 500 admin token creations through the real router
//!    (each is one transaction: the token, its audit entry and — with
//!    subscriptions — its `token.created` event and one delivery row per
//!    subscription), with 0, 1 and 10 subscriptions and no delivery
//!    running; p50 and p99 in ms, and the difference to 0 subscriptions.
//! 2. **Delivery rate**: 5,000 events written to one subscription, then the
//!    delivery loop (`webhooks.concurrency` 16) started against a loopback
//!    receiver that answers 200 at once; events delivered per second until
//!    the last one (each is a claim, a signed POST, and a logged attempt).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use tower::ServiceExt;
use update_server::AppState;
use update_server::clock::{Clock, ManualClock};
use update_server::config::Config;
use update_server::webhooks::Event;

const DEFAULT_PG_URL: &str = "postgres://nightlatch@127.0.0.1:55432/nightlatch";
const T0: i64 = 1_893_456_000_000;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let want = |b: &str| args.is_empty() || args.iter().any(|a| a == b);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        if want("sqlite") {
            run("SQLite", None).await?;
        }
        if want("postgres") {
            run("PostgreSQL", Some(pg_schema().await?)).await?;
        }
        Ok(())
    })
}

async fn pg_schema() -> Result<String> {
    let url = std::env::var("NIGHTLATCH_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.into());
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .with_context(|| format!("PostgreSQL at {url} (bash .ci/services start)"))?;
    let schema = format!(
        "bench_wh_{}",
        hex::encode(update_server::ids::random_bytes::<6>())
    );
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await?;
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{sep}options=-c%20search_path%3D{schema}"))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn receiver() -> Result<(String, Arc<AtomicUsize>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let got = Arc::new(AtomicUsize::new(0));
    let g = Arc::clone(&got);
    let app = axum::Router::new().fallback(move || {
        let g = Arc::clone(&g);
        async move {
            g.fetch_add(1, Ordering::Relaxed);
            StatusCode::OK
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://127.0.0.1:{port}/hook"), got))
}

async fn run(name: &str, pg: Option<String>) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::for_data_dir(dir.path());
    config.webhooks.allow_private_addresses = true;
    config.webhooks.poll_interval = Duration::from_millis(20);
    if let Some(url) = pg {
        config.database_url = url;
    }
    let clock = Arc::new(ManualClock::new(T0));
    let state = AppState::build_with_clock(
        config,
        Arc::clone(&clock) as Arc<dyn Clock>,
        Some(Arc::clone(&clock)),
    )
    .await?;
    let admin = std::fs::read_to_string(dir.path().join("admin-token"))?
        .trim()
        .to_owned();
    let router = update_server::router(state.clone());
    let call = |method: Method, path: String, body: serde_json::Value| {
        let (router, admin) = (router.clone(), admin.clone());
        async move {
            let r = router
                .oneshot(
                    Request::builder()
                        .method(method)
                        .uri(path)
                        .header("authorization", format!("Bearer {admin}"))
                        .header("content-type", "application/json")
                        .body(Body::from(body.to_string()))?,
                )
                .await?;
            anyhow::ensure!(r.status().is_success(), "HTTP {}", r.status());
            Ok::<_, anyhow::Error>(())
        }
    };
    println!("{name}:");
    let (url, got) = receiver().await?;
    let mut base = None;
    let mut subscriptions = 0;
    for target in [0, 1, 10] {
        while subscriptions < target {
            call(
                Method::POST,
                "/admin/v1/webhooks".into(),
                json!({"url": url, "events": ["token.*"]}),
            )
            .await?;
            subscriptions += 1;
        }
        let mut times = Vec::new();
        for i in 0..550 {
            let t = Instant::now();
            call(
                Method::POST,
                "/admin/v1/tokens".into(),
                json!({"name": format!("bench-{target}-{i}"), "role": "viewer"}),
            )
            .await?;
            if i >= 50 {
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        times.sort_by(f64::total_cmp);
        let (p50, p99) = (pct(&times, 0.5), pct(&times, 0.99));
        let (b50, b99) = *base.get_or_insert((p50, p99));
        println!(
            "  token creation with {target:>2} subscription(s): p50 {p50:6.2} ms, p99 {p99:6.2} ms  (added: p50 {:+.2} ms, p99 {:+.2} ms)",
            p50 - b50,
            p99 - b99
        );
    }
    // Delivery rate: a fresh subscription for every event type, the others
    // removed so that only it receives.
    for w in state.store.webhooks().await? {
        call(
            Method::DELETE,
            format!("/admin/v1/webhooks/{}", w.id),
            json!({}),
        )
        .await?;
    }
    call(
        Method::POST,
        "/admin/v1/webhooks".into(),
        json!({"url": url, "events": ["*"]}),
    )
    .await?;
    let n = 5_000;
    got.store(0, Ordering::SeqCst);
    let t = Instant::now();
    for i in 0..n {
        state
            .store
            .enqueue_event(
                &Event::new("rollout.resumed", json!({"rollout_id": format!("ro-{i}")})),
                None,
                clock.now_ms(),
            )
            .await?;
    }
    let written = t.elapsed().as_secs_f64();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let t = Instant::now();
    let task = tokio::spawn(update_server::webhooks::deliver::run(state.clone(), rx));
    while state.store.pending_deliveries().await? > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let _ = task.await;
    println!(
        "  {n} events written one transaction each in {written:.2} s ({:.0}/s); delivered in {secs:.2} s: {:.0} events/s (receiver got {})",
        n as f64 / written,
        n as f64 / secs,
        got.load(Ordering::SeqCst)
    );
    state.store.close().await;
    Ok(())
}
