//! `GET /admin/v1/rollouts/{id}/devices?status=&after=&limit=`: the locks of
//! a rollout with their status there (e.g. the failed and rolled-back ones
//! an operator drills into), paged by lock id on the primary key.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;
use sqlx::Row;

use crate::error::{ApiError, AppResult};
use crate::rollouts::outcome::DeviceStatus;
use crate::routes::extract::ApiQuery;
use crate::routes::{limit, time};
use crate::state::AppState;

/// `?status=&after=&limit=`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    status: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
}

/// `GET /admin/v1/rollouts/{id}/devices`.
pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<Query>,
) -> AppResult<Json<serde_json::Value>> {
    if state.store.rollout(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("no rollout {id}")));
    }
    let statuses: Vec<String> = match q.status.as_deref() {
        None | Some("") => Vec::new(),
        Some(list) => {
            let mut out = Vec::new();
            for s in list.split(',').map(str::trim) {
                if !DeviceStatus::ALL.iter().any(|d| d.as_str() == s) {
                    return Err(ApiError::invalid(format!(
                        "status {s:?} is not one of {}",
                        DeviceStatus::ALL.map(DeviceStatus::as_str).join(", ")
                    )));
                }
                out.push(s.to_owned());
            }
            out
        }
    };
    let n = limit(q.limit, 100, 1000);
    let mut sql = String::from(
        "SELECT device_id, wave, status, delivery, reason, updated_at FROM rollout_devices WHERE rollout_id = $1 AND device_id > $2",
    );
    let mut next = 3;
    if !statuses.is_empty() {
        let ph: Vec<String> = (0..statuses.len())
            .map(|i| format!("${}", next + i))
            .collect();
        next += statuses.len();
        sql.push_str(&format!(" AND status IN ({})", ph.join(", ")));
    }
    sql.push_str(&format!(" ORDER BY device_id LIMIT ${next}"));
    let mut query = sqlx::query(&sql)
        .bind(&id)
        .bind(q.after.clone().unwrap_or_default());
    for s in &statuses {
        query = query.bind(s);
    }
    let rows = query
        .bind(n)
        .fetch_all(state.store.pool())
        .await
        .map_err(anyhow::Error::from)?;
    let mut devices = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: String = r.try_get("device_id").map_err(anyhow::Error::from)?;
        devices.push(json!({
            "id": id,
            "wave": r.try_get::<i64, _>("wave").map_err(anyhow::Error::from)?,
            "status": r.try_get::<String, _>("status").map_err(anyhow::Error::from)?,
            "delivery": r.try_get::<String, _>("delivery").map_err(anyhow::Error::from)?,
            "reason": r.try_get::<Option<String>, _>("reason").map_err(anyhow::Error::from)?,
            "updated_at": time(Some(r.try_get::<i64, _>("updated_at").map_err(anyhow::Error::from)?)),
        }));
    }
    let next_after = if i64::try_from(devices.len()).unwrap_or(0) == n {
        devices
            .last()
            .and_then(|d| d["id"].as_str().map(str::to_owned))
    } else {
        None
    };
    Ok(Json(
        json!({ "devices": devices, "next_after": next_after }),
    ))
}
