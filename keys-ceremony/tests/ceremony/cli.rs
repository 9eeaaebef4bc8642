//! The ceremony commands one at a time: init, keygen (encrypted files),
//! sign, status, init --dev, and the transcript.

use predicates::str::contains;
use tempfile::TempDir;

use crate::support::*;

const PASS: &str = "correct horse battery";

/// keygen OUT with an encrypted key (cheap KDF cost for tests).
fn keygen(out: &std::path::Path) {
    nlk()
        .env("NIGHTLATCH_KEY_PASSPHRASE", PASS)
        .args(["keygen", "--kdf-log-n", "14"])
        .arg(out)
        .assert()
        .success()
        .stdout(contains("TUF key id"));
}

#[test]
fn ceremony_with_encrypted_key_files() {
    let tmp = TempDir::new().unwrap();
    let t = tmp.path();
    for k in ["alice", "bob", "carol", "targets", "snapshot", "timestamp"] {
        keygen(&t.join(k));
    }
    let key = std::fs::read_to_string(t.join("alice.key")).unwrap();
    assert!(key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let root = t.join("ceremony/1.root.json");
    let mut init = nlk();
    init.args([
        "init",
        "--repository",
        "director",
        "--root-threshold",
        "2",
        "--who",
        "alice",
        "--out",
    ])
    .arg(&root);
    for k in ["alice", "bob", "carol"] {
        init.arg("--root-key").arg(t.join(format!("{k}.pub")));
    }
    for r in ["targets", "snapshot", "timestamp"] {
        init.arg(format!("--{r}-key"))
            .arg(t.join(format!("{r}.pub")));
    }
    init.assert()
        .success()
        .stdout(contains("2 signature(s) needed"));
    nlk()
        .arg("status")
        .arg(&root)
        .assert()
        .success()
        .stdout(contains("0 valid, 2 required (NOT met)"))
        .stdout(contains("incomplete"));

    let sign = |who: &str, pass: &str| {
        let mut c = nlk();
        c.env("NIGHTLATCH_KEY_PASSPHRASE", pass)
            .args(["sign", "--who", who, "--key"])
            .arg(t.join(format!("{who}.key")))
            .arg(&root);
        c.assert()
    };
    sign("alice", "not the passphrase")
        .failure()
        .stderr(contains("wrong passphrase"));
    sign("alice", PASS)
        .success()
        .stdout(contains("1 valid, 2 required"));
    sign("alice", PASS)
        .failure()
        .stderr(contains("has already signed"));
    sign("targets", PASS)
        .failure()
        .stderr(contains("is not a root key"));
    // No passphrase and no terminal: a clear error, not a hang.
    nlk()
        .arg("sign")
        .arg("--key")
        .arg(t.join("bob.key"))
        .arg(&root)
        .assert()
        .failure()
        .stderr(contains("NIGHTLATCH_KEY_PASSPHRASE"));
    sign("bob", PASS)
        .success()
        .stdout(contains("complete: every threshold is met"));
    nlk().arg("verify-chain").arg(&root).assert().success();
    nlk()
        .args(["status", "--json"])
        .arg(&root)
        .assert()
        .success()
        .stdout(contains("\"complete\": true"));

    let log = nightlatch_repo::transcript::read(&t.join("ceremony/transcript.jsonl")).unwrap();
    let who: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e.operation.as_str(), e.who.as_str()))
        .collect();
    assert_eq!(who, [("init", "alice"), ("sign", "alice"), ("sign", "bob")]);
    assert_eq!(
        log[1].sha256_after, log[2].sha256_before,
        "each signature starts from the last file"
    );

    // An edited transcript line is caught by the next one, and nothing more is appended.
    let path = t.join("ceremony/transcript.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("\"alice\"", "\"mallory\"", 1)).unwrap();
    sign("carol", PASS)
        .failure()
        .stderr(contains("transcript"))
        .stderr(contains("damaged at line 2"));
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
}

#[test]
fn keygen_refuses_weak_or_mismatched_input() {
    let tmp = TempDir::new().unwrap();
    let t = tmp.path();
    nlk()
        .env("NIGHTLATCH_KEY_PASSPHRASE", "short")
        .arg("keygen")
        .arg(t.join("k"))
        .assert()
        .failure()
        .stderr(contains("at least 8 characters"));
    nlk()
        .env("NIGHTLATCH_KEY_PASSPHRASE", PASS)
        .args(["keygen", "--kdf-log-n", "30"])
        .arg(t.join("k"))
        .assert()
        .failure()
        .stderr(contains("out of range"));
    keygen(&t.join("k"));
    nlk()
        .env("NIGHTLATCH_KEY_PASSPHRASE", PASS)
        .args(["keygen", "--kdf-log-n", "14"])
        .arg(t.join("k"))
        .assert()
        .failure()
        .stderr(contains("already exists"));
}

#[test]
fn init_refuses_incomplete_role_lists() {
    let tmp = TempDir::new().unwrap();
    let t = tmp.path();
    let dev = dev(t);
    let keys = dev.join("image/keys");
    nlk()
        .args(["init", "--out"])
        .arg(t.join("r.json"))
        .arg("--root-key")
        .arg(keys.join("root-1.pub"))
        .assert()
        .failure()
        .stderr(contains("no targets key given"));
    let mut c = nlk();
    c.args(["init", "--root-threshold", "2", "--out"])
        .arg(t.join("r.json"))
        .arg("--root-key")
        .arg(keys.join("root-1.pub"));
    for r in ["targets", "snapshot", "timestamp"] {
        c.arg(format!("--{r}-key"))
            .arg(keys.join(format!("{r}.pub")));
    }
    c.assert()
        .failure()
        .stderr(contains("--root-threshold 2 with 1 key(s)"));
    // An encrypted key is not a public key file.
    keygen(&t.join("enc"));
    nlk()
        .args(["init", "--out"])
        .arg(t.join("r.json"))
        .arg("--root-key")
        .arg(t.join("enc.key"))
        .assert()
        .failure()
        .stderr(contains("pass its .pub file"));
}

#[test]
fn dev_init_makes_two_signed_roots_marked_unsafe() {
    let tmp = TempDir::new().unwrap();
    let dev = dev(tmp.path());
    assert!(
        std::fs::read_to_string(dev.join("UNSAFE-DEV-KEYS.txt"))
            .unwrap()
            .contains("UNSAFE")
    );
    for repo in ["image", "director"] {
        let root = dev.join(repo).join("1.root.json");
        nlk().arg("verify-chain").arg(&root).assert().success();
        for role in ["targets", "snapshot", "timestamp"] {
            assert!(dev.join(repo).join(format!("keys/{role}.key")).exists());
        }
    }
    nlk()
        .args(["status"])
        .arg(dev.join("image/1.root.json"))
        .assert()
        .success()
        .stdout(contains("root      threshold 2 of 3"));
    // Not over an existing directory without --force.
    nlk()
        .args(["init", "--dev", "--out"])
        .arg(&dev)
        .assert()
        .failure()
        .stderr(contains("not empty"));
    let log = nightlatch_repo::transcript::read(&dev.join("transcript.jsonl")).unwrap();
    assert_eq!(log.len(), 2);
}

#[test]
fn expiries_are_whole_seconds() {
    let tmp = TempDir::new().unwrap();
    let dev = dev(tmp.path());
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dev.join("image/1.root.json")).unwrap()).unwrap();
    let expires = root["signed"]["expires"].as_str().unwrap();
    assert_eq!(expires.len(), 20, "{expires}");
    assert!(
        expires.ends_with('Z') && !expires.contains('.'),
        "{expires}"
    );
    let e = nightlatch_repo::metadata::Expiry::parse(expires).unwrap();
    use nightlatch_repo::Clock;
    let year =
        nightlatch_repo::SystemClock.expires_in(nightlatch_repo::metadata::expiry::ROOT_LIFETIME);
    assert!(year.unix() - e.unix() < 60, "root expires in one year");
}

/// In process, the commands run at the date they are given (no clock of the
/// process is moved): expiries and transcript times follow it.
#[test]
fn commands_run_at_the_clock_they_are_given() {
    use clap::Parser;
    use nightlatch_repo::FixedClock;

    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("dev");
    let at = |t: u64, args: &[&str]| {
        keys_ceremony::cmd::Cli::try_parse_from(
            std::iter::once("nightlatch-keys").chain(args.iter().copied()),
        )
        .unwrap()
        .run_at(&FixedClock::at_unix(t))
    };
    // 2030-01-07T00:00:00Z.
    let t0 = 1_893_974_400;
    at(t0, &["init", "--dev", "--out", out.to_str().unwrap()]).unwrap();
    let root = out.join("image/1.root.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&root).unwrap()).unwrap();
    assert_eq!(v["signed"]["expires"], "2031-01-07T00:00:00Z");
    let log = nightlatch_repo::transcript::read(&out.join("transcript.jsonl")).unwrap();
    assert!(
        log.iter().all(|e| e.time == "2030-01-07T00:00:00Z"),
        "{log:?}"
    );
    // A year and a month later the root has expired; today it has not.
    let later = t0 + 400 * 86_400;
    at(later, &["verify-chain", root.to_str().unwrap()]).unwrap();
    let status = nightlatch_repo::status::root_status(
        &nightlatch_repo::metadata::Signed::load(&root).unwrap(),
        None,
        &FixedClock::at_unix(later),
    )
    .unwrap();
    assert!(status.expired && status.complete);
    nlk()
        .args(["status", "--json"])
        .arg(&root)
        .assert()
        .success()
        .stdout(contains("\"expired\": false"));
}
