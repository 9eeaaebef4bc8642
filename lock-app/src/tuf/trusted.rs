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

use super::digest::{DigestError, check_hashes};
use super::error::{Result, Role, TufError};
use super::metadata::{MetaFile, Root, Snapshot, Targets, Timestamp};
use super::signed::{Envelope, PublicKey, RoleKeys};

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
        let trusted = self.root.header.version;
        let expected = trusted.saturating_add(1);
        let got = new.header.version;
        if got < expected {
            return Err(TufError::Rollback {
                role: Role::Root,
                trusted,
                offered: got,
            });
        }
        if got > expected {
            return Err(TufError::RootVersionGap { expected, got });
        }
        env.verify(&new.keys, &new.root, Role::Root)?;
        self.root = new;
        Ok(())
    }

    /// Spec 5.3.10: the final root must not be expired.
    pub fn check_root_fresh(&self) -> Result<()> {
        if self.root.header.is_expired(self.now) {
            return Err(TufError::Expired { role: Role::Root });
        }
        Ok(())
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
            let (trusted, offered) = (old.header.version, new.header.version);
            if offered < trusted {
                return Err(TufError::Rollback {
                    role,
                    trusted,
                    offered,
                });
            }
            if offered == trusted {
                return Ok(TimestampUpdate::SameVersion);
            }
            let (trusted, offered) = (old.snapshot_meta.version, new.snapshot_meta.version);
            if offered < trusted {
                return Err(TufError::Rollback {
                    role: Role::Snapshot,
                    trusted,
                    offered,
                });
            }
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
        if ts.header.is_expired(self.now) {
            return Err(TufError::Expired {
                role: Role::Timestamp,
            });
        }
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
            check_meta(bytes, &ts.snapshot_meta, role)?;
        }
        let env = Envelope::parse(bytes, role)?;
        let new = Snapshot::parse(&env)?;
        env.verify(&self.root.keys, &self.root.snapshot, role)?;
        if let Some(old) = &self.snapshot {
            for (file, old_meta) in &old.meta {
                let listed = Role::of_targets(file.strip_suffix(".json").unwrap_or(file));
                let new_meta = new
                    .meta
                    .get(file)
                    .ok_or(TufError::RoleRemovedFromSnapshot { role: listed })?;
                if new_meta.version < old_meta.version {
                    return Err(TufError::Rollback {
                        role: listed,
                        trusted: old_meta.version,
                        offered: new_meta.version,
                    });
                }
            }
        }
        self.snapshot = Some(new);
        self.check_snapshot_final().map(|_| ())
    }

    fn check_snapshot_final(&self) -> Result<&Snapshot> {
        let role = Role::Snapshot;
        let snap = self.snapshot.as_ref().ok_or(TufError::OutOfOrder)?;
        if snap.header.is_expired(self.now) {
            return Err(TufError::Expired { role });
        }
        let expected = self.fresh_timestamp()?.snapshot_meta.version;
        if snap.header.version != expected {
            return Err(TufError::VersionMismatch {
                role,
                expected,
                got: snap.header.version,
            });
        }
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
        check_meta(bytes, meta, role)?;
        let env = Envelope::parse(bytes, role)?;
        let new = Targets::parse(&env, role)?;
        env.verify(keys, role_keys, role)?;
        if new.header.version != meta.version {
            return Err(TufError::VersionMismatch {
                role,
                expected: meta.version,
                got: new.header.version,
            });
        }
        if new.header.is_expired(self.now) {
            return Err(TufError::Expired { role });
        }
        self.targets.insert(name.to_string(), new);
        Ok(())
    }

    /// The keys and threshold `parent` gives role `name`.
    fn delegation(
        &self,
        name: &str,
        parent: &str,
    ) -> Result<(&BTreeMap<String, PublicKey>, &RoleKeys)> {
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

/// `<name>.json`, the key snapshot lists targets metadata under.
pub fn meta_file_name(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 5);
    s.push_str(name);
    s.push_str(".json");
    s
}

fn check_meta(bytes: &[u8], meta: &MetaFile, role: Role) -> Result<()> {
    if let Some(len) = meta.length
        && u64::try_from(bytes.len()).ok() != Some(len)
    {
        return Err(TufError::MetaLengthMismatch { role });
    }
    if let Some(hashes) = &meta.hashes {
        check_hashes(hashes, bytes).map_err(|e| match e {
            DigestError::Mismatch | DigestError::Unsupported => TufError::MetaHashMismatch { role },
        })?;
    }
    Ok(())
}
