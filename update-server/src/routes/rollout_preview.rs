//! Rollout preview (`POST /admin/v1/rollouts/preview`): what a rollout
//! would do, computed with the code that does it, creating nothing.
//!
//! * **Who, and in which wave**: every active lock of the target's model
//!   that last reported an older version is judged by the check-in
//!   planner's own [`eligibility`] (versions, `from_versions`, groups,
//!   security counter, the stable bucket of [`crate::rollouts::bucket`]) at
//!   the moment the last wave would start. Buckets need a rollout id; the
//!   preview draws them for a provisional one ([`provisional_id`]: the
//!   target and name, so repeated previews of the same rollout agree and
//!   raising a share only adds locks). The rollout created from the same
//!   body gets a new id, so *which* locks fall in a wave differs, not how
//!   many (up to sampling).
//! * **When**: wave `i` starts at the rollout's start (`start_at`, or now
//!   if that is later or not given) plus the soaks of the waves before it;
//!   each lock is taken to be assigned and staged when its wave starts (the
//!   door closed and idle, the battery full), and installs when its
//!   quiet-hours scheduler says so, for its site's window, blackout dates
//!   and time zone (else the lock's own zone, as the agent falls back) and
//!   the rollout's security deadline:
//!   - a lock that reported no usage summary has learned nothing: the
//!     lock's own scheduler ([`lock_app::scheduler::decide`], asked again at
//!     each time it names, as the agent does, [`install_time`]) with an
//!     empty profile — it waits for the middle of the night (03:00 local,
//!     or the start the window allows nearest it: the scheduler's night
//!     prior, [`lock_app::scheduler::NightPrior`]);
//!   - a lock that reported one (`Store::usage_summaries`, the lock's own
//!     codec): the same loop with the summary standing in for the profile
//!     the lock keeps to itself ([`install_time_with_summary`]: the heat
//!     map's level of each hour, the weekday's quiet slot, the lock's own
//!     night prior, the earliest — for a summary of nothing learned it is
//!     exactly the scheduler's answer, tested).
//!
//!   A night is the local calendar date (site zone) on which the install
//!   starts. Locks whose install falls more than [`HORIZON_DAYS`] after
//!   the start (or never) count as `unscheduled`.
//! * **Risk**: `expected_door_openings` sums, over a wave's locks, the
//!   expected door entries in the local hour the install starts: the peak
//!   hour's entries (`peak_entries`) times [`HEAT_SHARE_OF_PEAK`] of that
//!   hour's heat level, from the lock's usage summary (0 without one).
//!
//! Bounded: at most [`MAX_LOCKS`] candidate locks are read (one indexed
//! query), and the summaries of the locks in waves that start within the
//! horizon (500 per query). The scheduler runs once per (policy, zone,
//! wave) for locks that have learned nothing, once per distinct summary
//! for the others; each run looks at most one horizon (36 h) of
//! quarter-hours ahead in all.

use std::collections::{BTreeMap, HashMap};

use lock_app::agent::{AgentConfig, site_config};
use lock_app::scheduler::summary::UsageSummary;
use lock_app::scheduler::tz::DAY;
use lock_app::scheduler::{
    self, Decision, InstallCost, LocalDate, LocalResult, NightPrior, SiteConfig, Situation,
    UsageProfile, tz,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, AppResult};
use crate::rollouts::engine::{DeviceFacts, Ineligible, eligibility};
use crate::rollouts::{Rollout, RolloutState, version};
use crate::routes::time;
use crate::state::AppState;
use crate::wire::SitePolicy;

/// How far ahead installs are placed, days from the rollout's start.
pub const HORIZON_DAYS: i64 = 14;
/// Most candidate locks one preview reads.
pub const MAX_LOCKS: i64 = 250_000;
/// The scheduler is asked at most this often per lock before giving up.
const MAX_DECISIONS: usize = 256;
/// When the scheduler finds no slot (window, blackout dates), the agent
/// asks again this much later (as the fleet simulator does).
const RETRY_SECS: u64 = 6 * 3600;
const DAY_MS: i64 = 86_400_000;

/// The id buckets are drawn for (see the module documentation).
pub fn provisional_id(target: &str, name: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"nightlatch/rollout-preview/v1\0");
    h.update(target.as_bytes());
    h.update([0]);
    h.update(name.as_bytes());
    format!("ro-preview-{}", hex::encode(&h.finalize()[..8]))
}

/// One wave of a preview.
#[derive(Debug, Clone, Default)]
pub struct WavePreview {
    /// Cumulative share.
    pub share: f64,
    /// Minimum soak, seconds.
    pub soak_secs: u64,
    /// When it would start (Unix ms).
    pub starts_at: i64,
    /// Locks in it.
    pub eligible: usize,
    /// Installs per local date.
    pub nights: BTreeMap<(i32, u8, u8), usize>,
    /// Locks with no install within the horizon.
    pub unscheduled: usize,
    /// Expected door entries in the install hours.
    pub door_openings: f64,
}

/// A preview.
#[derive(Debug, Clone)]
pub struct Preview {
    /// Image target.
    pub target: String,
    /// Its model.
    pub hardware_model: String,
    /// The provisional id buckets were drawn for.
    pub provisional_id: String,
    /// Start (Unix ms).
    pub start: i64,
    /// Eligible locks (in a wave or beyond the last wave's share).
    pub eligible: usize,
    /// Eligible locks whose bucket is beyond the last wave's share.
    pub outside_waves: usize,
    /// More than [`MAX_LOCKS`] candidates: counts cover the first ones by id.
    pub capped: bool,
    /// The waves.
    pub waves: Vec<WavePreview>,
}

impl Preview {
    /// The JSON answer; `soaks` are the waves' `min_soak` as given.
    pub fn view(&self, soaks: &[String]) -> Value {
        json!({
            "target": self.target,
            "hardware_model": self.hardware_model,
            "provisional_id": self.provisional_id,
            "start_at": time(Some(self.start)),
            "eligible": self.eligible,
            "outside_waves": self.outside_waves,
            "capped": self.capped,
            "horizon_days": HORIZON_DAYS,
            "waves": self.waves.iter().enumerate().map(|(i, w)| json!({
                "index": i,
                "share": w.share,
                "min_soak": soaks.get(i).cloned().unwrap_or_else(|| "0s".into()),
                "min_soak_secs": w.soak_secs,
                "starts_at": time(Some(w.starts_at)),
                "eligible": w.eligible,
                "nights": w.nights.iter().map(|((y, m, d), n)| json!({
                    "date": format!("{y:04}-{m:02}-{d:02}"), "locks": n,
                })).collect::<Vec<_>>(),
                "unscheduled": w.unscheduled,
                "expected_door_openings": (w.door_openings * 1000.0).round() / 1000.0,
            })).collect::<Vec<_>>(),
        })
    }
}

/// When a staged lock installs: the scheduler asked at `from` (Unix s) and
/// again at each time it names, as the agent does; None if not before
/// `until`. The door is taken to be closed and idle and the battery full:
/// the preview places installs, it does not guess who is at the door.
pub fn install_time(
    site: &SiteConfig,
    cost: &InstallCost,
    battery: &scheduler::BatteryPolicy,
    profile: &UsageProfile,
    deadline: Option<u64>,
    from: u64,
    until: u64,
) -> Option<u64> {
    let mut now = from;
    for _ in 0..MAX_DECISIONS {
        if now >= until {
            return None;
        }
        let s = Situation {
            now,
            door_closed: true,
            last_activity: None,
            battery_mwh: u32::MAX,
            staged: true,
            deadline,
        };
        now = match scheduler::decide(site, cost, battery, profile, &s) {
            Decision::InstallNow => return Some(now),
            Decision::WaitUntil(t) => t.max(now + 1),
            Decision::Blocked(_) => now + RETRY_SECS,
        };
    }
    None
}

/// The scheduler's site configuration for `policy` (with the rollout's
/// `deadline`), as a lock reporting zone `lock_zone` builds it.
fn lock_site(policy: &SitePolicy, lock_zone: Option<&str>) -> (SiteConfig, AgentConfig) {
    use lock_app::agent::wire::{InstallPolicy, QuietWindow};
    let p = InstallPolicy {
        quiet_hours: policy.quiet_hours.as_ref().map(|q| QuietWindow {
            start: q.start.clone(),
            end: q.end.clone(),
        }),
        blackout_dates: policy.blackout_dates.clone(),
        time_zone: policy.time_zone.clone(),
        security_deadline: None,
    };
    let mut config = AgentConfig::new("preview");
    config.time_zone = lock_zone.map(str::to_owned);
    (site_config(&p, &config), config)
}

fn local_date(tz: &tz::TzRule, t: u64) -> (i32, u8, u8) {
    let dt = tz.local_date_time(i64::try_from(t).unwrap_or(i64::MAX));
    (dt.year, dt.month, dt.day)
}

/// Expected door entries in an hour, as a share of the peak hour's, for
/// each heat level of a usage summary (`lock_app::scheduler::summary`:
/// level 3 is at least a quarter of the peak, 2 at least 1/16, 1 at least
/// 1/128, 0 below): the geometric middle of each level's range.
pub const HEAT_SHARE_OF_PEAK: [f64; 4] = [0.0, 0.022_097, 0.125, 0.5];

const QUARTER: i64 = 900;

/// A site's install rules laid out as a table: for each local day of the
/// stretch a preview looks at, which quarter-hour starts the window and
/// blackout dates allow (start and end of the install), so that placing
/// each of 100,000 locks is table lookups, not calendar arithmetic.
#[derive(Debug, Clone)]
pub struct Calendar {
    /// The scheduler's site configuration.
    pub site: SiteConfig,
    downtime_secs: u64,
    first_day: i64,
    allowed: Vec<[bool; 96]>,
}

impl Calendar {
    /// The table for installs of `downtime_secs` started from `from` up to
    /// `until` (Unix s), plus one scheduler horizon.
    pub fn new(site: SiteConfig, downtime_secs: u64, from: u64, until: u64) -> Self {
        let local = |utc: u64| site.tz.to_local(i64::try_from(utc).unwrap_or(i64::MAX / 2));
        let first_day = local(from).div_euclid(DAY) - 1;
        let horizon = u64::from(site.horizon_hours) * 3600;
        let last_day = local(until.saturating_add(horizon)).div_euclid(DAY) + 1;
        let mut c = Self {
            site,
            downtime_secs,
            first_day,
            allowed: Vec::new(),
        };
        let days = usize::try_from(last_day - first_day + 1)
            .unwrap_or(0)
            .min(400);
        c.allowed = (0..days)
            .map(|d| {
                let midnight = (first_day + d as i64) * DAY;
                let mut row = [false; 96];
                for (q, slot) in row.iter_mut().enumerate() {
                    *slot = c.allowed_slow(midnight + q as i64 * QUARTER);
                }
                row
            })
            .collect();
        c
    }

    /// Whether an install may start at local time `l` (local seconds) and
    /// run its downtime: inside the window, on no blacked-out date.
    fn allowed_slow(&self, l: i64) -> bool {
        let last = i64::try_from(self.downtime_secs.max(1) - 1).unwrap_or(0);
        [l, l + last].iter().all(|&x| {
            let (year, month, day) = tz::civil_from_days(x.div_euclid(DAY));
            self.site.window.contains((x.rem_euclid(DAY) / 60) as u16)
                && !self.site.blackout.contains(&LocalDate { year, month, day })
        })
    }

    /// [`Self::allowed_slow`], from the table for quarter-hour starts.
    fn allowed(&self, l: i64) -> bool {
        if l.rem_euclid(QUARTER) == 0 {
            let day = l.div_euclid(DAY) - self.first_day;
            if let Some(row) = usize::try_from(day).ok().and_then(|d| self.allowed.get(d)) {
                return row[(l.rem_euclid(DAY) / QUARTER) as usize];
            }
        }
        self.allowed_slow(l)
    }
}

/// Where a lock that reported a usage summary installs, staged at `from`
/// (Unix s): the scheduler's loop ([`install_time`]) with the summary
/// standing in for the profile the lock keeps to itself. Asked at `now`,
/// the lock takes the best start in its horizon (`now`, then every
/// quarter-hour, for `horizon_hours`, before a security deadline) inside
/// the site's window and not on a blacked-out date, ranked by: the heat
/// map's level for that hour, then whether it is in that weekday's quiet
/// slot (the lock's own choice at full precision), then the scheduler's
/// night prior ([`NightPrior::slot`], the lock's own function: the middle
/// of the night and of the quiet run before its edges; on the summary's
/// quiet hours, those of the lock's profile, via
/// [`UsageSummary::approximate_profile`]), then the earliest; it installs
/// when the best start is `now`, else asks again then. No start in the
/// horizon: it waits for the deadline if that comes first, else asks again
/// 6 hours later. Past a deadline it installs at once. For a lock that has
/// learned nothing this is exactly the scheduler's choice (tested). None if
/// not before `until`; with the local hour of the week the install starts
/// in.
pub fn install_time_with_summary(
    cal: &Calendar,
    summary: &UsageSummary,
    deadline: Option<u64>,
    from: u64,
    until: u64,
) -> Option<(u64, usize)> {
    let site = &cal.site;
    let tz = &site.tz;
    let local = |utc: u64| tz.to_local(i64::try_from(utc).unwrap_or(i64::MAX / 2));
    let hour_of_week = |l: i64| {
        let day = l.div_euclid(DAY);
        ((day + 3).rem_euclid(7) * 24 + l.rem_euclid(DAY) / 3600) as usize
    };
    let to_utc = |l: i64| match tz.from_local(l) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => u64::try_from(t).ok(),
        // A start in the spring-forward gap happens an hour later.
        LocalResult::Gap => u64::try_from(l - i64::from(tz.std_offset)).ok(),
    };
    let allowed = |l: i64| cal.allowed(l);
    // In the quiet slot of its own local day, or of the day before (slots
    // may run past midnight).
    let in_quiet = |l: i64| {
        let day = l.div_euclid(DAY);
        [day, day - 1].iter().any(|&d| {
            summary.quiet[(d + 3).rem_euclid(7) as usize].is_some_and(|q| {
                let start = d * DAY + i64::from(q.start) * QUARTER;
                (start..start + i64::from(q.quarters) * QUARTER).contains(&l)
            })
        })
    };
    // The lock's night prior, on the quiet hours the summary reports.
    let night = NightPrior::of(&summary.approximate_profile());
    let last = i64::try_from(cal.downtime_secs.max(1) - 1).unwrap_or(0);
    let key = |l: i64| {
        let h = hour_of_week(l);
        let prior = night.slot(h, hour_of_week(l + last));
        (summary.heat[h], !in_quiet(l), prior, l)
    };
    let horizon = i64::from(site.horizon_hours) * 3600;
    let until_l = local(until);
    let deadline_l = deadline.map(local);
    let done = |l: i64| {
        let t = to_utc(l)?;
        (t < until).then(|| (t, hour_of_week(l)))
    };
    let mut now = local(from);
    // The best start found so far in [now, scanned) — still the best of
    // that stretch after `now` moves up to it.
    let mut best: Option<(u8, bool, u64, i64)> = None;
    let mut scanned = now;
    for _ in 0..MAX_DECISIONS {
        if now >= until_l {
            return None;
        }
        if deadline_l.is_some_and(|d| now >= d) {
            return done(now);
        }
        let limit = deadline_l.map_or(now + horizon, |d| d.min(now + horizon));
        let mut t = scanned.max(now);
        if t > now {
            t = (t + QUARTER - 1).div_euclid(QUARTER) * QUARTER;
        }
        while t < limit {
            if allowed(t) {
                let k = key(t);
                if best.is_none_or(|b| k < b) {
                    best = Some(k);
                }
            }
            t = (t.div_euclid(QUARTER) + 1) * QUARTER;
        }
        scanned = limit.max(scanned);
        match best {
            Some((.., l)) if l == now => return done(now),
            Some((.., l)) => now = l,
            None => {
                now = match deadline_l {
                    Some(d) if d <= now + horizon => d,
                    _ => now + i64::try_from(RETRY_SECS).unwrap_or(0),
                };
                scanned = now;
            }
        }
    }
    None
}

/// Preview `r` (a draft built from the create body) at `now`.
pub async fn run(state: &AppState, mut r: Rollout, now: i64) -> AppResult<Preview> {
    let start = r.spec.start_at.map_or(now, |s| s.max(now));
    let mut starts = Vec::with_capacity(r.spec.waves.len());
    let mut at = start;
    for w in &r.spec.waves {
        starts.push(at);
        at = at.saturating_add(
            i64::try_from(w.min_soak_secs)
                .unwrap_or(i64::MAX / 2000)
                .saturating_mul(1000),
        );
    }
    // Running from `start`, judged when the last wave has started: every
    // lock's wave, as the check-in planner would assign it.
    r.state = RolloutState::Running;
    r.wave_index = 0;
    r.wave_started_at = Some(start);
    r.paused_at = None;
    let judged_at = starts.last().copied().unwrap_or(start);
    let target_order = version::order(&r.target_version)
        .ok_or_else(|| ApiError::invalid("the target's version is not MAJOR.MINOR.PATCH"))?;
    let mut candidates = state
        .store
        .rollout_candidates(&r.hardware_model, target_order, MAX_LOCKS + 1)
        .await?;
    let capped = candidates.len() > MAX_LOCKS as usize;
    candidates.truncate(MAX_LOCKS as usize);
    let groups = if r.spec.groups.is_empty() {
        HashMap::new()
    } else {
        state.store.group_members(&r.spec.groups).await?
    };
    let policies: HashMap<String, SitePolicy> =
        state.store.site_policies().await?.into_iter().collect();
    let catalog = state.repo.catalog();
    let deadline = r
        .spec
        .security_deadline
        .and_then(|ms| u64::try_from(ms.div_euclid(1000)).ok());
    let horizon_end =
        u64::try_from(start.saturating_add(HORIZON_DAYS * DAY_MS) / 1000).unwrap_or(u64::MAX);
    let provisional = r.id.clone();
    let (target, model) = (r.target.clone(), r.hardware_model.clone());
    let waves_spec = r.spec.waves.clone();
    let blocking =
        |e: tokio::task::JoinError| ApiError::Internal(anyhow::anyhow!("preview task: {e}"));

    // Who is in which wave (the planner's engine).
    let (candidates, members, eligible, outside) = tokio::task::spawn_blocking(move || {
        let none: Vec<String> = Vec::new();
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); r.spec.waves.len()];
        let (mut eligible, mut outside) = (0, 0);
        for (k, c) in candidates.iter().enumerate() {
            let facts = DeviceFacts {
                id: &c.id,
                hardware_model: &r.hardware_model,
                groups: groups.get(&c.id).unwrap_or(&none),
                firmware_version: c.firmware_version.as_deref(),
                security_counter: c.security_counter.and_then(|v| u32::try_from(v).ok()),
                rollout_status: None,
            };
            match eligibility(&r, &facts, &catalog, judged_at) {
                Ok(w) => {
                    eligible += 1;
                    if let Some(m) = members.get_mut(w) {
                        m.push(k);
                    }
                }
                Err(Ineligible::LaterWave(usize::MAX)) => {
                    eligible += 1;
                    outside += 1;
                }
                Err(_) => {}
            }
        }
        (candidates, members, eligible, outside)
    })
    .await
    .map_err(blocking)?;

    tokio::task::spawn_blocking(move || {
        let default_policy = SitePolicy::default();
        // Distinct policies (index 0: the default, for sites without one).
        let mut distinct: Vec<&SitePolicy> = vec![&default_policy];
        let mut policy_of: HashMap<&str, usize> = HashMap::new();
        for (site, p) in &policies {
            let i = match distinct.iter().position(|d| *d == p) {
                Some(i) => i,
                None => {
                    distinct.push(p);
                    distinct.len() - 1
                }
            };
            policy_of.insert(site.as_str(), i);
        }
        // The scheduler's site configuration and calendar per (policy, zone
        // the lock reports if the policy names none).
        let mut sites: HashMap<(usize, Option<&str>), (Calendar, AgentConfig)> = HashMap::new();
        let from = u64::try_from(start.div_euclid(1000)).unwrap_or(0);
        // Locks that learned nothing: (policy, zone, wave) → install time
        // and local date. Locks with a summary: also by summary.
        type Slot = Option<(u64, (i32, u8, u8), f64)>;
        let mut plain: HashMap<(usize, Option<&str>, usize), Slot> = HashMap::new();
        let mut learned: HashMap<(usize, Option<&str>, usize, UsageSummary), Slot> = HashMap::new();
        let mut waves = Vec::with_capacity(waves_spec.len());
        for (i, (w, locks)) in waves_spec.iter().zip(&members).enumerate() {
            let staged = u64::try_from((starts[i] + 999).div_euclid(1000)).unwrap_or(0);
            let mut out = WavePreview {
                share: w.share,
                soak_secs: w.min_soak_secs,
                starts_at: starts[i],
                eligible: locks.len(),
                ..WavePreview::default()
            };
            for &k in locks {
                let c = &candidates[k];
                let p = policy_of.get(c.site.as_str()).copied().unwrap_or(0);
                let policy = distinct[p];
                let zone = if policy.time_zone.is_some() {
                    None
                } else {
                    c.time_zone.as_deref()
                };
                let (cal, config) = sites.entry((p, zone)).or_insert_with(|| {
                    let (site, config) = lock_site(policy, zone);
                    let cal =
                        Calendar::new(site, config.install_cost.downtime_secs, from, horizon_end);
                    (cal, config)
                });
                let site = &cal.site;
                // The lock's own codec; a summary that does not decode counts
                // as none.
                let summary = c
                    .usage
                    .as_deref()
                    .and_then(|text| UsageSummary::from_text(text).ok());
                let slot = match summary {
                    Some(u) => *learned.entry((p, zone, i, u.clone())).or_insert_with(|| {
                        let peak = u.peak_entries();
                        install_time_with_summary(cal, &u, deadline, staged, horizon_end).map(
                            |(t, h)| {
                                let level = usize::from(u.heat[h].min(3));
                                (t, local_date(&site.tz, t), peak * HEAT_SHARE_OF_PEAK[level])
                            },
                        )
                    }),
                    None => *plain.entry((p, zone, i)).or_insert_with(|| {
                        install_time(
                            site,
                            &config.install_cost,
                            &config.battery,
                            &UsageProfile::new(),
                            deadline,
                            staged,
                            horizon_end,
                        )
                        .map(|t| (t, local_date(&site.tz, t), 0.0))
                    }),
                };
                match slot {
                    Some((_, date, openings)) => {
                        *out.nights.entry(date).or_default() += 1;
                        out.door_openings += openings;
                    }
                    None => out.unscheduled += 1,
                }
            }
            waves.push(out);
        }
        Preview {
            target,
            hardware_model: model,
            provisional_id: provisional,
            start,
            eligible,
            outside_waves: outside,
            capped,
            waves,
        }
    })
    .await
    .map_err(blocking)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::QuietWindow;
    use lock_app::scheduler::Window;

    /// A lock that has learned nothing installs at the same moment whether
    /// the preview runs its scheduler or reads its (empty) summary: one
    /// truth for both paths.
    #[test]
    fn an_empty_summary_installs_where_the_scheduler_does() {
        let windows = [
            None,
            Some(("01:00", "05:00")),
            Some(("23:00", "02:00")),
            Some(("02:00", "03:00")),
            Some(("06:00", "08:00")),
        ];
        let zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"];
        // 2030-01-01T00:00:00Z, then every 45 minutes over two days.
        let t0: u64 = 1_893_456_000;
        let mut compared = 0;
        for w in windows {
            for zone in zones {
                for blackout in [vec![], vec!["2030-01-02".to_owned()]] {
                    let policy = SitePolicy {
                        quiet_hours: w.map(|(s, e)| QuietWindow {
                            start: s.into(),
                            end: e.into(),
                        }),
                        blackout_dates: blackout,
                        time_zone: Some(zone.into()),
                    };
                    let (site, config) = lock_site(&policy, None);
                    let cal = Calendar::new(
                        site.clone(),
                        config.install_cost.downtime_secs,
                        t0,
                        t0 + 20 * 86_400,
                    );
                    let empty = UsageSummary::from_profile(
                        &UsageProfile::new(),
                        &site.tz,
                        Window::ALL_DAY,
                        config.install_cost.downtime_secs,
                        t0,
                    );
                    for k in 0..64 {
                        let from = t0 + k * 2700;
                        let until = from + 14 * 86_400;
                        let by_scheduler = install_time(
                            &site,
                            &config.install_cost,
                            &config.battery,
                            &UsageProfile::new(),
                            None,
                            from,
                            until,
                        );
                        let by_summary = install_time_with_summary(&cal, &empty, None, from, until)
                            .map(|(t, _)| t);
                        let what = format!("{w:?} {zone} {:?} from {from}", policy.blackout_dates);
                        match (by_scheduler, by_summary) {
                            (Some(a), Some(b)) => {
                                // Same local night; the same moment when the
                                // start is on a quarter-hour (the summary's
                                // grain).
                                assert_eq!(
                                    local_date(&site.tz, a),
                                    local_date(&site.tz, b),
                                    "{what}"
                                );
                                if from.is_multiple_of(900) {
                                    assert_eq!(a, b, "{what}");
                                }
                                assert!(b >= a && b - a < 900, "{what}: {a} vs {b}");
                            }
                            (a, b) => assert_eq!(a, b, "{what}"),
                        }
                        compared += 1;
                    }
                }
            }
        }
        assert_eq!(compared, 5 * 4 * 2 * 64);
    }

    /// A lock that learned a quiet night (23:00-06:00 UTC) installs in its
    /// middle, 03:00, not at its first hour, whether the preview runs the
    /// lock's scheduler on the lock's profile or reads its summary: the
    /// same night prior ([`NightPrior`]) on both paths.
    #[test]
    fn a_learned_quiet_night_installs_in_its_middle_on_both_paths() {
        let t0: u64 = 1_893_456_000; // 2030-01-01T00:00:00Z
        let tz = tz::TzRule::UTC;
        let mut profile = UsageProfile::new();
        for day in 0..28u64 {
            let midnight = t0 - (28 - day) * 86_400;
            for (h, m) in [(6, 20), (7, 10), (18, 0), (21, 15), (22, 40)] {
                profile.observe((midnight + h * 3600 + m * 60) as i64, &tz);
            }
        }
        let policy = SitePolicy {
            quiet_hours: None,
            blackout_dates: vec![],
            time_zone: Some("UTC".into()),
        };
        let (site, config) = lock_site(&policy, None);
        let downtime = config.install_cost.downtime_secs;
        let summary = UsageSummary::from_profile(&profile, &tz, Window::ALL_DAY, downtime, t0);
        let cal = Calendar::new(site.clone(), downtime, t0, t0 + 20 * 86_400);
        let from = t0 + 12 * 3600; // noon
        let until = from + 14 * 86_400;
        let want = t0 + 86_400 + 3 * 3600; // 03:00 the next night
        let by_scheduler = install_time(
            &site,
            &config.install_cost,
            &config.battery,
            &profile,
            None,
            from,
            until,
        );
        assert_eq!(by_scheduler, Some(want));
        let by_summary = install_time_with_summary(&cal, &summary, None, from, until);
        assert_eq!(by_summary.map(|x| x.0), Some(want));
        assert_eq!(
            NightPrior::of(&summary.approximate_profile()),
            NightPrior::of(&profile)
        );
    }

    #[test]
    fn past_the_deadline_installs_at_once() {
        let policy = SitePolicy {
            quiet_hours: Some(QuietWindow {
                start: "01:00".into(),
                end: "02:00".into(),
            }),
            blackout_dates: vec![],
            time_zone: Some("UTC".into()),
        };
        let (site, config) = lock_site(&policy, None);
        let s = UsageSummary::from_profile(&UsageProfile::new(), &site.tz, Window::ALL_DAY, 60, 0);
        let cal = Calendar::new(site.clone(), 60, 1_893_456_000, 1_893_456_000 + 20 * 86_400);
        let from = 1_893_456_000 + 12 * 3600; // 12:00 UTC
        let until = from + 14 * 86_400;
        // The deadline at 18:00, before the next window: install at 18:00.
        let d = from + 6 * 3600;
        assert_eq!(
            install_time_with_summary(&cal, &s, Some(d), from, until).map(|x| x.0),
            Some(d)
        );
        assert_eq!(
            install_time(
                &site,
                &config.install_cost,
                &config.battery,
                &UsageProfile::new(),
                Some(d),
                from,
                until
            ),
            Some(d)
        );
        // Already past: at once.
        assert_eq!(
            install_time_with_summary(&cal, &s, Some(from - 1), from, until).map(|x| x.0),
            Some(from)
        );
    }
}
