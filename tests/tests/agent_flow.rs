//! The agent's update flow against a real server on loopback, with the
//! network and power misbehaving: a full-image download dropped mid-way
//! and a reset resume with HTTP `Range` from where they stopped (nothing
//! downloaded twice), the check-in counter stays strictly increasing across
//! resets, the install is confirmed and reported, and a paused rollout
//! withdraws an assignment that was not installed yet.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bootloader::layout::SMALL;
use ed25519_dalek::SigningKey;
use lock_app::agent::{
    self, Agent, AgentConfig, AgentError, BootOutcome, CheckIn, Net, NetError, Repo, StageStatus,
};
use lock_app::scheduler::{Decision, UsageProfile};
use lock_app::tuf::FetchError;
use nightlatch_system_tests::fleet::TEST_START;
use nightlatch_system_tests::harness::{self, Server};
use nightlatch_system_tests::sim::device::{Clock, Device, SimHardware};
use nightlatch_system_tests::sim::net::HttpNet;
use serde_json::json;

const MODEL: &str = "nl-test";

/// A radio whose firmware downloads drop after `budget` range requests.
struct Dropping {
    inner: HttpNet,
    budget: Option<u32>,
    ranges: Vec<(u64, u32)>,
}

impl Net for Dropping {
    fn check_in(
        &mut self,
        id: &str,
        body: &[u8],
        sig: &str,
        max: u64,
    ) -> Result<Vec<u8>, NetError> {
        self.inner.check_in(id, body, sig, max)
    }
    fn fetch_metadata(&mut self, repo: Repo, file: &str, max: u64) -> Result<Vec<u8>, FetchError> {
        self.inner.fetch_metadata(repo, file, max)
    }
    fn fetch_target(&mut self, path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FetchError> {
        if let Some(b) = self.budget.as_mut() {
            if *b == 0 {
                return Err(FetchError::Other);
            }
            *b -= 1;
        }
        self.ranges.push((offset, len));
        self.inner.fetch_target(path, offset, len)
    }
}

/// A fixed virtual date (2030-01-07T00:00:00Z, a Monday), not today's: the
/// server, the lock's clock and its provisioning all start here.
fn t0() -> u64 {
    TEST_START
}

fn config() -> AgentConfig {
    let mut c = AgentConfig::new("lock-f");
    c.chunk = 4096;
    c.time_zone = Some("UTC".into());
    c
}

#[test]
fn resumable_staging_install_report_and_withdrawal() {
    let server = Server::start(t0()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let fw = SigningKey::from_bytes(&[9; 32]);
    let v1 = harness::envelope(&fw, MODEL, "1.0.0", 1, &harness::payload(40_000, 1, 0)).unwrap();
    let v2 = harness::envelope(&fw, MODEL, "1.1.0", 2, &harness::payload(40_000, 2, 50)).unwrap();
    let v3 = harness::envelope(&fw, MODEL, "1.2.0", 3, &harness::payload(40_000, 3, 90)).unwrap();
    let path = |n: &str, b: &[u8]| {
        let p = work.path().join(n);
        std::fs::write(&p, b).unwrap();
        p
    };
    server
        .publish(&[path("v1.nlfw", &v1), path("v2.nlfw", &v2)])
        .unwrap();

    let anchors = bootloader::TrustAnchors::new(1, 1, &[fw.verifying_key().to_bytes()]).unwrap();
    let device = Device::factory(SMALL, anchors, &v1).unwrap();
    device.boot().unwrap();
    let mut net = Dropping {
        inner: HttpNet::new(&server.base),
        budget: None,
        ranges: Vec::new(),
    };
    let image_root = net
        .fetch_metadata(Repo::Image, "1.root.json", 512_000)
        .unwrap();
    let director_root = net
        .fetch_metadata(Repo::Director, "1.root.json", 512_000)
        .unwrap();
    let seed = [0x44u8; 32];
    let mut store = device.files().unwrap();
    agent::provision(&mut store, &seed, &image_root, &director_root, server.now()).unwrap();
    server
        .admin_ok(
            "POST",
            "/admin/v1/devices",
            Some(json!({"id": "lock-f", "hardware_model": MODEL,
                "public_key": hex::encode(SigningKey::from_bytes(&seed).verifying_key().as_bytes())})),
        )
        .unwrap();
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
    // The lock's clock starts at the server's (virtual) now.
    let hw = || SimHardware::new(Clock::virtual_at(server.now()));
    macro_rules! open {
        () => {
            Agent::open(
                &device.flash,
                device.config,
                &mut store,
                &mut net,
                hw(),
                config(),
            )
            .unwrap()
        };
    }

    // Assigned (no patch published: the full image), then the connection
    // drops after three 4 KiB ranges.
    let mut a = open!();
    assert!(matches!(
        a.check_in().unwrap(),
        CheckIn::Assigned { patch: false, .. }
    ));
    let reserved = a.state().counter_reserved;
    drop(a);
    net.budget = Some(3);
    let mut a = open!();
    assert_eq!(a.stage(100), Err(AgentError::Network));
    assert_eq!(a.state().staging.as_ref().unwrap().offset, 3 * 4096);
    drop(a);

    // Reset (the bootloader runs; nothing is requested), reopen, resume.
    device.boot().unwrap();
    net.budget = None;
    let before = net.ranges.len();
    let mut a = open!();
    // The counter continues above every value used before the reset.
    assert_eq!(
        a.check_in().unwrap(),
        CheckIn::Assigned {
            target: format!("{MODEL}/1.1.0.nlfw"),
            patch: false
        }
    );
    assert!(a.state().counter_reserved >= reserved);
    loop {
        match a.stage(100).unwrap() {
            StageStatus::Staged => break,
            StageStatus::Downloading { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    drop(a);
    let resumed = &net.ranges[before..];
    assert_eq!(resumed[0].0, 3 * 4096, "resumed with Range from the offset");
    let fetched: u64 = net.ranges.iter().map(|r| u64::from(r.1)).sum();
    assert_eq!(fetched, v2.len() as u64, "nothing downloaded twice");

    // The scheduler (night, door closed, nobody around), the install, the
    // trial boot, the self-test, the confirmation, the report.
    // 03:00 UTC on the virtual start date (a Monday night): the middle of
    // the night, where a lock that has learned nothing installs.
    let mut a = open!();
    a.hw.clock.set(server.now() / 86_400 * 86_400 + 3 * 3600);
    assert_eq!(
        a.decide(&UsageProfile::new(), true, None, 5_000),
        Decision::InstallNow
    );
    a.install().unwrap();
    drop(a);
    let report = device.boot().unwrap();
    assert!(report.trial);
    let mut a = open!();
    a.hw.running = "1.1.0".into();
    assert_eq!(
        a.after_boot().unwrap(),
        BootOutcome::Confirmed {
            version: "1.1.0".into()
        }
    );
    assert_eq!(a.check_in().unwrap(), CheckIn::UpToDate);
    drop(a);
    let d = server
        .admin_ok("GET", "/admin/v1/devices/lock-f", None)
        .unwrap()
        .to_string();
    assert!(d.contains("1.1.0") && d.contains("confirmed"), "{d}");

    // A paused rollout withdraws an assignment not installed yet.
    server.publish(&[path("v3.nlfw", &v3)]).unwrap();
    let id = server
        .admin_ok(
            "POST",
            "/admin/v1/rollouts",
            Some(
                json!({"name": "1.2.0", "target": format!("{MODEL}/1.2.0.nlfw"),
                        "waves": [{"share": 1.0}], "start": true}),
            ),
        )
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut a = open!();
    assert!(matches!(a.check_in().unwrap(), CheckIn::Assigned { .. }));
    server
        .admin_ok(
            "POST",
            &format!("/admin/v1/rollouts/{id}/pause"),
            Some(json!({"reason": "test"})),
        )
        .unwrap();
    assert_eq!(a.check_in().unwrap(), CheckIn::Withdrawn);
    assert!(a.state().staging.is_none());
    assert_eq!(a.running().unwrap().version, "1.1.0");
}
