//! Hash checks: whole buffers (metadata) and streamed targets.

use sha2::{Digest, Sha256, Sha512};

use super::metadata::Hashes;

/// Why a hash check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestError {
    /// A listed digest differs.
    Mismatch,
    /// An algorithm other than `sha256`/`sha512` is listed, or none is.
    Unsupported,
}

/// Check every hash listed (all must be supported and match; at least one).
pub fn check_hashes(hashes: &Hashes, bytes: &[u8]) -> Result<(), DigestError> {
    let mut h = Hasher::new(hashes)?;
    h.update(bytes);
    h.finish(hashes)
}

/// Incremental SHA-256 / SHA-512 over the algorithms `hashes` lists.
#[derive(Debug, Clone)]
pub struct Hasher {
    sha256: Option<Sha256>,
    sha512: Option<Sha512>,
}

impl Hasher {
    /// Start hashing for the algorithms listed.
    pub fn new(hashes: &Hashes) -> Result<Self, DigestError> {
        if hashes.0.is_empty() || hashes.0.keys().any(|a| a != "sha256" && a != "sha512") {
            return Err(DigestError::Unsupported);
        }
        Ok(Self {
            sha256: hashes.get("sha256").map(|_| Sha256::new()),
            sha512: hashes.get("sha512").map(|_| Sha512::new()),
        })
    }

    /// Feed bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        if let Some(h) = &mut self.sha256 {
            h.update(bytes);
        }
        if let Some(h) = &mut self.sha512 {
            h.update(bytes);
        }
    }

    /// Compare with the listed digests.
    pub fn finish(self, hashes: &Hashes) -> Result<(), DigestError> {
        if let (Some(h), Some(want)) = (self.sha256, hashes.get("sha256"))
            && h.finalize().as_slice() != want
        {
            return Err(DigestError::Mismatch);
        }
        if let (Some(h), Some(want)) = (self.sha512, hashes.get("sha512"))
            && h.finalize().as_slice() != want
        {
            return Err(DigestError::Mismatch);
        }
        Ok(())
    }
}
