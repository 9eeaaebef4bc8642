//! Small text codecs for metadata fields: hex and the `YYYY-MM-DDTHH:MM:SSZ`
//! expiry dates TUF writes (read as Unix seconds, written back the same).

use alloc::vec::Vec;

/// Decode hex (either case); `None` on odd length or a non-hex character.
pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Lowercase hex of `bytes`.
pub fn hex_encode(bytes: &[u8]) -> alloc::string::String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = alloc::string::String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Parse `YYYY-MM-DDTHH:MM:SSZ` (optionally with fractional seconds, which
/// are dropped) into seconds since the Unix epoch. Years before 1970 are
/// refused.
pub fn parse_utc(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' || b.last() != Some(&b'Z') {
        return None;
    }
    let frac = &b[19..b.len() - 1];
    if !frac.is_empty()
        && (frac[0] != b'.' || frac.len() < 2 || !frac[1..].iter().all(u8::is_ascii_digit))
    {
        return None;
    }
    let num = |s: &[u8]| -> Option<u64> {
        s.iter().try_fold(0u64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
        })
    };
    let (year, month, day) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    let (hour, min, sec) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    if year < 1970 || !(1..=12).contains(&month) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if day < 1 || day > month_days[(month - 1) as usize] {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec)
}

/// Decode hex written in lower case only (the one form TUF writers use, and
/// the one python-tuf compares hashes in); `None` otherwise.
pub fn hex_decode_lower(text: &str) -> Option<Vec<u8>> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex_decode(text)
}

/// An `expires` value as TUF metadata must hold it: exactly
/// `YYYY-MM-DDTHH:MM:SSZ` (python-tuf 7 reads only this form: no fractional
/// seconds, no leap second), as Unix seconds. [`format_utc`] writes the
/// same text back.
pub fn parse_expires(text: &str) -> Option<u64> {
    let secs = parse_utc(text)?;
    (text.len() == 20 && format_utc(secs) == text).then_some(secs)
}

/// `YYYY-MM-DDTHH:MM:SSZ` of Unix seconds (the form TUF writes `expires` in).
pub fn format_utc(secs: u64) -> alloc::string::String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    alloc::format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Year, month, day of a count of days since 1970-01-01 (Howard Hinnant's
/// algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(month <= 2), month, day)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm, years ≥ 1970).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_utc("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(parse_utc("2026-11-23T20:34:16Z"), Some(1_795_466_056));
        assert_eq!(parse_utc("2026-11-23T20:34:16.123Z"), Some(1_795_466_056));
        assert_eq!(parse_utc("2025-02-29T00:00:00Z"), None);
        assert_eq!(parse_utc("2026-11-23 20:34:16Z"), None);
        assert_eq!(parse_utc("2026-11-23T20:34:16"), None);
        assert_eq!(parse_utc("2026-11-23T20:34:16+01:00"), None);
        assert_eq!(parse_utc("1969-12-31T23:59:59Z"), None);
    }

    #[test]
    fn expires_round_trips_and_only_the_plain_form_is_taken() {
        for t in [
            0,
            951_868_800,
            1_795_466_056,
            4_102_444_799,
            253_402_300_799,
        ] {
            assert_eq!(parse_expires(&format_utc(t)), Some(t), "{t}");
        }
        assert_eq!(format_utc(1_795_466_056), "2026-11-23T20:34:16Z");
        assert_eq!(parse_expires("2026-11-23T20:34:16.123Z"), None);
        assert_eq!(parse_expires("2026-11-23T20:34:60Z"), None);
        assert_eq!(parse_expires("2026-11-23T20:34:16Z"), Some(1_795_466_056));
    }

    #[test]
    fn hex() {
        assert_eq!(hex_decode_lower("00ffa1"), Some(alloc::vec![0, 255, 161]));
        assert_eq!(hex_decode_lower("00fFa1"), None);
        assert_eq!(hex_decode("00fFa1"), Some(alloc::vec![0, 255, 161]));
        assert_eq!(hex_decode("0"), None);
        assert_eq!(hex_decode("zz"), None);
        assert_eq!(hex_encode(&[0, 255, 161]), "00ffa1");
    }
}
