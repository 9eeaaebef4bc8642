//! A hostile-repository builder for the TUF client tests: keys from fixed
//! seeds, metadata written as JSON and signed over its canonical form, and
//! in-memory transports the tests can tamper with file by file.

use std::collections::BTreeMap;

use ed25519_dalek::{Signer, SigningKey};
use lock_app::tuf::{
    Limits, MemoryStore, MemoryTransport, Result, Updater, cjson, format_utc, hex_encode,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};

/// The trusted time floor the tests run at (2027-01-15T08:00:00Z).
pub const NOW: u64 = 1_800_000_000;
pub const DAY: u64 = 86_400;

/// An Ed25519 key and its TUF key id.
#[derive(Clone)]
pub struct Key {
    pub sk: SigningKey,
    pub id: String,
}

pub fn key(seed: u8) -> Key {
    let sk = SigningKey::from_bytes(&[seed; 32]);
    let id = hex_encode(&Sha256::digest(cjson::to_vec(&public(&sk)).unwrap()));
    Key { sk, id }
}

fn public(sk: &SigningKey) -> Value {
    json!({"keytype": "ed25519", "scheme": "ed25519",
           "keyval": {"public": hex_encode(sk.verifying_key().as_bytes())}})
}

/// `YYYY-MM-DDTHH:MM:SSZ` of Unix seconds.
pub fn iso(t: u64) -> String {
    format_utc(t)
}

/// Sign `signed` with `keys`: the envelope's bytes.
pub fn sign(signed: &Value, keys: &[&Key]) -> Vec<u8> {
    let canonical = cjson::to_vec(signed).unwrap();
    let signatures: Vec<Value> = keys
        .iter()
        .map(|k| json!({"keyid": k.id, "sig": hex_encode(&k.sk.sign(&canonical).to_bytes())}))
        .collect();
    serde_json::to_vec_pretty(&json!({"signatures": signatures, "signed": signed})).unwrap()
}

pub fn meta(bytes: &[u8], version: u64) -> Value {
    json!({"version": version, "length": bytes.len(),
           "hashes": {"sha256": hex_encode(&Sha256::digest(bytes))}})
}

pub fn target_meta(bytes: &[u8], custom: Option<Value>) -> Value {
    let mut v = json!({"length": bytes.len(), "hashes": {
        "sha256": hex_encode(&Sha256::digest(bytes)),
        "sha512": hex_encode(&Sha512::digest(bytes)),
    }});
    if let Some(c) = custom {
        v["custom"] = c;
    }
    v
}

/// Role state the fixture writes metadata from.
pub struct RoleState {
    pub version: u64,
    pub expires: u64,
}

impl RoleState {
    fn new() -> Self {
        Self {
            version: 1,
            expires: NOW + 30 * DAY,
        }
    }
}

/// A repository: keys, role states, target files; `write` regenerates
/// consistent metadata into `meta` (and target files into `targets`).
pub struct Repo {
    pub root_keys: Vec<Key>,
    pub root_threshold: u64,
    pub timestamp_key: Key,
    pub snapshot_key: Key,
    pub targets_key: Key,
    pub model_key: Key,
    pub root: RoleState,
    pub timestamp: RoleState,
    pub snapshot: RoleState,
    pub targets: RoleState,
    pub model: RoleState,
    pub consistent: bool,
    /// Top-level targets: name → bytes.
    pub top_files: BTreeMap<String, Vec<u8>>,
    /// Delegated role `nl-lock-v2` targets: name → bytes.
    pub model_files: BTreeMap<String, Vec<u8>>,
    pub terminating: bool,
    /// Served metadata and targets.
    pub meta: MemoryTransport,
    pub target_store: MemoryTransport,
}

pub const MODEL_ROLE: &str = "nl-lock-v2";
pub const FIRMWARE: &str = "nl-lock-v2/1.0.0.nlfw";

pub fn custom_for(bytes: &[u8]) -> Value {
    json!({"nightlatch": {"kind": "firmware", "hardware_model": "nl-lock-v2",
        "version": "1.0.0", "security_counter": 3, "payload_length": bytes.len(),
        "payload_sha256": hex_encode(&Sha256::digest(bytes))}})
}

impl Repo {
    pub fn new() -> Self {
        let mut r = Self {
            root_keys: vec![key(1)],
            root_threshold: 1,
            timestamp_key: key(2),
            snapshot_key: key(3),
            targets_key: key(4),
            model_key: key(5),
            root: RoleState::new(),
            timestamp: RoleState::new(),
            snapshot: RoleState::new(),
            targets: RoleState::new(),
            model: RoleState::new(),
            consistent: true,
            top_files: BTreeMap::new(),
            model_files: BTreeMap::new(),
            terminating: true,
            meta: MemoryTransport::default(),
            target_store: MemoryTransport::default(),
        };
        r.root.expires = NOW + 365 * DAY;
        r.top_files
            .insert("readme.txt".into(), b"hello lock".to_vec());
        r.model_files
            .insert(FIRMWARE.into(), b"NLFW firmware image 1.0.0".repeat(40));
        let root = r.root_bytes(&r.root_keys.iter().collect::<Vec<_>>());
        r.meta.files.insert("1.root.json".into(), root);
        r.write();
        r
    }

    pub fn root_signed(&self) -> Value {
        let mut keys = serde_json::Map::new();
        for k in self.root_keys.iter().chain([
            &self.timestamp_key,
            &self.snapshot_key,
            &self.targets_key,
        ]) {
            keys.insert(k.id.clone(), public(&k.sk));
        }
        let ids = |ks: &[&Key]| ks.iter().map(|k| k.id.clone()).collect::<Vec<_>>();
        json!({
            "_type": "root", "spec_version": "1.0.31", "version": self.root.version,
            "expires": iso(self.root.expires), "consistent_snapshot": self.consistent,
            "keys": keys,
            "roles": {
                "root": {"keyids": ids(&self.root_keys.iter().collect::<Vec<_>>()), "threshold": self.root_threshold},
                "timestamp": {"keyids": ids(&[&self.timestamp_key]), "threshold": 1},
                "snapshot": {"keyids": ids(&[&self.snapshot_key]), "threshold": 1},
                "targets": {"keyids": ids(&[&self.targets_key]), "threshold": 1},
            }
        })
    }

    /// Root metadata for the current state, signed by `signers`.
    pub fn root_bytes(&self, signers: &[&Key]) -> Vec<u8> {
        sign(&self.root_signed(), signers)
    }

    /// The version-1 root a device is provisioned with.
    pub fn trusted_root(&self) -> Vec<u8> {
        self.meta.files["1.root.json"].clone()
    }

    fn path(&self, version: u64, role: &str) -> String {
        if self.consistent {
            format!("{version}.{role}.json")
        } else {
            format!("{role}.json")
        }
    }

    pub fn model_signed(&self) -> Value {
        let targets: serde_json::Map<String, Value> = self
            .model_files
            .iter()
            .map(|(n, b)| (n.clone(), target_meta(b, Some(custom_for(b)))))
            .collect();
        json!({"_type": "targets", "spec_version": "1.0.31", "version": self.model.version,
               "expires": iso(self.model.expires), "targets": targets})
    }

    pub fn targets_signed(&self) -> Value {
        let targets: serde_json::Map<String, Value> = self
            .top_files
            .iter()
            .map(|(n, b)| (n.clone(), target_meta(b, None)))
            .collect();
        json!({"_type": "targets", "spec_version": "1.0.31", "version": self.targets.version,
        "expires": iso(self.targets.expires), "targets": targets,
        "delegations": {
            "keys": {self.model_key.id.clone(): public(&self.model_key.sk)},
            "roles": [{"name": MODEL_ROLE, "keyids": [self.model_key.id], "threshold": 1,
                       "terminating": self.terminating, "paths": ["nl-lock-v2/*"]}]
        }})
    }

    pub fn snapshot_signed(&self, targets: &[u8], model: &[u8]) -> Value {
        json!({"_type": "snapshot", "spec_version": "1.0.31", "version": self.snapshot.version,
               "expires": iso(self.snapshot.expires),
               "meta": {"targets.json": meta(targets, self.targets.version),
                        "nl-lock-v2.json": meta(model, self.model.version)}})
    }

    pub fn timestamp_signed(&self, snapshot: &[u8]) -> Value {
        json!({"_type": "timestamp", "spec_version": "1.0.31", "version": self.timestamp.version,
               "expires": iso(self.timestamp.expires),
               "meta": {"snapshot.json": meta(snapshot, self.snapshot.version)}})
    }

    /// Write every role's metadata and the target files from the state.
    pub fn write(&mut self) {
        let model = sign(&self.model_signed(), &[&self.model_key]);
        let targets = sign(&self.targets_signed(), &[&self.targets_key]);
        let snapshot = sign(
            &self.snapshot_signed(&targets, &model),
            &[&self.snapshot_key],
        );
        let timestamp = sign(&self.timestamp_signed(&snapshot), &[&self.timestamp_key]);
        let files = [
            (self.path(self.model.version, MODEL_ROLE), model),
            (self.path(self.targets.version, "targets"), targets),
            (self.path(self.snapshot.version, "snapshot"), snapshot),
            ("timestamp.json".to_string(), timestamp),
        ];
        self.meta.files.extend(files);
        for (name, bytes) in self.top_files.iter().chain(&self.model_files) {
            let path = if self.consistent {
                let hash = hex_encode(&Sha256::digest(bytes));
                match name.rsplit_once('/') {
                    Some((d, b)) => format!("{d}/{hash}.{b}"),
                    None => format!("{hash}.{name}"),
                }
            } else {
                name.clone()
            };
            self.target_store.files.insert(path, bytes.clone());
        }
    }

    /// Rotate to a new root version with `new_keys` (threshold `threshold`),
    /// signed by `signers`, published as `N.root.json`.
    pub fn rotate_root(&mut self, new_keys: Vec<Key>, threshold: u64, signers: &[&Key]) {
        self.root.version += 1;
        self.root_keys = new_keys;
        self.root_threshold = threshold;
        let bytes = self.root_bytes(signers);
        self.meta
            .files
            .insert(format!("{}.root.json", self.root.version), bytes);
    }

    /// Bump every non-root role's version and re-publish.
    pub fn publish_all(&mut self) {
        for r in [
            &mut self.timestamp,
            &mut self.snapshot,
            &mut self.targets,
            &mut self.model,
        ] {
            r.version += 1;
        }
        self.write();
    }
}

/// A device: its store and the time floor it trusts.
pub struct Device {
    pub store: MemoryStore,
    pub now: u64,
}

impl Device {
    pub fn provisioned(repo: &Repo) -> Self {
        Self {
            store: MemoryStore::with_root(&repo.trusted_root()),
            now: NOW,
        }
    }

    pub fn updater<'a>(
        &'a mut self,
        repo: &'a mut Repo,
        limits: Limits,
    ) -> Result<Updater<&'a mut MemoryTransport, &'a mut MemoryStore>> {
        Updater::new(&mut repo.meta, &mut self.store, limits, self.now)
    }

    /// Refresh against `repo` with default limits.
    pub fn refresh(&mut self, repo: &mut Repo) -> Result<()> {
        self.updater(repo, Limits::default())?.refresh()
    }

    /// Refresh, find `name`, download it: the verified bytes.
    pub fn fetch(&mut self, repo: &mut Repo, name: &str) -> Result<Option<Vec<u8>>> {
        let mut targets = repo.target_store.clone();
        let mut u = self.updater(repo, Limits::default())?;
        u.refresh()?;
        match u.target_info(name)? {
            Some(info) => u.download_target(&mut targets, &info).map(Some),
            None => Ok(None),
        }
    }
}

/// A repository with every role at version 2, and a device that has
/// refreshed against it.
pub fn refreshed() -> (Repo, Device) {
    let mut repo = Repo::new();
    repo.publish_all(); // every role at version 2
    let mut dev = Device::provisioned(&repo);
    dev.refresh(&mut repo).unwrap();
    (repo, dev)
}
