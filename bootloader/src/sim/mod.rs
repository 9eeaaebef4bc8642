//! A NOR-flash simulator with power-cut injection, for every crate's tests.
//!
//! What it models (after sequential-storage's `mock_flash.rs` and MCUboot's
//! `simflash`):
//!
//! - erase sets bytes to the erased value: `0xFF`, or `0x00` for
//!   [`Erased::Zero`] parts;
//! - a write may only move bits away from the erased value (NOR programming
//!   can clear bits, never set them); anything else is an error, not a silent
//!   AND, so driver bugs show;
//! - offsets and lengths must be aligned to `WRITE` / `ERASE`; optionally
//!   ([`DoubleWrite::Forbid`], ECC flash) a word may be written only once
//!   between erases;
//! - counters: reads, writes, erases and bytes moved ([`Stats`]), and the
//!   time they would take on the reference board's flash, typical and
//!   maximum ([`timing`]);
//! - power cuts: after the N-th mutating operation, or in the middle of it
//!   (a prefix of the write lands, the next word is partially programmed; a
//!   prefix of the erase completes, the next byte is half-erased). After a cut
//!   every operation fails with [`SimError::PowerLost`] until [`SimFlash::reboot`],
//!   which keeps the contents, as a real reset does.
//!
//! Memory is kept per sector and an erased sector holds none, so a fleet of
//! simulated locks costs what their flash actually holds (the fleet
//! simulator runs tens of thousands of them in one process). A sector that
//! is not erased keeps its bytes and its written-word bits together behind an
//! `Arc`, copied on write: cloning a flash copies no sector, and
//! [`SimFlash::share`] swaps the sectors changed since its last call for
//! identical ones in a [`SectorPool`], so locks holding the same images hold
//! each of their sectors once.
//!
//! `SimFlash` implements the blocking `embedded-storage` traits (bootloader,
//! embassy-boot) and the async `embedded-storage-async` traits
//! (sequential-storage).

mod pool;
pub mod timing;
pub mod xip;

use core::ops::Range;
use std::sync::Arc;
use std::vec;
use std::vec::Vec;

pub use pool::{Held, SectorPool};
use pool::{Interned, Packed, Sector};

use embedded_storage::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// Value of an erased byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erased {
    /// Erased bytes read `0xFF`; programming clears bits (most NOR).
    Ones,
    /// Erased bytes read `0x00`; programming sets bits (some MCU flashes).
    Zero,
}

impl Erased {
    /// The erased byte value.
    pub const fn byte(self) -> u8 {
        match self {
            Self::Ones => 0xFF,
            Self::Zero => 0x00,
        }
    }
}

/// Whether a word may be programmed again before it is erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoubleWrite {
    /// Allowed, as long as it only moves bits away from the erased value
    /// (QSPI NOR such as the reference board's).
    Allow,
    /// Refused (flash with ECC, where a second program corrupts the word).
    Forbid,
}

/// When power is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The N-th mutating operation (1-based, counted from when the cut is
    /// armed) completes, then power is lost.
    After(u64),
    /// The N-th mutating operation is interrupted once `done` bytes of it
    /// have landed; the byte after them is half-programmed or half-erased.
    During {
        /// Which operation (1-based).
        op: u64,
        /// Bytes of it that land completely (clamped to the operation's length).
        done: usize,
    },
    /// The N-th mutating operation is interrupted half-way: `len / 2 + 1`
    /// bytes land (so a write is torn inside a word) and the next byte is half
    /// done.
    Midway(u64),
}

/// Errors the simulator reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimError {
    /// Offset or length not aligned to the read/write/erase unit.
    NotAligned,
    /// Outside the flash.
    OutOfBounds,
    /// A write would set a bit back towards the erased value at this offset.
    WouldSetBits(u32),
    /// A word was written twice without erase, with [`DoubleWrite::Forbid`].
    DoubleWrite(u32),
    /// Power was cut; reboot the simulator.
    PowerLost,
}

impl NorFlashError for SimError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Self::NotAligned => NorFlashErrorKind::NotAligned,
            Self::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            _ => NorFlashErrorKind::Other,
        }
    }
}

impl core::fmt::Display for SimError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for SimError {}

/// Operation counters.
/// Deterministic pseudo-random numbers for tests and sweeps on the
/// simulator (xorshift64; the seed must not be 0).
#[derive(Debug, Clone)]
pub struct XorShift(pub u64);

impl XorShift {
    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Read calls.
    pub reads: u64,
    /// Write (program) calls.
    pub writes: u64,
    /// Erase calls.
    pub erases: u64,
    /// Sectors erased.
    pub sectors_erased: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// Bytes programmed.
    pub bytes_written: u64,
    /// Time all this took on a W25Q32JV, typical figures (ns; [`timing`]).
    pub busy_typ_ns: u64,
    /// The same with the datasheet's maximum figures.
    pub busy_max_ns: u64,
}

impl Stats {
    /// Mutating operations (writes + erases): the points where power can be cut.
    pub fn mutating_ops(&self) -> u64 {
        self.writes + self.erases
    }

    /// Counters accumulated since `earlier`.
    pub fn since(&self, earlier: &Stats) -> Stats {
        Stats {
            reads: self.reads - earlier.reads,
            writes: self.writes - earlier.writes,
            erases: self.erases - earlier.erases,
            sectors_erased: self.sectors_erased - earlier.sectors_erased,
            bytes_read: self.bytes_read - earlier.bytes_read,
            bytes_written: self.bytes_written - earlier.bytes_written,
            busy_typ_ns: self.busy_typ_ns - earlier.busy_typ_ns,
            busy_max_ns: self.busy_max_ns - earlier.busy_max_ns,
        }
    }
}

/// A mutating operation, as recorded by [`SimFlash::record_ops`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpRecord {
    /// Erase (true) or write (false).
    pub erase: bool,
    /// Byte offset.
    pub offset: u32,
    /// Bytes.
    pub len: u32,
}

/// The sectors a run of `len` bytes from `at` touches: (sector, offset in
/// it, the run's bytes that fall in it, relative to the run).
fn spans<const ERASE: usize>(
    at: usize,
    len: usize,
) -> impl Iterator<Item = (usize, usize, Range<usize>)> {
    let mut done = 0;
    core::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let (s, o) = ((at + done) / ERASE, (at + done) % ERASE);
        let n = (ERASE - o).min(len - done);
        let r = done..done + n;
        done += n;
        Some((s, o, r))
    })
}

/// Whether every byte of `bytes` is `fill`, eight at a time.
fn all_are(bytes: &[u8], fill: u8) -> bool {
    let wide = u64::from_ne_bytes([fill; 8]);
    let (blocks, tail) = bytes.as_chunks::<8>();
    blocks.iter().all(|b| u64::from_ne_bytes(*b) == wide) && tail.iter().all(|&b| b == fill)
}

/// The first byte where programming `new` over `old` would have to move a
/// bit towards the erased value (`ones`: erased is `0xFF`, so a bit set in
/// `new` must be set in `old`), eight bytes at a time.
fn first_refused(old: &[u8], new: &[u8], ones: bool) -> Option<usize> {
    let bad = |o: u64, n: u64| if ones { o & n != n } else { o | n != n };
    let (o8, _) = old.as_chunks::<8>();
    let (n8, _) = new.as_chunks::<8>();
    let clean = o8
        .iter()
        .zip(n8)
        .position(|(o, n)| bad(u64::from_ne_bytes(*o), u64::from_ne_bytes(*n)));
    let from = clean.map_or(n8.len() * 8, |k| k * 8);
    old[from..]
        .iter()
        .zip(&new[from..])
        .position(|(&o, &n)| bad(u64::from(o), u64::from(n)))
        .map(|i| from + i)
}

/// Sectors per group of the sector table.
const GROUP: usize = 64;

type Group<const ERASE: usize> = [Option<Arc<Sector<ERASE>>>; GROUP];

/// Flash contents, sector by sector; an erased sector holds no memory, and
/// the others are shared copy-on-write ([`pool`]).
#[derive(Debug, Clone)]
struct Sectors<const WRITE: usize, const ERASE: usize> {
    size: usize,
    fill: u8,
    /// By groups of [`GROUP`] sectors; a group with nothing in it holds no
    /// table (a lock's flash is mostly erased: a flat table of a 4 MiB
    /// part would cost 8 KiB per simulated lock).
    groups: Vec<Option<Box<Group<ERASE>>>>,
    /// One bit per sector changed (or unpacked) since the last
    /// [`SimFlash::share`].
    dirty: Vec<u64>,
    /// Sectors held packed (their slot is empty), by sector.
    packed: Vec<(usize, Packed)>,
    /// Sectors unpacked since the last share and not changed since, with
    /// their packed form (put back as it was at the next share).
    opened: Vec<(usize, Packed)>,
}

impl<const WRITE: usize, const ERASE: usize> Sectors<WRITE, ERASE> {
    /// Program words per sector.
    const WORDS: usize = ERASE / WRITE;

    fn new(size: usize, fill: u8) -> Self {
        let n = size / ERASE;
        Self {
            size,
            fill,
            groups: (0..n.div_ceil(GROUP)).map(|_| None).collect(),
            dirty: vec![0; n.div_ceil(64)],
            packed: Vec::new(),
            opened: Vec::new(),
        }
    }

    /// Sector `s`'s slot, if its group has a table.
    fn slot(&self, s: usize) -> Option<&Arc<Sector<ERASE>>> {
        self.groups[s / GROUP].as_ref()?[s % GROUP].as_ref()
    }

    /// Sector `s`'s slot, giving its group a table if it had none.
    fn slot_mut(&mut self, s: usize) -> &mut Option<Arc<Sector<ERASE>>> {
        &mut self.groups[s / GROUP].get_or_insert_with(|| Box::new([const { None }; GROUP]))
            [s % GROUP]
    }

    /// Empty sector `s`'s slot; a group left with none drops its table.
    fn clear(&mut self, s: usize) {
        if let Some(group) = &mut self.groups[s / GROUP] {
            group[s % GROUP] = None;
            if group.iter().all(Option::is_none) {
                self.groups[s / GROUP] = None;
            }
        }
    }

    fn is_packed(&self, s: usize) -> bool {
        self.packed.binary_search_by_key(&s, |&(t, _)| t).is_ok()
    }

    /// Take sector `s`'s packed form, if it is packed.
    fn unstow(&mut self, s: usize) -> Option<Packed> {
        let k = self.packed.binary_search_by_key(&s, |&(t, _)| t).ok()?;
        Some(self.packed.remove(k).1)
    }

    /// Unpack the packed sectors among those `len` bytes from `at` touch.
    #[inline]
    fn open(&mut self, at: usize, len: usize) {
        if !self.packed.is_empty() && len != 0 {
            self.unpack(at, len);
        }
    }

    fn unpack(&mut self, at: usize, len: usize) {
        for s in at / ERASE..=(at + len - 1) / ERASE {
            let Some(packed) = self.unstow(s) else {
                continue;
            };
            *self.slot_mut(s) = Some(Arc::new(Sector::unpack(&packed, Self::WORDS)));
            self.dirty[s / 64] |= 1 << (s % 64);
            self.opened.push((s, packed));
        }
    }

    /// Sector `s` is about to change or be erased: its packed form, if it
    /// was unpacked, no longer holds.
    fn changed(&mut self, s: usize) {
        if !self.opened.is_empty() {
            self.opened.retain(|&(t, _)| t != s);
        }
    }

    fn len(&self) -> usize {
        self.size
    }

    fn sector(&self, s: usize) -> Option<&Sector<ERASE>> {
        self.slot(s).map(|sector| &**sector)
    }

    /// Sector `s`, materialised (erased) if it was not, unshared, and marked
    /// dirty.
    fn sector_mut(&mut self, s: usize) -> &mut Sector<ERASE> {
        self.open(s * ERASE, 1);
        self.changed(s);
        self.dirty[s / 64] |= 1 << (s % 64);
        let fill = self.fill;
        Arc::make_mut(
            self.slot_mut(s)
                .get_or_insert_with(|| Arc::new(Sector::blank(fill, Self::WORDS))),
        )
    }

    #[inline]
    fn read(&self, at: usize, out: &mut [u8]) {
        let (s, o) = (at / ERASE, at % ERASE);
        if o + out.len() <= ERASE {
            // Within one sector (every small read; a word, such as
            // embassy-boot's progress scan reads, byte by byte rather than
            // through a call to memcpy).
            match (self.sector(s), out.len()) {
                (Some(sector), 0..=8) => {
                    for (d, b) in out.iter_mut().zip(&sector.data()[o..]) {
                        *d = *b;
                    }
                }
                (Some(sector), n) => out.copy_from_slice(&sector.data()[o..o + n]),
                (None, _) => out.fill(self.fill),
            }
            return;
        }
        self.read_spans(at, out);
    }

    fn read_spans(&self, at: usize, out: &mut [u8]) {
        for (s, o, r) in spans::<ERASE>(at, out.len()) {
            let n = r.len();
            match self.sector(s) {
                Some(sector) => out[r].copy_from_slice(&sector.data()[o..o + n]),
                None => out[r].fill(self.fill),
            }
        }
    }

    fn byte(&self, at: usize) -> u8 {
        match self.sector(at / ERASE) {
            Some(sector) => sector.data()[at % ERASE],
            None => self.fill,
        }
    }

    /// Store `data` at `at`. A sector is materialised only for a byte other
    /// than the erased value; one that already is takes any bytes.
    fn write(&mut self, at: usize, data: &[u8]) {
        self.open(at, data.len());
        for (s, o, r) in spans::<ERASE>(at, data.len()) {
            let head = &data[r];
            let n = head.len();
            match self.sector(s) {
                // Unchanged: keep sharing it.
                Some(sector) if sector.resident() && sector.data()[o..o + n] == *head => {}
                Some(sector) if sector.resident() => {
                    self.sector_mut(s).data_mut()[o..o + n].copy_from_slice(head);
                }
                // Not materialised: its data is all erased.
                _ if !all_are(head, self.fill) => {
                    self.sector_mut(s).data_mut()[o..o + n].copy_from_slice(head);
                }
                _ => {}
            }
        }
    }

    fn set(&mut self, at: usize, value: u8) {
        self.write(at, &[value]);
    }

    /// Mark written the words of `bytes` (whole words, from the
    /// word-aligned `at`) that hold a byte other than the erased value.
    fn mark_written(&mut self, at: usize, bytes: &[u8]) {
        self.open(at, bytes.len());
        let fill = [self.fill; WRITE];
        for (s, o, r) in spans::<ERASE>(at, bytes.len()) {
            let first = o / WRITE;
            let (words, _) = bytes[r].as_chunks::<WRITE>();
            // Words that program something and are not marked yet; a
            // (shared) sector is left alone if there are none.
            let pending = |sector: Option<&Sector<ERASE>>| {
                words.iter().enumerate().any(|(k, word)| {
                    *word != fill && !sector.is_some_and(|sector| sector.written(first + k))
                })
            };
            if !pending(self.sector(s)) {
                continue;
            }
            let sector = self.sector_mut(s);
            for (k, word) in words.iter().enumerate() {
                if *word != fill {
                    sector.set_written(first + k);
                }
            }
        }
    }

    /// Set `start..end` to the erased value and clear the written bits of
    /// the words wholly inside it (`start` is word-aligned); whole sectors
    /// release their memory.
    fn erase(&mut self, start: usize, end: usize) {
        for (s, o, r) in spans::<ERASE>(start, end - start) {
            let n = r.len();
            if n == ERASE {
                self.unstow(s);
                self.changed(s);
                self.clear(s);
            } else if self.is_packed(s) || self.slot(s).is_some() {
                let fill = self.fill;
                let sector = self.sector_mut(s);
                sector.erase_part(o..o + n, fill, WRITE);
                if sector.is_blank() {
                    self.clear(s);
                }
            }
        }
    }

    fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.size];
        self.read(0, &mut v);
        for (s, packed) in &self.packed {
            let sector = Sector::<ERASE>::unpack(packed, Self::WORDS);
            v[s * ERASE..(s + 1) * ERASE].copy_from_slice(sector.data());
        }
        v
    }

    /// Non-erased sectors (materialised data), and how many of them only
    /// this flash holds.
    fn resident(&self) -> (usize, usize) {
        let mut all = 0;
        let mut unique = 0;
        for sector in self
            .groups
            .iter()
            .flatten()
            .flat_map(|g| g.iter())
            .flatten()
        {
            if sector.resident() {
                all += 1;
                if Arc::strong_count(sector) == 1 {
                    unique += 1;
                }
            }
        }
        // A packed sector is this flash's alone (its bytes may be shared
        // with a clone, but it takes far less than a sector).
        let packed = self.packed.iter().filter(|(_, p)| p.resident()).count();
        (all + packed, unique + packed)
    }

    /// Heap bytes of the packed sectors.
    fn packed_bytes(&self) -> usize {
        self.packed.iter().map(|(_, p)| p.bytes()).sum()
    }

    /// Swap the dirty sectors for pooled copies, or pack those no other
    /// flash holds; the rest are untouched.
    fn share(&mut self, pool: &SectorPool<ERASE>) {
        // Unpacked but unchanged: back to the packed form.
        for (s, packed) in core::mem::take(&mut self.opened) {
            self.dirty[s / 64] &= !(1 << (s % 64));
            self.clear(s);
            self.stow(s, packed);
        }
        for i in 0..self.dirty.len() {
            while self.dirty[i] != 0 {
                let s = i * 64 + self.dirty[i].trailing_zeros() as usize;
                self.dirty[i] &= self.dirty[i] - 1;
                let Some(sector) = self.groups[s / GROUP]
                    .as_mut()
                    .and_then(|g| g[s % GROUP].as_mut())
                else {
                    continue;
                };
                // New contents that only this flash holds (the pool's
                // reference and ours) are packed, if that saves memory.
                if pool.intern(sector) == Interned::New
                    && pool.packs()
                    && Arc::strong_count(sector) == 2
                    && let Some(packed) = sector.pack()
                {
                    pool.pack_out(sector);
                    self.clear(s);
                    self.stow(s, packed);
                }
            }
        }
    }

    fn stow(&mut self, s: usize, packed: Packed) {
        let k = self.packed.partition_point(|&(t, _)| t < s);
        self.packed.insert(k, (s, packed));
    }
}

/// Simulated NOR flash with `WRITE`-byte program units and `ERASE`-byte sectors.
#[derive(Debug, Clone)]
pub struct SimFlash<const WRITE: usize = 4, const ERASE: usize = 4096> {
    log: Option<Vec<OpRecord>>,
    /// Contents and written-word bits, per sector.
    mem: Sectors<WRITE, ERASE>,
    erased: Erased,
    double_write: DoubleWrite,
    stats: Stats,
    cut: Option<Cut>,
    ops_since_armed: u64,
    dead: bool,
}

impl<const WRITE: usize, const ERASE: usize> SimFlash<WRITE, ERASE> {
    const GEOMETRY: () = assert!(WRITE > 0 && ERASE > 0 && ERASE.is_multiple_of(WRITE));

    /// A fully erased flash of `size` bytes (a multiple of `ERASE`).
    pub fn new(size: usize, erased: Erased) -> Self {
        let () = Self::GEOMETRY;
        let size = size.next_multiple_of(ERASE);
        Self {
            log: None,
            mem: Sectors::new(size, erased.byte()),
            erased,
            double_write: DoubleWrite::Allow,
            stats: Stats::default(),
            cut: None,
            ops_since_armed: 0,
            dead: false,
        }
    }

    /// A flash holding `contents` (for example a dump taken before a reboot).
    pub fn from_contents(contents: Vec<u8>, erased: Erased) -> Self {
        let mut f = Self::new(contents.len(), erased);
        f.mem.write(0, &contents);
        let whole = contents.len() / WRITE * WRITE;
        f.mem.mark_written(0, &contents[..whole]);
        if whole < contents.len() {
            // The rest of the last word reads erased.
            let mut last = [erased.byte(); WRITE];
            last[..contents.len() - whole].copy_from_slice(&contents[whole..]);
            f.mem.mark_written(whole, &last);
        }
        f
    }

    /// Start recording every mutating operation (for tests that need to know
    /// which operation touched what).
    pub fn record_ops(&mut self) {
        self.log = Some(Vec::new());
    }

    /// Operations recorded since [`Self::record_ops`], in order.
    pub fn recorded(&self) -> &[OpRecord] {
        self.log.as_deref().unwrap_or(&[])
    }

    /// Choose the double-write policy.
    pub fn with_double_write(mut self, policy: DoubleWrite) -> Self {
        self.double_write = policy;
        self
    }

    /// A copy of the raw contents.
    pub fn contents(&self) -> Vec<u8> {
        self.mem.to_vec()
    }

    /// Bytes of memory holding sectors that are not erased (the simulator's
    /// own footprint, not a flash property).
    pub fn resident_bytes(&self) -> usize {
        self.mem.resident().0 * ERASE
    }

    /// The part of [`Self::resident_bytes`] in sectors that only this flash
    /// holds: not shared with a clone or through a [`SectorPool`].
    pub fn unique_resident_bytes(&self) -> usize {
        self.mem.resident().1 * ERASE
    }

    /// Heap bytes of the sectors [`Self::share`] packed: sectors only this
    /// flash held, packed while they are not in use.
    pub fn packed_bytes(&self) -> usize {
        self.mem.packed_bytes()
    }

    /// Dedupe through `pool`: every sector written or erased in part since
    /// the last call (or since creation) is replaced by the pooled sector
    /// with the same contents and written bits, or pooled if there is none.
    /// Sectors not changed since are not looked at, so this costs what
    /// changed. Later writes copy a shared sector first (copy-on-write), so
    /// neither the pool nor other flashes see them.
    ///
    /// With a [`SectorPool::packing`] pool, a sector whose contents are new
    /// to the pool and held by this flash alone is packed instead, if that
    /// saves a quarter or more (a
    /// simulated lock's agent files: a third of the size); it is unpacked
    /// when an operation touches it and packed again at the next call. The
    /// pool remembers such contents, so the next flash to hold them pools
    /// its copy for everyone after it.
    pub fn share(&mut self, pool: &SectorPool<ERASE>) {
        self.mem.share(pool);
    }

    /// Erased value.
    pub fn erased(&self) -> Erased {
        self.erased
    }

    /// Counters since creation.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Arm a power cut; operation numbers count from now.
    pub fn arm(&mut self, cut: Cut) {
        self.cut = Some(cut);
        self.ops_since_armed = 0;
    }

    /// Whether power has been cut.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// A reset: contents are kept. If power had been cut it returns and the
    /// cut is spent; if not, an armed cut stays armed and keeps counting, so
    /// a cut can land after any number of ordinary resets.
    pub fn reboot(&mut self) {
        if self.dead {
            self.dead = false;
            self.cut = None;
        }
    }

    /// Cancel an armed cut that has not fired.
    pub fn disarm(&mut self) {
        self.cut = None;
    }

    /// Write directly, bypassing checks and counters (factory programming in tests).
    pub fn program_raw(&mut self, offset: usize, data: &[u8]) {
        self.mem.write(offset, data);
    }

    fn check(&self, offset: u32, len: usize, align: usize) -> Result<(usize, usize), SimError> {
        if self.dead {
            return Err(SimError::PowerLost);
        }
        let start = offset as usize;
        if !start.is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(SimError::NotAligned);
        }
        let end = start.checked_add(len).ok_or(SimError::OutOfBounds)?;
        if end > self.mem.len() {
            return Err(SimError::OutOfBounds);
        }
        Ok((start, end))
    }

    /// Count a mutating op; return how many bytes of it land if power is cut
    /// now (`Some`), or `None` if it completes.
    fn next_op(&mut self, len: usize) -> Option<usize> {
        self.ops_since_armed += 1;
        match self.cut {
            Some(Cut::During { op, done }) if op == self.ops_since_armed => Some(done.min(len)),
            Some(Cut::Midway(op)) if op == self.ops_since_armed => Some((len / 2 + 1).min(len)),
            _ => None,
        }
    }

    fn after_op(&mut self) {
        if let Some(Cut::After(op)) = self.cut
            && op == self.ops_since_armed
        {
            self.dead = true;
        }
    }

    fn program_byte(&self, old: u8, new: u8) -> u8 {
        match self.erased {
            Erased::Ones => old & new,
            Erased::Zero => old | new,
        }
    }

    /// Half-program: only the high nibble of the change lands.
    fn half_program(&self, old: u8, new: u8) -> u8 {
        let full = self.program_byte(old, new);
        (full & 0xF0) | (old & 0x0F)
    }
}

impl<const WRITE: usize, const ERASE: usize> ErrorType for SimFlash<WRITE, ERASE> {
    type Error = SimError;
}

impl<const WRITE: usize, const ERASE: usize> ReadNorFlash for SimFlash<WRITE, ERASE> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SimError> {
        let (start, end) = self.check(offset, bytes.len(), 1)?;
        self.mem.open(start, end - start);
        self.mem.read(start, &mut bytes[..end - start]);
        self.stats.reads += 1;
        self.stats.bytes_read += bytes.len() as u64;
        self.stats.busy_typ_ns += timing::W25Q32JV_TYPICAL.read_ns(bytes.len() as u64);
        self.stats.busy_max_ns += timing::W25Q32JV_MAX.read_ns(bytes.len() as u64);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl<const WRITE: usize, const ERASE: usize> NorFlash for SimFlash<WRITE, ERASE> {
    const WRITE_SIZE: usize = WRITE;
    const ERASE_SIZE: usize = ERASE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), SimError> {
        let len = (to as usize)
            .checked_sub(from as usize)
            .ok_or(SimError::OutOfBounds)?;
        let (start, end) = self.check(from, len, ERASE)?;
        self.mem.open(start, len);
        let e = self.erased.byte();
        let torn = self.next_op(len);
        if let Some(log) = &mut self.log {
            log.push(OpRecord {
                erase: true,
                offset: from,
                len: len as u32,
            });
        }
        self.stats.erases += 1;
        let sectors = len.div_ceil(ERASE) as u64;
        self.stats.busy_typ_ns += timing::W25Q32JV_TYPICAL.erase_ns(sectors);
        self.stats.busy_max_ns += timing::W25Q32JV_MAX.erase_ns(sectors);
        let done = torn.unwrap_or(len);
        self.mem.erase(start, start + done);
        if torn.is_some() {
            if start + done < end {
                // Half-erased byte: the low nibble reached the erased state.
                let b = self.mem.byte(start + done);
                self.mem.set(start + done, (b & 0xF0) | (e & 0x0F));
            }
            self.dead = true;
            return Err(SimError::PowerLost);
        }
        self.stats.sectors_erased += (len / ERASE) as u64;
        self.after_op();
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimError> {
        let (start, _) = self.check(offset, bytes.len(), WRITE)?;
        self.mem.open(start, bytes.len());
        for (s, o, r) in spans::<ERASE>(start, bytes.len()) {
            // An erased sector takes any value (its bytes are the erased one).
            let Some(sector) = self.mem.sector(s) else {
                continue;
            };
            let old = &sector.data()[o..o + r.len()];
            let ones = self.erased == Erased::Ones;
            if let Some(i) = first_refused(old, &bytes[r.clone()], ones) {
                return Err(SimError::WouldSetBits((start + r.start + i) as u32));
            }
        }
        let e = self.erased.byte();
        if self.double_write == DoubleWrite::Forbid {
            let fill = [e; WRITE];
            for (s, o, r) in spans::<ERASE>(start, bytes.len()) {
                // An erased sector has no word written.
                let Some(sector) = self.mem.sector(s) else {
                    continue;
                };
                let (words, _) = bytes[r.clone()].as_chunks::<WRITE>();
                // Writing an all-erased word programs nothing.
                if let Some(k) = words
                    .iter()
                    .enumerate()
                    .position(|(k, word)| *word != fill && sector.written(o / WRITE + k))
                {
                    return Err(SimError::DoubleWrite((start + r.start + k * WRITE) as u32));
                }
            }
        }
        let torn = self.next_op(bytes.len());
        if let Some(log) = &mut self.log {
            log.push(OpRecord {
                erase: false,
                offset,
                len: bytes.len() as u32,
            });
        }
        self.stats.writes += 1;
        self.stats.busy_typ_ns += timing::W25Q32JV_TYPICAL.program_ns(start, bytes.len());
        self.stats.busy_max_ns += timing::W25Q32JV_MAX.program_ns(start, bytes.len());
        let done = torn.unwrap_or(bytes.len());
        // The check above means programming gives exactly the new bytes.
        self.mem.write(start, &bytes[..done]);
        // A word counts as written once any byte of it has been (partly) programmed.
        let touched = if torn.is_some() {
            (done + 1).min(bytes.len())
        } else {
            bytes.len()
        };
        self.mem
            .mark_written(start, &bytes[..touched.div_ceil(WRITE) * WRITE]);
        if torn.is_some() {
            if done < bytes.len() {
                let old = self.mem.byte(start + done);
                self.mem
                    .set(start + done, self.half_program(old, bytes[done]));
            }
            self.stats.bytes_written += done as u64;
            self.dead = true;
            return Err(SimError::PowerLost);
        }
        self.stats.bytes_written += bytes.len() as u64;
        self.after_op();
        Ok(())
    }
}

/// Re-programming a word is allowed when the policy says so.
impl<const WRITE: usize, const ERASE: usize> MultiwriteNorFlash for SimFlash<WRITE, ERASE> {}

impl<const WRITE: usize, const ERASE: usize> embedded_storage_async::nor_flash::ReadNorFlash
    for SimFlash<WRITE, ERASE>
{
    const READ_SIZE: usize = 1;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SimError> {
        ReadNorFlash::read(self, offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl<const WRITE: usize, const ERASE: usize> embedded_storage_async::nor_flash::NorFlash
    for SimFlash<WRITE, ERASE>
{
    const WRITE_SIZE: usize = WRITE;
    const ERASE_SIZE: usize = ERASE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), SimError> {
        NorFlash::erase(self, from, to)
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimError> {
        NorFlash::write(self, offset, bytes)
    }
}

impl<const WRITE: usize, const ERASE: usize> embedded_storage_async::nor_flash::MultiwriteNorFlash
    for SimFlash<WRITE, ERASE>
{
}

#[cfg(test)]
mod tests {
    use super::*;

    type F = SimFlash<4, 256>;

    #[test]
    fn erase_sets_erased_value_and_writes_only_clear_bits() {
        for erased in [Erased::Ones, Erased::Zero] {
            let mut f = F::new(1024, erased);
            let e = erased.byte();
            assert!(f.contents().iter().all(|&b| b == e));
            let data = if e == 0xFF { [0x0F; 4] } else { [0xF0; 4] };
            f.write(0, &data).unwrap();
            // Moving bits back towards the erased value is refused.
            let back = if e == 0xFF { [0x1F; 4] } else { [0x70; 4] };
            assert_eq!(f.write(0, &back), Err(SimError::WouldSetBits(0)));
            f.erase(0, 256).unwrap();
            assert!(f.contents()[..256].iter().all(|&b| b == e));
            f.write(0, &back).unwrap();
        }
    }

    #[test]
    fn alignment_and_bounds_are_checked() {
        let mut f = F::new(1024, Erased::Ones);
        assert_eq!(f.write(2, &[0; 4]), Err(SimError::NotAligned));
        assert_eq!(f.write(0, &[0; 3]), Err(SimError::NotAligned));
        assert_eq!(f.erase(0, 100), Err(SimError::NotAligned));
        assert_eq!(f.erase(256, 0), Err(SimError::OutOfBounds));
        assert_eq!(f.write(1024, &[0; 4]), Err(SimError::OutOfBounds));
        let mut buf = [0u8; 8];
        assert_eq!(f.read(1020, &mut buf), Err(SimError::OutOfBounds));
    }

    #[test]
    fn double_write_policy() {
        let mut f = F::new(1024, Erased::Ones).with_double_write(DoubleWrite::Forbid);
        f.write(0, &[0xF0; 4]).unwrap();
        assert!(matches!(
            f.write(0, &[0x00; 4]),
            Err(SimError::DoubleWrite(_))
        ));
        let mut g = F::new(1024, Erased::Ones);
        g.write(0, &[0xF0; 4]).unwrap();
        g.write(0, &[0x00; 4]).unwrap();
    }

    #[test]
    fn counters() {
        let mut f = F::new(1024, Erased::Ones);
        f.erase(0, 512).unwrap();
        f.write(0, &[0; 8]).unwrap();
        let mut b = [0; 16];
        f.read(0, &mut b).unwrap();
        let s = f.stats();
        assert_eq!(
            (
                s.erases,
                s.sectors_erased,
                s.writes,
                s.bytes_written,
                s.reads,
                s.bytes_read
            ),
            (1, 2, 1, 8, 1, 16)
        );
        assert_eq!(s.mutating_ops(), 2);
    }

    #[test]
    fn power_cut_after_op_and_reboot_keeps_contents() {
        let mut f = F::new(1024, Erased::Ones);
        f.arm(Cut::After(2));
        f.write(0, &[1; 4]).unwrap();
        f.write(4, &[2; 4]).unwrap();
        assert!(f.is_dead());
        assert_eq!(f.write(8, &[3; 4]), Err(SimError::PowerLost));
        let mut b = [0; 4];
        assert_eq!(f.read(0, &mut b), Err(SimError::PowerLost));
        f.reboot();
        f.read(4, &mut b).unwrap();
        assert_eq!(b, [2; 4]);
        let again = F::from_contents(f.contents().to_vec(), Erased::Ones);
        assert_eq!(again.contents(), f.contents());
    }

    #[test]
    fn erased_sectors_hold_no_memory() {
        let mut f = F::new(1024, Erased::Ones);
        assert_eq!(f.resident_bytes(), 0);
        // Writing erased bytes materialises nothing.
        f.write(0, &[0xFF; 8]).unwrap();
        assert_eq!(f.resident_bytes(), 0);
        f.write(300, &[0x12; 4]).unwrap();
        f.write(508, &[0x34; 8]).unwrap();
        assert_eq!(f.resident_bytes(), 2 * 256, "a write across a boundary");
        let mut b = [0; 12];
        f.read(500, &mut b).unwrap();
        assert_eq!(
            b,
            [
                0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x34, 0x34, 0x34, 0x34
            ]
        );
        f.erase(256, 768).unwrap();
        assert_eq!(f.resident_bytes(), 0);
        assert!(f.contents().iter().all(|&b| b == 0xFF));
    }

    #[test]
    fn power_cut_during_write_leaves_partial_word() {
        let mut f = F::new(1024, Erased::Ones);
        f.arm(Cut::During { op: 1, done: 5 });
        assert_eq!(f.write(0, &[0x00; 8]), Err(SimError::PowerLost));
        f.reboot();
        let c = &f.contents()[..8];
        assert_eq!(&c[..5], &[0; 5]);
        assert_eq!(c[5], 0x0F, "half-programmed byte");
        assert_eq!(&c[6..], &[0xFF; 2]);
    }

    #[test]
    fn power_cut_during_erase_leaves_partial_sector() {
        let mut f = F::new(1024, Erased::Ones);
        f.write(0, &[0x00; 256]).unwrap();
        f.arm(Cut::During { op: 1, done: 100 });
        assert_eq!(f.erase(0, 256), Err(SimError::PowerLost));
        f.reboot();
        let c = f.contents();
        assert!(c[..100].iter().all(|&b| b == 0xFF));
        assert_eq!(c[100], 0x0F);
        assert!(c[101..256].iter().all(|&b| b == 0));
    }

    #[test]
    fn a_clone_shares_sectors_and_neither_side_sees_the_other() {
        let mut f = F::new(1024, Erased::Ones);
        f.write(0, &[0x11; 8]).unwrap();
        f.write(256, &[0x22; 256]).unwrap();
        f.write(600, &[0x33; 4]).unwrap();
        assert_eq!(f.unique_resident_bytes(), 3 * 256);
        let mut g = f.clone();
        assert_eq!(g.resident_bytes(), 3 * 256);
        assert_eq!(g.unique_resident_bytes(), 0);
        assert_eq!(f.unique_resident_bytes(), 0);
        let before = f.contents();

        // A write on the clone copies that one sector.
        g.write(8, &[0x44; 4]).unwrap();
        assert_eq!(g.unique_resident_bytes(), 256);
        assert_eq!(f.unique_resident_bytes(), 256);
        assert_eq!(f.contents(), before);
        assert_eq!(&g.contents()[8..12], &[0x44; 4]);

        // An erase on the original leaves the clone's copy.
        f.erase(256, 512).unwrap();
        assert_eq!(f.resident_bytes(), 2 * 256);
        assert_eq!(&g.contents()[256..512], &[0x22; 256]);
        assert_eq!(
            g.unique_resident_bytes(),
            2 * 256,
            "sector 1 is g's alone now"
        );
        f.write(600, &[0x03; 4]).unwrap();
        assert_eq!(&g.contents()[600..604], &[0x33; 4]);
        assert_eq!(&f.contents()[600..604], &[0x03; 4]);
        assert_eq!(f.unique_resident_bytes(), 2 * 256);
        assert_eq!(g.unique_resident_bytes(), 3 * 256);
    }

    #[test]
    fn flashes_and_pools_go_across_threads() {
        fn check<T: Send + Clone + core::fmt::Debug>() {}
        fn check_pool<T: Send + Sync + core::fmt::Debug + Default>() {}
        check::<SimFlash>();
        check::<SimFlash<1, 256>>();
        check_pool::<SectorPool>();
        let pool = SectorPool::<256>::new();
        let image = [0x42; 256];
        let flashes: Vec<F> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let mut f = F::new(1024, Erased::Ones);
                        f.write(512, &image).unwrap();
                        f.share(&pool);
                        f
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        assert_eq!(pool.stats().0, 1);
        assert!(flashes.iter().all(|f| f.unique_resident_bytes() == 0));
    }

    #[test]
    fn share_dedupes_identical_sectors_and_prune_frees_them() {
        let pool = SectorPool::<256>::new();
        let image: Vec<u8> = (0..256).map(|i| (i * 7) as u8).collect();
        let mut a = F::new(2048, Erased::Ones);
        let mut b = F::new(2048, Erased::Ones);
        // The same sector contents, reached by different writes at
        // different places.
        a.write(256, &image).unwrap();
        b.write(1024, &image[..128]).unwrap();
        b.write(1024 + 128, &image[128..]).unwrap();
        a.write(1800, &[0x5A; 8]).unwrap();
        a.share(&pool);
        assert_eq!(pool.stats(), (2, 2 * (256 + 64 / 8)));
        assert_eq!(a.unique_resident_bytes(), 0, "the pool holds them too");
        b.share(&pool);
        assert_eq!(pool.stats().0, 2, "b's sector was already pooled");
        assert_eq!(b.unique_resident_bytes(), 0);
        assert!(Arc::ptr_eq(a.mem.slot(1).unwrap(), b.mem.slot(4).unwrap()));
        assert_eq!(&b.contents()[1024..1280], &image[..]);

        // A later write to one leaves the other, and the pool, intact.
        b.write(1024 + 4, &[0x00; 4]).unwrap();
        assert_eq!(b.unique_resident_bytes(), 256);
        assert_eq!(&a.contents()[256..512], &image[..]);
        assert_eq!(pool.prune(), 0, "a still holds both");
        b.share(&pool);
        assert_eq!(pool.stats().0, 3);

        // Once no flash holds a sector, prune drops it.
        a.erase(256, 512).unwrap();
        assert_eq!(pool.prune(), 1);
        assert_eq!(pool.stats().0, 2);
        drop(a);
        drop(b);
        assert_eq!(pool.prune(), 2);
        assert_eq!(pool.stats(), (0, 0));
    }

    #[test]
    fn share_looks_only_at_sectors_changed_since_the_last_call() {
        let mut f = F::new(4096, Erased::Ones);
        for s in 0..16 {
            f.write(s * 256, &[s as u8; 16]).unwrap();
        }
        let first = SectorPool::<256>::new();
        f.share(&first);
        assert_eq!(first.stats().0, 16);
        // Nothing changed: a second pool sees nothing.
        let second = SectorPool::<256>::new();
        f.share(&second);
        assert_eq!(second.stats().0, 0);
        // Three sectors changed (one by a torn erase): those three.
        f.write(300, &[0; 4]).unwrap();
        f.write(2000, &[0; 4]).unwrap();
        f.arm(Cut::During { op: 1, done: 4 });
        assert_eq!(f.erase(3840, 4096), Err(SimError::PowerLost));
        f.reboot();
        f.erase(512, 768).unwrap();
        f.share(&second);
        assert_eq!(second.stats().0, 3);
        // A clone carries nothing dirty over once shared.
        let mut g = f.clone();
        let third = SectorPool::<256>::new();
        g.share(&third);
        assert_eq!(third.stats().0, 0);
    }

    #[test]
    fn double_writes_are_caught_in_shared_sectors() {
        let pool = SectorPool::<256>::new();
        let new = || F::new(1024, Erased::Ones).with_double_write(DoubleWrite::Forbid);
        let (mut a, mut b) = (new(), new());
        a.write(0, &[0xF0; 8]).unwrap();
        b.write(0, &[0xF0; 8]).unwrap();
        a.share(&pool);
        b.share(&pool);
        assert_eq!(b.unique_resident_bytes(), 0);
        assert_eq!(a.write(4, &[0x00; 4]), Err(SimError::DoubleWrite(4)));
        assert_eq!(b.write(0, &[0x00; 4]), Err(SimError::DoubleWrite(0)));
        // Unwritten words are free; an all-erased word programs nothing.
        b.write(8, &[0xFF; 4]).unwrap();
        b.write(8, &[0x00; 4]).unwrap();
        assert_eq!(b.write(8, &[0x00; 4]), Err(SimError::DoubleWrite(8)));
        assert_eq!(
            &a.contents()[..12],
            &[
                0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xFF, 0xFF, 0xFF, 0xFF
            ]
        );
        // The same data with different written bits is a different sector.
        let mut c = F::new(1024, Erased::Ones).with_double_write(DoubleWrite::Forbid);
        c.program_raw(0, &[0xF0; 8]);
        c.share(&pool);
        assert_eq!(c.unique_resident_bytes(), 0);
        c.write(0, &[0x00; 4]).unwrap();
        // Erase clears the bits.
        a.erase(0, 256).unwrap();
        a.write(0, &[0x00; 8]).unwrap();
    }

    #[test]
    fn a_torn_write_can_mark_a_word_without_changing_a_byte() {
        let mut f = F::new(1024, Erased::Ones).with_double_write(DoubleWrite::Forbid);
        f.arm(Cut::During { op: 1, done: 0 });
        // The first byte is the erased value: nothing lands, but the word
        // has started programming.
        assert_eq!(f.write(8, &[0xFF, 0, 0, 0]), Err(SimError::PowerLost));
        f.reboot();
        assert!(f.contents().iter().all(|&b| b == 0xFF));
        assert_eq!(f.resident_bytes(), 0);
        assert_eq!(f.write(8, &[0xFF, 0, 0, 0]), Err(SimError::DoubleWrite(8)));
        f.write(12, &[0; 4]).unwrap();
        assert_eq!(f.resident_bytes(), 256);
        // A torn erase that clears the mark leaves nothing behind.
        let mut g = F::new(1024, Erased::Ones).with_double_write(DoubleWrite::Forbid);
        g.arm(Cut::During { op: 1, done: 0 });
        assert_eq!(g.write(8, &[0xFF, 0, 0, 0]), Err(SimError::PowerLost));
        g.reboot();
        g.arm(Cut::During { op: 1, done: 16 });
        assert_eq!(g.erase(0, 256), Err(SimError::PowerLost));
        g.reboot();
        assert!(g.mem.groups.iter().all(Option::is_none));
        g.write(8, &[0xFF, 0, 0, 0]).unwrap();
    }

    /// The simulator's contract as a flat array of bytes and written bits,
    /// for [`matches_a_flat_model`].
    struct Model {
        mem: Vec<u8>,
        written: Vec<bool>,
        resident: Vec<bool>,
        e: u8,
        forbid: bool,
        word: usize,
        sector: usize,
    }

    impl Model {
        fn prog(&self, old: u8, new: u8) -> u8 {
            if self.e == 0xFF { old & new } else { old | new }
        }

        fn store(&mut self, at: usize, b: u8) {
            self.mem[at] = b;
            if b != self.e {
                self.resident[at / self.sector] = true;
            }
        }

        fn torn(cut: Option<Cut>, len: usize) -> Option<usize> {
            match cut {
                Some(Cut::During { done, .. }) => Some(done.min(len)),
                Some(Cut::Midway(_)) => Some((len / 2 + 1).min(len)),
                _ => None,
            }
        }

        fn write(&mut self, start: usize, bytes: &[u8], cut: Option<Cut>) -> Result<(), SimError> {
            for (i, &b) in bytes.iter().enumerate() {
                if self.prog(self.mem[start + i], b) != b {
                    return Err(SimError::WouldSetBits((start + i) as u32));
                }
            }
            let (w, e) = (self.word, self.e);
            for (k, word) in bytes.chunks(w).enumerate() {
                if self.forbid && self.written[start / w + k] && word.iter().any(|&b| b != e) {
                    return Err(SimError::DoubleWrite((start + k * w) as u32));
                }
            }
            let torn = Self::torn(cut, bytes.len());
            let done = torn.unwrap_or(bytes.len());
            for (i, &b) in bytes[..done].iter().enumerate() {
                self.store(start + i, b);
            }
            let touched = if torn.is_some() {
                (done + 1).min(bytes.len())
            } else {
                bytes.len()
            };
            for (k, word) in bytes.chunks(w).enumerate() {
                if k * w < touched && word.iter().any(|&b| b != e) {
                    self.written[start / w + k] = true;
                }
            }
            if torn.is_none() {
                return Ok(());
            }
            if done < bytes.len() {
                let old = self.mem[start + done];
                let full = self.prog(old, bytes[done]);
                self.store(start + done, (full & 0xF0) | (old & 0x0F));
            }
            Err(SimError::PowerLost)
        }

        fn erase(&mut self, start: usize, end: usize, cut: Option<Cut>) -> Result<(), SimError> {
            let torn = Self::torn(cut, end - start);
            let done = torn.unwrap_or(end - start);
            self.mem[start..start + done].fill(self.e);
            for s in (start..start + done).step_by(self.sector) {
                if s + self.sector <= start + done {
                    self.resident[s / self.sector] = false;
                }
            }
            for w in start / self.word..(start + done) / self.word {
                self.written[w] = false;
            }
            if torn.is_none() {
                return Ok(());
            }
            if start + done < end {
                let b = self.mem[start + done];
                self.store(start + done, (b & 0xF0) | (self.e & 0x0F));
            }
            Err(SimError::PowerLost)
        }
    }

    /// The flash's written bits are the model's, through its own check.
    fn assert_written<const WRITE: usize, const ERASE: usize>(
        f: &SimFlash<WRITE, ERASE>,
        m: &Model,
    ) {
        let mut g = f.clone().with_double_write(DoubleWrite::Forbid);
        for w in 0..m.written.len() {
            let mut word = [0; WRITE];
            word.copy_from_slice(&m.mem[w * WRITE..(w + 1) * WRITE]);
            word[0] = m.prog(word[0], !m.e);
            let got = g.write((w * WRITE) as u32, &word);
            let want = if m.written[w] {
                Err(SimError::DoubleWrite((w * WRITE) as u32))
            } else {
                Ok(())
            };
            assert_eq!(got, want, "word {w}");
        }
    }

    fn check_against_model<const WRITE: usize, const ERASE: usize>(seed: u64, steps: usize) {
        let mut rng = seed | 1;
        let mut next = move |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n as u64) as usize
        };
        let size = 8 * ERASE;
        let pool = if seed.is_multiple_of(2) {
            SectorPool::<ERASE>::new()
        } else {
            SectorPool::<ERASE>::packing()
        };
        for (erased, policy) in [
            (Erased::Ones, DoubleWrite::Allow),
            (Erased::Ones, DoubleWrite::Forbid),
            (Erased::Zero, DoubleWrite::Forbid),
        ] {
            let e = erased.byte();
            let mut f = SimFlash::<WRITE, ERASE>::new(size, erased).with_double_write(policy);
            let mut m = Model {
                mem: vec![e; size],
                written: vec![false; size / WRITE],
                resident: vec![false; size / ERASE],
                e,
                forbid: policy == DoubleWrite::Forbid,
                word: WRITE,
                sector: ERASE,
            };
            let mut snapshots: Vec<(SimFlash<WRITE, ERASE>, Vec<u8>)> = Vec::new();
            let mut packed_once = false;
            for step in 0..steps {
                let cut = match next(8) {
                    0 => Some(Cut::During {
                        op: 1,
                        done: next(3 * ERASE),
                    }),
                    2 => Some(Cut::During {
                        op: 1,
                        done: next(4 * WRITE + 1),
                    }),
                    1 => Some(Cut::Midway(1)),
                    _ => None,
                };
                if let Some(cut) = cut {
                    f.arm(cut);
                }
                match next(10) {
                    0..=5 => {
                        let long = next(4) == 0;
                        let words = 1 + next(if long { 3 * ERASE / WRITE } else { 4 });
                        let start = next(size / WRITE - words + 1) * WRITE;
                        let mode = next(4);
                        let bytes: Vec<u8> = (0..words * WRITE)
                            .map(|i| {
                                let old = m.mem[start + i];
                                let r = next(256) as u8;
                                match mode {
                                    // Valid programming.
                                    0 => m.prog(old, r),
                                    // Erased bytes (refused over programmed ones).
                                    1 if next(2) == 0 => e,
                                    // The odd bit back towards erased.
                                    2 if next(64) == 0 => r,
                                    // Mostly a re-write of what is there.
                                    3 if next(8) != 0 => old,
                                    _ => m.prog(old, r),
                                }
                            })
                            .collect();
                        let got = f.write(start as u32, &bytes);
                        let want = m.write(start, &bytes, cut);
                        assert_eq!(got, want, "step {step}: write {start} {bytes:?}");
                    }
                    6 | 7 => {
                        let n = 1 + next(3);
                        let s = next(size / ERASE - n + 1);
                        let (from, to) = (s * ERASE, (s + n) * ERASE);
                        let got = f.erase(from as u32, to as u32);
                        let want = m.erase(from, to, cut);
                        assert_eq!(got, want, "step {step}: erase {from}..{to}");
                    }
                    8 => {
                        f.share(&pool);
                        packed_once |= f.packed_bytes() > 0;
                        if next(4) == 0 {
                            pool.prune();
                        }
                    }
                    _ => {
                        if next(2) == 0 {
                            snapshots.push((f.clone(), f.contents()));
                        } else {
                            let at = next(size - 8);
                            let v = [next(256) as u8; 3];
                            f.program_raw(at, &v);
                            for (i, &b) in v.iter().enumerate() {
                                m.store(at + i, b);
                            }
                        }
                    }
                }
                f.disarm();
                f.reboot();
                assert_eq!(f.contents(), m.mem, "step {step}");
                let resident = m.resident.iter().filter(|&&r| r).count() * ERASE;
                assert_eq!(f.resident_bytes(), resident, "step {step}");
                assert!(f.unique_resident_bytes() <= resident);
                if cut.is_some() || step % 100 == 0 {
                    assert_written(&f, &m);
                }
            }
            for (snapshot, contents) in &snapshots {
                assert_eq!(&snapshot.contents(), contents);
            }
            assert_written(&f, &m);
            assert_eq!(
                packed_once,
                pool.packs(),
                "packed only through a packing pool"
            );
        }
        // Every flash is gone: so is every pooled sector.
        pool.prune();
        assert_eq!(pool.stats(), (0, 0));
    }

    #[test]
    fn matches_a_flat_model() {
        check_against_model::<4, 64>(0x9E37_79B9, 3000);
        check_against_model::<1, 32>(0x1234_5678, 3000);
        check_against_model::<8, 64>(0xDEAD_BEEF, 3000);
        check_against_model::<4, 4096>(42, 300);
        // Odd seeds share through a packing pool.
        check_against_model::<4, 4096>(43, 300);
        check_against_model::<1, 32>(0x1234_5679, 3000);
    }

    #[test]
    fn share_packs_sectors_only_this_flash_holds_and_they_read_back() {
        let pool = SectorPool::<256>::packing();
        let text: Vec<u8> = b"{\"signed\":{\"_type\":\"targets\",\"version\":7}}"
            .iter()
            .copied()
            .cycle()
            .take(200)
            .collect();
        let mut a = F::new(1024, Erased::Ones).with_double_write(DoubleWrite::Forbid);
        a.write(256, &text).unwrap();
        let want = a.contents();
        a.share(&pool);
        assert!(a.packed_bytes() > 0 && a.packed_bytes() < 256 / 2);
        assert_eq!(pool.stats().0, 0, "packed, not pooled");
        assert_eq!(a.resident_bytes(), 256);
        assert_eq!(a.unique_resident_bytes(), 256);
        assert_eq!(a.contents(), want);
        // Read: unpacked for the read, packed again (unchanged) at share.
        let mut got = [0u8; 200];
        a.read(256, &mut got).unwrap();
        assert_eq!(&got[..], &text[..]);
        a.share(&pool);
        assert!(a.packed_bytes() > 0);
        // The written bits survive packing; the words after the text are
        // free.
        assert_eq!(a.write(256, &[0; 4]), Err(SimError::DoubleWrite(256)));
        a.write(456, &[0x11; 8]).unwrap();
        assert_eq!(a.packed_bytes(), 0, "unpacked to be changed");
        a.share(&pool);
        let packed = a.packed_bytes();
        assert!(packed > 0);
        assert_eq!(&a.contents()[456..464], &[0x11; 8]);
        // A clone keeps its own copy of what it holds.
        let mut b = a.clone();
        a.erase(256, 512).unwrap();
        assert_eq!(a.packed_bytes(), 0);
        assert_eq!(a.resident_bytes(), 0);
        assert_eq!(&a.contents()[256..512], &[0xFF; 256]);
        assert_eq!(b.packed_bytes(), packed);
        let mut got = [0u8; 8];
        b.read(456, &mut got).unwrap();
        assert_eq!(got, [0x11; 8]);
        // A torn erase of a packed sector leaves the half-erased byte.
        b.share(&pool);
        b.arm(Cut::During { op: 1, done: 0 });
        assert_eq!(b.erase(256, 512), Err(SimError::PowerLost));
        b.reboot();
        assert_eq!(b.contents()[256], (text[0] & 0xF0) | 0x0F);
        assert_eq!(&b.contents()[257..456], &text[1..]);
    }

    #[test]
    fn contents_packed_by_one_flash_are_pooled_by_the_next() {
        let pool = SectorPool::<256>::packing();
        let image: Vec<u8> = (0..256).map(|i| (i / 16) as u8).collect();
        let mut flashes: Vec<F> = (0..4).map(|_| F::new(1024, Erased::Ones)).collect();
        for f in &mut flashes {
            f.write(512, &image).unwrap();
            f.share(&pool);
        }
        // The first packed its copy; the second pooled its own, and the
        // others share that one.
        assert!(flashes[0].packed_bytes() > 0);
        assert!(flashes[1..].iter().all(|f| f.packed_bytes() == 0));
        assert_eq!(pool.stats().0, 1);
        assert!(flashes[1..].iter().all(|f| f.unique_resident_bytes() == 0));
        assert!(flashes.iter().all(|f| f.contents()[512..768] == image[..]));
    }
}

/// OTP rows as the RP2350 has them ([`crate::otp`]): bits are only ever
/// set, and a power cut can stop a row's programming part-way.
#[derive(Debug, Clone)]
pub struct SimOtp {
    /// Rows in the part.
    len: usize,
    /// Rows with a bit set, sorted by row (most rows of a part stay blank:
    /// a fleet of simulated locks carries only what was programmed).
    set: Vec<(u16, u32)>,
    /// Programs that complete before power is lost (`None`: no cut armed).
    cut: Option<(u32, bool)>,
    lost: bool,
    programs: u64,
}

impl SimOtp {
    /// `rows` unprogrammed rows.
    pub fn new(rows: usize) -> Self {
        Self {
            len: rows,
            set: Vec::new(),
            cut: None,
            lost: false,
            programs: 0,
        }
    }

    /// The raw bits of `row` (0 outside the part), for assertions.
    pub fn row(&self, row: u16) -> u32 {
        match self.set.binary_search_by_key(&row, |&(r, _)| r) {
            Ok(i) => self.set[i].1,
            Err(_) => 0,
        }
    }

    /// OR `bits` into `row`.
    fn or_row(&mut self, row: u16, bits: u32) {
        if bits == 0 {
            return;
        }
        match self.set.binary_search_by_key(&row, |&(r, _)| r) {
            Ok(i) => self.set[i].1 |= bits,
            Err(i) => self.set.insert(i, (row, bits)),
        }
    }

    /// Row programs done so far.
    pub fn programs(&self) -> u64 {
        self.programs
    }

    /// Lose power after `n` more row programs complete; the next one sets
    /// nothing, or (`half`) the lower half of the bits it was to set.
    pub fn cut_after(&mut self, n: u32, half: bool) {
        self.cut = Some((n, half));
    }

    /// Power was lost during a program (until [`SimOtp::reboot`]).
    pub fn is_lost(&self) -> bool {
        self.lost
    }

    /// Power back: programmed bits stay, programming works again.
    pub fn reboot(&mut self) {
        self.lost = false;
        self.cut = None;
    }
}

impl crate::otp::Otp for SimOtp {
    fn read_row(&mut self, row: u16) -> Result<u32, crate::otp::OtpError> {
        if self.lost {
            return Err(crate::otp::OtpError::Access);
        }
        if usize::from(row) >= self.len {
            return Err(crate::otp::OtpError::Access);
        }
        Ok(self.row(row))
    }

    fn program_row(&mut self, row: u16, bits: u32) -> Result<(), crate::otp::OtpError> {
        if self.lost {
            return Err(crate::otp::OtpError::Program);
        }
        if usize::from(row) >= self.len {
            return Err(crate::otp::OtpError::Access);
        }
        let current = self.row(row);
        let bits = bits & crate::otp::ROW_MASK;
        match &mut self.cut {
            Some((0, half)) => {
                if *half {
                    // The lower half of the new bits land.
                    let new = bits & !current;
                    let n = new.count_ones() / 2;
                    let mut landed = 0;
                    let mut taken = 0;
                    for b in 0..crate::otp::ROW_BITS {
                        if taken == n {
                            break;
                        }
                        if new & (1 << b) != 0 {
                            landed |= 1 << b;
                            taken += 1;
                        }
                    }
                    self.or_row(row, landed);
                }
                self.lost = true;
                self.cut = None;
                Err(crate::otp::OtpError::Program)
            }
            Some((n, _)) => {
                *n -= 1;
                self.or_row(row, bits);
                self.programs += 1;
                Ok(())
            }
            None => {
                self.or_row(row, bits);
                self.programs += 1;
                Ok(())
            }
        }
    }
}
