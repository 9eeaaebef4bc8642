//! `nightlatch-keys sign`: one keyholder adds a signature to a root file that
//! travels from keyholder to keyholder.

use std::path::PathBuf;

use clap::Args;
use nightlatch_repo::ceremony::sign_file;
use nightlatch_repo::keysource::KeySpec;
use nightlatch_repo::status::{load_with_previous, root_status};
use nightlatch_repo::{Clock, Result, fsio};

use crate::cmd::LogArgs;
use crate::cmd::status::print_status;

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

/// Run `sign`.
pub fn run(args: &SignArgs, clock: &dyn Clock) -> Result<()> {
    let key_id = sign_file(
        &args.file,
        args.previous.as_deref(),
        &args.key,
        &args.log.log(),
        clock,
    )?;
    let (root, prev) = load_with_previous(&args.file, args.previous.as_deref())?;
    let status = root_status(&root, prev.as_ref().map(|(_, p)| p), clock)?;
    if !args.json {
        fsio::print(&format!("signed {} with key {key_id}", args.file.display()))?;
    }
    print_status(&args.file, &status, args.json)
}
