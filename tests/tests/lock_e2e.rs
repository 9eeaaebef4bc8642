//! One simulated lock (`nightlatch-sim lock`: the real agent and bootloader
//! on simulated flash) against a real server on loopback: provision,
//! register, a rollout delivered through a patch, installed, self-tested,
//! confirmed and reported; then a bad release that fails its self-test,
//! reverts, and is reported as rolled back. In both boot modes (`--boot
//! swap`, `--boot ab`): the mode and the lock's OTP are saved with its
//! flash and kept across runs (a later run cannot switch the mode, and the
//! OTP's anti-rollback floor survives erased boot records).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use nightlatch_system_tests::fleet::TEST_START;
use nightlatch_system_tests::harness::{self, Server};
use nightlatch_system_tests::sim::device::{Boot, Device};
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
        boot: None,
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
    updates_and_reverts(None);
}

#[test]
fn an_ab_lock_updates_reverts_and_keeps_its_mode_and_otp() {
    updates_and_reverts(Some(Boot::Ab));
}

/// The whole story for a lock made with `--boot` `boot` (default: swap).
fn updates_and_reverts(boot: Option<Boot>) {
    let mode = boot.unwrap_or_default();
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
    a.boot = boot;
    let s = a.drive().unwrap();
    assert_eq!(s.version, "1.0.0");
    assert_eq!(s.installs, 0);
    assert_eq!(s.boot, mode);
    let lock_json = std::fs::read_to_string(state.join("lock.json")).unwrap();
    assert!(
        lock_json.contains(&format!("\"boot\": \"{mode}\"")),
        "{lock_json}"
    );

    // The saved mode is the lock's: another --boot is refused, nothing
    // runs; the same one (or none) is fine.
    let other = match mode {
        Boot::Swap => Boot::Ab,
        Boot::Ab => Boot::Swap,
    };
    let flash_before = std::fs::read(state.join("flash.bin")).unwrap();
    let mut a = args(&server, &state, &v1p, &anchor);
    a.boot = Some(other);
    let e = a.drive().unwrap_err().to_string();
    assert!(
        e.contains(&format!("--boot {mode}")) && e.contains(&format!("--boot {other}")),
        "{e}"
    );
    assert_eq!(
        std::fs::read(state.join("flash.bin")).unwrap(),
        flash_before,
        "a refused run leaves the flash alone"
    );
    let mut a = args(&server, &state, &v1p, &anchor);
    a.boot = Some(mode);
    a.check_ins = 0;
    assert_eq!(a.drive().unwrap().boot, mode);

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
    assert_eq!(s.boot, mode);
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
    // 1.1.0 (counter 2) settled: the OTP minimum rose with the record's,
    // the anchor set version is there too, and both are saved.
    assert_eq!(s.otp_min_security_counter, 2, "{s:?}");
    assert_eq!(s.otp_anchors_version, 1, "{s:?}");
    let otp = std::fs::read_to_string(Device::otp_path(&state.join("flash.bin"))).unwrap();
    let otp: serde_json::Value = serde_json::from_str(&otp).unwrap();
    assert_eq!(
        otp["programmed"],
        json!([[0x100, 0b11], [0x108, 0b1]]),
        "thermometer rows: minimum 2 at row 0x100, anchor set 1 at row 0x108"
    );

    // The OTP is the lock's, not its flash's: with the boot records erased
    // (an attacker with flash access, a failed sector) the floor stays.
    let mut flash = std::fs::read(state.join("flash.bin")).unwrap();
    let records = mode.reference().boot_records;
    flash[records.offset as usize..records.end() as usize].fill(0xFF);
    std::fs::write(state.join("flash.bin"), flash).unwrap();
    let mut a = args(&server, &state, &v1p, &anchor);
    a.check_ins = 0;
    let s = a.drive().unwrap();
    assert_eq!(s.boot, mode);
    assert_eq!(s.otp_min_security_counter, 2, "{s:?}");
    // Whichever image it picks without records (A/B: both slots hold one),
    // never 1.0.0 (counter 1), below the OTP's minimum.
    assert_ne!(s.version, "1.0.0", "{s:?}");
}
