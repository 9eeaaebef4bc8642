//! The version and consistency rules of the TUF client workflow
//! (specification 5.3–5.6), as functions both sides call: the lock's
//! trusted set applies them to what it downloads; the host can check what
//! it is about to publish with the same code.

use alloc::string::String;

use super::digest::{DigestError, check_hashes};
use super::error::{Result, Role, TufError};
use super::metadata::{MetaFile, Snapshot};

/// Spec 5.3.5: the root that follows trusted version `trusted` must be
/// exactly `trusted + 1`.
pub fn check_next_root(trusted: u64, offered: u64) -> Result<()> {
    let expected = trusted.saturating_add(1);
    if offered < expected {
        return Err(TufError::Rollback {
            role: Role::Root,
            trusted,
            offered,
        });
    }
    if offered > expected {
        return Err(TufError::RootVersionGap {
            expected,
            got: offered,
        });
    }
    Ok(())
}

/// A version of `role` must not go below the trusted one.
pub fn check_no_rollback(role: Role, trusted: u64, offered: u64) -> Result<()> {
    if offered < trusted {
        Err(TufError::Rollback {
            role,
            trusted,
            offered,
        })
    } else {
        Ok(())
    }
}

/// A version must be the one the referring metadata lists (snapshot against
/// timestamp, targets against snapshot).
pub fn check_listed_version(role: Role, listed: u64, got: u64) -> Result<()> {
    if listed == got {
        Ok(())
    } else {
        Err(TufError::VersionMismatch {
            role,
            expected: listed,
            got,
        })
    }
}

/// Spec 5.5.5: every targets role the trusted snapshot lists is still
/// listed by the new one, at a version not below the trusted one.
pub fn check_snapshot_rollback(trusted: &Snapshot, new: &Snapshot) -> Result<()> {
    for (file, old_meta) in &trusted.meta {
        let listed = Role::of_targets(file.strip_suffix(".json").unwrap_or(file));
        let new_meta = new
            .meta
            .get(file)
            .ok_or(TufError::RoleRemovedFromSnapshot { role: listed })?;
        check_no_rollback(listed, old_meta.version, new_meta.version)?;
    }
    Ok(())
}

/// Metadata bytes against the length and hashes its referrer lists (each
/// only if listed).
pub fn check_meta_file(bytes: &[u8], meta: &MetaFile, role: Role) -> Result<()> {
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

/// `<name>.json`, the key snapshot lists targets metadata under.
pub fn meta_file_name(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 5);
    s.push_str(name);
    s.push_str(".json");
    s
}
