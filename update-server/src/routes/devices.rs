//! Admin: register and import locks, look them up, revoke them, read their history.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use ed25519_dalek::VerifyingKey;
use ed25519_dalek::pkcs8::DecodePublicKey;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Caller;
use crate::error::{ApiError, AppResult};
use crate::ids::check_name;
use crate::routes::extract::{ApiBytes, ApiJson, ApiQuery};
use crate::routes::{limit, time};
use crate::state::AppState;
use crate::store::devices::{Device, DeviceEvent, DeviceFilter, NewDevice, RegisterError};

/// A lock to register.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterDevice {
    /// Lock id (1–128 of `A-Z a-z 0-9 . _ : -`).
    pub id: String,
    /// Hardware model.
    pub hardware_model: String,
    /// Ed25519 public key: 64 hex digits, or a SubjectPublicKeyInfo PEM.
    pub public_key: String,
    /// Site (install policy); default `default`.
    #[serde(default)]
    pub site: Option<String>,
    /// Groups / tags.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Many locks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportDevices {
    /// The locks.
    pub devices: Vec<RegisterDevice>,
}

/// Optional reason for an action.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Why (goes to the audit log).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Query of the device list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    prefix: Option<String>,
    model: Option<String>,
    site: Option<String>,
    group: Option<String>,
    version: Option<String>,
    status: Option<String>,
    seen_after: Option<String>,
    seen_before: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
}

/// The device list's `total` counts at most this many matches (then
/// `total_capped` is true): an exact count over 100,000 locks with several
/// filters may touch every row.
pub const TOTAL_CAP: i64 = 10_000;

/// Query of a history.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    before: Option<String>,
    limit: Option<i64>,
}

/// The `reason` of an optional JSON body `{"reason": "…"}` (empty body: none).
pub fn optional_reason(body: &[u8]) -> AppResult<Option<String>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let r: Reason = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "malformed_json",
            format!("expected {{\"reason\": \"…\"}}: {e}"),
        )
    })?;
    if let Some(text) = &r.reason
        && text.len() > 1000
    {
        return Err(ApiError::invalid("reason is longer than 1000 characters"));
    }
    Ok(r.reason)
}

fn parse_key(text: &str) -> Result<String, String> {
    let text = text.trim();
    let key = if text.starts_with("-----BEGIN PUBLIC KEY-----") {
        VerifyingKey::from_public_key_pem(text).map_err(|e| format!("public_key PEM: {e}"))?
    } else {
        let bytes: [u8; 32] = hex::decode(text)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or("public_key must be 64 hex digits or a PEM public key")?;
        VerifyingKey::from_bytes(&bytes).map_err(|_| "public_key is not a valid Ed25519 point")?
    };
    if key.is_weak() {
        return Err("public_key is a weak (small-order) Ed25519 key".into());
    }
    Ok(hex::encode(key.as_bytes()))
}

fn validate(d: &RegisterDevice) -> Result<NewDevice, String> {
    check_name("device id", &d.id)?;
    check_name("hardware_model", &d.hardware_model)?;
    let site = d.site.clone().unwrap_or_else(|| "default".into());
    check_name("site", &site)?;
    if d.groups.len() > 32 {
        return Err("at most 32 groups".into());
    }
    for g in &d.groups {
        check_name("group", g)?;
    }
    let mut groups = d.groups.clone();
    groups.sort();
    groups.dedup();
    Ok(NewDevice {
        id: d.id.clone(),
        hardware_model: d.hardware_model.clone(),
        public_key: parse_key(&d.public_key)?,
        site,
        groups,
    })
}

/// A lock as the API shows it.
pub fn view(d: &Device) -> serde_json::Value {
    json!({
        "id": d.id,
        "hardware_model": d.hardware_model,
        "public_key": d.public_key,
        "site": d.site,
        "groups": d.groups,
        "status": d.status,
        "registered_at": time(Some(d.registered_at)),
        "revoked_at": time(d.revoked_at),
        "last_seen": time(d.last_seen),
        "last_counter": d.last_counter,
        "firmware": d.firmware_version.as_ref().map(|v| json!({"version": v, "security_counter": d.security_counter})),
        "boot_state": d.boot_state,
        "battery_percent": d.battery_percent,
        "time_zone": d.time_zone,
        "last_update": d.last_outcome.as_ref().map(|o| json!({"target": d.last_target, "outcome": o, "reason": d.last_reason})),
        "rollout": d.assigned_rollout.as_ref().map(|r| json!({"id": r, "target": d.assigned_target})),
        "director": {
            "version": d.director.version,
            "sha256": d.director.sha256,
            "expires": time(d.director.expires),
            "assignment": d.director.key.as_deref().map(|k| k.split('|').next().unwrap_or_default()),
        },
    })
}

fn register_error(e: RegisterError) -> ApiError {
    match e {
        RegisterError::Exists(_) | RegisterError::Duplicate(_) => {
            ApiError::conflict("exists", e.to_string())
        }
        RegisterError::Other(e) => ApiError::Internal(e),
    }
}

/// `POST /admin/v1/devices`.
pub async fn register(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<RegisterDevice>,
) -> AppResult<(StatusCode, Json<serde_json::Value>)> {
    let d = validate(&body).map_err(ApiError::invalid)?;
    let now = state.clock.now_ms();
    let entry = caller.audit(
        "device.register",
        &d.id,
        json!({"hardware_model": d.hardware_model, "site": d.site, "groups": d.groups}),
    );
    state
        .store
        .register_devices(std::slice::from_ref(&d), now, &entry)
        .await
        .map_err(register_error)?;
    let dev = state
        .store
        .device(&d.id)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("registered lock vanished")))?;
    Ok((StatusCode::CREATED, Json(view(&dev))))
}

/// `POST /admin/v1/devices/import`.
pub async fn import(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<ImportDevices>,
) -> AppResult<(StatusCode, Json<serde_json::Value>)> {
    if body.devices.is_empty() || body.devices.len() > 100_000 {
        return Err(ApiError::invalid("import 1 to 100000 locks at a time"));
    }
    let devices = body
        .devices
        .iter()
        .enumerate()
        .map(|(i, d)| validate(d).map_err(|e| format!("devices[{i}]: {e}")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::invalid)?;
    let now = state.clock.now_ms();
    let entry = caller.audit(
        "device.import",
        &format!("{} lock(s)", devices.len()),
        json!({"count": devices.len(), "first": devices.first().map(|d| &d.id), "last": devices.last().map(|d| &d.id)}),
    );
    state
        .store
        .register_devices(&devices, now, &entry)
        .await
        .map_err(register_error)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "imported": devices.len() })),
    ))
}

fn time_query(what: &str, text: Option<&str>) -> AppResult<Option<i64>> {
    text.map(|t| {
        crate::clock::parse_rfc3339(t)
            .map_err(|e| ApiError::bad_request("bad_query", format!("{what}: {e}")))
    })
    .transpose()
}

/// `GET /admin/v1/devices`: filters `prefix` (id prefix), `model`, `site`,
/// `group`, `version` (reported firmware version), `status` (`active` or
/// `revoked`), `seen_after` / `seen_before` (RFC 3339, last check-in in
/// `[seen_after, seen_before)`); keyset paging by id (`after`, `limit`);
/// `total` counts every match (not only this page), up to [`TOTAL_CAP`].
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<Json<serde_json::Value>> {
    if let Some(p) = q.prefix.as_deref().filter(|p| !p.is_empty()) {
        check_name("prefix", p).map_err(|e| ApiError::bad_request("bad_query", e))?;
    }
    if let Some(s) = &q.status
        && s != "active"
        && s != "revoked"
    {
        return Err(ApiError::bad_request(
            "bad_query",
            "status must be active or revoked",
        ));
    }
    let empty_none = |v: Option<String>| v.filter(|s| !s.is_empty());
    let filter = DeviceFilter {
        prefix: empty_none(q.prefix),
        hardware_model: empty_none(q.model),
        site: empty_none(q.site),
        group: empty_none(q.group),
        firmware_version: empty_none(q.version),
        status: empty_none(q.status),
        seen_after: time_query("seen_after", q.seen_after.as_deref())?,
        seen_before: time_query("seen_before", q.seen_before.as_deref())?,
        after: q.after,
        limit: limit(q.limit, 100, 1000),
    };
    let (devices, (total, capped)) = tokio::try_join!(
        state.store.devices(&filter),
        state.store.count_devices(&filter, TOTAL_CAP)
    )?;
    let next = devices.last().map(|d| d.id.clone());
    Ok(Json(json!({
        "devices": devices.iter().map(view).collect::<Vec<_>>(),
        "next_after": next,
        "total": total,
        "total_capped": capped,
    })))
}

/// `GET /admin/v1/devices/{id}`.
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> AppResult<Json<serde_json::Value>> {
    let d = state
        .store
        .device(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no lock {id}")))?;
    Ok(Json(view(&d)))
}

/// `GET /admin/v1/devices/{id}/history`.
pub async fn history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> AppResult<Json<serde_json::Value>> {
    if state.store.device(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("no lock {id}")));
    }
    let events = state
        .store
        .device_history(&id, q.before.as_deref(), limit(q.limit, 100, 1000))
        .await?;
    let view = |e: &DeviceEvent| json!({"id": e.id, "at": time(Some(e.at)), "kind": e.kind, "detail": e.detail});
    Ok(Json(
        json!({ "events": events.iter().map(view).collect::<Vec<_>>() }),
    ))
}

/// `POST /admin/v1/devices/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiBytes(body): ApiBytes,
) -> AppResult<Json<serde_json::Value>> {
    let reason = optional_reason(&body)?;
    let entry = caller.audit("device.revoke", &id, json!({ "reason": reason }));
    if !state
        .store
        .revoke_device(&id, state.clock.now_ms(), &entry)
        .await?
    {
        return match state.store.device(&id).await? {
            None => Err(ApiError::not_found(format!("no lock {id}"))),
            Some(_) => Err(ApiError::conflict(
                "invalid_state",
                format!("lock {id} is already revoked"),
            )),
        };
    }
    Ok(Json(json!({ "id": id, "status": "revoked" })))
}
