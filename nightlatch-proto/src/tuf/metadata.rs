//! The four TUF roles' `signed` contents as typed values: read from an
//! [`Envelope`] (or any JSON value) with a clear error, and written back.
//!
//! Round trip: a value read from metadata serialises (serde, or
//! `to_json`) to the same canonical JSON it was read from. Fields the
//! specification does not name are kept where python-tuf keeps them
//! (`unrecognized`: the `signed` object, meta files, target files,
//! delegations); the exceptions — fields beyond `keytype`/`scheme`/`keyval`
//! in a supported key, beyond `keyids`/`threshold` in a root role, unknown
//! fields of a delegated role — are dropped when writing. Signatures are
//! always checked over the received bytes, so nothing dropped here can
//! change what a signature covered.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

use super::encoding::{format_utc, hex_decode_lower, hex_encode, parse_expires};
use super::error::{Result, Role, TufError};
use super::key::{Keys, PublicKey, keys_from_json, keys_to_json};
use super::signed::{Envelope, RoleKeys};

/// The `spec_version` new metadata is written with.
pub const SPEC_VERSION: &str = "1.0.31";

/// Fields every role has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `spec_version`, `1.x` or `1.x.y`.
    pub spec_version: String,
    /// Version (≥ 1).
    pub version: u64,
    /// Expiry, Unix seconds.
    pub expires: u64,
}

impl Header {
    /// A header with the current [`SPEC_VERSION`].
    pub fn new(version: u64, expires: u64) -> Self {
        Self {
            spec_version: SPEC_VERSION.into(),
            version,
            expires,
        }
    }

    /// Expired at `now` (Unix seconds): `now >= expires`, as python-tuf.
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires
    }

    /// [`TufError::Expired`] for `role` if expired at `now`.
    pub fn check_fresh(&self, now: u64, role: Role) -> Result<()> {
        if self.is_expired(now) {
            Err(TufError::Expired { role })
        } else {
            Ok(())
        }
    }

    fn write(&self, kind: &str, obj: &mut Map<String, Value>) {
        obj.insert("_type".into(), kind.into());
        obj.insert("spec_version".into(), self.spec_version.clone().into());
        obj.insert("version".into(), self.version.into());
        obj.insert("expires".into(), format_utc(self.expires).into());
    }
}

/// Takes the known fields out of a JSON object; what is left is
/// `unrecognized`.
struct Fields {
    obj: Map<String, Value>,
    role: Role,
}

impl Fields {
    fn new(value: &Value, role: Role, what: &'static str) -> Result<Self> {
        match value {
            Value::Object(obj) => Ok(Self {
                obj: obj.clone(),
                role,
            }),
            _ => Err(TufError::malformed(role, what)),
        }
    }

    fn err(&self, what: &'static str) -> TufError {
        TufError::malformed(self.role, what)
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        self.obj.remove(name)
    }

    fn string(&mut self, name: &str, what: &'static str) -> Result<String> {
        match self.take(name) {
            Some(Value::String(s)) => Ok(s),
            _ => Err(self.err(what)),
        }
    }

    fn u64(&mut self, name: &str, what: &'static str) -> Result<u64> {
        self.take(name)
            .and_then(|v| v.as_u64())
            .ok_or(self.err(what))
    }

    fn opt_u64(&mut self, name: &str, what: &'static str) -> Result<Option<u64>> {
        match self.take(name) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or(self.err(what)),
        }
    }

    fn opt_bool(&mut self, name: &str, what: &'static str) -> Result<Option<bool>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(self.err(what)),
        }
    }

    fn object(&mut self, name: &str, what: &'static str) -> Result<Map<String, Value>> {
        match self.take(name) {
            Some(Value::Object(o)) => Ok(o),
            _ => Err(self.err(what)),
        }
    }

    fn opt_strings(&mut self, name: &str, what: &'static str) -> Result<Option<Vec<String>>> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(self.err(what)),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(_) => Err(self.err(what)),
        }
    }

    /// `_type`, `spec_version`, `version`, `expires`.
    fn header(&mut self, expected_type: &str) -> Result<Header> {
        let role = self.role;
        let kind = self.string("_type", "_type is not a string")?;
        if kind != expected_type {
            return Err(TufError::WrongType { expected: role });
        }
        let spec_version = self.string("spec_version", "spec_version is not a string")?;
        let mut parts = spec_version.split('.');
        let major = parts.next();
        let rest: Vec<&str> = parts.collect();
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if major != Some("1") || !(1..=2).contains(&rest.len()) || !rest.iter().all(|s| numeric(s))
        {
            return Err(TufError::UnsupportedSpecVersion { role });
        }
        let version = self.u64("version", "version is not an unsigned integer")?;
        if version == 0 {
            return Err(self.err("version is 0"));
        }
        let expires = self.string("expires", "expires is not a string")?;
        let expires =
            parse_expires(&expires).ok_or(self.err("expires is not YYYY-MM-DDTHH:MM:SSZ"))?;
        Ok(Header {
            spec_version,
            version,
            expires,
        })
    }

    fn rest(self) -> Map<String, Value> {
        self.obj
    }
}

fn extend(obj: &mut Map<String, Value>, unrecognized: &Map<String, Value>) {
    for (k, v) in unrecognized {
        obj.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

macro_rules! serde_via_json {
    ($t:ty, $parse:expr) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(
                &self,
                serializer: S,
            ) -> core::result::Result<S::Ok, S::Error> {
                self.to_json().serialize(serializer)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
                let value = Value::deserialize(d)?;
                $parse(&value).map_err(D::Error::custom)
            }
        }
    };
}

/// Root metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// Version and expiry.
    pub header: Header,
    /// Whether files are fetched by version / hash prefix.
    pub consistent_snapshot: bool,
    /// Whether `consistent_snapshot` is written (python-tuf omits it when
    /// it was absent).
    pub consistent_snapshot_listed: bool,
    /// Every key the roles use.
    pub keys: Keys,
    /// Root role keys.
    pub root: RoleKeys,
    /// Timestamp role keys.
    pub timestamp: RoleKeys,
    /// Snapshot role keys.
    pub snapshot: RoleKeys,
    /// Top-level targets role keys.
    pub targets: RoleKeys,
    /// Fields the specification does not name, kept as read.
    pub unrecognized: Map<String, Value>,
}

impl Root {
    /// Parse the `signed` part of root metadata.
    pub fn parse(env: &Envelope) -> Result<Self> {
        Self::from_json(&env.signed)
    }

    /// Read a root `signed` object.
    pub fn from_json(signed: &Value) -> Result<Self> {
        let role = Role::Root;
        let mut f = Fields::new(signed, role, "signed is not an object")?;
        let header = f.header("root")?;
        let consistent = f.opt_bool(
            "consistent_snapshot",
            "consistent_snapshot is not true or false",
        )?;
        let keys = keys_from_json(f.take("keys").as_ref(), role)?;
        let mut roles = f.object("roles", "roles is not an object")?;
        if roles.len() != 4 {
            return Err(f.err("roles does not hold exactly root, timestamp, snapshot and targets"));
        }
        let mut take = |name: &str| -> Result<RoleKeys> {
            match roles.remove(name) {
                Some(Value::Object(r)) => RoleKeys::from_json(&r, role),
                _ => Err(TufError::malformed(
                    role,
                    "roles does not hold exactly root, timestamp, snapshot and targets",
                )),
            }
        };
        Ok(Self {
            header,
            consistent_snapshot: consistent.unwrap_or(false),
            consistent_snapshot_listed: consistent.is_some(),
            root: take("root")?,
            timestamp: take("timestamp")?,
            snapshot: take("snapshot")?,
            targets: take("targets")?,
            keys,
            unrecognized: f.rest(),
        })
    }

    /// The `signed` object.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        self.header.write("root", &mut obj);
        if self.consistent_snapshot_listed || self.consistent_snapshot {
            obj.insert(
                "consistent_snapshot".into(),
                self.consistent_snapshot.into(),
            );
        }
        obj.insert("keys".into(), keys_to_json(&self.keys));
        obj.insert(
            "roles".into(),
            json!({
                "root": self.root.to_json(),
                "timestamp": self.timestamp.to_json(),
                "snapshot": self.snapshot.to_json(),
                "targets": self.targets.to_json(),
            }),
        );
        extend(&mut obj, &self.unrecognized);
        Value::Object(obj)
    }

    /// A new root for a writer: consistent snapshots on, no keys, every
    /// role without keys and a threshold of 1 (give each one keys with
    /// [`Root::set_role`] before signing).
    pub fn new(version: u64, expires: u64) -> Self {
        let empty = RoleKeys {
            keyids: Vec::new(),
            threshold: 1,
        };
        Self {
            header: Header::new(version, expires),
            consistent_snapshot: true,
            consistent_snapshot_listed: true,
            keys: Keys::new(),
            root: empty.clone(),
            timestamp: empty.clone(),
            snapshot: empty.clone(),
            targets: empty,
            unrecognized: Map::new(),
        }
    }

    /// The keys of the top-level role called `name` (`root`, `timestamp`,
    /// `snapshot`, `targets`).
    pub fn role(&self, name: &str) -> Option<&RoleKeys> {
        self.role_keys(Role::top_level(name)?)
    }

    /// The keys of the top-level role called `name`, to change.
    pub fn role_mut(&mut self, name: &str) -> Option<&mut RoleKeys> {
        match Role::top_level(name)? {
            Role::Root => Some(&mut self.root),
            Role::Timestamp => Some(&mut self.timestamp),
            Role::Snapshot => Some(&mut self.snapshot),
            Role::Targets => Some(&mut self.targets),
            Role::Delegated => None,
        }
    }

    /// Give the top-level role `name` exactly `keys` (each listed once,
    /// under its key id, and added to `keys`) and `threshold`. False if
    /// `name` is not a top-level role.
    pub fn set_role(&mut self, name: &str, keys: &[PublicKey], threshold: u32) -> bool {
        let mut keyids: Vec<String> = Vec::new();
        for key in keys {
            let id = key.keyid();
            if !keyids.contains(&id) {
                keyids.push(id.clone());
            }
            self.keys.insert(id, key.clone());
        }
        match self.role_mut(name) {
            Some(role) => {
                *role = RoleKeys { keyids, threshold };
                true
            }
            None => false,
        }
    }

    /// The four top-level roles by name, in the order tables show them.
    pub fn roles(&self) -> [(&'static str, &RoleKeys); 4] {
        [
            ("root", &self.root),
            ("targets", &self.targets),
            ("snapshot", &self.snapshot),
            ("timestamp", &self.timestamp),
        ]
    }

    /// Key ids of the root role.
    pub fn root_keyids(&self) -> &[String] {
        &self.root.keyids
    }

    /// Drop keys no role uses.
    pub fn prune_keys(&mut self) {
        let used: BTreeSet<String> = self
            .roles()
            .iter()
            .flat_map(|(_, r)| r.keyids.iter().cloned())
            .collect();
        self.keys.retain(|id, _| used.contains(id));
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

serde_via_json!(Root, Root::from_json);

/// Hashes of a file: algorithm name → digest bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hashes(pub BTreeMap<String, Vec<u8>>);

impl Hashes {
    fn from_json(value: Option<Value>, role: Role) -> Result<Self> {
        let Some(Value::Object(obj)) = value else {
            return Err(TufError::malformed(role, "hashes is not an object"));
        };
        if obj.is_empty() {
            return Err(TufError::malformed(role, "hashes is empty"));
        }
        obj.into_iter()
            .map(|(alg, hex)| {
                let digest = hex
                    .as_str()
                    .and_then(hex_decode_lower)
                    .ok_or(TufError::malformed(role, "a hash is not lower-case hex"))?;
                Ok((alg, digest))
            })
            .collect::<Result<_>>()
            .map(Hashes)
    }

    /// `{"sha256": "<hex>", ...}`.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(alg, d)| (alg.clone(), hex_encode(d).into()))
                .collect(),
        )
    }

    /// The digest for `alg` (`"sha256"`, `"sha512"`), if listed.
    pub fn get(&self, alg: &str) -> Option<&[u8]> {
        self.0.get(alg).map(Vec::as_slice)
    }

    /// Only the SHA-256 of `bytes` (what Nightlatch's writers list).
    pub fn sha256_of(bytes: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        let mut map = BTreeMap::new();
        map.insert(String::from("sha256"), Sha256::digest(bytes).to_vec());
        Hashes(map)
    }

    /// The digest for `alg` as lower-case hex, if listed.
    pub fn hex(&self, alg: &str) -> Option<String> {
        self.get(alg).map(hex_encode)
    }

    /// Hashes from hex digests (`{"sha256": "<hex>"}`); `None` if a digest
    /// is not lower-case hex.
    pub fn from_hex<'a>(digests: impl IntoIterator<Item = (&'a str, &'a str)>) -> Option<Self> {
        digests
            .into_iter()
            .map(|(alg, hex)| Some((String::from(alg), hex_decode_lower(hex)?)))
            .collect::<Option<BTreeMap<_, _>>>()
            .map(Hashes)
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
    /// Fields the specification does not name, kept as read.
    pub unrecognized: Map<String, Value>,
}

impl MetaFile {
    /// A meta file entry with only a version (python-tuf's default).
    pub fn new(version: u64) -> Self {
        Self {
            version,
            length: None,
            hashes: None,
            unrecognized: Map::new(),
        }
    }

    fn from_json(value: &Value, role: Role) -> Result<Self> {
        let mut f = Fields::new(value, role, "a meta entry is not an object")?;
        let version = f.u64("version", "a meta entry has no unsigned version")?;
        if version == 0 {
            return Err(f.err("a meta entry has version 0"));
        }
        let length = f.opt_u64("length", "a meta entry's length is not an unsigned integer")?;
        let hashes = match f.take("hashes") {
            None => None,
            Some(h) => Some(Hashes::from_json(Some(h), role)?),
        };
        Ok(Self {
            version,
            length,
            hashes,
            unrecognized: f.rest(),
        })
    }

    /// `{"version": N, "length": N, "hashes": {...}}`.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("version".into(), self.version.into());
        if let Some(l) = self.length {
            obj.insert("length".into(), l.into());
        }
        if let Some(h) = &self.hashes {
            obj.insert("hashes".into(), h.to_json());
        }
        extend(&mut obj, &self.unrecognized);
        Value::Object(obj)
    }
}

fn meta_map(f: &mut Fields) -> Result<BTreeMap<String, MetaFile>> {
    let role = f.role;
    f.object("meta", "meta is not an object")?
        .iter()
        .map(|(k, v)| Ok((k.clone(), MetaFile::from_json(v, role)?)))
        .collect()
}

/// Timestamp metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp {
    /// Version and expiry.
    pub header: Header,
    /// What it says about `snapshot.json`.
    pub snapshot_meta: MetaFile,
    /// Fields the specification does not name, kept as read.
    pub unrecognized: Map<String, Value>,
}

impl Timestamp {
    /// A timestamp naming `snapshot_meta`.
    pub fn new(version: u64, expires: u64, snapshot_meta: MetaFile) -> Self {
        Self {
            header: Header::new(version, expires),
            snapshot_meta,
            unrecognized: Map::new(),
        }
    }

    /// Parse the `signed` part of timestamp metadata.
    pub fn parse(env: &Envelope) -> Result<Self> {
        Self::from_json(&env.signed)
    }

    /// Read a timestamp `signed` object.
    pub fn from_json(signed: &Value) -> Result<Self> {
        let mut f = Fields::new(signed, Role::Timestamp, "signed is not an object")?;
        let header = f.header("timestamp")?;
        let mut meta = meta_map(&mut f)?;
        let snapshot_meta = meta
            .remove("snapshot.json")
            .ok_or(f.err("meta does not list snapshot.json"))?;
        if !meta.is_empty() {
            return Err(f.err("meta lists more than snapshot.json"));
        }
        Ok(Self {
            header,
            snapshot_meta,
            unrecognized: f.rest(),
        })
    }

    /// The `signed` object.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        self.header.write("timestamp", &mut obj);
        obj.insert(
            "meta".into(),
            json!({"snapshot.json": self.snapshot_meta.to_json()}),
        );
        extend(&mut obj, &self.unrecognized);
        Value::Object(obj)
    }
}

serde_via_json!(Timestamp, Timestamp::from_json);

/// Snapshot metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Version and expiry.
    pub header: Header,
    /// Targets metadata files by file name (`targets.json`, `<role>.json`).
    pub meta: BTreeMap<String, MetaFile>,
    /// Fields the specification does not name, kept as read.
    pub unrecognized: Map<String, Value>,
}

impl Snapshot {
    /// A snapshot listing `meta`.
    pub fn new(version: u64, expires: u64, meta: BTreeMap<String, MetaFile>) -> Self {
        Self {
            header: Header::new(version, expires),
            meta,
            unrecognized: Map::new(),
        }
    }

    /// Parse the `signed` part of snapshot metadata.
    pub fn parse(env: &Envelope) -> Result<Self> {
        Self::from_json(&env.signed)
    }

    /// Read a snapshot `signed` object.
    pub fn from_json(signed: &Value) -> Result<Self> {
        let mut f = Fields::new(signed, Role::Snapshot, "signed is not an object")?;
        let header = f.header("snapshot")?;
        let meta = meta_map(&mut f)?;
        Ok(Self {
            header,
            meta,
            unrecognized: f.rest(),
        })
    }

    /// The `signed` object.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        self.header.write("snapshot", &mut obj);
        let meta: Map<String, Value> = self
            .meta
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect();
        obj.insert("meta".into(), Value::Object(meta));
        extend(&mut obj, &self.unrecognized);
        Value::Object(obj)
    }
}

serde_via_json!(Snapshot, Snapshot::from_json);

/// A target file as targets metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFile {
    /// Exact length in bytes.
    pub length: u64,
    /// Hashes (at least one).
    pub hashes: Hashes,
    /// The `custom` object, as signed (Nightlatch puts `custom.nightlatch`
    /// and, in director metadata, `custom.director` here).
    pub custom: Option<Value>,
    /// Fields the specification does not name, kept as read.
    pub unrecognized: Map<String, Value>,
}

impl TargetFile {
    /// A target file entry of `length` bytes with `hashes`.
    pub fn new(length: u64, hashes: Hashes, custom: Option<Value>) -> Self {
        Self {
            length,
            hashes,
            custom,
            unrecognized: Map::new(),
        }
    }

    /// The SHA-256 as lower-case hex, if listed.
    pub fn sha256_hex(&self) -> Option<String> {
        self.hashes.hex("sha256")
    }

    /// A target file entry for `bytes`, with their SHA-256 and SHA-512.
    pub fn from_data(bytes: &[u8], custom: Option<Value>) -> Self {
        use sha2::{Digest, Sha256, Sha512};
        let mut hashes = BTreeMap::new();
        hashes.insert("sha256".into(), Sha256::digest(bytes).to_vec());
        hashes.insert("sha512".into(), Sha512::digest(bytes).to_vec());
        Self {
            length: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
            hashes: Hashes(hashes),
            custom,
            unrecognized: Map::new(),
        }
    }

    fn from_json(value: &Value, role: Role) -> Result<Self> {
        let mut f = Fields::new(value, role, "a target is not an object")?;
        let length = f.u64("length", "a target's length is not an unsigned integer")?;
        let hashes = Hashes::from_json(f.take("hashes"), role)?;
        let custom = f.take("custom");
        Ok(Self {
            length,
            hashes,
            custom,
            unrecognized: f.rest(),
        })
    }

    /// `{"length": N, "hashes": {...}, "custom": ...}`.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("length".into(), self.length.into());
        obj.insert("hashes".into(), self.hashes.to_json());
        if let Some(c) = &self.custom {
            obj.insert("custom".into(), c.clone());
        }
        extend(&mut obj, &self.unrecognized);
        Value::Object(obj)
    }
}

impl Serialize for TargetFile {
    fn serialize<S: Serializer>(&self, serializer: S) -> core::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
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
    /// What the role is trusted for, for messages: its path patterns or
    /// its hash prefixes.
    pub fn scope(&self) -> String {
        match (&self.paths, &self.path_hash_prefixes) {
            (_, Some(prefixes)) => alloc::format!("path hash prefixes {}", prefixes.join(", ")),
            (Some(paths), None) => alloc::format!("paths {}", paths.join(", ")),
            (None, None) => "no paths".into(),
        }
    }

    /// Whether this role is trusted for `target`: TUF's rule as python-tuf
    /// applies it (`path_hash_prefixes`, else `paths` matched per segment
    /// with `fnmatch`), the one function the host tools and the server's
    /// upload check call too ([`crate::paths`]).
    pub fn is_delegated_path(&self, target: &str) -> bool {
        crate::paths::is_delegated_path(
            self.paths.as_deref(),
            self.path_hash_prefixes.as_deref(),
            target,
        )
    }

    fn from_json(value: &Value, role: Role) -> Result<Self> {
        let mut f = Fields::new(value, role, "a delegated role is not an object")?;
        let name = f.string("name", "a delegated role has no name")?;
        let keys = RoleKeys::from_json(&f.obj, role)?;
        let terminating = f
            .opt_bool(
                "terminating",
                "a delegated role's terminating is not true or false",
            )?
            .unwrap_or(false);
        let paths = f.opt_strings("paths", "a delegated role's paths is not a list of strings")?;
        let path_hash_prefixes = f.opt_strings(
            "path_hash_prefixes",
            "a delegated role's path_hash_prefixes is not a list of strings",
        )?;
        if paths.is_some() && path_hash_prefixes.is_some() {
            return Err(f.err("a delegated role has both paths and path_hash_prefixes"));
        }
        Ok(Self {
            name,
            keys,
            terminating,
            paths,
            path_hash_prefixes,
        })
    }

    /// The role's object in `delegations.roles`.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("name".into(), self.name.clone().into());
        obj.insert("keyids".into(), self.keys.keyids.clone().into());
        obj.insert("threshold".into(), self.keys.threshold.into());
        obj.insert("terminating".into(), self.terminating.into());
        if let Some(p) = &self.paths {
            obj.insert("paths".into(), p.clone().into());
        }
        if let Some(p) = &self.path_hash_prefixes {
            obj.insert("path_hash_prefixes".into(), p.clone().into());
        }
        Value::Object(obj)
    }
}

/// The delegations of a targets role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delegations {
    /// Keys of the delegated roles.
    pub keys: Keys,
    /// Delegated roles, in priority order.
    pub roles: Vec<DelegatedRole>,
    /// Fields the specification does not name, kept as read.
    pub unrecognized: Map<String, Value>,
}

/// Top-level role names a delegated role may not take.
const TOP_LEVEL: [&str; 4] = ["root", "timestamp", "snapshot", "targets"];

impl Delegations {
    fn from_json(value: &Value, role: Role) -> Result<Self> {
        let mut f = Fields::new(value, role, "delegations is not an object")?;
        let keys = keys_from_json(f.take("keys").as_ref(), role)?;
        if f.obj.contains_key("succinct_roles") {
            return Err(f.err("succinct_roles (hash-bin delegation) is not supported"));
        }
        let Some(Value::Array(raw_roles)) = f.take("roles") else {
            return Err(f.err("delegations has no roles list"));
        };
        let mut roles: Vec<DelegatedRole> = Vec::with_capacity(raw_roles.len());
        for r in &raw_roles {
            let r = DelegatedRole::from_json(r, role)?;
            if TOP_LEVEL.contains(&r.name.as_str()) {
                return Err(f.err("a delegated role takes a top-level role's name"));
            }
            if roles.iter().any(|o| o.name == r.name) {
                return Err(f.err("a delegated role is listed twice"));
            }
            roles.push(r);
        }
        Ok(Self {
            keys,
            roles,
            unrecognized: f.rest(),
        })
    }

    /// The `delegations` object.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("keys".into(), keys_to_json(&self.keys));
        let roles: Vec<Value> = self.roles.iter().map(DelegatedRole::to_json).collect();
        obj.insert("roles".into(), Value::Array(roles));
        extend(&mut obj, &self.unrecognized);
        Value::Object(obj)
    }
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
    /// Fields the specification does not name, kept as read.
    pub unrecognized: Map<String, Value>,
}

impl Targets {
    /// Targets metadata with no targets and no delegations.
    pub fn new(version: u64, expires: u64) -> Self {
        Self {
            header: Header::new(version, expires),
            targets: BTreeMap::new(),
            delegations: None,
            unrecognized: Map::new(),
        }
    }

    /// The delegated role called `name`, if this role delegates to it.
    pub fn delegation(&self, name: &str) -> Option<&DelegatedRole> {
        self.delegations
            .as_ref()
            .and_then(|d| d.roles.iter().find(|r| r.name == name))
    }

    /// Parse the `signed` part of targets metadata of `role`.
    pub fn parse(env: &Envelope, role: Role) -> Result<Self> {
        Self::from_json(&env.signed, role)
    }

    /// Read a targets `signed` object of `role` (top-level or delegated).
    pub fn from_json(signed: &Value, role: Role) -> Result<Self> {
        let mut f = Fields::new(signed, role, "signed is not an object")?;
        let header = f.header("targets")?;
        let targets = f
            .object("targets", "targets is not an object")?
            .iter()
            .map(|(name, t)| Ok((name.clone(), TargetFile::from_json(t, role)?)))
            .collect::<Result<_>>()?;
        let delegations = match f.take("delegations") {
            None => None,
            Some(d) => Some(Delegations::from_json(&d, role)?),
        };
        Ok(Self {
            header,
            targets,
            delegations,
            unrecognized: f.rest(),
        })
    }

    /// The `signed` object.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        self.header.write("targets", &mut obj);
        let targets: Map<String, Value> = self
            .targets
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect();
        obj.insert("targets".into(), Value::Object(targets));
        if let Some(d) = &self.delegations {
            obj.insert("delegations".into(), d.to_json());
        }
        extend(&mut obj, &self.unrecognized);
        Value::Object(obj)
    }
}

serde_via_json!(Targets, |v: &Value| Targets::from_json(v, Role::Targets));
