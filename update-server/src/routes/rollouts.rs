//! Admin: create rollouts, start, pause, resume, abort them, and see their
//! progress per wave, per delivery (patch or full) and per version.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use nightlatch_repo::repo::target::Kind;
use serde::Deserialize;
use serde_json::json;

use crate::auth::Caller;
use crate::clock::parse_rfc3339;
use crate::error::{ApiError, AppResult};
use crate::ids::{check_name, new_id};
use crate::rollouts::outcome::DeviceStatus;
use crate::rollouts::{FailureThreshold, Rollout, RolloutSpec, RolloutState, Wave};
use crate::routes::devices::optional_reason;
use crate::routes::extract::{ApiBytes, ApiJson, ApiQuery};
use crate::routes::rollout_preview as preview;
use crate::routes::{limit, time};
use crate::state::AppState;

/// One wave as the API takes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaveInput {
    /// Cumulative share of eligible locks, (0, 1].
    pub share: f64,
    /// Minimum soak before the next wave (`30m`, `1d`); default 0.
    #[serde(default)]
    pub min_soak: Option<String>,
}

/// `POST /admin/v1/rollouts`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRollout {
    /// Name.
    pub name: String,
    /// Published firmware target (`model/version.nlfw`).
    pub target: String,
    /// Only locks on these versions (default: any older).
    #[serde(default)]
    pub from_versions: Vec<String>,
    /// Only locks in one of these groups (default: all).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Waves (default: one wave of 100%).
    #[serde(default)]
    pub waves: Vec<WaveInput>,
    /// Auto-pause rule (default: 20% with a minimum sample of 10).
    #[serde(default)]
    pub failure_threshold: Option<FailureThreshold>,
    /// Not before (RFC 3339).
    #[serde(default)]
    pub start_at: Option<String>,
    /// Install by (RFC 3339).
    #[serde(default)]
    pub security_deadline: Option<String>,
    /// Start at once (default: stay a draft).
    #[serde(default)]
    pub start: bool,
}

/// Query of the list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<i64>,
}

fn state_view(r: &Rollout, now: i64) -> serde_json::Value {
    let wave = r.effective_wave(now);
    json!({
        "id": r.id,
        "name": r.name,
        "target": r.target,
        "hardware_model": r.hardware_model,
        "target_version": r.target_version,
        "state": r.state,
        "state_reason": r.state_reason,
        "current_wave": wave.map(|w| w.0),
        "current_wave_started_at": time(wave.map(|w| w.1)),
        "successes": r.successes,
        "failures": r.failures,
        "failure_threshold": r.spec.failure,
        "from_versions": r.spec.from_versions,
        "groups": r.spec.groups,
        "start_at": time(r.spec.start_at),
        "security_deadline": time(r.spec.security_deadline),
        "created_at": time(Some(r.created_at)),
        "updated_at": time(Some(r.updated_at)),
        "created_by": r.created_by,
    })
}

fn time_arg(what: &str, text: &Option<String>) -> AppResult<Option<i64>> {
    text.as_deref()
        .map(|t| parse_rfc3339(t).map_err(|e| ApiError::invalid(format!("{what}: {e}"))))
        .transpose()
}

/// A rollout from a create body, checked (the target must be a published
/// firmware image, the spec valid), in state draft, not stored.
fn build(
    state: &AppState,
    body: &CreateRollout,
    id: String,
    now: i64,
    created_by: &str,
) -> AppResult<Rollout> {
    if body.name.is_empty() || body.name.len() > 200 {
        return Err(ApiError::invalid("name must be 1 to 200 characters"));
    }
    for g in &body.groups {
        check_name("group", g).map_err(ApiError::invalid)?;
    }
    let catalog = state.repo.catalog();
    let target = catalog.get(&body.target).ok_or_else(|| {
        ApiError::invalid(format!(
            "{} is not a published target of the image repository",
            body.target
        ))
    })?;
    if target.kind != Kind::Firmware {
        return Err(ApiError::invalid(
            "a rollout names a firmware image, not a patch",
        ));
    }
    let mut waves = Vec::new();
    for (i, w) in body.waves.iter().enumerate() {
        let soak = match &w.min_soak {
            None => 0,
            Some(t) => humantime::parse_duration(t)
                .map_err(|e| ApiError::invalid(format!("waves[{i}].min_soak: {e}")))?
                .as_secs(),
        };
        waves.push(Wave {
            share: w.share,
            min_soak_secs: soak,
        });
    }
    if waves.is_empty() {
        waves.push(Wave {
            share: 1.0,
            min_soak_secs: 0,
        });
    }
    let spec = RolloutSpec {
        from_versions: body.from_versions.clone(),
        groups: body.groups.clone(),
        waves,
        failure: body.failure_threshold.unwrap_or(FailureThreshold {
            rate: 0.2,
            min_sample: 10,
        }),
        start_at: time_arg("start_at", &body.start_at)?,
        security_deadline: time_arg("security_deadline", &body.security_deadline)?,
    };
    spec.validate().map_err(ApiError::invalid)?;
    Ok(Rollout {
        id,
        name: body.name.clone(),
        target: target.name.clone(),
        hardware_model: target.hardware_model.clone(),
        target_version: target.version.clone(),
        spec,
        state: RolloutState::Draft,
        state_reason: None,
        wave_index: 0,
        wave_started_at: None,
        paused_at: None,
        successes: 0,
        failures: 0,
        created_at: now,
        updated_at: now,
        created_by: created_by.to_owned(),
    })
}

/// `POST /admin/v1/rollouts`.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<CreateRollout>,
) -> AppResult<(StatusCode, Json<serde_json::Value>)> {
    let now = state.clock.now_ms();
    let mut r = build(&state, &body, new_id("ro", now), now, &caller.name)?;
    if body.start {
        r.start(now)
            .map_err(|e| ApiError::conflict("invalid_state", e))?;
    }
    let entry = caller.audit(
        "rollout.create",
        &r.id,
        json!({"name": r.name, "target": r.target, "spec": r.spec, "started": body.start}),
    );
    state.store.insert_rollout(&r, &entry).await?;
    Ok((StatusCode::CREATED, Json(state_view(&r, now))))
}

/// `POST /admin/v1/rollouts/preview`: what `POST /admin/v1/rollouts` with
/// the same body would do, creating nothing (see [`crate::rollouts::preview`]).
pub async fn preview(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<CreateRollout>,
) -> AppResult<Json<serde_json::Value>> {
    let now = state.clock.now_ms();
    let r = build(
        &state,
        &body,
        preview::provisional_id(&body.target, &body.name),
        now,
        &caller.name,
    )?;
    let soaks: Vec<String> = body
        .waves
        .iter()
        .map(|w| w.min_soak.clone().unwrap_or_else(|| "0s".into()))
        .chain(std::iter::repeat("0s".to_owned()))
        .take(r.spec.waves.len())
        .collect();
    let p = preview::run(&state, r, now).await?;
    Ok(Json(p.view(&soaks)))
}

/// `GET /admin/v1/rollouts`.
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<Json<serde_json::Value>> {
    let now = state.clock.now_ms();
    let rollouts = state.store.rollouts(limit(q.limit, 100, 1000)).await?;
    Ok(Json(json!({
        "rollouts": rollouts.iter().map(|r| state_view(r, now)).collect::<Vec<_>>(),
    })))
}

async fn load(state: &AppState, id: &str) -> AppResult<Rollout> {
    state
        .store
        .rollout(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no rollout {id}")))
}

/// `GET /admin/v1/rollouts/{id}`: the rollout, each wave with its locks by
/// status and delivery, and the model's fleet by version.
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> AppResult<Json<serde_json::Value>> {
    let r = load(&state, &id).await?;
    let now = state.clock.now_ms();
    let counts = state.store.wave_counts(&id).await?;
    let current = r.effective_wave(now);
    let mut started = r.wave_started_at;
    let mut waves = Vec::new();
    for (i, w) in r.spec.waves.iter().enumerate() {
        let mut by_status: BTreeMap<&str, i64> =
            DeviceStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        let mut by_delivery: BTreeMap<String, i64> = BTreeMap::new();
        for c in counts.iter().filter(|c| c.wave == i as i64) {
            if let Some(slot) = by_status.get_mut(c.status.as_str()) {
                *slot += c.count;
            }
            *by_delivery.entry(c.delivery.clone()).or_default() += c.count;
        }
        let wave_state = match current {
            Some((cur, _)) if i < cur => "done",
            Some((cur, _)) if i == cur => "active",
            _ => "pending",
        };
        let this_started = match current {
            Some((cur, s)) if i == cur => Some(s),
            Some((cur, _)) if i < cur => started,
            _ => None,
        };
        if let Some(s) = started {
            started = Some(
                s.saturating_add(
                    i64::try_from(w.min_soak_secs)
                        .unwrap_or(0)
                        .saturating_mul(1000),
                ),
            );
        }
        for (status, n) in &by_status {
            state
                .metrics
                .rollout_devices
                .with_label_values(&[r.id.as_str(), i.to_string().as_str(), status])
                .set(*n);
        }
        waves.push(json!({
            "index": i,
            "share": w.share,
            "min_soak_secs": w.min_soak_secs,
            "state": wave_state,
            "started_at": time(this_started),
            "devices": by_status,
            "deliveries": by_delivery,
        }));
    }
    let versions = state.store.version_counts(Some(&r.hardware_model)).await?;
    let mut view = state_view(&r, now);
    view["waves"] = json!(waves);
    view["fleet_by_version"] = json!(
        versions
            .iter()
            .map(|v| json!({"version": v.firmware_version, "count": v.count}))
            .collect::<Vec<_>>()
    );
    Ok(Json(view))
}

async fn transition(
    state: AppState,
    caller: Caller,
    id: String,
    body: &[u8],
    action: &str,
    apply: impl FnOnce(&mut Rollout, i64, &str) -> Result<(), String>,
) -> AppResult<Json<serde_json::Value>> {
    let reason = optional_reason(body)?;
    let mut r = load(&state, &id).await?;
    let before = r.state;
    let now = state.clock.now_ms();
    let why = reason
        .clone()
        .unwrap_or_else(|| format!("{action} by {}", caller.name));
    apply(&mut r, now, &why).map_err(|e| ApiError::conflict("invalid_state", e))?;
    let entry = caller.audit(
        &format!("rollout.{action}"),
        &id,
        json!({"from": before, "to": r.state, "reason": reason, "name": r.name, "target": r.target}),
    );
    if !state.store.transition_rollout(&r, before, &entry).await? {
        return Err(ApiError::conflict(
            "invalid_state",
            "the rollout changed meanwhile; try again",
        ));
    }
    Ok(Json(state_view(&r, now)))
}

/// `POST /admin/v1/rollouts/{id}/start`.
pub async fn start(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiBytes(body): ApiBytes,
) -> AppResult<Json<serde_json::Value>> {
    transition(state, caller, id, &body, "start", |r, now, _| r.start(now)).await
}

/// `POST /admin/v1/rollouts/{id}/pause`.
pub async fn pause(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiBytes(body): ApiBytes,
) -> AppResult<Json<serde_json::Value>> {
    transition(state, caller, id, &body, "pause", |r, now, why| {
        r.pause(now, why)
    })
    .await
}

/// `POST /admin/v1/rollouts/{id}/resume`.
pub async fn resume(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiBytes(body): ApiBytes,
) -> AppResult<Json<serde_json::Value>> {
    transition(state, caller, id, &body, "resume", |r, now, _| {
        r.resume(now)
    })
    .await
}

/// `POST /admin/v1/rollouts/{id}/abort`.
pub async fn abort(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiBytes(body): ApiBytes,
) -> AppResult<Json<serde_json::Value>> {
    transition(state, caller, id, &body, "abort", |r, now, why| {
        r.abort(now, why)
    })
    .await
}
