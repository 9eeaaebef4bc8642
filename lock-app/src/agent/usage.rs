//! The usage summary a check-in may carry (see the module documentation of
//! [`super`]): when it is due, and what it says.

use embedded_storage::nor_flash::NorFlash;

use super::wire;
use super::{Agent, AgentError, CheckIn, Hardware, Net, USAGE_REFRESH_SECS};
use crate::scheduler::summary::UsageSummary;
use crate::scheduler::{UsageProfile, Window};
use crate::tuf::MetadataStore;

impl<'a, F: NorFlash, S: MetadataStore, N: Net, H: Hardware> Agent<'a, F, S, N, H> {
    /// Now for the usage summary: the lock's clock, never below the time
    /// floor.
    pub(super) fn usage_now(&self) -> u64 {
        self.hw.now().max(self.state.time_floor)
    }

    /// The summary of `profile` the lock would send now: in the zone the
    /// scheduler uses, quiet slots over the whole day (the door's own
    /// picture; the server knows each site's window) for the modelled
    /// install downtime.
    pub fn usage_summary(&self, profile: &UsageProfile) -> UsageSummary {
        UsageSummary::from_profile(
            profile,
            &self.time_zone(),
            Window::ALL_DAY,
            self.config.install_cost.downtime_secs,
            self.usage_now(),
        )
    }

    /// Whether `summary` is due (see the module documentation).
    pub fn usage_due(&self, summary: &UsageSummary) -> bool {
        let Some(sent) = &self.state.usage_digest else {
            return true;
        };
        let now = self.usage_now();
        let at = self.state.usage_sent_at;
        *sent != wire::b64::encode(summary.material_digest())
            || now >= at.saturating_add(USAGE_REFRESH_SECS)
            // The clock was far ahead when it was sent.
            || now.saturating_add(USAGE_REFRESH_SECS) < at
    }

    /// Whether the last check-in carried a usage summary.
    pub fn sent_usage(&self) -> bool {
        self.usage_sent
    }

    /// One signed check-in carrying the usage summary of `profile` if it is
    /// due (see the module documentation); otherwise as [`Self::check_in`].
    pub fn check_in_with_usage(&mut self, profile: &UsageProfile) -> Result<CheckIn, AgentError> {
        let summary = self.usage_summary(profile);
        let due = self.usage_due(&summary);
        self.check_in_carrying(due.then_some(summary))
    }
}
