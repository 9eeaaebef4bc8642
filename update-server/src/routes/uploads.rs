//! Admin: the image repository — what it holds, uploads by release
//! engineers (`nightlatch-sign publish --server URL`), refresh, root rotation.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::json;

use crate::auth::Caller;
use crate::error::AppResult;
use crate::routes::extract::ApiBytes;
use crate::state::AppState;

/// `GET /admin/v1/repo`.
pub async fn status(State(state): State<AppState>) -> AppResult<Json<serde_json::Value>> {
    let c = state.repo.catalog();
    Ok(Json(json!({
        "versions": c.versions,
        "targets": c.all().map(|t| json!({
            "name": t.name, "role": t.role, "kind": t.kind, "hardware_model": t.hardware_model,
            "version": t.version, "security_counter": t.security_counter, "length": t.file.length,
            "sha256": t.sha256(), "base": t.base, "target": t.target,
        })).collect::<Vec<_>>(),
    })))
}

/// `PUT /admin/v1/repo/targets/{*path}`.
pub async fn target(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(path): Path<String>,
    ApiBytes(body): ApiBytes,
) -> AppResult<Json<serde_json::Value>> {
    let len = body.len();
    let sha = state.repo.put_target(&path, body).await?;
    let now = state.clock.now_ms();
    state
        .store
        .audit(
            &caller.audit("repo.target", &path, json!({"length": len, "sha256": sha})),
            now,
        )
        .await?;
    Ok(Json(json!({ "path": path, "length": len, "sha256": sha })))
}

/// `PUT /admin/v1/repo/metadata/{file}`.
pub async fn metadata(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(file): Path<String>,
    ApiBytes(body): ApiBytes,
) -> AppResult<Json<serde_json::Value>> {
    let refreshed = state.repo.put_metadata(&file, body).await?;
    let now = state.clock.now_ms();
    state
        .store
        .audit(
            &caller.audit("repo.metadata", &file, json!({"refresh": refreshed})),
            now,
        )
        .await?;
    state
        .metrics
        .repo_refreshes
        .with_label_values(&["ok"])
        .inc();
    Ok(Json(json!({ "accepted": file, "refresh": refreshed })))
}

/// `POST /admin/v1/repo/refresh`.
pub async fn refresh(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> AppResult<Json<serde_json::Value>> {
    let r = state.repo.refresh().await?;
    state
        .metrics
        .repo_refreshes
        .with_label_values(&["ok"])
        .inc();
    let now = state.clock.now_ms();
    state
        .store
        .audit(&caller.audit("repo.refresh", "repository", json!(r)), now)
        .await?;
    Ok(Json(json!(r)))
}

/// `PUT /admin/v1/repo/roots/{file}`.
pub async fn root(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(file): Path<String>,
    ApiBytes(body): ApiBytes,
) -> AppResult<Json<serde_json::Value>> {
    let changed = state.repo.put_root(&file, body).await?;
    let now = state.clock.now_ms();
    state
        .store
        .audit(
            &caller.audit("repo.root", &file, json!({"roles_changed": changed})),
            now,
        )
        .await?;
    Ok(Json(json!({ "accepted": file, "roles_changed": changed })))
}
