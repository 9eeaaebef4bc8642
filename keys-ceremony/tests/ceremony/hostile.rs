//! Hostile input: malformed JSON, wrong types, huge files, bad key files,
//! wrong passphrases. Each gives a clear error (exit 1), never a panic.

use std::path::Path;

use predicates::prelude::*;
use predicates::str::contains;
use tempfile::TempDir;

use crate::support::*;

fn refused(cmd: &mut assert_cmd::Command, message: &str) {
    cmd.assert()
        .code(1)
        .stderr(contains(message))
        .stderr(contains("help:"))
        .stderr(contains("panicked").not());
}

fn status(path: &Path) -> assert_cmd::Command {
    let mut c = nlk();
    c.arg("status").arg(path);
    c
}

#[test]
fn hostile_metadata_files() {
    let tmp = TempDir::new().unwrap();
    let t = tmp.path();
    let dev = dev(t);
    let good = std::fs::read_to_string(dev.join("image/1.root.json")).unwrap();
    let cases: &[(&str, String, &str)] = &[
        ("empty", String::new(), "not valid root metadata"),
        (
            "garbage",
            "\u{0}\u{1}binary".into(),
            "not valid root metadata",
        ),
        (
            "truncated",
            good[..good.len() / 2].to_owned(),
            "not valid root metadata",
        ),
        (
            "not-an-object",
            "[1, 2, 3]".into(),
            "not valid root metadata",
        ),
        (
            "wrong-type",
            good.replacen("\"version\": 1", "\"version\": \"one\"", 1),
            "not valid root metadata",
        ),
        (
            "negative",
            good.replacen("\"version\": 1", "\"version\": -1", 1),
            "not valid root metadata",
        ),
        (
            "float",
            good.replacen("\"version\": 1", "\"version\": 1.5", 1),
            "not valid root metadata",
        ),
        (
            "wrong-kind",
            good.replacen("\"_type\": \"root\"", "\"_type\": \"targets\"", 1),
            "metadata is not of type root",
        ),
        (
            "bad-expiry",
            good.replacen("\"expires\": \"", "\"expires\": \"soon", 1),
            "expires is not YYYY-MM-DDTHH:MM:SSZ",
        ),
        (
            "zero-threshold",
            good.replacen("\"threshold\": 2", "\"threshold\": 0", 1),
            "threshold is not an integer from 1 to 4294967295",
        ),
        (
            "missing-role",
            good.replacen("\"timestamp\": {", "\"mirror\": {", 1),
            "roles does not hold exactly root, timestamp, snapshot and targets",
        ),
        (
            "deep",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
            "not valid root metadata",
        ),
    ];
    for (name, text, message) in cases {
        let path = t.join(format!("{name}.json"));
        std::fs::write(&path, text).unwrap();
        refused(&mut status(&path), message);
        let mut chain = nlk();
        chain.arg("verify-chain").arg(&path);
        refused(&mut chain, message);
    }
    // 17 MiB: refused unread.
    let huge = t.join("huge.json");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(17 * 1024 * 1024)
        .unwrap();
    refused(&mut status(&huge), "larger than 16777216 bytes");
    refused(&mut status(&t.join("missing.json")), "cannot read");
}

#[test]
fn hostile_key_files() {
    let tmp = TempDir::new().unwrap();
    let t = tmp.path();
    let dev = dev(t);
    let root = dev.join("image/1.root.json");
    let cases: &[(&str, &[u8], &str)] = &[
        ("empty", b"", "no PEM private key block"),
        ("binary", b"\xff\xfe\x00garbage", "not a text (PEM) file"),
        (
            "public",
            std::fs::read(dev.join("image/keys/root-1.pub"))
                .unwrap()
                .leak(),
            "this is a public key",
        ),
        (
            "bad-base64",
            b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
            "not a usable Ed25519 key",
        ),
        (
            "bad-encrypted",
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "not a usable Ed25519 key",
        ),
    ];
    for (name, bytes, message) in cases {
        let key = t.join(format!("{name}.key"));
        std::fs::write(&key, bytes).unwrap();
        let mut c = nlk();
        c.env("NIGHTLATCH_KEY_PASSPHRASE", "whatever-it-is")
            .arg("sign")
            .arg("--key")
            .arg(&key)
            .arg(&root);
        refused(&mut c, message);
    }
    let huge = t.join("huge.key");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(1024 * 1024)
        .unwrap();
    let mut c = nlk();
    c.arg("sign").arg("--key").arg(&huge).arg(&root);
    refused(&mut c, "larger than 65536 bytes");
    // A malformed URI is a usage error (exit 2), still never a panic.
    nlk()
        .args(["sign", "--key", "pkcs11:object=x;colour=red"])
        .arg(&root)
        .assert()
        .code(2)
        .stderr(contains("unknown path attribute"))
        .stderr(contains("panicked").not());
    let mut c = nlk();
    c.args(["sign", "--key", "pkcs11:object=x?pin-value=1234"])
        .arg(&root)
        .env_remove("NIGHTLATCH_PKCS11_MODULE");
    refused(&mut c, "NIGHTLATCH_PKCS11_MODULE is not set");
}

#[test]
fn bad_rotation_arguments() {
    let tmp = TempDir::new().unwrap();
    let dev = dev(tmp.path());
    let v1 = dev.join("image/1.root.json");
    let mut c = nlk();
    c.args(["rotate", "--threshold", "root=9", "--from"])
        .arg(&v1);
    refused(&mut c, "can never be met");
    let mut c = nlk();
    c.args(["rotate", "--threshold", "mirror=1", "--from"])
        .arg(&v1);
    refused(&mut c, "unknown role");
    let mut c = nlk();
    c.args(["rotate", "--revoke", "root", "--from"]).arg(&v1);
    refused(&mut c, "is not ROLE=VALUE");
    let mut c = nlk();
    c.args([
        "rotate",
        "--revoke",
        &format!("root={}", "ab".repeat(32)),
        "--from",
    ])
    .arg(&v1);
    refused(&mut c, "is not a root key of root 1");
}
