//! Admin: move the manual clock (servers started with `--clock manual`,
//! for fleet simulations in virtual time).

use axum::extract::State;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Caller;
use crate::clock::{parse_rfc3339, rfc3339};
use crate::error::{ApiError, AppResult};
use crate::routes::extract::ApiJson;
use crate::state::AppState;

/// Set (`time`, RFC 3339) or advance (`advance_secs`) the clock.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetClock {
    /// New time.
    #[serde(default)]
    pub time: Option<String>,
    /// Seconds to move forward.
    #[serde(default)]
    pub advance_secs: Option<u64>,
}

/// `POST /admin/v1/clock`.
pub async fn set(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<SetClock>,
) -> AppResult<Json<serde_json::Value>> {
    let Some(clock) = &state.manual_clock else {
        return Err(ApiError::conflict(
            "clock_not_manual",
            "the server runs on the system clock (start it with --clock manual)",
        ));
    };
    // The entry is written before the clock moves (the clock lives in
    // memory, not in the database): a change is never made unrecorded.
    let before = state.clock.now_ms();
    let (target, detail) = match (&body.time, body.advance_secs) {
        (Some(t), None) => {
            let ms = parse_rfc3339(t).map_err(ApiError::invalid)?;
            (ms, json!({"time": rfc3339(ms), "from": rfc3339(before)}))
        }
        (None, Some(s)) => {
            let ms = before.saturating_add(i64::try_from(s).unwrap_or(0).saturating_mul(1000));
            (
                ms,
                json!({"time": rfc3339(ms), "from": rfc3339(before), "advance_secs": s}),
            )
        }
        _ => {
            return Err(ApiError::invalid(
                "give exactly one of time or advance_secs",
            ));
        }
    };
    state
        .store
        .audit(&caller.audit("clock.set", "clock", detail), target)
        .await?;
    match body.advance_secs {
        Some(s) => clock.advance_ms(i64::try_from(s).unwrap_or(0).saturating_mul(1000)),
        None => clock.set_ms(target),
    }
    // Expiries the repository signs and checks follow this clock (the
    // repository host reads it through `RepoClock`): nothing else to move.
    let now = state.clock.now_ms();
    // Time jumped: re-sign the timestamp now if it is due, rather than at
    // the next real-time refresh tick (simulations move days in seconds).
    if let Err(e) = state.repo.refresh_if_due().await {
        tracing::warn!(error = %e, "repository refresh after a clock change failed");
    }
    Ok(Json(json!({ "time": rfc3339(now) })))
}
