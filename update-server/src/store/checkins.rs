//! What a batch of check-ins reads and writes, in one transaction per batch
//! (group commit): one acknowledged check-in is one committed row update, so
//! nothing a lock was told "accepted" is lost to a crash. A usage summary
//! sent with a check-in is written in that transaction too (`device_usage`,
//! with the batch's time as `reported_at`); a check-in without one leaves
//! the stored one alone.
//!
//! The replay check is part of the write, as a compare-and-swap: a lock's
//! row is updated only if it still holds the counter the check-in was
//! planned from (and the new counter is above it), and the rows updated are
//! read back with `RETURNING`. So two replicas, two batches, or two workers
//! whose batches are committed together can never both accept the same
//! check-in, nor count one planned from a row that has moved on since.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use crate::rollouts::outcome::should_pause;
use crate::rollouts::{Rollout, RolloutState};
use crate::store::audit::{self, AuditEntry};
use crate::store::devices::{DEVICE_COLUMNS, Device, DirectorCache, device_from_row};
use crate::store::rollouts::save_transition;
use crate::store::{Placeholders, Store, kv};

/// The new state of one lock after an accepted check-in.
#[derive(Debug, Clone)]
pub struct CheckinWrite {
    /// Lock id.
    pub device_id: String,
    /// Its hardware model.
    pub hardware_model: String,
    /// Whether it reports a firmware version other than the stored one
    /// (or its first): then it is checked against the model's minimum
    /// secure version (`device.below_minimum` webhook event).
    pub reported_new_version: bool,
    /// The stored counter this write was planned from: the write applies
    /// only if the row still holds exactly this counter (compare-and-swap),
    /// so a check-in planned from a row another batch or replica has changed
    /// since is refused rather than counted twice.
    pub base_counter: i64,
    /// The check-in's counter (must be above `base_counter`).
    pub counter: i64,
    /// Reported firmware version.
    pub firmware_version: String,
    /// Its sort key.
    pub firmware_order: Option<i64>,
    /// Reported security counter.
    pub security_counter: i64,
    /// Reported boot state.
    pub boot_state: String,
    /// Reported battery.
    pub battery_percent: Option<i64>,
    /// Reported time zone.
    pub time_zone: Option<String>,
    /// Reported usage summary (checked base64url text, see
    /// `lock_app::scheduler::summary`); `None` keeps the stored one.
    pub usage: Option<String>,
    /// Last update attempt (target, outcome, reason).
    pub last_update: (Option<String>, Option<String>, Option<String>),
    /// Rollout whose outcome is tracked for this lock, and its image target.
    pub tracked: (Option<String>, Option<String>),
    /// Director metadata now in force.
    pub director: DirectorCache,
    /// Whether `director` was newly signed (then its text is written).
    pub director_changed: bool,
    /// History entries (kind, detail).
    pub events: Vec<(String, serde_json::Value)>,
    /// A new row in `rollout_devices`: (rollout, wave, delivery).
    pub new_membership: Option<(String, i64, String)>,
    /// A status change in a rollout: (rollout, status, reason).
    pub status_change: Option<(String, String, Option<String>)>,
    /// Change of (successes, failures) of a rollout.
    pub counter_delta: Option<(String, i64, i64)>,
}

/// What a committed batch did.
#[derive(Debug, Clone, Default)]
pub struct BatchResult {
    /// Per write: whether it was applied (false: a newer check-in won).
    pub applied: Vec<bool>,
    /// Rollouts this batch paused because their failure threshold was crossed.
    pub auto_paused: Vec<Rollout>,
}

/// The writes of one lock in a commit group that apply together.
#[derive(Clone, Copy)]
struct Chain<'a> {
    /// The counter the row must still hold.
    base: i64,
    /// The state written.
    last: &'a CheckinWrite,
    /// Whether any write of the chain re-signed the director metadata.
    changed: bool,
}

impl Store {
    /// Locks `ids`, with groups and their status in their tracked rollout.
    pub async fn checkin_devices(&self, ids: &[&str]) -> anyhow::Result<HashMap<String, Device>> {
        let mut out = HashMap::with_capacity(ids.len());
        if ids.is_empty() {
            return Ok(out);
        }
        for chunk in ids.chunks(500) {
            // The signed director metadata (the largest column) is left out:
            // most check-ins do not resend it (see `director_texts`).
            let columns = DEVICE_COLUMNS.replace(
                "d.director_targets",
                "CAST(NULL AS TEXT) AS director_targets",
            );
            let sql = format!(
                "SELECT {columns}, rd.status AS rollout_status FROM devices d \
                 LEFT JOIN rollout_devices rd ON rd.rollout_id = d.assigned_rollout AND rd.device_id = d.id \
                 WHERE d.id IN ({})",
                Placeholders::new(self.backend()).take(chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(self.pool()).await? {
                let d = device_from_row(&row, true)?;
                out.insert(d.id.clone(), d);
            }
        }
        let mut groups = self.groups_of(ids).await?;
        for d in out.values_mut() {
            d.groups = groups.remove(&d.id).unwrap_or_default();
        }
        Ok(out)
    }

    /// The stored director metadata of `ids`.
    pub async fn director_texts(&self, ids: &[&str]) -> anyhow::Result<HashMap<String, String>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT id, director_targets FROM devices WHERE id IN ({}) AND director_targets IS NOT NULL",
                Placeholders::new(self.backend()).take(chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for row in q.fetch_all(self.pool()).await? {
                out.insert(row.try_get("id")?, row.try_get("director_targets")?);
            }
        }
        Ok(out)
    }

    /// Commit a batch. `live` are the rollouts the batch was judged against
    /// (for the failure threshold); a rollout crossing it is paused in the
    /// same transaction, with an audit entry by `system`.
    ///
    /// The lock rows are updated with one multi-row `UPDATE … FROM (VALUES …)`
    /// per 400 locks (same SQL on SQLite and PostgreSQL), conditional on each
    /// lock's counter; history, memberships and counters follow for the
    /// locks that were updated.
    pub async fn apply_checkins(
        &self,
        writes: &[CheckinWrite],
        live: &[Rollout],
        now: i64,
    ) -> anyhow::Result<BatchResult> {
        // SQLite has one writer: queue here rather than in its busy handler,
        // which sleeps in growing steps.
        let _writer = match self.backend() {
            crate::store::Backend::Sqlite => Some(self.writer.lock().await),
            crate::store::Backend::Postgres => None,
        };
        let mut tx = self.pool().begin().await?;
        // One row per lock. Writes of one lock in this group form a chain when
        // each was planned from the state the one before leaves (its base is
        // the previous counter): the row gets the last write's state, on the
        // condition that it still holds the first write's base counter. A
        // write that does not extend its lock's chain (the same signed
        // check-in handled by two workers, or one planned from an older row)
        // is refused here and never counted.
        let mut order: Vec<&str> = Vec::new();
        let mut by_device: HashMap<&str, Chain<'_>> = HashMap::new();
        let mut in_chain = vec![false; writes.len()];
        for (i, w) in writes.iter().enumerate() {
            if w.counter <= w.base_counter {
                continue;
            }
            match by_device.get_mut(w.device_id.as_str()) {
                Some(chain) => {
                    if w.base_counter == chain.last.counter {
                        chain.changed |= w.director_changed;
                        chain.last = w;
                        in_chain[i] = true;
                    }
                }
                None => {
                    order.push(&w.device_id);
                    by_device.insert(
                        &w.device_id,
                        Chain {
                            base: w.base_counter,
                            last: w,
                            changed: w.director_changed,
                        },
                    );
                    in_chain[i] = true;
                }
            }
        }
        // Exactly the rows this transaction changed (RETURNING), never a
        // guess from what a row looks like afterwards.
        let mut updated: HashSet<String> = HashSet::new();
        for chunk in order.chunks(400) {
            let mut ph = Placeholders::new(self.backend());
            let mut sql = String::from(
                "WITH v (id, base_counter, counter, fw, ford, sc, boot, bat, tz, lt, lo, lr, ar, at, dv, dk, de, ds, dt) AS (VALUES ",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                sql.push_str(&ph.take(19));
                sql.push(')');
            }
            sql.push_str(&format!(
                ") UPDATE devices SET last_counter = v.counter, last_seen = {}, firmware_version = v.fw, \
                 firmware_order = v.ford, security_counter = v.sc, boot_state = v.boot, battery_percent = v.bat, \
                 time_zone = v.tz, last_target = v.lt, last_outcome = v.lo, last_reason = v.lr, \
                 assigned_rollout = v.ar, assigned_target = v.at, director_version = v.dv, director_key = v.dk, \
                 director_expires = v.de, director_sha256 = v.ds, director_targets = COALESCE(v.dt, devices.director_targets) \
                 FROM v WHERE devices.id = v.id AND devices.status = 'active' AND devices.last_counter = v.base_counter \
                 RETURNING devices.id",
                ph.take(1)
            ));
            let mut q = sqlx::query(&sql);
            for id in chunk {
                let Chain {
                    base,
                    last: w,
                    changed,
                } = by_device[id];
                q = q
                    .bind(&w.device_id)
                    .bind(base)
                    .bind(w.counter)
                    .bind(&w.firmware_version)
                    .bind(w.firmware_order)
                    .bind(w.security_counter)
                    .bind(&w.boot_state)
                    .bind(w.battery_percent)
                    .bind(w.time_zone.as_deref())
                    .bind(w.last_update.0.as_deref())
                    .bind(w.last_update.1.as_deref())
                    .bind(w.last_update.2.as_deref())
                    .bind(w.tracked.0.as_deref())
                    .bind(w.tracked.1.as_deref())
                    .bind(w.director.version)
                    .bind(w.director.key.as_deref())
                    .bind(w.director.expires)
                    .bind(w.director.sha256.as_deref())
                    .bind(if changed {
                        w.director.targets.as_deref()
                    } else {
                        None
                    });
            }
            q = q.bind(now);
            for row in q.fetch_all(&mut *tx).await? {
                updated.insert(row.try_get("id")?);
            }
        }
        let mut result = BatchResult::default();
        // Usage summaries: the last one of each lock in this group.
        let mut usage: HashMap<&str, &str> = HashMap::new();
        let mut deltas: HashMap<&str, (i64, i64)> = HashMap::new();
        let mut events: Vec<(&str, &str, &serde_json::Value)> = Vec::new();
        let mut members: Vec<(&str, &(String, i64, String))> = Vec::new();
        let mut new_versions: Vec<&CheckinWrite> = Vec::new();
        for (w, chained) in writes.iter().zip(in_chain) {
            let applied = chained && updated.contains(&w.device_id);
            result.applied.push(applied);
            if !applied {
                continue;
            }
            for (kind, detail) in &w.events {
                events.push((&w.device_id, kind, detail));
            }
            if let Some(u) = &w.usage {
                usage.insert(&w.device_id, u);
            }
            if w.reported_new_version {
                new_versions.push(w);
            }
            if let Some(m) = &w.new_membership {
                members.push((&w.device_id, m));
            }
            if let Some((rollout, status, reason)) = &w.status_change {
                sqlx::query(
                    "UPDATE rollout_devices SET status = $1, reason = $2, updated_at = $3 WHERE rollout_id = $4 AND device_id = $5",
                )
                .bind(status)
                .bind(reason.as_deref())
                .bind(now)
                .bind(rollout)
                .bind(&w.device_id)
                .execute(&mut *tx)
                .await?;
            }
            if let Some((rollout, s, f)) = &w.counter_delta {
                let e = deltas.entry(rollout.as_str()).or_default();
                e.0 += s;
                e.1 += f;
            }
        }
        for chunk in events.chunks(1000) {
            let mut ph = Placeholders::new(self.backend());
            let rows: Vec<String> = (0..chunk.len())
                .map(|_| format!("({})", ph.take(5)))
                .collect();
            let sql = format!(
                "INSERT INTO device_events (id, device_id, at, kind, detail) VALUES {}",
                rows.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for (device, kind, detail) in chunk {
                q = q
                    .bind(crate::ids::new_id("ev", now))
                    .bind(*device)
                    .bind(now)
                    .bind(*kind)
                    .bind(serde_json::to_string(detail)?);
            }
            q.execute(&mut *tx).await?;
        }
        // One row per lock (a statement may not update a row twice), kept
        // when a later check-in carries none.
        let mut usage: Vec<(&str, &str)> = usage.into_iter().collect();
        usage.sort_unstable();
        for chunk in usage.chunks(1000) {
            let mut ph = Placeholders::new(self.backend());
            let rows: Vec<String> = (0..chunk.len())
                .map(|_| format!("({})", ph.take(3)))
                .collect();
            let sql = format!(
                "INSERT INTO device_usage (device_id, summary, reported_at) VALUES {} \
                 ON CONFLICT (device_id) DO UPDATE SET summary = excluded.summary, reported_at = excluded.reported_at",
                rows.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for (device, summary) in chunk {
                q = q.bind(*device).bind(*summary).bind(now);
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in members.chunks(1000) {
            let mut ph = Placeholders::new(self.backend());
            let rows: Vec<String> = (0..chunk.len())
                .map(|_| {
                    let p = ph.take(6);
                    let p: Vec<&str> = p.split(", ").collect();
                    format!(
                        "({}, {}, {}, 'assigned', {}, {}, {})",
                        p[0], p[1], p[2], p[3], p[4], p[5]
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO rollout_devices (rollout_id, device_id, wave, status, delivery, assigned_at, updated_at) VALUES {} \
                 ON CONFLICT (rollout_id, device_id) DO NOTHING",
                rows.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for (device, (rollout, wave, delivery)) in chunk {
                q = q
                    .bind(rollout)
                    .bind(*device)
                    .bind(*wave)
                    .bind(delivery)
                    .bind(now)
                    .bind(now);
            }
            q.execute(&mut *tx).await?;
        }
        // Locks that report a new version below their model's minimum
        // secure version: one webhook event for the batch.
        if !new_versions.is_empty() {
            let minimums = crate::store::minimums::minimums_in(&mut tx).await?;
            let below: Vec<serde_json::Value> = new_versions
                .iter()
                .filter_map(|w| {
                    let m = minimums.get(&w.hardware_model)?;
                    m.below(w.firmware_order, w.security_counter).then(|| {
                        serde_json::json!({
                            "device_id": w.device_id, "hardware_model": w.hardware_model,
                            "firmware_version": w.firmware_version,
                            "security_counter": w.security_counter,
                            "min_version": m.min_version,
                            "min_security_counter": m.min_security_counter,
                        })
                    })
                })
                .collect();
            if !below.is_empty() {
                crate::store::webhooks::enqueue(
                    &mut tx,
                    &crate::webhooks::Event::new(
                        "device.below_minimum",
                        serde_json::json!({ "count": below.len(), "devices": below }),
                    ),
                    None,
                    now,
                )
                .await?;
            }
        }
        let mut ids: Vec<&&str> = deltas.keys().collect();
        ids.sort();
        for id in ids {
            let (s, f) = deltas[*id];
            if s == 0 && f == 0 {
                continue;
            }
            let row = sqlx::query(
                "UPDATE rollouts SET successes = successes + $1, failures = failures + $2 WHERE id = $3 \
                 RETURNING successes, failures, state",
            )
            .bind(s)
            .bind(f)
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else { continue };
            let (successes, failures): (i64, i64) =
                (row.try_get("successes")?, row.try_get("failures")?);
            let state: String = row.try_get("state")?;
            let Some(r) = live.iter().find(|r| r.id == **id) else {
                continue;
            };
            if state != "running" || !should_pause(successes, failures, &r.spec.failure) {
                continue;
            }
            let mut paused = r.clone();
            paused.state = RolloutState::Running;
            let reason = format!(
                "auto-paused: {failures} failure(s) out of {} reported outcome(s) reached the threshold of {:.1}% (minimum sample {})",
                successes + failures,
                r.spec.failure.rate * 100.0,
                r.spec.failure.min_sample
            );
            if paused.pause(now, &reason).is_err() {
                continue;
            }
            paused.successes = successes;
            paused.failures = failures;
            if save_transition(&mut tx, &paused, RolloutState::Running).await? {
                kv::bump_in(&mut tx, kv::LIVE_GENERATION, now).await?;
                audit::write(
                    &mut tx,
                    &AuditEntry::system(
                        "rollout.auto_pause",
                        &paused.id,
                        serde_json::json!({
                            "successes": successes, "failures": failures, "reason": reason,
                            "name": paused.name, "target": paused.target,
                            "threshold": r.spec.failure.rate, "min_sample": r.spec.failure.min_sample,
                        }),
                    ),
                    now,
                )
                .await?;
                result.auto_paused.push(paused);
            }
        }
        tx.commit().await?;
        Ok(result)
    }
}
