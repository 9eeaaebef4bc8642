//! Who has signed a root file, and whether each threshold is met: the
//! threshold of its own root keys and, for a rotated root, that of the
//! previous root's keys.

use crate::metadata::Metadata as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::metadata::root::TOP_LEVEL_ROLES;
use crate::metadata::{KeyId, Root, Signed, Tally};

/// Keys and threshold of one top-level role, for display.
#[derive(Debug, Clone, Serialize)]
pub struct RoleSummary {
    /// Role name.
    pub role: String,
    /// Threshold.
    pub threshold: u32,
    /// Key ids.
    pub keys: Vec<KeyId>,
}

/// The signing state of a root file.
#[derive(Debug, Clone, Serialize)]
pub struct RootStatus {
    /// Root version.
    pub version: u64,
    /// Expiry (RFC 3339).
    pub expires: String,
    /// Whether the expiry has passed.
    pub expired: bool,
    /// The four roles.
    pub roles: Vec<RoleSummary>,
    /// Signatures counted against this root's own root keys.
    pub own: Tally,
    /// Signatures counted against the previous root's root keys (rotation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<PreviousTally>,
    /// Signatures by keys that neither root names for the root role.
    pub strangers: Vec<KeyId>,
    /// A rotated root (version > 1) whose previous root was not given nor
    /// found beside it: the previous threshold cannot be checked.
    pub previous_unknown: bool,
    /// Whether every threshold is met (the file may be published); never
    /// true while the previous root is unknown.
    pub complete: bool,
}

/// Signatures counted against the previous root.
#[derive(Debug, Clone, Serialize)]
pub struct PreviousTally {
    /// Previous root's version.
    pub version: u64,
    /// The tally.
    pub tally: Tally,
}

/// `N-1.root.json` beside a file holding root version `N` (> 1), if it exists.
pub fn find_previous(path: &Path, root: &Root) -> Option<PathBuf> {
    let prev = root.version().checked_sub(1).filter(|v| *v >= 1)?;
    let candidate = path.with_file_name(format!("{prev}.root.json"));
    candidate.is_file().then_some(candidate)
}

/// Check that `previous` is the version before `root`.
pub fn check_previous(
    root: &Signed<Root>,
    previous: &Signed<Root>,
    prev_path: &Path,
) -> Result<()> {
    let expected = root.signed.version().saturating_sub(1);
    if previous.signed.version() != expected {
        return Err(Error::VersionGap {
            path: prev_path.to_owned(),
            expected,
            found: previous.signed.version(),
        });
    }
    Ok(())
}

/// A root with, for a rotated root, the previous root and its path.
pub type RootWithPrevious = (Signed<Root>, Option<(PathBuf, Signed<Root>)>);

/// Load a root and its previous root (given, or found beside it).
pub fn load_with_previous(file: &Path, previous: Option<&Path>) -> Result<RootWithPrevious> {
    let root = Signed::<Root>::load(file)?;
    let prev_path = previous
        .map(Path::to_owned)
        .or_else(|| find_previous(file, &root.signed));
    let prev = match prev_path {
        Some(p) => {
            let prev = Signed::<Root>::load(&p)?;
            check_previous(&root, &prev, &p)?;
            Some((p, prev))
        }
        None => None,
    };
    Ok((root, prev))
}

/// The signing state of `root`, with its `previous` root when it is a
/// rotation; whether it has expired by `clock`.
pub fn root_status(
    root: &Signed<Root>,
    previous: Option<&Signed<Root>>,
    clock: &dyn Clock,
) -> Result<RootStatus> {
    let r = &root.signed;
    let own_role = r
        .role("root")
        .cloned()
        .unwrap_or(crate::metadata::RoleKeys {
            keyids: Vec::new(),
            threshold: 1,
        });
    let own = root.tally(&r.keys, &own_role)?;
    let previous = match previous {
        Some(p) => {
            let role = p.signed.role("root").cloned().unwrap_or(own_role.clone());
            Some(PreviousTally {
                version: p.signed.version(),
                tally: root.tally(&p.signed.keys, &role)?,
            })
        }
        None => None,
    };
    let strangers = own
        .outside
        .iter()
        .filter(|k| {
            previous
                .as_ref()
                .is_none_or(|p| p.tally.outside.contains(k))
        })
        .cloned()
        .collect();
    let previous_unknown = r.version() > 1 && previous.is_none();
    let complete =
        own.met() && !previous_unknown && previous.as_ref().is_none_or(|p| p.tally.met());
    let roles = TOP_LEVEL_ROLES
        .iter()
        .filter_map(|name| {
            r.role(name).map(|role| RoleSummary {
                role: (*name).to_owned(),
                threshold: role.threshold,
                keys: role.keyids.clone(),
            })
        })
        .collect();
    Ok(RootStatus {
        version: r.version(),
        expires: r.expires().to_string(),
        expired: clock.has_passed(r.expires()),
        roles,
        own,
        previous,
        strangers,
        previous_unknown,
        complete,
    })
}
