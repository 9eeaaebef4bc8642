//! Stable buckets (after bottlerocket's `update_ready` seeds): a lock's
//! bucket in a rollout is the first 8 bytes of SHA-256(rollout id ‖ 0 ‖
//! lock id) read as a fraction of 2^64. It never changes, so raising a
//! wave's share only adds locks, and a lock registered later lands in a
//! bucket like everyone else.

use sha2::{Digest, Sha256};

use crate::rollouts::Wave;

/// The lock's bucket in `[0, 1)`.
pub fn bucket(rollout_id: &str, device_id: &str) -> f64 {
    let mut h = Sha256::new();
    h.update(rollout_id.as_bytes());
    h.update([0u8]);
    h.update(device_id.as_bytes());
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 bits: exactly representable.
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

/// The first wave whose cumulative share covers `bucket`.
pub fn wave_of(bucket: f64, waves: &[Wave]) -> Option<usize> {
    waves.iter().position(|w| bucket < w.share)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_stable_and_spread() {
        assert_eq!(bucket("r", "d"), bucket("r", "d"));
        assert_ne!(bucket("r", "d"), bucket("r2", "d"));
        let n = 20_000;
        let below: usize = (0..n)
            .filter(|i| bucket("ro-x", &format!("lock-{i}")) < 0.25)
            .count();
        let share = below as f64 / n as f64;
        assert!((share - 0.25).abs() < 0.02, "{share}");
        let waves = [
            Wave {
                share: 0.1,
                min_soak_secs: 0,
            },
            Wave {
                share: 1.0,
                min_soak_secs: 0,
            },
        ];
        assert_eq!(wave_of(0.05, &waves), Some(0));
        assert_eq!(wave_of(0.1, &waves), Some(1));
        assert_eq!(wave_of(0.99, &waves[..1]), None);
    }
}
