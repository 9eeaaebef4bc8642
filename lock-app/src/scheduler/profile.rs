//! The door's rhythm: expected entries per local hour of the week, learned
//! from the audit log and decayed week by week.
//!
//! Each bucket holds a 16.16 fixed-point count. An event adds [`ONE`]; when
//! a new local week starts, every bucket is multiplied by
//! [`DECAY_PER_WEEK`]`/65536` once per week that passed (≈ 0.758, a half-life
//! of 2.5 weeks), so a changed routine takes over within a few weeks.

use super::tz::{DAY, TzRule};
use crate::storage::{AuditEntry, AuditEvent};

/// Buckets: 7 days × 24 hours, Monday 00:00 first.
pub const HOURS_PER_WEEK: usize = 168;
/// One event, in 16.16 fixed point.
pub const ONE: u32 = 1 << 16;
/// Weekly decay factor ×65536: 2^(−1/2.5) ≈ 0.7579.
pub const DECAY_PER_WEEK: u64 = 49_670;

/// Expected use per hour of the week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageProfile {
    buckets: [u32; HOURS_PER_WEEK],
    /// Local week (days since the epoch's Monday / 7) of the last decay.
    week: Option<i64>,
    /// Local week of the first door use observed.
    first_week: Option<i64>,
}

impl Default for UsageProfile {
    fn default() -> Self {
        Self::new()
    }
}

impl UsageProfile {
    /// Nothing learned yet: every hour looks equally quiet.
    pub const fn new() -> Self {
        Self {
            buckets: [0; HOURS_PER_WEEK],
            week: None,
            first_week: None,
        }
    }

    /// A profile with these buckets (16.16 expected entries per local hour
    /// of the week, Monday 00:00 first), decayed to local `week`: e.g. one
    /// rebuilt from a usage summary on the server
    /// ([`super::summary::UsageSummary::approximate_profile`]).
    pub const fn from_buckets(buckets: [u32; HOURS_PER_WEEK], week: Option<i64>) -> Self {
        Self {
            buckets,
            week,
            first_week: week,
        }
    }

    /// Whether an audit event is door use.
    pub fn is_use(event: &AuditEvent) -> bool {
        matches!(event, AuditEvent::DoorOpened | AuditEvent::UnlockPin { .. })
    }

    /// Learn from one audit entry (events other than door use are ignored).
    pub fn observe_entry(&mut self, entry: &AuditEntry, tz: &TzRule) {
        if Self::is_use(&entry.event) {
            self.observe(entry.time as i64, tz);
        }
    }

    /// Count one use of the door at `utc`.
    pub fn observe(&mut self, utc: i64, tz: &TzRule) {
        self.decay_to(utc, tz);
        if self.first_week.is_none() {
            self.first_week = self.week;
        }
        let hour = tz.local_date_time(utc).hour_of_week();
        self.buckets[hour] = self.buckets[hour].saturating_add(ONE);
    }

    /// Apply the decay for every local week started since the last one.
    pub fn decay_to(&mut self, utc: i64, tz: &TzRule) {
        // 1970-01-05 was a Monday.
        let week = (tz.to_local(utc).div_euclid(DAY) - 4).div_euclid(7);
        let Some(last) = self.week else {
            self.week = Some(week);
            return;
        };
        if week <= last {
            return;
        }
        let weeks = (week - last).min(64);
        for b in &mut self.buckets {
            let mut v = u64::from(*b);
            for _ in 0..weeks {
                v = (v * DECAY_PER_WEEK) >> 16;
            }
            *b = v as u32;
        }
        self.week = Some(week);
    }

    /// Expected entries (16.16) in hour `hour_of_week`.
    pub fn expected(&self, hour_of_week: usize) -> u32 {
        self.buckets.get(hour_of_week).copied().unwrap_or(0)
    }

    /// All buckets.
    pub fn buckets(&self) -> &[u32; HOURS_PER_WEEK] {
        &self.buckets
    }

    /// The local week (days since Monday 1970-01-05, divided by 7) the
    /// buckets are decayed to; `None` before anything was observed or
    /// decayed.
    pub fn week(&self) -> Option<i64> {
        self.week
    }

    /// Whole local weeks from the first door use observed to the week the
    /// buckets are decayed to (0: nothing learned, or learning started
    /// this week).
    pub fn weeks_learned(&self) -> u64 {
        match (self.first_week, self.week) {
            (Some(first), Some(now)) => u64::try_from(now - first).unwrap_or(0),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_local_hours_and_decay_by_half_in_two_and_a_half_weeks() {
        let tz = TzRule::parse("CET-1CEST,M3.5.0,M10.5.0/3").unwrap_or(TzRule::UTC);
        let mut p = UsageProfile::new();
        // Monday 2026-01-05 07:30 CET = 06:30 UTC.
        let t = super::super::tz::days_from_civil(2026, 1, 5) * DAY + 6 * 3600 + 1800;
        for _ in 0..10 {
            p.observe(t, &tz);
        }
        assert_eq!(p.expected(7), 10 * ONE);
        p.decay_to(t + 5 * 7 * DAY, &tz);
        // Five weeks = two half-lives: about a quarter is left.
        let left = p.expected(7) as f64 / (10 * ONE) as f64;
        assert!((0.24..0.26).contains(&left), "{left}");
    }
}
