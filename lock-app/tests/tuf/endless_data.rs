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

/// A metadata transport that records every `(path, max_len)` asked of it.
struct Recording<'a> {
    inner: &'a mut lock_app::tuf::MemoryTransport,
    asked: Vec<(String, u64)>,
}

impl lock_app::tuf::Transport for Recording<'_> {
    fn fetch(&mut self, path: &str, max_len: u64) -> Result<Vec<u8>, lock_app::tuf::FetchError> {
        self.asked.push((path.to_string(), max_len));
        self.inner.fetch(path, max_len)
    }
}

/// The fixture's repository, re-signed with `pad` bytes of padding in the
/// signed part of `role` (`"snapshot"`, `"targets"` or `"nl-lock-v2"`), every
/// parent listing the padded file's true length and hashes: valid metadata,
/// only larger.
fn padded(role: &str, pad: usize) -> Repo {
    let mut repo = Repo::new();
    let padding = json!("x".repeat(pad));
    let mut model = repo.model_signed();
    let mut targets = repo.targets_signed();
    match role {
        "nl-lock-v2" => model["x-padding"] = padding.clone(),
        "targets" => targets["x-padding"] = padding.clone(),
        _ => {}
    }
    let model = sign(&model, &[&repo.model_key]);
    let targets = sign(&targets, &[&repo.targets_key]);
    let mut snapshot = repo.snapshot_signed(&targets, &model);
    if role == "snapshot" {
        snapshot["x-padding"] = padding;
    }
    let snapshot = sign(&snapshot, &[&repo.snapshot_key]);
    let timestamp = sign(&repo.timestamp_signed(&snapshot), &[&repo.timestamp_key]);
    for (path, bytes) in [
        ("1.nl-lock-v2.json", model),
        ("1.targets.json", targets),
        ("1.snapshot.json", snapshot),
        ("timestamp.json", timestamp),
    ] {
        repo.meta.files.insert(path.into(), bytes);
    }
    repo
}

/// Issue 13: a length listed by the timestamp (or the snapshot) may lower
/// the client's own limit, never raise it. Whoever holds the online keys can
/// list any length; the lock must still not fetch more than it budgeted for.
#[test]
fn listed_length_above_the_clients_limit_is_refused_before_fetching() {
    let limits = Limits {
        snapshot_max: 4096,
        targets_max: 4096,
        ..Limits::default()
    };
    let cases = [
        ("snapshot", "1.snapshot.json", Role::Snapshot),
        ("targets", "1.targets.json", Role::Targets),
        ("nl-lock-v2", "1.nl-lock-v2.json", Role::Delegated),
    ];
    for (role_name, path, role) in cases {
        let mut repo = padded(role_name, 10_000);
        let listed = repo.meta.files[path].len() as u64;
        assert!(listed > 10_000);
        // Valid metadata: a client whose limit allows it takes it.
        let mut dev = Device::provisioned(&repo);
        assert!(matches!(dev.fetch(&mut repo, FIRMWARE), Ok(Some(_))));

        let mut dev = Device::provisioned(&repo);
        let mut rec = Recording {
            inner: &mut repo.meta,
            asked: Vec::new(),
        };
        let mut u = Updater::new(&mut rec, &mut dev.store, limits, dev.now).unwrap();
        let result = u
            .refresh()
            .and_then(|()| u.target_info(FIRMWARE).map(|_| ()));
        let expected = TufError::ListedLengthOverLimit {
            role,
            listed,
            limit: 4096,
        };
        assert_eq!(result, Err(expected), "{role_name}");
        assert!(
            expected.to_string().contains("limit of 4096 bytes"),
            "{expected}"
        );
        drop(u);
        // Not fetched at all, and nothing asked for above the client's caps.
        assert!(
            rec.asked.iter().all(|(p, _)| p != path),
            "{role_name}: {:?}",
            rec.asked
        );
        assert!(
            rec.asked
                .iter()
                .filter(|(p, _)| !p.ends_with("root.json") && p != "timestamp.json")
                .all(|(_, max)| *max <= 4096),
            "{role_name}: {:?}",
            rec.asked
        );
        assert!(dev.store.load(role_name).is_none(), "{role_name} stored");
    }
}
