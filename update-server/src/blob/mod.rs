//! Blob storage for everything the repositories serve (TUF metadata, target
//! files, director roots), behind one type with two backends (after
//! crates.io's `storage.rs`): a local directory (the default) and S3.
//!
//! Keys are relative paths such as `metadata/3.snapshot.json` or
//! `targets/nl-lock-v2/<sha256>.1.4.2.nlfw`; [`check_key`] refuses anything
//! that could escape the store.

use std::ops::Range;
use std::path::Path;

use axum::body::Body;
use bytes::Bytes;

pub mod local;
pub mod s3;

pub use local::LocalBlobs;
pub use s3::S3Blobs;

/// Size and entity tag of a stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    /// Length in bytes.
    pub len: u64,
    /// Entity tag, quoted (`"…"`), changes whenever the content does.
    pub etag: String,
}

/// The store.
#[derive(Debug, Clone)]
pub enum BlobStore {
    /// A directory.
    Local(LocalBlobs),
    /// An S3 bucket.
    S3(S3Blobs),
}

/// Check a blob key: relative, `/`-separated, no empty, `.` or `..`
/// component, printable ASCII without backslashes, at most 1024 bytes.
pub fn check_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.len() <= 1024
        && key.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        && key
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a valid path",
            key.chars().take(80).collect::<String>()
        ))
    }
}

impl BlobStore {
    /// Size and tag of `key`, None if absent.
    pub async fn head(&self, key: &str) -> anyhow::Result<Option<BlobMeta>> {
        check_key(key).map_err(anyhow::Error::msg)?;
        match self {
            Self::Local(s) => s.head(key).await,
            Self::S3(s) => s.head(key).await,
        }
    }

    /// A streaming body of `range` of `key` (the whole blob if None). The
    /// caller checks `range` against [`BlobStore::head`] first.
    pub async fn read(&self, key: &str, range: Option<Range<u64>>) -> anyhow::Result<Option<Body>> {
        check_key(key).map_err(anyhow::Error::msg)?;
        match self {
            Self::Local(s) => s.read(key, range).await,
            Self::S3(s) => s.read(key, range).await,
        }
    }

    /// The whole blob in memory, refusing blobs over `limit` bytes.
    pub async fn get(&self, key: &str, limit: u64) -> anyhow::Result<Option<Bytes>> {
        check_key(key).map_err(anyhow::Error::msg)?;
        match self {
            Self::Local(s) => s.get(key, limit).await,
            Self::S3(s) => s.get(key, limit).await,
        }
    }

    /// Store `bytes` at `key` (replacing it atomically).
    pub async fn put(&self, key: &str, bytes: Bytes) -> anyhow::Result<()> {
        check_key(key).map_err(anyhow::Error::msg)?;
        match self {
            Self::Local(s) => s.put(key, bytes).await,
            Self::S3(s) => s.put(key, bytes).await,
        }
    }

    /// Store the file at `path` (`len` bytes) at `key`, streaming it (the
    /// file is consumed: moved into place locally when it can be, left to
    /// the caller to delete otherwise).
    pub async fn put_file(&self, key: &str, path: &Path, len: u64) -> anyhow::Result<()> {
        check_key(key).map_err(anyhow::Error::msg)?;
        match self {
            Self::Local(s) => s.put_file(key, path).await,
            Self::S3(s) => s.put_file(key, path, len).await,
        }
    }

    /// Copy blob `from` to `to` (replacing `to` atomically), without
    /// holding it in memory.
    pub async fn copy(&self, from: &str, to: &str) -> anyhow::Result<()> {
        check_key(from).map_err(anyhow::Error::msg)?;
        check_key(to).map_err(anyhow::Error::msg)?;
        match self {
            Self::Local(s) => s.copy(from, to).await,
            Self::S3(s) => s.copy(from, to).await,
        }
    }

    /// Delete `key` (no error if it is absent).
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        check_key(key).map_err(anyhow::Error::msg)?;
        match self {
            Self::Local(s) => s.delete(key).await,
            Self::S3(s) => s.delete(key).await,
        }
    }

    /// Every key under `prefix` (e.g. `metadata/`) with its length.
    pub async fn list(&self, prefix: &str) -> anyhow::Result<Vec<(String, u64)>> {
        match self {
            Self::Local(s) => s.list(prefix).await,
            Self::S3(s) => s.list(prefix).await,
        }
    }

    /// Whether the store answers.
    pub async fn ping(&self) -> anyhow::Result<()> {
        match self {
            Self::Local(s) => s.ping().await,
            Self::S3(s) => s.ping().await,
        }
    }

    /// The directory, for the local backend.
    pub fn local_dir(&self) -> Option<&Path> {
        match self {
            Self::Local(s) => Some(s.dir()),
            Self::S3(_) => None,
        }
    }

    /// `local` or `s3`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            Self::S3(_) => "s3",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape() {
        assert!(check_key("metadata/1.root.json").is_ok());
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "a//b",
            "./a",
            "a\\b",
            "a b",
            "a/",
        ] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }
}
