//! The check-in wire format: what a lock sends to
//! `POST /v1/devices/{id}/check-in`, how it signs it, and what it gets back.
//! Self-contained (serde, sha2, base64, ed25519-dalek only) so the lock's
//! agent can mirror it; the byte-level definition is in
//! `update-server/README.md` ("Check-in wire format") and the tests below pin
//! it. Binary fields (nonce, hashes, signatures) travel as unpadded base64url
//! ([`b64`]): a third shorter than hex, which keeps an idle check-in under
//! 1 KiB on air.
//!
//! * The request body is JSON ([`CheckinRequest`]). The lock signs the exact
//!   body bytes it sends: Ed25519 over [`CHECKIN_CONTEXT`] followed by the
//!   body ([`checkin_message`]), and sends the signature in the
//!   `Nightlatch-Signature: ed25519=<86 base64url>` header. The body carries the
//!   device id, a strictly increasing `counter` (replay and staleness) and a
//!   random `nonce` (echoed in the signed time).
//! * The response ([`CheckinResponse`]) holds the lock's director targets
//!   metadata (TUF targets signed by the director's online targets key; left
//!   out when the lock already holds that version), and a [`SignedTime`]:
//!   one Ed25519 signature by the director's timestamp key over a time and a
//!   Merkle root whose leaf for this lock ([`time_leaf`]) binds its id, nonce,
//!   counter and the director targets it must hold.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Unpadded base64url (RFC 4648 §5), the encoding of every binary field.
pub mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// Encode.
    pub fn encode(bytes: impl AsRef<[u8]>) -> String {
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
/// Header carrying the lock's signature.
pub const SIGNATURE_HEADER: &str = "nightlatch-signature";
/// Prefix of the bytes the director's timestamp key signs.
pub const TIME_CONTEXT: &[u8] = b"nightlatch/time/v1\n";
/// Domain tag of a Merkle leaf.
pub const LEAF_TAG: &[u8] = b"nightlatch/time-leaf/v1";
/// Shortest nonce (bytes).
pub const MIN_NONCE: usize = 16;
/// Longest nonce (bytes).
pub const MAX_NONCE: usize = 64;

/// The body of a check-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckinRequest {
    /// The lock's id (must equal the `{id}` in the URL).
    pub device_id: String,
    /// Strictly increasing per lock (1, 2, …; gaps allowed). A check-in whose
    /// counter is not above the last accepted one is refused as replayed.
    pub counter: u64,
    /// Random bytes, base64url (16 to 64 bytes), fresh for every check-in.
    pub nonce: String,
    /// Version of the director targets metadata the lock holds (0 or absent: none).
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
    /// the last one, absent otherwise (absent: the stored one stays).
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
}

/// What the director answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckinResponse {
    /// Newest director root version (fetch newer roots from `/director/metadata/N.root.json`).
    pub director_root_version: u64,
    /// Version of the director targets metadata the lock must hold.
    pub director_targets_version: u64,
    /// SHA-256 (base64url) of the canonical JSON of that metadata's `signed` object.
    pub director_targets_sha256: String,
    /// The metadata itself (`{"signatures": […], "signed": {…}}`), absent when
    /// the request said the lock already holds this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub director_targets: Option<Box<serde_json::value::RawValue>>,
    /// Time, bound to this check-in's nonce.
    pub time: SignedTime,
}

/// A signed time: Ed25519 by the director timestamp key over
/// [`time_message`]`(time, merkle_root)`, and the Merkle path from this
/// lock's leaf to that root.
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

/// Install policy of a site: when a lock may install.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SitePolicy {
    /// Daily window in the lock's local time (`start` may be after `end`: it wraps midnight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietWindow>,
    /// Local dates (`YYYY-MM-DD`) with no installs.
    #[serde(default)]
    pub blackout_dates: Vec<String>,
    /// Site time zone (IANA), used when the lock reports none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// A daily window, `HH:MM` local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietWindow {
    /// Start, `HH:MM`.
    pub start: String,
    /// End, `HH:MM`.
    pub end: String,
}

/// What the lock must install by when: the site policy plus the rollout's
/// security deadline. Carried, signed, in the director targets metadata
/// (`custom.director.policy` of the image target).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallPolicy {
    /// Daily quiet-hours window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietWindow>,
    /// Local dates with no installs.
    #[serde(default)]
    pub blackout_dates: Vec<String>,
    /// Site time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Install no later than this (Unix seconds), still never while the door is in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_deadline: Option<u64>,
}

/// The bytes a lock signs: [`CHECKIN_CONTEXT`] ‖ body.
pub fn checkin_message(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(CHECKIN_CONTEXT.len() + body.len());
    m.extend_from_slice(CHECKIN_CONTEXT);
    m.extend_from_slice(body);
    m
}

/// The `Nightlatch-Signature` header value for `sig`.
pub fn signature_header(sig: &ed25519_dalek::Signature) -> String {
    format!("ed25519={}", b64::encode(sig.to_bytes()))
}

/// Parse a `Nightlatch-Signature` header value.
pub fn parse_signature_header(value: &str) -> Option<ed25519_dalek::Signature> {
    let text = value.trim().strip_prefix("ed25519=")?;
    let bytes: [u8; 64] = b64::decode_array(text)?;
    Some(ed25519_dalek::Signature::from_bytes(&bytes))
}

/// The Merkle leaf of one check-in:
/// `SHA-256(0x00 ‖ LEAF_TAG ‖ u8 len(id) ‖ id ‖ u8 len(nonce) ‖ nonce ‖
/// counter u64 BE ‖ targets_version u64 BE ‖ targets_sha256[32])`.
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

/// An inner node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn merkle_node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Fold a leaf up its path: at level `i`, bit `i` of `index` set means the
/// node is a right child (sibling on the left).
pub fn merkle_fold(leaf: &[u8; 32], index: u32, path: &[[u8; 32]]) -> [u8; 32] {
    let mut node = *leaf;
    for (level, sibling) in path.iter().enumerate() {
        node = if (index >> level) & 1 == 1 {
            merkle_node(sibling, &node)
        } else {
            merkle_node(&node, sibling)
        };
    }
    node
}

/// A Merkle root and each leaf's path (sibling hashes, leaf level first).
pub type MerkleTree = ([u8; 32], Vec<Vec<[u8; 32]>>);

/// The root of `leaves` (padded to a power of two by repeating the last
/// leaf) and each leaf's path. Empty input: `None`.
pub fn merkle_tree(leaves: &[[u8; 32]]) -> Option<MerkleTree> {
    let last = *leaves.last()?;
    let width = leaves.len().next_power_of_two();
    let mut level: Vec<[u8; 32]> = leaves.to_vec();
    level.resize(width, last);
    let mut paths = vec![Vec::new(); leaves.len()];
    let mut positions: Vec<usize> = (0..leaves.len()).collect();
    while level.len() > 1 {
        for (path, pos) in paths.iter_mut().zip(positions.iter_mut()) {
            path.push(level[*pos ^ 1]);
            *pos /= 2;
        }
        level = level
            .chunks(2)
            .map(|pair| merkle_node(&pair[0], &pair[1]))
            .collect();
    }
    Some((level[0], paths))
}

/// The bytes the director's timestamp key signs: [`TIME_CONTEXT`] ‖ time u64 BE ‖ root.
pub fn time_message(time: u64, merkle_root: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(TIME_CONTEXT.len() + 40);
    m.extend_from_slice(TIME_CONTEXT);
    m.extend_from_slice(&time.to_be_bytes());
    m.extend_from_slice(merkle_root);
    m
}

/// What a lock checks about a [`SignedTime`] (mirror of the device side):
/// the leaf rebuilt from its own values folds to the root, and the root and
/// time are signed by `key`. Returns the time.
pub fn verify_signed_time(
    t: &SignedTime,
    key: &ed25519_dalek::VerifyingKey,
    leaf: &[u8; 32],
) -> Result<u64, &'static str> {
    let root: [u8; 32] =
        b64::decode_array(&t.merkle_root).ok_or("merkle_root is not 32 base64url bytes")?;
    let path: Vec<[u8; 32]> = t
        .path
        .iter()
        .map(|p| b64::decode_array(p))
        .collect::<Option<_>>()
        .ok_or("a path element is not 32 base64url bytes")?;
    if path.len() > 32 || (path.len() < 32 && u64::from(t.index) >> path.len() != 0) {
        return Err("index does not fit the path");
    }
    if merkle_fold(leaf, t.index, &path) != root {
        return Err("the leaf does not lead to the signed root");
    }
    let sig: [u8; 64] = b64::decode_array(&t.sig).ok_or("sig is not 64 base64url bytes")?;
    key.verify_strict(
        &time_message(t.time, &root),
        &ed25519_dalek::Signature::from_bytes(&sig),
    )
    .map_err(|_| "the time signature does not verify")?;
    Ok(t.time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merkle_paths_fold_to_the_root_for_every_size() {
        for n in 1..=17usize {
            let leaves: Vec<[u8; 32]> = (0..n)
                .map(|i| time_leaf("lock", &[i as u8; 16], i as u64, 1, &[0; 32]))
                .collect();
            let (root, paths) = merkle_tree(&leaves).unwrap();
            for (i, leaf) in leaves.iter().enumerate() {
                assert_eq!(merkle_fold(leaf, i as u32, &paths[i]), root, "n={n} i={i}");
                // any other leaf at this position fails
                let other = time_leaf("lock", &[0xee; 16], 0, 1, &[0; 32]);
                assert_ne!(merkle_fold(&other, i as u32, &paths[i]), root);
            }
        }
        assert!(merkle_tree(&[]).is_none());
    }

    #[test]
    fn leaf_bytes_are_pinned() {
        // A known answer, so the device side can check its implementation.
        let leaf = time_leaf("lock-1", &[0xab; 16], 7, 3, &[0x11; 32]);
        let mut pre = vec![0u8];
        pre.extend_from_slice(LEAF_TAG);
        pre.push(6);
        pre.extend_from_slice(b"lock-1");
        pre.push(16);
        pre.extend_from_slice(&[0xab; 16]);
        pre.extend_from_slice(&7u64.to_be_bytes());
        pre.extend_from_slice(&3u64.to_be_bytes());
        pre.extend_from_slice(&[0x11; 32]);
        assert_eq!(leaf, <[u8; 32]>::from(Sha256::digest(&pre)));
        let single = merkle_tree(&[leaf]).unwrap();
        assert_eq!(single.0, leaf);
        assert!(single.1[0].is_empty());
    }

    #[test]
    fn signed_time_verifies_only_with_its_leaf_and_key() {
        use ed25519_dalek::Signer;
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let leaves: Vec<[u8; 32]> = (0..5u8).map(|i| [i; 32]).collect();
        let (root, paths) = merkle_tree(&leaves).unwrap();
        let sig = key.sign(&time_message(1_700_000_000, &root));
        let t = SignedTime {
            time: 1_700_000_000,
            merkle_root: b64::encode(root),
            index: 3,
            path: paths[3].iter().map(b64::encode).collect(),
            sig: b64::encode(sig.to_bytes()),
        };
        assert_eq!(
            verify_signed_time(&t, &key.verifying_key(), &leaves[3]),
            Ok(1_700_000_000)
        );
        assert!(verify_signed_time(&t, &key.verifying_key(), &leaves[2]).is_err());
        let other = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
        assert!(verify_signed_time(&t, &other.verifying_key(), &leaves[3]).is_err());
        let mut late = t.clone();
        late.time += 1;
        assert!(verify_signed_time(&late, &key.verifying_key(), &leaves[3]).is_err());
    }

    /// A check-in with a usage summary, byte for byte as the server's types
    /// write it; the lock's `agent/wire.rs` test reads the same text.
    const CHECKIN_JSON: &str = r#"{"device_id":"lock-1","counter":7,"nonce":"BwcHBwcHBwcHBwcHBwcHBw","director_targets_version":3,"report":{"hardware_model":"nl-lock-v2","firmware":{"version":"1.4.2","security_counter":7},"boot_state":"confirmed","battery_percent":81,"time_zone":"Europe/Berlin","usage":"AQsqAwBABBAEEAQQBBAEEAQQBBABwAAACAABwAAACAABwAAACAABwAAACAABwAAACAABwAAACAABwAAACAA"}}"#;

    fn request(usage: Option<&str>) -> CheckinRequest {
        CheckinRequest {
            device_id: "lock-1".into(),
            counter: 7,
            nonce: b64::encode([7u8; 16]),
            director_targets_version: 3,
            report: Report {
                hardware_model: "nl-lock-v2".into(),
                firmware: Firmware {
                    version: "1.4.2".into(),
                    security_counter: 7,
                },
                boot_state: BootState::Confirmed,
                last_update: None,
                battery_percent: Some(81),
                time_zone: Some("Europe/Berlin".into()),
                usage: usage.map(str::to_owned),
            },
        }
    }

    #[test]
    fn checkin_json_is_pinned_for_the_lock() {
        let usage =
            "AQsqAwBABBAEEAQQBBAEEAQQBBABwAAACAABwAAACAABwAAACAABwAAACAABwAAACAABwAAACAABwAAACAA";
        assert_eq!(
            serde_json::to_string(&request(Some(usage))).unwrap(),
            CHECKIN_JSON
        );
        let s = lock_app::scheduler::summary::UsageSummary::from_text(usage).unwrap();
        assert_eq!(s.to_text(), usage);
    }

    #[test]
    fn the_lock_json_parses_both_ways_with_and_without_usage() {
        use lock_app::agent::wire as lock;
        // The lock's own types, as its agent writes a check-in.
        let lock_req: lock::CheckinRequest = serde_json::from_str(CHECKIN_JSON).unwrap();
        let from_lock = serde_json::to_vec(&lock_req).unwrap();
        let req: CheckinRequest = serde_json::from_slice(&from_lock).unwrap();
        assert_eq!(req, request(req.report.usage.as_deref()));
        assert!(req.report.usage.is_some());
        assert_eq!(serde_json::to_vec(&req).unwrap(), from_lock);

        // An idle check-in (no summary), from either side: no `usage` key,
        // the same bytes as before the field existed; parsed as None.
        let mut idle = lock_req.clone();
        idle.report.usage = None;
        let idle = serde_json::to_string(&idle).unwrap();
        assert!(!idle.contains("usage"), "{idle}");
        let req: CheckinRequest = serde_json::from_str(&idle).unwrap();
        assert_eq!(req, request(None));
        assert_eq!(serde_json::to_string(&request(None)).unwrap(), idle);
        let back: lock::CheckinRequest = serde_json::from_str(&idle).unwrap();
        assert_eq!(back.report.usage, None);

        // A server that predates the field (these types without `usage`)
        // reads a check-in carrying it, as this one reads fields it does
        // not know.
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct OldReport {
            hardware_model: String,
            firmware: Firmware,
            boot_state: BootState,
            #[serde(default)]
            last_update: Option<UpdateResult>,
            #[serde(default)]
            battery_percent: Option<u8>,
            #[serde(default)]
            time_zone: Option<String>,
        }
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct OldRequest {
            device_id: String,
            counter: u64,
            nonce: String,
            #[serde(default)]
            director_targets_version: u64,
            report: OldReport,
        }
        let old: OldRequest = serde_json::from_str(CHECKIN_JSON).unwrap();
        assert_eq!(old.report.battery_percent, Some(81));
        let newer = CHECKIN_JSON.replace(
            r#""battery_percent""#,
            r#""future":{"x":1},"battery_percent""#,
        );
        let req: CheckinRequest = serde_json::from_str(&newer).unwrap();
        assert!(req.report.usage.is_some());
    }

    #[test]
    fn signature_header_round_trip() {
        use ed25519_dalek::Signer;
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let sig = key.sign(&checkin_message(b"{}"));
        let header = signature_header(&sig);
        assert!(header.starts_with("ed25519="));
        assert_eq!(parse_signature_header(&header), Some(sig));
        assert_eq!(parse_signature_header("rsa=00"), None);
        assert_eq!(parse_signature_header("ed25519=zz"), None);
        // 86 base64url characters, not 128 hex digits
        assert_eq!(header.len(), "ed25519=".len() + 86);
        assert_eq!(
            parse_signature_header(&format!("ed25519={}", hex::encode(sig.to_bytes()))),
            None
        );
        // padded or standard-alphabet base64 is not accepted
        assert_eq!(b64::decode("AA=="), None);
        assert_eq!(b64::decode("+/8"), None);
        assert_eq!(b64::decode("-_8"), Some(vec![0xfb, 0xff]));
    }

    /// The golden check-in texts (shared with `nightlatch_proto::wire` and
    /// the lock): what this version writes and reads, byte for byte.
    const GOLDEN_FULL: &str =
        include_str!("../../nightlatch-proto/src/wire/golden/request_full.json");
    const GOLDEN_IDLE: &str =
        include_str!("../../nightlatch-proto/src/wire/golden/request_idle.json");
    const GOLDEN_RESPONSE: &str =
        include_str!("../../nightlatch-proto/src/wire/golden/response.json");
    const GOLDEN_RESPONSE_HELD: &str =
        include_str!("../../nightlatch-proto/src/wire/golden/response_held.json");

    fn golden_requests() -> (CheckinRequest, CheckinRequest) {
        let usage =
            "AQsqAwBABBAEEAQQBBAEEAQQBBABwAAACAABwAAACAABwAAACAABwAAACAABwAAACAABwAAACAABwAAACAA";
        let mut full = request(Some(usage));
        full.report.boot_state = BootState::Trial;
        full.report.last_update = Some(UpdateResult {
            target: "nl-lock-v2/1.4.2.nlfw".into(),
            outcome: Outcome::RolledBack,
            reason: Some("self_test_motor".into()),
        });
        let mut idle = request(None);
        idle.counter = 8;
        idle.nonce = b64::encode([8u8; 16]);
        idle.report.time_zone = None;
        (full, idle)
    }

    /// Index 2 of a batch of three, signed by a fixed key at a fixed time.
    fn golden_response(targets: bool) -> CheckinResponse {
        use ed25519_dalek::Signer;
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let leaves = [
            time_leaf("lock-0", &[1; 16], 1, 1, &[0; 32]),
            time_leaf("lock-2", &[2; 16], 2, 1, &[0; 32]),
            time_leaf("lock-1", &[7; 16], 7, 3, &[0x11; 32]),
        ];
        let (root, paths) = merkle_tree(&leaves).unwrap();
        let time = 1_893_456_000;
        let sig = key.sign(&time_message(time, &root));
        let metadata = r#"{"signatures":[{"keyid":"4c0a","sig":"9f3e"}],"signed":{"_type":"targets","expires":"2030-01-08T00:00:00Z","spec_version":"1.0.31","targets":{},"version":3}}"#;
        CheckinResponse {
            director_root_version: 1,
            director_targets_version: 3,
            director_targets_sha256: b64::encode([0x11; 32]),
            director_targets: targets
                .then(|| serde_json::value::RawValue::from_string(metadata.into()).unwrap()),
            time: SignedTime {
                time,
                merkle_root: b64::encode(root),
                index: 2,
                path: paths[2].iter().map(b64::encode).collect(),
                sig: b64::encode(sig.to_bytes()),
            },
        }
    }

    #[test]
    fn golden_request_bytes() {
        let (full, idle) = golden_requests();
        assert_eq!(
            serde_json::to_string(&full).unwrap(),
            GOLDEN_FULL.trim_end()
        );
        assert_eq!(
            serde_json::to_string(&idle).unwrap(),
            GOLDEN_IDLE.trim_end()
        );
        let back: CheckinRequest = serde_json::from_str(GOLDEN_FULL).unwrap();
        assert_eq!(back, full);
        let back: CheckinRequest = serde_json::from_str(GOLDEN_IDLE).unwrap();
        assert_eq!(back, idle);
    }

    #[test]
    fn golden_response_bytes() {
        for (targets, golden) in [(true, GOLDEN_RESPONSE), (false, GOLDEN_RESPONSE_HELD)] {
            let r = golden_response(targets);
            let text = serde_json::to_string(&r).unwrap();
            assert_eq!(text, golden.trim_end());
            let back: CheckinResponse = serde_json::from_str(golden).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), text);
            let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key();
            let leaf = time_leaf("lock-1", &[7; 16], 7, 3, &[0x11; 32]);
            assert_eq!(
                verify_signed_time(&back.time, &key, &leaf),
                Ok(1_893_456_000)
            );
        }
    }
}
