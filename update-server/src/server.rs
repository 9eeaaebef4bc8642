//! Running the service: bind, serve, background work (snapshot/timestamp
//! refresh before expiry, picking up other replicas' repository changes,
//! rollout gauges every 15 s), and graceful shutdown on SIGTERM or ctrl-c: stop
//! accepting, let in-flight requests (and their check-in batches) finish
//! within the configured timeout, close the database.

use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
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
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let timeout = config.shutdown_timeout;
    let state = AppState::build(config).await?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    // Without TCP_NODELAY a response written in two segments waits for the
    // client's delayed ACK (40 ms on Linux).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY");
        }
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    spawn_background(&state, stop_rx);
    tracing::info!(
        addr = %local,
        data_dir = %state.config.data_dir.display(),
        database = ?state.store.backend(),
        blobs = state.blobs.kind(),
        "nightlatch-server listening"
    );
    let app = crate::app::router(state.clone());
    let (signal_tx, mut signal_rx) = watch::channel(false);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = signal_tx.send(true);
    });
    let server = tokio::spawn(async move { server.await });
    // Wait for the signal, then give in-flight requests `timeout` to finish.
    let _ = signal_rx.changed().await;
    let _ = stop_tx.send(true);
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
