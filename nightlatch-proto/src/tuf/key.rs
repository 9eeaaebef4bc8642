//! TUF public keys of every type a ceremony may use, as python-tuf
//! (securesystemslib) writes them, and signature verification.
//!
//! | `keytype` | `scheme` | `keyval.public` | signature (`sig`, hex) | feature |
//! |---|---|---|---|---|
//! | `ed25519` | `ed25519` | 32 bytes, lower-case hex | 64 bytes (RFC 8032, strict) | always |
//! | `ecdsa` (or the deprecated `ecdsa-sha2-nistp256`) | `ecdsa-sha2-nistp256` | SubjectPublicKeyInfo PEM of a P-256 key | DER `ECDSA-Sig-Value` over SHA-256 | `ecdsa` |
//! | `rsa` | `rsassa-pss-sha256` | SubjectPublicKeyInfo PEM, 2048–4096 bits | RSASSA-PSS, SHA-256, MGF1-SHA-256, 32-byte salt | `rsa` |
//! | `rsa` | `rsa-pkcs1v15-sha256` | as above | RSASSA-PKCS1-v1_5, SHA-256 | `rsa` |
//!
//! These are the strings `securesystemslib.signer.SSlibKey` emits
//! (`CryptoSigner.generate_ecdsa()` / `generate_rsa()`): ECDSA keys written
//! with `keytype` `ecdsa`, RSA-PSS signed with a salt as long as the digest
//! (`PSS.DIGEST_LENGTH`, which is also what go-tuf writes). Any other
//! type or scheme — or one whose feature this build leaves out — parses as
//! [`PublicKey::Unsupported`]: the metadata still reads, the key never
//! counts towards a threshold (as python-tuf does with a key it cannot
//! use). A key of a supported type whose value does not decode makes the
//! metadata malformed.
//!
//! Serialising a key writes `keytype`, `scheme` and `keyval.public` as they
//! were read (the PEM text is kept as received); fields beyond those are
//! not kept for supported keys (an [`Unsupported`](PublicKey::Unsupported)
//! key keeps all of its JSON). Signatures are always checked over the
//! received bytes, never over a re-serialised form.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use ed25519_dalek::{Signature as Ed25519Signature, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::encoding::{hex_decode_lower, hex_encode};
use super::error::{Result, Role, TufError};
use crate::cjson;

/// `keytype` of Ed25519 keys (also their `scheme`).
pub const ED25519: &str = "ed25519";
/// `keytype` of ECDSA keys (TUF specification 1.0.x, securesystemslib ≥ 0.23).
pub const ECDSA: &str = "ecdsa";
/// `scheme` of ECDSA P-256 keys, and their deprecated `keytype`.
pub const ECDSA_SHA2_NISTP256: &str = "ecdsa-sha2-nistp256";
/// `keytype` of RSA keys.
pub const RSA: &str = "rsa";
/// RSA `scheme`: RSASSA-PSS with SHA-256.
pub const RSASSA_PSS_SHA256: &str = "rsassa-pss-sha256";
/// RSA `scheme`: RSASSA-PKCS1-v1_5 with SHA-256.
pub const RSA_PKCS1V15_SHA256: &str = "rsa-pkcs1v15-sha256";

/// Smallest RSA modulus accepted, in bits.
pub const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits (bounds verification time).
pub const RSA_MAX_BITS: usize = 4096;

/// A public key as TUF metadata lists it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKey {
    /// `keytype` and `scheme` `ed25519`.
    Ed25519(VerifyingKey),
    /// An ECDSA P-256 key (`scheme` `ecdsa-sha2-nistp256`).
    #[cfg(feature = "ecdsa")]
    EcdsaP256(EcdsaP256Key),
    /// An RSA key with the PSS or PKCS#1 v1.5 SHA-256 scheme.
    #[cfg(feature = "rsa")]
    Rsa(RsaKey),
    /// A key of a type or scheme this build cannot verify: kept as listed
    /// (so the metadata parses and serialises), never counted.
    Unsupported(UnsupportedKey),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}/{}", self.keytype(), self.scheme())?;
        if let PublicKey::Ed25519(k) = self {
            write!(f, " {}", hex_encode(k.as_bytes()))?;
        }
        f.write_str(")")
    }
}

/// An ECDSA P-256 public key and the PEM text it was read from.
#[cfg(feature = "ecdsa")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcdsaP256Key {
    deprecated_keytype: bool,
    pem: String,
    key: p256::ecdsa::VerifyingKey,
}

#[cfg(feature = "ecdsa")]
impl EcdsaP256Key {
    /// The key from SubjectPublicKeyInfo PEM (what securesystemslib writes
    /// in `keyval.public`), listed with `keytype` `ecdsa`.
    pub fn from_pem(pem: &str) -> core::result::Result<Self, KeyError> {
        use spki::DecodePublicKey;
        let key = p256::ecdsa::VerifyingKey::from_public_key_pem(pem)
            .map_err(|_| KeyError("ecdsa keyval.public is not a P-256 public key PEM"))?;
        Ok(Self {
            deprecated_keytype: false,
            pem: pem.into(),
            key,
        })
    }

    /// The PEM text, as listed.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The P-256 key.
    pub fn verifying_key(&self) -> &p256::ecdsa::VerifyingKey {
        &self.key
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier;
        p256::ecdsa::Signature::from_der(sig).is_ok_and(|sig| self.key.verify(msg, &sig).is_ok())
    }
}

/// Which RSA signature scheme a key is listed with.
#[cfg(feature = "rsa")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaScheme {
    /// `rsassa-pss-sha256`.
    PssSha256,
    /// `rsa-pkcs1v15-sha256`.
    Pkcs1v15Sha256,
}

#[cfg(feature = "rsa")]
impl RsaScheme {
    /// The `scheme` string.
    pub fn as_str(self) -> &'static str {
        match self {
            RsaScheme::PssSha256 => RSASSA_PSS_SHA256,
            RsaScheme::Pkcs1v15Sha256 => RSA_PKCS1V15_SHA256,
        }
    }
}

/// An RSA public key, its scheme and the PEM text it was read from.
#[cfg(feature = "rsa")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaKey {
    scheme: RsaScheme,
    pem: String,
    key: rsa::RsaPublicKey,
}

#[cfg(feature = "rsa")]
impl RsaKey {
    /// The key from SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`,
    /// what securesystemslib writes), 2048 to 4096 bits.
    pub fn from_pem(pem: &str, scheme: RsaScheme) -> core::result::Result<Self, KeyError> {
        use rsa::traits::PublicKeyParts;
        use spki::DecodePublicKey;
        let key = rsa::RsaPublicKey::from_public_key_pem(pem).map_err(|_| {
            KeyError("rsa keyval.public is not an RSA public key PEM (at most 4096 bits)")
        })?;
        let bits = key.n().bits();
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
            return Err(KeyError("rsa key is not 2048 to 4096 bits long"));
        }
        Ok(Self {
            scheme,
            pem: pem.into(),
            key,
        })
    }

    /// The PEM text, as listed.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The scheme the key is listed with.
    pub fn scheme(&self) -> RsaScheme {
        self.scheme
    }

    /// The RSA key.
    pub fn public_key(&self) -> &rsa::RsaPublicKey {
        &self.key
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let hashed = Sha256::digest(msg);
        let result = match self.scheme {
            // Salt as long as the digest: what securesystemslib and go-tuf
            // sign with.
            RsaScheme::PssSha256 => self.key.verify(rsa::Pss::new::<Sha256>(), &hashed, sig),
            RsaScheme::Pkcs1v15Sha256 => {
                self.key
                    .verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &hashed, sig)
            }
        };
        result.is_ok()
    }
}

/// A key of a type or scheme this build does not verify, exactly as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedKey {
    json: Map<String, Value>,
}

impl UnsupportedKey {
    /// The key object as listed.
    pub fn json(&self) -> &Map<String, Value> {
        &self.json
    }
}

/// Why a key value does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyError(pub &'static str);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl core::error::Error for KeyError {}

impl PublicKey {
    /// Read a key object (`{"keytype", "scheme", "keyval": {"public"}}`)
    /// listed in metadata of `role`.
    pub fn from_json(value: &Value, role: Role) -> Result<Self> {
        Self::from_json_checked(value).map_err(|e| TufError::malformed(role, e.0))
    }

    fn from_json_checked(value: &Value) -> core::result::Result<Self, KeyError> {
        let obj = value
            .as_object()
            .ok_or(KeyError("a key is not a JSON object"))?;
        let text = |name: &'static str, what: &'static str| {
            obj.get(name).and_then(Value::as_str).ok_or(KeyError(what))
        };
        let keytype = text("keytype", "a key has no keytype string")?;
        let scheme = text("scheme", "a key has no scheme string")?;
        let keyval = obj
            .get("keyval")
            .and_then(Value::as_object)
            .ok_or(KeyError("a key has no keyval object"))?;
        let public = keyval.get("public").and_then(Value::as_str);
        match (keytype, scheme) {
            (ED25519, ED25519) => {
                let public = public.ok_or(KeyError("ed25519 key has no keyval.public"))?;
                Self::ed25519_from_hex(public)
            }
            #[cfg(feature = "ecdsa")]
            (ECDSA | ECDSA_SHA2_NISTP256, ECDSA_SHA2_NISTP256) => {
                let public = public.ok_or(KeyError("ecdsa key has no keyval.public"))?;
                let mut key = EcdsaP256Key::from_pem(public)?;
                key.deprecated_keytype = keytype == ECDSA_SHA2_NISTP256;
                Ok(PublicKey::EcdsaP256(key))
            }
            #[cfg(feature = "rsa")]
            (RSA, RSASSA_PSS_SHA256 | RSA_PKCS1V15_SHA256) => {
                let public = public.ok_or(KeyError("rsa key has no keyval.public"))?;
                let scheme = if scheme == RSASSA_PSS_SHA256 {
                    RsaScheme::PssSha256
                } else {
                    RsaScheme::Pkcs1v15Sha256
                };
                Ok(PublicKey::Rsa(RsaKey::from_pem(public, scheme)?))
            }
            _ => Ok(PublicKey::Unsupported(UnsupportedKey { json: obj.clone() })),
        }
    }

    /// An Ed25519 key from its 64 lower-case hex digits.
    pub fn ed25519_from_hex(public: &str) -> core::result::Result<Self, KeyError> {
        let bytes = hex_decode_lower(public)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or(KeyError(
                "ed25519 keyval.public is not 64 lower-case hex digits",
            ))?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey::Ed25519)
            .map_err(|_| KeyError("ed25519 keyval.public is not a curve point"))
    }

    /// The `keytype` string.
    pub fn keytype(&self) -> &str {
        match self {
            PublicKey::Ed25519(_) => ED25519,
            #[cfg(feature = "ecdsa")]
            PublicKey::EcdsaP256(k) if k.deprecated_keytype => ECDSA_SHA2_NISTP256,
            #[cfg(feature = "ecdsa")]
            PublicKey::EcdsaP256(_) => ECDSA,
            #[cfg(feature = "rsa")]
            PublicKey::Rsa(_) => RSA,
            PublicKey::Unsupported(k) => {
                k.json.get("keytype").and_then(Value::as_str).unwrap_or("")
            }
        }
    }

    /// The `scheme` string.
    pub fn scheme(&self) -> &str {
        match self {
            PublicKey::Ed25519(_) => ED25519,
            #[cfg(feature = "ecdsa")]
            PublicKey::EcdsaP256(_) => ECDSA_SHA2_NISTP256,
            #[cfg(feature = "rsa")]
            PublicKey::Rsa(k) => k.scheme.as_str(),
            PublicKey::Unsupported(k) => k.json.get("scheme").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// Whether this build can verify signatures by this key.
    pub fn is_supported(&self) -> bool {
        !matches!(self, PublicKey::Unsupported(_))
    }

    /// The key object as TUF metadata lists it.
    pub fn to_json(&self) -> Value {
        let public = match self {
            PublicKey::Ed25519(k) => hex_encode(k.as_bytes()),
            #[cfg(feature = "ecdsa")]
            PublicKey::EcdsaP256(k) => k.pem.clone(),
            #[cfg(feature = "rsa")]
            PublicKey::Rsa(k) => k.pem.clone(),
            PublicKey::Unsupported(k) => return Value::Object(k.json.clone()),
        };
        json!({"keytype": self.keytype(), "scheme": self.scheme(), "keyval": {"public": public}})
    }

    /// The TUF key id: lower-case hex SHA-256 of the canonical JSON of the
    /// key object (securesystemslib's `compute_default_keyid`). Clients
    /// (this one, python-tuf) take key ids as listed; this is what a writer
    /// lists.
    pub fn keyid(&self) -> String {
        // Keys hold strings and objects only: nothing canonical JSON refuses.
        let bytes = cjson::to_vec(&self.to_json()).unwrap_or_default();
        hex_encode(&Sha256::digest(bytes))
    }

    /// Whether `sig` is a valid signature by this key over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            PublicKey::Ed25519(k) => Ed25519Signature::from_slice(sig)
                .is_ok_and(|sig| k.verify_strict(msg, &sig).is_ok()),
            #[cfg(feature = "ecdsa")]
            PublicKey::EcdsaP256(k) => k.verify(msg, sig),
            #[cfg(feature = "rsa")]
            PublicKey::Rsa(k) => k.verify(msg, sig),
            PublicKey::Unsupported(_) => false,
        }
    }

    /// Whether `self` and `other` are the same key material (whatever the
    /// scheme or key id they are listed under): a threshold counts keys,
    /// not key ids.
    pub fn same_key(&self, other: &PublicKey) -> bool {
        match (self, other) {
            (PublicKey::Ed25519(a), PublicKey::Ed25519(b)) => a == b,
            #[cfg(feature = "ecdsa")]
            (PublicKey::EcdsaP256(a), PublicKey::EcdsaP256(b)) => a.key == b.key,
            #[cfg(feature = "rsa")]
            (PublicKey::Rsa(a), PublicKey::Rsa(b)) => a.key == b.key,
            _ => false,
        }
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> core::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// Reads a key object as [`PublicKey::from_json`] does (for a writer's
/// serde types); the error names what is wrong with the key.
impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Self::from_json_checked(&value).map_err(|e| serde::de::Error::custom(e.0))
    }
}

/// Keys by key id, as `keys` in root or delegations.
pub type Keys = alloc::collections::BTreeMap<String, PublicKey>;

/// Read a `keys` object.
pub(crate) fn keys_from_json(value: Option<&Value>, role: Role) -> Result<Keys> {
    let obj = value
        .and_then(Value::as_object)
        .ok_or(TufError::malformed(role, "keys is not an object"))?;
    obj.iter()
        .map(|(id, k)| Ok((id.clone(), PublicKey::from_json(k, role)?)))
        .collect()
}

/// `keys` as JSON.
pub(crate) fn keys_to_json(keys: &Keys) -> Value {
    Value::Object(
        keys.iter()
            .map(|(id, k)| (id.clone(), k.to_json()))
            .collect(),
    )
}

/// Key ids are hex in practice but any string is allowed (python-tuf takes
/// them as listed); only their number bounds the work.
pub(crate) fn keyids_unique(keyids: &[String]) -> bool {
    let mut sorted: Vec<&String> = keyids.iter().collect();
    sorted.sort();
    sorted.windows(2).all(|w| w[0] != w[1])
}
