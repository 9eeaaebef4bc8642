//! Admin: expiry of every TUF role of both repositories
//! (`GET /admin/v1/repo/health?warning_days=N`), for the console's warning
//! banner and `nightlatch repo health`.
//!
//! * **image**: the roles clients are served — the committed root, the
//!   committed `timestamp.json`, the snapshot it names, and the top-level
//!   and delegated targets that snapshot lists (read through the same
//!   cache that serves them). Keys and thresholds from the root (top-level
//!   roles) or from the delegating targets metadata (delegated roles).
//! * **director**: its newest root; its `targets` role as the server signs
//!   each lock's metadata now (per lock, so `version` is null, and
//!   `expires` is now + `director.targets_expires`); its `timestamp` role
//!   (the signed time in every check-in response, which has no expiry).
//!
//! `warning` is true when a role expires within its `warn_within_s`:
//! `warning_days` (default 7) for roles signed offline (`online: false`:
//! roots, targets, delegated targets); for roles the server re-signs by
//! itself (`online: true`) the smaller of that and a quarter of the
//! timestamp lifetime (`repo.timestamp_expires`), because they normally
//! have less than `warning_days` left and only run low when re-signing
//! fails (the image timestamp is re-signed with half its lifetime left, the
//! snapshot before it would expire ahead of the timestamp).

use nightlatch_repo::metadata::Metadata as _;
use std::collections::BTreeMap;
use std::path::Path;

use axum::Json;
use axum::extract::State;
use nightlatch_repo::metadata::{
    Expiry, KeyId, PublicKey, RoleKeys, Root, Signed, Snapshot, Targets, Timestamp,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, AppResult};
use crate::routes::extract::ApiQuery;
use crate::state::AppState;

/// `?warning_days=`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthQuery {
    warning_days: Option<u32>,
}

/// Default `warning_days`.
pub const DEFAULT_WARNING_DAYS: u32 = 7;

/// One role's row.
struct RoleRow<'a> {
    role: String,
    version: Option<u64>,
    expires: Option<Expiry>,
    online: bool,
    threshold: u32,
    keyids: &'a [KeyId],
    keys: &'a BTreeMap<KeyId, PublicKey>,
}

/// Thresholds for `warning`, and now.
struct Rules {
    now_ms: i64,
    offline_s: i64,
    online_s: i64,
}

impl RoleRow<'_> {
    fn view(&self, rules: &Rules) -> Value {
        let warn_within = if self.online {
            rules.online_s
        } else {
            rules.offline_s
        };
        let expires_in = self.expires.map(|e| {
            i64::try_from(e.unix())
                .unwrap_or(i64::MAX)
                .saturating_sub(rules.now_ms.div_euclid(1000))
        });
        json!({
            "role": self.role,
            "version": self.version,
            "expires": self.expires.map(|e| crate::clock::rfc3339(i64::try_from(e.unix()).unwrap_or(i64::MAX / 1000) * 1000)),
            "expires_in_s": expires_in,
            "warning": expires_in.is_some_and(|s| s < warn_within),
            "warn_within_s": warn_within,
            "online": self.online,
            "threshold": self.threshold,
            "keys": self.keyids.iter().map(|id| {
                let k = self.keys.get(id);
                json!({"keyid": id.as_str(), "keytype": k.map(|k| k.keytype()), "scheme": k.map(|k| k.scheme())})
            }).collect::<Vec<_>>(),
        })
    }
}

async fn served<T: nightlatch_repo::metadata::Metadata>(
    state: &AppState,
    key: &str,
) -> AppResult<Option<Signed<T>>> {
    let Some(file) = state.repo.served_metadata(key).await? else {
        return Ok(None);
    };
    Signed::<T>::parse(&file.bytes, Path::new(key))
        .map(Some)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("served {key}: {e}")))
}

fn top_level<'a>(root: &'a Root, role: &str) -> (u32, &'a [KeyId]) {
    root.role(role)
        .map_or((0, &[][..]), |r: &RoleKeys| (r.threshold, &r.keyids[..]))
}

/// `GET /admin/v1/repo/health`.
pub async fn show(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<HealthQuery>,
) -> AppResult<Json<Value>> {
    let warning_days = q.warning_days.unwrap_or(DEFAULT_WARNING_DAYS);
    if warning_days > 3650 {
        return Err(ApiError::bad_request(
            "bad_query",
            "warning_days must be 0 to 3650",
        ));
    }
    Ok(Json(report(&state, warning_days).await?))
}

/// Every role of both repositories with its expiry and a warning flag (the
/// body of `GET /admin/v1/repo/health`; also read by the webhook watcher).
pub async fn report(state: &AppState, warning_days: u32) -> AppResult<Value> {
    let offline_s = i64::from(warning_days) * 86_400;
    let ts_quarter =
        i64::try_from(state.config.repo.timestamp_expires.as_secs() / 4).unwrap_or(i64::MAX);
    let rules = Rules {
        now_ms: state.clock.now_ms(),
        offline_s,
        online_s: offline_s.min(ts_quarter),
    };

    // The image repository, as served.
    let mut image = Vec::new();
    let root: Option<Signed<Root>> = match state.repo.committed_root_version() {
        Some(v) => served(state, &format!("repo/metadata/{v}.root.json")).await?,
        None => None,
    };
    let timestamp: Option<Signed<Timestamp>> = match state.repo.served_timestamp() {
        Some(f) => Some(
            Signed::parse(&f.bytes, Path::new("timestamp.json"))
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("served timestamp: {e}")))?,
        ),
        None => None,
    };
    let snapshot: Option<Signed<Snapshot>> =
        match timestamp.as_ref().map(|t| &t.signed.snapshot_meta) {
            Some(m) => served(state, &format!("repo/metadata/{}.snapshot.json", m.version)).await?,
            None => None,
        };
    // Targets roles the snapshot lists, top-level first.
    let mut targets: Vec<(String, Signed<Targets>)> = Vec::new();
    if let Some(s) = &snapshot {
        let mut names: Vec<(&String, u64)> = s
            .signed
            .meta
            .iter()
            .filter_map(|(file, m)| Some((file, m.version)).filter(|_| file.ends_with(".json")))
            .collect();
        names.sort_by_key(|(file, _)| (file.as_str() != "targets.json", file.as_str()));
        for (file, version) in names {
            let role = file.trim_end_matches(".json").to_owned();
            if let Some(t) = served(state, &format!("repo/metadata/{version}.{file}")).await? {
                targets.push((role, t));
            }
        }
    }
    if let Some(root) = &root {
        let r = &root.signed;
        let (threshold, keyids) = top_level(r, "root");
        image.push(RoleRow {
            role: "root".into(),
            version: Some(r.version()),
            expires: Some(r.expires()),
            online: false,
            threshold,
            keyids,
            keys: &r.keys,
        });
        for (role, t) in &targets {
            if role == "targets" {
                let (threshold, keyids) = top_level(r, "targets");
                image.push(RoleRow {
                    role: role.clone(),
                    version: Some(t.signed.version()),
                    expires: Some(t.signed.expires()),
                    online: false,
                    threshold,
                    keyids,
                    keys: &r.keys,
                });
            }
        }
        // Delegated roles: keys from whichever targets metadata delegates them.
        for (role, t) in targets.iter().filter(|(role, _)| role != "targets") {
            let delegation = targets.iter().find_map(|(_, parent)| {
                let d = parent.signed.delegations.as_ref()?;
                let dr = d.roles.iter().find(|x| &x.name == role)?;
                Some((dr, &d.keys))
            });
            let empty = &EMPTY_KEYS;
            let (threshold, keyids, keys) = match delegation {
                Some((dr, keys)) => (dr.keys.threshold, &dr.keys.keyids[..], keys),
                None => (0, &[][..], empty),
            };
            image.push(RoleRow {
                role: role.clone(),
                version: Some(t.signed.version()),
                expires: Some(t.signed.expires()),
                online: false,
                threshold,
                keyids,
                keys,
            });
        }
        if let Some(s) = &snapshot {
            let (threshold, keyids) = top_level(r, "snapshot");
            image.push(RoleRow {
                role: "snapshot".into(),
                version: Some(s.signed.version()),
                expires: Some(s.signed.expires()),
                online: true,
                threshold,
                keyids,
                keys: &r.keys,
            });
        }
        if let Some(t) = &timestamp {
            let (threshold, keyids) = top_level(r, "timestamp");
            image.push(RoleRow {
                role: "timestamp".into(),
                version: Some(t.signed.version()),
                expires: Some(t.signed.expires()),
                online: true,
                threshold,
                keyids,
                keys: &r.keys,
            });
        }
    }

    // The director.
    let droot = Signed::<Root>::parse(state.director.root_bytes(), Path::new("director root"))
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("director root: {e}")))?;
    let d = &droot.signed;
    let now_s = u64::try_from(rules.now_ms.div_euclid(1000)).unwrap_or(0);
    let mut director = Vec::new();
    let (threshold, keyids) = top_level(d, "root");
    director.push(RoleRow {
        role: "root".into(),
        version: Some(d.version()),
        expires: Some(d.expires()),
        online: false,
        threshold,
        keyids,
        keys: &d.keys,
    });
    let (threshold, keyids) = top_level(d, "targets");
    director.push(RoleRow {
        role: "targets".into(),
        version: None,
        expires: Some(Expiry::from_unix(now_s).after(state.config.director_targets_expires)),
        online: true,
        threshold,
        keyids,
        keys: &d.keys,
    });
    let (threshold, keyids) = top_level(d, "timestamp");
    director.push(RoleRow {
        role: "timestamp".into(),
        version: None,
        expires: None,
        online: true,
        threshold,
        keyids,
        keys: &d.keys,
    });

    Ok(json!({
        "warning_days": warning_days,
        "repositories": [
            {"repository": "image", "roles": image.iter().map(|r| r.view(&rules)).collect::<Vec<_>>()},
            {"repository": "director", "roles": director.iter().map(|r| r.view(&rules)).collect::<Vec<_>>()},
        ],
    }))
}

static EMPTY_KEYS: BTreeMap<KeyId, PublicKey> = BTreeMap::new();
