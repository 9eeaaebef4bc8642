//! `nightlatch-keys rotate`: root N+1 from root N (unsigned).

use std::path::PathBuf;

use clap::Args;
use nightlatch_repo::ceremony::rotate_file;
use nightlatch_repo::keysource::{KeySpec, load_public};
use nightlatch_repo::metadata::expiry::parse_lifetime;
use nightlatch_repo::metadata::{KeyIdOf, parse_key_id};
use nightlatch_repo::rotation::{Change, check_role};
use nightlatch_repo::{Clock, Error, Result, fsio};
use serde::Serialize;

use crate::cmd::LogArgs;

/// Arguments of `rotate`.
#[derive(Debug, Clone, Args)]
pub struct RotateArgs {
    /// The current root N (fully signed).
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Where to write root N+1 (default: N+1.root.json beside --from).
    #[arg(short, long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Add a key to a role: ROLE=KEY (.pub file or pkcs11: URI). Repeatable.
    #[arg(long = "add", value_name = "ROLE=KEY")]
    pub add: Vec<String>,
    /// Revoke a key of a role: ROLE=KEYID or ROLE=KEY.pub. Repeatable.
    #[arg(long = "revoke", value_name = "ROLE=KEY")]
    pub revoke: Vec<String>,
    /// Set a role's threshold: ROLE=N. Repeatable.
    #[arg(long = "threshold", value_name = "ROLE=N")]
    pub threshold: Vec<String>,
    /// Lifetime of the new root, e.g. 365d.
    #[arg(long, value_name = "DURATION", default_value = "365d")]
    pub expires: String,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Transcript options.
    #[command(flatten)]
    pub log: LogArgs,
}

/// What `rotate` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct RotateReport {
    /// The new root file.
    pub root: String,
    /// Its version.
    pub version: u64,
    /// Signatures needed by the previous root's keys.
    pub previous_threshold: u32,
    /// Signatures needed by its own root keys.
    pub threshold: u32,
}

fn split(value: &str, flag: &str) -> Result<(String, String)> {
    let (role, rest) = value.split_once('=').ok_or_else(|| {
        Error::usage(
            format!("--{flag} {value:?} is not ROLE=VALUE"),
            format!("write e.g. --{flag} root=keys/alice.pub"),
        )
    })?;
    check_role(role).map_err(|r| Error::usage(r, format!("write e.g. --{flag} root=…")))?;
    Ok((role.to_owned(), rest.to_owned()))
}

/// The changes the arguments ask for.
pub fn changes(args: &RotateArgs) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    for v in &args.add {
        let (role, spec) = split(v, "add")?;
        let key = load_public(&KeySpec::parse(&spec)?)?;
        changes.push(Change::Add { role, key });
    }
    for v in &args.revoke {
        let (role, spec) = split(v, "revoke")?;
        let key_id = match parse_key_id(&spec) {
            Ok(id) => id,
            Err(_) => load_public(&KeySpec::parse(&spec)?)?.key_id(),
        };
        changes.push(Change::Revoke { role, key_id });
    }
    for v in &args.threshold {
        let (role, n) = split(v, "threshold")?;
        let threshold = n.parse().map_err(|_| {
            Error::usage(
                format!("--threshold {v:?}: {n:?} is not a number"),
                "write e.g. --threshold root=3",
            )
        })?;
        changes.push(Change::Threshold { role, threshold });
    }
    Ok(changes)
}

/// Run `rotate` at `clock`'s now.
pub fn run(args: &RotateArgs, clock: &dyn Clock) -> Result<()> {
    let lifetime =
        parse_lifetime(&args.expires).map_err(|r| Error::usage(r, "pass --expires like 365d"))?;
    let changes = changes(args)?;
    let rotated = rotate_file(
        &args.from,
        args.out.as_deref(),
        &changes,
        lifetime,
        args.force,
        &args.log.log(),
        clock,
    )?;
    let report = RotateReport {
        root: rotated.path.display().to_string(),
        version: rotated.version,
        previous_threshold: rotated.previous_threshold,
        threshold: rotated.threshold,
    };
    if args.json {
        return fsio::print_json(&report);
    }
    fsio::print(&format!(
        "wrote unsigned root version {} to {}\nit needs {} signature(s) by root {} keys and {} by its own root keys: `nightlatch-keys sign --key KEY {}`",
        report.version,
        report.root,
        report.previous_threshold,
        rotated.previous_version,
        report.threshold,
        report.root
    ))
}
