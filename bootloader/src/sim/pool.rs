//! Copy-on-write sectors, and a pool that dedupes them across flashes.
//!
//! A non-erased sector of a [`SimFlash`](super::SimFlash) is an
//! `Arc<Sector>`: cloning a flash bumps reference counts, and a write goes
//! through `Arc::make_mut`, so a sector is copied only when a flash changes
//! one it shares. [`SimFlash::share`](super::SimFlash::share) goes further:
//! it swaps every sector changed since the last call for an identical one in
//! a [`SectorPool`], so a fleet of locks holding the same images holds each
//! sector once.

use core::ops::Range;
use std::boxed::Box;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::vec::Vec;

/// One sector that is not erased: its bytes and which of its program words
/// have been written (for [`DoubleWrite::Forbid`](super::DoubleWrite)), in
/// one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Sector<const ERASE: usize> {
    /// `ERASE` data bytes, then one bit per program word (LSB first).
    buf: Box<[u8]>,
    /// Whether the data has been materialised: a write put a byte other than
    /// the erased value into it, and no whole-sector erase has happened
    /// since. A sector can exist with this unset when a torn write marked a
    /// word written without changing a byte; it then holds only written bits,
    /// its data is all erased, and it does not count as resident.
    resident: bool,
}

impl<const ERASE: usize> Sector<ERASE> {
    /// An erased sector of `words` program words, nothing written.
    pub(super) fn blank(fill: u8, words: usize) -> Self {
        let mut buf = Vec::with_capacity(ERASE + words.div_ceil(8));
        buf.resize(ERASE, fill);
        buf.resize(ERASE + words.div_ceil(8), 0);
        Self {
            buf: buf.into_boxed_slice(),
            resident: false,
        }
    }

    pub(super) fn data(&self) -> &[u8] {
        &self.buf[..ERASE]
    }

    /// The data, to be changed; the sector becomes resident.
    pub(super) fn data_mut(&mut self) -> &mut [u8] {
        self.resident = true;
        &mut self.buf[..ERASE]
    }

    pub(super) fn resident(&self) -> bool {
        self.resident
    }

    /// Whether word `w` (of this sector) has been written.
    pub(super) fn written(&self, w: usize) -> bool {
        self.buf[ERASE + w / 8] & (1 << (w % 8)) != 0
    }

    pub(super) fn set_written(&mut self, w: usize) {
        self.buf[ERASE + w / 8] |= 1 << (w % 8);
    }

    /// Erase `bytes` of the sector (from a word boundary; `write`-byte
    /// words) without releasing it: they read erased, and the words wholly
    /// inside are no longer written. Residency does not change.
    pub(super) fn erase_part(&mut self, bytes: Range<usize>, fill: u8, write: usize) {
        for w in bytes.start / write..bytes.end / write {
            self.buf[ERASE + w / 8] &= !(1 << (w % 8));
        }
        self.buf[bytes].fill(fill);
    }

    /// Neither data nor written bits: the same as an erased sector.
    pub(super) fn is_blank(&self) -> bool {
        !self.resident && self.buf[ERASE..].iter().all(|&b| b == 0)
    }

    /// Heap bytes of the contents (data and written bits).
    fn bytes(&self) -> usize {
        self.buf.len()
    }

    fn hash(&self) -> u64 {
        hash64(&self.buf) ^ u64::from(self.resident)
    }
}

/// A [`Sector`] packed (LZ4) while no one uses it: what the fleet keeps of
/// the sectors only one simulated lock holds (its agent files compress to a
/// third). Cloning shares the bytes.
#[derive(Debug, Clone)]
pub(super) struct Packed {
    bytes: Arc<[u8]>,
    /// The sector's [`Sector::resident`].
    resident: bool,
}

impl<const ERASE: usize> Sector<ERASE> {
    /// The packed form, if it saves at least a quarter.
    pub(super) fn pack(&self) -> Option<Packed> {
        let bytes = lz4_flex::block::compress(&self.buf);
        (bytes.len() * 4 <= self.buf.len() * 3).then(|| Packed {
            bytes: bytes.into(),
            resident: self.resident,
        })
    }

    /// The sector `packed` holds, for a flash of `words` program words per
    /// sector.
    pub(super) fn unpack(packed: &Packed, words: usize) -> Self {
        let len = ERASE + words.div_ceil(8);
        // Only `pack` makes these bytes, from a buffer of this length.
        let buf = lz4_flex::block::decompress(&packed.bytes, len)
            .ok()
            .filter(|b| b.len() == len)
            .unwrap_or_else(|| unreachable!("a packed sector does not unpack"));
        Self {
            buf: buf.into_boxed_slice(),
            resident: packed.resident,
        }
    }
}

impl Packed {
    pub(super) fn resident(&self) -> bool {
        self.resident
    }

    /// Heap bytes.
    pub(super) fn bytes(&self) -> usize {
        self.bytes.len()
    }
}

/// A fast non-cryptographic 64-bit hash (four independent multiply-rotate
/// lanes, then a murmur3 finaliser). Each step is a bijection of the lane
/// state for a fixed input word, so two inputs that differ in one word never
/// collide; collisions are otherwise as rare as for any 64-bit hash, and
/// [`SectorPool`] compares contents on a hit anyway.
fn hash64(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    fn step(lane: u64, w: &[u8; 8]) -> u64 {
        (lane ^ u64::from_le_bytes(*w))
            .wrapping_mul(K)
            .rotate_left(31)
    }
    let mut lanes: [u64; 4] = [
        0x243F_6A88_85A3_08D3,
        0x1319_8A2E_0370_7344,
        0xA409_3822_299F_31D0,
        0x082E_FA98_EC4E_6C89,
    ];
    let (blocks, tail) = bytes.as_chunks::<32>();
    for block in blocks {
        let (words, _) = block.as_chunks::<8>();
        for (lane, w) in lanes.iter_mut().zip(words) {
            *lane = step(*lane, w);
        }
    }
    if !tail.is_empty() {
        let mut last = [0u8; 32];
        last[..tail.len()].copy_from_slice(tail);
        let (words, _) = last.as_chunks::<8>();
        for (lane, w) in lanes.iter_mut().zip(words) {
            *lane = step(*lane, w);
        }
    }
    let mut h = bytes.len() as u64;
    for lane in lanes {
        h = (h ^ lane).wrapping_mul(K).rotate_left(27);
    }
    // murmur3 fmix64
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    h = h.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    h ^ (h >> 33)
}

/// Independently locked parts of the pool, so flashes on several threads
/// can share at once.
const SHARDS: usize = 16;

/// Pooled sectors by hash; and the hashes of sectors packed away by the one
/// flash that held them ([`SectorPool::intern`]).
struct Shard<const ERASE: usize> {
    pooled: HashMap<u64, Vec<Arc<Sector<ERASE>>>>,
    packed: HashSet<u64>,
}

impl<const ERASE: usize> Default for Shard<ERASE> {
    fn default() -> Self {
        Self {
            pooled: HashMap::new(),
            packed: HashSet::new(),
        }
    }
}

/// What [`SectorPool::intern`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Interned {
    /// The sector now points at a pooled copy (or already did).
    Shared,
    /// Its contents are new to the pool: it was pooled, and the caller may
    /// take it back out to pack it ([`SectorPool::pack_out`]).
    New,
    /// New, but a sector with the same contents was packed away before: it
    /// was pooled and stays so, so that every later copy shares it.
    Again,
}

/// Sectors shared by many [`SimFlash`](super::SimFlash)es with the same
/// `ERASE` (any `WRITE`): see [`SimFlash::share`](super::SimFlash::share).
///
/// The pool holds one reference to each pooled sector; [`Self::prune`]
/// drops those no flash holds any more.
pub struct SectorPool<const ERASE: usize = 4096> {
    shards: [Mutex<Shard<ERASE>>; SHARDS],
    /// Flashes pack the new sectors only they hold ([`Self::packing`]).
    pack: bool,
}

impl<const ERASE: usize> SectorPool<ERASE> {
    /// An empty pool.
    pub fn new() -> Self {
        Self {
            shards: core::array::from_fn(|_| Mutex::new(Shard::default())),
            pack: false,
        }
    }

    /// An empty pool through which flashes also pack the sectors only they
    /// hold, between uses ([`SimFlash::share`](super::SimFlash::share)).
    pub fn packing() -> Self {
        Self {
            pack: true,
            ..Self::new()
        }
    }

    pub(super) fn packs(&self) -> bool {
        self.pack
    }

    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard<ERASE>> {
        // Nothing panics while a shard is locked, so a poisoned lock (a
        // panic elsewhere on that thread) still guards a consistent map.
        self.shards[(hash >> 60) as usize % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Point `sector` at the pooled copy of its contents, pooling it if
    /// there is none.
    pub(super) fn intern(&self, sector: &mut Arc<Sector<ERASE>>) -> Interned {
        let hash = sector.hash();
        let mut shard = self.shard(hash);
        let seen = shard.packed.contains(&hash);
        let bucket = shard.pooled.entry(hash).or_default();
        for pooled in bucket.iter() {
            if Arc::ptr_eq(pooled, sector) {
                return Interned::Shared;
            }
            if **pooled == **sector {
                *sector = Arc::clone(pooled);
                return Interned::Shared;
            }
        }
        bucket.push(Arc::clone(sector));
        if seen { Interned::Again } else { Interned::New }
    }

    /// Take `sector` (just pooled: [`Interned::New`]) back out of the pool,
    /// remembering its contents were packed away.
    pub(super) fn pack_out(&self, sector: &Arc<Sector<ERASE>>) {
        let hash = sector.hash();
        let mut shard = self.shard(hash);
        if let Some(bucket) = shard.pooled.get_mut(&hash) {
            bucket.retain(|pooled| !Arc::ptr_eq(pooled, sector));
            if bucket.is_empty() {
                shard.pooled.remove(&hash);
            }
        }
        shard.packed.insert(hash);
    }

    /// Drop the pooled sectors that only the pool still holds; returns how
    /// many.
    pub fn prune(&self) -> usize {
        let mut dropped = 0;
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            shard.pooled.retain(|_, bucket| {
                let before = bucket.len();
                // Only the pool can hand out new references to a pooled
                // sector, and it is locked: a count of 1 stays 1.
                bucket.retain(|s| Arc::strong_count(s) > 1);
                dropped += before - bucket.len();
                !bucket.is_empty()
            });
            if shard.pooled.capacity() > 2 * shard.pooled.len() + 16 {
                shard.pooled.shrink_to_fit();
            }
        }
        dropped
    }

    /// Pooled sectors, and the bytes their contents take (data and written
    /// bits).
    pub fn stats(&self) -> (usize, usize) {
        let held = self.held();
        (held.sectors, held.bytes)
    }
}

/// What a [`SectorPool`] holds ([`SectorPool::held`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    /// Distinct sectors pooled.
    pub sectors: usize,
    /// The bytes their contents take (data and written bits).
    pub bytes: usize,
    /// Of those sectors, the ones a single flash holds (nothing shared).
    pub single: usize,
}

impl<const ERASE: usize> SectorPool<ERASE> {
    /// What the pool holds, and how much of it only one flash uses.
    pub fn held(&self) -> Held {
        let mut held = Held::default();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            for s in shard.pooled.values().flatten() {
                held.sectors += 1;
                held.bytes += s.bytes();
                // The pool's own reference and one flash's.
                held.single += usize::from(Arc::strong_count(s) == 2);
            }
        }
        held
    }
}

impl<const ERASE: usize> Default for SectorPool<ERASE> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const ERASE: usize> core::fmt::Debug for SectorPool<ERASE> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (sectors, bytes) = self.stats();
        f.debug_struct("SectorPool")
            .field("sectors", &sectors)
            .field("bytes", &bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_separates_single_word_changes() {
        let a = [0u8; 4224];
        let mut seen = std::collections::HashSet::new();
        assert!(seen.insert(hash64(&a)));
        for i in (0..a.len()).step_by(7) {
            let mut b = a;
            b[i] = 1;
            assert!(seen.insert(hash64(&b)), "collision at {i}");
        }
        assert_ne!(hash64(&[0; 8]), hash64(&[0; 16]), "length counts");
        assert_ne!(hash64(&[1, 2, 3]), hash64(&[1, 2, 3, 0]), "length counts");
    }

    #[test]
    fn pool_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<SectorPool<4096>>();
        check::<Arc<Sector<4096>>>();
    }
}
