//! Ed25519 key files, shared by every Nightlatch host tool.
//!
//! * Private keys: unencrypted PKCS#8 v1 (RFC 5208 `PrivateKeyInfo`, RFC 8410
//!   Ed25519 algorithm identifier) in PEM, `-----BEGIN PRIVATE KEY-----`. This is
//!   what `openssl genpkey -algorithm ed25519` writes, and what OpenSSL, Go,
//!   Python `cryptography` and most HSM tooling read. Reading also accepts
//!   PKCS#8 v2 (with the public key embedded; it must match).
//! * Public keys: SubjectPublicKeyInfo (RFC 5280 / RFC 8410) in PEM,
//!   `-----BEGIN PUBLIC KEY-----`, as `openssl pkey -pubout` writes.
//! * Key id: SHA-256 of the raw 32-byte public key, as the bootloader uses it.

use std::path::Path;

use bootloader::anchors::{KeyId, key_id};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::spki::der::zeroize::Zeroizing;
use ed25519_dalek::pkcs8::spki::{DecodePublicKey, EncodePublicKey};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_core::OsRng;

use crate::error::{Error, Result};
use crate::fsio::read_limited;

/// Key files are small; refuse anything larger than this without parsing it.
const MAX_KEY_FILE: u64 = 64 * 1024;

const PRIVATE_LABEL: &str = "-----BEGIN PRIVATE KEY-----";
const ENCRYPTED_LABEL: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const PUBLIC_LABEL: &str = "-----BEGIN PUBLIC KEY-----";

/// A fresh signing key from the operating system's CSPRNG.
pub fn generate() -> SigningKey {
    SigningKey::generate(&mut OsRng)
}

/// The private key as PKCS#8 v1 PEM (no embedded public key, LF line endings).
pub fn private_key_pem(key: &SigningKey) -> Result<Zeroizing<String>> {
    let bytes = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    bytes
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| Error::KeyEncoding {
            reason: e.to_string(),
        })
}

/// The public key as SubjectPublicKeyInfo PEM (LF line endings).
pub fn public_key_pem(key: &VerifyingKey) -> Result<String> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| Error::KeyEncoding {
            reason: e.to_string(),
        })
}

/// Parse a private key from PKCS#8 PEM text.
pub fn parse_private_key(pem: &str) -> Result<SigningKey, String> {
    if pem.contains(ENCRYPTED_LABEL) {
        return Err("encrypted keys are not supported; decrypt it first \
                    (`openssl pkey -in KEY -out PLAIN.key`)"
            .into());
    }
    if pem.contains(PUBLIC_LABEL) {
        return Err("this is a public key; signing needs the private .key file".into());
    }
    if !pem.contains(PRIVATE_LABEL) {
        return Err(format!("no `{PRIVATE_LABEL}` block found"));
    }
    SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| e.to_string())
}

/// Parse a public key from SPKI PEM text, or derive it from private key PEM text.
pub fn parse_public_key(pem: &str) -> Result<VerifyingKey, String> {
    if pem.contains(PRIVATE_LABEL) || pem.contains(ENCRYPTED_LABEL) {
        return parse_private_key(pem).map(|k| k.verifying_key());
    }
    if !pem.contains(PUBLIC_LABEL) {
        return Err(format!("no `{PUBLIC_LABEL}` block found"));
    }
    VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| e.to_string())
}

/// Load a private key file (`.key` from `nightlatch-sign keygen`).
pub fn load_private_key(path: &Path) -> Result<SigningKey> {
    let bytes = Zeroizing::new(read_limited(path, MAX_KEY_FILE)?);
    let reason = |reason: String| Error::PrivateKey {
        path: path.to_owned(),
        reason,
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| reason("not a text (PEM) file".into()))?;
    parse_private_key(text).map_err(reason)
}

/// Load a public key file: a `.pub` (SPKI PEM), or a `.key` whose public half
/// is derived.
pub fn load_public_key(path: &Path) -> Result<VerifyingKey> {
    let bytes = Zeroizing::new(read_limited(path, MAX_KEY_FILE)?);
    let reason = |reason: String| Error::PublicKey {
        path: path.to_owned(),
        reason,
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| reason("not a text (PEM) file".into()))?;
    parse_public_key(text).map_err(reason)
}

/// Key id of a public key: SHA-256 of its 32 raw bytes.
pub fn key_id_of(key: &VerifyingKey) -> KeyId {
    key_id(key.as_bytes())
}

/// Key id as lowercase hex.
pub fn key_id_hex(key: &VerifyingKey) -> String {
    hex::encode(key_id_of(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_key_round_trips_as_pkcs8_v1() {
        let key = generate();
        let pem = private_key_pem(&key).unwrap();
        assert!(pem.starts_with(PRIVATE_LABEL));
        // PKCS#8 v1 Ed25519 is always 48 bytes of DER: 64 base64 characters.
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert_eq!(body.len(), 64);
        let back = parse_private_key(&pem).unwrap();
        assert_eq!(back.to_bytes(), key.to_bytes());
    }

    #[test]
    fn public_key_round_trips_and_derives_from_private() {
        let key = generate();
        let pem = public_key_pem(&key.verifying_key()).unwrap();
        assert!(pem.starts_with(PUBLIC_LABEL));
        assert_eq!(parse_public_key(&pem).unwrap(), key.verifying_key());
        let private = private_key_pem(&key).unwrap();
        assert_eq!(parse_public_key(&private).unwrap(), key.verifying_key());
    }

    #[test]
    fn wrong_kinds_are_refused() {
        let key = generate();
        let public = public_key_pem(&key.verifying_key()).unwrap();
        assert!(parse_private_key(&public).is_err());
        assert!(parse_private_key("hello").is_err());
        assert!(parse_public_key("").is_err());
        assert!(
            parse_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").is_err()
        );
    }

    #[test]
    fn reads_openssl_generated_key() {
        // `openssl genpkey -algorithm ed25519` (RFC 8410 §10.3 test vector).
        let pem = "-----BEGIN PRIVATE KEY-----\n\
                   MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
                   -----END PRIVATE KEY-----\n";
        let key = parse_private_key(pem).unwrap();
        let expected = "-----BEGIN PUBLIC KEY-----\n\
                        MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
                        -----END PUBLIC KEY-----\n";
        assert_eq!(parse_public_key(expected).unwrap(), key.verifying_key());
    }
}
