//! The check-in wire format is [`nightlatch_proto::wire`] (one definition
//! for the server and the lock; its golden texts pin the bytes, and
//! `update-server/README.md`, "Check-in wire format", describes them),
//! with the install policy of [`nightlatch_proto::custom`] that the
//! director signs into `custom.director`. Re-exported here, beside what only
//! the server has: a site's install policy as operators set it.

use serde::{Deserialize, Serialize};

pub use nightlatch_proto::custom::{InstallPolicy, QuietWindow};
pub use nightlatch_proto::wire::*;

/// Install policy of a site: when its locks may install (admin API
/// `/admin/v1/sites/{site}/policy`, stored per site).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SitePolicy {
    /// Daily window in the lock's local time (`start` may be after `end`: it wraps midnight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietWindow>,
    /// Local dates (`YYYY-MM-DD`) with no installs.
    #[serde(default)]
    pub blackout_dates: Vec<String>,
    /// Site time zone (IANA), used when the lock reports none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

impl SitePolicy {
    /// What a lock of this site is told, with a rollout's security deadline
    /// (Unix seconds).
    pub fn install_policy(&self, security_deadline: Option<u64>) -> InstallPolicy {
        InstallPolicy {
            quiet_hours: self.quiet_hours.clone(),
            blackout_dates: self.blackout_dates.clone(),
            time_zone: self.time_zone.clone(),
            security_deadline,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_policy_is_the_install_policy_without_a_deadline() {
        let site = SitePolicy {
            quiet_hours: Some(QuietWindow {
                start: "22:30".into(),
                end: "04:00".into(),
            }),
            blackout_dates: vec!["2030-12-24".into()],
            time_zone: Some("Europe/Berlin".into()),
        };
        let text = serde_json::to_string(&site).unwrap();
        let policy = site.install_policy(None);
        assert_eq!(serde_json::to_string(&policy).unwrap(), text);
        let policy = site.install_policy(Some(1_893_456_000));
        assert_eq!(policy.security_deadline, Some(1_893_456_000));
        assert_eq!(
            serde_json::to_string(&SitePolicy::default()).unwrap(),
            r#"{"blackout_dates":[]}"#
        );
    }
}
