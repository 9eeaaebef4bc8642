//! The device registry: registration and bulk import, revocation, lookups,
//! per-device history.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use crate::store::audit::{self, AuditEntry};
use crate::store::{Placeholders, Store, from_json, to_json};

/// A lock to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDevice {
    /// Device id.
    pub id: String,
    /// Hardware model.
    pub hardware_model: String,
    /// Ed25519 public key, 64 lowercase hex.
    pub public_key: String,
    /// Site (install policy).
    pub site: String,
    /// Groups / tags.
    pub groups: Vec<String>,
}

/// The director metadata cached for one lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectorCache {
    /// Version (0: none signed yet).
    pub version: i64,
    /// What the metadata assigns (see `director::assignment_key`).
    pub key: Option<String>,
    /// Expiry (Unix ms).
    pub expires: Option<i64>,
    /// SHA-256 of the canonical `signed` object, hex.
    pub sha256: Option<String>,
    /// The signed metadata, JSON.
    pub targets: Option<String>,
}

/// A registered lock and what it last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Device id.
    pub id: String,
    /// Hardware model.
    pub hardware_model: String,
    /// Public key, hex.
    pub public_key: String,
    /// Site.
    pub site: String,
    /// Groups / tags.
    pub groups: Vec<String>,
    /// `active` or `revoked`.
    pub status: String,
    /// Registered (Unix ms).
    pub registered_at: i64,
    /// Revoked (Unix ms).
    pub revoked_at: Option<i64>,
    /// Last accepted check-in (Unix ms).
    pub last_seen: Option<i64>,
    /// Counter of the last accepted check-in (-1: none).
    pub last_counter: i64,
    /// Reported firmware version.
    pub firmware_version: Option<String>,
    /// Reported security counter.
    pub security_counter: Option<i64>,
    /// Reported boot state.
    pub boot_state: Option<String>,
    /// Reported battery.
    pub battery_percent: Option<i64>,
    /// Reported time zone.
    pub time_zone: Option<String>,
    /// Last update attempt: target.
    pub last_target: Option<String>,
    /// Last update attempt: outcome.
    pub last_outcome: Option<String>,
    /// Last update attempt: reason.
    pub last_reason: Option<String>,
    /// Rollout of the current assignment.
    pub assigned_rollout: Option<String>,
    /// Image target of the current assignment.
    pub assigned_target: Option<String>,
    /// Status of this lock in `assigned_rollout` (check-in loads only).
    pub rollout_status: Option<String>,
    /// Cached director metadata.
    pub director: DirectorCache,
}

/// One entry of a lock's history.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceEvent {
    /// Event id (sorts by time).
    pub id: String,
    /// When (Unix ms).
    pub at: i64,
    /// `registered`, `revoked`, `firmware`, `update_result`, `assigned`, `unassigned`.
    pub kind: String,
    /// Details.
    pub detail: serde_json::Value,
}

/// Filters of the device list.
#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    /// Only ids starting with this (byte order: SQLite, and PostgreSQL
    /// databases with the `C` collation).
    pub prefix: Option<String>,
    /// Only this model.
    pub hardware_model: Option<String>,
    /// Only this site.
    pub site: Option<String>,
    /// Only locks in this group.
    pub group: Option<String>,
    /// Only locks that last reported this firmware version.
    pub firmware_version: Option<String>,
    /// Only `active` or only `revoked` locks.
    pub status: Option<String>,
    /// Only locks last seen at or after this (Unix ms).
    pub seen_after: Option<i64>,
    /// Only locks last seen before this (Unix ms).
    pub seen_before: Option<i64>,
    /// Only ids after this one (paging).
    pub after: Option<String>,
    /// At most this many.
    pub limit: i64,
}

/// A bind value of a query built from optional filters.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    /// Text.
    Text(String),
    /// Integer.
    Int(i64),
}

/// `WHERE` conditions built from optional filters, with numbered
/// placeholders (`$1`…) and their values in order: only the conditions
/// given appear in the text, so each query can use the index that fits
/// (a `$1 = '' OR col = $1` form defeats indexes on both databases).
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    conds: Vec<String>,
    args: Vec<Arg>,
}

impl Conditions {
    /// The next placeholder, bound to `arg`.
    pub(crate) fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    /// Add `cond`, in which each `?` is replaced by a placeholder bound to
    /// the next of `args`.
    pub(crate) fn push(&mut self, cond: &str, args: Vec<Arg>) {
        let mut out = String::with_capacity(cond.len() + 8);
        let mut args = args.into_iter();
        for ch in cond.chars() {
            if ch == '?' {
                // Callers pass one value per `?`.
                let a = args.next().unwrap_or(Arg::Text(String::new()));
                out.push_str(&self.arg(a));
            } else {
                out.push(ch);
            }
        }
        self.conds.push(out);
    }

    /// ` WHERE a AND b` (empty if no condition).
    pub(crate) fn where_clause(&self) -> String {
        if self.conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conds.join(" AND "))
        }
    }

    /// Bind the values to `q`.
    pub(crate) fn bind<'q>(
        &self,
        mut q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
        for a in &self.args {
            q = match a {
                Arg::Text(t) => q.bind(t.clone()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }
}

/// The exclusive upper bound of ids starting with `prefix` (byte order):
/// the prefix with its last character raised by one. None if the prefix
/// is empty or ends in a character that cannot be raised.
pub(crate) fn prefix_upper(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    let last = chars.pop()?;
    let next = char::from_u32(u32::from(last) + 1)?;
    chars.push(next);
    Some(chars.into_iter().collect())
}

impl DeviceFilter {
    /// The conditions of every filter but the paging cursor.
    fn conditions(&self) -> Conditions {
        use Arg::{Int, Text};
        let mut c = Conditions::default();
        if let Some(p) = self.prefix.as_deref().filter(|p| !p.is_empty()) {
            match prefix_upper(p) {
                Some(upper) => c.push("d.id >= ? AND d.id < ?", vec![Text(p.into()), Text(upper)]),
                None => c.push("d.id >= ?", vec![Text(p.into())]),
            }
        }
        if let Some(m) = &self.hardware_model {
            c.push("d.hardware_model = ?", vec![Text(m.clone())]);
        }
        if let Some(s) = &self.site {
            c.push("d.site = ?", vec![Text(s.clone())]);
        }
        if let Some(g) = &self.group {
            c.push(
                "d.id IN (SELECT t.device_id FROM device_tags t WHERE t.tag = ?)",
                vec![Text(g.clone())],
            );
        }
        if let Some(v) = &self.firmware_version {
            c.push("d.firmware_version = ?", vec![Text(v.clone())]);
        }
        match self.status.as_deref() {
            // Literals, so that the partial index of revoked locks applies.
            Some("revoked") => c.push("d.status = 'revoked'", vec![]),
            Some("active") => c.push("d.status = 'active'", vec![]),
            Some(s) => c.push("d.status = ?", vec![Text(s.to_owned())]),
            None => {}
        }
        if let Some(t) = self.seen_after {
            c.push("d.last_seen >= ?", vec![Int(t)]);
        }
        if let Some(t) = self.seen_before {
            c.push("d.last_seen < ?", vec![Int(t)]);
        }
        c
    }
}

pub(crate) const DEVICE_COLUMNS: &str = "d.id, d.hardware_model, d.public_key, d.site, d.status, d.registered_at, d.revoked_at, \
    d.last_seen, d.last_counter, d.firmware_version, d.security_counter, d.boot_state, d.battery_percent, d.time_zone, \
    d.last_target, d.last_outcome, d.last_reason, d.assigned_rollout, d.assigned_target, \
    d.director_version, d.director_key, d.director_expires, d.director_sha256, d.director_targets";

pub(crate) fn device_from_row(r: &sqlx::any::AnyRow, with_rollout: bool) -> anyhow::Result<Device> {
    Ok(Device {
        id: r.try_get("id")?,
        hardware_model: r.try_get("hardware_model")?,
        public_key: r.try_get("public_key")?,
        site: r.try_get("site")?,
        groups: Vec::new(),
        status: r.try_get("status")?,
        registered_at: r.try_get("registered_at")?,
        revoked_at: r.try_get("revoked_at")?,
        last_seen: r.try_get("last_seen")?,
        last_counter: r.try_get("last_counter")?,
        firmware_version: r.try_get("firmware_version")?,
        security_counter: r.try_get("security_counter")?,
        boot_state: r.try_get("boot_state")?,
        battery_percent: r.try_get("battery_percent")?,
        time_zone: r.try_get("time_zone")?,
        last_target: r.try_get("last_target")?,
        last_outcome: r.try_get("last_outcome")?,
        last_reason: r.try_get("last_reason")?,
        assigned_rollout: r.try_get("assigned_rollout")?,
        assigned_target: r.try_get("assigned_target")?,
        rollout_status: if with_rollout {
            r.try_get("rollout_status")?
        } else {
            None
        },
        director: DirectorCache {
            version: r.try_get("director_version")?,
            key: r.try_get("director_key")?,
            expires: r.try_get("director_expires")?,
            sha256: r.try_get("director_sha256")?,
            targets: r.try_get("director_targets")?,
        },
    })
}

/// Insert an event inside `tx`.
pub(crate) async fn write_event(
    tx: &mut Transaction<'_, Any>,
    device_id: &str,
    now: i64,
    kind: &str,
    detail: &serde_json::Value,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO device_events (id, device_id, at, kind, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(crate::ids::new_id("ev", now))
    .bind(device_id)
    .bind(now)
    .bind(kind)
    .bind(to_json(detail)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Why a registration was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The id is taken.
    #[error("device {0} is already registered")]
    Exists(String),
    /// The same id twice in one import.
    #[error("device {0} appears twice in the import")]
    Duplicate(String),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for RegisterError {
    fn from(e: sqlx::Error) -> Self {
        Self::Other(e.into())
    }
}

impl Store {
    /// Register `devices` (all or none); each gets a `registered` event.
    pub async fn register_devices(
        &self,
        devices: &[NewDevice],
        now: i64,
        entry: &AuditEntry,
    ) -> Result<(), RegisterError> {
        let mut seen = std::collections::HashSet::new();
        for d in devices {
            if !seen.insert(d.id.as_str()) {
                return Err(RegisterError::Duplicate(d.id.clone()));
            }
        }
        let mut tx = self.pool().begin().await?;
        for d in devices {
            let inserted = sqlx::query(
                "INSERT INTO devices (id, hardware_model, public_key, site, status, registered_at, last_counter, director_version) \
                 VALUES ($1, $2, $3, $4, 'active', $5, -1, 0) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&d.id)
            .bind(&d.hardware_model)
            .bind(&d.public_key)
            .bind(&d.site)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                return Err(RegisterError::Exists(d.id.clone()));
            }
            for tag in &d.groups {
                sqlx::query("INSERT INTO device_tags (device_id, tag) VALUES ($1, $2) ON CONFLICT (device_id, tag) DO NOTHING")
                    .bind(&d.id)
                    .bind(tag)
                    .execute(&mut *tx)
                    .await?;
            }
            write_event(
                &mut tx,
                &d.id,
                now,
                "registered",
                &serde_json::json!({
                    "hardware_model": d.hardware_model, "site": d.site, "groups": d.groups,
                }),
            )
            .await?;
        }
        audit::write(&mut tx, entry, now).await?;
        tx.commit().await?;
        self.fleet_changed();
        Ok(())
    }

    /// Groups of each of `ids`.
    pub(crate) async fn groups_of(
        &self,
        ids: &[&str],
    ) -> anyhow::Result<HashMap<String, Vec<String>>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT device_id, tag FROM device_tags WHERE device_id IN ({}) ORDER BY tag",
                Placeholders::new(self.backend()).take(chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(self.pool()).await? {
                out.entry(r.try_get("device_id")?)
                    .or_default()
                    .push(r.try_get("tag")?);
            }
        }
        Ok(out)
    }

    /// One lock.
    pub async fn device(&self, id: &str) -> anyhow::Result<Option<Device>> {
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.id = $1");
        let Some(row) = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await?
        else {
            return Ok(None);
        };
        let mut d = device_from_row(&row, false)?;
        d.groups = self.groups_of(&[id]).await?.remove(id).unwrap_or_default();
        Ok(Some(d))
    }

    /// Locks matching `filter`, by id.
    pub async fn devices(&self, filter: &DeviceFilter) -> anyhow::Result<Vec<Device>> {
        let mut c = filter.conditions();
        if let Some(after) = filter.after.as_deref().filter(|a| !a.is_empty()) {
            c.push("d.id > ?", vec![Arg::Text(after.into())]);
        }
        let limit = c.arg(Arg::Int(filter.limit));
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d{} ORDER BY d.id LIMIT {limit}",
            c.where_clause()
        );
        let rows = c.bind(sqlx::query(&sql)).fetch_all(self.pool()).await?;
        let mut devices = rows
            .iter()
            .map(|r| device_from_row(r, false))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let ids: Vec<&str> = devices.iter().map(|d| d.id.as_str()).collect();
        let mut groups = self.groups_of(&ids).await?;
        for d in &mut devices {
            d.groups = groups.remove(&d.id).unwrap_or_default();
        }
        Ok(devices)
    }

    /// How many locks match `filter` (its paging cursor and limit aside),
    /// counting at most `cap + 1`: the count, and whether there are more
    /// than `cap` (then the count is `cap`).
    pub async fn count_devices(
        &self,
        filter: &DeviceFilter,
        cap: i64,
    ) -> anyhow::Result<(i64, bool)> {
        let mut c = filter.conditions();
        let limit = c.arg(Arg::Int(cap.saturating_add(1)));
        let sql = format!(
            "SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM devices d{} LIMIT {limit}) matches",
            c.where_clause()
        );
        let n: i64 = c
            .bind(sqlx::query(&sql))
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        Ok(if n > cap { (cap, true) } else { (n, false) })
    }

    /// Revoke a lock: its check-ins are refused from now on. False if unknown
    /// or already revoked.
    pub async fn revoke_device(
        &self,
        id: &str,
        now: i64,
        entry: &AuditEntry,
    ) -> anyhow::Result<bool> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE devices SET status = 'revoked', revoked_at = $1 WHERE id = $2 AND status = 'active'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !done {
            return Ok(false);
        }
        write_event(
            &mut tx,
            id,
            now,
            "revoked",
            &serde_json::json!({ "by": entry.actor }),
        )
        .await?;
        audit::write(&mut tx, entry, now).await?;
        tx.commit().await?;
        self.fleet_changed();
        Ok(true)
    }

    /// A lock's history, newest first, before event id `before`.
    pub async fn device_history(
        &self,
        id: &str,
        before: Option<&str>,
        limit: i64,
    ) -> anyhow::Result<Vec<DeviceEvent>> {
        let rows = sqlx::query(
            "SELECT id, at, kind, detail FROM device_events WHERE device_id = $1 AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(id)
        .bind(before.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeviceEvent {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    detail: from_json(&r.try_get::<String, _>("detail")?, "event detail")?,
                })
            })
            .collect()
    }
}

/// A lock's usage summary as stored: what its scheduler learned of its door
/// (decoded with the lock's own codec) and when the server accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedUsage {
    /// The summary.
    pub summary: lock_app::scheduler::summary::UsageSummary,
    /// When the check-in carrying it was accepted (Unix ms).
    pub reported_at: i64,
}

impl Store {
    /// The latest usage summary of each of `ids` that has one (locks
    /// without one are left out), in one query per 500 locks: for the
    /// rollout forecast and the console.
    pub async fn usage_summaries(
        &self,
        ids: &[&str],
    ) -> anyhow::Result<HashMap<String, ReportedUsage>> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT device_id, summary, reported_at FROM device_usage WHERE device_id IN ({})",
                Placeholders::new(self.backend()).take(chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(self.pool()).await? {
                let id: String = row.try_get("device_id")?;
                let text: String = row.try_get("summary")?;
                let summary = lock_app::scheduler::summary::UsageSummary::from_text(&text)
                    .map_err(|e| anyhow::anyhow!("stored usage summary of {id}: {e}"))?;
                out.insert(
                    id,
                    ReportedUsage {
                        summary,
                        reported_at: row.try_get("reported_at")?,
                    },
                );
            }
        }
        Ok(out)
    }

    /// The latest usage summary of one lock, if it sent one.
    pub async fn device_usage(&self, id: &str) -> anyhow::Result<Option<ReportedUsage>> {
        Ok(self.usage_summaries(&[id]).await?.remove(id))
    }
}
