//! Verify a chain of roots `1.root.json … N.root.json` as a TUF client walks
//! it, and more strictly:
//!
//! * the first root is the trust anchor and must meet its own threshold;
//! * each next root must be exactly one version higher (no gap), and be signed
//!   by a threshold of the previous root's root keys *and* of its own;
//! * every signature must verify and come from a key of one of those two
//!   roots: a signature by a key that an earlier rotation revoked is refused
//!   by name, any other stranger's signature too.

use crate::metadata::Metadata as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::metadata::signed::verify_hex;
use crate::metadata::{Expiry, KeyId, Root, Signed};

/// What a verified link showed.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    /// The file.
    pub path: PathBuf,
    /// Root version.
    pub version: u64,
    /// Keys whose signatures verified.
    pub signers: Vec<KeyId>,
    /// Valid signatures by the previous root's root keys / its threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_valid: Option<(usize, u32)>,
    /// Valid signatures by its own root keys / its threshold.
    pub own_valid: (usize, u32),
    /// Expiry.
    pub expires: Expiry,
}

/// Check every signature on `next` (signed by `prev`'s and its own root keys).
fn check_signatures(
    path: &Path,
    next: &Signed<Root>,
    prev: Option<&Root>,
    revoked: &BTreeMap<KeyId, u64>,
) -> Result<Vec<KeyId>> {
    let message = next.canonical()?;
    let mut signers = Vec::new();
    for s in &next.signatures {
        let key = next
            .signed
            .root_keyids()
            .contains(&s.keyid)
            .then(|| next.signed.keys.get(&s.keyid))
            .flatten()
            .or_else(|| {
                prev.filter(|p| p.root_keyids().contains(&s.keyid))
                    .and_then(|p| p.keys.get(&s.keyid))
            });
        let Some(key) = key else {
            if let Some(&revoked_in) = revoked.get(&s.keyid) {
                return Err(Error::RevokedSigner {
                    path: path.to_owned(),
                    key_id: s.keyid.to_string(),
                    revoked_in,
                });
            }
            return Err(Error::BadSignature {
                path: path.to_owned(),
                key_id: s.keyid.to_string(),
                reason: "the key is not a root key of this root or the one before it",
            });
        };
        let ok = verify_hex(key, &message, &s.sig);
        if !ok {
            return Err(Error::BadSignature {
                path: path.to_owned(),
                key_id: s.keyid.to_string(),
                reason: "the signature does not verify",
            });
        }
        signers.push(s.keyid.clone());
    }
    Ok(signers)
}

/// Verify that `next` may follow `prev` (`next_path` is named in errors).
pub fn check_link(prev: &Signed<Root>, next: &Signed<Root>, next_path: &Path) -> Result<Link> {
    check_link_with(prev, next, next_path, &BTreeMap::new())
}

fn check_link_with(
    prev: &Signed<Root>,
    next: &Signed<Root>,
    path: &Path,
    revoked: &BTreeMap<KeyId, u64>,
) -> Result<Link> {
    let Some(expected) = prev.signed.version().checked_add(1) else {
        return Err(Error::usage(
            format!(
                "{}: root version {} is the largest possible, nothing can follow it",
                path.display(),
                prev.signed.version()
            ),
            "this root was not made by nightlatch-keys: do not trust it",
        ));
    };
    if next.signed.version() != expected {
        return Err(Error::VersionGap {
            path: path.to_owned(),
            expected,
            found: next.signed.version(),
        });
    }
    let signers = check_signatures(path, next, Some(&prev.signed), revoked)?;
    let what = |by: u64| {
        format!(
            "{} (root version {}), by the keys of root version {by}",
            path.display(),
            next.signed.version()
        )
    };
    let prev_role = prev
        .signed
        .role("root")
        .cloned()
        .unwrap_or(crate::metadata::RoleKeys {
            keyids: Vec::new(),
            threshold: 1,
        });
    let by_prev = next.require(
        &prev.signed.keys,
        &prev_role,
        &what(prev.signed.version()),
        "root",
    )?;
    let own = own_tally(next, path)?;
    Ok(Link {
        path: path.to_owned(),
        version: next.signed.version(),
        signers,
        previous_valid: Some((by_prev.valid.len(), by_prev.threshold)),
        own_valid: own,
        expires: next.signed.expires(),
    })
}

fn own_tally(root: &Signed<Root>, path: &Path) -> Result<(usize, u32)> {
    let role = root
        .signed
        .role("root")
        .cloned()
        .unwrap_or(crate::metadata::RoleKeys {
            keyids: Vec::new(),
            threshold: 1,
        });
    let what = format!(
        "{} (root version {})",
        path.display(),
        root.signed.version()
    );
    let t = root.require(&root.signed.keys, &role, &what, "root")?;
    Ok((t.valid.len(), t.threshold))
}

/// Verify a whole chain, the first file being the trusted root.
pub fn verify_chain(paths: &[PathBuf]) -> Result<Vec<Link>> {
    let Some(first_path) = paths.first() else {
        return Err(Error::usage(
            "no root files given",
            "pass 1.root.json 2.root.json … in order",
        ));
    };
    let first = Signed::<Root>::load(first_path)?;
    let mut revoked = BTreeMap::new();
    let signers = check_signatures(first_path, &first, None, &revoked)?;
    let own = own_tally(&first, first_path)?;
    let mut links = vec![Link {
        path: first_path.clone(),
        version: first.signed.version(),
        signers,
        previous_valid: None,
        own_valid: own,
        expires: first.signed.expires(),
    }];
    let mut prev = first;
    for path in &paths[1..] {
        let next = Signed::<Root>::load(path)?;
        let link = check_link_with(&prev, &next, path, &revoked)?;
        for id in prev.signed.root_keyids() {
            if !next.signed.root_keyids().contains(id) {
                revoked.insert(id.clone(), next.signed.version());
            }
        }
        for id in next.signed.root_keyids() {
            revoked.remove(id);
        }
        links.push(link);
        prev = next;
    }
    Ok(links)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{KeyIdOf, PublicKey, Signature};
    use ed25519_dalek::{Signer, SigningKey};

    fn root(version: u64, sk: &SigningKey) -> Signed<Root> {
        let mut r = Root::new(version, 2_000_000_000);
        let pk = PublicKey::Ed25519(sk.verifying_key());
        for role in crate::metadata::root::TOP_LEVEL_ROLES {
            r.set_role(role, std::slice::from_ref(&pk), 1);
        }
        let mut s = Signed::new(r).unwrap();
        let sig = sk.sign(&s.canonical().unwrap());
        s.signatures.push(Signature {
            keyid: pk.key_id(),
            sig: hex::encode(sig.to_bytes()),
        });
        s
    }

    #[test]
    fn nothing_follows_the_largest_version() {
        let sk = SigningKey::from_bytes(&[3; 32]);
        let last = root(u64::MAX, &sk);
        let e = check_link(&last, &last.clone(), Path::new("x.json")).unwrap_err();
        assert!(e.to_string().contains("largest possible"), "{e}");
        assert!(check_link(&root(u64::MAX - 1, &sk), &last, Path::new("x.json")).is_ok());
    }
}
