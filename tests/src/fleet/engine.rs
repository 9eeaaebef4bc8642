//! The fleet: thousands of locks — each the real `lock-app` agent and
//! `bootloader` on its own simulated flash — in virtual time against a real
//! server over loopback.
//!
//! Time advances in one-minute ticks. At each tick the server's manual clock
//! is set to the tick, and every lock with something due (a check-in, an
//! install decision) runs it on a pool of workers (each with its own HTTP
//! connection, so the server batches concurrent check-ins as in the field).
//! Entry attempts come from each lock's usage profile; an attempt that falls
//! inside an install's downtime is a **hit** (someone stood at a door that
//! would not open).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bootloader::layout::{Layout, SMALL};
use bootloader::sim::Cut;
use lock_app::agent::{
    self, Agent, AgentConfig, AgentError, BootOutcome, CheckIn, Net, Repo, SelfTestFailure,
    StageStatus,
};
use lock_app::scheduler::{Decision, TzRule, UsageProfile};
use lock_app::tuf::{FetchError, MemoryStore};
use serde::Serialize;
use serde_json::json;

use super::scenario::Scenario;
use super::usage::{self, Kind, Rng};
use crate::sim::device::{Clock, Device, SimHardware};
use crate::sim::net::{HttpNet, Traffic};

const DAY: u64 = 86_400;
const TICK: u64 = 60;

/// When a lock installs a staged update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Nightlatch: the lock's quiet-hours scheduler on its learned usage
    /// (and the site's window, if any), never while the door is in use.
    QuietHours,
    /// Install as soon as the update is staged.
    OnArrival,
    /// A fixed 02:00–04:00 local maintenance window (hawkBit / AWS IoT
    /// jobs style), at a random time inside it, no door check.
    FixedWindow,
}

/// Faults injected into the fleet.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Faults {
    /// Probability that a firmware range request drops mid-way.
    pub wifi_drop: f64,
    /// Share of locks whose power is cut during their first swap.
    pub power_cut_swap: f64,
    /// Share of locks with a nearly dead battery.
    pub dead_battery: f64,
    /// Share of locks whose clock is off by minutes to hours until the
    /// director's signed time corrects it.
    pub clock_skew: f64,
}

/// Fleet settings.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Number of locks.
    pub locks: usize,
    /// Install policy.
    pub policy: Policy,
    /// Seed of every random choice.
    pub seed: u64,
    /// Faults.
    pub faults: Faults,
    /// Seconds between check-ins (each lock adds its own jitter).
    pub checkin_interval: u64,
    /// Parallel workers (HTTP connections).
    pub workers: usize,
    /// Share of locks whose factory build differs from the published one
    /// (same version number: their patch base does not match).
    pub alt_base: f64,
    /// Weeks of door history each lock has learned before the simulation.
    pub history_weeks: u64,
    /// Flash layout of every lock.
    pub layout: Layout,
    /// Modelled install downtime (seconds).
    pub downtime_secs: u64,
    /// Keep each lock's agent files on its flash (AGENT partition), as a
    /// real lock does; `false` keeps them in memory (faster).
    pub files_on_flash: bool,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            locks: 100,
            policy: Policy::QuietHours,
            seed: 1,
            faults: Faults::default(),
            checkin_interval: 4 * 3600,
            workers: 8,
            alt_base: 0.0,
            history_weeks: 3,
            layout: SMALL,
            downtime_secs: 90,
            files_on_flash: true,
        }
    }
}

/// Counters of one lock.
#[derive(Debug, Clone, Default)]
pub struct LockStats {
    /// Check-ins answered.
    pub check_ins: u64,
    /// Check-ins that carried the lock's usage summary.
    pub usage_reports: u64,
    /// Installs requested.
    pub installs: u64,
    /// Installs the bootloader reverted.
    pub reverts: u64,
    /// Entry attempts during an install's downtime.
    pub hits: u64,
    /// Entry attempts.
    pub attempts: u64,
    /// Power cuts survived during a swap.
    pub power_cuts: u64,
    /// Staging fell back from the patch to the full image.
    pub patch_fallbacks: u64,
    /// Updates staged through a patch.
    pub patched: u64,
    /// Refusals by the agent.
    pub refusals: u64,
    /// The most recent refusal.
    pub last_refusal: Option<String>,
    /// No bootable image (must stay false).
    pub bricked: bool,
    /// Bytes on air.
    pub traffic: Traffic,
    /// Install blocked by the battery.
    pub battery_blocked: bool,
    /// When installs started, and the entry attempts each hit.
    pub install_log: Vec<(u64, u64)>,
}

/// One lock.
#[derive(Debug)]
pub struct FleetLock {
    /// Id.
    pub id: String,
    /// Hardware model.
    pub model: String,
    /// Usage profile.
    pub kind: Kind,
    variant: u8,
    /// Time zone rule.
    pub tz: TzRule,
    /// Time zone name.
    pub tz_name: &'static str,
    /// Flash and boot configuration.
    pub device: Device,
    files: MemoryStore,
    rng: Rng,
    profile: UsageProfile,
    events: VecDeque<u64>,
    generated_until_day: i64,
    last_event: Option<u64>,
    next_checkin: u64,
    next_decide: Option<u64>,
    skew: i64,
    battery: u8,
    cut_next_swap: bool,
    /// Version running (confirmed or on trial).
    pub running: String,
    /// Counters.
    pub stats: LockStats,
}

/// The locks' time zones, in turn.
pub(crate) const ZONES: [&str; 4] = [
    "Europe/Berlin",
    "America/New_York",
    "Europe/London",
    "America/Los_Angeles",
];

impl FleetLock {
    fn next_action(&self) -> u64 {
        self.next_decide
            .map_or(self.next_checkin, |d| d.min(self.next_checkin))
    }

    /// Generate entry attempts through local day `until`.
    fn generate(&mut self, until_utc: u64) {
        let until_day = (self.tz.to_local(until_utc as i64)).div_euclid(DAY as i64) + 1;
        while self.generated_until_day < until_day {
            self.generated_until_day += 1;
            let evs = usage::day_events(
                self.kind,
                self.variant,
                &self.tz,
                self.generated_until_day,
                &mut self.rng,
            );
            self.events.extend(evs);
        }
    }

    /// Learn from (and count) every entry attempt before `t`.
    fn ingest(&mut self, t: u64) {
        self.generate(t + 2 * DAY);
        while let Some(&e) = self.events.front() {
            if e >= t {
                break;
            }
            self.events.pop_front();
            self.stats.attempts += 1;
            self.profile.decay_to(e as i64, &self.tz);
            self.profile.observe(e as i64, &self.tz);
            self.last_event = Some(e);
        }
    }

    fn attempts_in(&self, from: u64, to: u64) -> u64 {
        self.events.iter().filter(|&&e| e >= from && e < to).count() as u64
    }
}

/// Things the report adds up.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Locks simulated.
    pub locks: usize,
    /// Virtual days run.
    pub virtual_days: f64,
    /// Policy.
    pub policy: Policy,
    /// Share of locks running the newest assigned release, confirmed.
    pub updated_fraction: f64,
    /// Installs requested.
    pub installs: u64,
    /// Installs reverted by the bootloader.
    pub reverts: u64,
    /// Locks without a bootable image.
    pub bricked: u64,
    /// Entry attempts during an install's downtime.
    pub entry_attempts_hit: u64,
    /// Entry attempts in all.
    pub entry_attempts: u64,
    /// Entry attempts hit per 10,000 installs.
    pub hits_per_10k_installs: f64,
    /// Check-ins answered.
    pub check_ins: u64,
    /// Check-ins that carried a usage summary (the first, then on a
    /// material change or a day after the last).
    pub usage_reports: u64,
    /// Power cuts during swaps, all recovered.
    pub power_cuts_recovered: u64,
    /// Staged through a patch.
    pub patched: u64,
    /// Fell back from the patch to the full image.
    pub patch_fallbacks: u64,
    /// Locks whose battery blocked the install.
    pub battery_blocked: u64,
    /// Agent refusals (attacks, disagreements, network).
    pub refusals: u64,
    /// Locks by their most recent refusal.
    pub refusals_by_kind: std::collections::BTreeMap<String, u64>,
    /// Bytes on air, all locks.
    pub bytes_on_air: u64,
    /// Wall-clock seconds.
    pub wall_seconds: f64,
    /// Peak resident memory of the process.
    pub peak_rss_bytes: u64,
    /// Locks per version.
    pub versions: std::collections::BTreeMap<String, u64>,
    /// Installs that hit an entry attempt (the first 100): who, and when
    /// in the lock's local time.
    pub hit_installs: Vec<HitInstall>,
}

/// An install that hit an entry attempt.
#[derive(Debug, Clone, Serialize)]
pub struct HitInstall {
    /// Lock id.
    pub lock: String,
    /// Usage profile.
    pub profile: Kind,
    /// Profile variant (0–9; see `fleet::usage`).
    pub variant: u8,
    /// Time zone.
    pub zone: &'static str,
    /// Local weekday and time the install started (`Sat 03:12`).
    pub local_start: String,
    /// Entry attempts it hit.
    pub attempts_hit: u64,
}

/// `Www HH:MM` of a local date and time.
fn weekday_time(t: &lock_app::scheduler::tz::LocalDateTime) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    format!(
        "{} {:02}:{:02}",
        DAYS[usize::from(t.weekday_mon % 7)],
        t.secs_of_day / 3600,
        t.secs_of_day % 3600 / 60
    )
}

/// Peak resident set size (VmHWM) of this process.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// A network that drops firmware downloads at random.
struct Flaky<'n> {
    inner: &'n mut HttpNet,
    drop: f64,
    rng: &'n mut Rng,
}

impl Net for Flaky<'_> {
    fn check_in(
        &mut self,
        device_id: &str,
        body: &[u8],
        signature: &str,
        max_len: u64,
    ) -> Result<Vec<u8>, agent::NetError> {
        self.inner.check_in(device_id, body, signature, max_len)
    }
    fn fetch_metadata(
        &mut self,
        repo: Repo,
        file: &str,
        max_len: u64,
    ) -> Result<Vec<u8>, FetchError> {
        self.inner.fetch_metadata(repo, file, max_len)
    }
    fn fetch_target(&mut self, path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FetchError> {
        let mut b = self.inner.fetch_target(path, offset, len)?;
        if self.drop > 0.0 && self.rng.chance(self.drop) {
            // The connection dropped part-way through the range.
            b.truncate(b.len() / 3);
        }
        Ok(b)
    }
}

/// A lock's agent files: on its flash (the AGENT partition, as on a real
/// lock) or, to save time in very large runs, in memory.
enum Files<'a> {
    Flash(lock_app::storage::files::FileStore<crate::sim::device::AgentFlash<'a>>),
    Memory(&'a mut MemoryStore),
}

impl Files<'_> {
    fn of<'a>(device: &'a Device, memory: &'a mut MemoryStore, on_flash: bool) -> Files<'a> {
        if on_flash && let Ok(f) = device.files() {
            return Files::Flash(f);
        }
        Files::Memory(memory)
    }
}

impl lock_app::tuf::MetadataStore for Files<'_> {
    fn load(&self, role: &str) -> Option<Vec<u8>> {
        match self {
            Files::Flash(f) => f.load(role),
            Files::Memory(m) => m.load(role),
        }
    }
    fn store(&mut self, role: &str, bytes: &[u8]) -> Result<(), lock_app::tuf::StoreError> {
        match self {
            Files::Flash(f) => f.store(role, bytes),
            Files::Memory(m) => m.store(role, bytes),
        }
    }
    fn remove(&mut self, role: &str) -> Result<(), lock_app::tuf::StoreError> {
        match self {
            Files::Flash(f) => lock_app::tuf::MetadataStore::remove(f, role),
            Files::Memory(m) => m.remove(role),
        }
    }
}

/// The fleet.
#[derive(Debug)]
pub struct Fleet {
    /// Settings.
    pub config: FleetConfig,
    locks: Vec<Mutex<FleetLock>>,
    next: Vec<AtomicU64>,
    nets: Vec<Mutex<HttpNet>>,
    /// Virtual now.
    pub now: u64,
    start: u64,
    broken: Vec<(String, String)>,
    started: std::time::Instant,
}

impl Fleet {
    /// Build and register `config.locks` locks on `scenario`'s server, all
    /// running the factory release.
    pub fn new(scenario: &Scenario, config: FleetConfig) -> Result<Self, String> {
        let server = &scenario.server;
        let now = server.now();
        let mut boot_net = HttpNet::new(&server.base);
        let image_root = boot_net
            .fetch_metadata(Repo::Image, "1.root.json", 512_000)
            .map_err(|e| format!("image root: {e:?}"))?;
        let director_root = boot_net
            .fetch_metadata(Repo::Director, "1.root.json", 512_000)
            .map_err(|e| format!("director root: {e:?}"))?;
        let anchors = scenario.anchors();
        let mut rng = Rng::new(config.seed);
        let mut locks = Vec::with_capacity(config.locks);
        let mut registrations = Vec::with_capacity(config.locks);
        for i in 0..config.locks {
            let model = scenario.models[i % scenario.models.len()].clone();
            let alt = rng.chance(config.alt_base);
            let factory = if alt {
                &scenario.factory_alt
            } else {
                &scenario.factory
            };
            let image = factory
                .image(&model)
                .ok_or_else(|| format!("no factory image for {model}"))?;
            let device =
                Device::factory(config.layout, anchors, image).map_err(|e| e.to_string())?;
            let id = format!("lock-{i:06}");
            let mut files = MemoryStore::default();
            let mut seed = [0u8; 32];
            for (k, b) in seed.iter_mut().enumerate() {
                *b = (rng.next_u64() >> (k % 8)) as u8;
            }
            {
                let mut f = Files::of(&device, &mut files, config.files_on_flash);
                agent::provision(&mut f, &seed, &image_root, &director_root, now)
                    .map_err(|e| format!("provision: {e}"))?;
            }
            let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
            let tz_name = ZONES[i % ZONES.len()];
            let tz = lock_app::scheduler::tz::rule_for_zone(tz_name).unwrap_or(TzRule::UTC);
            registrations.push(json!({"id": id, "hardware_model": model,
                "public_key": hex::encode(public.as_bytes()), "site": tz_name.replace('/', ":")}));
            let kind = Kind::for_index(i);
            let mut lock = FleetLock {
                id,
                model,
                kind,
                variant: usage::variant_for_index(i),
                tz,
                tz_name,
                device,
                files,
                rng: Rng::new(config.seed ^ (i as u64).wrapping_mul(0x1000_0000_01b3)),
                profile: UsageProfile::new(),
                events: VecDeque::new(),
                generated_until_day: 0,
                last_event: None,
                next_checkin: now + rng.range(0, config.checkin_interval),
                next_decide: None,
                skew: 0,
                battery: 90,
                cut_next_swap: rng.chance(config.faults.power_cut_swap),
                running: factory.version.clone(),
                stats: LockStats::default(),
            };
            if rng.chance(config.faults.dead_battery) {
                lock.battery = 2;
            }
            if rng.chance(config.faults.clock_skew) {
                lock.skew = rng.range(0, 4 * 3600) as i64 - 2 * 3600;
            }
            // Learned history: `history_weeks` of door use before now.
            let from = now.saturating_sub(config.history_weeks * 7 * DAY);
            lock.generated_until_day = lock.tz.to_local(from as i64).div_euclid(DAY as i64);
            lock.ingest(now);
            lock.stats.attempts = 0;
            locks.push(lock);
        }
        for chunk in registrations.chunks(5000) {
            server.admin_ok(
                "POST",
                "/admin/v1/devices/import",
                Some(json!({ "devices": chunk })),
            )?;
        }
        let next = locks
            .iter()
            .map(|l| AtomicU64::new(l.next_action()))
            .collect();
        let nets = (0..config.workers.max(1))
            .map(|_| Mutex::new(HttpNet::new(&server.base)))
            .collect();
        Ok(Self {
            locks: locks.into_iter().map(Mutex::new).collect(),
            next,
            nets,
            now,
            start: now,
            config,
            broken: Vec::new(),
            started: std::time::Instant::now(),
        })
    }

    /// Make `version`'s self-test fail on `model` (a bad release).
    pub fn break_version(&mut self, model: &str, version: &str) {
        self.broken.push((model.to_owned(), version.to_owned()));
    }

    /// Run every lock's due work until virtual time `until`, with the
    /// server's clock following. `on_tick` sees each tick's time.
    pub fn run_until(
        &mut self,
        scenario: &Scenario,
        until: u64,
        progress: Option<&indicatif::ProgressBar>,
    ) {
        while self.now < until {
            let t = self.now;
            scenario.server.set_now(t);
            let due: Vec<usize> = self
                .next
                .iter()
                .enumerate()
                .filter(|(_, n)| n.load(Ordering::Relaxed) < t + TICK)
                .map(|(i, _)| i)
                .collect();
            if !due.is_empty() {
                let cursor = AtomicUsize::new(0);
                let workers = self.nets.len().min(due.len());
                std::thread::scope(|s| {
                    for w in 0..workers {
                        let due = &due;
                        let cursor = &cursor;
                        let this = &*self;
                        s.spawn(move || {
                            let mut net = this.nets[w].lock().unwrap_or_else(|e| e.into_inner());
                            loop {
                                let k = cursor.fetch_add(1, Ordering::Relaxed);
                                let Some(&i) = due.get(k) else { break };
                                let mut lock =
                                    this.locks[i].lock().unwrap_or_else(|e| e.into_inner());
                                this.step(&mut lock, t, &mut net);
                                this.next[i].store(lock.next_action(), Ordering::Relaxed);
                            }
                        });
                    }
                });
            }
            self.now += TICK;
            if let Some(pb) = progress {
                pb.set_position(self.now.saturating_sub(self.start) / TICK);
            }
        }
    }

    fn config_for(&self, lock: &FleetLock) -> AgentConfig {
        let mut c = AgentConfig::new(&lock.id);
        c.time_zone = Some(lock.tz_name.to_owned());
        c.install_cost.downtime_secs = self.config.downtime_secs;
        c
    }

    fn hardware(&self, lock: &FleetLock, t: u64) -> SimHardware {
        let mut hw = SimHardware::new(Clock::virtual_at(t.saturating_add_signed(lock.skew)));
        hw.battery = lock.battery;
        hw.running = lock.running.clone();
        for (m, v) in &self.broken {
            if *m == lock.model {
                hw.failing.push((v.clone(), SelfTestFailure::Motor));
            }
        }
        hw
    }

    /// One lock's due work in the tick starting at `t`.
    fn step(&self, lock: &mut FleetLock, t: u64, net: &mut HttpNet) {
        if lock.stats.bricked {
            lock.next_checkin = u64::MAX;
            lock.next_decide = None;
            return;
        }
        let end = t + TICK;
        if let Some(d) = lock.next_decide
            && d < end
        {
            self.decide(lock, d.max(t), net);
        }
        if lock.next_checkin < end {
            let at = lock.next_checkin.max(t);
            self.check_in(lock, at, net);
        }
    }

    fn check_in(&self, lock: &mut FleetLock, at: u64, net: &mut HttpNet) {
        // The lock learns from its audit log as the door is used: its
        // summary (sent when due) is what its scheduler knows now.
        lock.ingest(at);
        let before = net.traffic;
        let config = self.config_for(lock);
        let hw = self.hardware(lock, at);
        let mut rng = Rng::new(lock.rng.next_u64());
        let flaky = Flaky {
            inner: net,
            drop: self.config.faults.wifi_drop,
            rng: &mut rng,
        };
        let interval = self.config.checkin_interval;
        let jitter = lock.rng.range(0, interval / 8 + 1);
        lock.next_checkin = at + interval - interval / 16 + jitter;
        let FleetLock {
            device,
            files,
            profile,
            ..
        } = lock;
        let store = Files::of(device, files, self.config.files_on_flash);
        let mut agent = match Agent::open(&device.flash, device.config, store, flaky, hw, config) {
            Ok(a) => a,
            Err(_) => {
                lock.stats.refusals += 1;
                return;
            }
        };
        let result = agent.check_in_with_usage(profile);
        if agent.sent_usage() {
            lock.stats.usage_reports += 1;
        }
        let mut staged = false;
        match result {
            Ok(CheckIn::Assigned { patch, .. }) => {
                lock.stats.check_ins += 1;
                lock.skew = 0;
                loop {
                    match agent.stage(64) {
                        Ok(StageStatus::Downloading { .. }) => {}
                        Ok(StageStatus::Staged) => {
                            staged = true;
                            break;
                        }
                        Ok(StageStatus::Idle | StageStatus::Failed(_)) => break,
                        Err(AgentError::Network) => {
                            // Try again soon: Range resumes where it stopped.
                            lock.next_checkin = at + 600;
                            break;
                        }
                        Err(e) => {
                            lock.stats.refusals += 1;
                            lock.stats.last_refusal = Some(format!("staging: {e}"));
                            break;
                        }
                    }
                }
                if staged {
                    let fallback = agent
                        .state()
                        .staging
                        .as_ref()
                        .is_some_and(|s| s.patch_fallback.is_some());
                    if fallback {
                        lock.stats.patch_fallbacks += 1;
                    } else if patch {
                        lock.stats.patched += 1;
                    }
                }
            }
            Ok(CheckIn::UpToDate) => {
                lock.stats.check_ins += 1;
                lock.skew = 0;
                staged = agent.staged();
            }
            Ok(CheckIn::Withdrawn) => {
                lock.stats.check_ins += 1;
                lock.next_decide = None;
            }
            Err(AgentError::Network) => lock.next_checkin = at + 600,
            Err(e) => {
                lock.stats.refusals += 1;
                lock.stats.last_refusal = Some(format!("check-in: {e}"));
            }
        }
        drop(agent);
        lock.stats.traffic = add(&lock.stats.traffic, &net_delta(net, &before));
        if staged && lock.next_decide.is_none() {
            lock.next_decide = Some(at);
        }
    }

    fn decide(&self, lock: &mut FleetLock, at: u64, net: &mut HttpNet) {
        lock.ingest(at);
        let config = self.config_for(lock);
        let hw = self.hardware(lock, at);
        let door_closed = lock.last_event.is_none_or(|e| at >= e + 120);
        let last = lock.last_event;
        let battery_mwh = u32::from(lock.battery) * 50;
        let install_now = {
            let FleetLock {
                device,
                files,
                profile,
                ..
            } = &mut *lock;
            let agent = match Agent::open(
                &device.flash,
                device.config,
                Files::of(device, files, self.config.files_on_flash),
                &mut *net,
                hw,
                config,
            ) {
                Ok(a) => a,
                Err(_) => return,
            };
            if !agent.staged() {
                lock.next_decide = None;
                return;
            }
            match self.config.policy {
                Policy::QuietHours => match agent.decide(profile, door_closed, last, battery_mwh) {
                    Decision::InstallNow => true,
                    Decision::WaitUntil(x) => {
                        lock.next_decide = Some(x.saturating_add_signed(-lock.skew).max(at + TICK));
                        false
                    }
                    Decision::Blocked(lock_app::scheduler::BlockReason::Battery { .. }) => {
                        lock.stats.battery_blocked = true;
                        lock.next_decide = Some(at + DAY);
                        false
                    }
                    Decision::Blocked(_) => {
                        lock.next_decide = Some(at + 6 * 3600);
                        false
                    }
                },
                Policy::OnArrival => true,
                Policy::FixedWindow => {
                    let local = lock.tz.to_local(at as i64);
                    let sod = local.rem_euclid(DAY as i64) as u64;
                    if (2 * 3600..4 * 3600 - self.config.downtime_secs).contains(&sod) {
                        true
                    } else {
                        // Next 02:00 local plus a random offset in the window.
                        let day0 = local - sod as i64;
                        let next2 = if sod < 2 * 3600 {
                            day0
                        } else {
                            day0 + DAY as i64
                        } + 2 * 3600;
                        let jitter = lock.rng.range(0, 2 * 3600 - self.config.downtime_secs) as i64;
                        let utc = usage::local_to_utc(&lock.tz, next2 + jitter).max(0) as u64;
                        lock.next_decide = Some(utc.max(at + TICK));
                        false
                    }
                }
            }
        };
        if install_now {
            lock.next_decide = None;
            self.install(lock, at, net);
        }
    }

    fn install(&self, lock: &mut FleetLock, at: u64, net: &mut HttpNet) {
        let downtime = self.config.downtime_secs;
        let config = self.config_for(lock);
        {
            let hw = self.hardware(lock, at);
            let FleetLock { device, files, .. } = &mut *lock;
            let Ok(mut agent) = Agent::open(
                &device.flash,
                device.config,
                Files::of(device, files, self.config.files_on_flash),
                &mut *net,
                hw,
                config.clone(),
            ) else {
                return;
            };
            if agent.install().is_err() {
                lock.stats.refusals += 1;
                return;
            }
        }
        lock.stats.installs += 1;
        lock.generate(at + 2 * DAY);
        let hit = lock.attempts_in(at, at + downtime);
        lock.stats.hits += hit;
        lock.stats.install_log.push((at, hit));
        // Reset: the bootloader swaps (power may be cut mid-way).
        if lock.cut_next_swap {
            lock.cut_next_swap = false;
            let n = lock.rng.range(1, 40);
            lock.device
                .flash
                .lock(|f| f.borrow_mut().arm(Cut::After(n)));
        }
        let mut report = None;
        for attempt in 0..3 {
            match lock.device.boot() {
                Ok(r) => {
                    if attempt > 0 {
                        lock.stats.power_cuts += 1;
                    }
                    report = Some(r);
                    break;
                }
                Err(_) => {
                    let dead = lock.device.flash.lock(|f| f.borrow().is_dead());
                    if !dead {
                        break;
                    }
                }
            }
        }
        let Some(report) = report else {
            lock.stats.bricked = true;
            return;
        };
        lock.running = report.image.header().version.to_string();
        let after = at + downtime;
        loop {
            let hw = self.hardware(lock, after);
            let FleetLock { device, files, .. } = &mut *lock;
            let Ok(mut agent) = Agent::open(
                &device.flash,
                device.config,
                Files::of(device, files, self.config.files_on_flash),
                &mut *net,
                hw,
                config.clone(),
            ) else {
                return;
            };
            match agent.after_boot() {
                Ok(BootOutcome::SelfTestFailed(_)) => {
                    drop(agent);
                    match lock.device.boot() {
                        Ok(r) => lock.running = r.image.header().version.to_string(),
                        Err(_) => {
                            lock.stats.bricked = true;
                            return;
                        }
                    }
                }
                Ok(BootOutcome::Reverted { .. }) => {
                    lock.stats.reverts += 1;
                    break;
                }
                _ => break,
            }
        }
        // Report the outcome right away.
        self.check_in(lock, after, net);
    }

    /// The report so far.
    pub fn report(&self, newest: &std::collections::BTreeMap<String, String>) -> Report {
        let mut r = Report {
            locks: self.locks.len(),
            virtual_days: (self.now - self.start) as f64 / DAY as f64,
            policy: self.config.policy,
            updated_fraction: 0.0,
            installs: 0,
            reverts: 0,
            bricked: 0,
            entry_attempts_hit: 0,
            entry_attempts: 0,
            hits_per_10k_installs: 0.0,
            check_ins: 0,
            usage_reports: 0,
            power_cuts_recovered: 0,
            patched: 0,
            patch_fallbacks: 0,
            battery_blocked: 0,
            refusals: 0,
            refusals_by_kind: Default::default(),
            bytes_on_air: 0,
            wall_seconds: self.started.elapsed().as_secs_f64(),
            peak_rss_bytes: peak_rss_bytes(),
            versions: Default::default(),
            hit_installs: Vec::new(),
        };
        let mut updated = 0u64;
        for l in &self.locks {
            let l = l.lock().unwrap_or_else(|e| e.into_inner());
            let s = &l.stats;
            r.installs += s.installs;
            r.reverts += s.reverts;
            r.bricked += u64::from(s.bricked);
            r.entry_attempts_hit += s.hits;
            r.entry_attempts += s.attempts;
            for &(at, hit) in &s.install_log {
                if hit > 0 && r.hit_installs.len() < 100 {
                    r.hit_installs.push(HitInstall {
                        lock: l.id.clone(),
                        profile: l.kind,
                        variant: l.variant,
                        zone: l.tz_name,
                        local_start: weekday_time(&l.tz.local_date_time(at as i64)),
                        attempts_hit: hit,
                    });
                }
            }
            r.check_ins += s.check_ins;
            r.usage_reports += s.usage_reports;
            r.power_cuts_recovered += s.power_cuts;
            r.patched += s.patched;
            r.patch_fallbacks += s.patch_fallbacks;
            r.battery_blocked += u64::from(s.battery_blocked);
            r.refusals += s.refusals;
            if let Some(k) = &s.last_refusal {
                *r.refusals_by_kind.entry(k.clone()).or_default() += 1;
            }
            r.bytes_on_air += s.traffic.total();
            *r.versions
                .entry(format!("{} {}", l.model, l.running))
                .or_default() += 1;
            if newest.get(&l.model).is_some_and(|v| *v == l.running) {
                updated += 1;
            }
        }
        r.updated_fraction = updated as f64 / self.locks.len().max(1) as f64;
        r.hits_per_10k_installs = if r.installs == 0 {
            0.0
        } else {
            r.entry_attempts_hit as f64 * 10_000.0 / r.installs as f64
        };
        r
    }

    /// Visit every lock (tests).
    pub fn for_each(&self, mut f: impl FnMut(&FleetLock)) {
        for l in &self.locks {
            f(&l.lock().unwrap_or_else(|e| e.into_inner()));
        }
    }

    /// Virtual start.
    pub fn start(&self) -> u64 {
        self.start
    }
}

fn net_delta(net: &HttpNet, before: &Traffic) -> Traffic {
    net.traffic.since(before)
}

fn add(a: &Traffic, b: &Traffic) -> Traffic {
    Traffic {
        requests: a.requests + b.requests,
        checkin_sent: a.checkin_sent + b.checkin_sent,
        checkin_received: a.checkin_received + b.checkin_received,
        metadata_sent: a.metadata_sent + b.metadata_sent,
        metadata_received: a.metadata_received + b.metadata_received,
        target_sent: a.target_sent + b.target_sent,
        target_received: a.target_received + b.target_received,
    }
}

#[cfg(test)]
mod tests {
    use super::weekday_time;

    #[test]
    fn weekday_time_of_local_seconds() {
        let utc = lock_app::scheduler::tz::TzRule::parse("UTC0").unwrap();
        assert_eq!(weekday_time(&utc.local_date_time(0)), "Thu 00:00");
        // 2026-11-22 was a Sunday.
        let day = lock_app::scheduler::tz::days_from_civil(2026, 11, 22);
        let t = utc.local_date_time(day * 86_400 + 3 * 3600 + 12 * 60);
        assert_eq!(weekday_time(&t), "Sun 03:12");
        assert_eq!(weekday_time(&utc.local_date_time(-60)), "Wed 23:59");
    }
}
