//! System test: a virtual fleet's locks (the real agent on simulated flash,
//! learning from their own door) report their usage summaries in their
//! signed check-ins, and the server keeps them: every lock's latest summary
//! is stored, fresh (the daily refresh), what its door does (offices empty
//! at weekends, homes quiet at night), served over the admin API, and sent
//! on a small share of the check-ins only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use nightlatch_system_tests::fleet::engine::FleetLock;
use nightlatch_system_tests::fleet::usage::Kind;
use nightlatch_system_tests::fleet::{Fleet, FleetConfig, Scenario, TEST_START};

const DAY: u64 = 86_400;

#[test]
fn a_fleet_stores_each_lock_usage_summary_on_the_server() {
    // A fixed virtual date (2030-01-07T00:00:00Z, a Monday), not today's:
    // what an office door does depends on the weekday.
    let scenario = Scenario::new(&["nl-lock-v2"], TEST_START).unwrap();
    let config = FleetConfig {
        locks: 40,
        ..FleetConfig::default()
    };
    let interval = config.checkin_interval;
    let mut fleet = Fleet::new(&scenario, config).unwrap();
    let end = fleet.now + 2 * DAY + 3600;
    fleet.run_until(&scenario, end, None);
    let r = fleet.report(&Default::default());
    eprintln!(
        "{} check-ins, {} usage summaries sent",
        r.check_ins, r.usage_reports
    );
    assert_eq!(r.refusals, 0, "{r:#?}");

    let mut locks: Vec<(String, Kind, u64)> = Vec::new();
    fleet.for_each(|l: &FleetLock| locks.push((l.id.clone(), l.kind, l.stats.usage_reports)));
    let ids: Vec<&str> = locks.iter().map(|(id, _, _)| id.as_str()).collect();
    let server = &scenario.server;
    let stored = server
        .block_on(server.state().store.usage_summaries(&ids))
        .unwrap();
    assert_eq!(stored.len(), locks.len(), "every lock's summary is stored");

    let mut homes_quiet_at_night = 0;
    let mut homes = 0;
    for (id, kind, sent) in &locks {
        let u = &stored[id.as_str()];
        let s = &u.summary;
        // First check-in, then at least the daily refresh; far from every
        // check-in.
        assert!(*sent >= 2, "{id}: {sent}");
        // The latest is at most a day and a check-in interval old.
        let age = (end * 1000).saturating_sub(u.reported_at as u64);
        assert!(age <= (DAY + interval + interval / 8) * 1000, "{id}: {age}");
        // Three weeks of learned history.
        assert!(s.weeks_learned >= 2, "{id}: {s:?}");
        assert!(s.peak_sixteenths > 0, "{id}: {s:?}");
        assert!(s.quiet.iter().all(Option::is_some), "{id}: {s:?}");
        match kind {
            Kind::Office => {
                for day in [5, 6] {
                    assert!(
                        (0..24).all(|h| s.heat_at(day, h) == 0),
                        "{id}: offices are empty at weekends: {s:?}"
                    );
                }
                assert!((0..5).any(|d| (8..18).any(|h| s.heat_at(d, h) == 3)));
            }
            Kind::Home => {
                homes += 1;
                let q = s.quiet[2].unwrap();
                if q.start_minute() < 6 * 60 {
                    homes_quiet_at_night += 1;
                }
            }
            _ => {}
        }
    }
    assert!(
        homes_quiet_at_night * 10 >= homes * 8,
        "{homes_quiet_at_night} of {homes} homes quiet at night"
    );
    assert!(
        r.usage_reports * 3 <= r.check_ins,
        "{} summaries in {} check-ins",
        r.usage_reports,
        r.check_ins
    );

    // Over the admin API.
    let v = server
        .admin_ok("GET", &format!("/admin/v1/devices/{}/usage", ids[0]), None)
        .unwrap();
    assert_eq!(v["quiet_slots"].as_array().unwrap().len(), 7, "{v}");
    assert_eq!(v["heat"].as_array().unwrap().len(), 7, "{v}");
    assert!(v["reported_at"].is_string(), "{v}");
}
