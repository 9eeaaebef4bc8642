//! Install policy per site (quiet-hours window, blackout dates, time zone).

use sqlx::Row;

use crate::store::audit::{self, AuditEntry};
use crate::store::{Store, from_json, kv, to_json};
use crate::wire::SitePolicy;

impl Store {
    /// The policy of `site` (None: never set; the default applies).
    pub async fn site_policy(&self, site: &str) -> anyhow::Result<Option<SitePolicy>> {
        let row = sqlx::query("SELECT policy FROM sites WHERE name = $1")
            .bind(site)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| from_json(&r.try_get::<String, _>("policy")?, "site policy"))
            .transpose()
    }

    /// Every site's policy.
    pub async fn site_policies(&self) -> anyhow::Result<Vec<(String, SitePolicy)>> {
        let rows = sqlx::query("SELECT name, policy FROM sites ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("name")?,
                    from_json(&r.try_get::<String, _>("policy")?, "site policy")?,
                ))
            })
            .collect()
    }

    /// Set the policy of `site`.
    pub async fn set_site_policy(
        &self,
        site: &str,
        policy: &SitePolicy,
        now: i64,
        entry: &AuditEntry,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO sites (name, policy, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at",
        )
        .bind(site)
        .bind(to_json(policy)?)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        audit::write(&mut tx, entry, now).await?;
        kv::bump_in(&mut tx, kv::LIVE_GENERATION, now).await?;
        tx.commit().await?;
        Ok(())
    }
}
