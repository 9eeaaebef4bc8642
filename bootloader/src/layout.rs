//! Flash partition layouts, checked at compile time.
//!
//! Reference board: Raspberry Pi Pico 2 W class (RP2350 + CYW43439), 4 MiB QSPI
//! NOR, 4 KiB sectors. [`REFERENCE`] is:
//!
//! | partition    | offset     | size      | holds |
//! |--------------|------------|-----------|-------|
//! | BOOTLOADER   | 0x000000   | 56 KiB    | bootloader code |
//! | BOOT_RECORDS | 0x00E000   | 8 KiB     | two ping-pong sectors: trust anchors, anti-rollback minimum, pending install ([`crate::records`]) |
//! | STATE        | 0x010000   | 8 KiB     | embassy-boot swap state: (2 + 4·pages) words of 4 bytes = 7,176 B for 448 pages |
//! | ACTIVE       | 0x012000   | 1,792 KiB | the running envelope (448 pages) |
//! | DFU          | 0x1D2000   | 1,796 KiB | the staged envelope; one page larger than ACTIVE for the swap |
//! | CREDENTIALS  | 0x393000   | 64 KiB    | PIN credentials (sequential-storage map) |
//! | AGENT        | 0x3A3000   | 64 KiB    | update agent files: device key, agent state, trusted TUF metadata of both repositories (`lock_app::storage::files`) |
//! | AUDIT        | 0x3B3000   | 308 KiB   | audit log (sequential-storage queue) |
//!
//! ## A/B (execute in place)
//!
//! [`REFERENCE_AB`] keeps the same regions but splits the image space into
//! two equal slots, A (`active`) and B (`dfu`), of 1,796 KiB each, and a
//! one-sector STATE (only the request magic and the named slot live there):
//!
//! | partition    | offset     | size      | holds |
//! |--------------|------------|-----------|-------|
//! | BOOTLOADER   | 0x000000   | 56 KiB    | bootloader code |
//! | BOOT_RECORDS | 0x00E000   | 8 KiB     | as above, plus the confirmed slot and the trial phase |
//! | STATE        | 0x010000   | 4 KiB     | embassy-boot state word (request / confirm) and the slot the request names |
//! | SLOT A       | 0x011000   | 1,796 KiB | an envelope of at most 1,792 KiB, then one scratch sector |
//! | SLOT B       | 0x1D2000   | 1,796 KiB | the same |
//! | CREDENTIALS… | 0x393000   |           | unchanged |
//!
//! Each image is linked for one virtual window; the bootloader maps the slot
//! it verified there (RP2350 QMI address translation), so an install copies
//! nothing. The largest envelope is the same in both modes
//! ([`Layout::max_envelope`]); the last sector of the slot being written is
//! the delta applier's checkpoint, as DFU's spare sector is in swap mode.
//!
//! BOOT_RECORDS belongs to the bootloader's region (it is written by the
//! bootloader and, for anchor rotations, by the update agent); it is kept out
//! of embassy-boot's STATE partition because embassy-boot erases STATE whole.
//!
//! A layout is built with [`Layout::new`], a `const fn` that panics during
//! constant evaluation if a rule is broken, so a bad layout does not compile.

/// How an install reaches the running image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootMode {
    /// embassy-boot swaps DFU into ACTIVE page by page (boards without
    /// address translation).
    Swap,
    /// Two equal slots; the bootloader maps the verified one into the
    /// execution window (see [`crate::boot`], "A/B mode").
    Ab,
}

/// One of the two image slots of an A/B layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The first slot (`Layout::active`).
    A,
    /// The second slot (`Layout::dfu`).
    B,
}

impl Slot {
    /// The other slot.
    pub const fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }

    /// `"A"` or `"B"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::B => "B",
        }
    }
}

/// One partition: byte offset and size within the flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// Offset from the start of flash.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
}

impl Partition {
    /// First byte after the partition.
    pub const fn end(&self) -> u32 {
        self.offset + self.size
    }
}

/// Why a layout is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayoutError {
    /// Sector or write size is zero or does not divide the sector size.
    BadGeometry,
    /// A partition does not start or end on a sector boundary.
    Misaligned,
    /// Partitions are not contiguous in the documented order.
    NotContiguous,
    /// The partitions do not fit in the flash.
    TooLarge,
    /// DFU must be at least one page larger than ACTIVE.
    DfuTooSmall,
    /// STATE cannot hold embassy-boot's (2 + 4·pages) progress words.
    StateTooSmall,
    /// BOOT_RECORDS must be exactly two sectors.
    BadBootRecords,
    /// ACTIVE cannot even hold an envelope header.
    ActiveTooSmall,
    /// A/B slots must be equal and hold an image plus one scratch sector.
    SlotsUnequal,
}

impl LayoutError {
    /// Message used in compile-time panics.
    pub const fn message(self) -> &'static str {
        match self {
            Self::BadGeometry => "flash geometry: write size must divide the sector size",
            Self::Misaligned => "partition not aligned to the sector size",
            Self::NotContiguous => "partitions must be contiguous in layout order",
            Self::TooLarge => "partitions exceed the flash size",
            Self::DfuTooSmall => "DFU must be at least one page larger than ACTIVE",
            Self::StateTooSmall => "STATE must hold (2 + 4 * ACTIVE pages) words",
            Self::BadBootRecords => "BOOT_RECORDS must be exactly two sectors",
            Self::ActiveTooSmall => "ACTIVE must hold at least one page",
            Self::SlotsUnequal => "A/B slots must be equal and at least two sectors",
        }
    }
}

/// A complete flash layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Swap or A/B.
    pub mode: BootMode,
    /// Total flash size.
    pub flash_size: u32,
    /// Erase unit (and embassy-boot page size).
    pub sector: u32,
    /// Program unit embassy-boot uses for the STATE partition.
    pub write_size: u32,
    /// Bootloader code.
    pub bootloader: Partition,
    /// Ping-pong records: anchors, anti-rollback minimum, pending install.
    pub boot_records: Partition,
    /// embassy-boot state.
    pub state: Partition,
    /// Running image (swap); slot A (A/B).
    pub active: Partition,
    /// Staged image (swap); slot B (A/B).
    pub dfu: Partition,
    /// PIN credentials.
    pub credentials: Partition,
    /// Update agent files.
    pub agent: Partition,
    /// Audit log.
    pub audit: Partition,
}

/// Sizes from which a contiguous layout is built.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Total flash size.
    pub flash_size: u32,
    /// Erase unit.
    pub sector: u32,
    /// STATE program unit.
    pub write_size: u32,
    /// Bootloader code.
    pub bootloader: u32,
    /// STATE partition.
    pub state: u32,
    /// Largest envelope: the ACTIVE partition (swap); each slot is one
    /// sector more (A/B).
    pub active: u32,
    /// CREDENTIALS partition.
    pub credentials: u32,
    /// AGENT partition.
    pub agent: u32,
}

impl Layout {
    /// Build a contiguous layout: BOOTLOADER | BOOT_RECORDS | STATE | ACTIVE |
    /// DFU (ACTIVE + one sector) | CREDENTIALS | AUDIT (the rest).
    /// Panics at compile time when used in a `const` and a rule is broken.
    pub const fn new(s: Sizes) -> Self {
        Self::or_panic(Self::try_new(s))
    }

    /// Build an A/B layout: BOOTLOADER | BOOT_RECORDS | STATE | SLOT A |
    /// SLOT B (each `s.active` + one sector) | CREDENTIALS | AUDIT.
    /// Panics at compile time when used in a `const` and a rule is broken.
    pub const fn new_ab(s: Sizes) -> Self {
        Self::or_panic(Self::try_new_ab(s))
    }

    const fn or_panic(r: Result<Self, LayoutError>) -> Self {
        match r {
            Ok(l) => l,
            #[allow(
                clippy::panic,
                reason = "const evaluation: a bad layout fails to compile"
            )]
            Err(e) => panic!("{}", e.message()),
        }
    }

    /// Fallible form of [`Layout::new`].
    pub const fn try_new(s: Sizes) -> Result<Self, LayoutError> {
        Self::build(s, BootMode::Swap)
    }

    /// Fallible form of [`Layout::new_ab`].
    pub const fn try_new_ab(s: Sizes) -> Result<Self, LayoutError> {
        Self::build(s, BootMode::Ab)
    }

    const fn build(s: Sizes, mode: BootMode) -> Result<Self, LayoutError> {
        let slot_a = match mode {
            BootMode::Swap => s.active,
            BootMode::Ab => s.active + s.sector,
        };
        let mut at = 0;
        let bootloader = Partition {
            offset: at,
            size: s.bootloader,
        };
        at += s.bootloader;
        let boot_records = Partition {
            offset: at,
            size: 2 * s.sector,
        };
        at += 2 * s.sector;
        let state = Partition {
            offset: at,
            size: s.state,
        };
        at += s.state;
        let active = Partition {
            offset: at,
            size: slot_a,
        };
        at += slot_a;
        let dfu = Partition {
            offset: at,
            size: s.active + s.sector,
        };
        at += s.active + s.sector;
        let credentials = Partition {
            offset: at,
            size: s.credentials,
        };
        at += s.credentials;
        let agent = Partition {
            offset: at,
            size: s.agent,
        };
        at += s.agent;
        if at >= s.flash_size {
            return Err(LayoutError::TooLarge);
        }
        let audit = Partition {
            offset: at,
            size: s.flash_size - at,
        };
        let layout = Self {
            mode,
            flash_size: s.flash_size,
            sector: s.sector,
            write_size: s.write_size,
            bootloader,
            boot_records,
            state,
            active,
            dfu,
            credentials,
            agent,
            audit,
        };
        match layout.check() {
            Ok(()) => Ok(layout),
            Err(e) => Err(e),
        }
    }

    /// All partitions in flash order.
    pub const fn partitions(&self) -> [Partition; 8] {
        [
            self.bootloader,
            self.boot_records,
            self.state,
            self.active,
            self.dfu,
            self.credentials,
            self.agent,
            self.audit,
        ]
    }

    /// Check every rule.
    pub const fn check(&self) -> Result<(), LayoutError> {
        let sector = self.sector;
        if sector == 0 || self.write_size == 0 || !sector.is_multiple_of(self.write_size) {
            return Err(LayoutError::BadGeometry);
        }
        let parts = self.partitions();
        let mut expected = 0;
        let mut i = 0;
        while i < parts.len() {
            let p = parts[i];
            if !p.offset.is_multiple_of(sector) || !p.size.is_multiple_of(sector) || p.size == 0 {
                return Err(LayoutError::Misaligned);
            }
            if p.offset != expected {
                return Err(LayoutError::NotContiguous);
            }
            expected = p.offset + p.size;
            i += 1;
        }
        if expected > self.flash_size {
            return Err(LayoutError::TooLarge);
        }
        if self.boot_records.size != 2 * sector {
            return Err(LayoutError::BadBootRecords);
        }
        if self.active.size < sector {
            return Err(LayoutError::ActiveTooSmall);
        }
        match self.mode {
            BootMode::Swap => {
                if self.dfu.size < self.active.size + sector {
                    return Err(LayoutError::DfuTooSmall);
                }
                let pages = self.active.size / sector;
                if (2 + 4 * pages) * self.write_size > self.state.size {
                    return Err(LayoutError::StateTooSmall);
                }
            }
            BootMode::Ab => {
                if self.dfu.size != self.active.size || self.active.size < 2 * sector {
                    return Err(LayoutError::SlotsUnequal);
                }
                // Magic, progress marker, named slot.
                if 3 * self.write_size > self.state.size {
                    return Err(LayoutError::StateTooSmall);
                }
            }
        }
        Ok(())
    }

    /// The largest envelope an install may bring: ACTIVE (swap), or a slot
    /// less its scratch sector (A/B).
    pub const fn max_envelope(&self) -> u32 {
        match self.mode {
            BootMode::Swap => self.active.size,
            BootMode::Ab => self.active.size - self.sector,
        }
    }

    /// A slot's partition (in swap mode, A is ACTIVE and B is DFU).
    pub const fn slot(&self, slot: Slot) -> Partition {
        match slot {
            Slot::A => self.active,
            Slot::B => self.dfu,
        }
    }

    /// Pages embassy-boot swaps (the whole ACTIVE partition).
    pub const fn active_pages(&self) -> u32 {
        self.active.size / self.sector
    }
}

/// The reference board: 4 MiB QSPI NOR, 4 KiB sectors (RP2350 class).
pub const REFERENCE: Layout = Layout::new(REFERENCE_SIZES);

const REFERENCE_SIZES: Sizes = Sizes {
    flash_size: 4 * 1024 * 1024,
    sector: 4096,
    write_size: 4,
    bootloader: 56 * 1024,
    state: 8 * 1024,
    active: 1792 * 1024,
    credentials: 64 * 1024,
    agent: 64 * 1024,
};

/// A small layout (256 KiB flash, ACTIVE of 16 pages) for exhaustive power-cut
/// sweeps, which restart the whole update once per flash operation.
pub const SMALL: Layout = Layout::new(SMALL_SIZES);

const SMALL_SIZES: Sizes = Sizes {
    flash_size: 256 * 1024,
    sector: 4096,
    write_size: 4,
    bootloader: 8 * 1024,
    state: 4096,
    active: 64 * 1024,
    credentials: 16 * 1024,
    agent: 32 * 1024,
};

/// The reference board in A/B mode: the same regions, two equal slots.
pub const REFERENCE_AB: Layout = Layout::new_ab(Sizes {
    state: 4 * 1024,
    ..REFERENCE_SIZES
});

/// [`SMALL`] in A/B mode.
pub const SMALL_AB: Layout = Layout::new_ab(Sizes {
    state: 4096,
    ..SMALL_SIZES
});

const _: () = {
    assert!(REFERENCE_AB.state.offset == 0x10000);
    assert!(REFERENCE_AB.active.offset == 0x11000);
    assert!(REFERENCE_AB.dfu.offset == 0x1D2000);
    assert!(REFERENCE_AB.active.size == REFERENCE_AB.dfu.size);
    assert!(REFERENCE_AB.max_envelope() == REFERENCE.max_envelope());
    assert!(REFERENCE_AB.credentials.offset == 0x393000);
    assert!(REFERENCE_AB.audit.end() == 4 * 1024 * 1024);
    assert!(REFERENCE.boot_records.offset == 0xE000);
    assert!(REFERENCE.state.offset == 0x10000);
    assert!(REFERENCE.active.offset == 0x12000);
    assert!(REFERENCE.dfu.offset == 0x1D2000);
    assert!(REFERENCE.credentials.offset == 0x393000);
    assert!(REFERENCE.agent.offset == 0x3A3000);
    assert!(REFERENCE.audit.offset == 0x3B3000);
    assert!(REFERENCE.audit.end() == 4 * 1024 * 1024);
};

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes() -> Sizes {
        Sizes {
            flash_size: 256 * 1024,
            sector: 4096,
            write_size: 4,
            bootloader: 8192,
            state: 4096,
            active: 64 * 1024,
            credentials: 16 * 1024,
            agent: 16 * 1024,
        }
    }

    #[test]
    fn reference_layout_state_holds_progress_words() {
        let pages = REFERENCE.active_pages();
        assert_eq!(pages, 448);
        assert!((2 + 4 * pages) * 4 <= REFERENCE.state.size);
    }

    #[test]
    fn rules_are_enforced() {
        assert!(Layout::try_new(sizes()).is_ok());
        let bad = |f: fn(&mut Sizes)| {
            let mut s = sizes();
            f(&mut s);
            Layout::try_new(s).unwrap_err()
        };
        assert_eq!(bad(|s| s.active = 64 * 1024 + 1), LayoutError::Misaligned);
        assert_eq!(bad(|s| s.state = 0), LayoutError::Misaligned);
        // 64 KiB ACTIVE = 16 pages needs (2 + 64) * 4 = 264 bytes; 1 MiB needs 1,032.
        assert_eq!(
            bad(|s| {
                s.flash_size = 4 * 1024 * 1024;
                s.active = 1024 * 1024;
                s.write_size = 16;
            }),
            LayoutError::StateTooSmall
        );
        assert_eq!(bad(|s| s.active = 128 * 1024), LayoutError::TooLarge);
        assert_eq!(bad(|s| s.write_size = 3), LayoutError::BadGeometry);
        let mut l = Layout::try_new(sizes()).unwrap();
        l.dfu.size -= 4096;
        l.credentials.offset -= 4096;
        l.credentials.size += 4096;
        assert_eq!(l.check(), Err(LayoutError::DfuTooSmall));
    }

    #[test]
    fn ab_slots_are_equal_and_hold_the_same_image_as_swap() {
        let ab = Layout::try_new_ab(sizes()).unwrap();
        assert_eq!(ab.mode, BootMode::Ab);
        assert_eq!(ab.active.size, ab.dfu.size);
        assert_eq!(ab.max_envelope(), 64 * 1024);
        assert_eq!(
            ab.max_envelope(),
            Layout::try_new(sizes()).unwrap().max_envelope()
        );
        assert_eq!(ab.slot(Slot::B), ab.dfu);
        assert_eq!(Slot::A.other(), Slot::B);
        let mut l = ab;
        l.dfu.size -= 4096;
        l.credentials.offset -= 4096;
        l.credentials.size += 4096;
        assert_eq!(l.check(), Err(LayoutError::SlotsUnequal));
        // 32 KiB of flash left for AUDIT in SMALL_AB.
        const { assert!(SMALL_AB.audit.size >= 4096) };
    }
}
