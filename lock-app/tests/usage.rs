//! The usage summary (`lock_app::scheduler::summary`): the codec's round
//! trip and its refusal of hostile bytes and text, the quiet slots against
//! the scheduler's own decisions, and when the agent attaches the summary
//! to a check-in (first time, material change, a day later; never on an
//! idle check-in; a refused summary is not retried at once; old agent
//! state files still open).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bootloader::TrustAnchors;
use bootloader::anchors::key_id;
use bootloader::boot::{BootConfig, Bootloader, SharedFlash};
use bootloader::envelope::{HardwareModel, Header, Prefix, SignatureEntry, Version};
use bootloader::layout::SMALL;
use bootloader::sim::{Erased, SimFlash};
use ed25519_dalek::{Signer, SigningKey};
use embassy_sync::blocking_mutex::Mutex;
use lock_app::agent::{
    self, Agent, AgentConfig, AgentError, Hardware, Net, NetError, Repo, SelfTestFailure, State,
    USAGE_REFRESH_SECS,
};
use lock_app::scheduler::summary::{
    FORMAT, LEN, MAX_TEXT_LEN, QuietSlot, SummaryError, TEXT_LEN, UsageSummary, heat_level,
    quiet_slots,
};
use lock_app::scheduler::tz::{DAY, days_from_civil};
use lock_app::scheduler::{
    BatteryPolicy, Decision, InstallCost, NightPrior, SiteConfig, Situation, TzRule, UsageProfile,
    Window, decide,
};
use lock_app::tuf::{FetchError, MemoryStore, MetadataStore};
use sha2::{Digest, Sha256};

/// Monday 2026-01-05 00:00 UTC.
fn monday() -> u64 {
    days_from_civil(2026, 1, 5) as u64 * DAY as u64
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Three weeks of a home (UTC): out 07:00–08:00, back 17:00–22:00, one
/// late return at 00:30 on the first Saturday.
fn home() -> UsageProfile {
    let tz = TzRule::UTC;
    let mut p = UsageProfile::new();
    for week in 0..3 {
        for day in 0..7u64 {
            let d = monday() + (week * 7 + day) * DAY as u64;
            for (h, m) in [(7, 10), (7, 40), (17, 30), (19, 5), (21, 50)] {
                p.observe((d + h * 3600 + m * 60) as i64, &tz);
            }
            if week == 0 && day == 5 {
                p.observe((d + 1800) as i64, &tz);
            }
        }
    }
    p
}

/// A random profile: `n` door uses at random hours over four weeks.
fn random_profile(rng: &mut Rng, n: usize) -> UsageProfile {
    let tz = TzRule::UTC;
    let mut times: Vec<u64> = (0..n)
        .map(|_| monday() + rng.below(28 * DAY as u64))
        .collect();
    times.sort_unstable();
    let mut p = UsageProfile::new();
    for t in times {
        p.observe(t as i64, &tz);
    }
    p
}

fn summary(p: &UsageProfile, now: u64) -> UsageSummary {
    UsageSummary::from_profile(p, &TzRule::UTC, Window::ALL_DAY, 60, now)
}

#[test]
fn round_trip_of_real_and_random_profiles() {
    let now = monday() + 22 * DAY as u64;
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut profiles = vec![UsageProfile::new(), home()];
    for n in [1, 3, 40, 500, 5000] {
        profiles.push(random_profile(&mut rng, n));
    }
    for p in &profiles {
        let s = summary(p, now);
        let bytes = s.to_bytes();
        assert_eq!(bytes.len(), LEN);
        assert_eq!(bytes[0], FORMAT);
        assert_eq!(UsageSummary::from_bytes(&bytes), Ok(s.clone()));
        let text = s.to_text();
        assert_eq!(text.len(), TEXT_LEN);
        assert!(
            text.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(UsageSummary::from_text(&text), Ok(s));
    }
    // Hand-made summaries with every field at its edges.
    for (peak, level) in [(0u16, 0u8), (1, 3), (u16::MAX, 3)] {
        let mut heat = [level; 168];
        if level == 3 {
            heat[5] = 1;
            heat[6] = 2;
        }
        let s = UsageSummary {
            epoch_week: u16::MAX,
            weeks_learned: 255,
            peak_sixteenths: peak,
            quiet: [
                None,
                Some(QuietSlot {
                    start: 0,
                    quarters: 1,
                }),
                Some(QuietSlot {
                    start: 95,
                    quarters: 96,
                }),
                None,
                None,
                None,
                None,
            ],
            heat,
        };
        assert_eq!(UsageSummary::from_text(&s.to_text()), Ok(s));
    }
}

#[test]
fn the_approximate_profile_reads_back_as_the_summary() {
    let now = monday() + 22 * DAY as u64;
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut profiles = vec![UsageProfile::new(), home()];
    for n in [1, 30, 300, 3000] {
        profiles.push(random_profile(&mut rng, n));
    }
    for p in &profiles {
        let s = summary(p, now);
        let a = s.approximate_profile();
        let back = summary(&a, now);
        assert_eq!(back.heat, s.heat);
        assert_eq!(back.peak_sixteenths, s.peak_sixteenths);
        assert_eq!(back.epoch_week, s.epoch_week);
        // The same quiet hours, so the same night prior, as the profile
        // the summary was made from (decayed to the summary's week).
        let mut decayed = p.clone();
        decayed.decay_to(now as i64, &TzRule::UTC);
        assert_eq!(NightPrior::of(&a), NightPrior::of(&decayed));
    }
    // On a clear routine, the scheduler on it picks the lock's own hours.
    let s = summary(&home(), now);
    let again = quiet_slots(&s.approximate_profile(), Window::ALL_DAY, 60);
    for (mine, theirs) in s.quiet.iter().zip(again) {
        assert_eq!(mine.unwrap().start / 4, theirs.unwrap().start / 4);
    }
}

#[test]
fn the_empty_profile_reports_the_scheduler_night_and_no_heat() {
    let s = summary(&UsageProfile::new(), monday());
    assert_eq!(s.peak_sixteenths, 0);
    assert_eq!(s.weeks_learned, 0);
    assert!(s.heat.iter().all(|&h| h == 0));
    for q in s.quiet {
        // 03:00 for an hour: the middle of the prior's night (the prior
        // grows from 04:00 on).
        assert_eq!(
            q,
            Some(QuietSlot {
                start: 12,
                quarters: 4
            })
        );
    }
    assert_eq!(
        s.epoch_week as i64,
        (monday() as i64 / DAY - 4).div_euclid(7)
    );
}

#[test]
fn heat_follows_the_door_and_quiet_slots_avoid_it() {
    let now = monday() + 21 * DAY as u64;
    let s = summary(&home(), now);
    // Learning began three weeks before `now`'s week.
    assert_eq!(s.weeks_learned, 3);
    // Five uses in each busy hour of three weeks, decayed: a few entries.
    assert!(
        (1.0..6.0).contains(&s.peak_entries()),
        "{}",
        s.peak_entries()
    );
    for day in 0..7 {
        for hour in [7, 17, 19, 21] {
            assert!(s.heat_at(day, hour) >= 2, "day {day} hour {hour}");
        }
        for hour in [2, 3, 4, 10, 13] {
            assert_eq!(s.heat_at(day, hour), 0, "day {day} hour {hour}");
        }
        let q = s.quiet[day].unwrap();
        // The night, never the busy hours or the Saturday late return.
        assert!((60..=240).contains(&q.start_minute()), "{day}: {q:?}");
        assert!(q.minutes() >= 60, "{day}: {q:?}");
        assert!(q.start_minute() + q.minutes() <= 300, "{day}: {q:?}");
    }
    // Saturday 00:30 once: not never (Friday's is).
    assert!(s.heat_at(5, 0) >= 1);
    assert_eq!(s.heat_at(4, 0), 0);
    assert_eq!(s.heat_at(9, 0), 0);
    // Levels: log scale against the peak.
    assert_eq!(heat_level(0, 100), 0);
    assert_eq!(heat_level(100, 0), 0);
    assert_eq!(heat_level(1, 129), 0);
    assert_eq!(heat_level(1, 128), 1);
    assert_eq!(heat_level(1, 17), 1);
    assert_eq!(heat_level(1, 16), 2);
    assert_eq!(heat_level(1, 5), 2);
    assert_eq!(heat_level(1, 4), 3);
    assert_eq!(heat_level(u32::MAX, u32::MAX), 3);
}

#[test]
fn a_night_shift_door_gets_its_quiet_hours_in_the_day() {
    // Busy every night 22:00–07:00 (the last use at 06:10), quiet by day.
    let tz = TzRule::UTC;
    let mut p = UsageProfile::new();
    for day in 0..21u64 {
        let d = monday() + day * DAY as u64;
        for h in [22u64, 23, 24, 25, 26, 27, 28, 29, 30] {
            for _ in 0..3 {
                p.observe((d + h * 3600 + 600) as i64, &tz);
            }
        }
    }
    let s = summary(&p, monday() + 21 * DAY as u64);
    for (day, q) in s.quiet.iter().enumerate() {
        let q = q.unwrap();
        // Quiet 07:00-22:00: not its first hours (07:00 still borders the
        // busy 06:00, 08:00 is the run's second hour) but 09:00, the first
        // hour three deep in the run, the one nearest the night; for the
        // rest of that hour (10:00 is further from 03:00).
        assert_eq!(q.start_minute(), 9 * 60, "{day}: {q:?}");
        assert_eq!(q.minutes(), 60, "{day}: {q:?}");
    }
}

#[test]
fn quiet_slots_are_where_the_scheduler_installs() {
    // Each day at noon, the scheduler (36 h horizon, whole day) picks the
    // next night's start: the start the summary reports for that weekday.
    let p = home();
    let site = SiteConfig {
        tz: TzRule::UTC,
        window: Window::ALL_DAY,
        blackout: vec![],
        idle_secs: 600,
        horizon_hours: 36,
    };
    let cost = InstallCost {
        downtime_secs: 60,
        energy_mwh: 100,
    };
    let battery = BatteryPolicy {
        reserve_ops: 0,
        energy_per_op_mwh: 0,
    };
    let week = monday() + 21 * DAY as u64;
    let s = summary(&p, week);
    for day in 0..7u64 {
        let noon = week + day * DAY as u64 + 12 * 3600;
        let d = decide(
            &site,
            &cost,
            &battery,
            &p,
            &Situation {
                now: noon,
                door_closed: true,
                last_activity: None,
                battery_mwh: 10_000,
                staged: true,
                deadline: None,
            },
        );
        let next = ((day + 1) % 7) as usize;
        let q = s.quiet[next].unwrap();
        let at = week + (day + 1) * DAY as u64 + u64::from(q.start_minute()) * 60;
        assert_eq!(d, Decision::WaitUntil(at), "day {day}: {q:?}");
    }
    // A window limits the starts (and the slot's length).
    let w = Window {
        start_min: 150,
        end_min: 200,
    };
    for q in quiet_slots(&p, w, 60) {
        let q = q.unwrap();
        assert!((150..200).contains(&q.start_minute()), "{q:?}");
        assert!(q.start_minute() + q.minutes() <= 210, "{q:?}");
    }
    // A window no start fits: no slot.
    let none = Window {
        start_min: 61,
        end_min: 62,
    };
    assert_eq!(quiet_slots(&p, none, 60), [None; 7]);
}

fn valid() -> Vec<u8> {
    summary(&home(), monday() + 21 * DAY as u64)
        .to_bytes()
        .to_vec()
}

#[test]
fn malformed_bytes_are_refused_with_their_reason() {
    let good = valid();
    assert_eq!(UsageSummary::from_bytes(&[]), Err(SummaryError::Length(0)));
    assert_eq!(
        UsageSummary::from_bytes(&good[..LEN - 1]),
        Err(SummaryError::Length(LEN - 1))
    );
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        UsageSummary::from_bytes(&long),
        Err(SummaryError::Length(LEN + 1))
    );
    for v in [0u8, 2, 0xff] {
        let mut b = good.clone();
        b[0] = v;
        assert_eq!(UsageSummary::from_bytes(&b), Err(SummaryError::Format(v)));
    }
    // Quiet slots: start 96, length 0, length 97, FF with a length.
    for (day, start, len) in [(0u8, 96u8, 4u8), (3, 4, 0), (6, 4, 97), (2, 0xff, 4)] {
        let mut b = good.clone();
        b[6 + 2 * day as usize] = start;
        b[7 + 2 * day as usize] = len;
        assert_eq!(UsageSummary::from_bytes(&b), Err(SummaryError::Slot(day)));
    }
    // Heat without a peak, a peak without a busy hour.
    let mut b = good.clone();
    b[4] = 0;
    b[5] = 0;
    assert_eq!(UsageSummary::from_bytes(&b), Err(SummaryError::Heat));
    let mut b = good.clone();
    for x in &mut b[20..] {
        *x &= 0b1010_1010; // every level 3 becomes 2, 1 becomes 0
    }
    assert_eq!(UsageSummary::from_bytes(&b), Err(SummaryError::Heat));
}

#[test]
fn malformed_text_is_refused_before_it_costs_anything() {
    let good = UsageSummary::from_bytes(&valid()).unwrap().to_text();
    let long = "A".repeat(MAX_TEXT_LEN + 1);
    assert_eq!(
        UsageSummary::from_text(&long),
        Err(SummaryError::TooLong(MAX_TEXT_LEN + 1))
    );
    assert_eq!(
        UsageSummary::from_text(&"A".repeat(1 << 20)),
        Err(SummaryError::TooLong(1 << 20))
    );
    for bad in [
        format!("{good}="),
        good.replace('-', "+").replace('_', "/") + "+",
        format!("{} ", &good[..TEXT_LEN - 1]),
        format!("{}é", &good[..TEXT_LEN - 2]),
        "A".to_string(),
    ] {
        assert_eq!(
            UsageSummary::from_text(&bad),
            Err(SummaryError::NotBase64),
            "{bad}"
        );
    }
    assert_eq!(UsageSummary::from_text(""), Err(SummaryError::Length(0)));
    assert_eq!(
        UsageSummary::from_text(&good[..TEXT_LEN - 3]),
        Err(SummaryError::Length(LEN - 2))
    );
    // Each error has a message that says what is wrong.
    for e in [
        SummaryError::TooLong(200),
        SummaryError::NotBase64,
        SummaryError::Length(3),
        SummaryError::Format(2),
        SummaryError::Slot(6),
        SummaryError::Heat,
    ] {
        assert!(e.to_string().starts_with("usage summary"), "{e}");
    }
    assert!(SummaryError::Slot(6).to_string().contains("Sun"));
}

#[test]
fn random_and_mutated_input_never_panics_and_what_decodes_round_trips() {
    let mut rng = Rng(0xdead_beef_f00d_0042);
    let good = valid();
    let mut accepted = 0;
    let mut check = |bytes: &[u8]| {
        if let Ok(s) = UsageSummary::from_bytes(bytes) {
            assert_eq!(s.to_bytes().as_slice(), bytes);
            accepted += 1;
        }
    };
    for _ in 0..20_000 {
        // One to three bytes of a valid summary changed.
        let mut b = good.clone();
        for _ in 0..=rng.below(3) {
            let i = rng.below(LEN as u64) as usize;
            b[i] = rng.next() as u8;
        }
        check(&b);
        // Random bytes of random length (format byte right, half the time).
        let n = rng.below(2 * LEN as u64) as usize;
        let mut r: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
        if rng.below(2) == 0
            && let Some(f) = r.first_mut()
        {
            *f = FORMAT;
        }
        check(&r);
        // Random text over the base64url alphabet and a few others.
        const ALPHABET: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ ";
        let n = rng.below(MAX_TEXT_LEN as u64 + 8) as usize;
        let t: String = (0..n)
            .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize] as char)
            .collect();
        if let Ok(s) = UsageSummary::from_text(&t) {
            assert_eq!(s.to_text(), t);
        }
    }
    assert!(accepted > 1000, "{accepted}");
}

#[test]
fn the_material_digest_is_the_quiet_slots_at_hour_granularity() {
    let s = UsageSummary::from_bytes(&valid()).unwrap();
    let d = s.material_digest();
    let mut t = s.clone();
    t.epoch_week += 1;
    t.weeks_learned += 1;
    t.peak_sixteenths += 3;
    // The heat map travels with the daily summary: an hour crossing a
    // level boundary is not worth a summary of its own.
    t.heat[100] ^= 1;
    t.heat[7] = 0;
    assert_eq!(t.material_digest(), d);
    // A quarter-hour later in the same hour, a few minutes longer: same.
    let mut t = s.clone();
    let q = t.quiet[2].as_mut().unwrap();
    if q.start % 4 < 3 {
        q.start += 1;
    } else {
        q.start -= 1;
    }
    assert_eq!(t.material_digest(), d);
    // Another hour, an hour longer, a level: material.
    let mut t = s.clone();
    t.quiet[2].as_mut().unwrap().start = (s.quiet[2].unwrap().start + 8) % 96;
    assert_ne!(t.material_digest(), d);
    let mut t = s.clone();
    t.quiet[4].as_mut().unwrap().quarters += 4;
    assert_ne!(t.material_digest(), d);
    let mut t = s;
    t.quiet[0] = None;
    assert_ne!(t.material_digest(), d);
}

// --- The agent: when the summary rides along ---------------------------

type Flash = SimFlash<4, 4096>;

const MODEL: &str = "nl-test";

/// The radio: records each check-in body and answers as told.
#[derive(Default)]
struct Radio {
    bodies: Vec<Vec<u8>>,
    answer: Option<NetError>,
}

/// The lock's handle on the shared [`Radio`].
struct Link(Rc<RefCell<Radio>>);

impl Net for Link {
    fn check_in(&mut self, _: &str, body: &[u8], _: &str, _: u64) -> Result<Vec<u8>, NetError> {
        let mut r = self.0.borrow_mut();
        r.bodies.push(body.to_vec());
        match r.answer {
            // Not a check-in answer: the agent stops after the server had it.
            None => Ok(b"{}".to_vec()),
            Some(e) => Err(e),
        }
    }
    fn fetch_metadata(&mut self, _: Repo, _: &str, _: u64) -> Result<Vec<u8>, FetchError> {
        Err(FetchError::NotFound)
    }
    fn fetch_target(&mut self, _: &str, _: u64, _: u32) -> Result<Vec<u8>, FetchError> {
        Err(FetchError::NotFound)
    }
}

struct Board(Rc<Cell<u64>>);

impl Hardware for Board {
    fn now(&self) -> u64 {
        self.0.get()
    }
    fn set_time(&mut self, t: u64) {
        self.0.set(t);
    }
    fn random(&mut self, buf: &mut [u8]) {
        buf.fill(7);
    }
    fn battery_percent(&self) -> u8 {
        90
    }
    fn self_test(&mut self) -> Result<(), SelfTestFailure> {
        Ok(())
    }
}

struct Lock {
    flash: SharedFlash<Flash>,
    config: BootConfig,
    files: MemoryStore,
    radio: Rc<RefCell<Radio>>,
    clock: Rc<Cell<u64>>,
}

impl Lock {
    fn new() -> Self {
        let key = SigningKey::from_bytes(&[9; 32]);
        let payload = vec![0x5a; 4000];
        let h = Header {
            model: HardwareModel::new(MODEL).unwrap(),
            version: Version::new(1, 0, 0),
            security_counter: 1,
            payload_len: payload.len() as u32,
            payload_sha256: Sha256::digest(&payload).into(),
        };
        let hb = h.encode();
        let sig = SignatureEntry {
            key_id: key_id(&key.verifying_key().to_bytes()),
            signature: key.sign(&hb).to_bytes(),
        };
        let mut image = Prefix::encode(&h, &[sig]).unwrap().to_vec();
        image.extend_from_slice(&payload);
        let mut sim = Flash::new(SMALL.flash_size as usize, Erased::Ones);
        sim.program_raw(SMALL.active.offset as usize, &image);
        let config = BootConfig {
            model: HardwareModel::new(MODEL).unwrap(),
            genesis: TrustAnchors::new(1, 1, &[key.verifying_key().to_bytes()]).unwrap(),
            layout: SMALL,
        };
        let flash = Mutex::new(RefCell::new(sim));
        let mut buf = vec![0u8; 4096];
        Bootloader::new(&flash, config)
            .unwrap()
            .boot(&mut buf)
            .unwrap();
        let mut files = MemoryStore::default();
        files.store(agent::KEY_FILE, &[0x44; 32]).unwrap();
        files
            .store(
                agent::STATE_FILE,
                &serde_json::to_vec(&State::default()).unwrap(),
            )
            .unwrap();
        Self {
            flash,
            config,
            files,
            radio: Rc::default(),
            clock: Rc::new(Cell::new(monday() + 21 * DAY as u64 + 12 * 3600)),
        }
    }

    fn agent(&mut self) -> Agent<'_, Flash, &mut MemoryStore, Link, Board> {
        let mut c = AgentConfig::new("lock-1");
        c.time_zone = Some("UTC".into());
        Agent::open(
            &self.flash,
            self.config,
            &mut self.files,
            Link(Rc::clone(&self.radio)),
            Board(Rc::clone(&self.clock)),
            c,
        )
        .unwrap()
    }
}

/// The usage text of the last check-in body, if it carried one.
fn last_usage(radio: &RefCell<Radio>) -> Option<String> {
    let r = radio.borrow();
    let v: serde_json::Value = serde_json::from_slice(r.bodies.last().unwrap()).unwrap();
    v["report"]
        .get("usage")
        .map(|u| u.as_str().unwrap().to_owned())
}

fn last_body(radio: &RefCell<Radio>) -> Vec<u8> {
    radio.borrow().bodies.last().unwrap().clone()
}

#[test]
fn the_agent_sends_the_summary_first_on_change_and_daily_never_idle() {
    let mut lock = Lock::new();
    let (radio, clock) = (Rc::clone(&lock.radio), Rc::clone(&lock.clock));
    let p = home();
    // One agent throughout: the mock answer stops each check-in after the
    // server had it, before the agent's closing save (a reset is covered
    // below).
    let mut a = lock.agent();

    // First check-in: the summary rides along, exactly what the scheduler
    // learned.
    let expected = a.usage_summary(&p);
    assert!(a.usage_due(&expected));
    assert_eq!(
        a.check_in_with_usage(&p),
        Err(AgentError::MalformedResponse)
    );
    assert!(a.sent_usage());
    let text = last_usage(&radio).expect("first check-in carries the summary");
    assert_eq!(UsageSummary::from_text(&text), Ok(expected));
    let with = last_body(&radio).len();

    // Next check-in, nothing changed: left out, and the body is exactly the
    // old format's (`,"usage":"` + 83 + `"` less).
    assert!(a.check_in_with_usage(&p).is_err());
    assert!(!a.sent_usage());
    assert_eq!(last_usage(&radio), None);
    let idle = last_body(&radio);
    assert_eq!(with - idle.len(), 10 + TEXT_LEN + 1);
    assert!(!String::from_utf8(idle).unwrap().contains("usage"));

    // A plain check-in never carries it, due or not.
    clock.set(clock.get() + 3 * DAY as u64);
    assert!(a.check_in().is_err());
    assert_eq!(last_usage(&radio), None);
    clock.set(clock.get() - 3 * DAY as u64);

    // Twelve hours later, still the same picture: left out.
    clock.set(clock.get() + 12 * 3600);
    assert!(a.check_in_with_usage(&p).is_err());
    assert_eq!(last_usage(&radio), None);

    // A material change (someone now comes home at 03:00 every night):
    // sent at once.
    let mut changed = p.clone();
    for day in 0..7u64 {
        for _ in 0..4 {
            changed.observe(
                (monday() + (14 + day) * DAY as u64 + 3 * 3600 + 60) as i64,
                &TzRule::UTC,
            );
        }
    }
    let s = a.usage_summary(&changed);
    assert_ne!(s.material_digest(), a.usage_summary(&p).material_digest());
    assert!(a.usage_due(&s));
    assert!(a.check_in_with_usage(&changed).is_err());
    assert_eq!(UsageSummary::from_text(&last_usage(&radio).unwrap()), Ok(s));

    // Unchanged after that: sent again a day later, not before.
    clock.set(clock.get() + USAGE_REFRESH_SECS - 3600);
    assert!(a.check_in_with_usage(&changed).is_err());
    assert_eq!(last_usage(&radio), None, "23 h: not yet");
    clock.set(clock.get() + 3600);
    assert!(a.check_in_with_usage(&changed).is_err());
    assert!(last_usage(&radio).is_some(), "24 h: again");
}

#[test]
fn an_unanswered_summary_is_sent_again_and_a_refused_one_waits_a_day() {
    let mut lock = Lock::new();
    let (radio, clock) = (Rc::clone(&lock.radio), Rc::clone(&lock.clock));
    let p = home();

    // No answer: not recorded, the next check-in carries it again.
    radio.borrow_mut().answer = Some(NetError::Unreachable);
    let mut a = lock.agent();
    assert_eq!(a.check_in_with_usage(&p), Err(AgentError::Network));
    assert!(!a.sent_usage());
    assert_eq!(a.state().usage_digest, None);
    assert!(last_usage(&radio).is_some());
    assert_eq!(a.check_in_with_usage(&p), Err(AgentError::Network));
    assert!(last_usage(&radio).is_some());

    // Refused as malformed (400): recorded and saved, so even after a reset
    // the lock does not try again before a day has passed; its check-ins go
    // on without it.
    radio.borrow_mut().answer = Some(NetError::Status(400));
    assert_eq!(a.check_in_with_usage(&p), Err(AgentError::Refused(400)));
    assert!(!a.sent_usage());
    assert!(last_usage(&radio).is_some());
    drop(a);
    radio.borrow_mut().answer = None;
    let mut a = lock.agent();
    assert!(a.state().usage_digest.is_some(), "survives a reset");
    assert_eq!(a.state().usage_sent_at, clock.get());
    assert!(a.check_in_with_usage(&p).is_err());
    assert_eq!(last_usage(&radio), None);
    clock.set(clock.get() + USAGE_REFRESH_SECS);
    assert!(a.check_in_with_usage(&p).is_err());
    assert!(last_usage(&radio).is_some());
}

#[test]
fn agent_state_without_usage_fields_still_opens_and_stays_small() {
    // A state file written before the usage summary existed.
    let old = br#"{"counter_reserved":128,"time_floor":1800000000,"staging":null,"installing":null,"last_update":null,"failed":[]}"#;
    let s: State = serde_json::from_slice(old).unwrap();
    assert_eq!(s.usage_digest, None);
    assert_eq!(s.usage_sent_at, 0);
    // And one that never sent a summary is written as before.
    let text = serde_json::to_string(&s).unwrap();
    assert!(!text.contains("usage"), "{text}");
    let mut lock = Lock::new();
    let radio = Rc::clone(&lock.radio);
    lock.files.store(agent::STATE_FILE, old).unwrap();
    let mut a = lock.agent();
    assert_eq!(a.state().counter_reserved, 128);
    assert!(a.check_in_with_usage(&home()).is_err());
    assert!(last_usage(&radio).is_some());
}
