//! The minimum secure version per hardware model, set by a security-admin:
//! a lock of that model running an older version (or a lower security
//! counter) is "below the minimum" — listed by
//! `GET /admin/v1/fleet/below-minimum` and the console, and announced by the
//! `device.below_minimum` webhook event when it reports such a version.
//! Kept as one JSON value in `kv` (a handful of models; read once per
//! check-in batch that reports a new version).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};

use crate::store::Store;
use crate::store::audit::{self, AuditEntry};

/// The kv key.
pub const KEY: &str = "fleet.minimums";

/// One model's minimum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Minimum {
    /// Lowest secure version, `MAJOR.MINOR.PATCH`.
    pub min_version: Option<String>,
    /// Its sort key.
    pub min_order: Option<i64>,
    /// Lowest secure security counter.
    pub min_security_counter: Option<i64>,
    /// When it was set (Unix ms).
    pub set_at: i64,
    /// Who set it (token name).
    pub set_by: String,
}

impl Minimum {
    /// Whether a lock running version `order` with `counter` is below it.
    pub fn below(&self, order: Option<i64>, counter: i64) -> bool {
        let by_version = match (self.min_order, order) {
            (Some(min), Some(o)) => o < min,
            // A version that does not parse sorts below every real one.
            (Some(_), None) => true,
            (None, _) => false,
        };
        by_version || self.min_security_counter.is_some_and(|m| counter < m)
    }
}

fn parse(text: Option<String>) -> anyhow::Result<BTreeMap<String, Minimum>> {
    Ok(match text {
        Some(t) => crate::store::from_json(&t, "minimum secure versions")?,
        None => BTreeMap::new(),
    })
}

/// Every model's minimum, read inside `tx`.
pub async fn minimums_in(
    tx: &mut Transaction<'_, Any>,
) -> anyhow::Result<BTreeMap<String, Minimum>> {
    let row = sqlx::query("SELECT v FROM kv WHERE k = $1")
        .bind(KEY)
        .fetch_optional(&mut **tx)
        .await?;
    parse(row.map(|r| r.try_get("v")).transpose()?)
}

impl Store {
    /// Every model's minimum.
    pub async fn minimums(&self) -> anyhow::Result<BTreeMap<String, Minimum>> {
        parse(self.kv_get(KEY).await?)
    }

    /// Set (or with None clear) `model`'s minimum, with its audit entry.
    pub async fn set_minimum(
        &self,
        model: &str,
        minimum: Option<Minimum>,
        entry: &AuditEntry,
        now: i64,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool().begin().await?;
        // Write first (a SQLite transaction must not read, then write).
        sqlx::query(
            "INSERT INTO kv (k, v, updated_at) VALUES ($1, '{}', $2) ON CONFLICT (k) DO UPDATE SET updated_at = excluded.updated_at",
        )
        .bind(KEY)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let mut all = minimums_in(&mut tx).await?;
        match minimum {
            Some(m) => {
                all.insert(model.to_owned(), m);
            }
            None => {
                all.remove(model);
            }
        }
        sqlx::query("UPDATE kv SET v = $1 WHERE k = $2")
            .bind(crate::store::to_json(&all)?)
            .bind(KEY)
            .execute(&mut *tx)
            .await?;
        audit::write(&mut tx, entry, now).await?;
        tx.commit().await?;
        Ok(())
    }
}
