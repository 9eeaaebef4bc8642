//! Key files: PKCS#8 private keys (passphrase-encrypted with PBES2/scrypt, or
//! plain) and SubjectPublicKeyInfo public keys, all PEM; Ed25519 or ECDSA
//! P-256 ([`SecretKey`]).

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::zeroize::Zeroizing;
use nightlatch_proto::tuf::key::PublicKey;
use pkcs8::der::Decode;
use pkcs8::pkcs5::pbes2::{self, Kdf};
use pkcs8::pkcs5::{EncryptionScheme, scrypt};
use pkcs8::{EncryptedPrivateKeyInfo, LineEnding, PrivateKeyInfo};
use rand_core::{OsRng, RngCore};

use crate::error::{Error, Result};
use crate::fsio::{Access, read_limited, write_atomic};
use crate::keysource::secret::{self, SecretKey};
use crate::keysource::{KeySource, passphrase};

/// Key files are small; anything larger is refused unread.
pub const MAX_KEY_FILE: u64 = 64 * 1024;
/// Default scrypt cost for new key files: N = 2^17, r = 8, p = 1 (128 MiB).
pub const DEFAULT_KDF_LOG_N: u8 = 17;
/// Cheapest scrypt cost accepted when writing (N = 2^14).
pub const MIN_KDF_LOG_N: u8 = 14;

const ENCRYPTED_LABEL: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
const PRIVATE_LABEL: &str = "-----BEGIN PRIVATE KEY-----";
const PUBLIC_LABEL: &str = "-----BEGIN PUBLIC KEY-----";

// Largest KDF costs accepted when reading, so a hostile file cannot make us
// allocate gigabytes or spin for hours.
// scrypt needs 128·r·N bytes (and p times the work): at most 256 MiB, p ≤ 2.
const MAX_SCRYPT_MEMORY: u128 = 256 * 1024 * 1024;
const MAX_SCRYPT_P: u32 = 2;
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// A private key read from a file (decrypted in memory).
#[derive(Debug)]
pub struct FileKey {
    path: PathBuf,
    key: SecretKey,
    public: PublicKey,
}

impl FileKey {
    /// Read a key file, asking for the passphrase if it is encrypted.
    pub fn load(path: &Path) -> Result<Self> {
        let text = read_text(path)?;
        let key = if text.contains(ENCRYPTED_LABEL) {
            let pass = passphrase::passphrase(&path.display().to_string())?;
            decrypt_secret(&text, pass.as_bytes(), path)?
        } else if text.contains(PRIVATE_LABEL) {
            parse_plain(&text, path)?
        } else if text.contains(PUBLIC_LABEL) {
            return Err(bad(
                path,
                "this is a public key; signing needs the private key",
            ));
        } else {
            return Err(bad(path, "no PEM private key block found"));
        };
        Self::from_key(path, key)
    }

    /// A file key from an already decoded key.
    pub fn from_key(path: &Path, key: impl Into<SecretKey>) -> Result<Self> {
        let key = key.into();
        let public = key.public().map_err(|e| bad(path, e))?;
        Ok(Self {
            path: path.to_owned(),
            public,
            key,
        })
    }

    /// The key itself.
    pub fn secret(&self) -> &SecretKey {
        &self.key
    }
}

impl KeySource for FileKey {
    fn public(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        Ok(self.key.sign(message))
    }

    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }
}

/// An unencrypted `PRIVATE KEY` PEM block.
fn parse_plain(text: &str, path: &Path) -> Result<SecretKey> {
    let (label, der) = pkcs8::der::pem::decode_vec(text.trim().as_bytes())
        .map_err(|e| bad(path, format!("bad PEM: {e}")))?;
    let der = Zeroizing::new(der);
    if label != "PRIVATE KEY" {
        return Err(bad(path, format!("unexpected PEM label {label:?}")));
    }
    SecretKey::from_pkcs8_der(&der).map_err(|e| bad(path, e))
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::KeyFile {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn read_text(path: &Path) -> Result<Zeroizing<String>> {
    let bytes = Zeroizing::new(read_limited(path, MAX_KEY_FILE)?);
    let text = std::str::from_utf8(&bytes).map_err(|_| bad(path, "not a text (PEM) file"))?;
    Ok(Zeroizing::new(text.to_owned()))
}

/// Decrypt an `ENCRYPTED PRIVATE KEY` PEM block holding an Ed25519 key
/// (a firmware signing key).
pub fn decrypt_pem(text: &str, pass: &[u8], path: &Path) -> Result<SigningKey> {
    let key = decrypt_secret(text, pass, path)?;
    key.ed25519().cloned().map_err(|e| bad(path, e))
}

/// Decrypt an `ENCRYPTED PRIVATE KEY` PEM block: an Ed25519 or P-256 key.
pub fn decrypt_secret(text: &str, pass: &[u8], path: &Path) -> Result<SecretKey> {
    let (label, der) = pkcs8::der::pem::decode_vec(text.trim().as_bytes())
        .map_err(|e| bad(path, format!("bad PEM: {e}")))?;
    if label != "ENCRYPTED PRIVATE KEY" {
        return Err(bad(path, format!("unexpected PEM label {label:?}")));
    }
    let info = EncryptedPrivateKeyInfo::from_der(&der)
        .map_err(|e| bad(path, format!("not an encrypted PKCS#8 key: {e}")))?;
    check_kdf_cost(&info.encryption_algorithm).map_err(|r| bad(path, r))?;
    let plain = info.decrypt(pass).map_err(|_| Error::WrongPassphrase {
        path: path.to_owned(),
    })?;
    SecretKey::from_pkcs8_der(plain.as_bytes()).map_err(|_| Error::WrongPassphrase {
        path: path.to_owned(),
    })
}

fn check_kdf_cost(scheme: &EncryptionScheme<'_>) -> Result<(), String> {
    let EncryptionScheme::Pbes2(params) = scheme else {
        return Err("only PBES2 encryption is supported".into());
    };
    match &params.kdf {
        Kdf::Scrypt(s) => {
            let n = s.cost_parameter;
            let memory = 128u128 * u128::from(s.block_size) * u128::from(n);
            if memory > MAX_SCRYPT_MEMORY
                || s.block_size == 0
                || u32::from(s.parallelization) > MAX_SCRYPT_P
            {
                return Err(format!(
                    "scrypt cost N={n} r={} p={} is above the limit this tool accepts",
                    s.block_size, s.parallelization
                ));
            }
        }
        Kdf::Pbkdf2(p) => {
            if p.iteration_count > MAX_PBKDF2_ITERATIONS {
                return Err("PBKDF2 iteration count is above 10 million".into());
            }
        }
        _ => return Err("unsupported key derivation function".into()),
    }
    Ok(())
}

/// Encrypt `key` as PKCS#8 PBES2 (scrypt N = 2^`log_n`, r = 8, p = 1; AES-256-CBC) PEM.
pub fn encrypt_pem(key: &SecretKey, pass: &[u8], log_n: u8) -> Result<Zeroizing<String>> {
    let encoding = |e: &dyn std::fmt::Display| Error::Canonical {
        reason: format!("cannot encode the key: {e}"),
    };
    let plain = key.to_pkcs8_der().map_err(|e| encoding(&e))?;
    let info = PrivateKeyInfo::try_from(plain.as_slice()).map_err(|e| encoding(&e))?;
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut iv);
    let cost = scrypt::Params::new(log_n, 8, 1, 32).map_err(|e| encoding(&e))?;
    let params = pbes2::Parameters::scrypt_aes256cbc(cost, &salt, &iv).map_err(|e| encoding(&e))?;
    let doc = info
        .encrypt_with_params(params, pass)
        .map_err(|e| encoding(&e))?;
    doc.to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
        .map_err(|e| encoding(&e))
}

/// Plain (unencrypted) PKCS#8 PEM, as `keygen --unencrypted` writes.
pub fn plain_pem(key: &SecretKey) -> Result<Zeroizing<String>> {
    let der = key.to_pkcs8_der().map_err(|e| Error::Canonical {
        reason: format!("cannot encode the key: {e}"),
    })?;
    pkcs8::der::pem::encode_string("PRIVATE KEY", LineEnding::LF, &der)
        .map(Zeroizing::new)
        .map_err(|e| Error::Canonical {
            reason: format!("cannot encode the key: {e}"),
        })
}

/// SubjectPublicKeyInfo PEM of a public key.
pub fn public_pem(key: &PublicKey) -> Result<String> {
    secret::public_pem(key).map_err(|reason| Error::Canonical {
        reason: format!("cannot encode the key: {reason}"),
    })
}

/// Write a public key file (replacing it only if `overwrite`).
pub fn write_public(path: &Path, key: &PublicKey, overwrite: bool) -> Result<()> {
    write_atomic(path, public_pem(key)?.as_bytes(), Access::Public, overwrite)
}

/// Write a private key file, mode 0600: encrypted if `pass` is given.
pub fn write_private(
    path: &Path,
    key: &SecretKey,
    pass: Option<(&[u8], u8)>,
    overwrite: bool,
) -> Result<()> {
    let pem = match pass {
        Some((p, log_n)) => encrypt_pem(key, p, log_n)?,
        None => plain_pem(key)?,
    };
    write_atomic(path, pem.as_bytes(), Access::Secret, overwrite)
}

/// The public key in a `.pub` file, or in a plain private key file.
pub fn load_public(path: &Path) -> Result<PublicKey> {
    let text = read_text(path)?;
    if text.contains(PUBLIC_LABEL) {
        secret::parse_public_pem(&text).map_err(|e| bad(path, e))
    } else if text.contains(PRIVATE_LABEL) {
        parse_plain(&text, path)?.public().map_err(|e| bad(path, e))
    } else if text.contains(ENCRYPTED_LABEL) {
        Err(bad(
            path,
            "this key is encrypted; pass its .pub file where a public key is needed",
        ))
    } else {
        Err(bad(path, "no PEM public key block found"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_round_trip_and_wrong_passphrase() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let pem = encrypt_pem(&key.clone().into(), b"correct horse", MIN_KDF_LOG_N).unwrap();
        assert!(pem.starts_with(ENCRYPTED_LABEL));
        let p = Path::new("k.key");
        let back = decrypt_pem(&pem, b"correct horse", p).unwrap();
        assert_eq!(back.to_bytes(), key.to_bytes());
        assert!(matches!(
            decrypt_pem(&pem, b"wrong horse", p),
            Err(Error::WrongPassphrase { .. })
        ));
    }

    #[test]
    fn ecdsa_keys_round_trip_encrypted_and_plain() {
        let key = SecretKey::generate(secret::KeyType::EcdsaP256);
        let p = Path::new("ec.key");
        let pem = encrypt_pem(&key, b"correct horse", MIN_KDF_LOG_N).unwrap();
        let back = decrypt_secret(&pem, b"correct horse", p).unwrap();
        assert_eq!(back.public().unwrap(), key.public().unwrap());
        // Not a firmware key: the Ed25519-only reader says why.
        let e = decrypt_pem(&pem, b"correct horse", p).unwrap_err();
        assert!(e.to_string().contains("Ed25519"), "{e}");
        let plain = plain_pem(&key).unwrap();
        let back = parse_plain(&plain, p).unwrap();
        assert_eq!(back.public().unwrap(), key.public().unwrap());
    }

    #[test]
    fn hostile_kdf_cost_is_refused_before_decrypting() {
        // N = 2^22 (4 GiB of memory at r = 8), N = 2^20 r = 16 p = 4 (2 GiB),
        // 512 MiB, p = 3: refused without running scrypt.
        for (log_n, r, p) in [(22, 8, 1), (20, 16, 4), (20, 16, 1), (19, 8, 1), (17, 8, 3)] {
            hostile_cost(log_n, r, p);
        }
    }

    fn hostile_cost(log_n: u8, r: u32, p: u32) {
        let key = SecretKey::from(SigningKey::from_bytes(&[9; 32]));
        let info_der = key.to_pkcs8_der().unwrap();
        let info = PrivateKeyInfo::try_from(info_der.as_slice()).unwrap();
        let cost = scrypt::Params::new(log_n, r, p, 32).unwrap();
        let params = pbes2::Parameters::scrypt_aes256cbc(cost, &[1; 16], &[2; 16]).unwrap();
        // Encrypting would itself take gigabytes, so build the structure and
        // only swap the parameters into a cheaply encrypted file.
        let cheap = pbes2::Parameters::scrypt_aes256cbc(
            scrypt::Params::new(MIN_KDF_LOG_N, 8, 1, 32).unwrap(),
            &[1; 16],
            &[2; 16],
        )
        .unwrap();
        let doc = info.encrypt_with_params(cheap, b"pw").unwrap();
        let enc = EncryptedPrivateKeyInfo::from_der(doc.as_bytes()).unwrap();
        let hostile = EncryptedPrivateKeyInfo {
            encryption_algorithm: EncryptionScheme::Pbes2(params),
            encrypted_data: enc.encrypted_data,
        };
        let der = pkcs8::der::Encode::to_der(&hostile).unwrap();
        let pem =
            pkcs8::der::pem::encode_string("ENCRYPTED PRIVATE KEY", LineEnding::LF, &der).unwrap();
        let err = decrypt_pem(&pem, b"pw", Path::new("h.key")).unwrap_err();
        assert!(err.to_string().contains("above the limit"), "{err}");
    }
}
