//! Boot records: the small persistent state the bootloader owns.
//!
//! Two sectors hold alternating copies of one record (ping-pong). A write
//! erases the sector that does **not** hold the newest valid record and writes
//! there with a higher sequence number, so a power cut at any point leaves the
//! previous record intact: a torn record fails its SHA-256 and is ignored.
//!
//! ```text
//!   0   4  magic "NLBR"
//!   4   2  format version (1)
//!   6   2  reserved, zero
//!   8   4  sequence number (newest valid record wins)
//!  12   4  minimum security counter (anti-rollback)
//!  16   1  pending install: 0 none, 1 present
//!  17   1  A/B: confirmed slot, 0 A, 1 B (always 0 in swap mode)
//!  18   1  A/B: trial of the other slot, 0 none, 1 booted once, 2 reverting
//!  19   1  reserved, zero
//!  20  32  pending: payload SHA-256 of the image approved for swap
//!  52   4  pending: its security counter
//!  56   8  trust anchors: set version (4), threshold (1), key count (1), 2 reserved
//!  64 256  trust anchors: up to 8 raw Ed25519 public keys
//! 320  32  SHA-256 of bytes 0..320
//! ```
//!
//! With no valid record (a factory-fresh device) the state is the bootloader's
//! genesis anchors and a minimum security counter of 0 — unless the board
//! keeps OTP floors ([`crate::otp`]), which then decide what a lost or
//! rolled-back record may not lower (see [`crate::boot`], "Failing closed").

use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind};
use sha2::{Digest, Sha256};

use crate::anchors::{MAX_ANCHOR_KEYS, TrustAnchors};
use crate::layout::Slot;

const MAGIC: [u8; 4] = *b"NLBR";
const BODY_LEN: usize = 320;
/// Encoded record length.
pub const RECORD_LEN: usize = BODY_LEN + 32;
/// Buffer holding a record padded to the write size (write sizes up to 32).
const BUF_LEN: usize = 384;

/// An install the bootloader approved and started swapping in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// Payload digest of the approved image.
    pub payload_sha256: [u8; 32],
    /// Its security counter: becomes the minimum once the image confirms.
    pub security_counter: u32,
}

/// Where an A/B trial of the slot other than [`BootState::slot`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trial {
    /// The bootloader verified the other slot, recorded this and mapped it:
    /// at the next boot it is confirmed (STATE back to BOOT) or reverted.
    Booted,
    /// The trial was not confirmed; the request is being cleared. The
    /// confirmed slot boots; this marker is dropped before the next request.
    Reverting,
}

/// The bootloader's persistent state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootState {
    /// Sequence number of the record this came from (0: none stored yet).
    pub seq: u32,
    /// Lowest security counter the device accepts.
    pub min_security_counter: u32,
    /// Install approved but not yet confirmed.
    pub pending: Option<Pending>,
    /// Keys firmware must be signed with.
    pub anchors: TrustAnchors,
    /// A/B: the confirmed slot (always A in swap mode).
    pub slot: Slot,
    /// A/B: a trial of the other slot.
    pub trial: Option<Trial>,
}

impl BootState {
    /// The state of a device with no record: `anchors`, nothing pending,
    /// and `min_security_counter` (0 on a factory-fresh device; the OTP
    /// floor on one whose records were lost).
    pub fn factory(anchors: &TrustAnchors, min_security_counter: u32) -> Self {
        Self {
            seq: 0,
            min_security_counter,
            pending: None,
            anchors: *anchors,
            slot: Slot::A,
            trial: None,
        }
    }

    /// The slot the image running now lives in (A/B): the trial slot while
    /// a trial is booted, else the confirmed one.
    pub fn running_slot(&self) -> Slot {
        match self.trial {
            Some(Trial::Booted) => self.slot.other(),
            _ => self.slot,
        }
    }

    fn encode(&self, out: &mut [u8; BUF_LEN]) {
        out.fill(0);
        out[0..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&1u16.to_le_bytes());
        out[8..12].copy_from_slice(&self.seq.to_le_bytes());
        out[12..16].copy_from_slice(&self.min_security_counter.to_le_bytes());
        if let Some(p) = &self.pending {
            out[16] = 1;
            out[20..52].copy_from_slice(&p.payload_sha256);
            out[52..56].copy_from_slice(&p.security_counter.to_le_bytes());
        }
        out[17] = match self.slot {
            Slot::A => 0,
            Slot::B => 1,
        };
        out[18] = match self.trial {
            None => 0,
            Some(Trial::Booted) => 1,
            Some(Trial::Reverting) => 2,
        };
        let mut anchors = [0u8; 8 + 32 * MAX_ANCHOR_KEYS];
        self.anchors.write_to(&mut anchors);
        out[56..BODY_LEN].copy_from_slice(&anchors);
        let digest: [u8; 32] = Sha256::digest(&out[..BODY_LEN]).into();
        out[BODY_LEN..RECORD_LEN].copy_from_slice(&digest);
    }

    fn decode(raw: &[u8; BUF_LEN]) -> Option<Self> {
        let digest: [u8; 32] = Sha256::digest(&raw[..BODY_LEN]).into();
        if raw[0..4] != MAGIC || raw[4..6] != [1, 0] || raw[BODY_LEN..RECORD_LEN] != digest {
            return None;
        }
        let u32_at = |i: usize| u32::from_le_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
        let pending = match raw[16] {
            0 => None,
            1 => {
                let mut payload_sha256 = [0u8; 32];
                payload_sha256.copy_from_slice(&raw[20..52]);
                Some(Pending {
                    payload_sha256,
                    security_counter: u32_at(52),
                })
            }
            _ => return None,
        };
        let slot = match raw[17] {
            0 => Slot::A,
            1 => Slot::B,
            _ => return None,
        };
        let trial = match raw[18] {
            0 => None,
            1 => Some(Trial::Booted),
            2 => Some(Trial::Reverting),
            _ => return None,
        };
        let mut anchors = [0u8; 8 + 32 * MAX_ANCHOR_KEYS];
        anchors.copy_from_slice(&raw[56..BODY_LEN]);
        Some(Self {
            slot,
            trial,
            seq: u32_at(8),
            min_security_counter: u32_at(12),
            pending,
            anchors: TrustAnchors::read_from(&anchors).ok()?,
        })
    }
}

/// Reads and writes boot records in a two-sector partition.
#[derive(Debug)]
pub struct BootRecords<F> {
    flash: F,
}

impl<F: NorFlash> BootRecords<F> {
    const FITS: () = assert!(
        F::WRITE_SIZE <= 32 && BUF_LEN.is_multiple_of(F::WRITE_SIZE) && F::ERASE_SIZE >= BUF_LEN
    );

    /// Wrap the BOOT_RECORDS partition (exactly two erase sectors).
    pub fn new(flash: F) -> Self {
        let () = Self::FITS;
        Self { flash }
    }

    fn padded_len() -> usize {
        RECORD_LEN.next_multiple_of(F::WRITE_SIZE)
    }

    fn read_slot(&mut self, slot: u32) -> Result<Option<BootState>, NorFlashErrorKind> {
        let mut buf = [0u8; BUF_LEN];
        let len = Self::padded_len()
            .next_multiple_of(F::READ_SIZE)
            .min(BUF_LEN);
        self.flash
            .read(slot * F::ERASE_SIZE as u32, &mut buf[..len])
            .map_err(|e| e.kind())?;
        Ok(BootState::decode(&buf))
    }

    /// Newest valid record and the slot holding it.
    fn newest(&mut self) -> Result<Option<(u32, BootState)>, NorFlashErrorKind> {
        let a = self.read_slot(0)?;
        let b = self.read_slot(1)?;
        Ok(match (a, b) {
            (Some(a), Some(b)) if b.seq > a.seq => Some((1, b)),
            (Some(a), _) => Some((0, a)),
            (None, Some(b)) => Some((1, b)),
            (None, None) => None,
        })
    }

    /// The current state, or the factory state built from `genesis`.
    pub fn load(&mut self, genesis: &TrustAnchors) -> Result<BootState, NorFlashErrorKind> {
        Ok(self
            .load_stored()?
            .unwrap_or_else(|| BootState::factory(genesis, 0)))
    }

    /// The newest valid record, if any.
    pub fn load_stored(&mut self) -> Result<Option<BootState>, NorFlashErrorKind> {
        Ok(self.newest()?.map(|(_, s)| s))
    }

    /// Whether sector `slot` reads fully erased (a store can skip its erase).
    fn blank(&mut self, slot: u32) -> Result<bool, NorFlashErrorKind> {
        let mut chunk = [0u8; 256];
        let base = slot * F::ERASE_SIZE as u32;
        let mut at = 0;
        while at < F::ERASE_SIZE as u32 {
            let n = (F::ERASE_SIZE as u32 - at).min(chunk.len() as u32);
            let c = &mut chunk[..n as usize];
            self.flash.read(base + at, c).map_err(|e| e.kind())?;
            if c.iter().any(|&b| b != crate::boot::STATE_ERASED) {
                return Ok(false);
            }
            at += n;
        }
        Ok(true)
    }

    /// Erase the sector the next [`Self::store`] will write (the one not
    /// holding the newest record), so that store programs without erasing:
    /// done by the application before it requests an install, it takes the
    /// erase out of the install boot. The newest record is not touched.
    pub fn prepare(&mut self) -> Result<(), NorFlashErrorKind> {
        let slot = match self.newest()? {
            Some((cur, _)) => 1 - cur,
            None => 0,
        };
        if !self.blank(slot)? {
            let start = slot * F::ERASE_SIZE as u32;
            self.flash
                .erase(start, start + F::ERASE_SIZE as u32)
                .map_err(|e| e.kind())?;
        }
        Ok(())
    }

    /// Persist `state` (its `seq` is replaced by the next sequence number).
    /// Power-cut safe: the previous record survives until this one is
    /// complete. The target sector is erased first unless it is blank.
    pub fn store(&mut self, state: &BootState) -> Result<BootState, NorFlashErrorKind> {
        let (slot, seq) = match self.newest()? {
            Some((cur, s)) => (1 - cur, s.seq.wrapping_add(1).max(1)),
            None => (0, 1),
        };
        let next = BootState { seq, ..*state };
        let mut buf = [0u8; BUF_LEN];
        next.encode(&mut buf);
        let start = slot * F::ERASE_SIZE as u32;
        if !self.blank(slot)? {
            self.flash
                .erase(start, start + F::ERASE_SIZE as u32)
                .map_err(|e| e.kind())?;
        }
        self.flash
            .write(start, &buf[..Self::padded_len()])
            .map_err(|e| e.kind())?;
        Ok(next)
    }
}

#[cfg(all(test, feature = "sim"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sim::{Cut, Erased, SimFlash};

    fn anchors(n: u8) -> TrustAnchors {
        let keys: std::vec::Vec<[u8; 32]> = (0..n)
            .map(|i| {
                ed25519_dalek::SigningKey::from_bytes(&[i + 1; 32])
                    .verifying_key()
                    .to_bytes()
            })
            .collect();
        TrustAnchors::new(1, 1, &keys).unwrap()
    }

    #[test]
    fn fresh_flash_gives_genesis_and_records_round_trip() {
        for erased in [Erased::Ones, Erased::Zero] {
            let mut r = BootRecords::new(SimFlash::<4, 4096>::new(8192, erased));
            let g = anchors(2);
            let s = r.load(&g).unwrap();
            assert_eq!((s.seq, s.min_security_counter, s.pending), (0, 0, None));
            let mut next = s;
            next.min_security_counter = 7;
            next.pending = Some(Pending {
                payload_sha256: [9; 32],
                security_counter: 8,
            });
            let stored = r.store(&next).unwrap();
            assert_eq!(stored.seq, 1);
            assert_eq!(r.load(&g).unwrap(), stored);
            let again = r
                .store(&BootState {
                    pending: None,
                    slot: Slot::B,
                    trial: Some(Trial::Reverting),
                    ..stored
                })
                .unwrap();
            assert_eq!(again.seq, 2);
            let back = r.load(&g).unwrap();
            assert_eq!(back.pending, None);
            assert_eq!((back.slot, back.trial), (Slot::B, Some(Trial::Reverting)));
            assert_eq!(back.running_slot(), Slot::B);
        }
    }

    #[test]
    fn power_cut_at_every_point_of_a_store_keeps_old_or_new() {
        let g = anchors(1);
        let base = BootState::factory(&g, 3);
        // Two ops per store (erase, write); cut after or during each.
        for cut in [
            Cut::After(1),
            Cut::During { op: 1, done: 0 },
            Cut::During { op: 1, done: 2000 },
            Cut::During { op: 2, done: 0 },
            Cut::During { op: 2, done: 17 },
            Cut::During { op: 2, done: 351 },
        ] {
            let mut r = BootRecords::new(SimFlash::<4, 4096>::new(8192, Erased::Ones));
            r.store(&base).unwrap();
            r.store(&BootState {
                min_security_counter: 4,
                ..base
            })
            .unwrap();
            r.flash.arm(cut);
            assert!(
                r.store(&BootState {
                    min_security_counter: 5,
                    ..base
                })
                .is_err()
            );
            r.flash.reboot();
            let got = r.load(&g).unwrap();
            assert_eq!(got.min_security_counter, 4, "{cut:?}");
        }
    }
}
