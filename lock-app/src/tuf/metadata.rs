//! The four TUF roles' `signed` contents, parsed from an [`Envelope`] into
//! typed values. Unknown fields are ignored here but stay covered by the
//! signature (which is checked over the received JSON, not these types).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::encoding::{hex_decode, parse_utc};
use super::error::{Result, Role, TufError};
use super::signed::{Envelope, PublicKey, RawKey, RawRoleKeys, RoleKeys};

/// Fields every role has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Version (≥ 1).
    pub version: u64,
    /// Expiry, Unix seconds.
    pub expires: u64,
}

impl Header {
    /// Expired at `now` (Unix seconds): `now >= expires`, as python-tuf.
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires
    }
}

#[derive(Deserialize)]
struct RawHeader {
    #[serde(rename = "_type")]
    kind: String,
    spec_version: String,
    version: u64,
    expires: String,
}

fn header(signed: &Value, expected_type: &str, role: Role) -> Result<Header> {
    let raw: RawHeader = from_value(signed, role)?;
    if raw.kind != expected_type {
        return Err(TufError::WrongType { expected: role });
    }
    let mut parts = raw.spec_version.split('.');
    let major = parts.next();
    let rest: Vec<&str> = parts.collect();
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if major != Some("1") || !(1..=2).contains(&rest.len()) || !rest.iter().all(|s| numeric(s)) {
        return Err(TufError::UnsupportedSpecVersion { role });
    }
    if raw.version == 0 {
        return Err(TufError::Malformed { role });
    }
    let expires = parse_utc(&raw.expires).ok_or(TufError::Malformed { role })?;
    Ok(Header {
        version: raw.version,
        expires,
    })
}

fn from_value<T: DeserializeOwned>(signed: &Value, role: Role) -> Result<T> {
    T::deserialize(signed).map_err(|_| TufError::Malformed { role })
}

fn keys_from_raw(raw: BTreeMap<String, RawKey>, role: Role) -> Result<BTreeMap<String, PublicKey>> {
    raw.into_iter()
        .map(|(id, k)| Ok((id, PublicKey::from_raw(&k, role)?)))
        .collect()
}

/// Root metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// Version and expiry.
    pub header: Header,
    /// Whether files are fetched by version / hash prefix.
    pub consistent_snapshot: bool,
    /// Every key the roles use.
    pub keys: BTreeMap<String, PublicKey>,
    /// Root role keys.
    pub root: RoleKeys,
    /// Timestamp role keys.
    pub timestamp: RoleKeys,
    /// Snapshot role keys.
    pub snapshot: RoleKeys,
    /// Top-level targets role keys.
    pub targets: RoleKeys,
}

#[derive(Deserialize)]
struct RawRoot {
    #[serde(default)]
    consistent_snapshot: bool,
    keys: BTreeMap<String, RawKey>,
    roles: BTreeMap<String, RawRoleKeys>,
}

impl Root {
    /// Parse the `signed` part of root metadata.
    pub fn parse(env: &Envelope) -> Result<Self> {
        let role = Role::Root;
        let header = header(&env.signed, "root", role)?;
        let raw: RawRoot = from_value(&env.signed, role)?;
        let mut roles = raw.roles;
        if roles.len() != 4 {
            return Err(TufError::Malformed { role });
        }
        let mut take = |name: &str| -> Result<RoleKeys> {
            let r = roles.remove(name).ok_or(TufError::Malformed { role })?;
            RoleKeys::from_raw(r, role)
        };
        Ok(Self {
            header,
            consistent_snapshot: raw.consistent_snapshot,
            root: take("root")?,
            timestamp: take("timestamp")?,
            snapshot: take("snapshot")?,
            targets: take("targets")?,
            keys: keys_from_raw(raw.keys, role)?,
        })
    }

    /// The keys of a top-level role.
    pub fn role_keys(&self, role: Role) -> Option<&RoleKeys> {
        match role {
            Role::Root => Some(&self.root),
            Role::Timestamp => Some(&self.timestamp),
            Role::Snapshot => Some(&self.snapshot),
            Role::Targets => Some(&self.targets),
            Role::Delegated => None,
        }
    }
}

/// Hashes of a file: algorithm name → digest bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hashes(pub BTreeMap<String, Vec<u8>>);

impl Hashes {
    fn from_raw(raw: BTreeMap<String, String>, role: Role) -> Result<Self> {
        raw.into_iter()
            .map(|(alg, hex)| Ok((alg, hex_decode(&hex).ok_or(TufError::Malformed { role })?)))
            .collect::<Result<_>>()
            .map(Hashes)
    }

    /// The digest for `alg` (`"sha256"`, `"sha512"`), if listed.
    pub fn get(&self, alg: &str) -> Option<&[u8]> {
        self.0.get(alg).map(Vec::as_slice)
    }
}

/// A metadata file as timestamp or snapshot lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaFile {
    /// Its version.
    pub version: u64,
    /// Its length, if listed.
    pub length: Option<u64>,
    /// Its hashes, if listed.
    pub hashes: Option<Hashes>,
}

#[derive(Deserialize)]
struct RawMetaFile {
    version: u64,
    length: Option<u64>,
    hashes: Option<BTreeMap<String, String>>,
}

impl MetaFile {
    fn from_raw(raw: RawMetaFile, role: Role) -> Result<Self> {
        if raw.version == 0 || raw.hashes.as_ref().is_some_and(BTreeMap::is_empty) {
            return Err(TufError::Malformed { role });
        }
        Ok(Self {
            version: raw.version,
            length: raw.length,
            hashes: raw.hashes.map(|h| Hashes::from_raw(h, role)).transpose()?,
        })
    }
}

#[derive(Deserialize)]
struct RawMeta {
    meta: BTreeMap<String, RawMetaFile>,
}

/// Timestamp metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp {
    /// Version and expiry.
    pub header: Header,
    /// What it says about `snapshot.json`.
    pub snapshot_meta: MetaFile,
}

impl Timestamp {
    /// Parse the `signed` part of timestamp metadata.
    pub fn parse(env: &Envelope) -> Result<Self> {
        let role = Role::Timestamp;
        let header = header(&env.signed, "timestamp", role)?;
        let mut raw: RawMeta = from_value(&env.signed, role)?;
        let snap = raw.meta.remove("snapshot.json");
        if !raw.meta.is_empty() {
            return Err(TufError::Malformed { role });
        }
        Ok(Self {
            header,
            snapshot_meta: MetaFile::from_raw(snap.ok_or(TufError::Malformed { role })?, role)?,
        })
    }
}

/// Snapshot metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Version and expiry.
    pub header: Header,
    /// Targets metadata files by file name (`targets.json`, `<role>.json`).
    pub meta: BTreeMap<String, MetaFile>,
}

impl Snapshot {
    /// Parse the `signed` part of snapshot metadata.
    pub fn parse(env: &Envelope) -> Result<Self> {
        let role = Role::Snapshot;
        let header = header(&env.signed, "snapshot", role)?;
        let raw: RawMeta = from_value(&env.signed, role)?;
        Ok(Self {
            header,
            meta: raw
                .meta
                .into_iter()
                .map(|(k, v)| Ok((k, MetaFile::from_raw(v, role)?)))
                .collect::<Result<_>>()?,
        })
    }
}

/// A target file as targets metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFile {
    /// Exact length in bytes.
    pub length: u64,
    /// Hashes (at least one).
    pub hashes: Hashes,
    /// The `custom` object, as signed (Nightlatch puts `custom.nightlatch` here).
    pub custom: Option<Value>,
}

#[derive(Deserialize)]
struct RawTargetFile {
    length: u64,
    hashes: BTreeMap<String, String>,
    custom: Option<Value>,
}

/// A delegated role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegatedRole {
    /// Its name (also its metadata file name, `<name>.json`).
    pub name: String,
    /// Its keys and threshold.
    pub keys: RoleKeys,
    /// Stop the search at this role when it is trusted for the target.
    pub terminating: bool,
    /// Path patterns (`*`, `?`, `[...]` per `/`-separated segment).
    pub paths: Option<Vec<String>>,
    /// Hex prefixes of the SHA-256 of target paths.
    pub path_hash_prefixes: Option<Vec<String>>,
}

impl DelegatedRole {
    /// Whether this role is trusted for `target`: TUF's rule as python-tuf
    /// applies it (`path_hash_prefixes`, else `paths` matched per segment
    /// with `fnmatch`), the one function the host tools and the server's
    /// upload check call too ([`nightlatch_proto::paths`]).
    pub fn is_delegated_path(&self, target: &str) -> bool {
        nightlatch_proto::paths::is_delegated_path(
            self.paths.as_deref(),
            self.path_hash_prefixes.as_deref(),
            target,
        )
    }
}

/// The delegations of a targets role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegations {
    /// Keys of the delegated roles.
    pub keys: BTreeMap<String, PublicKey>,
    /// Delegated roles, in priority order.
    pub roles: Vec<DelegatedRole>,
}

#[derive(Deserialize)]
struct RawDelegations {
    keys: BTreeMap<String, RawKey>,
    roles: Option<Vec<RawDelegatedRole>>,
}

#[derive(Deserialize)]
struct RawDelegatedRole {
    name: String,
    keyids: Vec<String>,
    threshold: u64,
    #[serde(default)]
    terminating: bool,
    paths: Option<Vec<String>>,
    path_hash_prefixes: Option<Vec<String>>,
}

/// Targets metadata (top-level or delegated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// Version and expiry.
    pub header: Header,
    /// Target files by name.
    pub targets: BTreeMap<String, TargetFile>,
    /// Delegations, if any.
    pub delegations: Option<Delegations>,
}

#[derive(Deserialize)]
struct RawTargets {
    targets: BTreeMap<String, RawTargetFile>,
    delegations: Option<RawDelegations>,
}

/// Top-level role names a delegated role may not take.
const TOP_LEVEL: [&str; 4] = ["root", "timestamp", "snapshot", "targets"];

impl Targets {
    /// Parse the `signed` part of targets metadata of `role`.
    pub fn parse(env: &Envelope, role: Role) -> Result<Self> {
        let malformed = TufError::Malformed { role };
        let header = header(&env.signed, "targets", role)?;
        let raw: RawTargets = from_value(&env.signed, role)?;
        let targets = raw
            .targets
            .into_iter()
            .map(|(name, t)| {
                let file = TargetFile {
                    length: t.length,
                    hashes: Hashes::from_raw(t.hashes, role)?,
                    custom: t.custom,
                };
                Ok((name, file))
            })
            .collect::<Result<_>>()?;
        let delegations = match raw.delegations {
            None => None,
            Some(d) => {
                // `succinct_roles` (hash-bin delegation) is not supported:
                // without `roles`, the delegation is refused as malformed.
                let raw_roles = d.roles.ok_or(malformed)?;
                let mut roles: Vec<DelegatedRole> = Vec::with_capacity(raw_roles.len());
                for r in raw_roles {
                    if TOP_LEVEL.contains(&r.name.as_str())
                        || roles.iter().any(|o| o.name == r.name)
                        || (r.paths.is_some() && r.path_hash_prefixes.is_some())
                    {
                        return Err(malformed);
                    }
                    let raw_keys = RawRoleKeys {
                        keyids: r.keyids,
                        threshold: r.threshold,
                    };
                    let keys = RoleKeys::from_raw(raw_keys, role)?;
                    roles.push(DelegatedRole {
                        name: r.name,
                        keys,
                        terminating: r.terminating,
                        paths: r.paths,
                        path_hash_prefixes: r.path_hash_prefixes,
                    });
                }
                Some(Delegations {
                    keys: keys_from_raw(d.keys, role)?,
                    roles,
                })
            }
        };
        Ok(Self {
            header,
            targets,
            delegations,
        })
    }
}
