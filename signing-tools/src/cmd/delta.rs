//! `nightlatch-sign delta`: make a patch from one signed envelope to the
//! next (`nightlatch_repo::delta`), and check it with the device's own
//! applier on the bootloader's flash simulator before writing it.

use std::path::PathBuf;

use bootloader::delta::DeltaError;
use bootloader::delta::encode::apply_on_sim;
use clap::Args;
use nightlatch_repo::delta::{self, Made, Progress, split_envelope};
use nightlatch_repo::envelope::MAX_ENVELOPE_LEN;
use nightlatch_repo::{Error, Result, fsio};
use serde::Serialize;

/// Arguments of `delta`.
#[derive(Debug, Clone, Args)]
pub struct DeltaArgs {
    /// The envelope the locks run now (the patch's base).
    #[arg(long, value_name = "OLD.envelope")]
    pub from: PathBuf,
    /// The envelope to deliver.
    #[arg(long, value_name = "NEW.envelope")]
    pub to: PathBuf,
    /// Where to write the patch.
    #[arg(short, long, value_name = "PATCH")]
    pub output: PathBuf,
    /// Print a JSON summary (and no progress bar).
    #[arg(long)]
    pub json: bool,
}

/// What `delta` reports.
#[derive(Debug, Serialize)]
pub struct DeltaSummary {
    /// Patch path.
    pub patch: PathBuf,
    /// Patch bytes.
    pub patch_bytes: u64,
    /// Target envelope bytes.
    pub target_bytes: u64,
    /// Patch ÷ target envelope.
    pub ratio: f64,
    /// Seconds spent matching and encoding.
    pub seconds: f64,
    /// The instruction-set transform chosen (`plain`, `xtensa`, `thumb2`).
    pub transform: String,
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
#[derive(Debug)]
pub struct Bar(indicatif::ProgressBar);

impl Bar {
    /// A bar, or a hidden one.
    pub fn new(visible: bool) -> Self {
        let bar = if visible {
            indicatif::ProgressBar::new(0)
        } else {
            indicatif::ProgressBar::hidden()
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{prefix:>9} [{bar:40}] {percent:>3}% {elapsed_precise}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        Self(bar)
    }
}

impl Progress for Bar {
    fn start(&self, phase: &str, total: u64) {
        self.0.reset();
        self.0.set_prefix(phase.to_string());
        self.0.set_length(total);
        self.0.set_position(0);
    }
    fn set(&self, done: u64) {
        self.0.set_position(done);
    }
    fn finish(&self) {
        self.0.set_position(self.0.length().unwrap_or(0));
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Make a patch from one envelope to another, and check that the device's
/// applier (on simulated flash) rebuilds the target from it bit for bit.
pub fn make_checked(
    old_env: &[u8],
    new_env: &[u8],
    progress: &dyn Progress,
) -> Result<Made, DeltaError> {
    let made = delta::make_patch(old_env, new_env, progress)?;
    progress.start("checking", 1);
    let rebuilt = apply_on_sim(old_env, &made.patch);
    progress.finish();
    if rebuilt? != new_env {
        return Err(DeltaError::TargetDigestMismatch);
    }
    Ok(made)
}

/// Apply a patch to an envelope with the device's applier on simulated
/// flash (host side): the rebuilt target envelope.
pub fn apply_patch(old_env: &[u8], patch: &[u8]) -> Result<Vec<u8>, DeltaError> {
    split_envelope(old_env)?;
    apply_on_sim(old_env, patch)
}

/// Explain a delta failure.
pub fn delta_error(what: impl Into<String>, reason: DeltaError) -> Error {
    let help = match reason {
        DeltaError::BaseMismatch => {
            "the base envelope is not the one this patch was made from; deliver the full image"
        }
        DeltaError::BadTargetPrefix(_) => {
            "pass complete envelopes made by `nightlatch-sign sign` (inspect them to check)"
        }
        DeltaError::BadMagic | DeltaError::UnsupportedFormat(_) => {
            "pass a patch made by `nightlatch-sign delta`"
        }
        _ => "the patch is damaged or incomplete; make it again with `nightlatch-sign delta`",
    };
    Error::Delta {
        what: what.into(),
        reason,
        help: help.to_string(),
    }
}

/// Run `delta`.
pub fn run(args: &DeltaArgs) -> Result<()> {
    let old = fsio::read_limited(&args.from, MAX_ENVELOPE_LEN)?;
    let new = fsio::read_limited(&args.to, MAX_ENVELOPE_LEN)?;
    let bar = Bar::new(!args.json);
    let made = make_checked(&old, &new, &bar)
        .map_err(|e| delta_error(format!("cannot make a patch to {}", args.to.display()), e))?;
    drop(bar);
    fsio::write_atomic(&args.output, &made.patch, fsio::Access::Public, true)?;
    let summary = DeltaSummary {
        patch: args.output.clone(),
        patch_bytes: made.patch.len() as u64,
        target_bytes: new.len() as u64,
        ratio: made.patch.len() as f64 / new.len() as f64,
        seconds: made.elapsed.as_secs_f64(),
        transform: bootloader::delta::transform::name(made.stats.transform).to_owned(),
    };
    if args.json {
        fsio::print_json(&summary)
    } else {
        fsio::print(&format!(
            "patch {} -> {}: {} bytes, {:.2}% of the {}-byte target, {} transform (checked: the device applier rebuilds it bit for bit)",
            args.from.display(),
            args.to.display(),
            summary.patch_bytes,
            100.0 * summary.ratio,
            summary.target_bytes,
            summary.transform
        ))
    }
}
