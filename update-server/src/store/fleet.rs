//! Fleet queries: what runs where, who is behind on security, who went quiet.
//!
//! The model × version table of the whole fleet is an aggregate over every
//! lock. Counting it needs a read of every lock row on PostgreSQL: an
//! index-only scan of `devices_model_version_id` still fetches the heap for
//! every page a check-in has touched since the last vacuum (in a fleet that
//! checks in all day, nearly all of them; 100,000 locks: 50–90 ms), so the
//! fleet page serves it from a short-lived per-process cache
//! ([`Store::version_counts_cached`]): at most [`COUNTS_TTL`] old, and
//! dropped at once when this process changes what it counts (a lock
//! registered or revoked, a check-in reporting a new firmware version —
//! see [`Store::fleet_changed`]). Writes by other replicas sharing the
//! database show after at most [`COUNTS_TTL`].
//!
//! Why not a count table kept in step with `devices`: the check-in commit
//! (`store::checkins`) would have to maintain it, in every batch's
//! transaction; concurrent batches (workers, replicas) would then all update
//! the same few hot rows, serialising commits on them (and deadlocking when
//! two batches touch them in different orders), for a page an operator
//! opens now and then. Triggers would need backend-specific SQL, which the
//! shared migrations do not have.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::Row;

use crate::store::Store;

/// How long a computed model × version table is served again (when this
/// process has changed nothing it counts meanwhile).
pub const COUNTS_TTL: Duration = Duration::from_secs(5);

/// Locks per hardware model and firmware version.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VersionCount {
    /// Hardware model.
    pub hardware_model: String,
    /// Firmware version (None: never reported).
    pub firmware_version: Option<String>,
    /// Active locks.
    pub count: i64,
}

/// A lock, as fleet queries list it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FleetDevice {
    /// Id.
    pub id: String,
    /// Model.
    pub hardware_model: String,
    /// Version.
    pub firmware_version: Option<String>,
    /// Security counter.
    pub security_counter: Option<i64>,
    /// Last check-in (Unix ms).
    pub last_seen: Option<i64>,
}

fn fleet_device(r: &sqlx::any::AnyRow) -> anyhow::Result<FleetDevice> {
    Ok(FleetDevice {
        id: r.try_get("id")?,
        hardware_model: r.try_get("hardware_model")?,
        firmware_version: r.try_get("firmware_version")?,
        security_counter: r.try_get("security_counter")?,
        last_seen: r.try_get("last_seen")?,
    })
}

/// A counted table: when it was counted, the generation it was counted at,
/// the table.
type Counted = (Instant, u64, Arc<Vec<VersionCount>>);

/// The cached model × version table of one database (one per [`Store`] and
/// its clones).
#[derive(Debug, Default)]
struct CountsCache {
    /// Bumped by every change this process makes to what is counted.
    generation: AtomicU64,
    /// The last table. Held while counting, so concurrent misses count once.
    slot: tokio::sync::Mutex<Option<Counted>>,
}

/// Every live store's cache, by the identity of the store (the writer lock
/// its clones share; the `Weak` keeps that address from being reused while
/// the entry exists). Entries of dropped stores are pruned on lookup.
type Caches = Vec<(Weak<tokio::sync::Mutex<()>>, Arc<CountsCache>)>;

static CACHES: Mutex<Caches> = Mutex::new(Vec::new());

impl Store {
    fn counts_cache(&self) -> Arc<CountsCache> {
        let mut caches = CACHES.lock().unwrap_or_else(|e| e.into_inner());
        caches.retain(|(w, _)| w.strong_count() > 0);
        let me = Arc::as_ptr(&self.writer);
        if let Some((_, c)) = caches.iter().find(|(w, _)| std::ptr::eq(w.as_ptr(), me)) {
            return Arc::clone(c);
        }
        let c = Arc::new(CountsCache::default());
        caches.push((Arc::downgrade(&self.writer), Arc::clone(&c)));
        c
    }

    /// Something [`Self::version_counts`] counts has changed (a lock
    /// registered, revoked or reporting another firmware version): the
    /// cached table is counted again at its next use. Call after the
    /// change is committed.
    pub fn fleet_changed(&self) {
        self.counts_cache()
            .generation
            .fetch_add(1, Ordering::SeqCst);
    }

    /// [`Self::version_counts`] from the per-process cache: a table counted
    /// at most [`COUNTS_TTL`] ago, with no change by this process since.
    /// One model's counts are taken from a fresh whole-fleet table, or else
    /// counted on their own (one model is a tenth of the work, and is not
    /// kept).
    pub async fn version_counts_cached(
        &self,
        model: Option<&str>,
    ) -> anyhow::Result<Vec<VersionCount>> {
        let model = model.filter(|m| !m.is_empty());
        let cache = self.counts_cache();
        let fresh = |slot: &Option<Counted>| {
            slot.as_ref().and_then(|(at, generation, table)| {
                (at.elapsed() < COUNTS_TTL
                    && *generation == cache.generation.load(Ordering::SeqCst))
                .then(|| Arc::clone(table))
            })
        };
        let of_model = |table: &[VersionCount]| match model {
            None => table.to_vec(),
            Some(m) => table
                .iter()
                .filter(|c| c.hardware_model == m)
                .cloned()
                .collect(),
        };
        if model.is_some() {
            // Not waiting for a whole-fleet count under way.
            let table = cache.slot.try_lock().ok().and_then(|slot| fresh(&slot));
            return match table {
                Some(table) => Ok(of_model(&table)),
                None => self.version_counts(model).await,
            };
        }
        let mut slot = cache.slot.lock().await;
        if let Some(table) = fresh(&slot) {
            return Ok(of_model(&table));
        }
        // The generation before counting: a change committed while counting
        // leaves the table stale at once.
        let generation = cache.generation.load(Ordering::SeqCst);
        let table = Arc::new(self.version_counts(None).await?);
        *slot = Some((Instant::now(), generation, Arc::clone(&table)));
        Ok(of_model(&table))
    }

    /// Active locks by model × version (optionally one model), counted now:
    /// every lock counted from the covering `(hardware_model,
    /// firmware_version, id)` index, less the revoked ones (few, found by
    /// their partial index and only then filtered by model, so no planner
    /// takes the model's index for them instead).
    pub async fn version_counts(&self, model: Option<&str>) -> anyhow::Result<Vec<VersionCount>> {
        let model = model.filter(|m| !m.is_empty());
        let by_model = if model.is_some() {
            " WHERE hardware_model = $1"
        } else {
            ""
        };
        let all = format!(
            "SELECT hardware_model, firmware_version, COUNT(*) AS n FROM devices{by_model} \
             GROUP BY hardware_model, firmware_version"
        );
        let revoked = format!(
            "WITH r AS MATERIALIZED (SELECT hardware_model, firmware_version FROM devices \
             WHERE status = 'revoked') \
             SELECT hardware_model, firmware_version, COUNT(*) AS n FROM r{by_model} \
             GROUP BY hardware_model, firmware_version"
        );
        let mut counts: std::collections::BTreeMap<(String, Option<String>), i64> =
            std::collections::BTreeMap::new();
        for (sql, sign) in [(all, 1), (revoked, -1)] {
            let mut q = sqlx::query(&sql);
            if let Some(m) = model {
                q = q.bind(m);
            }
            for r in q.fetch_all(self.pool()).await? {
                *counts
                    .entry((r.try_get("hardware_model")?, r.try_get("firmware_version")?))
                    .or_default() += sign * r.try_get::<i64, _>("n")?;
            }
        }
        Ok(counts
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|((hardware_model, firmware_version), count)| VersionCount {
                hardware_model,
                firmware_version,
                count,
            })
            .collect())
    }

    /// Active locks running below `min_order` (a version sort key) or
    /// below security counter `min_counter`, optionally of one model.
    pub async fn below_minimum(
        &self,
        model: Option<&str>,
        min_order: Option<i64>,
        min_counter: Option<i64>,
        limit: i64,
    ) -> anyhow::Result<Vec<FleetDevice>> {
        let rows = sqlx::query(
            "SELECT id, hardware_model, firmware_version, security_counter, last_seen FROM devices \
             WHERE status = 'active' AND ($1 = '' OR hardware_model = $1) \
             AND (($2 >= 0 AND firmware_order < $2) OR ($3 >= 0 AND security_counter < $3)) \
             ORDER BY id LIMIT $4",
        )
        .bind(model.unwrap_or(""))
        .bind(min_order.unwrap_or(-1))
        .bind(min_counter.unwrap_or(-1))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(fleet_device).collect()
    }

    /// Active locks not seen since `before` (Unix ms), never-seen included.
    pub async fn not_seen_since(
        &self,
        before: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<FleetDevice>> {
        let rows = sqlx::query(
            "SELECT id, hardware_model, firmware_version, security_counter, last_seen FROM devices \
             WHERE status = 'active' AND (last_seen IS NULL OR last_seen < $1) ORDER BY id LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(fleet_device).collect()
    }
}
