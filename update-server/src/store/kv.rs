//! Small shared values: the repository generation (bumped on every change,
//! so replicas reload) and leases (one replica at a time writes the
//! repository).

use sqlx::{Any, Row, Transaction};

use crate::store::Store;

impl Store {
    /// A value, if set.
    pub async fn kv_get(&self, key: &str) -> anyhow::Result<Option<String>> {
        let row = sqlx::query("SELECT v FROM kv WHERE k = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.try_get("v")).transpose()?)
    }

    /// Take the lease `key` for `holder` until `now + ttl_ms`, if it is free,
    /// expired or already ours. True if we hold it now.
    pub async fn lease_acquire(
        &self,
        key: &str,
        holder: &str,
        now: i64,
        ttl_ms: i64,
    ) -> anyhow::Result<bool> {
        let row = sqlx::query(
            "INSERT INTO kv (k, v, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (k) DO UPDATE SET v = excluded.v, updated_at = excluded.updated_at \
             WHERE kv.v = excluded.v OR kv.updated_at < $4 RETURNING v",
        )
        .bind(key)
        .bind(holder)
        .bind(now + ttl_ms)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    /// Give the lease back (only if we hold it).
    pub async fn lease_release(&self, key: &str, holder: &str) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM kv WHERE k = $1 AND v = $2")
            .bind(key)
            .bind(holder)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Add one to the integer value `key` (0 if unset); the new value.
    pub async fn kv_bump(&self, key: &str, now: i64) -> anyhow::Result<i64> {
        let row = sqlx::query(
            "INSERT INTO kv (k, v, updated_at) VALUES ($1, '1', $2) \
             ON CONFLICT (k) DO UPDATE SET v = CAST(CAST(kv.v AS BIGINT) + 1 AS TEXT), updated_at = excluded.updated_at RETURNING v",
        )
        .bind(key)
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        let v: String = row.try_get("v")?;
        Ok(v.parse().unwrap_or(0))
    }
}

/// Key of the generation of rollouts and site policies: bumped in the same
/// transaction as every change to them, so check-in batches (on any
/// replica) reload them exactly when they changed.
pub const LIVE_GENERATION: &str = "live_generation";

/// Add one to `key` inside `tx`.
pub(crate) async fn bump_in(
    tx: &mut Transaction<'_, Any>,
    key: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO kv (k, v, updated_at) VALUES ($1, '1', $2) \
         ON CONFLICT (k) DO UPDATE SET v = CAST(CAST(kv.v AS BIGINT) + 1 AS TEXT), updated_at = excluded.updated_at",
    )
    .bind(key)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// The generation of rollouts and site policies (0 before any change).
    pub async fn live_generation(&self) -> anyhow::Result<i64> {
        Ok(self
            .kv_get(LIVE_GENERATION)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }
}
