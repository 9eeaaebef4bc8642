//! The check-in wire format, for both ends: what a lock sends to
//! `POST /v1/devices/{id}/check-in`, how it signs it, and what the director
//! answers. The byte-level description is in `update-server/README.md`
//! ("Check-in wire format"); the golden texts in `src/wire/golden/` pin it
//! (a lock in the field and a server of this version must read each other).
//!
//! * The request body is JSON ([`CheckinRequest`]). The lock signs the exact
//!   body bytes it sends: Ed25519 over [`CHECKIN_CONTEXT`] followed by the
//!   body ([`checkin_message`]), sent as
//!   `Nightlatch-Signature: ed25519=<86 base64url>` ([`signature_header`],
//!   [`sign_body`]). The body carries the device id, a strictly increasing
//!   `counter` and a fresh random `nonce` ([`NONCE_LEN`] bytes from a lock;
//!   the server takes [`MIN_NONCE`] to [`MAX_NONCE`]).
//! * The answer ([`CheckinResponse`]) holds the lock's director targets
//!   metadata (left out when the lock already holds that version) and a
//!   [`SignedTime`] whose Merkle leaf binds this check-in ([`merkle`]).
//! * Binary fields travel as unpadded base64url ([`b64`]): a third shorter
//!   than hex, which keeps an idle check-in under 1 KiB on air.
//!
//! Unknown fields are ignored on both sides, and optional fields that are
//! absent are not written, so an idle check-in stays as small as before.

pub mod b64;
pub mod check;
pub mod merkle;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use ed25519_dalek::{Signature, Signer, SigningKey};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub use check::{CheckedCheckin, CheckinRefusal, check_id, check_submission, parse_version};
pub use merkle::{
    Hash, LEAF_TAG, MerkleTree, ProofError, TimeError, TimeKeys, merkle_fold, merkle_node,
    time_leaf, time_message, verify_proof, verify_signed_time,
};

/// Prefix of the bytes a lock signs: this, then the exact request body.
pub const CHECKIN_CONTEXT: &[u8] = b"nightlatch/check-in/v1\n";
/// Header carrying the lock's signature (HTTP header names are
/// case-insensitive).
pub const SIGNATURE_HEADER: &str = "nightlatch-signature";
/// Prefix of the bytes the director's timestamp key signs.
pub const TIME_CONTEXT: &[u8] = b"nightlatch/time/v1\n";
/// Shortest nonce the server takes (bytes).
pub const MIN_NONCE: usize = 16;
/// Longest nonce the server takes (bytes).
pub const MAX_NONCE: usize = 64;
/// Nonce length a lock sends (bytes): the shortest allowed, to save air.
pub const NONCE_LEN: usize = MIN_NONCE;

/// Decode a request's nonce: base64url of [`MIN_NONCE`] to [`MAX_NONCE`]
/// bytes, else `None`.
pub fn decode_nonce(text: &str) -> Option<Vec<u8>> {
    // A longer text cannot hold an allowed nonce: do not decode it.
    if text.len() > MAX_NONCE.div_ceil(3) * 4 {
        return None;
    }
    b64::decode(text).filter(|n| (MIN_NONCE..=MAX_NONCE).contains(&n.len()))
}

/// The body of a check-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckinRequest {
    /// The lock's id (must equal the `{id}` in the URL).
    pub device_id: String,
    /// Strictly increasing per lock (1, 2, …; gaps allowed). A check-in whose
    /// counter is not above the last accepted one is refused as replayed.
    pub counter: u64,
    /// Random bytes, base64url, fresh for every check-in ([`decode_nonce`]).
    pub nonce: String,
    /// Version of the director targets metadata the lock holds (0 or
    /// absent: none).
    #[serde(default)]
    pub director_targets_version: u64,
    /// What the lock runs and what happened since last time.
    pub report: Report,
}

/// The lock's report: the truth the server reconciles to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Hardware model (must match the registered one).
    pub hardware_model: String,
    /// The image in the ACTIVE bank.
    pub firmware: Firmware,
    /// Boot state of that image.
    pub boot_state: BootState,
    /// Result of the most recent update attempt, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update: Option<UpdateResult>,
    /// Battery charge, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_percent: Option<u8>,
    /// The lock's IANA time zone (e.g. `Europe/Berlin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// The lock's learned door usage: quiet slot per weekday and a 7×24
    /// heat map, packed by `lock_app::scheduler::summary` (62 bytes,
    /// unpadded base64url). Sent when it changed materially or a day after
    /// the last one, absent otherwise (absent: the stored one stays), so an
    /// idle check-in does not grow. Servers that predate it ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<String>,
}

/// A firmware image's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firmware {
    /// `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// Anti-rollback security counter.
    pub security_counter: u32,
}

/// Boot state of the running image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BootState {
    /// Confirmed (self-test passed).
    Confirmed,
    /// Booted on trial, not confirmed yet.
    Trial,
    /// The bootloader swapped back after a failed trial.
    Reverted,
}

impl BootState {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Trial => "trial",
            Self::Reverted => "reverted",
        }
    }
}

/// How an update attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateResult {
    /// The image target the lock tried to install (director target name).
    pub target: String,
    /// Outcome.
    pub outcome: Outcome,
    /// Why, for failures (short code such as `self_test_motor`, `hash_mismatch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Outcome of an update attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Staged and swapped, running on trial.
    Installed,
    /// Running and confirmed.
    Confirmed,
    /// Trial boot failed; the bootloader reverted.
    RolledBack,
    /// Failed before the swap (download, verification, patch).
    Failed,
}

impl Outcome {
    /// Whether this counts as a failure of the release.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::RolledBack | Self::Failed)
    }

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Installed => "installed",
            Self::Confirmed => "confirmed",
            Self::RolledBack => "rolled_back",
            Self::Failed => "failed",
        }
    }
}

/// What the director answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckinResponse {
    /// Newest director root version (newer roots are fetched from
    /// `/director/metadata/N.root.json`).
    pub director_root_version: u64,
    /// Version of the director targets metadata the lock must hold.
    pub director_targets_version: u64,
    /// SHA-256 (base64url) of the canonical JSON of that metadata's `signed`.
    pub director_targets_sha256: String,
    /// The metadata itself (`{"signatures": […], "signed": {…}}`), absent
    /// when the request said the lock already holds this version. Kept as
    /// the text it arrived as (the server sends its stored text without
    /// parsing it; the lock parses it once, as TUF metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub director_targets: Option<Box<RawValue>>,
    /// Time, bound to this check-in.
    pub time: SignedTime,
}

/// A signed time: Ed25519 by a director timestamp key over
/// [`time_message`]`(time, merkle_root)`, and the Merkle path from this
/// check-in's leaf to that root ([`merkle`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTime {
    /// Unix seconds.
    pub time: u64,
    /// Merkle root, base64url.
    pub merkle_root: String,
    /// This leaf's index in the tree.
    pub index: u32,
    /// Sibling hashes from the leaf level up, base64url.
    pub path: Vec<String>,
    /// Signature, base64url, by one of the director root's `timestamp` keys
    /// (no key id: the lock tries each; it saves 80 bytes per check-in).
    pub sig: String,
}

/// The bytes a lock signs: [`CHECKIN_CONTEXT`] ‖ body.
pub fn checkin_message(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(CHECKIN_CONTEXT.len() + body.len());
    m.extend_from_slice(CHECKIN_CONTEXT);
    m.extend_from_slice(body);
    m
}

/// The `Nightlatch-Signature` header value for `sig`: `ed25519=<86 base64url>`.
pub fn signature_header(sig: &Signature) -> String {
    let mut h = String::from("ed25519=");
    h.push_str(&b64::encode(sig.to_bytes()));
    h
}

/// Parse a `Nightlatch-Signature` header value.
pub fn parse_signature_header(value: &str) -> Option<Signature> {
    let text = value.trim().strip_prefix("ed25519=")?;
    let bytes: [u8; 64] = b64::decode_array(text)?;
    Some(Signature::from_bytes(&bytes))
}

/// Sign a request body with the lock's key: the `Nightlatch-Signature`
/// header value.
pub fn sign_body(key: &SigningKey, body: &[u8]) -> String {
    signature_header(&key.sign(&checkin_message(body)))
}

#[cfg(test)]
mod tests;
