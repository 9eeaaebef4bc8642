//! The audit log: every change made through the admin API (and every
//! automatic pause), written in the same transaction as the change itself,
//! and a sample of refused authentications. An entry names who by the id of
//! their token (`token_id`; token names need not be unique) as well as by
//! the token's name; entries by the server itself have no token id and the
//! actor `system` (a name no token can have).

use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use crate::store::{Store, from_json, to_json};

/// One entry to write.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// Who: the id of the token used, None for the server itself (and for
    /// refused requests that presented no usable token).
    pub token_id: Option<String>,
    /// Who, readably: the token's name, `system`, or `anonymous`.
    pub actor: String,
    /// Their role.
    pub role: String,
    /// What, e.g. `rollout.pause`.
    pub action: String,
    /// Which object, e.g. a rollout id.
    pub subject: String,
    /// Anything else worth keeping.
    pub detail: serde_json::Value,
}

impl AuditEntry {
    /// An entry by the server itself (automatic pauses, bootstrap).
    pub fn system(action: &str, subject: &str, detail: serde_json::Value) -> Self {
        Self {
            token_id: None,
            actor: "system".into(),
            role: "system".into(),
            action: action.into(),
            subject: subject.into(),
            detail,
        }
    }
}

/// One stored entry.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    /// Entry id (sorts by time).
    pub id: String,
    /// When (Unix ms).
    pub at: i64,
    /// Who: the token's id (None: the server itself, or no usable token).
    pub token_id: Option<String>,
    /// Who, readably: the token's name at the time.
    pub actor: String,
    /// Their role.
    pub role: String,
    /// What.
    pub action: String,
    /// Which object.
    pub subject: String,
    /// Details.
    pub detail: serde_json::Value,
}

/// Write `entry` inside `tx`.
pub async fn write(
    tx: &mut Transaction<'_, Any>,
    entry: &AuditEntry,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (id, at, token_id, actor, role, action, subject, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(crate::ids::new_id("au", now))
    .bind(now)
    .bind(entry.token_id.as_deref())
    .bind(&entry.actor)
    .bind(&entry.role)
    .bind(&entry.action)
    .bind(&entry.subject)
    .bind(to_json(&entry.detail)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Write one entry on its own: only for what changes nothing in the
    /// database (a sampled refusal); a change writes its entry in its own
    /// transaction with [`write`].
    pub async fn audit(&self, entry: &AuditEntry, now: i64) -> anyhow::Result<()> {
        let mut tx = self.pool().begin().await?;
        write(&mut tx, entry, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Entries after id `after` (oldest first), at most `limit`.
    pub async fn audit_log(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> anyhow::Result<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT id, at, token_id, actor, role, action, subject, detail FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    token_id: r.try_get("token_id")?,
                    actor: r.try_get("actor")?,
                    role: r.try_get("role")?,
                    action: r.try_get("action")?,
                    subject: r.try_get("subject")?,
                    detail: from_json(&r.try_get::<String, _>("detail")?, "audit detail")?,
                })
            })
            .collect()
    }
}
