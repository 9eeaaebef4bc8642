//! Arbitrary software: targets whose bytes, length or signer are wrong.

use crate::prelude::*;

#[test]
fn arbitrary_target_with_wrong_hash_is_refused() {
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    for (path, bytes) in repo.target_store.files.iter_mut() {
        if path.starts_with("nl-lock-v2/") {
            bytes[0] ^= 1; // same length, other content
        }
    }
    assert_eq!(
        dev.fetch(&mut repo, FIRMWARE),
        Err(TufError::TargetHashMismatch)
    );
}

#[test]
fn arbitrary_target_with_wrong_length_is_refused() {
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    for (path, bytes) in repo.target_store.files.iter_mut() {
        if path.starts_with("nl-lock-v2/") {
            bytes.pop();
        }
    }
    assert_eq!(
        dev.fetch(&mut repo, FIRMWARE),
        Err(TufError::TargetLengthMismatch)
    );
}

#[test]
fn target_listed_by_a_role_not_trusted_for_its_path_is_not_found() {
    // The model's key signs a target outside `nl-lock-v2/*`: never offered.
    let mut repo = Repo::new();
    repo.model_files
        .insert("nl-lock-v3/evil.nlfw".into(), b"evil".to_vec());
    repo.write();
    let mut dev = Device::provisioned(&repo);
    assert_eq!(dev.fetch(&mut repo, "nl-lock-v3/evil.nlfw"), Ok(None));
}

#[test]
fn delegated_metadata_signed_by_the_wrong_key_is_refused() {
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    let forged = sign(&repo.model_signed(), &[&repo.targets_key]);
    repo.meta.files.insert("1.nl-lock-v2.json".into(), forged);
    // Keep snapshot consistent with the forged file so only the key is wrong.
    let targets = repo.meta.files["1.targets.json"].clone();
    let model = repo.meta.files["1.nl-lock-v2.json"].clone();
    let snap = sign(
        &repo.snapshot_signed(&targets, &model),
        &[&repo.snapshot_key],
    );
    let ts = sign(&repo.timestamp_signed(&snap), &[&repo.timestamp_key]);
    repo.meta.files.insert("1.snapshot.json".into(), snap);
    repo.meta.files.insert("timestamp.json".into(), ts);
    assert_eq!(
        dev.fetch(&mut repo, FIRMWARE),
        Err(TufError::Signature {
            role: Role::Delegated,
            valid: 0,
            threshold: 1
        })
    );
}

#[test]
fn metadata_changed_after_signing_is_refused() {
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    let mut ts: serde_json::Value =
        serde_json::from_slice(&repo.meta.files["timestamp.json"]).unwrap();
    ts["signed"]["expires"] = json!("2099-01-01T00:00:00Z");
    repo.meta
        .files
        .insert("timestamp.json".into(), serde_json::to_vec(&ts).unwrap());
    assert_eq!(
        dev.refresh(&mut repo),
        Err(TufError::Signature {
            role: Role::Timestamp,
            valid: 0,
            threshold: 1
        })
    );
}

#[test]
fn top_level_targets_are_searched_first_and_unsafe_names_refused() {
    // A target under `nl-lock-v2/` listed by top-level targets is found
    // there before the delegation is consulted; a name no role lists is not
    // found; a name with `..` is refused before any lookup.
    let mut repo = Repo::new();
    repo.top_files
        .insert("nl-lock-v2/top.bin".into(), b"top".to_vec());
    repo.write();
    let mut dev = Device::provisioned(&repo);
    assert_eq!(
        dev.fetch(&mut repo, "nl-lock-v2/top.bin")
            .unwrap()
            .as_deref(),
        Some(&b"top"[..])
    );
    let mut u = dev.updater(&mut repo, Limits::default()).unwrap();
    u.refresh().unwrap();
    assert_eq!(u.target_info("nl-lock-v2/none.bin"), Ok(None));
    assert_eq!(
        u.target_info("../etc/passwd"),
        Err(TufError::InvalidTargetName)
    );
}

#[test]
fn streamed_target_is_checked_chunk_by_chunk() {
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    let mut u = dev.updater(&mut repo, Limits::default()).unwrap();
    u.refresh().unwrap();
    let info = u.target_info(FIRMWARE).unwrap().unwrap();
    let image = b"NLFW firmware image 1.0.0".repeat(40);
    let mut v = info.verifier().unwrap();
    for chunk in image.chunks(7) {
        v.update(chunk).unwrap();
    }
    v.finish().unwrap();
    let mut v = info.verifier().unwrap();
    v.update(&image).unwrap();
    assert_eq!(v.update(b"x"), Err(TufError::TargetTooLarge));
    let mut v = info.verifier().unwrap();
    v.update(&image[..image.len() - 1]).unwrap();
    assert_eq!(v.finish(), Err(TufError::TargetLengthMismatch));
}
