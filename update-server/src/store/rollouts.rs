//! Rollouts as stored: the rollout row (state, wave clock, success and
//! failure counters) and one row per lock it assigned (its status there).

use std::collections::HashMap;

use sqlx::{Any, Row, Transaction};

use crate::rollouts::{Rollout, RolloutState};
use crate::store::audit::{self, AuditEntry};
use crate::store::{Store, from_json, kv, to_json};

const COLUMNS: &str = "id, name, target, hardware_model, target_version, spec, state, state_reason, wave_index, \
    wave_started_at, paused_at, successes, failures, created_at, updated_at, created_by";

fn from_row(r: &sqlx::any::AnyRow) -> anyhow::Result<Rollout> {
    let state: String = r.try_get("state")?;
    Ok(Rollout {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        target: r.try_get("target")?,
        hardware_model: r.try_get("hardware_model")?,
        target_version: r.try_get("target_version")?,
        spec: from_json(&r.try_get::<String, _>("spec")?, "rollout spec")?,
        state: RolloutState::parse(&state)
            .ok_or_else(|| anyhow::anyhow!("stored rollout state {state:?} is unknown"))?,
        state_reason: r.try_get("state_reason")?,
        wave_index: usize::try_from(r.try_get::<i64, _>("wave_index")?).unwrap_or(0),
        wave_started_at: r.try_get("wave_started_at")?,
        paused_at: r.try_get("paused_at")?,
        successes: r.try_get("successes")?,
        failures: r.try_get("failures")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        created_by: r.try_get("created_by")?,
    })
}

/// Per-wave, per-status count of locks in a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveCount {
    /// Wave index.
    pub wave: i64,
    /// Status (`assigned`, `installed`, `confirmed`, `rolled_back`, `failed`).
    pub status: String,
    /// Patch or full-image deliveries.
    pub delivery: String,
    /// Locks.
    pub count: i64,
}

/// Persist the mutable fields of `r` if its state is still `expected`.
pub(crate) async fn save_transition(
    tx: &mut Transaction<'_, Any>,
    r: &Rollout,
    expected: RolloutState,
) -> anyhow::Result<bool> {
    Ok(sqlx::query(
        "UPDATE rollouts SET state = $1, state_reason = $2, wave_index = $3, wave_started_at = $4, paused_at = $5, updated_at = $6 \
         WHERE id = $7 AND state = $8",
    )
    .bind(r.state.as_str())
    .bind(r.state_reason.as_deref())
    .bind(i64::try_from(r.wave_index).unwrap_or(0))
    .bind(r.wave_started_at)
    .bind(r.paused_at)
    .bind(r.updated_at)
    .bind(&r.id)
    .bind(expected.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1)
}

impl Store {
    /// Store a new rollout.
    pub async fn insert_rollout(&self, r: &Rollout, entry: &AuditEntry) -> anyhow::Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(&format!(
            "INSERT INTO rollouts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ))
        .bind(&r.id)
        .bind(&r.name)
        .bind(&r.target)
        .bind(&r.hardware_model)
        .bind(&r.target_version)
        .bind(to_json(&r.spec)?)
        .bind(r.state.as_str())
        .bind(r.state_reason.as_deref())
        .bind(i64::try_from(r.wave_index).unwrap_or(0))
        .bind(r.wave_started_at)
        .bind(r.paused_at)
        .bind(r.successes)
        .bind(r.failures)
        .bind(r.created_at)
        .bind(r.updated_at)
        .bind(&r.created_by)
        .execute(&mut *tx)
        .await?;
        audit::write(&mut tx, entry, r.created_at).await?;
        kv::bump_in(&mut tx, kv::LIVE_GENERATION, r.created_at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One rollout.
    pub async fn rollout(&self, id: &str) -> anyhow::Result<Option<Rollout>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM rollouts WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Every rollout, newest first.
    pub async fn rollouts(&self, limit: i64) -> anyhow::Result<Vec<Rollout>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM rollouts ORDER BY created_at DESC, id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Running and paused rollouts (what check-ins are judged against).
    pub async fn live_rollouts(&self) -> anyhow::Result<Vec<Rollout>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM rollouts WHERE state IN ('running', 'paused')"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Save an operator transition of `r` (which was `expected`); false if
    /// its state changed meanwhile.
    pub async fn transition_rollout(
        &self,
        r: &Rollout,
        expected: RolloutState,
        entry: &AuditEntry,
    ) -> anyhow::Result<bool> {
        let mut tx = self.pool().begin().await?;
        if !save_transition(&mut tx, r, expected).await? {
            return Ok(false);
        }
        audit::write(&mut tx, entry, r.updated_at).await?;
        kv::bump_in(&mut tx, kv::LIVE_GENERATION, r.updated_at).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Locks per wave, status and delivery.
    pub async fn wave_counts(&self, rollout_id: &str) -> anyhow::Result<Vec<WaveCount>> {
        let rows = sqlx::query(
            "SELECT wave, status, delivery, COUNT(*) AS n FROM rollout_devices WHERE rollout_id = $1 \
             GROUP BY wave, status, delivery ORDER BY wave, status, delivery",
        )
        .bind(rollout_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WaveCount {
                    wave: r.try_get("wave")?,
                    status: r.try_get("status")?,
                    delivery: r.try_get("delivery")?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }

    /// Active locks of `model` that last reported a version below
    /// `below_order` (a version sort key): the locks a new rollout of an
    /// image of that model and version could assign, before the engine's
    /// own checks, with their usage summaries (one query). By id, at most
    /// `limit`.
    pub async fn rollout_candidates(
        &self,
        model: &str,
        below_order: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<Candidate>> {
        let rows = sqlx::query(
            "SELECT d.id, d.site, d.firmware_version, d.security_counter, d.time_zone, u.summary FROM devices d \
             LEFT JOIN device_usage u ON u.device_id = d.id \
             WHERE d.hardware_model = $1 AND d.status = 'active' AND d.firmware_order < $2 ORDER BY d.id LIMIT $3",
        )
        .bind(model)
        .bind(below_order)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Candidate {
                    id: r.try_get("id")?,
                    site: r.try_get("site")?,
                    firmware_version: r.try_get("firmware_version")?,
                    security_counter: r.try_get("security_counter")?,
                    time_zone: r.try_get("time_zone")?,
                    usage: r.try_get("summary")?,
                })
            })
            .collect()
    }

    /// The locks in any of `groups`, with those of their groups that are in
    /// `groups`.
    pub async fn group_members(
        &self,
        groups: &[String],
    ) -> anyhow::Result<HashMap<String, Vec<String>>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for g in groups {
            let rows = sqlx::query("SELECT device_id FROM device_tags WHERE tag = $1")
                .bind(g)
                .fetch_all(self.pool())
                .await?;
            for r in &rows {
                out.entry(r.try_get("device_id")?)
                    .or_default()
                    .push(g.clone());
            }
        }
        Ok(out)
    }
}

/// A lock a rollout could assign (see [`Store::rollout_candidates`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Id.
    pub id: String,
    /// Site (install policy).
    pub site: String,
    /// Reported firmware version.
    pub firmware_version: Option<String>,
    /// Reported security counter.
    pub security_counter: Option<i64>,
    /// Reported time zone.
    pub time_zone: Option<String>,
    /// Its latest usage summary as stored (`device_usage`, the lock's
    /// packing; decode with `UsageSummary::from_text`).
    pub usage: Option<String>,
}
