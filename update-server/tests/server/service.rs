//! The service skeleton: health, readiness, JSON errors, OpenAPI, metrics.

use axum::http::{Method, StatusCode};
use serde_json::Value;

use crate::support::{Backend, TestApp};

async fn health_and_readiness(backend: Backend) {
    let app = TestApp::with(backend).await;
    let (s, v) = app.json(Method::GET, "/healthz", None, None).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, v) = app.json(Method::GET, "/readyz", None, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "ready");
    let expected = match backend {
        Backend::Embedded => ("sqlite", "local"),
        Backend::PostgresS3 => ("postgres", "s3"),
    };
    assert_eq!(
        (v["database"].as_str(), v["blobs"].as_str()),
        (Some(expected.0), Some(expected.1))
    );
    // A fresh data directory is a complete repository: root, targets, snapshot, timestamp.
    for role in ["root", "targets", "snapshot", "timestamp"] {
        assert_eq!(v["repository"][role], 1, "{v}");
    }
}

crate::both_backends!(health_and_readiness);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_answer_json() {
    let app = TestApp::new().await;
    let (s, v) = app.json(Method::GET, "/nope", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"], "not_found");
    let (s, _) = app.json(Method::DELETE, "/healthz", None, None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_admin_endpoint_with_its_role() {
    let app = TestApp::new().await;
    let (s, doc) = app
        .json(Method::GET, "/admin/v1/openapi.json", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for e in update_server::routes::admin::ENDPOINTS {
        let path = e.path.replace("{*path}", "{path}");
        let op = &doc["paths"][path.as_str()][e.method.to_lowercase()];
        assert_eq!(
            op["x-required-role"],
            e.role.as_str(),
            "{} {}",
            e.method,
            e.path
        );
        assert!(op["summary"].is_string());
    }
    assert!(doc["paths"]["/v1/devices/{id}/check-in"]["post"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_use_route_templates_not_raw_paths() {
    let app = TestApp::new().await;
    for id in ["a", "b", "c"] {
        app.json(
            Method::GET,
            &format!("/admin/v1/devices/{id}"),
            Some(&app.admin),
            None,
        )
        .await;
    }
    let (s, headers, body) = app.call(Method::GET, "/metrics", None, &[], "").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains(r#"route="/admin/v1/devices/{id}""#), "{text}");
    assert!(!text.contains(r#"route="/admin/v1/devices/a""#));
    for name in [
        "nightlatch_http_requests_total",
        "nightlatch_http_request_duration_seconds",
        "nightlatch_checkin_batch_size",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_keys_repository_and_tokens() {
    let app = TestApp::new().await;
    let before: Value = app.json(Method::GET, "/readyz", None, None).await.1;
    let root_before = app.director_root().signed;
    let dir = app.dir;
    let config = app.state.config.clone();
    drop(app.router);
    app.state.store.close().await;
    drop(app.state);
    let app = TestApp::start(dir, config).await;
    let after: Value = app.json(Method::GET, "/readyz", None, None).await.1;
    assert_eq!(before["repository"]["root"], after["repository"]["root"]);
    assert_eq!(
        app.director_root().signed,
        root_before,
        "no new dev keys on restart"
    );
    let (s, _) = app
        .json(Method::GET, "/admin/v1/whoami", Some(&app.admin), None)
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_dashboard_only_uses_exported_metrics() {
    let app = TestApp::new().await;
    let text = app.state.metrics.render();
    // Histograms and counters with no samples yet are not rendered: touch each.
    app.state
        .metrics
        .checkins
        .with_label_values(&["accepted"])
        .inc();
    app.state
        .metrics
        .downloads
        .with_label_values(&["target"])
        .inc();
    app.state
        .metrics
        .download_bytes
        .with_label_values(&["target"])
        .inc();
    app.state
        .metrics
        .assignments
        .with_label_values(&["r", "0", "full"])
        .inc();
    app.state
        .metrics
        .rollout_outcomes
        .with_label_values(&["r", "confirmed"])
        .inc();
    app.state
        .metrics
        .rollout_auto_pauses
        .with_label_values(&["r"])
        .inc();
    app.state
        .metrics
        .rollout_devices
        .with_label_values(&["r", "0", "assigned"])
        .set(1);
    app.state
        .metrics
        .repo_refreshes
        .with_label_values(&["ok"])
        .inc();
    app.state.metrics.stage("plan", std::time::Instant::now());
    app.state.metrics.checkin_batch.observe(1.0);
    app.json(Method::GET, "/healthz", None, None).await;
    let text = format!("{text}{}", app.state.metrics.render());
    let dash: Value =
        serde_json::from_str(include_str!("../../grafana/nightlatch-server.json")).unwrap();
    let mut exprs = 0;
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            let e = t["expr"].as_str().unwrap();
            exprs += 1;
            for word in e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("nightlatch_") {
                    assert!(
                        text.contains(word),
                        "dashboard uses {word}, which the server does not export"
                    );
                }
            }
        }
    }
    assert!(exprs >= 12);
}
