//! Fleet state through sqlx: a SQLite file (the default) or PostgreSQL (by
//! URL), one schema and, wherever the dialects agree, one set of queries
//! (sqlx's `Any` driver; SQLite accepts PostgreSQL's `$1` placeholders).
//! Backend-specific code — connection setup, migration locking — lives in
//! [`sqlite`] and [`postgres`].
//!
//! Times are Unix milliseconds (`BIGINT`); JSON is stored as `TEXT`.
//! Several server replicas may share one PostgreSQL database: every
//! check-in's replay check is a conditional `UPDATE` in the database, and
//! counters are incremented in place, so replicas need no coordination.

use anyhow::Context;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Connection, Row};

pub mod audit;
pub mod checkins;
pub mod devices;
pub mod fleet;
pub mod kv;
pub mod migrations;
pub mod minimums;
pub mod postgres;
pub mod rollouts;
pub mod sessions;
pub mod sites;
pub mod sqlite;
pub mod tokens;
pub mod webhooks;

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The fleet database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// SQLite: the check-in committer's own connection (see
    /// [`Self::commit_pool`]).
    commit_pool: Option<AnyPool>,
    backend: Backend,
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Store {
    /// Connect to `url` (`sqlite://…` or `postgres://…`) and apply migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::connect_with(url, true).await
    }

    /// Connect; `sqlite_full_sync` chooses SQLite's `synchronous` (FULL or NORMAL).
    pub async fn connect_with(url: &str, sqlite_full_sync: bool) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            anyhow::bail!("unsupported database URL (use sqlite:// or postgres://)");
        };
        let options = AnyPoolOptions::new()
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                Box::pin(async move {
                    if needs_ping(backend, meta.idle_for) {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            });
        let pool = match backend {
            Backend::Sqlite => {
                sqlite::connect(
                    options,
                    url,
                    sqlite_full_sync,
                    sqlite::POOL_CONNECTIONS,
                    None,
                )
                .await?
            }
            Backend::Postgres => postgres::connect(options, url).await?,
        };
        let mut store = Self {
            pool,
            commit_pool: None,
            backend,
            writer: std::sync::Arc::default(),
        };
        migrations::run(&store)
            .await
            .context("applying database migrations")?;
        // An in-memory database is private to its connection: it keeps
        // the one pool.
        if backend == Backend::Sqlite && !url.contains(":memory:") && !url.contains("mode=memory") {
            store.commit_pool = Some(
                sqlite::connect(
                    AnyPoolOptions::new().test_before_acquire(false),
                    url,
                    sqlite_full_sync,
                    1,
                    Some(sqlite::COMMIT_CACHE_KIB),
                )
                .await
                .context("opening the check-in committer's connection")?,
            );
        }
        Ok(store)
    }

    /// Where check-in batches are committed. On SQLite, one connection kept
    /// for that alone: SQLite has one writer at a time anyway, and a
    /// connection's page cache survives from one of its transactions to the
    /// next only while no other connection has written in between. Batches
    /// committed on whichever pooled connection was free found their cache
    /// emptied by the previous batch's commit on another one and read the
    /// B-tree's inner pages again; the committer's own connection keeps them.
    /// On PostgreSQL, the shared pool.
    pub fn commit_pool(&self) -> &AnyPool {
        self.commit_pool.as_ref().unwrap_or(&self.pool)
    }

    /// The connection pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> anyhow::Result<()> {
        let row = sqlx::query("SELECT 1 AS one").fetch_one(&self.pool).await?;
        let one: i32 = row.try_get::<i32, _>("one").or_else(|_| {
            row.try_get::<i64, _>("one")
                .map(|v| i32::try_from(v).unwrap_or(0))
        })?;
        anyhow::ensure!(one == 1, "database answered {one} to SELECT 1");
        Ok(())
    }

    /// Close the pool (waits for connections to be returned).
    pub async fn close(&self) {
        if let Some(p) = &self.commit_pool {
            p.close().await;
        }
        self.pool.close().await;
    }
}

/// A PostgreSQL connection idle at least this long is pinged before it is
/// handed out (as pgbouncer's `server_check_delay`, 30 s by default).
pub const PING_IF_IDLE: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether a pooled connection idle for `idle_for` is checked with a round
/// trip before use. sqlx's default pings at every acquire: on SQLite that is
/// a hop to the connection's worker thread and back, on PostgreSQL a round
/// trip to the server, before every query of every request. A SQLite
/// connection is a file this process holds open and cannot be dropped by a
/// peer, so it is never pinged; a PostgreSQL connection that was in use in
/// the last [`PING_IF_IDLE`] was alive then, and one idle longer (through a
/// server restart or a proxy's idle timeout) is pinged, and replaced if dead.
pub fn needs_ping(backend: Backend, idle_for: std::time::Duration) -> bool {
    backend == Backend::Postgres && idle_for >= PING_IF_IDLE
}

/// JSON text of a value (for TEXT columns).
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> anyhow::Result<String> {
    serde_json::to_string(v).context("serialising a stored JSON value")
}

/// A JSON TEXT column back into a value.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &str,
) -> anyhow::Result<T> {
    serde_json::from_str(text).with_context(|| format!("stored {what} is not valid JSON"))
}

/// Sequential placeholders for large multi-row statements: `?` on SQLite
/// (whose lookup of numbered parameters by name is linear, so thousands of
/// `$N` cost quadratic time) and `$1, $2, …` on PostgreSQL. Bind in the
/// order they appear in the text.
#[derive(Debug)]
pub(crate) struct Placeholders {
    backend: Backend,
    next: usize,
}

impl Placeholders {
    /// Start at 1.
    pub(crate) fn new(backend: Backend) -> Self {
        Self { backend, next: 1 }
    }

    /// The next `n` placeholders, comma-separated.
    pub(crate) fn take(&mut self, n: usize) -> String {
        let out: Vec<String> = (self.next..self.next + n)
            .map(|i| match self.backend {
                Backend::Sqlite => "?".to_owned(),
                Backend::Postgres => format!("${i}"),
            })
            .collect();
        self.next += n;
        out.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_postgres_connections_idle_for_a_while_are_pinged() {
        assert!(!needs_ping(Backend::Sqlite, Duration::ZERO));
        assert!(!needs_ping(Backend::Sqlite, Duration::from_secs(3600)));
        assert!(!needs_ping(Backend::Postgres, Duration::ZERO));
        assert!(!needs_ping(
            Backend::Postgres,
            PING_IF_IDLE - Duration::from_millis(1)
        ));
        assert!(needs_ping(Backend::Postgres, PING_IF_IDLE));
    }
}
