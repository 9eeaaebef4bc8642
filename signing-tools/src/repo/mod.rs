//! Writing a TUF image repository (specification 1.0, consistent snapshots),
//! as library code: `nightlatch-sign publish` and `repo …` call it, and the
//! update server can too.
//!
//! ```text
//! DIR/metadata/1.root.json, 2.root.json, …   every root, for clients to walk
//! DIR/metadata/root.json                      the newest root (to bootstrap clients)
//! DIR/metadata/N.targets.json                 top-level targets (offline release key)
//! DIR/metadata/N.<model>.json                 delegated role of one hardware model
//! DIR/metadata/N.snapshot.json                snapshot (online key)
//! DIR/metadata/timestamp.json                 timestamp (online key)
//! DIR/targets/<model>/<sha256>.<version>.nlfw an envelope, under its hash
//! ```
//!
//! Every write refuses to produce metadata with fewer valid signatures than
//! the role's threshold; versioned files are never overwritten.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use keys_ceremony::metadata::{Metadata, Root, Signed, Snapshot, Targets, Timestamp};

use crate::error::{Error, Result};

pub mod delegate;
pub mod expiries;
pub mod publish;
pub mod refresh;
pub mod roots;
pub mod signer;
pub mod target;

pub use expiries::Expiries;

/// The repository's newest metadata, as found on disk.
#[derive(Debug)]
pub struct Repo {
    /// The repository directory.
    pub dir: PathBuf,
    /// Newest root.
    pub root: Signed<Root>,
    /// Newest top-level targets, if any.
    pub targets: Option<Signed<Targets>>,
    /// Newest metadata of each delegated role that has been published.
    pub delegated: BTreeMap<String, Signed<Targets>>,
    /// Newest snapshot, if any.
    pub snapshot: Option<Signed<Snapshot>>,
    /// Current timestamp, if any.
    pub timestamp: Option<Signed<Timestamp>>,
}

/// `DIR/metadata`.
pub fn metadata_dir(dir: &Path) -> PathBuf {
    dir.join("metadata")
}

/// `DIR/metadata/N.ROLE.json`.
pub fn role_file(dir: &Path, version: u64, role: &str) -> PathBuf {
    metadata_dir(dir).join(format!("{version}.{role}.json"))
}

/// `DIR/targets/<dir>/<sha256>.<basename>` for target path `<dir>/<basename>`.
pub fn target_file(dir: &Path, target: &str, sha256: &str) -> PathBuf {
    let (parent, base) = target.rsplit_once('/').unwrap_or(("", target));
    let mut path = dir.join("targets");
    if !parent.is_empty() {
        path = path.join(parent);
    }
    path.join(format!("{sha256}.{base}"))
}

/// Newest version of every role with a `N.ROLE.json` file in `metadata/`.
pub fn scan(dir: &Path) -> Result<BTreeMap<String, u64>> {
    let meta = metadata_dir(dir);
    let entries = std::fs::read_dir(&meta).map_err(|e| Error::NotARepository {
        path: dir.to_owned(),
        reason: format!("cannot list {}: {e}", meta.display()),
    })?;
    let mut newest: BTreeMap<String, u64> = BTreeMap::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let Some((version, role)) = stem.split_once('.') else {
            continue;
        };
        let Ok(version) = version.parse::<u64>() else {
            continue;
        };
        let slot = newest.entry(role.to_owned()).or_insert(0);
        *slot = (*slot).max(version);
    }
    Ok(newest)
}

/// Load metadata, checking that its version is the one in its file name.
pub fn load_role<T: Metadata>(dir: &Path, version: u64, role: &str) -> Result<Signed<T>> {
    let path = role_file(dir, version, role);
    let m = Signed::<T>::load(&path)?;
    if m.signed.version() != version {
        return Err(Error::RepoState {
            path: dir.to_owned(),
            reason: format!("{} holds version {}", path.display(), m.signed.version()),
            help: "restore the repository's metadata from a backup; versioned files must never be edited".into(),
        });
    }
    Ok(m)
}

impl Repo {
    /// Load the newest metadata of the repository at `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let versions = scan(dir)?;
        let root_version = *versions.get("root").ok_or_else(|| Error::NotARepository {
            path: dir.to_owned(),
            reason: "no N.root.json in metadata/".into(),
        })?;
        let root: Signed<Root> = load_role(dir, root_version, "root")?;
        let targets = versions
            .get("targets")
            .map(|v| load_role::<Targets>(dir, *v, "targets"))
            .transpose()?;
        let mut delegated = BTreeMap::new();
        if let Some(d) = targets.as_ref().and_then(|t| t.signed.delegations.as_ref()) {
            for role in &d.roles {
                if let Some(v) = versions.get(&role.name) {
                    delegated.insert(role.name.clone(), load_role(dir, *v, &role.name)?);
                }
            }
        }
        let snapshot = versions
            .get("snapshot")
            .map(|v| load_role::<Snapshot>(dir, *v, "snapshot"))
            .transpose()?;
        let ts_path = metadata_dir(dir).join("timestamp.json");
        let timestamp = ts_path
            .exists()
            .then(|| Signed::<Timestamp>::load(&ts_path))
            .transpose()?;
        Ok(Self {
            dir: dir.to_owned(),
            root,
            targets,
            delegated,
            snapshot,
            timestamp,
        })
    }
}
