//! Private keys of the TUF key types the host tools create and hold:
//! Ed25519 (the default; what the lock verifies fastest), ECDSA P-256
//! (`ecdsa-sha2-nistp256`: what most HSMs and cloud KMS sign with) and RSA
//! (`rsassa-pss-sha256`, 2048 to 4096 bits; key files only).
//!
//! Public keys are listed in metadata exactly as securesystemslib lists
//! them (`nightlatch_proto::tuf::key`): Ed25519 as 64 hex digits, ECDSA and
//! RSA as SubjectPublicKeyInfo PEM (LF line endings, final newline), ECDSA
//! with `keytype` `ecdsa`. Signatures are what that scheme's `sig` holds: 64
//! Ed25519 bytes, a DER `ECDSA-Sig-Value` over SHA-256 (RFC 6979 nonces), or
//! RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt.

use std::fmt;

use ed25519_dalek::pkcs8::spki::der::zeroize::Zeroizing;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes};
use nightlatch_proto::tuf::key::{EcdsaP256Key, PublicKey, RsaKey, RsaScheme};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use rand_core::OsRng;

/// The key types a new key may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyType {
    /// Ed25519 (`ed25519`).
    #[default]
    Ed25519,
    /// ECDSA on NIST P-256 with SHA-256 (`ecdsa` / `ecdsa-sha2-nistp256`).
    EcdsaP256,
    /// RSA, 3072 bits when generated, signing with `rsassa-pss-sha256`.
    Rsa,
}

/// Bits of a new RSA key (securesystemslib's default).
pub const RSA_BITS: usize = 3072;

impl KeyType {
    /// `ed25519`, `ecdsa` (also `ecdsa-sha2-nistp256`, `p256`) or `rsa`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "ed25519" => Ok(Self::Ed25519),
            "ecdsa" | "ecdsa-sha2-nistp256" | "p256" | "nistp256" => Ok(Self::EcdsaP256),
            "rsa" | "rsassa-pss-sha256" => Ok(Self::Rsa),
            other => Err(format!(
                "key type {other:?} is not one of ed25519, ecdsa (P-256), rsa"
            )),
        }
    }

    /// The name the command lines take.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256 => "ecdsa",
            Self::Rsa => "rsa",
        }
    }
}

impl std::str::FromStr for KeyType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A private signing key held in memory (from a file, or generated).
#[derive(Clone)]
pub enum SecretKey {
    /// An Ed25519 key.
    Ed25519(ed25519_dalek::SigningKey),
    /// An ECDSA P-256 key.
    EcdsaP256(p256::ecdsa::SigningKey),
    /// An RSA key (signs with RSASSA-PSS, SHA-256).
    Rsa(Box<rsa::RsaPrivateKey>),
}

impl fmt::Debug for SecretKey {
    /// Names the type and the public half, never the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({} ", self.key_type())?;
        match self.public() {
            Ok(p) => write!(f, "{})", p.keyid()),
            Err(_) => f.write_str("?)"),
        }
    }
}

impl From<ed25519_dalek::SigningKey> for SecretKey {
    fn from(key: ed25519_dalek::SigningKey) -> Self {
        Self::Ed25519(key)
    }
}

impl From<p256::ecdsa::SigningKey> for SecretKey {
    fn from(key: p256::ecdsa::SigningKey) -> Self {
        Self::EcdsaP256(key)
    }
}

impl SecretKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate(kind: KeyType) -> Self {
        match kind {
            KeyType::Ed25519 => Self::Ed25519(ed25519_dalek::SigningKey::generate(&mut OsRng)),
            KeyType::EcdsaP256 => Self::EcdsaP256(p256::ecdsa::SigningKey::random(&mut OsRng)),
            // Generation only fails for a size the crate refuses; 3072 is not one.
            KeyType::Rsa => Self::Rsa(Box::new(
                rsa::RsaPrivateKey::new(&mut OsRng, RSA_BITS)
                    .unwrap_or_else(|e| unreachable!("RSA-{RSA_BITS} key generation: {e}")),
            )),
        }
    }

    /// Its type.
    pub fn key_type(&self) -> KeyType {
        match self {
            Self::Ed25519(_) => KeyType::Ed25519,
            Self::EcdsaP256(_) => KeyType::EcdsaP256,
            Self::Rsa(_) => KeyType::Rsa,
        }
    }

    /// The public half as TUF metadata lists it.
    pub fn public(&self) -> Result<PublicKey, String> {
        match self {
            Self::Ed25519(k) => Ok(PublicKey::Ed25519(k.verifying_key())),
            Self::EcdsaP256(k) => ecdsa_public(k.verifying_key()),
            Self::Rsa(k) => rsa_public(&k.to_public_key()),
        }
    }

    /// Sign `message` with the key's TUF scheme: the bytes of `sig`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Ed25519(k) => {
                use ed25519_dalek::Signer;
                k.sign(message).to_bytes().to_vec()
            }
            Self::EcdsaP256(k) => {
                use p256::ecdsa::signature::Signer;
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
            Self::Rsa(k) => {
                use rsa::signature::{RandomizedSigner, SignatureEncoding};
                // Salt as long as the digest (32 bytes), as securesystemslib.
                rsa::pss::BlindedSigningKey::<sha2::Sha256>::new((**k).clone())
                    .sign_with_rng(&mut OsRng, message)
                    .to_vec()
            }
        }
    }

    /// Unencrypted PKCS#8 DER (v1, no embedded public key for Ed25519; SEC 1
    /// inside for P-256, as OpenSSL writes it).
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, String> {
        let doc = match self {
            Self::Ed25519(k) => KeypairBytes {
                secret_key: k.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_der()
            .map_err(|e| e.to_string())?,
            Self::EcdsaP256(k) => p256::SecretKey::from(k.as_nonzero_scalar())
                .to_pkcs8_der()
                .map_err(|e| e.to_string())?,
            Self::Rsa(k) => {
                use rsa::pkcs8::EncodePrivateKey as _;
                k.to_pkcs8_der().map_err(|e| e.to_string())?
            }
        };
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// Read unencrypted PKCS#8 DER: an Ed25519 or a P-256 key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, String> {
        if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_der(der) {
            return Ok(Self::Ed25519(k));
        }
        if let Ok(k) = p256::SecretKey::from_pkcs8_der(der) {
            return Ok(Self::EcdsaP256(k.into()));
        }
        let rsa_key = {
            use rsa::pkcs8::DecodePrivateKey as _;
            rsa::RsaPrivateKey::from_pkcs8_der(der)
        };
        match rsa_key {
            Ok(k) => {
                rsa_public(&k.to_public_key())?;
                Ok(Self::Rsa(Box::new(k)))
            }
            Err(_) => Err("not an Ed25519, ECDSA P-256 or RSA PKCS#8 private key".into()),
        }
    }

    /// The Ed25519 key, or why this key cannot be one (firmware envelopes
    /// and the bootloader's anchors are Ed25519 only).
    pub fn ed25519(&self) -> Result<&ed25519_dalek::SigningKey, String> {
        match self {
            Self::Ed25519(k) => Ok(k),
            other => Err(format!(
                "this is an {} key; firmware envelopes are signed with Ed25519 keys only",
                other.key_type()
            )),
        }
    }
}

/// The TUF form of a P-256 public key: SubjectPublicKeyInfo PEM with LF
/// line endings (what `cryptography`'s `public_bytes(PEM,
/// SubjectPublicKeyInfo)` writes, so one key has one key id in both tools).
pub fn ecdsa_public(key: &p256::ecdsa::VerifyingKey) -> Result<PublicKey, String> {
    let pem = key
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| format!("cannot encode the P-256 key: {e}"))?;
    EcdsaP256Key::from_pem(&pem)
        .map(PublicKey::EcdsaP256)
        .map_err(|e| e.to_string())
}

/// The TUF form of an RSA public key (`rsassa-pss-sha256`), refused
/// outside 2048 to 4096 bits as the protocol crate refuses it.
pub fn rsa_public(key: &rsa::RsaPublicKey) -> Result<PublicKey, String> {
    use rsa::pkcs8::EncodePublicKey as _;
    let pem = key
        .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
        .map_err(|e| format!("cannot encode the RSA key: {e}"))?;
    RsaKey::from_pem(&pem, RsaScheme::PssSha256)
        .map(PublicKey::Rsa)
        .map_err(|e| e.to_string())
}

/// SubjectPublicKeyInfo PEM of a public key (`.pub` files).
pub fn public_pem(key: &PublicKey) -> Result<String, String> {
    match key {
        PublicKey::Ed25519(k) => {
            use ed25519_dalek::pkcs8::EncodePublicKey;
            k.to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
                .map_err(|e| e.to_string())
        }
        PublicKey::EcdsaP256(k) => Ok(k.pem().to_owned()),
        PublicKey::Rsa(k) => Ok(k.pem().to_owned()),
        other => Err(format!(
            "{} keys cannot be written by this tool",
            other.keytype()
        )),
    }
}

/// Read a SubjectPublicKeyInfo PEM public key: Ed25519 or P-256.
pub fn parse_public_pem(text: &str) -> Result<PublicKey, String> {
    use ed25519_dalek::pkcs8::DecodePublicKey;
    let text = text.trim();
    if let Ok(k) = ed25519_dalek::VerifyingKey::from_public_key_pem(text) {
        return Ok(PublicKey::Ed25519(k));
    }
    if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_pem(text) {
        return ecdsa_public(&k);
    }
    let rsa_key = {
        use rsa::pkcs8::DecodePublicKey as _;
        rsa::RsaPublicKey::from_public_key_pem(text)
    };
    match rsa_key {
        Ok(k) => rsa_public(&k),
        Err(_) => {
            Err("not an Ed25519, ECDSA P-256 or RSA public key (SubjectPublicKeyInfo PEM)".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_types_sign_what_the_protocol_crate_verifies() {
        for kind in [KeyType::Ed25519, KeyType::EcdsaP256] {
            let key = SecretKey::generate(kind);
            let public = key.public().unwrap();
            let sig = key.sign(b"message");
            assert!(public.verify(b"message", &sig), "{kind}");
            assert!(!public.verify(b"other", &sig), "{kind}");
            let der = key.to_pkcs8_der().unwrap();
            let back = SecretKey::from_pkcs8_der(&der).unwrap();
            assert_eq!(back.public().unwrap(), public, "{kind}");
            let pem = public_pem(&public).unwrap();
            let read = parse_public_pem(&pem).unwrap();
            assert_eq!(read.keyid(), public.keyid(), "{kind}: one key, one key id");
        }
    }

    #[test]
    fn rsa_keys_sign_pss_that_the_protocol_crate_verifies() {
        // A fixed 2048-bit key made by `openssl genpkey -algorithm RSA`
        // (generating one in a debug build is slow).
        let pem = include_str!("testdata/rsa-2048.key");
        let (_, der) = pkcs8::der::pem::decode_vec(pem.as_bytes()).unwrap();
        let key = SecretKey::from_pkcs8_der(&der).unwrap();
        assert_eq!(key.key_type(), KeyType::Rsa);
        let public = key.public().unwrap();
        assert_eq!(public.scheme(), "rsassa-pss-sha256");
        let sig = key.sign(b"message");
        assert!(public.verify(b"message", &sig));
        let back = SecretKey::from_pkcs8_der(&key.to_pkcs8_der().unwrap()).unwrap();
        assert_eq!(back.public().unwrap().keyid(), public.keyid());
        let read = parse_public_pem(&public_pem(&public).unwrap()).unwrap();
        assert_eq!(read.keyid(), public.keyid());
    }

    #[test]
    fn ecdsa_keys_are_listed_as_securesystemslib_lists_them() {
        let key = SecretKey::generate(KeyType::EcdsaP256);
        let json = key.public().unwrap().to_json();
        assert_eq!(json["keytype"], "ecdsa");
        assert_eq!(json["scheme"], "ecdsa-sha2-nistp256");
        let pem = json["keyval"]["public"].as_str().unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
        assert!(pem.ends_with("-----END PUBLIC KEY-----\n"), "{pem}");
        assert!(key.ed25519().is_err());
        assert!(format!("{key:?}").starts_with("SecretKey(ecdsa "));
    }

    #[test]
    fn key_type_names() {
        assert_eq!(
            KeyType::parse("ecdsa-sha2-nistp256"),
            Ok(KeyType::EcdsaP256)
        );
        assert_eq!(KeyType::parse("ed25519"), Ok(KeyType::Ed25519));
        assert_eq!(KeyType::parse("rsa"), Ok(KeyType::Rsa));
        assert!(KeyType::parse("dsa").is_err());
    }
}
