//! End-to-end tests of the `nightlatch-sign` binary.

// Test helpers outside `#[test]` functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use bootloader::anchors::TrustAnchors;
use bootloader::envelope::{HardwareModel, PREFIX_LEN, Policy, Version, verify_bytes};
use nightlatch_repo::keys;
use predicates::prelude::*;
use predicates::str::contains;
use sha2::{Digest, Sha256};
use signing_tools::summary::EnvelopeSummary;
use tempfile::TempDir;

const MODEL: &str = "nl-lock-v2";
const VERSION: &str = "1.4.2";
const COUNTER: u32 = 7;

/// nightlatch-sign with the test passphrase in `$NIGHTLATCH_KEY_PASSPHRASE`,
/// as automation runs it: the fixture's keys are encrypted.
fn nls() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nightlatch-sign"));
    c.env(PASS_ENV, PASS);
    c
}

/// Deterministic pseudo-random bytes (xorshift64).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// A temp dir with two key pairs (`a`, `b`, made by `keygen`: encrypted with
/// `PASS`), a raw image and an envelope of it signed by `a`.
struct Fixture {
    dir: TempDir,
    image: Vec<u8>,
}

impl Fixture {
    fn new() -> Self {
        let dir = TempDir::new().unwrap();
        let fx = Self {
            dir,
            image: noise(5000, 0x5EED),
        };
        for name in ["a", "b"] {
            keygen_encrypted(&fx.path(name));
        }
        fs::write(fx.path("fw.bin"), &fx.image).unwrap();
        fx.sign(&["a"], "fw.nlfw").success();
        fx
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn sign(&self, keys: &[&str], out: &str) -> assert_cmd::assert::Assert {
        let mut cmd = nls();
        cmd.arg("sign");
        for k in keys {
            cmd.arg("--key").arg(self.path(&format!("{k}.key")));
        }
        cmd.args(["--model", MODEL, "--version", VERSION, "--counter"])
            .arg(COUNTER.to_string())
            .arg(self.path("fw.bin"))
            .arg("-o")
            .arg(self.path(out))
            .assert()
    }

    /// `verify --anchor <a.pub> ... <envelope>` plus extra arguments.
    fn verify(
        &self,
        anchors: &[&str],
        envelope: &Path,
        extra: &[&str],
    ) -> assert_cmd::assert::Assert {
        let mut cmd = nls();
        cmd.arg("verify");
        for a in anchors {
            cmd.arg("--anchor").arg(self.path(a));
        }
        cmd.args(extra).arg(envelope).assert()
    }

    fn envelope(&self) -> Vec<u8> {
        fs::read(self.path("fw.nlfw")).unwrap()
    }

    /// Write a modified copy of the envelope and return its path.
    fn tampered(&self, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
        let mut bytes = self.envelope();
        edit(&mut bytes);
        let path = self.path(name);
        fs::write(&path, bytes).unwrap();
        path
    }
}

/// Exit code 1, a message naming `reason` on stderr, and no panic.
fn refused(assert: assert_cmd::assert::Assert, reason: &str) {
    let assert = assert.code(1).stderr(contains("panicked").not());
    // miette wraps long messages and marks continued lines with `│`.
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr)
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        stderr.contains(reason),
        "{reason:?} not in stderr: {stderr}"
    );
}

// ---------------------------------------------------------------- keygen

#[test]
fn keygen_writes_pem_files_and_prints_key_id() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("release");
    let assert = nls().arg("keygen").arg(&out).assert().success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();

    let private = fs::read_to_string(dir.path().join("release.key")).unwrap();
    let public = fs::read_to_string(dir.path().join("release.pub")).unwrap();
    assert!(private.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert!(stdout.contains("passphrase-encrypted"), "{stdout:?}");

    let signing =
        keys::decrypt_private_key(&private, PASS.as_bytes(), Path::new("release.key")).unwrap();
    let verifying = keys::parse_public_key(&public).unwrap();
    assert_eq!(signing.verifying_key(), verifying);
    let id = hex::encode(Sha256::digest(verifying.as_bytes()));
    assert!(stdout.contains(&id), "key id missing from {stdout:?}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |name: &str| {
            fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("release.key"), 0o600);
        assert_eq!(mode("release.pub"), 0o644);
    }
}

#[test]
fn keygen_json() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("k");
    let assert = nls()
        .arg("keygen")
        .arg("--json")
        .arg(&out)
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    let public = keys::load_public_key(&dir.path().join("k.pub")).unwrap();
    assert_eq!(json["key_id"], keys::key_id_hex(&public));
    assert_eq!(json["encrypted"], true);
    assert_eq!(
        json["private_key"],
        dir.path().join("k.key").display().to_string()
    );
    assert_eq!(
        json["public_key"],
        dir.path().join("k.pub").display().to_string()
    );
}

#[test]
fn keygen_refuses_to_overwrite_without_force() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("k");
    nls().arg("keygen").arg(&out).assert().success();
    let before = fs::read(dir.path().join("k.key")).unwrap();

    refused(nls().arg("keygen").arg(&out).assert(), "already exists");
    assert_eq!(fs::read(dir.path().join("k.key")).unwrap(), before);

    // Only the .pub existing is refused too, and nothing is written.
    let lone = dir.path().join("lone");
    fs::write(dir.path().join("lone.pub"), "x").unwrap();
    refused(nls().arg("keygen").arg(&lone).assert(), "already exists");
    assert!(!dir.path().join("lone.key").exists());

    nls()
        .arg("keygen")
        .arg("--force")
        .arg(&out)
        .assert()
        .success();
    assert_ne!(fs::read(dir.path().join("k.key")).unwrap(), before);
}

#[test]
fn keygen_output_is_readable_by_openssl() {
    // An interop test that skips itself when the other side is missing checks
    // nothing: without openssl it fails, naming the script that installs it.
    match std::process::Command::new("openssl")
        .arg("version")
        .output()
    {
        Ok(v) if v.status.success() => {}
        other => panic!(
            "`openssl version` did not run ({other:?}): this test needs the openssl \
             command; `.ci/setup` installs it (Debian package openssl)"
        ),
    }
    let dir = TempDir::new().unwrap();
    // Unencrypted, and encrypted at the cost OpenSSL accepts (it caps scrypt
    // at 32 MiB: N = 2^14; the default 2^17 needs 128 MiB).
    nls()
        .args(["keygen", "--unencrypted"])
        .arg(dir.path().join("plain"))
        .assert()
        .success();
    keygen_encrypted(&dir.path().join("enc"));
    for name in ["plain", "enc"] {
        let openssl = |args: &[&str]| {
            std::process::Command::new("openssl")
                .args(args)
                .arg(dir.path().join(format!("{name}.key")))
                .args(["-passin", &format!("env:{PASS_ENV}")])
                .env(PASS_ENV, PASS)
                .output()
                .unwrap()
        };
        let private = openssl(&["pkey", "-noout", "-text", "-in"]);
        assert!(private.status.success(), "{name}: {private:?}");
        assert!(String::from_utf8_lossy(&private.stdout).contains("ED25519 Private-Key"));
        let derived = openssl(&["pkey", "-pubout", "-in"]);
        assert!(derived.status.success(), "{name}: {derived:?}");
        assert_eq!(
            derived.stdout,
            fs::read(dir.path().join(format!("{name}.pub"))).unwrap()
        );
    }
}

// ---------------------------------------------------------------- sign + verify

#[test]
fn sign_then_verify_ok() {
    let fx = Fixture::new();
    fx.verify(&["a.pub"], &fx.path("fw.nlfw"), &[])
        .success()
        .stdout(contains("OK"));
    // All policy options at their passing values.
    fx.verify(
        &["a.pub"],
        &fx.path("fw.nlfw"),
        &["--model", MODEL, "--min-counter", "7", "--threshold", "1"],
    )
    .success();
    // The private key file works as an anchor too (its public half is used).
    fx.verify(&["a.key"], &fx.path("fw.nlfw"), &[]).success();
}

#[test]
fn bootloader_accepts_what_the_cli_writes() {
    let fx = Fixture::new();
    let envelope = fx.envelope();
    assert_eq!(envelope.len(), PREFIX_LEN + fx.image.len());
    assert_eq!(&envelope[PREFIX_LEN..], &fx.image[..]);

    let public = keys::load_public_key(&fx.path("a.pub")).unwrap();
    let anchors = TrustAnchors::new(1, 1, &[public.to_bytes()]).unwrap();
    let model = HardwareModel::new(MODEL).unwrap();
    let verified = verify_bytes(
        &envelope,
        &Policy {
            anchors: &anchors,
            model: Some(&model),
            min_security_counter: COUNTER,
            max_payload_len: fx.image.len() as u32,
        },
    )
    .unwrap();
    let header = verified.header();
    assert_eq!(header.model, model);
    assert_eq!(header.version, Version::new(1, 4, 2));
    assert_eq!(header.security_counter, COUNTER);
    assert_eq!(header.payload_len as usize, fx.image.len());
    assert_eq!(
        header.payload_sha256,
        <[u8; 32]>::from(Sha256::digest(&fx.image))
    );
    assert_eq!(verified.signers(), 1);
}

/// The full path a release takes on a lock: CLI-signed envelopes in ACTIVE
/// and DFU of a simulated flash, through the real boot flow.
#[test]
fn a_lock_boots_and_installs_what_the_cli_writes() {
    use bootloader::boot::{BootConfig, Bootloader};
    use bootloader::layout::SMALL;
    use bootloader::sim::{Erased, SimFlash};
    use bootloader::updater::Updater;
    use std::cell::RefCell;

    let fx = Fixture::new();
    fs::write(fx.path("fw2.bin"), noise(7000, 42)).unwrap();
    nls()
        .args(["sign", "--key"])
        .arg(fx.path("a.key"))
        .args(["--model", MODEL, "--version", "1.5.0", "--counter", "8"])
        .arg(fx.path("fw2.bin"))
        .arg("-o")
        .arg(fx.path("fw2.nlfw"))
        .assert()
        .success();
    let old = fx.envelope();
    let new = fs::read(fx.path("fw2.nlfw")).unwrap();

    let public = keys::load_public_key(&fx.path("a.pub")).unwrap();
    let config = BootConfig {
        model: HardwareModel::new(MODEL).unwrap(),
        genesis: TrustAnchors::new(1, 1, &[public.to_bytes()]).unwrap(),
        layout: SMALL,
    };
    let mut sim = SimFlash::<4, 4096>::new(SMALL.flash_size as usize, Erased::Ones);
    sim.program_raw(SMALL.active.offset as usize, &old);
    let flash = embassy_sync::blocking_mutex::Mutex::new(RefCell::new(sim));
    let mut buf = vec![0u8; 4096];

    let r = Bootloader::new(&flash, config)
        .unwrap()
        .boot(&mut buf)
        .unwrap();
    assert_eq!(r.image.header().version, Version::new(1, 4, 2));

    let mut up = Updater::new(&flash, config).unwrap();
    up.begin().unwrap();
    up.write_dfu(0, &new).unwrap();
    up.request_install(&mut buf).unwrap();
    let r = Bootloader::new(&flash, config)
        .unwrap()
        .boot(&mut buf)
        .unwrap();
    assert!(r.trial);
    assert_eq!(r.image.header().version, Version::new(1, 5, 0));
    Updater::new(&flash, config).unwrap().confirm().unwrap();
    let r = Bootloader::new(&flash, config)
        .unwrap()
        .boot(&mut buf)
        .unwrap();
    assert!(!r.trial);
    assert_eq!(r.min_security_counter, 8);
}

#[test]
fn verify_json_reports_validity() {
    let fx = Fixture::new();
    let ok = fx
        .verify(&["a.pub"], &fx.path("fw.nlfw"), &["--json"])
        .success();
    let json: serde_json::Value = serde_json::from_slice(&ok.get_output().stdout).unwrap();
    assert_eq!(json["valid"], true);
    assert_eq!(json["signers"], 1);
    assert_eq!(json["hardware_model"], MODEL);
    assert_eq!(json["version"], VERSION);

    let bad = fx
        .verify(&["b.pub"], &fx.path("fw.nlfw"), &["--json"])
        .code(1);
    let json: serde_json::Value = serde_json::from_slice(&bad.get_output().stdout).unwrap();
    assert_eq!(json["valid"], false);
    assert!(json["error"].as_str().unwrap().contains("valid signature"));
}

#[test]
fn verify_fails_with_wrong_anchor() {
    let fx = Fixture::new();
    refused(
        fx.verify(&["b.pub"], &fx.path("fw.nlfw"), &[]),
        "0 valid signature(s) by trusted keys, 1 required",
    );
}

#[test]
fn verify_fails_with_wrong_model() {
    let fx = Fixture::new();
    refused(
        fx.verify(&["a.pub"], &fx.path("fw.nlfw"), &["--model", "nl-lock-v3"]),
        "another hardware model",
    );
}

#[test]
fn verify_fails_below_min_counter() {
    let fx = Fixture::new();
    refused(
        fx.verify(&["a.pub"], &fx.path("fw.nlfw"), &["--min-counter", "8"]),
        "security counter 7 is below the device minimum 8",
    );
}

#[test]
fn verify_fails_on_flipped_payload_byte() {
    let fx = Fixture::new();
    let bad = fx.tampered("flip.nlfw", |b| b[PREFIX_LEN + 1234] ^= 0x01);
    refused(
        fx.verify(&["a.pub"], &bad, &[]),
        "payload does not match its signed SHA-256",
    );
}

#[test]
fn verify_fails_on_flipped_header_byte() {
    let fx = Fixture::new();
    // Security counter (offset 48): parses, but the signature no longer covers it.
    let bad = fx.tampered("hdr.nlfw", |b| b[48] ^= 0x01);
    refused(fx.verify(&["a.pub"], &bad, &[]), "0 valid signature(s)");
}

#[test]
fn verify_fails_on_truncated_file() {
    let fx = Fixture::new();
    let short = fx.tampered("short.nlfw", |b| {
        b.pop();
    });
    refused(fx.verify(&["a.pub"], &short, &[]), "header says");
    let tiny = fx.tampered("tiny.nlfw", |b| b.truncate(100));
    refused(fx.verify(&["a.pub"], &tiny, &[]), "shorter than");
}

#[test]
fn verify_fails_on_appended_byte() {
    let fx = Fixture::new();
    let long = fx.tampered("long.nlfw", |b| b.push(0));
    refused(fx.verify(&["a.pub"], &long, &[]), "header says");
}

#[test]
fn threshold_two_needs_two_signatures() {
    let fx = Fixture::new();
    fx.sign(&["a", "b"], "two.nlfw").success();
    fx.verify(
        &["a.pub", "b.pub"],
        &fx.path("two.nlfw"),
        &["--threshold", "2"],
    )
    .success()
    .stdout(contains("2 trusted key(s)"));
    // The single-signature envelope does not meet a threshold of 2.
    refused(
        fx.verify(
            &["a.pub", "b.pub"],
            &fx.path("fw.nlfw"),
            &["--threshold", "2"],
        ),
        "1 valid signature(s) by trusted keys, 2 required",
    );
    // A threshold above the number of anchors is refused up front.
    refused(
        fx.verify(&["a.pub"], &fx.path("two.nlfw"), &["--threshold", "2"]),
        "invalid trust anchors",
    );
}

// ---------------------------------------------------------------- inspect

#[test]
fn inspect_json_fields() {
    let fx = Fixture::new();
    fx.sign(&["a", "b"], "two.nlfw").success();
    let assert = nls()
        .args(["inspect", "--json"])
        .arg(fx.path("two.nlfw"))
        .assert()
        .success();
    let summary: EnvelopeSummary = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    let id = |name: &str| {
        keys::key_id_hex(&keys::load_public_key(&fx.path(&format!("{name}.pub"))).unwrap())
    };
    assert_eq!(summary.format_version, 1);
    assert_eq!(summary.hardware_model, MODEL);
    assert_eq!(summary.version, VERSION);
    assert_eq!(summary.security_counter, COUNTER);
    assert_eq!(summary.payload_len as usize, fx.image.len());
    assert_eq!(
        summary.payload_sha256,
        hex::encode(Sha256::digest(&fx.image))
    );
    assert_eq!(summary.envelope_len as usize, PREFIX_LEN + fx.image.len());
    let ids: Vec<&str> = summary
        .signatures
        .iter()
        .map(|s| s.key_id.as_str())
        .collect();
    assert_eq!(ids, [id("a"), id("b")]);

    // `sign --json` prints the same shape.
    let signed = nls()
        .args(["sign", "--json", "--key"])
        .arg(fx.path("a.key"))
        .arg("--key")
        .arg(fx.path("b.key"))
        .args(["--model", MODEL, "--version", VERSION, "--counter", "7"])
        .arg(fx.path("fw.bin"))
        .arg("-o")
        .arg(fx.path("again.nlfw"))
        .assert()
        .success();
    let again: EnvelopeSummary = serde_json::from_slice(&signed.get_output().stdout).unwrap();
    assert_eq!(again, summary);
}

#[test]
fn inspect_human_table() {
    let fx = Fixture::new();
    nls()
        .arg("inspect")
        .arg(fx.path("fw.nlfw"))
        .assert()
        .success()
        .stdout(contains("hardware model    nl-lock-v2"))
        .stdout(contains("security counter  7"))
        .stdout(contains("key id #1"));
}

#[test]
fn malformed_input_is_a_clean_error() {
    let fx = Fixture::new();
    let mut inputs = vec![
        ("empty", Vec::new()),
        ("noise-small", noise(100, 1)),
        ("noise-prefix", noise(PREFIX_LEN, 2)),
        ("noise-large", noise(8000, 3)),
    ];
    // Right magic, garbage after it.
    let mut magic = noise(4000, 4);
    magic[..4].copy_from_slice(b"NLFW");
    inputs.push(("magic", magic));
    // A valid envelope with its signature count or padding corrupted.
    let mut count = fx.envelope();
    count[128] = 200;
    inputs.push(("count", count));
    let mut padding = fx.envelope();
    padding[PREFIX_LEN - 1] = 1;
    inputs.push(("padding", padding));

    for (name, bytes) in inputs {
        let path = fx.path(name);
        fs::write(&path, bytes).unwrap();
        for json in [false, true] {
            let mut inspect = nls();
            inspect.arg("inspect");
            if json {
                inspect.arg("--json");
            }
            refused(inspect.arg(&path).assert(), "is not a valid envelope");
        }
        refused(fx.verify(&["a.pub"], &path, &[]), "was rejected");
    }
    refused(
        nls().arg("inspect").arg(fx.path("missing")).assert(),
        "cannot read",
    );
}

// ---------------------------------------------------------------- sign refusals

fn sign_with(
    fx: &Fixture,
    keys: &[PathBuf],
    model: &str,
    version: &str,
) -> assert_cmd::assert::Assert {
    let mut cmd = nls();
    cmd.arg("sign");
    for k in keys {
        cmd.arg("--key").arg(k);
    }
    cmd.args(["--model", model, "--version", version, "--counter", "1"])
        .arg(fx.path("fw.bin"))
        .arg("-o")
        .arg(fx.path("out.nlfw"))
        .assert()
}

#[test]
fn bad_version_is_refused() {
    let fx = Fixture::new();
    let key = [fx.path("a.key")];
    for bad in [
        "1.2",
        "1.2.3.4",
        "1.2.65536",
        "v1.2.3",
        "1.2.3-rc.1",
        "01.2.3",
        "x.y.z",
        "",
    ] {
        refused(sign_with(&fx, &key, MODEL, bad), "invalid version");
        assert!(!fx.path("out.nlfw").exists(), "{bad:?} wrote an envelope");
    }
    sign_with(&fx, &key, MODEL, "65535.0.0").success();
}

#[test]
fn sign_refuses_bad_model_duplicate_and_too_many_keys() {
    let fx = Fixture::new();
    let a = fx.path("a.key");
    refused(
        sign_with(&fx, std::slice::from_ref(&a), "NL Lock", "1.0.0"),
        "invalid hardware model",
    );
    refused(
        sign_with(
            &fx,
            &[a.clone(), fx.path("b.key"), a.clone()],
            MODEL,
            "1.0.0",
        ),
        "is given twice",
    );
    // The same key under another file name is still a duplicate.
    fs::copy(&a, fx.path("copy.key")).unwrap();
    refused(
        sign_with(&fx, &[a.clone(), fx.path("copy.key")], MODEL, "1.0.0"),
        "is given twice",
    );

    let many: Vec<PathBuf> = (0..9)
        .map(|i| {
            let path = fx.path(&format!("k{i}.key"));
            let pem = keys::private_key_pem(&keys::generate()).unwrap();
            fs::write(&path, pem.as_bytes()).unwrap();
            path
        })
        .collect();
    refused(sign_with(&fx, &many, MODEL, "1.0.0"), "at most 8");
    sign_with(&fx, &many[..8], MODEL, "1.0.0").success();
    assert!(fx.path("out.nlfw").exists());
    // A public key is not a signing key.
    refused(
        sign_with(&fx, &[fx.path("a.pub")], MODEL, "1.0.0"),
        "not an Ed25519 private key",
    );
}

#[test]
fn usage_errors_exit_2() {
    nls().arg("sign").assert().code(2);
    nls().args(["verify", "x.nlfw"]).assert().code(2);
    nls().arg("frobnicate").assert().code(2);
}

/// `delta`, `apply` and `bench-delta` end to end.
#[test]
fn delta_apply_and_bench_delta() {
    let fx = Fixture::new();
    let mut v2 = fx.image.clone();
    v2[100] ^= 0xFF;
    v2.extend_from_slice(&noise(700, 9));
    fs::write(fx.path("fw2.bin"), &v2).unwrap();
    nls()
        .args(["sign", "--key"])
        .arg(fx.path("a.key"))
        .args(["--model", MODEL, "--version", "1.5.0", "--counter", "8"])
        .arg(fx.path("fw2.bin"))
        .arg("-o")
        .arg(fx.path("fw2.nlfw"))
        .assert()
        .success();
    let out = nls()
        .args(["delta", "--json", "--from"])
        .arg(fx.path("fw.nlfw"))
        .arg("--to")
        .arg(fx.path("fw2.nlfw"))
        .arg("-o")
        .arg(fx.path("p.nldp"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let summary: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let patch = fs::read(fx.path("p.nldp")).unwrap();
    assert_eq!(summary["patch_bytes"], patch.len());
    let transform = summary["transform"].as_str().unwrap();
    assert!(
        ["plain", "xtensa", "thumb2"].contains(&transform),
        "{transform}"
    );
    assert_eq!(
        bootloader::delta::transform::name(patch[7] >> 4),
        transform,
        "the header names the transform the summary reports"
    );
    nls()
        .args(["apply", "--base"])
        .arg(fx.path("fw.nlfw"))
        .arg(fx.path("p.nldp"))
        .arg("-o")
        .arg(fx.path("rebuilt.nlfw"))
        .assert()
        .success();
    assert_eq!(
        fs::read(fx.path("rebuilt.nlfw")).unwrap(),
        fs::read(fx.path("fw2.nlfw")).unwrap()
    );

    // The wrong base is named as such, with the fallback in the help.
    let err = nls()
        .args(["apply", "--base"])
        .arg(fx.path("fw2.nlfw"))
        .arg(fx.path("p.nldp"))
        .arg("-o")
        .arg(fx.path("x.nlfw"))
        .assert()
        .code(1)
        .get_output()
        .stderr
        .clone();
    let err: String = String::from_utf8_lossy(&err)
        .split(|c: char| c.is_whitespace() || c == '│')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        err.contains("not this patch's base") && err.contains("full image"),
        "{err}"
    );
    // A damaged patch is refused, never written out.
    let mut bad = patch.clone();
    let mid = bad.len() - 40;
    bad[mid] ^= 0x55;
    fs::write(fx.path("bad.nldp"), &bad).unwrap();
    nls()
        .args(["apply", "--base"])
        .arg(fx.path("fw.nlfw"))
        .arg(fx.path("bad.nldp"))
        .arg("-o")
        .arg(fx.path("y.nlfw"))
        .assert()
        .code(1);
    assert!(!fx.path("y.nlfw").exists());
    // Not an envelope.
    nls()
        .args(["delta", "--from"])
        .arg(fx.path("fw.bin"))
        .arg("--to")
        .arg(fx.path("fw2.nlfw"))
        .arg("-o")
        .arg(fx.path("z.nldp"))
        .assert()
        .code(1)
        .stderr(contains("panicked").not());

    // bench-delta on a two-file corpus folder.
    let corpus = fx.path("corpus");
    fs::create_dir_all(corpus.join("board")).unwrap();
    fs::write(corpus.join("board/1.0.bin"), &fx.image).unwrap();
    fs::write(corpus.join("board/1.1.bin"), &v2).unwrap();
    let out = nls()
        .args(["bench-delta", "--json"])
        .arg(&corpus)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let pair = &report["pairs"][0];
    assert_eq!(pair["pair"], "board/1.0 -> 1.1");
    assert!(pair["ram_total_bytes"].as_u64().unwrap() > pair["ram_model_bytes"].as_u64().unwrap());
    assert!(pair["ratio"].as_f64().unwrap() < 1.0);
}

/// `anchors rotate | sign | verify`, and a lock accepting the record.
#[test]
fn anchor_rotation_records() {
    use bootloader::boot::{BootConfig, Bootloader};
    use bootloader::layout::SMALL;
    use bootloader::sim::{Erased, SimFlash};
    use bootloader::updater::Updater;
    use std::cell::RefCell;

    let fx = Fixture::new();
    let record = fx.path("r.nlta");
    nls()
        .args([
            "anchors",
            "rotate",
            "--set-version",
            "2",
            "--threshold",
            "1",
            "--new-key",
        ])
        .arg(fx.path("b.pub"))
        .arg("--sign")
        .arg(fx.path("a.key"))
        .arg("-o")
        .arg(&record)
        .assert()
        .success();
    // Only the current key signed: the new keyholder has not proven the key.
    nls()
        .args(["anchors", "verify", "--current"])
        .arg(fx.path("a.pub"))
        .arg(&record)
        .assert()
        .code(1)
        .stderr(contains("new anchors"));
    nls()
        .args(["anchors", "sign", "--key"])
        .arg(fx.path("b.key"))
        .arg(&record)
        .assert()
        .success();
    let out = nls()
        .args(["anchors", "verify", "--json", "--current"])
        .arg(fx.path("a.pub"))
        .arg(&record)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["signed_by"].as_array().unwrap().len(), 2);
    // A lock on {a}, running a transition release signed by a and b, accepts it.
    nls()
        .args(["sign", "--key"])
        .arg(fx.path("a.key"))
        .arg("--key")
        .arg(fx.path("b.key"))
        .args(["--model", MODEL, "--version", "1.5.0", "--counter", "8"])
        .arg(fx.path("fw.bin"))
        .arg("-o")
        .arg(fx.path("both.nlfw"))
        .assert()
        .success();
    let a = keys::load_public_key(&fx.path("a.pub")).unwrap();
    let config = BootConfig {
        model: HardwareModel::new(MODEL).unwrap(),
        genesis: TrustAnchors::new(1, 1, &[a.to_bytes()]).unwrap(),
        layout: SMALL,
    };
    let mut sim = SimFlash::<4, 4096>::new(SMALL.flash_size as usize, Erased::Ones);
    sim.program_raw(
        SMALL.active.offset as usize,
        &fs::read(fx.path("both.nlfw")).unwrap(),
    );
    let flash = embassy_sync::blocking_mutex::Mutex::new(RefCell::new(sim));
    let mut buf = vec![0u8; 4096];
    Updater::new(&flash, config)
        .unwrap()
        .rotate_anchors(&fs::read(&record).unwrap(), &mut buf)
        .unwrap();
    let r = Bootloader::new(&flash, config)
        .unwrap()
        .boot(&mut buf)
        .unwrap();
    assert_eq!(r.anchors_version, 2);
}

// ---------------------------------------------------------------- keys at rest (issue 13)

/// Where nightlatch-sign (like nightlatch-keys) takes a key file passphrase from.
const PASS_ENV: &str = "NIGHTLATCH_KEY_PASSPHRASE";
const PASS: &str = "Quiet-Hours-4-Door-7";
const ENCRYPTED_LABEL: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";

/// nightlatch-sign with `passphrase` in its environment, or none at all
/// (whatever the developer's shell holds).
fn nls_pass(passphrase: Option<&str>) -> Command {
    let mut c = nls();
    match passphrase {
        Some(p) => c.env(PASS_ENV, p),
        None => c.env_remove(PASS_ENV),
    };
    c
}

/// stdout and stderr of a finished command.
fn all_output(assert: &assert_cmd::assert::Assert) -> String {
    let out = assert.get_output();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The passphrase must never be echoed, whatever happened.
fn no_secret(assert: &assert_cmd::assert::Assert, secret: &str) {
    let text = all_output(assert);
    assert!(!text.contains(secret), "the passphrase leaked: {text}");
}

/// `keygen OUT` with a passphrase in the environment, cheapest accepted KDF cost.
fn keygen_encrypted(out: &Path) {
    let a = nls_pass(Some(PASS))
        .args(["keygen", "--kdf-log-n", "14"])
        .arg(out)
        .assert()
        .success();
    no_secret(&a, PASS);
}

fn sign_one(
    key: &Path,
    image: &Path,
    out: &Path,
    passphrase: Option<&str>,
) -> assert_cmd::assert::Assert {
    nls_pass(passphrase)
        .arg("sign")
        .arg("--key")
        .arg(key)
        .args(["--model", MODEL, "--version", VERSION, "--counter"])
        .arg(COUNTER.to_string())
        .arg(image)
        .arg("-o")
        .arg(out)
        .assert()
}

#[test]
fn keygen_encrypts_by_default_in_the_nightlatch_keys_format() {
    use pkcs8::der::Decode;
    use pkcs8::pkcs5::{EncryptionScheme, pbes2};

    let dir = TempDir::new().unwrap();
    let a = nls_pass(Some(PASS))
        .arg("keygen")
        .arg(dir.path().join("release"))
        .assert()
        .success();
    no_secret(&a, PASS);
    let text = fs::read_to_string(dir.path().join("release.key")).unwrap();
    assert!(text.starts_with(ENCRYPTED_LABEL), "not encrypted: {text}");
    assert!(!text.contains("-----BEGIN PRIVATE KEY-----"));
    assert!(keys::parse_private_key(&text).is_err());

    // PBES2 with scrypt N = 2^17, r = 8, p = 1 and AES-256-CBC: exactly what
    // `nightlatch-keys keygen` writes by default.
    let (label, der) = pkcs8::der::pem::decode_vec(text.as_bytes()).unwrap();
    assert_eq!(label, "ENCRYPTED PRIVATE KEY");
    let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&der).unwrap();
    let EncryptionScheme::Pbes2(params) = &info.encryption_algorithm else {
        panic!("not PBES2: {:?}", info.encryption_algorithm);
    };
    let pbes2::Kdf::Scrypt(cost) = &params.kdf else {
        panic!("not scrypt: {:?}", params.kdf);
    };
    assert_eq!(
        (cost.cost_parameter, cost.block_size, cost.parallelization),
        (
            1 << nightlatch_repo::keysource::file::DEFAULT_KDF_LOG_N,
            8,
            1
        )
    );
    assert!(matches!(
        params.encryption,
        pbes2::EncryptionScheme::Aes256Cbc { .. }
    ));

    // nightlatch-keys' own reader (and its KDF limits) opens it.
    let key = nightlatch_repo::keysource::file::decrypt_pem(
        &text,
        PASS.as_bytes(),
        Path::new("release.key"),
    )
    .unwrap();
    let public = keys::load_public_key(&dir.path().join("release.pub")).unwrap();
    assert_eq!(key.verifying_key(), public);
    assert!(
        nightlatch_repo::keysource::file::decrypt_pem(&text, b"not it", Path::new("k")).is_err()
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |name: &str| {
            fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("release.key"), 0o600);
        assert_eq!(mode("release.pub"), 0o644);
    }
}

#[test]
fn encrypted_key_signs_with_the_right_passphrase_and_the_envelope_verifies() {
    let dir = TempDir::new().unwrap();
    let p = |n: &str| dir.path().join(n);
    keygen_encrypted(&p("release"));
    let image = noise(3000, 0xC0FFEE);
    fs::write(p("fw.bin"), &image).unwrap();

    let a = sign_one(&p("release.key"), &p("fw.bin"), &p("fw.nlfw"), Some(PASS)).success();
    no_secret(&a, PASS);

    // The device's own check, with the public key as its only anchor.
    let public = keys::load_public_key(&p("release.pub")).unwrap();
    let anchors = TrustAnchors::new(1, 1, &[public.to_bytes()]).unwrap();
    let model = HardwareModel::new(MODEL).unwrap();
    let policy = Policy {
        anchors: &anchors,
        model: Some(&model),
        min_security_counter: COUNTER,
        max_payload_len: u32::MAX,
    };
    let envelope = fs::read(p("fw.nlfw")).unwrap();
    verify_bytes(&envelope, &policy).unwrap();
    assert_eq!(&envelope[PREFIX_LEN..], image.as_slice());

    // verify takes the .pub, or the encrypted .key (its public half).
    nls_pass(None)
        .args(["verify", "--model", MODEL, "--anchor"])
        .arg(p("release.pub"))
        .arg(p("fw.nlfw"))
        .assert()
        .success();
    let a = nls_pass(Some(PASS))
        .args(["verify", "--anchor"])
        .arg(p("release.key"))
        .arg(p("fw.nlfw"))
        .assert()
        .success();
    no_secret(&a, PASS);

    // Trust anchor rotation records are signed with encrypted keys too.
    keygen_encrypted(&p("next"));
    let a = nls_pass(Some(PASS))
        .args([
            "anchors",
            "rotate",
            "--set-version",
            "2",
            "--threshold",
            "1",
            "--new-key",
        ])
        .arg(p("next.pub"))
        .arg("--sign")
        .arg(p("release.key"))
        .arg("-o")
        .arg(p("r.nlta"))
        .assert()
        .success();
    no_secret(&a, PASS);
    nls_pass(Some(PASS))
        .args(["anchors", "sign", "--key"])
        .arg(p("next.key"))
        .arg(p("r.nlta"))
        .assert()
        .success();
    nls_pass(None)
        .args(["anchors", "verify", "--current"])
        .arg(p("release.pub"))
        .arg(p("r.nlta"))
        .assert()
        .success();
}

#[test]
fn wrong_passphrase_is_a_clear_error() {
    let dir = TempDir::new().unwrap();
    let p = |n: &str| dir.path().join(n);
    keygen_encrypted(&p("release"));
    fs::write(p("fw.bin"), noise(1000, 3)).unwrap();
    let wrong = "Not-The-Passphrase-42";

    let a = sign_one(&p("release.key"), &p("fw.bin"), &p("fw.nlfw"), Some(wrong));
    no_secret(&a, wrong);
    refused(a, "wrong passphrase for");
    assert!(!p("fw.nlfw").exists());

    let a = nls_pass(Some(wrong))
        .args(["anchors", "sign", "--key"])
        .arg(p("release.key"))
        .arg(p("missing.nlta"))
        .assert();
    no_secret(&a, wrong);
    let a = nls_pass(Some(wrong))
        .args(["verify", "--anchor"])
        .arg(p("release.key"))
        .arg(p("fw.bin"))
        .assert();
    no_secret(&a, wrong);
    refused(a, "wrong passphrase for");
}

#[test]
fn missing_passphrase_without_a_terminal_is_a_clear_error() {
    let dir = TempDir::new().unwrap();
    let p = |n: &str| dir.path().join(n);

    // keygen: no NIGHTLATCH_KEY_PASSPHRASE, no --unencrypted, stdin not a
    // terminal: refused, naming both ways out, and nothing is written.
    let a = nls_pass(None).arg("keygen").arg(p("release")).assert();
    refused(a, PASS_ENV);
    let a = nls_pass(None).arg("keygen").arg(p("release")).assert();
    refused(a, "--unencrypted");
    assert!(!p("release.key").exists());
    assert!(!p("release.pub").exists());

    // sign with an encrypted key: refused, naming the variable.
    keygen_encrypted(&p("release"));
    fs::write(p("fw.bin"), noise(1000, 4)).unwrap();
    let a = sign_one(&p("release.key"), &p("fw.bin"), &p("fw.nlfw"), None);
    refused(a, PASS_ENV);
    assert!(!p("fw.nlfw").exists());
}

#[test]
fn keygen_unencrypted_warns_loudly() {
    let dir = TempDir::new().unwrap();
    let p = |n: &str| dir.path().join(n);
    let a = nls_pass(None)
        .args(["keygen", "--unencrypted"])
        .arg(p("ci"))
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        stderr.contains("WARNING") && stderr.contains("unencrypted private key"),
        "no warning on stderr: {stderr:?}"
    );
    let stdout = String::from_utf8_lossy(&a.get_output().stdout).into_owned();
    assert!(
        !stdout.contains("WARNING"),
        "warning belongs on stderr: {stdout}"
    );
    let text = fs::read_to_string(p("ci.key")).unwrap();
    assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    keys::parse_private_key(&text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(p("ci.key")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // An unencrypted key needs no passphrase to sign.
    fs::write(p("fw.bin"), noise(1000, 5)).unwrap();
    sign_one(&p("ci.key"), &p("fw.bin"), &p("fw.nlfw"), None).success();
}

#[test]
fn keygen_refuses_a_short_passphrase_and_unreadable_kdf_costs() {
    let dir = TempDir::new().unwrap();
    let p = |n: &str| dir.path().join(n);
    let short = "Ab3$xyz";
    let a = nls_pass(Some(short)).arg("keygen").arg(p("k")).assert();
    no_secret(&a, short);
    refused(a, "at least 8 characters");
    assert!(!p("k.key").exists() && !p("k.pub").exists());

    // Below nightlatch-keys' floor, or above what its reader accepts.
    for log_n in ["13", "19"] {
        nls_pass(Some(PASS))
            .args(["keygen", "--kdf-log-n", log_n])
            .arg(p("k"))
            .assert()
            .failure();
        assert!(!p("k.key").exists());
    }
    // A KDF cost means nothing for an unencrypted key.
    nls_pass(None)
        .args(["keygen", "--unencrypted", "--kdf-log-n", "14"])
        .arg(p("k"))
        .assert()
        .code(2);
}

#[test]
fn publish_and_repo_read_encrypted_release_keys() {
    // Dev roots and keys (unencrypted, as `nightlatch-keys init --dev`
    // makes them), then the targets (release) key re-written encrypted, as
    // `nightlatch-keys keygen` writes.
    let dir = TempDir::new().unwrap();
    let p = |n: &str| dir.path().join(n);
    nightlatch_repo::dev::make(
        &p("dev"),
        false,
        &nightlatch_repo::transcript::Log::default(),
        &nightlatch_repo::SystemClock,
    )
    .unwrap();
    let release = p("dev/image/keys/targets.key");
    let plain = keys::load_private_key(&release).unwrap();
    nightlatch_repo::keysource::file::write_private(
        &release,
        &plain.into(),
        Some((
            PASS.as_bytes(),
            nightlatch_repo::keysource::file::MIN_KDF_LOG_N,
        )),
        true,
    )
    .unwrap();
    assert!(
        fs::read_to_string(&release)
            .unwrap()
            .starts_with(ENCRYPTED_LABEL)
    );

    nls_pass(None)
        .args(["repo", "init", "--repo"])
        .arg(p("repo"))
        .arg(p("dev/image/1.root.json"))
        .assert()
        .success();
    fs::write(p("fw.bin"), noise(2000, 6)).unwrap();
    sign_one(&release, &p("fw.bin"), &p("fw.nlfw"), Some(PASS)).success();

    let publish = |pass: Option<&str>| {
        nls_pass(pass)
            .args(["publish", "--repo"])
            .arg(p("repo"))
            .arg("--key")
            .arg(&release)
            .arg(p("fw.nlfw"))
            .assert()
    };
    refused(publish(None), PASS_ENV);
    let wrong = "Not-The-Passphrase-42";
    let a = publish(Some(wrong));
    no_secret(&a, wrong);
    refused(a, "wrong passphrase for");
    let a = publish(Some(PASS)).success();
    no_secret(&a, PASS);
    assert!(p("repo/metadata/1.targets.json").exists());
}
