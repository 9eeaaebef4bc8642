//! The signed envelope `{"signatures": [...], "signed": {...}}`, public keys,
//! and threshold verification.
//!
//! Signatures cover the canonical JSON of the `signed` object exactly as it
//! was received (unknown fields included). Key ids are taken as the
//! delegating metadata lists them and are not recomputed (as python-tuf).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;
use serde_json::Value;

use super::cjson;
use super::encoding::hex_decode;
use super::error::{Result, Role, TufError};

/// A public key from `keys`. Only Ed25519 keys can verify; other key types
/// are kept (so metadata listing them still parses) but never count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// `keytype` and `scheme` `ed25519`.
    Ed25519(VerifyingKey),
    /// Any other key type or scheme.
    Unsupported,
}

#[derive(Deserialize)]
pub(crate) struct RawKey {
    keytype: String,
    scheme: String,
    keyval: RawKeyVal,
}

#[derive(Deserialize)]
struct RawKeyVal {
    public: Option<String>,
}

impl PublicKey {
    pub(crate) fn from_raw(raw: &RawKey, role: Role) -> Result<Self> {
        if raw.keytype != "ed25519" || raw.scheme != "ed25519" {
            return Ok(PublicKey::Unsupported);
        }
        let bytes = raw
            .keyval
            .public
            .as_deref()
            .and_then(hex_decode)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or(TufError::Malformed { role })?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey::Ed25519)
            .map_err(|_| TufError::Malformed { role })
    }
}

/// The keys and threshold a delegator assigns to a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleKeys {
    /// Key ids (unique).
    pub keyids: Vec<String>,
    /// Valid signatures needed (≥ 1).
    pub threshold: u32,
}

#[derive(Deserialize)]
pub(crate) struct RawRoleKeys {
    pub(crate) keyids: Vec<String>,
    pub(crate) threshold: u64,
}

impl RoleKeys {
    pub(crate) fn from_raw(raw: RawRoleKeys, role: Role) -> Result<Self> {
        let threshold = u32::try_from(raw.threshold)
            .ok()
            .filter(|t| *t >= 1)
            .ok_or(TufError::Malformed { role })?;
        let mut sorted = raw.keyids.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != raw.keyids.len() {
            return Err(TufError::Malformed { role });
        }
        Ok(Self {
            keyids: raw.keyids,
            threshold,
        })
    }

    /// Same keys and threshold (key order ignored).
    pub fn same_as(&self, other: &RoleKeys) -> bool {
        let mut a = self.keyids.clone();
        let mut b = other.keyids.clone();
        a.sort();
        b.sort();
        a == b && self.threshold == other.threshold
    }
}

/// Parsed but not yet verified metadata: the `signed` value, its canonical
/// bytes and the signatures.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The `signed` object as received.
    pub signed: Value,
    canonical: Vec<u8>,
    signatures: BTreeMap<String, Vec<u8>>,
}

#[derive(Deserialize)]
struct RawEnvelope {
    signatures: Vec<RawSignature>,
    signed: Value,
}

#[derive(Deserialize)]
struct RawSignature {
    keyid: String,
    sig: String,
}

impl Envelope {
    /// Parse `bytes` as metadata of `role` (the `_type` is checked later).
    pub fn parse(bytes: &[u8], role: Role) -> Result<Self> {
        let malformed = TufError::Malformed { role };
        let RawEnvelope {
            signatures: raw_signatures,
            signed,
        } = serde_json::from_slice(bytes).map_err(|_| malformed)?;
        let canonical = cjson::to_vec(&signed).map_err(|_| malformed)?;
        let mut signatures = BTreeMap::new();
        for s in raw_signatures {
            // A signature that is not hex can never verify; keep it empty.
            let sig = hex_decode(&s.sig).unwrap_or_default();
            if signatures.insert(s.keyid, sig).is_some() {
                // python-tuf refuses several signatures by one key id.
                return Err(malformed);
            }
        }
        Ok(Self {
            signed,
            canonical,
            signatures,
        })
    }

    /// The canonical JSON (OLPC) of the `signed` object: the bytes every
    /// signature covers.
    pub fn canonical(&self) -> &[u8] {
        &self.canonical
    }

    /// Check that at least `role_keys.threshold` distinct keys of
    /// `role_keys` (looked up in `keys`) signed the canonical bytes.
    pub fn verify(
        &self,
        keys: &BTreeMap<String, PublicKey>,
        role_keys: &RoleKeys,
        role: Role,
    ) -> Result<()> {
        let valid = self.count_valid(keys, role_keys);
        if valid >= role_keys.threshold {
            Ok(())
        } else {
            Err(TufError::Signature {
                role,
                valid,
                threshold: role_keys.threshold,
            })
        }
    }

    /// Distinct keys of `role_keys` with a valid signature.
    pub fn count_valid(&self, keys: &BTreeMap<String, PublicKey>, role_keys: &RoleKeys) -> u32 {
        // Count distinct keys, not key ids: one key listed under two ids
        // must not meet a threshold of two.
        let mut seen: Vec<[u8; 32]> = Vec::new();
        for keyid in &role_keys.keyids {
            let (Some(PublicKey::Ed25519(key)), Some(sig)) =
                (keys.get(keyid), self.signatures.get(keyid))
            else {
                continue;
            };
            let Ok(sig) = Signature::from_slice(sig) else {
                continue;
            };
            if !seen.contains(key.as_bytes()) && key.verify_strict(&self.canonical, &sig).is_ok() {
                seen.push(*key.as_bytes());
            }
        }
        u32::try_from(seen.len()).unwrap_or(u32::MAX)
    }
}
