//! Key compromise drill on a virtual fleet: the director's online keys
//! (timestamp and targets) and the image repository's timestamp key are
//! declared stolen. A new director root and a new image root rotate them
//! out (signed by the offline root keys, with what `nightlatch-keys rotate` +
//! `sign` run: `nightlatch_repo::ceremony`),
//! the server restarts with the new keys, the fleet follows both root
//! chains and keeps updating, and answers signed with the old keys are
//! refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey};
use lock_app::agent::{Agent, AgentConfig, AgentError, Net, NetError, Repo, wire};
use lock_app::tuf::{FetchError, MetadataStore};
use nightlatch_repo::FixedClock;
use nightlatch_repo::ceremony::{rotate_file, sign_file};
use nightlatch_repo::keysource::{KeySpec, load_public};
use nightlatch_repo::metadata::expiry::ROOT_LIFETIME;
use nightlatch_repo::metadata::{KeyIdOf, PublicKey};
use nightlatch_repo::rotation::Change;
use nightlatch_repo::transcript::Log;
use nightlatch_system_tests::fleet::{Fleet, FleetConfig, Report, Scenario, TEST_START};
use nightlatch_system_tests::sim::device::{Clock, SimHardware};
use nightlatch_system_tests::sim::net::HttpNet;
use serde_json::{Value, json};
use update_server::config::KeysConfig;

const DAY: u64 = 86_400;

/// A fixed virtual date (2030-01-07T00:00:00Z, a Monday), not today's.
fn t0() -> u64 {
    TEST_START
}

fn run(
    fleet: &mut Fleet,
    scenario: &Scenario,
    newest: &BTreeMap<String, String>,
    days: u64,
) -> Report {
    let end = fleet.now + days * DAY;
    while fleet.now < end {
        let step = fleet.now + 6 * 3600;
        fleet.run_until(scenario, step, None);
        if fleet.report(newest).updated_fraction >= 1.0 {
            break;
        }
    }
    fleet.report(newest)
}

fn new_key(dir: &Path, name: &str, seed: u8) -> (PathBuf, PathBuf) {
    let sk = SigningKey::from_bytes(&[seed; 32]);
    let key = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    std::fs::write(
        &key,
        nightlatch_repo::keys::private_key_pem(&sk)
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    std::fs::write(
        &public,
        nightlatch_repo::keys::public_key_pem(&sk.verifying_key()).unwrap(),
    )
    .unwrap();
    (key, public)
}

fn public(path: &Path) -> PublicKey {
    load_public(&KeySpec::File(path.to_owned())).unwrap()
}

/// `nightlatch-keys rotate --from FROM -o OUT --revoke ROLE=OLD.pub --add
/// ROLE=NEW.pub …`, on the virtual clock.
fn rotate(from: &Path, out: &Path, swaps: &[(&str, &Path, &Path)], log: &Log, clock: &FixedClock) {
    let mut changes = Vec::new();
    for (role, old, new) in swaps {
        changes.push(Change::Revoke {
            role: (*role).to_owned(),
            key_id: public(old).key_id(),
        });
        changes.push(Change::Add {
            role: (*role).to_owned(),
            key: public(new),
        });
    }
    rotate_file(from, Some(out), &changes, ROOT_LIFETIME, true, log, clock).unwrap();
}

fn root_version(bytes: &[u8]) -> u64 {
    serde_json::from_slice::<Value>(bytes).unwrap()["signed"]["version"]
        .as_u64()
        .unwrap()
}

/// Re-signs the signed time of every answer with a given key.
struct OldTimeKey {
    inner: HttpNet,
    key: SigningKey,
}

impl Net for OldTimeKey {
    fn check_in(
        &mut self,
        id: &str,
        body: &[u8],
        sig: &str,
        max: u64,
    ) -> Result<Vec<u8>, NetError> {
        let req: Value = serde_json::from_slice(body).unwrap();
        let mut resp: Value =
            serde_json::from_slice(&self.inner.check_in(id, body, sig, max)?).unwrap();
        let sha: [u8; 32] =
            wire::b64::decode_array(resp["director_targets_sha256"].as_str().unwrap()).unwrap();
        let nonce = wire::b64::decode(req["nonce"].as_str().unwrap()).unwrap();
        let leaf = wire::time_leaf(
            id,
            &nonce,
            req["counter"].as_u64().unwrap(),
            resp["director_targets_version"].as_u64().unwrap(),
            &sha,
        );
        let time = resp["time"]["time"].as_u64().unwrap();
        let mut m = wire::TIME_CONTEXT.to_vec();
        m.extend_from_slice(&time.to_be_bytes());
        m.extend_from_slice(&leaf);
        resp["time"] = json!({"time": time, "merkle_root": wire::b64::encode(leaf), "index": 0,
            "path": [], "sig": wire::b64::encode(self.key.sign(&m).to_bytes())});
        Ok(serde_json::to_vec(&resp).unwrap())
    }
    fn fetch_metadata(&mut self, repo: Repo, file: &str, max: u64) -> Result<Vec<u8>, FetchError> {
        self.inner.fetch_metadata(repo, file, max)
    }
    fn fetch_target(&mut self, path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FetchError> {
        self.inner.fetch_target(path, offset, len)
    }
}

#[test]
fn key_compromise_drill_rotates_online_keys_under_a_live_fleet() {
    let mut scenario = Scenario::new(&["nl-lock-v2"], t0()).unwrap();
    let release = scenario.build("1.1.0", 2, 1, &[]).unwrap();
    scenario.publish(&release, Some(&scenario.factory)).unwrap();
    let mut fleet = Fleet::new(
        &scenario,
        FleetConfig {
            locks: 120,
            ..FleetConfig::default()
        },
    )
    .unwrap();
    scenario
        .rollout(&release, "nl-lock-v2", &[0.1, 1.0], "2h", 0.05, 10)
        .unwrap();
    let want = |v: &str| {
        [("nl-lock-v2".to_owned(), v.to_owned())]
            .into_iter()
            .collect::<BTreeMap<_, _>>()
    };
    let r = run(&mut fleet, &scenario, &want("1.1.0"), 4);
    assert!(r.updated_fraction >= 0.99, "{r:#?}");

    // The drill. The old online keys are kept to play the attacker.
    let keys = scenario.server.data_dir.join("keys");
    let old_time =
        nightlatch_repo::keys::load_private_key(&keys.join("director/keys/timestamp.key")).unwrap();
    let fresh = scenario.server.data_dir.join("rotated");
    std::fs::create_dir_all(&fresh).unwrap();
    let (d_ts, d_ts_pub) = new_key(&fresh, "director-timestamp", 0xd1);
    let (d_tg, d_tg_pub) = new_key(&fresh, "director-targets", 0xd2);
    let (i_ts, i_ts_pub) = new_key(&fresh, "image-timestamp", 0xd3);
    let log = Log {
        transcript: Some(fresh.join("transcript.jsonl")),
        who: Some("drill".into()),
    };
    // The keyholders sign on the fleet's (virtual) date.
    let clock = FixedClock::at_unix(scenario.server.now());
    let d2 = keys.join("director/2.root.json");
    rotate(
        &keys.join("director/1.root.json"),
        &d2,
        &[
            (
                "timestamp",
                &keys.join("director/keys/timestamp.pub"),
                &d_ts_pub,
            ),
            (
                "targets",
                &keys.join("director/keys/targets.pub"),
                &d_tg_pub,
            ),
        ],
        &log,
        &clock,
    );
    sign_file(
        &d2,
        Some(&keys.join("director/1.root.json")),
        &KeySpec::File(keys.join("director/keys/root.key")),
        &log,
        &clock,
    )
    .unwrap();
    let i2 = fresh.join("image-2.root.json");
    rotate(
        &keys.join("image/1.root.json"),
        &i2,
        &[(
            "timestamp",
            &keys.join("image/keys/timestamp.pub"),
            &i_ts_pub,
        )],
        &log,
        &clock,
    );
    // Every image root key signs, and each signature must go through, each
    // with its own key (a lock trusts image root 2 only if the thresholds of
    // root 1 and of root 2 signed it).
    let mut signers = BTreeSet::new();
    for k in ["root-1", "root-2", "root-3"] {
        let key_id = sign_file(
            &i2,
            Some(&keys.join("image/1.root.json")),
            &KeySpec::File(keys.join(format!("image/keys/{k}.key"))),
            &log,
            &clock,
        )
        .unwrap_or_else(|e| panic!("signing the new image root with {k}: {e:?}"));
        assert!(signers.insert(key_id), "{k} signed as an earlier key");
    }
    let image_root_2: Value = serde_json::from_slice(&std::fs::read(&i2).unwrap()).unwrap();
    scenario
        .server
        .admin_ok(
            "PUT",
            "/admin/v1/repo/roots/2.root.json",
            Some(image_root_2),
        )
        .unwrap();
    let s = |p: &Path| Some(p.display().to_string());
    scenario
        .server
        .restart_with_keys(KeysConfig {
            image_root: Some(keys.join("image/1.root.json")),
            director_root: Some(d2.clone()),
            image_snapshot: s(&keys.join("image/keys/snapshot.key")),
            image_timestamp: s(&i_ts),
            director_targets: s(&d_tg),
            director_timestamp: s(&d_ts),
        })
        .unwrap();
    scenario
        .server
        .admin_ok("POST", "/admin/v1/repo/refresh", None)
        .unwrap();

    // The fleet follows: a day of check-ins, then every lock trusts both v2 roots.
    let after = run(&mut fleet, &scenario, &want("9.9.9"), 1);
    eprintln!(
        "after the rotation: {:?} refusals, {:?}",
        after.refusals, after.refusals_by_kind
    );
    let mut behind = Vec::new();
    fleet.for_each(|l| {
        let files = l.device.files().unwrap();
        let d = root_version(&files.load("director/root").unwrap());
        if d != 2 {
            behind.push(format!("{} director root v{d}", l.id));
        }
    });
    assert!(behind.is_empty(), "{behind:?}");

    // And keeps updating (the image repository's new timestamp key included).
    let next = scenario.build("1.2.0", 3, 2, &[]).unwrap();
    scenario.publish(&next, Some(&release)).unwrap();
    scenario
        .rollout(&next, "nl-lock-v2", &[0.1, 1.0], "2h", 0.05, 10)
        .unwrap();
    let r = run(&mut fleet, &scenario, &want("1.2.0"), 4);
    eprintln!("{r:#?}");
    assert!(r.updated_fraction >= 0.99, "{r:#?}");
    assert_eq!(r.bricked, 0);
    fleet.for_each(|l| {
        let files = l.device.files().unwrap();
        assert_eq!(
            root_version(&files.load("image/root").unwrap()),
            2,
            "{}",
            l.id
        );
    });

    // Answers signed with the old director timestamp key are refused.
    let mut refused = None;
    let fleet_now = fleet.now;
    fleet.for_each(|l| {
        if refused.is_some() {
            return;
        }
        let files = l.device.files().unwrap();
        let net = OldTimeKey {
            inner: HttpNet::new(&scenario.server.base),
            key: old_time.clone(),
        };
        let mut a = Agent::open(
            &l.device.flash,
            l.device.config,
            files,
            net,
            SimHardware::new(Clock::virtual_at(fleet_now)),
            AgentConfig::new(&l.id),
        )
        .unwrap();
        refused = Some(a.check_in());
    });
    assert_eq!(refused.unwrap(), Err(AgentError::TimeSignature));
}
