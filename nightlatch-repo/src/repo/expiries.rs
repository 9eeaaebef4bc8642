//! How long each role's metadata stays valid (whole seconds).

use std::time::Duration;

use crate::error::{Error, Result};
use crate::metadata::expiry::{
    SNAPSHOT_LIFETIME, TARGETS_LIFETIME, TIMESTAMP_LIFETIME, parse_lifetime,
};

/// Lifetimes of the roles this crate signs. Root's (one year) is chosen at the ceremony.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiries {
    /// Targets and delegated targets: 90 days by default.
    pub targets: Duration,
    /// Snapshot: one week by default.
    pub snapshot: Duration,
    /// Timestamp: one day by default.
    pub timestamp: Duration,
}

impl Default for Expiries {
    fn default() -> Self {
        Self {
            targets: TARGETS_LIFETIME,
            snapshot: SNAPSHOT_LIFETIME,
            timestamp: TIMESTAMP_LIFETIME,
        }
    }
}

/// Parse a `--…-expires` value such as `90d`, `1week`, `12h`.
pub fn lifetime(text: &str, flag: &str) -> Result<Duration> {
    parse_lifetime(text).map_err(|reason| {
        Error::usage(
            format!("--{flag}: {reason}"),
            "use a duration such as 90d, 1week, 1d or 6h",
        )
    })
}
