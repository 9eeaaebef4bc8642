//! After every boot: the running image, and the trial image's verdict (a
//! self-test, then confirm; or the bootloader's revert, noticed).

use alloc::string::{String, ToString};
use alloc::vec;

use bootloader::updater::Updater;
use embassy_boot::State as FwState;
use embedded_storage::nor_flash::NorFlash;

use super::wire::{Outcome, UpdateResult};
use super::{Agent, AgentError, Hardware, Net, SelfTestFailure};
use crate::tuf::MetadataStore;

/// What [`Agent::after_boot`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootOutcome {
    /// Normal boot.
    Normal,
    /// A trial image passed its self-test and is confirmed.
    Confirmed {
        /// Version now running.
        version: String,
    },
    /// A trial image failed its self-test: reset so the bootloader reverts.
    SelfTestFailed(SelfTestFailure),
    /// The bootloader reverted an install.
    Reverted {
        /// Target that failed.
        target: String,
    },
}

/// Firmware version and security counter of the running image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// Security counter.
    pub security_counter: u32,
    /// Hardware model.
    pub hardware_model: String,
    /// On trial.
    pub trial: bool,
}

impl<'a, F: NorFlash, S: MetadataStore, N: Net, H: Hardware> Agent<'a, F, S, N, H> {
    /// The running image (verified in ACTIVE), and whether it is on
    /// trial. It is verified the first time it is asked for after start-up
    /// and after each step that works the bootloader's records or slots;
    /// in between, the verified answer is kept, as nothing else changes it.
    pub fn running(&self) -> Result<Running, AgentError> {
        if let Some(r) = self.running.borrow().as_ref() {
            return Ok(r.clone());
        }
        let up = Updater::new(self.flash, self.boot).map_err(AgentError::Flash)?;
        let mut buf = vec![0u8; 1024];
        let img = up.verify_active(&mut buf).map_err(AgentError::Flash)?;
        let h = img.header();
        let running = Running {
            version: h.version.to_string(),
            security_counter: h.security_counter,
            hardware_model: h.model.as_str().to_string(),
            trial: up.firmware_state().map_err(AgentError::Flash)? == FwState::Swap,
        };
        *self.running.borrow_mut() = Some(running.clone());
        Ok(running)
    }

    /// Run after every boot: a trial image self-tests and confirms; a
    /// revert of the last install is noticed and remembered.
    pub fn after_boot(&mut self) -> Result<BootOutcome, AgentError> {
        let running = self.running()?;
        let target = self
            .state
            .installing
            .as_ref()
            .map(|i| i.target.clone())
            .or_else(|| self.state.staging.as_ref().map(|s| s.image.name.clone()))
            .unwrap_or_default();
        if running.trial {
            // The record the bootloader writes at the next reset (confirm
            // or revert) goes into a sector erased now, not then.
            self.updater()?
                .prepare_records()
                .map_err(AgentError::Flash)?;
            return match self.hw.self_test() {
                Ok(()) => {
                    self.updater()?.confirm().map_err(AgentError::Flash)?;
                    self.state.installing = None;
                    self.state.staging = None;
                    self.hash = None;
                    self.state.last_update = Some(UpdateResult {
                        target,
                        outcome: Outcome::Confirmed,
                        reason: None,
                    });
                    self.save()?;
                    Ok(BootOutcome::Confirmed {
                        version: running.version,
                    })
                }
                Err(why) => {
                    self.state.last_update = Some(UpdateResult {
                        target,
                        outcome: Outcome::RolledBack,
                        reason: Some(why.code().to_string()),
                    });
                    self.save()?;
                    Ok(BootOutcome::SelfTestFailed(why))
                }
            };
        }
        if let Some(inst) = self.state.installing.clone()
            && inst.version != running.version
        {
            // Swapped in, never confirmed, swapped back.
            let reason = match &self.state.last_update {
                Some(u) if u.target == inst.target && u.outcome == Outcome::RolledBack => {
                    u.reason.clone()
                }
                _ => Some("trial_not_confirmed".to_string()),
            };
            self.state.last_update = Some(UpdateResult {
                target: inst.target.clone(),
                outcome: Outcome::RolledBack,
                reason,
            });
            self.remember_failed(&inst.target);
            self.state.installing = None;
            self.state.staging = None;
            self.hash = None;
            self.save()?;
            return Ok(BootOutcome::Reverted {
                target: inst.target,
            });
        }
        Ok(BootOutcome::Normal)
    }

    pub(super) fn remember_failed(&mut self, target: &str) {
        if !self.state.failed.iter().any(|t| t == target) {
            if self.state.failed.len() >= 8 {
                self.state.failed.remove(0);
            }
            self.state.failed.push(target.to_string());
        }
    }
}
