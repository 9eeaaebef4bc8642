//! One signed check-in: the report and request the lock signs, the
//! director's answer verified ([`super::director::verify`]), and what is
//! kept of it.

use alloc::string::String;

use embedded_storage::nor_flash::NorFlash;

use super::director;
use super::wire::{self, BootState, CheckinRequest, CheckinResponse, Firmware, Outcome, Report};
use super::{Agent, AgentError, COUNTER_STEP, Hardware, Net, NetError, RESPONSE_MAX, put};
use crate::scheduler::summary::UsageSummary;
use crate::tuf::MetadataStore;

/// What a check-in led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckIn {
    /// Nothing to do.
    UpToDate,
    /// A verified assignment is being (or has been) staged.
    Assigned {
        /// Image target name.
        target: String,
        /// A patch will be used.
        patch: bool,
    },
    /// The director withdrew an assignment that was not installed yet
    /// (rollout paused or aborted): staging dropped.
    Withdrawn,
}

impl<'a, F: NorFlash, S: MetadataStore, N: Net, H: Hardware> Agent<'a, F, S, N, H> {
    fn report(&self) -> Result<Report, AgentError> {
        let running = self.running()?;
        let boot_state = if running.trial {
            BootState::Trial
        } else if self
            .state
            .last_update
            .as_ref()
            .is_some_and(|u| u.outcome == Outcome::RolledBack)
        {
            BootState::Reverted
        } else {
            BootState::Confirmed
        };
        Ok(Report {
            hardware_model: running.hardware_model,
            firmware: Firmware {
                version: running.version,
                security_counter: running.security_counter,
            },
            boot_state,
            last_update: self.state.last_update.clone(),
            battery_percent: Some(self.hw.battery_percent()),
            time_zone: self.config.time_zone.clone(),
            usage: None,
        })
    }

    /// One signed check-in: report, verify the director's answer, and plan
    /// (or drop) the staging of what it assigns. No usage summary (see
    /// [`Self::check_in_with_usage`]).
    pub fn check_in(&mut self) -> Result<CheckIn, AgentError> {
        self.check_in_carrying(None)
    }

    pub(super) fn check_in_carrying(
        &mut self,
        usage: Option<UsageSummary>,
    ) -> Result<CheckIn, AgentError> {
        self.usage_sent = false;
        // Counter: strictly increasing across resets (reserve, then use).
        self.counter = self.counter.saturating_add(1);
        if self.counter > self.state.counter_reserved {
            self.state.counter_reserved = self.counter.saturating_add(COUNTER_STEP);
            self.save()?;
        }
        let mut nonce = [0u8; wire::NONCE_LEN];
        self.hw.random(&mut nonce);
        let mut report = self.report()?;
        report.usage = usage.as_ref().map(UsageSummary::to_text);
        let hardware_model = report.hardware_model.clone();
        let running_version = report.firmware.version.clone();
        let running_counter = report.firmware.security_counter;
        let req = CheckinRequest {
            device_id: self.config.device_id.clone(),
            counter: self.counter,
            nonce: wire::b64::encode(nonce),
            director_targets_version: self.director.targets_version(&self.files),
            report,
        };
        let body = serde_json::to_vec(&req).map_err(|_| AgentError::Storage)?;
        let sig = wire::sign_body(&self.key, &body);
        let answer = self
            .net
            .check_in(&self.config.device_id, &body, &sig, RESPONSE_MAX)
            .map_err(|e| match e {
                NetError::Status(409) => AgentError::CounterReplayed,
                NetError::Status(s) => AgentError::Refused(s),
                NetError::Unreachable => AgentError::Network,
                NetError::TooLarge => AgentError::MalformedResponse,
            });
        if let Some(s) = &usage
            && matches!(answer, Ok(_) | Err(AgentError::Refused(400)))
        {
            // Stored by the server (or refused as malformed: not retried
            // before a day has passed).
            self.state.usage_digest = Some(wire::b64::encode(s.material_digest()));
            self.state.usage_sent_at = self.usage_now();
            self.usage_sent = answer.is_ok();
            if answer.is_err() {
                self.save()?;
            }
        }
        let answer = match answer {
            Err(AgentError::CounterReplayed) => {
                // Our counter fell behind the server's (restored state):
                // jump a whole reservation ahead for the next try.
                self.counter = self.state.counter_reserved;
                self.state.counter_reserved = self.counter.saturating_add(COUNTER_STEP);
                self.save()?;
                return Err(AgentError::CounterReplayed);
            }
            other => other?,
        };
        let resp: CheckinResponse =
            serde_json::from_slice(&answer).map_err(|_| AgentError::MalformedResponse)?;
        let sent = director::Sent {
            device_id: &self.config.device_id,
            hardware_model: &hardware_model,
            nonce: &nonce,
            counter: self.counter,
            floor: self.state.time_floor,
        };
        let mut verified =
            match director::verify(&resp, &sent, &self.files, &mut self.net, &self.director) {
                Ok(v) => v,
                Err(AgentError::DirectorTargetsMismatch) if resp.director_targets.is_none() => {
                    // What we hold is not what the director signed for this
                    // version (e.g. metadata kept from a director that has since
                    // been restored): forget it, so the next check-in asks for
                    // the metadata again.
                    self.director.forget_targets();
                    self.files
                        .remove(director::TARGETS_FILE)
                        .map_err(|_| AgentError::Storage)?;
                    return Err(AgentError::DirectorTargetsMismatch);
                }
                Err(e) => return Err(e),
            };

        // The roots and the time are verified on their own: keep them.
        for root in verified.new_roots() {
            put(&mut self.files, director::ROOT_FILE, root)?;
        }
        self.director.keep_root(&verified);
        self.state.time_floor = self.state.time_floor.max(verified.time());
        if self.hw.now().abs_diff(verified.time()) > 60 {
            self.hw.set_time(verified.time());
        }
        if self.usage_sent {
            // The summary's time by the corrected clock.
            self.state.usage_sent_at = self.usage_now();
        }

        // The director targets are kept only once what they assign has been
        // checked against the image repository: metadata that disagrees with
        // it is discarded, never held (Uptane full verification).
        let outcome = match verified.take_assignment() {
            None => {
                if self.state.staging.take().is_some() {
                    self.hash = None;
                    CheckIn::Withdrawn
                } else {
                    CheckIn::UpToDate
                }
            }
            Some(a) => match self.plan(a, &running_version, running_counter, &hardware_model) {
                Ok(o) => o,
                Err(e) => {
                    self.save()?;
                    return Err(e);
                }
            },
        };
        if let Some(t) = verified.new_targets() {
            put(&mut self.files, director::TARGETS_FILE, t)?;
        }
        // Both files now hold what was verified.
        self.director.keep(&verified);
        self.save()?;
        Ok(outcome)
    }
}
