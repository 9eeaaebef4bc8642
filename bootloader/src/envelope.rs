//! The signed firmware envelope: what a lock's ACTIVE and DFU banks hold.
//!
//! ```text
//! offset  size  field                                   (little-endian)
//! ------  ----  -----------------------------------------------------------
//!      0     4  magic "NLFW"                            ┐
//!      4     2  format version (1)                      │
//!      6     2  signed header length (128)              │
//!      8    32  hardware model, ASCII [a-z0-9._-],      │ signed header:
//!               zero padded                             │ every signature
//!     40     6  version major, minor, patch (u16 each)  │ covers exactly
//!     46     2  reserved, zero                          │ these 128 bytes
//!     48     4  security counter (anti-rollback)        │
//!     52     4  payload length                          │
//!     56    32  SHA-256 of the payload                  │
//!     88    40  reserved, zero                          ┘
//!    128     1  signature count (1..=8)
//!    129     3  reserved, zero
//!    132  96·n  signatures: key id (SHA-256 of the raw Ed25519 public key, 32)
//!               followed by the Ed25519 signature of bytes 0..128 (64)
//!      …        zero padding up to 1024
//!   1024     …  payload (the application image; 1 KiB aligned for the
//!               vector table)
//! ```
//!
//! Parsing is strict: every reserved byte and every padding byte must be zero,
//! lengths must match exactly, and a key may sign only once. Any single changed
//! byte in the first 1024 bytes is therefore either refused by the parser or
//! breaks a signature.
//!
//! A [`VerifiedImage`] can only be built by [`verify_bytes`] or [`verify_in_flash`]:
//! code that needs a verified image cannot be handed unverified bytes.

use ed25519_dalek::{Signature, VerifyingKey};
use embedded_storage::nor_flash::{NorFlashError, NorFlashErrorKind, ReadNorFlash};
use sha2::{Digest, Sha256};

use crate::anchors::{KeyId, TrustAnchors, key_id};

/// Envelope magic.
pub const MAGIC: [u8; 4] = *b"NLFW";
/// The only envelope format this bootloader reads.
pub const FORMAT_VERSION: u16 = 1;
/// Length of the signed header.
pub const HEADER_LEN: usize = 128;
/// Length of header plus signature block; the payload starts here.
pub const PREFIX_LEN: usize = 1024;
/// Most signatures an envelope can carry.
pub const MAX_SIGNATURES: usize = 8;
/// Bytes per signature entry (key id + signature).
pub const SIGNATURE_ENTRY_LEN: usize = 32 + 64;
/// Longest hardware model name.
pub const MODEL_LEN: usize = 32;

/// Offset of the first signature entry (after the signed header and the
/// signature count word).
pub const SIG_BLOCK: usize = HEADER_LEN + 4;
const _: () = assert!(SIG_BLOCK + MAX_SIGNATURES * SIGNATURE_ENTRY_LEN <= PREFIX_LEN);

/// Why an envelope was refused. Every variant is a refusal; none is a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Fewer bytes than the 1024-byte prefix.
    TooShort,
    /// Not an envelope.
    BadMagic,
    /// A format version this code does not read.
    UnsupportedFormat(u16),
    /// The header length field is not 128.
    BadHeaderLength(u16),
    /// Hardware model empty, too long, or with characters outside `[a-z0-9._-]`.
    InvalidModel,
    /// A reserved or padding byte is not zero.
    NonZeroReserved,
    /// Signature count outside 1..=4.
    BadSignatureCount(u8),
    /// The same key id appears twice.
    DuplicateSignature,
    /// Payload longer than the partition (or the caller's limit) allows.
    PayloadTooLarge {
        /// Length claimed by the header.
        len: u32,
        /// Largest length accepted.
        max: u32,
    },
    /// The bytes do not have the length the header claims.
    LengthMismatch {
        /// Length implied by the header.
        expected: u64,
        /// Length found.
        actual: u64,
    },
    /// The image is for another hardware model.
    WrongModel,
    /// The image's security counter is below the stored minimum (rollback).
    SecurityCounterTooLow {
        /// Counter in the image.
        image: u32,
        /// Minimum the device accepts.
        minimum: u32,
    },
    /// Not enough valid signatures by distinct trust anchors.
    ThresholdNotMet {
        /// Valid signatures by distinct anchors found.
        valid: u8,
        /// Signatures required.
        required: u8,
    },
    /// The payload does not hash to the signed digest.
    DigestMismatch,
    /// Reading the image from flash failed.
    Flash(NorFlashErrorKind),
}

impl core::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooShort => write!(f, "shorter than the {PREFIX_LEN}-byte envelope header"),
            Self::BadMagic => write!(f, "not a Nightlatch envelope (bad magic)"),
            Self::UnsupportedFormat(v) => write!(f, "unsupported envelope format version {v}"),
            Self::BadHeaderLength(l) => write!(f, "header length {l}, expected {HEADER_LEN}"),
            Self::InvalidModel => write!(f, "hardware model is empty, too long or not [a-z0-9._-]"),
            Self::NonZeroReserved => write!(f, "a reserved or padding byte is not zero"),
            Self::BadSignatureCount(n) => {
                write!(f, "signature count {n}, expected 1..={MAX_SIGNATURES}")
            }
            Self::DuplicateSignature => write!(f, "the same key signed twice"),
            Self::PayloadTooLarge { len, max } => {
                write!(f, "payload of {len} bytes exceeds the limit of {max}")
            }
            Self::LengthMismatch { expected, actual } => {
                write!(f, "envelope is {actual} bytes, header says {expected}")
            }
            Self::WrongModel => write!(f, "image is for another hardware model"),
            Self::SecurityCounterTooLow { image, minimum } => write!(
                f,
                "security counter {image} is below the device minimum {minimum} (rollback)"
            ),
            Self::ThresholdNotMet { valid, required } => write!(
                f,
                "{valid} valid signature(s) by trusted keys, {required} required"
            ),
            Self::DigestMismatch => write!(f, "payload does not match its signed SHA-256"),
            Self::Flash(kind) => write!(f, "flash read failed: {kind:?}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EnvelopeError {}

/// A validated hardware model name (`[a-z0-9._-]{1,32}`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HardwareModel {
    bytes: [u8; MODEL_LEN],
    len: u8,
}

impl HardwareModel {
    /// Validate a model name.
    pub const fn new(name: &str) -> Result<Self, EnvelopeError> {
        let b = name.as_bytes();
        if b.is_empty() || b.len() > MODEL_LEN {
            return Err(EnvelopeError::InvalidModel);
        }
        let mut bytes = [0u8; MODEL_LEN];
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if !(c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || c == b'.'
                || c == b'_'
                || c == b'-')
            {
                return Err(EnvelopeError::InvalidModel);
            }
            bytes[i] = c;
            i += 1;
        }
        Ok(Self {
            bytes,
            len: b.len() as u8,
        })
    }

    /// Parse the zero-padded 32-byte field.
    fn from_field(field: &[u8; MODEL_LEN]) -> Result<Self, EnvelopeError> {
        let len = field.iter().position(|&c| c == 0).unwrap_or(MODEL_LEN);
        if field[len..].iter().any(|&c| c != 0) {
            return Err(EnvelopeError::InvalidModel);
        }
        let name = core::str::from_utf8(&field[..len]).map_err(|_| EnvelopeError::InvalidModel)?;
        Self::new(name)
    }

    /// The model name.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (checked in `new`).
        core::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl core::fmt::Debug for HardwareModel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl core::fmt::Display for HardwareModel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Semantic version `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major.
    pub major: u16,
    /// Minor.
    pub minor: u16,
    /// Patch.
    pub patch: u16,
}

impl Version {
    /// Build a version.
    pub const fn new(major: u16, minor: u16, patch: u16) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }
}

impl core::fmt::Display for Version {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The signed header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Hardware model the image is built for.
    pub model: HardwareModel,
    /// Firmware version.
    pub version: Version,
    /// Anti-rollback counter; the device refuses images below its stored minimum.
    pub security_counter: u32,
    /// Payload length in bytes.
    pub payload_len: u32,
    /// SHA-256 of the payload.
    pub payload_sha256: [u8; 32],
}

impl Header {
    /// Total envelope length (prefix plus payload).
    pub fn envelope_len(&self) -> u64 {
        PREFIX_LEN as u64 + u64::from(self.payload_len)
    }

    /// The exact bytes every signature covers.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..4].copy_from_slice(&MAGIC);
        h[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[6..8].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        h[8..40].copy_from_slice(&self.model.bytes);
        h[40..42].copy_from_slice(&self.version.major.to_le_bytes());
        h[42..44].copy_from_slice(&self.version.minor.to_le_bytes());
        h[44..46].copy_from_slice(&self.version.patch.to_le_bytes());
        h[48..52].copy_from_slice(&self.security_counter.to_le_bytes());
        h[52..56].copy_from_slice(&self.payload_len.to_le_bytes());
        h[56..88].copy_from_slice(&self.payload_sha256);
        h
    }

    /// Strictly decode the signed header.
    pub fn decode(h: &[u8; HEADER_LEN]) -> Result<Self, EnvelopeError> {
        if h[0..4] != MAGIC {
            return Err(EnvelopeError::BadMagic);
        }
        let format = u16::from_le_bytes([h[4], h[5]]);
        if format != FORMAT_VERSION {
            return Err(EnvelopeError::UnsupportedFormat(format));
        }
        let hlen = u16::from_le_bytes([h[6], h[7]]);
        if usize::from(hlen) != HEADER_LEN {
            return Err(EnvelopeError::BadHeaderLength(hlen));
        }
        let mut model = [0u8; MODEL_LEN];
        model.copy_from_slice(&h[8..40]);
        let model = HardwareModel::from_field(&model)?;
        if h[46..48].iter().chain(&h[88..HEADER_LEN]).any(|&b| b != 0) {
            return Err(EnvelopeError::NonZeroReserved);
        }
        let mut payload_sha256 = [0u8; 32];
        payload_sha256.copy_from_slice(&h[56..88]);
        Ok(Self {
            model,
            version: Version::new(
                u16::from_le_bytes([h[40], h[41]]),
                u16::from_le_bytes([h[42], h[43]]),
                u16::from_le_bytes([h[44], h[45]]),
            ),
            security_counter: u32::from_le_bytes([h[48], h[49], h[50], h[51]]),
            payload_len: u32::from_le_bytes([h[52], h[53], h[54], h[55]]),
            payload_sha256,
        })
    }
}

/// One signature in the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureEntry {
    /// SHA-256 of the signer's raw public key.
    pub key_id: KeyId,
    /// Ed25519 signature over the 128-byte signed header.
    pub signature: [u8; 64],
}

/// A parsed (not yet verified) envelope prefix.
#[derive(Debug, Clone)]
pub struct Prefix {
    /// The decoded header.
    pub header: Header,
    header_bytes: [u8; HEADER_LEN],
    signatures: [SignatureEntry; MAX_SIGNATURES],
    count: usize,
}

impl Prefix {
    /// Parse the first [`PREFIX_LEN`] bytes of an envelope.
    pub fn parse(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let prefix = bytes.get(..PREFIX_LEN).ok_or(EnvelopeError::TooShort)?;
        let mut header_bytes = [0u8; HEADER_LEN];
        header_bytes.copy_from_slice(&prefix[..HEADER_LEN]);
        let header = Header::decode(&header_bytes)?;

        let count = prefix[HEADER_LEN];
        if count == 0 || usize::from(count) > MAX_SIGNATURES {
            return Err(EnvelopeError::BadSignatureCount(count));
        }
        let count = usize::from(count);
        let sig_end = SIG_BLOCK + count * SIGNATURE_ENTRY_LEN;
        if prefix[HEADER_LEN + 1..SIG_BLOCK]
            .iter()
            .chain(&prefix[sig_end..])
            .any(|&b| b != 0)
        {
            return Err(EnvelopeError::NonZeroReserved);
        }
        let empty = SignatureEntry {
            key_id: [0; 32],
            signature: [0; 64],
        };
        let mut signatures = [empty; MAX_SIGNATURES];
        for (i, slot) in signatures.iter_mut().take(count).enumerate() {
            let at = SIG_BLOCK + i * SIGNATURE_ENTRY_LEN;
            slot.key_id.copy_from_slice(&prefix[at..at + 32]);
            slot.signature
                .copy_from_slice(&prefix[at + 32..at + SIGNATURE_ENTRY_LEN]);
        }
        for i in 0..count {
            if signatures[..i]
                .iter()
                .any(|s| s.key_id == signatures[i].key_id)
            {
                return Err(EnvelopeError::DuplicateSignature);
            }
        }
        Ok(Self {
            header,
            header_bytes,
            signatures,
            count,
        })
    }

    /// Build the 1024-byte prefix for a header and its signatures (the write side,
    /// used by `nightlatch-sign`).
    pub fn encode(
        header: &Header,
        signatures: &[SignatureEntry],
    ) -> Result<[u8; PREFIX_LEN], EnvelopeError> {
        if signatures.is_empty() || signatures.len() > MAX_SIGNATURES {
            return Err(EnvelopeError::BadSignatureCount(
                signatures.len().min(255) as u8
            ));
        }
        for (i, s) in signatures.iter().enumerate() {
            if signatures[..i].iter().any(|o| o.key_id == s.key_id) {
                return Err(EnvelopeError::DuplicateSignature);
            }
        }
        let mut out = [0u8; PREFIX_LEN];
        out[..HEADER_LEN].copy_from_slice(&header.encode());
        out[HEADER_LEN] = signatures.len() as u8;
        for (i, s) in signatures.iter().enumerate() {
            let at = SIG_BLOCK + i * SIGNATURE_ENTRY_LEN;
            out[at..at + 32].copy_from_slice(&s.key_id);
            out[at + 32..at + SIGNATURE_ENTRY_LEN].copy_from_slice(&s.signature);
        }
        Ok(out)
    }

    /// Bytes of a prefix with `count` signatures that are not padding: the
    /// signed header, the count word and the signature entries. Everything
    /// after them up to [`PREFIX_LEN`] is zero in every valid prefix.
    pub const fn used_len(count: usize) -> usize {
        SIG_BLOCK + count * SIGNATURE_ENTRY_LEN
    }

    /// The signed header bytes.
    pub fn header_bytes(&self) -> &[u8; HEADER_LEN] {
        &self.header_bytes
    }

    /// The signatures present.
    pub fn signatures(&self) -> &[SignatureEntry] {
        &self.signatures[..self.count]
    }

    /// Check model, counter, length limit and signatures: everything but the
    /// payload digest. Returns the number of distinct anchors that signed.
    fn check(&self, policy: &Policy<'_>) -> Result<u8, EnvelopeError> {
        let h = &self.header;
        if h.payload_len > policy.max_payload_len {
            return Err(EnvelopeError::PayloadTooLarge {
                len: h.payload_len,
                max: policy.max_payload_len,
            });
        }
        if let Some(model) = policy.model
            && h.model != *model
        {
            return Err(EnvelopeError::WrongModel);
        }
        if h.security_counter < policy.min_security_counter {
            return Err(EnvelopeError::SecurityCounterTooLow {
                image: h.security_counter,
                minimum: policy.min_security_counter,
            });
        }
        let valid = policy.anchors.count_valid(
            &self.header_bytes,
            self.signatures().iter().map(|s| (&s.key_id, &s.signature)),
        );
        let required = policy.anchors.threshold();
        if valid < required {
            return Err(EnvelopeError::ThresholdNotMet { valid, required });
        }
        Ok(valid)
    }
}

/// What a device accepts.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// Keys and threshold.
    pub anchors: &'a TrustAnchors,
    /// Required hardware model (`None` accepts any, for host tools).
    pub model: Option<&'a HardwareModel>,
    /// Lowest security counter accepted.
    pub min_security_counter: u32,
    /// Largest payload accepted (the bank size minus the prefix on a device).
    pub max_payload_len: u32,
}

/// An envelope whose signatures, model, counter and payload digest were checked.
/// Only this module can construct one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedImage {
    header: Header,
    signers: u8,
}

impl VerifiedImage {
    /// The verified header.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// Number of distinct trust anchors whose signatures verified.
    pub fn signers(&self) -> u8 {
        self.signers
    }
}

/// Verify a complete envelope held in memory; its length must match exactly.
pub fn verify_bytes(envelope: &[u8], policy: &Policy<'_>) -> Result<VerifiedImage, EnvelopeError> {
    let prefix = Prefix::parse(envelope)?;
    let expected = prefix.header.envelope_len();
    if envelope.len() as u64 != expected {
        // Check the limit first so a huge claimed length reports as such.
        if prefix.header.payload_len > policy.max_payload_len {
            return Err(EnvelopeError::PayloadTooLarge {
                len: prefix.header.payload_len,
                max: policy.max_payload_len,
            });
        }
        return Err(EnvelopeError::LengthMismatch {
            expected,
            actual: envelope.len() as u64,
        });
    }
    let signers = prefix.check(policy)?;
    let digest: [u8; 32] = Sha256::digest(&envelope[PREFIX_LEN..]).into();
    if digest != prefix.header.payload_sha256 {
        return Err(EnvelopeError::DigestMismatch);
    }
    Ok(VerifiedImage {
        header: prefix.header,
        signers,
    })
}

/// Verify the envelope stored at the start of a flash partition, streaming the
/// payload through SHA-256 with `buf` (any non-zero length that is a multiple of
/// the flash read size; at least [`PREFIX_LEN`] bytes).
pub fn verify_in_flash<F: ReadNorFlash>(
    flash: &mut F,
    buf: &mut [u8],
    policy: &Policy<'_>,
) -> Result<VerifiedImage, EnvelopeError> {
    let flash_err = |e: F::Error| EnvelopeError::Flash(e.kind());
    let prefix_buf = buf.get_mut(..PREFIX_LEN).ok_or(EnvelopeError::TooShort)?;
    if flash.capacity() < PREFIX_LEN {
        return Err(EnvelopeError::TooShort);
    }
    flash.read(0, prefix_buf).map_err(flash_err)?;
    let prefix = Prefix::parse(prefix_buf)?;
    let capacity = (flash.capacity() - PREFIX_LEN) as u64;
    let max = policy
        .max_payload_len
        .min(capacity.min(u64::from(u32::MAX)) as u32);
    let signers = prefix.check(&Policy {
        max_payload_len: max,
        ..*policy
    })?;

    let mut hasher = Sha256::new();
    let mut offset = PREFIX_LEN;
    let end = PREFIX_LEN + prefix.header.payload_len as usize;
    while offset < end {
        let n = buf.len().min(end - offset);
        // Reads must stay aligned to the flash read size: read a whole chunk
        // when the tail is short and hash only what belongs to the payload.
        let chunk = if n.is_multiple_of(F::READ_SIZE) {
            n
        } else {
            n.next_multiple_of(F::READ_SIZE)
        };
        let chunk = chunk.min(buf.len());
        flash
            .read(offset as u32, &mut buf[..chunk])
            .map_err(flash_err)?;
        hasher.update(&buf[..n]);
        offset += n;
    }
    let digest: [u8; 32] = hasher.finalize().into();
    if digest != prefix.header.payload_sha256 {
        return Err(EnvelopeError::DigestMismatch);
    }
    Ok(VerifiedImage {
        header: prefix.header,
        signers,
    })
}

/// Verify one signature entry against a raw public key (used by the anchors
/// module and host tools).
pub(crate) fn verify_signature(public: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public) else {
        return false;
    };
    key.verify_strict(message, &Signature::from_bytes(signature))
        .is_ok()
}

/// Key id of an Ed25519 public key, as envelopes and anchors use it.
pub fn signer_key_id(public: &[u8; 32]) -> KeyId {
    key_id(public)
}
