//! The signed envelope `{"signatures": [...], "signed": {...}}`, the keys
//! and threshold a role is given, and threshold verification.
//!
//! Signatures cover the canonical JSON ([`cjson`](crate::cjson)) of the
//! `signed` object exactly as it was received (unknown fields included).
//! Key ids are taken as the delegating metadata lists them and are not
//! recomputed (as python-tuf); a threshold counts distinct keys, so one key
//! listed under two ids counts once.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

use super::encoding::{hex_decode, hex_encode};
use super::error::{Result, Role, TufError};
use super::key::{Keys, PublicKey, keyids_unique};
use crate::cjson;

/// The keys and threshold a delegator assigns to a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleKeys {
    /// Key ids (unique).
    pub keyids: Vec<String>,
    /// Valid signatures needed (≥ 1).
    pub threshold: u32,
}

impl RoleKeys {
    /// Read `{"keyids": [...], "threshold": N}` (or the same fields of a
    /// delegated role's object): key ids unique, threshold 1 to 2³²−1.
    pub fn from_json(obj: &Map<String, Value>, role: Role) -> Result<Self> {
        let keyids = obj
            .get("keyids")
            .and_then(Value::as_array)
            .ok_or(TufError::malformed(role, "a role has no keyids list"))?
            .iter()
            .map(|k| {
                k.as_str()
                    .map(String::from)
                    .ok_or(TufError::malformed(role, "a key id is not a string"))
            })
            .collect::<Result<Vec<String>>>()?;
        let threshold = obj
            .get("threshold")
            .and_then(Value::as_u64)
            .and_then(|t| u32::try_from(t).ok())
            .filter(|t| *t >= 1)
            .ok_or(TufError::malformed(
                role,
                "a role's threshold is not an integer from 1 to 4294967295",
            ))?;
        if !keyids_unique(&keyids) {
            return Err(TufError::malformed(role, "a role lists a key id twice"));
        }
        Ok(Self { keyids, threshold })
    }

    /// `{"keyids": [...], "threshold": N}`.
    pub fn to_json(&self) -> Value {
        json!({"keyids": self.keyids, "threshold": self.threshold})
    }

    /// Same keys and threshold (key order ignored).
    pub fn same_as(&self, other: &RoleKeys) -> bool {
        let mut a = self.keyids.clone();
        let mut b = other.keyids.clone();
        a.sort();
        b.sort();
        a == b && self.threshold == other.threshold
    }

    /// Distinct keys of this role (looked up in `keys`) whose signature in
    /// `signatures` over `msg` is valid, stopping once `stop_at` are found.
    pub fn count_valid(
        &self,
        keys: &Keys,
        signatures: &[(String, Vec<u8>)],
        msg: &[u8],
        stop_at: u32,
    ) -> u32 {
        let by_id: BTreeMap<&str, &[u8]> = signatures
            .iter()
            .map(|(id, sig)| (id.as_str(), sig.as_slice()))
            .collect();
        let mut seen: Vec<&PublicKey> = Vec::new();
        for keyid in &self.keyids {
            if u32::try_from(seen.len()).is_ok_and(|n| n >= stop_at) {
                break;
            }
            let Some(key) = keys.get(keyid) else {
                continue;
            };
            let Some(sig) = by_id.get(keyid.as_str()) else {
                continue;
            };
            if !seen.iter().any(|k| k.same_key(key)) && key.verify(msg, sig) {
                seen.push(key);
            }
        }
        u32::try_from(seen.len()).unwrap_or(u32::MAX)
    }
}

impl Serialize for RoleKeys {
    fn serialize<S: Serializer>(&self, serializer: S) -> core::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// Parsed but not yet verified metadata: the `signed` value, its canonical
/// bytes and the signatures.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The `signed` object as received.
    pub signed: Value,
    canonical: Vec<u8>,
    signatures: Vec<(String, Vec<u8>)>,
}

impl Envelope {
    /// Parse `bytes` as metadata of `role` (the `_type` is checked later,
    /// by the role's parser).
    pub fn parse(bytes: &[u8], role: Role) -> Result<Self> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|_| TufError::malformed(role, "not JSON"))?;
        Self::from_json(value, role)
    }

    /// The envelope of an already parsed JSON value.
    pub fn from_json(value: Value, role: Role) -> Result<Self> {
        let Value::Object(mut obj) = value else {
            return Err(TufError::malformed(role, "not a JSON object"));
        };
        let signed = obj
            .remove("signed")
            .filter(Value::is_object)
            .ok_or(TufError::malformed(role, "no signed object"))?;
        let raw = obj
            .remove("signatures")
            .ok_or(TufError::malformed(role, "no signatures list"))?;
        let Value::Array(raw) = raw else {
            return Err(TufError::malformed(role, "signatures is not a list"));
        };
        let mut env = Self::new(signed, role)?;
        let mut ids = BTreeSet::new();
        for s in &raw {
            let (Some(keyid), Some(sig)) = (
                s.get("keyid").and_then(Value::as_str),
                s.get("sig").and_then(Value::as_str),
            ) else {
                return Err(TufError::malformed(
                    role,
                    "a signature is not {\"keyid\": string, \"sig\": string}",
                ));
            };
            // A signature that is not hex can never verify; keep it empty.
            let sig = hex_decode(sig).unwrap_or_default();
            if !ids.insert(keyid) {
                return Err(TufError::malformed(
                    role,
                    "two signatures carry the same key id",
                ));
            }
            env.signatures.push((keyid.into(), sig));
        }
        Ok(env)
    }

    /// An unsigned envelope around `signed` (for a writer to sign
    /// [`Self::canonical`] and [`Self::add_signature`]).
    pub fn new(signed: Value, role: Role) -> Result<Self> {
        let canonical = cjson::to_vec(&signed).map_err(|_| {
            TufError::malformed(role, "signed holds a number that is not an integer")
        })?;
        Ok(Self {
            signed,
            canonical,
            signatures: Vec::new(),
        })
    }

    /// Add a signature; `false` (nothing added) when one by the same key
    /// id is already there, which python-tuf refuses.
    #[must_use]
    pub fn add_signature(&mut self, keyid: String, sig: Vec<u8>) -> bool {
        if self.signatures.iter().any(|(id, _)| *id == keyid) {
            return false;
        }
        self.signatures.push((keyid, sig));
        true
    }

    /// The canonical JSON (OLPC) of the `signed` object: the bytes every
    /// signature covers.
    pub fn canonical(&self) -> &[u8] {
        &self.canonical
    }

    /// The signatures: key id and signature bytes, in the order listed.
    pub fn signatures(&self) -> &[(String, Vec<u8>)] {
        &self.signatures
    }

    /// Check that at least `role_keys.threshold` distinct keys of
    /// `role_keys` (looked up in `keys`) signed the canonical bytes. Stops
    /// verifying once the threshold is met.
    pub fn verify(&self, keys: &Keys, role_keys: &RoleKeys, role: Role) -> Result<()> {
        let threshold = role_keys.threshold;
        let valid = role_keys.count_valid(keys, &self.signatures, &self.canonical, threshold);
        if valid >= threshold {
            Ok(())
        } else {
            Err(TufError::Signature {
                role,
                valid,
                threshold,
            })
        }
    }

    /// Distinct keys of `role_keys` with a valid signature.
    pub fn count_valid(&self, keys: &Keys, role_keys: &RoleKeys) -> u32 {
        role_keys.count_valid(keys, &self.signatures, &self.canonical, u32::MAX)
    }

    /// `{"signatures": [...], "signed": {...}}`.
    pub fn to_json(&self) -> Value {
        let signatures: Vec<Value> = self
            .signatures
            .iter()
            .map(|(keyid, sig)| json!({"keyid": keyid, "sig": hex_encode(sig)}))
            .collect();
        json!({"signatures": signatures, "signed": self.signed})
    }
}

impl Serialize for Envelope {
    fn serialize<S: Serializer>(&self, serializer: S) -> core::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}
