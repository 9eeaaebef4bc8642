//! Identifiers the server makes (rollouts, tokens, events, audit entries):
//! a prefix, 12 hex digits of milliseconds and 6 of a per-process sequence
//! (so they sort by time, and in creation order within one process), then 10
//! hex digits of randomness (unique across replicas).

use std::sync::atomic::{AtomicU64, Ordering};

use rand_core::{OsRng, RngCore};

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A new id such as `ro-018f3a2b4c5d-0000a39f8e7d6c5b`.
pub fn new_id(prefix: &str, now_ms: i64) -> String {
    let ms = u64::try_from(now_ms).unwrap_or(0) & 0xffff_ffff_ffff;
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed) & 0xff_ffff;
    let random = OsRng.next_u64() & 0xff_ffff_ffff;
    format!("{prefix}-{ms:012x}-{seq:06x}{random:010x}")
}

/// `n` random bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    OsRng.fill_bytes(&mut b);
    b
}

/// Check a name given by a client (device id, site, tag, rollout name):
/// 1 to 128 characters from `A-Z a-z 0-9 . _ : -`, not starting with `.` —
/// the protocol's rule ([`nightlatch_proto::wire::check_id`]), the one a
/// check-in's device id is checked with.
pub use nightlatch_proto::wire::check_id as check_name;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_differ() {
        let a = new_id("ev", 1_000);
        let b = new_id("ev", 2_000);
        assert!(a < b);
        let (c, d) = (new_id("ev", 1_000), new_id("ev", 1_000));
        assert!(c < d, "creation order within one millisecond");
    }

    #[test]
    fn names() {
        assert!(check_name("device id", "lock-0001:a_b.c").is_ok());
        for bad in ["", ".x", "a b", "a/b", &"x".repeat(129)] {
            assert!(check_name("device id", bad).is_err(), "{bad}");
        }
    }
}
