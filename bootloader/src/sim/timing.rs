//! How long the simulated flash takes: a timing model from the datasheet of
//! the reference board's flash, with typical **and** maximum figures, and
//! the compute a boot spends verifying.
//!
//! Flash: Winbond W25Q32JV (3 V, 32 Mbit, 4 KiB sectors). The figures are
//! those of the datasheet's "AC Electrical Characteristics" table (§9.6,
//! Revision G, 27 March 2018, pp. 63–64; the preliminary Revision A1 of 2014
//! gave tPP 0.7 ms typical, every other figure the same):
//!
//! | symbol | operation | typical | maximum |
//! |---|---|---|---|
//! | tSE  | 4 KiB sector erase | 45 ms | 400 ms |
//! | tBE1 | 32 KiB block erase | 120 ms | 1,600 ms |
//! | tBE2 | 64 KiB block erase | 150 ms | 2,000 ms |
//! | tPP  | page program (256 B) | 0.4 ms | 3 ms |
//! | tBP1 | byte program, first byte | 30 µs | 50 µs |
//! | tBP2 | byte program, each next byte | 2.5 µs | 12 µs |
//!
//! tBP1/tBP2 could not be checked against a W25Q32JV table here; the values
//! are those of the W25Q family's earlier parts. They only price programs
//! of a few bytes (STATE words), a negligible share of every figure.
//!
//! Reads: quad I/O (EBh) through the RP2350's QMI at SCK = 150 MHz / 2 =
//! 75 MHz (the pico-sdk default divider), 4 bits per clock: 37.5 MB/s, the
//! same in both columns (the part allows 133 MHz).
//!
//! embassy-boot and our drivers erase sector by sector (the NorFlash
//! `erase(from, to)` of the reference driver issues 4 KiB sector erases),
//! so tBE1/tBE2 are listed for the record and not charged.
//!
//! Verification compute ([`Compute`]):
//! - SHA-256 in software on a Cortex-M33 at 150 MHz: 4.97 MB/s (wolfSSL
//!   5.6.0 on an STM32H563 without crypto hardware, wolfSSL's published
//!   STM32 benchmarks). The RP2350's SHA-256 block does 79.3 MB/s fed by
//!   DMA (RP2350 datasheet §12.13.2: one 64-byte block per 121 cycles at
//!   150 MHz); [`RP2350_SHA256_HW`] is that figure.
//! - Ed25519 verification: 107 ms (salty's UMAAL field arithmetic, 16.0 M
//!   cycles on a 96 MHz Cortex-M33 as its documentation reports, scaled to
//!   150 MHz).

/// Flash operation times, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlashTiming {
    /// tSE: one 4 KiB sector erase.
    pub sector_erase_ns: u64,
    /// tBE1: one 32 KiB block erase (not charged; see module docs).
    pub block32_erase_ns: u64,
    /// tBE2: one 64 KiB block erase (not charged).
    pub block64_erase_ns: u64,
    /// tPP: one 256-byte page program.
    pub page_program_ns: u64,
    /// tBP1: first byte of a short program.
    pub byte_first_ns: u64,
    /// tBP2: each next byte of a short program.
    pub byte_next_ns: u64,
    /// Read throughput, bytes per second.
    pub read_bytes_per_s: u64,
}

/// Program page of the W25Q32JV.
pub const PAGE: usize = 256;

/// W25Q32JV, typical column.
pub const W25Q32JV_TYPICAL: FlashTiming = FlashTiming {
    sector_erase_ns: 45_000_000,
    block32_erase_ns: 120_000_000,
    block64_erase_ns: 150_000_000,
    page_program_ns: 400_000,
    byte_first_ns: 30_000,
    byte_next_ns: 2_500,
    read_bytes_per_s: 37_500_000,
};

/// W25Q32JV, maximum column.
pub const W25Q32JV_MAX: FlashTiming = FlashTiming {
    sector_erase_ns: 400_000_000,
    block32_erase_ns: 1_600_000_000,
    block64_erase_ns: 2_000_000_000,
    page_program_ns: 3_000_000,
    byte_first_ns: 50_000,
    byte_next_ns: 12_000,
    read_bytes_per_s: 37_500_000,
};

impl FlashTiming {
    /// Erasing `sectors` 4 KiB sectors.
    pub const fn erase_ns(&self, sectors: u64) -> u64 {
        sectors * self.sector_erase_ns
    }

    /// Programming `len` bytes starting at flash offset `offset`: each
    /// 256-byte page touched is one program command, charged tPP, or the
    /// byte-program time if that is shorter (a few bytes).
    pub fn program_ns(&self, offset: usize, len: usize) -> u64 {
        let mut at = offset;
        let end = offset + len;
        let mut t = 0;
        while at < end {
            let page_end = (at / PAGE + 1) * PAGE;
            let n = (page_end.min(end) - at) as u64;
            let bytes = self.byte_first_ns + (n - 1) * self.byte_next_ns;
            t += bytes.min(self.page_program_ns);
            at = page_end.min(end);
        }
        t
    }

    /// Reading `len` bytes.
    pub const fn read_ns(&self, len: u64) -> u64 {
        len * 1_000_000_000 / self.read_bytes_per_s
    }
}

/// Compute a boot spends verifying images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compute {
    /// SHA-256 throughput, bytes per second.
    pub sha256_bytes_per_s: u64,
    /// One Ed25519 signature verification.
    pub ed25519_verify_ns: u64,
}

/// Software SHA-256 and Ed25519 on a 150 MHz Cortex-M33 (module docs).
pub const CORTEX_M33_150MHZ: Compute = Compute {
    sha256_bytes_per_s: 4_970_000,
    ed25519_verify_ns: 107_000_000,
};

/// The RP2350's SHA-256 block (DMA-fed) and software Ed25519, 150 MHz.
pub const RP2350_SHA256_HW: Compute = Compute {
    sha256_bytes_per_s: 79_300_000,
    ed25519_verify_ns: 107_000_000,
};

impl Compute {
    /// Hashing `bytes` and checking `signatures` signatures.
    pub const fn verify_ns(&self, bytes: u64, signatures: u64) -> u64 {
        bytes * 1_000_000_000 / self.sha256_bytes_per_s + signatures * self.ed25519_verify_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_charged_per_page_touched() {
        let t = W25Q32JV_TYPICAL;
        // One word: byte-program rate, far below a page program.
        assert_eq!(t.program_ns(0, 4), 30_000 + 3 * 2_500);
        // A whole page, aligned: one tPP.
        assert_eq!(t.program_ns(256, 256), 400_000);
        // 4 KiB aligned: 16 pages.
        assert_eq!(t.program_ns(4096, 4096), 16 * 400_000);
        // 8 bytes straddling a page boundary: two short programs.
        assert_eq!(t.program_ns(252, 8), 2 * (30_000 + 3 * 2_500));
        assert_eq!(W25Q32JV_MAX.erase_ns(2), 800_000_000);
        assert_eq!(t.read_ns(37_500_000), 1_000_000_000);
        assert_eq!(RP2350_SHA256_HW.verify_ns(79_300_000, 1), 1_107_000_000);
    }
}
