//! Malformed and damaged bytes: refused, never a panic.

use crate::prelude::*;

#[test]
fn malformed_metadata_never_panics() {
    let mut repo = Repo::new();
    let mut dev = Device::provisioned(&repo);
    let malformed = |what| TufError::Malformed {
        role: Role::Timestamp,
        what,
    };
    let cases: Vec<(&[u8], TufError)> = vec![
        (b"", malformed("not JSON")),
        (b"{", malformed("not JSON")),
        (b"[1,2]", malformed("not a JSON object")),
        (br#"{"signatures": [], "signed": {"a": 1.5}}"#, malformed("signed holds a number that is not an integer")),
        (br#"{"signatures": {}, "signed": {}}"#, malformed("signatures is not a list")),
        (br#"{"signatures": [{"keyid": 1, "sig": ""}], "signed": {}}"#, malformed("a signature is not {\"keyid\": string, \"sig\": string}")),
        (br#"{"signatures": [{"keyid": "a", "sig": ""}, {"keyid": "a", "sig": "00"}], "signed": {}}"#, malformed("two signatures carry the same key id")),
        (br#"{"signatures": [], "signed": {"_type": "root", "spec_version": "1.0.0", "version": 1, "expires": "2030-01-01T00:00:00Z", "meta": {}}}"#,
         TufError::WrongType { expected: Role::Timestamp }),
        (br#"{"signatures": [], "signed": {"_type": "timestamp", "spec_version": "2.0.0", "version": 1, "expires": "2030-01-01T00:00:00Z", "meta": {}}}"#,
         TufError::UnsupportedSpecVersion { role: Role::Timestamp }),
        (br#"{"signatures": [], "signed": {"_type": "timestamp", "spec_version": "1.0.0", "version": 1, "expires": "tomorrow", "meta": {"snapshot.json": {"version": 1}}}}"#,
         malformed("expires is not YYYY-MM-DDTHH:MM:SSZ")),
        (br#"{"signatures": [], "signed": {"_type": "timestamp", "spec_version": "1.0.0", "version": 1, "expires": "2030-01-01T00:00:00.5Z", "meta": {"snapshot.json": {"version": 1}}}}"#,
         malformed("expires is not YYYY-MM-DDTHH:MM:SSZ")),
        (br#"{"signatures": [], "signed": {"_type": "timestamp", "spec_version": "1.0.0", "version": 1, "expires": "2030-01-01T00:00:00Z", "meta": {"snapshot.json": {"version": 1, "hashes": {"sha256": "AB"}}}}}"#,
         malformed("a hash is not lower-case hex")),
        (br#"{"signatures": [], "signed": {"_type": "timestamp", "spec_version": "1.0.0", "version": 1, "expires": "2030-01-01T00:00:00Z", "meta": {"snapshot.json": {"version": 1}, "x.json": {"version": 1}}}}"#,
         malformed("meta lists more than snapshot.json")),
    ];
    for (bytes, want) in cases {
        repo.meta
            .files
            .insert("timestamp.json".into(), bytes.to_vec());
        assert_eq!(
            dev.refresh(&mut repo),
            Err(want),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
    let deep = "[".repeat(100_000);
    repo.meta
        .files
        .insert("timestamp.json".into(), deep.into_bytes());
    assert!(dev.refresh(&mut repo).is_err());
}

#[test]
fn corrupted_stored_metadata_is_replaced_from_the_repository() {
    let (mut repo, mut dev) = refreshed();
    for role in ["timestamp", "snapshot", "targets", "nl-lock-v2"] {
        dev.store.store(role, b"garbage").unwrap();
    }
    assert!(dev.fetch(&mut repo, FIRMWARE).unwrap().is_some());
    assert_ne!(dev.store.load("snapshot").unwrap(), b"garbage");
}

#[test]
fn damaged_metadata_bytes_are_refused_without_panicking() {
    // Flip, truncate or extend every metadata file at pseudo-random
    // positions: the client must refuse (or, for a harmless change such as
    // whitespace, accept) and never panic.
    let base = Repo::new();
    let files: Vec<String> = base.meta.files.keys().cloned().collect();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as usize % n
    };
    let mut refused = 0;
    for file in &files {
        for round in 0..40 {
            let mut repo = Repo::new();
            let bytes = repo.meta.files.get_mut(file).unwrap();
            let pos = next(bytes.len());
            match round % 4 {
                0 => bytes[pos] ^= 1 << next(8),
                1 => bytes.truncate(pos),
                2 => bytes.insert(pos, b"{[\"\\0"[next(5)]),
                _ => bytes[pos] = b"0123456789abcdef"[next(16)],
            }
            let mut dev = Device::provisioned(&Repo::new());
            if dev.fetch(&mut repo, FIRMWARE).is_err() {
                refused += 1;
            }
        }
    }
    assert!(refused > files.len() * 30, "{refused} refusals");
}
