//! Shared helpers: the binary, in-process `nightlatch-sign`, python-tuf, SoftHSM2.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;
use clap::Parser;

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

/// Run `nightlatch-sign ARGS` in this process (its library's CLI).
pub fn nls<I, S>(args: I) -> Result<(), signing_tools::Error>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut argv = vec![std::ffi::OsString::from("nightlatch-sign")];
    argv.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
    signing_tools::cmd::Cli::try_parse_from(argv).unwrap().run()
}

/// Like [`nls`], panicking with the error.
pub fn nls_ok<I, S>(args: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    if let Err(e) = nls(args) {
        panic!("nightlatch-sign failed: {:?}", miette::Report::new(e));
    }
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

/// Sign a random image into an envelope with `key` (in-process nightlatch-sign).
pub fn envelope(dir: &Path, key: &Path, model: &str, version: &str, seed: u64) -> PathBuf {
    let image = dir.join(format!("{model}-{version}.bin"));
    std::fs::write(&image, noise(3000, seed)).unwrap();
    let out = dir.join(format!("{model}-{version}.nlfw"));
    nls_ok([
        OsStr::new("sign"),
        OsStr::new("--key"),
        key.as_os_str(),
        OsStr::new("--model"),
        OsStr::new(model),
        OsStr::new("--version"),
        OsStr::new(version),
        OsStr::new("--counter"),
        OsStr::new("1"),
        image.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ]);
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
    nls_ok([
        OsStr::new("repo"),
        OsStr::new("init"),
        OsStr::new("--repo"),
        repo.as_os_str(),
        root.as_os_str(),
    ]);
    publish(&repo, targets_key, envelopes);
    refresh(&repo, keys_dir);
    repo
}

/// `nightlatch-sign publish`.
pub fn publish(repo: &Path, key: &Path, envelopes: &[&Path]) {
    let mut args = vec![
        OsStr::new("publish"),
        OsStr::new("--repo"),
        repo.as_os_str(),
        OsStr::new("--key"),
        key.as_os_str(),
    ];
    args.extend(envelopes.iter().map(|e| e.as_os_str()));
    nls_ok(args);
}

/// `nightlatch-sign repo refresh` with the online keys in `keys_dir`.
pub fn refresh(repo: &Path, keys_dir: &Path) {
    let snap = keys_dir.join("snapshot.key");
    let ts = keys_dir.join("timestamp.key");
    nls_ok([
        OsStr::new("repo"),
        OsStr::new("refresh"),
        OsStr::new("--repo"),
        repo.as_os_str(),
        OsStr::new("--snapshot-key"),
        snap.as_os_str(),
        OsStr::new("--timestamp-key"),
        ts.as_os_str(),
    ]);
}

/// A plain key pair made by `nightlatch-sign keygen --unencrypted` (OUT.key,
/// OUT.pub): these in-process calls have no passphrase to give.
pub fn plain_key(out: &Path) -> (PathBuf, PathBuf) {
    nls_ok([
        OsStr::new("keygen"),
        OsStr::new("--unencrypted"),
        out.as_os_str(),
    ]);
    (out.with_extension("key"), out.with_extension("pub"))
}
