//! Admin: a lock's learned usage (`GET /admin/v1/devices/{id}/usage`), as
//! its last usage summary reported it: the quiet slot of each local weekday
//! and the 7×24 heat map (see `lock_app::scheduler::summary`). 404
//! `not_found` for an unknown lock, 404 `no_usage` for one that has not
//! sent a summary yet.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lock_app::scheduler::summary::UsageSummary;
use serde_json::{Value, json};

use crate::error::{ApiError, AppResult};
use crate::routes::time;
use crate::state::AppState;
use crate::store::devices::ReportedUsage;

const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

fn hh_mm(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60 % 24, minutes % 60)
}

/// The JSON view of a summary.
pub fn view(s: &UsageSummary) -> Value {
    let quiet: Vec<Value> = DAYS
        .iter()
        .zip(s.quiet)
        .map(|(day, q)| match q {
            Some(q) => {
                let (start, len) = (u32::from(q.start_minute()), u32::from(q.minutes()));
                json!({"day": day, "start": hh_mm(start), "end": hh_mm(start + len), "minutes": len})
            }
            None => json!({"day": day, "start": null, "end": null, "minutes": 0}),
        })
        .collect();
    let heat: Vec<Vec<u8>> = (0..7)
        .map(|d| (0..24).map(|h| s.heat_at(d, h)).collect())
        .collect();
    json!({
        "quiet_slots": quiet,
        "heat": heat,
        "heat_levels": ["never (below 1/128 of the peak)", "rare (from 1/128)", "some (from 1/16)", "busy (from 1/4 of the peak)"],
        "peak_entries_per_hour": s.peak_entries(),
        "epoch_week": s.epoch_week,
        "weeks_learned": s.weeks_learned,
    })
}

/// `GET /admin/v1/devices/{id}/usage`.
pub async fn show(State(state): State<AppState>, Path(id): Path<String>) -> AppResult<Json<Value>> {
    let Some(ReportedUsage {
        summary,
        reported_at,
    }) = state.store.device_usage(&id).await?
    else {
        return Err(if state.store.device(&id).await?.is_none() {
            ApiError::not_found(format!("no lock {id}"))
        } else {
            ApiError::client(
                StatusCode::NOT_FOUND,
                "no_usage",
                format!("lock {id} has not reported its usage yet"),
            )
        });
    };
    let mut v = view(&summary);
    v["id"] = json!(id);
    v["reported_at"] = json!(time(Some(reported_at)));
    Ok(Json(v))
}
