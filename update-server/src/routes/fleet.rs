//! Admin fleet queries: versions × models, locks below a minimum secure
//! version or security counter, locks not seen for N days.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::json;

use crate::error::{ApiError, AppResult};
use crate::rollouts::version;
use crate::routes::extract::ApiQuery;
use crate::routes::{limit, time};
use crate::state::AppState;
use crate::store::fleet::FleetDevice;

/// `?model=`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionsQuery {
    model: Option<String>,
}

/// `?model=&min_version=&min_security_counter=&limit=`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BelowQuery {
    model: Option<String>,
    min_version: Option<String>,
    min_security_counter: Option<i64>,
    limit: Option<i64>,
}

/// `?days=&limit=`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaleQuery {
    days: f64,
    limit: Option<i64>,
}

fn device(d: &FleetDevice) -> serde_json::Value {
    json!({
        "id": d.id, "hardware_model": d.hardware_model, "firmware_version": d.firmware_version,
        "security_counter": d.security_counter, "last_seen": time(d.last_seen),
    })
}

/// `GET /admin/v1/fleet/versions` (from the per-process cache of the
/// table, at most `store::fleet::COUNTS_TTL` old; see `store::fleet`).
pub async fn versions(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<VersionsQuery>,
) -> AppResult<Json<serde_json::Value>> {
    let counts = state
        .store
        .version_counts_cached(q.model.as_deref())
        .await?;
    Ok(Json(json!({ "counts": counts })))
}

/// `GET /admin/v1/fleet/below-minimum`.
pub async fn below_minimum(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<BelowQuery>,
) -> AppResult<Json<serde_json::Value>> {
    let order = match &q.min_version {
        Some(v) => Some(
            version::order(v)
                .ok_or_else(|| ApiError::invalid("min_version must be MAJOR.MINOR.PATCH"))?,
        ),
        None => None,
    };
    let limit = limit(q.limit, 1000, 100_000);
    if order.is_none() && q.min_security_counter.is_none() {
        // No minimum given: each model's stored minimum secure version
        // (PUT /admin/v1/fleet/minimums/{model}).
        let mut devices = Vec::new();
        for (model, m) in state.store.minimums().await? {
            if q.model.as_deref().is_some_and(|want| want != model) {
                continue;
            }
            let left = limit - i64::try_from(devices.len()).unwrap_or(limit);
            if left <= 0 {
                break;
            }
            devices.extend(
                state
                    .store
                    .below_minimum(Some(&model), m.min_order, m.min_security_counter, left)
                    .await?,
            );
        }
        return Ok(Json(
            json!({ "devices": devices.iter().map(device).collect::<Vec<_>>(), "minimums": "stored" }),
        ));
    }
    let devices = state
        .store
        .below_minimum(q.model.as_deref(), order, q.min_security_counter, limit)
        .await?;
    Ok(Json(
        json!({ "devices": devices.iter().map(device).collect::<Vec<_>>() }),
    ))
}

/// `GET /admin/v1/fleet/stale`.
pub async fn stale(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<StaleQuery>,
) -> AppResult<Json<serde_json::Value>> {
    if !(q.days >= 0.0 && q.days < 36_500.0) {
        return Err(ApiError::invalid("days must be between 0 and 36500"));
    }
    let before = state.clock.now_ms() - (q.days * 86_400_000.0) as i64;
    let devices = state
        .store
        .not_seen_since(before, limit(q.limit, 1000, 100_000))
        .await?;
    Ok(Json(
        json!({ "devices": devices.iter().map(device).collect::<Vec<_>>() }),
    ))
}
