//! Fleet settings: how many locks, the install policy, the faults injected.

use bootloader::layout::{Layout, SMALL};
use serde::Serialize;

/// When a lock installs a staged update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Nightlatch: the lock's quiet-hours scheduler on its learned usage
    /// (and the site's window, if any), never while the door is in use.
    QuietHours,
    /// Install as soon as the update is staged.
    OnArrival,
    /// A fixed 02:00–04:00 local maintenance window (hawkBit / AWS IoT
    /// jobs style), at a random time inside it, no door check.
    FixedWindow,
}

/// Faults injected into the fleet.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Faults {
    /// Probability that a firmware range request drops mid-way.
    pub wifi_drop: f64,
    /// Share of locks whose power is cut during their first install boot
    /// (the swap, or the A/B install's record write), at one of that boot's
    /// own flash operations.
    pub power_cut_swap: f64,
    /// Share of locks with a nearly dead battery.
    pub dead_battery: f64,
    /// Share of locks whose clock is off by minutes to hours until the
    /// director's signed time corrects it.
    pub clock_skew: f64,
}

/// Fleet settings.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Number of locks.
    pub locks: usize,
    /// Install policy.
    pub policy: Policy,
    /// Seed of every random choice.
    pub seed: u64,
    /// Faults.
    pub faults: Faults,
    /// Seconds between check-ins (each lock adds its own jitter).
    pub checkin_interval: u64,
    /// Parallel workers (HTTP connections).
    pub workers: usize,
    /// Share of locks whose factory build differs from the published one
    /// (same version number: their patch base does not match).
    pub alt_base: f64,
    /// Weeks of door history each lock has learned before the simulation.
    pub history_weeks: u64,
    /// Flash layout of every lock; its mode is the fleet's boot mode.
    /// Default: [`SMALL`] (swap, 64 KiB ACTIVE), which keeps debug-build
    /// tests fast; downtime figures for the real board need the reference
    /// layout (`Boot::reference()`, as `nightlatch-sim fleet` uses: a swap
    /// there moves 448 pages, not 16).
    pub layout: Layout,
    /// The agent's configured *estimate* of an install's downtime (seconds):
    /// what its quiet-hours scheduler looks for room for
    /// (`install_cost.downtime_secs`), and how far from the end of the
    /// fixed-window baseline's window an install may start. Each install's
    /// actual downtime, and so its hits, is modelled from what it did
    /// ([`super::downtime`]).
    pub downtime_secs: u64,
    /// Take every install's downtime to be this many seconds instead of
    /// modelling it from what the install did (the model before issue 16).
    /// For comparing install policies apart from the boot mode: with
    /// sub-second A/B installs almost no policy hits anyone. Default `None`
    /// (modelled).
    pub fixed_downtime_secs: Option<u64>,
    /// Keep each lock's agent files on its flash (AGENT partition), as a
    /// real lock does; `false` keeps them in memory (faster).
    pub files_on_flash: bool,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            locks: 100,
            policy: Policy::QuietHours,
            seed: 1,
            faults: Faults::default(),
            checkin_interval: 4 * 3600,
            workers: 8,
            alt_base: 0.0,
            history_weeks: 3,
            layout: SMALL,
            downtime_secs: 90,
            fixed_downtime_secs: None,
            files_on_flash: true,
        }
    }
}
