//! `nightlatch-sim tuf-client` (the lock's TUF client, `lock_app::tuf`)
//! reading repositories made by python-tuf (`tests/python/make_tuf_repo.py`,
//! needs `bash .ci/setup`) and by our own tools (`nightlatch-keys init
//! --dev`, `nightlatch-sign sign/publish/repo`), over `file://` and
//! `http://`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;
use clap::Parser;
use predicates::str::contains;
use tempfile::TempDir;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
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

fn sim() -> Command {
    let mut c = Command::cargo_bin("nightlatch-sim").unwrap();
    c.env("NO_COLOR", "1");
    c
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// `tuf-client` with a metadata dir and (optionally) URLs.
struct Client {
    md: PathBuf,
    metadata_url: String,
    target_url: String,
    out: PathBuf,
}

impl Client {
    fn new(tmp: &Path, name: &str, repo: &Path) -> Self {
        Self {
            md: tmp.join(format!("{name}-md")),
            metadata_url: file_url(&repo.join("metadata")),
            target_url: file_url(&repo.join("targets")),
            out: tmp.join(format!("{name}-out")),
        }
    }
    fn init(&self, root: &Path) -> assert_cmd::assert::Assert {
        sim()
            .args(["tuf-client", "--metadata-dir"])
            .arg(&self.md)
            .arg("init")
            .arg(root)
            .assert()
    }
    fn refresh(&self) -> assert_cmd::assert::Assert {
        sim()
            .args(["tuf-client", "--json", "--metadata-dir"])
            .arg(&self.md)
            .args(["--metadata-url", &self.metadata_url, "refresh"])
            .assert()
    }
    fn download(&self, name: &str) -> assert_cmd::assert::Assert {
        sim()
            .args(["tuf-client", "--json", "--metadata-dir"])
            .arg(&self.md)
            .args(["--metadata-url", &self.metadata_url])
            .args(["--target-name", name, "--target-base-url", &self.target_url])
            .arg("--target-dir")
            .arg(&self.out)
            .arg("download")
            .assert()
    }
}

fn json_of(a: &assert_cmd::assert::Assert) -> serde_json::Value {
    serde_json::from_slice(&a.get_output().stdout).unwrap()
}

// ------------------------------------------------------------------ python-tuf

/// A repository written by python-tuf; its description (names, lengths,
/// hashes) as the script prints it.
fn python_repo(dir: &Path) -> serde_json::Value {
    python_repo_with(dir, &[])
}

fn python_repo_with(dir: &Path, extra: &[&str]) -> serde_json::Value {
    let out = StdCommand::new(python())
        .arg(workspace().join("tests/python/make_tuf_repo.py"))
        .arg("--out")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "make_tuf_repo.py failed (run bash .ci/setup?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// python-tuf's own client (`tests/python/tuf_client.py`) refreshes `repo`
/// from its `1.root.json` and downloads `target`; the test fails if it
/// refuses.
fn python_client_downloads(repo: &Path, cache: &Path, target: &str) {
    let py = StdCommand::new(python())
        .arg(workspace().join("tests/python/tuf_client.py"))
        .arg("--repo")
        .arg(repo)
        .arg("--trusted-root")
        .arg(repo.join("metadata/1.root.json"))
        .arg("--cache")
        .arg(cache)
        .arg(target)
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
}

#[test]
fn reads_a_python_tuf_repository_and_downloads_verified_targets() {
    let tmp = TempDir::new().unwrap();
    let repo = tmp.path().join("repo");
    let made = python_repo(&repo);
    let c = Client::new(tmp.path(), "c", &repo);
    c.init(&repo.join("metadata/1.root.json"))
        .success()
        .stdout(contains("trusting root version 1"));
    let r = c.refresh().success();
    let v = json_of(&r);
    assert_eq!(v["root_version"], 2, "follows 1.root.json → 2.root.json");
    assert_eq!(v["timestamp_version"], 1);
    assert_eq!(v["targets_version"], 1);

    for name in ["nl-lock-v2/2.0.0.nlfw", "files/hello.txt"] {
        let d = c.download(name).success();
        let v = json_of(&d);
        let want = &made["targets"][name];
        assert_eq!(v["target"]["length"], want["length"]);
        assert_eq!(v["target"]["sha256"], want["sha256"]);
        let bytes = std::fs::read(c.out.join(name)).unwrap();
        assert_eq!(bytes.len() as u64, want["length"].as_u64().unwrap());
    }
    // Delegated through the terminating role (whose key id is not a hash
    // of its key: listed key ids are trusted as they are).
    let d = c.download("nl-lock-v2/2.0.0.nlfw").success();
    let v = json_of(&d);
    assert_eq!(v["target"]["role"], "firmware");
    assert_eq!(v["target"]["custom"]["nightlatch"]["security_counter"], 4);
    // The bytes are those of the file python-tuf listed.
    let bytes = std::fs::read(c.out.join("nl-lock-v2/2.0.0.nlfw")).unwrap();
    let expected: Vec<u8> = (0..=255u8).collect::<Vec<_>>().repeat(20);
    assert_eq!(bytes, expected);
    // The trusted metadata is in the metadata dir, root updated to v2.
    let root: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.md.join("root.json")).unwrap()).unwrap();
    assert_eq!(root["signed"]["version"], 2);
    assert!(c.md.join("firmware.json").exists());

    // Python-tuf's own client agrees on the same repository.
    python_client_downloads(&repo, &tmp.path().join("py-cache"), "nl-lock-v2/2.0.0.nlfw");
}

#[test]
fn reads_a_python_tuf_repository_signed_with_ecdsa_and_rsa_keys() {
    // Root 1 is Ed25519; root 2 rotates the root to an ECDSA P-256 and an
    // RSA-PSS key and hands timestamp (ECDSA), snapshot (RSA-PSS), targets
    // (RSA PKCS#1 v1.5) and the firmware role (ECDSA under the deprecated
    // keytype) to keys securesystemslib's CryptoSigner generated.
    let tmp = TempDir::new().unwrap();
    let repo = tmp.path().join("repo");
    let made = python_repo_with(&repo, &["--mixed"]);
    let keys = &made["keys"];
    let pair = |t: &str, s: &str| serde_json::json!([t, s]);
    assert_eq!(
        keys["root"],
        serde_json::json!([
            pair("ecdsa", "ecdsa-sha2-nistp256"),
            pair("rsa", "rsassa-pss-sha256")
        ])
    );
    assert_eq!(keys["timestamp"][0], pair("ecdsa", "ecdsa-sha2-nistp256"));
    assert_eq!(keys["snapshot"][0], pair("rsa", "rsassa-pss-sha256"));
    assert_eq!(keys["targets"][0], pair("rsa", "rsa-pkcs1v15-sha256"));
    assert_eq!(
        keys["firmware"][0],
        pair("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256")
    );

    let c = Client::new(tmp.path(), "c", &repo);
    c.init(&repo.join("metadata/1.root.json"))
        .success()
        .stdout(contains("trusting root version 1"));
    let v = json_of(&c.refresh().success());
    assert_eq!(v["root_version"], 2, "1.root.json (ed25519) → 2.root.json");
    for name in ["nl-lock-v2/2.0.0.nlfw", "files/hello.txt"] {
        let v = json_of(&c.download(name).success());
        assert_eq!(v["target"]["sha256"], made["targets"][name]["sha256"]);
        assert_eq!(v["target"]["length"], made["targets"][name]["length"]);
    }
    assert_eq!(
        json_of(&c.download("nl-lock-v2/2.0.0.nlfw").success())["target"]["role"],
        "firmware"
    );
    // python-tuf's own client reads the same repository.
    python_client_downloads(&repo, &tmp.path().join("py-cache"), "nl-lock-v2/2.0.0.nlfw");

    // A broken signature by each new key type is refused by a fresh client:
    // timestamp (ECDSA), snapshot (RSA-PSS), targets (RSA PKCS#1 v1.5),
    // root 2 (one of its ECDSA + RSA pair).
    let meta = repo.join("metadata");
    let cases = [
        (
            "timestamp.json",
            "timestamp metadata has 0 valid signature(s), 1 required",
        ),
        (
            "1.snapshot.json",
            "snapshot metadata has 0 valid signature(s), 1 required",
        ),
        (
            "1.targets.json",
            "targets metadata has 0 valid signature(s), 1 required",
        ),
        (
            "1.firmware.json",
            "delegated targets metadata has 0 valid signature(s), 1 required",
        ),
    ];
    for (i, (file, error)) in cases.iter().enumerate() {
        let path = meta.join(file);
        let good = std::fs::read(&path).unwrap();
        let mut md: serde_json::Value = serde_json::from_slice(&good).unwrap();
        let sig = md["signatures"][0]["sig"].as_str().unwrap().to_owned();
        // Flip one nibble in the middle of the signature.
        let mut chars: Vec<char> = sig.chars().collect();
        let mid = chars.len() / 2;
        chars[mid] = if chars[mid] == '0' { '1' } else { '0' };
        md["signatures"][0]["sig"] = chars.into_iter().collect::<String>().into();
        std::fs::write(&path, serde_json::to_vec_pretty(&md).unwrap()).unwrap();
        let c = Client::new(tmp.path(), &format!("bad{i}"), &repo);
        c.init(&meta.join("1.root.json")).success();
        c.download("nl-lock-v2/2.0.0.nlfw")
            .code(1)
            .stderr(contains(*error));
        std::fs::write(&path, good).unwrap();
    }
    // Root 2 needs both new root keys (2 of 2): dropping the RSA one's
    // signature breaks the chain.
    let path = meta.join("2.root.json");
    let mut root2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let rsa_id = root2["signed"]["roles"]["root"]["keyids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .find(|id| root2["signed"]["keys"][id]["keytype"] == "rsa")
        .unwrap();
    root2["signatures"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["keyid"] != rsa_id.as_str());
    std::fs::write(&path, serde_json::to_vec(&root2).unwrap()).unwrap();
    let c = Client::new(tmp.path(), "no-rsa", &repo);
    c.init(&meta.join("1.root.json")).success();
    c.refresh().code(1).stderr(contains(
        "root metadata has 1 valid signature(s), 2 required",
    ));
}

#[test]
fn reads_a_python_tuf_repository_without_consistent_snapshots() {
    // snapshot.json / targets.json / firmware.json, plain target names,
    // lengths and hashes in the timestamp and snapshot entries.
    let tmp = TempDir::new().unwrap();
    let repo = tmp.path().join("repo");
    let made = python_repo_with(&repo, &["--plain"]);
    assert!(repo.join("metadata/snapshot.json").exists());
    let c = Client::new(tmp.path(), "c", &repo);
    c.init(&repo.join("metadata/1.root.json")).success();
    for name in ["nl-lock-v2/2.0.0.nlfw", "files/hello.txt"] {
        let v = json_of(&c.download(name).success());
        assert_eq!(v["root_version"], 2);
        assert_eq!(v["target"]["sha256"], made["targets"][name]["sha256"]);
    }
    // The snapshot's signed hash protects targets.json: other bytes under
    // the same version are refused before any signature is checked.
    let path = repo.join("metadata/targets.json");
    let text = std::fs::read_to_string(&path).unwrap();
    // Same length, same JSON, other bytes.
    std::fs::write(&path, text.replacen("\n ", "\n\t", 1)).unwrap();
    let c2 = Client::new(tmp.path(), "c2", &repo);
    c2.init(&repo.join("metadata/1.root.json")).success();
    c2.refresh().code(1).stderr(contains(
        "targets metadata hash differs from the signed hash",
    ));
}

#[test]
fn python_tuf_repository_tampering_is_refused_with_exit_code_1() {
    let tmp = TempDir::new().unwrap();
    let repo = tmp.path().join("repo");
    python_repo(&repo);
    // A tampered target: same name and length, other bytes.
    for entry in std::fs::read_dir(repo.join("targets/nl-lock-v2")).unwrap() {
        let p = entry.unwrap().path();
        let mut b = std::fs::read(&p).unwrap();
        b[0] ^= 0xff;
        std::fs::write(&p, b).unwrap();
    }
    let c = Client::new(tmp.path(), "c", &repo);
    c.init(&repo.join("metadata/1.root.json")).success();
    c.download("nl-lock-v2/2.0.0.nlfw")
        .code(1)
        .stderr(contains("target hash differs from its signed hash"))
        .stderr(contains("help:"));
    assert!(!c.out.join("nl-lock-v2/2.0.0.nlfw").exists());
    // A target nobody listed.
    c.download("nl-lock-v2/9.9.9.nlfw")
        .code(1)
        .stderr(contains("not in the repository"));
    // Expired metadata (the repository's expiries are 7 days out).
    sim()
        .args([
            "tuf-client",
            "--now",
            "2099-01-01T00:00:00Z",
            "--metadata-dir",
        ])
        .arg(&c.md)
        .args(["--metadata-url", &c.metadata_url, "refresh"])
        .assert()
        .code(1)
        .stderr(contains("expired"));
    // A second root with a broken chain: 3.root.json with a bad signature.
    let mut r2: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo.join("metadata/2.root.json")).unwrap()).unwrap();
    r2["signed"]["version"] = 3.into();
    std::fs::write(
        repo.join("metadata/3.root.json"),
        serde_json::to_vec(&r2).unwrap(),
    )
    .unwrap();
    c.refresh().code(1).stderr(contains(
        "root metadata has 0 valid signature(s), 2 required",
    ));
}

#[test]
fn usage_errors_exit_non_zero() {
    let tmp = TempDir::new().unwrap();
    let md = tmp.path().join("md");
    sim()
        .args(["tuf-client", "--metadata-dir"])
        .arg(&md)
        .args(["--metadata-url", "file:///nonexistent", "refresh"])
        .assert()
        .code(1)
        .stderr(contains("no trusted root"))
        .stderr(contains("init ROOT.json"));
    sim()
        .args(["tuf-client", "--metadata-dir"])
        .arg(&md)
        .arg("refresh")
        .assert()
        .code(1)
        .stderr(contains("refresh needs --metadata-url"));
    let bad_root = tmp.path().join("bad.json");
    std::fs::write(&bad_root, b"{not json").unwrap();
    sim()
        .args(["tuf-client", "--metadata-dir"])
        .arg(&md)
        .arg("init")
        .arg(&bad_root)
        .assert()
        .code(1)
        .stderr(contains("root metadata is malformed"));
    sim().args(["tuf-client", "bogus"]).assert().code(2);
}

// ------------------------------------------------------------------ over HTTP

/// Serve `dir` over HTTP/1.1 on loopback (GET only, 404 when missing) from
/// a background thread; the base URL.
fn serve(dir: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).map_or(true, |n| n == 0) || h == "\r\n" {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let file = dir.join(path.trim_start_matches('/'));
            let (status, body) = match std::fs::read(&file) {
                Ok(b) if !path.contains("..") => ("200 OK", b),
                _ => ("404 Not Found", b"not found".to_vec()),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}")
}

#[test]
fn reads_a_python_tuf_repository_over_http() {
    let tmp = TempDir::new().unwrap();
    let repo = tmp.path().join("repo");
    let made = python_repo(&repo);
    let base = serve(repo.clone());
    let mut c = Client::new(tmp.path(), "h", &repo);
    c.metadata_url = format!("{base}/metadata/");
    c.target_url = format!("{base}/targets");
    c.init(&repo.join("metadata/1.root.json")).success();
    let v = json_of(&c.download("nl-lock-v2/2.0.0.nlfw").success());
    assert_eq!(v["root_version"], 2);
    assert_eq!(
        v["target"]["sha256"],
        made["targets"]["nl-lock-v2/2.0.0.nlfw"]["sha256"]
    );
    // An oversized timestamp over HTTP: the read stops at the limit.
    std::fs::write(repo.join("metadata/timestamp.json"), vec![b' '; 100_000]).unwrap();
    c.refresh()
        .code(1)
        .stderr(contains("timestamp metadata exceeds its size limit"));
    // A missing timestamp over HTTP: 404 → partial bundle.
    std::fs::remove_file(repo.join("metadata/timestamp.json")).unwrap();
    c.refresh().code(1).stderr(contains(
        "timestamp metadata is missing from the repository",
    ));
}

// ------------------------------------------------------------- our own tools

fn keys(args: &[&str]) {
    keys_ceremony::cmd::Cli::try_parse_from(
        std::iter::once("nightlatch-keys").chain(args.iter().copied()),
    )
    .unwrap()
    .run()
    .unwrap();
}

fn sign_tool(args: &[&str]) {
    signing_tools::cmd::Cli::try_parse_from(
        std::iter::once("nightlatch-sign").chain(args.iter().copied()),
    )
    .unwrap()
    .run()
    .unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn reads_a_repository_made_by_nightlatch_keys_and_nightlatch_sign() {
    let tmp = TempDir::new().unwrap();
    let t = tmp.path();
    let dev = t.join("dev");
    let repo = t.join("repo");
    let key = |role: &str| dev.join(format!("image/keys/{role}.key"));
    keys(&["init", "--dev", "--out", s(&dev)]);
    let root = dev.join("image/1.root.json");
    sign_tool(&["repo", "init", "--repo", s(&repo), s(&root)]);

    // A per-model release key, delegated for nl-lock-v2/*. Unencrypted: these
    // in-process calls have no passphrase to give (and must not prompt).
    let model_key = t.join("model");
    sign_tool(&["keygen", "--unencrypted", s(&model_key)]);
    let model_pub = t.join("model.pub");
    let model_priv = t.join("model.key");
    sign_tool(&[
        "repo",
        "delegate",
        "--repo",
        s(&repo),
        "--key",
        s(&key("targets")),
        "--model",
        "nl-lock-v2",
        "--delegate-key",
        s(&model_pub),
    ]);

    let image = t.join("fw.bin");
    std::fs::write(&image, vec![7u8; 3000]).unwrap();
    let envelope = t.join("fw.nlfw");
    sign_tool(&[
        "sign",
        "--key",
        s(&model_priv),
        "--model",
        "nl-lock-v2",
        "--version",
        "1.2.3",
        "--counter",
        "5",
        s(&image),
        "-o",
        s(&envelope),
    ]);
    sign_tool(&[
        "publish",
        "--repo",
        s(&repo),
        "--key",
        s(&model_priv),
        s(&envelope),
    ]);
    sign_tool(&[
        "repo",
        "refresh",
        "--repo",
        s(&repo),
        "--snapshot-key",
        s(&key("snapshot")),
        "--timestamp-key",
        s(&key("timestamp")),
    ]);

    let c = Client::new(t, "c", &repo);
    c.init(&root).success();
    let v = json_of(&c.download("nl-lock-v2/1.2.3.nlfw").success());
    assert_eq!(v["target"]["role"], "nl-lock-v2");
    let nl = &v["target"]["custom"]["nightlatch"];
    assert_eq!(nl["kind"], "firmware");
    assert_eq!(nl["hardware_model"], "nl-lock-v2");
    assert_eq!(nl["version"], "1.2.3");
    assert_eq!(nl["security_counter"], 5);
    assert_eq!(nl["payload_length"], 3000);
    let got = std::fs::read(c.out.join("nl-lock-v2/1.2.3.nlfw")).unwrap();
    assert_eq!(got, std::fs::read(&envelope).unwrap());

    let first_timestamp = std::fs::read(repo.join("metadata/timestamp.json")).unwrap();

    // A second release and refresh: the client moves forward from its
    // stored metadata.
    std::fs::write(&image, vec![8u8; 3100]).unwrap();
    let envelope2 = t.join("fw2.nlfw");
    sign_tool(&[
        "sign",
        "--key",
        s(&model_priv),
        "--model",
        "nl-lock-v2",
        "--version",
        "1.2.4",
        "--counter",
        "5",
        s(&image),
        "-o",
        s(&envelope2),
    ]);
    sign_tool(&[
        "publish",
        "--repo",
        s(&repo),
        "--key",
        s(&model_priv),
        s(&envelope2),
    ]);
    sign_tool(&[
        "repo",
        "refresh",
        "--repo",
        s(&repo),
        "--snapshot-key",
        s(&key("snapshot")),
        "--timestamp-key",
        s(&key("timestamp")),
    ]);
    let v = json_of(&c.download("nl-lock-v2/1.2.4.nlfw").success());
    assert_eq!(v["snapshot_version"], 2);
    assert_eq!(v["target"]["custom"]["nightlatch"]["version"], "1.2.4");

    // Serving the first release's timestamp again (a rollback) is refused.
    std::fs::write(repo.join("metadata/timestamp.json"), first_timestamp).unwrap();
    c.refresh().code(1).stderr(contains(
        "rollback of timestamp: trusted version 2, offered 1",
    ));
}

#[test]
fn follows_a_root_rotation_made_by_nightlatch_keys() {
    // v1 → v2: root-3 replaced by a new key and the timestamp key replaced;
    // the client follows the chain and accepts timestamps signed by the new
    // key only.
    let tmp = TempDir::new().unwrap();
    let t = tmp.path();
    let dev = t.join("dev");
    let repo = t.join("repo");
    let keys_dir = dev.join("image/keys");
    let key = |name: &str| keys_dir.join(name);
    keys(&["init", "--dev", "--out", s(&dev)]);
    let v1 = dev.join("image/1.root.json");
    sign_tool(&["repo", "init", "--repo", s(&repo), s(&v1)]);
    let image = t.join("fw.bin");
    std::fs::write(&image, vec![1u8; 2500]).unwrap();
    let fw1 = t.join("fw1.nlfw");
    sign_tool(&[
        "sign",
        "--key",
        s(&key("targets.key")),
        "--model",
        "nl-lock-v2",
        "--version",
        "1.0.0",
        "--counter",
        "1",
        s(&image),
        "-o",
        s(&fw1),
    ]);
    sign_tool(&[
        "publish",
        "--repo",
        s(&repo),
        "--key",
        s(&key("targets.key")),
        s(&fw1),
    ]);
    let refresh = |ts_key: &Path| {
        sign_tool(&[
            "repo",
            "refresh",
            "--repo",
            s(&repo),
            "--snapshot-key",
            s(&key("snapshot.key")),
            "--timestamp-key",
            s(ts_key),
        ]);
    };
    refresh(&key("timestamp.key"));
    let c = Client::new(t, "c", &repo);
    c.init(&v1).success();
    assert_eq!(json_of(&c.refresh().success())["root_version"], 1);

    let root4 = t.join("root-4");
    let ts2 = t.join("timestamp-2");
    // Throwaway test keys: unencrypted (no passphrase in process, no prompt).
    sign_tool(&["keygen", "--unencrypted", s(&root4)]);
    sign_tool(&["keygen", "--unencrypted", s(&ts2)]);
    let revoke_root = format!("--revoke=root={}", s(&key("root-3.pub")));
    let add_root = format!("--add=root={}", s(&t.join("root-4.pub")));
    let revoke_ts = format!("--revoke=timestamp={}", s(&key("timestamp.pub")));
    let add_ts = format!("--add=timestamp={}", s(&t.join("timestamp-2.pub")));
    keys(&[
        "rotate",
        "--from",
        s(&v1),
        &revoke_root,
        &add_root,
        &revoke_ts,
        &add_ts,
    ]);
    let v2 = dev.join("image/2.root.json");
    for k in ["root-1.key", "root-2.key"] {
        keys(&["sign", "--key", s(&key(k)), s(&v2)]);
    }
    sign_tool(&["repo", "add-root", "--repo", s(&repo), s(&v2)]);
    refresh(&t.join("timestamp-2.key"));

    let v = json_of(&c.download("nl-lock-v2/1.0.0.nlfw").success());
    assert_eq!(v["root_version"], 2);
    // A fresh device provisioned with v1 also walks to v2.
    let c2 = Client::new(t, "c2", &repo);
    c2.init(&v1).success();
    assert_eq!(json_of(&c2.refresh().success())["root_version"], 2);

    // A timestamp without a valid signature by the new key is refused.
    sign_tool(&[
        "repo",
        "refresh",
        "--repo",
        s(&repo),
        "--snapshot-key",
        s(&key("snapshot.key")),
        "--timestamp-key",
        s(&t.join("timestamp-2.key")),
    ]);
    let ts_path = repo.join("metadata/timestamp.json");
    let mut ts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&ts_path).unwrap()).unwrap();
    ts["signed"]["version"] = (ts["signed"]["version"].as_u64().unwrap() + 1).into();
    ts["signatures"] = serde_json::json!([]);
    std::fs::write(&ts_path, serde_json::to_vec(&ts).unwrap()).unwrap();
    c.refresh().code(1).stderr(contains(
        "timestamp metadata has 0 valid signature(s), 1 required",
    ));
}

/// An RSA key made by OpenSSL (what a ceremony with an RSA HSM export or an
/// existing PKI hands over): `OUT.key` (PKCS#8) and `OUT.pub` (SPKI).
fn openssl_rsa_key(out: &Path) -> (PathBuf, PathBuf) {
    let (private, public) = (out.with_extension("key"), out.with_extension("pub"));
    let gen_key = StdCommand::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&private)
        .output()
        .expect("openssl (installed by .ci/setup)");
    assert!(gen_key.status.success(), "openssl genpkey failed");
    let pubout = StdCommand::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .output()
        .unwrap();
    assert!(pubout.status.success(), "openssl pkey -pubout failed");
    (private, public)
}

#[test]
fn python_tuf_and_the_lock_follow_a_mixed_key_type_rotation_made_by_our_tools() {
    // v1 (all Ed25519, from `nightlatch-keys init --dev`) → v2 where a root
    // key is ECDSA P-256, the targets key RSA (PSS) and the snapshot key
    // ECDSA. v2 meets its own root threshold only with the ECDSA key's
    // signature. Both python-tuf and the lock's client walk v1 → v2 and
    // download a release signed under the new keys.
    let tmp = TempDir::new().unwrap();
    let t = tmp.path();
    let dev = t.join("dev");
    let repo = t.join("repo");
    let keys_dir = dev.join("image/keys");
    let key = |name: &str| keys_dir.join(name);
    keys(&["init", "--dev", "--out", s(&dev)]);
    let v1 = dev.join("image/1.root.json");
    sign_tool(&["repo", "init", "--repo", s(&repo), s(&v1)]);
    let image = t.join("fw.bin");
    std::fs::write(&image, vec![3u8; 2200]).unwrap();
    let envelope = |version: &str, out: &Path| {
        sign_tool(&[
            "sign",
            "--key",
            s(&key("targets.key")),
            "--model",
            "nl-lock-v2",
            "--version",
            version,
            "--counter",
            "1",
            s(&image),
            "-o",
            s(out),
        ]);
    };
    let fw1 = t.join("fw1.nlfw");
    envelope("1.0.0", &fw1);
    sign_tool(&[
        "publish",
        "--repo",
        s(&repo),
        "--key",
        s(&key("targets.key")),
        s(&fw1),
    ]);
    let refresh = |snapshot: &Path| {
        sign_tool(&[
            "repo",
            "refresh",
            "--repo",
            s(&repo),
            "--snapshot-key",
            s(snapshot),
            "--timestamp-key",
            s(&key("timestamp.key")),
        ]);
    };
    refresh(&key("snapshot.key"));
    let c = Client::new(t, "c", &repo);
    c.init(&v1).success();
    assert_eq!(json_of(&c.refresh().success())["root_version"], 1);

    // New keys: ECDSA from our own keygen (a throwaway, unencrypted: no
    // passphrase in process), RSA from OpenSSL.
    let root4 = t.join("root-4");
    let snapshot2 = t.join("snapshot-2");
    sign_tool(&["keygen", "--unencrypted", "--type", "ecdsa", s(&root4)]);
    sign_tool(&["keygen", "--unencrypted", "--type", "ecdsa", s(&snapshot2)]);
    let (targets2, targets2_pub) = openssl_rsa_key(&t.join("targets-2"));
    keys(&[
        "rotate",
        "--from",
        s(&v1),
        &format!("--revoke=root={}", s(&key("root-3.pub"))),
        &format!("--add=root={}", s(&root4.with_extension("pub"))),
        &format!("--revoke=targets={}", s(&key("targets.pub"))),
        &format!("--add=targets={}", s(&targets2_pub)),
        &format!("--revoke=snapshot={}", s(&key("snapshot.pub"))),
        &format!("--add=snapshot={}", s(&snapshot2.with_extension("pub"))),
    ]);
    let v2 = dev.join("image/2.root.json");
    let v2_json: serde_json::Value = serde_json::from_slice(&std::fs::read(&v2).unwrap()).unwrap();
    let types: std::collections::BTreeSet<&str> = v2_json["signed"]["keys"]
        .as_object()
        .unwrap()
        .values()
        .map(|k| k["keytype"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["ecdsa", "ed25519", "rsa"].into(), "{v2_json:#}");
    // v1's threshold (2 of root-1..3) by root-1 and root-3; v2's (2 of
    // root-1, root-2, root-4) by root-1 and the ECDSA root-4 only.
    for k in [
        key("root-1.key"),
        key("root-3.key"),
        root4.with_extension("key"),
    ] {
        keys(&["sign", "--key", s(&k), s(&v2)]);
    }
    sign_tool(&["repo", "add-root", "--repo", s(&repo), s(&v2)]);
    let fw2 = t.join("fw2.nlfw");
    std::fs::write(&image, vec![4u8; 2300]).unwrap();
    envelope("1.1.0", &fw2);
    sign_tool(&[
        "publish",
        "--repo",
        s(&repo),
        "--key",
        s(&targets2),
        s(&fw2),
    ]);
    refresh(&snapshot2.with_extension("key"));

    // The lock's client (device provisioned with v1) and a fresh one.
    let v = json_of(&c.download("nl-lock-v2/1.1.0.nlfw").success());
    assert_eq!(v["root_version"], 2);
    assert_eq!(v["target"]["custom"]["nightlatch"]["version"], "1.1.0");
    let c2 = Client::new(t, "c2", &repo);
    c2.init(&v1).success();
    assert_eq!(json_of(&c2.refresh().success())["root_version"], 2);
    // python-tuf, from v1 too.
    python_client_downloads(&repo, &t.join("py"), "nl-lock-v2/1.1.0.nlfw");

    // The old Ed25519 snapshot key is no longer a snapshot key: the tool
    // refuses to sign with it.
    let err = signing_tools::cmd::Cli::try_parse_from([
        "nightlatch-sign",
        "repo",
        "refresh",
        "--repo",
        s(&repo),
        "--snapshot-key",
        s(&key("snapshot.key")),
        "--timestamp-key",
        s(&key("timestamp.key")),
    ])
    .unwrap()
    .run()
    .unwrap_err();
    assert!(
        matches!(err, nightlatch_repo::Error::KeyNotInRole { .. }),
        "{err}"
    );
}
