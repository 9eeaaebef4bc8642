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
    let file = url
        .strip_prefix("sqlite://")
        .map(|p| p.split('?').next().unwrap_or(p))
        .filter(|p| !p.is_empty() && !p.starts_with(':'))
        .map(std::path::Path::new);
    if let Some(path) = file {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        private_files(path)?;
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
    if let Some(path) = file {
        // SQLite gives the -wal and -shm files the database file's mode;
        // files from an older version may still be world-readable.
        private_files(path)?;
    }
    Ok(pool)
}

/// The database holds token hashes, device keys and the audit log: create
/// it owner-only (0600) before SQLite opens it, and take group and other
/// permissions off it and its `-wal` / `-shm` files if they exist.
#[cfg(unix)]
fn private_files(path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create the database file {}", path.display()))?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let p = std::path::PathBuf::from(name);
        if let Ok(meta) = std::fs::metadata(&p)
            && meta.permissions().mode() & 0o077 != 0
        {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot make {} private", p.display()))?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn private_files(_path: &std::path::Path) -> anyhow::Result<()> {
    Ok(())
}
