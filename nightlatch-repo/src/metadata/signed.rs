//! Signed metadata: `{"signatures": [...], "signed": {...}}`, canonical JSON,
//! signing through a [`KeySource`], and counting valid signatures against a
//! role's threshold.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::fsio::read_limited;
use crate::keysource::KeySource;
use crate::metadata::{
    KeyId, KeyIdOf, MAX_METADATA_LEN, Metadata, PublicKey, RoleKeys, parse_key_id,
};

/// Most signatures one metadata file may carry.
pub const MAX_SIGNATURES: usize = 1024;

/// One signature: the signer's TUF key id and the hex signature (in the
/// signing key's scheme).
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

/// Canonical JSON of a value, byte for byte as securesystemslib's
/// `encode_canonical` (python-tuf's signing form) writes it: what TUF signs.
/// The one implementation, shared with the lock: [`nightlatch_proto::cjson`].
pub fn canonical_json(value: &Value) -> Result<Vec<u8>> {
    nightlatch_proto::cjson::to_vec(value).map_err(|e| Error::Canonical {
        reason: e.to_string(),
    })
}

/// Refuses JSON with an object that has the same key twice (which
/// `serde_json::Value` would silently collapse to the last one).
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeysVisitor)
    }
}

struct NoDuplicateKeysVisitor;

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeysVisitor {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut seen = std::collections::BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value::<NoDuplicateKeys>()?;
            if !seen.insert(key) {
                return Err(serde::de::Error::custom(
                    "an object has the same member name twice",
                ));
            }
        }
        Ok(NoDuplicateKeys)
    }
}

/// Refuse `bytes` if any JSON object in it repeats a member name.
pub fn refuse_duplicate_keys(bytes: &[u8]) -> std::result::Result<(), serde_json::Error> {
    serde_json::from_slice::<NoDuplicateKeys>(bytes).map(|_| ())
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
        refuse_duplicate_keys(bytes).map_err(malformed)?;
        let wire: Wire = serde_json::from_slice(bytes).map_err(malformed)?;
        let invalid = |reason: String| Error::invalid(path, T::TYPE, reason);
        if wire.signatures.len() > MAX_SIGNATURES {
            return Err(invalid(format!(
                "{} signatures, more than the {MAX_SIGNATURES} accepted",
                wire.signatures.len()
            )));
        }
        let mut seen = std::collections::BTreeSet::new();
        for s in &wire.signatures {
            parse_key_id(&s.keyid).map_err(invalid)?;
            if !seen.insert(&s.keyid) {
                return Err(invalid(format!("key {} signed twice", s.keyid)));
            }
        }
        // The protocol crate's reader, the one the lock runs: what the tools
        // take in, a lock would.
        let signed: T = serde_json::from_value(wire.signed.clone()).map_err(malformed)?;
        signed.validate().map_err(invalid)?;
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
        let public = key.public();
        let key_id = public.key_id();
        if self.signatures.iter().any(|s| s.keyid == key_id) {
            return Err(Error::AlreadySigned {
                path: path.to_owned(),
                key_id: key_id.to_string(),
            });
        }
        let message = self.canonical()?;
        let signature = key.sign(&message)?;
        if !public.verify(&message, &signature) {
            return Err(Error::BadSignature {
                path: path.to_owned(),
                key_id: key_id.to_string(),
                reason: "the key source returned a signature that does not verify",
            });
        }
        self.signatures.push(Signature {
            keyid: key_id.clone(),
            sig: hex::encode(signature),
        });
        Ok(key_id)
    }

    /// Count the signatures that verify for `role`, whose keys are in `keys`
    /// (each key's own scheme, by the protocol crate's verifier).
    pub fn tally(&self, keys: &BTreeMap<KeyId, PublicKey>, role: &RoleKeys) -> Result<Tally> {
        let message = self.canonical()?;
        let mut tally = Tally {
            threshold: role.threshold,
            ..Tally::default()
        };
        // Count distinct keys, not key ids.
        let mut counted: Vec<&PublicKey> = Vec::new();
        for s in &self.signatures {
            if !role.keyids.contains(&s.keyid) {
                tally.outside.push(s.keyid.clone());
                continue;
            }
            match keys.get(&s.keyid) {
                Some(key) if verify_hex(key, &message, &s.sig) => {
                    if !counted.iter().any(|k| k.same_key(key)) {
                        counted.push(key);
                        tally.valid.push(s.keyid.clone());
                    }
                }
                _ => tally.invalid.push(s.keyid.clone()),
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
pub fn verify_hex(key: &PublicKey, message: &[u8], sig_hex: &str) -> bool {
    hex::decode(sig_hex).is_ok_and(|sig| key.verify(message, &sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The form itself is tested in `nightlatch-proto` (against
    /// securesystemslib); here, that a float becomes this crate's error.
    #[test]
    fn canonical_json_is_the_shared_one() {
        let v: Value = serde_json::from_str(r#"{"b": 1, "a": [true, "x\"y"]}"#).unwrap();
        assert_eq!(canonical_json(&v).unwrap(), br#"{"a":[true,"x\"y"],"b":1}"#);
        let float: Value = serde_json::from_str(r#"{"a": [1.5]}"#).unwrap();
        let e = canonical_json(&float).unwrap_err();
        assert!(matches!(e, Error::Canonical { .. }), "{e}");
        assert!(e.to_string().contains("1.5 is not an integer"), "{e}");
    }

    #[test]
    fn many_signatures_are_refused_quickly() {
        let sigs = |n: usize, dup: bool| {
            let list: Vec<String> = (0..n)
                .map(|i| {
                    let id = if dup && i == n - 1 { 0 } else { i };
                    format!(r#"{{"keyid":"{id:064x}","sig":"00"}}"#)
                })
                .collect();
            format!(
                r#"{{"signatures":[{}],"signed":{{"_type":"timestamp"}}}}"#,
                list.join(",")
            )
        };
        let start = std::time::Instant::now();
        let e = Signed::<crate::metadata::Timestamp>::parse(
            sigs(40_000, false).as_bytes(),
            Path::new("t.json"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("more than"), "{e}");
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        let e = Signed::<crate::metadata::Timestamp>::parse(
            sigs(1000, true).as_bytes(),
            Path::new("t.json"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("signed twice"), "{e}");
    }

    #[test]
    fn duplicate_member_names_are_refused() {
        assert!(refuse_duplicate_keys(br#"{"a":1,"b":{"c":[{"d":1}]}}"#).is_ok());
        assert!(refuse_duplicate_keys(br#"{"a":1,"a":2}"#).is_err());
        assert!(refuse_duplicate_keys(br#"[{"x":{"k":1,"k":1}}]"#).is_err());
        let doc = br#"{"signatures":[],"signed":{"_type":"timestamp","_type":"timestamp"}}"#;
        let e = Signed::<crate::metadata::Timestamp>::parse(doc, Path::new("t.json"));
        assert!(e.unwrap_err().to_string().contains("t.json"));
    }
}
