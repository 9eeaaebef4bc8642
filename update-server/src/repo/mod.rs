//! The image repository host: serves TUF metadata and targets from the blob
//! store, accepts targets metadata and target files uploaded by release
//! engineers, and re-signs snapshot and timestamp with the online keys
//! whenever targets change and before they expire.
//!
//! Repository *writing* reuses `nightlatch_repo::repo` (the same code
//! `nightlatch-sign` runs), which works on a directory: with the local blob
//! store that directory is the served one (`DATA/public/repo`); with S3 it
//! is a working copy of the metadata (`DATA/repo-work`) synced down before
//! and up after each write, under a lease in the database so that one
//! replica at a time writes.
//!
//! A write is decided by one database transaction, the repository's commit
//! point ([`commit`]): it records the new `timestamp.json` and newest root
//! version (which is what the server serves to clients), bumps the
//! generation replicas poll to reload their [`Catalog`], and writes the
//! change's audit entries. Files of a write that did not commit are removed
//! before the next one. Uploaded target files are staged ([`staging`]) and
//! published by the commit of the first targets metadata that lists them.

use nightlatch_repo::metadata::Metadata as _;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use nightlatch_repo::Clock as _;
use nightlatch_repo::fsio::{Access, write_atomic};
use nightlatch_repo::keysource::{KeySpec, open_all};
use nightlatch_repo::metadata::{MAX_METADATA_LEN, Signed, Snapshot, Timestamp};
use nightlatch_repo::repo::{Expiries, Repo, metadata_dir};
use sha2::{Digest, Sha256};

use crate::blob::BlobStore;
use crate::clock::{Clock, RepoClock};
use crate::error::{ApiError, AppResult};
use crate::store::Store;
use crate::store::audit::AuditEntry;

pub mod catalog;
pub mod commit;
pub mod staging;
mod sync;
pub mod upload;

pub use catalog::Catalog;
pub use commit::Committed;
pub use staging::{StagedUpload, TargetState};

/// Blob key prefix of the image repository.
pub const PREFIX: &str = "repo/";
const LEASE_KEY: &str = "repo_lease";

/// The audit entries of a repository write, made from its outcome; they are
/// written in the write's commit transaction.
pub type AuditFn<T> = Box<dyn FnOnce(&T) -> Vec<AuditEntry> + Send>;

/// No audit entries (writes the server makes by itself).
pub fn unaudited<T>() -> AuditFn<T> {
    Box::new(|_| Vec::new())
}
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
    committed: RwLock<Arc<ServedState>>,
    upload_slots: OnceLock<Arc<tokio::sync::Semaphore>>,
    upload_tmp: PathBuf,
}

/// What clients are served as the entry points of the repository: the
/// committed timestamp and newest root version.
#[derive(Debug, Default)]
struct ServedState {
    root_version: Option<u64>,
    timestamp: Option<Arc<CachedFile>>,
}

/// A metadata file held in memory for serving, with the response headers
/// that depend on it prepared once (not per request).
#[derive(Debug)]
pub struct CachedFile {
    /// The bytes.
    pub bytes: Bytes,
    /// Its entity tag (quoted).
    pub etag: String,
    /// `ETag` header value.
    pub etag_header: axum::http::HeaderValue,
    /// `Content-Length` header value of the whole file.
    pub len_header: axum::http::HeaderValue,
}

impl CachedFile {
    /// Hold `bytes`, tagged by their SHA-256.
    pub fn new(bytes: Bytes) -> Self {
        let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&bytes)[..16]));
        let etag_header = axum::http::HeaderValue::from_str(&etag)
            .unwrap_or_else(|_| axum::http::HeaderValue::from_static("\"\""));
        let len_header = axum::http::HeaderValue::from(bytes.len() as u64);
        Self {
            bytes,
            etag,
            etag_header,
            len_header,
        }
    }
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
        let upload_tmp = data_dir.join("upload-tmp");
        std::fs::create_dir_all(&upload_tmp)
            .with_context(|| format!("cannot create {}", upload_tmp.display()))?;
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
            committed: RwLock::new(Arc::default()),
            upload_slots: OnceLock::new(),
            upload_tmp,
        })
    }

    /// The working directory `nightlatch_repo::repo` writes.
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
        let file = Arc::new(CachedFile::new(bytes));
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

    /// This host's clock as the repository library reads it.
    fn repo_clock(&self) -> RepoClock {
        RepoClock(Arc::clone(&self.clock))
    }

    /// Re-read the working copy into the catalog.
    async fn reload(&self) -> anyhow::Result<()> {
        self.forget_served();
        let dir = self.workdir.clone();
        let catalog = tokio::task::spawn_blocking(move || match Repo::load(&dir) {
            Ok(repo) => Ok(Catalog::from_repo(&repo)),
            Err(nightlatch_repo::Error::NotARepository { .. }) => Ok(Catalog::default()),
            Err(e) => Err(anyhow::anyhow!("{e}")),
        })
        .await??;
        if let Ok(mut slot) = self.catalog.write() {
            *slot = Arc::new(catalog);
        }
        Ok(())
    }

    /// The committed `timestamp.json` (what clients are served).
    pub fn served_timestamp(&self) -> Option<Arc<CachedFile>> {
        self.committed.read().ok().and_then(|c| c.timestamp.clone())
    }

    /// The committed newest root version (newer root files are not served).
    pub fn committed_root_version(&self) -> Option<u64> {
        self.committed.read().ok().and_then(|c| c.root_version)
    }

    fn set_committed(&self, root_version: Option<u64>, timestamp: Option<Bytes>) {
        let timestamp = timestamp.map(|bytes| Arc::new(CachedFile::new(bytes)));
        if let Ok(mut slot) = self.committed.write() {
            *slot = Arc::new(ServedState {
                root_version,
                timestamp,
            });
        }
    }

    /// Load the repository at startup (syncing the working copy down from
    /// S3, and dropping whatever a write that did not commit left in it).
    pub async fn open(&self) -> anyhow::Result<()> {
        self.clear_upload_tmp();
        {
            let _w = self.write.lock().await;
            self.sync_down().await?;
            let c = commit::load(&self.store).await?;
            self.align(&c, false).await?;
            self.reload().await?;
            self.set_committed(c.root_version, c.timestamp.clone());
            self.generation.store(c.generation, Ordering::SeqCst);
            if c.root_version.is_some() || !self.has_root() {
                return Ok(());
            }
        }
        // A repository written by an older server: its files become the
        // committed state.
        self.write_op(Vec::new(), |_| Ok(()), unaudited())
            .await
            .map_err(|e| anyhow::anyhow!("recording the repository's committed state: {e}"))?;
        tracing::info!("repository state recorded in the database (commit point)");
        Ok(())
    }

    /// Reload if another replica changed the repository.
    pub async fn poll(&self) -> anyhow::Result<bool> {
        let g = commit::generation(&self.store).await?;
        if g == self.generation.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let _w = self.write.lock().await;
        self.sync_down().await?;
        let c = commit::load(&self.store).await?;
        self.align(&c, false).await?;
        self.reload().await?;
        self.set_committed(c.root_version, c.timestamp.clone());
        self.generation.store(c.generation, Ordering::SeqCst);
        Ok(true)
    }

    /// Run `work` as the only writer: the local lock, then the lease in
    /// the database.
    async fn as_writer<T>(&self, work: impl Future<Output = AppResult<T>>) -> AppResult<T> {
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
        let result = work.await;
        if let Err(e) = self.store.lease_release(LEASE_KEY, &self.holder).await {
            tracing::warn!(error = %e, "could not release the repository lease");
        }
        result
    }

    /// Run `op` on the working copy as the only writer, after publishing
    /// the staged uploads `promote` (path under `targets/`, length); then
    /// commit: upload the new versioned files, and in one database
    /// transaction record the new timestamp and root version, bump the
    /// generation, delete the promoted uploads' rows and write `audit`'s
    /// entries. Clients see the change only once that transaction
    /// committed; if anything fails before, what the write left is removed.
    async fn write_op<T, F>(
        &self,
        promote: Vec<(String, u64)>,
        op: F,
        audit: AuditFn<T>,
    ) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Path) -> AppResult<T> + Send + 'static,
    {
        self.as_writer(async {
            self.sync_down().await?;
            let before = commit::load(&self.store).await?;
            self.align(&before, true).await?;
            let staged_done: Vec<String> = promote.iter().map(|(p, _)| p.clone()).collect();
            let mut copied: Vec<String> = Vec::new();
            let attempt = async {
                for (path, len) in &promote {
                    if self.promote(path, *len).await? {
                        copied.push(path.clone());
                    }
                }
                let dir = self.workdir.clone();
                let out = tokio::task::spawn_blocking(move || op(&dir))
                    .await
                    .map_err(|e| ApiError::Internal(e.into()))??;
                self.sync_up(false).await?;
                let (root_version, timestamp) = self.working_state().await?;
                let entries = audit(&out);
                let g = commit::commit(
                    &self.store,
                    &commit::Commit {
                        expected_generation: before.generation,
                        root_version,
                        timestamp: timestamp.as_deref(),
                        audit: &entries,
                        staged_done: &staged_done,
                        now: self.clock.now_ms(),
                    },
                )
                .await?
                .ok_or_else(|| {
                    ApiError::unavailable(
                        "the repository was changed by another replica meanwhile; try again",
                    )
                })?;
                Ok::<_, ApiError>((out, g, root_version, timestamp))
            }
            .await;
            match attempt {
                Ok((out, g, root_version, timestamp)) => {
                    self.generation.store(g, Ordering::SeqCst);
                    self.set_committed(Some(root_version), timestamp);
                    // For readers of the bucket itself (a CDN, older replicas).
                    if let Err(e) = self.sync_up(true).await {
                        tracing::warn!(error = %e, "uploading timestamp.json/root.json after a commit failed");
                    }
                    for path in &staged_done {
                        if let Err(e) = self.blobs.delete(&staging::staged_key(path)).await {
                            tracing::warn!(error = %e, path, "deleting a published staged upload failed");
                        }
                    }
                    self.reload().await?;
                    Ok(out)
                }
                Err(e) => {
                    for path in &copied {
                        if let Err(e) = self.blobs.delete(&format!("{PREFIX}targets/{path}")).await {
                            tracing::warn!(error = %e, path, "removing an unpublished target failed");
                        }
                    }
                    match commit::load(&self.store).await {
                        Ok(c) => {
                            if let Err(e) = self.align(&c, true).await {
                                tracing::warn!(error = %e, "undoing a failed repository write");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "undoing a failed repository write"),
                    }
                    Err(e)
                }
            }
        })
        .await
    }

    /// Newest root version and `timestamp.json` of the working copy.
    async fn working_state(&self) -> anyhow::Result<(u64, Option<Bytes>)> {
        let dir = self.workdir.clone();
        tokio::task::spawn_blocking(move || {
            let versions = nightlatch_repo::repo::scan(&dir).map_err(|e| anyhow::anyhow!("{e}"))?;
            let root = versions
                .get("root")
                .copied()
                .context("the repository has no root")?;
            let ts = match std::fs::read(metadata_dir(&dir).join("timestamp.json")) {
                Ok(b) => Some(Bytes::from(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(anyhow::Error::new(e).context("reading timestamp.json")),
            };
            Ok((root, ts))
        })
        .await?
    }

    /// Bring the working copy (and with `remote`, the bucket) to the
    /// committed state `c`: remove metadata files no commit made (newer
    /// than what the committed timestamp, its snapshot and the committed
    /// root name), and write the committed `timestamp.json` and `root.json`.
    async fn align(&self, c: &Committed, remote: bool) -> anyhow::Result<()> {
        let Some(root_version) = c.root_version else {
            return Ok(());
        };
        let dir = metadata_dir(&self.workdir);
        let ts = c.timestamp.clone();
        let removed =
            tokio::task::spawn_blocking(move || align_dir(&dir, root_version, ts.as_deref()))
                .await??;
        if !removed.is_empty() {
            tracing::info!(files = ?removed, "removed repository metadata that was never committed");
        }
        if remote && self.blobs.local_dir().is_none() {
            for name in &removed {
                self.blobs
                    .delete(&format!("{PREFIX}metadata/{name}"))
                    .await?;
            }
        }
        Ok(())
    }

    /// Start an empty repository from a trusted root file (no-op if it has one).
    pub async fn init_root(&self, root: &Path) -> AppResult<bool> {
        let root = root.to_owned();
        self.write_op(
            Vec::new(),
            move |dir| {
                if nightlatch_repo::repo::scan(dir)
                    .map(|v| v.contains_key("root"))
                    .unwrap_or(false)
                {
                    return Ok(false);
                }
                nightlatch_repo::repo::roots::init(dir, &root).map_err(|e| {
                    ApiError::Internal(anyhow::anyhow!("starting the repository: {e}"))
                })?;
                Ok(true)
            },
            unaudited(),
        )
        .await
    }

    /// Publish empty (or re-signed) top-level targets with `keys` — only the
    /// dev bootstrap does this: in production the targets key is offline.
    pub async fn dev_publish(&self, keys: Vec<KeySpec>) -> AppResult<()> {
        let expiries = self.expiries;
        let online = self.keys.clone();
        let clock = self.repo_clock();
        self.write_op(
            Vec::new(),
            move |dir| {
                let keys =
                    open_all(&keys).map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
                nightlatch_repo::repo::publish::publish(dir, &keys, &[], &expiries, &clock)
                    .map_err(|e| ApiError::Internal(anyhow::anyhow!("dev publish: {e}")))?;
                refresh_in(dir, &online, &expiries, &clock).map(|_| ())
            },
            unaudited(),
        )
        .await
    }

    /// Re-sign snapshot (if needed) and timestamp (the server's own
    /// refresh: no audit entry).
    pub async fn refresh(&self) -> AppResult<RefreshOutcome> {
        self.refresh_with(unaudited()).await
    }

    /// Re-sign snapshot (if needed) and timestamp, with `audit`'s entries
    /// in the commit.
    pub async fn refresh_with(&self, audit: AuditFn<RefreshOutcome>) -> AppResult<RefreshOutcome> {
        let keys = self.keys.clone();
        let expiries = self.expiries;
        let clock = self.repo_clock();
        self.write_op(
            Vec::new(),
            move |dir| refresh_in(dir, &keys, &expiries, &clock),
            audit,
        )
        .await
    }

    /// Refresh if the timestamp expires within half its lifetime (or is missing).
    pub async fn refresh_if_due(&self) -> AppResult<Option<RefreshOutcome>> {
        let dir = self.workdir.clone();
        let lifetime = self.expiries.timestamp;
        let clock = self.repo_clock();
        let due = tokio::task::spawn_blocking(move || {
            let path = metadata_dir(&dir).join("timestamp.json");
            match Signed::<Timestamp>::load(&path) {
                Ok(ts) => ts.signed.expires() <= clock.expires_in(lifetime / 2),
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

    /// Accept uploaded targets metadata `N.ROLE.json` (see [`upload`]),
    /// publishing the staged uploads it lists, then refresh snapshot and
    /// timestamp — one commit, with `audit`'s entries.
    pub async fn put_metadata(
        &self,
        file_name: &str,
        bytes: Bytes,
        audit: AuditFn<RefreshOutcome>,
    ) -> AppResult<RefreshOutcome> {
        // Check against the current working copy, then again under the write
        // lock (another upload may have landed in between).
        let accepted = self.check_upload(file_name, &bytes).await?;
        let mut promote = Vec::new();
        for (key, len) in &accepted.needed {
            let path = key.strip_prefix("targets/").unwrap_or(key);
            match self.blobs.head(&format!("{PREFIX}{key}")).await? {
                Some(m) if m.len == *len => continue,
                Some(m) => {
                    return Err(ApiError::invalid(format!(
                        "{key} is {} bytes, the metadata says {len}",
                        m.len
                    )));
                }
                None => {}
            }
            match self.staged_one(path).await? {
                Some(s) if s.length == *len => promote.push((path.to_owned(), *len)),
                Some(s) => {
                    return Err(ApiError::invalid(format!(
                        "{key} is {} bytes, the metadata says {len}",
                        s.length
                    )));
                }
                None => {
                    return Err(ApiError::invalid(format!(
                        "{key} has not been uploaded (PUT /admin/v1/repo/targets/… first)"
                    )));
                }
            }
        }
        // Targets this metadata publishes for the first time: named in the
        // audit entry, which is what `release.published` is made from.
        // Blobs are stored under consistent-snapshot names (`dir/HASH.name`);
        // name the targets as the metadata does.
        let added: Vec<String> = promote
            .iter()
            .map(|(p, _)| {
                let (dir, file) = p.rsplit_once('/').unwrap_or(("", p));
                let name = match file.split_once('.') {
                    Some((hash, rest))
                        if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
                    {
                        rest
                    }
                    _ => file,
                };
                if dir.is_empty() {
                    name.to_owned()
                } else {
                    format!("{dir}/{name}")
                }
            })
            .collect();
        let audit: AuditFn<RefreshOutcome> = Box::new(move |r| {
            let mut entries = audit(r);
            for e in &mut entries {
                if e.action == "repo.metadata" && !added.is_empty() {
                    e.detail["new_targets"] = serde_json::json!(added);
                }
            }
            entries
        });
        let name = file_name.to_owned();
        let keys = self.keys.clone();
        let expiries = self.expiries;
        let clock = self.repo_clock();
        self.write_op(
            promote,
            move |dir| {
                let repo =
                    Repo::load(dir).map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
                upload::check(&repo, &name, &bytes, &clock).map_err(ApiError::invalid)?;
                write_atomic(
                    &metadata_dir(dir).join(&name),
                    &bytes,
                    Access::Public,
                    false,
                )
                .map_err(|e| ApiError::conflict("exists", e.to_string()))?;
                refresh_in(dir, &keys, &expiries, &clock)
            },
            audit,
        )
        .await
    }

    async fn check_upload(&self, file_name: &str, bytes: &Bytes) -> AppResult<upload::Accepted> {
        let dir = self.workdir.clone();
        let name = file_name.to_owned();
        let bytes = bytes.clone();
        let clock = self.repo_clock();
        tokio::task::spawn_blocking(move || {
            let repo = Repo::load(&dir).map_err(|e| ApiError::invalid(format!("{e}")))?;
            upload::check(&repo, &name, &bytes, &clock).map_err(ApiError::invalid)
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
    }

    /// Add a rotated root `N.root.json` (checked against the current root's
    /// and its own thresholds), committed with `audit`'s entries; then
    /// re-sign snapshot and timestamp (a second commit, with
    /// `refresh_audit`'s entries) if the online keys allow.
    pub async fn put_root(
        &self,
        file_name: &str,
        bytes: Bytes,
        audit: AuditFn<Vec<String>>,
        refresh_audit: AuditFn<RefreshOutcome>,
    ) -> AppResult<Vec<String>> {
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
            .write_op(Vec::new(), move |dir| {
                let current = nightlatch_repo::repo::scan(dir)
                    .ok()
                    .and_then(|v| v.get("root").copied())
                    .unwrap_or(0);
                if version != current + 1 {
                    return Err(ApiError::invalid(format!(
                        "the repository has root version {current}; the next root must be version {}",
                        current + 1
                    )));
                }
                nightlatch_repo::repo::roots::add(dir, &path).map_err(|e| ApiError::invalid(e.to_string()))
            }, audit)
            .await?;
        drop(tmp);
        // New online keys may be needed; try, but the root is in either way.
        if let Err(e) = self.refresh_with(refresh_audit).await {
            tracing::warn!(error = %e, "refresh after a root rotation failed (are the new online keys configured?)");
        }
        Ok(changed)
    }
}

/// Parse `V.ROLE.json`.
fn versioned(name: &str) -> Option<(u64, &str)> {
    let (v, role) = name.strip_suffix(".json")?.split_once('.')?;
    Some((v.parse().ok()?, role))
}

/// [`RepoHost::align`] on the metadata directory `dir`; the names removed.
fn align_dir(
    dir: &Path,
    root_version: u64,
    timestamp: Option<&[u8]>,
) -> anyhow::Result<Vec<String>> {
    // Versions the committed timestamp reaches: its snapshot, and the
    // targets roles that snapshot lists.
    let reach: Option<(u64, BTreeMap<String, u64>)> = match timestamp {
        None => None,
        Some(ts) => {
            let ts = Signed::<Timestamp>::parse(ts, Path::new("timestamp.json"))
                .map_err(|e| anyhow::anyhow!("the committed timestamp: {e}"))?;
            let s = ts.signed.snapshot_meta.version;
            let snap = Signed::<Snapshot>::load(&dir.join(format!("{s}.snapshot.json")))
                .map_err(|e| anyhow::anyhow!("the committed snapshot {s}: {e}"))?;
            let roles = snap
                .signed
                .meta
                .iter()
                .filter_map(|(name, m)| Some((name.strip_suffix(".json")?.to_owned(), m.version)))
                .collect();
            Some((s, roles))
        }
    };
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir)?.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Some((version, role)) = versioned(&name) else {
            continue;
        };
        let committed = match role {
            "root" => Some(root_version),
            "snapshot" => reach.as_ref().map(|(s, _)| *s),
            "timestamp" => continue,
            other => reach.as_ref().and_then(|(_, r)| r.get(other).copied()),
        };
        if committed.is_none_or(|c| version > c) {
            std::fs::remove_file(entry.path())?;
            removed.push(name);
        }
    }
    let ts_path = dir.join("timestamp.json");
    match timestamp {
        Some(ts) => {
            if std::fs::read(&ts_path).ok().as_deref() != Some(ts) {
                write_atomic(&ts_path, ts, Access::Public, true)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
        }
        None => {
            if ts_path.exists() {
                std::fs::remove_file(&ts_path)?;
                removed.push("timestamp.json".into());
            }
        }
    }
    let root = std::fs::read(dir.join(format!("{root_version}.root.json")))
        .with_context(|| format!("the committed root {root_version}.root.json is missing"))?;
    let root_path = dir.join("root.json");
    if std::fs::read(&root_path).ok() != Some(root.clone()) {
        write_atomic(&root_path, &root, Access::Public, true)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(removed)
}

fn refresh_in(
    dir: &Path,
    keys: &RepoKeys,
    expiries: &Expiries,
    clock: &RepoClock,
) -> AppResult<RefreshOutcome> {
    let keys = open_all(&[keys.snapshot.clone(), keys.timestamp.clone()])
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("opening online keys: {e}")))?;
    let r =
        nightlatch_repo::repo::refresh::refresh(dir, &keys, expiries, clock).map_err(
            |e| match e {
                nightlatch_repo::Error::RepoState { reason, .. } => {
                    ApiError::conflict("not_ready", reason)
                }
                other => ApiError::Internal(anyhow::anyhow!("refresh: {other}")),
            },
        )?;
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
        write_atomic(&path, &bytes, Access::Public, true).map_err(|e| anyhow::anyhow!("{e}"))
    })
    .await?
}
