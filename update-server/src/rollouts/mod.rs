//! Staged rollouts: a published target, who is eligible, waves (cumulative
//! share of eligible locks + minimum soak time), and a failure threshold
//! (rate with a minimum sample) that pauses the rollout by itself.
//!
//! * [`bucket`]: each lock's stable bucket in `[0, 1)` per rollout, so raising
//!   a wave's share only adds locks.
//! * [`engine`]: which rollout (if any) assigns what to a lock right now.
//! * [`outcome`]: reconciling a lock's report (the truth) with its assignment,
//!   and the auto-pause rule.
//!
//! Everything here is pure (no I/O, time passed in), so the semantics tests
//! run over 10,000 locks in memory; the check-in pipeline and the store call
//! the same functions.

use serde::{Deserialize, Serialize};

pub mod bucket;
pub mod engine;
pub mod outcome;
pub mod version;

/// One wave: cumulative share of eligible locks, and how long it must run
/// before the next wave starts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Wave {
    /// Cumulative share of eligible locks in this and earlier waves, (0, 1].
    pub share: f64,
    /// Minimum soak before the next wave starts, seconds.
    pub min_soak_secs: u64,
}

/// When the rollout pauses itself.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FailureThreshold {
    /// Failures / (failures + successes) at or above which it pauses, (0, 1].
    pub rate: f64,
    /// Reported outcomes needed before the rate is judged.
    pub min_sample: u64,
}

/// Who is eligible and how the rollout proceeds (stored as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutSpec {
    /// Only locks running one of these versions (empty: any older version).
    pub from_versions: Vec<String>,
    /// Only locks in at least one of these groups (empty: all).
    pub groups: Vec<String>,
    /// Waves, shares non-decreasing, the last one normally 1.0.
    pub waves: Vec<Wave>,
    /// Auto-pause rule.
    pub failure: FailureThreshold,
    /// No assignment before this time (Unix ms).
    pub start_at: Option<i64>,
    /// Install no later than this (Unix ms), sent to the locks.
    pub security_deadline: Option<i64>,
}

impl RolloutSpec {
    /// Check the rules serde cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.waves.is_empty() || self.waves.len() > 32 {
            return Err("a rollout needs 1 to 32 waves".into());
        }
        let mut previous = 0.0;
        for (i, w) in self.waves.iter().enumerate() {
            if !(w.share > 0.0 && w.share <= 1.0) {
                return Err(format!("wave {i}: share must be in (0, 1]"));
            }
            if w.share < previous {
                return Err(format!(
                    "wave {i}: shares are cumulative and must not decrease ({} < {previous})",
                    w.share
                ));
            }
            previous = w.share;
        }
        if !(self.failure.rate > 0.0 && self.failure.rate <= 1.0) {
            return Err("failure rate must be in (0, 1]".into());
        }
        if self.failure.min_sample == 0 {
            return Err("failure min_sample must be at least 1".into());
        }
        for v in &self.from_versions {
            version::parse(v)
                .ok_or_else(|| format!("from version {v:?} is not MAJOR.MINOR.PATCH"))?;
        }
        Ok(())
    }
}

/// Lifecycle of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    /// Created, not started.
    Draft,
    /// Assigning.
    Running,
    /// Stopped (by an operator or by the failure threshold); resumable.
    Paused,
    /// Stopped for good.
    Aborted,
}

impl RolloutState {
    /// Stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Aborted => "aborted",
        }
    }

    /// Parse stored text.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "draft" => Self::Draft,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "aborted" => Self::Aborted,
            _ => return None,
        })
    }
}

/// A rollout as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// Id.
    pub id: String,
    /// Operator's name for it.
    pub name: String,
    /// Image target (`model/version.nlfw`).
    pub target: String,
    /// The target's hardware model.
    pub hardware_model: String,
    /// The target's version.
    pub target_version: String,
    /// Eligibility, waves, threshold.
    pub spec: RolloutSpec,
    /// State.
    pub state: RolloutState,
    /// Why it is paused or aborted.
    pub state_reason: Option<String>,
    /// Wave index as of `wave_started_at` (see [`Rollout::effective_wave`]).
    pub wave_index: usize,
    /// When that wave started (Unix ms); None before start.
    pub wave_started_at: Option<i64>,
    /// When it was paused (Unix ms).
    pub paused_at: Option<i64>,
    /// Locks that reported success.
    pub successes: i64,
    /// Locks that reported failure.
    pub failures: i64,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Last change (Unix ms).
    pub updated_at: i64,
    /// Token name of the creator.
    pub created_by: String,
}

impl Rollout {
    /// The wave in force at `now` and when it started: waves advance when
    /// the previous one has soaked; time spent paused does not count (the
    /// clock stops at `paused_at`). None before the rollout starts.
    pub fn effective_wave(&self, now: i64) -> Option<(usize, i64)> {
        let mut started = self.wave_started_at?;
        let now = match self.state {
            RolloutState::Paused | RolloutState::Aborted => self.paused_at.unwrap_or(now).min(now),
            _ => now,
        };
        if now < started {
            return None;
        }
        let mut index = self.wave_index.min(self.spec.waves.len().saturating_sub(1));
        while index + 1 < self.spec.waves.len() {
            let soak = i64::try_from(self.spec.waves[index].min_soak_secs)
                .unwrap_or(i64::MAX / 2)
                .saturating_mul(1000);
            if now < started.saturating_add(soak) {
                break;
            }
            started = started.saturating_add(soak);
            index += 1;
        }
        Some((index, started))
    }

    /// Whether the rollout hands out assignments at `now`.
    pub fn assigning(&self, now: i64) -> bool {
        self.state == RolloutState::Running && self.effective_wave(now).is_some()
    }
}

/// Operator transitions. Each changes `self` in place or says why it cannot.
impl Rollout {
    /// Draft → running. The first wave starts now, or at `start_at` if later.
    pub fn start(&mut self, now: i64) -> Result<(), String> {
        if self.state != RolloutState::Draft {
            return Err(format!(
                "rollout is {}, only a draft can be started",
                self.state.as_str()
            ));
        }
        self.state = RolloutState::Running;
        self.state_reason = None;
        self.wave_index = 0;
        self.wave_started_at = Some(self.spec.start_at.map_or(now, |s| s.max(now)));
        self.paused_at = None;
        self.updated_at = now;
        Ok(())
    }

    /// Freeze the wave clock at `now` (pause and abort).
    fn freeze(&mut self, now: i64) {
        if let Some((index, started)) = self.effective_wave(now) {
            self.wave_index = index;
            self.wave_started_at = Some(started);
        }
        self.paused_at = Some(now);
    }

    /// Running → paused: no new assignments, and locks that have not
    /// installed yet are told to hold.
    pub fn pause(&mut self, now: i64, reason: &str) -> Result<(), String> {
        if self.state != RolloutState::Running {
            return Err(format!(
                "rollout is {}, only a running one can be paused",
                self.state.as_str()
            ));
        }
        self.freeze(now);
        self.state = RolloutState::Paused;
        self.state_reason = Some(reason.to_owned());
        self.updated_at = now;
        Ok(())
    }

    /// Paused → running; the soak clock resumes where it stopped.
    pub fn resume(&mut self, now: i64) -> Result<(), String> {
        if self.state != RolloutState::Paused {
            return Err(format!(
                "rollout is {}, only a paused one can be resumed",
                self.state.as_str()
            ));
        }
        let paused_for = self.paused_at.map_or(0, |p| (now - p).max(0));
        self.wave_started_at = self.wave_started_at.map(|s| s.saturating_add(paused_for));
        self.paused_at = None;
        self.state = RolloutState::Running;
        self.state_reason = None;
        self.updated_at = now;
        Ok(())
    }

    /// Any state but aborted → aborted, for good.
    pub fn abort(&mut self, now: i64, reason: &str) -> Result<(), String> {
        if self.state == RolloutState::Aborted {
            return Err("rollout is already aborted".into());
        }
        if self.state == RolloutState::Running {
            self.freeze(now);
        }
        self.state = RolloutState::Aborted;
        self.state_reason = Some(reason.to_owned());
        self.updated_at = now;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn rollout(waves: &[(f64, u64)]) -> Rollout {
        Rollout {
            id: "ro-1".into(),
            name: "r".into(),
            target: "m/2.0.0.nlfw".into(),
            hardware_model: "m".into(),
            target_version: "2.0.0".into(),
            spec: RolloutSpec {
                from_versions: vec![],
                groups: vec![],
                waves: waves
                    .iter()
                    .map(|&(share, min_soak_secs)| Wave {
                        share,
                        min_soak_secs,
                    })
                    .collect(),
                failure: FailureThreshold {
                    rate: 0.2,
                    min_sample: 10,
                },
                start_at: None,
                security_deadline: None,
            },
            state: RolloutState::Running,
            state_reason: None,
            wave_index: 0,
            wave_started_at: Some(1_000_000),
            paused_at: None,
            successes: 0,
            failures: 0,
            created_at: 0,
            updated_at: 0,
            created_by: "t".into(),
        }
    }

    #[test]
    fn waves_advance_after_their_soak_and_stop_while_paused() {
        let mut r = rollout(&[(0.01, 60), (0.1, 120), (1.0, 0)]);
        assert_eq!(r.effective_wave(999_999), None);
        assert_eq!(r.effective_wave(1_000_000), Some((0, 1_000_000)));
        assert_eq!(r.effective_wave(1_059_999).map(|w| w.0), Some(0));
        assert_eq!(r.effective_wave(1_060_000), Some((1, 1_060_000)));
        assert_eq!(r.effective_wave(1_180_000), Some((2, 1_180_000)));
        assert_eq!(r.effective_wave(9_000_000).map(|w| w.0), Some(2));
        r.state = RolloutState::Paused;
        r.paused_at = Some(1_030_000);
        assert_eq!(r.effective_wave(5_000_000).map(|w| w.0), Some(0));
        assert!(!r.assigning(5_000_000));
    }

    #[test]
    fn spec_validation() {
        let mut r = rollout(&[(0.5, 0), (0.2, 0)]);
        assert!(r.spec.validate().is_err());
        r.spec.waves = vec![Wave {
            share: 1.5,
            min_soak_secs: 0,
        }];
        assert!(r.spec.validate().is_err());
        r.spec.waves = vec![Wave {
            share: 1.0,
            min_soak_secs: 0,
        }];
        assert!(r.spec.validate().is_ok());
        r.spec.from_versions = vec!["1.x".into()];
        assert!(r.spec.validate().is_err());
    }
}
