//! `nightlatch-sign keygen OUT`: write `OUT.key` (passphrase-encrypted unless
//! `--unencrypted`) and `OUT.pub`.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};

use nightlatch_repo::fsio::{self, Access};
use nightlatch_repo::keysource::{KeyType, SecretKey, file};
use nightlatch_repo::metadata::KeyIdOf;
use nightlatch_repo::{Error, Result, keys};

/// Arguments of `keygen`.
#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    /// Output name prefix: writes OUT.key (private, passphrase-encrypted) and OUT.pub (public).
    /// The passphrase comes from $NIGHTLATCH_KEY_PASSPHRASE, or is asked twice at the terminal.
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
    /// Write the private key UNENCRYPTED (plain PKCS#8): only for throwaway test and CI keys,
    /// never for a release key (anyone who reads the file can sign firmware).
    #[arg(long)]
    pub unencrypted: bool,
    /// Key type: ed25519 (the default; firmware envelopes and the bootloader need it), or,
    /// for TUF role keys only, ecdsa (P-256) or rsa (3072 bits, RSASSA-PSS).
    #[arg(long = "type", value_name = "TYPE", default_value = "ed25519")]
    pub key_type: KeyType,
    /// scrypt cost of the key file's encryption: N = 2^LOG_N (r = 8, p = 1), as nightlatch-keys;
    /// 17 uses 128 MiB per unlock, 14 to 18 accepted.
    #[arg(
        long,
        value_name = "LOG_N",
        default_value_t = keys::DEFAULT_KDF_LOG_N,
        value_parser = clap::value_parser!(u8)
            .range(i64::from(keys::MIN_KDF_LOG_N)..=i64::from(keys::MAX_KDF_LOG_N)),
        conflicts_with = "unencrypted"
    )]
    pub kdf_log_n: u8,
    /// Replace OUT.key and OUT.pub if they exist.
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What `keygen` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeygenReport {
    /// Path of the private key file.
    pub private_key: String,
    /// Path of the public key file.
    pub public_key: String,
    /// Key type: `ed25519`, `ecdsa` or `rsa`.
    pub key_type: String,
    /// Key id, hex: for Ed25519 the envelope's (SHA-256 of the raw public
    /// key, as the bootloader's anchors list it); for other types, which
    /// sign TUF metadata only, the TUF key id.
    pub key_id: String,
    /// TUF key id (SHA-256 of the canonical JSON of the key as TUF lists it).
    pub tuf_key_id: String,
    /// Whether the private key file is passphrase-encrypted.
    pub encrypted: bool,
}

/// `OUT.key` and `OUT.pub` for an `OUT` prefix.
pub fn key_paths(out: &Path) -> Result<(PathBuf, PathBuf)> {
    let name = out.file_name().ok_or_else(|| Error::OutputPrefix {
        path: out.to_owned(),
    })?;
    let with = |ext: &str| {
        let mut n = OsString::from(name);
        n.push(ext);
        out.with_file_name(n)
    };
    Ok((with(".key"), with(".pub")))
}

/// Generate a key pair and write it; both files appear, or neither.
pub fn generate(args: &KeygenArgs) -> Result<KeygenReport> {
    let (key_path, pub_path) = key_paths(&args.out)?;
    if !args.force {
        for path in [&key_path, &pub_path] {
            if path.symlink_metadata().is_ok() {
                return Err(Error::Exists { path: path.clone() });
            }
        }
    }
    // The passphrase first: without one nothing is generated or written.
    let passphrase = if args.unencrypted {
        None
    } else {
        Some(keys::new_passphrase(&key_path)?)
    };
    let key = match args.key_type {
        KeyType::Ed25519 => SecretKey::Ed25519(keys::generate()),
        other => SecretKey::generate(other),
    };
    let public = key
        .public()
        .map_err(|reason| Error::KeyEncoding { reason })?;
    let private_pem = match (&passphrase, &key) {
        (Some(p), SecretKey::Ed25519(k)) => {
            keys::encrypted_private_key_pem(k, p.as_bytes(), args.kdf_log_n)?
        }
        (Some(p), other) => file::encrypt_pem(other, p.as_bytes(), args.kdf_log_n)?,
        (None, other) => file::plain_pem(other)?,
    };
    let public_pem = file::public_pem(&public)?;
    let tuf_key_id = public.key_id().to_string();
    let key_id = match &key {
        SecretKey::Ed25519(k) => keys::key_id_hex(&k.verifying_key()),
        _ => tuf_key_id.clone(),
    };

    let staged_key = fsio::stage(&key_path, private_pem.as_bytes(), Access::Secret)?;
    let staged_pub = fsio::stage(&pub_path, public_pem.as_bytes(), Access::Public)?;
    staged_key.commit(args.force)?;
    if let Err(e) = staged_pub.commit(args.force) {
        // Do not leave a private key without its public half (and thus unused).
        let _ = std::fs::remove_file(&key_path);
        return Err(e);
    }
    Ok(KeygenReport {
        private_key: key_path.display().to_string(),
        public_key: pub_path.display().to_string(),
        key_type: args.key_type.to_string(),
        key_id,
        tuf_key_id,
        encrypted: passphrase.is_some(),
    })
}

/// Run `keygen`.
pub fn run(args: &KeygenArgs) -> Result<()> {
    let report = generate(args)?;
    if !report.encrypted {
        // Loud, and on stderr so it shows even with --json or stdout redirected.
        let _ = writeln!(
            std::io::stderr(),
            "WARNING: wrote an unencrypted private key to {}: anyone who can read that file can \
             sign firmware. Use --unencrypted only for throwaway test and CI keys; release keys \
             must be passphrase-encrypted (the default).",
            report.private_key
        );
    }
    if args.json {
        return fsio::print_json(&report);
    }
    let protection = if report.encrypted {
        "passphrase-encrypted"
    } else {
        "UNENCRYPTED"
    };
    fsio::print(&format!(
        "private key  {} ({protection}, keep secret)\npublic key   {}\nkey type     {}\nkey id       {}\nTUF key id   {}",
        report.private_key, report.public_key, report.key_type, report.key_id, report.tuf_key_id
    ))
}
