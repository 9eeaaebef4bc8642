//! The check-in wire format, lock side (`no_std` + `alloc`): the mirror of
//! `update-server/src/wire.rs`, whose README section "Check-in wire format"
//! defines the bytes. Only what the lock sends and checks lives here; the
//! known-answer test at the bottom pins the leaf layout to the server's.
//! Binary fields travel as unpadded base64url ([`b64`]).

use alloc::string::String;
use alloc::vec::Vec;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Unpadded base64url (RFC 4648 §5), the encoding of every binary field.
pub mod b64 {
    use alloc::string::String;
    use alloc::vec::Vec;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// Encode.
    pub fn encode(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Decode; `None` for anything that is not canonical unpadded base64url.
    pub fn decode(text: &str) -> Option<Vec<u8>> {
        URL_SAFE_NO_PAD.decode(text).ok()
    }

    /// Decode exactly `N` bytes.
    pub fn decode_array<const N: usize>(text: &str) -> Option<[u8; N]> {
        decode(text)?.try_into().ok()
    }
}

/// Prefix of the bytes a lock signs: this, then the exact request body.
pub const CHECKIN_CONTEXT: &[u8] = b"nightlatch/check-in/v1\n";
/// Prefix of the bytes the director's timestamp key signs.
pub const TIME_CONTEXT: &[u8] = b"nightlatch/time/v1\n";
/// Domain tag of a Merkle leaf.
pub const LEAF_TAG: &[u8] = b"nightlatch/time-leaf/v1";
/// Nonce length the lock uses (bytes).
pub const NONCE_LEN: usize = 16;

/// The body of a check-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckinRequest {
    /// The lock's id.
    pub device_id: String,
    /// Strictly increasing per lock.
    pub counter: u64,
    /// Fresh random bytes, base64url.
    pub nonce: String,
    /// Version of the director targets metadata the lock holds (0: none).
    pub director_targets_version: u64,
    /// What the lock runs and what happened since last time.
    pub report: Report,
}

/// The lock's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Hardware model.
    pub hardware_model: String,
    /// The image in ACTIVE.
    pub firmware: Firmware,
    /// Boot state of that image.
    pub boot_state: BootState,
    /// The most recent update attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update: Option<UpdateResult>,
    /// Battery charge, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_percent: Option<u8>,
    /// IANA time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// The learned door usage, packed by
    /// [`crate::scheduler::summary::UsageSummary::to_text`] (unpadded
    /// base64url); only when it is due (see [`crate::agent`]), absent
    /// otherwise, so an idle check-in does not grow. Servers that predate it
    /// ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<String>,
}

/// A firmware image's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firmware {
    /// `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// Anti-rollback counter.
    pub security_counter: u32,
}

/// Boot state of the running image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BootState {
    /// Confirmed.
    Confirmed,
    /// On trial.
    Trial,
    /// Reverted after a failed trial.
    Reverted,
}

/// How an update attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateResult {
    /// Image target name.
    pub target: String,
    /// Outcome.
    pub outcome: Outcome,
    /// Short reason code for failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Outcome of an update attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Swapped, running on trial.
    Installed,
    /// Running and confirmed.
    Confirmed,
    /// Trial failed; reverted.
    RolledBack,
    /// Failed before the swap.
    Failed,
}

/// What the director answers (parsed, not yet verified).
#[derive(Debug, Clone, Deserialize)]
pub struct CheckinResponse {
    /// Newest director root version.
    pub director_root_version: u64,
    /// Version of the director targets metadata the lock must hold.
    pub director_targets_version: u64,
    /// SHA-256 (base64url) of the canonical JSON of that metadata's `signed`.
    pub director_targets_sha256: String,
    /// The metadata, unless the lock already holds this version.
    #[serde(default)]
    pub director_targets: Option<Value>,
    /// Time bound to this check-in.
    pub time: SignedTime,
}

/// A signed time and this lock's Merkle path to the signed root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTime {
    /// Unix seconds.
    pub time: u64,
    /// Merkle root, base64url.
    pub merkle_root: String,
    /// Leaf index.
    pub index: u32,
    /// Sibling hashes, leaf level first, base64url.
    pub path: Vec<String>,
    /// Signature by one of the director root's timestamp keys, base64url.
    pub sig: String,
}

/// Install policy, signed inside the director target's `custom.director.policy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallPolicy {
    /// Daily window, local time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietWindow>,
    /// Local dates (`YYYY-MM-DD`) with no installs.
    #[serde(default)]
    pub blackout_dates: Vec<String>,
    /// Site time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Install no later than this (Unix seconds), never while the door is in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_deadline: Option<u64>,
}

/// A daily window, `HH:MM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietWindow {
    /// Start.
    pub start: String,
    /// End.
    pub end: String,
}

/// Sign a request body: the `Nightlatch-Signature` header value.
pub fn sign_body(key: &SigningKey, body: &[u8]) -> String {
    let mut m = Vec::with_capacity(CHECKIN_CONTEXT.len() + body.len());
    m.extend_from_slice(CHECKIN_CONTEXT);
    m.extend_from_slice(body);
    let sig = key.sign(&m);
    let mut h = String::from("ed25519=");
    h.push_str(&b64::encode(&sig.to_bytes()));
    h
}

/// The Merkle leaf of one check-in (layout in the server README).
pub fn time_leaf(
    device_id: &str,
    nonce: &[u8],
    counter: u64,
    targets_version: u64,
    targets_sha256: &[u8; 32],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(LEAF_TAG);
    h.update([u8::try_from(device_id.len()).unwrap_or(u8::MAX)]);
    h.update(device_id.as_bytes());
    h.update([u8::try_from(nonce.len()).unwrap_or(u8::MAX)]);
    h.update(nonce);
    h.update(counter.to_be_bytes());
    h.update(targets_version.to_be_bytes());
    h.update(targets_sha256);
    h.finalize().into()
}

fn node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Why a signed time was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeError {
    /// Binary fields of the wrong length, or an index that does not fit the path.
    Malformed,
    /// This check-in's leaf does not fold to the signed root: the answer is
    /// for another check-in (replayed, or misdirected).
    NotBound,
    /// The signature does not verify with the key.
    Signature,
}

/// Check a signed time against this check-in's own leaf and the director's
/// timestamp keys (any one of them may have signed); returns the time.
pub fn verify_signed_time(
    t: &SignedTime,
    keys: &[VerifyingKey],
    leaf: &[u8; 32],
) -> Result<u64, TimeError> {
    let root = b64::decode_array::<32>(&t.merkle_root).ok_or(TimeError::Malformed)?;
    if t.path.len() > 32 || (t.path.len() < 32 && u64::from(t.index) >> t.path.len() != 0) {
        return Err(TimeError::Malformed);
    }
    let mut h = *leaf;
    for (level, p) in t.path.iter().enumerate() {
        let sibling = b64::decode_array::<32>(p).ok_or(TimeError::Malformed)?;
        h = if (t.index >> level) & 1 == 1 {
            node(&sibling, &h)
        } else {
            node(&h, &sibling)
        };
    }
    if h != root {
        return Err(TimeError::NotBound);
    }
    let sig = Signature::from_bytes(&b64::decode_array::<64>(&t.sig).ok_or(TimeError::Malformed)?);
    let mut m = Vec::with_capacity(TIME_CONTEXT.len() + 40);
    m.extend_from_slice(TIME_CONTEXT);
    m.extend_from_slice(&t.time.to_be_bytes());
    m.extend_from_slice(&root);
    if keys.iter().any(|k| k.verify_strict(&m, &sig).is_ok()) {
        Ok(t.time)
    } else {
        Err(TimeError::Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_matches_the_server_layout() {
        // Same known answer as update-server/src/wire.rs `leaf_bytes_are_pinned`.
        let leaf = time_leaf("lock-1", &[0xab; 16], 7, 3, &[0x11; 32]);
        let mut pre = alloc::vec![0u8];
        pre.extend_from_slice(LEAF_TAG);
        pre.push(6);
        pre.extend_from_slice(b"lock-1");
        pre.push(16);
        pre.extend_from_slice(&[0xab; 16]);
        pre.extend_from_slice(&7u64.to_be_bytes());
        pre.extend_from_slice(&3u64.to_be_bytes());
        pre.extend_from_slice(&[0x11; 32]);
        assert_eq!(leaf, <[u8; 32]>::from(Sha256::digest(&pre)));
    }

    /// A check-in as the update server's `wire.rs` writes it, byte for byte
    /// (its test `checkin_json_is_pinned_for_the_lock` pins the same text).
    const SERVER_JSON: &str = r#"{"device_id":"lock-1","counter":7,"nonce":"BwcHBwcHBwcHBwcHBwcHBw","director_targets_version":3,"report":{"hardware_model":"nl-lock-v2","firmware":{"version":"1.4.2","security_counter":7},"boot_state":"confirmed","battery_percent":81,"time_zone":"Europe/Berlin","usage":"AQsqAwBABBAEEAQQBBAEEAQQBBABwAAACAABwAAACAABwAAACAABwAAACAABwAAACAABwAAACAABwAAACAA"}}"#;

    #[test]
    fn the_server_json_parses_and_the_lock_writes_the_same_bytes() {
        use crate::scheduler::summary::{QuietSlot, UsageSummary};
        let req: CheckinRequest = serde_json::from_str(SERVER_JSON).unwrap();
        let usage = UsageSummary::from_text(req.report.usage.as_deref().unwrap()).unwrap();
        assert_eq!(usage.epoch_week, 2858);
        assert_eq!(usage.weeks_learned, 3);
        assert_eq!(usage.peak_entries(), 4.0);
        assert!(usage.quiet.iter().all(|q| *q
            == Some(QuietSlot {
                start: 4,
                quarters: 16
            })));
        assert_eq!(
            (
                usage.heat_at(2, 0),
                usage.heat_at(2, 7),
                usage.heat_at(2, 17)
            ),
            (1, 3, 2)
        );
        assert_eq!(serde_json::to_string(&req).unwrap(), SERVER_JSON);

        // Without a summary: no `usage` key at all (an idle check-in is
        // byte for byte what it was), and the old JSON still parses.
        let mut old = req.clone();
        old.report.usage = None;
        let text = serde_json::to_string(&old).unwrap();
        assert!(!text.contains("usage"), "{text}");
        let back: CheckinRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(back, old);
        // Fields this lock does not know are ignored.
        let newer =
            SERVER_JSON.replace(r#""battery_percent""#, r#""future":[1],"battery_percent""#);
        let back: CheckinRequest = serde_json::from_str(&newer).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn signed_time_single_leaf() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let leaf = time_leaf("lock-1", &[1; 16], 1, 0, &[0; 32]);
        let mut m = Vec::from(TIME_CONTEXT);
        m.extend_from_slice(&5u64.to_be_bytes());
        m.extend_from_slice(&leaf);
        let t = SignedTime {
            time: 5,
            merkle_root: b64::encode(&leaf),
            index: 0,
            path: Vec::new(),
            sig: b64::encode(&key.sign(&m).to_bytes()),
        };
        let other_key = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert_eq!(verify_signed_time(&t, &[key.verifying_key()], &leaf), Ok(5));
        assert_eq!(
            verify_signed_time(&t, &[other_key, key.verifying_key()], &leaf),
            Ok(5)
        );
        assert_eq!(
            verify_signed_time(&t, &[other_key], &leaf),
            Err(TimeError::Signature)
        );
        assert_eq!(
            verify_signed_time(&t, &[], &leaf),
            Err(TimeError::Signature)
        );
        let other = time_leaf("lock-1", &[2; 16], 1, 0, &[0; 32]);
        assert_eq!(
            verify_signed_time(&t, &[key.verifying_key()], &other),
            Err(TimeError::NotBound)
        );
        let mut bad = t.clone();
        bad.index = 1;
        assert_eq!(
            verify_signed_time(&bad, &[key.verifying_key()], &leaf),
            Err(TimeError::Malformed)
        );
    }

    /// The golden texts shared with `nightlatch_proto::wire` and the server:
    /// what this lock writes and reads, byte for byte.
    #[test]
    fn golden_texts() {
        let full: CheckinRequest = serde_json::from_str(include_str!(
            "../../../nightlatch-proto/src/wire/golden/request_full.json"
        ))
        .unwrap();
        assert_eq!(full.report.boot_state, BootState::Trial);
        assert_eq!(
            full.report.last_update.as_ref().map(|u| u.outcome),
            Some(Outcome::RolledBack)
        );
        for golden in [
            include_str!("../../../nightlatch-proto/src/wire/golden/request_full.json"),
            include_str!("../../../nightlatch-proto/src/wire/golden/request_idle.json"),
        ] {
            let req: CheckinRequest = serde_json::from_str(golden).unwrap();
            assert_eq!(serde_json::to_string(&req).unwrap(), golden.trim_end());
        }
        let key = SigningKey::from_bytes(&[9; 32]).verifying_key();
        let leaf = time_leaf("lock-1", &[7; 16], 7, 3, &[0x11; 32]);
        for (golden, targets) in [
            (
                include_str!("../../../nightlatch-proto/src/wire/golden/response.json"),
                true,
            ),
            (
                include_str!("../../../nightlatch-proto/src/wire/golden/response_held.json"),
                false,
            ),
        ] {
            let resp: CheckinResponse = serde_json::from_str(golden).unwrap();
            assert_eq!(resp.director_targets.is_some(), targets);
            assert_eq!(resp.director_targets_version, 3);
            assert_eq!(
                b64::decode_array::<32>(&resp.director_targets_sha256),
                Some([0x11; 32])
            );
            assert_eq!(
                verify_signed_time(&resp.time, &[key], &leaf),
                Ok(1_893_456_000)
            );
        }
    }
}
