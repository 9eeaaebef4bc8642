//! Rollback: a lower version of any role is refused.

use crate::prelude::*;

#[test]
fn rollback_of_timestamp_is_refused() {
    let (mut repo, mut dev) = refreshed();
    repo.timestamp.version = 1;
    repo.write();
    assert_eq!(
        dev.refresh(&mut repo),
        Err(TufError::Rollback {
            role: Role::Timestamp,
            trusted: 2,
            offered: 1
        })
    );
}

#[test]
fn rollback_of_snapshot_is_refused() {
    let (mut repo, mut dev) = refreshed();
    repo.timestamp.version = 3;
    repo.snapshot.version = 1;
    repo.write();
    assert_eq!(
        dev.refresh(&mut repo),
        Err(TufError::Rollback {
            role: Role::Snapshot,
            trusted: 2,
            offered: 1
        })
    );
}

#[test]
fn rollback_of_targets_is_refused() {
    let (mut repo, mut dev) = refreshed();
    repo.timestamp.version = 3;
    repo.snapshot.version = 3;
    repo.targets.version = 1;
    repo.write();
    assert_eq!(
        dev.refresh(&mut repo),
        Err(TufError::Rollback {
            role: Role::Targets,
            trusted: 2,
            offered: 1
        })
    );
}

#[test]
fn rollback_of_delegated_targets_is_refused() {
    let (mut repo, mut dev) = refreshed();
    repo.timestamp.version = 3;
    repo.snapshot.version = 3;
    repo.model.version = 1;
    repo.write();
    assert_eq!(
        dev.refresh(&mut repo),
        Err(TufError::Rollback {
            role: Role::Delegated,
            trusted: 2,
            offered: 1
        })
    );
}

#[test]
fn rollback_of_root_is_refused() {
    // 3.root.json holds an older root (version 2), validly signed.
    let mut repo = Repo::new();
    repo.rotate_root(vec![key(1)], 1, &[&key(1)]);
    let mut dev = Device::provisioned(&repo);
    dev.refresh(&mut repo).unwrap();
    let v2 = repo.meta.files["2.root.json"].clone();
    repo.meta.files.insert("3.root.json".into(), v2);
    assert_eq!(
        dev.refresh(&mut repo),
        Err(TufError::Rollback {
            role: Role::Root,
            trusted: 2,
            offered: 2
        })
    );
}

#[test]
fn removing_a_role_from_snapshot_is_refused() {
    let (mut repo, mut dev) = refreshed();
    repo.timestamp.version = 3;
    repo.snapshot.version = 3;
    let targets = repo.meta.files["2.targets.json"].clone();
    let mut snap = repo.snapshot_signed(&targets, b"");
    snap["meta"]
        .as_object_mut()
        .unwrap()
        .remove("nl-lock-v2.json");
    let snap = sign(&snap, &[&repo.snapshot_key]);
    let ts = sign(&repo.timestamp_signed(&snap), &[&repo.timestamp_key]);
    repo.meta.files.insert("3.snapshot.json".into(), snap);
    repo.meta.files.insert("timestamp.json".into(), ts);
    assert_eq!(
        dev.refresh(&mut repo),
        Err(TufError::RoleRemovedFromSnapshot {
            role: Role::Delegated
        })
    );
}
