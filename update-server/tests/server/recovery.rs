//! Administrative recovery and token expiry: losing (or leaking) every
//! security-admin token does not lock the owner out of their fleet.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::TestApp;

async fn whoami(app: &TestApp, token: &str) -> (StatusCode, serde_json::Value) {
    app.json(Method::GET, "/admin/v1/whoami", Some(token), None)
        .await
}

/// Every security-admin token revoked: nobody can manage tokens any more.
/// `nightlatch-server recover-admin` on the server's machine mints a new
/// one (revoking the old ones it is told to), the API accepts it, and the
/// audit log says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_admin_restores_access_and_is_audited() {
    let app = TestApp::new().await;
    let second = {
        let (s, v) = app
            .json(
                Method::POST,
                "/admin/v1/tokens",
                Some(&app.admin),
                Some(json!({"name": "alice", "role": "security-admin"})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        (
            v["id"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        )
    };
    let viewer = app.token("viewer").await;
    // Alice revokes the bootstrap token, then her own: locked out.
    let (_, me) = whoami(&app, &app.admin).await;
    let boot_id = me["id"].as_str().unwrap().to_owned();
    for id in [&boot_id, &second.0] {
        let (s, v) = app
            .json(
                Method::DELETE,
                &format!("/admin/v1/tokens/{id}"),
                Some(&second.1),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    assert_eq!(whoami(&app, &second.1).await.0, StatusCode::UNAUTHORIZED);
    let (s, _) = app
        .json(Method::GET, "/admin/v1/tokens", Some(&viewer), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a viewer cannot help");

    // Recovery, as the operator runs it on the server's machine.
    let out = app.recover_admin(&[
        "--name".as_ref(),
        "owner-recovery".as_ref(),
        "--revoke-security-admins".as_ref(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("nlt_") && token.len() == 68, "{token}");
    assert!(
        !stderr.contains(&token),
        "the token is printed once, on stdout"
    );
    let (s, v) = whoami(&app, &token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["role"], "security-admin");
    // Back in: tokens can be managed again; the viewer still works.
    let (s, _) = app
        .json(Method::GET, "/admin/v1/tokens", Some(&token), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(whoami(&app, &viewer).await.0, StatusCode::OK);
    // The audit log shows it.
    let (s, audit) = app
        .json(
            Method::GET,
            "/admin/v1/audit?limit=1000",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{audit}");
    let e = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "token.recover")
        .unwrap_or_else(|| panic!("no token.recover entry: {audit}"));
    assert_eq!(e["actor"], "recover-admin");
    assert_eq!(e["subject"], v["id"]);
    assert!(!audit.to_string().contains(&token));

    // --revoke-all, to a file: every other token goes, the file is 0600.
    let file = app.dir.path().join("recovered-token");
    let out = app.recover_admin(&["--revoke-all".as_ref(), "--out".as_ref(), file.as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let newest = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    // (The token cache trusts a lookup for a few seconds.)
    app.state.tokens.clear();
    assert_eq!(whoami(&app, &newest).await.0, StatusCode::OK);
    assert_eq!(whoami(&app, &viewer).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(whoami(&app, &token).await.0, StatusCode::UNAUTHORIZED);
}

/// A token with a lifetime stops working when it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_may_expire() {
    let app = TestApp::new().await;
    let (s, v) = app
        .json(
            Method::POST,
            "/admin/v1/tokens",
            Some(&app.admin),
            Some(json!({"name": "contractor", "role": "operator", "expires_in": "1h"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(v["expires_at"].is_string(), "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    assert_eq!(whoami(&app, &token).await.0, StatusCode::OK);
    // Refused the moment it ends, though this replica looked it up just
    // now (its cached lookup keeps the expiry).
    app.clock.advance_ms(3_600_000 + 1_000);
    assert_eq!(whoami(&app, &token).await.0, StatusCode::UNAUTHORIZED);
    app.state.tokens.clear();
    assert_eq!(whoami(&app, &token).await.0, StatusCode::UNAUTHORIZED);
    let (s, v) = app
        .json(
            Method::POST,
            "/admin/v1/tokens",
            Some(&app.admin),
            Some(json!({"name": "x", "role": "viewer", "expires_in": "soon"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}

/// The database is lost (no backup): a server started on a fresh database
/// and the same blob store serves the same signed repository, and a new
/// first admin token is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_keeps_the_repository() {
    let app = TestApp::new().await;
    let v1: Vec<u8> = (0..5_000u32).map(|i| (i % 241) as u8).collect();
    let e1 = app.envelope("nl-lock-v2", "1.0.0", 1, &v1);
    app.publish(&[e1]).await;
    let get = |app: &TestApp, path: &'static str| {
        let router = app.router.clone();
        async move { crate::support::call(&router, Method::GET, path, None, &[], "").await }
    };
    let (s, _, ts) = get(&app, "/repo/metadata/timestamp.json").await;
    assert_eq!(s, StatusCode::OK);
    let (_, _, targets) = get(&app, "/repo/metadata/2.targets.json").await;
    let dir = app.dir.path().to_owned();
    let config = app.state.config.clone();
    app.state.store.close().await;
    for f in [
        "fleet.sqlite",
        "fleet.sqlite-wal",
        "fleet.sqlite-shm",
        "admin-token",
    ] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let state = update_server::AppState::build_with_clock(
        config,
        std::sync::Arc::clone(&app.clock) as std::sync::Arc<dyn update_server::clock::Clock>,
        Some(std::sync::Arc::clone(&app.clock)),
    )
    .await
    .unwrap();
    let router = update_server::router(state);
    let (s, _, ts2) = crate::support::call(
        &router,
        Method::GET,
        "/repo/metadata/timestamp.json",
        None,
        &[],
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ts, ts2, "the same signed timestamp is served");
    let (s, _, targets2) = crate::support::call(
        &router,
        Method::GET,
        "/repo/metadata/2.targets.json",
        None,
        &[],
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(targets, targets2);
    assert!(dir.join("admin-token").exists(), "a new first admin token");
}
