//! The lock's picture of its door, small enough to ride in every signed
//! check-in that needs it (`report.usage`, see `agent::wire`), and the one
//! codec of it: the lock packs it here, the update server unpacks it here
//! (it depends on this crate without default features).
//!
//! # Format 1: 62 bytes, sent as 83 characters of unpadded base64url
//!
//! | bytes | field |
//! |---|---|
//! | 0 | format, `1` |
//! | 1–2 | epoch: the local week the counts are decayed to (days since Monday 1970-01-05, divided by 7), u16 big-endian |
//! | 3 | weeks learned: from the first door use observed to the epoch, u8 (saturating) |
//! | 4–5 | peak: expected entries in the busiest hour of the week, in 1/16 (rounded up, saturating), u16 big-endian |
//! | 6–19 | quiet slot of each local weekday, Monday first: start (quarter-hour of the day, 0–95) and length (quarter-hours, 1–96); `FF 00`: no slot |
//! | 20–61 | heat: 168 hours of the week (Monday 00:00 first) × 2 bits, four hours per byte, the first in the low bits |
//!
//! **Heat** is each hour's expected entries `v` against the peak hour's
//! `p`, on a log scale: 3 if `v ≥ p/4`, 2 if `v ≥ p/16`, 1 if `v ≥ p/128`
//! (and `v > 0`), else 0 — busy, some, rare, never. Four bits per hour
//! would take 84 bytes alone and put a check-in carrying the summary at
//! about 1,080 bytes on air; two bits keep it under 1 KiB, and what the
//! lock decides with stays on the lock at full precision: the summary's
//! **quiet slots** are the scheduler's own choice, not something to
//! recompute from the heat map.
//!
//! **Quiet slot** of a weekday: the quarter-hour start on that local day
//! that the scheduler's cost ([`slot_cost`](super::slot_cost), the one its
//! install decisions use, night prior included: [`NightPrior`]) ranks
//! lowest for the lock's install downtime, ties to the earliest; its
//! length runs on quarter-hour by quarter-hour (past midnight too, at most
//! 24 h) while starting later would cost at most [`QUIET_MARGIN`] more use
//! and no more prior. The prior changes from hour to hour (it grows away
//! from the middle of the night and of the quiet run), so a slot is often
//! just the rest of the hour it starts in. A lock that has learned nothing
//! reports 03:00 for 1 h every day (the middle of the prior's night).
//!
//! The decoder ([`UsageSummary::from_bytes`], [`UsageSummary::from_text`])
//! refuses anything else: other lengths and formats, slots out of range, a
//! heat map that does not fit its peak. It never panics.

use alloc::string::String;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::profile::{HOURS_PER_WEEK, ONE, UsageProfile};
use super::tz::TzRule;
use super::{NightPrior, SlotCost, Window, slot_cost_with};

/// The format this module writes and reads.
pub const FORMAT: u8 = 1;
/// Packed length of format 1.
pub const LEN: usize = 62;
/// Length of its unpadded base64url text.
pub const TEXT_LEN: usize = (LEN * 4).div_ceil(3);
/// Longest text the decoder looks at (bounds the work on hostile input).
pub const MAX_TEXT_LEN: usize = 128;
/// Quarter-hours in a day.
pub const QUARTERS_PER_DAY: u8 = 96;
/// A later start still belongs to the quiet slot while its weighted use
/// (see [`slot_cost`](super::slot_cost)) is at most this much above the
/// chosen start's: one expected entry (16.16), e.g. an eighth of an entry
/// more in its own hour.
pub const QUIET_MARGIN: u64 = ONE as u64;

const HEADER: usize = 6;
const SLOTS: usize = HEADER + 14;
const NO_SLOT: [u8; 2] = [0xff, 0];
const WEEK_SECS: u64 = 7 * 86_400;
const QUARTER_SECS: u64 = 900;

/// The quietest stretch of one local weekday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuietSlot {
    /// Start: quarter-hour of the local day (0–95).
    pub start: u8,
    /// Length in quarter-hours (1–96).
    pub quarters: u8,
}

impl QuietSlot {
    /// Start, local minutes after midnight.
    pub fn start_minute(self) -> u16 {
        u16::from(self.start) * 15
    }

    /// Length in minutes.
    pub fn minutes(self) -> u16 {
        u16::from(self.quarters) * 15
    }
}

/// The lock's learned usage, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UsageSummary {
    /// Local week the counts are decayed to (days since Monday
    /// 1970-01-05, divided by 7).
    pub epoch_week: u16,
    /// Whole weeks from the first door use observed to `epoch_week`.
    pub weeks_learned: u8,
    /// Expected entries in the busiest hour, in sixteenths (0: nothing
    /// learned; then every heat level is 0).
    pub peak_sixteenths: u16,
    /// Quiet slot per local weekday, Monday first (`None`: no start
    /// allowed that day).
    pub quiet: [Option<QuietSlot>; 7],
    /// Heat level 0–3 per local hour of the week, Monday 00:00 first.
    pub heat: [u8; HOURS_PER_WEEK],
}

/// Why a summary was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SummaryError {
    /// Longer than [`MAX_TEXT_LEN`] characters.
    TooLong(usize),
    /// Not unpadded base64url.
    NotBase64,
    /// Not [`LEN`] bytes.
    Length(usize),
    /// A format this code does not read.
    Format(u8),
    /// The quiet slot of weekday `n` (0 = Monday) is out of range.
    Slot(u8),
    /// The heat map does not fit the peak (levels without a peak, or a
    /// peak without a level-3 hour).
    Heat,
}

impl core::fmt::Display for SummaryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        match self {
            Self::TooLong(n) => write!(
                f,
                "usage summary is {n} characters, at most {MAX_TEXT_LEN} allowed"
            ),
            Self::NotBase64 => f.write_str("usage summary is not unpadded base64url"),
            Self::Length(n) => write!(f, "usage summary is {n} bytes, format {FORMAT} has {LEN}"),
            Self::Format(v) => write!(
                f,
                "usage summary format {v} is not known (this server reads {FORMAT})"
            ),
            Self::Slot(d) => write!(
                f,
                "usage summary: quiet slot of {} out of range (start 0-95, length 1-96 quarter-hours)",
                DAYS.get(usize::from(*d)).copied().unwrap_or("?")
            ),
            Self::Heat => f.write_str("usage summary: heat map does not fit its peak"),
        }
    }
}

impl core::error::Error for SummaryError {}

/// Heat level of `v` against the peak `p` (see the module documentation).
pub fn heat_level(v: u32, p: u32) -> u8 {
    let (v, p) = (u64::from(v), u64::from(p));
    if v == 0 || p == 0 || v * 128 < p {
        0
    } else if v * 16 < p {
        1
    } else if v * 4 < p {
        2
    } else {
        3
    }
}

/// Each local weekday's quiet slot for an install of `downtime_secs`, with
/// starts limited to `window` (see the module documentation).
pub fn quiet_slots(
    profile: &UsageProfile,
    window: Window,
    downtime_secs: u64,
) -> [Option<QuietSlot>; 7] {
    let last = downtime_secs.clamp(1, 86_400) - 1;
    let minute = |t: u64| ((t % 86_400) / 60) as u16;
    let night = NightPrior::of(profile);
    // Cost of a start `sow` seconds into the local week, if allowed.
    let cost = |sow: u64| -> Option<SlotCost> {
        let end = (sow + last) % WEEK_SECS;
        (window.contains(minute(sow)) && window.contains(minute(end)))
            .then(|| slot_cost_with(profile, night, (sow / 3600) as usize, (end / 3600) as usize))
    };
    let mut out = [None; 7];
    for (day, slot) in out.iter_mut().enumerate() {
        let day_start = day as u64 * 86_400;
        let mut best: Option<(u64, SlotCost, u8)> = None;
        for q in 0..QUARTERS_PER_DAY {
            if let Some(c) = cost(day_start + u64::from(q) * QUARTER_SECS) {
                let total = c.usage + c.prior;
                if best.is_none_or(|(t, _, _)| total < t) {
                    best = Some((total, c, q));
                }
            }
        }
        let Some((_, b, q)) = best else { continue };
        let start = day_start + u64::from(q) * QUARTER_SECS;
        let mut n: u8 = 1;
        while n < QUARTERS_PER_DAY {
            match cost((start + u64::from(n) * QUARTER_SECS) % WEEK_SECS) {
                Some(c) if c.prior <= b.prior && c.usage <= b.usage + QUIET_MARGIN => n += 1,
                _ => break,
            }
        }
        *slot = Some(QuietSlot {
            start: q,
            quarters: n,
        });
    }
    out
}

impl UsageSummary {
    /// The summary of `profile` at `now` (Unix seconds; the counts are
    /// decayed to it first, on a copy) in the zone `tz`, quiet slots for an
    /// install of `downtime_secs` starting inside `window`.
    pub fn from_profile(
        profile: &UsageProfile,
        tz: &TzRule,
        window: Window,
        downtime_secs: u64,
        now: u64,
    ) -> Self {
        let mut p = profile.clone();
        p.decay_to(i64::try_from(now).unwrap_or(i64::MAX), tz);
        let peak = p.buckets().iter().copied().max().unwrap_or(0);
        let mut heat = [0u8; HOURS_PER_WEEK];
        for (h, &v) in heat.iter_mut().zip(p.buckets()) {
            *h = heat_level(v, peak);
        }
        Self {
            epoch_week: p
                .week()
                .map_or(0, |w| u16::try_from(w.max(0)).unwrap_or(u16::MAX)),
            weeks_learned: u8::try_from(p.weeks_learned()).unwrap_or(u8::MAX),
            peak_sixteenths: u16::try_from(peak.div_ceil(ONE / 16)).unwrap_or(u16::MAX),
            quiet: quiet_slots(&p, window, downtime_secs),
            heat,
        }
    }

    /// Heat level of local `hour` (0–23) on `day` (0 = Monday); 0 outside.
    pub fn heat_at(&self, day: usize, hour: usize) -> u8 {
        if day >= 7 || hour >= 24 {
            return 0;
        }
        self.heat[day * 24 + hour]
    }

    /// Expected entries in the busiest hour.
    pub fn peak_entries(&self) -> f64 {
        f64::from(self.peak_sixteenths) / 16.0
    }

    /// A profile that reads back as this summary's heat map and peak: each
    /// hour at a representative value of its level (busy: the peak; some:
    /// 1/8 of it; rare: 1/45; never: 0), decayed to the epoch. For code that
    /// runs the lock's scheduler on what the lock reported (a rollout
    /// forecast): what it decides is close to what the lock decides, not
    /// always equal; the lock's own choice is [`Self::quiet`]. Its quiet
    /// hours, and so its [`NightPrior`], are exactly those of the profile
    /// the summary was made from (heat level 0 on every day).
    pub fn approximate_profile(&self) -> UsageProfile {
        let peak = u32::from(self.peak_sixteenths) * (ONE / 16);
        let mut buckets = [0u32; HOURS_PER_WEEK];
        for (b, &level) in buckets.iter_mut().zip(&self.heat) {
            *b = match level {
                3 => peak,
                2 => peak / 8,
                1 => (peak / 45).max(1),
                _ => 0,
            };
        }
        UsageProfile::from_buckets(buckets, Some(i64::from(self.epoch_week)))
    }

    /// The packed bytes (heat levels are taken modulo 4).
    pub fn to_bytes(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0] = FORMAT;
        b[1..3].copy_from_slice(&self.epoch_week.to_be_bytes());
        b[3] = self.weeks_learned;
        b[4..6].copy_from_slice(&self.peak_sixteenths.to_be_bytes());
        for (d, q) in self.quiet.iter().enumerate() {
            let at = HEADER + 2 * d;
            b[at..at + 2].copy_from_slice(&q.map_or(NO_SLOT, |q| [q.start, q.quarters]));
        }
        for (h, &level) in self.heat.iter().enumerate() {
            b[SLOTS + h / 4] |= (level & 3) << (2 * (h % 4));
        }
        b
    }

    /// Unpack, refusing anything malformed.
    pub fn from_bytes(b: &[u8]) -> Result<Self, SummaryError> {
        if let Some(&v) = b.first()
            && v != FORMAT
        {
            return Err(SummaryError::Format(v));
        }
        let b: &[u8; LEN] = b.try_into().map_err(|_| SummaryError::Length(b.len()))?;
        let mut quiet = [None; 7];
        for (d, q) in quiet.iter_mut().enumerate() {
            let at = HEADER + 2 * d;
            let (start, quarters) = (b[at], b[at + 1]);
            if [start, quarters] == NO_SLOT {
                continue;
            }
            if start >= QUARTERS_PER_DAY || quarters == 0 || quarters > QUARTERS_PER_DAY {
                return Err(SummaryError::Slot(d as u8));
            }
            *q = Some(QuietSlot { start, quarters });
        }
        let mut heat = [0u8; HOURS_PER_WEEK];
        for (h, level) in heat.iter_mut().enumerate() {
            *level = (b[SLOTS + h / 4] >> (2 * (h % 4))) & 3;
        }
        let peak_sixteenths = u16::from_be_bytes([b[4], b[5]]);
        let hottest = heat.iter().copied().max().unwrap_or(0);
        if (peak_sixteenths == 0 && hottest != 0) || (peak_sixteenths != 0 && hottest != 3) {
            return Err(SummaryError::Heat);
        }
        Ok(Self {
            epoch_week: u16::from_be_bytes([b[1], b[2]]),
            weeks_learned: b[3],
            peak_sixteenths,
            quiet,
            heat,
        })
    }

    /// Unpadded base64url of the packed bytes: what the check-in carries.
    pub fn to_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.to_bytes())
    }

    /// Decode the check-in's text, refusing anything malformed.
    pub fn from_text(text: &str) -> Result<Self, SummaryError> {
        if text.len() > MAX_TEXT_LEN {
            return Err(SummaryError::TooLong(text.len()));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| SummaryError::NotBase64)?;
        Self::from_bytes(&bytes)
    }

    /// What counts as a material change: SHA-256 (first 16 bytes) over the
    /// quiet slots at hour granularity (start hour, length rounded to whole
    /// hours): what a forecast of the lock's installs reads. The heat map,
    /// epoch, weeks learned, peak and quarter-hour detail are left out:
    /// with every door use some hour of the heat map may cross a level
    /// boundary (in a fleet simulation that resent the summary on about 40 %
    /// of the check-ins); they travel with the daily summary.
    pub fn material_digest(&self) -> [u8; 16] {
        let mut h = Sha256::new();
        h.update(b"nightlatch/usage-material/v1");
        h.update([FORMAT]);
        for q in &self.quiet {
            h.update(q.map_or(NO_SLOT, |q| [q.start / 4, q.quarters.saturating_add(2) / 4]));
        }
        let d: [u8; 32] = h.finalize().into();
        let mut out = [0u8; 16];
        out.copy_from_slice(&d[..16]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_length_is_pinned() {
        assert_eq!(TEXT_LEN, 83);
        let s = UsageSummary::from_profile(
            &UsageProfile::new(),
            &TzRule::UTC,
            Window::ALL_DAY,
            60,
            1_800_000_000,
        );
        assert_eq!(s.to_text().len(), TEXT_LEN);
    }
}
