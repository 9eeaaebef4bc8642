//! Trust anchors: the firmware keys a lock accepts, and how they rotate.
//!
//! The bootloader is built with a *genesis* anchor set. Afterwards the set lives
//! in the boot records (see [`crate::records`]) and changes only through a
//! [`Rotation`] record that carries a higher set version and is signed by a
//! threshold of the **current** anchors and by a threshold of the **new** set
//! (as TUF does for root rotation, so a typo in a new key cannot lock every
//! device out). A compromised firmware key is thus replaced without
//! reflashing the bootloader, and images signed only by it are refused from
//! then on.
//!
//! Rotation record format (little-endian):
//!
//! ```text
//!  0   4  magic "NLTA"
//!  4   2  format version (1)
//!  6   4  anchor set version (must exceed the current one)
//! 10   1  threshold
//! 11   1  key count n (1..=8)
//! 12 32n  raw Ed25519 public keys                       ← signed: bytes 0..12+32n
//!  …   1  signature count m (1..=16)
//!  …  96m signatures: key id (32) + Ed25519 signature (64)
//! ```

use sha2::{Digest, Sha256};

use crate::envelope::verify_signature;

/// SHA-256 of a raw Ed25519 public key.
pub type KeyId = [u8; 32];

/// Most keys in one anchor set.
pub const MAX_ANCHOR_KEYS: usize = 8;
/// Rotation record magic.
pub const ROTATION_MAGIC: [u8; 4] = *b"NLTA";
/// Most signatures on one rotation record (old and new sets together).
pub const MAX_ROTATION_SIGNATURES: usize = 2 * MAX_ANCHOR_KEYS;
/// Largest encoded rotation record.
pub const MAX_ROTATION_LEN: usize = 12 + 32 * MAX_ANCHOR_KEYS + 1 + 96 * MAX_ROTATION_SIGNATURES;

/// Key id of a raw Ed25519 public key.
pub fn key_id(public: &[u8; 32]) -> KeyId {
    Sha256::digest(public).into()
}

/// Why an anchor set or rotation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnchorError {
    /// Threshold is 0 or exceeds the number of keys, or there are no keys / too many.
    BadThreshold,
    /// Too many keys for [`MAX_ANCHOR_KEYS`].
    TooManyKeys,
    /// A key appears twice.
    DuplicateKey,
    /// A key is not a valid Ed25519 point, or is a weak (small-order) key.
    InvalidKey,
    /// The record is malformed (magic, format, lengths).
    Malformed,
    /// The record's set version does not exceed the current one.
    NotNewer {
        /// Current set version.
        current: u32,
        /// Version in the record.
        offered: u32,
    },
    /// Too few valid signatures by the current set.
    CurrentThresholdNotMet {
        /// Valid signatures by current anchors.
        valid: u8,
        /// Required.
        required: u8,
    },
    /// Too few valid signatures by the new set.
    NewThresholdNotMet {
        /// Valid signatures by new anchors.
        valid: u8,
        /// Required.
        required: u8,
    },
}

impl core::fmt::Display for AnchorError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadThreshold => write!(f, "threshold must be between 1 and the number of keys"),
            Self::TooManyKeys => write!(f, "more than {MAX_ANCHOR_KEYS} anchor keys"),
            Self::DuplicateKey => write!(f, "a key appears twice in the anchor set"),
            Self::InvalidKey => write!(f, "not a valid (or a weak) Ed25519 public key"),
            Self::Malformed => write!(f, "malformed rotation record"),
            Self::NotNewer { current, offered } => write!(
                f,
                "anchor set version {offered} does not exceed the current {current}"
            ),
            Self::CurrentThresholdNotMet { valid, required } => write!(
                f,
                "{valid} valid signature(s) by the current anchors, {required} required"
            ),
            Self::NewThresholdNotMet { valid, required } => write!(
                f,
                "{valid} valid signature(s) by the new anchors, {required} required"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for AnchorError {}

/// A set of Ed25519 keys and how many of them must sign.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TrustAnchors {
    version: u32,
    threshold: u8,
    count: u8,
    keys: [[u8; 32]; MAX_ANCHOR_KEYS],
}

impl core::fmt::Debug for TrustAnchors {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TrustAnchors")
            .field("version", &self.version)
            .field("threshold", &self.threshold)
            .field("keys", &self.count)
            .finish()
    }
}

impl TrustAnchors {
    /// Build and validate an anchor set.
    pub fn new(version: u32, threshold: u8, keys: &[[u8; 32]]) -> Result<Self, AnchorError> {
        if keys.len() > MAX_ANCHOR_KEYS {
            return Err(AnchorError::TooManyKeys);
        }
        if threshold == 0 || usize::from(threshold) > keys.len() {
            return Err(AnchorError::BadThreshold);
        }
        let mut stored = [[0u8; 32]; MAX_ANCHOR_KEYS];
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].contains(k) {
                return Err(AnchorError::DuplicateKey);
            }
            match ed25519_dalek::VerifyingKey::from_bytes(k) {
                Ok(vk) if !vk.is_weak() => {}
                _ => return Err(AnchorError::InvalidKey),
            }
            stored[i] = *k;
        }
        Ok(Self {
            version,
            threshold,
            count: keys.len() as u8,
            keys: stored,
        })
    }

    /// Monotonic version of this set (genesis is usually 1).
    pub fn version(&self) -> u32 {
        self.version
    }
    /// Signatures required.
    pub fn threshold(&self) -> u8 {
        self.threshold
    }
    /// The raw public keys.
    pub fn keys(&self) -> &[[u8; 32]] {
        &self.keys[..usize::from(self.count)]
    }

    /// Count valid signatures over `message` by distinct keys of this set.
    /// Entries by unknown keys, bad signatures and repeats are ignored.
    pub fn count_valid<'s>(
        &self,
        message: &[u8],
        signatures: impl Iterator<Item = (&'s KeyId, &'s [u8; 64])>,
    ) -> u8 {
        let mut seen = [false; MAX_ANCHOR_KEYS];
        let mut valid = 0u8;
        for (id, sig) in signatures {
            let Some(i) = self.keys().iter().position(|k| key_id(k) == *id) else {
                continue;
            };
            if !seen[i] && verify_signature(&self.keys[i], message, sig) {
                seen[i] = true;
                valid += 1;
            }
        }
        valid
    }

    /// Verify a rotation record against this (current) set and return the new set.
    pub fn rotate(&self, record: &[u8]) -> Result<TrustAnchors, AnchorError> {
        let parsed = Rotation::parse(record)?;
        if parsed.anchors.version <= self.version {
            return Err(AnchorError::NotNewer {
                current: self.version,
                offered: parsed.anchors.version,
            });
        }
        let signed = &record[..parsed.signed_len];
        let valid = self.count_valid(signed, parsed.signatures());
        if valid < self.threshold {
            return Err(AnchorError::CurrentThresholdNotMet {
                valid,
                required: self.threshold,
            });
        }
        let valid = parsed.anchors.count_valid(signed, parsed.signatures());
        if valid < parsed.anchors.threshold {
            return Err(AnchorError::NewThresholdNotMet {
                valid,
                required: parsed.anchors.threshold,
            });
        }
        Ok(parsed.anchors)
    }

    /// Compact form stored in the boot records: version, threshold, count, keys.
    pub(crate) fn write_to(&self, out: &mut [u8; 8 + 32 * MAX_ANCHOR_KEYS]) {
        out[0..4].copy_from_slice(&self.version.to_le_bytes());
        out[4] = self.threshold;
        out[5] = self.count;
        out[6] = 0;
        out[7] = 0;
        for (i, k) in self.keys.iter().enumerate() {
            out[8 + 32 * i..8 + 32 * (i + 1)].copy_from_slice(k);
        }
    }

    /// Inverse of [`Self::write_to`], validating everything.
    pub(crate) fn read_from(raw: &[u8; 8 + 32 * MAX_ANCHOR_KEYS]) -> Result<Self, AnchorError> {
        let version = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let count = usize::from(raw[5]);
        if count > MAX_ANCHOR_KEYS {
            return Err(AnchorError::TooManyKeys);
        }
        let mut keys = [[0u8; 32]; MAX_ANCHOR_KEYS];
        for (i, k) in keys.iter_mut().take(count).enumerate() {
            k.copy_from_slice(&raw[8 + 32 * i..8 + 32 * (i + 1)]);
        }
        Self::new(version, raw[4], &keys[..count])
    }
}

/// A parsed rotation record.
#[derive(Debug)]
pub struct Rotation {
    /// The proposed new set.
    pub anchors: TrustAnchors,
    signed_len: usize,
    signatures: [(KeyId, [u8; 64]); MAX_ROTATION_SIGNATURES],
    sig_count: usize,
}

impl Rotation {
    /// The bytes the signatures cover, for a new set (the write side).
    pub fn signed_bytes(new: &TrustAnchors, out: &mut [u8; MAX_ROTATION_LEN]) -> usize {
        out[0..4].copy_from_slice(&ROTATION_MAGIC);
        out[4..6].copy_from_slice(&1u16.to_le_bytes());
        out[6..10].copy_from_slice(&new.version.to_le_bytes());
        out[10] = new.threshold;
        out[11] = new.count;
        for (i, k) in new.keys().iter().enumerate() {
            out[12 + 32 * i..12 + 32 * (i + 1)].copy_from_slice(k);
        }
        12 + 32 * new.keys().len()
    }

    /// Encode a full record: signed bytes followed by signatures.
    pub fn encode(
        new: &TrustAnchors,
        signatures: &[(KeyId, [u8; 64])],
        out: &mut [u8; MAX_ROTATION_LEN],
    ) -> Result<usize, AnchorError> {
        if signatures.is_empty() || signatures.len() > MAX_ROTATION_SIGNATURES {
            return Err(AnchorError::Malformed);
        }
        let mut at = Self::signed_bytes(new, out);
        out[at] = signatures.len() as u8;
        at += 1;
        for (id, sig) in signatures {
            out[at..at + 32].copy_from_slice(id);
            out[at + 32..at + 96].copy_from_slice(sig);
            at += 96;
        }
        Ok(at)
    }

    /// Strictly parse a record (no signature checks).
    pub fn parse(record: &[u8]) -> Result<Self, AnchorError> {
        if record.len() < 12 || record[0..4] != ROTATION_MAGIC || record[4..6] != [1, 0] {
            return Err(AnchorError::Malformed);
        }
        let version = u32::from_le_bytes([record[6], record[7], record[8], record[9]]);
        let count = usize::from(record[11]);
        if count > MAX_ANCHOR_KEYS {
            return Err(AnchorError::TooManyKeys);
        }
        let signed_len = 12 + 32 * count;
        let mut keys = [[0u8; 32]; MAX_ANCHOR_KEYS];
        for (i, k) in keys.iter_mut().take(count).enumerate() {
            let src = record
                .get(12 + 32 * i..12 + 32 * (i + 1))
                .ok_or(AnchorError::Malformed)?;
            k.copy_from_slice(src);
        }
        let anchors = TrustAnchors::new(version, record[10], &keys[..count])?;
        let sig_count = usize::from(*record.get(signed_len).ok_or(AnchorError::Malformed)?);
        if sig_count == 0
            || sig_count > MAX_ROTATION_SIGNATURES
            || record.len() != signed_len + 1 + 96 * sig_count
        {
            return Err(AnchorError::Malformed);
        }
        let mut signatures = [([0u8; 32], [0u8; 64]); MAX_ROTATION_SIGNATURES];
        for (i, (id, sig)) in signatures.iter_mut().take(sig_count).enumerate() {
            let at = signed_len + 1 + 96 * i;
            id.copy_from_slice(&record[at..at + 32]);
            sig.copy_from_slice(&record[at + 32..at + 96]);
        }
        Ok(Self {
            anchors,
            signed_len,
            signatures,
            sig_count,
        })
    }

    /// The signatures on the record.
    pub fn signatures(&self) -> impl Iterator<Item = (&KeyId, &[u8; 64])> {
        self.signatures[..self.sig_count]
            .iter()
            .map(|(a, b)| (a, b))
    }
}
