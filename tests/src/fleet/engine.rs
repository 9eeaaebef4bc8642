//! The fleet: thousands of locks — each the real `lock-app` agent and
//! `bootloader` on its own simulated flash — in virtual time against a real
//! server over loopback.
//!
//! Time advances in one-minute ticks. At each tick the server's manual clock
//! is set to the tick, and every lock with something due (a check-in, an
//! install decision) runs it on a pool of workers (each with its own HTTP
//! connection, so the server batches concurrent check-ins as in the field).
//! Locks wait in a queue ordered by when they are next due, so a tick costs
//! only what its due locks do, however large the fleet; the workers live
//! for the whole run and meet at two barriers per tick that has work.
//! Entry attempts come from each lock's usage profile; an attempt that falls
//! inside an install's downtime is a **hit** (someone stood at a door that
//! would not open). Each install's downtime is what that install did, in
//! the fleet's layout and boot mode (swap or A/B), priced with the
//! reference board's flash and MCU timings ([`super::downtime`]).

//!
//! The parts: [`super::config`] (settings), [`super::lock`] (one lock: its
//! device, door usage and schedule), the actions a due lock runs (check-in
//! and staging, the install decision, the install), the agent's radio and
//! files, and [`super::report`] (what a run adds up to). This module builds
//! and registers the fleet and runs the ticks.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex, RwLock};

use lock_app::agent::{self, Net, Repo};
use lock_app::scheduler::{TzRule, UsageProfile};
use lock_app::tuf::MemoryStore;
use serde_json::json;

use bootloader::sim::SectorPool;

use super::io::Files;
use super::scenario::Scenario;
use super::usage::{self, Kind, Rng};
use crate::sim::device::Device;
use crate::sim::net::HttpNet;

pub use super::config::{Faults, FleetConfig, Policy};
use super::lock::ZONES;
pub use super::lock::{FleetLock, InstallRecord, LockStats};
pub use super::report::{HitInstall, Report, peak_rss_bytes};

pub(super) const DAY: u64 = 86_400;
pub(super) const TICK: u64 = 60;

/// The fleet.
#[derive(Debug)]
pub struct Fleet {
    /// Settings.
    pub config: FleetConfig,
    pub(super) locks: Vec<Mutex<FleetLock>>,
    /// Every lock that has something left to do, by when it is next due.
    queue: Mutex<BinaryHeap<Reverse<(u64, usize)>>>,
    /// Flash sectors with the same contents, held once for the whole fleet
    /// (the factory image, the staged and swapped releases): each lock's
    /// flash shares them copy-on-write. Sectors only one lock holds (its
    /// agent files) are packed between uses ([`SectorPool::packing`]).
    pub(super) pool: SectorPool,
    pub(super) nets: Vec<Mutex<HttpNet>>,
    /// Virtual now.
    pub now: u64,
    pub(super) start: u64,
    pub(super) broken: Vec<(String, String)>,
    pub(super) started: std::time::Instant,
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
        let pool = SectorPool::packing();
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
            // It left the factory having booted once (a first boot may
            // write its boot record), so an install pays only for itself.
            device.boot().map_err(|e| format!("factory boot: {e}"))?;
            let id = format!("lock-{i:06}");
            let mut files = MemoryStore::default();
            let mut seed = [0u8; 32];
            for (k, b) in seed.iter_mut().enumerate() {
                *b = (rng.next_u64() >> (k % 8)) as u8;
            }
            {
                let mut f = Files::of(&device, &mut files, config.files_on_flash, None);
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
                ram: None,
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
            lock.device.share(&pool);
            locks.push(lock);
        }
        for chunk in registrations.chunks(5000) {
            server.admin_ok(
                "POST",
                "/admin/v1/devices/import",
                Some(json!({ "devices": chunk })),
            )?;
        }
        let queue = locks
            .iter()
            .enumerate()
            .map(|(i, l)| Reverse((l.next_action(), i)))
            .collect();
        let nets = (0..config.workers.max(1))
            .map(|_| Mutex::new(HttpNet::new(&server.base)))
            .collect();
        Ok(Self {
            locks: locks.into_iter().map(Mutex::new).collect(),
            queue: Mutex::new(queue),
            pool,
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
    /// server's clock following.
    pub fn run_until(
        &mut self,
        scenario: &Scenario,
        until: u64,
        progress: Option<&indicatif::ProgressBar>,
    ) {
        let workers = self.nets.len();
        // The tick's due locks, handed out through `cursor`; the workers
        // wait at `start` for a tick and meet the main thread at `end`.
        let due: RwLock<(u64, Vec<usize>)> = RwLock::new((0, Vec::new()));
        let cursor = AtomicUsize::new(0);
        let start = Barrier::new(workers + 1);
        let end = Barrier::new(workers + 1);
        let done = AtomicBool::new(false);
        let this = &*self;
        let now = std::thread::scope(|s| {
            for w in 0..workers {
                let (due, cursor, start, end, done) = (&due, &cursor, &start, &end, &done);
                s.spawn(move || {
                    let mut net = this.nets[w].lock().unwrap_or_else(|e| e.into_inner());
                    loop {
                        start.wait();
                        if done.load(Ordering::Acquire) {
                            break;
                        }
                        let tick = due.read().unwrap_or_else(|e| e.into_inner());
                        let (t, list) = (tick.0, &tick.1);
                        loop {
                            let k = cursor.fetch_add(1, Ordering::Relaxed);
                            let Some(&i) = list.get(k) else { break };
                            let mut lock = this.locks[i].lock().unwrap_or_else(|e| e.into_inner());
                            this.step(&mut lock, t, &mut net);
                            lock.device.share(&this.pool);
                            let next = lock.next_action();
                            drop(lock);
                            if next != u64::MAX {
                                this.queue
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push(Reverse((next, i)));
                            }
                        }
                        drop(tick);
                        end.wait();
                    }
                });
            }
            let mut now = this.now;
            while now < until {
                let t = now;
                scenario.server.set_now(t);
                let list = this.take_due(t + TICK);
                if !list.is_empty() {
                    *due.write().unwrap_or_else(|e| e.into_inner()) = (t, list);
                    cursor.store(0, Ordering::Relaxed);
                    start.wait();
                    end.wait();
                }
                now += TICK;
                if (now / TICK).is_multiple_of(60) {
                    // Sectors no lock holds any more.
                    this.pool.prune();
                }
                if let Some(pb) = progress {
                    pb.set_position(now.saturating_sub(this.start) / TICK);
                }
            }
            done.store(true, Ordering::Release);
            start.wait();
            now
        });
        self.now = now;
    }

    /// Take every lock due before `end` out of the queue, in due order.
    fn take_due(&self, end: u64) -> Vec<usize> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let mut list = Vec::new();
        while let Some(&Reverse((at, i))) = q.peek() {
            if at >= end {
                break;
            }
            q.pop();
            list.push(i);
        }
        list
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
