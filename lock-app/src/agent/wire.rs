//! The check-in wire format, lock side: [`nightlatch_proto::wire`] (one
//! definition for the lock and the update server; its golden texts pin the
//! bytes) and the install policy of [`nightlatch_proto::custom`], which the
//! director signs into `custom.director`.

pub use nightlatch_proto::custom::{InstallPolicy, QuietWindow};
pub use nightlatch_proto::wire::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::Window;
    use crate::scheduler::summary::{QuietSlot, UsageSummary, quiet_slots};

    /// The usage summary of the golden check-in decodes with the lock's own
    /// codec, its quiet slots are what the lock's scheduler picks for its
    /// heat map, and the lock writes that check-in byte for byte.
    #[test]
    fn the_golden_check_in_carries_a_summary_the_lock_reads() {
        let golden = include_str!("../../../nightlatch-proto/src/wire/golden/request_full.json");
        let req: CheckinRequest = serde_json::from_str(golden).unwrap();
        let text = req.report.usage.as_deref().unwrap();
        let usage = UsageSummary::from_text(text).unwrap();
        assert_eq!(usage.to_text(), text);
        assert_eq!(usage.epoch_week, 2858);
        assert_eq!(usage.weeks_learned, 3);
        assert_eq!(usage.peak_entries(), 4.0);
        // 03:00 for an hour every day: the middle of the quiet run
        // 01:00-07:00 (00:00 is rare, 07:00 busy).
        assert!(usage.quiet.iter().all(|q| *q
            == Some(QuietSlot {
                start: 12,
                quarters: 4
            })));
        assert_eq!(
            quiet_slots(&usage.approximate_profile(), Window::ALL_DAY, 60),
            usage.quiet
        );
        assert_eq!(
            (
                usage.heat_at(2, 0),
                usage.heat_at(2, 7),
                usage.heat_at(2, 17)
            ),
            (1, 3, 2)
        );
        assert_eq!(serde_json::to_string(&req).unwrap(), golden.trim_end());
    }
}
