//! Signed metadata: `{"signatures": [...], "signed": {...}}`, canonical JSON,
//! signing through a [`KeySource`], and counting valid signatures against a
//! role's threshold.

use std::collections::BTreeMap;
use std::path::Path;

use ed25519_dalek::Verifier;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::fsio::read_limited;
use crate::keysource::KeySource;
use crate::metadata::{KeyId, MAX_METADATA_LEN, Metadata, PublicKey, RoleKeys};

/// One signature: the signer's TUF key id and the hex Ed25519 signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// TUF key id of the signer.
    pub keyid: KeyId,
    /// Signature over the canonical JSON of `signed`, hex.
    pub sig: String,
}

#[derive(Deserialize)]
struct Wire {
    signatures: Vec<Signature>,
    signed: Value,
}

#[derive(Serialize)]
struct WireOut<'a> {
    signatures: &'a [Signature],
    signed: &'a Value,
}

/// Metadata with its signatures. `raw` is the exact `signed` object that was
/// read (or built), so signatures are made and checked over it.
#[derive(Debug, Clone)]
pub struct Signed<T> {
    /// The typed view of `signed`.
    pub signed: T,
    raw: Value,
    /// The signatures, one per key at most.
    pub signatures: Vec<Signature>,
}

/// How the signatures on a file count for one role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Role keys whose signature verifies.
    pub valid: Vec<KeyId>,
    /// Role keys whose signature does not verify.
    pub invalid: Vec<KeyId>,
    /// Signatures by keys that are not keys of the role.
    pub outside: Vec<KeyId>,
    /// Valid signatures needed.
    pub threshold: u32,
}

impl Tally {
    /// Whether the threshold is met.
    pub fn met(&self) -> bool {
        self.valid.len() >= self.threshold as usize
    }
}

/// Canonical JSON (OLPC / securesystemslib) of a value: what TUF signs.
pub fn canonical_json(value: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, olpc_cjson::CanonicalFormatter::new());
    value.serialize(&mut ser).map_err(|e| Error::Canonical {
        reason: e.to_string(),
    })?;
    Ok(out)
}

impl<T: Metadata> Signed<T> {
    /// Unsigned metadata.
    pub fn new(signed: T) -> Result<Self> {
        signed.validate().map_err(|reason| Error::Canonical {
            reason: format!("refusing to build invalid {} metadata: {reason}", T::TYPE),
        })?;
        let raw = serde_json::to_value(&signed).map_err(|e| Error::Canonical {
            reason: e.to_string(),
        })?;
        Ok(Self {
            signed,
            raw,
            signatures: Vec::new(),
        })
    }

    /// Parse metadata read from `path` (named in errors).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self> {
        let malformed = |source| Error::Malformed {
            path: path.to_owned(),
            what: T::TYPE,
            source,
        };
        let wire: Wire = serde_json::from_slice(bytes).map_err(malformed)?;
        let signed: T = serde_json::from_value(wire.signed.clone()).map_err(malformed)?;
        let invalid = |reason: String| Error::invalid(path, T::TYPE, reason);
        signed.validate().map_err(invalid)?;
        for (i, s) in wire.signatures.iter().enumerate() {
            if wire.signatures[..i].iter().any(|o| o.keyid == s.keyid) {
                return Err(invalid(format!("key {} signed twice", s.keyid)));
            }
        }
        // Canonical form must exist (no floats): checked once here.
        canonical_json(&wire.signed).map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            signed,
            raw: wire.signed,
            signatures: wire.signatures,
        })
    }

    /// Read and parse a metadata file (at most 16 MiB).
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = read_limited(path, MAX_METADATA_LEN)?;
        Self::parse(&bytes, path)
    }

    /// The bytes signatures cover.
    pub fn canonical(&self) -> Result<Vec<u8>> {
        canonical_json(&self.raw)
    }

    /// The file contents: pretty JSON with a final newline.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let wire = WireOut {
            signatures: &self.signatures,
            signed: &self.raw,
        };
        let mut bytes = serde_json::to_vec_pretty(&wire).map_err(|e| Error::Canonical {
            reason: e.to_string(),
        })?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Sign with `key` and append the signature (checked before it is kept).
    /// Refuses a key that has already signed.
    pub fn sign_with(&mut self, key: &dyn KeySource, path: &Path) -> Result<KeyId> {
        let public = key.public_key();
        let key_id = PublicKey::ed25519(public).key_id();
        if self.signatures.iter().any(|s| s.keyid == key_id) {
            return Err(Error::AlreadySigned {
                path: path.to_owned(),
                key_id: key_id.to_string(),
            });
        }
        let message = self.canonical()?;
        let signature = key.sign(&message)?;
        if public.verify(&message, &signature).is_err() {
            return Err(Error::BadSignature {
                path: path.to_owned(),
                key_id: key_id.to_string(),
                reason: "the key source returned a signature that does not verify",
            });
        }
        self.signatures.push(Signature {
            keyid: key_id.clone(),
            sig: hex::encode(signature.to_bytes()),
        });
        Ok(key_id)
    }

    /// Count the signatures that verify for `role`, whose keys are in `keys`.
    pub fn tally(&self, keys: &BTreeMap<KeyId, PublicKey>, role: &RoleKeys) -> Result<Tally> {
        let message = self.canonical()?;
        let mut tally = Tally {
            threshold: role.threshold,
            ..Tally::default()
        };
        for s in &self.signatures {
            if !role.keyids.contains(&s.keyid) {
                tally.outside.push(s.keyid.clone());
                continue;
            }
            let ok = keys
                .get(&s.keyid)
                .and_then(|k| k.verifying_key().ok())
                .is_some_and(|k| verify_hex(&k, &message, &s.sig));
            if ok {
                tally.valid.push(s.keyid.clone());
            } else {
                tally.invalid.push(s.keyid.clone());
            }
        }
        Ok(tally)
    }

    /// Refuse unless the threshold of `role` is met; `what` names the file.
    pub fn require(
        &self,
        keys: &BTreeMap<KeyId, PublicKey>,
        role: &RoleKeys,
        what: &str,
        role_name: &str,
    ) -> Result<Tally> {
        let tally = self.tally(keys, role)?;
        if !tally.met() {
            return Err(Error::BelowThreshold {
                what: what.to_owned(),
                role: role_name.to_owned(),
                valid: tally.valid.len(),
                threshold: role.threshold,
            });
        }
        Ok(tally)
    }
}

/// Whether `sig_hex` is a valid signature of `message` by `key`.
pub fn verify_hex(key: &ed25519_dalek::VerifyingKey, message: &[u8], sig_hex: &str) -> bool {
    let Ok(bytes) = hex::decode(sig_hex) else {
        return false;
    };
    let Ok(bytes) = <[u8; 64]>::try_from(bytes.as_slice()) else {
        return false;
    };
    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&bytes))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_and_compacts() {
        let v: Value = serde_json::from_str(r#"{"b": 1, "a": [true, "x\"y"]}"#).unwrap();
        assert_eq!(canonical_json(&v).unwrap(), br#"{"a":[true,"x\"y"],"b":1}"#);
        let float: Value = serde_json::from_str(r#"{"a": 1.5}"#).unwrap();
        assert!(canonical_json(&float).is_err());
    }
}
