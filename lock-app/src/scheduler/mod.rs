//! Quiet-hours install scheduler.
//!
//! Decides when a staged, verified update may install: in the operator's
//! install [`Window`] (local time of the site, DST included, see [`tz`]),
//! outside blackout dates, in the slot with the lowest expected door use
//! ([`profile`], the slot's hours counted twice plus the hour on each
//! side; ties go to the earliest slot) within the next [`SiteConfig::horizon_hours`], and only when
//!
//! * the door is closed and has been idle for [`SiteConfig::idle_secs`]
//!   (no door event, unlock or PIN entry) — this gate has no exception, not
//!   even past a security deadline;
//! * the battery covers the install's modelled energy plus a reserve of lock
//!   operations ([`BatteryPolicy`]).
//!
//! A security deadline ([`Situation::deadline`]) first tightens the choice
//! to slots before it; once it has passed, the window and blackout dates no
//! longer apply and the update installs at the first idle moment.
//!
//! [`decide`] is a pure function: the agent calls it again whenever the
//! answer's time comes or the door state changes.

pub mod profile;
pub mod summary;
pub mod tz;

use alloc::vec::Vec;

pub use profile::UsageProfile;
pub use tz::{LocalResult, TzError, TzRule};

/// Candidate slots are this many seconds apart.
pub const SLOT_SECS: u64 = 900;

/// The operator's install window in local wall-clock minutes after midnight,
/// `[start, end)`; `start > end` wraps past midnight; `start == end` is the
/// whole day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First minute.
    pub start_min: u16,
    /// First minute after the window.
    pub end_min: u16,
}

impl Window {
    /// 01:00–05:00.
    pub const NIGHT: Self = Self {
        start_min: 60,
        end_min: 300,
    };
    /// Any time of day.
    pub const ALL_DAY: Self = Self {
        start_min: 0,
        end_min: 0,
    };

    /// Whether local minute-of-day `m` is inside.
    pub fn contains(&self, m: u16) -> bool {
        let (s, e) = (self.start_min, self.end_min);
        if s == e {
            true
        } else if s < e {
            s <= m && m < e
        } else {
            m >= s || m < e
        }
    }
}

/// A local calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocalDate {
    /// Year.
    pub year: i32,
    /// 1..=12.
    pub month: u8,
    /// 1..=31.
    pub day: u8,
}

/// What the operator configured for the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteConfig {
    /// The site's zone, as sent by the server.
    pub tz: TzRule,
    /// Install window (local).
    pub window: Window,
    /// No install starts or runs on these local dates.
    pub blackout: Vec<LocalDate>,
    /// The door must have been closed and untouched this long.
    pub idle_secs: u64,
    /// How far ahead to look for the quietest slot.
    pub horizon_hours: u32,
}

/// The install's modelled cost (flash operation counts × datasheet timings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstallCost {
    /// Time the lock is unavailable.
    pub downtime_secs: u64,
    /// Energy the install draws.
    pub energy_mwh: u32,
}

/// Energy the lock must keep for its own job after an install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatteryPolicy {
    /// Lock/unlock operations that must stay possible.
    pub reserve_ops: u32,
    /// Energy per lock operation.
    pub energy_per_op_mwh: u32,
}

/// The lock's state when it asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Situation {
    /// Trusted time, Unix seconds.
    pub now: u64,
    /// Door sensor: closed.
    pub door_closed: bool,
    /// Last door event, unlock or PIN entry (Unix seconds).
    pub last_activity: Option<u64>,
    /// Battery energy left.
    pub battery_mwh: u32,
    /// A verified image is staged in DFU.
    pub staged: bool,
    /// Security deadline of the release, if any.
    pub deadline: Option<u64>,
}

/// Why nothing can be scheduled now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockReason {
    /// No verified image staged.
    NotStaged,
    /// The battery cannot cover the install plus the reserve.
    Battery {
        /// Energy needed.
        needed_mwh: u32,
        /// Energy left.
        have_mwh: u32,
    },
    /// No allowed slot in the horizon (window, blackout dates).
    NoSlot,
}

/// The scheduler's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Mark updated and reset now.
    InstallNow,
    /// Ask again at this time (Unix seconds).
    WaitUntil(u64),
    /// Cannot install; ask again when something changes.
    Blocked(BlockReason),
}

fn door_idle_at(s: &Situation, idle: u64) -> Result<(), u64> {
    if !s.door_closed {
        return Err(s.now.saturating_add(idle.max(1)));
    }
    match s.last_activity {
        Some(t) if s.now < t.saturating_add(idle) => Err(t.saturating_add(idle)),
        _ => Ok(()),
    }
}

impl SiteConfig {
    fn allowed(&self, start: u64, downtime: u64) -> bool {
        let end = start.saturating_add(downtime.saturating_sub(1));
        [start, end].iter().all(|&t| {
            let dt = self.tz.local_date_time(t as i64);
            let date = LocalDate {
                year: dt.year,
                month: dt.month,
                day: dt.day,
            };
            self.window.contains((dt.secs_of_day / 60) as u16) && !self.blackout.contains(&date)
        })
    }

    /// Expected use around a slot (see [`slot_cost`]), the slot's local
    /// hours taken from the site's zone.
    fn expected_use(&self, profile: &UsageProfile, start: u64, downtime: u64) -> u64 {
        let at = |t: u64| self.tz.local_date_time(t as i64).hour_of_week();
        let a = at(start);
        let b = at(start.saturating_add(downtime.saturating_sub(1)));
        let c = slot_cost(profile, a, b);
        c.usage + c.prior
    }
}

/// What a slot costs the scheduler: expected door use around it, and the
/// prior that favours the night.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotCost {
    /// Weighted expected use (16.16 entries).
    pub usage: u64,
    /// The night prior: 0 for each hour touched in 01:00–05:00 local, 64
    /// for each other one.
    pub prior: u64,
}

/// Expected use around a slot starting in local hour of the week `a` and
/// ending in `b` (the same hour, or the next one). Per hour touched: its own
/// hour of the week counted eight times plus the same hour on the six other
/// days once each (a sparse history still says "evenings are busy" even if
/// this Sunday evening saw nobody yet); the hour before and the hour after
/// count four times each (a quiet hour between two busy ones is a worse bet
/// than one in the middle of the night). A tiny prior favours 01:00–05:00
/// local, so a lock that has learned nothing yet (or sees a tie) waits for
/// the night instead of installing at once.
pub fn slot_cost(profile: &UsageProfile, a: usize, b: usize) -> SlotCost {
    let n = profile::HOURS_PER_WEEK;
    let e = |h: usize| u64::from(profile.expected(h % n));
    let hour = |h: usize| 8 * e(h) + (1..7).map(|d| e(h + 24 * d)).sum::<u64>();
    let prior = |h: usize| if matches!(h % 24, 1..=4) { 0 } else { 64 };
    let mut c = SlotCost {
        usage: hour(a) + 4 * e(a + n - 1) + 4 * e(b + 1),
        prior: prior(a),
    };
    if b != a {
        c.usage += hour(b);
        c.prior += prior(b);
    }
    c
}

/// Decide whether to install now, when to ask again, or why not.
pub fn decide(
    site: &SiteConfig,
    cost: &InstallCost,
    battery: &BatteryPolicy,
    profile: &UsageProfile,
    s: &Situation,
) -> Decision {
    if !s.staged {
        return Decision::Blocked(BlockReason::NotStaged);
    }
    let needed = cost.energy_mwh.saturating_add(
        battery
            .reserve_ops
            .saturating_mul(battery.energy_per_op_mwh),
    );
    if s.battery_mwh < needed {
        return Decision::Blocked(BlockReason::Battery {
            needed_mwh: needed,
            have_mwh: s.battery_mwh,
        });
    }
    let idle = door_idle_at(s, site.idle_secs);

    // Past the deadline: any time of day, but never while the door is in use.
    if s.deadline.is_some_and(|d| s.now >= d) {
        return match idle {
            Ok(()) => Decision::InstallNow,
            Err(t) => Decision::WaitUntil(t),
        };
    }

    // Candidates: now, then every slot boundary in the horizon (before the
    // deadline, if there is one).
    let horizon_end = s.now.saturating_add(u64::from(site.horizon_hours) * 3600);
    let limit = s.deadline.map_or(horizon_end, |d| d.min(horizon_end));
    let mut best: Option<(u64, u64)> = None; // (cost, start)
    let mut t = s.now;
    while t < limit {
        if site.allowed(t, cost.downtime_secs) {
            let c = site.expected_use(profile, t, cost.downtime_secs);
            if best.is_none_or(|(bc, _)| c < bc) {
                best = Some((c, t));
            }
        }
        t = (t / SLOT_SECS + 1) * SLOT_SECS;
    }
    match best {
        Some((_, start)) if start == s.now => match idle {
            Ok(()) => Decision::InstallNow,
            Err(t) => Decision::WaitUntil(t),
        },
        Some((_, start)) => Decision::WaitUntil(start),
        None => match s.deadline {
            Some(d) if d <= horizon_end => Decision::WaitUntil(d),
            _ => Decision::Blocked(BlockReason::NoSlot),
        },
    }
}
