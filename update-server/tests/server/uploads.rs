//! Uploaded target files: staged (not served, listed with their age) until
//! targets metadata references them, removed after the grace period;
//! concurrent uploads bounded; bodies streamed to disk, not held in memory.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use bytes::Bytes;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::audit::{entries_after, last_entry_id, prepare_release};
use crate::support::{Backend, TestApp, fresh_bucket, fresh_pg_schema};

async fn app_with(
    backend: Backend,
    edit: impl FnOnce(&mut update_server::config::Config),
) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = update_server::config::Config::for_data_dir(dir.path());
    if backend == Backend::PostgresS3 {
        config.database_url = fresh_pg_schema().await;
        config.blob = update_server::config::BlobConfig::S3(fresh_bucket().await);
    }
    edit(&mut config);
    TestApp::start(dir, config).await
}

fn hashed_path(model: &str, name: &str, bytes: &[u8]) -> String {
    format!("{model}/{}.{name}", hex::encode(Sha256::digest(bytes)))
}

async fn staged(app: &TestApp) -> Vec<Value> {
    let (s, v) = app
        .json(Method::GET, "/admin/v1/repo", Some(&app.admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["staged"].as_array().unwrap().clone()
}

async fn status_of(app: &TestApp, path: &str) -> StatusCode {
    app.call(Method::GET, path, None, &[], "").await.0
}

/// An upload nothing references is not served, is listed as staged with
/// its age, and is removed after the grace period by the background task;
/// one that metadata references is served.
async fn unreferenced_uploads_are_staged_then_removed(backend: Backend) {
    let app = app_with(backend, |c| {
        c.uploads.staged_grace = Duration::from_secs(3600);
        c.uploads.sweep_interval = Duration::from_millis(50);
    })
    .await;
    let release = app.token("release").await;
    let (_, who) = app
        .json(Method::GET, "/admin/v1/whoami", Some(&release), None)
        .await;
    // Not referenced: 404, listed as staged.
    let junk = vec![7u8; 100_000];
    let junk_path = hashed_path("nl-lock-v2", "9.9.9.nlfw", &junk);
    let (s, text) = app
        .put(
            &format!("/admin/v1/repo/targets/{junk_path}"),
            &release,
            junk.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["state"], "staged");
    assert_eq!(
        status_of(&app, &format!("/repo/targets/{junk_path}")).await,
        StatusCode::NOT_FOUND
    );
    let list = staged(&app).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["path"], junk_path.as_str());
    assert_eq!(list[0]["length"], 100_000);
    assert_eq!(list[0]["age_secs"], 0);
    assert_eq!(list[0]["uploaded_by"], who["id"]);
    app.clock.advance_ms(600_000);
    assert_eq!(staged(&app).await[0]["age_secs"], 600);

    // Referenced by metadata uploaded after it: served, no longer staged.
    let r = prepare_release(&app, "2.0.0", b"the real firmware").await;
    let (s, text) = app
        .put(
            &format!("/admin/v1/repo/targets/{}", r.target_path),
            &release,
            r.target.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{text}");
    let served = format!("/repo/targets/{}", r.target_path);
    assert_eq!(status_of(&app, &served).await, StatusCode::NOT_FOUND);
    assert_eq!(staged(&app).await.len(), 2);
    let (s, text) = app
        .put(
            &format!("/admin/v1/repo/metadata/{}", r.metadata_name),
            &release,
            r.metadata.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{text}");
    let (s, _, body) = app.call(Method::GET, &served, None, &[], "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body.as_ref(), r.target.as_slice());
    let list = staged(&app).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["path"], junk_path.as_str());

    // Past the grace period the background task removes it (bytes too).
    let start = last_entry_id(&app).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = update_server::repo::staging::spawn_sweeper(
        Arc::clone(&app.state.repo),
        app.state.config.uploads.staged_grace,
        app.state.config.uploads.sweep_interval,
        stop_rx,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(staged(&app).await.len(), 1, "not before the grace period");
    app.clock.advance_ms(3_000_001);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !staged(&app).await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never removed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    task.await.unwrap();
    let key = update_server::repo::staging::staged_key(&junk_path);
    assert!(app.state.blobs.head(&key).await.unwrap().is_none());
    assert_eq!(
        status_of(&app, &format!("/repo/targets/{junk_path}")).await,
        StatusCode::NOT_FOUND
    );
    let entries = entries_after(&app, start.as_deref()).await;
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "repo.staged_expire" && e["subject"] == junk_path.as_str()),
        "{entries:#?}"
    );
    // The published target stays.
    assert_eq!(status_of(&app, &served).await, StatusCode::OK);
    // Re-uploading a published target changes nothing.
    let (s, text) = app
        .put(
            &format!("/admin/v1/repo/targets/{}", r.target_path),
            &release,
            r.target.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{text}");
    assert!(text.contains("\"published\""), "{text}");
    assert!(staged(&app).await.is_empty());
}

crate::both_backends!(unreferenced_uploads_are_staged_then_removed);

/// A request body fed chunk by chunk by the test.
fn channel_body() -> (mpsc::Sender<Bytes>, Body) {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    (tx, Body::from_stream(stream))
}

/// Files in `dir` and their sizes.
fn sizes(dir: &Path) -> Vec<u64> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Start a streamed PUT of `path`; the task answers its status and body.
fn start_put(
    app: &TestApp,
    path: &str,
    token: &str,
) -> (
    mpsc::Sender<Bytes>,
    tokio::task::JoinHandle<(StatusCode, String)>,
) {
    let (tx, body) = channel_body();
    let router = app.router.clone();
    let path = path.to_owned();
    let token = token.to_owned();
    let task = tokio::spawn(async move {
        let (s, _, b) =
            crate::support::call(&router, Method::PUT, &path, Some(&token), &[], body).await;
        (s, String::from_utf8_lossy(&b).into_owned())
    });
    (tx, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_beyond_the_limit_are_refused_with_retry_after() {
    let app = app_with(Backend::Embedded, |c| c.uploads.max_concurrent = 2).await;
    let release = app.token("release").await;
    let tmp = app.dir.path().join("upload-tmp");
    let parts: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 300_000]).collect();
    let paths: Vec<String> = parts
        .iter()
        .map(|p| hashed_path("nl-lock-v2", "1.0.0.nlfw", p))
        .collect();
    // Two uploads in progress (bodies half sent).
    let mut running = Vec::new();
    for (p, path) in parts.iter().zip(&paths).take(2) {
        let (tx, task) = start_put(&app, &format!("/admin/v1/repo/targets/{path}"), &release);
        tx.send(Bytes::copy_from_slice(&p[..150_000]))
            .await
            .unwrap();
        running.push((tx, task));
    }
    wait_for("two uploads receiving", || sizes(&tmp).len() == 2).await;
    // A third, and a metadata upload: refused at once, with Retry-After.
    for (path, body) in [
        (
            format!("/admin/v1/repo/targets/{}", paths[2]),
            parts[2].clone(),
        ),
        (
            "/admin/v1/repo/metadata/2.targets.json".to_owned(),
            b"{}".to_vec(),
        ),
    ] {
        let (s, h, b) = app
            .call(Method::PUT, &path, Some(&release), &[], body)
            .await;
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("busy")),
            "{path}: {v}"
        );
        assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    }
    // The two finish; then the third goes through.
    for ((tx, task), p) in running.into_iter().zip(&parts) {
        tx.send(Bytes::copy_from_slice(&p[150_000..]))
            .await
            .unwrap();
        drop(tx);
        let (s, text) = task.await.unwrap();
        assert_eq!(s, StatusCode::OK, "{text}");
    }
    let (s, text) = app
        .put(
            &format!("/admin/v1/repo/targets/{}", paths[2]),
            &release,
            parts[2].clone(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{text}");
    assert!(sizes(&tmp).is_empty(), "temporary files are cleaned up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_bodies_are_streamed_to_disk_not_held_in_memory() {
    const MB: usize = 1 << 20;
    let app = TestApp::new().await;
    let release = app.token("release").await;
    let tmp = app.dir.path().join("upload-tmp");
    let chunk = |i: usize| -> Bytes {
        Bytes::from(
            (0..MB)
                .map(|j| (i.wrapping_mul(31) ^ j) as u8)
                .collect::<Vec<u8>>(),
        )
    };
    let mut hasher = Sha256::new();
    for i in 0..60 {
        hasher.update(chunk(i));
    }
    let path = format!("nl-lock-v2/{}.big.nlfw", hex::encode(hasher.finalize()));
    // 60 MB: 20 MB sent, then the client pauses. The server has already
    // written them to its temporary file: it does not wait for (and hold)
    // the whole body.
    let (tx, task) = start_put(&app, &format!("/admin/v1/repo/targets/{path}"), &release);
    for i in 0..20 {
        tx.send(chunk(i)).await.unwrap();
    }
    wait_for(
        "the first 16 MB on disk while the body is incomplete",
        || sizes(&tmp).iter().any(|&n| n >= 16 * MB as u64),
    )
    .await;
    for i in 20..60 {
        tx.send(chunk(i)).await.unwrap();
    }
    drop(tx);
    let (s, text) = task.await.unwrap();
    assert_eq!(s, StatusCode::OK, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["length"], 60 * MB);
    assert_eq!(v["state"], "staged");
    // Over the limit: refused from its Content-Length before any of it is
    // read, or as soon as the streamed bytes pass it.
    let limit = app.state.config.repo.max_upload_bytes;
    let over = format!(
        "/admin/v1/repo/targets/nl-lock-v2/{}.x.nlfw",
        "0".repeat(64)
    );
    let (s, _, b) = app
        .call(
            Method::PUT,
            &over,
            Some(&release),
            &[("content-length", &(limit + 1).to_string())],
            Body::empty(),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        String::from_utf8_lossy(&b)
    );
    let (tx, task) = start_put(&app, &over, &release);
    let mut sent = 0u64;
    let refused = loop {
        if tx.send(chunk(0)).await.is_err() {
            break true;
        }
        sent += MB as u64;
        if sent > limit + 4 * MB as u64 {
            break false;
        }
    };
    drop(tx);
    let (s, text) = task.await.unwrap();
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert!(refused, "the server kept reading past the limit");
    assert!(sizes(&tmp).is_empty(), "temporary files are cleaned up");
}
