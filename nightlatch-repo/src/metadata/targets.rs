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
    /// Target path patterns (`*`, `?`, `[...]` within one `/`-separated
    /// segment). Exactly one of `paths` and `path_hash_prefixes` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Hex prefixes of the SHA-256 of the target paths this role holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hash_prefixes: Option<Vec<String>>,
}

impl DelegatedRole {
    /// Keys and threshold as a [`RoleKeys`].
    pub fn role_keys(&self) -> RoleKeys {
        RoleKeys {
            keyids: self.keyids.clone(),
            threshold: self.threshold,
        }
    }

    /// Whether this role is trusted for `target`: TUF's rule as python-tuf
    /// applies it (`path_hash_prefixes`, else `paths` matched per segment
    /// with `fnmatch`), the one function the lock calls too
    /// ([`nightlatch_proto::paths`]).
    pub fn matches(&self, target: &str) -> bool {
        nightlatch_proto::paths::is_delegated_path(
            self.paths.as_deref(),
            self.path_hash_prefixes.as_deref(),
            target,
        )
    }

    /// What the role is trusted for, for messages: its path patterns or its
    /// hash prefixes.
    pub fn scope(&self) -> String {
        match (&self.paths, &self.path_hash_prefixes) {
            (_, Some(prefixes)) => format!("path hash prefixes {}", prefixes.join(", ")),
            (Some(paths), None) => format!("paths {}", paths.join(", ")),
            (None, None) => "no paths".into(),
        }
    }
}

/// Whether `target` matches the delegation path pattern `pattern`
/// (python-tuf's rule; [`nightlatch_proto::paths::path_matches`]).
pub use nightlatch_proto::paths::path_matches;

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

    fn check_with_protocol(
        signed: &serde_json::Value,
    ) -> Result<(), nightlatch_proto::tuf::TufError> {
        nightlatch_proto::tuf::Targets::from_json(signed, nightlatch_proto::tuf::Role::Targets)
            .map(drop)
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
