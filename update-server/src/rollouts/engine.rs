//! Which rollout assigns what to a lock, now. Pure: the check-in pipeline
//! and the 10,000-lock semantics tests call exactly this.
//!
//! A lock is eligible for a rollout when the rollout is running and has
//! started, the lock has the rollout's hardware model, runs a version older
//! than the target (one of `from_versions` if given) with a security counter
//! the target does not lower, is in one of the rollout's groups (if given),
//! has not already failed this rollout, and its stable bucket falls in a wave
//! that has started. Among eligible rollouts the newest wins. A patch is
//! offered when the repository holds one from the lock's version to the
//! target; otherwise the full image.

use crate::repo::catalog::Catalog;
use crate::rollouts::bucket::{bucket, wave_of};
use crate::rollouts::outcome::DeviceStatus;
use crate::rollouts::{Rollout, version};

/// What the engine needs to know about a lock.
#[derive(Debug, Clone, Copy)]
pub struct DeviceFacts<'a> {
    /// Lock id.
    pub id: &'a str,
    /// Registered hardware model.
    pub hardware_model: &'a str,
    /// Groups.
    pub groups: &'a [String],
    /// Reported firmware version.
    pub firmware_version: Option<&'a str>,
    /// Reported security counter.
    pub security_counter: Option<u32>,
    /// Its status in the rollout of its current assignment: (rollout id, status).
    pub rollout_status: Option<(&'a str, DeviceStatus)>,
}

/// What a lock is told to install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Rollout id.
    pub rollout_id: String,
    /// The lock's wave.
    pub wave: usize,
    /// Image target name.
    pub target: String,
    /// Patch target name, when the lock's base matches a published patch.
    pub patch: Option<String>,
    /// Security deadline (Unix ms).
    pub security_deadline: Option<i64>,
}

/// Why a lock is not (yet) in a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ineligible {
    /// Not running, or not started yet.
    NotAssigning,
    /// Another hardware model.
    Model,
    /// Already runs the target or newer, or not one of `from_versions`.
    Version,
    /// The target's security counter is below the lock's.
    Counter,
    /// In none of the rollout's groups.
    Group,
    /// Already failed this rollout.
    Failed,
    /// Its wave has not started.
    LaterWave(usize),
    /// The target is not in the repository.
    NoTarget,
}

/// The lock's wave in `r` if it should get `r`'s target at `now`.
pub fn eligibility(
    r: &Rollout,
    d: &DeviceFacts<'_>,
    catalog: &Catalog,
    now: i64,
) -> Result<usize, Ineligible> {
    let Some((current, _)) = r.effective_wave(now).filter(|_| r.assigning(now)) else {
        return Err(Ineligible::NotAssigning);
    };
    if d.hardware_model != r.hardware_model {
        return Err(Ineligible::Model);
    }
    let running = d.firmware_version.and_then(version::order);
    let target = version::order(&r.target_version);
    match (running, target) {
        (Some(v), Some(t)) if v < t => {}
        _ => return Err(Ineligible::Version),
    }
    if !r.spec.from_versions.is_empty()
        && !d
            .firmware_version
            .is_some_and(|v| r.spec.from_versions.iter().any(|f| f == v))
    {
        return Err(Ineligible::Version);
    }
    if !r.spec.groups.is_empty() && !d.groups.iter().any(|g| r.spec.groups.contains(g)) {
        return Err(Ineligible::Group);
    }
    if let Some((rid, status)) = d.rollout_status
        && rid == r.id
        && status.is_failure()
    {
        return Err(Ineligible::Failed);
    }
    let image = catalog.firmware(&r.target).ok_or(Ineligible::NoTarget)?;
    if let Some(counter) = d.security_counter
        && image.security_counter < counter
    {
        return Err(Ineligible::Counter);
    }
    let wave =
        wave_of(bucket(&r.id, d.id), &r.spec.waves).ok_or(Ineligible::LaterWave(usize::MAX))?;
    if wave > current {
        return Err(Ineligible::LaterWave(wave));
    }
    Ok(wave)
}

/// The assignment for a lock among `rollouts` (newest eligible wins).
pub fn choose(
    rollouts: &[Rollout],
    d: &DeviceFacts<'_>,
    catalog: &Catalog,
    now: i64,
) -> Option<Assignment> {
    rollouts
        .iter()
        .filter_map(|r| eligibility(r, d, catalog, now).ok().map(|w| (r, w)))
        .max_by(|(a, _), (b, _)| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))
        .map(|(r, wave)| {
            let patch = d
                .firmware_version
                .and_then(|base| catalog.patch_for(&r.target, base))
                .map(|p| p.name.clone());
            Assignment {
                rollout_id: r.id.clone(),
                wave,
                target: r.target.clone(),
                patch,
                security_deadline: r.spec.security_deadline,
            }
        })
}
