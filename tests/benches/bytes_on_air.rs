//! Bytes on air and flash writes of one lock (`nightlatch-sim lock`: the real
//! agent and bootloader on simulated flash) against a real server on
//! loopback:
//!
//! (a) an idle check-in with no update (aim ≤ 1 KiB);
//! (b) a whole update through a patch of a firmware-corpus pair (Nuki Hub
//!     8.11 → 8.12, ESP32, from `../shared/firmware-corpus/`), compared with
//!     the full image;
//! (c) an otherwise idle check-in carrying the lock's usage summary (sent
//!     the first time, on a material change, and a day after the last one;
//!     aim ≤ 1 KiB too): of a lock that has never updated, and of the lock
//!     above after its update (its report then carries `last_update`).
//!
//! `cargo bench -p nightlatch-system-tests --bench bytes_on_air`
//! (corpus directory: `NIGHTLATCH_CORPUS`, default `../shared/firmware-corpus`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use nightlatch_system_tests::harness::{self, Server};
use nightlatch_system_tests::sim::lock::{ClockMode, LockArgs, Summary};
use nightlatch_system_tests::sim::net::Traffic;
use serde_json::json;

const MODEL: &str = "nl-lock-esp32";

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A fixed virtual date (Monday 2030-01-07 00:00 UTC): the figures do not
/// depend on the day or hour the bench is run.
fn now() -> u64 {
    nightlatch_system_tests::fleet::TEST_START
}

fn args(server: &Server, state: &Path, fw: &Path, anchor: &Path) -> LockArgs {
    LockArgs {
        server: server.base.clone(),
        state_dir: state.to_owned(),
        id: Some("lock-bench".into()),
        boot: None,
        firmware: Some(fw.to_owned()),
        anchors: vec![anchor.to_owned()],
        image_root: None,
        director_root: None,
        register: false,
        token: Some(server.admin.clone()),
        check_ins: 1,
        until_version: None,
        interval: 3600,
        clock: ClockMode::Virtual,
        start: Some(now().to_string()),
        fail_self_test_on: None,
        json: false,
    }
}

fn row(what: &str, t: &Traffic) {
    println!(
        "| {what} | {} | {} | {} | {} | {} | {} |",
        t.requests,
        t.checkin_sent,
        t.checkin_received,
        t.metadata_sent + t.metadata_received,
        t.target_sent + t.target_received,
        t.total()
    );
}

fn main() {
    let corpus = std::env::var("NIGHTLATCH_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/firmware-corpus")
        });
    let old = std::fs::read(corpus.join("nuki-hub-esp32/8.11.bin"))
        .unwrap_or_else(|e| panic!("{}: {e}", corpus.display()));
    let new = std::fs::read(corpus.join("nuki-hub-esp32/8.12.bin")).unwrap();

    let server = Server::start(now()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let key = SigningKey::from_bytes(&[11; 32]);
    let anchor = write(
        dir,
        "fw.pub",
        nightlatch_repo::keys::public_key_pem(&key.verifying_key())
            .unwrap()
            .as_bytes(),
    );
    let v1 = harness::envelope(&key, MODEL, "8.11.0", 1, &old).unwrap();
    let v2 = harness::envelope(&key, MODEL, "8.12.0", 1, &new).unwrap();
    let t = std::time::Instant::now();
    let patch = harness::patch(&v1, &v2).unwrap();
    println!(
        "patch 8.11 -> 8.12: {} bytes ({:.2} % of the {} byte image), made in {:.1} s",
        patch.len(),
        100.0 * patch.len() as f64 / v2.len() as f64,
        v2.len(),
        t.elapsed().as_secs_f64()
    );
    let v1p = write(dir, "v1.nlfw", &v1);
    let v2p = write(dir, "v2.nlfw", &v2);
    let pp = write(dir, "p.nldp", &patch);
    server.publish(&[v1p.clone(), v2p.clone(), pp]).unwrap();

    let state = dir.join("lock");
    let mut a = args(&server, &state, &v1p, &anchor);
    a.register = true;
    let first: Summary = a.drive().unwrap();
    // Idle check-ins: the lock holds the current director metadata.
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(args(&server, &state, &v1p, &anchor).drive().unwrap());
    }

    server
        .admin_ok(
            "POST",
            "/admin/v1/rollouts",
            Some(
                json!({"name": "8.12", "target": format!("{MODEL}/8.12.0.nlfw"),
                        "waves": [{"share": 1.0}], "start": true}),
            ),
        )
        .unwrap();
    let mut a = args(&server, &state, &v1p, &anchor);
    a.check_ins = 6;
    a.until_version = Some("8.12.0".into());
    let update = a.drive().unwrap();
    assert_eq!(update.version, "8.12.0", "{update:?}");
    let after = args(&server, &state, &v1p, &anchor).drive().unwrap();
    // A day later a lock sends its (unchanged) usage summary again: this
    // one, and a second lock that never updated.
    let daily_after = |state: &Path| {
        let mut a = args(&server, state, &v1p, &anchor);
        a.check_ins = 2;
        a.interval = 86_400;
        a.drive().unwrap()
    };
    let updated = daily_after(&state);
    let fresh_state = dir.join("fresh");
    // Leaves the factory with 8.12: nothing to update, no `last_update`.
    let mut a = args(&server, &fresh_state, &v2p, &anchor);
    a.id = Some("lock-fresh".into()); // as long as "lock-bench"
    a.register = true;
    a.drive().unwrap();
    let fresh = daily_after(&fresh_state);

    println!();
    println!(
        "| what | HTTP requests | check-in sent | check-in received | metadata | firmware | total bytes |"
    );
    println!("|---|---|---|---|---|---|---|");
    row("first boot: roots + first check-in", &first.traffic);
    for (i, s) in idle.iter().enumerate() {
        row(&format!("(a) idle check-in #{}", i + 1), &s.traffic);
    }
    row(
        &format!(
            "(b) update 8.11 -> 8.12 via patch ({} check-ins)",
            update.check_ins
        ),
        &update.traffic,
    );
    row("idle check-in after the update", &after.traffic);
    row(
        "(c) never updated: two check-ins a day apart",
        &fresh.traffic,
    );
    row(
        "(c) after the update: two check-ins a day apart",
        &updated.traffic,
    );
    println!();
    let idle_max = idle.iter().map(|s| s.traffic.total()).max().unwrap_or(0);
    assert!(
        idle.iter().flat_map(|s| &s.check_in_log).all(|c| !c.usage),
        "idle check-ins carry no usage summary"
    );
    println!(
        "(a) idle check-in: {idle_max} bytes on air at most (aim <= 1024): {}",
        if idle_max <= 1024 { "met" } else { "NOT met" }
    );
    for (what, s) in [("never updated", &fresh), ("after the update", &updated)] {
        let carrying: Vec<_> = s.check_in_log.iter().filter(|c| c.usage).collect();
        assert_eq!(carrying.len(), 1, "{:?}", s.check_in_log);
        let plain = s
            .check_in_log
            .iter()
            .filter(|c| !c.usage)
            .map(|c| c.total())
            .max()
            .unwrap_or(0);
        let with = carrying[0];
        println!(
            "(c) {what}: idle check-in carrying the usage summary: {} bytes on air ({} sent, {} received; {plain} without it) (aim <= 1024): {}",
            with.total(),
            with.sent,
            with.received,
            if with.total() <= 1024 {
                "met"
            } else {
                "NOT met"
            }
        );
    }
    let first_usage = first.check_in_log.iter().filter(|c| c.usage).count();
    println!(
        "    the summary rode along {} time(s) in the first boot, {} time(s) in the update's {} check-ins",
        first_usage,
        update.check_in_log.iter().filter(|c| c.usage).count(),
        update.check_ins
    );
    println!(
        "(b) whole update: {} bytes on air = {:.2} % of the {} byte full image; firmware bytes {} (patch {} + HTTP headers)",
        update.traffic.total(),
        100.0 * update.traffic.total() as f64 / v2.len() as f64,
        v2.len(),
        update.traffic.target_sent + update.traffic.target_received,
        patch.len()
    );
    println!(
        "(b) flash: {} sector erases, {} bytes programmed (staging + swap + agent files); idle check-in: {} erases, {} bytes",
        update.flash_erases,
        update.flash_bytes_written,
        idle.last().map_or(0, |s| s.flash_erases),
        idle.last().map_or(0, |s| s.flash_bytes_written)
    );
}
