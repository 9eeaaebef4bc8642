//! `nightlatch-sim fleet` and `nightlatch-sim demo`: a rollout rehearsed on
//! a virtual fleet (see [`engine`]).

mod actions;
pub mod config;
pub mod downtime;
pub mod engine;
mod io;
pub mod lock;
pub mod report;
pub mod scenario;
pub mod usage;

pub use engine::{Faults, Fleet, FleetConfig, Policy, Report};
pub use scenario::{Release, Scenario};

/// The virtual date every fleet and key-drill test starts from:
/// 2030-01-07T00:00:00Z, a Monday, in Unix seconds. Tests start here instead
/// of at today's date so that what they see (which weekday the rollout
/// meets first, whether offices are empty, whether a zone changes its
/// clocks during the run or the learned history before it) does not depend
/// on the day they run. No zone the fleet uses changes its offset from
/// eight weeks before it (the learned door history is three) to four weeks
/// after (the longest test runs nine virtual days). `nightlatch-sim fleet`
/// starts at today's midnight unless given `--start`.
pub const TEST_START: u64 = 1_893_974_400;

#[cfg(test)]
mod tests {
    use super::TEST_START;
    use lock_app::scheduler::tz::{TzRule, rule_for_zone};

    #[test]
    fn test_start_is_a_monday_midnight_utc_away_from_dst_changes() {
        let t = TEST_START as i64;
        let d = TzRule::UTC.local_date_time(t);
        assert_eq!(
            (d.year, d.month, d.day, d.weekday_mon, d.secs_of_day),
            (2030, 1, 7, 0, 0)
        );
        const WEEK: i64 = 7 * 86_400;
        let history = super::FleetConfig::default().history_weeks;
        assert!(history <= 8, "{history} weeks of history");
        for zone in super::lock::ZONES {
            let tz = rule_for_zone(zone).unwrap_or_else(|| panic!("{zone}"));
            let offset = tz.offset_at(t);
            for at in (t - 8 * WEEK..=t + 4 * WEEK).step_by(3600) {
                assert_eq!(
                    tz.offset_at(at),
                    offset,
                    "{zone} changes its clocks at {at}"
                );
            }
        }
    }
}
