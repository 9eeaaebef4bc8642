//! Schema migrations, shared by SQLite and PostgreSQL: each is a list of
//! statements applied in one transaction and recorded in `schema_migrations`.

use anyhow::Context;
use sqlx::Row;

use crate::store::{Backend, Store};

/// Every migration, in order: (version, SQL).
pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_fleet.sql")),
    (2, include_str!("migrations/0002_audit_token_id.sql")),
    (3, include_str!("migrations/0003_staged_uploads.sql")),
    (4, include_str!("migrations/0004_usage.sql")),
    (5, include_str!("migrations/0005_console_sessions.sql")),
    (6, include_str!("migrations/0006_console_indexes.sql")),
    (8, include_str!("migrations/0008_token_expiry.sql")),
    (10, include_str!("migrations/0010_webhooks.sql")),
];

/// The statements of one migration file (separated by lines ending in `;`,
/// comments dropped).
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || trimmed.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            out.push(current.trim().trim_end_matches(';').to_owned());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

/// Apply the migrations not applied yet.
pub async fn run(store: &Store) -> anyhow::Result<()> {
    let mut tx = store.pool().begin().await?;
    if store.backend() == Backend::Postgres {
        // Replicas starting together: one migrates, the others wait here.
        crate::store::postgres::lock_migrations(&mut tx).await?;
    }
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>("version"))
        .collect::<Result<_, _>>()?;
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        for stmt in statements(sql) {
            sqlx::query(&stmt)
                .execute(&mut *tx)
                .await
                .with_context(|| format!("migration {version}: {stmt}"))?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tracing::info!(version, "applied database migration");
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_files_split_into_statements() {
        let s = statements(MIGRATIONS[0].1);
        assert!(s.len() > 10);
        assert!(s.iter().all(|s| !s.contains(';')), "{s:?}");
        assert!(s[0].starts_with("CREATE TABLE devices"));
        let versions: Vec<i64> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
        // Increasing; gaps are allowed (numbers are reserved per change).
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        for (_, sql) in MIGRATIONS {
            assert!(statements(sql).iter().all(|s| !s.contains(';')));
        }
    }
}
