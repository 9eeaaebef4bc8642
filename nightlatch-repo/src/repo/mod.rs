//! Writing a TUF image repository (specification 1.0, consistent snapshots),
//! as library code: `nightlatch-sign publish` and `repo …` call it, and so
//! does the update server.
//!
//! ```text
//! DIR/metadata/1.root.json, 2.root.json, …   every root, for clients to walk
//! DIR/metadata/root.json                      the newest root (to bootstrap clients)
//! DIR/metadata/N.targets.json                 top-level targets (offline release key)
//! DIR/metadata/N.<model>.json                 delegated role of one hardware model
//! DIR/metadata/N.snapshot.json                snapshot (online key)
//! DIR/metadata/timestamp.json                 timestamp (online key)
//! DIR/targets/<model>/<sha256>.<version>.nlfw an envelope, under its hash
//! DIR/targets/<model>/<sha256>.<version>.from-<base>.nldp  a delta patch
//! ```
//!
//! Every write refuses to produce metadata with fewer valid signatures than
//! the role's threshold; versioned files are never overwritten.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::metadata::{DelegatedRole, Metadata, Root, Signed, Snapshot, Targets, Timestamp};

pub mod delegate;
pub mod expiries;
pub mod patch;
pub mod publish;
pub mod refresh;
pub mod remote;
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

/// The version after `current` of `role`; an error rather than overflow.
pub fn next_version(dir: &Path, current: u64, role: &str) -> Result<u64> {
    current.checked_add(1).ok_or_else(|| Error::RepoState {
        path: dir.to_owned(),
        reason: format!("{role} is at version {current}, the largest possible: there is no next version"),
        help: "this metadata was not made by our tools: restore the repository's metadata from a backup".into(),
    })
}

/// Refuse delegated metadata listing a target outside its delegation's paths.
fn check_delegated_paths(
    dir: &Path,
    role: &DelegatedRole,
    m: &Signed<Targets>,
    version: u64,
) -> Result<()> {
    if let Some(name) = m.signed.targets.keys().find(|t| !role.is_delegated_path(t)) {
        return Err(Error::RepoState {
            path: dir.to_owned(),
            reason: format!(
                "{} lists target {name}, outside the {} delegated to role {}",
                role_file(dir, version, &role.name).display(),
                role.scope(),
                role.name
            ),
            help: "this metadata was not made by our tools (forged or corrupted): restore the repository's metadata from a backup".into(),
        });
    }
    Ok(())
}

fn unverified(dir: &Path, reason: String) -> Error {
    Error::RepoState {
        path: dir.to_owned(),
        reason: format!("refusing to sign on top of unverified metadata: {reason}"),
        help: "the repository on disk may have been tampered with: restore its metadata from a trusted backup, or re-sign the role with its own keys".into(),
    }
}

impl Repo {
    /// Load the newest metadata and verify everything that will be signed
    /// again on top of it: the root chain `1.root.json … N.root.json` (each
    /// root signed by the thresholds of the one before and its own), the
    /// top-level targets against the newest root's targets role, and every
    /// delegated role against its delegation (threshold and paths).
    /// Whatever re-signs targets with the offline release key must use this.
    pub fn load_verified(dir: &Path) -> Result<Self> {
        let repo = Self::load(dir)?;
        let paths: Vec<PathBuf> = (1..=repo.root.signed.version())
            .map(|v| role_file(dir, v, "root"))
            .collect();
        if let Some(p) = paths.iter().find(|p| !p.exists()) {
            return Err(unverified(
                dir,
                format!("the root chain is incomplete: {} is missing", p.display()),
            ));
        }
        crate::chain::verify_chain(&paths)
            .map_err(|e| unverified(dir, format!("the root chain does not verify: {e}")))?;
        let root = &repo.root.signed;
        if let Some(top) = &repo.targets {
            let role = root
                .role("targets")
                .ok_or_else(|| unverified(dir, "the root has no targets role".into()))?;
            let what = role_file(dir, top.signed.version(), "targets")
                .display()
                .to_string();
            if let Err(e) = top.require(&root.keys, role, &what, "targets") {
                // After a rotation of the targets keys, the newest targets
                // were signed by the keys of an earlier (verified) root:
                // accept that, loudly, so they can be re-signed by the new keys.
                let mut by_earlier = None;
                for v in (1..root.version()).rev() {
                    let r: Signed<Root> = load_role(dir, v, "root")?;
                    let ok = r.signed.role("targets").is_some_and(|role| {
                        top.require(&r.signed.keys, role, &what, "targets").is_ok()
                    });
                    if ok {
                        by_earlier = Some(v);
                        break;
                    }
                }
                let Some(v) = by_earlier else {
                    return Err(unverified(dir, e.to_string()));
                };
                eprintln!(
                    "warning: {what} is signed by the targets keys of root version {v}, not of the newest root (version {}): check the targets listed below before trusting the new signature",
                    root.version()
                );
            }
            let d = top.signed.delegations.clone().unwrap_or_default();
            for role in &d.roles {
                let Some(m) = repo.delegated.get(&role.name) else {
                    continue;
                };
                let what = role_file(dir, m.signed.version(), &role.name)
                    .display()
                    .to_string();
                m.require(&d.keys, &role.keys, &what, &role.name)
                    .map_err(|e| unverified(dir, e.to_string()))?;
                check_delegated_paths(dir, role, m, m.signed.version())?;
            }
        }
        Ok(repo)
    }

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
                    let m: Signed<Targets> = load_role(dir, *v, &role.name)?;
                    check_delegated_paths(dir, role, &m, *v)?;
                    delegated.insert(role.name.clone(), m);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_never_overflow() {
        let dir = Path::new("repo");
        assert_eq!(next_version(dir, 1, "targets").ok(), Some(2));
        assert!(next_version(dir, u64::MAX, "targets").is_err());
    }
}
