//! The site's time zone as a POSIX TZ rule, evaluated without a tz database.
//!
//! The lock has no zoneinfo. The server sends the site's zone as a POSIX TZ
//! string (the footer of a TZif file, RFC 8536 §3.3), for example
//! `CET-1CEST,M3.5.0,M10.5.0/3` or `EST5EDT,M3.2.0,M11.1.0`: standard name
//! and offset (POSIX sign: west of Greenwich is positive), optional DST name
//! and offset (default: one hour ahead), and the DST start/end rules as
//! `Mm.w.d[/time]` (month, week 1–5 where 5 is "last", weekday 0 = Sunday,
//! local time of the change, default 02:00, RFC 8536 allows −167..167 h).
//! Names may be `<+03>`-quoted. The `Jn` and `n` day forms are refused
//! ([`TzError::UnsupportedRule`]); zones that use them are rare and the
//! server can send an equivalent `M` rule.

/// Seconds per day.
pub const DAY: i64 = 86_400;

/// Why a TZ string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TzError {
    /// Zone name missing or malformed.
    Name,
    /// Offset or time malformed or out of range.
    Offset,
    /// A DST zone without `,start,end` rules, or a `Jn`/`n` rule.
    UnsupportedRule,
    /// Rule fields out of range.
    Rule,
    /// Bytes after the end of the rule.
    Trailing,
}

/// "The w-th weekday d of month m, at local time `time`".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// 1..=12.
    pub month: u8,
    /// 1..=5 (5 = last).
    pub week: u8,
    /// 0 = Sunday ..= 6.
    pub weekday: u8,
    /// Local seconds after midnight (may be negative or past 24 h).
    pub time: i32,
}

/// Daylight saving time of a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dst {
    /// Seconds east of UTC during DST.
    pub offset: i32,
    /// When DST starts (local standard time).
    pub start: Transition,
    /// When DST ends (local daylight time).
    pub end: Transition,
}

/// A parsed POSIX TZ rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TzRule {
    /// Seconds east of UTC outside DST.
    pub std_offset: i32,
    /// DST, if the zone has it.
    pub dst: Option<Dst>,
}

/// A local wall-clock time mapped back to UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalResult {
    /// Exactly one instant.
    Single(i64),
    /// The fall-back hour: the time happens twice (earlier, later).
    Ambiguous(i64, i64),
    /// The spring-forward gap: this wall time never happens.
    Gap,
}

/// A local calendar date and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalDateTime {
    /// Year.
    pub year: i32,
    /// 1..=12.
    pub month: u8,
    /// 1..=31.
    pub day: u8,
    /// 0 = Monday ..= 6 = Sunday.
    pub weekday_mon: u8,
    /// Seconds after local midnight.
    pub secs_of_day: u32,
}

impl LocalDateTime {
    /// Hour of the week, 0 = Monday 00:00–01:00 … 167.
    pub fn hour_of_week(&self) -> usize {
        usize::from(self.weekday_mon) * 24 + (self.secs_of_day / 3600) as usize
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i32, m: u8, d: u8) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i32, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as i32, m, d)
}

fn days_in_month(y: i32, m: u8) -> u8 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Transition {
    /// Local seconds since the epoch (as if local were UTC) in year `y`.
    fn local_instant(&self, y: i32) -> i64 {
        let first = days_from_civil(y, self.month, 1);
        let first_wd = (first + 4).rem_euclid(7); // 0 = Sunday
        let mut day =
            1 + (i64::from(self.weekday) - first_wd).rem_euclid(7) + 7 * (i64::from(self.week) - 1);
        while day > i64::from(days_in_month(y, self.month)) {
            day -= 7;
        }
        (first + day - 1) * DAY + i64::from(self.time)
    }
}

/// POSIX rules of common IANA zones (current rules; the lock does not carry
/// the tz database). Sites elsewhere set a POSIX TZ string as their zone.
pub const ZONES: &[(&str, &str)] = &[
    ("UTC", "UTC0"),
    ("Etc/UTC", "UTC0"),
    ("Europe/London", "GMT0BST,M3.5.0/1,M10.5.0"),
    ("Europe/Dublin", "IST-1GMT0,M10.5.0,M3.5.0/1"),
    ("Europe/Lisbon", "WET0WEST,M3.5.0/1,M10.5.0"),
    ("Europe/Berlin", "CET-1CEST,M3.5.0,M10.5.0/3"),
    ("Europe/Paris", "CET-1CEST,M3.5.0,M10.5.0/3"),
    ("Europe/Madrid", "CET-1CEST,M3.5.0,M10.5.0/3"),
    ("Europe/Rome", "CET-1CEST,M3.5.0,M10.5.0/3"),
    ("Europe/Amsterdam", "CET-1CEST,M3.5.0,M10.5.0/3"),
    ("Europe/Vienna", "CET-1CEST,M3.5.0,M10.5.0/3"),
    ("Europe/Zurich", "CET-1CEST,M3.5.0,M10.5.0/3"),
    ("Europe/Stockholm", "CET-1CEST,M3.5.0,M10.5.0/3"),
    ("Europe/Warsaw", "CET-1CEST,M3.5.0,M10.5.0/3"),
    ("Europe/Helsinki", "EET-2EEST,M3.5.0/3,M10.5.0/4"),
    ("Europe/Athens", "EET-2EEST,M3.5.0/3,M10.5.0/4"),
    ("Europe/Istanbul", "<+03>-3"),
    ("Europe/Moscow", "MSK-3"),
    ("America/New_York", "EST5EDT,M3.2.0,M11.1.0"),
    ("America/Chicago", "CST6CDT,M3.2.0,M11.1.0"),
    ("America/Denver", "MST7MDT,M3.2.0,M11.1.0"),
    ("America/Phoenix", "MST7"),
    ("America/Los_Angeles", "PST8PDT,M3.2.0,M11.1.0"),
    ("America/Anchorage", "AKST9AKDT,M3.2.0,M11.1.0"),
    ("America/Toronto", "EST5EDT,M3.2.0,M11.1.0"),
    ("America/Vancouver", "PST8PDT,M3.2.0,M11.1.0"),
    ("America/Mexico_City", "CST6"),
    ("America/Sao_Paulo", "<-03>3"),
    ("Pacific/Honolulu", "HST10"),
    ("Asia/Tokyo", "JST-9"),
    ("Asia/Seoul", "KST-9"),
    ("Asia/Shanghai", "CST-8"),
    ("Asia/Hong_Kong", "HKT-8"),
    ("Asia/Singapore", "<+08>-8"),
    ("Asia/Kolkata", "IST-5:30"),
    ("Asia/Dubai", "<+04>-4"),
    ("Australia/Sydney", "AEST-10AEDT,M10.1.0,M4.1.0/3"),
    ("Australia/Melbourne", "AEST-10AEDT,M10.1.0,M4.1.0/3"),
    ("Australia/Brisbane", "AEST-10"),
    ("Australia/Perth", "AWST-8"),
    ("Pacific/Auckland", "NZST-12NZDT,M9.5.0,M4.1.0/3"),
    ("Africa/Johannesburg", "SAST-2"),
];

/// The rule for a zone as the server sends it: an IANA name from [`ZONES`],
/// or a POSIX TZ string. `None` for anything else.
pub fn rule_for_zone(zone: &str) -> Option<TzRule> {
    ZONES
        .iter()
        .find(|(name, _)| *name == zone)
        .and_then(|(_, posix)| TzRule::parse(posix).ok())
        .or_else(|| TzRule::parse(zone).ok())
}

impl TzRule {
    /// UTC, no DST.
    pub const UTC: Self = Self {
        std_offset: 0,
        dst: None,
    };

    /// Parse a POSIX TZ string.
    pub fn parse(s: &str) -> Result<Self, TzError> {
        let mut p = Parser(s.as_bytes());
        p.name()?;
        let std_offset = -p.hms(24)?;
        if p.0.is_empty() {
            return Ok(Self {
                std_offset,
                dst: None,
            });
        }
        p.name()?;
        let offset = if matches!(p.0.first(), Some(b',') | None) {
            std_offset + 3600
        } else {
            -p.hms(24)?
        };
        if !p.eat(b',') {
            return Err(TzError::UnsupportedRule);
        }
        let start = p.transition()?;
        if !p.eat(b',') {
            return Err(TzError::UnsupportedRule);
        }
        let end = p.transition()?;
        if !p.0.is_empty() {
            return Err(TzError::Trailing);
        }
        Ok(Self {
            std_offset,
            dst: Some(Dst { offset, start, end }),
        })
    }

    /// Offset east of UTC in force at `utc` (Unix seconds).
    pub fn offset_at(&self, utc: i64) -> i32 {
        let Some(dst) = self.dst else {
            return self.std_offset;
        };
        let (year, _, _) = civil_from_days((utc + i64::from(self.std_offset)).div_euclid(DAY));
        let start = dst.start.local_instant(year) - i64::from(self.std_offset);
        let end = dst.end.local_instant(year) - i64::from(dst.offset);
        let in_dst = if start <= end {
            start <= utc && utc < end
        } else {
            // Southern hemisphere: DST spans the new year.
            utc < end || utc >= start
        };
        if in_dst { dst.offset } else { self.std_offset }
    }

    /// Local wall-clock seconds (as if local were UTC) for `utc`.
    pub fn to_local(&self, utc: i64) -> i64 {
        utc + i64::from(self.offset_at(utc))
    }

    /// Calendar view of `utc` in local time.
    pub fn local_date_time(&self, utc: i64) -> LocalDateTime {
        let local = self.to_local(utc);
        let days = local.div_euclid(DAY);
        let (year, month, day) = civil_from_days(days);
        LocalDateTime {
            year,
            month,
            day,
            weekday_mon: (days + 3).rem_euclid(7) as u8,
            secs_of_day: local.rem_euclid(DAY) as u32,
        }
    }

    /// The UTC instant(s) of a local wall-clock time.
    pub fn from_local(&self, local: i64) -> LocalResult {
        let mut offsets = [
            self.std_offset,
            self.dst.map_or(self.std_offset, |d| d.offset),
        ];
        offsets.sort_unstable();
        // The larger offset gives the earlier instant.
        let later = local - i64::from(offsets[0]);
        let earlier = local - i64::from(offsets[1]);
        let ok = |utc: i64| self.to_local(utc) == local;
        match (ok(earlier), ok(later)) {
            (true, true) if earlier != later => LocalResult::Ambiguous(earlier, later),
            (true, _) => LocalResult::Single(earlier),
            (false, true) => LocalResult::Single(later),
            (false, false) => LocalResult::Gap,
        }
    }
}

struct Parser<'a>(&'a [u8]);

impl Parser<'_> {
    fn eat(&mut self, c: u8) -> bool {
        if self.0.first() == Some(&c) {
            self.0 = &self.0[1..];
            true
        } else {
            false
        }
    }

    fn name(&mut self) -> Result<(), TzError> {
        let n = if self.eat(b'<') {
            let n = self
                .0
                .iter()
                .position(|&c| c == b'>')
                .ok_or(TzError::Name)?;
            let len = n;
            self.0 = &self.0[n + 1..];
            len
        } else {
            let n = self
                .0
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            self.0 = &self.0[n..];
            n
        };
        if n < 3 { Err(TzError::Name) } else { Ok(()) }
    }

    fn num(&mut self, max: u32) -> Result<u32, TzError> {
        let n = self.0.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 3 {
            return Err(TzError::Offset);
        }
        let v = self.0[..n]
            .iter()
            .fold(0u32, |a, &c| a * 10 + u32::from(c - b'0'));
        self.0 = &self.0[n..];
        if v > max { Err(TzError::Offset) } else { Ok(v) }
    }

    /// `[+-]hh[:mm[:ss]]` in seconds, hours at most `max_h`.
    fn hms(&mut self, max_h: u32) -> Result<i32, TzError> {
        let neg = if self.eat(b'-') {
            true
        } else {
            self.eat(b'+');
            false
        };
        let mut secs = self.num(max_h)? * 3600;
        if self.eat(b':') {
            secs += self.num(59)? * 60;
            if self.eat(b':') {
                secs += self.num(59)?;
            }
        }
        let secs = secs as i32;
        Ok(if neg { -secs } else { secs })
    }

    fn transition(&mut self) -> Result<Transition, TzError> {
        if !self.eat(b'M') {
            return Err(TzError::UnsupportedRule);
        }
        let month = self.num(12).map_err(|_| TzError::Rule)?;
        let week = self.eat(b'.').then(|| self.num(5)).ok_or(TzError::Rule)?;
        let week = week.map_err(|_| TzError::Rule)?;
        let wd = self.eat(b'.').then(|| self.num(6)).ok_or(TzError::Rule)?;
        let weekday = wd.map_err(|_| TzError::Rule)?;
        if month == 0 || week == 0 {
            return Err(TzError::Rule);
        }
        let time = if self.eat(b'/') { self.hms(167)? } else { 7200 };
        Ok(Transition {
            month: month as u8,
            week: week as u8,
            weekday: weekday as u8,
            time,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CET: &str = "CET-1CEST,M3.5.0,M10.5.0/3";

    fn utc(y: i32, m: u8, d: u8, h: i64, min: i64) -> i64 {
        days_from_civil(y, m, d) * DAY + h * 3600 + min * 60
    }

    #[test]
    fn every_listed_zone_parses() {
        for (name, posix) in ZONES {
            assert!(TzRule::parse(posix).is_ok(), "{name}: {posix}");
        }
        assert_eq!(
            rule_for_zone("Europe/Berlin"),
            TzRule::parse("CET-1CEST,M3.5.0,M10.5.0/3").ok()
        );
        assert!(rule_for_zone("EST5EDT,M3.2.0,M11.1.0").is_some());
        assert!(rule_for_zone("Mars/Olympus_Mons").is_none());
    }

    #[test]
    fn civil_round_trip() {
        for z in [-800_000i64, -1, 0, 1, 10_957, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn parses_common_zones() {
        let cet = TzRule::parse(CET).unwrap();
        assert_eq!(cet.std_offset, 3600);
        let dst = cet.dst.unwrap();
        assert_eq!(dst.offset, 7200);
        assert_eq!(
            (dst.end.month, dst.end.week, dst.end.weekday, dst.end.time),
            (10, 5, 0, 10_800)
        );
        let ny = TzRule::parse("EST5EDT,M3.2.0,M11.1.0").unwrap();
        assert_eq!((ny.std_offset, ny.dst.unwrap().offset), (-18_000, -14_400));
        assert_eq!(TzRule::parse("<+0530>-5:30").unwrap().std_offset, 19_800);
        assert_eq!(TzRule::parse("UTC0").unwrap(), TzRule::UTC);
        let nz = TzRule::parse("NZST-12NZDT,M9.5.0,M4.1.0/3").unwrap();
        // Southern hemisphere: DST in January, not in July.
        assert_eq!(nz.offset_at(utc(2026, 1, 15, 0, 0)), 13 * 3600);
        assert_eq!(nz.offset_at(utc(2026, 7, 15, 0, 0)), 12 * 3600);
    }

    #[test]
    fn refuses_malformed_and_unsupported() {
        for (s, e) in [
            ("", TzError::Name),
            ("C1", TzError::Name),
            ("CET", TzError::Offset),
            ("CET-1CEST", TzError::UnsupportedRule),
            ("CET-1CEST,J60,J300", TzError::UnsupportedRule),
            ("CET-1CEST,M13.5.0,M10.5.0", TzError::Rule),
            ("CET-1CEST,M3.6.0,M10.5.0", TzError::Rule),
            ("CET-1CEST,M3.5.0,M10.5.0/3x", TzError::Trailing),
            ("CET-99", TzError::Offset),
        ] {
            assert_eq!(TzRule::parse(s), Err(e), "{s}");
        }
    }

    /// 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC);
    /// 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC).
    #[test]
    fn dst_edges_table() {
        let tz = TzRule::parse(CET).unwrap();
        let cases = [
            (utc(2026, 3, 29, 0, 59), 3600),
            (utc(2026, 3, 29, 1, 0), 7200),
            (utc(2026, 10, 25, 0, 59), 7200),
            (utc(2026, 10, 25, 1, 0), 3600),
            (utc(2026, 12, 31, 23, 30), 3600),
            (utc(2026, 7, 1, 12, 0), 7200),
        ];
        for (t, off) in cases {
            assert_eq!(tz.offset_at(t), off, "at {t}");
        }
    }

    #[test]
    fn spring_forward_hour_does_not_exist() {
        let tz = TzRule::parse(CET).unwrap();
        let local = |h: i64, m: i64| days_from_civil(2026, 3, 29) * DAY + h * 3600 + m * 60;
        assert_eq!(tz.from_local(local(2, 30)), LocalResult::Gap);
        assert_eq!(
            tz.from_local(local(1, 59)),
            LocalResult::Single(utc(2026, 3, 29, 0, 59))
        );
        assert_eq!(
            tz.from_local(local(3, 0)),
            LocalResult::Single(utc(2026, 3, 29, 1, 0))
        );
    }

    #[test]
    fn fall_back_hour_happens_twice() {
        let tz = TzRule::parse(CET).unwrap();
        let local = days_from_civil(2026, 10, 25) * DAY + 2 * 3600 + 30 * 60;
        assert_eq!(
            tz.from_local(local),
            LocalResult::Ambiguous(utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30))
        );
        let dt = tz.local_date_time(utc(2026, 10, 25, 1, 30));
        assert_eq!((dt.day, dt.secs_of_day, dt.weekday_mon), (25, 9000, 6));
    }
}
