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
use sqlx::{AnyPool, Row};

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
        let options = AnyPoolOptions::new();
        let pool = match backend {
            Backend::Sqlite => sqlite::connect(options, url, sqlite_full_sync).await?,
            Backend::Postgres => postgres::connect(options, url).await?,
        };
        let store = Self {
            pool,
            backend,
            writer: std::sync::Arc::default(),
        };
        migrations::run(&store)
            .await
            .context("applying database migrations")?;
        Ok(store)
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
        self.pool.close().await;
    }
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
