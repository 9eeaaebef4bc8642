//! Delta updates: rebuild a new image from the running one and a small patch,
//! streaming, in bounded RAM, resumable after a reset.
//!
//! ## Patch format (`NLDP`, version 3)
//!
//! ```text
//!    0    4  magic "NLDP"
//!    4    1  format version (3)
//!    5    1  block size, log2 (12..=20; 16 = 64 KiB of output per block)
//!    6    1  model table size, log2 (must equal [`model::HASH_BITS`])
//!    7    1  low nibble: signatures n in the target envelope (1..=8);
//!            high nibble: instruction-set transform ([`transform`]: 0 plain,
//!            1 Xtensa, 2 Thumb-2)
//!    8    4  base payload length
//!   12    8  base payload SHA-256, first 8 bytes (what the running slot holds)
//!   20    4  target payload length
//!   24    2  prefix code length c (1..=1024)
//!   26    4  body length
//!   30    c  the target envelope's prefix, coded against the base's
//!    …    …  body: one arithmetic-coded stream per block
//! ```
//!
//! **Prefix code.** The target prefix's used part (signed header, count word
//! and the `n` signature entries: `132 + 96 n` bytes; the padding after it is
//! zero) is coded against the same bytes of the running image's prefix, which
//! the lock already has: pairs of LEB128 numbers *same*, *new* (each at most
//! two bytes, minimal), then *new* literal bytes. *Same* bytes are the base
//! prefix's. The pairs must cover the used part exactly. A release that keeps
//! its model and signing key differs from the one before only in its version,
//! counter, length, payload digest and signatures: about 106 bytes of code
//! for one key, so a whole patch head is about 136 bytes (1,120 in version 1,
//! 284 in version 2). The applier rebuilds the signed envelope byte for byte.
//!
//! **Base check.** Before writing anything the applier hashes the running
//! payload and compares the first 8 bytes of its SHA-256 with the header.
//! This only stops a patch made for another base early (the lock then fetches
//! the full image); what is installed is decided by the rebuilt image's own
//! signed digest and signatures, and the patch file itself is pinned by its
//! full SHA-256 in signed metadata. 64 bits is far more than the 32-bit source
//! checksum xdelta3 (VCDIFF) keeps for the same purpose.
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
//! [`model::Model`] (the models: 27,800 bytes) plus [`apply::Applier`]
//! (buffers and state, about 1.85 KiB) is all the applier uses besides its
//! stack; `nightlatch-sign bench-delta` prints the model size and the measured
//! stack high-water mark of a whole apply (30,959 bytes in all on the host
//! build). See `docs/delta.md`.

pub mod apply;
pub mod coder;
#[cfg(feature = "std")]
pub mod encode;
pub mod model;
pub mod transform;

use sha2::{Digest, Sha256};

use crate::envelope::{EnvelopeError, MAX_SIGNATURES, PREFIX_LEN, Prefix};
use crate::updater::UpdateError;
#[cfg(feature = "std")]
use std::vec::Vec;

/// Patch magic.
pub const MAGIC: [u8; 4] = *b"NLDP";
/// Patch format version.
pub const FORMAT_VERSION: u8 = 3;
/// Fixed patch header length (before the prefix code).
pub const HEADER_LEN: usize = 30;
/// Bytes of the base payload digest a patch header keeps.
pub const BASE_DIGEST_LEN: usize = 8;
/// Longest prefix code a header may announce.
pub const MAX_PREFIX_CODE: usize = PREFIX_LEN;
/// Longest patch head (header and prefix code): the body starts at or
/// before this offset.
pub const MAX_HEAD_LEN: usize = HEADER_LEN + MAX_PREFIX_CODE;
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
    UnsupportedFormat(u8),
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
    /// Instruction-set transform (0: plain).
    pub transform: u8,
    /// Base payload length.
    pub base_len: u32,
    /// The first [`BASE_DIGEST_LEN`] bytes of the base payload's SHA-256.
    pub base_digest: [u8; BASE_DIGEST_LEN],
    /// Target payload length.
    pub target_len: u32,
    /// Length of the prefix code.
    pub prefix_code_len: u16,
    /// Body length.
    pub body_len: u32,
}

impl PatchHeader {
    /// Output bytes per block.
    pub fn block_size(&self) -> u32 {
        1 << self.block_log2
    }

    /// Bytes of the target prefix the prefix code rebuilds (the rest of the
    /// prefix is zero padding).
    pub fn prefix_used_len(&self) -> usize {
        Prefix::used_len(usize::from(self.signatures))
    }

    /// Offset of the body in the patch.
    pub fn body_offset(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.prefix_code_len)
    }

    /// Total patch length.
    pub fn patch_len(&self) -> u64 {
        self.body_offset() + u64::from(self.body_len)
    }

    /// Is `sha256` (of a payload [`Self::base_len`] bytes long) this
    /// patch's base?
    pub fn is_base(&self, sha256: &[u8; 32]) -> bool {
        sha256[..BASE_DIGEST_LEN] == self.base_digest
    }

    /// [`Self::is_base`] for a payload described by its length and hex
    /// SHA-256 (as repository metadata lists it).
    pub fn is_base_hex(&self, len: u32, sha256_hex: &str) -> bool {
        let mut want = [0u8; 2 * BASE_DIGEST_LEN];
        for (i, b) in self.base_digest.iter().enumerate() {
            let hex = b"0123456789abcdef";
            want[2 * i] = hex[usize::from(b >> 4)];
            want[2 * i + 1] = hex[usize::from(b & 0xF)];
        }
        len == self.base_len && sha256_hex.as_bytes().get(..want.len()) == Some(&want[..])
    }

    /// Encode.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..4].copy_from_slice(&MAGIC);
        h[4] = FORMAT_VERSION;
        h[5] = self.block_log2;
        h[6] = model::HASH_BITS as u8;
        h[7] = self.signatures | (self.transform << 4);
        h[8..12].copy_from_slice(&self.base_len.to_le_bytes());
        h[12..20].copy_from_slice(&self.base_digest);
        h[20..24].copy_from_slice(&self.target_len.to_le_bytes());
        h[24..26].copy_from_slice(&self.prefix_code_len.to_le_bytes());
        h[26..30].copy_from_slice(&self.body_len.to_le_bytes());
        h
    }

    /// Strictly decode.
    pub fn decode(h: &[u8; HEADER_LEN]) -> Result<Self, DeltaError> {
        if h[0..4] != MAGIC {
            return Err(DeltaError::BadMagic);
        }
        if h[4] != FORMAT_VERSION {
            return Err(DeltaError::UnsupportedFormat(h[4]));
        }
        if !(12..=20).contains(&h[5]) || u32::from(h[6]) != model::HASH_BITS {
            return Err(DeltaError::UnsupportedParameters);
        }
        let (signatures, transform) = (h[7] & 0x0F, h[7] >> 4);
        if !transform::known(transform) {
            return Err(DeltaError::UnsupportedParameters);
        }
        if signatures == 0 || usize::from(signatures) > MAX_SIGNATURES {
            return Err(DeltaError::BadHeader);
        }
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let prefix_code_len = u16::from_le_bytes([h[24], h[25]]);
        if prefix_code_len == 0 || usize::from(prefix_code_len) > MAX_PREFIX_CODE {
            return Err(DeltaError::BadHeader);
        }
        let mut base_digest = [0u8; BASE_DIGEST_LEN];
        base_digest.copy_from_slice(&h[12..20]);
        Ok(Self {
            block_log2: h[5],
            signatures,
            transform,
            base_len: u32_at(8),
            base_digest,
            target_len: u32_at(20),
            prefix_code_len,
            body_len: u32_at(26),
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CodeStep {
    /// Reading the *same* count (`acc`, `shift`).
    Same,
    /// Reading the *new* count.
    New,
    /// Copying `left` literal bytes.
    Literals,
}

/// Streaming decoder of a prefix code (see the module docs), one byte at a
/// time into a buffer that already holds the base prefix. No allocation:
/// the applier feeds it as bytes arrive.
#[derive(Debug, Clone, Copy)]
pub struct PrefixDecoder {
    /// Output position.
    at: usize,
    /// Bytes the code must cover.
    len: usize,
    step: CodeStep,
    acc: u32,
    shift: u8,
    same: u32,
    left: u32,
}

impl PrefixDecoder {
    /// A decoder of a code covering `used_len` bytes.
    pub fn new(used_len: usize) -> Self {
        Self {
            at: 0,
            len: used_len,
            step: CodeStep::Same,
            acc: 0,
            shift: 0,
            same: 0,
            left: 0,
        }
    }

    /// Read one LEB128 byte; `Some(value)` when the number is complete.
    fn number(&mut self, b: u8) -> Result<Option<u32>, DeltaError> {
        let bad = DeltaError::Corrupt("prefix code number");
        if self.shift > 7 || (self.shift > 0 && b == 0) {
            return Err(bad); // more than two bytes, or not minimal
        }
        self.acc |= u32::from(b & 0x7F) << self.shift;
        if b & 0x80 != 0 {
            self.shift += 7;
            return Ok(None);
        }
        let v = self.acc;
        (self.acc, self.shift) = (0, 0);
        Ok(Some(v))
    }

    /// Feed one code byte; `out` holds the base prefix (at least the used
    /// length) and receives the target's bytes in place.
    pub fn feed(&mut self, b: u8, out: &mut [u8]) -> Result<(), DeltaError> {
        if self.done() {
            return Err(DeltaError::Corrupt("prefix code longer than its prefix"));
        }
        match self.step {
            CodeStep::Same => {
                if let Some(v) = self.number(b)? {
                    self.same = v;
                    self.step = CodeStep::New;
                }
            }
            CodeStep::New => {
                if let Some(new) = self.number(b)? {
                    let end = (self.at as u64) + u64::from(self.same) + u64::from(new);
                    if self.same + new == 0 || end > self.len as u64 {
                        return Err(DeltaError::Corrupt("prefix code run"));
                    }
                    self.at += self.same as usize;
                    self.left = new;
                    self.step = if new == 0 {
                        CodeStep::Same
                    } else {
                        CodeStep::Literals
                    };
                }
            }
            CodeStep::Literals => {
                *out.get_mut(self.at)
                    .ok_or(DeltaError::Corrupt("prefix code run"))? = b;
                self.at += 1;
                self.left -= 1;
                if self.left == 0 {
                    self.step = CodeStep::Same;
                }
            }
        }
        Ok(())
    }

    /// Has the code covered the whole used part (and ended a pair)?
    pub fn done(&self) -> bool {
        self.at == self.len && self.step == CodeStep::Same && self.shift == 0
    }
}

/// Code the used part of `target` (a full prefix) against `base` (the base
/// envelope's full prefix). See the module docs.
#[cfg(feature = "std")]
pub fn encode_prefix(
    base: &[u8; PREFIX_LEN],
    target: &[u8; PREFIX_LEN],
    used_len: usize,
) -> Vec<u8> {
    fn leb(out: &mut Vec<u8>, v: usize) {
        if v < 0x80 {
            out.push(v as u8);
        } else {
            out.push((v & 0x7F) as u8 | 0x80);
            out.push((v >> 7) as u8);
        }
    }
    // Runs of equal / different bytes; an equal run of one or two bytes
    // between different ones costs less as literals than as a new pair.
    let same = |i: usize| base[i] == target[i];
    let mut out = Vec::new();
    let mut i = 0;
    while i < used_len {
        let start = i;
        while i < used_len && same(i) {
            i += 1;
        }
        let run_same = i - start;
        let lit_start = i;
        loop {
            while i < used_len && !same(i) {
                i += 1;
            }
            let mut j = i;
            while j < used_len && same(j) {
                j += 1;
            }
            if j < used_len && j - i <= 2 {
                i = j; // absorb a short equal run
            } else {
                break;
            }
        }
        leb(&mut out, run_same);
        leb(&mut out, i - lit_start);
        out.extend_from_slice(&target[lit_start..i]);
    }
    out
}

/// Rebuild the target envelope's full [`PREFIX_LEN`]-byte prefix from a
/// patch's head and the base envelope's prefix, and parse it. It must
/// belong to the header ([`PatchHeader::describes`]).
pub fn target_prefix(
    patch: &[u8],
    base_prefix: &[u8],
) -> Result<(PatchHeader, [u8; PREFIX_LEN], Prefix), DeltaError> {
    let raw: &[u8; HEADER_LEN] = patch
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(DeltaError::Truncated)?;
    let header = PatchHeader::decode(raw)?;
    let code = patch
        .get(HEADER_LEN..HEADER_LEN + usize::from(header.prefix_code_len))
        .ok_or(DeltaError::Truncated)?;
    let used = header.prefix_used_len();
    let mut full = [0u8; PREFIX_LEN];
    full[..used].copy_from_slice(base_prefix.get(..used).ok_or(DeltaError::BaseMismatch)?);
    let mut dec = PrefixDecoder::new(used);
    for &b in code {
        dec.feed(b, &mut full)?;
    }
    if !dec.done() {
        return Err(DeltaError::Corrupt("prefix code shorter than its prefix"));
    }
    let prefix = Prefix::parse(&full).map_err(DeltaError::BadTargetPrefix)?;
    if !header.describes(&prefix) {
        return Err(DeltaError::BadHeader);
    }
    Ok((header, full, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(code: &[u8], base: &[u8; PREFIX_LEN], used: usize) -> Result<Vec<u8>, DeltaError> {
        let mut out = *base;
        let mut d = PrefixDecoder::new(used);
        for &b in code {
            d.feed(b, &mut out)?;
        }
        if !d.done() {
            return Err(DeltaError::Truncated);
        }
        Ok(out[..used].to_vec())
    }

    /// Pseudo-random prefixes that share some runs: every code rebuilds its
    /// target, and is never much longer than the bytes that differ.
    #[test]
    fn prefix_codes_round_trip() {
        let mut x = 0x1234_5678u32;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for used in [1usize, 2, 132, 228, 900] {
            for _ in 0..200 {
                let mut base = [0u8; PREFIX_LEN];
                base.iter_mut().for_each(|b| *b = rnd() as u8);
                let mut target = base;
                let changes = rnd() as usize % (used + 1);
                for _ in 0..changes {
                    let i = rnd() as usize % used;
                    target[i] = rnd() as u8;
                }
                let code = encode_prefix(&base, &target, used);
                let differ = (0..used).filter(|&i| base[i] != target[i]).count();
                assert!(code.len() <= 3 * differ + 4, "{} for {differ}", code.len());
                assert_eq!(decode(&code, &base, used).unwrap(), target[..used]);
            }
        }
    }

    #[test]
    fn malformed_prefix_codes_are_refused() {
        let base = [7u8; PREFIX_LEN];
        let used = 10;
        // Runs past the end, an empty pair, a non-minimal or three-byte
        // number, bytes after the end, and a code that stops early.
        for code in [
            &[11u8, 0][..],
            &[5, 6, 1, 2, 3, 4, 5, 6],
            &[0, 0],
            &[0x85, 0x00, 5],
            &[0x80, 0x80, 0x01, 0],
            &[10, 0, 0],
            &[4, 2, 1],
        ] {
            assert!(decode(code, &base, used).is_err(), "{code:?}");
        }
        assert_eq!(decode(&[10, 0], &base, used).unwrap(), [7u8; 10]);
        assert_eq!(
            decode(&[8, 2, 1, 2], &base, used).unwrap(),
            [7, 7, 7, 7, 7, 7, 7, 7, 1, 2]
        );
    }
}
