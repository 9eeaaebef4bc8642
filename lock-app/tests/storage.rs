//! `lock_app::storage` on the NOR simulator: credentials and audit log on the
//! reference layout's partitions, power cut at every flash operation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap, VecDeque};

use bootloader::layout::REFERENCE;
use bootloader::sim::{Cut, Erased, SimFlash};
use embassy_embedded_hal::flash::partition::Partition;
use embassy_futures::block_on;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::mutex::Mutex;
use lock_app::storage::{
    AuditEntry, AuditEvent, Decision, DenyReason, LockStorage, OverflowPolicy, PinHash, Role,
    StorageConfig, StorageError, Validity, partitions,
};

type Flash = Mutex<NoopRawMutex, SimFlash>;
type Store<'a> =
    LockStorage<Partition<'a, NoopRawMutex, SimFlash>, Partition<'a, NoopRawMutex, SimFlash>>;

const SALT: [u8; 16] = *b"nightlatch-salt!";

fn config(overflow: OverflowPolicy) -> StorageConfig {
    StorageConfig {
        salt: SALT,
        overflow,
    }
}

fn reference_flash() -> Flash {
    Mutex::new(SimFlash::new(REFERENCE.audit.end() as usize, Erased::Ones))
}

fn open(flash: &Flash) -> Store<'_> {
    let (c, a) = partitions(flash, &REFERENCE);
    block_on(LockStorage::open(c, a, config(OverflowPolicy::DropOldest))).unwrap()
}

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put {
        id: u16,
        pin: Vec<u8>,
        role: Role,
        validity: Validity,
    },
    Remove {
        id: u16,
    },
    Append(AuditEvent),
    Ack {
        upto: u32,
    },
}

fn random_op(rng: &mut Rng, now: u64, queued: &VecDeque<AuditEntry>) -> Op {
    match rng.below(10) {
        0..=2 => {
            let role =
                [Role::Owner, Role::Resident, Role::Guest, Role::Service][rng.below(4) as usize];
            let start = now.saturating_sub(rng.below(1000));
            Op::Put {
                id: rng.below(24) as u16,
                // A small PIN pool, so PINs sometimes collide (refused).
                pin: format!("{:04}", rng.below(40)).into_bytes(),
                role,
                validity: Validity {
                    not_before: start + rng.below(3) * 500,
                    not_after: if rng.below(2) == 0 {
                        u64::MAX
                    } else {
                        start + 200 + rng.below(2000)
                    },
                },
            }
        }
        3 => Op::Remove {
            id: rng.below(24) as u16,
        },
        4..=7 => Op::Append(match rng.below(4) {
            0 => AuditEvent::DoorOpened,
            1 => AuditEvent::DoorClosed,
            2 => AuditEvent::UnlockPin {
                credential: rng.below(24) as u16,
            },
            _ => AuditEvent::UpdateStaged {
                version: rng.below(100) as u32,
            },
        }),
        _ => {
            let upto = queued
                .get(rng.below(queued.len() as u64 + 1) as usize)
                .map_or(0, |e| e.seq);
            Op::Ack { upto }
        }
    }
}

/// What the lock should hold: credentials by id (with their PINs) and the
/// unacknowledged audit entries.
#[derive(Debug, Clone, Default, PartialEq)]
struct Model {
    creds: HashMap<u16, (Vec<u8>, Role, Validity)>,
    queue: VecDeque<AuditEntry>,
}

impl Model {
    fn decision(&self, pin: &[u8], now: u64) -> Decision {
        match self.creds.iter().find(|(_, c)| c.0 == pin) {
            None => Decision::Denied {
                reason: DenyReason::UnknownPin,
                id: None,
            },
            Some((&id, (_, role, v))) => match v.check(now) {
                Ok(()) => Decision::Granted { id, role: *role },
                Err(reason) => Decision::Denied {
                    reason,
                    id: Some(id),
                },
            },
        }
    }

    fn pin_taken(&self, id: u16, pin: &[u8]) -> bool {
        self.creds
            .iter()
            .any(|(&other, c)| other != id && c.0 == pin)
    }
}

fn observed_creds(s: &Store<'_>) -> BTreeMap<u16, (Role, Validity, PinHash)> {
    s.credentials()
        .map(|c| (c.id, (c.role, c.validity, c.pin_hash)))
        .collect()
}

fn model_creds(m: &Model) -> BTreeMap<u16, (Role, Validity, PinHash)> {
    m.creds
        .iter()
        .map(|(&id, (pin, role, v))| (id, (*role, *v, PinHash::new(&SALT, pin))))
        .collect()
}

fn observed_queue(s: &mut Store<'_>) -> VecDeque<AuditEntry> {
    block_on(s.peek_batch(usize::MAX)).unwrap().into()
}

/// Run `op` once; `Ok(true)` when it did what the model expects to change.
fn run(
    s: &mut Store<'_>,
    op: &Op,
    now: u64,
) -> Result<
    (),
    StorageError<embassy_embedded_hal::flash::partition::Error<bootloader::sim::SimError>>,
> {
    match op {
        Op::Put {
            id,
            pin,
            role,
            validity,
        } => block_on(s.put_credential(*id, pin, *role, *validity)).map(|_| ()),
        Op::Remove { id } => block_on(s.remove_credential(*id)),
        Op::Append(e) => block_on(s.append(*e, now)).map(|_| ()),
        Op::Ack { upto } => block_on(s.ack(*upto)).map(|_| ()),
    }
}

/// The model after `op` completes (`None`: the op must be refused).
fn apply(m: &Model, op: &Op, now: u64, next_seq: u32, dropped: u32) -> Option<Model> {
    let mut m = m.clone();
    match op {
        Op::Put {
            id,
            pin,
            role,
            validity,
        } => {
            if m.pin_taken(*id, pin) {
                return None;
            }
            m.creds.insert(*id, (pin.clone(), *role, *validity));
        }
        Op::Remove { id } => {
            m.creds.remove(id);
        }
        Op::Append(event) => m.queue.push_back(AuditEntry {
            seq: next_seq,
            time: now,
            event: *event,
            dropped_before: dropped,
        }),
        Op::Ack { upto } => m.queue.retain(|e| e.seq > *upto),
    }
    Some(m)
}

fn cut_for(k: u64, rng: &mut Rng) -> Cut {
    match k % 3 {
        0 => Cut::After(k),
        1 => Cut::Midway(k),
        _ => Cut::During {
            op: k,
            done: rng.below(24) as usize,
        },
    }
}

/// The model-based power-cut sweep: for each op, cut power at its 1st, 2nd,
/// 3rd… flash operation (each cut on top of the previous ones' damage, as
/// repeated brown-outs do), reboot, and check that the lock holds either the
/// state before the op or the state after it (for an ack: any prefix of the
/// acknowledged entries removed), never anything else.
fn power_cut_sweep(seed: u64, ops: usize) {
    let flash = reference_flash();
    let mut rng = Rng(seed);
    let mut model = Model::default();
    let mut store = open(&flash);
    let mut now = 1_700_000_000u64;
    let mut seen_seq: Option<u32> = None;
    let mut cuts = 0u64;

    for _ in 0..ops {
        now += rng.below(600);
        // Offline PIN checks agree with the model at any time.
        let pin = format!("{:04}", rng.below(40)).into_bytes();
        assert_eq!(store.check_pin(&pin, now), model.decision(&pin, now));

        let op = random_op(&mut rng, now, &model.queue);
        let next_seq = store.next_seq();
        if let Some(s) = seen_seq {
            assert!(
                next_seq > s,
                "sequence number reused: next {next_seq}, seen {s}"
            );
        }
        let Some(after) = apply(&model, &op, now, next_seq, store.dropped()) else {
            assert_eq!(run(&mut store, &op, now), Err(StorageError::PinInUse));
            continue;
        };
        let mut k = 1;
        loop {
            let cut = cut_for(k, &mut rng);
            flash.try_lock().unwrap().arm(cut);
            let r = run(&mut store, &op, now);
            let dead = {
                let mut f = flash.try_lock().unwrap();
                let dead = f.is_dead();
                f.disarm();
                dead
            };
            if !dead {
                r.unwrap();
                model = after;
                break;
            }
            cuts += 1;
            drop(store);
            flash.try_lock().unwrap().reboot();
            store = open(&flash);
            let creds = observed_creds(&store);
            let queue = observed_queue(&mut store);
            let landed = match &op {
                Op::Ack { .. } => {
                    // Some prefix of the acknowledged entries is gone.
                    let gone = model.queue.len() - queue.len();
                    assert!(
                        queue.len() >= after.queue.len() && queue.len() <= model.queue.len(),
                        "{op:?} cut {cut:?}: {queue:?}"
                    );
                    assert_eq!(
                        queue,
                        model
                            .queue
                            .iter()
                            .skip(gone)
                            .copied()
                            .collect::<VecDeque<_>>(),
                        "{op:?} cut {cut:?}"
                    );
                    assert_eq!(creds, model_creds(&model));
                    model.queue = queue.clone();
                    queue == after.queue
                }
                _ => {
                    let is_after = creds == model_creds(&after) && queue == after.queue;
                    let is_before = creds == model_creds(&model) && queue == model.queue;
                    assert!(
                        is_after || is_before,
                        "{op:?} cut {cut:?}: neither before nor after\n{creds:?}\n{queue:?}"
                    );
                    is_after
                }
            };
            if landed {
                model = after;
                break;
            }
            k += 1;
        }
        if let Some(last) = model.queue.back() {
            seen_seq = Some(seen_seq.map_or(last.seq, |s| s.max(last.seq)));
        }
    }
    assert!(cuts > ops as u64, "the sweep cut power only {cuts} times");
    // A clean reboot at the end changes nothing.
    drop(store);
    let mut store = open(&flash);
    assert_eq!(observed_creds(&store), model_creds(&model));
    assert_eq!(observed_queue(&mut store), model.queue);
}

#[test]
fn power_cut_at_every_flash_operation_loses_only_the_record_being_written() {
    power_cut_sweep(0x5EED_0001, 300);
}

#[test]
#[ignore = "long: cargo test -p lock-app --test storage -- --ignored"]
fn power_cut_sweep_long() {
    for seed in 1..=8u64 {
        power_cut_sweep(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15), 1500);
    }
}

#[test]
fn time_limited_codes_are_honoured_at_the_window_edges() {
    let flash = reference_flash();
    let mut s = open(&flash);
    let v = Validity {
        not_before: 1_000,
        not_after: 2_000,
    };
    block_on(s.put_credential(3, b"4711", Role::Guest, v)).unwrap();
    let granted = Decision::Granted {
        id: 3,
        role: Role::Guest,
    };
    assert_eq!(
        s.check_pin(b"4711", 999),
        Decision::Denied {
            reason: DenyReason::NotYetValid,
            id: Some(3)
        }
    );
    assert_eq!(s.check_pin(b"4711", 1_000), granted);
    assert_eq!(s.check_pin(b"4711", 1_999), granted);
    assert_eq!(
        s.check_pin(b"4711", 2_000),
        Decision::Denied {
            reason: DenyReason::Expired,
            id: Some(3)
        }
    );
    // The window survives a reboot.
    drop(s);
    let s = open(&flash);
    assert_eq!(s.check_pin(b"4711", 1_999), granted);
    assert_eq!(
        s.check_pin(b"4711", 2_000),
        Decision::Denied {
            reason: DenyReason::Expired,
            id: Some(3)
        }
    );
}

/// Entry by PIN with nothing but flash: no transport, no server type in
/// scope. The decision and its audit entry come from the lock alone.
#[test]
fn offline_entry_by_pin_and_audit_trail() {
    let flash = reference_flash();
    let mut s = open(&flash);
    block_on(s.put_credential(1, b"246810", Role::Owner, Validity::ALWAYS)).unwrap();
    let (d, seq) = block_on(s.enter_pin(b"246810", 5));
    assert_eq!(
        d,
        Decision::Granted {
            id: 1,
            role: Role::Owner
        }
    );
    let (d2, _) = block_on(s.enter_pin(b"0000", 6));
    assert_eq!(
        d2,
        Decision::Denied {
            reason: DenyReason::UnknownPin,
            id: None
        }
    );
    assert_eq!(seq.unwrap(), 0);
    let log = block_on(s.peek_batch(10)).unwrap();
    assert_eq!(
        log.iter().map(|e| e.event).collect::<Vec<_>>(),
        [
            AuditEvent::UnlockPin { credential: 1 },
            AuditEvent::Denied {
                reason: DenyReason::UnknownPin,
                credential: None
            },
        ]
    );
    // Malformed PINs and reserved ids are refused, never stored.
    assert_eq!(
        block_on(s.put_credential(2, b"12", Role::Guest, Validity::ALWAYS)),
        Err(StorageError::MalformedPin)
    );
    assert_eq!(
        block_on(s.put_credential(0xFFFF, b"1234", Role::Guest, Validity::ALWAYS)),
        Err(StorageError::ReservedId)
    );
    // The PIN is not in flash in clear.
    let f = flash.try_lock().unwrap();
    let cred =
        &f.contents()[REFERENCE.credentials.offset as usize..REFERENCE.credentials.end() as usize];
    assert!(!cred.windows(6).any(|w| w == b"246810"));
}

#[test]
fn batches_are_removed_only_when_acknowledged_and_numbers_never_repeat() {
    let flash = reference_flash();
    let mut s = open(&flash);
    for t in 0..10 {
        block_on(s.append(AuditEvent::DoorOpened, t)).unwrap();
    }
    let batch = block_on(s.peek_batch(4)).unwrap();
    assert_eq!(
        batch.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    // Offline: peeking again removes nothing.
    assert_eq!(block_on(s.peek_batch(100)).unwrap().len(), 10);
    assert_eq!(block_on(s.ack(3)).unwrap(), 4);
    assert_eq!(block_on(s.peek_batch(1)).unwrap()[0].seq, 4);
    assert_eq!(block_on(s.ack(9)).unwrap(), 6);
    assert!(block_on(s.peek_batch(1)).unwrap().is_empty());
    // Empty queue, reboot: numbering continues.
    drop(s);
    let mut s = open(&flash);
    assert_eq!(block_on(s.append(AuditEvent::DoorClosed, 11)).unwrap(), 10);
}

fn small_store(flash: &Flash, policy: OverflowPolicy) -> Store<'_> {
    // Two sectors each: credentials at 0, audit at 8 KiB.
    let c = Partition::new(flash, 0, 8192);
    let a = Partition::new(flash, 8192, 8192);
    block_on(LockStorage::open(c, a, config(policy))).unwrap()
}

#[test]
fn full_log_drops_oldest_and_counts_them() {
    let flash = Mutex::new(SimFlash::new(16384, Erased::Ones));
    let mut s = small_store(&flash, OverflowPolicy::DropOldest);
    for t in 0..1000 {
        block_on(s.append(AuditEvent::DoorOpened, t)).unwrap();
    }
    let log = block_on(s.peek_batch(usize::MAX)).unwrap();
    let dropped = s.dropped();
    assert!(dropped > 0);
    assert_eq!(log.len() as u32 + dropped, 1000);
    // What is kept is the newest, contiguous, and says how much came before.
    assert_eq!(log.last().unwrap().seq, 999);
    assert!(log.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert_eq!(log[0].seq, dropped);
    assert_eq!(log.last().unwrap().dropped_before, dropped);
    drop(s);
    let s = small_store(&flash, OverflowPolicy::DropOldest);
    assert_eq!(s.dropped(), dropped);
}

#[test]
fn full_log_refuses_new_entries_when_the_operator_says_so() {
    let flash = Mutex::new(SimFlash::new(16384, Erased::Ones));
    let mut s = small_store(&flash, OverflowPolicy::RefuseNew);
    let mut stored = 0u32;
    for t in 0..1000 {
        match block_on(s.append(AuditEvent::DoorClosed, t)) {
            Ok(_) => stored += 1,
            Err(e) => assert_eq!(e, StorageError::AuditFull),
        }
    }
    assert_eq!(s.dropped(), 1000 - stored);
    let log = block_on(s.peek_batch(usize::MAX)).unwrap();
    assert_eq!(log[0].seq, 0, "the oldest entries are kept");
    assert_eq!(log.len() as u32, stored);
    // Acknowledging makes room again.
    block_on(s.ack(log.last().unwrap().seq)).unwrap();
    block_on(s.append(AuditEvent::DoorOpened, 2000)).unwrap();
}

/// A record in a format this firmware cannot read (left by a newer release
/// that was then reverted) is skipped: the other PINs still open the door,
/// and the unreadable audit entry is still acknowledged away by number.
#[test]
fn records_of_a_newer_format_are_skipped_not_fatal() {
    use sequential_storage::cache::Cache;
    use sequential_storage::map::{MapConfig, MapStorage};
    use sequential_storage::queue::{QueueConfig, QueueStorage};

    let flash = reference_flash();
    let mut s = open(&flash);
    block_on(s.put_credential(1, b"1357", Role::Owner, Validity::ALWAYS)).unwrap();
    block_on(s.append(AuditEvent::DoorOpened, 1)).unwrap();
    drop(s);
    let (c, a) = partitions(&flash, &REFERENCE);
    let mut buf = [0u8; 128];
    let mut map = MapStorage::<u16, _, _>::new(
        c,
        MapConfig::new(0..REFERENCE.credentials.size),
        Cache::new_uncached(),
    );
    let mut future = [0u8; 56];
    future[0] = 2;
    block_on(map.store_item(&mut buf, &5u16, &&future[..])).unwrap();
    let mut queue = QueueStorage::new(
        a,
        QueueConfig::new(0..REFERENCE.audit.size),
        Cache::new_uncached(),
    );
    let mut entry = [0u8; 24];
    entry[0] = 2;
    entry[4] = 1; // seq 1
    block_on(queue.push(&entry, false)).unwrap();

    let mut s = open(&flash);
    assert_eq!(
        s.check_pin(b"1357", 10),
        Decision::Granted {
            id: 1,
            role: Role::Owner
        }
    );
    assert_eq!(s.credentials().count(), 1);
    assert_eq!(block_on(s.peek_batch(10)).unwrap().len(), 1);
    assert_eq!(
        s.next_seq(),
        2,
        "the unreadable entry's number is not reused"
    );
    assert_eq!(block_on(s.ack(1)).unwrap(), 2);
}
