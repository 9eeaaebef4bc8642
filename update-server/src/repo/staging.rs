//! Uploaded target files that no targets metadata references yet.
//!
//! `PUT /admin/v1/repo/targets/<path>` streams the body to a temporary file
//! (never holding it in memory), checks its SHA-256 against the name, and
//! stores it under `staging/targets/<path>` in the blob store — a prefix
//! nothing serves — with a row in `staged_uploads` (written, with the audit
//! entry, in one transaction). Targets metadata accepted later that lists
//! the file copies it to `repo/targets/<path>` (served) and deletes the row
//! in the repository's commit transaction ([`super::commit`]). Rows older
//! than `uploads.staged_grace` are deleted with their bytes by
//! [`RepoHost::sweep_staged`] (a background task). At most
//! `uploads.max_concurrent` uploads run at once ([`RepoHost::upload_slots`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use crate::error::{ApiError, AppResult};
use crate::repo::{PREFIX, RepoHost};
use crate::store::audit::{self, AuditEntry};

/// Blob key prefix of staged uploads (never served).
pub const STAGING_PREFIX: &str = "staging/targets/";

/// Bytes written to the temporary file at a time.
const WRITE_BUFFER: usize = 1 << 20;

/// One staged upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StagedUpload {
    /// Path under `targets/` (`<dir>/<sha256>.<name>`).
    pub path: String,
    /// Length in bytes.
    pub length: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// When it was uploaded (Unix ms, server clock).
    pub uploaded_at: i64,
    /// Id of the token that uploaded it.
    pub uploaded_by: String,
}

/// What became of an uploaded target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    /// Staged: served once targets metadata referencing it is accepted.
    Staged,
    /// Already published (referenced by current metadata); nothing changed.
    Published,
}

impl TargetState {
    /// Its name in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staged => "staged",
            Self::Published => "published",
        }
    }
}

/// An upload body written to a temporary file.
#[derive(Debug)]
pub struct Received {
    /// The file (deleted when dropped, unless moved into the blob store).
    pub file: tempfile::TempPath,
    /// Its length.
    pub len: u64,
    /// Its SHA-256, hex.
    pub sha256: String,
}

/// Check an upload path `<dir>/<sha256>.<name>`; the claimed hash.
pub fn claimed_sha256(path: &str) -> AppResult<String> {
    crate::blob::check_key(path).map_err(|r| ApiError::bad_request("bad_path", r))?;
    let base = path.rsplit('/').next().unwrap_or(path);
    let claimed = base.split_once('.').map(|(h, _)| h).unwrap_or("");
    if claimed.len() != 64 || !claimed.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(
            "bad_path",
            "target files are uploaded under their consistent-snapshot name: <dir>/<sha256>.<name>",
        ));
    }
    Ok(claimed.to_ascii_lowercase())
}

fn too_large(limit: u64) -> ApiError {
    ApiError::client(
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the body is larger than {limit} bytes"),
    )
}

fn bad_body(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request("bad_body", format!("reading the body: {e}"))
}

/// Refuse at once a body whose `Content-Length` is over `limit`.
pub fn check_content_length(headers: &axum::http::HeaderMap, limit: u64) -> AppResult<()> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit => Err(too_large(limit)),
        _ => Ok(()),
    }
}

/// Read a small body (metadata) into memory, refusing more than `limit` bytes.
pub async fn read_limited(body: Body, limit: usize) -> AppResult<Bytes> {
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(bad_body)?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large(limit as u64));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

impl RepoHost {
    /// The upload slots (`uploads.max_concurrent` of them, fixed by the
    /// first call).
    pub fn upload_slots(&self, max_concurrent: usize) -> Arc<Semaphore> {
        Arc::clone(
            self.upload_slots
                .get_or_init(|| Arc::new(Semaphore::new(max_concurrent.max(1)))),
        )
    }

    /// Where upload bodies are written while they arrive.
    pub fn upload_tmp_dir(&self) -> &Path {
        &self.upload_tmp
    }

    /// Empty the upload directory (bodies left by a crash).
    pub(super) fn clear_upload_tmp(&self) {
        if let Ok(entries) = std::fs::read_dir(&self.upload_tmp) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Stream `body` to a temporary file, hashing it; at most `limit` bytes.
    pub async fn receive(&self, body: Body, limit: u64) -> AppResult<Received> {
        std::fs::create_dir_all(&self.upload_tmp).map_err(|e| ApiError::Internal(e.into()))?;
        let tmp = tempfile::Builder::new()
            .prefix("upload-")
            .tempfile_in(&self.upload_tmp)
            .map_err(|e| ApiError::Internal(e.into()))?;
        let (std_file, path) = tmp.into_parts();
        let mut out =
            tokio::io::BufWriter::with_capacity(WRITE_BUFFER, tokio::fs::File::from_std(std_file));
        let mut hasher = Sha256::new();
        let mut len: u64 = 0;
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(bad_body)?;
            len += chunk.len() as u64;
            if len > limit {
                return Err(too_large(limit));
            }
            hasher.update(&chunk);
            out.write_all(&chunk)
                .await
                .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("upload file")))?;
        }
        out.flush()
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        let file = out.into_inner();
        file.sync_all()
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        drop(file);
        Ok(Received {
            file: path,
            len,
            sha256: hex::encode(hasher.finalize()),
        })
    }

    /// Whether `path` (under `targets/`) is a target current metadata
    /// references, and its bytes are in place.
    async fn is_published(&self, path: &str, len: u64) -> anyhow::Result<bool> {
        let referenced = self.catalog().all().any(|t| {
            let p = nightlatch_repo::repo::target_file(Path::new(""), &t.name, t.sha256());
            p.to_str()
                .map(|p| p.replace('\\', "/"))
                .is_some_and(|p| p.strip_prefix("targets/") == Some(path))
        });
        if !referenced {
            return Ok(false);
        }
        Ok(self
            .blobs
            .head(&format!("{PREFIX}targets/{path}"))
            .await?
            .is_some_and(|m| m.len == len))
    }

    /// Stage a received upload for `path` (its hash already checked), with
    /// its audit entry in the same transaction as its row.
    pub async fn stage_target(
        &self,
        path: &str,
        received: Received,
        token_id: &str,
        entry: AuditEntry,
    ) -> AppResult<TargetState> {
        if self.is_published(path, received.len).await? {
            return Ok(TargetState::Published);
        }
        let key = staged_key(path);
        let staged_before = self.staged_one(path).await?.is_some();
        self.blobs
            .put_file(&key, &received.file, received.len)
            .await?;
        let recorded = self.record_staged(path, &received, token_id, &entry).await;
        if recorded.is_err() && !staged_before {
            // Not recorded: do not keep bytes nothing lists (an earlier
            // staging of the same path, same bytes, keeps them).
            if let Err(e) = self.blobs.delete(&key).await {
                tracing::warn!(error = %e, path, "removing an unrecorded upload failed");
            }
        }
        recorded?;
        Ok(TargetState::Staged)
    }

    async fn record_staged(
        &self,
        path: &str,
        received: &Received,
        token_id: &str,
        entry: &AuditEntry,
    ) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let mut tx = self.store.pool().begin().await?;
        sqlx::query(
            "INSERT INTO staged_uploads (path, length, sha256, uploaded_at, uploaded_by) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (path) DO UPDATE SET length = excluded.length, sha256 = excluded.sha256, \
             uploaded_at = excluded.uploaded_at, uploaded_by = excluded.uploaded_by",
        )
        .bind(path)
        .bind(i64::try_from(received.len).unwrap_or(i64::MAX))
        .bind(&received.sha256)
        .bind(now)
        .bind(token_id)
        .execute(&mut *tx)
        .await?;
        audit::write(&mut tx, entry, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every staged upload, oldest first.
    pub async fn staged(&self) -> anyhow::Result<Vec<StagedUpload>> {
        let rows = sqlx::query(
            "SELECT path, length, sha256, uploaded_at, uploaded_by FROM staged_uploads ORDER BY uploaded_at, path",
        )
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(staged_row).collect()
    }

    /// The staged upload of `path`, if any.
    pub(super) async fn staged_one(&self, path: &str) -> anyhow::Result<Option<StagedUpload>> {
        let row = sqlx::query(
            "SELECT path, length, sha256, uploaded_at, uploaded_by FROM staged_uploads WHERE path = $1",
        )
        .bind(path)
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(staged_row).transpose()
    }

    /// Delete staged uploads older than `grace` (server clock), their bytes
    /// first, then their rows (each with a `system` audit entry); the paths
    /// removed. Runs as the repository's writer, so it never races a
    /// metadata upload publishing one of them.
    pub async fn sweep_staged(&self, grace: Duration) -> AppResult<Vec<String>> {
        let cutoff = self
            .clock
            .now_ms()
            .saturating_sub(i64::try_from(grace.as_millis()).unwrap_or(i64::MAX));
        let old: Vec<(String, i64)> = {
            let rows = sqlx::query(
                "SELECT path, uploaded_at FROM staged_uploads WHERE uploaded_at <= $1 ORDER BY uploaded_at",
            )
            .bind(cutoff)
            .fetch_all(self.store.pool())
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("path")?, r.try_get("uploaded_at")?)))
                .collect::<Result<_, sqlx::Error>>()?
        };
        if old.is_empty() {
            return Ok(Vec::new());
        }
        self.as_writer(async {
            let mut removed = Vec::new();
            for (path, uploaded_at) in old {
                self.blobs
                    .delete(&format!("{STAGING_PREFIX}{path}"))
                    .await?;
                let now = self.clock.now_ms();
                let mut tx = self.store.pool().begin().await?;
                let gone =
                    sqlx::query("DELETE FROM staged_uploads WHERE path = $1 AND uploaded_at = $2")
                        .bind(&path)
                        .bind(uploaded_at)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                        == 1;
                if gone {
                    let entry = AuditEntry::system(
                        "repo.staged_expire",
                        &path,
                        serde_json::json!({
                            "uploaded_at": crate::clock::rfc3339(uploaded_at),
                            "grace_secs": grace.as_secs(),
                        }),
                    );
                    audit::write(&mut tx, &entry, now).await?;
                    tx.commit().await?;
                    removed.push(path);
                } else {
                    tx.rollback().await?;
                }
            }
            Ok(removed)
        })
        .await
    }

    /// Copy the staged upload of `path` to `repo/targets/` (as the writer,
    /// before the commit that references it). True if the copy is new
    /// (undone if the commit fails).
    pub(super) async fn promote(&self, path: &str, len: u64) -> AppResult<bool> {
        let served = format!("{PREFIX}targets/{path}");
        if self
            .blobs
            .head(&served)
            .await?
            .is_some_and(|m| m.len == len)
        {
            return Ok(false);
        }
        let missing = || {
            ApiError::invalid(format!(
                "targets/{path} has not been uploaded, or its upload expired (PUT /admin/v1/repo/targets/{path} again)"
            ))
        };
        let Some(row) = self.staged_one(path).await? else {
            return Err(missing());
        };
        let staged = format!("{STAGING_PREFIX}{path}");
        match self.blobs.head(&staged).await? {
            Some(m) if m.len == len && row.length == len => {}
            Some(_) => {
                return Err(ApiError::invalid(format!(
                    "targets/{path} is {} bytes, the metadata says {len}",
                    row.length
                )));
            }
            None => return Err(missing()),
        }
        self.blobs
            .copy(&staged, &served)
            .await
            .with_context(|| format!("publishing targets/{path}"))?;
        Ok(true)
    }
}

fn staged_row(r: &sqlx::any::AnyRow) -> anyhow::Result<StagedUpload> {
    Ok(StagedUpload {
        path: r.try_get("path")?,
        length: u64::try_from(r.try_get::<i64, _>("length")?).unwrap_or(0),
        sha256: r.try_get("sha256")?,
        uploaded_at: r.try_get("uploaded_at")?,
        uploaded_by: r.try_get("uploaded_by")?,
    })
}

/// Run [`RepoHost::sweep_staged`] every `interval` until `stop` changes.
pub fn spawn_sweeper(
    repo: Arc<RepoHost>,
    grace: Duration,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            match repo.sweep_staged(grace).await {
                Ok(removed) if !removed.is_empty() => {
                    tracing::info!(
                        count = removed.len(),
                        "staged uploads past their grace period removed"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sweeping staged uploads failed"),
            }
        }
    })
}

/// Blob key of the staged upload of `path`.
pub fn staged_key(path: &str) -> String {
    format!("{STAGING_PREFIX}{path}")
}
