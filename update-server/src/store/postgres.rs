//! PostgreSQL specifics: pool size, and an advisory lock so that replicas
//! starting at the same moment apply migrations one at a time.

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyPool, Transaction};

/// Advisory lock key for migrations ("nlmigr" in ASCII).
const MIGRATION_LOCK: i64 = 0x6e6c_6d69_6772;

/// Connect to the server named by `url`.
pub async fn connect(options: AnyPoolOptions, url: &str) -> anyhow::Result<AnyPool> {
    let pool = options
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(30))
        .connect(url)
        .await?;
    Ok(pool)
}

/// Hold the migration lock until `tx` ends.
pub async fn lock_migrations(tx: &mut Transaction<'_, Any>) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
