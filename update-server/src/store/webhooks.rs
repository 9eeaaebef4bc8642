//! Webhook subscriptions, the event outbox and the delivery log.
//!
//! An event is written with [`enqueue`] inside the transaction of the change
//! that caused it, together with one delivery row per subscription that
//! wants it; nothing is written when no enabled subscription does. Any
//! replica may deliver: [`Store::claim_deliveries`] takes due deliveries
//! with a lease (`claimed_until`), so two replicas never send the same
//! delivery at once and a killed replica's deliveries are taken over when
//! its lease runs out. Every attempt is logged ([`Store::record_attempt`]);
//! the event's id and body stay the same across attempts.

use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use crate::store::audit::{self, AuditEntry};
use crate::store::{Placeholders, Store, from_json, to_json};
use crate::webhooks::{Event, wants};

/// A stored subscription (the secrets are never shown after creation).
#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    /// Id, `wh-…`.
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// Event types it wants (`*` for all, `rollout.*` for a family).
    pub events: Vec<String>,
    /// Free text.
    pub description: String,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Why the server disabled it.
    pub disabled_reason: Option<String>,
    /// Failed attempts in a row.
    pub consecutive_failures: i64,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Token name of the creator.
    pub created_by: String,
    /// Last secret rotation (Unix ms).
    pub secret_rotated_at: Option<i64>,
    /// Until when the previous secret also signs (Unix ms).
    pub previous_expires_at: Option<i64>,
    /// Last change (Unix ms).
    pub updated_at: i64,
    #[serde(skip)]
    pub(crate) secret: String,
    #[serde(skip)]
    pub(crate) previous_secret: Option<String>,
}

impl Webhook {
    /// The secrets that sign at `now`: the current one, then the previous
    /// one while its overlap lasts.
    pub fn signing_secrets(&self, now: i64) -> Vec<&str> {
        let mut out = vec![self.secret.as_str()];
        if let (Some(p), Some(until)) = (&self.previous_secret, self.previous_expires_at)
            && now < until
        {
            out.push(p);
        }
        out
    }
}

const COLUMNS: &str = "id, url, events, description, secret, previous_secret, previous_expires_at, \
    secret_rotated_at, enabled, disabled_reason, consecutive_failures, created_at, created_by, updated_at";

fn webhook(r: &sqlx::any::AnyRow) -> anyhow::Result<Webhook> {
    let events: String = r.try_get("events")?;
    Ok(Webhook {
        id: r.try_get("id")?,
        url: r.try_get("url")?,
        events: from_json(&events, "webhook events")?,
        description: r.try_get("description")?,
        secret: r.try_get("secret")?,
        previous_secret: r.try_get("previous_secret")?,
        previous_expires_at: r.try_get("previous_expires_at")?,
        secret_rotated_at: r.try_get("secret_rotated_at")?,
        enabled: r.try_get::<i32, _>("enabled").or_else(|_| {
            r.try_get::<i64, _>("enabled")
                .map(|v| i32::try_from(v).unwrap_or(1))
        })? != 0,
        disabled_reason: r.try_get("disabled_reason")?,
        consecutive_failures: r.try_get("consecutive_failures")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Write `event` (and a delivery per subscription that wants it) inside
/// `tx`. `only`: deliver to this subscription alone (a test ping). The
/// event's id, or None when no subscription wants it or an event with the
/// same dedupe key exists.
pub async fn enqueue(
    tx: &mut Transaction<'_, Any>,
    event: &Event,
    only: Option<&str>,
    now: i64,
) -> anyhow::Result<Option<String>> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM webhooks WHERE enabled = 1"))
        .fetch_all(&mut **tx)
        .await?;
    let mut targets = Vec::new();
    for r in &rows {
        let w = webhook(r)?;
        let chosen = match only {
            Some(id) => w.id == id,
            None => wants(&w.events, &event.kind),
        };
        if chosen {
            targets.push(w.id);
        }
    }
    if targets.is_empty() {
        return Ok(None);
    }
    let id = crate::ids::new_id("evt", now);
    let body = event.body(&id, now);
    let inserted = sqlx::query(
        "INSERT INTO webhook_events (id, type, dedupe_key, payload, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&id)
    .bind(&event.kind)
    .bind(event.dedupe_key.as_deref())
    .bind(&body)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if inserted.rows_affected() != 1 {
        return Ok(None);
    }
    for w in targets {
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, event_id, webhook_id, state, attempts, next_attempt_at, claimed_until, created_at) \
             VALUES ($1, $2, $3, 'pending', 0, $4, 0, $4)",
        )
        .bind(crate::ids::new_id("dl", now))
        .bind(&id)
        .bind(&w)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(Some(id))
}

/// A delivery a replica has claimed.
#[derive(Debug, Clone)]
pub struct Due {
    /// Delivery id.
    pub delivery_id: String,
    /// Attempts made before this one.
    pub attempts: i64,
    /// Event id (the same on every attempt).
    pub event_id: String,
    /// Event type.
    pub event_type: String,
    /// The exact body to send.
    pub body: String,
    /// When the event was written (Unix ms).
    pub event_at: i64,
    /// The subscription.
    pub webhook: Webhook,
    /// This replica's claim (`claimed_until` as it set it): the attempt
    /// moves the delivery on only while the claim is still this one.
    pub claim: i64,
}

/// What an attempt came to.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// HTTP status, if the receiver answered.
    pub status_code: Option<u16>,
    /// Milliseconds from sending to the answer (or the error).
    pub latency_ms: i64,
    /// Transport error or refusal.
    pub error: Option<String>,
}

impl Attempt {
    /// A 2xx answer.
    pub fn ok(&self) -> bool {
        self.status_code.is_some_and(|s| (200..300).contains(&s))
    }

    /// `delivered`, `failed` (a non-2xx answer) or `error` (no answer): the
    /// delivery log's outcome and the metric's label.
    pub fn outcome(&self) -> &'static str {
        if self.ok() {
            "delivered"
        } else if self.status_code.is_some() {
            "failed"
        } else {
            "error"
        }
    }
}

/// How the delivery stands after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    /// Delivered.
    Delivered,
    /// Will be tried again.
    Retry,
    /// Given up (too many attempts).
    GaveUp,
    /// The claim ran out and another replica took the delivery over: the
    /// attempt is logged, the delivery left to that replica.
    Superseded,
}

/// One row of the delivery log.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    /// Event id.
    pub event_id: String,
    /// Event type.
    pub event_type: String,
    /// 1 for the first attempt.
    pub attempt: i64,
    /// When (Unix ms).
    pub at: i64,
    /// HTTP status, if the receiver answered.
    pub status_code: Option<i64>,
    /// Milliseconds to the answer.
    pub latency_ms: i64,
    /// `delivered`, `failed` (a non-2xx answer) or `error` (no answer).
    pub outcome: String,
    /// Error text.
    pub error: Option<String>,
}

/// Delivery counts of one subscription.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WebhookStats {
    /// Not yet delivered, still being tried.
    pub pending: i64,
    /// Delivered.
    pub delivered: i64,
    /// Given up.
    pub failed: i64,
    /// Last attempt (Unix ms).
    pub last_attempt_at: Option<i64>,
    /// Its HTTP status.
    pub last_status: Option<i64>,
}

/// Retry rules (from `[webhooks]`).
#[derive(Debug, Clone, Copy)]
pub struct RetryRules {
    /// First retry after this many ms; doubled each attempt.
    pub backoff_ms: i64,
    /// No wait longer than this.
    pub backoff_cap_ms: i64,
    /// Attempts per delivery before giving up.
    pub max_attempts: i64,
    /// Failed attempts in a row that disable a subscription.
    pub disable_after: i64,
}

impl RetryRules {
    /// Wait before attempt `attempts + 1` (after `attempts` failed ones),
    /// with up to a quarter added at random so receivers coming back are not
    /// hit by every replica at once.
    pub fn backoff(&self, attempts: i64) -> i64 {
        let shift = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let base = self
            .backoff_ms
            .saturating_mul(1_i64 << shift)
            .min(self.backoff_cap_ms);
        let jitter = i64::from(crate::ids::random_bytes::<2>()[0]) * (base / 4) / 255;
        base.saturating_add(jitter)
    }
}

impl Store {
    /// Store a new subscription.
    pub async fn insert_webhook(&self, w: &Webhook, entry: &AuditEntry) -> anyhow::Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(&format!(
            "INSERT INTO webhooks ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&w.id)
        .bind(&w.url)
        .bind(to_json(&w.events)?)
        .bind(&w.description)
        .bind(&w.secret)
        .bind(w.previous_secret.as_deref())
        .bind(w.previous_expires_at)
        .bind(w.secret_rotated_at)
        .bind(i32::from(w.enabled))
        .bind(w.disabled_reason.as_deref())
        .bind(w.consecutive_failures)
        .bind(w.created_at)
        .bind(&w.created_by)
        .bind(w.updated_at)
        .execute(&mut *tx)
        .await?;
        audit::write(&mut tx, entry, w.created_at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every subscription, oldest first.
    pub async fn webhooks(&self) -> anyhow::Result<Vec<Webhook>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM webhooks ORDER BY id"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(webhook).collect()
    }

    /// One subscription.
    pub async fn webhook(&self, id: &str) -> anyhow::Result<Option<Webhook>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM webhooks WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(webhook).transpose()
    }

    /// Delete a subscription, its pending deliveries and its log; false if
    /// there was none.
    pub async fn delete_webhook(
        &self,
        id: &str,
        entry: &AuditEntry,
        now: i64,
    ) -> anyhow::Result<bool> {
        let mut tx = self.pool().begin().await?;
        let gone = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if gone.rows_affected() == 0 {
            return Ok(false);
        }
        for table in ["webhook_deliveries", "webhook_attempts"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE webhook_id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        audit::write(&mut tx, entry, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A new secret; the current one keeps signing until `previous_until`.
    pub async fn rotate_webhook_secret(
        &self,
        id: &str,
        secret: &str,
        previous_until: i64,
        entry: &AuditEntry,
        now: i64,
    ) -> anyhow::Result<bool> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE webhooks SET previous_secret = secret, previous_expires_at = $1, secret = $2, \
             secret_rotated_at = $3, updated_at = $3 WHERE id = $4",
        )
        .bind(previous_until)
        .bind(secret)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        audit::write(&mut tx, entry, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Enable a subscription again (its failure run starts over).
    pub async fn enable_webhook(
        &self,
        id: &str,
        entry: &AuditEntry,
        now: i64,
    ) -> anyhow::Result<bool> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE webhooks SET enabled = 1, disabled_reason = NULL, consecutive_failures = 0, updated_at = $1 WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        audit::write(&mut tx, entry, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Delivery counts and the last attempt of a subscription.
    pub async fn webhook_stats(&self, id: &str) -> anyhow::Result<WebhookStats> {
        let mut stats = WebhookStats::default();
        for r in sqlx::query(
            "SELECT state, COUNT(*) AS n FROM webhook_deliveries WHERE webhook_id = $1 GROUP BY state",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?
        {
            let state: String = r.try_get("state")?;
            let n: i64 = r.try_get("n")?;
            match state.as_str() {
                "pending" => stats.pending = n,
                "delivered" => stats.delivered = n,
                _ => stats.failed += n,
            }
        }
        if let Some(r) = sqlx::query(
            "SELECT at, status_code FROM webhook_attempts WHERE webhook_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        {
            stats.last_attempt_at = r.try_get("at")?;
            stats.last_status = r.try_get("status_code")?;
        }
        Ok(stats)
    }

    /// The delivery log of a subscription, newest first.
    pub async fn webhook_attempts(
        &self,
        id: &str,
        limit: i64,
    ) -> anyhow::Result<Vec<AttemptRecord>> {
        let rows = sqlx::query(
            "SELECT event_id, event_type, attempt, at, status_code, latency_ms, outcome, error FROM webhook_attempts \
             WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AttemptRecord {
                    event_id: r.try_get("event_id")?,
                    event_type: r.try_get("event_type")?,
                    attempt: r.try_get("attempt")?,
                    at: r.try_get("at")?,
                    status_code: r.try_get("status_code")?,
                    latency_ms: r.try_get("latency_ms")?,
                    outcome: r.try_get("outcome")?,
                    error: r.try_get("error")?,
                })
            })
            .collect()
    }

    /// Write `event` in a transaction of its own (test pings, and events
    /// noticed from time passing); see [`enqueue`].
    pub async fn enqueue_event(
        &self,
        event: &Event,
        only: Option<&str>,
        now: i64,
    ) -> anyhow::Result<Option<String>> {
        self.enqueue_event_audited(event, only, None, now).await
    }

    /// [`Store::enqueue_event`] with an audit entry in the same transaction
    /// (an operator's test ping).
    pub async fn enqueue_event_audited(
        &self,
        event: &Event,
        only: Option<&str>,
        entry: Option<&AuditEntry>,
        now: i64,
    ) -> anyhow::Result<Option<String>> {
        let mut tx = self.pool().begin().await?;
        // Start as a writer: a SQLite transaction that reads first and then
        // writes cannot upgrade once another writer has committed
        // ("database is locked", with no wait).
        sqlx::query("UPDATE webhooks SET updated_at = updated_at WHERE 1 = 0")
            .execute(&mut *tx)
            .await?;
        let id = enqueue(&mut tx, event, only, now).await?;
        if let Some(e) = entry {
            audit::write(&mut tx, e, now).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Claim up to `limit` due deliveries of enabled subscriptions for
    /// `lease_ms`. A delivery is claimed by one caller at a time: the claim
    /// is a conditional `UPDATE` (PostgreSQL re-checks the condition on a
    /// row another transaction just claimed).
    pub async fn claim_deliveries(
        &self,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<Due>> {
        let claim = now.saturating_add(lease_ms);
        let claimed = sqlx::query(
            "UPDATE webhook_deliveries SET claimed_until = $1 WHERE id IN \
             (SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
              WHERE d.state = 'pending' AND d.next_attempt_at <= $2 AND d.claimed_until <= $2 AND w.enabled = 1 \
              ORDER BY d.next_attempt_at LIMIT $3) \
             AND state = 'pending' AND claimed_until <= $2 RETURNING id",
        )
        .bind(claim)
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(claimed.len());
        let ids: Vec<String> = claimed
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            return Ok(out);
        }
        // What to send, for the whole claimed batch in one query.
        let mut ph = Placeholders::new(self.backend());
        let sql = format!(
            "SELECT d.id AS delivery_id, d.attempts, e.id AS event_id, e.type AS event_type, e.payload, \
             e.created_at AS event_at, {} FROM webhook_deliveries d \
             JOIN webhook_events e ON e.id = d.event_id JOIN webhooks w ON w.id = d.webhook_id \
             WHERE d.id IN ({}) ORDER BY d.next_attempt_at",
            COLUMNS
                .split(", ")
                .map(|c| format!("w.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", "),
            ph.take(ids.len())
        );
        let mut q = sqlx::query(&sql);
        for id in &ids {
            q = q.bind(id);
        }
        for r in q.fetch_all(self.pool()).await? {
            out.push(Due {
                delivery_id: r.try_get("delivery_id")?,
                attempts: r.try_get("attempts")?,
                event_id: r.try_get("event_id")?,
                event_type: r.try_get("event_type")?,
                body: r.try_get("payload")?,
                event_at: r.try_get("event_at")?,
                webhook: webhook(&r)?,
                claim,
            });
        }
        Ok(out)
    }

    /// Log an attempt and move the delivery on: delivered, retried after a
    /// backoff, or given up. A failed attempt extends the subscription's
    /// failure run; a run of `rules.disable_after` disables it, and the
    /// other subscriptions are told (`webhook.disabled`). True if this
    /// attempt disabled the subscription.
    pub async fn record_attempt(
        &self,
        due: &Due,
        attempt: &Attempt,
        rules: &RetryRules,
        now: i64,
    ) -> anyhow::Result<(AfterAttempt, bool)> {
        let mut out = self
            .record_attempts(&[(due.clone(), attempt.clone())], rules, now)
            .await?;
        out.pop()
            .ok_or_else(|| anyhow::anyhow!("no attempt recorded"))
    }

    /// [`Store::record_attempt`] for a batch of attempts, in one
    /// transaction (one commit, one fsync on SQLite, for a claimed batch).
    pub async fn record_attempts(
        &self,
        done: &[(Due, Attempt)],
        rules: &RetryRules,
        now: i64,
    ) -> anyhow::Result<Vec<(AfterAttempt, bool)>> {
        let mut tx = self.pool().begin().await?;
        let mut out = Vec::with_capacity(done.len());
        for (due, attempt) in done {
            out.push(record_in(&mut tx, due, attempt, rules, now).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Deliveries written and not yet finished, in all.
    pub async fn pending_deliveries(&self) -> anyhow::Result<i64> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE state = 'pending'")
                .fetch_one(self.pool())
                .await?;
        Ok(row.try_get("n")?)
    }
}

/// Log one attempt inside `tx` and move its delivery on (see
/// [`Store::record_attempt`]).
async fn record_in(
    tx: &mut Transaction<'_, Any>,
    due: &Due,
    attempt: &Attempt,
    rules: &RetryRules,
    now: i64,
) -> anyhow::Result<(AfterAttempt, bool)> {
    let n = due.attempts + 1;
    let outcome = attempt.outcome();
    sqlx::query(
        "INSERT INTO webhook_attempts (id, delivery_id, webhook_id, event_id, event_type, attempt, at, status_code, latency_ms, outcome, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(crate::ids::new_id("at", now))
    .bind(&due.delivery_id)
    .bind(&due.webhook.id)
    .bind(&due.event_id)
    .bind(&due.event_type)
    .bind(n)
    .bind(now)
    .bind(attempt.status_code.map(i64::from))
    .bind(attempt.latency_ms)
    .bind(outcome)
    .bind(attempt.error.as_deref())
    .execute(&mut **tx)
    .await?;
    let after = if attempt.ok() {
        AfterAttempt::Delivered
    } else if n >= rules.max_attempts {
        AfterAttempt::GaveUp
    } else {
        AfterAttempt::Retry
    };
    let (state, next, finished) = match after {
        AfterAttempt::Delivered => ("delivered", now, Some(now)),
        AfterAttempt::GaveUp => ("failed", now, Some(now)),
        // (`after` is one of the three above here.)
        AfterAttempt::Retry | AfterAttempt::Superseded => {
            ("pending", now.saturating_add(rules.backoff(n)), None)
        }
    };
    // Only while the claim is still ours: if it ran out and another
    // replica claimed the delivery, that replica moves it on.
    let moved = sqlx::query(
        "UPDATE webhook_deliveries SET state = $1, attempts = $2, next_attempt_at = $3, claimed_until = 0, finished_at = $4 \
         WHERE id = $5 AND state = 'pending' AND claimed_until = $6",
    )
    .bind(state)
    .bind(n)
    .bind(next)
    .bind(finished)
    .bind(&due.delivery_id)
    .bind(due.claim)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if moved == 0 {
        return Ok((AfterAttempt::Superseded, false));
    }
    let mut disabled = false;
    if attempt.ok() {
        sqlx::query("UPDATE webhooks SET consecutive_failures = 0 WHERE id = $1 AND consecutive_failures <> 0")
            .bind(&due.webhook.id)
            .execute(&mut **tx)
            .await?;
    } else {
        let row = sqlx::query(
            "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1 WHERE id = $1 \
             RETURNING consecutive_failures, enabled",
        )
        .bind(&due.webhook.id)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = row {
            let run: i64 = row.try_get("consecutive_failures")?;
            if run >= rules.disable_after {
                let reason = format!(
                    "disabled after {run} failed attempts in a row (last: {})",
                    attempt
                        .status_code
                        .map(|s| format!("HTTP {s}"))
                        .or_else(|| attempt.error.clone())
                        .unwrap_or_default()
                );
                let off = sqlx::query(
                    "UPDATE webhooks SET enabled = 0, disabled_reason = $1, updated_at = $2 WHERE id = $3 AND enabled = 1",
                )
                .bind(&reason)
                .bind(now)
                .bind(&due.webhook.id)
                .execute(&mut **tx)
                .await?;
                if off.rows_affected() == 1 {
                    disabled = true;
                    audit::write(
                        tx,
                        &AuditEntry::system(
                            "webhook.disable",
                            &due.webhook.id,
                            serde_json::json!({ "reason": reason, "url": due.webhook.url }),
                        ),
                        now,
                    )
                    .await?;
                    enqueue(
                        tx,
                        &Event::new(
                            "webhook.disabled",
                            serde_json::json!({
                                "webhook_id": due.webhook.id, "url": due.webhook.url,
                                "consecutive_failures": run, "reason": reason,
                            }),
                        ),
                        None,
                        now,
                    )
                    .await?;
                }
            }
        }
    }
    Ok((after, disabled))
}
