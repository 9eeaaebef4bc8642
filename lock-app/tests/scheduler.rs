//! `lock_app::scheduler`: table-driven decisions (DST spring-forward and
//! fall-back in the site's zone) and generated usage traces.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use lock_app::scheduler::tz::{DAY, days_from_civil};
use lock_app::scheduler::{
    BatteryPolicy, BlockReason, Decision, InstallCost, LocalDate, SiteConfig, Situation, TzRule,
    UsageProfile, Window, decide,
};
use lock_app::storage::{AuditEntry, AuditEvent};

const CET: &str = "CET-1CEST,M3.5.0,M10.5.0/3";

fn utc(y: i32, m: u8, d: u8, h: u64, min: u64) -> u64 {
    days_from_civil(y, m, d) as u64 * DAY as u64 + h * 3600 + min * 60
}

fn site(window: Window) -> SiteConfig {
    SiteConfig {
        tz: TzRule::parse(CET).unwrap(),
        window,
        blackout: vec![],
        idle_secs: 600,
        horizon_hours: 24,
    }
}

const COST: InstallCost = InstallCost {
    downtime_secs: 300,
    energy_mwh: 500,
};
const BATTERY: BatteryPolicy = BatteryPolicy {
    reserve_ops: 200,
    energy_per_op_mwh: 10,
};

fn idle_at(now: u64) -> Situation {
    Situation {
        now,
        door_closed: true,
        last_activity: Some(now - 3600),
        battery_mwh: 10_000,
        staged: true,
        deadline: None,
    }
}

/// A profile with `n` uses in each given local hour of Sunday 2026-03-29
/// (and its weekday in other weeks).
fn busy_sunday(hours: &[u64]) -> UsageProfile {
    let tz = TzRule::parse(CET).unwrap();
    let mut p = UsageProfile::new();
    for &h in hours {
        for _ in 0..5 {
            // Sunday 2026-03-22 (standard time, a week earlier).
            p.observe((utc(2026, 3, 22, h, 10) - 3600) as i64, &tz);
        }
    }
    p
}

#[test]
fn table() {
    let night = site(Window::NIGHT);
    let two_to_three = site(Window {
        start_min: 120,
        end_min: 180,
    });
    let mut blackout = site(Window::NIGHT);
    blackout.horizon_hours = 48;
    blackout.blackout.push(LocalDate {
        year: 2026,
        month: 6,
        day: 10,
    });
    let wraps = site(Window {
        start_min: 23 * 60,
        end_min: 120,
    });
    let empty = UsageProfile::new();
    let busy_one_am = busy_sunday(&[1]);

    struct Case<'a> {
        name: &'a str,
        site: &'a SiteConfig,
        profile: &'a UsageProfile,
        s: Situation,
        want: Decision,
    }
    let s = idle_at;
    let cases = [
        Case {
            name: "spring-forward: 02:00-03:00 local does not exist on 2026-03-29",
            site: &two_to_three,
            profile: &empty,
            s: s(utc(2026, 3, 28, 23, 0)),
            want: Decision::Blocked(BlockReason::NoSlot),
        },
        Case {
            name: "spring-forward: the middle of the night is 03:00 CEST = 01:00 UTC (the hour after the gap)",
            site: &night,
            profile: &empty,
            s: s(utc(2026, 3, 28, 22, 0)),
            want: Decision::WaitUntil(utc(2026, 3, 29, 1, 0)),
        },
        Case {
            name: "spring-forward: 01:00 busy, the quiet run starts at 02:00: 04:00 CEST = 02:00 UTC, three hours in",
            site: &night,
            profile: &busy_one_am,
            s: s(utc(2026, 3, 28, 22, 0)),
            want: Decision::WaitUntil(utc(2026, 3, 29, 2, 0)),
        },
        Case {
            name: "fall-back: 02:00-03:00 first happens at 00:00 UTC (CEST)",
            site: &two_to_three,
            profile: &empty,
            s: s(utc(2026, 10, 24, 23, 0)),
            want: Decision::WaitUntil(utc(2026, 10, 25, 0, 0)),
        },
        Case {
            name: "fall-back: in the first 02:30",
            site: &two_to_three,
            profile: &empty,
            s: s(utc(2026, 10, 25, 0, 30)),
            want: Decision::InstallNow,
        },
        Case {
            name: "fall-back: in the repeated 02:10 (CET)",
            site: &two_to_three,
            profile: &empty,
            s: s(utc(2026, 10, 25, 1, 10)),
            want: Decision::InstallNow,
        },
        Case {
            name: "fall-back: 03:00 CET is past the window; next night 02:00 CET",
            site: &two_to_three,
            profile: &empty,
            s: s(utc(2026, 10, 25, 2, 0)),
            want: Decision::WaitUntil(utc(2026, 10, 26, 1, 0)),
        },
        Case {
            name: "window end: an install that would run past 05:00 waits for the next 03:00",
            site: &night,
            profile: &empty,
            s: s(utc(2026, 6, 10, 2, 56)),
            want: Decision::WaitUntil(utc(2026, 6, 11, 1, 0)),
        },
        Case {
            name: "door open at 03:00 CEST",
            site: &night,
            profile: &empty,
            s: Situation {
                door_closed: false,
                ..s(utc(2026, 6, 10, 1, 0))
            },
            want: Decision::WaitUntil(utc(2026, 6, 10, 1, 10)),
        },
        Case {
            name: "door used 2 minutes ago",
            site: &night,
            profile: &empty,
            s: Situation {
                last_activity: Some(utc(2026, 6, 10, 0, 58)),
                ..s(utc(2026, 6, 10, 1, 0))
            },
            want: Decision::WaitUntil(utc(2026, 6, 10, 1, 8)),
        },
        Case {
            name: "idle exactly the idle time",
            site: &night,
            profile: &empty,
            s: Situation {
                last_activity: Some(utc(2026, 6, 10, 0, 50)),
                ..s(utc(2026, 6, 10, 1, 0))
            },
            want: Decision::InstallNow,
        },
        Case {
            name: "battery below install + reserve",
            site: &night,
            profile: &empty,
            s: Situation {
                battery_mwh: 2_499,
                ..s(utc(2026, 6, 10, 0, 0))
            },
            want: Decision::Blocked(BlockReason::Battery {
                needed_mwh: 2_500,
                have_mwh: 2_499,
            }),
        },
        Case {
            name: "nothing staged",
            site: &night,
            profile: &empty,
            s: Situation {
                staged: false,
                ..s(utc(2026, 6, 10, 0, 0))
            },
            want: Decision::Blocked(BlockReason::NotStaged),
        },
        Case {
            name: "blackout date: tonight is out, tomorrow night it is (03:00 CEST)",
            site: &blackout,
            profile: &empty,
            s: s(utc(2026, 6, 9, 22, 0)),
            want: Decision::WaitUntil(utc(2026, 6, 11, 1, 0)),
        },
        Case {
            name: "window wrapping midnight, nothing learned: 23:00 CEST waits for 01:00, the window's hour nearest 03:00",
            site: &wraps,
            profile: &empty,
            s: s(utc(2026, 6, 10, 21, 0)),
            want: Decision::WaitUntil(utc(2026, 6, 10, 23, 0)),
        },
        Case {
            name: "window wrapping midnight, 01:00 CEST: now",
            site: &wraps,
            profile: &empty,
            s: s(utc(2026, 6, 10, 23, 0)),
            want: Decision::InstallNow,
        },
        Case {
            name: "deadline before the next window: wait for it",
            site: &night,
            profile: &empty,
            s: Situation {
                deadline: Some(utc(2026, 6, 10, 14, 0)),
                ..s(utc(2026, 6, 10, 10, 0))
            },
            want: Decision::WaitUntil(utc(2026, 6, 10, 14, 0)),
        },
        Case {
            name: "deadline passed: the window widens to noon",
            site: &night,
            profile: &empty,
            s: Situation {
                deadline: Some(utc(2026, 6, 10, 10, 0)),
                ..s(utc(2026, 6, 10, 12, 0))
            },
            want: Decision::InstallNow,
        },
        Case {
            name: "deadline passed, door used a minute ago: still waits",
            site: &night,
            profile: &empty,
            s: Situation {
                deadline: Some(utc(2026, 6, 10, 10, 0)),
                last_activity: Some(utc(2026, 6, 10, 11, 59)),
                ..s(utc(2026, 6, 10, 12, 0))
            },
            want: Decision::WaitUntil(utc(2026, 6, 10, 12, 9)),
        },
        Case {
            name: "deadline passed, door open: still waits",
            site: &night,
            profile: &empty,
            s: Situation {
                deadline: Some(utc(2026, 6, 10, 10, 0)),
                door_closed: false,
                ..s(utc(2026, 6, 10, 12, 0))
            },
            want: Decision::WaitUntil(utc(2026, 6, 10, 12, 10)),
        },
    ];
    for c in cases {
        assert_eq!(
            decide(c.site, &COST, &BATTERY, c.profile, &c.s),
            c.want,
            "{}",
            c.name
        );
    }
}

// ---- generated traces ----

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Home,
    Office,
    Rental,
    NightShift,
}

/// Door uses (local seconds after midnight) on a day (0 = Monday).
fn uses(kind: Kind, weekday: u64, rng: &mut Rng) -> Vec<u64> {
    let h = 3600;
    let mut v = vec![];
    let some = |v: &mut Vec<u64>, n: (u64, u64), from: u64, to: u64, rng: &mut Rng| {
        for _ in 0..rng.range(n.0, n.1) {
            v.push(rng.range(from, to));
        }
    };
    let weekend = weekday >= 5;
    match kind {
        Kind::Home => {
            if weekend {
                some(&mut v, (6, 12), 8 * h, 23 * h, rng);
            } else {
                some(&mut v, (2, 5), 6 * h + 1800, 8 * h + 1800, rng);
                some(&mut v, (3, 6), 9 * h, 17 * h, rng);
                some(&mut v, (4, 8), 17 * h, 23 * h, rng);
            }
        }
        Kind::Office => {
            if !weekend {
                some(&mut v, (20, 40), 8 * h, 18 * h, rng);
            }
        }
        Kind::Rental => some(&mut v, (0, 10), 0, 24 * h, rng),
        Kind::NightShift => {
            some(&mut v, (1, 3), 20 * h, 22 * h, rng);
            some(&mut v, (1, 3), 5 * h + 1800, 7 * h + 1800, rng);
            some(&mut v, (0, 3), 13 * h, 18 * h, rng);
        }
    }
    v.sort_unstable();
    v
}

/// (open, close) intervals in UTC, from local days starting at `start_day`.
fn trace(kind: Kind, tz: &TzRule, start_day: i64, days: i64, rng: &mut Rng) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = vec![];
    for d in start_day..start_day + days {
        let weekday = (d + 3).rem_euclid(7) as u64;
        for local in uses(kind, weekday, rng) {
            let local = d * DAY + local as i64;
            let open = local - i64::from(tz.offset_at(local - i64::from(tz.std_offset)));
            let open = open as u64;
            let close = open + rng.range(5, 180);
            match out.last_mut() {
                Some(last) if open <= last.1 => last.1 = last.1.max(close),
                _ => out.push((open, close)),
            }
        }
    }
    out
}

fn learn(profile: &mut UsageProfile, tz: &TzRule, events: &[(u64, u64)]) {
    for (i, &(open, close)) in events.iter().enumerate() {
        for e in [
            AuditEntry {
                seq: 2 * i as u32,
                time: open,
                event: AuditEvent::DoorOpened,
                dropped_before: 0,
            },
            AuditEntry {
                seq: 2 * i as u32 + 1,
                time: close,
                event: AuditEvent::DoorClosed,
                dropped_before: 0,
            },
        ] {
            profile.observe_entry(&e, tz);
        }
    }
}

/// Door state at `now`: closed?, last activity.
fn door_at(events: &[(u64, u64)], now: u64) -> (bool, Option<u64>) {
    let i = events.partition_point(|&(open, _)| open <= now);
    match i.checked_sub(1).map(|j| events[j]) {
        None => (true, None),
        Some((_, close)) if now < close => (false, Some(now)),
        Some((_, close)) => (true, Some(close)),
    }
}

/// Run one trace: learn four weeks, then decide every two minutes (and at
/// every door event's edges) for a week. Returns the install starts.
fn run_trace(kind: Kind, seed: u64, window: Window, deadline_passed: bool) -> Vec<u64> {
    let tz = TzRule::parse(CET).unwrap();
    let mut rng = Rng(seed);
    // Four weeks of learning then one week of decisions, across the
    // 2026-03-29 spring-forward.
    let start_day = days_from_civil(2026, 3, 2);
    let events = trace(kind, &tz, start_day, 35, &mut rng);
    let decide_from = ((start_day + 28) * DAY) as u64;
    let (learned, live): (Vec<_>, Vec<_>) = events.iter().partition(|e| e.1 < decide_from);
    let mut profile = UsageProfile::new();
    learn(&mut profile, &tz, &learned);
    let site = SiteConfig {
        tz,
        window,
        blackout: vec![],
        idle_secs: 900,
        horizon_hours: 24,
    };
    let mut times: Vec<u64> = (0..7 * 720).map(|i| decide_from + i * 120).collect();
    for &(open, close) in &live {
        times.extend([open, close, close + 899, close + 900, close + 901]);
    }
    times.sort_unstable();
    let mut installs = vec![];
    let mut staged_at = decide_from;
    for now in times {
        if now < staged_at {
            continue;
        }
        let (closed, last) = door_at(&events, now);
        let s = Situation {
            now,
            door_closed: closed,
            last_activity: last,
            battery_mwh: 10_000,
            staged: true,
            deadline: deadline_passed.then_some(decide_from),
        };
        if decide(&site, &COST, &BATTERY, &profile, &s) == Decision::InstallNow {
            assert!(
                closed,
                "{kind:?}/{seed}: install at {now} with the door open"
            );
            if let Some(t) = last {
                assert!(
                    now >= t + 900,
                    "{kind:?}/{seed}: install at {now}, door used at {t}"
                );
            }
            // No door event in the idle time before the install.
            assert!(
                !events.iter().any(|&(o, c)| o <= now && c + 900 > now),
                "{kind:?}/{seed}: install at {now} within the idle time"
            );
            installs.push(now);
            // The next release is staged the next day.
            staged_at = now + DAY as u64;
        }
    }
    installs
}

#[test]
fn no_install_starts_while_the_door_is_in_use_or_within_the_idle_time() {
    let mut total = 0;
    for kind in [Kind::Home, Kind::Office, Kind::Rental, Kind::NightShift] {
        for seed in 1..=4u64 {
            for (window, deadline) in [
                (Window::NIGHT, false),
                (Window::ALL_DAY, false),
                (Window::NIGHT, true),
            ] {
                total += run_trace(kind, seed * 7919, window, deadline).len();
            }
        }
    }
    // The traces did install (the property is not vacuous).
    assert!(total > 100, "only {total} installs");
}

#[test]
fn a_usual_home_picks_a_night_slot_even_with_an_all_day_window() {
    let tz = TzRule::parse(CET).unwrap();
    for seed in 1..=5u64 {
        let installs = run_trace(Kind::Home, seed * 104_729, Window::ALL_DAY, false);
        assert!(installs.len() >= 5, "seed {seed}: {installs:?}");
        for t in installs {
            let hour = tz.local_date_time(t as i64).secs_of_day / 3600;
            assert!(hour < 6, "seed {seed}: installed at local hour {hour}");
        }
    }
}

// ---- the night prior: the middle of the night, the middle of a quiet run ----

/// Noon CEST (10:00 UTC) on Monday 2026-06-01, staged, idle.
fn noon() -> Situation {
    idle_at(utc(2026, 6, 1, 10, 0))
}

fn all_day() -> SiteConfig {
    SiteConfig {
        horizon_hours: 36,
        ..site(Window::ALL_DAY)
    }
}

/// Four weeks (CEST) of a door used every day at 06:20, 07:10, 07:40,
/// 18:00, 19:30, 21:15 and 22:40 local: quiet 23:00–06:00. `late`: local
/// (day, hour, minute) of rare late returns, day 0 = Monday 2026-05-04.
fn quiet_night(late: &[(u64, u64, u64)]) -> UsageProfile {
    let tz = TzRule::parse(CET).unwrap();
    let mut p = UsageProfile::new();
    let mut uses: Vec<u64> = vec![];
    let cest = |day: u64, h: u64, m: u64| utc(2026, 5, 4, h, m) + day * DAY as u64 - 2 * 3600;
    for day in 0..28 {
        for (h, m) in [
            (6, 20),
            (7, 10),
            (7, 40),
            (18, 0),
            (19, 30),
            (21, 15),
            (22, 40),
        ] {
            uses.push(cest(day, h, m));
        }
    }
    uses.extend(late.iter().map(|&(d, h, m)| cest(d, h, m)));
    uses.sort_unstable();
    for t in uses {
        p.observe(t as i64, &tz);
    }
    p
}

#[test]
fn an_unlearned_lock_waits_for_the_middle_of_the_night() {
    let empty = UsageProfile::new();
    // All day, or the 01:00-05:00 window: 03:00 CEST = 01:00 UTC (it used
    // to be 01:00, the first hour of the prior's night).
    for window in [Window::ALL_DAY, Window::NIGHT] {
        let site = SiteConfig {
            window,
            ..all_day()
        };
        assert_eq!(
            decide(&site, &COST, &BATTERY, &empty, &noon()),
            Decision::WaitUntil(utc(2026, 6, 2, 1, 0)),
            "{window:?}"
        );
    }
    // A window that ends before the middle of the night: its last hour,
    // the one nearest 03:00 (01:00, 00:00 CEST); one that begins after
    // it: its first (04:00 CEST).
    for (start_min, end_min, want) in [
        (23 * 60, 120, utc(2026, 6, 1, 23, 0)),
        (22 * 60, 60, utc(2026, 6, 1, 22, 0)),
        (4 * 60, 8 * 60, utc(2026, 6, 2, 2, 0)),
    ] {
        let site = SiteConfig {
            window: Window { start_min, end_min },
            ..all_day()
        };
        assert_eq!(
            decide(&site, &COST, &BATTERY, &empty, &noon()),
            Decision::WaitUntil(want),
            "{start_min}-{end_min}"
        );
    }
}

#[test]
fn a_learned_quiet_night_is_entered_in_its_middle_not_at_its_edge() {
    // Quiet 23:00-06:00 with nothing else learned; with one late return
    // learned at 00:50 (the run is then 01:00-06:00); with one at 01:10
    // (the run is 02:00-06:00, after a one-hour run 23:00-01:00). Before,
    // the earliest quiet start won: 01:00, 01:00 and 02:00, the edge of
    // the run where the next rare late return falls. Now: 03:00 CEST.
    for late in [vec![], vec![(10, 0, 50)], vec![(17, 1, 10)]] {
        let p = quiet_night(&late);
        for window in [Window::ALL_DAY, Window::NIGHT] {
            let site = SiteConfig {
                window,
                ..all_day()
            };
            assert_eq!(
                decide(&site, &COST, &BATTERY, &p, &noon()),
                Decision::WaitUntil(utc(2026, 6, 2, 1, 0)),
                "late returns {late:?}, {window:?}"
            );
        }
    }
    // A late return learned at 02:30 too: the run is 03:00-06:00, and its
    // middle hour, 04:00 CEST, wins.
    let p = quiet_night(&[(10, 0, 50), (20, 2, 30)]);
    assert_eq!(
        decide(&all_day(), &COST, &BATTERY, &p, &noon()),
        Decision::WaitUntil(utc(2026, 6, 2, 2, 0))
    );
}

#[test]
fn the_night_prior_is_the_documented_rule() {
    use lock_app::scheduler::{EDGE_HOURS, EDGE_STEP, NIGHT_STEP, NightPrior};
    assert_eq!((NIGHT_STEP, EDGE_STEP, EDGE_HOURS), (8, 16, 3));
    // Nothing learned: every hour quiet, 8 per hour from 03:00.
    let none = NightPrior::of(&UsageProfile::new());
    assert_eq!(none, NightPrior::UNLEARNED);
    assert_eq!(none.quiet_hours(), (1 << 24) - 1);
    let by_hour: Vec<u64> = (0..24).map(|h| none.hour(h)).collect();
    assert_eq!(
        by_hour,
        [
            24, 16, 8, 0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 88, 80, 72, 64, 56, 48,
            40, 32
        ]
    );
    // Hours of the week read as hours of the day; a slot touching two
    // hours pays for both.
    assert_eq!(none.hour(24 * 6 + 3), 0);
    assert_eq!(none.slot(27, 27), 0);
    assert_eq!(none.slot(27, 28), 8);
    // Quiet 23:00-06:00: the numbers of the documentation.
    let night = NightPrior::of(&quiet_night(&[]));
    let quiet: Vec<usize> = (0..24).filter(|&h| night.is_quiet(h)).collect();
    assert_eq!(
        quiet,
        [
            0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 20, 23
        ]
    );
    let run: Vec<(u32, u64)> = [23, 0, 1, 2, 3, 4, 5]
        .iter()
        .map(|&h| (night.depth(h), night.hour(h)))
        .collect();
    assert_eq!(
        run,
        [(1, 64), (2, 40), (3, 16), (3, 8), (3, 0), (2, 24), (1, 48)]
    );
    // Not quiet: the whole edge penalty.
    assert_eq!((night.depth(22), night.hour(22)), (0, 40 + 48));
    // A late return learned at 01:10: the run 02:00-06:00 starts at 03:00.
    let late = NightPrior::of(&quiet_night(&[(17, 1, 10)]));
    let run: Vec<u64> = [2, 3, 4, 5].iter().map(|&h| late.hour(h)).collect();
    assert_eq!(run, [40, 16, 24, 48]);
}
