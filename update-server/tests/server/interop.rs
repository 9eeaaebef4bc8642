//! python-tuf (an independent TUF client) reads the repository the server
//! serves over HTTP at /repo/metadata and /repo/targets, and
//! `nightlatch-sign publish --server` publishes to a running server.

use std::path::PathBuf;
use std::process::Command;

use axum::http::Method;
use serde_json::Value;

use crate::support::{Backend, TestApp};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> PathBuf {
    let p = std::env::var("NIGHTLATCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join(".venv/bin/python"));
    assert!(
        p.exists(),
        "{} is missing: run `bash .ci/setup` (it makes the python-tuf venv)",
        p.display()
    );
    p
}

/// Serve `app` on a loopback port; its base URL.
async fn listen(app: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

async fn python_tuf_reads_the_served_repository(backend: Backend) {
    let app = TestApp::with(backend).await;
    // The CLI signs on the system clock and the server checks uploads on
    // its own (manual) clock: agree on the date, as a real deployment does.
    app.clock.set_ms(update_server::clock::Clock::now_ms(
        &update_server::clock::SystemClock,
    ));
    let url = listen(&app).await;
    let env = app.envelope("nl-lock-v2", "1.4.2", 7, &vec![0x5a; 30_000]);
    // Publish with the real CLI over HTTP.
    let release = app.token("release").await;
    let out = Command::new(
        env!("CARGO_BIN_EXE_nightlatch-server").replace("nightlatch-server", "nightlatch-sign"),
    )
    .args(["publish", "--server", &url, "--key"])
    .arg(app.targets_key())
    .arg(&env)
    .env("NIGHTLATCH_TOKEN", &release)
    .output();
    let out = match out {
        Ok(o) => o,
        Err(_) => {
            // nightlatch-sign is another package's binary: build it if it is missing.
            let status = Command::new(env!("CARGO"))
                .args([
                    "build",
                    "-q",
                    "-p",
                    "signing-tools",
                    "--bin",
                    "nightlatch-sign",
                ])
                .current_dir(workspace())
                .status()
                .unwrap();
            assert!(status.success());
            Command::new(
                env!("CARGO_BIN_EXE_nightlatch-server")
                    .replace("nightlatch-server", "nightlatch-sign"),
            )
            .args(["publish", "--server", &url, "--key"])
            .arg(app.targets_key())
            .arg(&env)
            .env("NIGHTLATCH_TOKEN", &release)
            .output()
            .unwrap()
        }
    };
    assert!(
        out.status.success(),
        "nightlatch-sign publish --server: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("uploaded   2.targets.json"));

    let cache = tempfile::tempdir().unwrap();
    let root = app.dir.path().join("keys/image/1.root.json");
    let script = workspace().join("update-server/tests/python/tuf_http_client.py");
    let py = python();
    let url2 = url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(py)
            .arg(script)
            .args(["--url", &url2, "--trusted-root"])
            .arg(root)
            .arg("--cache")
            .arg(cache.path())
            .arg("nl-lock-v2/1.4.2.nlfw")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "python-tuf: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["targets_version"], 2);
    let t = &v["targets"]["nl-lock-v2/1.4.2.nlfw"];
    assert_eq!(
        t["length"].as_u64(),
        Some(std::fs::metadata(&env).unwrap().len())
    );
    // And the server's own view agrees.
    let (_, repo) = app
        .json(Method::GET, "/admin/v1/repo", Some(&app.admin), None)
        .await;
    assert_eq!(repo["targets"][0]["sha256"], t["sha256"]);
}

crate::both_backends!(python_tuf_reads_the_served_repository);
