//! `verify-chain` refuses a broken chain, a signature by a revoked key, a
//! version gap and a changed file.

use std::path::{Path, PathBuf};

use nightlatch_repo::keysource::KeySpec;
use nightlatch_repo::metadata::{Root, Signed};
use predicates::str::contains;
use tempfile::TempDir;

use crate::support::*;

/// dev dir, and v2 (root-3 revoked) signed by root-1 and root-2.
fn setup(t: &Path) -> (PathBuf, PathBuf) {
    let dev = dev(t);
    let image = dev.join("image");
    let keys = image.join("keys");
    nlk()
        .args(["rotate", "--from"])
        .arg(image.join("1.root.json"))
        .arg(format!(
            "--revoke=root={}",
            keys.join("root-3.pub").display()
        ))
        .args(["--threshold", "root=2"])
        .assert()
        .success();
    for k in ["root-1", "root-2"] {
        nlk()
            .arg("sign")
            .arg("--key")
            .arg(keys.join(format!("{k}.key")))
            .arg(image.join("2.root.json"))
            .assert()
            .success();
    }
    (image, keys)
}

fn verify(paths: &[PathBuf]) -> assert_cmd::assert::Assert {
    nlk().arg("verify-chain").args(paths).assert()
}

#[test]
fn valid_chain_passes() {
    let tmp = TempDir::new().unwrap();
    let (image, _) = setup(tmp.path());
    verify(&[image.join("1.root.json"), image.join("2.root.json")]).success();
}

#[test]
fn version_gap_is_refused() {
    let tmp = TempDir::new().unwrap();
    let (image, keys) = setup(tmp.path());
    nlk()
        .args(["rotate", "--from"])
        .arg(image.join("2.root.json"))
        .assert()
        .success();
    for k in ["root-1", "root-2"] {
        nlk()
            .arg("sign")
            .arg("--key")
            .arg(keys.join(format!("{k}.key")))
            .arg(image.join("3.root.json"))
            .assert()
            .success();
    }
    verify(&[image.join("1.root.json"), image.join("3.root.json")])
        .failure()
        .stderr(contains("is root version 3, expected version 2"));
    verify(&[image.join("2.root.json"), image.join("1.root.json")])
        .failure()
        .stderr(contains("expected version 3"));
}

#[test]
fn signature_by_revoked_key_is_refused() {
    let tmp = TempDir::new().unwrap();
    let (image, keys) = setup(tmp.path());
    nlk()
        .args(["rotate", "--from"])
        .arg(image.join("2.root.json"))
        .assert()
        .success();
    let v3 = image.join("3.root.json");
    for k in ["root-1", "root-2"] {
        nlk()
            .arg("sign")
            .arg("--key")
            .arg(keys.join(format!("{k}.key")))
            .arg(&v3)
            .assert()
            .success();
    }
    // Our `sign` refuses the revoked key …
    nlk()
        .arg("sign")
        .arg("--key")
        .arg(keys.join("root-3.key"))
        .arg(&v3)
        .assert()
        .failure()
        .stderr(contains("is not a root key"));
    // … so forge it as an attacker holding root-3 would.
    let mut root = Signed::<Root>::load(&v3).unwrap();
    let revoked = KeySpec::File(keys.join("root-3.key")).open().unwrap();
    root.sign_with(revoked.as_ref(), &v3).unwrap();
    std::fs::write(&v3, root.to_bytes().unwrap()).unwrap();
    verify(&[
        image.join("1.root.json"),
        image.join("2.root.json"),
        v3.clone(),
    ])
    .failure()
    .stderr(contains("which root version 2 revoked"));
}

#[test]
fn broken_chain_is_refused() {
    let tmp = TempDir::new().unwrap();
    let t = tmp.path();
    let dev = dev(t);
    let image = dev.join("image");
    let keys = image.join("keys");
    // v2 replaces every root key and is signed only by the new ones: an
    // attacker's root that v1's keyholders never approved.
    let (k4, p4) = plain_key(&t.join("root-4"));
    let (k5, p5) = plain_key(&t.join("root-5"));
    let mut cmd = nlk();
    cmd.args(["rotate", "--from"])
        .arg(image.join("1.root.json"));
    for k in ["root-1", "root-2", "root-3"] {
        cmd.arg(format!(
            "--revoke=root={}",
            keys.join(format!("{k}.pub")).display()
        ));
    }
    cmd.arg(format!("--add=root={}", p4.display()))
        .arg(format!("--add=root={}", p5.display()));
    cmd.assert().success();
    let v2 = image.join("2.root.json");
    for k in [&k4, &k5] {
        nlk()
            .arg("sign")
            .arg("--key")
            .arg(k)
            .arg(&v2)
            .assert()
            .success();
    }
    verify(&[image.join("1.root.json"), v2.clone()])
        .failure()
        .stderr(contains("by the keys of root version 1"))
        .stderr(contains("0 valid signature(s) by root keys, 2 required"));
}

#[test]
fn changed_root_is_refused() {
    let tmp = TempDir::new().unwrap();
    let (image, _) = setup(tmp.path());
    let v2 = image.join("2.root.json");
    let text = std::fs::read_to_string(&v2).unwrap();
    let changed = text.replacen(
        "\"consistent_snapshot\": true",
        "\"consistent_snapshot\": false",
        1,
    );
    assert_ne!(text, changed);
    std::fs::write(&v2, changed).unwrap();
    verify(&[image.join("1.root.json"), v2])
        .failure()
        .stderr(contains("does not verify"));
}
