//! What `publish` accepts, and the custom metadata each target carries.
//!
//! A target's `custom` object holds a `nightlatch` object, so a lock (or any
//! TUF client) learns what a file is before downloading it:
//!
//! ```json
//! "custom": { "nightlatch": {
//!     "kind": "firmware",
//!     "hardware_model": "nl-lock-v2",
//!     "version": "1.4.2",
//!     "security_counter": 7,
//!     "payload_length": 5000,
//!     "payload_sha256": "b795…"
//! } }
//! ```
//!
//! Patches (delta updates) are `"kind": "patch"` with `base` and `target`
//! objects (`version`, `sha256`, `length` of the envelope the patch applies
//! to and of the one it rebuilds); see [`crate::repo::patch`]. Any other file
//! is refused.

use crate::metadata::Hashes;
use sha2::{Digest, Sha256};
use std::path::Path;

use bootloader::envelope::{EnvelopeError, MAGIC, Prefix};

use crate::envelope::MAX_ENVELOPE_LEN;
use crate::error::{Error, Result};
use crate::fsio::read_limited;
use crate::metadata::TargetFile;

/// What kind of file a target is, one envelope's identity as a patch's
/// `base` or `target` names it, and the whole `custom.nightlatch` object of
/// a target: the protocol crate's types, so the tools write exactly what the
/// lock reads.
pub use nightlatch_proto::custom::{EnvelopeRef, NightlatchCustom as Custom, TargetKind as Kind};

/// A file ready to publish.
#[derive(Debug, Clone)]
pub struct TargetEntry {
    /// Target path, `<model>/<version>.nlfw`.
    pub name: String,
    /// Hardware model (chooses the delegated role).
    pub model: String,
    /// Length, hashes and custom metadata.
    pub info: TargetFile,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// A file given to `publish`.
#[derive(Debug, Clone)]
pub enum PublishFile {
    /// A complete envelope.
    Firmware(TargetEntry),
    /// A patch, to be tied to its envelopes.
    Patch(crate::repo::patch::PatchFile),
}

/// Read a file given to `publish`: an envelope or a delta patch.
pub fn read_file(path: &Path) -> Result<PublishFile> {
    let bytes = read_limited(path, MAX_ENVELOPE_LEN)?;
    if bytes.get(..4) == Some(&bootloader::delta::MAGIC[..]) {
        return crate::repo::patch::parse(path, bytes).map(PublishFile::Patch);
    }
    envelope_entry(path, bytes).map(PublishFile::Firmware)
}

/// Read a file given to `publish`: an envelope, checked for structure,
/// length and payload digest (its signatures are the bootloader's business).
pub fn read_target(path: &Path) -> Result<TargetEntry> {
    let bytes = read_limited(path, MAX_ENVELOPE_LEN)?;
    envelope_entry(path, bytes)
}

fn envelope_entry(path: &Path, bytes: Vec<u8>) -> Result<TargetEntry> {
    if bytes.get(..4) != Some(&MAGIC[..]) {
        let reason = match bytes.get(..4) {
            Some(m) => format!("it starts with {}", hex::encode(m)),
            None => "it is shorter than 4 bytes".into(),
        };
        return Err(Error::UnknownTargetFile {
            path: path.to_owned(),
            reason,
        });
    }
    let prefix = Prefix::parse(&bytes).map_err(|e| Error::malformed_envelope(path, e))?;
    let h = prefix.header;
    if h.envelope_len() != bytes.len() as u64 {
        return Err(Error::malformed_envelope(
            path,
            EnvelopeError::LengthMismatch {
                expected: h.envelope_len(),
                actual: bytes.len() as u64,
            },
        ));
    }
    let payload = &bytes[bootloader::envelope::PREFIX_LEN..];
    if Sha256::digest(payload).as_slice() != h.payload_sha256 {
        return Err(Error::malformed_envelope(
            path,
            EnvelopeError::DigestMismatch,
        ));
    }
    let custom = Custom {
        kind: Kind::Firmware,
        hardware_model: h.model.to_string(),
        version: h.version.to_string(),
        security_counter: h.security_counter,
        payload_length: Some(h.payload_len),
        payload_sha256: Some(hex::encode(h.payload_sha256)),
        base: None,
        target: None,
    };
    let info = TargetFile::new(
        bytes.len() as u64,
        Hashes::sha256_of(&bytes),
        Some(serde_json::json!({ "nightlatch": custom })),
    );
    Ok(TargetEntry {
        name: format!("{}/{}.nlfw", h.model, h.version),
        model: h.model.to_string(),
        info,
        bytes,
    })
}
