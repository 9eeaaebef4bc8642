//! System tests: rollouts rehearsed on a virtual fleet — the real agent and
//! bootloader on simulated flash for every lock — against a real server on
//! loopback, in virtual time (CI-sized: a few hundred locks).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use nightlatch_system_tests::fleet::{
    Faults, Fleet, FleetConfig, Policy, Report, Scenario, TEST_START,
};
use nightlatch_system_tests::sim::device::Boot;

const DAY: u64 = 86_400;

/// A fixed virtual date (2030-01-07T00:00:00Z, a Monday), not today's.
fn t0() -> u64 {
    TEST_START
}

fn newest(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(m, v)| ((*m).to_owned(), (*v).to_owned()))
        .collect()
}

/// Run until every lock runs `newest` or `max_days` pass; the report.
fn run(
    fleet: &mut Fleet,
    scenario: &Scenario,
    newest: &BTreeMap<String, String>,
    max_days: u64,
) -> Report {
    let end = fleet.now + max_days * DAY;
    while fleet.now < end {
        let step = fleet.now + 6 * 3600;
        fleet.run_until(scenario, step, None);
        if fleet.report(newest).updated_fraction >= 1.0 {
            break;
        }
    }
    fleet.report(newest)
}

/// Ceremony (the server's dev keys) → sign → publish (with patches) →
/// rollout with a canary and three waves → nearly every lock updated in
/// its quiet hours, none bricked, no one at the door during an install.
#[test]
fn happy_path_canary_and_three_waves() {
    let scenario = Scenario::new(&["nl-lock-v2"], t0()).unwrap();
    let release = scenario.build("1.1.0", 2, 1, &[]).unwrap();
    scenario.publish(&release, Some(&scenario.factory)).unwrap();
    let mut fleet = Fleet::new(
        &scenario,
        FleetConfig {
            locks: 240,
            ..FleetConfig::default()
        },
    )
    .unwrap();
    let id = scenario
        .rollout(
            &release,
            "nl-lock-v2",
            &[0.02, 0.2, 0.6, 1.0],
            "8h",
            0.05,
            10,
        )
        .unwrap();
    let r = run(
        &mut fleet,
        &scenario,
        &newest(&[("nl-lock-v2", "1.1.0")]),
        6,
    );
    eprintln!("{r:#?}");
    assert!(r.updated_fraction >= 0.99, "{r:#?}");
    assert_eq!(r.bricked, 0);
    assert_eq!(r.entry_attempts_hit, 0, "{r:#?}");
    assert_eq!(r.reverts, 0);
    assert!(r.patched >= 230, "updates go through the patch: {r:#?}");
    let status = scenario.rollout_status(&id).unwrap().to_string();
    assert!(status.contains("confirmed"), "{status}");
}

/// A release whose self-test fails on one hardware model: the canary locks
/// of that model revert, the rollout pauses itself, no other lock of that
/// model is touched; the other model's rollout is unaffected; a fix-forward
/// release with a higher version then reaches everyone.
#[test]
fn bad_release_pauses_on_the_canary_and_is_fixed_forward() {
    let scenario = Scenario::new(&["nl-lock-v2", "nl-lock-v3"], t0()).unwrap();
    let release = scenario.build("1.1.0", 2, 1, &[]).unwrap();
    scenario.publish(&release, Some(&scenario.factory)).unwrap();
    let mut fleet = Fleet::new(
        &scenario,
        FleetConfig {
            locks: 200,
            ..FleetConfig::default()
        },
    )
    .unwrap();
    fleet.break_version("nl-lock-v3", "1.1.0");
    let good = scenario
        .rollout(&release, "nl-lock-v2", &[0.05, 0.3, 1.0], "12h", 0.2, 3)
        .unwrap();
    let bad = scenario
        .rollout(&release, "nl-lock-v3", &[0.1, 0.3, 1.0], "12h", 0.2, 3)
        .unwrap();
    let target = newest(&[("nl-lock-v2", "1.1.0"), ("nl-lock-v3", "1.1.0")]);
    let r = run(&mut fleet, &scenario, &target, 4);
    eprintln!("{r:#?}");
    let bad_status = scenario.rollout_status(&bad).unwrap();
    assert_eq!(bad_status["state"], "paused", "{bad_status}");
    let good_status = scenario.rollout_status(&good).unwrap();
    assert_ne!(good_status["state"], "paused", "{good_status}");
    let mut v3_installs = 0;
    let mut v3_locks = 0;
    let mut v2_updated = 0;
    // Downtime of the reverted installs (a swap in, the self-test, a swap
    // back) and of the confirmed ones.
    let (mut reverted_ns, mut confirmed_ns) = (Vec::new(), Vec::new());
    fleet.for_each(|l| {
        let downtimes = l.stats.install_log.iter().map(|i| i.downtime_ns);
        if l.model == "nl-lock-v3" {
            reverted_ns.extend(downtimes);
        } else {
            confirmed_ns.extend(downtimes);
        }
        if l.model == "nl-lock-v3" {
            v3_locks += 1;
            v3_installs += l.stats.installs;
            assert_eq!(l.running, "1.0.0", "{}: the bad release never stays", l.id);
            assert_eq!(l.stats.installs, l.stats.reverts, "{}", l.id);
        } else if l.running == "1.1.0" {
            v2_updated += 1;
        }
    });
    assert!(v3_installs >= 3, "the canary tried it: {v3_installs}");
    // A revert costs a second copy: more than 1.5 times a confirmed install.
    let shortest_revert = reverted_ns.iter().min().copied().unwrap_or(0);
    let longest_confirm = confirmed_ns.iter().max().copied().unwrap_or(u64::MAX);
    assert!(
        shortest_revert * 2 > longest_confirm * 3,
        "reverts {reverted_ns:?} ns, confirmed installs up to {longest_confirm} ns"
    );
    // Only the canary: no lock of a later wave was ever assigned it, and no
    // more installs than the canary has locks (its size is the stable
    // bucket's draw, about 10 % of the locks, not exactly 10 %; 10 % so
    // that it almost never holds fewer locks than the minimum sample of 3).
    let members = |w: usize| -> u64 {
        bad_status["waves"][w]["devices"]
            .as_object()
            .map(|d| d.values().filter_map(serde_json::Value::as_u64).sum())
            .unwrap_or(0)
    };
    let canary = members(0);
    assert!(
        v3_installs <= canary && canary <= (v3_locks as u64) / 5,
        "only the canary ({v3_installs} installs, canary of {canary}, {v3_locks} locks): {bad_status}"
    );
    assert_eq!(
        members(1) + members(2),
        0,
        "later waves stayed closed: {bad_status}"
    );
    assert_eq!(r.bricked, 0);
    assert!(
        v2_updated >= 99,
        "the other model is unaffected: {v2_updated}"
    );

    // Fix forward: 1.1.1 for nl-lock-v3.
    let fix = scenario.build("1.1.1", 3, 2, &[]).unwrap();
    scenario.publish(&fix, Some(&scenario.factory)).unwrap();
    scenario
        .server
        .admin_ok(
            "POST",
            &format!("/admin/v1/rollouts/{bad}/abort"),
            Some(serde_json::json!({"reason": "fixed forward in 1.1.1"})),
        )
        .unwrap();
    scenario
        .rollout(&fix, "nl-lock-v3", &[0.05, 1.0], "6h", 0.2, 3)
        .unwrap();
    let r = run(
        &mut fleet,
        &scenario,
        &newest(&[("nl-lock-v2", "1.1.0"), ("nl-lock-v3", "1.1.1")]),
        4,
    );
    eprintln!("{r:#?}");
    assert!(r.updated_fraction >= 0.99, "{r:#?}");
    assert_eq!(r.bricked, 0);
    assert_eq!(r.entry_attempts_hit, 0);
}

/// Locks whose 1.0.0 is another build than the published one: the patch's
/// base does not match, the agent falls back to the full image.
#[test]
fn patch_base_mismatch_falls_back_to_the_full_image() {
    let scenario = Scenario::new(&["nl-lock-v2"], t0()).unwrap();
    let release = scenario.build("1.1.0", 2, 1, &[]).unwrap();
    scenario.publish(&release, Some(&scenario.factory)).unwrap();
    let mut fleet = Fleet::new(
        &scenario,
        FleetConfig {
            locks: 150,
            alt_base: 0.2,
            ..FleetConfig::default()
        },
    )
    .unwrap();
    scenario
        .rollout(&release, "nl-lock-v2", &[1.0], "1h", 0.05, 10)
        .unwrap();
    let r = run(
        &mut fleet,
        &scenario,
        &newest(&[("nl-lock-v2", "1.1.0")]),
        4,
    );
    eprintln!("{r:#?}");
    assert!(r.patch_fallbacks >= 15, "{r:#?}");
    assert!(r.patched >= 100, "{r:#?}");
    assert!(r.updated_fraction >= 0.99, "{r:#?}");
    assert_eq!(r.bricked, 0);
}

/// Power cut during the swap on 5 % of locks (and dropped Wi-Fi, skewed
/// clocks): every lock recovers and updates.
#[test]
fn power_cut_during_the_swap_recovers() {
    let scenario = Scenario::new(&["nl-lock-v2"], t0()).unwrap();
    let release = scenario.build("1.1.0", 2, 1, &[]).unwrap();
    scenario.publish(&release, Some(&scenario.factory)).unwrap();
    let mut fleet = Fleet::new(
        &scenario,
        FleetConfig {
            locks: 200,
            faults: Faults {
                power_cut_swap: 0.05,
                wifi_drop: 0.05,
                clock_skew: 0.1,
                dead_battery: 0.0,
            },
            ..FleetConfig::default()
        },
    )
    .unwrap();
    scenario
        .rollout(&release, "nl-lock-v2", &[1.0], "1h", 0.05, 10)
        .unwrap();
    let r = run(
        &mut fleet,
        &scenario,
        &newest(&[("nl-lock-v2", "1.1.0")]),
        4,
    );
    eprintln!("{r:#?}");
    assert!(r.power_cuts_recovered >= 5, "{r:#?}");
    assert_eq!(r.bricked, 0);
    assert!(r.updated_fraction >= 0.99, "{r:#?}");
}

/// The two baselines in the same simulator: installing on arrival hits
/// people at the door; quiet hours does not. The installs' downtime is fixed
/// at 10 minutes (a slow swap install, the model before issue 16), so that
/// the policies differ: what a modelled sub-second A/B install changes is
/// `ab_installs_are_down_under_two_seconds_swap_over_twenty`'s subject.
#[test]
fn baselines_hit_people_quiet_hours_does_not() {
    let mut hits = BTreeMap::new();
    for policy in [Policy::OnArrival, Policy::FixedWindow, Policy::QuietHours] {
        let scenario = Scenario::new(&["nl-lock-v2"], t0()).unwrap();
        let release = scenario.build("1.1.0", 2, 1, &[]).unwrap();
        scenario.publish(&release, Some(&scenario.factory)).unwrap();
        let mut fleet = Fleet::new(
            &scenario,
            FleetConfig {
                locks: 200,
                policy,
                downtime_secs: 600,
                fixed_downtime_secs: Some(600),
                ..FleetConfig::default()
            },
        )
        .unwrap();
        scenario
            .rollout(&release, "nl-lock-v2", &[1.0], "1h", 0.05, 10)
            .unwrap();
        let r = run(
            &mut fleet,
            &scenario,
            &newest(&[("nl-lock-v2", "1.1.0")]),
            3,
        );
        eprintln!("{policy:?}: {r:#?}");
        fleet.for_each(|l| {
            for i in &l.stats.install_log {
                let (at, hit) = (i.at, i.hits);
                if hit > 0 {
                    let local = l.tz.to_local(at as i64).rem_euclid(86_400);
                    eprintln!(
                        "{policy:?} hit: {} {:?} {} install at local {:02}:{:02} ({hit} attempts)",
                        l.id,
                        l.kind,
                        l.tz_name,
                        local / 3600,
                        local / 60 % 60
                    );
                }
            }
        });
        hits.insert(format!("{policy:?}"), r.entry_attempts_hit);
    }
    assert_eq!(hits["QuietHours"], 0, "{hits:?}");
    assert!(hits["OnArrival"] > hits["QuietHours"], "{hits:?}");
}

/// Issue 16, sub-second installs: the same rollout on the reference board
/// in both boot modes, with power cut during 10 % of the install boots. Each
/// install's downtime is what it did (flash time at typical timings,
/// verification, reset and self-test): an A/B install (verify and map the
/// new slot) is down for well under 2 s, a swap install (about 900 sector
/// erases) for over 20 s. Every lock updates, none is bricked, and the cuts
/// land inside the install boot in both modes.
#[test]
fn ab_installs_are_down_under_two_seconds_swap_over_twenty() {
    let mut reports = Vec::new();
    for boot in [Boot::Ab, Boot::Swap] {
        let scenario = Scenario::new(&["nl-lock-v2"], t0()).unwrap();
        let release = scenario.build("1.1.0", 2, 1, &[]).unwrap();
        scenario.publish(&release, Some(&scenario.factory)).unwrap();
        let mut fleet = Fleet::new(
            &scenario,
            FleetConfig {
                locks: 60,
                layout: boot.reference(),
                faults: Faults {
                    power_cut_swap: 0.1,
                    ..Faults::default()
                },
                ..FleetConfig::default()
            },
        )
        .unwrap();
        scenario
            .rollout(&release, "nl-lock-v2", &[0.1, 1.0], "2h", 0.05, 10)
            .unwrap();
        let r = run(
            &mut fleet,
            &scenario,
            &newest(&[("nl-lock-v2", "1.1.0")]),
            4,
        );
        eprintln!(
            "{boot}: {} installs, downtime mean {:.3} s, p99 {:.3} s, max {:.3} s; {} power cuts recovered; {} hits ({:.1} per 10,000 installs); {:.1} % updated",
            r.installs,
            r.downtime_mean_s,
            r.downtime_p99_s,
            r.downtime_max_s,
            r.power_cuts_recovered,
            r.entry_attempts_hit,
            r.hits_per_10k_installs,
            r.updated_fraction * 100.0
        );
        assert_eq!(r.boot, boot);
        assert_eq!(r.bricked, 0, "{r:#?}");
        assert!(r.updated_fraction >= 0.99, "{r:#?}");
        assert!(r.installs >= 59, "{r:#?}");
        assert!(r.power_cuts_recovered >= 1, "cuts land in {boot}: {r:#?}");
        match boot {
            Boot::Ab => {
                assert!(r.downtime_max_s < 2.0, "{r:#?}");
                assert!(
                    r.downtime_mean_s > 0.75,
                    "reset and self-test at least: {r:#?}"
                );
            }
            Boot::Swap => assert!(r.downtime_mean_s > 20.0, "{r:#?}"),
        }
        reports.push(r);
    }
    let (ab, swap) = (&reports[0], &reports[1]);
    assert!(
        swap.downtime_mean_s > 10.0 * ab.downtime_mean_s,
        "swap {:.2} s, A/B {:.2} s",
        swap.downtime_mean_s,
        ab.downtime_mean_s
    );
}
