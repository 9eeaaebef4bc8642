//! Partial bundle: missing metadata or targets.

use crate::prelude::*;

#[test]
fn partial_bundle_missing_metadata_is_refused() {
    let cases = [
        ("timestamp.json", Role::Timestamp),
        ("1.snapshot.json", Role::Snapshot),
        ("1.targets.json", Role::Targets),
        ("1.nl-lock-v2.json", Role::Delegated),
    ];
    for (file, role) in cases {
        let mut repo = Repo::new();
        let mut dev = Device::provisioned(&repo);
        repo.meta.files.remove(file);
        assert_eq!(
            dev.fetch(&mut repo, FIRMWARE),
            Err(TufError::MissingMetadata { role }),
            "{file}"
        );
    }
}

#[test]
fn partial_bundle_role_missing_from_snapshot_or_target_missing_is_refused() {
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    let targets = repo.meta.files["1.targets.json"].clone();
    let mut snap = repo.snapshot_signed(&targets, b"");
    snap["meta"]
        .as_object_mut()
        .unwrap()
        .remove("nl-lock-v2.json");
    let snap = sign(&snap, &[&repo.snapshot_key]);
    let ts = sign(&repo.timestamp_signed(&snap), &[&repo.timestamp_key]);
    repo.meta.files.insert("1.snapshot.json".into(), snap);
    repo.meta.files.insert("timestamp.json".into(), ts);
    assert_eq!(
        dev.fetch(&mut repo, FIRMWARE),
        Err(TufError::NotInSnapshot {
            role: Role::Delegated
        })
    );

    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    repo.target_store.files.clear();
    assert_eq!(dev.fetch(&mut repo, FIRMWARE), Err(TufError::MissingTarget));
}
