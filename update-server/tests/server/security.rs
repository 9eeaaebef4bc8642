//! Every admin endpoint refuses a missing token, a bad token, and every role
//! below the one it needs — one case per role × endpoint, walked from the
//! same table the server enforces. Roles at or above pass authorization.

use axum::http::{Method, StatusCode};
use serde_json::Value;
use update_server::auth::Role;
use update_server::routes::admin::ENDPOINTS;

use crate::support::TestApp;

fn concrete(path: &str) -> String {
    path.replace("{id}", "nothing-here")
        .replace("{site}", "site-x")
        .replace("{file}", "2.targets.json")
        .replace("{*path}", "m/0000.x")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_endpoint_enforces_its_role() {
    let app = TestApp::new().await;
    let mut tokens = Vec::new();
    for role in Role::ALL {
        tokens.push((role, app.token(role.as_str()).await));
    }
    let mut cases = 0;
    for e in ENDPOINTS {
        let method = Method::from_bytes(e.method.as_bytes()).unwrap();
        let path = concrete(e.path);
        let what = format!("{} {}", e.method, e.path);
        // No token.
        let (s, _, body) = app.call(method.clone(), &path, None, &[], "").await;
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (s, v["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("missing_token")),
            "{what}"
        );
        // A token that does not exist, and a malformed header.
        let (s, _, _) = app
            .call(method.clone(), &path, Some("nlt_0000"), &[], "")
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what} bad token");
        let (s, _, _) = app
            .call(
                method.clone(),
                &path,
                None,
                &[("authorization", "Basic YTpi")],
                "",
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what} basic auth");
        cases += 3;
        for (role, token) in &tokens {
            let (s, _, body) = app.call(method.clone(), &path, Some(token), &[], "").await;
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if *role < e.role {
                assert_eq!(
                    (s, v["error"].as_str()),
                    (StatusCode::FORBIDDEN, Some("forbidden")),
                    "{what} must refuse {}",
                    role.as_str()
                );
            } else {
                assert!(
                    s != StatusCode::UNAUTHORIZED && s != StatusCode::FORBIDDEN,
                    "{what} must let {} through, got {s}: {v}",
                    role.as_str()
                );
            }
            cases += 1;
        }
    }
    assert_eq!(cases, ENDPOINTS.len() * 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_tokens_stop_working_and_secrets_are_never_listed() {
    let app = TestApp::new().await;
    let (s, v) = app
        .json(
            Method::POST,
            "/admin/v1/tokens",
            Some(&app.admin),
            Some(serde_json::json!({"name": "ops", "role": "operator"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let token = v["token"].as_str().unwrap().to_owned();
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.json(Method::GET, "/admin/v1/whoami", Some(&token), None)
            .await
            .1["role"],
        "operator"
    );
    let (_, list) = app
        .json(Method::GET, "/admin/v1/tokens", Some(&app.admin), None)
        .await;
    assert!(
        !list.to_string().contains(&token),
        "secrets are never listed"
    );
    let (s, _) = app
        .json(
            Method::DELETE,
            &format!("/admin/v1/tokens/{id}"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = app
        .json(Method::GET, "/admin/v1/whoami", Some(&token), None)
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_token"))
    );
    // Only the hash is stored.
    let rows: Vec<String> = sqlx::query_scalar::<_, String>("SELECT hash FROM tokens")
        .fetch_all(app.state.store.pool())
        .await
        .unwrap();
    assert!(rows.iter().all(|h| h.len() == 64 && !h.contains("nlt_")));
    let (s, v) = app
        .json(
            Method::POST,
            "/admin/v1/tokens",
            Some(&app.admin),
            Some(serde_json::json!({"name": "x", "role": "root"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}
