//! One-time-programmable memory: counters that no flash erase can lower.
//!
//! The anti-rollback minimum and the trust-anchor set version live in flash
//! records ([`crate::records`]), which an attacker with flash access (or a
//! failing sector) can erase, corrupt or roll back to an older copy. An OTP
//! copy of both closes that: OTP bits can only ever be set, so once the
//! bootloader has accepted a minimum or an anchor set version, no later
//! state of the flash can make it accept less (see `docs/bootloader.md`,
//! "Records unreadable").
//!
//! ## The model (RP2350)
//!
//! The RP2350's OTP is 4,096 rows of 24 bits (datasheet ch. 13: "4096 × 24";
//! rows read raw or as 16 bits with ECC). A bit programmed to 1 stays 1;
//! nothing clears it. Monotonic values are kept **thermometer-coded**, as the
//! bootrom keeps its own rollback version: a value of *n* is bits `0..n` set
//! across a run of raw rows, 24 per row, so raising it only ever sets bits.
//! Reading takes the highest set bit (+1), so a raise interrupted by a power
//! cut reads as the old value or something between it and the new one —
//! never lower — and is simply done again.
//!
//! [`Otp`] is the hardware access (a row read, a row program that ORs bits
//! in); [`ThermometerCounter`] is one counter over a run of rows;
//! [`OtpCounters`] is the bootloader's pair. [`crate::sim::SimOtp`] models
//! it on the host, power cuts included.

/// Bits in one raw OTP row (RP2350).
pub const ROW_BITS: u32 = 24;
/// Mask of a row's bits.
pub const ROW_MASK: u32 = (1 << ROW_BITS) - 1;

/// Why an OTP access failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtpError {
    /// The row is outside the part, or locked against this access.
    Access,
    /// Programming did not complete (power lost, or the read-back differs).
    Program,
}

impl core::fmt::Display for OtpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Access => write!(f, "OTP row out of range or locked"),
            Self::Program => write!(f, "OTP programming did not complete"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for OtpError {}

/// Raw access to OTP rows.
pub trait Otp {
    /// The 24 bits of `row`.
    fn read_row(&mut self, row: u16) -> Result<u32, OtpError>;
    /// Set the 1 bits of `bits` in `row` (bits already set stay set; a 0
    /// leaves its bit as it is).
    fn program_row(&mut self, row: u16, bits: u32) -> Result<(), OtpError>;
}

impl<T: Otp + ?Sized> Otp for &mut T {
    fn read_row(&mut self, row: u16) -> Result<u32, OtpError> {
        (**self).read_row(row)
    }
    fn program_row(&mut self, row: u16, bits: u32) -> Result<(), OtpError> {
        (**self).program_row(row, bits)
    }
}

/// A monotonic counter, thermometer-coded over `rows` raw rows from `first`:
/// values 0 to `rows × 24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThermometerCounter {
    /// First row.
    pub first: u16,
    /// Number of rows.
    pub rows: u16,
}

impl ThermometerCounter {
    /// Largest value it can hold.
    pub const fn capacity(&self) -> u32 {
        self.rows as u32 * ROW_BITS
    }

    /// The value: one more than the highest set bit (0 when none is set).
    pub fn read(&self, otp: &mut impl Otp) -> Result<u32, OtpError> {
        for i in (0..self.rows).rev() {
            let bits = otp.read_row(self.first + i)? & ROW_MASK;
            if bits != 0 {
                let top = ROW_BITS - bits.leading_zeros().saturating_sub(32 - ROW_BITS);
                return Ok(u32::from(i) * ROW_BITS + top);
            }
        }
        Ok(0)
    }

    /// Raise the value to at least `value` (clamped to the capacity), row by
    /// row from the lowest; returns the value it now holds. Never lowers it:
    /// a smaller `value` programs nothing.
    pub fn raise(&self, otp: &mut impl Otp, value: u32) -> Result<u32, OtpError> {
        let value = value.min(self.capacity());
        let current = self.read(otp)?;
        if value <= current {
            return Ok(current);
        }
        for i in 0..self.rows {
            let lo = u32::from(i) * ROW_BITS;
            if value <= lo {
                break;
            }
            let n = (value - lo).min(ROW_BITS);
            let want = if n == ROW_BITS {
                ROW_MASK
            } else {
                (1 << n) - 1
            };
            let row = self.first + i;
            if otp.read_row(row)? & want != want {
                otp.program_row(row, want)?;
            }
        }
        let now = self.read(otp)?;
        if now < value {
            return Err(OtpError::Program);
        }
        Ok(now)
    }
}

/// The bootloader's two OTP counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtpCounters {
    /// Lowest security counter an image may carry.
    pub min_security_counter: ThermometerCounter,
    /// Lowest trust-anchor set version the bootloader accepts.
    pub anchors_version: ThermometerCounter,
}

impl OtpCounters {
    /// The layout used on the reference board: 8 rows (up to 192) for the
    /// minimum and 2 rows (up to 48 anchor rotations) for the set version,
    /// in user rows of page 4 (rows 0x100..), which nothing else uses.
    pub const REFERENCE: Self = Self {
        min_security_counter: ThermometerCounter {
            first: 0x100,
            rows: 8,
        },
        anchors_version: ThermometerCounter {
            first: 0x108,
            rows: 2,
        },
    };
}

/// What the OTP holds, as the bootloader reads it at reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OtpFloor {
    /// Minimum security counter (0 if never raised).
    pub min_security_counter: u32,
    /// Minimum anchor set version (0 if never raised).
    pub anchors_version: u32,
}

impl OtpCounters {
    /// Read both counters.
    pub fn read(&self, otp: &mut impl Otp) -> Result<OtpFloor, OtpError> {
        Ok(OtpFloor {
            min_security_counter: self.min_security_counter.read(otp)?,
            anchors_version: self.anchors_version.read(otp)?,
        })
    }
}

#[cfg(all(test, feature = "sim"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sim::SimOtp;

    const C: ThermometerCounter = ThermometerCounter { first: 4, rows: 3 };

    #[test]
    fn counts_up_across_rows_and_never_down() {
        let mut otp = SimOtp::new(16);
        assert_eq!(C.read(&mut otp).unwrap(), 0);
        assert_eq!(C.capacity(), 72);
        for v in [1, 2, 23, 24, 25, 48, 50, 72] {
            assert_eq!(C.raise(&mut otp, v).unwrap(), v);
            assert_eq!(C.read(&mut otp).unwrap(), v);
        }
        // Lower values and values past the capacity.
        assert_eq!(C.raise(&mut otp, 3).unwrap(), 72);
        let mut otp = SimOtp::new(16);
        assert_eq!(C.raise(&mut otp, 1000).unwrap(), 72);
        assert_eq!(otp.row(3), 0, "rows outside the counter untouched");
        assert_eq!(otp.row(7), 0);
    }

    #[test]
    fn a_cut_raise_reads_between_old_and_new_and_completes_when_done_again() {
        for cut_after in 0..4 {
            for half in [false, true] {
                let mut otp = SimOtp::new(16);
                C.raise(&mut otp, 5).unwrap();
                otp.cut_after(cut_after, half);
                let _ = C.raise(&mut otp, 60);
                otp.reboot();
                let v = C.read(&mut otp).unwrap();
                assert!((5..=60).contains(&v), "cut {cut_after} half {half}: {v}");
                assert_eq!(C.raise(&mut otp, 60).unwrap(), 60);
            }
        }
    }

    #[test]
    fn bits_outside_the_thermometer_only_raise_it() {
        // A stray high bit (a forged or misprogrammed row) reads as a higher
        // value: the counter fails towards refusing, never towards accepting.
        let mut otp = SimOtp::new(16);
        otp.program_row(5, 1 << 3).unwrap();
        assert_eq!(C.read(&mut otp).unwrap(), 24 + 4);
    }
}
