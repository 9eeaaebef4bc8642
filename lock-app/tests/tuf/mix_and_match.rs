//! Mix-and-match: metadata not matching the version, length or hash its parent lists.

use crate::prelude::*;

#[test]
fn snapshot_not_matching_timestamp_version_is_refused() {
    // The timestamp lists snapshot v2 without hashes or length; the file
    // served as 2.snapshot.json is the (validly signed) snapshot v1.
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    let old = repo.meta.files["1.snapshot.json"].clone();
    repo.timestamp.version = 2;
    let mut ts = repo.timestamp_signed(&old);
    ts["meta"]["snapshot.json"] = json!({"version": 2});
    repo.meta.files.insert("2.snapshot.json".into(), old);
    repo.meta
        .files
        .insert("timestamp.json".into(), sign(&ts, &[&repo.timestamp_key]));
    assert_eq!(
        dev.refresh(&mut repo),
        Err(TufError::VersionMismatch {
            role: Role::Snapshot,
            expected: 2,
            got: 1
        })
    );
}

#[test]
fn targets_not_matching_snapshot_version_is_refused() {
    let (mut repo, mut dev) = refreshed();
    // New snapshot says targets v3 (no hashes); 3.targets.json is v2's file.
    repo.timestamp.version = 3;
    repo.snapshot.version = 3;
    let t2 = repo.meta.files["2.targets.json"].clone();
    let m2 = repo.meta.files["2.nl-lock-v2.json"].clone();
    let mut snap = repo.snapshot_signed(&t2, &m2);
    snap["meta"]["targets.json"] = json!({"version": 3});
    let snap = sign(&snap, &[&repo.snapshot_key]);
    let ts = sign(&repo.timestamp_signed(&snap), &[&repo.timestamp_key]);
    repo.meta.files.insert("3.targets.json".into(), t2);
    repo.meta.files.insert("3.snapshot.json".into(), snap);
    repo.meta.files.insert("timestamp.json".into(), ts);
    assert_eq!(
        dev.refresh(&mut repo),
        Err(TufError::VersionMismatch {
            role: Role::Targets,
            expected: 3,
            got: 2
        })
    );
}

#[test]
fn metadata_not_matching_listed_hash_or_length_is_refused() {
    // The snapshot lists hashes: a different (validly signed) targets file
    // under the same name is refused by hash, or by length.
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    let mut other = repo.targets_signed();
    other["expires"] = json!(support::iso(NOW + 29 * DAY)); // same length
    let other = sign(&other, &[&repo.targets_key]);
    assert_eq!(other.len(), repo.meta.files["1.targets.json"].len());
    repo.meta.files.insert("1.targets.json".into(), other);
    assert_eq!(
        dev.refresh(&mut repo),
        Err(TufError::MetaHashMismatch {
            role: Role::Targets
        })
    );
    let mut longer = repo.targets_signed();
    longer["x-extra"] = json!("padding");
    let longer = sign(&longer, &[&repo.targets_key]);
    repo.meta.files.insert("1.targets.json".into(), longer);
    // Longer than the signed length: the transport stops at that length.
    assert_eq!(
        dev.refresh(&mut repo),
        Err(TufError::TooLarge {
            role: Role::Targets
        })
    );
    let mut shorter = repo.targets_signed();
    shorter.as_object_mut().unwrap().remove("delegations");
    let shorter = sign(&shorter, &[&repo.targets_key]);
    repo.meta.files.insert("1.targets.json".into(), shorter);
    assert_eq!(
        dev.refresh(&mut repo),
        Err(TufError::MetaLengthMismatch {
            role: Role::Targets
        })
    );
}
