//! SoftHSM2 end to end: keys generated inside the token sign a root that
//! python-tuf accepts.

use std::path::Path;

use predicates::str::contains;
use tempfile::TempDir;

use crate::support::*;

fn uri(label: &str, pin: Option<&str>) -> String {
    let pin = pin.map(|p| format!("&pin-value={p}")).unwrap_or_default();
    format!(
        "pkcs11:token=nightlatch-test;object={label}?module-path={}{pin}",
        softhsm_module().display()
    )
}

fn hsm(cmd: &mut assert_cmd::Command) -> &mut assert_cmd::Command {
    cmd.env("SOFTHSM2_CONF", softhsm_conf())
}

/// A label no other test run uses.
fn label(name: &str) -> String {
    let n: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    format!("{name}-{}-{n:x}", std::process::id())
}

#[test]
fn hsm_keys_sign_a_root_python_tuf_accepts() {
    let tmp = TempDir::new().unwrap();
    let t = tmp.path();
    let (a, b) = (label("root-a"), label("root-b"));
    for (l, out) in [(&a, "hsm-a"), (&b, "hsm-b")] {
        hsm(nlk()
            .args(["keygen", "--pkcs11", &uri(l, Some("1234"))])
            .arg(t.join(out)))
        .assert()
        .success()
        .stdout(contains("TUF key id"));
    }
    // Online and release keys as plain files; root keys in the token (2-of-2).
    let keys = t.join("keys");
    std::fs::create_dir(&keys).unwrap();
    for r in ["targets", "snapshot", "timestamp"] {
        plain_key(&keys.join(r));
    }
    let root = t.join("ceremony/1.root.json");
    let mut init = nlk();
    init.args(["init", "--root-threshold", "2", "--out"])
        .arg(&root)
        .arg("--root-key")
        .arg(t.join("hsm-a.pub"))
        // A root key may also be named by its token URI (public key read from the token).
        .arg("--root-key")
        .arg(uri(&b, Some("1234")));
    for r in ["targets", "snapshot", "timestamp"] {
        init.arg(format!("--{r}-key"))
            .arg(keys.join(format!("{r}.pub")));
    }
    hsm(&mut init).assert().success();

    // Wrong PIN: a clear error from the token.
    hsm(nlk()
        .args(["sign", "--key", &uri(&a, Some("9999"))])
        .arg(&root))
    .assert()
    .failure()
    .stderr(contains("PIN"));
    // PIN from the environment, and from the URI.
    hsm(nlk()
        .env("NIGHTLATCH_PKCS11_PIN", "1234")
        .args(["sign", "--key", &uri(&a, None)])
        .arg(&root))
    .assert()
    .success()
    .stdout(contains("1 valid, 2 required"));
    hsm(nlk()
        .args(["sign", "--key", &uri(&b, Some("1234"))])
        .arg(&root))
    .assert()
    .success()
    .stdout(contains("complete: every threshold is met"));
    // Keys cannot be generated twice under one label.
    hsm(nlk().args(["keygen", "--pkcs11", &uri(&a, Some("1234"))]))
        .assert()
        .failure()
        .stderr(contains("already exists"));

    let fw = envelope(t, &keys.join("targets.key"), "nl-lock-v2", "2.0.0", 7);
    let repo = repo_with(t, &root, &keys, &keys.join("targets.key"), &[fw.as_path()]);
    let seen = tuf_client(&repo, &root, &t.join("client"), &["nl-lock-v2/2.0.0.nlfw"]).unwrap();
    assert_eq!(seen["root_version"], 1);
    assert_eq!(
        seen["targets"]["nl-lock-v2/2.0.0.nlfw"]["length"],
        std::fs::metadata(&fw).unwrap().len()
    );
    let log = std::fs::read_to_string(t.join("ceremony/transcript.jsonl")).unwrap();
    assert!(!log.contains("1234"), "no PIN in the transcript");
    assert!(Path::new(&repo).join("metadata/1.root.json").exists());
}

#[test]
fn hsm_ecdsa_key_signs_a_mixed_root_python_tuf_accepts() {
    // Root 2-of-2: an ECDSA P-256 key generated in the token (CKM_ECDSA) and
    // an Ed25519 key file; the snapshot key is an ECDSA key file. python-tuf
    // accepts the root and the repository.
    let tmp = TempDir::new().unwrap();
    let t = tmp.path();
    let ec = label("root-ec");
    hsm(nlk()
        .args([
            "keygen",
            "--type",
            "ecdsa",
            "--pkcs11",
            &uri(&ec, Some("1234")),
        ])
        .arg(t.join("hsm-ec")))
    .assert()
    .success()
    .stdout(contains("TUF key id"));
    let pem = std::fs::read_to_string(t.join("hsm-ec.pub")).unwrap();
    let public = nightlatch_repo::keysource::secret::parse_public_pem(&pem).unwrap();
    assert_eq!(public.keytype(), "ecdsa");
    let (root_ed, root_ed_pub) = plain_key(&t.join("root-ed"));
    let keys = t.join("keys");
    std::fs::create_dir(&keys).unwrap();
    for r in ["targets", "timestamp"] {
        plain_key(&keys.join(r));
    }
    let snapshot = nightlatch_repo::keysource::SecretKey::generate(
        nightlatch_repo::keysource::KeyType::EcdsaP256,
    );
    nightlatch_repo::keysource::file::write_private(
        &keys.join("snapshot.key"),
        &snapshot,
        None,
        false,
    )
    .unwrap();
    nightlatch_repo::keysource::file::write_public(
        &keys.join("snapshot.pub"),
        &snapshot.public().unwrap(),
        false,
    )
    .unwrap();

    let root = t.join("ceremony/1.root.json");
    let mut init = nlk();
    init.args(["init", "--root-threshold", "2", "--out"])
        .arg(&root)
        .arg("--root-key")
        .arg(uri(&ec, Some("1234")))
        .arg("--root-key")
        .arg(&root_ed_pub);
    for r in ["targets", "snapshot", "timestamp"] {
        init.arg(format!("--{r}-key"))
            .arg(keys.join(format!("{r}.pub")));
    }
    hsm(&mut init).assert().success();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&root).unwrap()).unwrap();
    let mut types: Vec<&str> = doc["signed"]["keys"]
        .as_object()
        .unwrap()
        .values()
        .map(|k| k["keytype"].as_str().unwrap())
        .collect();
    types.sort_unstable();
    assert_eq!(types, ["ecdsa", "ecdsa", "ed25519", "ed25519", "ed25519"]);

    hsm(nlk()
        .args(["sign", "--key", &uri(&ec, Some("1234"))])
        .arg(&root))
    .assert()
    .success()
    .stdout(contains("1 valid, 2 required"));
    nlk()
        .args(["sign", "--key"])
        .arg(&root_ed)
        .arg(&root)
        .assert()
        .success()
        .stdout(contains("complete: every threshold is met"));
    // The token's signature is DER ECDSA over SHA-256, as securesystemslib writes.
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&root).unwrap()).unwrap();
    let ec_sig = doc["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["keyid"] == nightlatch_repo::metadata::KeyIdOf::key_id(&public).as_str())
        .expect("the token key signed");
    assert!(
        ec_sig["sig"].as_str().unwrap().starts_with("30"),
        "{ec_sig}"
    );

    let fw = envelope(t, &keys.join("targets.key"), "nl-lock-v2", "2.1.0", 8);
    let repo = repo_with(t, &root, &keys, &keys.join("targets.key"), &[fw.as_path()]);
    let seen = tuf_client(&repo, &root, &t.join("client"), &["nl-lock-v2/2.1.0.nlfw"]).unwrap();
    assert_eq!(seen["root_version"], 1);
    assert_eq!(
        seen["targets"]["nl-lock-v2/2.1.0.nlfw"]["length"],
        std::fs::metadata(&fw).unwrap().len()
    );
}
