//! What only the PostgreSQL + S3 deployment has: several replicas sharing
//! one database and one bucket.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{Backend, TestApp, ids};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_fleet_state_and_repository_postgres_s3() {
    let app = TestApp::with(Backend::PostgresS3).await;
    let b = app.replica().await;
    let router_b = update_server::router(b.clone());
    // A release published through replica A is served by replica B after it polls.
    let env = app.envelope("nl-lock-v2", "2.0.0", 2, b"two");
    app.publish(&[env]).await;
    assert!(
        b.repo.poll().await.unwrap(),
        "replica B sees the new generation"
    );
    assert!(b.repo.catalog().firmware("nl-lock-v2/2.0.0.nlfw").is_some());
    let (s, _, _) = crate::support::call(
        &router_b,
        Method::GET,
        "/repo/metadata/2.targets.json",
        None,
        &[],
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // A lock checks in at A, then replays the same check-in at B: refused.
    let mut locks = app.register(&ids("lock", 1), "nl-lock-v2", &[]).await;
    let lock = &mut locks[0];
    let sub = lock.submission();
    let first = app.state.pipeline.process(vec![sub.clone()]).await;
    assert!(first[0].is_ok());
    let replay = b.pipeline.process(vec![sub]).await;
    assert_eq!(replay[0].as_ref().err().map(|e| e.code()), Some("replayed"));
    // A rollout paused at A stops assignments at B.
    let id = app
        .rollout(json!({"name": "r", "target": "nl-lock-v2/2.0.0.nlfw", "start": true}))
        .await;
    let (s, _) = app
        .json(
            Method::POST,
            &format!("/admin/v1/rollouts/{id}/pause"),
            Some(&app.admin),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let r = b.pipeline.process(vec![lock.submission()]).await;
    let r = r.into_iter().next().unwrap().unwrap();
    lock.accept(&r, &app.director_root());
    assert!(lock.assigned().is_none());
}
