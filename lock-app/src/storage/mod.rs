//! PIN credentials and the audit log on flash, with sequential-storage.
//!
//! * **Credentials** live in a sequential-storage *map* in the CREDENTIALS
//!   partition, keyed by credential id (`u16`), one fixed-size record each
//!   ([`credential`]). They are also kept in RAM (a `BTreeMap`), so
//!   [`LockStorage::check_pin`] answers without touching flash or network:
//!   entry by PIN works offline.
//! * **Audit log** entries go to a sequential-storage *queue* in the AUDIT
//!   partition ([`audit`]). Upload in batches: [`LockStorage::peek_batch`],
//!   then [`LockStorage::ack`] removes only what the server acknowledged;
//!   offline, entries stay. When the partition is full, [`OverflowPolicy`]
//!   decides; a drop counter is kept.
//! * **Sequence numbers** never go back, even across power cuts and an
//!   emptied queue: [`LockStorage::ack`] first stores the next sequence
//!   number and the drop counter in the map (key [`META_KEY`]), then pops.
//!   On open, the next number is the larger of that and the newest queued
//!   entry's + 1.
//!
//! Everything is async over `embedded-storage-async`; on a host, drive it
//! with any `block_on`. Power-cut safety comes from sequential-storage (CRC
//! per item, repair on open); `tests/storage.rs` cuts power at every flash
//! operation and checks that nothing but the record being written is lost.

pub mod audit;
pub mod credential;
pub mod files;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use embassy_embedded_hal::flash::partition::Partition;
use embassy_sync::blocking_mutex::raw::RawMutex;
use embassy_sync::mutex::Mutex;
use embedded_storage_async::nor_flash::{MultiwriteNorFlash, NorFlash};
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::map::{MapConfig, MapStorage};
use sequential_storage::queue::{QueueConfig, QueueStorage};

pub use audit::{AuditEntry, AuditEvent, OverflowPolicy};
pub use credential::{Credential, Decision, DenyReason, PinHash, Role, Validity};

use credential::Record;

/// Largest credential id; ids above are reserved.
pub const MAX_CREDENTIAL_ID: u16 = 0xFEFF;
/// Map key of the audit log's metadata (next sequence number, drop counter).
pub const META_KEY: u16 = 0xFFFF;

const BUF: usize = 128;

type Map<F> = MapStorage<u16, F, Cache<Uncached, Uncached, Uncached, u16>>;
type Queue<F> = QueueStorage<F, Cache<Uncached, Uncached, Uncached, ()>>;

/// Storage errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageError<E> {
    /// The flash driver failed (power lost, bus error).
    Flash(E),
    /// The partition is full.
    Full,
    /// The audit log is full and [`OverflowPolicy::RefuseNew`] is in force.
    AuditFull,
    /// sequential-storage found corruption it could not repair.
    Corrupted,
    /// The partition does not suit sequential-storage (size, alignment).
    BadPartition,
    /// A stored record has an unknown version or is malformed.
    BadRecord,
    /// Credential id above [`MAX_CREDENTIAL_ID`].
    ReservedId,
    /// The PIN is not 4 to 12 ASCII digits.
    MalformedPin,
    /// Another credential already has this PIN.
    PinInUse,
    /// An impossible state (a bug in this crate or its dependency).
    LogicBug,
}

impl<E> From<sequential_storage::Error<E>> for StorageError<E> {
    fn from(e: sequential_storage::Error<E>) -> Self {
        match e {
            sequential_storage::Error::Storage { value, .. } => Self::Flash(value),
            sequential_storage::Error::FullStorage => Self::Full,
            sequential_storage::Error::Corrupted { .. } => Self::Corrupted,
            sequential_storage::Error::SerializationError(_) => Self::BadRecord,
            _ => Self::LogicBug,
        }
    }
}

/// Lock-wide storage settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageConfig {
    /// Per-lock salt for PIN hashes (provisioned at manufacture).
    pub salt: [u8; 16],
    /// What to do when the audit log is full.
    pub overflow: OverflowPolicy,
}

/// The CREDENTIALS and AUDIT partitions of [`bootloader::layout::REFERENCE`]
/// (or another layout) over one shared flash.
pub fn partitions<'a, M: RawMutex, F: NorFlash>(
    flash: &'a Mutex<M, F>,
    layout: &bootloader::layout::Layout,
) -> (Partition<'a, M, F>, Partition<'a, M, F>) {
    let c = layout.credentials;
    let a = layout.audit;
    (
        Partition::new(flash, c.offset, c.size),
        Partition::new(flash, a.offset, a.size),
    )
}

/// Credentials (map) and audit log (queue) of one lock.
pub struct LockStorage<C: MultiwriteNorFlash, A: MultiwriteNorFlash> {
    map: Map<C>,
    queue: Queue<A>,
    config: StorageConfig,
    credentials: BTreeMap<u16, Credential>,
    next_seq: u32,
    dropped: u32,
}

impl<C: MultiwriteNorFlash, A: MultiwriteNorFlash> core::fmt::Debug for LockStorage<C, A> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LockStorage")
            .field("credentials", &self.credentials.len())
            .field("next_seq", &self.next_seq)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

type Res<T, C> =
    Result<T, StorageError<<C as embedded_storage_async::nor_flash::ErrorType>::Error>>;

impl<F, C, A> LockStorage<C, A>
where
    F: core::fmt::Debug,
    C: MultiwriteNorFlash<Error = F>,
    A: MultiwriteNorFlash<Error = F>,
{
    /// Open both partitions (each used whole), load the credentials into RAM
    /// and recover the audit sequence number and drop counter.
    pub async fn open(cred_flash: C, audit_flash: A, config: StorageConfig) -> Res<Self, C> {
        let map_cfg = MapConfig::<C>::try_new(0..cred_flash.capacity() as u32)
            .map_err(|_| StorageError::BadPartition)?;
        let queue_cfg = QueueConfig::<A>::try_new(0..audit_flash.capacity() as u32)
            .map_err(|_| StorageError::BadPartition)?;
        let mut s = Self {
            map: MapStorage::new(cred_flash, map_cfg, Cache::new_uncached()),
            queue: QueueStorage::new(audit_flash, queue_cfg, Cache::new_uncached()),
            config,
            credentials: BTreeMap::new(),
            next_seq: 0,
            dropped: 0,
        };
        s.load().await?;
        Ok(s)
    }

    async fn load(&mut self) -> Res<(), C> {
        let mut buf = [0u8; BUF];
        {
            let mut it = self.map.fetch_all_items(&mut buf).await?;
            // Later items with the same key supersede earlier ones.
            while let Some((key, Record(r))) = it.next::<Record>(&mut buf).await? {
                // A record this firmware cannot read (a newer format left by
                // a reverted update) is skipped, never fatal: the other
                // credentials must keep opening the door.
                if key != META_KEY
                    && let Some(c) = Credential::from_record(&r)
                {
                    self.credentials.insert(key, c);
                }
            }
        }
        // Removed keys: the iterator may still yield older copies of them, so
        // confirm each against a direct fetch.
        let keys: Vec<u16> = self.credentials.keys().copied().collect();
        for k in keys {
            if self.map.fetch_item::<Record>(&mut buf, &k).await?.is_none() {
                self.credentials.remove(&k);
            }
        }
        if let Some(Record(m)) = self.map.fetch_item::<Record>(&mut buf, &META_KEY).await? {
            self.next_seq = u32::from_le_bytes([m[0], m[1], m[2], m[3]]);
            self.dropped = u32::from_le_bytes([m[4], m[5], m[6], m[7]]);
        }
        let mut it = self.queue.iter().await.map_err(map_a)?;
        while let Some(e) = it.next(&mut buf).await.map_err(map_a)? {
            if let Some(seq) = audit::seq_of(&e) {
                self.next_seq = self.next_seq.max(seq.wrapping_add(1));
            }
            if let Some(entry) = AuditEntry::from_bytes(&e) {
                self.dropped = self.dropped.max(entry.dropped_before);
            }
        }
        Ok(())
    }

    // ---- credentials ----

    /// Add or replace credential `id` with this PIN, role and window.
    pub async fn put_credential(
        &mut self,
        id: u16,
        pin: &[u8],
        role: Role,
        validity: Validity,
    ) -> Res<Credential, C> {
        if id > MAX_CREDENTIAL_ID {
            return Err(StorageError::ReservedId);
        }
        if !credential::pin_is_well_formed(pin) {
            return Err(StorageError::MalformedPin);
        }
        let pin_hash = PinHash::new(&self.config.salt, pin);
        if self
            .credentials
            .values()
            .any(|c| c.pin_hash == pin_hash && c.id != id)
        {
            return Err(StorageError::PinInUse);
        }
        let c = Credential {
            id,
            role,
            validity,
            pin_hash,
        };
        let mut buf = [0u8; BUF];
        self.map
            .store_item(&mut buf, &id, &Record(c.to_record()))
            .await?;
        self.credentials.insert(id, c);
        Ok(c)
    }

    /// Remove credential `id` (no-op if absent).
    pub async fn remove_credential(&mut self, id: u16) -> Res<(), C> {
        if id > MAX_CREDENTIAL_ID {
            return Err(StorageError::ReservedId);
        }
        let mut buf = [0u8; BUF];
        self.map.remove_item(&mut buf, &id).await?;
        self.credentials.remove(&id);
        Ok(())
    }

    /// The credentials, by id (from RAM).
    pub fn credentials(&self) -> impl Iterator<Item = &Credential> {
        self.credentials.values()
    }

    /// Decide on a PIN at trusted time `now` (RAM only: works offline).
    pub fn check_pin(&self, pin: &[u8], now: u64) -> Decision {
        if !credential::pin_is_well_formed(pin) {
            return Decision::Denied {
                reason: DenyReason::UnknownPin,
                id: None,
            };
        }
        let h = PinHash::new(&self.config.salt, pin);
        match self.credentials.values().find(|c| c.pin_hash == h) {
            None => Decision::Denied {
                reason: DenyReason::UnknownPin,
                id: None,
            },
            Some(c) => match c.validity.check(now) {
                Ok(()) => Decision::Granted {
                    id: c.id,
                    role: c.role,
                },
                Err(reason) => Decision::Denied {
                    reason,
                    id: Some(c.id),
                },
            },
        }
    }

    /// [`Self::check_pin`], then record the outcome in the audit log. The
    /// decision stands even if the log write fails (the door must not depend
    /// on flash); the write error is returned alongside.
    pub async fn enter_pin(&mut self, pin: &[u8], now: u64) -> (Decision, Res<u32, C>) {
        let d = self.check_pin(pin, now);
        let event = match d {
            Decision::Granted { id, .. } => AuditEvent::UnlockPin { credential: id },
            Decision::Denied { reason, id } => AuditEvent::Denied {
                reason,
                credential: id,
            },
        };
        (d, self.append(event, now).await)
    }

    // ---- audit log ----

    /// Append an event; returns its sequence number.
    pub async fn append(&mut self, event: AuditEvent, now: u64) -> Res<u32, C> {
        let mut buf = [0u8; BUF];
        loop {
            let entry = AuditEntry {
                seq: self.next_seq,
                time: now,
                event,
                dropped_before: self.dropped,
            };
            match self.queue.push(&entry.to_bytes(), false).await {
                Ok(()) => {
                    self.next_seq = self.next_seq.wrapping_add(1);
                    return Ok(entry.seq);
                }
                Err(sequential_storage::Error::FullStorage) => match self.config.overflow {
                    OverflowPolicy::RefuseNew => {
                        self.dropped = self.dropped.saturating_add(1);
                        return Err(StorageError::AuditFull);
                    }
                    OverflowPolicy::DropOldest => {
                        if self.queue.pop(&mut buf).await.map_err(map_a)?.is_none() {
                            return Err(StorageError::LogicBug);
                        }
                        self.dropped = self.dropped.saturating_add(1);
                    }
                },
                Err(e) => return Err(map_a(e)),
            }
        }
    }

    /// The oldest `n` unacknowledged entries, oldest first. Entries this
    /// firmware cannot parse (a newer format) are skipped here; [`Self::ack`]
    /// still removes them by their sequence number.
    pub async fn peek_batch(&mut self, n: usize) -> Res<Vec<AuditEntry>, C> {
        let mut buf = [0u8; BUF];
        let mut out = Vec::new();
        let mut it = self.queue.iter().await.map_err(map_a)?;
        while out.len() < n {
            let Some(e) = it.next(&mut buf).await.map_err(map_a)? else {
                break;
            };
            if let Some(entry) = AuditEntry::from_bytes(&e) {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// Remove every entry with `seq <= upto_seq` (the server has them);
    /// returns how many were removed. Newer entries stay.
    pub async fn ack(&mut self, upto_seq: u32) -> Res<usize, C> {
        let mut buf = [0u8; BUF];
        match self.queue.peek(&mut buf).await.map_err(map_a)? {
            Some(e) if audit::seq_of(e).is_some_and(|s| s <= upto_seq) => {}
            _ => return Ok(0),
        }
        // Persist the sequence floor first, so an emptied queue never lets
        // a number be reused.
        let mut meta = [0u8; credential::RECORD_LEN];
        meta[0..4].copy_from_slice(&self.next_seq.to_le_bytes());
        meta[4..8].copy_from_slice(&self.dropped.to_le_bytes());
        self.map
            .store_item(&mut buf, &META_KEY, &Record(meta))
            .await?;
        let mut removed = 0;
        loop {
            let Some(e) = self.queue.peek(&mut buf).await.map_err(map_a)? else {
                break;
            };
            // An entry without even a sequence number is removed with the batch.
            if audit::seq_of(e).is_some_and(|s| s > upto_seq) {
                break;
            }
            self.queue.pop(&mut buf).await.map_err(map_a)?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Entries dropped or refused because the log was full, over the lock's life.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    /// The sequence number the next entry will get.
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// Give the flashes back.
    pub fn into_flashes(self) -> (C, A) {
        (self.map.destroy().0, self.queue.destroy().0)
    }
}

fn map_a<E>(e: sequential_storage::Error<E>) -> StorageError<E> {
    StorageError::from(e)
}
