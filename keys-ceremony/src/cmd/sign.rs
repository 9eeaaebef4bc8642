//! `nightlatch-keys sign`: one keyholder adds a signature to a root file that
//! travels from keyholder to keyholder.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::cmd::status::{load_with_previous, print_status};
use crate::cmd::{LogArgs, write_root};
use crate::error::{Error, Result};
use crate::keysource::KeySpec;
use crate::metadata::PublicKey;
use crate::status::root_status;
use crate::transcript::{Draft, sha256_hex};

/// Arguments of `sign`.
#[derive(Debug, Clone, Args)]
pub struct SignArgs {
    /// The signing key: an encrypted .key file or a pkcs11: URI.
    #[arg(long, value_name = "KEY")]
    pub key: KeySpec,
    /// The previous root, for a rotated root (default: N-1.root.json beside FILE).
    #[arg(long, value_name = "FILE")]
    pub previous: Option<PathBuf>,
    /// The root file to sign (rewritten in place).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print the resulting status as JSON.
    #[arg(long)]
    pub json: bool,
    /// Transcript options.
    #[command(flatten)]
    pub log: LogArgs,
}

/// Sign `file` with `key`; returns the TUF key id that signed.
pub fn sign_file(
    file: &Path,
    previous: Option<&Path>,
    spec: &KeySpec,
    log: &LogArgs,
) -> Result<String> {
    let before = crate::fsio::read_limited(file, crate::metadata::MAX_METADATA_LEN)?;
    let (mut root, prev) = load_with_previous(file, previous)?;
    let key = spec.open()?;
    let key_id = PublicKey::ed25519(key.public_key()).key_id();
    let allowed = root.signed.root_keyids().contains(&key_id)
        || prev
            .as_ref()
            .is_some_and(|(_, p)| p.signed.root_keyids().contains(&key_id));
    if !allowed {
        return Err(Error::KeyNotInRole {
            path: file.to_owned(),
            role: "root".into(),
            key_id: key_id.to_string(),
        });
    }
    root.sign_with(key.as_ref(), file)?;
    let sha = write_root(file, &root, true)?;
    log.record(
        file,
        Draft {
            operation: "sign".into(),
            subject: file.display().to_string(),
            version: Some(root.signed.version),
            key_ids: vec![key_id.to_string()],
            sha256_before: Some(sha256_hex(&before)),
            sha256_after: Some(sha),
            note: key.describe(),
            ..Draft::default()
        },
    )?;
    Ok(key_id.to_string())
}

/// Run `sign`.
pub fn run(args: &SignArgs) -> Result<()> {
    let key_id = sign_file(&args.file, args.previous.as_deref(), &args.key, &args.log)?;
    let (root, prev) = load_with_previous(&args.file, args.previous.as_deref())?;
    let status = root_status(&root, prev.as_ref().map(|(_, p)| p))?;
    if !args.json {
        crate::fsio::print(&format!("signed {} with key {key_id}", args.file.display()))?;
    }
    print_status(&args.file, &status, args.json)
}
