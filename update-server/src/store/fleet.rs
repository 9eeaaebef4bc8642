//! Fleet queries: what runs where, who is behind on security, who went quiet.

use serde::Serialize;
use sqlx::Row;

use crate::store::Store;

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

impl Store {
    /// Active locks by model × version (optionally one model): every lock
    /// counted from the covering `(hardware_model, firmware_version, id)`
    /// index, less the revoked ones (few, from their partial index), so no
    /// lock row is read.
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
             WHERE status = 'revoked'{}) \
             SELECT hardware_model, firmware_version, COUNT(*) AS n FROM r GROUP BY hardware_model, firmware_version",
            if model.is_some() {
                " AND hardware_model = $1"
            } else {
                ""
            }
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
