//! Running the service: bind, serve (with the connection limits of
//! `[http]`, see [`crate::limits`]), background work (snapshot/timestamp
//! refresh before expiry, picking up other replicas' repository changes,
//! rollout gauges every 15 s), and graceful shutdown on SIGTERM or ctrl-c: stop
//! accepting, let in-flight requests (and their check-in batches) finish
//! within the configured timeout, close the database.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::extract::ConnectInfo;
use axum::http::HeaderValue;
use axum::http::header::CONNECTION;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

use crate::config::{Config, HttpConfig};
use crate::limits::{ConnectionLimiter, ConnectionRefusal, ConnectionSlot};
use crate::state::AppState;

/// Resolves when SIGTERM or ctrl-c arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c: shutting down"),
        () = term => tracing::info!("SIGTERM: shutting down"),
    }
}

/// Start the background tasks; they stop when `stop` changes.
pub fn spawn_background(state: &AppState, stop: watch::Receiver<bool>) {
    // Staged uploads nothing references, removed after their grace period.
    crate::repo::staging::spawn_sweeper(
        std::sync::Arc::clone(&state.repo),
        state.config.uploads.staged_grace,
        state.config.uploads.sweep_interval,
        stop.clone(),
    );
    let s = state.clone();
    let mut rx = stop.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(
            s.config
                .repo
                .refresh_interval
                .min(Duration::from_secs(3600)),
        );
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = rx.changed() => break,
            }
            match s.repo.refresh_if_due().await {
                Ok(Some(r)) => {
                    s.metrics.repo_refreshes.with_label_values(&["ok"]).inc();
                    tracing::info!(timestamp_version = r.timestamp_version, expires = %r.timestamp_expires, "repository refreshed");
                }
                Ok(None) => {}
                Err(e) => {
                    s.metrics.repo_refreshes.with_label_values(&["error"]).inc();
                    tracing::warn!(error = %e, "repository refresh failed");
                }
            }
        }
    });
    // Webhooks: events noticed from time passing, and delivery.
    tokio::spawn(crate::webhooks::watch::run(state.clone(), stop.clone()));
    if state.config.webhooks.deliver {
        tokio::spawn(crate::webhooks::deliver::run(state.clone(), stop.clone()));
    }
    let s = state.clone();
    let mut rx = stop.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(15));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = rx.changed() => break,
            }
            if let Err(e) = refresh_rollout_gauges(&s).await {
                tracing::warn!(error = %e, "rollout gauges");
            }
        }
    });
    let s = state.clone();
    let mut rx = stop;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(s.config.repo.poll_interval);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = rx.changed() => break,
            }
            match s.repo.poll().await {
                Ok(true) => tracing::info!("repository changed by another replica: reloaded"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "repository poll failed"),
            }
        }
    });
}

/// Set the per-rollout, per-wave, per-status gauges from the database.
pub async fn refresh_rollout_gauges(state: &AppState) -> anyhow::Result<()> {
    for r in state.store.live_rollouts().await? {
        let counts = state.store.wave_counts(&r.id).await?;
        for wave in 0..r.spec.waves.len() {
            for status in crate::rollouts::outcome::DeviceStatus::ALL {
                let n: i64 = counts
                    .iter()
                    .filter(|c| c.wave == wave as i64 && c.status == status.as_str())
                    .map(|c| c.count)
                    .sum();
                state
                    .metrics
                    .rollout_devices
                    .with_label_values(&[r.id.as_str(), wave.to_string().as_str(), status.as_str()])
                    .set(n);
            }
        }
    }
    Ok(())
}

/// Build the state, bind, and serve until SIGTERM / ctrl-c.
pub async fn serve(mut config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let timeout = config.shutdown_timeout;
    config.http.max_connections = fit_open_files_limit(config.http.max_connections);
    let state = AppState::build(config).await?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    tracing::info!(
        addr = %local,
        data_dir = %state.config.data_dir.display(),
        database = ?state.store.backend(),
        blobs = state.blobs.kind(),
        max_connections = state.config.http.max_connections,
        "nightlatch-server listening"
    );
    if state.config.console.enabled {
        let token = state.config.data_dir.join("admin-token");
        let host = if local.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            local.ip().to_string()
        };
        tracing::info!(
            url = %format!("http://{host}:{}/console/", local.port()),
            first_token = %if token.exists() { token.display().to_string() } else { "NIGHTLATCH_ADMIN_TOKEN (as configured)".to_owned() },
            "operator console: sign in with an admin token"
        );
    }
    let (signal_tx, mut signal_rx) = watch::channel(false);
    let server = tokio::spawn(run(state.clone(), listener, async move {
        shutdown_signal().await;
        let _ = signal_tx.send(true);
    }));
    // Wait for the signal, then give in-flight requests `timeout` to finish.
    let _ = signal_rx.changed().await;
    match tokio::time::timeout(timeout, server).await {
        Ok(joined) => joined.context("server task")?.context("serving")?,
        Err(_) => tracing::warn!(
            ?timeout,
            "in-flight requests did not finish in time; exiting"
        ),
    }
    state.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Raise the open-files limit to its hard maximum and keep `wanted`
/// connections within it (with room for the database, blobs and logs).
fn fit_open_files_limit(wanted: usize) -> usize {
    const RESERVE: u64 = 256;
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-files limit");
            return wanted;
        }
    };
    let fits = usize::try_from(limit.saturating_sub(RESERVE).max(16)).unwrap_or(usize::MAX);
    if fits < wanted {
        tracing::warn!(
            open_files_limit = limit,
            wanted,
            max_connections = fits,
            "http.max_connections lowered to fit the open-files limit"
        );
        fits
    } else {
        wanted
    }
}

/// Serve `state` on `listener` until `shutdown` resolves, then stop
/// accepting, ask every connection to finish its request and close, and
/// return when all have (the caller bounds the wait). Background tasks run
/// until then.
///
/// Each connection is admitted by the [`ConnectionLimiter`] (past it: a 503
/// and close), must send its first request header within
/// `http.header_read_timeout` (hyper enforces the same for every later
/// request, which is also the keep-alive idle limit), is closed after
/// `http.max_requests_per_connection` requests or `http.max_connection_age`,
/// and has `TCP_NODELAY` (without it a response written in two segments
/// waits for the client's delayed ACK, 40 ms on Linux).
pub async fn run(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    spawn_background(&state, stop_rx.clone());
    let http = state.config.http.clone();
    let limiter = ConnectionLimiter::new(http.max_connections, http.max_connections_per_client);
    let app = crate::app::router(state.clone());
    let tracker = tokio_util::task::TaskTracker::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or similar: wait instead of spinning.
                    state.metrics.http_refused.with_label_values(&["accept_error"]).inc();
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        match limiter.admit(peer.ip()) {
            Ok(slot) => {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY");
                }
                tracker.spawn(connection(
                    stream,
                    peer,
                    slot,
                    app.clone(),
                    http.clone(),
                    stop_rx.clone(),
                ));
            }
            Err(refusal) => {
                state
                    .metrics
                    .http_refused
                    .with_label_values(&[refusal.reason()])
                    .inc();
                tracing::debug!(%peer, reason = refusal.reason(), "connection refused");
                tracker.spawn(refuse(stream, refusal));
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Answer a connection past a limit with a 503 and close it.
async fn refuse(mut stream: TcpStream, refusal: ConnectionRefusal) {
    let reply = refusal.response();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(&reply).await?;
        stream.shutdown().await?;
        // Let the client's request arrive and be discarded, so closing does
        // not reset the connection before it has read the answer.
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    })
    .await;
}

/// The header a TLS-terminating proxy sets to the client's scheme.
const FORWARDED_PROTO: &str = "x-forwarded-proto";

/// Serve one admitted connection.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: ConnectionSlot,
    app: axum::Router,
    http: HttpConfig,
    mut stop: watch::Receiver<bool>,
) {
    let _slot = slot;
    let started = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU32::new(0));
    let max_requests = http.max_requests_per_connection;
    // What a client says about the original scheme counts only from a
    // proxy listed in `http.trusted_proxies` (the console's `Secure` cookie
    // follows it); anyone else's claim is dropped before any handler runs.
    let peer_is_trusted_proxy = http.trusted_proxies.contains(&peer.ip());
    let service = {
        let started = Arc::clone(&started);
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            started.store(true, Ordering::Relaxed);
            let n = served.fetch_add(1, Ordering::Relaxed).saturating_add(1);
            req.extensions_mut().insert(ConnectInfo(peer));
            if !peer_is_trusted_proxy {
                req.headers_mut().remove(FORWARDED_PROTO);
            }
            let app = app.clone();
            let last = n >= max_requests && req.version() <= axum::http::Version::HTTP_11;
            async move {
                let mut response = app.oneshot(req.map(axum::body::Body::new)).await?;
                if last {
                    response
                        .headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, std::convert::Infallible>(response)
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_read_timeout)
        .keep_alive(true)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    // hyper's header timeout starts once it knows the protocol; a client that
    // sends nothing (or a stalled HTTP/2 preface) is bounded here.
    let first_request = tokio::time::sleep(http.header_read_timeout);
    let max_age = tokio::time::sleep(http.max_connection_age);
    let mut first_request = std::pin::pin!(first_request);
    let mut max_age = std::pin::pin!(max_age);
    let mut closing = false;
    // Whether the first-request deadline has passed. (A `select!` branch
    // condition is read once per `select!`, not while it waits: the deadline
    // itself must look at `started`, or it would close a connection in use.)
    let mut first_deadline_passed = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
                return;
            }
            () = &mut first_request, if !first_deadline_passed => {
                first_deadline_passed = true;
                if !started.load(Ordering::Relaxed) {
                    tracing::debug!(%peer, "no request header in time: closing");
                    return;
                }
            }
            () = &mut max_age, if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            changed = stop.changed(), if !closing => {
                if changed.is_err() || *stop.borrow() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
