//! Delta updates: rebuild a new image from the running one and a small patch,
//! streaming, in bounded RAM, resumable after a reset.
//!
//! ## Patch format (`NLDP`, version 2)
//!
//! ```text
//!    0    4  magic "NLDP"
//!    4    2  format version (2)
//!    6    1  block size, log2 (12..=20; 16 = 64 KiB of output per block)
//!    7    1  model table size, log2 (must equal [`model::HASH_BITS`])
//!    8    1  reserved for an instruction-set model, zero
//!    9    1  signatures n in the target envelope (1..=8)
//!   10    2  reserved, zero
//!   12    4  base payload length
//!   16   32  base payload SHA-256 (what the running slot must hold)
//!   48    4  target payload length
//!   52    4  body length
//!   56    …  the target envelope's prefix without its padding: signed
//!            header (128), count word (4), n signature entries (96 each)
//!    …    …  body: one arithmetic-coded stream per block
//! ```
//!
//! A patch carries only the signature entries the target uses (a one-key
//! release: 284 bytes before the body, against 1,120 in version 1); the
//! applier writes the zero padding back, so the envelope it rebuilds is the
//! signed one byte for byte. The target payload's digest is the one in the
//! signed header; the patch header does not repeat it.
//!
//! The body carries bsdiff-style controls (from `bidiff`'s match finder): *add*
//! `n` bytes (each `new = old + diff`, the diffs mostly zero), *copy* `m` bytes
//! that have no counterpart in the old image, then *seek* the old cursor. Add
//! bytes and literals are coded with context mixing ([`model`]); inside copy
//! runs the encoder may also reference earlier bytes of the new image or any
//! bytes of the old image (LZ77 matches), which the applier reads back from
//! flash, so they cost no RAM.
//!
//! ## Blocks, checkpoints and resume
//!
//! Every [`BLOCK`](PatchHeader::block_size) bytes of DFU output the coder and
//! all models restart. At each boundary the applier records a checkpoint
//! (block, offsets, run state) in the DFU bank's spare last sector, which
//! nothing else uses while an image is being staged. After a reset,
//! [`apply::Applier::resume`] continues from the last checkpoint: at most one
//! block (64 KiB of output, plus the patch bytes that coded it) is redone.
//!
//! ## RAM
//!
//! [`model::Model`] (the models: 26,160 bytes) plus [`apply::Applier`]
//! (buffers and state, about 1.8 KiB) is all the applier uses besides its
//! stack; `nightlatch-sign bench-delta` prints the model size and the measured
//! stack high-water mark of a whole apply (29,319 bytes in all on the host
//! build). See `docs/delta.md`.

pub mod apply;
pub mod coder;
#[cfg(feature = "std")]
pub mod encode;
pub mod model;

use sha2::{Digest, Sha256};

use crate::envelope::{EnvelopeError, MAX_SIGNATURES, PREFIX_LEN, Prefix};
use crate::updater::UpdateError;

/// Patch magic.
pub const MAGIC: [u8; 4] = *b"NLDP";
/// Patch format version.
pub const FORMAT_VERSION: u16 = 2;
/// Fixed patch header length (before the target prefix).
pub const HEADER_LEN: usize = 56;
/// Longest patch head (header and a target prefix with every signature
/// slot used): the body starts at or before this offset.
pub const MAX_HEAD_LEN: usize = HEADER_LEN + Prefix::used_len(MAX_SIGNATURES);
/// Default block size, log2.
pub const DEFAULT_BLOCK_LOG2: u8 = 16;
/// Shortest LZ match inside copy runs.
pub const MIN_MATCH: u32 = 5;

/// Why a patch was refused or failed to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeltaError {
    /// Not a patch.
    BadMagic,
    /// A format version this code does not read.
    UnsupportedFormat(u16),
    /// Block size or model size this applier was not built for.
    UnsupportedParameters,
    /// Reserved bytes not zero, or inconsistent lengths.
    BadHeader,
    /// The target does not fit the ACTIVE bank.
    TargetTooLarge {
        /// Target envelope length.
        len: u64,
        /// ACTIVE size.
        max: u64,
    },
    /// ACTIVE does not hold the image this patch was made from: fetch the
    /// full image instead.
    BaseMismatch,
    /// The embedded target prefix does not parse or does not match the header.
    BadTargetPrefix(EnvelopeError),
    /// The body decodes to something impossible (corrupted patch bytes).
    Corrupt(&'static str),
    /// More bytes than the header announced.
    TrailingData,
    /// [`apply::Applier::finish`] before the whole patch arrived.
    Truncated,
    /// The rebuilt image does not hash to the target digest.
    TargetDigestMismatch,
    /// The rebuilt envelope did not verify.
    Image(EnvelopeError),
    /// Writing DFU failed.
    Update(UpdateError),
    /// No usable checkpoint to resume from.
    NoCheckpoint,
    /// An earlier error stopped this applier.
    Poisoned,
}

impl core::fmt::Display for DeltaError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadMagic => write!(f, "not a Nightlatch patch (bad magic)"),
            Self::UnsupportedFormat(v) => write!(f, "unsupported patch format version {v}"),
            Self::UnsupportedParameters => write!(f, "unsupported block or model size"),
            Self::BadHeader => write!(f, "malformed patch header"),
            Self::TargetTooLarge { len, max } => {
                write!(f, "target of {len} bytes does not fit the {max}-byte bank")
            }
            Self::BaseMismatch => write!(
                f,
                "the running image is not this patch's base; fetch the full image"
            ),
            Self::BadTargetPrefix(e) => write!(f, "embedded target header refused: {e}"),
            Self::Corrupt(what) => write!(f, "corrupted patch: {what}"),
            Self::TrailingData => write!(f, "more bytes than the patch header announced"),
            Self::Truncated => write!(f, "patch ended early"),
            Self::TargetDigestMismatch => write!(f, "rebuilt image does not match its digest"),
            Self::Image(e) => write!(f, "rebuilt image refused: {e}"),
            Self::Update(e) => write!(f, "{e}"),
            Self::NoCheckpoint => write!(f, "no checkpoint to resume from"),
            Self::Poisoned => write!(f, "applier stopped by an earlier error"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DeltaError {}

impl From<UpdateError> for DeltaError {
    fn from(e: UpdateError) -> Self {
        Self::Update(e)
    }
}

/// The fixed patch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchHeader {
    /// Block size, log2.
    pub block_log2: u8,
    /// Signature entries in the target prefix (1..=8).
    pub signatures: u8,
    /// Base payload length.
    pub base_len: u32,
    /// Base payload digest.
    pub base_sha256: [u8; 32],
    /// Target payload length.
    pub target_len: u32,
    /// Body length.
    pub body_len: u32,
}

impl PatchHeader {
    /// Output bytes per block.
    pub fn block_size(&self) -> u32 {
        1 << self.block_log2
    }

    /// Bytes of the target prefix the patch carries (no padding).
    pub fn prefix_len(&self) -> usize {
        Prefix::used_len(usize::from(self.signatures))
    }

    /// Offset of the body in the patch.
    pub fn body_offset(&self) -> u64 {
        (HEADER_LEN + self.prefix_len()) as u64
    }

    /// Total patch length.
    pub fn patch_len(&self) -> u64 {
        self.body_offset() + u64::from(self.body_len)
    }

    /// Encode.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..4].copy_from_slice(&MAGIC);
        h[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[6] = self.block_log2;
        h[7] = model::HASH_BITS as u8;
        h[9] = self.signatures;
        h[12..16].copy_from_slice(&self.base_len.to_le_bytes());
        h[16..48].copy_from_slice(&self.base_sha256);
        h[48..52].copy_from_slice(&self.target_len.to_le_bytes());
        h[52..56].copy_from_slice(&self.body_len.to_le_bytes());
        h
    }

    /// Strictly decode.
    pub fn decode(h: &[u8; HEADER_LEN]) -> Result<Self, DeltaError> {
        if h[0..4] != MAGIC {
            return Err(DeltaError::BadMagic);
        }
        let v = u16::from_le_bytes([h[4], h[5]]);
        if v != FORMAT_VERSION {
            return Err(DeltaError::UnsupportedFormat(v));
        }
        if !(12..=20).contains(&h[6]) || u32::from(h[7]) != model::HASH_BITS {
            return Err(DeltaError::UnsupportedParameters);
        }
        if h[8] != 0 {
            return Err(DeltaError::UnsupportedParameters);
        }
        if h[9] == 0 || usize::from(h[9]) > MAX_SIGNATURES || h[10..12] != [0, 0] {
            return Err(DeltaError::BadHeader);
        }
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let mut base_sha256 = [0u8; 32];
        base_sha256.copy_from_slice(&h[16..48]);
        Ok(Self {
            block_log2: h[6],
            signatures: h[9],
            base_len: u32_at(12),
            base_sha256,
            target_len: u32_at(48),
            body_len: u32_at(52),
        })
    }

    /// Does a parsed target prefix belong to this header (its signature
    /// count and payload length)?
    pub fn describes(&self, prefix: &Prefix) -> bool {
        prefix.signatures().len() == usize::from(self.signatures)
            && prefix.header.payload_len == self.target_len
    }

    /// A short identity of the header, for checkpoint records.
    pub(crate) fn id(&self) -> [u8; 8] {
        let d: [u8; 32] = Sha256::digest(self.encode()).into();
        let mut id = [0u8; 8];
        id.copy_from_slice(&d[..8]);
        id
    }
}

/// The target envelope's full [`PREFIX_LEN`]-byte prefix, rebuilt from a
/// patch's first bytes (its header and the prefix it carries, padding
/// restored), and parsed. The payload length must match the header's.
pub fn target_prefix(patch: &[u8]) -> Result<(PatchHeader, [u8; PREFIX_LEN], Prefix), DeltaError> {
    let raw: &[u8; HEADER_LEN] = patch
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(DeltaError::Truncated)?;
    let header = PatchHeader::decode(raw)?;
    let part = patch
        .get(HEADER_LEN..HEADER_LEN + header.prefix_len())
        .ok_or(DeltaError::Truncated)?;
    let mut full = [0u8; PREFIX_LEN];
    full[..part.len()].copy_from_slice(part);
    let prefix = Prefix::parse(&full).map_err(DeltaError::BadTargetPrefix)?;
    if !header.describes(&prefix) {
        return Err(DeltaError::BadHeader);
    }
    Ok((header, full, prefix))
}
