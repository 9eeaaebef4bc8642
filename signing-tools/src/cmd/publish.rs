//! `nightlatch-sign publish`: add envelopes to a TUF repository, signed by the
//! release key(s).

use std::path::PathBuf;

use clap::Args;
use keys_ceremony::keysource::{KeySpec, open_all};

use crate::error::Result;
use crate::fsio;
use crate::repo::Expiries;
use crate::repo::expiries::lifetime;
use crate::repo::publish::publish;

/// Arguments of `publish`.
#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    /// The repository directory (made by `repo init`).
    #[arg(long, value_name = "DIR")]
    pub repo: PathBuf,
    /// Release key: a .key file (plain or passphrase-encrypted) or a pkcs11: URI. Repeatable.
    #[arg(long = "key", value_name = "KEY", required = true)]
    pub keys: Vec<KeySpec>,
    /// Lifetime of the targets metadata written.
    #[arg(long, value_name = "DURATION", default_value = "90d")]
    pub targets_expires: String,
    /// Envelopes to publish. None: re-sign top-level targets (fresh expiry, new keys).
    #[arg(value_name = "ENVELOPE")]
    pub files: Vec<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `publish`.
pub fn run(args: &PublishArgs) -> Result<()> {
    let expiries = Expiries {
        targets: lifetime(&args.targets_expires, "targets-expires")?,
        ..Expiries::default()
    };
    let keys = open_all(&args.keys)?;
    let report = publish(&args.repo, &keys, &args.files, &expiries)?;
    if args.json {
        return fsio::print_json(&report);
    }
    let mut out = String::new();
    for t in &report.added {
        out.push_str(&format!("added      {t}\n"));
    }
    for t in &report.unchanged {
        out.push_str(&format!("unchanged  {t} (already published)\n"));
    }
    for m in &report.metadata {
        out.push_str(&format!("wrote      {m}\n"));
    }
    out.push_str("clients see this after `nightlatch-sign repo refresh` (snapshot and timestamp)");
    fsio::print(&out)
}
