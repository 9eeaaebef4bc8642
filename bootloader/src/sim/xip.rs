//! The execution window of an A/B board: the image runs from one virtual
//! address range, and the bootloader decides which slot of flash appears
//! there. On the RP2350 this is the QMI address translation (`ATRANS0..3`,
//! 4 KiB granularity; RP2350 datasheet §12.14.4): the bootrom maps runtime
//! address `0x1000_0000` to the start of the partition it boots (§5.1.19),
//! and an access beyond the translated size is a bus error.
//!
//! [`XipWindow`] models what the image sees: reads through the window land
//! in the mapped slot, and an access past the slot's end (or with nothing
//! mapped) faults instead of reading the neighbouring slot.

use embedded_storage::nor_flash::ReadNorFlash;

use crate::boot::SharedFlash;
use crate::layout::{Layout, Partition, Slot};

/// Start of the RP2350's cached XIP address space.
pub const XIP_BASE: u32 = 0x1000_0000;

/// Why an access through the window failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XipFault {
    /// Nothing is mapped (the bootloader has not started an image).
    Unmapped,
    /// The address is outside the window or past the mapped slot.
    OutOfWindow(u32),
    /// The flash refused the read.
    Flash,
}

/// One translation window of `size` bytes at virtual address `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XipWindow {
    /// First virtual address the image is linked for.
    pub base: u32,
    /// Window size (a slot's size).
    pub size: u32,
    mapped: Option<Partition>,
}

impl XipWindow {
    /// The window images of `layout` are linked for: from the start of
    /// the XIP space, one slot long.
    pub const fn for_layout(layout: &Layout) -> Self {
        Self {
            base: XIP_BASE,
            size: layout.active.size,
            mapped: None,
        }
    }

    /// Map `slot` (what the bootloader does just before it jumps).
    pub fn map(&mut self, layout: &Layout, slot: Slot) {
        self.mapped = Some(layout.slot(slot));
    }

    /// Nothing mapped (reset).
    pub fn unmap(&mut self) {
        self.mapped = None;
    }

    /// The slot's partition mapped now.
    pub fn mapped(&self) -> Option<Partition> {
        self.mapped
    }

    /// Physical flash offset behind virtual address `addr`, for an access
    /// of `len` bytes.
    pub fn translate(&self, addr: u32, len: u32) -> Result<u32, XipFault> {
        let p = self.mapped.ok_or(XipFault::Unmapped)?;
        let off = addr
            .checked_sub(self.base)
            .ok_or(XipFault::OutOfWindow(addr))?;
        let end = off.checked_add(len).ok_or(XipFault::OutOfWindow(addr))?;
        if end > self.size || end > p.size {
            return Err(XipFault::OutOfWindow(addr));
        }
        Ok(p.offset + off)
    }

    /// Read `buf.len()` bytes at virtual address `addr`.
    pub fn read<F: ReadNorFlash>(
        &self,
        flash: &SharedFlash<F>,
        addr: u32,
        buf: &mut [u8],
    ) -> Result<(), XipFault> {
        let phys = self.translate(addr, buf.len() as u32)?;
        flash.lock(|f| f.borrow_mut().read(phys, buf).map_err(|_| XipFault::Flash))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use core::cell::RefCell;

    use embassy_sync::blocking_mutex::Mutex;

    use super::*;
    use crate::layout::SMALL_AB;
    use crate::sim::{Erased, SimFlash};

    #[test]
    fn reads_land_in_the_mapped_slot_and_stop_at_its_end() {
        let l = SMALL_AB;
        let mut sim = SimFlash::<4, 4096>::new(l.flash_size as usize, Erased::Ones);
        sim.program_raw(l.active.offset as usize, b"slot A");
        sim.program_raw(l.dfu.offset as usize, b"slot B");
        let flash: SharedFlash<SimFlash> = Mutex::new(RefCell::new(sim));
        let mut w = XipWindow::for_layout(&l);
        let mut buf = [0u8; 6];
        assert_eq!(w.read(&flash, w.base, &mut buf), Err(XipFault::Unmapped));
        w.map(&l, Slot::B);
        w.read(&flash, w.base, &mut buf).unwrap();
        assert_eq!(&buf, b"slot B");
        w.map(&l, Slot::A);
        w.read(&flash, w.base, &mut buf).unwrap();
        assert_eq!(&buf, b"slot A");
        // The last bytes of the slot are readable; one past faults rather
        // than reading slot B.
        let last = w.base + l.active.size - 6;
        w.read(&flash, last, &mut buf).unwrap();
        assert_eq!(
            w.read(&flash, last + 1, &mut buf),
            Err(XipFault::OutOfWindow(last + 1))
        );
        assert!(matches!(
            w.read(&flash, w.base - 1, &mut buf),
            Err(XipFault::OutOfWindow(_))
        ));
    }
}
