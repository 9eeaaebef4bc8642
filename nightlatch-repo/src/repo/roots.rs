//! Put roots into the repository: the first (trusted) root, then each
//! rotated root after checking it may follow the current one.

use crate::metadata::Metadata as _;
use std::path::Path;

use crate::chain::check_link;
use crate::error::{Error, Result};
use crate::fsio::{Access, create_dir, write_atomic};
use crate::metadata::root::TOP_LEVEL_ROLES;
use crate::metadata::{Root, Signed};
use crate::repo::{Repo, metadata_dir, role_file, scan};

/// Start a repository at `dir` with `root`, which must meet its own threshold.
pub fn init(dir: &Path, root_path: &Path) -> Result<u64> {
    let root = Signed::<Root>::load(root_path)?;
    let role = root
        .signed
        .role("root")
        .cloned()
        .ok_or_else(|| Error::RepoState {
            path: dir.to_owned(),
            reason: "the root has no root role".into(),
            help: "make the root with nightlatch-keys".into(),
        })?;
    root.require(
        &root.signed.keys,
        &role,
        &root_path.display().to_string(),
        "root",
    )?;
    create_dir(&metadata_dir(dir))?;
    create_dir(&dir.join("targets"))?;
    if scan(dir)?.contains_key("root") {
        return Err(Error::RepoState {
            path: dir.to_owned(),
            reason: "it already has a root".into(),
            help: "add a rotated root with `nightlatch-sign repo add-root` instead".into(),
        });
    }
    write_root(dir, &root)?;
    Ok(root.signed.version())
}

fn write_root(dir: &Path, root: &Signed<Root>) -> Result<()> {
    let bytes = root.to_bytes()?;
    write_atomic(
        &role_file(dir, root.signed.version(), "root"),
        &bytes,
        Access::Public,
        false,
    )?;
    write_atomic(
        &metadata_dir(dir).join("root.json"),
        &bytes,
        Access::Public,
        true,
    )?;
    Ok(())
}

/// Add root N+1 (signed by thresholds of root N's and its own root keys).
/// Returns the roles whose keys or threshold changed: their metadata must be
/// signed again by the new keys (`publish` for targets, `refresh` for
/// snapshot and timestamp).
pub fn add(dir: &Path, root_path: &Path) -> Result<Vec<String>> {
    let repo = Repo::load(dir)?;
    let next = Signed::<Root>::load(root_path)?;
    check_link(&repo.root, &next, root_path)?;
    write_root(dir, &next)?;
    Ok(TOP_LEVEL_ROLES
        .iter()
        .filter(|r| repo.root.signed.role(r) != next.signed.role(r))
        .map(|r| (*r).to_owned())
        .collect())
}
