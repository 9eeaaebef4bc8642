//! One simulated lock of the fleet: its agent's device and files, its door
//! usage (the entry attempts it generates and learns from), its schedule
//! and its counters.

use std::collections::VecDeque;

use lock_app::agent::Warm;
use lock_app::scheduler::{TzRule, UsageProfile};
use lock_app::storage::files::FileCache;
use lock_app::tuf::MemoryStore;

use super::engine::DAY;
use super::usage::{self, Kind, Rng};
use crate::sim::device::Device;
use crate::sim::net::Traffic;

/// Counters of one lock.
#[derive(Debug, Clone, Default)]
pub struct LockStats {
    /// Check-ins answered.
    pub check_ins: u64,
    /// Check-ins that carried the lock's usage summary.
    pub usage_reports: u64,
    /// Installs requested.
    pub installs: u64,
    /// Installs the bootloader reverted.
    pub reverts: u64,
    /// Why the most recent revert happened, as the agent saw it.
    pub last_revert: Option<String>,
    /// Entry attempts during an install's downtime.
    pub hits: u64,
    /// Entry attempts.
    pub attempts: u64,
    /// Installs whose boot lost power part-way (and recovered).
    pub power_cuts: u64,
    /// Staging fell back from the patch to the full image.
    pub patch_fallbacks: u64,
    /// Updates staged through a patch.
    pub patched: u64,
    /// Refusals by the agent.
    pub refusals: u64,
    /// The most recent refusal.
    pub last_refusal: Option<String>,
    /// No bootable image (must stay false).
    pub bricked: bool,
    /// Bytes on air.
    pub traffic: Traffic,
    /// Install blocked by the battery.
    pub battery_blocked: bool,
    /// Each install: when it started, its modelled downtime and the entry
    /// attempts it hit.
    pub install_log: Vec<InstallRecord>,
}

/// One install of a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstallRecord {
    /// Virtual time of the reset that started it.
    pub at: u64,
    /// Modelled downtime, ns (typical timings; [`super::downtime`]).
    pub downtime_ns: u64,
    /// Entry attempts in `[at, at + downtime rounded up to seconds)`.
    pub hits: u64,
}

/// One lock.
#[derive(Debug)]
pub struct FleetLock {
    /// Id.
    pub id: String,
    /// Hardware model.
    pub model: String,
    /// Usage profile.
    pub kind: Kind,
    pub(super) variant: u8,
    /// Time zone rule.
    pub tz: TzRule,
    /// Time zone name.
    pub tz_name: &'static str,
    /// Flash and boot configuration.
    pub device: Device,
    pub(super) files: MemoryStore,
    pub(super) rng: Rng,
    pub(super) profile: UsageProfile,
    pub(super) events: VecDeque<u64>,
    pub(super) generated_until_day: i64,
    pub(super) last_event: Option<u64>,
    pub(super) next_checkin: u64,
    pub(super) next_decide: Option<u64>,
    pub(super) skew: i64,
    pub(super) battery: u8,
    /// Cut power during the next install boot.
    pub(super) cut_next_swap: bool,
    /// Version running (confirmed or on trial).
    pub running: String,
    /// Counters.
    pub stats: LockStats,
    /// What the lock's agent keeps in RAM between check-ins; a reset
    /// (every boot of an install) clears it.
    pub(super) ram: Option<Ram>,
}

/// A lock's RAM between check-ins: the agent's (key, state, the running
/// image and director metadata it verified) and its file store's cache.
#[derive(Debug)]
pub(super) struct Ram {
    pub(super) warm: Warm,
    pub(super) cache: Option<FileCache>,
}

/// The locks' time zones, in turn.
pub(crate) const ZONES: [&str; 4] = [
    "Europe/Berlin",
    "America/New_York",
    "Europe/London",
    "America/Los_Angeles",
];

impl FleetLock {
    pub(super) fn next_action(&self) -> u64 {
        self.next_decide
            .map_or(self.next_checkin, |d| d.min(self.next_checkin))
    }

    /// Generate entry attempts through local day `until`.
    pub(super) fn generate(&mut self, until_utc: u64) {
        let until_day = (self.tz.to_local(until_utc as i64)).div_euclid(DAY as i64) + 1;
        while self.generated_until_day < until_day {
            self.generated_until_day += 1;
            let evs = usage::day_events(
                self.kind,
                self.variant,
                &self.tz,
                self.generated_until_day,
                &mut self.rng,
            );
            self.events.extend(evs);
        }
    }

    /// Learn from (and count) every entry attempt before `t`.
    pub(super) fn ingest(&mut self, t: u64) {
        self.generate(t + 2 * DAY);
        while let Some(&e) = self.events.front() {
            if e >= t {
                break;
            }
            self.events.pop_front();
            self.stats.attempts += 1;
            self.profile.decay_to(e as i64, &self.tz);
            self.profile.observe(e as i64, &self.tz);
            self.last_event = Some(e);
        }
    }

    pub(super) fn attempts_in(&self, from: u64, to: u64) -> u64 {
        self.events.iter().filter(|&&e| e >= from && e < to).count() as u64
    }
}
