use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha256};

use super::*;

/// The golden texts: byte for byte what the update server and the lock of
/// the version before this module wrote (their own types then; these now).
const GOLDEN_FULL: &str = include_str!("golden/request_full.json");
const GOLDEN_IDLE: &str = include_str!("golden/request_idle.json");
const GOLDEN_RESPONSE: &str = include_str!("golden/response.json");
const GOLDEN_RESPONSE_HELD: &str = include_str!("golden/response_held.json");

const USAGE: &str =
    "AQsqAwBADAQMBAwEDAQMBAwEDAQBwAAACAABwAAACAABwAAACAABwAAACAABwAAACAABwAAACAABwAAACAA";

fn idle_request() -> CheckinRequest {
    CheckinRequest {
        device_id: "lock-1".into(),
        counter: 8,
        nonce: b64::encode([8u8; 16]),
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
            time_zone: None,
            usage: None,
        },
    }
}

fn full_request() -> CheckinRequest {
    let mut r = idle_request();
    r.counter = 7;
    r.nonce = b64::encode([7u8; 16]);
    r.report.boot_state = BootState::Trial;
    r.report.last_update = Some(UpdateResult {
        target: "nl-lock-v2/1.4.2.nlfw".into(),
        outcome: Outcome::RolledBack,
        reason: Some("self_test_motor".into()),
    });
    r.report.time_zone = Some("Europe/Berlin".into());
    r.report.usage = Some(USAGE.into());
    r
}

fn time_key() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

/// The golden answer's leaf: index 2 of a batch of three.
fn golden_leaf() -> Hash {
    time_leaf("lock-1", &[7; 16], 7, 3, &[0x11; 32])
}

fn golden_response(targets: bool) -> CheckinResponse {
    let leaves = [
        time_leaf("lock-0", &[1; 16], 1, 1, &[0; 32]),
        time_leaf("lock-2", &[2; 16], 2, 1, &[0; 32]),
        golden_leaf(),
    ];
    let tree = MerkleTree::build(&leaves).unwrap();
    let time = 1_893_456_000;
    let sig = time_key().sign(&time_message(time, tree.root()));
    let metadata = r#"{"signatures":[{"keyid":"4c0a","sig":"9f3e"}],"signed":{"_type":"targets","expires":"2030-01-08T00:00:00Z","spec_version":"1.0.31","targets":{},"version":3}}"#;
    CheckinResponse {
        director_root_version: 1,
        director_targets_version: 3,
        director_targets_sha256: b64::encode([0x11; 32]),
        director_targets: targets.then(|| RawValue::from_string(metadata.into()).unwrap()),
        time: tree.signed_times(time, &sig).swap_remove(2),
    }
}

#[test]
fn golden_requests_are_written_and_read_byte_for_byte() {
    for (req, golden) in [(full_request(), GOLDEN_FULL), (idle_request(), GOLDEN_IDLE)] {
        assert_eq!(serde_json::to_string(&req).unwrap(), golden.trim_end());
        let back: CheckinRequest = serde_json::from_str(golden).unwrap();
        assert_eq!(back, req);
    }
    // An idle check-in carries no optional member it does not need.
    for absent in ["usage", "last_update", "time_zone", "null"] {
        assert!(!GOLDEN_IDLE.contains(absent), "{absent}");
    }
}

#[test]
fn requests_of_older_and_newer_locks_parse() {
    // No `director_targets_version`: a lock that holds no director metadata.
    let old = GOLDEN_IDLE.replace(r#""director_targets_version":3,"#, "");
    let req: CheckinRequest = serde_json::from_str(&old).unwrap();
    assert_eq!(req.director_targets_version, 0);
    // Members this version does not know are ignored, at every level.
    let newer = GOLDEN_FULL
        .replace(
            r#""battery_percent""#,
            r#""future":{"x":[1]},"battery_percent""#,
        )
        .replace(r#""counter""#, r#""extra":"y","counter""#);
    let req: CheckinRequest = serde_json::from_str(&newer).unwrap();
    assert_eq!(req, full_request());
    // `null` for an optional member is absent.
    let nulls = GOLDEN_IDLE.replace(
        r#""battery_percent":81"#,
        r#""battery_percent":null,"usage":null"#,
    );
    let req: CheckinRequest = serde_json::from_str(&nulls).unwrap();
    assert_eq!(req.report.battery_percent, None);
    assert_eq!(req.report.usage, None);
    // Unknown enum names are refused.
    let odd = GOLDEN_IDLE.replace(r#""confirmed""#, r#""asleep""#);
    assert!(serde_json::from_str::<CheckinRequest>(&odd).is_err());
}

#[test]
fn enum_names_match_their_serialisation() {
    for b in [BootState::Confirmed, BootState::Trial, BootState::Reverted] {
        assert_eq!(
            serde_json::to_string(&b).unwrap(),
            alloc::format!("\"{}\"", b.as_str())
        );
    }
    for o in [
        Outcome::Installed,
        Outcome::Confirmed,
        Outcome::RolledBack,
        Outcome::Failed,
    ] {
        assert_eq!(
            serde_json::to_string(&o).unwrap(),
            alloc::format!("\"{}\"", o.as_str())
        );
        assert_eq!(
            o.is_failure(),
            matches!(o, Outcome::RolledBack | Outcome::Failed)
        );
    }
}

#[test]
fn golden_responses_are_written_and_read_byte_for_byte() {
    for (targets, golden) in [(true, GOLDEN_RESPONSE), (false, GOLDEN_RESPONSE_HELD)] {
        let r = golden_response(targets);
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(text, golden.trim_end());
        let back: CheckinResponse = serde_json::from_str(golden).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        assert_eq!(back.director_targets.is_some(), targets);
        // A known answer for the leaf, node, message and signature layouts.
        let key = time_key().verifying_key();
        assert_eq!(
            verify_signed_time(&back.time, &key, &golden_leaf()),
            Ok(1_893_456_000)
        );
    }
    // The metadata is kept as the text that arrived (not re-serialised).
    let spaced = GOLDEN_RESPONSE.replace(r#"{"signatures""#, r#"{ "signatures""#);
    let r: CheckinResponse = serde_json::from_str(&spaced).unwrap();
    assert!(
        r.director_targets
            .unwrap()
            .get()
            .starts_with(r#"{ "signatures""#)
    );
    // `null` metadata is absent.
    let nulled = GOLDEN_RESPONSE_HELD.replace(r#""time":"#, r#""director_targets":null,"time":"#);
    let r: CheckinResponse = serde_json::from_str(&nulled).unwrap();
    assert!(r.director_targets.is_none());
}

#[test]
fn leaf_bytes_are_pinned() {
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
    assert_eq!(leaf, <Hash>::from(Sha256::digest(&pre)));
    let mut node = vec![1u8];
    node.extend_from_slice(&leaf);
    node.extend_from_slice(&[0x22; 32]);
    assert_eq!(
        merkle_node(&leaf, &[0x22; 32]),
        <Hash>::from(Sha256::digest(&node))
    );
    let mut m = b"nightlatch/time/v1\n".to_vec();
    m.extend_from_slice(&5u64.to_be_bytes());
    m.extend_from_slice(&leaf);
    assert_eq!(time_message(5, &leaf), m);
    let single = MerkleTree::build(&[leaf]).unwrap();
    assert_eq!(single.root(), &leaf);
    assert_eq!(single.path(0), Some(&[][..]));
}

fn leaves(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| time_leaf("lock", &[i as u8; 16], i as u64, 1, &[0; 32]))
        .collect()
}

/// The proof of every leaf of trees of 1 to 33 leaves verifies; a changed
/// leaf, index, root or sibling does not.
#[test]
fn merkle_proofs_verify_for_every_leaf_and_nothing_else() {
    assert!(MerkleTree::build(&[]).is_none());
    for n in 1..=33usize {
        let leaves = leaves(n);
        let tree = MerkleTree::build(&leaves).unwrap();
        assert_eq!(tree.len(), n);
        assert!(tree.path(n).is_none());
        let width = n.next_power_of_two();
        // The padded tree, every position a leaf: the proofs a position
        // really has (padding positions hold copies of the last leaf).
        let mut padded = leaves.clone();
        padded.resize(width, leaves[n - 1]);
        let full = MerkleTree::build(&padded).unwrap();
        assert_eq!(full.root(), tree.root());
        let root = *tree.root();
        for (i, leaf) in leaves.iter().enumerate() {
            let path = tree.path(i).unwrap();
            assert_eq!(path.len(), width.trailing_zeros() as usize, "n={n} i={i}");
            assert_eq!(
                verify_proof(leaf, i as u32, path, &root),
                Ok(()),
                "n={n} i={i}"
            );
            // Another leaf at this position.
            let other = time_leaf("lock", &[0xee; 16], 0, 1, &[0; 32]);
            assert_eq!(
                verify_proof(&other, i as u32, path, &root),
                Err(ProofError::NotInTree)
            );
            for (j, l) in leaves.iter().enumerate().filter(|(j, _)| *j != i) {
                assert_eq!(
                    verify_proof(l, i as u32, path, &root),
                    Err(ProofError::NotInTree),
                    "n={n} i={i} j={j}"
                );
            }
            // Another index: only a padding copy of this very leaf, reached
            // by the same path, verifies.
            for j in (0..width as u32).filter(|j| *j as usize != i) {
                let same = padded[j as usize] == *leaf && full.path(j as usize) == Some(path);
                let got = verify_proof(leaf, j, path, &root);
                if same {
                    assert_eq!(got, Ok(()), "n={n} i={i} j={j}");
                    assert_eq!(i, n - 1, "only the last leaf is padded");
                } else {
                    assert_eq!(got, Err(ProofError::NotInTree), "n={n} i={i} j={j}");
                }
            }
            // An index beyond the tree's width.
            let beyond = (i as u32) | (1 << path.len());
            assert_eq!(
                verify_proof(leaf, beyond, path, &root),
                Err(ProofError::Shape)
            );
            // Another root.
            let mut bad_root = root;
            bad_root[0] ^= 1;
            assert_eq!(
                verify_proof(leaf, i as u32, path, &bad_root),
                Err(ProofError::NotInTree)
            );
            // A changed sibling, at every level; a path cut short or grown.
            for level in 0..path.len() {
                let mut bad = path.to_vec();
                bad[level][31] ^= 0x80;
                assert_eq!(
                    verify_proof(leaf, i as u32, &bad, &root),
                    Err(ProofError::NotInTree),
                    "n={n} i={i} level={level}"
                );
            }
            if !path.is_empty() {
                assert_ne!(
                    verify_proof(leaf, i as u32, &path[..path.len() - 1], &root),
                    Ok(())
                );
            }
            let mut longer = path.to_vec();
            longer.push(root);
            assert_ne!(verify_proof(leaf, i as u32, &longer, &root), Ok(()));
        }
    }
}

#[test]
fn a_proof_deeper_than_32_levels_is_refused() {
    let leaf = [1u8; 32];
    let path = vec![[2u8; 32]; 33];
    let root = merkle_fold(&leaf, 0, &path);
    assert_eq!(verify_proof(&leaf, 0, &path, &root), Err(ProofError::Shape));
    let path = vec![[2u8; 32]; 32];
    let root = merkle_fold(&leaf, u32::MAX, &path);
    assert_eq!(verify_proof(&leaf, u32::MAX, &path, &root), Ok(()));
}

/// Every answer of a batch verifies for its own check-in, with the key that
/// signed (alone or among others), and for nothing else.
#[test]
fn signed_times_of_a_batch_verify_for_their_own_check_in() {
    let key = time_key();
    let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
    for n in [1usize, 2, 3, 5, 8, 13, 33] {
        let leaves = leaves(n);
        let tree = MerkleTree::build(&leaves).unwrap();
        let sig = key.sign(&time_message(1_700_000_000, tree.root()));
        let times = tree.signed_times(1_700_000_000, &sig);
        assert_eq!(times.len(), n);
        for (i, t) in times.iter().enumerate() {
            assert_eq!(t.index, i as u32);
            let keys = [other, key.verifying_key()];
            assert_eq!(verify_signed_time(t, &keys, &leaves[i]), Ok(1_700_000_000));
            assert_eq!(
                verify_signed_time(t, &key.verifying_key(), &leaves[i]),
                Ok(1_700_000_000)
            );
            assert_eq!(
                verify_signed_time(t, &other, &leaves[i]),
                Err(TimeError::Signature)
            );
            assert_eq!(
                verify_signed_time(t, &[][..], &leaves[i]),
                Err(TimeError::Signature)
            );
            let wrong = time_leaf("lock", &[0xee; 16], 0, 1, &[0; 32]);
            assert_eq!(
                verify_signed_time(t, &keys, &wrong),
                Err(TimeError::NotBound)
            );
            let mut late = t.clone();
            late.time += 1;
            assert_eq!(
                verify_signed_time(&late, &keys, &leaves[i]),
                Err(TimeError::Signature)
            );
        }
    }
}

#[test]
fn malformed_signed_times_are_refused() {
    let t = golden_response(false).time;
    let key = time_key().verifying_key();
    let leaf = golden_leaf();
    assert_eq!(verify_signed_time(&t, &key, &leaf), Ok(1_893_456_000));
    let cases: [fn(&mut SignedTime); 7] = [
        |t| t.merkle_root.push('A'),
        |t| t.merkle_root.push('='),
        |t| {
            t.path[0].pop();
        },
        |t| t.path = vec![t.path[0].clone(); 33],
        |t| t.index = 4,
        |t| t.sig.truncate(85),
        |t| t.sig = hex_of(&t.sig),
    ];
    for (k, change) in cases.iter().enumerate() {
        let mut bad = t.clone();
        change(&mut bad);
        assert_ne!(bad, t, "case {k}");
        assert_eq!(
            verify_signed_time(&bad, &key, &leaf),
            Err(TimeError::Malformed),
            "case {k}"
        );
    }
    assert!(!TimeError::NotBound.to_string().is_empty());
}

fn hex_of(text: &str) -> String {
    text.bytes().map(|b| alloc::format!("{b:02x}")).collect()
}

#[test]
fn signature_header_round_trip() {
    let key = SigningKey::from_bytes(&[3; 32]);
    let header = sign_body(&key, b"{}");
    let sig = key.sign(&checkin_message(b"{}"));
    assert_eq!(header, signature_header(&sig));
    assert!(header.starts_with("ed25519="));
    assert_eq!(parse_signature_header(&header), Some(sig));
    assert_eq!(
        parse_signature_header(&alloc::format!(" {header} ")),
        Some(sig)
    );
    assert_eq!(parse_signature_header("rsa=00"), None);
    assert_eq!(parse_signature_header("ed25519=zz"), None);
    // 86 base64url characters, not 128 hex digits.
    assert_eq!(header.len(), "ed25519=".len() + 86);
    let hex: String = sig
        .to_bytes()
        .iter()
        .map(|b| alloc::format!("{b:02x}"))
        .collect();
    assert_eq!(
        parse_signature_header(&alloc::format!("ed25519={hex}")),
        None
    );
    let mut m = b"nightlatch/check-in/v1\n".to_vec();
    m.extend_from_slice(b"{}");
    assert_eq!(checkin_message(b"{}"), m);
}

#[test]
fn nonce_lengths() {
    assert_eq!(NONCE_LEN, MIN_NONCE);
    assert_eq!(decode_nonce(&b64::encode([1u8; 15])), None);
    for n in [MIN_NONCE, 32, MAX_NONCE] {
        assert_eq!(decode_nonce(&b64::encode(vec![1u8; n])), Some(vec![1u8; n]));
    }
    assert_eq!(decode_nonce(&b64::encode([1u8; MAX_NONCE + 1])), None);
    assert_eq!(decode_nonce(&"A".repeat(10_000)), None);
    assert_eq!(decode_nonce("AAAAAAAAAAAAAAAAAAAAAA=="), None);
}
