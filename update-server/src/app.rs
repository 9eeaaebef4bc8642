//! The router: `router(state)` is the whole HTTP surface, testable with
//! `tower::ServiceExt::oneshot` (no socket).

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::routes::{self, admin, checkin, health, repo};
use crate::state::AppState;
use crate::{auth, console, limits, metrics, openapi};

/// Every route, with authorization, per-client limits, request timeouts,
/// metrics and tracing layered on.
pub fn router(state: AppState) -> Router {
    let max_upload = usize::try_from(state.config.repo.max_upload_bytes).unwrap_or(usize::MAX);
    let http = &state.config.http;
    let admin = admin::router(max_upload)
        .layer(from_fn_with_state(state.clone(), auth::authorize))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            http.admin_request_timeout,
        ));
    // The console reads and changes everything through the same API.
    let console = console::router(state.clone(), admin.clone().with_state(state.clone())).layer(
        TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, http.request_timeout),
    );
    let rate_limits = limits::RateLimits::new(http, Arc::clone(&state.metrics));
    let public = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/repo/metadata/{file}", get(repo::metadata))
        .route("/repo/targets/{*path}", get(repo::target))
        .route("/director/metadata/{file}", get(repo::director_metadata))
        .route(
            "/v1/devices/{id}/check-in",
            post(checkin::check_in)
                .layer(DefaultBodyLimit::max(state.config.checkin.max_body_bytes)),
        )
        .route("/admin/v1/openapi.json", get(openapi::serve))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            http.request_timeout,
        ));
    public
        .merge(admin)
        .merge(console)
        .fallback(routes::not_found)
        .layer(from_fn_with_state(rate_limits, limits::guard))
        .layer(from_fn_with_state(
            Arc::clone(&state.metrics),
            metrics::track,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
