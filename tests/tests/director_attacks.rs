//! The lock's agent against a compromised or replaying director: a real
//! server on loopback, and between it and the lock an attacker who holds
//! the director's online keys (a stolen server) or replays old answers.
//! Each attack is its own test on its own server and lock: it is refused
//! with its own `AgentError`, nothing is staged, DFU is untouched, forged
//! metadata is not kept, and an honest answer afterwards still stages the
//! real release.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use bootloader::layout::SMALL;
use ed25519_dalek::{Signer, SigningKey};
use lock_app::agent::{self, Agent, AgentConfig, AgentError, CheckIn, Net, NetError, Repo, wire};
use lock_app::tuf::{FetchError, MetadataStore, Role, TufError, cjson, hex_encode};
use nightlatch_system_tests::fleet::TEST_START;
use nightlatch_system_tests::harness::{self, Server};
use nightlatch_system_tests::sim::device::{Clock, Device, Flash, SimHardware};
use nightlatch_system_tests::sim::net::HttpNet;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const MODEL: &str = "nl-test";

/// What the attacker does to the director's answer.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Attack {
    Honest,
    /// Send back an answer recorded from an earlier check-in.
    Replay,
    /// Director metadata naming the image with another length and hash.
    Disagree,
    /// Director metadata naming an image the repository never published.
    Unpublished,
    /// Director metadata assigning another model's (published) image.
    OtherModel,
    /// Director metadata older than the lock holds.
    Rollback,
    /// Expired director metadata.
    Expired,
    /// Director metadata signed by a key the root does not give `targets`.
    WrongKey,
    /// The time names other metadata than the answer carries.
    ShaMismatch,
    /// Metadata for another lock.
    OtherLock,
    /// The time signed by a key outside the director root.
    ForeignTimeKey,
    /// A director root v2 that is not signed by root v1's keys.
    BadRootRotation,
}

struct Evil {
    inner: HttpNet,
    attack: Attack,
    recorded: Option<Vec<u8>>,
    last_targets: Option<Value>,
    targets_key: (SigningKey, String),
    time_key: (SigningKey, String),
    held_version: u64,
    /// The other model's published image: length and SHA-256 (hex).
    other_image: (u64, String),
}

fn sign_env(signed: &Value, key: &(SigningKey, String)) -> Value {
    let canonical = cjson::to_vec(signed).unwrap();
    json!({"signatures": [{"keyid": key.1, "sig": hex_encode(&key.0.sign(&canonical).to_bytes())}],
           "signed": signed})
}

impl Evil {
    /// Re-sign `resp` with the stolen online keys after `f` edits the
    /// director targets' `signed`; the time is re-made for this check-in.
    fn forge(&self, req: &Value, mut resp: Value, f: impl FnOnce(&mut Value)) -> Value {
        // The lock holds the current metadata, so the server leaves it out:
        // forge from the copy the attacker saw earlier.
        let mut signed = resp["director_targets"]["signed"].clone();
        if signed.is_null() {
            signed = self.last_targets.clone().expect("metadata seen earlier");
        }
        f(&mut signed);
        let version = signed["version"].as_u64().unwrap();
        let sha: [u8; 32] = Sha256::digest(cjson::to_vec(&signed).unwrap()).into();
        let key = if self.attack == Attack::WrongKey {
            &self.time_key
        } else {
            &self.targets_key
        };
        resp["director_targets"] = sign_env(&signed, key);
        resp["director_targets_version"] = json!(version);
        resp["director_targets_sha256"] = json!(wire::b64::encode(sha));
        self.resign_time(req, &mut resp, &sha, version, &self.time_key);
        resp
    }

    fn resign_time(
        &self,
        req: &Value,
        resp: &mut Value,
        sha: &[u8; 32],
        version: u64,
        key: &(SigningKey, String),
    ) {
        let nonce = wire::b64::decode(req["nonce"].as_str().unwrap()).unwrap();
        let leaf = wire::time_leaf(
            req["device_id"].as_str().unwrap(),
            &nonce,
            req["counter"].as_u64().unwrap(),
            version,
            sha,
        );
        let time = resp["time"]["time"].as_u64().unwrap();
        let mut m = wire::TIME_CONTEXT.to_vec();
        m.extend_from_slice(&time.to_be_bytes());
        m.extend_from_slice(&leaf);
        resp["time"] = json!({"time": time, "merkle_root": wire::b64::encode(leaf), "index": 0,
            "path": [], "sig": wire::b64::encode(key.0.sign(&m).to_bytes())});
    }
}

impl Net for Evil {
    fn check_in(
        &mut self,
        device_id: &str,
        body: &[u8],
        signature: &str,
        max_len: u64,
    ) -> Result<Vec<u8>, NetError> {
        // The lock's request always reaches the real server (so its
        // counter is accepted); asking without a held version makes the
        // server include the metadata, which forging needs.
        let req: Value = serde_json::from_slice(body).unwrap();
        let honest = self.inner.check_in(device_id, body, signature, max_len)?;
        let mut resp: Value = serde_json::from_slice(&honest).unwrap();
        let out = match self.attack {
            Attack::Honest => {
                if !resp["director_targets"].is_null() {
                    self.last_targets = Some(resp["director_targets"]["signed"].clone());
                }
                self.recorded = Some(honest.clone());
                return Ok(honest);
            }
            Attack::Replay => return Ok(self.recorded.clone().unwrap()),
            Attack::Disagree => self.forge(&req, resp, |s| {
                let (_, t) = s["targets"]
                    .as_object_mut()
                    .unwrap()
                    .iter_mut()
                    .next()
                    .unwrap();
                t["length"] = json!(t["length"].as_u64().unwrap() + 1);
                t["hashes"]["sha256"] = json!(hex_encode(&[0xee; 32]));
            }),
            Attack::Unpublished => self.forge(&req, resp, |s| {
                let map = s["targets"].as_object_mut().unwrap();
                let (_, t) = map
                    .iter()
                    .next()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .unwrap();
                map.clear();
                map.insert(format!("{MODEL}/9.9.9.nlfw"), t);
            }),
            Attack::OtherModel => self.forge(&req, resp, |s| {
                let map = s["targets"].as_object_mut().unwrap();
                let (_, mut t) = map
                    .iter()
                    .next()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .unwrap();
                // The other model's published image, as the repository lists it.
                t["length"] = json!(self.other_image.0);
                t["hashes"]["sha256"] = json!(self.other_image.1);
                t["custom"]["nightlatch"]["hardware_model"] = json!("nl-other");
                map.clear();
                map.insert("nl-other/1.1.0.nlfw".into(), t);
            }),
            Attack::Rollback => {
                let v = self.held_version;
                self.forge(&req, resp, |s| s["version"] = json!(v - 1))
            }
            Attack::Expired => {
                self.forge(&req, resp, |s| s["expires"] = json!("2001-01-01T00:00:00Z"))
            }
            Attack::WrongKey => self.forge(&req, resp, |_| {}),
            Attack::ShaMismatch => {
                let version = resp["director_targets_version"].as_u64().unwrap();
                let other = [0x42u8; 32];
                resp["director_targets_sha256"] = json!(wire::b64::encode(other));
                self.resign_time(&req, &mut resp, &other, version, &self.time_key);
                resp
            }
            Attack::OtherLock => self.forge(&req, resp, |s| {
                for (_, t) in s["targets"].as_object_mut().unwrap().iter_mut() {
                    t["custom"]["director"]["device_id"] = json!("lock-someone-else");
                }
            }),
            Attack::ForeignTimeKey => {
                let version = resp["director_targets_version"].as_u64().unwrap();
                let sha: [u8; 32] =
                    wire::b64::decode_array(resp["director_targets_sha256"].as_str().unwrap())
                        .unwrap();
                let foreign = SigningKey::from_bytes(&[0x99; 32]);
                let id = hex_encode(&Sha256::digest(foreign.verifying_key().as_bytes()));
                self.resign_time(&req, &mut resp, &sha, version, &(foreign, id));
                resp
            }
            Attack::BadRootRotation => {
                resp["director_root_version"] = json!(2);
                resp
            }
        };
        Ok(serde_json::to_vec(&out).unwrap())
    }

    fn fetch_metadata(
        &mut self,
        repo: Repo,
        file: &str,
        max_len: u64,
    ) -> Result<Vec<u8>, FetchError> {
        if self.attack == Attack::BadRootRotation && repo == Repo::Director && file == "2.root.json"
        {
            // A root v2 signed only by a key the attacker made.
            let rogue = SigningKey::from_bytes(&[0x77; 32]);
            let id = hex_encode(&Sha256::digest(rogue.verifying_key().as_bytes()));
            let key = json!({"keytype": "ed25519", "scheme": "ed25519",
                             "keyval": {"public": hex_encode(rogue.verifying_key().as_bytes())}});
            let role = json!({"keyids": [id], "threshold": 1});
            let signed = json!({"_type": "root", "spec_version": "1.0.31", "version": 2,
                "expires": "2099-01-01T00:00:00Z", "consistent_snapshot": true,
                "keys": {id.clone(): key},
                "roles": {"root": role, "timestamp": role, "snapshot": role, "targets": role}});
            return Ok(serde_json::to_vec(&sign_env(&signed, &(rogue, id))).unwrap());
        }
        self.inner.fetch_metadata(repo, file, max_len)
    }

    fn fetch_target(&mut self, path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FetchError> {
        self.inner.fetch_target(path, offset, len)
    }
}

/// How a refusal must look.
type Expect = fn(&AgentError) -> bool;

fn key_of(dir: &Path, file: &str, root: &Value, role: &str) -> (SigningKey, String) {
    let sk = nightlatch_repo::keys::load_private_key(&dir.join(file)).unwrap();
    let public = hex_encode(sk.verifying_key().as_bytes());
    let id = root["signed"]["roles"][role]["keyids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .find(|k| root["signed"]["keys"][k]["keyval"]["public"] == json!(public))
        .expect("the key is in the root");
    (sk, id)
}

/// A fixed virtual date (2030-01-07T00:00:00Z, a Monday), not today's: the
/// server, the lock's clock and its provisioning all start here.
fn t0() -> u64 {
    TEST_START
}

/// One attack on a fresh server and lock: a stolen director (its online
/// keys) or a replaying network cannot install what the release key did not
/// sign. The lock first checks in honestly twice (the second answer, with
/// the 1.1.0 assignment, is recorded for the replay), forgets the plan, then
/// meets `attack`: refused as `expected`, nothing staged, DFU untouched,
/// forged metadata not kept. Honest again, the real 1.1.0 is staged.
fn attack_is_refused(attack: Attack, expected: Expect) {
    attack_meets(attack, expected, false);
}

/// The same attack on a lock that has been running since its honest
/// check-ins: its agent resumed from RAM ([`agent::Warm`]), holding the
/// director root and targets it verified then, its plan still made. The
/// attack is refused as `expected`, the plan is what it was, and forged
/// metadata is neither kept on flash nor trusted in RAM (the honest answer
/// afterwards stages the real release).
fn attack_on_a_running_lock_is_refused(attack: Attack, expected: Expect) {
    attack_meets(attack, expected, true);
}

/// The lock's agent: resumed from `warm` (a running lock) or opened from
/// its files (a lock that has just started).
fn agent_of<'d, S: MetadataStore, N: Net>(
    device: &'d Device,
    store: S,
    net: N,
    hw: SimHardware,
    warm: Option<agent::Warm>,
) -> Agent<'d, Flash, S, N, SimHardware> {
    let config = AgentConfig::new("lock-a");
    match warm {
        Some(w) => Agent::resume(&device.flash, device.config, store, net, hw, config, w),
        None => Agent::open(&device.flash, device.config, store, net, hw, config).unwrap(),
    }
}

fn attack_meets(attack: Attack, expected: Expect, running: bool) {
    let server = Server::start(t0()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let fw = SigningKey::from_bytes(&[5; 32]);
    let v1 = harness::envelope(&fw, MODEL, "1.0.0", 1, &harness::payload(20_000, 1, 0)).unwrap();
    let v2 = harness::envelope(&fw, MODEL, "1.1.0", 2, &harness::payload(20_000, 2, 30)).unwrap();
    let other = harness::envelope(
        &fw,
        "nl-other",
        "1.1.0",
        2,
        &harness::payload(20_000, 3, 30),
    )
    .unwrap();
    let mut files = Vec::new();
    for (name, bytes) in [("v1.nlfw", &v1), ("v2.nlfw", &v2), ("other.nlfw", &other)] {
        let p = work.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        files.push(p);
    }
    server.publish(&files).unwrap();

    // One lock, provisioned with the server's roots, registered.
    let anchors = bootloader::TrustAnchors::new(1, 1, &[fw.verifying_key().to_bytes()]).unwrap();
    let device = Device::factory(SMALL, anchors, &v1).unwrap();
    device.boot().unwrap();
    let mut net = HttpNet::new(&server.base);
    let image_root = net
        .fetch_metadata(Repo::Image, "1.root.json", 512_000)
        .unwrap();
    let director_root = net
        .fetch_metadata(Repo::Director, "1.root.json", 512_000)
        .unwrap();
    let seed = [0x31u8; 32];
    let mut store = device.files().unwrap();
    agent::provision(&mut store, &seed, &image_root, &director_root, server.now()).unwrap();
    let public = SigningKey::from_bytes(&seed).verifying_key();
    server
        .admin_ok(
            "POST",
            "/admin/v1/devices",
            Some(json!({"id": "lock-a", "hardware_model": MODEL,
                        "public_key": hex_encode(public.as_bytes())})),
        )
        .unwrap();

    // The attacker holds the director's online keys (a stolen server).
    let root: Value = serde_json::from_slice(&director_root).unwrap();
    let keys = server.data_dir.join("keys/director/keys");
    let mut evil = Evil {
        inner: net,
        attack: Attack::Honest,
        recorded: None,
        last_targets: None,
        targets_key: key_of(&keys, "targets.key", &root, "targets"),
        time_key: key_of(&keys, "timestamp.key", &root, "timestamp"),
        held_version: 0,
        other_image: (other.len() as u64, hex_encode(&Sha256::digest(&other))),
    };
    let dfu = |d: &Device| {
        d.flash.lock(|f| {
            let c = f.borrow();
            c.contents()[SMALL.dfu.offset as usize..SMALL.dfu.end() as usize].to_vec()
        })
    };

    // A first honest check-in (nothing assigned yet), then the rollout and
    // a second one: recorded for the replay, the assignment held.
    // The lock's clock starts at the server's (virtual) now.
    let hw = || SimHardware::new(Clock::virtual_at(server.now()));
    {
        let mut a = Agent::open(
            &device.flash,
            device.config,
            &mut store,
            &mut evil,
            hw(),
            AgentConfig::new("lock-a"),
        )
        .unwrap();
        assert_eq!(a.check_in().unwrap(), CheckIn::UpToDate);
    }
    server
        .admin_ok(
            "POST",
            "/admin/v1/rollouts",
            Some(
                json!({"name": "1.1.0", "target": format!("{MODEL}/1.1.0.nlfw"),
                        "waves": [{"share": 1.0}], "start": true}),
            ),
        )
        .unwrap();
    let warm = {
        let mut a = Agent::open(
            &device.flash,
            device.config,
            &mut store,
            &mut evil,
            hw(),
            AgentConfig::new("lock-a"),
        )
        .unwrap();
        assert!(matches!(a.check_in().unwrap(), CheckIn::Assigned { .. }));
        // Forget the plan so each attack starts from "nothing staged"
        // (unless the lock keeps running).
        a.into_parts().0
    };
    evil.held_version = agent::director::held_targets_version(&store);
    let honest_targets = store.load(agent::director::TARGETS_FILE);
    assert!(evil.held_version >= 2);
    let clean = |store: &mut lock_app::storage::files::FileStore<_>| {
        // Drop the planned staging (as a withdrawn assignment would).
        let mut st: Value =
            serde_json::from_slice(&store.load(agent::STATE_FILE).unwrap()).unwrap();
        st["staging"] = Value::Null;
        store
            .store(agent::STATE_FILE, &serde_json::to_vec(&st).unwrap())
            .unwrap();
    };
    let plan = if running {
        let s = serde_json::from_slice::<agent::State>(&store.load(agent::STATE_FILE).unwrap())
            .unwrap()
            .staging;
        assert!(s.is_some());
        s
    } else {
        clean(&mut store);
        None
    };

    let before = dfu(&device);
    evil.attack = attack;
    let mut a = agent_of(
        &device,
        &mut store,
        &mut evil,
        hw(),
        running.then_some(warm),
    );
    let err = a
        .check_in()
        .expect_err(&format!("{attack:?} must be refused"));
    assert!(expected(&err), "{attack:?}: refused with {err:?}");
    assert!(
        a.state().staging == plan,
        "{attack:?}: the plan is unchanged"
    );
    let warm = a.into_parts().0;
    assert!(before == dfu(&device), "{attack:?}: DFU untouched");
    // Forged metadata is never kept: the lock still holds the honest one —
    // or, when the time names other metadata than it holds, nothing (it
    // asks for a fresh copy next time).
    let held = store.load(agent::director::TARGETS_FILE);
    if attack == Attack::ShaMismatch {
        assert!(held.is_none(), "mismatching metadata is dropped");
    } else {
        assert!(held == honest_targets, "{attack:?}: forged metadata kept");
    }
    println!("{attack:?}: refused with {err}");

    // Honest again: the real assignment is staged and verified.
    evil.attack = Attack::Honest;
    let mut a = agent_of(
        &device,
        &mut store,
        &mut evil,
        hw(),
        running.then_some(warm),
    );
    assert!(matches!(a.check_in().unwrap(), CheckIn::Assigned { .. }));
    loop {
        match a.stage(8).unwrap() {
            agent::StageStatus::Staged => break,
            agent::StageStatus::Downloading { .. } => {}
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_replayed_answer_is_refused() {
    attack_is_refused(Attack::Replay, |e| *e == AgentError::ReplayedResponse);
}

#[test]
fn director_metadata_disagreeing_with_the_image_repository_is_refused() {
    attack_is_refused(Attack::Disagree, |e| {
        *e == AgentError::DirectorImageDisagreement
    });
}

#[test]
fn an_image_the_repository_never_published_is_refused() {
    attack_is_refused(Attack::Unpublished, |e| {
        *e == AgentError::NotInImageRepository
    });
}

#[test]
fn another_models_published_image_is_refused() {
    attack_is_refused(Attack::OtherModel, |e| *e == AgentError::WrongHardwareModel);
}

#[test]
fn director_metadata_older_than_the_lock_holds_is_refused() {
    attack_is_refused(Attack::Rollback, |e| {
        matches!(
            e,
            AgentError::Director(TufError::Rollback {
                role: Role::Targets,
                ..
            })
        )
    });
}

#[test]
fn expired_director_metadata_is_refused() {
    attack_is_refused(Attack::Expired, |e| {
        matches!(
            e,
            AgentError::Director(TufError::Expired {
                role: Role::Targets
            })
        )
    });
}

#[test]
fn director_metadata_signed_by_a_key_outside_its_role_is_refused() {
    attack_is_refused(Attack::WrongKey, |e| {
        matches!(
            e,
            AgentError::Director(TufError::Signature {
                role: Role::Targets,
                ..
            })
        )
    });
}

#[test]
fn a_time_naming_other_metadata_than_the_answer_carries_is_refused() {
    attack_is_refused(Attack::ShaMismatch, |e| {
        *e == AgentError::DirectorTargetsMismatch
    });
}

#[test]
fn director_metadata_for_another_lock_is_refused() {
    attack_is_refused(Attack::OtherLock, |e| *e == AgentError::NotForThisLock);
}

#[test]
fn a_time_signed_by_a_key_outside_the_director_root_is_refused() {
    attack_is_refused(Attack::ForeignTimeKey, |e| *e == AgentError::TimeSignature);
}

#[test]
fn a_director_root_rotation_not_signed_by_the_old_root_is_refused() {
    attack_is_refused(Attack::BadRootRotation, |e| {
        matches!(
            e,
            AgentError::Director(TufError::Signature {
                role: Role::Root,
                ..
            })
        )
    });
}

/// A running lock (agent resumed from RAM, director metadata held there)
/// refuses every attack its director checks catch, as a freshly started one
/// does. (The attacks caught against the image repository are checked when
/// a plan is made; a running lock that already has one keeps it.)
#[test]
fn a_running_lock_refuses_what_a_fresh_one_refuses() {
    let director_attacks: [(Attack, Expect); 8] = [
        (Attack::OtherLock, |e| *e == AgentError::NotForThisLock),
        (Attack::Replay, |e| *e == AgentError::ReplayedResponse),
        (Attack::Rollback, |e| {
            matches!(
                e,
                AgentError::Director(TufError::Rollback {
                    role: Role::Targets,
                    ..
                })
            )
        }),
        (Attack::Expired, |e| {
            matches!(
                e,
                AgentError::Director(TufError::Expired {
                    role: Role::Targets
                })
            )
        }),
        (Attack::WrongKey, |e| {
            matches!(
                e,
                AgentError::Director(TufError::Signature {
                    role: Role::Targets,
                    ..
                })
            )
        }),
        (Attack::ShaMismatch, |e| {
            *e == AgentError::DirectorTargetsMismatch
        }),
        (Attack::ForeignTimeKey, |e| *e == AgentError::TimeSignature),
        (Attack::BadRootRotation, |e| {
            matches!(
                e,
                AgentError::Director(TufError::Signature {
                    role: Role::Root,
                    ..
                })
            )
        }),
    ];
    for (attack, expected) in director_attacks {
        attack_on_a_running_lock_is_refused(attack, expected);
    }
}
