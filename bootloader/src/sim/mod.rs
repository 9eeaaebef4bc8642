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
//! simulator runs tens of thousands of them in one process).
//!
//! `SimFlash` implements the blocking `embedded-storage` traits (bootloader,
//! embassy-boot) and the async `embedded-storage-async` traits
//! (sequential-storage).

pub mod timing;
pub mod xip;

use std::boxed::Box;
use std::vec;
use std::vec::Vec;

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

/// Flash contents, sector by sector; an erased sector holds no memory.
#[derive(Debug, Clone)]
struct Sectors<const ERASE: usize> {
    size: usize,
    fill: u8,
    sectors: Vec<Option<Box<[u8]>>>,
}

impl<const ERASE: usize> Sectors<ERASE> {
    fn new(size: usize, fill: u8) -> Self {
        Self {
            size,
            fill,
            sectors: vec![None; size / ERASE],
        }
    }

    fn len(&self) -> usize {
        self.size
    }

    fn read(&self, mut at: usize, out: &mut [u8]) {
        let mut out = out;
        while !out.is_empty() {
            let (s, o) = (at / ERASE, at % ERASE);
            let n = (ERASE - o).min(out.len());
            let (head, rest) = out.split_at_mut(n);
            match &self.sectors[s] {
                Some(sector) => head.copy_from_slice(&sector[o..o + n]),
                None => head.fill(self.fill),
            }
            out = rest;
            at += n;
        }
    }

    fn byte(&self, at: usize) -> u8 {
        match &self.sectors[at / ERASE] {
            Some(sector) => sector[at % ERASE],
            None => self.fill,
        }
    }

    fn sector_mut(&mut self, s: usize) -> &mut [u8] {
        let fill = self.fill;
        self.sectors[s].get_or_insert_with(|| vec![fill; ERASE].into_boxed_slice())
    }

    fn write(&mut self, mut at: usize, mut data: &[u8]) {
        while !data.is_empty() {
            let (s, o) = (at / ERASE, at % ERASE);
            let n = (ERASE - o).min(data.len());
            let (head, rest) = data.split_at(n);
            if self.sectors[s].is_some() || head.iter().any(|&b| b != self.fill) {
                self.sector_mut(s)[o..o + n].copy_from_slice(head);
            }
            data = rest;
            at += n;
        }
    }

    fn set(&mut self, at: usize, value: u8) {
        self.write(at, &[value]);
    }

    /// Set `start..end` to the erased value; whole sectors release their memory.
    fn erase(&mut self, start: usize, end: usize) {
        let mut at = start;
        while at < end {
            let (s, o) = (at / ERASE, at % ERASE);
            let n = (ERASE - o).min(end - at);
            if n == ERASE {
                self.sectors[s] = None;
            } else if let Some(sector) = &mut self.sectors[s] {
                sector[o..o + n].fill(self.fill);
            }
            at += n;
        }
    }

    fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.size];
        self.read(0, &mut v);
        v
    }
}

/// One bit per program word: set once any byte of the word was programmed.
#[derive(Debug, Clone)]
struct WordBits(Vec<u64>);

impl WordBits {
    fn new(words: usize) -> Self {
        Self(vec![0; words.div_ceil(64)])
    }

    fn get(&self, w: usize) -> bool {
        self.0[w / 64] & (1 << (w % 64)) != 0
    }

    fn set(&mut self, w: usize) {
        self.0[w / 64] |= 1 << (w % 64);
    }

    fn clear(&mut self, from: usize, to: usize) {
        for w in from..to {
            self.0[w / 64] &= !(1 << (w % 64));
        }
    }
}

/// Simulated NOR flash with `WRITE`-byte program units and `ERASE`-byte sectors.
#[derive(Debug, Clone)]
pub struct SimFlash<const WRITE: usize = 4, const ERASE: usize = 4096> {
    log: Option<Vec<OpRecord>>,
    mem: Sectors<ERASE>,
    written: WordBits,
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
            written: WordBits::new(size / WRITE),
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
        let e = erased.byte();
        for (i, word) in contents.chunks(WRITE).enumerate() {
            if word.iter().any(|&b| b != e) {
                f.written.set(i);
            }
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
        self.mem.sectors.iter().flatten().count() * ERASE
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
        self.written.clear(start / WRITE, (start + done) / WRITE);
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
        let (start, end) = self.check(offset, bytes.len(), WRITE)?;
        let mut current = vec![0; bytes.len()];
        self.mem.read(start, &mut current);
        for (i, (&old, &new)) in current.iter().zip(bytes).enumerate() {
            if self.program_byte(old, new) != new {
                return Err(SimError::WouldSetBits((start + i) as u32));
            }
        }
        if self.double_write == DoubleWrite::Forbid {
            let e = self.erased.byte();
            for (k, chunk) in bytes.chunks(WRITE).enumerate() {
                // Writing an all-erased word programs nothing.
                if self.written.get(start / WRITE + k) && chunk.iter().any(|&b| b != e) {
                    return Err(SimError::DoubleWrite((start + k * WRITE) as u32));
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
        let programmed: Vec<u8> = current[..done]
            .iter()
            .zip(&bytes[..done])
            .map(|(&old, &new)| self.program_byte(old, new))
            .collect();
        self.mem.write(start, &programmed);
        // A word counts as written once any byte of it has been (partly) programmed.
        let touched = if torn.is_some() {
            (done + 1).min(bytes.len())
        } else {
            bytes.len()
        };
        let e = self.erased.byte();
        for k in 0..(end - start) / WRITE {
            let word = &bytes[k * WRITE..(k + 1) * WRITE];
            if k * WRITE < touched && word.iter().any(|&b| b != e) {
                self.written.set(start / WRITE + k);
            }
        }
        if torn.is_some() {
            if done < bytes.len() {
                let old = current[done];
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
