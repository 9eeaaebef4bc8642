//! `nightlatch-keys init`: an unsigned version-1 root for one repository
//! (image or director), or with `--dev` complete dev repositories.

use nightlatch_repo::metadata::Metadata as _;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use nightlatch_repo::ceremony::write_root;
use nightlatch_repo::keysource::{KeySpec, load_public};
use nightlatch_repo::metadata::expiry::parse_lifetime;
use nightlatch_repo::metadata::{Root, Signed};
use nightlatch_repo::transcript::Draft;
use nightlatch_repo::{Clock, Error, Result, dev, fsio};
use serde::Serialize;

use crate::cmd::LogArgs;

/// Which TUF repository a root is for (recorded in the transcript).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Repository {
    /// The image repository: which firmware exists.
    Image,
    /// The director repository: which lock installs what.
    Director,
}

impl Repository {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Director => "director",
        }
    }
}

/// Arguments of `init`.
#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Make dev keys and fully signed roots for both repositories under OUT
    /// (a directory). UNSAFE for production: the keys are not encrypted.
    #[arg(long)]
    pub dev: bool,
    /// The root file to write (e.g. ceremony/image/1.root.json); with --dev, a directory.
    #[arg(short, long, value_name = "PATH")]
    pub out: PathBuf,
    /// Which repository this root is for.
    #[arg(long, value_enum, default_value_t = Repository::Image)]
    pub repository: Repository,
    /// Root key (.pub file, or pkcs11: URI). Repeat for M-of-N.
    #[arg(long = "root-key", value_name = "KEY")]
    pub root_keys: Vec<KeySpec>,
    /// Root signatures required.
    #[arg(long, value_name = "M", default_value_t = 1)]
    pub root_threshold: u32,
    /// Targets (release) key. Repeatable.
    #[arg(long = "targets-key", value_name = "KEY")]
    pub targets_keys: Vec<KeySpec>,
    /// Targets signatures required.
    #[arg(long, value_name = "M", default_value_t = 1)]
    pub targets_threshold: u32,
    /// Snapshot (online) key. Repeatable.
    #[arg(long = "snapshot-key", value_name = "KEY")]
    pub snapshot_keys: Vec<KeySpec>,
    /// Snapshot signatures required.
    #[arg(long, value_name = "M", default_value_t = 1)]
    pub snapshot_threshold: u32,
    /// Timestamp (online) key. Repeatable.
    #[arg(long = "timestamp-key", value_name = "KEY")]
    pub timestamp_keys: Vec<KeySpec>,
    /// Timestamp signatures required.
    #[arg(long, value_name = "M", default_value_t = 1)]
    pub timestamp_threshold: u32,
    /// Root lifetime, e.g. 365d, 26weeks.
    #[arg(long, value_name = "DURATION", default_value = "365d")]
    pub expires: String,
    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Transcript options.
    #[command(flatten)]
    pub log: LogArgs,
}

/// What `init` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    /// The root file.
    pub root: String,
    /// Repository.
    pub repository: Repository,
    /// Expiry.
    pub expires: String,
    /// Root keys needed before it can be published.
    pub root_threshold: u32,
}

/// Build the unsigned root from the arguments, expiring `--expires` after
/// `clock`'s now.
pub fn build_root(args: &InitArgs, clock: &dyn Clock) -> Result<Root> {
    let lifetime = parse_lifetime(&args.expires)
        .map_err(|r| Error::usage(r, "pass --expires like 365d or 52weeks"))?;
    let mut root = Root::new(1, clock.expires_in(lifetime).unix());
    let roles = [
        ("root", &args.root_keys, args.root_threshold),
        ("targets", &args.targets_keys, args.targets_threshold),
        ("snapshot", &args.snapshot_keys, args.snapshot_threshold),
        ("timestamp", &args.timestamp_keys, args.timestamp_threshold),
    ];
    for (role, specs, threshold) in roles {
        if specs.is_empty() {
            return Err(Error::usage(
                format!("no {role} key given"),
                format!("pass --{role}-key KEY.pub (or a pkcs11: URI) at least once"),
            ));
        }
        let mut keys = Vec::new();
        for spec in specs {
            let key = load_public(spec)?;
            if keys.contains(&key) {
                return Err(Error::usage(
                    format!("{} is given twice for {role}", spec.describe()),
                    "each key of a role must be different",
                ));
            }
            keys.push(key);
        }
        if threshold == 0 || threshold as usize > keys.len() {
            return Err(Error::usage(
                format!("--{role}-threshold {threshold} with {} key(s)", keys.len()),
                format!("the threshold must be between 1 and the number of {role} keys"),
            ));
        }
        root.set_role(role, &keys, threshold);
    }
    Ok(root)
}

/// Run `init` at `clock`'s now.
pub fn run(args: &InitArgs, clock: &dyn Clock) -> Result<()> {
    if args.dev {
        let report = dev::make(&args.out, args.force, &args.log.log(), clock)?;
        if args.json {
            return fsio::print_json(&report);
        }
        return fsio::print(&report.text());
    }
    let root = Signed::new(build_root(args, clock)?)?;
    let sha = write_root(&args.out, &root, args.force)?;
    args.log.log().record(
        &args.out,
        Draft {
            operation: "init".into(),
            subject: format!("{} root {}", args.repository.name(), args.out.display()),
            version: Some(1),
            key_ids: root.signed.keys.keys().map(ToString::to_string).collect(),
            sha256_after: Some(sha),
            ..Draft::default()
        },
        clock,
    )?;
    let report = InitReport {
        root: args.out.display().to_string(),
        repository: args.repository,
        expires: root.signed.expires().to_string(),
        root_threshold: args.root_threshold,
    };
    if args.json {
        return fsio::print_json(&report);
    }
    fsio::print(&format!(
        "wrote unsigned {} root version 1 to {} (expires {})\nnext: each root keyholder runs `nightlatch-keys sign --key KEY {}` ({} signature(s) needed)",
        args.repository.name(),
        report.root,
        report.expires,
        report.root,
        report.root_threshold
    ))
}
