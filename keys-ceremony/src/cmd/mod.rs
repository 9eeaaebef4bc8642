//! The `nightlatch-keys` subcommands: one module each, an `…Args` clap struct
//! and a `run` function over `nightlatch_repo`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use nightlatch_repo::transcript::Log;
use nightlatch_repo::{Clock, Result, SystemClock};

pub mod init;
pub mod keygen;
pub mod rotate;
pub mod sign;
pub mod status;
pub mod verify_chain;

/// Offline root-of-trust ceremony for Nightlatch's TUF repositories.
#[derive(Debug, Parser)]
#[command(name = "nightlatch-keys", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a key: a passphrase-encrypted key file, or a key inside a PKCS#11 token.
    Keygen(keygen::KeygenArgs),
    /// Write an unsigned version-1 root (or, with --dev, complete dev repositories).
    Init(init::InitArgs),
    /// Add one keyholder's signature to a root file.
    Sign(sign::SignArgs),
    /// Show who has signed a root file and whether each threshold is met.
    Status(status::StatusArgs),
    /// Write root N+1 from root N: add, revoke or replace keys, change thresholds.
    Rotate(rotate::RotateArgs),
    /// Verify a chain of roots 1.root.json … N.root.json.
    VerifyChain(verify_chain::VerifyChainArgs),
}

impl Cli {
    /// Run the chosen subcommand on the system clock.
    pub fn run(&self) -> Result<()> {
        self.run_at(&SystemClock)
    }

    /// Run the chosen subcommand with "now" from `clock` (expiries it
    /// writes and checks, transcript times): what in-process tests at a
    /// virtual date use. The binary always runs on the system clock.
    pub fn run_at(&self, clock: &dyn Clock) -> Result<()> {
        match &self.command {
            Command::Keygen(a) => keygen::run(a, clock),
            Command::Init(a) => init::run(a, clock),
            Command::Sign(a) => sign::run(a, clock),
            Command::Status(a) => status::run(a, clock),
            Command::Rotate(a) => rotate::run(a, clock),
            Command::VerifyChain(a) => verify_chain::run(a, clock),
        }
    }
}

/// Where the transcript goes and who is operating.
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Transcript file (default: transcript.jsonl beside the root file).
    #[arg(long, value_name = "FILE")]
    pub transcript: Option<PathBuf>,
    /// Name recorded in the transcript (default: $USER).
    #[arg(long, value_name = "NAME")]
    pub who: Option<String>,
}

impl LogArgs {
    /// The library's transcript settings.
    pub fn log(&self) -> Log {
        Log {
            transcript: self.transcript.clone(),
            who: self.who.clone(),
        }
    }
}
