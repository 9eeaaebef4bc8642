//! One simulated lock (`nightlatch-sim lock`: the real agent and bootloader
//! on simulated flash) against a real server on loopback: provision,
//! register, a rollout delivered through a patch, installed, self-tested,
//! confirmed and reported; then a bad release that fails its self-test,
//! reverts, and is reported as rolled back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use nightlatch_system_tests::fleet::TEST_START;
use nightlatch_system_tests::harness::{self, Server};
use nightlatch_system_tests::sim::lock::{ClockMode, LockArgs};
use serde_json::json;

const MODEL: &str = "nl-test";

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn args(server: &Server, state: &Path, fw: &Path, anchor: &Path) -> LockArgs {
    LockArgs {
        server: server.base.clone(),
        state_dir: state.to_owned(),
        id: Some("lock-e2e-1".into()),
        firmware: Some(fw.to_owned()),
        anchors: vec![anchor.to_owned()],
        image_root: None,
        director_root: None,
        register: false,
        token: Some(server.admin.clone()),
        check_ins: 1,
        until_version: None,
        interval: 600,
        clock: ClockMode::Virtual,
        start: Some(t0().to_string()),
        fail_self_test_on: None,
        json: false,
    }
}

/// A fixed virtual date (2030-01-07T00:00:00Z, a Monday), not today's: the
/// server and the simulated lock (`nightlatch-sim lock --clock virtual
/// --start`) both start here.
fn t0() -> u64 {
    TEST_START
}

#[test]
fn a_lock_updates_through_a_patch_and_reverts_a_bad_release() {
    let server = Server::start(t0()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let fw_key = SigningKey::from_bytes(&[7; 32]);
    let anchor = write(
        dir,
        "fw.pub",
        nightlatch_repo::keys::public_key_pem(&fw_key.verifying_key())
            .unwrap()
            .as_bytes(),
    );
    let v1 =
        harness::envelope(&fw_key, MODEL, "1.0.0", 1, &harness::payload(48_000, 1, 0)).unwrap();
    let v2 =
        harness::envelope(&fw_key, MODEL, "1.1.0", 2, &harness::payload(48_000, 2, 40)).unwrap();
    let v1p = write(dir, "v1.nlfw", &v1);
    let v2p = write(dir, "v2.nlfw", &v2);
    let patch = harness::patch(&v1, &v2).unwrap();
    assert!(patch.len() < v2.len() / 4, "patch {} bytes", patch.len());
    let patchp = write(dir, "v1-v2.nldp", &patch);
    server.publish(&[v1p.clone(), v2p, patchp]).unwrap();

    // First run: provision, register, check in (nothing to do).
    let state = dir.join("lock");
    let mut a = args(&server, &state, &v1p, &anchor);
    a.register = true;
    let s = a.drive().unwrap();
    assert_eq!(s.version, "1.0.0");
    assert_eq!(s.installs, 0);

    // A rollout of 1.1.0 to every eligible lock.
    let target = format!("{MODEL}/1.1.0.nlfw");
    server
        .admin_ok(
            "POST",
            "/admin/v1/rollouts",
            Some(json!({"name": "1.1.0", "target": target, "waves": [{"share": 1.0}], "start": true})),
        )
        .unwrap();
    let mut a = args(&server, &state, &v1p, &anchor);
    a.check_ins = 4;
    a.until_version = Some("1.1.0".into());
    let s = a.drive().unwrap();
    assert_eq!(s.version, "1.1.0", "{s:?}");
    assert_eq!(s.installs, 1);
    // Through the patch: far fewer firmware bytes than the image.
    assert!(
        s.traffic.target_received < v2.len() as u64 / 2,
        "firmware bytes on air {} for a {} byte image",
        s.traffic.target_received,
        v2.len()
    );
    let d = server
        .admin_ok("GET", "/admin/v1/devices/lock-e2e-1", None)
        .unwrap();
    let text = d.to_string();
    assert!(text.contains("1.1.0"), "{text}");
    assert!(text.contains("confirmed"), "{text}");

    // A bad release: its self-test fails; the bootloader reverts.
    let v3 =
        harness::envelope(&fw_key, MODEL, "1.2.0", 3, &harness::payload(48_000, 3, 80)).unwrap();
    let v3p = write(dir, "v3.nlfw", &v3);
    server.publish(&[v3p]).unwrap();
    server
        .admin_ok(
            "POST",
            "/admin/v1/rollouts",
            Some(json!({"name": "1.2.0", "target": format!("{MODEL}/1.2.0.nlfw"), "waves": [{"share": 1.0}], "start": true})),
        )
        .unwrap();
    let mut a = args(&server, &state, &v1p, &anchor);
    a.check_ins = 3;
    a.fail_self_test_on = Some("1.2.0".into());
    let s = a.drive().unwrap();
    assert_eq!(s.version, "1.1.0", "reverted: {s:?}");
    assert_eq!(s.self_test_failures, 1);
    let h = server
        .admin_ok("GET", "/admin/v1/devices/lock-e2e-1/history", None)
        .unwrap()
        .to_string();
    assert!(h.contains("rolled_back"), "{h}");
}
