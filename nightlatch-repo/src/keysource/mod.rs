//! Where signing keys live, behind one trait (after tough's `KeySource`).
//!
//! A key is named on the command line by a *key spec*:
//!
//! * a file path: a PKCS#8 private key (Ed25519 or ECDSA P-256), passphrase-encrypted
//!   (`-----BEGIN ENCRYPTED PRIVATE KEY-----`, PBES2 with scrypt and
//!   AES-256-CBC, as `nightlatch-keys keygen` writes and OpenSSL reads) or
//!   plain (`nightlatch-sign keygen --unencrypted`, dev keys);
//! * a `pkcs11:` URI (RFC 7512) naming an Ed25519 key (used through
//!   `CKM_EDDSA`) or an ECDSA P-256 key (`CKM_ECDSA` over a SHA-256 digest)
//!   in a token (module from `module-path=` or `NIGHTLATCH_PKCS11_MODULE`).
//!
//! Where only a public key is needed, a `.pub` file (SubjectPublicKeyInfo PEM)
//! is accepted too ([`load_public`]).

use std::fmt;
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use nightlatch_proto::tuf::key::PublicKey;

use crate::error::{Error, Result};

pub mod file;
pub mod passphrase;
pub mod pkcs11;
pub mod pkcs11_uri;
pub mod secret;

pub use file::FileKey;
pub use pkcs11::Pkcs11Key;
pub use pkcs11_uri::Pkcs11Uri;
pub use secret::{KeyType, SecretKey};

/// A private key that can sign, wherever it lives: Ed25519 or ECDSA P-256.
pub trait KeySource: fmt::Debug {
    /// The public half, as TUF metadata lists it.
    fn public(&self) -> &PublicKey;
    /// Sign `message` with the key's TUF scheme: the bytes of a TUF `sig`
    /// (64 Ed25519 bytes, or a DER ECDSA signature over SHA-256).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
    /// A description safe to print and log (never a PIN or passphrase).
    fn describe(&self) -> String;
}

/// The Ed25519 public key of `key`, or an error naming it: firmware
/// envelopes, the bootloader's anchors and the director's time are Ed25519.
pub fn ed25519_public(key: &dyn KeySource) -> Result<VerifyingKey> {
    match key.public() {
        PublicKey::Ed25519(k) => Ok(*k),
        other => Err(Error::usage(
            format!(
                "{} is an {} key; this signature must be Ed25519",
                key.describe(),
                other.keytype()
            ),
            "use an Ed25519 key here (nightlatch-keys keygen --type ed25519)",
        )),
    }
}

/// Sign with an Ed25519 key source (see [`ed25519_public`]).
pub fn sign_ed25519(key: &dyn KeySource, message: &[u8]) -> Result<ed25519_dalek::Signature> {
    ed25519_public(key)?;
    let bytes = key.sign(message)?;
    ed25519_dalek::Signature::from_slice(&bytes).map_err(|_| {
        Error::usage(
            format!(
                "{} returned a signature that is not 64 bytes",
                key.describe()
            ),
            "check the key source",
        )
    })
}

/// Where a key is: a file or a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySpec {
    /// A key file.
    File(PathBuf),
    /// A key in a PKCS#11 token.
    Pkcs11(Pkcs11Uri),
    /// A `pkcs11:` URI that does not parse, with the reason (PINs redacted).
    /// Command-line parsing never fails on a key spec, so clap never echoes
    /// the raw argument (which may hold a `pin-value`); the error is
    /// reported when the key is opened.
    Invalid {
        /// The URI, PINs redacted.
        uri: String,
        /// What is wrong.
        reason: String,
    },
}

impl KeySpec {
    /// `pkcs11:…` is a token key; anything else is a file path.
    pub fn parse(text: &str) -> Result<Self> {
        if text.starts_with("pkcs11:") {
            Ok(Self::Pkcs11(Pkcs11Uri::parse(text)?))
        } else {
            Ok(Self::File(PathBuf::from(text)))
        }
    }

    /// Open the private key (asks for a passphrase or PIN if needed).
    pub fn open(&self) -> Result<Box<dyn KeySource>> {
        Ok(match self {
            Self::File(path) => Box::new(FileKey::load(path)?),
            Self::Pkcs11(uri) => Box::new(Pkcs11Key::open(uri)?),
            Self::Invalid { uri, reason } => return Err(invalid_spec(uri, reason)),
        })
    }

    /// A description safe to print and log.
    pub fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Pkcs11(uri) => uri.to_string(),
            Self::Invalid { uri, .. } => uri.clone(),
        }
    }
}

impl std::str::FromStr for KeySpec {
    type Err = String;

    /// Never fails: see [`KeySpec::Invalid`].
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match Self::parse(s) {
            Ok(spec) => spec,
            Err(crate::error::Error::Pkcs11Uri { uri, reason }) => Self::Invalid { uri, reason },
            Err(e) => Self::Invalid {
                uri: pkcs11_uri::redact(s),
                reason: e.to_string(),
            },
        })
    }
}

fn invalid_spec(uri: &str, reason: &str) -> crate::error::Error {
    crate::error::Error::Pkcs11Uri {
        uri: uri.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The public key named by `spec`: a `.pub` file, a plain private key file,
/// or a token key. An encrypted key file is refused (pass its `.pub`).
pub fn load_public(spec: &KeySpec) -> Result<PublicKey> {
    match spec {
        KeySpec::File(path) => file::load_public(path),
        KeySpec::Pkcs11(uri) => Ok(Pkcs11Key::open(uri)?.public().clone()),
        KeySpec::Invalid { uri, reason } => Err(invalid_spec(uri, reason)),
    }
}

/// Open every key, refusing the same key twice.
pub fn open_all(specs: &[KeySpec]) -> Result<Vec<Box<dyn KeySource>>> {
    let mut keys: Vec<Box<dyn KeySource>> = Vec::with_capacity(specs.len());
    for spec in specs {
        let key = spec.open()?;
        if keys.iter().any(|k| k.public().same_key(key.public())) {
            return Err(crate::error::Error::usage(
                format!("the key {} is given twice", key.describe()),
                "pass each key once",
            ));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// `path` with `.pub` in place of its extension (or appended).
pub fn pub_path_for(path: &Path) -> PathBuf {
    path.with_extension("pub")
}
