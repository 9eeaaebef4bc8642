//! embassy-boot's STATE partition read from a copy in RAM.
//!
//! embassy-boot finds how far a swap got by reading the progress words
//! from the first one on, word by word, before every page it copies
//! (`BootLoader::current_progress`): a swap of the reference layout's 448
//! pages reads about 400,000 words of STATE, a revert more, and most of
//! them over and over. [`MirroredState`] reads the partition once into RAM
//! and answers reads from there. Every write and erase still goes to the
//! flash first; the range it touched is then read back from the flash into
//! the copy, so the copy holds only what the flash holds, including
//! whatever the part does with a word written twice. An operation that
//! fails (power lost, a flash error) drops the copy: from then on every
//! read goes to the flash, as without a mirror.
//!
//! The copy is only as good as the assumption that nothing else writes
//! STATE while it lives: [`crate::boot`] makes one for a single
//! `prepare_boot` call, during which embassy-boot alone touches STATE.

use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash};

/// The largest STATE partition the bootloader mirrors (the reference swap
/// layout's is 8 KiB); a larger one is read from the flash every time.
pub const MIRROR_MAX: usize = 8 * 1024;

/// A STATE partition `P` with reads answered from `ram` (module docs).
#[derive(Debug)]
pub struct MirroredState<'m, P> {
    part: P,
    ram: &'m mut [u8],
    /// `ram[..part.capacity()]` equals the partition.
    valid: bool,
}

impl<'m, P: NorFlash> MirroredState<'m, P> {
    /// Read `part` into `ram`. With `ram` shorter than the partition, or if
    /// that read fails, there is no copy and reads go to the flash.
    pub fn new(mut part: P, ram: &'m mut [u8]) -> Self {
        let len = part.capacity();
        let valid = match ram.get_mut(..len) {
            Some(copy) => part.read(0, copy).is_ok(),
            None => false,
        };
        Self { part, ram, valid }
    }

    /// Whether reads are answered from RAM.
    pub fn is_mirrored(&self) -> bool {
        self.valid
    }

    /// After `result` of an operation on `from..to`: read that range back
    /// into the copy, or drop the copy if the operation or the read failed.
    fn refresh(
        &mut self,
        from: u32,
        to: u32,
        result: Result<(), P::Error>,
    ) -> Result<(), P::Error> {
        if result.is_err() {
            self.valid = false;
            return result;
        }
        if self.valid {
            let copy = self.ram.get_mut(from as usize..to as usize);
            self.valid = match copy {
                Some(copy) => self.part.read(from, copy).is_ok(),
                None => false,
            };
        }
        Ok(())
    }
}

impl<P: ErrorType> ErrorType for MirroredState<'_, P> {
    type Error = P::Error;
}

impl<P: NorFlash> ReadNorFlash for MirroredState<'_, P> {
    const READ_SIZE: usize = P::READ_SIZE;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        let from = offset as usize;
        let aligned = from.is_multiple_of(P::READ_SIZE) && bytes.len().is_multiple_of(P::READ_SIZE);
        let copy = from
            .checked_add(bytes.len())
            .filter(|&end| self.valid && aligned && end <= self.part.capacity())
            .and_then(|end| self.ram.get(from..end));
        match copy {
            Some(copy) => {
                bytes.copy_from_slice(copy);
                Ok(())
            }
            // No copy, or a read the partition must refuse (out of
            // bounds, not aligned): the partition answers.
            None => self.part.read(offset, bytes),
        }
    }

    fn capacity(&self) -> usize {
        self.part.capacity()
    }
}

impl<P: NorFlash> NorFlash for MirroredState<'_, P> {
    const WRITE_SIZE: usize = P::WRITE_SIZE;
    const ERASE_SIZE: usize = P::ERASE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        let result = self.part.erase(from, to);
        self.refresh(from, to, result)
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        let result = self.part.write(offset, bytes);
        let end = offset.saturating_add(bytes.len() as u32);
        self.refresh(offset, end, result)
    }
}

#[cfg(all(test, feature = "sim"))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use core::cell::RefCell;

    use embassy_sync::blocking_mutex::Mutex;

    use super::*;
    use crate::boot::{SharedFlash, part};
    use crate::layout::Partition;
    use crate::sim::{Cut, Erased, SimFlash, XorShift};

    type F = SimFlash<4, 4096>;

    const STATE: Partition = Partition {
        offset: 4096,
        size: 8192,
    };

    fn flash() -> SharedFlash<F> {
        Mutex::new(RefCell::new(F::new(16 * 1024, Erased::Ones)))
    }

    #[test]
    fn every_operation_answers_as_the_partition_does() {
        for seed in 1..=20u64 {
            let (plain_flash, mirrored_flash) = (flash(), flash());
            let mut ram = [0u8; MIRROR_MAX];
            let mut plain = part(&plain_flash, STATE);
            let mut mirrored = MirroredState::new(part(&mirrored_flash, STATE), &mut ram);
            assert!(mirrored.is_mirrored());
            let mut rng = XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            for _ in 0..2_000 {
                // Reads run a little past the partition (refused); writes
                // and erases stay inside it and never need a bit set, so
                // none fails and the copy lives throughout.
                let at = (rng.below(8192 / 4 + 8) * 4) as u32;
                let inside = at.min(8192 - 4);
                match rng.below(10) {
                    0..=5 => {
                        let len = 4 * (1 + rng.below(16));
                        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
                        let ra = plain.read(at, &mut a[..len]);
                        let rb = mirrored.read(at, &mut b[..len]);
                        assert_eq!(ra, rb, "seed {seed}: read at {at}");
                        assert_eq!(a, b, "seed {seed}: read at {at}");
                    }
                    6..=8 => {
                        // A progress word (0x00), or bits cleared in what
                        // the word holds: a word is often written twice.
                        let mut old = [0u8; 4];
                        plain.read(inside, &mut old).unwrap();
                        let word = if rng.below(2) == 0 {
                            [0u8; 4]
                        } else {
                            (u32::from_le_bytes(old) & rng.next_u64() as u32).to_le_bytes()
                        };
                        let ra = plain.write(inside, &word);
                        let rb = mirrored.write(inside, &word);
                        assert_eq!(ra, rb, "seed {seed}: write at {inside}");
                    }
                    _ => {
                        let from = (rng.below(2) * 4096) as u32;
                        let ra = plain.erase(from, from + 4096);
                        let rb = mirrored.erase(from, from + 4096);
                        assert_eq!(ra, rb, "seed {seed}: erase at {from}");
                    }
                }
            }
            assert!(mirrored.is_mirrored(), "seed {seed}: no failed operation");
            let contents = |f: &SharedFlash<F>| f.lock(|f| f.borrow().contents());
            assert_eq!(contents(&plain_flash), contents(&mirrored_flash));
        }
    }

    #[test]
    fn reads_are_answered_from_ram() {
        let f = flash();
        let mut ram = [0u8; MIRROR_MAX];
        let mut state = MirroredState::new(part(&f, STATE), &mut ram);
        let reads = || f.lock(|f| f.borrow().stats().reads);
        let after_load = reads();
        let mut word = [0u8; 4];
        for i in 0..1_000u32 {
            state.read((i % 2048) * 4, &mut word).unwrap();
        }
        assert_eq!(reads(), after_load);
        // A write is read back once.
        state.write(8, &[0; 4]).unwrap();
        assert_eq!(reads(), after_load + 1);
        state.read(8, &mut word).unwrap();
        assert_eq!(word, [0; 4]);
    }

    #[test]
    fn a_failed_operation_drops_the_copy() {
        let f = flash();
        let mut ram = [0u8; MIRROR_MAX];
        let mut state = MirroredState::new(part(&f, STATE), &mut ram);
        f.lock(|f| f.borrow_mut().arm(Cut::Midway(3)));
        let mut failed = None;
        for i in 0..5u32 {
            if state.write(8 + 4 * i, &[0; 4]).is_err() {
                failed = Some(i);
                break;
            }
        }
        assert_eq!(failed, Some(2), "the third write is cut");
        assert!(!state.is_mirrored());
        // The flash answers now: power is lost, so reads fail as they do on
        // the partition, instead of serving what RAM held.
        let mut word = [0u8; 4];
        assert!(state.read(8, &mut word).is_err());
    }

    #[test]
    fn a_partition_larger_than_ram_is_read_from_flash() {
        let f = flash();
        let mut ram = [0u8; 4096];
        let mut state = MirroredState::new(part(&f, STATE), &mut ram);
        assert!(!state.is_mirrored());
        state.write(8192 - 4, &[0x12, 0x34, 0x56, 0x78]).unwrap();
        let mut word = [0u8; 4];
        state.read(8192 - 4, &mut word).unwrap();
        assert_eq!(word, [0x12, 0x34, 0x56, 0x78]);
    }
}
