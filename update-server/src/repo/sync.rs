//! Keeping the working copy and an S3 bucket in step (the local blob store
//! needs none of this: its directory is the working copy).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use anyhow::Context;
use bytes::Bytes;
use nightlatch_repo::metadata::MAX_METADATA_LEN;
use nightlatch_repo::repo::metadata_dir;

use crate::repo::{PREFIX, RepoHost, is_mutable, write_file};

impl RepoHost {
    /// Mirror S3's `repo/metadata/` into the working copy.
    pub(super) async fn sync_down(&self) -> anyhow::Result<()> {
        if self.blobs.local_dir().is_some() {
            return Ok(());
        }
        let prefix = format!("{PREFIX}metadata/");
        let remote = self.blobs.list(&prefix).await?;
        let meta_dir = metadata_dir(&self.workdir);
        let mut names = HashSet::new();
        for (key, len) in &remote {
            let Some(name) = key.strip_prefix(&prefix) else {
                continue;
            };
            if name.contains('/') {
                continue;
            }
            names.insert(name.to_owned());
            let path = meta_dir.join(name);
            let same = std::fs::metadata(&path).is_ok_and(|m| m.len() == *len);
            if same && !is_mutable(name) {
                continue;
            }
            let bytes = self
                .blobs
                .get(key, MAX_METADATA_LEN)
                .await?
                .with_context(|| format!("{key} vanished while syncing"))?;
            write_file(&path, bytes).await?;
        }
        for entry in std::fs::read_dir(&meta_dir)?.flatten() {
            if let Some(name) = entry.file_name().to_str()
                && !names.contains(name)
                && !name.starts_with('.')
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    /// Upload working-copy metadata S3 lacks: the versioned files (before
    /// the commit), or with `mutable` only `root.json` then
    /// `timestamp.json` (after it, so that readers of the bucket never see a
    /// timestamp naming a snapshot that is not there yet, nor one that was
    /// not committed).
    pub(super) async fn sync_up(&self, mutable: bool) -> anyhow::Result<()> {
        if self.blobs.local_dir().is_some() {
            return Ok(());
        }
        let prefix = format!("{PREFIX}metadata/");
        let remote: HashMap<String, u64> = self.blobs.list(&prefix).await?.into_iter().collect();
        let mut local: Vec<(String, PathBuf, u64)> = Vec::new();
        for entry in std::fs::read_dir(metadata_dir(&self.workdir))?.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') || is_mutable(&name) != mutable {
                continue;
            }
            let len = entry.metadata()?.len();
            local.push((name, entry.path(), len));
        }
        local.sort_by_key(|(name, _, _)| match name.as_str() {
            "timestamp.json" => 2,
            "root.json" => 1,
            _ => 0,
        });
        for (name, path, len) in local {
            let key = format!("{prefix}{name}");
            if remote.get(&key) == Some(&len) && !is_mutable(&name) {
                continue;
            }
            let bytes = tokio::fs::read(&path).await?;
            self.blobs.put(&key, Bytes::from(bytes)).await?;
        }
        Ok(())
    }
}
