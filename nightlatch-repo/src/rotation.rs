//! Root N+1 from root N: add, revoke or replace keys of any top-level role,
//! change thresholds, extend the expiry. The result is unsigned; it becomes
//! valid only with signatures meeting both root N's and root N+1's root
//! thresholds (see [`crate::chain`]).

use crate::metadata::root::TOP_LEVEL_ROLES;
use crate::metadata::{Expiry, KeyId, KeyIdOf, Metadata, PublicKey, Root};

/// One change to a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Give `role` another key.
    Add {
        /// Top-level role.
        role: String,
        /// The key.
        key: PublicKey,
    },
    /// Remove a key from `role`.
    Revoke {
        /// Top-level role.
        role: String,
        /// The key's TUF key id.
        key_id: KeyId,
    },
    /// Set the threshold of `role`.
    Threshold {
        /// Top-level role.
        role: String,
        /// New threshold.
        threshold: u32,
    },
}

/// Check a role name given on the command line.
pub fn check_role(role: &str) -> Result<(), String> {
    if TOP_LEVEL_ROLES.contains(&role) {
        Ok(())
    } else {
        Err(format!(
            "unknown role {role:?}: use one of root, targets, snapshot, timestamp"
        ))
    }
}

/// Apply `changes` to a copy of `prev`, as version `prev.version + 1`
/// expiring at `expires`. Revocations apply first, then additions, then
/// thresholds, so a replacement is `--revoke` plus `--add` in any order.
pub fn rotate(prev: &Root, changes: &[Change], expires: Expiry) -> Result<Root, String> {
    let mut next = prev.clone();
    let version = prev
        .version()
        .checked_add(1)
        .ok_or("root version overflows")?;
    next.set_header(version, expires);
    let mut ordered: Vec<&Change> = changes.iter().collect();
    ordered.sort_by_key(|c| match c {
        Change::Revoke { .. } => 0,
        Change::Add { .. } => 1,
        Change::Threshold { .. } => 2,
    });
    for change in ordered {
        match change {
            Change::Revoke { role, key_id } => {
                check_role(role)?;
                let r = next.role_mut(role).ok_or("role missing")?;
                let before = r.keyids.len();
                r.keyids.retain(|k| k != key_id);
                if r.keyids.len() == before {
                    return Err(format!(
                        "key {key_id} is not a {role} key of root {}",
                        prev.version()
                    ));
                }
            }
            Change::Add { role, key } => {
                check_role(role)?;
                crate::metadata::key::check_usable(key)?;
                let id = key.key_id();
                let r = next.role_mut(role).ok_or("role missing")?;
                if r.keyids.contains(&id) {
                    return Err(format!("key {id} is already a {role} key"));
                }
                r.keyids.push(id.clone());
                next.keys.insert(id, key.clone());
            }
            Change::Threshold { role, threshold } => {
                check_role(role)?;
                let r = next.role_mut(role).ok_or("role missing")?;
                r.threshold = *threshold;
            }
        }
    }
    next.prune_keys();
    next.validate()?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn key(seed: u8) -> PublicKey {
        PublicKey::Ed25519(SigningKey::from_bytes(&[seed; 32]).verifying_key())
    }

    fn root() -> Root {
        let mut r = Root::new(1, 2_000_000_000);
        r.set_role("root", &[key(1), key(2), key(3)], 2);
        for (i, role) in ["targets", "snapshot", "timestamp"].iter().enumerate() {
            r.set_role(role, &[key(10 + i as u8)], 1);
        }
        r
    }

    #[test]
    fn replace_and_raise_threshold() {
        let prev = root();
        let changes = [
            Change::Add {
                role: "root".into(),
                key: key(4),
            },
            Change::Revoke {
                role: "root".into(),
                key_id: key(3).key_id(),
            },
            Change::Threshold {
                role: "root".into(),
                threshold: 3,
            },
        ];
        let next = rotate(&prev, &changes, Expiry::from_unix(2_100_000_000)).unwrap();
        assert_eq!(next.header.version, 2);
        let ids = next.root_keyids();
        assert!(ids.contains(&key(4).key_id()) && !ids.contains(&key(3).key_id()));
        assert!(
            !next.keys.contains_key(&key(3).key_id()),
            "unused key pruned"
        );
        assert_eq!(next.role("root").unwrap().threshold, 3);
    }

    #[test]
    fn refuses_impossible_rotations() {
        let prev = root();
        let exp = Expiry::from_unix(2_100_000_000);
        let too_high = [Change::Threshold {
            role: "root".into(),
            threshold: 4,
        }];
        assert!(rotate(&prev, &too_high, exp).is_err());
        let unknown = [Change::Revoke {
            role: "root".into(),
            key_id: key(9).key_id(),
        }];
        assert!(rotate(&prev, &unknown, exp).is_err());
        let twice = [Change::Add {
            role: "root".into(),
            key: key(1),
        }];
        assert!(rotate(&prev, &twice, exp).is_err());
        let bad_role = [Change::Threshold {
            role: "mirror".into(),
            threshold: 1,
        }];
        assert!(rotate(&prev, &bad_role, exp).is_err());
        let empty = [Change::Revoke {
            role: "targets".into(),
            key_id: key(10).key_id(),
        }];
        assert!(rotate(&prev, &empty, exp).is_err());
    }
}
