//! The image repository's commit point: one database transaction.
//!
//! A repository write produces files (versioned metadata, promoted target
//! files) before it is decided; none of them is reachable by a client until
//! the transaction below commits, because:
//!
//! * clients start every update at `timestamp.json` (and, for a root
//!   rotation, at `N.root.json`), and the server serves the timestamp and
//!   the newest root named by the **committed** state in the database
//!   (`kv` rows `repo_timestamp` and `repo_root_version`), not the files;
//! * the same transaction bumps `repo_generation` (compare-and-swap: a
//!   writer whose view is stale fails instead of overwriting), which is how
//!   other replicas learn of the change, deletes the rows of the staged
//!   uploads the change published, and writes the change's audit entries.
//!
//! Files written for a change that did not commit (a failure, a crash) are
//! removed before the next write ([`super::RepoHost`] aligns its working
//! copy, and the bucket, with the committed state), so a later write never
//! publishes them by accident.

use bytes::Bytes;
use sqlx::Row;

use crate::store::Store;
use crate::store::audit::{self, AuditEntry};

/// Generation of the repository (bumped by every commit; replicas poll it).
pub(crate) const GENERATION_KEY: &str = "repo_generation";
/// The committed `timestamp.json` (its exact bytes, as text).
pub(crate) const TIMESTAMP_KEY: &str = "repo_timestamp";
/// The committed newest root version.
pub(crate) const ROOT_VERSION_KEY: &str = "repo_root_version";

/// What the database says the repository is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// Generation (0 before the first commit).
    pub generation: i64,
    /// Newest root version; None before the first commit under this scheme
    /// (a fresh database, or one written by an older server).
    pub root_version: Option<u64>,
    /// `timestamp.json`; None while nothing is published.
    pub timestamp: Option<Bytes>,
}

/// A change to commit.
#[derive(Debug)]
pub(crate) struct Commit<'a> {
    /// The generation the change was made on.
    pub expected_generation: i64,
    /// Newest root version after the change.
    pub root_version: u64,
    /// `timestamp.json` after the change.
    pub timestamp: Option<&'a [u8]>,
    /// Audit entries of the change.
    pub audit: &'a [AuditEntry],
    /// Staged uploads (paths under `targets/`) the change published.
    pub staged_done: &'a [String],
    /// When.
    pub now: i64,
}

/// Read the committed state.
pub(crate) async fn load(store: &Store) -> anyhow::Result<Committed> {
    let rows = sqlx::query("SELECT k, v FROM kv WHERE k IN ($1, $2, $3)")
        .bind(GENERATION_KEY)
        .bind(TIMESTAMP_KEY)
        .bind(ROOT_VERSION_KEY)
        .fetch_all(store.pool())
        .await?;
    let mut c = Committed::default();
    for r in &rows {
        let k: String = r.try_get("k")?;
        let v: String = r.try_get("v")?;
        match k.as_str() {
            GENERATION_KEY => c.generation = v.parse().unwrap_or(0),
            TIMESTAMP_KEY => c.timestamp = Some(Bytes::from(v.into_bytes())),
            ROOT_VERSION_KEY => c.root_version = v.parse().ok(),
            _ => {}
        }
    }
    Ok(c)
}

/// The committed generation alone (what replicas poll).
pub(crate) async fn generation(store: &Store) -> anyhow::Result<i64> {
    Ok(store
        .kv_get(GENERATION_KEY)
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

async fn upsert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    key: &str,
    value: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO kv (k, v, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (k) DO UPDATE SET v = excluded.v, updated_at = excluded.updated_at",
    )
    .bind(key)
    .bind(value)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Commit `c`: the new generation, or None if the repository was changed
/// by someone else since `c.expected_generation` (nothing is written then).
pub(crate) async fn commit(store: &Store, c: &Commit<'_>) -> anyhow::Result<Option<i64>> {
    let timestamp = c
        .timestamp
        .map(|t| String::from_utf8(t.to_vec()))
        .transpose()
        .map_err(|_| anyhow::anyhow!("timestamp.json is not UTF-8"))?;
    let next = c.expected_generation + 1;
    let mut tx = store.pool().begin().await?;
    let moved = if c.expected_generation == 0 {
        sqlx::query(
            "INSERT INTO kv (k, v, updated_at) VALUES ($1, $2, $3) ON CONFLICT (k) DO NOTHING",
        )
        .bind(GENERATION_KEY)
        .bind(next.to_string())
        .bind(c.now)
        .execute(&mut *tx)
        .await?
    } else {
        sqlx::query("UPDATE kv SET v = $1, updated_at = $2 WHERE k = $3 AND v = $4")
            .bind(next.to_string())
            .bind(c.now)
            .bind(GENERATION_KEY)
            .bind(c.expected_generation.to_string())
            .execute(&mut *tx)
            .await?
    };
    if moved.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(None);
    }
    upsert(
        &mut tx,
        ROOT_VERSION_KEY,
        &c.root_version.to_string(),
        c.now,
    )
    .await?;
    match &timestamp {
        Some(t) => upsert(&mut tx, TIMESTAMP_KEY, t, c.now).await?,
        None => {
            sqlx::query("DELETE FROM kv WHERE k = $1")
                .bind(TIMESTAMP_KEY)
                .execute(&mut *tx)
                .await?;
        }
    }
    for path in c.staged_done {
        sqlx::query("DELETE FROM staged_uploads WHERE path = $1")
            .bind(path)
            .execute(&mut *tx)
            .await?;
    }
    for entry in c.audit {
        audit::write(&mut tx, entry, c.now).await?;
    }
    tx.commit().await?;
    Ok(Some(next))
}
