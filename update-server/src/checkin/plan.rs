//! What one accepted check-in changes: the lock's reported state (and its
//! usage summary, when it sent one), its history, its status in the rollout
//! whose outcome is tracked for it, and its assignment (re-signing its
//! director metadata only when that changed).
//!
//! The lock's in-memory row is updated as well, so a second check-in of the
//! same lock in the same batch sees the first.

use std::collections::HashMap;

use serde_json::json;

use crate::director::{Director, Resolved};
use crate::repo::catalog::Catalog;
use crate::rollouts::engine::{DeviceFacts, choose};
use crate::rollouts::outcome::{DeviceStatus, counter_delta, reconcile, should_pause};
use crate::rollouts::{Rollout, RolloutState, version};
use crate::store::checkins::CheckinWrite;
use crate::store::devices::Device;
use crate::wire::{Report, SitePolicy};

/// A new assignment, for metrics.
#[derive(Debug, Clone)]
pub struct NewAssignment {
    /// Rollout.
    pub rollout: String,
    /// Wave.
    pub wave: usize,
    /// `patch` or `full`.
    pub delivery: &'static str,
}

/// The plan for one check-in.
#[derive(Debug)]
pub struct Plan {
    /// What to write.
    pub write: CheckinWrite,
    /// A new assignment made by this check-in.
    pub assigned: Option<NewAssignment>,
    /// A reported outcome (rollout, status).
    pub outcome: Option<(String, DeviceStatus)>,
}

/// What the pipeline plans with.
#[derive(Debug)]
pub struct Context<'a> {
    /// The director (signs metadata).
    pub director: &'a Director,
    /// The image repository.
    pub catalog: &'a Catalog,
    /// Site policies.
    pub policies: &'a HashMap<String, SitePolicy>,
    /// Now (Unix ms).
    pub now: i64,
    /// Director metadata lifetime (ms): re-signed when less than half is left.
    pub director_lifetime_ms: i64,
}

/// Plan an accepted check-in of `dev` (counter already checked).
pub fn plan(
    cx: &Context<'_>,
    dev: &mut Device,
    report: &Report,
    counter: i64,
    rollouts: &mut [Rollout],
) -> anyhow::Result<Plan> {
    let mut events = Vec::new();
    if dev.firmware_version.as_deref() != Some(report.firmware.version.as_str()) {
        events.push((
            "firmware".to_owned(),
            json!({
                "from": dev.firmware_version, "to": report.firmware.version,
                "security_counter": report.firmware.security_counter,
                "boot_state": report.boot_state.as_str(),
            }),
        ));
    }
    let last_update = match &report.last_update {
        Some(u) => (
            Some(u.target.clone()),
            Some(u.outcome.as_str().to_owned()),
            u.reason.clone(),
        ),
        None => (
            dev.last_target.clone(),
            dev.last_outcome.clone(),
            dev.last_reason.clone(),
        ),
    };
    if report.last_update.is_some()
        && (
            dev.last_target.as_ref(),
            dev.last_outcome.as_ref(),
            dev.last_reason.as_ref(),
        ) != (
            last_update.0.as_ref(),
            last_update.1.as_ref(),
            last_update.2.as_ref(),
        )
    {
        events.push((
            "update_result".to_owned(),
            json!({ "target": last_update.0, "outcome": last_update.1, "reason": last_update.2 }),
        ));
    }

    // The report is the truth: reconcile it with the tracked rollout.
    let previous = dev.rollout_status.as_deref().and_then(DeviceStatus::parse);
    let mut status_change = None;
    let mut delta = None;
    let mut outcome = None;
    if let (Some(rid), Some(target)) = (dev.assigned_rollout.clone(), dev.assigned_target.clone()) {
        let target_version = rollouts
            .iter()
            .find(|r| r.id == rid)
            .map(|r| r.target_version.clone())
            .or_else(|| cx.catalog.get(&target).map(|t| t.version.clone()));
        if let Some(tv) = target_version
            && let Some((status, reason)) = reconcile(&target, &tv, report, previous)
        {
            let (ds, df) = counter_delta(previous, status);
            if ds != 0 || df != 0 {
                delta = Some((rid.clone(), ds, df));
                if let Some(r) = rollouts.iter_mut().find(|r| r.id == rid) {
                    r.successes += ds;
                    r.failures += df;
                    if r.state == RolloutState::Running
                        && should_pause(r.successes, r.failures, &r.spec.failure)
                    {
                        // Stops assignments for the rest of the batch; the
                        // commit persists the pause.
                        r.state = RolloutState::Paused;
                        r.paused_at = Some(cx.now);
                    }
                }
            }
            events.push((
                "rollout_status".to_owned(),
                json!({ "rollout": rid, "status": status.as_str(), "reason": reason }),
            ));
            status_change = Some((rid.clone(), status.as_str().to_owned(), reason));
            outcome = Some((rid, status));
            dev.rollout_status = Some(status.as_str().to_owned());
        }
    }

    // Decide the assignment.
    let rollout_status = dev
        .assigned_rollout
        .as_deref()
        .zip(dev.rollout_status.as_deref().and_then(DeviceStatus::parse));
    let facts = DeviceFacts {
        id: &dev.id,
        hardware_model: &dev.hardware_model,
        groups: &dev.groups,
        firmware_version: Some(&report.firmware.version),
        security_counter: Some(report.firmware.security_counter),
        rollout_status,
    };
    let assignment = choose(rollouts, &facts, cx.catalog, cx.now);
    let no_policy = SitePolicy::default();
    let site = cx.policies.get(&dev.site).unwrap_or(&no_policy);
    let resolved = assignment.as_ref().and_then(|a| {
        Some(Resolved {
            assignment: a,
            image: cx.catalog.firmware(&a.target)?,
            patch: a.patch.as_deref().and_then(|p| cx.catalog.get(p)),
            policy: site.install_policy(
                a.security_deadline
                    .and_then(|ms| u64::try_from(ms.div_euclid(1000)).ok()),
            ),
        })
    });
    // What the metadata assigns, and which key signs it: metadata signed by
    // a key rotated out of the director root is re-signed at once.
    let key = cx.director.cache_key(resolved.as_ref());
    let assigns = |k: &str| k.split('|').next().unwrap_or_default().to_owned();

    let mut new_membership = None;
    let mut assigned = None;
    if let Some(r) = &resolved {
        let a = r.assignment;
        let delivery = if r.patch.is_some() { "patch" } else { "full" };
        if dev.assigned_rollout.as_deref() != Some(a.rollout_id.as_str()) {
            new_membership = Some((
                a.rollout_id.clone(),
                i64::try_from(a.wave).unwrap_or(0),
                delivery.to_owned(),
            ));
            assigned = Some(NewAssignment {
                rollout: a.rollout_id.clone(),
                wave: a.wave,
                delivery,
            });
            dev.assigned_rollout = Some(a.rollout_id.clone());
            dev.assigned_target = Some(a.target.clone());
            dev.rollout_status = Some(DeviceStatus::Assigned.as_str().to_owned());
        }
    }

    let stale = dev.director.version == 0
        || dev.director.key.as_deref() != Some(key.as_str())
        || dev
            .director
            .expires
            .is_none_or(|e| e - cx.now < cx.director_lifetime_ms / 2);
    let mut director_changed = false;
    if stale {
        if dev.director.key.as_deref().map(assigns) != Some(assigns(&key)) {
            match &resolved {
                Some(r) => events.push((
                    "assigned".to_owned(),
                    json!({
                        "rollout": r.assignment.rollout_id, "wave": r.assignment.wave,
                        "target": r.image.name, "patch": r.patch.map(|p| &p.name),
                    }),
                )),
                None if dev
                    .director
                    .key
                    .as_deref()
                    .is_some_and(|k| assigns(k) != "none") =>
                {
                    events.push(("unassigned".to_owned(), json!({})));
                }
                None => {}
            }
        }
        dev.director = cx.director.sign_targets(
            &dev.id,
            &dev.hardware_model,
            resolved.as_ref(),
            dev.director.version + 1,
            cx.now,
        )?;
        director_changed = true;
    }

    let base_counter = dev.last_counter;
    let reported_new_version =
        dev.firmware_version.as_deref() != Some(report.firmware.version.as_str());
    dev.last_counter = counter;
    dev.last_seen = Some(cx.now);
    dev.firmware_version = Some(report.firmware.version.clone());
    dev.security_counter = Some(i64::from(report.firmware.security_counter));
    dev.boot_state = Some(report.boot_state.as_str().to_owned());
    dev.last_target = last_update.0.clone();
    dev.last_outcome = last_update.1.clone();
    dev.last_reason = last_update.2.clone();

    Ok(Plan {
        write: CheckinWrite {
            device_id: dev.id.clone(),
            hardware_model: dev.hardware_model.clone(),
            reported_new_version,
            base_counter,
            counter,
            firmware_version: report.firmware.version.clone(),
            firmware_order: version::order(&report.firmware.version),
            security_counter: i64::from(report.firmware.security_counter),
            boot_state: report.boot_state.as_str().to_owned(),
            battery_percent: report.battery_percent.map(i64::from),
            time_zone: report.time_zone.clone(),
            usage: report.usage.clone(),
            last_update,
            tracked: (dev.assigned_rollout.clone(), dev.assigned_target.clone()),
            director: dev.director.clone(),
            director_changed,
            events,
            new_membership,
            status_change,
            counter_delta: delta,
        },
        assigned,
        outcome,
    })
}
