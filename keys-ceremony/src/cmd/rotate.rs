//! `nightlatch-keys rotate`: root N+1 from root N (unsigned).

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use crate::cmd::status::load_with_previous;
use crate::cmd::{LogArgs, write_root};
use crate::error::{Error, Result};
use crate::fsio;
use crate::keysource::{KeySpec, load_public};
use crate::metadata::expiry::parse_lifetime;
use crate::metadata::{Expiry, KeyId, PublicKey, Signed};
use crate::rotation::{Change, check_role, rotate};
use crate::transcript::Draft;

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
        let key = PublicKey::ed25519(&load_public(&KeySpec::parse(&spec)?)?);
        changes.push(Change::Add { role, key });
    }
    for v in &args.revoke {
        let (role, spec) = split(v, "revoke")?;
        let key_id = match KeyId::parse(&spec) {
            Ok(id) => id,
            Err(_) => PublicKey::ed25519(&load_public(&KeySpec::parse(&spec)?)?).key_id(),
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

/// Run `rotate`.
pub fn run(args: &RotateArgs) -> Result<()> {
    let (prev, _) = load_with_previous(&args.from, None)?;
    let role = prev
        .signed
        .role("root")
        .cloned()
        .unwrap_or(crate::metadata::RoleKeys {
            keyids: Vec::new(),
            threshold: 1,
        });
    let what = format!(
        "{} (root version {})",
        args.from.display(),
        prev.signed.version
    );
    prev.require(&prev.signed.keys, &role, &what, "root")?;
    let lifetime =
        parse_lifetime(&args.expires).map_err(|r| Error::usage(r, "pass --expires like 365d"))?;
    let changes = changes(args)?;
    let next = rotate(&prev.signed, &changes, Expiry::in_(lifetime)).map_err(|r| {
        Error::usage(
            format!("cannot rotate: {r}"),
            "check the --add/--revoke/--threshold options against `nightlatch-keys status`",
        )
    })?;
    let out = args.out.clone().unwrap_or_else(|| {
        args.from
            .with_file_name(format!("{}.root.json", next.version))
    });
    let next = Signed::new(next)?;
    let sha = write_root(&out, &next, args.force)?;
    let key_ids = changes
        .iter()
        .filter_map(|c| match c {
            Change::Add { key, .. } => Some(key.key_id().to_string()),
            Change::Revoke { key_id, .. } => Some(key_id.to_string()),
            Change::Threshold { .. } => None,
        })
        .collect();
    args.log.record(
        &out,
        Draft {
            operation: "rotate".into(),
            subject: format!("{} -> {}", args.from.display(), out.display()),
            version: Some(next.signed.version),
            key_ids,
            sha256_after: Some(sha),
            note: format!("threshold changes {:?}", args.threshold),
            ..Draft::default()
        },
    )?;
    let report = RotateReport {
        root: out.display().to_string(),
        version: next.signed.version,
        previous_threshold: role.threshold,
        threshold: next.signed.role("root").map_or(1, |r| r.threshold),
    };
    if args.json {
        return fsio::print_json(&report);
    }
    fsio::print(&format!(
        "wrote unsigned root version {} to {}\nit needs {} signature(s) by root {} keys and {} by its own root keys: `nightlatch-keys sign --key KEY {}`",
        report.version,
        report.root,
        report.previous_threshold,
        prev.signed.version,
        report.threshold,
        report.root
    ))
}
