//! Reconciling a lock's report with its assignment. The lock's report of
//! what it runs is the truth: running the target version, confirmed, is a
//! success whatever the server thought; a failed or rolled-back attempt at
//! the assigned target is a failure. Each lock counts once per rollout (its
//! latest status), so retries and repeated reports never double-count.

use crate::rollouts::FailureThreshold;
use crate::wire::{BootState, Report};

/// A lock's status in one rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceStatus {
    /// Told to install; nothing reported yet.
    Assigned,
    /// Running the target on trial.
    Installed,
    /// Running the target, confirmed: a success.
    Confirmed,
    /// Trial boot failed, reverted: a failure.
    RolledBack,
    /// Failed before the swap: a failure.
    Failed,
}

impl DeviceStatus {
    /// Stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assigned => "assigned",
            Self::Installed => "installed",
            Self::Confirmed => "confirmed",
            Self::RolledBack => "rolled_back",
            Self::Failed => "failed",
        }
    }

    /// Parse stored text.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "assigned" => Self::Assigned,
            "installed" => Self::Installed,
            "confirmed" => Self::Confirmed,
            "rolled_back" => Self::RolledBack,
            "failed" => Self::Failed,
            _ => return None,
        })
    }

    /// Every status, in display order.
    pub const ALL: [Self; 5] = [
        Self::Assigned,
        Self::Installed,
        Self::Confirmed,
        Self::RolledBack,
        Self::Failed,
    ];

    /// Counts as a success.
    pub fn is_success(self) -> bool {
        self == Self::Confirmed
    }

    /// Counts as a failure.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::RolledBack | Self::Failed)
    }
}

/// The lock's new status in the rollout that assigned `target`
/// (version `target_version`), given `report`; None if the report says
/// nothing new about it.
pub fn reconcile(
    target: &str,
    target_version: &str,
    report: &Report,
    previous: Option<DeviceStatus>,
) -> Option<(DeviceStatus, Option<String>)> {
    let next = if report.firmware.version == target_version {
        match report.boot_state {
            BootState::Confirmed => Some((DeviceStatus::Confirmed, None)),
            BootState::Trial => Some((DeviceStatus::Installed, None)),
            BootState::Reverted => None,
        }
    } else if let Some(u) = report
        .last_update
        .as_ref()
        .filter(|u| u.target == target && u.outcome.is_failure())
    {
        let status = match u.outcome {
            crate::wire::Outcome::RolledBack => DeviceStatus::RolledBack,
            _ => DeviceStatus::Failed,
        };
        Some((status, u.reason.clone()))
    } else if report.boot_state == BootState::Reverted && previous == Some(DeviceStatus::Installed)
    {
        Some((DeviceStatus::RolledBack, Some("reverted".into())))
    } else {
        None
    };
    next.filter(|(s, _)| Some(*s) != previous)
}

/// Change of (successes, failures) when a lock moves from `old` to `new`.
pub fn counter_delta(old: Option<DeviceStatus>, new: DeviceStatus) -> (i64, i64) {
    let s = |st: Option<DeviceStatus>| i64::from(st.is_some_and(DeviceStatus::is_success));
    let f = |st: Option<DeviceStatus>| i64::from(st.is_some_and(DeviceStatus::is_failure));
    (s(Some(new)) - s(old), f(Some(new)) - f(old))
}

/// Whether `failures` out of `successes + failures` reported outcomes
/// crosses `t`. Never true below the minimum sample.
pub fn should_pause(successes: i64, failures: i64, t: &FailureThreshold) -> bool {
    let sample = successes.max(0) + failures.max(0);
    sample > 0
        && u64::try_from(sample).unwrap_or(0) >= t.min_sample
        && failures as f64 >= t.rate * sample as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Firmware, Outcome, UpdateResult};

    fn report(version: &str, boot: BootState, last: Option<(&str, Outcome)>) -> Report {
        Report {
            hardware_model: "m".into(),
            firmware: Firmware {
                version: version.into(),
                security_counter: 1,
            },
            boot_state: boot,
            last_update: last.map(|(t, o)| UpdateResult {
                target: t.into(),
                outcome: o,
                reason: Some("why".into()),
            }),
            battery_percent: None,
            time_zone: None,
            usage: None,
        }
    }

    #[test]
    fn the_lock_report_is_the_truth() {
        let t = "m/2.0.0.nlfw";
        let ok = report("2.0.0", BootState::Confirmed, None);
        assert_eq!(
            reconcile(t, "2.0.0", &ok, Some(DeviceStatus::Assigned)),
            Some((DeviceStatus::Confirmed, None))
        );
        // repeated: no change, no double count
        assert_eq!(
            reconcile(t, "2.0.0", &ok, Some(DeviceStatus::Confirmed)),
            None
        );
        let trial = report("2.0.0", BootState::Trial, None);
        assert_eq!(
            reconcile(t, "2.0.0", &trial, None).unwrap().0,
            DeviceStatus::Installed
        );
        let back = report(
            "1.0.0",
            BootState::Confirmed,
            Some((t, Outcome::RolledBack)),
        );
        assert_eq!(
            reconcile(t, "2.0.0", &back, Some(DeviceStatus::Installed)),
            Some((DeviceStatus::RolledBack, Some("why".into())))
        );
        let other = report(
            "1.0.0",
            BootState::Confirmed,
            Some(("m/1.5.0.nlfw", Outcome::Failed)),
        );
        assert_eq!(
            reconcile(t, "2.0.0", &other, Some(DeviceStatus::Assigned)),
            None
        );
        let reverted = report("1.0.0", BootState::Reverted, None);
        assert_eq!(
            reconcile(t, "2.0.0", &reverted, Some(DeviceStatus::Installed))
                .unwrap()
                .0,
            DeviceStatus::RolledBack
        );
    }

    #[test]
    fn counters_and_threshold() {
        assert_eq!(counter_delta(None, DeviceStatus::Confirmed), (1, 0));
        assert_eq!(
            counter_delta(Some(DeviceStatus::Failed), DeviceStatus::Confirmed),
            (1, -1)
        );
        assert_eq!(
            counter_delta(Some(DeviceStatus::Assigned), DeviceStatus::Installed),
            (0, 0)
        );
        let t = FailureThreshold {
            rate: 0.2,
            min_sample: 10,
        };
        assert!(!should_pause(0, 9, &t), "below the minimum sample");
        assert!(should_pause(0, 10, &t));
        assert!(should_pause(8, 2, &t));
        assert!(!should_pause(9, 1, &t));
    }
}
