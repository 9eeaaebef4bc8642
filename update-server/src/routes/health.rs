//! Liveness, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use crate::error::{ApiError, AppResult};
use crate::state::AppState;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the database and blob store answer and the repository is loaded.
pub async fn readyz(State(state): State<AppState>) -> AppResult<impl IntoResponse> {
    if let Err(e) = state.store.ping().await {
        tracing::warn!(error = %e, "readyz: database");
        return Err(ApiError::unavailable("the fleet database does not answer"));
    }
    if let Err(e) = state.blobs.ping().await {
        tracing::warn!(error = %e, "readyz: blob store");
        return Err(ApiError::unavailable("the blob store does not answer"));
    }
    if !state.repo.has_root() {
        return Err(ApiError::unavailable(
            "the image repository has no root yet",
        ));
    }
    Ok((
        StatusCode::OK,
        Json(json!({
            "status": "ready",
            "database": format!("{:?}", state.store.backend()).to_lowercase(),
            "blobs": state.blobs.kind(),
            "director_root_version": state.director.root_version(),
            "repository": state.repo.catalog().versions,
        })),
    ))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
