//! Who opens each door, when: usage profiles that generate entry attempts
//! (door openings) day by day in the lock's local time.
//!
//! * **home**: weekdays out 07:00–08:30 and back 16:30–19:30, a few visits
//!   and errands in the day and evening, a rare late night; weekends spread
//!   over 09:00–23:00.
//! * **office**: weekdays only, 8 to 20 entries between 07:30 and 18:30,
//!   peaks at arrival, lunch and leaving.
//! * **rental** (short-term): irregular guest arrivals (afternoon to past
//!   midnight), departures in the morning, empty days in between.
//! * **night-shift**: out 21:00–22:30, back 05:30–07:30, little in the day;
//!   or (every other such lock) a late shift: out 17:00–18:30, back
//!   02:00–03:30.
//!
//! Nights are not empty everywhere: one home in ten has an early riser
//! (out 03:45–04:45 on weekdays), one in ten a late-night weekend (back
//! 01:30–03:30 on Saturday and Sunday mornings), and rental guests
//! sometimes arrive off a late flight (23:00–03:00). Each lock's variant
//! comes from its index ([`variant_for_index`]).

use lock_app::scheduler::{LocalResult, TzRule};

const DAY: u64 = 86_400;

/// A small deterministic PRNG (xorshift64*), one per lock.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded (any seed; 0 is remapped).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in `[a, b)`.
    pub fn range(&mut self, a: u64, b: u64) -> u64 {
        if b <= a {
            return a;
        }
        a + self.next_u64() % (b - a)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// A usage profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A household.
    Home,
    /// An office door.
    Office,
    /// A short-term rental.
    Rental,
    /// A night-shift worker's home.
    NightShift,
}

impl Kind {
    /// All kinds.
    pub const ALL: [Kind; 4] = [Kind::Home, Kind::Office, Kind::Rental, Kind::NightShift];

    /// The profile of lock number `i` (a fleet mix: 55 % homes, 20 %
    /// offices, 15 % rentals, 10 % night-shift homes).
    pub fn for_index(i: usize) -> Kind {
        match i % 20 {
            0..=10 => Kind::Home,
            11..=14 => Kind::Office,
            15..=17 => Kind::Rental,
            _ => Kind::NightShift,
        }
    }

    /// Name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Home => "home",
            Kind::Office => "office",
            Kind::Rental => "rental",
            Kind::NightShift => "night-shift",
        }
    }
}

/// Per-lock variant (0–9) of a profile, from the lock's index.
pub fn variant_for_index(i: usize) -> u8 {
    ((i / 20) % 10) as u8
}

/// Minutes of the local day → seconds.
fn hm(h: u64, m: u64) -> u64 {
    h * 3600 + m * 60
}

/// UTC instant of local seconds-since-epoch `local` (the later instant in a
/// fall-back hour, the shifted one in a spring-forward gap).
pub fn local_to_utc(tz: &TzRule, local: i64) -> i64 {
    match tz.from_local(local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(_, t) => t,
        LocalResult::Gap => local - i64::from(tz.offset_at(local)) + 3600,
    }
}

/// Entry attempts (UTC seconds, sorted) of local day number `day`
/// (days since 1970-01-01 local).
pub fn day_events(kind: Kind, variant: u8, tz: &TzRule, day: i64, rng: &mut Rng) -> Vec<u64> {
    // 1970-01-01 was a Thursday: Monday = 0.
    let weekday = (day + 3).rem_euclid(7);
    let weekend = weekday >= 5;
    let mut local: Vec<u64> = Vec::new();
    let mut add = |rng: &mut Rng, a: u64, b: u64, p: f64| {
        if rng.chance(p) {
            local.push(rng.range(a, b));
        }
    };
    match kind {
        Kind::Home => {
            if weekend {
                for _ in 0..5 {
                    add(rng, hm(9, 0), hm(23, 0), 0.8);
                }
            } else {
                add(rng, hm(7, 0), hm(8, 30), 0.95);
                add(rng, hm(7, 0), hm(8, 30), 0.6);
                add(rng, hm(16, 30), hm(19, 30), 0.95);
                add(rng, hm(16, 30), hm(19, 30), 0.6);
                add(rng, hm(10, 0), hm(16, 0), 0.4);
                add(rng, hm(19, 30), hm(22, 30), 0.5);
            }
            add(rng, hm(23, 0), hm(24, 0) + hm(1, 30), 0.05);
            if variant == 0 && !weekend {
                add(rng, hm(3, 45), hm(4, 45), 0.9);
            }
            if variant == 1 && (weekday == 5 || weekday == 6) {
                add(rng, hm(1, 30), hm(3, 30), 0.8);
            }
        }
        Kind::Office => {
            if !weekend {
                let n = rng.range(4, 9);
                for _ in 0..n {
                    add(rng, hm(7, 30), hm(9, 30), 1.0);
                }
                for _ in 0..rng.range(2, 6) {
                    add(rng, hm(11, 45), hm(14, 0), 1.0);
                }
                for _ in 0..rng.range(2, 6) {
                    add(rng, hm(16, 30), hm(18, 30), 1.0);
                }
                add(rng, hm(18, 30), hm(21, 0), 0.15);
            }
        }
        Kind::Rental => {
            // Arrival days, departure mornings, occupied days.
            if rng.chance(0.35) {
                if rng.chance(0.2) {
                    // Off a late flight.
                    add(rng, hm(23, 0), hm(24, 0) + hm(3, 0), 1.0);
                } else {
                    add(rng, hm(14, 0), hm(24, 0) + hm(1, 0), 1.0);
                }
                add(rng, hm(14, 0), hm(24, 0), 0.5);
            }
            if rng.chance(0.35) {
                add(rng, hm(8, 0), hm(11, 30), 1.0);
            }
            if rng.chance(0.5) {
                for _ in 0..rng.range(1, 5) {
                    add(rng, hm(9, 0), hm(23, 30), 1.0);
                }
            }
            add(rng, hm(11, 0), hm(15, 0), 0.25); // cleaning
        }
        Kind::NightShift => {
            if !weekend && variant % 2 == 1 {
                // Late shift.
                add(rng, hm(17, 0), hm(18, 30), 0.95);
                add(rng, hm(2, 0), hm(3, 30), 0.95);
                add(rng, hm(11, 0), hm(16, 0), 0.5);
            } else if !weekend {
                add(rng, hm(21, 0), hm(22, 30), 0.95);
                add(rng, hm(5, 30), hm(7, 30), 0.95);
                add(rng, hm(14, 0), hm(20, 0), 0.5);
            } else {
                for _ in 0..3 {
                    add(rng, hm(11, 0), hm(23, 59), 0.7);
                }
            }
        }
    }
    let base = day * DAY as i64;
    let mut out: Vec<u64> = local
        .into_iter()
        .map(|s| local_to_utc(tz, base + s as i64).max(0) as u64)
        .collect();
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_have_their_shape() {
        let tz = TzRule::UTC;
        let mut rng = Rng::new(1);
        let mut night = [0usize; 4];
        let mut total = [0usize; 4];
        for day in 20_000..20_070 {
            for (k, kind) in Kind::ALL.iter().enumerate() {
                for t in day_events(*kind, 2, &tz, day, &mut rng) {
                    total[k] += 1;
                    let h = (t % DAY) / 3600;
                    if (1..5).contains(&h) {
                        night[k] += 1;
                    }
                }
            }
        }
        for k in 0..4 {
            assert!(total[k] > 70, "{:?}: {}", Kind::ALL[k], total[k]);
            assert!(night[k] * 20 < total[k], "{:?} busy at night", Kind::ALL[k]);
        }
    }
}
