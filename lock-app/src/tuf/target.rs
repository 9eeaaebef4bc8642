//! What the client tells its caller about a target, and how a downloaded
//! target is checked (streaming, so the lock can write it to DFU as it
//! arrives).

use alloc::string::String;

use serde::Deserialize;
use serde_json::Value;

use super::digest::{DigestError, Hasher};
use super::error::{Result, TufError};
use super::metadata::{Hashes, TargetFile};

/// A target name that is safe to use as a relative path: not empty, no
/// leading `/`, no `\`, no NUL, no empty, `.` or `..` segment.
pub fn check_target_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 1024
        || name.contains(['\\', '\0'])
        || name
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
    if bad {
        Err(TufError::InvalidTargetName)
    } else {
        Ok(())
    }
}

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
        let hex = super::encoding::hex_encode(digest);
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

/// Checks a target's bytes as they arrive: never more than the signed
/// length, then exact length and every signed hash.
#[derive(Debug, Clone)]
pub struct TargetVerifier {
    expected: u64,
    seen: u64,
    hasher: Hasher,
    hashes: Hashes,
}

impl TargetVerifier {
    /// Start checking the target `info` describes.
    pub fn new(info: &TargetInfo) -> Result<Self> {
        let hasher = Hasher::new(&info.file.hashes).map_err(|_| TufError::UnsupportedHash)?;
        Ok(Self {
            expected: info.file.length,
            seen: 0,
            hasher,
            hashes: info.file.hashes.clone(),
        })
    }

    /// Feed the next chunk; refuses bytes past the signed length.
    pub fn update(&mut self, chunk: &[u8]) -> Result<()> {
        let len = u64::try_from(chunk.len()).map_err(|_| TufError::TargetTooLarge)?;
        let seen = self.seen.saturating_add(len);
        if seen > self.expected {
            return Err(TufError::TargetTooLarge);
        }
        self.seen = seen;
        self.hasher.update(chunk);
        Ok(())
    }

    /// Exact length and hashes.
    pub fn finish(self) -> Result<()> {
        if self.seen != self.expected {
            return Err(TufError::TargetLengthMismatch);
        }
        self.hasher.finish(&self.hashes).map_err(|e| match e {
            DigestError::Mismatch => TufError::TargetHashMismatch,
            DigestError::Unsupported => TufError::UnsupportedHash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names() {
        for ok in ["a", "nl-lock-v2/1.0.0.nlfw", "a/b/c.bin", "..a"] {
            assert_eq!(check_target_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "..",
            "a//b",
            "a/",
            "./a",
            "a\\b",
            "a\0",
        ] {
            assert_eq!(
                check_target_name(bad),
                Err(TufError::InvalidTargetName),
                "{bad}"
            );
        }
    }
}
