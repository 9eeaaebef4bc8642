//! Blobs in a local directory (the default). Writes are atomic (temporary
//! file, fsync, rename), so a reader never sees half a file.

use std::io::SeekFrom;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::Context;
use axum::body::Body;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use crate::blob::BlobMeta;

const READ_CHUNK: usize = 256 * 1024;

/// A directory of blobs.
#[derive(Debug, Clone)]
pub struct LocalBlobs {
    dir: PathBuf,
}

fn missing(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

/// Served files are world-readable (as `write_atomic` leaves them).
fn set_public(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644));
    }
    #[cfg(not(unix))]
    let _ = path;
}

impl LocalBlobs {
    /// Blobs under `dir` (created if missing).
    pub fn new(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }

    pub(crate) async fn head(&self, key: &str) -> anyhow::Result<Option<BlobMeta>> {
        match tokio::fs::metadata(self.path(key)).await {
            Ok(m) if m.is_file() => {
                let mtime = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                Ok(Some(BlobMeta {
                    len: m.len(),
                    etag: format!("\"{:x}-{mtime:x}\"", m.len()),
                }))
            }
            Ok(_) => Ok(None),
            Err(e) if missing(&e) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("stat {key}")),
        }
    }

    pub(crate) async fn read(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> anyhow::Result<Option<Body>> {
        let mut file = match tokio::fs::File::open(self.path(key)).await {
            Ok(f) => f,
            Err(e) if missing(&e) => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("open {key}")),
        };
        // Large reads: every read of a tokio file is a hop to the blocking
        // pool, so read big chunks.
        let body = match range {
            Some(r) => {
                file.seek(SeekFrom::Start(r.start)).await?;
                Body::from_stream(ReaderStream::with_capacity(
                    file.take(r.end - r.start),
                    READ_CHUNK,
                ))
            }
            None => Body::from_stream(ReaderStream::with_capacity(file, READ_CHUNK)),
        };
        Ok(Some(body))
    }

    pub(crate) async fn get(&self, key: &str, limit: u64) -> anyhow::Result<Option<Bytes>> {
        let path = self.path(key);
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if missing(&e) => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("open {key}")),
        };
        let mut buf = Vec::new();
        file.take(limit.saturating_add(1))
            .read_to_end(&mut buf)
            .await
            .with_context(|| format!("read {key}"))?;
        anyhow::ensure!(
            buf.len() as u64 <= limit,
            "{key} is larger than {limit} bytes"
        );
        Ok(Some(Bytes::from(buf)))
    }

    pub(crate) async fn put(&self, key: &str, bytes: Bytes) -> anyhow::Result<()> {
        let path = self.path(key);
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            nightlatch_repo::fsio::write_atomic(
                &path,
                &bytes,
                nightlatch_repo::fsio::Access::Public,
                true,
            )
            .map_err(|e| anyhow::anyhow!("write {key}: {e}"))
        })
        .await?
    }

    pub(crate) async fn put_file(&self, key: &str, from: &Path) -> anyhow::Result<()> {
        let path = self.path(key);
        let from = from.to_owned();
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let parent = path
                .parent()
                .with_context(|| format!("{key} has no parent directory"))?;
            std::fs::create_dir_all(parent)?;
            std::fs::File::open(&from)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("sync {}", from.display()))?;
            // Same file system: one rename. Else copy to a temporary file
            // beside the target first, so the rename stays atomic.
            if std::fs::rename(&from, &path).is_err() {
                let tmp = tempfile::Builder::new()
                    .prefix(".put-")
                    .tempfile_in(parent)
                    .with_context(|| format!("write {key}"))?;
                std::fs::copy(&from, tmp.path()).with_context(|| format!("write {key}"))?;
                tmp.as_file().sync_all()?;
                tmp.persist(&path)
                    .map_err(|e| anyhow::anyhow!("write {key}: {}", e.error))?;
            }
            set_public(&path);
            if let Ok(dir) = std::fs::File::open(parent) {
                let _ = dir.sync_all();
            }
            Ok(())
        })
        .await?
    }

    pub(crate) async fn copy(&self, from: &str, to: &str) -> anyhow::Result<()> {
        let src = self.path(from);
        let dst = self.path(to);
        let to = to.to_owned();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let parent = dst
                .parent()
                .with_context(|| format!("{to} has no parent directory"))?;
            std::fs::create_dir_all(parent)?;
            let tmp = tempfile::Builder::new()
                .prefix(".copy-")
                .tempfile_in(parent)
                .with_context(|| format!("write {to}"))?;
            std::fs::copy(&src, tmp.path())
                .with_context(|| format!("copy {} to {to}", src.display()))?;
            tmp.as_file().sync_all()?;
            tmp.persist(&dst)
                .map_err(|e| anyhow::anyhow!("write {to}: {}", e.error))?;
            set_public(&dst);
            if let Ok(dir) = std::fs::File::open(parent) {
                let _ = dir.sync_all();
            }
            Ok(())
        })
        .await?
    }

    pub(crate) async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match tokio::fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(()),
            Err(e) if missing(&e) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("delete {key}")),
        }
    }

    pub(crate) async fn list(&self, prefix: &str) -> anyhow::Result<Vec<(String, u64)>> {
        let root = self.dir.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let mut stack = vec![root.clone()];
            while let Some(dir) = stack.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if missing(&e) => continue,
                    Err(e) => return Err(anyhow::Error::new(e).context(format!("list {}", dir.display()))),
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    let Ok(meta) = entry.metadata() else { continue };
                    if meta.is_dir() {
                        stack.push(path);
                        continue;
                    }
                    let Ok(rel) = path.strip_prefix(&root) else { continue };
                    let Some(key) = rel.to_str().map(|k| k.replace('\\', "/")) else {
                        continue;
                    };
                    let hidden = key.split('/').any(|c| c.starts_with('.'));
                    if !hidden && key.starts_with(&prefix) {
                        out.push((key, meta.len()));
                    }
                }
            }
            out.sort();
            Ok(out)
        })
        .await?
    }

    pub(crate) async fn ping(&self) -> anyhow::Result<()> {
        let m = tokio::fs::metadata(&self.dir)
            .await
            .with_context(|| format!("blob directory {}", self.dir.display()))?;
        anyhow::ensure!(m.is_dir(), "{} is not a directory", self.dir.display());
        Ok(())
    }
}
