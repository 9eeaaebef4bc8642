//! Where "now" comes from. Nothing in this library reads the system clock by
//! itself: every operation that signs an expiry, stamps a transcript line or
//! asks whether something has expired takes a [`Clock`]. The CLIs pass
//! [`SystemClock`]; the server passes its own clock (which a simulation may
//! move: `nightlatch-server --clock manual`); tests pass a [`FixedClock`].

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::metadata::Expiry;

/// A source of the current time, in whole seconds (what TUF metadata holds).
pub trait Clock: fmt::Debug + Send + Sync {
    /// The current time, rounded down to a whole second.
    fn now(&self) -> Expiry;

    /// `lifetime` (rounded down to whole seconds) after now, never past
    /// 9999-12-31T23:59:59Z.
    fn expires_in(&self, lifetime: Duration) -> Expiry {
        self.now().after(lifetime)
    }

    /// Whether `time` has passed (an expiry equal to now has).
    fn has_passed(&self, time: Expiry) -> bool {
        time <= self.now()
    }
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Expiry {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Expiry::from_unix(secs)
    }
}

/// A clock stopped at one time (tests, and simulations that move time
/// themselves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub Expiry);

impl FixedClock {
    /// A clock stopped at `secs` since the Unix epoch.
    pub fn at_unix(secs: u64) -> Self {
        Self(Expiry::from_unix(secs))
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Expiry {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_decides_expiry() {
        let c = FixedClock::at_unix(1_900_000_000);
        assert_eq!(c.now().unix(), 1_900_000_000);
        assert_eq!(
            c.expires_in(Duration::from_secs(86_400)).to_string(),
            "2030-03-18T17:46:40Z"
        );
        assert!(c.has_passed(Expiry::from_unix(1_900_000_000)));
        assert!(!c.has_passed(Expiry::from_unix(1_900_000_001)));
        // Never unprintable, whatever the lifetime.
        assert_eq!(
            c.expires_in(Duration::from_secs(u64::MAX)).to_string(),
            "9999-12-31T23:59:59Z"
        );
        assert!(SystemClock.now().unix() > 1_700_000_000);
    }
}
