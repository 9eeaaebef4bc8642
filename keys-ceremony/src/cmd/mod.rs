//! The `nightlatch-keys` subcommands: one module each, an `…Args` clap struct
//! and a `run` function.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::error::Result;
use crate::fsio::{Access, write_atomic};
use crate::metadata::{Root, Signed};
use crate::transcript::{self, Draft};

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
    /// Run the chosen subcommand.
    pub fn run(&self) -> Result<()> {
        match &self.command {
            Command::Keygen(a) => keygen::run(a),
            Command::Init(a) => init::run(a),
            Command::Sign(a) => sign::run(a),
            Command::Status(a) => status::run(a),
            Command::Rotate(a) => rotate::run(a),
            Command::VerifyChain(a) => verify_chain::run(a),
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
    /// Append a transcript line about `file`.
    pub fn record(&self, file: &Path, mut draft: Draft) -> Result<()> {
        draft.who = transcript::who(self.who.as_deref());
        let path = transcript::path_for(self.transcript.as_deref(), file);
        transcript::append(&path, draft).map(|_| ())
    }
}

/// Write root metadata; returns the SHA-256 of the bytes written.
pub fn write_root(path: &Path, root: &Signed<Root>, overwrite: bool) -> Result<String> {
    let bytes = root.to_bytes()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::fsio::create_dir(dir)?;
    }
    write_atomic(path, &bytes, Access::Public, overwrite)?;
    Ok(transcript::sha256_hex(&bytes))
}
