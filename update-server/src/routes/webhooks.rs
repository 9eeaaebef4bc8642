//! Admin: webhook subscriptions (read: operator; change: security-admin),
//! the delivery log, test pings and secret rotation. See
//! [`crate::webhooks`] for events, signatures and delivery.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use crate::auth::Caller;
use crate::error::{ApiError, AppResult};
use crate::routes::extract::{ApiJson, ApiQuery};
use crate::routes::{limit, time};
use crate::state::AppState;
use crate::store::webhooks::{Webhook, WebhookStats};
use crate::webhooks::{self, Event, UrlRefused, deliver::WAKE};

/// `POST /admin/v1/webhooks`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where to POST events: `http://` or `https://`.
    pub url: String,
    /// Event types (`*`, a type, or a family such as `rollout.*`); default
    /// every type.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// `POST /admin/v1/webhooks/{id}/rotate-secret`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// How long the old secret keeps signing (default 24h, at most 30d).
    #[serde(default)]
    pub overlap: Option<String>,
}

/// `?limit=`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    limit: Option<i64>,
}

/// The public view of a subscription (never its secrets).
pub fn view(w: &Webhook) -> serde_json::Value {
    json!({
        "id": w.id, "url": w.url, "events": w.events, "description": w.description,
        "enabled": w.enabled, "updated_at": time(Some(w.updated_at)), "disabled_reason": w.disabled_reason,
        "consecutive_failures": w.consecutive_failures,
        "created_at": time(Some(w.created_at)), "created_by": w.created_by,
        "secret_rotated_at": time(w.secret_rotated_at),
        "previous_secret_expires_at": time(w.previous_expires_at),
    })
}

fn stats_view(s: &WebhookStats) -> serde_json::Value {
    json!({
        "pending": s.pending, "delivered": s.delivered, "failed": s.failed,
        "last_attempt_at": time(s.last_attempt_at), "last_status": s.last_status,
    })
}

async fn load(state: &AppState, id: &str) -> AppResult<Webhook> {
    state
        .store
        .webhook(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no webhook {id}")))
}

/// `GET /admin/v1/webhooks`.
pub async fn list(State(state): State<AppState>) -> AppResult<Json<serde_json::Value>> {
    let all = state.store.webhooks().await?;
    Ok(Json(
        json!({ "webhooks": all.iter().map(view).collect::<Vec<_>>() }),
    ))
}

/// `GET /admin/v1/webhooks/{id}`.
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> AppResult<Json<serde_json::Value>> {
    let w = load(&state, &id).await?;
    let mut v = view(&w);
    v["stats"] = stats_view(&state.store.webhook_stats(&id).await?);
    Ok(Json(v))
}

/// `POST /admin/v1/webhooks`: the secret is in this response only.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> AppResult<(StatusCode, Json<serde_json::Value>)> {
    let url = webhooks::check_url(&body.url, state.config.webhooks.allow_private_addresses)
        .await
        .map_err(|e| match e {
            UrlRefused::Invalid(m) => ApiError::invalid(m),
            UrlRefused::Private(m) => {
                ApiError::client(StatusCode::UNPROCESSABLE_ENTITY, "private_address", m)
            }
        })?;
    let events = body.events.unwrap_or_else(|| vec!["*".to_owned()]);
    webhooks::check_patterns(&events).map_err(ApiError::invalid)?;
    let description = body.description.unwrap_or_default();
    if description.chars().count() > 500 || description.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "description must be at most 500 characters, without control characters",
        ));
    }
    let now = state.clock.now_ms();
    let secret = webhooks::new_secret();
    let w = Webhook {
        id: crate::ids::new_id("wh", now),
        url: url.to_string(),
        events,
        description,
        enabled: true,
        disabled_reason: None,
        consecutive_failures: 0,
        created_at: now,
        created_by: caller.name.clone(),
        secret_rotated_at: None,
        previous_expires_at: None,
        updated_at: now,
        secret: secret.clone(),
        previous_secret: None,
    };
    let entry = caller.audit(
        "webhook.create",
        &w.id,
        json!({"url": w.url, "events": w.events}),
    );
    state.store.insert_webhook(&w, &entry).await?;
    let mut v = view(&w);
    v["secret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(v)))
}

/// `POST /admin/v1/webhooks/{id}/test`: a `test.ping` to this subscription.
pub async fn test(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> AppResult<(StatusCode, Json<serde_json::Value>)> {
    let w = load(&state, &id).await?;
    if !w.enabled {
        return Err(ApiError::conflict(
            "disabled",
            format!(
                "webhook {id} is disabled ({}); enable it first",
                w.disabled_reason.as_deref().unwrap_or("by the server")
            ),
        ));
    }
    let now = state.clock.now_ms();
    let ev = Event::new(
        "test.ping",
        json!({ "webhook_id": id, "by": { "actor": caller.name, "role": caller.role.as_str(), "token_id": caller.token_id } }),
    );
    let entry = caller.audit("webhook.test", &id, json!({}));
    let event_id = state
        .store
        .enqueue_event_audited(&ev, Some(&id), Some(&entry), now)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no webhook {id}")))?;
    WAKE.notify_waiters();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "event_id": event_id, "type": "test.ping" })),
    ))
}

/// `GET /admin/v1/webhooks/{id}/deliveries`: the delivery log, newest first.
pub async fn deliveries(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> AppResult<Json<serde_json::Value>> {
    load(&state, &id).await?;
    let log = state
        .store
        .webhook_attempts(&id, limit(q.limit, 50, 1000))
        .await?;
    Ok(Json(json!({
        "deliveries": log.iter().map(|a| json!({
            "event_id": a.event_id, "event_type": a.event_type, "attempt": a.attempt,
            "at": time(Some(a.at)), "status_code": a.status_code, "latency_ms": a.latency_ms,
            "outcome": a.outcome, "error": a.error,
        })).collect::<Vec<_>>(),
    })))
}

/// `POST /admin/v1/webhooks/{id}/rotate-secret`: the new secret is in this
/// response only; the old one keeps signing (a second `v1=`) for `overlap`.
pub async fn rotate_secret(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> AppResult<Json<serde_json::Value>> {
    let r: Rotate = if body.iter().all(u8::is_ascii_whitespace) {
        Rotate::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("bad_json", format!("body: {e}")))?
    };
    let overlap = match r.overlap.as_deref() {
        None | Some("") => std::time::Duration::from_secs(86_400),
        Some(text) => humantime::parse_duration(text)
            .ok()
            .filter(|d| d.as_secs() <= 30 * 86_400)
            .ok_or_else(|| {
                ApiError::invalid("overlap must be a duration like 24h or 0s, at most 30 days")
            })?,
    };
    let now = state.clock.now_ms();
    let until = now.saturating_add(i64::try_from(overlap.as_millis()).unwrap_or(i64::MAX));
    let secret = webhooks::new_secret();
    let entry = caller.audit(
        "webhook.rotate_secret",
        &id,
        json!({"previous_valid_until": time(Some(until))}),
    );
    if !state
        .store
        .rotate_webhook_secret(&id, &secret, until, &entry, now)
        .await?
    {
        return Err(ApiError::not_found(format!("no webhook {id}")));
    }
    Ok(Json(json!({
        "id": id, "secret": secret, "previous_secret_expires_at": time(Some(until)),
    })))
}

/// `POST /admin/v1/webhooks/{id}/enable`: deliver again after the server
/// disabled it (its failure run starts over; pending deliveries resume).
pub async fn enable(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> AppResult<Json<serde_json::Value>> {
    let now = state.clock.now_ms();
    let entry = caller.audit("webhook.enable", &id, json!({}));
    if !state.store.enable_webhook(&id, &entry, now).await? {
        return Err(ApiError::not_found(format!("no webhook {id}")));
    }
    WAKE.notify_waiters();
    Ok(Json(view(&load(&state, &id).await?)))
}

/// `DELETE /admin/v1/webhooks/{id}`: the subscription, its pending
/// deliveries and its log.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> AppResult<Json<serde_json::Value>> {
    let entry = caller.audit("webhook.delete", &id, json!({}));
    if !state
        .store
        .delete_webhook(&id, &entry, state.clock.now_ms())
        .await?
    {
        return Err(ApiError::not_found(format!("no webhook {id}")));
    }
    Ok(Json(json!({ "id": id, "deleted": true })))
}
