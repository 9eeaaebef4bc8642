//! Root chain: rotations followed; bad signatures, gaps and key-id tricks refused.

use crate::prelude::*;

#[test]
fn root_chain_rotation_is_followed_and_persisted() {
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    // v2: key 1 → keys 6, 7 (threshold 2); v3: threshold back to 1 with key 8.
    let (k1, k6, k7, k8) = (key(1), key(6), key(7), key(8));
    repo.rotate_root(vec![k6.clone(), k7.clone()], 2, &[&k1, &k6, &k7]);
    repo.rotate_root(vec![k8.clone()], 1, &[&k6, &k7, &k8]);
    dev.fetch(&mut repo, FIRMWARE).unwrap().unwrap();
    let u = dev.updater(&mut repo, Limits::default()).unwrap();
    assert_eq!(u.trusted().root().header.version, 3);
}

fn chain_error(signers_v2: &[&Key], new_keys: Vec<Key>, threshold: u64) -> TufError {
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    repo.rotate_root(new_keys, threshold, signers_v2);
    dev.refresh(&mut repo).unwrap_err()
}

#[test]
fn root_chain_with_bad_signatures_is_refused() {
    let (k1, k6, k7) = (key(1), key(6), key(7));
    // Only the new key signed: the old threshold is not met.
    assert_eq!(
        chain_error(&[&k6], vec![k6.clone()], 1),
        TufError::Signature {
            role: Role::Root,
            valid: 0,
            threshold: 1
        }
    );
    // Only the old key signed: the new threshold is not met.
    assert_eq!(
        chain_error(&[&k1], vec![k6.clone()], 1),
        TufError::Signature {
            role: Role::Root,
            valid: 0,
            threshold: 1
        }
    );
    // New threshold 2, one of the two new keys signed.
    assert_eq!(
        chain_error(&[&k1, &k6], vec![k6.clone(), k7.clone()], 2),
        TufError::Signature {
            role: Role::Root,
            valid: 1,
            threshold: 2
        }
    );
    // A corrupted signature counts for nothing.
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    repo.rotate_root(vec![k1.clone()], 1, &[&k1]);
    let bytes = repo.meta.files.get_mut("2.root.json").unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let pos = text.find("\"sig\": \"").unwrap() + 8;
    bytes[pos] = if bytes[pos] == b'0' { b'1' } else { b'0' };
    assert!(matches!(
        dev.refresh(&mut repo),
        Err(TufError::Signature {
            role: Role::Root,
            valid: 0,
            ..
        })
    ));
}

#[test]
fn root_chain_with_a_version_gap_is_refused() {
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    let k1 = key(1);
    repo.root.version = 2; // the next rotation writes version 3 …
    repo.rotate_root(vec![k1.clone()], 1, &[&k1]);
    let v3 = repo.meta.files.remove("3.root.json").unwrap();
    repo.meta.files.insert("2.root.json".into(), v3); // … served as 2.root.json
    assert_eq!(
        dev.refresh(&mut repo),
        Err(TufError::RootVersionGap {
            expected: 2,
            got: 3
        })
    );
}

#[test]
fn rotating_timestamp_and_snapshot_keys_resets_their_rollback_reference() {
    // Fast-forward recovery: stolen online keys pushed timestamp/snapshot to
    // version 50; the root rotates those keys and the repository starts
    // again at version 1.
    let (mut repo, mut dev) = refreshed();
    repo.timestamp.version = 50;
    repo.snapshot.version = 50;
    repo.write();
    dev.refresh(&mut repo).unwrap();
    repo.timestamp_key = key(20);
    repo.snapshot_key = key(21);
    repo.rotate_root(vec![key(1)], 1, &[&key(1)]);
    repo.timestamp.version = 1;
    repo.snapshot.version = 3;
    repo.write();
    dev.refresh(&mut repo).unwrap();
    let u = dev.updater(&mut repo, Limits::default()).unwrap();
    assert_eq!(u.trusted().root().header.version, 2);

    // Without a rotation the same drop is a rollback.
    let (mut repo, mut dev) = refreshed();
    repo.timestamp.version = 50;
    repo.write();
    dev.refresh(&mut repo).unwrap();
    repo.timestamp.version = 3;
    repo.write();
    assert!(matches!(
        dev.refresh(&mut repo),
        Err(TufError::Rollback {
            role: Role::Timestamp,
            ..
        })
    ));
}

#[test]
fn one_key_listed_under_two_key_ids_counts_once() {
    let repo = Repo::new();
    let k = key(1);
    let mut root = repo.root_signed();
    let public = root["keys"][&k.id].clone();
    root["keys"]["alias-of-key-1"] = public;
    root["roles"]["root"] = json!({"keyids": [k.id, "alias-of-key-1"], "threshold": 2});
    let canonical = lock_app::tuf::cjson::to_vec(&root).unwrap();
    let sig = lock_app::tuf::hex_encode(&ed25519_dalek::Signer::sign(&k.sk, &canonical).to_bytes());
    let bytes = serde_json::to_vec(&json!({"signed": root, "signatures": [
        {"keyid": k.id, "sig": sig}, {"keyid": "alias-of-key-1", "sig": sig}]}))
    .unwrap();
    assert_eq!(
        lock_app::tuf::TrustedSet::new(&bytes, NOW).unwrap_err(),
        TufError::Signature {
            role: Role::Root,
            valid: 1,
            threshold: 2
        }
    );
}
