//! Sign one role's metadata with the keys given on the command line, refusing
//! to produce it below the role's threshold.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::keysource::KeySource;
use crate::metadata::{KeyId, KeyIdOf, Metadata, PublicKey, RoleKeys, Signed};

/// TUF key id of a key source.
pub fn key_id(key: &dyn KeySource) -> KeyId {
    key.public().key_id()
}

/// Sign `meta` with every key in `keys` that belongs to `role`, then require
/// the threshold. `path` and `role_name` name the file in errors.
pub fn sign_role<T: Metadata>(
    meta: &mut Signed<T>,
    keys: &[Box<dyn KeySource>],
    all_keys: &BTreeMap<KeyId, PublicKey>,
    role: &RoleKeys,
    role_name: &str,
    path: &Path,
) -> Result<()> {
    for key in keys {
        if role.keyids.contains(&key_id(key.as_ref())) {
            meta.sign_with(key.as_ref(), path)?;
        }
    }
    meta.require(all_keys, role, &path.display().to_string(), role_name)?;
    Ok(())
}

/// Refuse keys that belong to none of `roles`: a key given by mistake should
/// not go unnoticed.
pub fn refuse_strangers(
    keys: &[Box<dyn KeySource>],
    roles: &[(&str, &RoleKeys)],
    path: &Path,
) -> Result<()> {
    for key in keys {
        let id = key_id(key.as_ref());
        if !roles.iter().any(|(_, r)| r.keyids.contains(&id)) {
            let names: Vec<&str> = roles.iter().map(|(n, _)| *n).collect();
            return Err(Error::KeyNotInRole {
                path: path.to_owned(),
                role: names.join(" or "),
                key_id: id.to_string(),
            });
        }
    }
    Ok(())
}
