//! Admin: tokens (security-admin), and who am I.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Caller, Role, check_token_name, hash_token, new_token};
use crate::error::{ApiError, AppResult};
use crate::routes::extract::ApiJson;
use crate::routes::time;
use crate::state::AppState;
use crate::store::tokens::TokenRecord;

/// `POST /admin/v1/tokens`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Name (shown in the audit log beside the token's id), e.g. a person:
    /// 1 to 64 printable characters, no control, bidi-override or
    /// zero-width characters, not `system`.
    pub name: String,
    /// `viewer`, `operator`, `release` or `security-admin`.
    pub role: String,
    /// Lifetime (`30d`, `12h`); none: until revoked.
    #[serde(default)]
    pub expires_in: Option<String>,
}

fn view(t: &TokenRecord) -> serde_json::Value {
    json!({
        "id": t.id, "name": t.name, "role": t.role, "created_at": time(Some(t.created_at)),
        "created_by": t.created_by, "revoked_at": time(t.revoked_at),
        "expires_at": time(t.expires_at),
    })
}

/// `GET /admin/v1/whoami`.
pub async fn whoami(Extension(caller): Extension<Caller>) -> Json<serde_json::Value> {
    Json(json!({ "id": caller.token_id, "name": caller.name, "role": caller.role }))
}

/// `GET /admin/v1/tokens`.
pub async fn list(State(state): State<AppState>) -> AppResult<Json<serde_json::Value>> {
    let tokens = state.store.tokens().await?;
    Ok(Json(
        json!({ "tokens": tokens.iter().map(view).collect::<Vec<_>>() }),
    ))
}

/// `POST /admin/v1/tokens`: the secret is in this response only.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<CreateToken>,
) -> AppResult<(StatusCode, Json<serde_json::Value>)> {
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::invalid("role must be viewer, operator, release or security-admin")
    })?;
    check_token_name(&body.name).map_err(|why| ApiError::bad_request("invalid_name", why))?;
    let now = state.clock.now_ms();
    let expires_at = match body.expires_in.as_deref() {
        None | Some("") => None,
        Some(text) => {
            let d = humantime::parse_duration(text)
                .ok()
                .filter(|d| !d.is_zero() && d.as_secs() <= 10 * 366 * 86_400)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "expires_in must be a duration like 30d or 12h, at most 10 years",
                    )
                })?;
            Some(now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
        }
    };
    let token = new_token();
    let record = TokenRecord {
        id: crate::ids::new_id("tok", now),
        name: body.name.clone(),
        role: role.as_str().into(),
        created_at: now,
        created_by: caller.name.clone(),
        revoked_at: None,
        expires_at,
    };
    let entry = caller.audit(
        "token.create",
        &record.id,
        json!({"name": record.name, "role": record.role, "expires_at": time(expires_at)}),
    );
    state
        .store
        .insert_token(&record, &hash_token(&token), Some(&entry))
        .await?;
    let mut v = view(&record);
    v["token"] = json!(token);
    Ok((StatusCode::CREATED, Json(v)))
}

/// `DELETE /admin/v1/tokens/{id}`.
pub async fn revoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> AppResult<Json<serde_json::Value>> {
    let entry = caller.audit("token.revoke", &id, json!({}));
    if !state
        .store
        .revoke_token(&id, state.clock.now_ms(), &entry)
        .await?
    {
        return Err(ApiError::not_found(format!("no live token {id}")));
    }
    state.tokens.clear();
    Ok(Json(json!({ "id": id, "revoked": true })))
}
