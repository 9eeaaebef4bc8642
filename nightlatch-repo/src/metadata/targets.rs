//! Targets metadata: which files exist and what they hash to, and which
//! roles may sign for which paths (delegations). The types and the path
//! matcher are the protocol crate's; here, the rules a writer keeps.

use std::collections::BTreeSet;

use crate::metadata::key::truncate;
use crate::metadata::root::{TOP_LEVEL_ROLES, check_keys, check_role};
use crate::metadata::{Metadata, Targets, metadata_header};

/// Whether `target` matches the delegation path pattern `pattern`
/// (python-tuf's rule; [`nightlatch_proto::paths::path_matches`]).
pub use nightlatch_proto::paths::path_matches;

/// Check a target path: relative, `/`-separated, no empty, `.` or `..`
/// component, printable ASCII, at most 255 bytes. Such a path is safe to use
/// below a repository's `targets/` directory.
pub fn check_target_path(path: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("target path {:?} {why}", truncate(path)));
    if path.is_empty() || path.len() > 255 {
        return bad("must be 1 to 255 bytes");
    }
    if !path.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') {
        return bad("must be printable ASCII without spaces or backslashes");
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return bad("must be relative, without empty, '.' or '..' components");
    }
    Ok(())
}

/// Check a delegated role name: `[a-z0-9._-]`, 1 to 64 bytes, not a top-level role.
pub fn check_role_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !ok {
        return Err(format!(
            "role name {:?} must be 1 to 64 characters from a-z 0-9 . _ -",
            truncate(name)
        ));
    }
    if TOP_LEVEL_ROLES.contains(&name) {
        return Err(format!("{name:?} is a top-level role name"));
    }
    Ok(())
}

impl Metadata for Targets {
    const TYPE: &'static str = "targets";
    metadata_header!();

    fn validate(&self) -> Result<(), String> {
        for (path, file) in &self.targets {
            check_target_path(path)?;
            match file.hashes.get("sha256") {
                Some(d) if d.len() == 32 => {}
                Some(_) => return Err(format!("target {path}: sha256 is not 32 bytes")),
                None => return Err(format!("target {path} has no sha256 hash")),
            }
        }
        if let Some(d) = &self.delegations {
            check_keys(&d.keys)?;
            let mut names = BTreeSet::new();
            for role in &d.roles {
                check_role_name(&role.name)?;
                if !names.insert(role.name.as_str()) {
                    return Err(format!("delegated role {} is listed twice", role.name));
                }
                check_role(&role.name, &role.keys, &d.keys)?;
                match (role.paths.as_deref(), role.path_hash_prefixes.as_deref()) {
                    (Some(_), Some(_)) => {
                        return Err(format!(
                            "delegated role {} has both paths and path_hash_prefixes",
                            role.name
                        ));
                    }
                    (None | Some([]), None) | (None, Some([])) => {
                        return Err(format!(
                            "delegated role {} has no paths (nor path_hash_prefixes)",
                            role.name
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}
