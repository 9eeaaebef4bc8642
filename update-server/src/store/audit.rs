//! The audit log: every change made through the admin API (and every
//! automatic pause), written in the same transaction as the change itself,
//! and a sample of refused authentications. An entry names who by the id of
//! their token (`token_id`; token names need not be unique) as well as by
//! the token's name; entries by the server itself have no token id and the
//! actor `system` (a name no token can have).

use std::collections::HashMap;

use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use crate::store::devices::{Arg, Conditions, prefix_upper};
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
    // The change's webhook events commit with it (or not at all).
    for event in crate::webhooks::from_audit(entry) {
        crate::store::webhooks::enqueue(tx, &event, None, now).await?;
    }
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
        self.audit_entries(&AuditFilter {
            after: after.map(str::to_owned),
            limit,
            ..AuditFilter::default()
        })
        .await
    }

    /// Entries matching `filter`, oldest first (by id), at most its limit.
    pub async fn audit_entries(&self, filter: &AuditFilter) -> anyhow::Result<Vec<AuditRecord>> {
        let mut c = filter.conditions();
        if let Some(after) = filter.after.as_deref().filter(|a| !a.is_empty()) {
            c.push("id > ?", vec![Arg::Text(after.into())]);
        }
        let limit = c.arg(Arg::Int(filter.limit));
        let sql = format!(
            "SELECT id, at, token_id, actor, role, action, subject, detail FROM audit_log{} ORDER BY id LIMIT {limit}",
            c.where_clause()
        );
        let rows = c.bind(sqlx::query(&sql)).fetch_all(self.pool()).await?;
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

    /// Whether more than `n` entries match `filter` from its cursor on
    /// (counts at most `n + 1`).
    pub async fn audit_more_than(&self, filter: &AuditFilter, n: i64) -> anyhow::Result<bool> {
        let mut c = filter.conditions();
        if let Some(after) = filter.after.as_deref().filter(|a| !a.is_empty()) {
            c.push("id > ?", vec![Arg::Text(after.into())]);
        }
        let limit = c.arg(Arg::Int(n.saturating_add(1)));
        let sql = format!(
            "SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM audit_log{} LIMIT {limit}) matches",
            c.where_clause()
        );
        let count: i64 = c
            .bind(sqlx::query(&sql))
            .fetch_one(self.pool())
            .await?
            .try_get("n")?;
        Ok(count > n)
    }
}

impl Store {
    /// The first upload time of each target file uploaded through the admin
    /// API (`repo.target` entries, by consistent-snapshot path
    /// `<dir>/<sha256>.<name>`), from the `(action, id)` index; at most
    /// `max` entries are read (one per upload, not per lock).
    pub async fn target_uploads(&self, max: i64) -> anyhow::Result<HashMap<String, i64>> {
        let rows = sqlx::query(
            "SELECT subject, at FROM audit_log WHERE action = 'repo.target' ORDER BY id LIMIT $1",
        )
        .bind(max)
        .fetch_all(self.pool())
        .await?;
        let mut out = HashMap::new();
        for r in &rows {
            out.entry(r.try_get("subject")?)
                .or_insert(r.try_get::<i64, _>("at")?);
        }
        Ok(out)
    }

    /// When the repository first accepted targets metadata of `role`
    /// (`N.ROLE.json`, a `repo.metadata` entry) at or after `from` (Unix
    /// ms): a seek on the `(action, id)` index, reading at most 500 entries.
    pub async fn metadata_accepted_after(
        &self,
        role: &str,
        from: i64,
    ) -> anyhow::Result<Option<i64>> {
        let rows = sqlx::query(
            "SELECT subject, at FROM audit_log WHERE action = 'repo.metadata' AND id >= $1 ORDER BY id LIMIT 500",
        )
        .bind(id_at(from))
        .fetch_all(self.pool())
        .await?;
        for r in &rows {
            let subject: String = r.try_get("subject")?;
            if crate::repo::upload::parse_file_name(&subject).is_some_and(|(_, x)| x == role) {
                return Ok(Some(r.try_get("at")?));
            }
        }
        Ok(None)
    }
}

/// Filters of the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries by tokens of this name (`system`: the server itself).
    pub actor: Option<String>,
    /// Only entries made with this token.
    pub token_id: Option<String>,
    /// Only this action, or with [`ActionMatch::Prefix`] every action
    /// starting with it.
    pub action: Option<ActionMatch>,
    /// Only entries at or after this (Unix ms).
    pub since: Option<i64>,
    /// Only entries before this (Unix ms).
    pub until: Option<i64>,
    /// Only ids after this one (paging).
    pub after: Option<String>,
    /// At most this many.
    pub limit: i64,
}

/// How the action filter matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionMatch {
    /// This action.
    Exact(String),
    /// Every action starting with this (`rollout.` for `rollout.*`).
    Prefix(String),
}

impl ActionMatch {
    /// `rollout.pause` (exact) or `rollout.*` (prefix; `*` alone: all).
    /// None if a `*` is anywhere but at the end.
    pub fn parse(text: &str) -> Option<Option<Self>> {
        match text.strip_suffix('*') {
            Some(p) if p.contains('*') => None,
            Some("") => Some(None),
            Some(p) => Some(Some(Self::Prefix(p.to_owned()))),
            None if text.contains('*') => None,
            None if text.is_empty() => Some(None),
            None => Some(Some(Self::Exact(text.to_owned()))),
        }
    }
}

/// The smallest audit entry id made at or after `ms` (ids start with the
/// time: see [`crate::ids::new_id`]).
fn id_at(ms: i64) -> String {
    let ms = u64::try_from(ms).unwrap_or(0).min(0xffff_ffff_ffff);
    format!("au-{ms:012x}")
}

impl AuditFilter {
    /// The conditions of every filter but the paging cursor.
    fn conditions(&self) -> Conditions {
        use Arg::{Int, Text};
        let mut c = Conditions::default();
        if let Some(a) = &self.actor {
            c.push("actor = ?", vec![Text(a.clone())]);
        }
        if let Some(t) = &self.token_id {
            c.push("token_id = ?", vec![Text(t.clone())]);
        }
        match &self.action {
            Some(ActionMatch::Exact(a)) => c.push("action = ?", vec![Text(a.clone())]),
            Some(ActionMatch::Prefix(p)) => match prefix_upper(p) {
                Some(upper) => c.push(
                    "action >= ? AND action < ?",
                    vec![Text(p.clone()), Text(upper)],
                ),
                None => c.push("action >= ?", vec![Text(p.clone())]),
            },
            None => {}
        }
        // Ids sort by time and carry it: the id range lets the primary key
        // do the work, `at` states the filter exactly.
        if let Some(t) = self.since {
            c.push("id >= ? AND at >= ?", vec![Text(id_at(t)), Int(t)]);
        }
        if let Some(t) = self.until {
            c.push("id < ? AND at < ?", vec![Text(id_at(t)), Int(t)]);
        }
        c
    }
}
