//! Targets metadata: which files exist and what they hash to, and which
//! roles may sign for which paths (delegations).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::metadata::key::truncate;
use crate::metadata::root::{TOP_LEVEL_ROLES, check_keys};
use crate::metadata::{Expiry, KeyId, Metadata, PublicKey, RoleKeys, SPEC_VERSION, check_header};

/// One target file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetFile {
    /// Length in bytes.
    pub length: u64,
    /// Hashes by algorithm (`sha256` always present), hex.
    pub hashes: BTreeMap<String, String>,
    /// Application-specific metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
}

impl TargetFile {
    /// The SHA-256, hex.
    pub fn sha256(&self) -> Option<&str> {
        self.hashes.get("sha256").map(String::as_str)
    }
}

/// A delegated targets role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegatedRole {
    /// Role name (also its metadata file name).
    pub name: String,
    /// Key ids allowed to sign it.
    pub keyids: Vec<KeyId>,
    /// Valid signatures needed.
    pub threshold: u32,
    /// If true, a search for a matching path stops at this role.
    pub terminating: bool,
    /// Target path patterns (`*` matches within one path component).
    pub paths: Vec<String>,
}

impl DelegatedRole {
    /// Keys and threshold as a [`RoleKeys`].
    pub fn role_keys(&self) -> RoleKeys {
        RoleKeys {
            keyids: self.keyids.clone(),
            threshold: self.threshold,
        }
    }

    /// Whether this role is trusted for `target` (one of its `paths` matches).
    pub fn matches(&self, target: &str) -> bool {
        self.paths.iter().any(|p| path_matches(p, target))
    }
}

/// Whether `target` matches the delegation path pattern `pattern`, as
/// python-tuf matches them: the same number of `/`-separated parts, each part
/// matching its glob (`*` any run of characters, `?` one character).
pub fn path_matches(pattern: &str, target: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let t: Vec<&str> = target.split('/').collect();
    p.len() == t.len()
        && p.iter()
            .zip(&t)
            .all(|(p, t)| glob(p.as_bytes(), t.as_bytes()))
}

fn glob(p: &[u8], t: &[u8]) -> bool {
    // Iterative wildcard matching with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod path_tests {
    use super::path_matches;

    #[test]
    fn delegation_paths_match_within_one_component() {
        assert!(path_matches("nl-lock-v2/*", "nl-lock-v2/1.0.0.nlfw"));
        assert!(!path_matches("nl-lock-v2/*", "nl-lock-v3/1.0.0.nlfw"));
        assert!(!path_matches("nl-lock-v2/*", "nl-lock-v2/a/b.nlfw"));
        assert!(path_matches("a/?.bin", "a/x.bin"));
        assert!(!path_matches("a/*", "a"));
    }
}

/// The `delegations` object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegations {
    /// Keys of every delegated role.
    pub keys: BTreeMap<KeyId, PublicKey>,
    /// Delegated roles, in priority order.
    pub roles: Vec<DelegatedRole>,
}

/// The `signed` object of targets metadata (top-level or delegated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    /// Always `targets`.
    #[serde(rename = "_type")]
    pub kind: String,
    /// TUF specification version.
    pub spec_version: String,
    /// Version.
    pub version: u64,
    /// Expiry.
    pub expires: Expiry,
    /// Target files by path.
    pub targets: BTreeMap<String, TargetFile>,
    /// Delegations, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegations: Option<Delegations>,
}

impl Targets {
    /// Empty targets metadata.
    pub fn new(version: u64, expires: Expiry) -> Self {
        Self {
            kind: Self::TYPE.into(),
            spec_version: SPEC_VERSION.into(),
            version,
            expires,
            targets: BTreeMap::new(),
            delegations: None,
        }
    }

    /// The delegated role called `name`.
    pub fn delegation(&self, name: &str) -> Option<&DelegatedRole> {
        self.delegations
            .as_ref()
            .and_then(|d| d.roles.iter().find(|r| r.name == name))
    }
}

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

    fn version(&self) -> u64 {
        self.version
    }

    fn expires(&self) -> Expiry {
        self.expires
    }

    fn validate(&self) -> Result<(), String> {
        check_header(&self.kind, Self::TYPE, &self.spec_version, self.version)?;
        for (path, file) in &self.targets {
            check_target_path(path)?;
            let sha = file
                .sha256()
                .ok_or_else(|| format!("target {path} has no sha256 hash"))?;
            if sha.len() != 64 || hex::decode(sha).is_err() {
                return Err(format!("target {path}: sha256 is not 64 hex characters"));
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
                role.role_keys().check(&role.name, &d.keys)?;
                if role.paths.is_empty() {
                    return Err(format!("delegated role {} has no paths", role.name));
                }
            }
        }
        Ok(())
    }
}
