//! `nightlatch-sign keygen OUT`: write `OUT.key` and `OUT.pub`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsio::{self, Access};
use crate::keys;

/// Arguments of `keygen`.
#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    /// Output name prefix: writes OUT.key (private) and OUT.pub (public).
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
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
    /// Key id (SHA-256 of the raw public key), hex.
    pub key_id: String,
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
    let key = keys::generate();
    let public = key.verifying_key();
    let private_pem = keys::private_key_pem(&key)?;
    let public_pem = keys::public_key_pem(&public)?;

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
        key_id: keys::key_id_hex(&public),
    })
}

/// Run `keygen`.
pub fn run(args: &KeygenArgs) -> Result<()> {
    let report = generate(args)?;
    if args.json {
        return fsio::print_json(&report);
    }
    fsio::print(&format!(
        "private key  {} (keep secret)\npublic key   {}\nkey id       {}",
        report.private_key, report.public_key, report.key_id
    ))
}
