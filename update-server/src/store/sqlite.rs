//! SQLite specifics: WAL journal; `synchronous = FULL` by default (every
//! commit is fsynced: an acknowledged check-in survives `kill -9` and power
//! loss) or `NORMAL` (`database.sqlite_synchronous = "normal"`: survives
//! `kill -9`, may lose the last commits on power loss, about a third faster
//! under load); a busy timeout so admin writes queue for the single writer
//! instead of failing.

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::Executor;
use sqlx::any::AnyPoolOptions;

/// Open (creating if needed) the database file named by `url`.
pub async fn connect(
    options: AnyPoolOptions,
    url: &str,
    full_sync: bool,
) -> anyhow::Result<AnyPool> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .map(|p| p.split('?').next().unwrap_or(p))
        && let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let pool = options
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute(if full_sync {
                    "PRAGMA synchronous = FULL"
                } else {
                    "PRAGMA synchronous = NORMAL"
                })
                .await?;
                conn.execute("PRAGMA busy_timeout = 30000").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                Ok(())
            })
        })
        .connect(url)
        .await?;
    Ok(pool)
}
