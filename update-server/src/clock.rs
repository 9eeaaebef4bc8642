//! Where "now" comes from. The service reads time only through [`Clock`], so
//! tests (and the fleet simulator's virtual time, `--clock manual`) can move
//! it: wave soak times, expiries, the signed time locks receive.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use nightlatch_repo::metadata::Expiry;

/// A source of wall-clock time, in Unix milliseconds.
pub trait Clock: Send + Sync + Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Whole seconds since the Unix epoch.
    fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to (tests, simulation).
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock stopped at `ms`.
    pub fn new(ms: i64) -> Self {
        Self(AtomicI64::new(ms))
    }

    /// A clock stopped at the current system time.
    pub fn at_system_time() -> Self {
        Self::new(SystemClock.now_ms())
    }

    /// Set the time (it may go backwards; the service tolerates it).
    pub fn set_ms(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    /// Move forward by `ms`.
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A server clock as the repository library reads it (whole seconds): what
/// the server signs (snapshot, timestamp, dev roots) and checks (uploaded
/// metadata) expires by this clock, manual or not. No process-wide state:
/// each server passes its own.
#[derive(Debug, Clone)]
pub struct RepoClock(pub Arc<dyn Clock>);

impl nightlatch_repo::Clock for RepoClock {
    fn now(&self) -> Expiry {
        Expiry::from_unix(u64::try_from(self.0.now_secs()).unwrap_or(0))
    }
}

/// RFC 3339 text (whole seconds, UTC) of Unix milliseconds.
pub fn rfc3339(ms: i64) -> String {
    let secs = u64::try_from(ms.div_euclid(1000)).unwrap_or(0);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(secs)).to_string()
}

/// Parse RFC 3339 text into Unix milliseconds.
pub fn parse_rfc3339(text: &str) -> Result<i64, String> {
    let t = humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))?;
    let d = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| format!("{text:?} is before 1970"))?;
    i64::try_from(d.as_millis()).map_err(|_| format!("{text:?} is too far in the future"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        assert_eq!(c.now_ms(), 1_000);
        c.advance_ms(500);
        assert_eq!(c.now_secs(), 1);
        c.set_ms(5_000);
        assert_eq!(c.now_ms(), 5_000);
    }

    #[test]
    fn the_repository_library_reads_the_manual_clock() {
        use nightlatch_repo::Clock as _;
        let manual = Arc::new(ManualClock::new(1_900_000_000_999));
        let repo = RepoClock(Arc::clone(&manual) as Arc<dyn Clock>);
        assert_eq!(repo.now().unix(), 1_900_000_000);
        manual.advance_ms(86_400_000);
        assert_eq!(repo.now().to_string(), "2030-03-18T17:46:40Z");
        manual.set_ms(-5);
        assert_eq!(repo.now().unix(), 0);
    }

    #[test]
    fn rfc3339_round_trip() {
        let ms = 1_900_000_000_000;
        assert_eq!(rfc3339(ms), "2030-03-17T17:46:40Z");
        assert_eq!(parse_rfc3339(&rfc3339(ms)).unwrap(), ms);
        assert!(parse_rfc3339("tomorrow").is_err());
    }
}
