//! `nightlatch-sign sign`: wrap a raw firmware image in a signed envelope.

use std::path::{Path, PathBuf};

use bootloader::anchors::TrustAnchors;
use bootloader::envelope::{
    HardwareModel, Header, MAX_SIGNATURES, PREFIX_LEN, Policy, Prefix, SignatureEntry, Version,
    verify_bytes,
};
use clap::Args;
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::fsio::{self, Access};
use crate::keys;
use crate::params::{parse_model, parse_version};
use crate::summary::EnvelopeSummary;

/// Arguments of `sign`.
#[derive(Debug, Clone, Args)]
pub struct SignArgs {
    /// Private key file (.key from keygen). Repeat for several signatures (at most 8). The
    /// passphrase of an encrypted key comes from $NIGHTLATCH_KEY_PASSPHRASE or is asked at the terminal.
    #[arg(long = "key", value_name = "KEY", required = true)]
    pub keys: Vec<PathBuf>,
    /// Hardware model the image is built for, e.g. nl-lock-v2 ([a-z0-9._-], 1 to 32 characters).
    #[arg(long, value_name = "MODEL")]
    pub model: String,
    /// Firmware version, MAJOR.MINOR.PATCH (each 0 to 65535).
    #[arg(long, value_name = "X.Y.Z")]
    pub version: String,
    /// Security (anti-rollback) counter; devices refuse images below their stored minimum.
    #[arg(long, value_name = "N")]
    pub counter: u32,
    /// The raw firmware image to sign.
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,
    /// Where to write the envelope (replaced atomically if it exists).
    #[arg(short, long, value_name = "ENVELOPE")]
    pub output: PathBuf,
    /// Print a summary of the envelope as JSON (same shape as `inspect --json`).
    #[arg(long)]
    pub json: bool,
}

/// The header fields a release engineer chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// Hardware model.
    pub model: HardwareModel,
    /// Firmware version.
    pub version: Version,
    /// Anti-rollback counter.
    pub security_counter: u32,
}

/// Build a complete envelope (prefix and payload) signed by every key (1 to 8
/// distinct keys), and check it with the bootloader's own verifier before
/// returning it.
pub fn sign_payload(release: &Release, payload: &[u8], keys: &[SigningKey]) -> Result<Vec<u8>> {
    let payload_len = u32::try_from(payload.len()).map_err(|_| Error::TooLarge {
        path: PathBuf::from("the payload"),
        limit: u64::from(u32::MAX),
    })?;
    if keys.len() > MAX_SIGNATURES {
        return Err(Error::TooManyKeys { count: keys.len() });
    }
    let header = Header {
        model: release.model,
        version: release.version,
        security_counter: release.security_counter,
        payload_len,
        payload_sha256: Sha256::digest(payload).into(),
    };
    let signed = header.encode();
    let entries: Vec<SignatureEntry> = keys
        .iter()
        .map(|k| SignatureEntry {
            key_id: keys::key_id_of(&k.verifying_key()),
            signature: k.sign(&signed).to_bytes(),
        })
        .collect();
    let prefix = Prefix::encode(&header, &entries).map_err(|reason| Error::Encode { reason })?;
    let mut envelope = Vec::with_capacity(PREFIX_LEN + payload.len());
    envelope.extend_from_slice(&prefix);
    envelope.extend_from_slice(payload);

    // Every key must verify, exactly as a device holding all of them would check.
    let publics: Vec<[u8; 32]> = keys.iter().map(|k| k.verifying_key().to_bytes()).collect();
    let threshold = u8::try_from(publics.len()).unwrap_or(u8::MAX);
    let anchors =
        TrustAnchors::new(1, threshold, &publics).map_err(|e| Error::anchors(e, publics.len()))?;
    let policy = Policy {
        anchors: &anchors,
        model: Some(&release.model),
        min_security_counter: release.security_counter,
        max_payload_len: u32::MAX,
    };
    verify_bytes(&envelope, &policy).map_err(|reason| Error::SelfCheck { reason })?;
    Ok(envelope)
}

/// Load the signing keys, refusing repeats and more than an envelope holds.
pub fn load_signing_keys(paths: &[PathBuf]) -> Result<Vec<SigningKey>> {
    if paths.len() > MAX_SIGNATURES {
        return Err(Error::TooManyKeys { count: paths.len() });
    }
    let mut loaded: Vec<SigningKey> = Vec::with_capacity(paths.len());
    for path in paths {
        let key = keys::load_private_key(path)?;
        if loaded
            .iter()
            .any(|k| k.verifying_key() == key.verifying_key())
        {
            return Err(Error::DuplicateKey {
                path: path.clone(),
                key_id: keys::key_id_hex(&key.verifying_key()),
            });
        }
        loaded.push(key);
    }
    Ok(loaded)
}

/// Whether `output` is the same file as `input` (both existing).
fn same_file(input: &Path, output: &Path) -> bool {
    match (input.canonicalize(), output.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Run `sign`.
pub fn run(args: &SignArgs) -> Result<()> {
    // Cheap checks first, so a typo is reported before any key is read.
    let release = Release {
        model: parse_model(&args.model)?,
        version: parse_version(&args.version)?,
        security_counter: args.counter,
    };
    if args.keys.len() > MAX_SIGNATURES {
        return Err(Error::TooManyKeys {
            count: args.keys.len(),
        });
    }
    if same_file(&args.image, &args.output) {
        return Err(Error::OutputIsInput {
            path: args.output.clone(),
        });
    }
    let signing_keys = load_signing_keys(&args.keys)?;
    let payload = fsio::read_limited(&args.image, u64::from(u32::MAX))?;
    if payload.is_empty() {
        return Err(Error::EmptyImage {
            path: args.image.clone(),
        });
    }
    if Prefix::parse(&payload).is_ok() {
        return Err(Error::AlreadyEnvelope {
            path: args.image.clone(),
        });
    }

    let envelope = sign_payload(&release, &payload, &signing_keys)?;
    fsio::write_atomic(&args.output, &envelope, Access::Public, true)?;

    let prefix = Prefix::parse(&envelope).map_err(|reason| Error::SelfCheck { reason })?;
    let summary = EnvelopeSummary::from_prefix(&prefix);
    if args.json {
        return fsio::print_json(&summary);
    }
    fsio::print(&format!(
        "signed {} -> {} ({} {}, security counter {}, {} signature(s))",
        args.image.display(),
        args.output.display(),
        summary.hardware_model,
        summary.version,
        summary.security_counter,
        summary.signatures.len(),
    ))
}
