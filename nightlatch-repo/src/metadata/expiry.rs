//! Expiry timestamps, always whole seconds in UTC (`2030-01-01T00:00:00Z`):
//! python-tuf refuses fractional seconds.

use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, whole seconds since the Unix epoch (an expiry, or "now"
/// as a [`Clock`](crate::clock::Clock) tells it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Expiry(u64);

/// Latest expiry representable as RFC 3339 with a four-digit year.
const MAX_UNIX: u64 = 253_402_300_799;
/// Longest lifetime accepted: ten years.
pub const MAX_LIFETIME: Duration = Duration::from_secs(3653 * 86_400);

/// Default lifetime of root metadata: one year.
pub const ROOT_LIFETIME: Duration = Duration::from_secs(365 * 86_400);
/// Default lifetime of targets metadata: three months (90 days).
pub const TARGETS_LIFETIME: Duration = Duration::from_secs(90 * 86_400);
/// Default lifetime of snapshot metadata: one week.
pub const SNAPSHOT_LIFETIME: Duration = Duration::from_secs(7 * 86_400);
/// Default lifetime of timestamp metadata: one day.
pub const TIMESTAMP_LIFETIME: Duration = Duration::from_secs(86_400);

impl Expiry {
    /// Seconds since the Unix epoch.
    pub fn from_unix(secs: u64) -> Self {
        Self(secs.min(MAX_UNIX))
    }

    /// `lifetime` after this time (never past 9999-12-31T23:59:59Z).
    pub fn after(self, lifetime: Duration) -> Self {
        Self(self.0.saturating_add(lifetime.as_secs()).min(MAX_UNIX))
    }

    /// Seconds since the Unix epoch.
    pub fn unix(self) -> u64 {
        self.0
    }

    /// Parse an RFC 3339 UTC timestamp in whole seconds
    /// (`YYYY-MM-DDTHH:MM:SSZ`); fractional seconds are refused, as
    /// python-tuf refuses them.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() != 20 || !text.ends_with('Z') || text.contains('.') {
            return Err(format!(
                "invalid expiry {:?}: must be whole seconds in UTC, like 2030-01-01T00:00:00Z",
                crate::metadata::key::truncate(text)
            ));
        }
        let time =
            humantime::parse_rfc3339(text).map_err(|e| format!("invalid expiry {text:?}: {e}"))?;
        let secs = time
            .duration_since(UNIX_EPOCH)
            .map_err(|_| format!("expiry {text:?} is before 1970"))?;
        Ok(Self(secs.as_secs()))
    }
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = UNIX_EPOCH + Duration::from_secs(self.0);
        write!(f, "{}", humantime::format_rfc3339_seconds(time))
    }
}

impl Serialize for Expiry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Expiry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Parse a lifetime such as `365d`, `90days`, `1week`, `12h` (at least one second).
pub fn parse_lifetime(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("invalid lifetime {text:?}: {e} (use e.g. 365d, 12weeks, 1d, 6h)"))?;
    if d.as_secs() == 0 {
        return Err(format!("lifetime {text:?} is shorter than one second"));
    }
    if d > MAX_LIFETIME {
        return Err(format!("lifetime {text:?} is longer than ten years"));
    }
    Ok(Duration::from_secs(d.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_round_trip() {
        let e = Expiry::from_unix(1_900_000_000);
        assert_eq!(e.to_string(), "2030-03-17T17:46:40Z");
        assert_eq!(Expiry::parse(&e.to_string()).unwrap(), e);
        // Fractional seconds are refused (python-tuf refuses them).
        for bad in [
            "2030-03-17T17:46:40.999Z",
            "2030-03-17T17:46:40.0Z",
            "2030-03-17T17:46:40+00:00",
        ] {
            assert!(Expiry::parse(bad).is_err(), "{bad}");
        }
        // Never unprintable.
        assert_eq!(
            Expiry::from_unix(u64::MAX).to_string(),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(
            Expiry::from_unix(1_900_000_000)
                .after(Duration::from_secs(u64::MAX))
                .to_string(),
            "9999-12-31T23:59:59Z"
        );
        let json =
            serde_json::to_string(&Expiry::from_unix(1_900_000_000).after(TIMESTAMP_LIFETIME))
                .unwrap();
        assert!(!json.contains('.'), "{json}");
    }

    #[test]
    fn bad_expiries_and_lifetimes() {
        for bad in ["", "2030-01-01", "yesterday", "2030-13-01T00:00:00Z"] {
            assert!(Expiry::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_lifetime("90d").unwrap().as_secs(), 90 * 86_400);
        assert!(parse_lifetime("0s").is_err());
        assert!(parse_lifetime("soon").is_err());
        assert!(parse_lifetime("100000years").is_err());
        assert!(parse_lifetime("11years").is_err());
        assert!(parse_lifetime("10years").is_ok());
    }
}
