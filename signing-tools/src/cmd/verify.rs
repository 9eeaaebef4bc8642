//! `nightlatch-sign verify`: check an envelope exactly as the bootloader does.

use std::path::PathBuf;

use bootloader::anchors::TrustAnchors;
use bootloader::envelope::{HardwareModel, Policy, Prefix, VerifiedImage, verify_bytes};
use clap::Args;
use serde::Serialize;

use nightlatch_repo::envelope::MAX_ENVELOPE_LEN;
use nightlatch_repo::params::parse_model;
use nightlatch_repo::{Error, Result, fsio, keys};

use crate::summary::EnvelopeSummary;

/// Arguments of `verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Trusted public key (.pub, or a .key whose public half is used; an encrypted .key needs
    /// its passphrase, so prefer the .pub). Repeat for several.
    #[arg(long = "anchor", value_name = "PUB", required = true)]
    pub anchors: Vec<PathBuf>,
    /// How many distinct anchors must have signed.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threshold: u8,
    /// Require this hardware model.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Require a security counter of at least N (the device's stored minimum).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub min_counter: u32,
    /// The envelope to check.
    #[arg(value_name = "ENVELOPE")]
    pub envelope: PathBuf,
    /// Print the result as JSON (also on failure).
    #[arg(long)]
    pub json: bool,
}

/// The `--json` output of `verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Whether the envelope is valid.
    pub valid: bool,
    /// The envelope's fields (when valid).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<EnvelopeSummary>,
    /// Distinct trusted keys whose signatures verified (when valid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signers: Option<u8>,
    /// Why the envelope was refused (when not valid).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Load the anchors and verify the envelope file.
pub fn verify_file(args: &VerifyArgs) -> Result<(EnvelopeSummary, VerifiedImage)> {
    let model: Option<HardwareModel> = args.model.as_deref().map(parse_model).transpose()?;
    let mut publics = Vec::with_capacity(args.anchors.len());
    for path in &args.anchors {
        publics.push(keys::load_public_key(path)?.to_bytes());
    }
    let anchors = TrustAnchors::new(1, args.threshold, &publics)
        .map_err(|e| Error::anchors(e, publics.len()))?;
    let bytes = fsio::read_limited(&args.envelope, MAX_ENVELOPE_LEN)?;
    let policy = Policy {
        anchors: &anchors,
        model: model.as_ref(),
        min_security_counter: args.min_counter,
        max_payload_len: u32::MAX,
    };
    let rejected = |reason| Error::rejected(&args.envelope, reason);
    let verified = verify_bytes(&bytes, &policy).map_err(rejected)?;
    let prefix = Prefix::parse(&bytes).map_err(rejected)?;
    Ok((EnvelopeSummary::from_prefix(&prefix), verified))
}

/// Run `verify`.
pub fn run(args: &VerifyArgs) -> Result<()> {
    match verify_file(args) {
        Ok((summary, verified)) => {
            if args.json {
                return fsio::print_json(&VerifyReport {
                    valid: true,
                    envelope: Some(summary),
                    signers: Some(verified.signers()),
                    error: None,
                });
            }
            fsio::print(&format!(
                "OK {}: {} {}, security counter {}, signed by {} trusted key(s), {} required",
                args.envelope.display(),
                summary.hardware_model,
                summary.version,
                summary.security_counter,
                verified.signers(),
                args.threshold,
            ))
        }
        Err(err) => {
            if args.json {
                fsio::print_json(&VerifyReport {
                    valid: false,
                    envelope: None,
                    signers: None,
                    error: Some(err.to_string()),
                })?;
            }
            Err(err)
        }
    }
}
