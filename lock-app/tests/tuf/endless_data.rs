//! Endless data: every download is bounded.

use crate::prelude::*;

#[test]
fn endless_timestamp_is_refused() {
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    let mut ts = repo.timestamp_signed(&repo.meta.files["1.snapshot.json"].clone());
    ts["x-padding"] = json!("x".repeat(20_000));
    repo.meta
        .files
        .insert("timestamp.json".into(), sign(&ts, &[&repo.timestamp_key]));
    assert_eq!(
        dev.refresh(&mut repo),
        Err(TufError::TooLarge {
            role: Role::Timestamp
        })
    );
}

#[test]
fn endless_root_and_snapshot_are_refused() {
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    repo.meta
        .files
        .insert("2.root.json".into(), vec![b' '; 600_000]);
    assert_eq!(
        dev.refresh(&mut repo),
        Err(TufError::TooLarge { role: Role::Root })
    );
    repo.meta.files.remove("2.root.json");
    // A timestamp without the snapshot's length: the snapshot limit applies.
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    repo.timestamp.version = 2;
    let mut ts = repo.timestamp_signed(b"");
    ts["meta"]["snapshot.json"] = json!({"version": 1});
    repo.meta
        .files
        .insert("timestamp.json".into(), sign(&ts, &[&repo.timestamp_key]));
    repo.meta
        .files
        .insert("1.snapshot.json".into(), vec![b' '; 3_000_000]);
    assert_eq!(
        dev.refresh(&mut repo),
        Err(TufError::TooLarge {
            role: Role::Snapshot
        })
    );
}

#[test]
fn endless_target_is_refused() {
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    for (path, bytes) in repo.target_store.files.iter_mut() {
        if path.starts_with("nl-lock-v2/") {
            bytes.extend(std::iter::repeat_n(0u8, 1 << 20));
        }
    }
    assert_eq!(
        dev.fetch(&mut repo, FIRMWARE),
        Err(TufError::TargetTooLarge)
    );
    // And a target whose signed length is over the device's limit is not
    // fetched at all.
    let mut repo = Repo::new();
    let mut targets = repo.target_store.clone();
    let mut u = dev
        .updater(
            &mut repo,
            Limits {
                target_max: 10,
                ..Limits::default()
            },
        )
        .unwrap();
    u.refresh().unwrap();
    let info = u.target_info(FIRMWARE).unwrap().unwrap();
    assert_eq!(
        u.download_target(&mut targets, &info),
        Err(TufError::TargetTooLarge)
    );
}
