//! `nightlatch-keys keygen`: a passphrase-encrypted key file pair, or a key
//! generated inside a PKCS#11 token.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Args;
use nightlatch_repo::keysource::file::{
    DEFAULT_KDF_LOG_N, MIN_KDF_LOG_N, write_private, write_public,
};
use nightlatch_repo::keysource::{
    FileKey, KeySource, KeyType, Pkcs11Key, Pkcs11Uri, SecretKey, passphrase,
};
use nightlatch_repo::metadata::{KeyIdOf, PublicKey};
use nightlatch_repo::transcript::{self, Draft};
use nightlatch_repo::{Clock, Error, Result, fsio};
use serde::Serialize;

use crate::cmd::LogArgs;

/// Arguments of `keygen`.
#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    /// Output prefix: writes OUT.key (encrypted) and OUT.pub. With --pkcs11, only OUT.pub.
    #[arg(value_name = "OUT", required_unless_present = "pkcs11")]
    pub out: Option<PathBuf>,
    /// Generate the key inside a token instead, e.g.
    /// pkcs11:token=nightlatch;object=root-1?module-path=/usr/lib/softhsm/libsofthsm2.so
    #[arg(long, value_name = "URI")]
    pub pkcs11: Option<String>,
    /// Key type: ed25519 (the default, fastest on the lock) or ecdsa
    /// (ECDSA P-256, `ecdsa-sha2-nistp256`: what most HSMs and cloud KMS sign with).
    #[arg(long = "type", value_name = "TYPE", default_value = "ed25519")]
    pub key_type: KeyType,
    /// scrypt cost: N = 2^LOG_N (r = 8, p = 1). 17 uses 128 MiB per unlock.
    #[arg(long, value_name = "LOG_N", default_value_t = DEFAULT_KDF_LOG_N)]
    pub kdf_log_n: u8,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Transcript options (a line is written only when --transcript is given).
    #[command(flatten)]
    pub log: LogArgs,
}

/// What `keygen` made.
#[derive(Debug, Clone, Serialize)]
pub struct KeygenReport {
    /// Private key file, or the token URI.
    pub private_key: String,
    /// Public key file, if written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// TUF key id.
    pub key_id: String,
}

fn with_ext(out: &Path, ext: &str) -> Result<PathBuf> {
    let name = out.file_name().ok_or_else(|| {
        Error::usage(
            format!("{} is not a usable output name", out.display()),
            "give a file name prefix such as keys/root-alice (writes root-alice.key and root-alice.pub)",
        )
    })?;
    let mut n = OsString::from(name);
    n.push(ext);
    Ok(out.with_file_name(n))
}

fn make(args: &KeygenArgs) -> Result<(KeygenReport, PublicKey)> {
    if let Some(uri) = &args.pkcs11 {
        let uri = Pkcs11Uri::parse(uri)?;
        let pub_path = args
            .out
            .as_deref()
            .map(|o| with_ext(o, ".pub"))
            .transpose()?;
        if let Some(p) = &pub_path
            && !args.force
            && p.exists()
        {
            return Err(Error::Exists { path: p.clone() });
        }
        let key = Pkcs11Key::generate(&uri, args.key_type)?;
        let public = key.public().clone();
        if let Some(p) = &pub_path {
            write_public(p, &public, args.force)?;
        }
        let report = KeygenReport {
            private_key: uri.to_string(),
            public_key: pub_path.map(|p| p.display().to_string()),
            key_id: public.key_id().to_string(),
        };
        return Ok((report, public));
    }
    let out = args
        .out
        .as_deref()
        .ok_or_else(|| Error::usage("no OUT prefix given", "pass OUT, or --pkcs11 URI"))?;
    if !(MIN_KDF_LOG_N..=20).contains(&args.kdf_log_n) {
        return Err(Error::usage(
            format!("--kdf-log-n {} is out of range", args.kdf_log_n),
            format!("use {MIN_KDF_LOG_N} to 20 (default {DEFAULT_KDF_LOG_N})"),
        ));
    }
    let key_path = with_ext(out, ".key")?;
    let pub_path = with_ext(out, ".pub")?;
    if !args.force {
        for p in [&key_path, &pub_path] {
            if p.exists() {
                return Err(Error::Exists { path: p.clone() });
            }
        }
    }
    let pass = passphrase::new_passphrase(&key_path.display().to_string())?;
    let key = FileKey::from_key(&key_path, SecretKey::generate(args.key_type))?;
    write_private(
        &key_path,
        key.secret(),
        Some((pass.as_bytes(), args.kdf_log_n)),
        args.force,
    )?;
    if let Err(e) = write_public(&pub_path, key.public(), args.force) {
        let _ = std::fs::remove_file(&key_path);
        return Err(e);
    }
    let public = key.public().clone();
    let report = KeygenReport {
        private_key: key_path.display().to_string(),
        public_key: Some(pub_path.display().to_string()),
        key_id: public.key_id().to_string(),
    };
    Ok((report, public))
}

/// Run `keygen` (a transcript line is stamped with `clock`'s time).
pub fn run(args: &KeygenArgs, clock: &dyn Clock) -> Result<()> {
    let (report, _) = make(args)?;
    if let Some(path) = &args.log.transcript {
        transcript::append(
            path,
            Draft {
                who: transcript::who(args.log.who.as_deref()),
                operation: "keygen".into(),
                subject: report.private_key.clone(),
                key_ids: vec![report.key_id.clone()],
                ..Draft::default()
            },
            clock,
        )?;
    }
    if args.json {
        return fsio::print_json(&report);
    }
    let public = report
        .public_key
        .as_deref()
        .map(|p| format!("\npublic key   {p}"))
        .unwrap_or_default();
    fsio::print(&format!(
        "private key  {}{public}\nTUF key id   {}",
        report.private_key, report.key_id
    ))
}
