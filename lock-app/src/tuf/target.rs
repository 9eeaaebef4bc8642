//! What the client tells its caller about a target. How its bytes are
//! checked (streaming, so the lock can write it to DFU as it arrives) is
//! [`nightlatch_proto::tuf::TargetVerifier`].

use alloc::string::String;

use nightlatch_proto::tuf::{Hashes, Result, TargetFile, TargetVerifier, hex_encode};
use serde::Deserialize;
use serde_json::Value;

/// A target the repository vouches for, found through the delegations.
/// Only [`Updater::target_info`](super::Updater::target_info) makes one, so
/// a `TargetInfo` always comes from verified metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetInfo {
    pub(crate) name: String,
    pub(crate) role: String,
    pub(crate) file: TargetFile,
}

impl TargetInfo {
    /// Target name (path), e.g. `nl-lock-v2/1.4.2.nlfw`.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The role whose metadata lists it (`targets` or a delegated role).
    pub fn role(&self) -> &str {
        &self.role
    }
    /// Length, hashes and custom metadata, as signed.
    pub fn file(&self) -> &TargetFile {
        &self.file
    }
    /// Exact length in bytes.
    pub fn length(&self) -> u64 {
        self.file.length
    }
    /// Signed hashes.
    pub fn hashes(&self) -> &Hashes {
        &self.file.hashes
    }
    /// The signed `custom` object.
    pub fn custom(&self) -> Option<&Value> {
        self.file.custom.as_ref()
    }
    /// `custom.nightlatch`, as `nightlatch-sign publish` writes it.
    pub fn nightlatch(&self) -> Option<NightlatchTarget> {
        let v = self.custom()?.get("nightlatch")?;
        NightlatchTarget::deserialize(v).ok()
    }

    /// A checker of bytes against its signed length and hashes.
    pub fn verifier(&self) -> Result<TargetVerifier> {
        TargetVerifier::new(&self.file)
    }

    /// The path to fetch it from: `dir/<hash>.<base>` with consistent
    /// snapshots (the SHA-256 when listed, else the SHA-512), else the name.
    pub fn download_path(&self, consistent_snapshot: bool) -> String {
        if !consistent_snapshot {
            return self.name.clone();
        }
        let digest = self
            .file
            .hashes
            .get("sha256")
            .or_else(|| self.file.hashes.get("sha512"))
            .or_else(|| self.file.hashes.0.values().next().map(|v| v.as_slice()))
            .unwrap_or_default();
        let hex = hex_encode(digest);
        match self.name.rsplit_once('/') {
            Some((dir, base)) => alloc::format!("{dir}/{hex}.{base}"),
            None => alloc::format!("{hex}.{}", self.name),
        }
    }
}

/// `custom.nightlatch` of a Nightlatch target.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NightlatchTarget {
    /// `firmware` (an envelope) or `patch` (a delta).
    pub kind: String,
    /// Hardware model the image is for.
    pub hardware_model: String,
    /// `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// Anti-rollback security counter.
    pub security_counter: u32,
    /// Payload length, when given.
    #[serde(default)]
    pub payload_length: Option<u32>,
    /// Payload SHA-256, hex, when given.
    #[serde(default)]
    pub payload_sha256: Option<String>,
}
