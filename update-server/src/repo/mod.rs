//! The image repository host: serves TUF metadata and targets from the blob
//! store, accepts targets metadata and target files uploaded by release
//! engineers, and re-signs snapshot and timestamp with the online keys
//! whenever targets change and before they expire.
//!
//! Repository *writing* reuses `signing_tools::repo` (the same code
//! `nightlatch-sign` runs), which works on a directory: with the local blob
//! store that directory is the served one (`DATA/public/repo`); with S3 it
//! is a working copy of the metadata (`DATA/repo-work`) synced down before
//! and up after each write, under a lease in the database so that one
//! replica at a time writes. Every write bumps a generation counter in the
//! database; replicas poll it and reload their [`Catalog`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use keys_ceremony::keysource::{KeySpec, open_all};
use keys_ceremony::metadata::{Expiry, MAX_METADATA_LEN};
use sha2::{Digest, Sha256};
use signing_tools::repo::{Expiries, Repo, metadata_dir};

use crate::blob::BlobStore;
use crate::clock::Clock;
use crate::error::{ApiError, AppResult};
use crate::store::Store;

pub mod catalog;
pub mod paths;
mod sync;
pub mod upload;

pub use catalog::Catalog;

/// Blob key prefix of the image repository.
pub const PREFIX: &str = "repo/";
const GENERATION_KEY: &str = "repo_generation";
const LEASE_KEY: &str = "repo_lease";
const LEASE_MS: i64 = 60_000;

/// Online keys of the image repository.
#[derive(Debug, Clone)]
pub struct RepoKeys {
    /// Snapshot key.
    pub snapshot: KeySpec,
    /// Timestamp key.
    pub timestamp: KeySpec,
}

/// The repository host.
#[derive(Debug)]
pub struct RepoHost {
    blobs: BlobStore,
    workdir: PathBuf,
    store: Store,
    keys: RepoKeys,
    expiries: Expiries,
    clock: Arc<dyn Clock>,
    holder: String,
    write: tokio::sync::Mutex<()>,
    catalog: RwLock<Arc<Catalog>>,
    generation: AtomicI64,
    served: RwLock<HashMap<String, Arc<CachedFile>>>,
}

/// A metadata file held in memory for serving.
#[derive(Debug)]
pub struct CachedFile {
    /// The bytes.
    pub bytes: Bytes,
    /// Its entity tag (quoted).
    pub etag: String,
}

/// Largest metadata kept in the serving cache, in total.
const SERVED_CACHE_MAX: usize = 64 << 20;

/// What a refresh did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RefreshOutcome {
    /// Snapshot version now current.
    pub snapshot_version: u64,
    /// Whether a new snapshot was written.
    pub new_snapshot: bool,
    /// Timestamp version written.
    pub timestamp_version: u64,
    /// Timestamp expiry.
    pub timestamp_expires: String,
}

fn is_mutable(name: &str) -> bool {
    name == "timestamp.json" || name == "root.json"
}

impl RepoHost {
    /// A host over `blobs`; `data_dir` holds the S3 working copy.
    pub fn new(
        blobs: BlobStore,
        data_dir: &Path,
        store: Store,
        keys: RepoKeys,
        expiries: Expiries,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let workdir = match blobs.local_dir() {
            Some(dir) => dir.join("repo"),
            None => data_dir.join("repo-work"),
        };
        std::fs::create_dir_all(metadata_dir(&workdir))
            .with_context(|| format!("cannot create {}", workdir.display()))?;
        std::fs::create_dir_all(workdir.join("targets"))?;
        Ok(Self {
            blobs,
            workdir,
            store,
            keys,
            expiries,
            holder: crate::ids::new_id("replica", clock.now_ms()),
            clock,
            write: tokio::sync::Mutex::new(()),
            catalog: RwLock::new(Arc::new(Catalog::default())),
            generation: AtomicI64::new(-1),
            served: RwLock::new(HashMap::new()),
        })
    }

    /// The working directory `signing_tools::repo` writes.
    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// What the repository holds now.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .read()
            .map(|c| Arc::clone(&c))
            .unwrap_or_default()
    }

    /// Whether the repository has a root.
    pub fn has_root(&self) -> bool {
        self.catalog().versions.contains_key("root")
    }

    /// Metadata (`repo/metadata/…`, `director/metadata/…`) for serving, from
    /// memory: TUF metadata is small, read constantly and changes only
    /// through this host (or another replica, noticed by [`RepoHost::poll`]),
    /// which empties the cache.
    pub async fn served_metadata(&self, key: &str) -> anyhow::Result<Option<Arc<CachedFile>>> {
        if let Some(hit) = self.served.read().ok().and_then(|c| c.get(key).cloned()) {
            return Ok(Some(hit));
        }
        let Some(bytes) = self.blobs.get(key, MAX_METADATA_LEN).await? else {
            return Ok(None);
        };
        let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&bytes)[..16]));
        let file = Arc::new(CachedFile { bytes, etag });
        if let Ok(mut cache) = self.served.write() {
            let total: usize = cache.values().map(|f| f.bytes.len()).sum();
            if total + file.bytes.len() > SERVED_CACHE_MAX {
                cache.clear();
            }
            cache.insert(key.to_owned(), Arc::clone(&file));
        }
        Ok(Some(file))
    }

    fn forget_served(&self) {
        if let Ok(mut cache) = self.served.write() {
            cache.clear();
        }
    }

    /// Re-read the working copy into the catalog.
    async fn reload(&self) -> anyhow::Result<()> {
        self.forget_served();
        let dir = self.workdir.clone();
        let catalog = tokio::task::spawn_blocking(move || match Repo::load(&dir) {
            Ok(repo) => Ok(Catalog::from_repo(&repo)),
            Err(signing_tools::Error::NotARepository { .. }) => Ok(Catalog::default()),
            Err(e) => Err(anyhow::anyhow!("{e}")),
        })
        .await??;
        if let Ok(mut slot) = self.catalog.write() {
            *slot = Arc::new(catalog);
        }
        Ok(())
    }

    /// Load the repository at startup (syncing the working copy down from S3).
    pub async fn open(&self) -> anyhow::Result<()> {
        self.sync_down().await?;
        self.reload().await?;
        let g = self.store.kv_get(GENERATION_KEY).await?;
        self.generation.store(
            g.and_then(|v| v.parse().ok()).unwrap_or(0),
            Ordering::SeqCst,
        );
        Ok(())
    }

    /// Reload if another replica changed the repository.
    pub async fn poll(&self) -> anyhow::Result<bool> {
        let g: i64 = self
            .store
            .kv_get(GENERATION_KEY)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if g == self.generation.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let _w = self.write.lock().await;
        self.sync_down().await?;
        self.reload().await?;
        self.generation.store(g, Ordering::SeqCst);
        Ok(true)
    }

    /// Run `op` on the working copy as the only writer (local lock, database
    /// lease), then publish the result and tell the other replicas.
    async fn write_op<T, F>(&self, op: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Path) -> AppResult<T> + Send + 'static,
    {
        let _w = self.write.lock().await;
        let mut waited = Duration::ZERO;
        while !self
            .store
            .lease_acquire(LEASE_KEY, &self.holder, self.clock.now_ms(), LEASE_MS)
            .await?
        {
            if waited > Duration::from_secs(30) {
                return Err(ApiError::unavailable(
                    "another replica is writing the repository; try again",
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited += Duration::from_millis(100);
        }
        let result = async {
            self.sync_down().await?;
            let dir = self.workdir.clone();
            let out = tokio::task::spawn_blocking(move || op(&dir))
                .await
                .map_err(|e| ApiError::Internal(e.into()))??;
            self.sync_up().await?;
            let g = self
                .store
                .kv_bump(GENERATION_KEY, self.clock.now_ms())
                .await?;
            self.generation.store(g, Ordering::SeqCst);
            self.reload().await?;
            Ok::<T, ApiError>(out)
        }
        .await;
        if let Err(e) = self.store.lease_release(LEASE_KEY, &self.holder).await {
            tracing::warn!(error = %e, "could not release the repository lease");
        }
        result
    }

    /// Start an empty repository from a trusted root file (no-op if it has one).
    pub async fn init_root(&self, root: &Path) -> AppResult<bool> {
        let root = root.to_owned();
        self.write_op(move |dir| {
            if signing_tools::repo::scan(dir)
                .map(|v| v.contains_key("root"))
                .unwrap_or(false)
            {
                return Ok(false);
            }
            signing_tools::repo::roots::init(dir, &root)
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("starting the repository: {e}")))?;
            Ok(true)
        })
        .await
    }

    /// Publish empty (or re-signed) top-level targets with `keys` — only the
    /// dev bootstrap does this: in production the targets key is offline.
    pub async fn dev_publish(&self, keys: Vec<KeySpec>) -> AppResult<()> {
        let expiries = self.expiries;
        self.write_op(move |dir| {
            let keys = open_all(&keys).map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
            signing_tools::repo::publish::publish(dir, &keys, &[], &expiries)
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("dev publish: {e}")))?;
            Ok(())
        })
        .await?;
        self.refresh().await.map(|_| ())
    }

    /// Re-sign snapshot (if needed) and timestamp.
    pub async fn refresh(&self) -> AppResult<RefreshOutcome> {
        let keys = self.keys.clone();
        let expiries = self.expiries;
        self.write_op(move |dir| refresh_in(dir, &keys, &expiries))
            .await
    }

    /// Refresh if the timestamp expires within half its lifetime (or is missing).
    pub async fn refresh_if_due(&self) -> AppResult<Option<RefreshOutcome>> {
        let dir = self.workdir.clone();
        let lifetime = self.expiries.timestamp;
        let due = tokio::task::spawn_blocking(move || {
            let path = metadata_dir(&dir).join("timestamp.json");
            match keys_ceremony::metadata::Signed::<keys_ceremony::metadata::Timestamp>::load(&path)
            {
                Ok(ts) => ts.signed.expires <= Expiry::now().after(lifetime / 2),
                Err(_) => true,
            }
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
        if !due {
            return Ok(None);
        }
        self.refresh().await.map(Some)
    }

    /// Store an uploaded target file at `path` (`<dir>/<sha256>.<name>`, as
    /// consistent snapshots name it) after checking its hash.
    pub async fn put_target(&self, path: &str, bytes: Bytes) -> AppResult<String> {
        crate::blob::check_key(path).map_err(|r| ApiError::bad_request("bad_path", r))?;
        let base = path.rsplit('/').next().unwrap_or(path);
        let claimed = base.split_once('.').map(|(h, _)| h).unwrap_or("");
        if claimed.len() != 64 || !claimed.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::bad_request(
                "bad_path",
                "target files are uploaded under their consistent-snapshot name: <dir>/<sha256>.<name>",
            ));
        }
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != claimed.to_ascii_lowercase() {
            return Err(ApiError::bad_request(
                "hash_mismatch",
                format!("the body hashes to {actual}, not {claimed}"),
            ));
        }
        self.blobs
            .put(&format!("{PREFIX}targets/{path}"), bytes)
            .await?;
        Ok(actual)
    }

    /// Accept uploaded targets metadata `N.ROLE.json` (see [`upload`]), then
    /// refresh snapshot and timestamp.
    pub async fn put_metadata(&self, file_name: &str, bytes: Bytes) -> AppResult<RefreshOutcome> {
        // Check against the current working copy, then again under the write
        // lock (another upload may have landed in between).
        let accepted = self.check_upload(file_name, &bytes).await?;
        for (key, len) in &accepted.needed {
            match self.blobs.head(&format!("{PREFIX}{key}")).await? {
                Some(m) if m.len == *len => {}
                Some(m) => {
                    return Err(ApiError::invalid(format!(
                        "{key} is {} bytes, the metadata says {len}",
                        m.len
                    )));
                }
                None => {
                    return Err(ApiError::invalid(format!(
                        "{key} has not been uploaded (PUT /admin/v1/repo/targets/… first)"
                    )));
                }
            }
        }
        let name = file_name.to_owned();
        let keys = self.keys.clone();
        let expiries = self.expiries;
        self.write_op(move |dir| {
            let repo = Repo::load(dir).map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
            upload::check(&repo, &name, &bytes).map_err(ApiError::invalid)?;
            keys_ceremony::fsio::write_atomic(
                &metadata_dir(dir).join(&name),
                &bytes,
                keys_ceremony::fsio::Access::Public,
                false,
            )
            .map_err(|e| ApiError::conflict("exists", e.to_string()))?;
            refresh_in(dir, &keys, &expiries)
        })
        .await
    }

    async fn check_upload(&self, file_name: &str, bytes: &Bytes) -> AppResult<upload::Accepted> {
        let dir = self.workdir.clone();
        let name = file_name.to_owned();
        let bytes = bytes.clone();
        tokio::task::spawn_blocking(move || {
            let repo = Repo::load(&dir).map_err(|e| ApiError::invalid(format!("{e}")))?;
            upload::check(&repo, &name, &bytes).map_err(ApiError::invalid)
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
    }

    /// Add a rotated root `N.root.json` (checked against the current root's
    /// and its own thresholds).
    pub async fn put_root(&self, file_name: &str, bytes: Bytes) -> AppResult<Vec<String>> {
        let Some((version, "root")) = upload::parse_file_name(file_name) else {
            return Err(ApiError::bad_request(
                "bad_path",
                "roots are uploaded as N.root.json",
            ));
        };
        let tmp = tempfile::Builder::new()
            .prefix(".upload-")
            .tempfile()
            .map_err(|e| ApiError::Internal(e.into()))?;
        std::fs::write(tmp.path(), &bytes).map_err(|e| ApiError::Internal(e.into()))?;
        let path = tmp.path().to_owned();
        let changed = self
            .write_op(move |dir| {
                let current = signing_tools::repo::scan(dir)
                    .ok()
                    .and_then(|v| v.get("root").copied())
                    .unwrap_or(0);
                if version != current + 1 {
                    return Err(ApiError::invalid(format!(
                        "the repository has root version {current}; the next root must be version {}",
                        current + 1
                    )));
                }
                signing_tools::repo::roots::add(dir, &path).map_err(|e| ApiError::invalid(e.to_string()))
            })
            .await?;
        drop(tmp);
        // New online keys may be needed; try, but the root is in either way.
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "refresh after a root rotation failed (are the new online keys configured?)");
        }
        Ok(changed)
    }
}

fn refresh_in(dir: &Path, keys: &RepoKeys, expiries: &Expiries) -> AppResult<RefreshOutcome> {
    let keys = open_all(&[keys.snapshot.clone(), keys.timestamp.clone()])
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("opening online keys: {e}")))?;
    let r = signing_tools::repo::refresh::refresh(dir, &keys, expiries).map_err(|e| match e {
        signing_tools::Error::RepoState { reason, .. } => ApiError::conflict("not_ready", reason),
        other => ApiError::Internal(anyhow::anyhow!("refresh: {other}")),
    })?;
    Ok(RefreshOutcome {
        snapshot_version: r.snapshot_version,
        new_snapshot: r.new_snapshot,
        timestamp_version: r.timestamp_version,
        timestamp_expires: r.timestamp_expires,
    })
}

async fn write_file(path: &Path, bytes: Bytes) -> anyhow::Result<()> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        keys_ceremony::fsio::write_atomic(&path, &bytes, keys_ceremony::fsio::Access::Public, true)
            .map_err(|e| anyhow::anyhow!("{e}"))
    })
    .await?
}
