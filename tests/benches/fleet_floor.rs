//! The floor under a fleet rehearsal: what the parts `nightlatch-sim fleet`
//! must run for real cost on this machine, each measured here on one core,
//! times how often a run does them. No rehearsal of that many check-ins and
//! installs can take less CPU than this, whatever the simulator around them
//! does; the wall-time aim of issue 17 (100,000 locks × 7 days in 600 s) is
//! compared with it.
//!
//! Counted per check-in: the lock signs its request (Ed25519), the server
//! verifies it (`verify_strict`), the lock verifies the signed time bound to
//! it (`verify_strict`). Counted per install: the install boot of the
//! fleet's layout and image (the bootloader and embassy-boot on simulated
//! flash, 24 KiB payload as `fleet::scenario::PAYLOAD`), swap or A/B. Not
//! counted, so the true floor is higher: HTTP, SQLite, JSON, the agent's
//! files, staging, the director's signing, the kernel.
//!
//! `cargo bench -p nightlatch-system-tests --bench fleet_floor`
//! (`-- --checkins N --installs N --cores N`; the defaults are the counts of
//! the last 100,000 × 7 days run and this machine's cores).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use bootloader::layout::{Layout, REFERENCE, REFERENCE_AB};
use bootloader::updater::Updater;
use ed25519_dalek::{Signer, SigningKey};
use nightlatch_system_tests::fleet::scenario::PAYLOAD;
use nightlatch_system_tests::harness;
use nightlatch_system_tests::sim::device::Device;

/// Microseconds per call of `f`: the best of five rounds of `n` calls.
fn per_call_us(n: usize, mut f: impl FnMut(usize)) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for i in 0..n {
                f(i);
            }
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// Host milliseconds of one install boot on `layout`: the best of `runs`,
/// each on a lock freshly booted on one release with the next one staged.
fn install_boot_ms(layout: Layout, runs: usize) -> f64 {
    let key = SigningKey::from_bytes(&[9; 32]);
    let model = "nl-pico2w-r1";
    let v1 = harness::envelope(&key, model, "1.0.0", 1, &harness::payload(PAYLOAD, 1, 0)).unwrap();
    let v2 = harness::envelope(&key, model, "1.1.0", 2, &harness::payload(PAYLOAD, 1, 60)).unwrap();
    let anchors = bootloader::TrustAnchors::new(1, 1, &[key.verifying_key().to_bytes()]).unwrap();
    (0..runs)
        .map(|_| {
            let device = Device::factory(layout, anchors, &v1).unwrap();
            device.boot().unwrap();
            let mut up = Updater::new(&device.flash, device.config).unwrap();
            up.begin().unwrap();
            for (i, chunk) in v2.chunks(4096).enumerate() {
                up.write_dfu((i * 4096) as u32, chunk).unwrap();
            }
            up.request_install(&mut [0u8; 4096]).unwrap();
            let t = Instant::now();
            let report = device.boot().unwrap();
            let ms = t.elapsed().as_secs_f64() * 1e3;
            assert!(
                report.trial,
                "the install boot starts the new image on trial"
            );
            ms
        })
        .fold(f64::INFINITY, f64::min)
}

fn arg(name: &str) -> Option<f64> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).and_then(|v| v.parse().ok())
}

fn main() {
    // The last 100,000 locks × 7 days run (tests/README, "Fleet figures"):
    // check-ins, and locks updated (each installed once).
    let checkins = arg("--checkins").unwrap_or(4_259_075.0);
    let installs = arg("--installs").unwrap_or(99_468.0);
    let cores = arg("--cores")
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64));

    let keys: Vec<SigningKey> = (0..64u8)
        .map(|i| SigningKey::from_bytes(&[i; 32]))
        .collect();
    let public: Vec<_> = keys.iter().map(SigningKey::verifying_key).collect();
    // About the size of a check-in body with its usage summary.
    let body = vec![0x5a_u8; 640];
    let n = 4_000;
    let sigs: Vec<_> = (0..n).map(|i| keys[i % 64].sign(&body)).collect();
    let sign_us = per_call_us(n, |i| {
        std::hint::black_box(keys[i % 64].sign(&body));
    });
    let verify_us = per_call_us(n, |i| {
        assert!(public[i % 64].verify_strict(&body, &sigs[i]).is_ok());
    });
    let swap_ms = install_boot_ms(REFERENCE, 5);
    let ab_ms = install_boot_ms(REFERENCE_AB, 5);

    let per_checkin_us = sign_us + 2.0 * verify_us;
    let checkin_s = checkins * per_checkin_us / 1e6;
    println!("one core of this machine, best of five rounds:");
    println!("  Ed25519 sign (the lock's check-in)            {sign_us:>8.1} us");
    println!("  Ed25519 verify_strict (server; lock's time)   {verify_us:>8.1} us");
    println!("  install boot, swap (embassy-boot, 448 pages)  {swap_ms:>8.2} ms");
    println!("  install boot, A/B                             {ab_ms:>8.2} ms");
    println!();
    println!(
        "counts: {checkins:.0} check-ins ({per_checkin_us:.1} us each: one sign, two verifications), {installs:.0} installs, {cores:.0} cores"
    );
    for (mode, boot_ms) in [("swap", swap_ms), ("A/B", ab_ms)] {
        let install_s = installs * boot_ms / 1e3;
        let cpu = checkin_s + install_s;
        println!(
            "floor, {mode:<4}: {checkin_s:>6.0} CPU-s check-in signatures + {install_s:>5.0} CPU-s install boots = {cpu:>6.0} CPU-s, {:>5.0} s wall on {cores:.0} cores (aim 600 s)",
            cpu / cores
        );
    }
}
