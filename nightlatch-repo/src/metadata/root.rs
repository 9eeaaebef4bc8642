//! Root metadata: which keys sign each top-level role, and how many must.

use std::collections::{BTreeMap, BTreeSet};

use crate::metadata::key::{check_usable, truncate};
use crate::metadata::{KeyId, KeyIdOf, Metadata, PublicKey, RoleKeys, Root, metadata_header};

/// The four top-level roles, in the order tables show them.
pub const TOP_LEVEL_ROLES: [&str; 4] = ["root", "targets", "snapshot", "timestamp"];

/// Check a role's threshold and key list: a threshold that can be met,
/// every key id once and in `keys`.
pub fn check_role(
    name: &str,
    role: &RoleKeys,
    keys: &BTreeMap<KeyId, PublicKey>,
) -> Result<(), String> {
    if role.threshold == 0 {
        return Err(format!("role {name}: threshold must be at least 1"));
    }
    if role.threshold as usize > role.keyids.len() {
        return Err(format!(
            "role {name}: threshold {} but only {} key(s): it can never be met",
            role.threshold,
            role.keyids.len()
        ));
    }
    let unique: BTreeSet<&KeyId> = role.keyids.iter().collect();
    if unique.len() != role.keyids.len() {
        return Err(format!("role {name}: a key id is listed twice"));
    }
    if let Some(missing) = role.keyids.iter().find(|k| !keys.contains_key(*k)) {
        return Err(format!(
            "role {name}: key {} is not in keys",
            truncate(missing)
        ));
    }
    Ok(())
}

/// Check that every key is usable ([`check_usable`]), listed once, under its
/// own key id.
pub fn check_keys(keys: &BTreeMap<KeyId, PublicKey>) -> Result<(), String> {
    let mut seen: Vec<(&PublicKey, &KeyId)> = Vec::new();
    for (id, key) in keys {
        let id_text = truncate(id);
        check_usable(key).map_err(|e| format!("key {id_text}: {e}"))?;
        if let Some((_, other)) = seen.iter().find(|(k, _)| k.same_key(key)) {
            return Err(format!(
                "keys {other} and {id_text} are the same key: a key must be listed once"
            ));
        }
        seen.push((key, id));
        if key.key_id() != *id {
            return Err(format!(
                "key listed as {id_text} has key id {}",
                key.key_id()
            ));
        }
    }
    Ok(())
}

impl Metadata for Root {
    const TYPE: &'static str = "root";
    metadata_header!();

    fn validate(&self) -> Result<(), String> {
        check_keys(&self.keys)?;
        for (name, role) in self.roles() {
            check_role(name, role, &self.keys)?;
        }
        Ok(())
    }
}
