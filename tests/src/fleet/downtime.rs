//! What an install costs the door: each lock's modelled downtime, from the
//! flash operations its install actually did.
//!
//! From the reset that starts the install to the moment the new (or, after
//! a failed self-test, the old) firmware is up and has settled its trial,
//! the lock cannot open. The fleet adds up, per install:
//!
//! * **flash time**: the simulated flash's `Stats::busy_typ_ns` (W25Q32JV
//!   typical timings, `bootloader::sim::timing`) across the install's
//!   boots (the swap or the A/B record write; a revert; a boot after a power
//!   cut) and the agent's after-boot work (self-test verdict, confirm, its
//!   state saved);
//! * **verification compute**: `CORTEX_M33_150MHZ.verify_ns(bytes, sigs)`
//!   (software SHA-256 and Ed25519 on the reference MCU). *bytes* is every
//!   byte the bootloader read during the install's boots: nearly all of
//!   them are hashed (the envelopes it verifies) — the approximation counts
//!   the rest as hashed too: the records and STATE (a few KiB) and, in swap
//!   mode, the pages embassy-boot reads to copy them, so swap is over-charged
//!   by about 2 × ACTIVE / 4.97 MB/s ≈ 0.7 s of its ~45 s. *sigs* is an
//!   estimate of the image verifications, one Ed25519 signature each
//!   ([`signatures_of_boot`]);
//! * **fixed costs**, assumed rather than measured: [`RESET_NS`] per boot,
//!   [`SELF_TEST_NS`] per self-test the new firmware runs.
//!
//! Not counted: the agent's own work before the reset (`install()`, which
//! verifies the staged image while the lock still opens), how long the power
//! stays off after a cut (it comes back at once), and the application's
//! re-check of the running image after boot (the self-test budget covers the
//! application's start).
//!
//! A lock's *hits* are the entry attempts inside `[start, start + downtime)`,
//! the downtime rounded up to whole seconds (at least one).

use bootloader::layout::BootMode;
use bootloader::sim::Stats;
use bootloader::sim::timing::CORTEX_M33_150MHZ;
use serde::Serialize;

/// Assumed: a reset, the RP2350 boot ROM and the bootloader's start-up
/// before its first flash access, per boot (not measured; the order of a
/// Pico-class board's cold start).
pub const RESET_NS: u64 = 250_000_000;

/// Assumed: the application's start-up and its self-test (motor, sensors,
/// radio) before it confirms, per self-test run (not measured).
pub const SELF_TEST_NS: u64 = 500_000_000;

/// Ed25519 signatures verified by one boot of the install, estimated from
/// what the mode verifies: a swap boot that starts a trial verified the
/// staged image in DFU and then ACTIVE after the copy (2); an A/B install
/// boot verifies the named slot before mapping it (1); a revert, or any
/// other boot, verifies the image it starts (1); a boot cut short by a power
/// cut is charged 1 (it verified the request before the first write).
pub fn signatures_of_boot(mode: BootMode, started_trial: bool) -> u64 {
    match (mode, started_trial) {
        (BootMode::Swap, true) => 2,
        _ => 1,
    }
}

/// An install's costs, added up as it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstallCost {
    /// Flash busy time, typical timings (ns).
    pub flash_ns: u64,
    /// Bytes the bootloader read (taken as hashed).
    pub boot_bytes_read: u64,
    /// Image verifications (one signature each).
    pub signatures: u64,
    /// Boots (resets).
    pub boots: u64,
    /// Self-tests run by the new firmware.
    pub self_tests: u64,
}

impl InstallCost {
    /// Charge one boot: the flash counters before and after it.
    pub fn boot(&mut self, before: &Stats, after: &Stats, signatures: u64) {
        let d = after.since(before);
        self.flash_ns += d.busy_typ_ns;
        self.boot_bytes_read += d.bytes_read;
        self.signatures += signatures;
        self.boots += 1;
    }

    /// Charge the agent's after-boot work (flash counters around it).
    pub fn after_boot(&mut self, before: &Stats, after: &Stats, self_tests: u64) {
        self.flash_ns += after.since(before).busy_typ_ns;
        self.self_tests += self_tests;
    }

    /// Verification compute (ns).
    pub fn verify_ns(&self) -> u64 {
        CORTEX_M33_150MHZ.verify_ns(self.boot_bytes_read, self.signatures)
    }

    /// The modelled downtime (ns).
    pub fn total_ns(&self) -> u64 {
        self.flash_ns + self.verify_ns() + self.boots * RESET_NS + self.self_tests * SELF_TEST_NS
    }

    /// The downtime in whole seconds, rounded up, at least one: the window
    /// in which an entry attempt is a hit.
    pub fn window_secs(&self) -> u64 {
        secs_up(self.total_ns())
    }
}

/// Nanoseconds rounded up to whole seconds, at least one.
pub fn secs_up(ns: u64) -> u64 {
    ns.div_ceil(1_000_000_000).max(1)
}

/// Mean, 99th percentile (nearest rank) and maximum of install downtimes,
/// in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct DowntimeSummary {
    /// Mean (s).
    pub mean_s: f64,
    /// 99th percentile, nearest rank (s).
    pub p99_s: f64,
    /// Maximum (s).
    pub max_s: f64,
}

impl DowntimeSummary {
    /// Of `ns` (any order); all zero when empty.
    pub fn of(ns: &mut [u64]) -> Self {
        if ns.is_empty() {
            return Self::default();
        }
        ns.sort_unstable();
        let s = |v: u64| v as f64 / 1e9;
        let n = ns.len();
        let rank = (n * 99).div_ceil(100).max(1);
        Self {
            mean_s: ns.iter().map(|&v| v as f64).sum::<f64>() / n as f64 / 1e9,
            p99_s: s(ns[rank - 1]),
            max_s: s(ns[n - 1]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_add_up_and_round_up_to_seconds() {
        let before = Stats::default();
        let after = Stats {
            bytes_read: 4_970_000,
            busy_typ_ns: 2_000_000_000,
            ..Stats::default()
        };
        let mut c = InstallCost::default();
        c.boot(&before, &after, signatures_of_boot(BootMode::Swap, true));
        c.after_boot(&before, &after, 1);
        // 2 s + 2 s flash, 1 s hashing, 2 × 107 ms, one reset, one self-test.
        assert_eq!(
            c.total_ns(),
            4_000_000_000 + 1_000_000_000 + 214_000_000 + RESET_NS + SELF_TEST_NS
        );
        assert_eq!(c.window_secs(), 6);
        assert_eq!(signatures_of_boot(BootMode::Ab, true), 1);
        assert_eq!(secs_up(0), 1);
        assert_eq!(secs_up(1_000_000_000), 1);
        assert_eq!(secs_up(1_000_000_001), 2);
    }

    #[test]
    fn summary_takes_the_nearest_rank() {
        assert_eq!(DowntimeSummary::of(&mut []), DowntimeSummary::default());
        let mut v: Vec<u64> = (1..=200).rev().map(|s| s * 1_000_000_000).collect();
        let d = DowntimeSummary::of(&mut v);
        assert_eq!((d.p99_s, d.max_s), (198.0, 200.0));
        assert!((d.mean_s - 100.5).abs() < 1e-9);
        let d = DowntimeSummary::of(&mut [3_000_000_000]);
        assert_eq!((d.mean_s, d.p99_s, d.max_s), (3.0, 3.0, 3.0));
    }
}
