//! Admin: the minimum secure version per hardware model
//! (`GET /admin/v1/fleet/minimums`, `PUT /admin/v1/fleet/minimums/{model}`);
//! see [`crate::store::minimums`].

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Caller;
use crate::error::{ApiError, AppResult};
use crate::rollouts::version;
use crate::routes::extract::ApiJson;
use crate::routes::time;
use crate::state::AppState;
use crate::store::minimums::Minimum;

/// `PUT /admin/v1/fleet/minimums/{model}`: both fields absent or null
/// clears the model's minimum.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetMinimum {
    /// Lowest secure version, `MAJOR.MINOR.PATCH`.
    #[serde(default)]
    pub min_version: Option<String>,
    /// Lowest secure security counter.
    #[serde(default)]
    pub min_security_counter: Option<i64>,
}

fn view(model: &str, m: &Minimum) -> serde_json::Value {
    json!({
        "hardware_model": model, "min_version": m.min_version,
        "min_security_counter": m.min_security_counter,
        "set_at": time(Some(m.set_at)), "set_by": m.set_by,
    })
}

/// `GET /admin/v1/fleet/minimums`.
pub async fn list(State(state): State<AppState>) -> AppResult<Json<serde_json::Value>> {
    let all = state.store.minimums().await?;
    Ok(Json(json!({
        "minimums": all.iter().map(|(model, m)| view(model, m)).collect::<Vec<_>>(),
    })))
}

/// `PUT /admin/v1/fleet/minimums/{model}`.
pub async fn set(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(model): Path<String>,
    ApiJson(body): ApiJson<SetMinimum>,
) -> AppResult<Json<serde_json::Value>> {
    crate::ids::check_name("hardware model", &model).map_err(ApiError::invalid)?;
    let min_order = match &body.min_version {
        Some(v) => Some(
            version::order(v)
                .ok_or_else(|| ApiError::invalid("min_version must be MAJOR.MINOR.PATCH"))?,
        ),
        None => None,
    };
    if body
        .min_security_counter
        .is_some_and(|c| !(0..=i64::from(u32::MAX)).contains(&c))
    {
        return Err(ApiError::invalid(
            "min_security_counter must be between 0 and 4294967295",
        ));
    }
    let now = state.clock.now_ms();
    let minimum =
        (body.min_version.is_some() || body.min_security_counter.is_some()).then(|| Minimum {
            min_version: body.min_version.clone(),
            min_order,
            min_security_counter: body.min_security_counter,
            set_at: now,
            set_by: caller.name.clone(),
        });
    let entry = caller.audit(
        "fleet.minimum",
        &model,
        json!({"min_version": body.min_version, "min_security_counter": body.min_security_counter}),
    );
    state
        .store
        .set_minimum(&model, minimum.clone(), &entry, now)
        .await?;
    Ok(Json(match &minimum {
        Some(m) => view(&model, m),
        None => json!({"hardware_model": model, "cleared": true}),
    }))
}
