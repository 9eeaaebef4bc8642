//! TUF public keys and key ids.
//!
//! Keys are the protocol crate's [`PublicKey`], written as python-tuf
//! (securesystemslib) writes them (Ed25519 as 64 hex digits, ECDSA and RSA
//! as SubjectPublicKeyInfo PEM). Its TUF key id is the SHA-256 of the key
//! object's canonical JSON. (This is not the envelope's key id, which hashes
//! the raw 32 Ed25519 key bytes.)

/// A TUF key id: the protocol crate's model keeps key ids as strings
/// (`keys`, `keyids`, a signature's `keyid`); the ones these tools write are
/// 64 lowercase hex characters ([`parse_key_id`]).
pub type KeyId = String;

/// Validate a key id typed by a person or read from a file: 64 lowercase
/// hex characters.
pub fn parse_key_id(text: &str) -> Result<KeyId, String> {
    if text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "key id {:?} is not 64 lowercase hex characters",
            truncate(text)
        ))
    }
}

/// The first 12 characters of a key id, for tables.
pub fn short_key_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// A public key as TUF metadata lists it: the protocol crate's type, one
/// model of every key type (Ed25519, ECDSA P-256, RSA) for the lock and the
/// tools.
pub use nightlatch_proto::tuf::key::PublicKey;

/// The TUF key id of a key (securesystemslib's: SHA-256 of the canonical
/// JSON of the key object), as a [`KeyId`].
pub trait KeyIdOf {
    /// The key id a writer lists this key under.
    fn key_id(&self) -> KeyId;
}

impl KeyIdOf for PublicKey {
    fn key_id(&self) -> KeyId {
        self.keyid()
    }
}

/// Check that `key` is one this tool signs with and lists: a supported
/// type (an Ed25519 key must also not be weak).
pub fn check_usable(key: &PublicKey) -> Result<(), String> {
    match key {
        PublicKey::Ed25519(k) if k.is_weak() => Err("keyval.public is a weak Ed25519 key".into()),
        k if !k.is_supported() => Err(format!(
            "key type {:?} / scheme {:?} is not supported (ed25519, ecdsa-sha2-nistp256, rsassa-pss-sha256, rsa-pkcs1v15-sha256)",
            truncate(k.keytype()),
            truncate(k.scheme())
        )),
        _ => Ok(()),
    }
}

/// At most 80 characters of untrusted text, for error messages.
pub(crate) fn truncate(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn key_id_is_hash_of_canonical_key() {
        // securesystemslib: sha256 of
        // {"keytype":"ed25519","keyval":{"public":"<hex>"},"scheme":"ed25519"}
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
        let public = PublicKey::Ed25519(key);
        let text = format!(
            r#"{{"keytype":"ed25519","keyval":{{"public":"{}"}},"scheme":"ed25519"}}"#,
            hex::encode(key.as_bytes())
        );
        assert_eq!(
            public.key_id().as_str(),
            hex::encode(Sha256::digest(text.as_bytes()))
        );
    }

    #[test]
    fn bad_keys_are_refused() {
        let good =
            PublicKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[1; 32]).verifying_key());
        let mut json = good.to_json();
        let parse = |v: &serde_json::Value| serde_json::from_value::<PublicKey>(v.clone());
        assert_eq!(parse(&json).unwrap(), good);
        let hex = json["keyval"]["public"].as_str().unwrap().to_owned();
        for bad in [
            "zz".to_owned(),
            "00".repeat(31),
            hex.to_uppercase(),
            format!("{hex}00"),
        ] {
            json["keyval"]["public"] = bad.into();
            assert!(parse(&json).is_err());
        }
        let rsa = serde_json::json!({"keytype": "dsa", "scheme": "dsa", "keyval": {"public": "x"}});
        let unsupported = parse(&rsa).unwrap();
        assert!(check_usable(&unsupported).is_err());
        assert!(check_usable(&good).is_ok());
        assert!(parse_key_id("ABC").is_err());
        assert!(parse_key_id(&"A".repeat(64)).is_err());
        assert!(parse_key_id(&"a".repeat(64)).is_ok());
    }
}
