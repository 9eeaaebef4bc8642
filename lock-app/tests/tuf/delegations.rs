//! Delegations: terminating roles, two levels, the delegation limit.

use crate::prelude::*;

/// Top-level targets delegating `nl-lock-v2/*` first to role `a` (key 30,
/// lists nothing, `terminating` as given), then to `nl-lock-v2` (lists the
/// firmware), which itself delegates `nl-lock-v2/*-beta.nlfw` to `beta`
/// (key 31, lists a beta image): two levels.
fn two_roles(a_terminating: bool) -> Repo {
    let mut repo = Repo::new();
    let (ka, kb) = (key(30), key(31));
    let pk = |k: &Key| {
        json!({"keytype": "ed25519", "scheme": "ed25519",
               "keyval": {"public": lock_app::tuf::hex_encode(k.sk.verifying_key().as_bytes())}})
    };
    let beta_bytes = b"beta image".to_vec();
    let beta = sign(
        &json!({"_type": "targets", "spec_version": "1.0", "version": 1,
                "expires": support::iso(NOW + DAY),
                "targets": {"nl-lock-v2/2.0.0-beta.nlfw": support::target_meta(&beta_bytes, None)}}),
        &[&kb],
    );
    let mut model = repo.model_signed();
    model["delegations"] = json!({"keys": {kb.id.clone(): pk(&kb)}, "roles": [
        {"name": "beta", "keyids": [kb.id], "threshold": 1, "terminating": false,
         "paths": ["nl-lock-v2/*-beta.nlfw"]}]});
    let model = sign(&model, &[&repo.model_key]);
    let a = sign(
        &json!({"_type": "targets", "spec_version": "1.0.31", "version": 1,
                "expires": support::iso(NOW + DAY), "targets": {}}),
        &[&ka],
    );
    let mut targets = repo.targets_signed();
    targets["delegations"]["keys"][ka.id.clone()] = pk(&ka);
    let roles = targets["delegations"]["roles"].as_array_mut().unwrap();
    roles[0]["terminating"] = json!(false);
    roles.insert(
        0,
        json!({"name": "a", "keyids": [ka.id], "threshold": 1,
               "terminating": a_terminating, "paths": ["nl-lock-v2/*"]}),
    );
    let targets = sign(&targets, &[&repo.targets_key]);
    let mut snap = repo.snapshot_signed(&targets, &model);
    snap["meta"]["a.json"] = json!({"version": 1});
    snap["meta"]["beta.json"] = json!({"version": 1});
    let snap = sign(&snap, &[&repo.snapshot_key]);
    let ts = sign(&repo.timestamp_signed(&snap), &[&repo.timestamp_key]);
    let files = [
        ("1.a.json", a),
        ("1.beta.json", beta),
        ("1.nl-lock-v2.json", model),
        ("1.targets.json", targets),
        ("1.snapshot.json", snap),
        ("timestamp.json", ts),
    ];
    for (name, bytes) in files {
        repo.meta.files.insert(name.into(), bytes);
    }
    let hash = lock_app::tuf::hex_encode(&<sha2::Sha256 as sha2::Digest>::digest(&beta_bytes));
    repo.target_store
        .files
        .insert(format!("nl-lock-v2/{hash}.2.0.0-beta.nlfw"), beta_bytes);
    repo
}

#[test]
fn terminating_role_without_the_target_ends_the_search() {
    let mut repo = two_roles(true);
    let mut dev = Device::provisioned(&repo);
    assert_eq!(dev.fetch(&mut repo, FIRMWARE), Ok(None));
    // Role `a` was consulted, `nl-lock-v2` never fetched.
    assert!(dev.store.load("a").is_some());
    assert!(dev.store.load("nl-lock-v2").is_none());
}

#[test]
fn non_terminating_role_lets_the_search_continue_two_levels_deep() {
    let mut repo = two_roles(false);
    let mut dev = Device::provisioned(&repo);
    assert_eq!(
        dev.fetch(&mut repo, FIRMWARE).unwrap().unwrap(),
        repo.model_files[FIRMWARE]
    );
    let beta = dev
        .fetch(&mut repo, "nl-lock-v2/2.0.0-beta.nlfw")
        .unwrap()
        .unwrap();
    assert_eq!(beta, b"beta image");
    let mut u = dev.updater(&mut repo, Limits::default()).unwrap();
    u.refresh().unwrap();
    let info = u
        .target_info("nl-lock-v2/2.0.0-beta.nlfw")
        .unwrap()
        .unwrap();
    assert_eq!(info.role(), "beta");
    // The delegation limit bounds the walk.
    let mut u = dev
        .updater(
            &mut repo,
            Limits {
                max_delegations: 2,
                ..Limits::default()
            },
        )
        .unwrap();
    u.refresh().unwrap();
    assert_eq!(
        u.target_info("nl-lock-v2/2.0.0-beta.nlfw"),
        Err(TufError::DelegationLimit)
    );
}
