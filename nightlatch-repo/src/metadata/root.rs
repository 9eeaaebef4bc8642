//! Root metadata: which keys sign each top-level role, and how many must.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::metadata::key::{check_usable, truncate};
use crate::metadata::{Expiry, KeyId, KeyIdOf, Metadata, PublicKey, SPEC_VERSION, check_header};

/// The four top-level roles, in the order tables show them.
pub const TOP_LEVEL_ROLES: [&str; 4] = ["root", "targets", "snapshot", "timestamp"];

/// Keys and threshold of one role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    /// Key ids allowed to sign.
    pub keyids: Vec<KeyId>,
    /// Valid signatures needed.
    pub threshold: u32,
}

impl RoleKeys {
    /// Check the threshold and key list; every key id must be in `keys`.
    pub fn check(&self, name: &str, keys: &BTreeMap<KeyId, PublicKey>) -> Result<(), String> {
        if self.threshold == 0 {
            return Err(format!("role {name}: threshold must be at least 1"));
        }
        if self.threshold as usize > self.keyids.len() {
            return Err(format!(
                "role {name}: threshold {} but only {} key(s): it can never be met",
                self.threshold,
                self.keyids.len()
            ));
        }
        let unique: BTreeSet<&KeyId> = self.keyids.iter().collect();
        if unique.len() != self.keyids.len() {
            return Err(format!("role {name}: a key id is listed twice"));
        }
        if let Some(missing) = self.keyids.iter().find(|k| !keys.contains_key(k)) {
            return Err(format!("role {name}: key {missing} is not in keys"));
        }
        Ok(())
    }
}

/// Check that every key is usable ([`check_usable`]), listed once, under its
/// own key id.
pub fn check_keys(keys: &BTreeMap<KeyId, PublicKey>) -> Result<(), String> {
    let mut seen: Vec<(&PublicKey, &KeyId)> = Vec::new();
    for (id, key) in keys {
        check_usable(key).map_err(|e| format!("key {id}: {e}"))?;
        if let Some((_, other)) = seen.iter().find(|(k, _)| k.same_key(key)) {
            return Err(format!(
                "keys {other} and {id} are the same key: a key must be listed once"
            ));
        }
        seen.push((key, id));
        if key.key_id() != *id {
            return Err(format!("key listed as {id} has key id {}", key.key_id()));
        }
    }
    Ok(())
}

/// The `signed` object of root metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    /// Always `root`.
    #[serde(rename = "_type")]
    pub kind: String,
    /// TUF specification version.
    pub spec_version: String,
    /// Whether metadata and targets are stored under versioned / hashed names.
    pub consistent_snapshot: bool,
    /// Root version, 1 for the first.
    pub version: u64,
    /// Expiry.
    pub expires: Expiry,
    /// Every key any role uses.
    pub keys: BTreeMap<KeyId, PublicKey>,
    /// The four top-level roles.
    pub roles: BTreeMap<String, RoleKeys>,
}

impl Root {
    /// A new root (consistent snapshots on).
    pub fn new(version: u64, expires: Expiry) -> Self {
        Self {
            kind: Self::TYPE.into(),
            spec_version: SPEC_VERSION.into(),
            consistent_snapshot: true,
            version,
            expires,
            keys: BTreeMap::new(),
            roles: BTreeMap::new(),
        }
    }

    /// The keys and threshold of a top-level role.
    pub fn role(&self, name: &str) -> Option<&RoleKeys> {
        self.roles.get(name)
    }

    /// Set a role's keys and threshold, adding the keys to `keys`.
    pub fn set_role(&mut self, name: &str, keys: &[PublicKey], threshold: u32) {
        let mut keyids = Vec::new();
        for key in keys {
            let id = key.key_id();
            if !keyids.contains(&id) {
                keyids.push(id.clone());
            }
            self.keys.insert(id, key.clone());
        }
        self.roles
            .insert(name.to_owned(), RoleKeys { keyids, threshold });
    }

    /// Drop keys no role uses.
    pub fn prune_keys(&mut self) {
        let used: BTreeSet<KeyId> = self
            .roles
            .values()
            .flat_map(|r| r.keyids.iter().cloned())
            .collect();
        self.keys.retain(|id, _| used.contains(id));
    }

    /// Key ids of the root role.
    pub fn root_keyids(&self) -> &[KeyId] {
        self.roles.get("root").map_or(&[], |r| r.keyids.as_slice())
    }
}

impl Metadata for Root {
    const TYPE: &'static str = "root";

    fn version(&self) -> u64 {
        self.version
    }

    fn expires(&self) -> Expiry {
        self.expires
    }

    fn check_with_protocol(
        signed: &serde_json::Value,
    ) -> Result<(), nightlatch_proto::tuf::TufError> {
        nightlatch_proto::tuf::Root::from_json(signed).map(drop)
    }

    fn validate(&self) -> Result<(), String> {
        check_header(&self.kind, Self::TYPE, &self.spec_version, self.version)?;
        check_keys(&self.keys)?;
        for name in TOP_LEVEL_ROLES {
            let role = self
                .roles
                .get(name)
                .ok_or_else(|| format!("role {name} is missing"))?;
            role.check(name, &self.keys)?;
        }
        if let Some(extra) = self
            .roles
            .keys()
            .find(|r| !TOP_LEVEL_ROLES.contains(&r.as_str()))
        {
            return Err(format!("unknown role {:?}", truncate(extra)));
        }
        Ok(())
    }
}
