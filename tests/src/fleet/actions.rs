//! What a lock does when it is due: check in (and stage what it is
//! assigned), decide whether to install now, install (the bootloader's swap
//! or A/B slot switch, power cuts, the self-test, the report, and what it
//! all cost the door: [`super::downtime`]).

use bootloader::sim::Cut;
use lock_app::agent::{
    Agent, AgentConfig, AgentError, BootOutcome, CheckIn, Net, SelfTestFailure, StageStatus,
};
use lock_app::scheduler::Decision;
use lock_app::tuf::MemoryStore;

use super::config::Policy;
use super::downtime::{InstallCost, secs_up, signatures_of_boot};
use super::engine::{DAY, Fleet, TICK};
use super::io::{Files, Flaky};
use super::lock::{FleetLock, InstallRecord, Ram};
use super::usage::{self, Rng};
use crate::sim::device::{Clock, Device, Flash, SimHardware};
use crate::sim::net::{HttpNet, Traffic};

/// A lock's agent: resumed from what it kept in RAM since its last reset,
/// or (after one) opened from its flash, reading and verifying everything.
fn open_agent<'d, N: Net>(
    device: &'d Device,
    files: &'d mut MemoryStore,
    ram: &mut Option<Ram>,
    on_flash: bool,
    net: N,
    hw: SimHardware,
    config: AgentConfig,
) -> Result<Agent<'d, Flash, Files<'d>, N, SimHardware>, AgentError> {
    match ram.take() {
        Some(Ram { warm, cache }) => {
            let store = Files::of(device, files, on_flash, cache);
            Ok(Agent::resume(
                &device.flash,
                device.config,
                store,
                net,
                hw,
                config,
                warm,
            ))
        }
        None => Agent::open(
            &device.flash,
            device.config,
            Files::of(device, files, on_flash, None),
            net,
            hw,
            config,
        ),
    }
}

/// Put the agent away until the lock's next check-in: its RAM is kept.
fn keep<N: Net>(
    ram: &mut Option<Ram>,
    agent: Agent<'_, Flash, Files<'_>, N, SimHardware>,
) -> SimHardware {
    let (warm, files, _net, hw) = agent.into_parts();
    *ram = Some(Ram {
        warm,
        cache: files.into_cache(),
    });
    hw
}

impl Fleet {
    fn config_for(&self, lock: &FleetLock) -> AgentConfig {
        let mut c = AgentConfig::new(&lock.id);
        c.time_zone = Some(lock.tz_name.to_owned());
        c.install_cost.downtime_secs = self.config.downtime_secs;
        c
    }

    fn hardware(&self, lock: &FleetLock, t: u64) -> SimHardware {
        let mut hw = SimHardware::new(Clock::virtual_at(t.saturating_add_signed(lock.skew)));
        hw.battery = lock.battery;
        hw.running = lock.running.clone();
        for (m, v) in &self.broken {
            if *m == lock.model {
                hw.failing.push((v.clone(), SelfTestFailure::Motor));
            }
        }
        hw
    }

    pub(super) fn check_in(&self, lock: &mut FleetLock, at: u64, net: &mut HttpNet) {
        // The lock learns from its audit log as the door is used: its
        // summary (sent when due) is what its scheduler knows now.
        lock.ingest(at);
        let before = net.traffic;
        let config = self.config_for(lock);
        let hw = self.hardware(lock, at);
        let mut rng = Rng::new(lock.rng.next_u64());
        let flaky = Flaky {
            inner: net,
            drop: self.config.faults.wifi_drop,
            rng: &mut rng,
        };
        let interval = self.config.checkin_interval;
        let jitter = lock.rng.range(0, interval / 8 + 1);
        lock.next_checkin = at + interval - interval / 16 + jitter;
        let FleetLock {
            device,
            files,
            profile,
            ram,
            ..
        } = lock;
        let on_flash = self.config.files_on_flash;
        let mut agent = match open_agent(device, files, ram, on_flash, flaky, hw, config) {
            Ok(a) => a,
            Err(_) => {
                lock.stats.refusals += 1;
                return;
            }
        };
        let result = agent.check_in_with_usage(profile);
        if agent.sent_usage() {
            lock.stats.usage_reports += 1;
        }
        let mut staged = false;
        match result {
            Ok(CheckIn::Assigned { patch, .. }) => {
                lock.stats.check_ins += 1;
                lock.skew = 0;
                loop {
                    match agent.stage(64) {
                        Ok(StageStatus::Downloading { .. }) => {}
                        Ok(StageStatus::Staged) => {
                            staged = true;
                            break;
                        }
                        Ok(StageStatus::Idle | StageStatus::Failed(_)) => break,
                        Err(AgentError::Network) => {
                            // Try again soon: Range resumes where it stopped.
                            lock.next_checkin = at + 600;
                            break;
                        }
                        Err(e) => {
                            lock.stats.refusals += 1;
                            lock.stats.last_refusal = Some(format!("staging: {e}"));
                            break;
                        }
                    }
                }
                if staged {
                    let fallback = agent
                        .state()
                        .staging
                        .as_ref()
                        .is_some_and(|s| s.patch_fallback.is_some());
                    if fallback {
                        lock.stats.patch_fallbacks += 1;
                    } else if patch {
                        lock.stats.patched += 1;
                    }
                }
            }
            Ok(CheckIn::UpToDate) => {
                lock.stats.check_ins += 1;
                lock.skew = 0;
                staged = agent.staged();
            }
            Ok(CheckIn::Withdrawn) => {
                lock.stats.check_ins += 1;
                lock.next_decide = None;
            }
            Err(AgentError::Network) => lock.next_checkin = at + 600,
            Err(e) => {
                lock.stats.refusals += 1;
                lock.stats.last_refusal = Some(format!("check-in: {e}"));
            }
        }
        keep(ram, agent);
        lock.stats.traffic = add(&lock.stats.traffic, &net_delta(net, &before));
        if staged && lock.next_decide.is_none() {
            lock.next_decide = Some(at);
        }
    }

    pub(super) fn decide(&self, lock: &mut FleetLock, at: u64, net: &mut HttpNet) {
        lock.ingest(at);
        let config = self.config_for(lock);
        let hw = self.hardware(lock, at);
        let door_closed = lock.last_event.is_none_or(|e| at >= e + 120);
        let last = lock.last_event;
        let battery_mwh = u32::from(lock.battery) * 50;
        let install_now = {
            let FleetLock {
                device,
                files,
                profile,
                ram,
                ..
            } = &mut *lock;
            let on_flash = self.config.files_on_flash;
            let agent = match open_agent(device, files, ram, on_flash, &mut *net, hw, config) {
                Ok(a) => a,
                Err(_) => return,
            };
            let staged = agent.staged();
            let decision = (staged && self.config.policy == Policy::QuietHours)
                .then(|| agent.decide(profile, door_closed, last, battery_mwh));
            keep(ram, agent);
            if !staged {
                lock.next_decide = None;
                return;
            }
            match self.config.policy {
                Policy::QuietHours => match decision.unwrap_or(Decision::InstallNow) {
                    Decision::InstallNow => true,
                    Decision::WaitUntil(x) => {
                        lock.next_decide = Some(x.saturating_add_signed(-lock.skew).max(at + TICK));
                        false
                    }
                    Decision::Blocked(lock_app::scheduler::BlockReason::Battery { .. }) => {
                        lock.stats.battery_blocked = true;
                        lock.next_decide = Some(at + DAY);
                        false
                    }
                    Decision::Blocked(_) => {
                        lock.next_decide = Some(at + 6 * 3600);
                        false
                    }
                },
                Policy::OnArrival => true,
                Policy::FixedWindow => {
                    let local = lock.tz.to_local(at as i64);
                    let sod = local.rem_euclid(DAY as i64) as u64;
                    if (2 * 3600..4 * 3600 - self.config.downtime_secs).contains(&sod) {
                        true
                    } else {
                        // Next 02:00 local plus a random offset in the window.
                        let day0 = local - sod as i64;
                        let next2 = if sod < 2 * 3600 {
                            day0
                        } else {
                            day0 + DAY as i64
                        } + 2 * 3600;
                        let jitter = lock.rng.range(0, 2 * 3600 - self.config.downtime_secs) as i64;
                        let utc = usage::local_to_utc(&lock.tz, next2 + jitter).max(0) as u64;
                        lock.next_decide = Some(utc.max(at + TICK));
                        false
                    }
                }
            }
        };
        if install_now {
            lock.next_decide = None;
            self.install(lock, at, net);
        }
    }

    fn install(&self, lock: &mut FleetLock, at: u64, net: &mut HttpNet) {
        let config = self.config_for(lock);
        {
            let hw = self.hardware(lock, at);
            let FleetLock {
                device, files, ram, ..
            } = &mut *lock;
            let on_flash = self.config.files_on_flash;
            let Ok(mut agent) =
                open_agent(device, files, ram, on_flash, &mut *net, hw, config.clone())
            else {
                return;
            };
            if agent.install().is_err() {
                // No reset: the lock keeps running, and its RAM.
                keep(ram, agent);
                lock.stats.refusals += 1;
                return;
            }
            // The reset: the lock's RAM is gone (`open_agent` took it).
        }
        lock.stats.installs += 1;
        lock.generate(at + 2 * DAY);
        let mode = lock.device.config.layout.mode;
        let mut cost = InstallCost::default();
        // Reset: the bootloader swaps, or maps the new slot. Power may be
        // cut half-way through one of this boot's own flash operations (the
        // A/B install boot has a single one, its record write: a cut *after*
        // it would be a reset during the trial, which the bootloader reverts
        // by design and its own tests cover).
        if lock.cut_next_swap {
            lock.cut_next_swap = false;
            let ops = lock.device.next_boot_ops();
            if ops > 0 {
                let n = lock.rng.range(1, ops + 1);
                lock.device
                    .flash
                    .lock(|f| f.borrow_mut().arm(Cut::Midway(n)));
            }
        }
        let mut report = None;
        let mut cut = false;
        let mut boots = 0;
        for _ in 0..4 {
            boots += 1;
            let before = lock.device.stats();
            let result = lock.device.boot();
            let dead = lock.device.is_dead();
            let trial = result.as_ref().is_ok_and(|r| r.trial);
            cost.boot(
                &before,
                &lock.device.stats(),
                signatures_of_boot(mode, trial && !dead),
            );
            match result {
                // Power lost after the boot's last flash operation, before
                // the firmware started: boot again.
                Ok(_) if dead => cut = true,
                Ok(r) => {
                    report = Some(r);
                    break;
                }
                Err(_) if dead => cut = true,
                Err(_) => break,
            }
        }
        // A cut that did not fire must not land in the agent's work later.
        lock.device.disarm();
        if cut && report.is_some() {
            lock.stats.power_cuts += 1;
        }
        let Some(report) = report else {
            lock.stats.bricked = true;
            return;
        };
        lock.running = report.image.header().version.to_string();
        let mut report_now = true;
        loop {
            let hw = self.hardware(lock, at + secs_up(cost.total_ns()));
            let FleetLock {
                device, files, ram, ..
            } = &mut *lock;
            let on_flash = self.config.files_on_flash;
            let Ok(mut agent) =
                open_agent(device, files, ram, on_flash, &mut *net, hw, config.clone())
            else {
                report_now = false;
                break;
            };
            let before = device.stats();
            let outcome = agent.after_boot();
            let self_tests = u64::from(keep(ram, agent).self_tests);
            cost.after_boot(&before, &device.stats(), self_tests);
            match outcome {
                Ok(BootOutcome::SelfTestFailed(_)) => {
                    // Watchdog reset: the bootloader reverts.
                    lock.ram = None;
                    let before = lock.device.stats();
                    let result = lock.device.boot();
                    cost.boot(
                        &before,
                        &lock.device.stats(),
                        signatures_of_boot(mode, false),
                    );
                    match result {
                        Ok(r) => lock.running = r.image.header().version.to_string(),
                        Err(_) => {
                            lock.stats.bricked = true;
                            break;
                        }
                    }
                }
                Ok(BootOutcome::Reverted { ref target }) => {
                    lock.stats.reverts += 1;
                    lock.stats.last_revert = Some(format!(
                        "{target} at {at}, after {boots} install boot(s){}",
                        if cut { ", power cut in one" } else { "" }
                    ));
                    break;
                }
                _ => break,
            }
        }
        let downtime_ns = match self.config.fixed_downtime_secs {
            Some(secs) => secs * 1_000_000_000,
            None => cost.total_ns(),
        };
        let window = secs_up(downtime_ns);
        let hits = lock.attempts_in(at, at + window);
        lock.stats.hits += hits;
        lock.stats.install_log.push(InstallRecord {
            at,
            downtime_ns,
            hits,
        });
        if report_now && !lock.stats.bricked {
            // Report the outcome right away.
            self.check_in(lock, at + window, net);
        }
    }
}

fn net_delta(net: &HttpNet, before: &Traffic) -> Traffic {
    net.traffic.since(before)
}

fn add(a: &Traffic, b: &Traffic) -> Traffic {
    Traffic {
        requests: a.requests + b.requests,
        checkin_sent: a.checkin_sent + b.checkin_sent,
        checkin_received: a.checkin_received + b.checkin_received,
        metadata_sent: a.metadata_sent + b.metadata_sent,
        metadata_received: a.metadata_received + b.metadata_received,
        target_sent: a.target_sent + b.target_sent,
        target_received: a.target_received + b.target_received,
    }
}
