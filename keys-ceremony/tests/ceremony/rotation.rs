//! python-tuf follows our roots v1 → v2 (a root key and the targets key
//! replaced) → v3 (root threshold raised), and our tools refuse every step
//! until the thresholds of both the old and the new root are met.

use std::path::Path;

use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;
use tempfile::TempDir;

use crate::support::*;

fn sign(root: &Path, key: &Path) {
    nlk()
        .arg("sign")
        .arg("--key")
        .arg(key)
        .arg(root)
        .assert()
        .success();
}

/// `nightlatch-sign repo add-root`.
fn add_root(repo: &Path, root: &Path) -> nightlatch_repo::Result<()> {
    nightlatch_repo::repo::roots::add(repo, root).map(|_| ())
}

#[test]
fn python_tuf_follows_rotations_v1_v2_v3() {
    let tmp = TempDir::new().unwrap();
    let t = tmp.path();
    let dev = dev(t);
    let image = dev.join("image");
    let keys = image.join("keys");
    let fw1 = envelope(t, &keys.join("targets.key"), "nl-lock-v2", "1.0.0", 1);
    let repo = repo_with(
        t,
        &image.join("1.root.json"),
        &keys,
        &keys.join("targets.key"),
        &[&fw1],
    );
    let client_a = t.join("client-a");
    let v1 = image.join("1.root.json");
    let seen = tuf_client(&repo, &v1, &client_a, &["nl-lock-v2/1.0.0.nlfw"]).unwrap();
    assert_eq!(seen["root_version"], 1);

    // v2: root-3 replaced by root-4, and the release (targets) key replaced.
    let (root4, root4_pub) = plain_key(&t.join("root-4"));
    let (targets2, targets2_pub) = plain_key(&t.join("targets-2"));
    nlk()
        .args(["rotate", "--from"])
        .arg(&v1)
        .arg(format!(
            "--revoke=root={}",
            keys.join("root-3.pub").display()
        ))
        .arg(format!("--add=root={}", root4_pub.display()))
        .arg(format!(
            "--revoke=targets={}",
            keys.join("targets.pub").display()
        ))
        .arg(format!("--add=targets={}", targets2_pub.display()))
        .assert()
        .success()
        .stdout(contains("2.root.json"));
    let v2 = image.join("2.root.json");
    // Unsigned, then one signature: below both thresholds, refused.
    let err = add_root(&repo, &v2).unwrap_err();
    assert!(err.to_string().contains("0 valid signature(s)"), "{err}");
    sign(&v2, &keys.join("root-1.key"));
    let err = add_root(&repo, &v2).unwrap_err();
    assert!(
        err.to_string()
            .contains("1 valid signature(s) by root keys, 2 required"),
        "{err}"
    );
    // root-3 (revoked by v2, but a v1 key) may still cross-sign v2.
    sign(&v2, &keys.join("root-3.key"));
    // v1 threshold met now (root-1, root-3), v2's not (only root-1 is a v2 key).
    nlk()
        .arg("status")
        .arg(&v2)
        .assert()
        .success()
        .stdout(contains("incomplete"));
    assert!(add_root(&repo, &v2).is_err());
    sign(&v2, &root4);
    nlk()
        .arg("status")
        .arg(&v2)
        .assert()
        .success()
        .stdout(contains("complete: every threshold is met"));
    // Without root 1 beside it (nor --previous), status cannot know v1's
    // threshold is met: never "complete".
    let alone = t.join("alone");
    std::fs::create_dir_all(&alone).unwrap();
    std::fs::copy(&v2, alone.join("2.root.json")).unwrap();
    nlk()
        .arg("status")
        .arg(alone.join("2.root.json"))
        .assert()
        .success()
        .stdout(contains("previous root unknown"))
        .stdout(contains("complete: every threshold is met").not());
    nlk()
        .args(["status", "--previous"])
        .arg(&v1)
        .arg(alone.join("2.root.json"))
        .assert()
        .success()
        .stdout(contains("complete: every threshold is met"));
    add_root(&repo, &v2).unwrap();

    // Old targets metadata is no longer valid under v2: refresh refuses until
    // the new release key re-signs it.
    let err = try_refresh(&repo, &keys).unwrap_err();
    assert!(err.to_string().contains("targets"), "{err}");
    let fw2 = envelope(t, &targets2, "nl-lock-v2", "1.1.0", 2);
    assert!(
        try_publish(&repo, &keys.join("targets.key"), &[&fw2]).is_err(),
        "revoked release key refused"
    );
    publish(&repo, &targets2, &[&fw2]);
    refresh(&repo, &keys);
    let seen = tuf_client(
        &repo,
        &v1,
        &client_a,
        &["nl-lock-v2/1.0.0.nlfw", "nl-lock-v2/1.1.0.nlfw"],
    )
    .unwrap();
    assert_eq!(seen["root_version"], 2);

    // v3: root threshold 2 -> 3 (root-1, root-2, root-4).
    nlk()
        .args(["rotate", "--threshold", "root=3", "--from"])
        .arg(&v2)
        .assert()
        .success();
    let v3 = image.join("3.root.json");
    sign(&v3, &keys.join("root-1.key"));
    sign(&v3, &keys.join("root-2.key"));
    let err = add_root(&repo, &v3).unwrap_err();
    assert!(
        err.to_string()
            .contains("2 valid signature(s) by root keys, 3 required"),
        "{err}"
    );
    nlk()
        .arg("sign")
        .arg("--key")
        .arg(keys.join("root-3.key"))
        .arg(&v3)
        .assert()
        .failure()
        .stderr(contains("is not a root key"));
    sign(&v3, &root4);
    add_root(&repo, &v3).unwrap();
    refresh(&repo, &keys);

    nlk()
        .arg("verify-chain")
        .args([&v1, &v2, &v3])
        .assert()
        .success()
        .stdout(contains("chain of 3 root(s) is valid"));
    // A client that trusted v1 long ago walks v1 -> v2 -> v3 in one refresh.
    let seen = tuf_client(
        &repo,
        &v1,
        &t.join("client-b"),
        &["nl-lock-v2/1.0.0.nlfw", "nl-lock-v2/1.1.0.nlfw"],
    )
    .unwrap();
    assert_eq!(seen["root_version"], 3);
    assert_eq!(
        seen["targets"]["nl-lock-v2/1.1.0.nlfw"]["custom"]["nightlatch"]["version"],
        "1.1.0"
    );
    let seen = tuf_client(&repo, &v1, &client_a, &[]).unwrap();
    assert_eq!(seen["root_version"], 3);

    // The transcript recorded every operation, hash-chained.
    let log = nightlatch_repo::transcript::read(&image.join("transcript.jsonl")).unwrap();
    let ops: Vec<&str> = log.iter().map(|e| e.operation.as_str()).collect();
    assert_eq!(
        ops,
        [
            "rotate", "sign", "sign", "sign", "rotate", "sign", "sign", "sign"
        ]
    );
}
