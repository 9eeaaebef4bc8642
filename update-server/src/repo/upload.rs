//! Checking targets metadata uploaded by a release engineer
//! (`nightlatch-sign publish --server URL`) before it is accepted. The server
//! holds no offline key, so it only ever stores metadata that the trusted
//! root (top-level `targets`) or a delegation (a model's role) already
//! vouches for:
//!
//! * the file name is `N.ROLE.json`, ROLE is `targets` or a role the current
//!   top-level targets delegates to, and the content's version is N, above
//!   the current version of that role;
//! * it parses as TUF targets metadata, has not expired, and carries a
//!   threshold of valid signatures by the role's keys (from the newest root,
//!   or from the delegation);
//! * every target of a delegated role matches the delegation's paths;
//! * no target already published changes its length or hashes;
//! * every target file is already uploaded (checked by the caller with the
//!   keys and lengths in [`Accepted::needed`]).

use std::path::Path;

use nightlatch_repo::Clock;
use nightlatch_repo::metadata::{Metadata, Signed, Targets};
use nightlatch_repo::repo::{Repo, target_file};

/// Metadata that passed every check but the presence of its target files.
#[derive(Debug)]
pub struct Accepted {
    /// Role name.
    pub role: String,
    /// Version.
    pub version: u64,
    /// Target files it lists, as (blob key under `repo/`, length).
    pub needed: Vec<(String, u64)>,
}

/// Parse `N.ROLE.json`.
pub fn parse_file_name(name: &str) -> Option<(u64, &str)> {
    let stem = name.strip_suffix(".json")?;
    let (version, role) = stem.split_once('.')?;
    let version: u64 = version.parse().ok()?;
    (version > 0 && !role.is_empty()).then_some((version, role))
}

/// Check `bytes`, uploaded as `file_name`, against `repo`, at `clock`'s now.
pub fn check(
    repo: &Repo,
    file_name: &str,
    bytes: &[u8],
    clock: &dyn Clock,
) -> Result<Accepted, String> {
    let (version, role) = parse_file_name(file_name)
        .ok_or_else(|| format!("{file_name:?} is not named N.ROLE.json"))?;
    if ["root", "snapshot", "timestamp"].contains(&role) {
        return Err(format!(
            "{role} metadata cannot be uploaded here: the server signs snapshot and timestamp itself, and roots go to /admin/v1/repo/roots"
        ));
    }
    let meta = Signed::<Targets>::parse(bytes, Path::new(file_name)).map_err(|e| e.to_string())?;
    if meta.signed.version() != version {
        return Err(format!(
            "{file_name} holds version {}, not {version}",
            meta.signed.version()
        ));
    }
    if clock.has_passed(meta.signed.expires()) {
        return Err(format!("{file_name} expired at {}", meta.signed.expires()));
    }
    let previous: Option<&Targets> = if role == "targets" {
        let keys = &repo.root.signed.keys;
        let role_keys = repo
            .root
            .signed
            .role("targets")
            .ok_or("the trusted root has no targets role")?;
        meta.require(keys, role_keys, file_name, "targets")
            .map_err(|e| e.to_string())?;
        repo.targets.as_ref().map(|t| &t.signed)
    } else {
        let top = repo
            .targets
            .as_ref()
            .ok_or("there is no top-level targets metadata to delegate to this role")?;
        let delegation = top.signed.delegation(role).ok_or_else(|| {
            format!("top-level targets does not delegate to a role named {role:?}")
        })?;
        let keys = top
            .signed
            .delegations
            .as_ref()
            .map(|d| &d.keys)
            .ok_or("top-level targets has no delegations")?;
        meta.require(keys, &delegation.keys, file_name, role)
            .map_err(|e| e.to_string())?;
        for name in meta.signed.targets.keys() {
            // The lock's rule, in the one function both call
            // (`nightlatch_proto::paths`): `paths` or `path_hash_prefixes`.
            if !delegation.is_delegated_path(name) {
                return Err(format!(
                    "target {name} is outside the {} delegated to {role}",
                    delegation.scope()
                ));
            }
        }
        repo.delegated.get(role).map(|t| &t.signed)
    };
    let current = previous.map_or(0, |p| p.version());
    if version <= current {
        return Err(format!(
            "{role} is at version {current}; an upload must have a higher version (got {version})"
        ));
    }
    let mut needed = Vec::new();
    for (name, file) in &meta.signed.targets {
        if let Some(old) = previous.and_then(|p| p.targets.get(name))
            && (old.length != file.length || old.hashes != file.hashes)
        {
            return Err(format!(
                "target {name} is already published with other content; publish a new version instead"
            ));
        }
        let sha = file
            .sha256_hex()
            .ok_or_else(|| format!("target {name} has no sha256"))?;
        let path = target_file(Path::new(""), name, &sha);
        let key = path
            .to_str()
            .map(|p| p.replace('\\', "/"))
            .ok_or_else(|| format!("target {name}: unusable path"))?;
        needed.push((key, file.length));
    }
    Ok(Accepted {
        role: role.to_owned(),
        version,
        needed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(parse_file_name("3.targets.json"), Some((3, "targets")));
        assert_eq!(
            parse_file_name("12.nl-lock-v2.json"),
            Some((12, "nl-lock-v2"))
        );
        assert_eq!(parse_file_name("0.targets.json"), None);
        assert_eq!(parse_file_name("targets.json"), None);
        assert_eq!(parse_file_name("x.targets.json"), None);
    }
}
