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
//! BOOT_RECORDS belongs to the bootloader's region (it is written by the
//! bootloader and, for anchor rotations, by the update agent); it is kept out
//! of embassy-boot's STATE partition because embassy-boot erases STATE whole.
//!
//! A layout is built with [`Layout::new`], a `const fn` that panics during
//! constant evaluation if a rule is broken, so a bad layout does not compile.

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
        }
    }
}

/// A complete flash layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
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
    /// Running image.
    pub active: Partition,
    /// Staged image.
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
    /// ACTIVE partition.
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
        match Self::try_new(s) {
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
            size: s.active,
        };
        at += s.active;
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
        if self.dfu.size < self.active.size + sector {
            return Err(LayoutError::DfuTooSmall);
        }
        let pages = self.active.size / sector;
        if (2 + 4 * pages) * self.write_size > self.state.size {
            return Err(LayoutError::StateTooSmall);
        }
        Ok(())
    }

    /// Pages embassy-boot swaps (the whole ACTIVE partition).
    pub const fn active_pages(&self) -> u32 {
        self.active.size / self.sector
    }
}

/// The reference board: 4 MiB QSPI NOR, 4 KiB sectors (RP2350 class).
pub const REFERENCE: Layout = Layout::new(Sizes {
    flash_size: 4 * 1024 * 1024,
    sector: 4096,
    write_size: 4,
    bootloader: 56 * 1024,
    state: 8 * 1024,
    active: 1792 * 1024,
    credentials: 64 * 1024,
    agent: 64 * 1024,
});

/// A small layout (256 KiB flash, ACTIVE of 16 pages) for exhaustive power-cut
/// sweeps, which restart the whole update once per flash operation.
pub const SMALL: Layout = Layout::new(Sizes {
    flash_size: 256 * 1024,
    sector: 4096,
    write_size: 4,
    bootloader: 8 * 1024,
    state: 4096,
    active: 64 * 1024,
    credentials: 16 * 1024,
    agent: 32 * 1024,
});

const _: () = {
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
}
