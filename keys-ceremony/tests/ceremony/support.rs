//! Shared helpers: the binary, repositories written through `nightlatch-repo`
//! (the library `nightlatch-sign` runs), python-tuf, SoftHSM2.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;
use nightlatch_repo::SystemClock;
use nightlatch_repo::envelope::{Release, sign_payload};
use nightlatch_repo::keysource::KeySpec;
use nightlatch_repo::params::{parse_model, parse_version};
use nightlatch_repo::repo::publish::PublishReport;
use nightlatch_repo::repo::refresh::RefreshReport;
use nightlatch_repo::repo::{Expiries, roots};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// `nightlatch-keys` with no passphrase or PIN in its environment.
pub fn nlk() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nightlatch-keys"));
    c.env_remove("NIGHTLATCH_KEY_PASSPHRASE")
        .env_remove("NIGHTLATCH_PKCS11_PIN")
        .env("COLUMNS", "1000")
        .env("NO_COLOR", "1");
    c
}

/// The python with python-tuf 7: `$NIGHTLATCH_PYTHON` or `.venv/bin/python`.
pub fn python() -> PathBuf {
    let p = std::env::var_os("NIGHTLATCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"));
    assert!(
        p.exists(),
        "python-tuf venv not found at {} (or $NIGHTLATCH_PYTHON): run bash .ci/setup",
        p.display()
    );
    p
}

/// Run the python-tuf client: refresh from `trusted_root`, download `targets`.
/// Ok(parsed stdout) on exit 0, Err(stderr) otherwise.
pub fn tuf_client(
    repo: &Path,
    trusted_root: &Path,
    cache: &Path,
    targets: &[&str],
) -> Result<serde_json::Value, String> {
    let out = StdCommand::new(python())
        .arg(workspace().join("tests/python/tuf_client.py"))
        .arg("--repo")
        .arg(repo)
        .arg("--trusted-root")
        .arg(trusted_root)
        .arg("--cache")
        .arg(cache)
        .args(targets)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// SoftHSM2 config made by .ci/setup: `$NIGHTLATCH_SOFTHSM2_CONF` or
/// `target/softhsm/softhsm2.conf` (token `nightlatch-test`, PIN 1234).
pub fn softhsm_conf() -> PathBuf {
    let p = std::env::var_os("NIGHTLATCH_SOFTHSM2_CONF")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/softhsm/softhsm2.conf"));
    assert!(
        p.exists(),
        "SoftHSM2 test token config not found at {} (or $NIGHTLATCH_SOFTHSM2_CONF): run bash .ci/setup",
        p.display()
    );
    p
}

/// The SoftHSM2 PKCS#11 module: `$NIGHTLATCH_PKCS11_MODULE` or Debian's path.
pub fn softhsm_module() -> PathBuf {
    let p = std::env::var_os("NIGHTLATCH_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"));
    assert!(
        p.exists(),
        "SoftHSM2 module {} not found: run bash .ci/setup",
        p.display()
    );
    p
}

/// Deterministic pseudo-random bytes (xorshift64).
pub fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// Sign a random image into an envelope with `key` (as `nightlatch-sign sign`).
pub fn envelope(dir: &Path, key: &Path, model: &str, version: &str, seed: u64) -> PathBuf {
    let release = Release {
        model: parse_model(model).unwrap(),
        version: parse_version(version).unwrap(),
        security_counter: 1,
    };
    let key = nightlatch_repo::keys::load_private_key(key).unwrap();
    let bytes = sign_payload(&release, &noise(3000, seed), &[key]).unwrap();
    let out = dir.join(format!("{model}-{version}.nlfw"));
    std::fs::write(&out, bytes).unwrap();
    out
}

/// `nightlatch-keys init --dev --out DIR`.
pub fn dev(dir: &Path) -> PathBuf {
    let out = dir.join("dev");
    nlk()
        .args(["init", "--dev", "--out"])
        .arg(&out)
        .assert()
        .success();
    out
}

/// A repository started from `root`, with `envelopes` published by
/// `targets_key` and refreshed with the dev online keys of `keys_dir`.
pub fn repo_with(
    dir: &Path,
    root: &Path,
    keys_dir: &Path,
    targets_key: &Path,
    envelopes: &[&Path],
) -> PathBuf {
    let repo = dir.join("repo");
    roots::init(&repo, root).unwrap();
    publish(&repo, targets_key, envelopes);
    refresh(&repo, keys_dir);
    repo
}

fn open(
    keys: &[&Path],
) -> nightlatch_repo::Result<Vec<Box<dyn nightlatch_repo::keysource::KeySource>>> {
    let specs: Vec<KeySpec> = keys
        .iter()
        .map(|k| KeySpec::File(k.to_path_buf()))
        .collect();
    nightlatch_repo::keys::open_key_sources(&specs)
}

/// `nightlatch-sign publish`: the result.
pub fn try_publish(
    repo: &Path,
    key: &Path,
    envelopes: &[&Path],
) -> nightlatch_repo::Result<PublishReport> {
    let files: Vec<PathBuf> = envelopes.iter().map(|e| e.to_path_buf()).collect();
    nightlatch_repo::repo::publish::publish(
        repo,
        &open(&[key])?,
        &files,
        &Expiries::default(),
        &SystemClock,
    )
}

/// `nightlatch-sign publish`, which must succeed.
pub fn publish(repo: &Path, key: &Path, envelopes: &[&Path]) {
    if let Err(e) = try_publish(repo, key, envelopes) {
        panic!("publish failed: {:?}", miette::Report::new(e));
    }
}

/// `nightlatch-sign repo refresh` with the online keys in `keys_dir`: the result.
pub fn try_refresh(repo: &Path, keys_dir: &Path) -> nightlatch_repo::Result<RefreshReport> {
    let keys = open(&[
        &keys_dir.join("snapshot.key"),
        &keys_dir.join("timestamp.key"),
    ])?;
    nightlatch_repo::repo::refresh::refresh(repo, &keys, &Expiries::default(), &SystemClock)
}

/// `nightlatch-sign repo refresh`, which must succeed.
pub fn refresh(repo: &Path, keys_dir: &Path) {
    if let Err(e) = try_refresh(repo, keys_dir) {
        panic!("refresh failed: {:?}", miette::Report::new(e));
    }
}

/// A plain key pair as `nightlatch-sign keygen --unencrypted` writes it
/// (OUT.key, OUT.pub): no passphrase to give.
pub fn plain_key(out: &Path) -> (PathBuf, PathBuf) {
    let key = nightlatch_repo::keys::generate();
    let (private, public) = (out.with_extension("key"), out.with_extension("pub"));
    let pem = nightlatch_repo::keys::private_key_pem(&key).unwrap();
    std::fs::write(&private, pem.as_bytes()).unwrap();
    let pem = nightlatch_repo::keys::public_key_pem(&key.verifying_key()).unwrap();
    std::fs::write(&public, pem).unwrap();
    (private, public)
}
