//! Admin bearer tokens, stored as SHA-256 hashes (tokens are 256 random
//! bits, so a fast hash is enough: there is nothing to guess).

use serde::Serialize;
use sqlx::Row;

use crate::store::Store;
use crate::store::audit::{self, AuditEntry};

/// A stored token (never the secret).
#[derive(Debug, Clone, Serialize)]
pub struct TokenRecord {
    /// Token id.
    pub id: String,
    /// Name (shown in the audit log).
    pub name: String,
    /// Role.
    pub role: String,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// Revoked (Unix ms).
    pub revoked_at: Option<i64>,
    /// Expires (Unix ms); None: never.
    pub expires_at: Option<i64>,
}

fn record(r: &sqlx::any::AnyRow) -> anyhow::Result<TokenRecord> {
    Ok(TokenRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        revoked_at: r.try_get("revoked_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

impl Store {
    /// Store a token by its hash.
    pub async fn insert_token(
        &self,
        record: &TokenRecord,
        hash: &str,
        entry: Option<&AuditEntry>,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO tokens (id, name, role, hash, created_at, created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&record.id)
        .bind(&record.name)
        .bind(&record.role)
        .bind(hash)
        .bind(record.created_at)
        .bind(&record.created_by)
        .bind(record.expires_at)
        .execute(&mut *tx)
        .await?;
        if let Some(e) = entry {
            audit::write(&mut tx, e, record.created_at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The live token with this hash: not revoked, not expired at `now`.
    pub async fn token_by_hash(&self, hash: &str, now: i64) -> anyhow::Result<Option<TokenRecord>> {
        let row = sqlx::query(
            "SELECT id, name, role, created_at, created_by, revoked_at, expires_at FROM tokens \
             WHERE hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// Every token.
    pub async fn tokens(&self) -> anyhow::Result<Vec<TokenRecord>> {
        let rows = sqlx::query(
            "SELECT id, name, role, created_at, created_by, revoked_at, expires_at FROM tokens ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(record).collect()
    }

    /// Number of live tokens.
    pub async fn live_token_count(&self) -> anyhow::Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM tokens WHERE revoked_at IS NULL")
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Revoke a token; false if there is no live token with this id.
    pub async fn revoke_token(
        &self,
        id: &str,
        now: i64,
        entry: &AuditEntry,
    ) -> anyhow::Result<bool> {
        let mut tx = self.pool().begin().await?;
        let done =
            sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        if done {
            audit::write(&mut tx, entry, now).await?;
            tx.commit().await?;
        }
        Ok(done)
    }
}

/// Which tokens `recover-admin` revokes as it mints the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoverRevoke {
    /// None.
    Nothing,
    /// Every live security-admin token (the lost or leaked ones).
    SecurityAdmins,
    /// Every live token.
    All,
}

impl Store {
    /// Administrative recovery, on the server's machine: in one transaction,
    /// revoke what `revoke` says, store `record` (a new security-admin
    /// token, by its hash) and write the audit entry. The revoked ids.
    pub async fn recover_admin(
        &self,
        record: &TokenRecord,
        hash: &str,
        revoke: RecoverRevoke,
        operator: &str,
    ) -> anyhow::Result<Vec<String>> {
        let now = record.created_at;
        let mut tx = self.pool().begin().await?;
        let sql = match revoke {
            RecoverRevoke::Nothing => None,
            RecoverRevoke::SecurityAdmins => Some(
                "UPDATE tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND role = 'security-admin' RETURNING id",
            ),
            RecoverRevoke::All => {
                Some("UPDATE tokens SET revoked_at = $1 WHERE revoked_at IS NULL RETURNING id")
            }
        };
        let mut revoked = Vec::new();
        if let Some(sql) = sql {
            for row in sqlx::query(sql).bind(now).fetch_all(&mut *tx).await? {
                revoked.push(row.try_get::<String, _>("id")?);
            }
        }
        revoked.sort();
        sqlx::query(
            "INSERT INTO tokens (id, name, role, hash, created_at, created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&record.id)
        .bind(&record.name)
        .bind(&record.role)
        .bind(hash)
        .bind(now)
        .bind(&record.created_by)
        .bind(record.expires_at)
        .execute(&mut *tx)
        .await?;
        audit::write(
            &mut tx,
            &AuditEntry {
                token_id: None,
                actor: "recover-admin".into(),
                role: "local".into(),
                action: "token.recover".into(),
                subject: record.id.clone(),
                detail: serde_json::json!({
                    "name": record.name, "role": record.role, "revoked": revoked,
                    "operator": operator,
                }),
            },
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(revoked)
    }
}
