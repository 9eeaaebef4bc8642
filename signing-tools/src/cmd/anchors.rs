//! `nightlatch-sign anchors`: author the records that rotate a lock's trust
//! anchors (the firmware keys its bootloader accepts) without reflashing it.
//!
//! A rotation record carries the new key set and a higher set version, and
//! must be signed by a threshold of the current anchors and of the new ones
//! (see `bootloader/src/anchors.rs`). Keyholders can sign one at a time.

use std::path::PathBuf;

use bootloader::anchors::{KeyId, MAX_ROTATION_LEN, Rotation, TrustAnchors};
use clap::{Args, Subcommand};
use ed25519_dalek::Signer;
use serde::Serialize;

use nightlatch_repo::{Error, Result, fsio, keys};

/// Arguments of `anchors`.
#[derive(Debug, Clone, Args)]
pub struct AnchorsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AnchorsCommand,
}

/// `anchors` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum AnchorsCommand {
    /// Write a rotation record for a new anchor set, signed by the given keys.
    Rotate {
        /// Version of the new set (must exceed the lock's current one).
        #[arg(long, value_name = "N")]
        set_version: u32,
        /// Signatures the new set will require.
        #[arg(long, value_name = "N")]
        threshold: u8,
        /// A key of the new set (.pub or .key). Repeat for several.
        #[arg(long = "new-key", value_name = "PUB", required = true)]
        new_keys: Vec<PathBuf>,
        /// Sign with this private key now (current or new keyholder). Repeat.
        #[arg(long = "sign", value_name = "KEY", required = true)]
        signers: Vec<PathBuf>,
        /// Where to write the record.
        #[arg(short, long, value_name = "RECORD")]
        output: PathBuf,
    },
    /// Add signatures to a rotation record (one keyholder at a time).
    Sign {
        /// Private key to sign with. Repeat for several.
        #[arg(long = "key", value_name = "KEY", required = true)]
        keys: Vec<PathBuf>,
        /// The record, updated in place.
        #[arg(value_name = "RECORD")]
        record: PathBuf,
    },
    /// Check a record exactly as a lock with the given current anchors would.
    Verify {
        /// A current anchor key (.pub or .key). Repeat for several.
        #[arg(long = "current", value_name = "PUB", required = true)]
        current: Vec<PathBuf>,
        /// Version of the current set.
        #[arg(long, value_name = "N", default_value_t = 1)]
        current_version: u32,
        /// Threshold of the current set.
        #[arg(long, value_name = "N", default_value_t = 1)]
        threshold: u8,
        /// The record.
        #[arg(value_name = "RECORD")]
        record: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// What `anchors verify --json` prints.
#[derive(Debug, Serialize)]
pub struct RotationSummary {
    /// Whether the lock would accept it.
    pub valid: bool,
    /// New set version.
    pub set_version: u32,
    /// New threshold.
    pub threshold: u8,
    /// Key ids of the new set.
    pub keys: Vec<String>,
    /// Key ids that signed.
    pub signed_by: Vec<String>,
}

fn set_of(paths: &[PathBuf], version: u32, threshold: u8) -> Result<TrustAnchors> {
    let mut pubs = Vec::with_capacity(paths.len());
    for p in paths {
        pubs.push(keys::load_public_key(p)?.to_bytes());
    }
    TrustAnchors::new(version, threshold, &pubs).map_err(|e| Error::anchors(e, pubs.len()))
}

fn read_record(path: &std::path::Path) -> Result<(Vec<u8>, Rotation)> {
    let bytes = fsio::read_limited(path, MAX_ROTATION_LEN as u64)?;
    let parsed = Rotation::parse(&bytes).map_err(|e| Error::anchors(e, 0))?;
    Ok((bytes, parsed))
}

fn write_record(
    path: &std::path::Path,
    set: &TrustAnchors,
    sigs: &[(KeyId, [u8; 64])],
) -> Result<()> {
    let mut buf = [0u8; MAX_ROTATION_LEN];
    let n = Rotation::encode(set, sigs, &mut buf).map_err(|e| Error::anchors(e, sigs.len()))?;
    fsio::write_atomic(path, &buf[..n], fsio::Access::Public, true)
}

/// Sign the record's signed bytes with each key, replacing earlier
/// signatures by the same key.
fn add_signatures(
    set: &TrustAnchors,
    sigs: &mut Vec<(KeyId, [u8; 64])>,
    signers: &[PathBuf],
) -> Result<()> {
    let mut buf = [0u8; MAX_ROTATION_LEN];
    let n = Rotation::signed_bytes(set, &mut buf);
    for path in signers {
        let key = keys::load_private_key(path)?;
        let id = keys::key_id_of(&key.verifying_key());
        sigs.retain(|(k, _)| *k != id);
        sigs.push((id, key.sign(&buf[..n]).to_bytes()));
    }
    Ok(())
}

/// Run `anchors`.
pub fn run(args: &AnchorsArgs) -> Result<()> {
    match &args.command {
        AnchorsCommand::Rotate {
            set_version,
            threshold,
            new_keys,
            signers,
            output,
        } => {
            let set = set_of(new_keys, *set_version, *threshold)?;
            let mut sigs = vec![];
            add_signatures(&set, &mut sigs, signers)?;
            write_record(output, &set, &sigs)?;
            fsio::print(&format!(
                "rotation record {} (set version {set_version}, {} key(s), threshold {threshold}, {} signature(s))",
                output.display(),
                new_keys.len(),
                sigs.len()
            ))
        }
        AnchorsCommand::Sign {
            keys: signers,
            record,
        } => {
            let (_, parsed) = read_record(record)?;
            let mut sigs: Vec<(KeyId, [u8; 64])> =
                parsed.signatures().map(|(k, s)| (*k, *s)).collect();
            add_signatures(&parsed.anchors, &mut sigs, signers)?;
            write_record(record, &parsed.anchors, &sigs)?;
            fsio::print(&format!(
                "{}: {} signature(s)",
                record.display(),
                sigs.len()
            ))
        }
        AnchorsCommand::Verify {
            current,
            current_version,
            threshold,
            record,
            json,
        } => {
            let set = set_of(current, *current_version, *threshold)?;
            let (bytes, parsed) = read_record(record)?;
            let result = set.rotate(&bytes);
            let summary = RotationSummary {
                valid: result.is_ok(),
                set_version: parsed.anchors.version(),
                threshold: parsed.anchors.threshold(),
                keys: parsed
                    .anchors
                    .keys()
                    .iter()
                    .map(|k| hex::encode(bootloader::anchors::key_id(k)))
                    .collect(),
                signed_by: parsed.signatures().map(|(k, _)| hex::encode(k)).collect(),
            };
            if *json {
                fsio::print_json(&summary)?;
            }
            match result {
                Ok(_) if !*json => fsio::print(&format!(
                    "OK {}: a lock with these anchors accepts set version {}",
                    record.display(),
                    summary.set_version
                )),
                Ok(_) => Ok(()),
                Err(e) => Err(Error::anchors(e, current.len())),
            }
        }
    }
}
