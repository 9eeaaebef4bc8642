//! Ed25519 key files, shared by every Nightlatch host tool.
//!
//! * Private keys: PKCS#8 in PEM, either
//!   - **passphrase-encrypted** (`-----BEGIN ENCRYPTED PRIVATE KEY-----`,
//!     PBES2 with scrypt and AES-256-CBC): what `nightlatch-sign keygen` writes
//!     by default, in the format and with the KDF limits of `nightlatch-keys`
//!     (the code is [`crate::keysource::file`], so the two tools read
//!     each other's keys). OpenSSL 3 reads it
//!     (`openssl pkey -passin env:NIGHTLATCH_KEY_PASSPHRASE`) only at
//!     `--kdf-log-n 14`: it caps scrypt at 32 MiB, the default N = 2^17
//!     needs 128 MiB; or
//!   - **unencrypted** PKCS#8 v1 (RFC 5208 `PrivateKeyInfo`, RFC 8410 Ed25519
//!     algorithm identifier), `-----BEGIN PRIVATE KEY-----`: what
//!     `keygen --unencrypted` writes for tests and CI, what
//!     `openssl genpkey -algorithm ed25519` writes. Reading also accepts
//!     PKCS#8 v2 (with the public key embedded; it must match).
//! * Passphrases come from `$NIGHTLATCH_KEY_PASSPHRASE` (automation) or are
//!   typed at the terminal, never from the command line. With neither (the
//!   variable unset and standard input not a terminal) reading or writing an
//!   encrypted key fails with an error saying so, instead of waiting for
//!   input that cannot come.
//! * Public keys: SubjectPublicKeyInfo (RFC 5280 / RFC 8410) in PEM,
//!   `-----BEGIN PUBLIC KEY-----`, as `openssl pkey -pubout` writes.
//! * Key id: SHA-256 of the raw 32-byte public key, as the bootloader uses it.

use std::io::IsTerminal;
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
use crate::keysource::{FileKey, KeySource, KeySpec, file, passphrase};

pub use crate::keysource::file::{DEFAULT_KDF_LOG_N, MIN_KDF_LOG_N};
pub use crate::keysource::passphrase::{MIN_PASSPHRASE_LEN, PASSPHRASE_ENV};

/// Most expensive scrypt cost `keygen` writes: N = 2^18 at r = 8 is 256 MiB,
/// the most that `nightlatch-keys`' reader (and so ours) accepts.
pub const MAX_KDF_LOG_N: u8 = 18;

/// Key files are small; refuse anything larger than this without parsing it.
const MAX_KEY_FILE: u64 = 64 * 1024;

const PRIVATE_LABEL: &str = "-----BEGIN PRIVATE KEY-----";
const ENCRYPTED_LABEL: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const PUBLIC_LABEL: &str = "-----BEGIN PUBLIC KEY-----";

/// A fresh signing key from the operating system's CSPRNG.
pub fn generate() -> SigningKey {
    SigningKey::generate(&mut OsRng)
}

/// The private key as unencrypted PKCS#8 v1 PEM (no embedded public key, LF
/// line endings).
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

/// The private key as passphrase-encrypted PKCS#8 PEM (PBES2: scrypt
/// N = 2^`log_n`, r = 8, p = 1; AES-256-CBC), exactly as `nightlatch-keys
/// keygen` writes it.
pub fn encrypted_private_key_pem(
    key: &SigningKey,
    passphrase: &[u8],
    log_n: u8,
) -> Result<Zeroizing<String>> {
    if !(MIN_KDF_LOG_N..=MAX_KDF_LOG_N).contains(&log_n) {
        return Err(Error::KeyEncoding {
            reason: format!(
                "scrypt cost 2^{log_n} is outside 2^{MIN_KDF_LOG_N} to 2^{MAX_KDF_LOG_N}"
            ),
        });
    }
    file::encrypt_pem(&key.clone().into(), passphrase, log_n).map_err(|e| Error::KeyEncoding {
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

/// Whether PEM text holds a passphrase-encrypted private key.
pub fn is_encrypted(pem: &str) -> bool {
    pem.contains(ENCRYPTED_LABEL)
}

/// Parse an unencrypted private key from PKCS#8 PEM text (an encrypted one
/// needs [`decrypt_private_key`], or [`load_private_key`] for a file).
pub fn parse_private_key(pem: &str) -> Result<SigningKey, String> {
    if is_encrypted(pem) {
        return Err(
            "this key is passphrase-encrypted; it must be decrypted with its passphrase".into(),
        );
    }
    if pem.contains(PUBLIC_LABEL) {
        return Err("this is a public key; signing needs the private .key file".into());
    }
    if !pem.contains(PRIVATE_LABEL) {
        return Err(format!("no `{PRIVATE_LABEL}` block found"));
    }
    SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| {
        // Another key type than Ed25519: say so (a TUF role key used where a
        // firmware key is needed).
        let other = pkcs8::der::pem::decode_vec(pem.trim().as_bytes())
            .ok()
            .and_then(|(_, der)| crate::keysource::SecretKey::from_pkcs8_der(&der).ok());
        match other.map(|k| k.ed25519().map(drop)) {
            Some(Err(why)) => why,
            _ => e.to_string(),
        }
    })
}

/// Decrypt an encrypted private key (PEM text of the file at `path`), with
/// `nightlatch-keys`' KDF limits: a file asking for more than 256 MiB of
/// scrypt memory is refused before any work.
pub fn decrypt_private_key(pem: &str, passphrase: &[u8], path: &Path) -> Result<SigningKey> {
    file::decrypt_pem(pem, passphrase, path).map_err(|e| match e {
        Error::KeyFile { reason, .. } => Error::PrivateKey {
            path: path.to_owned(),
            reason,
        },
        other => other,
    })
}

/// Parse a public key from SPKI PEM text, or derive it from unencrypted
/// private key PEM text.
pub fn parse_public_key(pem: &str) -> Result<VerifyingKey, String> {
    if is_encrypted(pem) {
        return Err("this key is passphrase-encrypted; pass its .pub file".into());
    }
    if pem.contains(PRIVATE_LABEL) {
        return parse_private_key(pem).map(|k| k.verifying_key());
    }
    if !pem.contains(PUBLIC_LABEL) {
        return Err(format!("no `{PUBLIC_LABEL}` block found"));
    }
    VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| e.to_string())
}

/// Whether a passphrase can be asked for: standard input is a terminal.
fn can_prompt() -> bool {
    std::io::stdin().is_terminal()
}

/// `$NIGHTLATCH_KEY_PASSPHRASE`, if set.
fn env_passphrase(what: &str) -> Result<Option<Zeroizing<String>>> {
    match std::env::var(PASSPHRASE_ENV) {
        Ok(p) => Ok(Some(Zeroizing::new(p))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::NoPassphrase {
            what: what.to_owned(),
            reason: format!("{PASSPHRASE_ENV} is not valid UTF-8"),
            help: format!("set {PASSPHRASE_ENV} to the passphrase as UTF-8 text"),
        }),
    }
}

/// A passphrase prompt failed (no terminal after all, or a mismatch): say
/// what to do here rather than at the ceremony.
fn prompt_failed(e: Error, help: &str) -> Error {
    match e {
        Error::NoPassphrase { what, reason, .. } => Error::NoPassphrase {
            what,
            reason,
            help: help.to_owned(),
        },
        other => other,
    }
}

/// The passphrase of the encrypted key file `path`: `$NIGHTLATCH_KEY_PASSPHRASE`,
/// or asked at the terminal; an error (never a wait) when neither is possible.
pub fn passphrase_for(path: &Path) -> Result<Zeroizing<String>> {
    let what = path.display().to_string();
    let help = format!(
        "set {PASSPHRASE_ENV} in the environment (never on the command line), or run the command at a terminal to be asked"
    );
    if let Some(p) = env_passphrase(&what)? {
        return Ok(p);
    }
    if !can_prompt() {
        return Err(Error::NoPassphrase {
            what,
            reason: format!(
                "the key is encrypted, {PASSPHRASE_ENV} is not set and standard input is not a terminal to ask on"
            ),
            help,
        });
    }
    passphrase::passphrase(&what).map_err(|e| prompt_failed(e, &help))
}

/// A passphrase for a new key file `path`: `$NIGHTLATCH_KEY_PASSPHRASE`, or
/// typed twice at the terminal; at least [`MIN_PASSPHRASE_LEN`] characters.
/// Without either, an error that names both ways and `--unencrypted`.
pub fn new_passphrase(path: &Path) -> Result<Zeroizing<String>> {
    let what = path.display().to_string();
    let help = format!(
        "set {PASSPHRASE_ENV} in the environment (never on the command line), or run keygen at a terminal to type it twice; \
         for a throwaway test or CI key only, pass --unencrypted"
    );
    let pass = match env_passphrase(&what)? {
        Some(p) => p,
        None if can_prompt() => passphrase::new_passphrase(&what).map_err(|e| {
            prompt_failed(
                e,
                &format!(
                    "type the same passphrase twice, at least {MIN_PASSPHRASE_LEN} characters \
                     (or set {PASSPHRASE_ENV} in the environment, never on the command line)"
                ),
            )
        })?,
        None => {
            return Err(Error::NoPassphrase {
                what,
                reason: format!(
                    "a new key is encrypted, {PASSPHRASE_ENV} is not set and standard input is not a terminal to ask on"
                ),
                help,
            });
        }
    };
    if pass.chars().count() < MIN_PASSPHRASE_LEN {
        return Err(Error::NoPassphrase {
            what,
            reason: format!("a passphrase must have at least {MIN_PASSPHRASE_LEN} characters"),
            help: format!(
                "choose a longer passphrase (in {PASSPHRASE_ENV}, or typed at the terminal)"
            ),
        });
    }
    Ok(pass)
}

fn read_key_text(path: &Path, bad: impl Fn(String) -> Error) -> Result<Zeroizing<String>> {
    let bytes = Zeroizing::new(read_limited(path, MAX_KEY_FILE)?);
    let text = std::str::from_utf8(&bytes).map_err(|_| bad("not a text (PEM) file".into()))?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// Load a private key file (`.key` from `nightlatch-sign keygen` or
/// `nightlatch-keys keygen`), asking for the passphrase if it is encrypted
/// (see [`passphrase_for`]).
pub fn load_private_key(path: &Path) -> Result<SigningKey> {
    let reason = |reason: String| Error::PrivateKey {
        path: path.to_owned(),
        reason,
    };
    let text = read_key_text(path, reason)?;
    if is_encrypted(&text) {
        let pass = passphrase_for(path)?;
        return decrypt_private_key(&text, pass.as_bytes(), path);
    }
    parse_private_key(&text).map_err(reason)
}

/// Load a public key file: a `.pub` (SPKI PEM), or a `.key` whose public half
/// is derived (an encrypted one is decrypted, see [`passphrase_for`]).
pub fn load_public_key(path: &Path) -> Result<VerifyingKey> {
    let reason = |reason: String| Error::PublicKey {
        path: path.to_owned(),
        reason,
    };
    let text = read_key_text(path, reason)?;
    if is_encrypted(&text) && !text.contains(PUBLIC_LABEL) {
        let pass = passphrase_for(path)?;
        return decrypt_private_key(&text, pass.as_bytes(), path).map(|k| k.verifying_key());
    }
    parse_public_key(&text).map_err(reason)
}

/// Whether `path` is a readable, passphrase-encrypted key file.
fn is_encrypted_file(path: &Path) -> bool {
    read_limited(path, MAX_KEY_FILE)
        .ok()
        .map(Zeroizing::new)
        .is_some_and(|b| std::str::from_utf8(&b).is_ok_and(is_encrypted))
}

/// Open the signing keys named by key specs (files or `pkcs11:` URIs), as
/// [`crate::keysource::open_all`] does, refusing the same key twice;
/// but the passphrase of an encrypted file comes from [`passphrase_for`], so
/// a command without a terminal fails instead of waiting.
pub fn open_key_sources(specs: &[KeySpec]) -> Result<Vec<Box<dyn KeySource>>> {
    let mut keys: Vec<Box<dyn KeySource>> = Vec::with_capacity(specs.len());
    for spec in specs {
        let key: Box<dyn KeySource> = match spec {
            KeySpec::File(path) if is_encrypted_file(path) => {
                Box::new(FileKey::from_key(path, load_private_key(path)?)?)
            }
            // Plain files, tokens and bad specs: exactly as keys-ceremony opens them.
            _ => spec.open()?,
        };
        if keys.iter().any(|k| k.public().same_key(key.public())) {
            return Err(Error::usage(
                format!("the key {} is given twice", key.describe()),
                "pass each key once",
            ));
        }
        keys.push(key);
    }
    Ok(keys)
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

    #[test]
    fn encrypted_keys_round_trip_in_the_nightlatch_keys_format() {
        let key = generate();
        let pem = encrypted_private_key_pem(&key, b"correct horse", MIN_KDF_LOG_N).unwrap();
        assert!(pem.starts_with(ENCRYPTED_LABEL) && is_encrypted(&pem));
        let p = Path::new("k.key");
        // nightlatch-keys' reader and ours agree.
        let theirs = file::decrypt_pem(&pem, b"correct horse", p).unwrap();
        let ours = decrypt_private_key(&pem, b"correct horse", p).unwrap();
        assert_eq!(theirs.to_bytes(), key.to_bytes());
        assert_eq!(ours.to_bytes(), key.to_bytes());
        assert!(matches!(
            decrypt_private_key(&pem, b"wrong horse", p),
            Err(Error::WrongPassphrase { .. })
        ));
        // No passphrase, no key: the plain parsers refuse it clearly.
        assert!(parse_private_key(&pem).unwrap_err().contains("encrypted"));
        assert!(parse_public_key(&pem).unwrap_err().contains(".pub"));
        // Keys nightlatch-keys writes open here too.
        let theirs =
            file::encrypt_pem(&key.clone().into(), b"correct horse", MIN_KDF_LOG_N).unwrap();
        let back = decrypt_private_key(&theirs, b"correct horse", p).unwrap();
        assert_eq!(back.to_bytes(), key.to_bytes());
    }

    #[test]
    fn kdf_costs_written_are_ones_the_reader_accepts() {
        let key = generate();
        for log_n in [MIN_KDF_LOG_N - 1, MAX_KDF_LOG_N + 1] {
            assert!(matches!(
                encrypted_private_key_pem(&key, b"correct horse", log_n),
                Err(Error::KeyEncoding { .. })
            ));
        }
        // The most expensive cost keygen writes (256 MiB) still opens.
        let pem = encrypted_private_key_pem(&key, b"correct horse", MAX_KDF_LOG_N).unwrap();
        let back = decrypt_private_key(&pem, b"correct horse", Path::new("k.key")).unwrap();
        assert_eq!(back.to_bytes(), key.to_bytes());
    }

    #[test]
    fn open_key_sources_refuses_the_same_key_twice() {
        let dir = tempfile::TempDir::new().unwrap();
        let (a, b) = (dir.path().join("a.key"), dir.path().join("b.key"));
        let pem = private_key_pem(&generate()).unwrap();
        std::fs::write(&a, pem.as_bytes()).unwrap();
        std::fs::write(&b, pem.as_bytes()).unwrap();
        let opened = open_key_sources(&[KeySpec::File(a.clone())]).unwrap();
        assert_eq!(opened.len(), 1);
        let err = open_key_sources(&[KeySpec::File(a), KeySpec::File(b)]).unwrap_err();
        assert!(err.to_string().contains("given twice"), "{err}");
    }
}
