//! Admin: the image repository — what it holds, uploads by release
//! engineers (`nightlatch-sign publish --server URL`), refresh, root rotation.
//!
//! Every change is committed with its audit entry in one database
//! transaction (the repository's commit point, see [`crate::repo::commit`]).
//! Target files are streamed to a temporary file and staged, unserved,
//! until targets metadata that lists them is accepted
//! ([`crate::repo::staging`]); at most `uploads.max_concurrent` uploads run
//! at once, more are refused with 503 `busy` and `Retry-After`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;
use tokio::sync::OwnedSemaphorePermit;

use crate::auth::Caller;
use crate::error::{ApiError, AppResult};
use crate::repo::staging::{check_content_length, claimed_sha256, read_limited};
use crate::routes::time;
use crate::state::AppState;

/// Largest targets metadata upload.
pub const MAX_METADATA_UPLOAD: usize = 16 << 20;
/// Largest root upload.
pub const MAX_ROOT_UPLOAD: usize = 1 << 20;
/// Seconds a refused upload is told to wait.
const RETRY_AFTER_SECS: u32 = 5;

/// An upload slot, if one is free.
fn upload_slot(state: &AppState) -> Option<OwnedSemaphorePermit> {
    let max = state.config.uploads.max_concurrent;
    state.repo.upload_slots(max).try_acquire_owned().ok()
}

/// 503 `busy` with `Retry-After`.
fn busy(state: &AppState) -> Response {
    let max = state.config.uploads.max_concurrent;
    let mut r = ApiError::client(
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
        format!(
            "{max} upload(s) are already in progress (uploads.max_concurrent); retry after {RETRY_AFTER_SECS} s"
        ),
    )
    .into_response();
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    r
}

/// `GET /admin/v1/repo`.
pub async fn status(State(state): State<AppState>) -> AppResult<Json<serde_json::Value>> {
    let c = state.repo.catalog();
    let staged = state.repo.staged().await?;
    let now = state.clock.now_ms();
    let grace = state.config.uploads.staged_grace;
    Ok(Json(json!({
        "versions": c.versions,
        "targets": c.all().map(|t| json!({
            "name": t.name, "role": t.role, "kind": t.kind, "hardware_model": t.hardware_model,
            "version": t.version, "security_counter": t.security_counter, "length": t.file.length,
            "sha256": t.sha256(), "base": t.base, "target": t.target,
        })).collect::<Vec<_>>(),
        "staged_grace_secs": grace.as_secs(),
        "staged": staged.iter().map(|s| {
            let age_ms = now.saturating_sub(s.uploaded_at).max(0);
            json!({
                "path": s.path, "length": s.length, "sha256": s.sha256,
                "uploaded_at": time(Some(s.uploaded_at)), "uploaded_by": s.uploaded_by,
                "age_secs": age_ms / 1000,
                "expires_at": time(Some(s.uploaded_at.saturating_add(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX)))),
            })
        }).collect::<Vec<_>>(),
    })))
}

/// `PUT /admin/v1/repo/targets/{*path}`: the body is streamed to a
/// temporary file (never held in memory), checked against the hash in its
/// name, and staged.
pub async fn target(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(_slot) = upload_slot(&state) else {
        return busy(&state);
    };
    match stage(&state, &caller, &path, &headers, body).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn stage(
    state: &AppState,
    caller: &Caller,
    path: &str,
    headers: &HeaderMap,
    body: Body,
) -> AppResult<serde_json::Value> {
    let claimed = claimed_sha256(path)?;
    let limit = state.config.repo.max_upload_bytes;
    check_content_length(headers, limit)?;
    let received = state.repo.receive(body, limit).await?;
    if received.sha256 != claimed {
        return Err(ApiError::bad_request(
            "hash_mismatch",
            format!("the body hashes to {}, not {claimed}", received.sha256),
        ));
    }
    let (len, sha) = (received.len, received.sha256.clone());
    let entry = caller.audit(
        "repo.target",
        path,
        json!({"length": len, "sha256": sha, "state": "staged"}),
    );
    let st = state
        .repo
        .stage_target(path, received, &caller.token_id, entry)
        .await?;
    Ok(json!({ "path": path, "length": len, "sha256": sha, "state": st.as_str() }))
}

/// `PUT /admin/v1/repo/metadata/{file}`.
pub async fn metadata(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(file): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(_slot) = upload_slot(&state) else {
        return busy(&state);
    };
    let result = async {
        check_content_length(&headers, MAX_METADATA_UPLOAD as u64)?;
        let body = read_limited(body, MAX_METADATA_UPLOAD).await?;
        let subject = file.clone();
        let refreshed = state
            .repo
            .put_metadata(
                &file,
                body,
                Box::new(move |r| {
                    vec![caller.audit("repo.metadata", &subject, json!({"refresh": r}))]
                }),
            )
            .await?;
        state
            .metrics
            .repo_refreshes
            .with_label_values(&["ok"])
            .inc();
        Ok::<_, ApiError>(json!({ "accepted": file, "refresh": refreshed }))
    }
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /admin/v1/repo/refresh`.
pub async fn refresh(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> AppResult<Json<serde_json::Value>> {
    let r = state
        .repo
        .refresh_with(Box::new(move |r| {
            vec![caller.audit("repo.refresh", "repository", json!(r))]
        }))
        .await?;
    state
        .metrics
        .repo_refreshes
        .with_label_values(&["ok"])
        .inc();
    Ok(Json(json!(r)))
}

/// `PUT /admin/v1/repo/roots/{file}`.
pub async fn root(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(file): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Json<serde_json::Value>> {
    check_content_length(&headers, MAX_ROOT_UPLOAD as u64)?;
    let body = read_limited(body, MAX_ROOT_UPLOAD).await?;
    let (subject, by) = (file.clone(), caller.clone());
    let changed = state
        .repo
        .put_root(
            &file,
            body,
            Box::new(move |changed| {
                vec![caller.audit("repo.root", &subject, json!({"roles_changed": changed}))]
            }),
            Box::new(move |r| {
                vec![by.audit(
                    "repo.refresh",
                    "repository",
                    json!({"after": "repo.root", "refresh": r}),
                )]
            }),
        )
        .await?;
    Ok(Json(json!({ "accepted": file, "roles_changed": changed })))
}
