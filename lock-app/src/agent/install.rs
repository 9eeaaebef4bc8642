//! From a staged image to an installed one: staging ([`super::stage`]),
//! the quiet-hours decision on the signed install policy, and the swap.

use alloc::string::ToString;
use alloc::vec;

use embedded_storage::nor_flash::NorFlash;

use super::wire::{self, Outcome, UpdateResult};
use super::{Agent, AgentConfig, AgentError, Hardware, Installing, Net, Phase, StageStatus, stage};
use crate::scheduler::{self, Situation, UsageProfile, Window};
use crate::tuf::MetadataStore;

impl<'a, F: NorFlash, S: MetadataStore, N: Net, H: Hardware> Agent<'a, F, S, N, H> {
    /// Stage the planned update: up to `max_chunks` range requests (full
    /// image or patch download); once the whole patch is downloaded and
    /// matches its listed SHA-256, the image is rebuilt from it in the same
    /// call.
    pub fn stage(&mut self, max_chunks: u32) -> Result<StageStatus, AgentError> {
        stage::run(self, max_chunks)
    }

    /// Is a verified image staged?
    pub fn staged(&self) -> bool {
        self.state
            .staging
            .as_ref()
            .is_some_and(|s| s.phase == Phase::Staged)
    }

    /// The signed install policy of the update being staged (none: the
    /// default, the lock's own settings).
    fn staged_policy(&self) -> wire::InstallPolicy {
        self.state
            .staging
            .as_ref()
            .map(|s| s.policy.clone())
            .unwrap_or_default()
    }

    /// Ask the quiet-hours scheduler whether to install now.
    pub fn decide(
        &self,
        profile: &UsageProfile,
        door_closed: bool,
        last_activity: Option<u64>,
        battery_mwh: u32,
    ) -> scheduler::Decision {
        let policy = self.staged_policy();
        let site = site_config(&policy, &self.config);
        scheduler::decide(
            &site,
            &self.config.install_cost,
            &self.config.battery,
            profile,
            &Situation {
                now: self.hw.now(),
                door_closed,
                last_activity,
                battery_mwh,
                staged: self.staged(),
                deadline: policy.security_deadline,
            },
        )
    }

    /// The site's time zone rule for the staged policy (or the lock's own).
    pub fn time_zone(&self) -> scheduler::TzRule {
        let policy = self.staged_policy();
        site_config(&policy, &self.config).tz
    }

    /// Request the swap of the staged image. The caller then resets the lock
    /// (the bootloader verifies and swaps), and calls [`Self::after_boot`].
    pub fn install(&mut self) -> Result<(), AgentError> {
        let s = self
            .state
            .staging
            .clone()
            .ok_or(AgentError::NothingStaged)?;
        if s.phase != Phase::Staged {
            return Err(AgentError::NothingStaged);
        }
        let mut up = self.updater()?;
        let mut buf = vec![0u8; 1024];
        up.request_install(&mut buf).map_err(AgentError::Flash)?;
        self.state.installing = Some(Installing {
            target: s.image.name.clone(),
            version: s.image.version.clone(),
        });
        self.state.last_update = Some(UpdateResult {
            target: s.image.name,
            outcome: Outcome::Installed,
            reason: None,
        });
        self.save()
    }

    pub(super) fn fail_staging(&mut self, reason: &str) -> Result<(), AgentError> {
        if let Some(s) = self.state.staging.take() {
            self.remember_failed(&s.image.name);
            self.state.last_update = Some(UpdateResult {
                target: s.image.name,
                outcome: Outcome::Failed,
                reason: Some(reason.to_string()),
            });
        }
        self.hash = None;
        self.save()
    }
}

/// `HH:MM` → minutes.
fn minutes(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// The scheduler's site configuration from a signed install policy.
pub fn site_config(policy: &wire::InstallPolicy, config: &AgentConfig) -> scheduler::SiteConfig {
    let zone = policy
        .time_zone
        .as_deref()
        .or(config.time_zone.as_deref())
        .unwrap_or("UTC");
    let tz = scheduler::tz::rule_for_zone(zone).unwrap_or(scheduler::TzRule::UTC);
    let window = policy
        .quiet_hours
        .as_ref()
        .and_then(|q| {
            Some(Window {
                start_min: minutes(&q.start)?,
                end_min: minutes(&q.end)?,
            })
        })
        .unwrap_or(Window::ALL_DAY);
    let blackout = policy
        .blackout_dates
        .iter()
        .filter_map(|d| {
            let mut it = d.splitn(3, '-');
            Some(scheduler::LocalDate {
                year: it.next()?.parse().ok()?,
                month: it.next()?.parse().ok()?,
                day: it.next()?.parse().ok()?,
            })
        })
        .collect();
    scheduler::SiteConfig {
        tz,
        window,
        blackout,
        idle_secs: config.idle_secs,
        horizon_hours: config.horizon_hours,
    }
}
