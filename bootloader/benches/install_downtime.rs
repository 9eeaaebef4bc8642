//! Install downtime, swap and A/B side by side: a 1.5 MiB image on the
//! reference layouts (4 MiB W25Q32JV, 1,792 KiB images), every flash
//! operation of the real boot flow charged by the simulator's datasheet
//! timing model (`bootloader::sim::timing`, typical and maximum columns).
//!
//! Run: `cargo bench -p bootloader --bench install_downtime`
//!
//! Prints figures; does not pass or fail. For each mode:
//! - staging (the lock in service): erases and bytes written;
//! - the install boot: what the bootloader does between the reset and the
//!   jump to the new image (flash time + verification compute);
//! - the confirm (`mark_booted`), the next boot, and a revert after a
//!   failed trial.
//!
//! Unavailable time = install boot + confirm + reset and start-up of the
//! image. Verification compute is charged two ways: SHA-256 in software
//! (4.97 MB/s) and on the RP2350's SHA-256 block (79.3 MB/s), each plus
//! 107 ms per Ed25519 signature (sources in `bootloader::sim::timing`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;

use bootloader::TrustAnchors;
use bootloader::anchors::key_id;
use bootloader::boot::{BootConfig, Bootloader, SharedFlash};
use bootloader::envelope::{HardwareModel, Header, Prefix, SignatureEntry, Version};
use bootloader::layout::{Layout, REFERENCE, REFERENCE_AB};
use bootloader::sim::timing::{CORTEX_M33_150MHZ, Compute, RP2350_SHA256_HW};
use bootloader::sim::{Erased, SimFlash, Stats};
use bootloader::updater::Updater;
use ed25519_dalek::{Signer, SigningKey};
use embassy_sync::blocking_mutex::Mutex;
use sha2::{Digest, Sha256};

type Flash = SimFlash<4, 4096>;

/// Reset, boot ROM and the application's start until the lock answers
/// again (an assumption for the reference board, not a measurement; the
/// same in both modes).
const RESET_AND_START_MS: f64 = 250.0;

fn envelope(key: &SigningKey, version: Version, counter: u32, payload: &[u8]) -> Vec<u8> {
    let h = Header {
        model: HardwareModel::new("nl-pico2w-r1").unwrap(),
        version,
        security_counter: counter,
        payload_len: payload.len() as u32,
        payload_sha256: Sha256::digest(payload).into(),
    };
    let sig = SignatureEntry {
        key_id: key_id(&key.verifying_key().to_bytes()),
        signature: key.sign(&h.encode()).to_bytes(),
    };
    let mut out = Prefix::encode(&h, &[sig]).unwrap().to_vec();
    out.extend_from_slice(payload);
    out
}

/// One phase: flash counters and the images it verified.
#[derive(Clone, Copy)]
struct Phase {
    stats: Stats,
    signatures: u64,
}

impl Phase {
    fn flash_ms(&self, max: bool) -> f64 {
        let ns = if max {
            self.stats.busy_max_ns
        } else {
            self.stats.busy_typ_ns
        };
        ns as f64 / 1e6
    }
    /// Every byte a boot reads is hashed (the records and STATE add < 1 KiB).
    fn verify_ms(&self, c: &Compute) -> f64 {
        c.verify_ns(self.stats.bytes_read, self.signatures) as f64 / 1e6
    }
    fn total_ms(&self, max: bool, c: &Compute) -> f64 {
        self.flash_ms(max) + self.verify_ms(c)
    }
}

struct Run {
    staging: Phase,
    install: Phase,
    /// Host time the simulated install boot took (what a fleet rehearsal
    /// pays per install).
    install_host: std::time::Duration,
    confirm: Phase,
    next: Phase,
    revert: Phase,
}

fn run(layout: Layout) -> Run {
    let image_len = 1536 * 1024;
    let key = SigningKey::from_bytes(&[7; 32]);
    let p1: Vec<u8> = (0..image_len).map(|i| (i * 31 % 251) as u8).collect();
    let p2: Vec<u8> = (0..image_len).map(|i| (i * 17 % 241) as u8).collect();
    let v1 = envelope(&key, Version::new(1, 0, 0), 1, &p1);
    let v2 = envelope(&key, Version::new(1, 1, 0), 2, &p2);
    let v3 = envelope(&key, Version::new(1, 2, 0), 3, &p1);

    let mut sim = Flash::new(layout.flash_size as usize, Erased::Ones);
    sim.program_raw(layout.active.offset as usize, &v1);
    let flash: SharedFlash<Flash> = Mutex::new(RefCell::new(sim));
    let config = BootConfig {
        model: HardwareModel::new("nl-pico2w-r1").unwrap(),
        genesis: TrustAnchors::new(1, 1, &[key.verifying_key().to_bytes()]).unwrap(),
        layout,
    };
    let mut buf = vec![0u8; 4096];
    let stats = || flash.lock(|f| f.borrow().stats());
    let boot = |buf: &mut [u8]| Bootloader::new(&flash, config).unwrap().boot(buf).unwrap();
    let stage = |env: &[u8], buf: &mut [u8]| {
        let mut up = Updater::new(&flash, config).unwrap();
        up.begin().unwrap();
        for (i, chunk) in env.chunks(4096).enumerate() {
            up.write_dfu((i * 4096) as u32, chunk).unwrap();
        }
        up.request_install(buf).unwrap();
    };
    boot(&mut buf);

    // Staging: download into DFU / the idle slot, verify, request.
    let s0 = stats();
    stage(&v2, &mut buf);
    let staging = Phase {
        stats: stats().since(&s0),
        signatures: 1,
    };
    // The install boot.
    let s1 = stats();
    let t1 = std::time::Instant::now();
    let r = boot(&mut buf);
    let host = t1.elapsed();
    assert!(r.trial);
    let install = Phase {
        stats: stats().since(&s1),
        // Swap verifies DFU before and ACTIVE after the copy; A/B the slot.
        signatures: if layout == REFERENCE { 2 } else { 1 },
    };
    // The confirm after the self-test.
    let s2 = stats();
    Updater::new(&flash, config).unwrap().confirm().unwrap();
    let confirm = Phase {
        stats: stats().since(&s2),
        signatures: 0,
    };
    // The next ordinary boot settles the minimum (A/B: promotes the slot).
    let s3 = stats();
    let r = boot(&mut buf);
    assert_eq!(r.min_security_counter, 2);
    let next = Phase {
        stats: stats().since(&s3),
        signatures: 1,
    };
    // A failed trial: install again, never confirm, reset: the revert boot.
    stage(&v3, &mut buf);
    assert!(boot(&mut buf).trial);
    // The trial image prepares the record sector before its self-test (the
    // lock agent does), then fails it.
    Updater::new(&flash, config)
        .unwrap()
        .prepare_records()
        .unwrap();
    let s4 = stats();
    let r = boot(&mut buf);
    assert!(r.reverted);
    let revert = Phase {
        stats: stats().since(&s4),
        signatures: 1,
    };
    Run {
        staging,
        install,
        install_host: host,
        confirm,
        next,
        revert,
    }
}

fn main() {
    // Five runs of each, the fastest install boot's host time reported.
    let best = |layout| {
        (0..5)
            .map(|_| run(layout))
            .min_by_key(|r| r.install_host)
            .unwrap()
    };
    let swap = best(REFERENCE);
    let ab = best(REFERENCE_AB);
    println!("install of a 1536 KiB image (1,573,888 B envelope), W25Q32JV timing model");
    println!("swap: embassy-boot swaps all 448 pages of ACTIVE; A/B: the bootloader maps slot B");
    println!();
    println!("{:<52} {:>14} {:>14}", "", "swap", "A/B");
    let both = |label: &str, f: &dyn Fn(&Run) -> String| {
        println!("{label:<52} {:>14} {:>14}", f(&swap), f(&ab));
    };
    let secs = |ms: f64| format!("{:.2} s", ms / 1000.0);
    both("staging: sector erases", &|r| {
        r.staging.stats.sectors_erased.to_string()
    });
    both("staging: bytes written", &|r| {
        r.staging.stats.bytes_written.to_string()
    });
    both("install boot: sector erases", &|r| {
        r.install.stats.sectors_erased.to_string()
    });
    both("install boot: bytes written", &|r| {
        r.install.stats.bytes_written.to_string()
    });
    both("install boot: flash reads", &|r| {
        r.install.stats.reads.to_string()
    });
    both(
        "install boot: host time in the simulator (best of 5)",
        &|r| format!("{:.2} ms", r.install_host.as_secs_f64() * 1e3),
    );
    both("install boot: flash time, typical", &|r| {
        secs(r.install.flash_ms(false))
    });
    both("install boot: flash time, maximum", &|r| {
        secs(r.install.flash_ms(true))
    });
    both("install boot: verification, software SHA-256", &|r| {
        secs(r.install.verify_ms(&CORTEX_M33_150MHZ))
    });
    both("install boot: verification, RP2350 SHA-256 block", &|r| {
        secs(r.install.verify_ms(&RP2350_SHA256_HW))
    });
    let unavailable = |r: &Run, max: bool, c: &Compute| {
        r.install.total_ms(max, c) + r.confirm.total_ms(max, c) + RESET_AND_START_MS
    };
    println!();
    println!(
        "unavailable = install boot + confirm + {RESET_AND_START_MS:.0} ms reset and start (assumed)"
    );
    both("unavailable, typical, software SHA-256", &|r| {
        secs(unavailable(r, false, &CORTEX_M33_150MHZ))
    });
    both("unavailable, maximum, software SHA-256", &|r| {
        secs(unavailable(r, true, &CORTEX_M33_150MHZ))
    });
    both("unavailable, typical, RP2350 SHA-256 block", &|r| {
        secs(unavailable(r, false, &RP2350_SHA256_HW))
    });
    both("unavailable, maximum, RP2350 SHA-256 block", &|r| {
        secs(unavailable(r, true, &RP2350_SHA256_HW))
    });
    println!();
    both("confirm (mark_booted): flash time, typical", &|r| {
        secs(r.confirm.flash_ms(false))
    });
    both("next boot: erases", &|r| {
        r.next.stats.sectors_erased.to_string()
    });
    both("next boot: flash + verify, typical, software SHA", &|r| {
        secs(r.next.total_ms(false, &CORTEX_M33_150MHZ))
    });
    both("revert boot: sector erases", &|r| {
        r.revert.stats.sectors_erased.to_string()
    });
    both("revert boot: bytes written", &|r| {
        r.revert.stats.bytes_written.to_string()
    });
    both("revert: flash time, typical", &|r| {
        secs(r.revert.flash_ms(false))
    });
    both("revert: flash time, maximum", &|r| {
        secs(r.revert.flash_ms(true))
    });
    both("revert boot: flash + verify, typical, SHA block", &|r| {
        secs(r.revert.total_ms(false, &RP2350_SHA256_HW))
    });
    both("revert boot: flash + verify, typical, software SHA", &|r| {
        secs(r.revert.total_ms(false, &CORTEX_M33_150MHZ))
    });
}
