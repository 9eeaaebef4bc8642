//! `nightlatch-sign repo …`: start a TUF repository, add rotated roots,
//! delegate a hardware model to its own release keys, and refresh snapshot
//! and timestamp.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use nightlatch_repo::keys::open_key_sources;
use nightlatch_repo::keysource::{KeySpec, load_public};
use nightlatch_repo::repo::expiries::lifetime;
use nightlatch_repo::repo::{Expiries, delegate, refresh, roots};
use nightlatch_repo::{Clock, Result, fsio};

/// Arguments of `repo`.
#[derive(Debug, Clone, Args)]
pub struct RepoArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: RepoCommand,
}

/// The `repo` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum RepoCommand {
    /// Start a repository with a fully signed root (from nightlatch-keys).
    Init {
        /// The repository directory (created).
        #[arg(long, value_name = "DIR")]
        repo: PathBuf,
        /// The trusted root, e.g. 1.root.json.
        #[arg(value_name = "ROOT")]
        root: PathBuf,
    },
    /// Add root N+1, signed by thresholds of root N's and its own root keys.
    AddRoot {
        /// The repository directory.
        #[arg(long, value_name = "DIR")]
        repo: PathBuf,
        /// The new root file.
        #[arg(value_name = "ROOT")]
        root: PathBuf,
    },
    /// Delegate a hardware model's targets (paths MODEL/*) to its own release keys.
    Delegate {
        /// The repository directory.
        #[arg(long, value_name = "DIR")]
        repo: PathBuf,
        /// Top-level targets key(s) signing the delegation. Repeatable.
        #[arg(long = "key", value_name = "KEY", required = true)]
        keys: Vec<KeySpec>,
        /// The hardware model.
        #[arg(long, value_name = "MODEL")]
        model: String,
        /// The model's release key (.pub or pkcs11: URI). Repeatable.
        #[arg(long = "delegate-key", value_name = "KEY", required = true)]
        delegate_keys: Vec<KeySpec>,
        /// Signatures the model's targets need.
        #[arg(long, value_name = "N", default_value_t = 1)]
        threshold: u32,
        /// Lifetime of the targets metadata written.
        #[arg(long, value_name = "DURATION", default_value = "90d")]
        targets_expires: String,
    },
    /// Re-sign snapshot and timestamp with the online keys.
    Refresh {
        /// The repository directory.
        #[arg(long, value_name = "DIR")]
        repo: PathBuf,
        /// Snapshot key(s). Repeatable.
        #[arg(long = "snapshot-key", value_name = "KEY", required = true)]
        snapshot_keys: Vec<KeySpec>,
        /// Timestamp key(s). Repeatable.
        #[arg(long = "timestamp-key", value_name = "KEY", required = true)]
        timestamp_keys: Vec<KeySpec>,
        /// Lifetime of a new snapshot.
        #[arg(long, value_name = "DURATION", default_value = "7d")]
        snapshot_expires: String,
        /// Lifetime of the timestamp.
        #[arg(long, value_name = "DURATION", default_value = "1d")]
        timestamp_expires: String,
    },
}

/// Run `repo …`.
pub fn run(args: &RepoArgs, clock: &dyn Clock) -> Result<()> {
    match &args.command {
        RepoCommand::Init { repo, root } => {
            let version = roots::init(repo, root)?;
            fsio::print(&format!(
                "started repository {} with root version {version}",
                repo.display()
            ))
        }
        RepoCommand::AddRoot { repo, root } => {
            let changed = roots::add(repo, root)?;
            let mut out = format!("added {} to {}", root.display(), repo.display());
            if !changed.is_empty() {
                out.push_str(&format!(
                    "\nkeys or thresholds changed for: {}; sign them again (publish for targets, repo refresh for snapshot/timestamp)",
                    changed.join(", ")
                ));
            }
            fsio::print(&out)
        }
        RepoCommand::Delegate {
            repo,
            keys,
            model,
            delegate_keys,
            threshold,
            targets_expires,
        } => {
            let expiries = Expiries {
                targets: lifetime(targets_expires, "targets-expires")?,
                ..Expiries::default()
            };
            let publics = delegate_keys
                .iter()
                .map(load_public)
                .collect::<Result<Vec<_>>>()?;
            let keys = open_key_sources(keys)?;
            let written =
                delegate::delegate(repo, &keys, model, &publics, *threshold, &expiries, clock)?;
            fsio::print(&format!(
                "delegated {model}/* to {} key(s), threshold {threshold}: wrote {written}",
                publics.len()
            ))
        }
        RepoCommand::Refresh {
            repo,
            snapshot_keys,
            timestamp_keys,
            snapshot_expires,
            timestamp_expires,
        } => {
            let expiries = Expiries {
                snapshot: lifetime(snapshot_expires, "snapshot-expires")?,
                timestamp: lifetime(timestamp_expires, "timestamp-expires")?,
                ..Expiries::default()
            };
            let mut specs = snapshot_keys.clone();
            specs.extend(
                timestamp_keys
                    .iter()
                    .filter(|k| !snapshot_keys.contains(k))
                    .cloned(),
            );
            let keys = open_key_sources(&specs)?;
            let r = refresh::refresh(repo, &keys, &expiries, clock)?;
            fsio::print(&format!(
                "snapshot version {}{}, timestamp version {} (expires {})",
                r.snapshot_version,
                if r.new_snapshot {
                    " (new)"
                } else {
                    " (unchanged)"
                },
                r.timestamp_version,
                r.timestamp_expires
            ))
        }
    }
}
