//! Quiet-hours install scheduler.
//!
//! Decides when a staged, verified update may install: in the operator's
//! install [`Window`] (local time of the site, DST included, see [`tz`]),
//! outside blackout dates, in the slot with the lowest expected door use
//! ([`profile`], weighed by [`slot_cost`]) plus a tiny [`NightPrior`] (which,
//! among slots of (near-)equal use, prefers the middle of the night and
//! the middle of a run of quiet hours over its edges; remaining ties go to
//! the earliest slot) within the next [`SiteConfig::horizon_hours`], and
//! only when
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

    /// Expected use around a slot plus its night prior (see
    /// [`slot_cost`]), the slot's local hours taken from the site's zone.
    fn expected_use(
        &self,
        profile: &UsageProfile,
        night: NightPrior,
        start: u64,
        downtime: u64,
    ) -> u64 {
        let at = |t: u64| self.tz.local_date_time(t as i64).hour_of_week();
        let a = at(start);
        let b = at(start.saturating_add(downtime.saturating_sub(1)));
        let c = slot_cost_with(profile, night, a, b);
        c.usage + c.prior
    }
}

/// What a slot costs the scheduler: expected door use around it, and the
/// night prior.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotCost {
    /// Weighted expected use (16.16 entries).
    pub usage: u64,
    /// The night prior of the hours the slot touches ([`NightPrior::slot`]).
    pub prior: u64,
}

/// Local hour of the day at the centre of the night: 03:00–04:00.
pub const NIGHT_CENTRE_HOUR: usize = 3;
/// Night prior per hour between an hour and [`NIGHT_CENTRE_HOUR`].
pub const NIGHT_STEP: u64 = 8;
/// An hour at least this many hours from the nearer end of its quiet run
/// (counting itself) carries no edge penalty.
pub const EDGE_HOURS: u32 = 3;
/// Night prior per hour an hour lies short of [`EDGE_HOURS`] deep in its
/// quiet run.
pub const EDGE_STEP: u64 = 16;

/// Bits 0–23: every local hour of the day.
const ALL_HOURS: u32 = (1 << 24) - 1;

/// The night prior: a tiny cost per local hour that decides between slots
/// of (near-)equal expected use. It prefers the middle of the night and
/// the middle of a run of quiet hours over its edges: the first hour of a
/// learned quiet night is where a rare late return still falls (in a
/// fleet simulation nearly every install that met someone at the door
/// started at 01:00, the start of the learned night), the last one where
/// an early riser leaves.
///
/// **Quiet hours.** A local hour of the day is quiet when the profile
/// expects (almost) no door use in it on any day of the week: on each of
/// the seven days, less than 1/128 of the busiest hour of the week (the
/// usage summary's heat level 0, "never", [`summary::heat_level`]). With
/// nothing learned every hour is quiet. A *quiet run* is a maximal run of
/// consecutive quiet hours, around midnight too.
///
/// **The rule**, per local hour `h` of the day (0 = 00:00–01:00):
///
/// ```text
/// prior(h) = NIGHT_STEP × distance(h, 03:00–04:00)   8 × (0–12 hours around the clock)
///          + EDGE_STEP  × (EDGE_HOURS − depth(h))    16 × (0–3)
/// depth(h) = 0 if h is not quiet; else its place counted from the nearer
///            end of its quiet run (1: the run's first or last hour), at most 3
/// ```
///
/// so each hour costs 0 to 144, and a slot the sum over the one or two
/// local hours it touches ([`Self::slot`]): at most 288, under 1/200 of
/// an expected entry (16.16: 65,536). Expected use always comes first;
/// the prior only ranks starts whose use differs by less than that.
///
/// * Nothing learned (or a tie everywhere): every hour is quiet and none
///   is near an edge, so the distance alone decides: 03:00 local, or the
///   start nearest it that the site's window allows (01:00 for a window of
///   23:00–02:00).
/// * A learned quiet run: its first and last hours cost 32 more than the
///   hours three or more deep, the second and last but one 16 more; the
///   distance to 03:00 then picks among them. A quiet run of 23:00–06:00
///   starts at 03:00 (0; 02:00 scores 8, 01:00 16, 04:00 24, 00:00 40,
///   05:00 48, 23:00 64); if a late return was learned at 01:10, the run
///   02:00–06:00 still starts at 03:00 (16; 04:00 24, its first hour
///   02:00 40).
/// * Across runs the distance to 03:00 (up to 96) weighs more than the
///   edges (up to 48): a door quiet through the night and by day installs
///   at night; a door quiet only by day (a night shift's home, quiet
///   07:00–22:00) installs at the first hour three deep, 09:00.
///
/// Cheap on a lock: [`Self::of`] reads the 168 buckets twice; each hour's
/// prior is then a few bit tests. The update server ranks a usage
/// summary's starts with the same prior
/// ([`summary::UsageSummary::approximate_profile`] gives the same quiet
/// hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NightPrior {
    /// Bit `h` set: local hour of the day `h` is quiet.
    quiet: u32,
}

impl NightPrior {
    /// Nothing learned: every hour quiet.
    pub const UNLEARNED: Self = Self { quiet: ALL_HOURS };

    /// The prior for `profile`: its quiet hours.
    pub fn of(profile: &UsageProfile) -> Self {
        let buckets = profile.buckets();
        let peak = buckets.iter().copied().max().unwrap_or(0);
        let mut quiet = ALL_HOURS;
        for (h, &v) in buckets.iter().enumerate() {
            if summary::heat_level(v, peak) != 0 {
                quiet &= !(1 << (h % 24));
            }
        }
        Self { quiet }
    }

    /// The quiet hours: bit `h` for local hour of the day `h`.
    pub fn quiet_hours(self) -> u32 {
        self.quiet
    }

    /// Whether local hour `hour` (of the day or of the week) is quiet.
    pub fn is_quiet(self, hour: usize) -> bool {
        (self.quiet >> (hour % 24)) & 1 == 1
    }

    /// How deep local hour `hour` (of the day or of the week) lies in its
    /// quiet run: 0 if it is not quiet, 1 for the run's first or last
    /// hour, 2 for the next, at most [`EDGE_HOURS`].
    pub fn depth(self, hour: usize) -> u32 {
        let h = hour % 24;
        if !self.is_quiet(h) {
            return 0;
        }
        (1..EDGE_HOURS)
            .find(|&k| {
                let k = k as usize;
                !self.is_quiet(h + k) || !self.is_quiet(h + 24 - k)
            })
            .unwrap_or(EDGE_HOURS)
    }

    /// The prior of local hour `hour` (of the day or of the week): see
    /// the type's documentation.
    pub fn hour(self, hour: usize) -> u64 {
        let h = hour % 24;
        let off = h.abs_diff(NIGHT_CENTRE_HOUR);
        let distance = off.min(24 - off) as u64;
        NIGHT_STEP * distance + EDGE_STEP * u64::from(EDGE_HOURS - self.depth(h))
    }

    /// The prior of a slot starting in local hour `a` and ending in `b`
    /// (hours of the week; the same hour, or the next one): each hour it
    /// touches once.
    pub fn slot(self, a: usize, b: usize) -> u64 {
        if a == b {
            self.hour(a)
        } else {
            self.hour(a) + self.hour(b)
        }
    }
}

/// What a slot starting in local hour of the week `a` and ending in `b`
/// (the same hour, or the next one) costs. Expected use: per hour touched,
/// its own hour of the week counted eight times plus the same hour on the
/// six other days once each (a sparse history still says "evenings are
/// busy" even if this Sunday evening saw nobody yet); the hour before and
/// the hour after count four times each (a quiet hour between two busy
/// ones is a worse bet than one in the middle of the night). Plus the
/// tiny [`NightPrior`], so a lock that has learned nothing yet (or sees a
/// tie) waits for the middle of the night instead of installing at once,
/// and a learned quiet night is entered in its middle, not at its edges.
pub fn slot_cost(profile: &UsageProfile, a: usize, b: usize) -> SlotCost {
    slot_cost_with(profile, NightPrior::of(profile), a, b)
}

/// [`slot_cost`] with the profile's night prior worked out once
/// (`night` is [`NightPrior::of`] the same profile): for loops over many
/// slots.
pub fn slot_cost_with(profile: &UsageProfile, night: NightPrior, a: usize, b: usize) -> SlotCost {
    let n = profile::HOURS_PER_WEEK;
    let e = |h: usize| u64::from(profile.expected(h % n));
    let hour = |h: usize| 8 * e(h) + (1..7).map(|d| e(h + 24 * d)).sum::<u64>();
    let mut usage = hour(a) + 4 * e(a + n - 1) + 4 * e(b + 1);
    if b != a {
        usage += hour(b);
    }
    SlotCost {
        usage,
        prior: night.slot(a, b),
    }
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
    let night = NightPrior::of(profile);
    let mut best: Option<(u64, u64)> = None; // (cost, start)
    let mut t = s.now;
    while t < limit {
        if site.allowed(t, cost.downtime_secs) {
            let c = site.expected_use(profile, night, t, cost.downtime_secs);
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
