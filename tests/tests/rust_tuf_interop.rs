//! A second, independent TUF client — rust-tuf (`tuf` 0.3.0-beta14, the TUF
//! project's Rust implementation) — reading image repositories made by our
//! own tools (`nightlatch-keys init --dev / rotate / sign`, `nightlatch-sign
//! sign / publish / repo …`, called in process) from a local directory
//! (rust-tuf's filesystem repository):
//!
//! * a fresh repository: timestamp, snapshot and targets verified, a target
//!   fetched and its bytes checked, then a second release;
//! * a root rotation (a root key replaced, the root threshold raised from 2
//!   of 3 to 3 of 4, the timestamp key replaced), followed from the old root;
//! * a delegation (a hardware model's own release key): the delegated role
//!   verified and a target resolved through it;
//! * what it must refuse: a tampered target, metadata changed after signing,
//!   a rolled-back timestamp, expired metadata, a new root short of its own
//!   threshold, a timestamp signed by a revoked key, a delegated role signed
//!   by a key its delegation does not name.
//!
//! Everything runs at a fixed virtual date (`TEST_START`): the tools sign
//! expiries from it and rust-tuf is given it as its start time.
//!
//! **rust-tuf 0.3.0-beta14's limitations.** Where rust-tuf reads our files
//! differently from the specification and from python-tuf (7.0.1, the
//! reference implementation), the test pins what rust-tuf does, so that a
//! rust-tuf that changes makes it fail, and checks the rest on a narrower
//! case:
//!
//! 1. `spec_version`: we write `"1.0.31"` (semver, as the specification
//!    requires; python-tuf 7 writes the same). The specification: clients
//!    "MUST verify that spec_version matches the expected version number.
//!    Adopters are free to determine what is considered a match".
//!    python-tuf accepts any `1.x[.y]`; rust-tuf only the literal `"1.0"` or
//!    `"1.0.0"` and refuses all our metadata (rust-tuf issue 410; accepted
//!    upstream after beta14 as pull request 417). [`Json10`] is rust-tuf's
//!    own POUF-1 with only that match widened to `1.0.N`: signatures are
//!    still checked over the bytes we signed.
//! 2. Delegation `paths`: the specification's PATHPATTERN is a shell-style
//!    glob, `"nl-lock-v2/*"` matches `"nl-lock-v2/1.2.3.nlfw"`, and
//!    python-tuf matches it so (fnmatch, segment by segment); rust-tuf only
//!    as a prefix ending in `/` (rust-tuf issue 388, open), so it never
//!    consults our delegated roles. The narrower case adds the prefix form
//!    `"nl-lock-v2/"` to the delegation (to a glob matcher it names only the
//!    literal path `nl-lock-v2/`: nothing changes for the lock or python-tuf).
//! 3. rust-tuf's client (`Client::fetch_target*`) fetches and verifies a
//!    delegated role but drops a target it finds there (its lookup returns a
//!    delegated role's result only when it is an error) and reports it not
//!    found; its database (`Database::target_description*`, what rust-tuf's
//!    own delegation tests use) resolves it. The test resolves through the
//!    database after the client has fetched and verified the role.
//! 4. rust-tuf's client ends its search at the first terminating delegation
//!    even when the target does not match that delegation's paths; the
//!    specification stops only for targets that match the pattern, and
//!    python-tuf visits only the delegations whose paths match. Our tools
//!    make every model's delegation terminating, so rust-tuf cannot reach a
//!    second model's role.
//! 5. rust-tuf's database does not check a top-level delegation's paths: a
//!    target another model's key signs for is returned once that role is
//!    trusted (the specification, python-tuf, our tools and the lock trust a
//!    role only for its paths).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use clap::Parser;
use ed25519_dalek::Signer;
use futures_executor::block_on;
use futures_util::io::AsyncReadExt;
use nightlatch_repo::FixedClock;
use nightlatch_system_tests::fleet::TEST_START;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tuf::client::{Client, Config};
use tuf::crypto::HashAlgorithm;
use tuf::metadata::{Metadata, MetadataPath, RawSignedMetadata, RootMetadata, TargetPath};
use tuf::pouf::{Pouf, Pouf1};
use tuf::repository::{EphemeralRepository, FileSystemRepository, FileSystemRepositoryBuilder};

const DAY: i64 = 86_400;

// ------------------------------------------------------------ rust-tuf side

/// rust-tuf's POUF-1 (TUF's JSON), except that the `spec_version` of a
/// metadata document may be any `1.0.N` (limitation 1 in the module docs).
/// Canonical form, signature checks and everything else are [`Pouf1`]'s:
/// the version is widened only where rust-tuf reads the typed metadata,
/// after (or apart from) the signature check over the canonical bytes of
/// the document as signed.
#[derive(Debug)]
struct Json10;

/// `1.0.N`, N decimal digits.
fn is_1_0_n(v: &str) -> bool {
    v.strip_prefix("1.0.")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A metadata document (`signed`: it has a `_type`) whose `spec_version` is
/// `1.0.N`, as rust-tuf beta14 will read it (`1.0.0`); anything else as it is.
fn widen_spec_version(mut value: Value) -> Value {
    if let Some(doc) = value.as_object_mut()
        && doc.contains_key("_type")
        && let Some(Value::String(v)) = doc.get_mut("spec_version")
        && is_1_0_n(v)
    {
        *v = "1.0.0".to_owned();
    }
    value
}

impl Pouf for Json10 {
    type RawData = Value;

    fn extension() -> &'static str {
        Pouf1::extension()
    }

    fn canonicalize(raw: &Value) -> tuf::Result<Vec<u8>> {
        Pouf1::canonicalize(raw)
    }

    fn deserialize<T: serde::de::DeserializeOwned>(raw: &Value) -> tuf::Result<T> {
        Pouf1::deserialize(&widen_spec_version(raw.clone()))
    }

    fn serialize<T: serde::Serialize>(data: &T) -> tuf::Result<Value> {
        Pouf1::serialize(data)
    }

    fn from_slice<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> tuf::Result<T> {
        let value: Value = Pouf1::from_slice(bytes)?;
        Pouf1::deserialize(&widen_spec_version(value))
    }
}

type Tuf = Client<Json10, EphemeralRepository<Json10>, FileSystemRepository<Json10>>;

/// The virtual now rust-tuf checks expiries against: an hour after the
/// tools' virtual now when they signed.
fn now() -> DateTime<Utc> {
    at(3600)
}

/// `secs` after `TEST_START`.
fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(TEST_START as i64 + secs, 0).unwrap()
}

/// The repository at `dir` as rust-tuf's filesystem repository reads it.
fn remote(dir: &Path) -> FileSystemRepository<Json10> {
    FileSystemRepositoryBuilder::new(dir)
        .metadata_prefix("metadata")
        .targets_prefix("targets")
        .build()
}

/// A rust-tuf client trusting `root` (the bytes of a root metadata file),
/// reading the repository at `dir`, with nothing cached.
fn rust_tuf(root: &[u8], dir: &Path) -> Tuf {
    let root = RawSignedMetadata::<Json10, RootMetadata>::new(root.to_vec());
    block_on(Client::with_trusted_root(
        Config::default(),
        &root,
        EphemeralRepository::new(),
        remote(dir),
    ))
    .unwrap()
}

/// One update cycle (root chain, timestamp, snapshot, targets) at `when`.
fn update_at(c: &mut Tuf, when: DateTime<Utc>) -> tuf::Result<bool> {
    block_on(c.update_with_start_time(&when))
}

fn update(c: &mut Tuf) -> tuf::Result<bool> {
    update_at(c, now())
}

/// What rust-tuf knows about `name` and its bytes, read in full (rust-tuf
/// checks the length and hash as they are read).
#[derive(Debug)]
struct Fetched {
    length: u64,
    sha256: Vec<u8>,
    custom: Value,
    bytes: Vec<u8>,
}

fn fetch(c: &mut Tuf, name: &str) -> tuf::Result<Fetched> {
    let path = TargetPath::new(name)?;
    block_on(async {
        let d = c
            .fetch_target_description_with_start_time(&path, &now())
            .await?;
        let mut read = c.fetch_target_with_start_time(&path, &now()).await?;
        let mut bytes = Vec::new();
        read.read_to_end(&mut bytes).await?;
        Ok(Fetched {
            length: d.length(),
            sha256: d
                .hashes()
                .get(&HashAlgorithm::Sha256)
                .map(|h| h.value().to_vec())
                .unwrap_or_default(),
            custom: serde_json::to_value(d.custom()).unwrap(),
            bytes,
        })
    })
}

/// Trusted versions: root, timestamp, snapshot, targets (0: none).
fn versions(c: &Tuf) -> [u32; 4] {
    let db = c.database();
    [
        db.trusted_root().version(),
        db.trusted_timestamp().map_or(0, |m| m.version()),
        db.trusted_snapshot().map_or(0, |m| m.version()),
        db.trusted_targets().map_or(0, |m| m.version()),
    ]
}

/// `err` is rust-tuf's refusal of `role` with `valid` valid signatures of
/// the `threshold` required.
fn assert_short_of_signatures(err: &tuf::Error, role: &MetadataPath, valid: u32, threshold: u32) {
    assert!(
        matches!(
            err,
            tuf::Error::MetadataMissingSignatures {
                role: r,
                number_of_valid_signatures: v,
                threshold: t,
            } if r == role && *v == valid && *t == threshold
        ),
        "{err:?}"
    );
}

// ------------------------------------------------------------ our tools' side

/// The tools run at the virtual date: every expiry they sign counts from it.
fn virtual_date() -> FixedClock {
    FixedClock::at_unix(TEST_START)
}

fn keys(args: &[&str]) {
    keys_ceremony::cmd::Cli::try_parse_from(
        std::iter::once("nightlatch-keys").chain(args.iter().copied()),
    )
    .unwrap()
    .run_at(&virtual_date())
    .unwrap();
}

fn sign_tool(args: &[&str]) {
    signing_tools::cmd::Cli::try_parse_from(
        std::iter::once("nightlatch-sign").chain(args.iter().copied()),
    )
    .unwrap()
    .run_at(&virtual_date())
    .unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn write_json(p: &Path, v: &Value) {
    std::fs::write(p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

/// An image repository made by our tools, with the dev keys of
/// `nightlatch-keys init --dev` (image root: root-1..3, threshold 2).
struct Made {
    tmp: TempDir,
    dev: PathBuf,
    repo: PathBuf,
}

impl Made {
    fn new() -> Self {
        let tmp = TempDir::new().unwrap();
        let dev = tmp.path().join("dev");
        let repo = tmp.path().join("repo");
        keys(&["init", "--dev", "--out", s(&dev)]);
        sign_tool(&[
            "repo",
            "init",
            "--repo",
            s(&repo),
            s(&dev.join("image/1.root.json")),
        ]);
        Self { tmp, dev, repo }
    }

    /// A dev key file (`root-1.key`, `targets.key`, `timestamp.pub`, …).
    fn key(&self, name: &str) -> PathBuf {
        self.dev.join("image/keys").join(name)
    }

    /// A new unencrypted key pair in the scratch directory: (`.key`, `.pub`).
    fn new_key(&self, name: &str) -> (PathBuf, PathBuf) {
        let base = self.tmp.path().join(name);
        sign_tool(&["keygen", "--unencrypted", s(&base)]);
        (
            self.tmp.path().join(format!("{name}.key")),
            self.tmp.path().join(format!("{name}.pub")),
        )
    }

    fn root(&self, version: u32) -> Vec<u8> {
        std::fs::read(self.dev.join(format!("image/{version}.root.json"))).unwrap()
    }

    fn metadata(&self, file: &str) -> PathBuf {
        self.repo.join("metadata").join(file)
    }

    /// Sign a firmware envelope of `len` bytes of `fill` for `model`
    /// `version` with `key` and publish it with the same key (the top-level
    /// targets key, or the model's delegated key); its bytes.
    fn release(&self, key: &Path, model: &str, version: &str, fill: u8, len: usize) -> Vec<u8> {
        let image = self.tmp.path().join(format!("{model}-{version}.bin"));
        std::fs::write(&image, vec![fill; len]).unwrap();
        let envelope = self.tmp.path().join(format!("{model}-{version}.nlfw"));
        sign_tool(&[
            "sign",
            "--key",
            s(key),
            "--model",
            model,
            "--version",
            version,
            "--counter",
            "5",
            s(&image),
            "-o",
            s(&envelope),
        ]);
        sign_tool(&[
            "publish",
            "--repo",
            s(&self.repo),
            "--key",
            s(key),
            s(&envelope),
        ]);
        std::fs::read(&envelope).unwrap()
    }

    /// New snapshot and timestamp (`nightlatch-sign repo refresh`).
    fn refresh(&self, timestamp_key: &Path) {
        sign_tool(&[
            "repo",
            "refresh",
            "--repo",
            s(&self.repo),
            "--snapshot-key",
            s(&self.key("snapshot.key")),
            "--timestamp-key",
            s(timestamp_key),
        ]);
    }

    /// Delegate `model` to a new key of its own; the key file.
    fn delegate(&self, model: &str) -> PathBuf {
        let (key, public) = self.new_key(model);
        sign_tool(&[
            "repo",
            "delegate",
            "--repo",
            s(&self.repo),
            "--key",
            s(&self.key("targets.key")),
            "--model",
            model,
            "--delegate-key",
            s(&public),
        ]);
        key
    }

    /// Newest version of `role` in `metadata/` (`N.role.json`).
    fn newest(&self, role: &str) -> u64 {
        nightlatch_repo::repo::scan(&self.repo).unwrap()[role]
    }

    /// Write `signed` as the next version of `role`, signed by `keys`, and
    /// a new snapshot and timestamp naming it (signed with the dev snapshot
    /// and timestamp keys) — the way an attacker holding those keys, or a
    /// hand-made edit, would publish it without our tools' checks.
    fn put_by_hand(&self, role: &str, mut signed: Value, keys: &[&Path]) {
        let version = self.newest(role) + 1;
        signed["version"] = json!(version);
        let doc = sign_doc(signed, keys);
        write_json(&self.metadata(&format!("{version}.{role}.json")), &doc);
        let snapshot_version = self.newest("snapshot");
        let mut snapshot = read_json(&self.metadata(&format!("{snapshot_version}.snapshot.json")))
            ["signed"]
            .clone();
        snapshot["meta"][format!("{role}.json")] = json!({ "version": version });
        snapshot["version"] = json!(snapshot_version + 1);
        let snapshot = sign_doc(snapshot, &[&self.key("snapshot.key")]);
        let snapshot_path = self.metadata(&format!("{}.snapshot.json", snapshot_version + 1));
        write_json(&snapshot_path, &snapshot);
        let mut timestamp = read_json(&self.metadata("timestamp.json"))["signed"].clone();
        timestamp["meta"]["snapshot.json"] = json!({ "version": snapshot_version + 1 });
        timestamp["version"] = json!(timestamp["version"].as_u64().unwrap() + 1);
        let timestamp = sign_doc(timestamp, &[&self.key("timestamp.key")]);
        write_json(&self.metadata("timestamp.json"), &timestamp);
    }
}

/// `{"signatures": …, "signed": signed}` signed by each of `keys` (key ids
/// as our tools compute them).
fn sign_doc(signed: Value, keys: &[&Path]) -> Value {
    let message = nightlatch_repo::metadata::canonical_json(&signed).unwrap();
    let signatures: Vec<Value> = keys
        .iter()
        .map(|k| {
            let sk = nightlatch_repo::keys::load_private_key(k).unwrap();
            let id = nightlatch_repo::metadata::KeyIdOf::key_id(
                &nightlatch_repo::metadata::PublicKey::Ed25519(sk.verifying_key()),
            );
            json!({"keyid": id.to_string(), "sig": hex::encode(sk.sign(&message).to_bytes())})
        })
        .collect();
    json!({"signatures": signatures, "signed": signed})
}

fn sha256(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

/// The file under `targets/` that holds `name`'s bytes.
fn target_file(made: &Made, name: &str, bytes: &[u8]) -> PathBuf {
    nightlatch_repo::repo::target_file(&made.repo, name, &hex::encode(sha256(bytes)))
}

// ------------------------------------------------------------------- tests

#[test]
fn rust_tuf_beta14_refuses_spec_version_1_0_31_that_the_specification_allows() {
    // Limitation 1: rust-tuf's own POUF-1 refuses our root outright.
    let made = Made::new();
    let root = RawSignedMetadata::<Pouf1, RootMetadata>::new(made.root(1));
    let refused = block_on(Client::with_trusted_root(
        Config::default(),
        &root,
        EphemeralRepository::<Pouf1>::new(),
        FileSystemRepositoryBuilder::<Pouf1>::new(&made.repo).build(),
    ))
    .expect_err("rust-tuf beta14 refuses spec_version 1.0.31");
    assert!(
        refused.to_string().contains("Unknown spec version 1.0.31"),
        "{refused}"
    );
    let root_doc = read_json(&made.dev.join("image/1.root.json"));
    let signed = &root_doc["signed"];
    assert_eq!(
        signed["spec_version"],
        nightlatch_repo::metadata::SPEC_VERSION
    );
    assert!(is_1_0_n(nightlatch_repo::metadata::SPEC_VERSION));

    // The widening is exactly 1.0.N: nothing else changes, other versions
    // are still refused by rust-tuf.
    for (given, read) in [
        ("1.0.31", "1.0.0"),
        ("1.0.0", "1.0.0"),
        ("1.0", "1.0"),
        ("1.1.0", "1.1.0"),
        ("2.0.0", "2.0.0"),
        ("1.0.x", "1.0.x"),
        ("1.0.", "1.0."),
    ] {
        let doc = json!({"_type": "root", "spec_version": given});
        assert_eq!(widen_spec_version(doc)["spec_version"], read, "{given}");
    }
    let outer = json!({"signed": {"_type": "root", "spec_version": "1.0.31"}});
    assert_eq!(
        widen_spec_version(outer.clone()),
        outer,
        "signed bytes untouched"
    );
    let mut signed = signed.clone();
    assert!(Json10::from_slice::<RootMetadata>(&serde_json::to_vec(&signed).unwrap()).is_ok());
    signed["spec_version"] = json!("2.0.0");
    let refused = Json10::from_slice::<RootMetadata>(&serde_json::to_vec(&signed).unwrap())
        .expect_err("spec_version 2.0.0 is refused");
    assert!(
        refused.to_string().contains("Unknown spec version 2.0.0"),
        "{refused}"
    );
}

#[test]
fn rust_tuf_reads_a_fresh_repository_and_verifies_its_targets() {
    let made = Made::new();
    let targets_key = made.key("targets.key");
    let fw = made.release(&targets_key, "nl-lock-v2", "1.2.3", 7, 3000);
    made.refresh(&made.key("timestamp.key"));

    let mut c = rust_tuf(&made.root(1), &made.repo);
    assert!(update(&mut c).unwrap());
    assert_eq!(versions(&c), [1, 1, 1, 1]);
    let got = fetch(&mut c, "nl-lock-v2/1.2.3.nlfw").unwrap();
    assert_eq!(got.bytes, fw);
    assert_eq!(got.length, fw.len() as u64);
    assert_eq!(got.sha256, sha256(&fw));
    let nl = &got.custom["nightlatch"];
    assert_eq!(nl["kind"], "firmware");
    assert_eq!(nl["hardware_model"], "nl-lock-v2");
    assert_eq!(nl["version"], "1.2.3");
    assert_eq!(nl["security_counter"], 5);
    assert_eq!(nl["payload_length"], 3000);

    // A second release: rust-tuf moves forward from what it trusts.
    let fw2 = made.release(&targets_key, "nl-lock-v2", "1.2.4", 8, 3100);
    made.refresh(&made.key("timestamp.key"));
    assert!(update(&mut c).unwrap());
    assert_eq!(versions(&c), [1, 2, 2, 2]);
    assert_eq!(fetch(&mut c, "nl-lock-v2/1.2.4.nlfw").unwrap().bytes, fw2);
    assert_eq!(fetch(&mut c, "nl-lock-v2/1.2.3.nlfw").unwrap().bytes, fw);
    // Nothing new.
    assert!(!update(&mut c).unwrap());
    // A client that starts now walks straight to the newest metadata.
    let mut fresh = rust_tuf(&made.root(1), &made.repo);
    assert!(update(&mut fresh).unwrap());
    assert_eq!(versions(&fresh), [1, 2, 2, 2]);
}

#[test]
fn rust_tuf_refuses_tampering_rollback_and_expired_metadata() {
    let made = Made::new();
    let targets_key = made.key("targets.key");
    let fw = made.release(&targets_key, "nl-lock-v2", "1.2.3", 7, 3000);
    made.refresh(&made.key("timestamp.key"));
    let first_timestamp = std::fs::read(made.metadata("timestamp.json")).unwrap();
    let mut c = rust_tuf(&made.root(1), &made.repo);
    update(&mut c).unwrap();

    // A tampered target (same name and length, one byte changed): its hash
    // no longer matches, the read fails.
    let file = target_file(&made, "nl-lock-v2/1.2.3.nlfw", &fw);
    let mut bad = fw.clone();
    bad[100] ^= 0xff;
    std::fs::write(&file, &bad).unwrap();
    let err = fetch(&mut c, "nl-lock-v2/1.2.3.nlfw").expect_err("a tampered target is refused");
    assert!(err.to_string().contains("hash"), "{err}");
    std::fs::write(&file, &fw).unwrap();
    assert_eq!(fetch(&mut c, "nl-lock-v2/1.2.3.nlfw").unwrap().bytes, fw);
    // A target nobody listed.
    assert!(matches!(
        fetch(&mut c, "nl-lock-v2/9.9.9.nlfw"),
        Err(tuf::Error::TargetNotFound(_))
    ));

    // Targets metadata changed after it was signed (the length of a target
    // edited, the version kept): a client that fetches it refuses it.
    let targets_path = made.metadata("1.targets.json");
    let signed_targets = std::fs::read(&targets_path).unwrap();
    let mut edited = read_json(&targets_path);
    edited["signed"]["targets"]["nl-lock-v2/1.2.3.nlfw"]["length"] = json!(fw.len() + 1);
    write_json(&targets_path, &edited);
    let mut fresh = rust_tuf(&made.root(1), &made.repo);
    let err = update(&mut fresh).expect_err("edited targets are refused");
    assert_short_of_signatures(&err, &MetadataPath::targets(), 0, 1);
    std::fs::write(&targets_path, signed_targets).unwrap();

    // A second release; then the first timestamp served again (a rollback).
    made.release(&targets_key, "nl-lock-v2", "1.2.4", 8, 3100);
    made.refresh(&made.key("timestamp.key"));
    update(&mut c).unwrap();
    assert_eq!(versions(&c)[1], 2);
    std::fs::write(made.metadata("timestamp.json"), &first_timestamp).unwrap();
    let err = update(&mut c).expect_err("a rolled-back timestamp is refused");
    assert!(
        matches!(
            &err,
            tuf::Error::AttemptedMetadataRollBack {
                role,
                trusted_version: 2,
                new_version: 1,
            } if *role == MetadataPath::timestamp()
        ),
        "{err:?}"
    );

    // Expired: the timestamp lives one day. Two days on, a client refuses it
    // (a freeze attack: the repository stopped moving).
    made.refresh(&made.key("timestamp.key"));
    let mut late = rust_tuf(&made.root(1), &made.repo);
    let err = update_at(&mut late, at(2 * DAY)).expect_err("an expired timestamp is refused");
    assert!(
        matches!(&err, tuf::Error::ExpiredMetadata { path, .. } if *path == MetadataPath::timestamp()),
        "{err:?}"
    );
    // The same repository at the virtual now is fine.
    assert!(update(&mut late).unwrap());
}

#[test]
fn rust_tuf_follows_a_root_rotation_and_refuses_a_root_short_of_its_threshold() {
    let made = Made::new();
    let fw = made.release(&made.key("targets.key"), "nl-lock-v2", "1.0.0", 1, 2500);
    made.refresh(&made.key("timestamp.key"));
    let mut c = rust_tuf(&made.root(1), &made.repo);
    update(&mut c).unwrap();
    assert_eq!(versions(&c)[0], 1);
    assert_eq!(c.database().trusted_root().root().threshold(), 2);

    // Root v2: root-3 replaced by root-4 and root-5, the root threshold
    // raised from 2 (of 3) to 3 (of 4), the timestamp key replaced.
    let (root4, root4_pub) = made.new_key("root-4");
    let (_root5, root5_pub) = made.new_key("root-5");
    let (timestamp2, timestamp2_pub) = made.new_key("timestamp-2");
    let v2 = made.dev.join("image/2.root.json");
    keys(&[
        "rotate",
        "--from",
        s(&made.dev.join("image/1.root.json")),
        &format!("--revoke=root={}", s(&made.key("root-3.pub"))),
        &format!("--add=root={}", s(&root4_pub)),
        &format!("--add=root={}", s(&root5_pub)),
        "--threshold",
        "root=3",
        &format!("--revoke=timestamp={}", s(&made.key("timestamp.pub"))),
        &format!("--add=timestamp={}", s(&timestamp2_pub)),
    ]);
    for k in ["root-1.key", "root-2.key"] {
        keys(&["sign", "--key", s(&made.key(k)), s(&v2)]);
    }

    // Signed by two keys of root v1 (its threshold) but only two of the
    // three that v2 itself requires: an attacker holding two old root keys
    // cannot rotate alone. Put in the repository by hand (our tools refuse
    // to publish it); a client starting from v1 refuses it.
    std::fs::copy(&v2, made.metadata("2.root.json")).unwrap();
    let mut fresh = rust_tuf(&made.root(1), &made.repo);
    let err = update(&mut fresh).expect_err("v2 short of its own threshold");
    assert_short_of_signatures(&err, &MetadataPath::root(), 2, 3);
    assert_eq!(fresh.database().trusted_root().version(), 1);
    std::fs::remove_file(made.metadata("2.root.json")).unwrap();

    // The third signature, by a new root key: v2 published, timestamps now
    // signed by the new timestamp key.
    keys(&["sign", "--key", s(&root4), s(&v2)]);
    sign_tool(&["repo", "add-root", "--repo", s(&made.repo), s(&v2)]);
    made.refresh(&timestamp2);

    assert!(update(&mut c).unwrap());
    assert_eq!(versions(&c), [2, 2, 1, 1]);
    let root = c.database().trusted_root();
    assert_eq!(root.root().threshold(), 3);
    assert_eq!(root.root().key_ids().len(), 4);
    assert_eq!(fetch(&mut c, "nl-lock-v2/1.0.0.nlfw").unwrap().bytes, fw);
    // A device provisioned with v1 walks to v2 too.
    let mut fresh = rust_tuf(&made.root(1), &made.repo);
    assert!(update(&mut fresh).unwrap());
    assert_eq!(versions(&fresh), [2, 2, 1, 1]);
    // And one provisioned with v2 starts there.
    let mut v2_client = rust_tuf(&made.root(2), &made.repo);
    assert!(update(&mut v2_client).unwrap());
    assert_eq!(versions(&v2_client)[0], 2);

    // A newer timestamp signed by the revoked timestamp key is refused.
    let mut ts = read_json(&made.metadata("timestamp.json"))["signed"].clone();
    ts["version"] = json!(ts["version"].as_u64().unwrap() + 1);
    write_json(
        &made.metadata("timestamp.json"),
        &sign_doc(ts, &[&made.key("timestamp.key")]),
    );
    let err = update(&mut c).expect_err("the revoked key is refused");
    assert_short_of_signatures(&err, &MetadataPath::timestamp(), 0, 1);
    assert_eq!(versions(&c)[1], 2);
}

#[test]
fn rust_tuf_verifies_a_delegated_role_and_resolves_a_target_through_it() {
    let made = Made::new();
    let model_key = made.delegate("nl-lock-v2");
    let fw = made.release(&model_key, "nl-lock-v2", "1.2.3", 7, 3000);
    made.refresh(&made.key("timestamp.key"));
    let targets = read_json(&made.metadata(&format!("{}.targets.json", made.newest("targets"))));
    let roles = &targets["signed"]["delegations"]["roles"];
    assert_eq!(roles[0]["name"], "nl-lock-v2");
    assert_eq!(roles[0]["paths"], json!(["nl-lock-v2/*"]));
    assert_eq!(roles[0]["terminating"], true);
    let role = MetadataPath::new("nl-lock-v2").unwrap();
    let name = "nl-lock-v2/1.2.3.nlfw";

    // Limitation 2: rust-tuf does not match the glob, so its client never
    // even fetches the delegated role.
    let mut c = rust_tuf(&made.root(1), &made.repo);
    assert!(update(&mut c).unwrap());
    assert!(matches!(
        fetch(&mut c, name),
        Err(tuf::Error::TargetNotFound(_))
    ));
    assert!(c.database().trusted_delegations().get(&role).is_none());

    // The narrower case: the same delegation also naming the prefix
    // "nl-lock-v2/", top-level targets re-signed with the release key.
    let mut signed = targets["signed"].clone();
    signed["delegations"]["roles"][0]["paths"] = json!(["nl-lock-v2/*", "nl-lock-v2/"]);
    made.put_by_hand("targets", signed, &[&made.key("targets.key")]);
    let mut c = rust_tuf(&made.root(1), &made.repo);
    assert!(update(&mut c).unwrap());
    // Limitation 3: the client fetches the delegated role and verifies it
    // (the delegation's key and threshold, the snapshot's version of it)…
    let looked_up = fetch(&mut c, name);
    let delegated = c
        .database()
        .trusted_delegations()
        .get(&role)
        .expect("the delegated role is fetched and trusted");
    assert_eq!(delegated.version(), 1);
    let listed = delegated
        .targets()
        .get(&TargetPath::new(name).unwrap())
        .expect("the role lists the target")
        .clone();
    // …but drops the target it found there (Client::lookup_target_description
    // returns a delegated role's result only when it is an error).
    assert!(
        matches!(looked_up, Err(tuf::Error::TargetNotFound(_))),
        "rust-tuf beta14's client returns no target found through a delegation"
    );
    // rust-tuf's database resolves it through the trusted delegation: the
    // description the model key signed, matching the envelope.
    let d = c
        .database()
        .target_description_with_start_time(&now(), &TargetPath::new(name).unwrap())
        .unwrap();
    assert_eq!(d, listed);
    assert_eq!(d.length(), fw.len() as u64);
    assert_eq!(
        d.hashes()[&HashAlgorithm::Sha256].value(),
        sha256(&fw).as_slice()
    );
    assert_eq!(d.custom()["nightlatch"]["version"], "1.2.3");
    assert!(c.database().trusted_targets().unwrap().targets().is_empty());

    // The delegated role signed by a key its delegation does not name (the
    // top-level release key): the client refuses it.
    let role_doc = read_json(&made.metadata("1.nl-lock-v2.json"))["signed"].clone();
    made.put_by_hand("nl-lock-v2", role_doc.clone(), &[&made.key("targets.key")]);
    let mut c = rust_tuf(&made.root(1), &made.repo);
    assert!(update(&mut c).unwrap());
    let err = fetch(&mut c, name).expect_err("a delegated role signed by another key is refused");
    assert_short_of_signatures(&err, &role, 0, 1);
    assert!(c.database().trusted_delegations().get(&role).is_none());
}

#[test]
fn rust_tuf_beta14_delegation_search_differs_from_the_specification() {
    // Two models, each delegated (terminating, as our tools always do), the
    // prefix form added as above.
    let made = Made::new();
    let v2_key = made.delegate("nl-lock-v2");
    let v3_key = made.delegate("nl-lock-v3");
    let fw2 = made.release(&v2_key, "nl-lock-v2", "1.0.0", 2, 2000);
    made.release(&v3_key, "nl-lock-v3", "1.0.0", 3, 2100);
    made.refresh(&made.key("timestamp.key"));
    let targets = read_json(&made.metadata(&format!("{}.targets.json", made.newest("targets"))));
    let mut signed = targets["signed"].clone();
    let names: Vec<String> = signed["delegations"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["nl-lock-v2", "nl-lock-v3"]);
    for r in signed["delegations"]["roles"].as_array_mut().unwrap() {
        assert_eq!(r["terminating"], true);
        let name = r["name"].as_str().unwrap().to_owned();
        r["paths"] = json!([format!("{name}/*"), format!("{name}/")]);
    }
    made.put_by_hand("targets", signed, &[&made.key("targets.key")]);
    let path = |s: &str| TargetPath::new(s).unwrap();
    let v3 = MetadataPath::new("nl-lock-v3").unwrap();

    // Limitation 4: rust-tuf's client ends its search at the first
    // terminating delegation even when the target does not match its paths.
    // The specification (a terminating delegation stops the search for the
    // targets that match its pattern) and python-tuf (which visits only the
    // delegations whose paths match) go on to nl-lock-v3; rust-tuf never
    // fetches that role.
    let mut c = rust_tuf(&made.root(1), &made.repo);
    assert!(update(&mut c).unwrap());
    assert!(matches!(
        fetch(&mut c, "nl-lock-v3/1.0.0.nlfw"),
        Err(tuf::Error::TargetNotFound(_))
    ));
    assert!(matches!(
        fetch(&mut c, "nl-lock-v2/1.0.0.nlfw"),
        Err(tuf::Error::TargetNotFound(_))
    ));
    let db = c.database();
    assert!(db.trusted_delegations().get(&v3).is_none());
    let found = db
        .target_description_with_start_time(&now(), &path("nl-lock-v2/1.0.0.nlfw"))
        .unwrap();
    assert_eq!(found.length(), fw2.len() as u64);
    assert!(
        db.target_description_with_start_time(&now(), &path("nl-lock-v3/1.0.0.nlfw"))
            .is_err()
    );

    // Limitation 5: rust-tuf's database does not check a top-level
    // delegation's paths. The nl-lock-v2 key signs for a target of another
    // model; the client would not look for it there, but once the role is
    // trusted the database returns it (the specification, python-tuf, our
    // tools and the lock trust a role only for its paths).
    let mut role_doc = read_json(&made.metadata("1.nl-lock-v2.json"))["signed"].clone();
    let entry = role_doc["targets"]["nl-lock-v2/1.0.0.nlfw"].clone();
    role_doc["targets"]["nl-lock-v3/6.6.6.nlfw"] = entry;
    made.put_by_hand("nl-lock-v2", role_doc, &[&v2_key]);
    let mut c = rust_tuf(&made.root(1), &made.repo);
    assert!(update(&mut c).unwrap());
    let _ = fetch(&mut c, "nl-lock-v2/1.0.0.nlfw");
    assert!(matches!(
        fetch(&mut c, "nl-lock-v3/6.6.6.nlfw"),
        Err(tuf::Error::TargetNotFound(_))
    ));
    let outside = c
        .database()
        .target_description_with_start_time(&now(), &path("nl-lock-v3/6.6.6.nlfw"));
    assert!(
        outside.is_ok(),
        "rust-tuf beta14's database trusts a top-level delegated role outside its paths: {outside:?}"
    );
}
