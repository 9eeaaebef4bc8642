//! Reading a repository, custom metadata, stored metadata, bootstrap.

use crate::prelude::*;

#[test]
fn reads_repository_and_downloads_top_level_and_delegated_targets() {
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    let fw = dev.fetch(&mut repo, FIRMWARE).unwrap().unwrap();
    assert_eq!(fw, repo.model_files[FIRMWARE]);
    let readme = dev.fetch(&mut repo, "readme.txt").unwrap().unwrap();
    assert_eq!(readme, b"hello lock");
    assert_eq!(dev.fetch(&mut repo, "nl-lock-v2/9.9.9.nlfw").unwrap(), None);
    for role in ["root", "timestamp", "snapshot", "targets", "nl-lock-v2"] {
        assert!(dev.store.load(role).is_some(), "{role} persisted");
    }
}

#[test]
fn exposes_custom_nightlatch_metadata_and_signing_role() {
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    let mut u = dev.updater(&mut repo, Limits::default()).unwrap();
    u.refresh().unwrap();
    let info = u.target_info(FIRMWARE).unwrap().unwrap();
    assert_eq!(info.role(), "nl-lock-v2");
    let nl = info.nightlatch().unwrap();
    assert_eq!(
        (
            nl.kind.as_str(),
            nl.hardware_model.as_str(),
            nl.version.as_str()
        ),
        ("firmware", "nl-lock-v2", "1.0.0")
    );
    assert_eq!(nl.security_counter, 3);
    assert_eq!(nl.payload_length, Some(1000));
    assert!(info.custom().unwrap()["nightlatch"].is_object());
}

#[test]
fn later_refreshes_start_from_stored_metadata() {
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    dev.refresh(&mut repo).unwrap();
    repo.model_files
        .insert("nl-lock-v2/1.1.0.nlfw".into(), b"newer".to_vec());
    repo.publish_all();
    let got = dev.fetch(&mut repo, "nl-lock-v2/1.1.0.nlfw").unwrap();
    assert_eq!(got.as_deref(), Some(&b"newer"[..]));
    let u = dev.updater(&mut repo, Limits::default()).unwrap();
    assert_eq!(u.trusted().root().header.version, 1);
    // Nothing new: the stored snapshot and targets are used as they are.
    let mut dev2 = Device {
        store: dev.store.clone(),
        now: NOW,
    };
    repo.meta.files.retain(|p, _| !p.ends_with("snapshot.json"));
    dev2.refresh(&mut repo).unwrap();
}

#[test]
fn non_consistent_snapshot_repositories_are_read_too() {
    let mut repo = Repo::new();
    repo.consistent = false;
    repo.root.version = 0;
    repo.rotate_root(vec![key(1)], 1, &[&key(1)]);
    repo.meta.files.clear();
    repo.meta
        .files
        .insert("1.root.json".into(), repo.root_bytes(&[&key(1)]));
    repo.write();
    assert!(repo.meta.files.contains_key("snapshot.json"));
    let mut dev = Device::provisioned(&repo);
    let fw = dev.fetch(&mut repo, FIRMWARE).unwrap().unwrap();
    assert_eq!(fw, repo.model_files[FIRMWARE]);
}

#[test]
fn bootstrap_refuses_a_root_not_signed_by_its_own_threshold() {
    let repo = Repo::new();
    let unsigned = repo.root_bytes(&[&key(9)]);
    let mut store = lock_app::tuf::MemoryStore::default();
    assert_eq!(
        bootstrap(&mut store, &unsigned, NOW),
        Err(TufError::Signature {
            role: Role::Root,
            valid: 0,
            threshold: 1
        })
    );
    assert!(store.load("root").is_none());
    bootstrap(&mut store, &repo.trusted_root(), NOW).unwrap();
    assert!(store.load("root").is_some());
}

#[test]
fn no_trusted_root_is_an_error() {
    let mut repo = Repo::new();
    let mut store = lock_app::tuf::MemoryStore::default();
    let err = Updater::new(&mut repo.meta, &mut store, Limits::default(), NOW).unwrap_err();
    assert_eq!(err, TufError::NoTrustedRoot);
}

#[test]
fn one_updater_refreshes_again_and_its_time_floor_only_rises() {
    let mut repo = Repo::new();
    let mut store = lock_app::tuf::MemoryStore::with_root(&repo.trusted_root());
    let mut meta = repo.meta.clone();
    let mut u = Updater::new(&mut meta, &mut store, Limits::default(), NOW).unwrap();
    u.refresh().unwrap();
    assert_eq!(u.trusted().timestamp().unwrap().header.version, 1);
    drop(u);
    repo.publish_all();
    let mut meta = repo.meta.clone();
    let mut u = Updater::new(&mut meta, &mut store, Limits::default(), NOW).unwrap();
    u.refresh().unwrap();
    u.refresh().unwrap();
    assert_eq!(u.trusted().timestamp().unwrap().header.version, 2);
    u.raise_time(NOW + 31 * DAY);
    u.raise_time(NOW); // ignored: the floor never goes back
    assert_eq!(
        u.refresh(),
        Err(TufError::Expired {
            role: Role::Timestamp
        })
    );
}
