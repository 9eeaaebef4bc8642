//! Console sessions (see [`crate::console`]): a row per signed-in browser,
//! keyed by the SHA-256 of its cookie, tied to the token it signed in with.
//! A session is valid while it has not expired and its token is not
//! revoked, checked on every request, so revoking a token signs its
//! sessions out everywhere (every replica reads the same table).

use sqlx::Row;

use crate::store::Store;

/// A live session and who it belongs to.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// SHA-256 (hex) of the cookie value.
    pub id_hash: String,
    /// The token's id.
    pub token_id: String,
    /// The token's name.
    pub token_name: String,
    /// The token's role.
    pub role: String,
    /// CSRF token of the session's forms.
    pub csrf: String,
    /// Expiry (Unix ms).
    pub expires_at: i64,
}

impl Store {
    /// Record a new session.
    pub async fn insert_session(
        &self,
        id_hash: &str,
        token_id: &str,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool().begin().await?;
        // Expired sessions go when new ones come.
        sqlx::query("DELETE FROM console_sessions WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO console_sessions (id_hash, token_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(token_id)
        .bind(csrf)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The session with this cookie hash, if it is live and its token is.
    pub async fn live_session(
        &self,
        id_hash: &str,
        now: i64,
    ) -> anyhow::Result<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT s.id_hash, s.token_id, s.csrf, s.expires_at, t.name, t.role FROM console_sessions s \
             JOIN tokens t ON t.id = s.token_id \
             WHERE s.id_hash = $1 AND s.expires_at > $2 AND t.revoked_at IS NULL \
             AND (t.expires_at IS NULL OR t.expires_at > $2)",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(SessionRecord {
                id_hash: r.try_get("id_hash")?,
                token_id: r.try_get("token_id")?,
                token_name: r.try_get("name")?,
                role: r.try_get("role")?,
                csrf: r.try_get("csrf")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// End a session (sign-out).
    pub async fn delete_session(&self, id_hash: &str) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
