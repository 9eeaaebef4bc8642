//! `nightlatch-sign apply`: rebuild a target envelope from its base and a
//! patch, with the device's own applier (host-side check).

use std::path::PathBuf;

use bootloader::delta::MAX_HEAD_LEN;
use clap::Args;

use nightlatch_repo::envelope::MAX_ENVELOPE_LEN;
use nightlatch_repo::{Result, fsio};

use crate::cmd::delta::{apply_patch, delta_error};

/// Arguments of `apply`.
#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// The envelope the patch was made from.
    #[arg(long, value_name = "OLD.envelope")]
    pub base: PathBuf,
    /// The patch.
    #[arg(value_name = "PATCH")]
    pub patch: PathBuf,
    /// Where to write the rebuilt envelope.
    #[arg(short, long, value_name = "NEW.envelope")]
    pub output: PathBuf,
}

/// Run `apply`.
pub fn run(args: &ApplyArgs) -> Result<()> {
    let old = fsio::read_limited(&args.base, MAX_ENVELOPE_LEN)?;
    let patch = fsio::read_limited(&args.patch, MAX_ENVELOPE_LEN + MAX_HEAD_LEN as u64)?;
    let new = apply_patch(&old, &patch)
        .map_err(|e| delta_error(format!("cannot apply {}", args.patch.display()), e))?;
    fsio::write_atomic(&args.output, &new, fsio::Access::Public, true)?;
    fsio::print(&format!(
        "rebuilt {} ({} bytes) from {} and {}",
        args.output.display(),
        new.len(),
        args.base.display(),
        args.patch.display()
    ))
}
