//! TUF repository writing: `nightlatch-sign publish` and `repo …`, read back
//! by python-tuf (needs `bash .ci/setup`), delegations per hardware model, and
//! every refusal.

// Test helpers outside `#[test]` functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;
use clap::Parser;
use nightlatch_repo::keysource::KeySpec;
use nightlatch_repo::metadata::{Signed, TargetFile, Targets};
use nightlatch_repo::transcript::Log;
use nightlatch_repo::{Clock, SystemClock};
use predicates::str::contains;
use tempfile::TempDir;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn nls() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nightlatch-sign"));
    c.env("NO_COLOR", "1");
    c
}

/// Run nightlatch-sign in-process, for the exact error.
fn nls_err<S: AsRef<OsStr>>(args: &[S]) -> String {
    let mut argv = vec![std::ffi::OsString::from("nightlatch-sign")];
    argv.extend(args.iter().map(|a| a.as_ref().to_owned()));
    let err = signing_tools::cmd::Cli::try_parse_from(argv)
        .unwrap()
        .run()
        .unwrap_err();
    let text = err.to_string();
    format!("{text} / {:?}", miette::Report::new(err))
}

fn python() -> PathBuf {
    let p = std::env::var_os("NIGHTLATCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"));
    assert!(
        p.exists(),
        "python-tuf venv not found at {}: run bash .ci/setup",
        p.display()
    );
    p
}

fn tuf_client(
    repo: &Path,
    root: &Path,
    cache: &Path,
    targets: &[&str],
) -> Result<serde_json::Value, String> {
    let out = StdCommand::new(python())
        .arg(workspace().join("tests/python/tuf_client.py"))
        .arg("--repo")
        .arg(repo)
        .arg("--trusted-root")
        .arg(root)
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

/// Dev keys and roots (as `nightlatch-keys init --dev` makes them), a started repository.
struct Fx {
    tmp: TempDir,
}

impl Fx {
    fn new() -> Self {
        let tmp = TempDir::new().unwrap();
        let dev = tmp.path().join("dev");
        nightlatch_repo::dev::make(&dev, false, &Log::default(), &SystemClock).unwrap();
        let fx = Self { tmp };
        nls()
            .args(["repo", "init", "--repo"])
            .arg(fx.repo())
            .arg(fx.root())
            .assert()
            .success();
        fx
    }
    fn p(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
    fn repo(&self) -> PathBuf {
        self.p("repo")
    }
    fn root(&self) -> PathBuf {
        self.p("dev/image/1.root.json")
    }
    fn key(&self, role: &str) -> PathBuf {
        self.p(&format!("dev/image/keys/{role}.key"))
    }
    fn keygen(&self, name: &str) -> (PathBuf, PathBuf) {
        nls()
            .args(["keygen", "--unencrypted"])
            .arg(self.p(name))
            .assert()
            .success();
        (
            self.p(&format!("{name}.key")),
            self.p(&format!("{name}.pub")),
        )
    }
    fn envelope(&self, key: &Path, model: &str, version: &str, byte: u8) -> PathBuf {
        let image = self.p(&format!("{model}-{version}-{byte}.bin"));
        std::fs::write(&image, vec![byte; 2000]).unwrap();
        let out = self.p(&format!("{model}-{version}-{byte}.nlfw"));
        nls()
            .args(["sign", "--key"])
            .arg(key)
            .args(["--model", model, "--version", version, "--counter", "3"])
            .arg(&image)
            .arg("-o")
            .arg(&out)
            .assert()
            .success();
        out
    }
    fn publish(&self, key: &Path, files: &[&Path]) -> assert_cmd::assert::Assert {
        nls()
            .args(["publish", "--repo"])
            .arg(self.repo())
            .arg("--key")
            .arg(key)
            .args(files)
            .assert()
    }
    fn refresh(&self) -> assert_cmd::assert::Assert {
        nls()
            .args(["repo", "refresh", "--repo"])
            .arg(self.repo())
            .arg("--snapshot-key")
            .arg(self.key("snapshot"))
            .arg("--timestamp-key")
            .arg(self.key("timestamp"))
            .assert()
    }
    fn delegate(&self, model: &str, public: &Path) {
        nls()
            .args(["repo", "delegate", "--repo"])
            .arg(self.repo())
            .arg("--key")
            .arg(self.key("targets"))
            .args(["--model", model, "--delegate-key"])
            .arg(public)
            .assert()
            .success()
            .stdout(contains(format!("delegated {model}/*")));
    }
}

#[test]
fn publish_refresh_and_python_tuf_downloads() {
    let fx = Fx::new();
    let fw = fx.envelope(&fx.key("targets"), "nl-lock-v2", "1.0.0", 1);
    fx.publish(&fx.key("targets"), &[&fw])
        .success()
        .stdout(contains("added      nl-lock-v2/1.0.0.nlfw"));
    // Not visible before refresh (no snapshot/timestamp yet).
    assert!(tuf_client(&fx.repo(), &fx.root(), &fx.p("c0"), &[]).is_err());
    fx.refresh()
        .success()
        .stdout(contains("snapshot version 1 (new), timestamp version 1"));
    let seen = tuf_client(
        &fx.repo(),
        &fx.root(),
        &fx.p("c1"),
        &["nl-lock-v2/1.0.0.nlfw"],
    )
    .unwrap();
    let custom = &seen["targets"]["nl-lock-v2/1.0.0.nlfw"]["custom"]["nightlatch"];
    assert_eq!(custom["kind"], "firmware");
    assert_eq!(custom["hardware_model"], "nl-lock-v2");
    assert_eq!(custom["version"], "1.0.0");
    assert_eq!(custom["security_counter"], 3);
    assert_eq!(seen["targets"]["nl-lock-v2/1.0.0.nlfw"]["length"], 3024);

    // Same file again: unchanged, no new targets version. Same name, other bytes: refused.
    fx.publish(&fx.key("targets"), &[&fw])
        .success()
        .stdout(contains("unchanged"));
    assert!(!fx.p("repo/metadata/2.targets.json").exists());
    let other = fx.envelope(&fx.key("targets"), "nl-lock-v2", "1.0.0", 2);
    fx.publish(&fx.key("targets"), &[&other])
        .failure()
        .stderr(contains("already published with different content"));

    // A second refresh renews only the timestamp.
    fx.refresh().success().stdout(contains(
        "snapshot version 1 (unchanged), timestamp version 2",
    ));
    // Expiries in whole seconds: timestamp one day, targets 90 days.
    for (file, days) in [
        ("timestamp.json", 1),
        ("1.targets.json", 90),
        ("1.snapshot.json", 7),
    ] {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(fx.p(&format!("repo/metadata/{file}"))).unwrap())
                .unwrap();
        let e = v["signed"]["expires"].as_str().unwrap();
        assert!(e.len() == 20 && e.ends_with('Z'), "{file}: {e}");
        let e = nightlatch_repo::metadata::Expiry::parse(e).unwrap();
        let want = SystemClock.expires_in(std::time::Duration::from_secs(days * 86_400));
        assert!(want.unix() - e.unix() < 120, "{file}");
    }
    let seen = tuf_client(&fx.repo(), &fx.root(), &fx.p("c1"), &[]).unwrap();
    assert_eq!(seen["timestamp_version"], 2);

    // A lost timestamp.json must not restart the timestamp at version 1.
    std::fs::remove_file(fx.p("repo/metadata/timestamp.json")).unwrap();
    fx.refresh()
        .failure()
        .stderr(contains("timestamp.json is missing"));
    assert!(!fx.p("repo/metadata/timestamp.json").exists());
}

#[test]
fn delegations_per_hardware_model() {
    let fx = Fx::new();
    let (a_key, a_pub) = fx.keygen("release-v2");
    let (b_key, b_pub) = fx.keygen("release-v3");
    fx.delegate("nl-lock-v2", &a_pub);
    fx.delegate("nl-lock-v3", &b_pub);
    let fw_a = fx.envelope(&a_key, "nl-lock-v2", "1.0.0", 1);
    let fw_b = fx.envelope(&b_key, "nl-lock-v3", "1.0.0", 2);
    // One model's key cannot publish for another, nor can the top-level key.
    fx.publish(&a_key, &[&fw_b])
        .failure()
        .stderr(contains("not a nl-lock-v3 key"));
    fx.publish(&fx.key("targets"), &[&fw_a])
        .failure()
        .stderr(contains("not a nl-lock-v2 key"));
    fx.publish(&a_key, &[&fw_a])
        .success()
        .stdout(contains("1.nl-lock-v2.json"));
    fx.publish(&b_key, &[&fw_b]).success();
    fx.refresh().success();
    let seen = tuf_client(
        &fx.repo(),
        &fx.root(),
        &fx.p("c"),
        &["nl-lock-v2/1.0.0.nlfw", "nl-lock-v3/1.0.0.nlfw"],
    )
    .unwrap();
    assert_eq!(
        seen["targets"]["nl-lock-v3/1.0.0.nlfw"]["custom"]["nightlatch"]["hardware_model"],
        "nl-lock-v3"
    );

    // A v2 release key that signs a v3 path anyway (forged metadata, not by our
    // tools): python-tuf does not trust the nl-lock-v2 role for nl-lock-v3/*.
    let path = fx.p("repo/metadata/2.nl-lock-v2.json");
    let mut forged = Signed::<Targets>::load(&fx.p("repo/metadata/1.nl-lock-v2.json"))
        .unwrap()
        .signed;
    forged.header.version = 2;
    let info = Signed::<Targets>::load(&fx.p("repo/metadata/1.nl-lock-v3.json"))
        .unwrap()
        .signed
        .targets["nl-lock-v3/1.0.0.nlfw"]
        .clone();
    let evil = TargetFile::new(info.length, info.hashes.clone(), None);
    forged.targets.insert("nl-lock-v3/6.6.6.nlfw".into(), evil);
    let mut signed = Signed::new(forged).unwrap();
    signed
        .sign_with(KeySpec::File(a_key.clone()).open().unwrap().as_ref(), &path)
        .unwrap();
    std::fs::write(&path, signed.to_bytes().unwrap()).unwrap();
    // Our tools refuse it too: a delegated target outside the role's paths.
    fx.refresh()
        .failure()
        .stderr(contains("outside the paths"))
        .stderr(contains("nl-lock-v3/6.6.6.nlfw"));
    let err = tuf_client(
        &fx.repo(),
        &fx.root(),
        &fx.p("c2"),
        &["nl-lock-v3/6.6.6.nlfw"],
    )
    .unwrap_err();
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn publish_refuses_tampered_targets() {
    let fx = Fx::new();
    let fw = fx.envelope(&fx.key("targets"), "nl-lock-v2", "1.0.0", 1);
    fx.publish(&fx.key("targets"), &[&fw])
        .success()
        .stdout(contains("signed     targets: nl-lock-v2/1.0.0.nlfw"));
    // Hand-edit 1.targets.json (a stolen server could): add a target with a
    // made-up hash and counter; the release key's signature no longer verifies.
    let path = fx.p("repo/metadata/1.targets.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    v["signed"]["targets"]["nl-lock-v2/6.6.6.nlfw"] = serde_json::json!({
        "length": 3024,
        "hashes": {"sha256": "66".repeat(32)},
        "custom": {"nightlatch": {"kind": "firmware", "hardware_model": "nl-lock-v2",
            "version": "6.6.6", "security_counter": 99}},
    });
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let before: Vec<_> = walk(&fx.repo());
    let next = fx.envelope(&fx.key("targets"), "nl-lock-v2", "1.0.1", 3);
    fx.publish(&fx.key("targets"), &[&next])
        .failure()
        .stderr(contains("refusing to sign"))
        .stderr(contains("1.targets.json"));
    let (_, pubkey) = fx.keygen("release-v2");
    nls()
        .args(["repo", "delegate", "--repo"])
        .arg(fx.repo())
        .arg("--key")
        .arg(fx.key("targets"))
        .args(["--model", "nl-lock-v2", "--delegate-key"])
        .arg(&pubkey)
        .assert()
        .failure()
        .stderr(contains("refusing to sign"));
    // Nothing written: no 2.targets.json, no target file.
    assert!(!fx.p("repo/metadata/2.targets.json").exists());
    assert_eq!(walk(&fx.repo()), before);

    // A broken root chain is refused too (1.root.json replaced by garbage).
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let fx2 = Fx::new();
    let fw2 = fx2.envelope(&fx2.key("targets"), "nl-lock-v2", "1.0.0", 1);
    let root1 = fx2.p("repo/metadata/1.root.json");
    let mut r: serde_json::Value = serde_json::from_slice(&std::fs::read(&root1).unwrap()).unwrap();
    r["signed"]["expires"] = serde_json::json!("2099-01-01T00:00:00Z");
    std::fs::write(&root1, serde_json::to_vec_pretty(&r).unwrap()).unwrap();
    fx2.publish(&fx2.key("targets"), &[&fw2])
        .failure()
        .stderr(contains("root chain"));
    assert!(!fx2.p("repo/metadata/1.targets.json").exists());
}

#[test]
fn upper_case_duplicate_root_key_is_refused() {
    // Root role [k, K-upper] threshold 2, signed once by k, the signature
    // copied under K's id: one key must not count twice.
    let fx = Fx::new();
    let key = KeySpec::File(fx.p("dev/image/keys/root-1.key"))
        .open()
        .unwrap();
    let lower = key.public().to_json();
    let mut upper = lower.clone();
    upper["keyval"]["public"] = lower["keyval"]["public"]
        .as_str()
        .unwrap()
        .to_uppercase()
        .into();
    let key_id = |v: &serde_json::Value| {
        use sha2::Digest;
        let text = nightlatch_repo::metadata::signed::canonical_json(v).unwrap();
        hex::encode(sha2::Sha256::digest(text))
    };
    let (k, big_k) = (key_id(&lower), key_id(&upper));
    assert_ne!(k, big_k);
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.root()).unwrap()).unwrap();
    v["signed"]["keys"][big_k.as_str()] = upper;
    v["signed"]["roles"]["root"] =
        serde_json::json!({"keyids": [k.as_str(), big_k.as_str()], "threshold": 2});
    let message = nightlatch_repo::metadata::signed::canonical_json(&v["signed"]).unwrap();
    let sig = hex::encode(key.sign(&message).unwrap());
    v["signatures"] = serde_json::json!([
        {"keyid": k.as_str(), "sig": sig},
        {"keyid": big_k.as_str(), "sig": sig},
    ]);
    let bad = fx.p("bad-1.root.json");
    std::fs::write(&bad, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    // What `nightlatch-keys status` and `verify-chain` read it with.
    let status = nightlatch_repo::status::load_with_previous(&bad, None).and_then(|(r, p)| {
        nightlatch_repo::status::root_status(&r, p.as_ref().map(|(_, p)| p), &SystemClock)
    });
    assert!(!status.expect_err("status").to_string().is_empty());
    let chain = nightlatch_repo::chain::verify_chain(std::slice::from_ref(&bad));
    assert!(!chain.expect_err("verify-chain").to_string().is_empty());
    nls()
        .args(["repo", "init", "--repo"])
        .arg(fx.p("repo-bad"))
        .arg(&bad)
        .assert()
        .failure()
        .stderr(contains("keyval.public is not 64 lower-case"));
}

#[test]
fn pins_are_never_echoed() {
    let fx = Fx::new();
    let fw = fx.envelope(&fx.key("targets"), "nl-lock-v2", "1.0.0", 1);
    for uri in [
        "pkcs11:object=a?pin-value=s3cret&bogus=1",
        "pkcs11:object=a?pin-value=s3cret%zz",
        "pkcs11:colour=red?pin-value=s3cret&pin-value=s3cret2",
    ] {
        let out = nls()
            .args(["publish", "--repo"])
            .arg(fx.repo())
            .args(["--key", uri])
            .arg(&fw)
            .assert()
            .failure();
        let out = out.get_output();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!all.contains("s3cret"), "{all}");
        assert!(all.contains("pkcs11"), "{all}");
        // As `nightlatch-keys sign --key URI` parses and opens it.
        let spec: KeySpec = uri.parse().unwrap();
        let err = nightlatch_repo::ceremony::sign_file(
            &fx.root(),
            None,
            &spec,
            &Log::default(),
            &SystemClock,
        )
        .unwrap_err();
        let e = format!("{:?}", miette::Report::new(err));
        assert!(!e.contains("s3cret"), "{e}");
    }
}

/// Every file under `dir`, sorted.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn refusals_below_threshold_and_wrong_keys() {
    let fx = Fx::new();
    let fw = fx.envelope(&fx.key("targets"), "nl-lock-v2", "1.0.0", 1);
    // Online keys cannot sign targets; the release key cannot sign snapshots.
    let e = nls_err(&[
        OsStr::new("publish"),
        OsStr::new("--repo"),
        fx.repo().as_os_str(),
        OsStr::new("--key"),
        fx.key("snapshot").as_os_str(),
        fw.as_os_str(),
    ]);
    assert!(e.contains("is not a targets key"), "{e}");
    fx.publish(&fx.key("targets"), &[&fw]).success();
    let e = nls_err(&[
        OsStr::new("repo"),
        OsStr::new("refresh"),
        OsStr::new("--repo"),
        fx.repo().as_os_str(),
        OsStr::new("--snapshot-key"),
        fx.key("targets").as_os_str(),
        OsStr::new("--timestamp-key"),
        fx.key("timestamp").as_os_str(),
    ]);
    assert!(e.contains("is not a snapshot or timestamp key"), "{e}");
    let e = nls_err(&[
        OsStr::new("repo"),
        OsStr::new("refresh"),
        OsStr::new("--repo"),
        fx.repo().as_os_str(),
        OsStr::new("--snapshot-key"),
        fx.key("timestamp").as_os_str(),
        OsStr::new("--timestamp-key"),
        fx.key("timestamp").as_os_str(),
    ]);
    assert!(
        e.contains("0 valid signature(s) by snapshot keys, 1 required"),
        "{e}"
    );
    assert!(
        !fx.p("repo/metadata/1.snapshot.json").exists(),
        "nothing written below threshold"
    );

    // A root below its threshold never starts a repository.
    let partial = fx.p("partial.json");
    let mut root = Signed::<nightlatch_repo::metadata::Root>::load(&fx.root()).unwrap();
    root.signatures.truncate(1);
    std::fs::write(&partial, root.to_bytes().unwrap()).unwrap();
    let e = nls_err(&[
        OsStr::new("repo"),
        OsStr::new("init"),
        OsStr::new("--repo"),
        fx.p("repo2").as_os_str(),
        partial.as_os_str(),
    ]);
    assert!(
        e.contains("1 valid signature(s) by root keys, 2 required"),
        "{e}"
    );
    // Nor is a root added out of order.
    let e = nls_err(&[
        OsStr::new("repo"),
        OsStr::new("add-root"),
        OsStr::new("--repo"),
        fx.repo().as_os_str(),
        fx.root().as_os_str(),
    ]);
    assert!(e.contains("expected version 2"), "{e}");
}

#[test]
fn hostile_files_are_refused_clearly() {
    let fx = Fx::new();
    let fw = fx.envelope(&fx.key("targets"), "nl-lock-v2", "1.0.0", 1);
    // A patch (or anything not an envelope) is refused until patches are supported.
    let patch = fx.p("delta.nlpatch");
    std::fs::write(&patch, b"NLDP\x01\x00not yet").unwrap();
    fx.publish(&fx.key("targets"), &[&patch])
        .failure()
        .code(1)
        .stderr(contains("not a firmware envelope"));
    // A truncated envelope, and one whose payload changed.
    let bytes = std::fs::read(&fw).unwrap();
    let cut = fx.p("cut.nlfw");
    std::fs::write(&cut, &bytes[..bytes.len() - 1]).unwrap();
    fx.publish(&fx.key("targets"), &[&cut])
        .failure()
        .stderr(contains("not a valid envelope"));
    let mut flipped = bytes.clone();
    *flipped.last_mut().unwrap() ^= 1;
    std::fs::write(&cut, &flipped).unwrap();
    fx.publish(&fx.key("targets"), &[&cut])
        .failure()
        .stderr(contains("not a valid envelope"));
    // Not a repository; a damaged metadata file; a bad key file.
    nls()
        .args(["publish", "--repo"])
        .arg(fx.p("nowhere"))
        .arg("--key")
        .arg(fx.key("targets"))
        .arg(&fw)
        .assert()
        .failure()
        .stderr(contains("not a TUF repository"));
    fx.publish(&fx.key("targets"), &[&fw]).success();
    std::fs::write(
        fx.p("repo/metadata/1.targets.json"),
        b"{\"signed\": {\"_type\": 7}}",
    )
    .unwrap();
    fx.publish(&fx.key("targets"), &[&fw])
        .failure()
        .stderr(contains("not valid targets metadata"));
    std::fs::write(fx.p("junk.key"), b"junk").unwrap();
    fx.publish(&fx.p("junk.key"), &[&fw])
        .failure()
        .stderr(contains("not a usable Ed25519 key"));
    std::fs::File::create(fx.p("repo/metadata/1.targets.json"))
        .unwrap()
        .set_len(17 * 1024 * 1024)
        .unwrap();
    fx.refresh().failure().stderr(contains("larger than"));
}

/// A hostile `nightlatch-server` for `publish --server`'s mirror: serves
/// the files of a local repository's `metadata/`, answers any other path
/// with junk (so a path the server made up would be written if it were
/// asked for), and records what it was asked.
struct HostileServer {
    files: std::collections::BTreeMap<String, Vec<u8>>,
    asked: std::cell::RefCell<Vec<String>>,
}

impl nightlatch_repo::repo::remote::Transport for HostileServer {
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, String> {
        self.asked.borrow_mut().push(path.to_owned());
        let name = path.strip_prefix("/repo/metadata/").unwrap_or(path);
        Ok(Some(
            self.files
                .get(name)
                .cloned()
                .unwrap_or_else(|| b"pwned".to_vec()),
        ))
    }
    fn put(&self, path: &str, _: &[u8]) -> Result<(), String> {
        Err(format!("read-only test server: PUT {path}"))
    }
}

/// Issue 13: `publish --server` turned role names from the server's
/// snapshot into local file names before checking anything. A stolen server
/// (it holds the online snapshot and timestamp keys, so its snapshot is
/// properly signed) lists hostile role names: each is refused with a clear
/// error, never asked for, and nothing is written outside the mirror's
/// metadata directory (nor anything but the genuine metadata inside it).
#[test]
fn mirror_refuses_hostile_role_names_from_the_server() {
    use nightlatch_repo::metadata::{MetaFile, Snapshot, Timestamp};
    use nightlatch_repo::repo::remote::mirror;

    let fx = Fx::new();
    let fw = fx.envelope(&fx.key("targets"), "nl-lock-v2", "1.0.0", 1);
    fx.publish(&fx.key("targets"), &[&fw]).success();
    fx.refresh().success();
    let meta = fx.repo().join("metadata");
    let served: std::collections::BTreeMap<String, Vec<u8>> = walk(&meta)
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap().to_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    let ts: Signed<Timestamp> = Signed::load(&meta.join("timestamp.json")).unwrap();
    let snap_version = ts.signed.snapshot_meta.version;
    let snap: Signed<Snapshot> =
        Signed::load(&meta.join(format!("{snap_version}.snapshot.json"))).unwrap();
    let open = |role: &str| KeySpec::File(fx.key(role)).open().unwrap();

    // The server's metadata, re-signed by its own online keys with `name`
    // listed in the snapshot (snapshot signed by `snapshot_key`).
    let hostile = |name: &str, snapshot_key: &str| {
        let mut s = snap.signed.clone();
        s.header.version = snap_version + 1;
        s.meta.insert(name.to_owned(), MetaFile::new(1));
        let snap_name = format!("{}.snapshot.json", s.header.version);
        let mut signed = Signed::new(s).unwrap();
        signed
            .sign_with(open(snapshot_key).as_ref(), Path::new(&snap_name))
            .unwrap();
        let mut t = ts.signed.clone();
        t.header.version += 1;
        t.snapshot_meta = MetaFile::new(snap_version + 1);
        let mut t = Signed::new(t).unwrap();
        t.sign_with(open("timestamp").as_ref(), Path::new("timestamp.json"))
            .unwrap();
        let mut files = served.clone();
        files.insert(snap_name, signed.to_bytes().unwrap());
        files.insert("timestamp.json".into(), t.to_bytes().unwrap());
        HostileServer {
            files,
            asked: Default::default(),
        }
    };

    let long = format!("{}.json", "a".repeat(65));
    let cases: [(&str, &str); 11] = [
        ("../../etc/x.json", "role name"),
        ("a/b.json", "role name"),
        ("/etc/x.json", "role name"),
        ("..\\..\\x.json", "role name"),
        ("a\0b.json", "role name"),
        (".hidden.json", "role name"),
        ("...json", "role name"),
        ("a..b.json", "\"..\""),
        ("root.json", "top-level role"),
        ("Upper.json", "role name"),
        (&long, "role name"),
    ];
    for (i, (name, why)) in cases.into_iter().enumerate() {
        let case = fx.p(&format!("case-{i}"));
        let dir = case.join("deep").join("mirror");
        let server = hostile(name, "snapshot");
        let err = mirror(&server, "test-server", &dir)
            .expect_err(name)
            .to_string();
        assert!(err.contains(why), "{name:?}: {err}");
        assert!(
            err.contains("refusing the server's metadata"),
            "{name:?}: {err}"
        );
        let role = name.trim_end_matches(".json");
        let asked = server.asked.borrow();
        assert!(
            asked.iter().all(|p| !p.contains(&format!(".{role}.json"))),
            "{name:?} was asked for: {asked:?}"
        );
        // Only the genuine metadata, and only in DIR/metadata.
        for p in walk(&case) {
            assert_eq!(p.parent(), Some(dir.join("metadata").as_path()), "{p:?}");
            let file = p.file_name().unwrap().to_str().unwrap();
            let ok = file == "timestamp.json"
                || ["root", "snapshot"].iter().any(|r| {
                    file.strip_suffix(&format!(".{r}.json"))
                        .is_some_and(|v| v.parse::<u64>().is_ok())
                });
            assert!(ok, "{name:?}: wrote {p:?}");
        }
    }

    // A snapshot not signed by the server root's snapshot key is refused
    // before any role it lists is used.
    let server = hostile("nl-other.json", "targets");
    let err = mirror(&server, "test-server", &fx.p("case-unsigned"))
        .expect_err("unsigned snapshot")
        .to_string();
    assert!(err.contains("does not verify"), "{err}");
    assert!(
        server
            .asked
            .borrow()
            .iter()
            .all(|p| !p.contains("nl-other")),
        "{:?}",
        server.asked.borrow()
    );

    // The genuine repository still mirrors.
    let server = HostileServer {
        files: served.clone(),
        asked: Default::default(),
    };
    mirror(&server, "test-server", &fx.p("case-genuine")).unwrap();
    assert!(
        fx.p("case-genuine/metadata/1.targets.json").exists(),
        "{:?}",
        walk(&fx.p("case-genuine"))
    );
}
