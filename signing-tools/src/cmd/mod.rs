//! The `nightlatch-sign` subcommands: one module each, an `…Args` clap struct
//! and a `run` function over `nightlatch_repo`.

use clap::{Parser, Subcommand};
use nightlatch_repo::{Clock, Result, SystemClock};

pub mod anchors;
pub mod apply;
pub mod bench_delta;
pub mod delta;
pub mod inspect;
pub mod keygen;
pub mod publish;
pub mod repo;
pub mod sign;
pub mod verify;

pub use anchors::AnchorsArgs;
pub use apply::ApplyArgs;
pub use bench_delta::BenchDeltaArgs;
pub use delta::DeltaArgs;
pub use inspect::InspectArgs;
pub use keygen::KeygenArgs;
pub use publish::PublishArgs;
pub use repo::RepoArgs;
pub use sign::SignArgs;
pub use verify::VerifyArgs;

/// Make Ed25519 keys, and sign, verify and inspect Nightlatch firmware envelopes.
#[derive(Debug, Parser)]
#[command(name = "nightlatch-sign", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate an Ed25519 key pair: OUT.key (private, passphrase-encrypted, mode 0600) and OUT.pub.
    Keygen(KeygenArgs),
    /// Sign a raw firmware image into an envelope.
    Sign(SignArgs),
    /// Check an envelope as the bootloader would; exit 0 only if it is valid.
    Verify(VerifyArgs),
    /// Show what an envelope holds (no signature check).
    Inspect(InspectArgs),
    /// Author records that rotate a lock's trust anchors (firmware keys).
    Anchors(AnchorsArgs),
    /// Make a delta patch from one envelope to the next.
    Delta(DeltaArgs),
    /// Rebuild an envelope from its base and a patch (host-side check).
    Apply(ApplyArgs),
    /// Measure patch size, applier RAM and speed on a firmware corpus.
    BenchDelta(BenchDeltaArgs),
    /// Add envelopes to a TUF repository, signed by the release key(s).
    Publish(PublishArgs),
    /// Manage a TUF repository: init, add-root, delegate, refresh.
    Repo(RepoArgs),
}

impl Cli {
    /// Run the chosen subcommand.
    pub fn run(&self) -> Result<()> {
        self.run_at(&SystemClock)
    }

    /// Run the chosen subcommand with "now" from `clock` (the expiries
    /// `publish` and `repo` sign and check): what in-process tests at a
    /// virtual date use. The binary always runs on the system clock.
    pub fn run_at(&self, clock: &dyn Clock) -> Result<()> {
        match &self.command {
            Command::Keygen(args) => keygen::run(args),
            Command::Sign(args) => sign::run(args),
            Command::Verify(args) => verify::run(args),
            Command::Inspect(args) => inspect::run(args),
            Command::Anchors(args) => anchors::run(args),
            Command::Delta(args) => delta::run(args),
            Command::Apply(args) => apply::run(args),
            Command::BenchDelta(args) => bench_delta::run(args),
            Command::Publish(args) => publish::run(args, clock),
            Command::Repo(args) => repo::run(args, clock),
        }
    }
}
