//! The client workflow (TUF spec 5.1–5.7) over a [`Transport`] and a
//! [`MetadataStore`]: update the root chain, then timestamp, snapshot and
//! targets; find a target through the delegations; download and check it.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use nightlatch_proto::tuf::rules::meta_file_name;
use nightlatch_proto::tuf::{Result, Role, TufError, check_target_name};

use super::storage::{MetadataStore, TargetStore};
use super::target::TargetInfo;
use super::transport::{FetchError, Transport};
use super::trusted::{TimestampUpdate, TrustedSet};

/// Size and count limits (the endless-data defence). Defaults are
/// python-tuf's.
///
/// These are the client's own caps and always bound a download: a length
/// the timestamp (for the snapshot) or the snapshot (for targets metadata)
/// lists may only lower them. Metadata listed with a length above the cap is
/// refused before it is fetched ([`TufError::ListedLengthOverLimit`]), so
/// whoever holds the online timestamp or snapshot key cannot make the lock
/// download more than it budgeted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest root file.
    pub root_max: u64,
    /// Largest timestamp file.
    pub timestamp_max: u64,
    /// Largest snapshot file (the timestamp's listed length may only lower
    /// it).
    pub snapshot_max: u64,
    /// Largest targets file, top-level or delegated (the snapshot's listed
    /// length may only lower it).
    pub targets_max: u64,
    /// Largest target the client will download, whatever metadata says.
    pub target_max: u64,
    /// Most root versions taken in one refresh.
    pub max_root_rotations: u64,
    /// Most targets roles visited looking for one target.
    pub max_delegations: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            root_max: 512_000,
            timestamp_max: 16_384,
            snapshot_max: 2_000_000,
            targets_max: 5_000_000,
            target_max: 64 * 1024 * 1024,
            max_root_rotations: 256,
            max_delegations: 32,
        }
    }
}

/// Seed a store with the root the device trusts from manufacture. The root
/// must be signed by its own threshold; anything else in the store is
/// forgotten.
pub fn bootstrap<S: MetadataStore>(store: &mut S, root: &[u8], now: u64) -> Result<()> {
    TrustedSet::new(root, now)?;
    for role in ["timestamp", "snapshot", "targets"] {
        store.remove(role).map_err(|_| TufError::Storage)?;
    }
    store.store("root", root).map_err(|_| TufError::Storage)
}

/// A TUF client: trusted metadata, where it is kept, where files come from.
#[derive(Debug)]
pub struct Updater<T, S> {
    transport: T,
    store: S,
    limits: Limits,
    trusted: TrustedSet,
}

impl<T: Transport, S: MetadataStore> Updater<T, S> {
    /// Load the trusted root from `store`; `now` is the trusted time floor
    /// (Unix seconds) every expiry is checked against.
    pub fn new(transport: T, store: S, limits: Limits, now: u64) -> Result<Self> {
        let root = store.load("root").ok_or(TufError::NoTrustedRoot)?;
        let trusted = TrustedSet::new(&root, now)?;
        Ok(Self {
            transport,
            store,
            limits,
            trusted,
        })
    }

    /// The verified metadata.
    pub fn trusted(&self) -> &TrustedSet {
        &self.trusted
    }

    /// The store (to inspect what was persisted).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Give back the transport and the store.
    pub fn into_parts(self) -> (T, S) {
        (self.transport, self.store)
    }

    /// Raise the trusted time floor (e.g. after the director's signed time
    /// was verified); it never goes back.
    pub fn raise_time(&mut self, now: u64) {
        self.trusted.raise_time(now);
    }

    /// Spec 5.3–5.6: root chain, timestamp, snapshot, top-level targets.
    /// May be called again on the same updater (each call starts again from
    /// the trusted root and the stored metadata).
    pub fn refresh(&mut self) -> Result<()> {
        self.trusted.restart();
        self.load_root()?;
        self.load_timestamp()?;
        self.load_snapshot()?;
        self.load_targets("targets", "root")
    }

    fn fetch(&mut self, path: &str, max_len: u64, role: Role) -> Result<Vec<u8>> {
        let bytes = self.transport.fetch(path, max_len).map_err(|e| match e {
            FetchError::NotFound => TufError::MissingMetadata { role },
            FetchError::TooLarge => TufError::TooLarge { role },
            _ => TufError::Transport,
        })?;
        if u64::try_from(bytes.len()).map_or(true, |l| l > max_len) {
            return Err(TufError::TooLarge { role });
        }
        Ok(bytes)
    }

    fn persist(&mut self, role: &str, bytes: &[u8]) -> Result<()> {
        self.store.store(role, bytes).map_err(|_| TufError::Storage)
    }

    /// Spec 5.3: `N+1.root.json` until not found.
    fn load_root(&mut self) -> Result<()> {
        let start = self.trusted.root().clone();
        let first = start.header.version.saturating_add(1);
        let last = first.saturating_add(self.limits.max_root_rotations);
        for version in first..last {
            let path = format!("{version}.root.json");
            let bytes = match self.fetch(&path, self.limits.root_max, Role::Root) {
                Ok(b) => b,
                Err(TufError::MissingMetadata { .. }) => break,
                Err(e) => return Err(e),
            };
            self.trusted.update_root(&bytes)?;
            self.persist("root", &bytes)?;
        }
        // Spec 5.3.11: new timestamp or snapshot keys → forget the old
        // metadata, so a repository recovering from a fast-forward attack
        // (versions pushed up with stolen keys) is not refused as a rollback.
        let end = self.trusted.root();
        if !end.timestamp.same_as(&start.timestamp) || !end.snapshot.same_as(&start.snapshot) {
            self.store
                .remove("timestamp")
                .map_err(|_| TufError::Storage)?;
            self.store
                .remove("snapshot")
                .map_err(|_| TufError::Storage)?;
        }
        self.trusted.check_root_fresh()
    }

    /// Spec 5.4.
    fn load_timestamp(&mut self) -> Result<()> {
        if let Some(local) = self.store.load("timestamp") {
            // A stored timestamp is only a rollback reference: if it fails
            // (expired, keys rotated), the new one decides.
            let _ = self.trusted.update_timestamp(&local);
        }
        let bytes = self.fetch("timestamp.json", self.limits.timestamp_max, Role::Timestamp)?;
        if self.trusted.update_timestamp(&bytes)? == TimestampUpdate::Accepted {
            self.persist("timestamp", &bytes)?;
        }
        Ok(())
    }

    /// Spec 5.5.
    fn load_snapshot(&mut self) -> Result<()> {
        if let Some(local) = self.store.load("snapshot")
            && self.trusted.update_snapshot(&local, true).is_ok()
        {
            return Ok(());
        }
        let meta = self
            .trusted
            .timestamp()
            .ok_or(TufError::OutOfOrder)?
            .snapshot_meta
            .clone();
        let max = download_cap(meta.length, self.limits.snapshot_max, Role::Snapshot)?;
        let path = if self.trusted.root().consistent_snapshot {
            format!("{}.snapshot.json", meta.version)
        } else {
            "snapshot.json".to_string()
        };
        let bytes = self.fetch(&path, max, Role::Snapshot)?;
        self.trusted.update_snapshot(&bytes, false)?;
        self.persist("snapshot", &bytes)
    }

    /// Spec 5.6 (and 5.7.2 for delegated roles).
    fn load_targets(&mut self, name: &str, parent: &str) -> Result<()> {
        if self.trusted.targets(name).is_some() {
            return Ok(());
        }
        if let Some(local) = self.store.load(name)
            && self.trusted.update_targets(&local, name, parent).is_ok()
        {
            return Ok(());
        }
        let role = Role::of_targets(name);
        let meta = self
            .trusted
            .snapshot()
            .ok_or(TufError::OutOfOrder)?
            .meta
            .get(&meta_file_name(name))
            .ok_or(TufError::NotInSnapshot { role })?
            .clone();
        let max = download_cap(meta.length, self.limits.targets_max, role)?;
        let quoted = quote(name);
        let path = if self.trusted.root().consistent_snapshot {
            format!("{}.{quoted}.json", meta.version)
        } else {
            format!("{quoted}.json")
        };
        let bytes = self.fetch(&path, max, role)?;
        self.trusted.update_targets(&bytes, name, parent)?;
        self.persist(name, &bytes)
    }

    /// Spec 5.7: find `name` by a pre-order depth-first walk of the
    /// delegations from top-level targets, honouring path patterns and
    /// terminating roles. `Ok(None)`: no trusted role lists it.
    /// Call [`Self::refresh`] first.
    pub fn target_info(&mut self, name: &str) -> Result<Option<TargetInfo>> {
        check_target_name(name)?;
        if self.trusted.targets("targets").is_none() {
            return Err(TufError::OutOfOrder);
        }
        let mut stack: Vec<(String, String)> = alloc::vec![("targets".into(), "root".into())];
        let mut visited: BTreeSet<String> = BTreeSet::new();
        while let Some((role, parent)) = stack.pop() {
            if visited.contains(&role) {
                continue;
            }
            if visited.len() >= self.limits.max_delegations {
                return Err(TufError::DelegationLimit);
            }
            self.load_targets(&role, &parent)?;
            let targets = self.trusted.targets(&role).ok_or(TufError::OutOfOrder)?;
            if let Some(file) = targets.targets.get(name) {
                return Ok(Some(TargetInfo {
                    name: name.to_string(),
                    role,
                    file: file.clone(),
                }));
            }
            let mut children = Vec::new();
            if let Some(delegations) = &targets.delegations {
                for child in &delegations.roles {
                    if child.is_delegated_path(name) {
                        children.push((child.name.clone(), role.clone()));
                        if child.terminating {
                            stack.clear();
                            break;
                        }
                    }
                }
            }
            visited.insert(role);
            stack.extend(children.into_iter().rev());
        }
        Ok(None)
    }

    /// Download `info` from `transport` (the targets base) and check its
    /// length and hashes. Nothing unchecked is returned.
    pub fn download_target<U: Transport>(
        &self,
        transport: &mut U,
        info: &TargetInfo,
    ) -> Result<Vec<u8>> {
        check_target_name(&info.name)?;
        if info.length() > self.limits.target_max {
            return Err(TufError::TargetTooLarge);
        }
        let mut verifier = info.verifier()?;
        let path = info.download_path(self.trusted.root().consistent_snapshot);
        let bytes = transport.fetch(&path, info.length()).map_err(|e| match e {
            FetchError::NotFound => TufError::MissingTarget,
            FetchError::TooLarge => TufError::TargetTooLarge,
            _ => TufError::Transport,
        })?;
        verifier.update(&bytes)?;
        verifier.finish()?;
        Ok(bytes)
    }
}

/// Where [`Updater::fetch_target`] got a target from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// The copy the target store held has the listed length and hashes:
    /// nothing was downloaded.
    Held,
    /// Downloaded, checked, and written to the target store.
    Downloaded,
}

impl<T: Transport, S: MetadataStore> Updater<T, S> {
    /// Whether `held` holds a copy of `info` with its signed length and
    /// hashes. A copy that is missing, unreadable, or differs is not held.
    pub fn holds_target<H: TargetStore + ?Sized>(&self, held: &H, info: &TargetInfo) -> bool {
        let Ok(mut verifier) = info.verifier() else {
            return false;
        };
        let mut ok = true;
        let read = held.read_target(info.name(), &mut |chunk| {
            ok = ok && verifier.update(chunk).is_ok();
        });
        matches!(read, Ok(true)) && ok && verifier.finish().is_ok()
    }

    /// Make sure `held` holds `info`: the copy it already holds when that
    /// has the signed length and hashes (python-tuf's `find_cached_target`:
    /// nothing is fetched), else a download from `transport`
    /// ([`Self::download_target`]: checked before anything is written),
    /// written to `held`.
    pub fn fetch_target<U: Transport, H: TargetStore + ?Sized>(
        &self,
        transport: &mut U,
        held: &mut H,
        info: &TargetInfo,
    ) -> Result<Fetched> {
        check_target_name(info.name())?;
        if self.holds_target(held, info) {
            return Ok(Fetched::Held);
        }
        let bytes = self.download_target(transport, info)?;
        held.write_target(info.name(), &bytes)
            .map_err(|_| TufError::Storage)?;
        Ok(Fetched::Downloaded)
    }
}

/// How many bytes to read for metadata its parent lists with `listed`
/// length: the listed length (the file must have exactly that length
/// anyway) when it is within the client's own `cap`, the cap when nothing is
/// listed, and a refusal — before anything is fetched — when the listing
/// asks for more than the cap.
fn download_cap(listed: Option<u64>, cap: u64, role: Role) -> Result<u64> {
    match listed {
        None => Ok(cap),
        Some(len) if len <= cap => Ok(len),
        Some(listed) => Err(TufError::ListedLengthOverLimit {
            role,
            listed,
            limit: cap,
        }),
    }
}

/// Percent-encode a role name for a URL path (everything but `A-Z a-z 0-9
/// _ . - ~`), as python-tuf does.
pub fn quote(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
