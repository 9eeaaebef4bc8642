//! Admin: the audit log. Each entry names who by `token_id` (the id of the
//! token used; null for the server itself and for refusals without a usable
//! token) and `actor` (that token's name, `system` or `anonymous`).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::json;

use crate::error::AppResult;
use crate::routes::extract::ApiQuery;
use crate::routes::{limit, time};
use crate::state::AppState;

/// `?after=&limit=`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    after: Option<String>,
    limit: Option<i64>,
}

/// `GET /admin/v1/audit`.
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> AppResult<Json<serde_json::Value>> {
    let entries = state
        .store
        .audit_log(q.after.as_deref(), limit(q.limit, 100, 1000))
        .await?;
    Ok(Json(json!({
        "entries": entries.iter().map(|e| json!({
            "id": e.id, "at": time(Some(e.at)), "token_id": e.token_id, "actor": e.actor, "role": e.role,
            "action": e.action, "subject": e.subject, "detail": e.detail,
        })).collect::<Vec<_>>(),
        "next_after": entries.last().map(|e| &e.id),
    })))
}
