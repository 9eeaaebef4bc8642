//! `nightlatch-sign sign`: wrap a raw firmware image in a signed envelope.

use std::path::{Path, PathBuf};

use bootloader::envelope::{MAX_SIGNATURES, Prefix};
use clap::Args;
use nightlatch_repo::envelope::{Release, load_signing_keys, sign_payload};
use nightlatch_repo::fsio::{self, Access};
use nightlatch_repo::params::{parse_model, parse_version};
use nightlatch_repo::{Error, Result};

use crate::summary::EnvelopeSummary;

/// Arguments of `sign`.
#[derive(Debug, Clone, Args)]
pub struct SignArgs {
    /// Private key file (.key from keygen). Repeat for several signatures (at most 8). The
    /// passphrase of an encrypted key comes from $NIGHTLATCH_KEY_PASSPHRASE or is asked at the terminal.
    #[arg(long = "key", value_name = "KEY", required = true)]
    pub keys: Vec<PathBuf>,
    /// Hardware model the image is built for, e.g. nl-lock-v2 ([a-z0-9._-], 1 to 32 characters).
    #[arg(long, value_name = "MODEL")]
    pub model: String,
    /// Firmware version, MAJOR.MINOR.PATCH (each 0 to 65535).
    #[arg(long, value_name = "X.Y.Z")]
    pub version: String,
    /// Security (anti-rollback) counter; devices refuse images below their stored minimum.
    #[arg(long, value_name = "N")]
    pub counter: u32,
    /// The raw firmware image to sign.
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,
    /// Where to write the envelope (replaced atomically if it exists).
    #[arg(short, long, value_name = "ENVELOPE")]
    pub output: PathBuf,
    /// Print a summary of the envelope as JSON (same shape as `inspect --json`).
    #[arg(long)]
    pub json: bool,
}

/// Whether `output` is the same file as `input` (both existing).
fn same_file(input: &Path, output: &Path) -> bool {
    match (input.canonicalize(), output.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Run `sign`.
pub fn run(args: &SignArgs) -> Result<()> {
    // Cheap checks first, so a typo is reported before any key is read.
    let release = Release {
        model: parse_model(&args.model)?,
        version: parse_version(&args.version)?,
        security_counter: args.counter,
    };
    if args.keys.len() > MAX_SIGNATURES {
        return Err(Error::TooManyKeys {
            count: args.keys.len(),
        });
    }
    if same_file(&args.image, &args.output) {
        return Err(Error::OutputIsInput {
            path: args.output.clone(),
        });
    }
    let signing_keys = load_signing_keys(&args.keys)?;
    let payload = fsio::read_limited(&args.image, u64::from(u32::MAX))?;
    if payload.is_empty() {
        return Err(Error::EmptyImage {
            path: args.image.clone(),
        });
    }
    if Prefix::parse(&payload).is_ok() {
        return Err(Error::AlreadyEnvelope {
            path: args.image.clone(),
        });
    }

    let envelope = sign_payload(&release, &payload, &signing_keys)?;
    fsio::write_atomic(&args.output, &envelope, Access::Public, true)?;

    let prefix = Prefix::parse(&envelope).map_err(|reason| Error::SelfCheck { reason })?;
    let summary = EnvelopeSummary::from_prefix(&prefix);
    if args.json {
        return fsio::print_json(&summary);
    }
    fsio::print(&format!(
        "signed {} -> {} ({} {}, security counter {}, {} signature(s))",
        args.image.display(),
        args.output.display(),
        summary.hardware_model,
        summary.version,
        summary.security_counter,
        summary.signatures.len(),
    ))
}
