//! TUF public keys and key ids.
//!
//! A key is written as python-tuf (securesystemslib) expects an Ed25519 key:
//! `{"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "<64 hex>"}}`.
//! Its TUF key id is the SHA-256 of that object's canonical JSON. (This is not
//! the envelope's key id, which hashes the raw 32 key bytes.)

use std::fmt;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

use crate::metadata::signed::canonical_json;

/// A TUF key id: 64 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// Validate a key id.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() == 64
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!(
                "key id {:?} is not 64 lowercase hex characters",
                truncate(text)
            ))
        }
    }

    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 characters, for tables.
    pub fn short(&self) -> &str {
        self.0.get(..12).unwrap_or(&self.0)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The `keyval` object of a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVal {
    /// Public key, hex.
    pub public: String,
}

/// A public key as TUF metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    /// Key type; only `ed25519` is accepted for signing and verifying.
    pub keytype: String,
    /// Signature scheme; only `ed25519`.
    pub scheme: String,
    /// The key value.
    pub keyval: KeyVal,
}

impl PublicKey {
    /// The TUF form of an Ed25519 public key.
    pub fn ed25519(key: &VerifyingKey) -> Self {
        Self {
            keytype: "ed25519".into(),
            scheme: "ed25519".into(),
            keyval: KeyVal {
                public: hex::encode(key.as_bytes()),
            },
        }
    }

    /// The Ed25519 key, if this is a well-formed Ed25519 key.
    pub fn verifying_key(&self) -> Result<VerifyingKey, String> {
        if self.keytype != "ed25519" || self.scheme != "ed25519" {
            return Err(format!(
                "key type {:?} / scheme {:?} is not supported (only ed25519)",
                truncate(&self.keytype),
                truncate(&self.scheme)
            ));
        }
        // One key, one textual form (so one key id): exactly 64 lower-case hex digits.
        let text = &self.keyval.public;
        if text.len() != 64 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err("keyval.public must be exactly 64 lower-case hex characters".into());
        }
        let bytes = hex::decode(text).map_err(|_| "keyval.public is not hex".to_owned())?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "keyval.public is not 32 bytes".to_owned())?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| "keyval.public is not a valid Ed25519 point".to_owned())?;
        if key.is_weak() {
            return Err("keyval.public is a weak Ed25519 key".into());
        }
        Ok(key)
    }

    /// The TUF key id: SHA-256 of the canonical JSON of this object.
    pub fn key_id(&self) -> KeyId {
        let value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        let bytes = canonical_json(&value).unwrap_or_default();
        KeyId(hex::encode(Sha256::digest(bytes)))
    }
}

/// At most 80 characters of untrusted text, for error messages.
pub(crate) fn truncate(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_is_hash_of_canonical_key() {
        // securesystemslib: sha256 of
        // {"keytype":"ed25519","keyval":{"public":"<hex>"},"scheme":"ed25519"}
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
        let public = PublicKey::ed25519(&key);
        let text = format!(
            r#"{{"keytype":"ed25519","keyval":{{"public":"{}"}},"scheme":"ed25519"}}"#,
            hex::encode(key.as_bytes())
        );
        assert_eq!(
            public.key_id().as_str(),
            hex::encode(Sha256::digest(text.as_bytes()))
        );
        assert_eq!(public.verifying_key().unwrap(), key);
    }

    #[test]
    fn bad_keys_are_refused() {
        let mut k =
            PublicKey::ed25519(&ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key());
        k.keyval.public = "zz".into();
        assert!(k.verifying_key().is_err());
        k.keyval.public = "00".repeat(31);
        assert!(k.verifying_key().is_err());
        let good =
            PublicKey::ed25519(&ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key());
        let mut upper = good.clone();
        upper.keyval.public = good.keyval.public.to_uppercase();
        assert_ne!(upper.keyval.public, good.keyval.public);
        assert!(upper.verifying_key().is_err());
        let mut long = good.clone();
        long.keyval.public.push_str("00");
        assert!(long.verifying_key().is_err());
        k.keytype = "rsa".into();
        assert!(k.verifying_key().is_err());
        assert!(KeyId::parse("ABC").is_err());
        assert!(KeyId::parse(&"A".repeat(64)).is_err());
        assert!(KeyId::parse(&"a".repeat(64)).is_ok());
    }
}
