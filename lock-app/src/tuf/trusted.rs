//! The trusted metadata set: the client workflow's checks (TUF spec 5.3–5.6),
//! one role at a time, against a trusted time floor.
//!
//! Order is enforced: root updates only before the timestamp is loaded,
//! then timestamp → snapshot → targets (top-level, then delegated). Metadata
//! that fails only its final check (expired, or a snapshot whose version
//! differs from the timestamp's) stays in the set as the reference for the
//! next update's rollback checks, as python-tuf does.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};

use nightlatch_proto::tuf::rules::{
    check_listed_version, check_meta_file, check_next_root, check_no_rollback,
    check_snapshot_rollback, meta_file_name,
};
use nightlatch_proto::tuf::{
    Envelope, Keys, Result, Role, RoleKeys, Root, Snapshot, Targets, Timestamp, TufError,
};

/// What [`TrustedSet::update_timestamp`] did with a valid timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampUpdate {
    /// A newer timestamp is now trusted.
    Accepted,
    /// Same version as the trusted one: the trusted one is kept.
    SameVersion,
}

/// Verified metadata, and the time it is checked against.
#[derive(Debug, Clone)]
pub struct TrustedSet {
    now: u64,
    root: Root,
    timestamp: Option<Timestamp>,
    snapshot: Option<Snapshot>,
    targets: BTreeMap<String, Targets>,
}

impl TrustedSet {
    /// Start from a trusted root (bytes kept in flash), which must be signed
    /// by its own root threshold. `now` is the trusted time floor, Unix
    /// seconds. An expired root is accepted here (a newer one may follow);
    /// [`Self::check_root_fresh`] refuses it once the chain is updated.
    pub fn new(root_bytes: &[u8], now: u64) -> Result<Self> {
        let env = Envelope::parse(root_bytes, Role::Root)?;
        let root = Root::parse(&env)?;
        env.verify(&root.keys, &root.root, Role::Root)?;
        Ok(Self {
            now,
            root,
            timestamp: None,
            snapshot: None,
            targets: BTreeMap::new(),
        })
    }

    /// Start from a root this lock verified earlier (with [`Self::new`] or
    /// [`Self::update_root`]) and still holds in RAM: nothing is checked
    /// again. The caller answers for `root` having been verified.
    pub fn from_verified_root(root: Root, now: u64) -> Self {
        Self {
            now,
            root,
            timestamp: None,
            snapshot: None,
            targets: BTreeMap::new(),
        }
    }

    /// The trusted time floor.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Raise the trusted time floor (a later verified time); it never goes
    /// back.
    pub fn raise_time(&mut self, now: u64) {
        self.now = self.now.max(now);
    }

    /// Forget everything but the root, to run the workflow again (the
    /// stored metadata is the rollback reference of the next run).
    pub fn restart(&mut self) {
        self.timestamp = None;
        self.snapshot = None;
        self.targets.clear();
    }
    /// The trusted root.
    pub fn root(&self) -> &Root {
        &self.root
    }
    /// The trusted timestamp.
    pub fn timestamp(&self) -> Option<&Timestamp> {
        self.timestamp.as_ref()
    }
    /// The trusted snapshot.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }
    /// Trusted targets metadata of role `name` (`"targets"` or delegated).
    pub fn targets(&self, name: &str) -> Option<&Targets> {
        self.targets.get(name)
    }

    /// Spec 5.3: verify root N+1 with root N's keys and threshold, check
    /// that its version is exactly N+1, verify it with its own keys.
    pub fn update_root(&mut self, bytes: &[u8]) -> Result<()> {
        if self.timestamp.is_some() {
            return Err(TufError::OutOfOrder);
        }
        let env = Envelope::parse(bytes, Role::Root)?;
        let new = Root::parse(&env)?;
        env.verify(&self.root.keys, &self.root.root, Role::Root)?;
        check_next_root(self.root.header.version, new.header.version)?;
        env.verify(&new.keys, &new.root, Role::Root)?;
        self.root = new;
        Ok(())
    }

    /// Spec 5.3.10: the final root must not be expired.
    pub fn check_root_fresh(&self) -> Result<()> {
        self.root.header.check_fresh(self.now, Role::Root)
    }

    /// Spec 5.4: timestamp signatures, rollback of the timestamp and of the
    /// snapshot version it lists, expiry.
    pub fn update_timestamp(&mut self, bytes: &[u8]) -> Result<TimestampUpdate> {
        if self.snapshot.is_some() {
            return Err(TufError::OutOfOrder);
        }
        self.check_root_fresh()?;
        let role = Role::Timestamp;
        let env = Envelope::parse(bytes, role)?;
        let new = Timestamp::parse(&env)?;
        env.verify(&self.root.keys, &self.root.timestamp, role)?;
        if let Some(old) = &self.timestamp {
            check_no_rollback(role, old.header.version, new.header.version)?;
            if new.header.version == old.header.version {
                return Ok(TimestampUpdate::SameVersion);
            }
            check_no_rollback(
                Role::Snapshot,
                old.snapshot_meta.version,
                new.snapshot_meta.version,
            )?;
        }
        let expired = new.header.is_expired(self.now);
        self.timestamp = Some(new);
        if expired {
            return Err(TufError::Expired { role });
        }
        Ok(TimestampUpdate::Accepted)
    }

    fn fresh_timestamp(&self) -> Result<&Timestamp> {
        let ts = self.timestamp.as_ref().ok_or(TufError::OutOfOrder)?;
        ts.header.check_fresh(self.now, Role::Timestamp)?;
        Ok(ts)
    }

    /// Spec 5.5: snapshot length and hashes against the timestamp (skipped
    /// for `from_store`: bytes this client verified and stored before),
    /// signatures, rollback of every listed role, expiry, and version equal
    /// to the timestamp's.
    pub fn update_snapshot(&mut self, bytes: &[u8], from_store: bool) -> Result<()> {
        if !self.targets.is_empty() {
            return Err(TufError::OutOfOrder);
        }
        let role = Role::Snapshot;
        let ts = self.fresh_timestamp()?;
        if !from_store {
            check_meta_file(bytes, &ts.snapshot_meta, role)?;
        }
        let env = Envelope::parse(bytes, role)?;
        let new = Snapshot::parse(&env)?;
        env.verify(&self.root.keys, &self.root.snapshot, role)?;
        if let Some(old) = &self.snapshot {
            check_snapshot_rollback(old, &new)?;
        }
        self.snapshot = Some(new);
        self.check_snapshot_final().map(|_| ())
    }

    fn check_snapshot_final(&self) -> Result<&Snapshot> {
        let role = Role::Snapshot;
        let snap = self.snapshot.as_ref().ok_or(TufError::OutOfOrder)?;
        snap.header.check_fresh(self.now, role)?;
        let listed = self.fresh_timestamp()?.snapshot_meta.version;
        check_listed_version(role, listed, snap.header.version)?;
        Ok(snap)
    }

    /// Spec 5.6 / 5.7: targets metadata of role `name`, delegated by
    /// `parent` (`"root"` for the top-level targets): length and hashes
    /// against the snapshot, the parent's keys and threshold, version equal
    /// to the snapshot's, expiry.
    pub fn update_targets(&mut self, bytes: &[u8], name: &str, parent: &str) -> Result<()> {
        let role = Role::of_targets(name);
        let snap = self.check_snapshot_final()?;
        let (keys, role_keys) = self.delegation(name, parent)?;
        let meta = snap
            .meta
            .get(&meta_file_name(name))
            .ok_or(TufError::NotInSnapshot { role })?;
        check_meta_file(bytes, meta, role)?;
        let env = Envelope::parse(bytes, role)?;
        let new = Targets::parse(&env, role)?;
        env.verify(keys, role_keys, role)?;
        check_listed_version(role, meta.version, new.header.version)?;
        new.header.check_fresh(self.now, role)?;
        self.targets.insert(name.to_string(), new);
        Ok(())
    }

    /// The keys and threshold `parent` gives role `name`.
    fn delegation(&self, name: &str, parent: &str) -> Result<(&Keys, &RoleKeys)> {
        if parent == "root" {
            if name != "targets" {
                return Err(TufError::OutOfOrder);
            }
            return Ok((&self.root.keys, &self.root.targets));
        }
        let delegations = self
            .targets
            .get(parent)
            .and_then(|t| t.delegations.as_ref())
            .ok_or(TufError::OutOfOrder)?;
        let role = delegations
            .roles
            .iter()
            .find(|r| r.name == name)
            .ok_or(TufError::OutOfOrder)?;
        Ok((&delegations.keys, &role.keys))
    }
}
