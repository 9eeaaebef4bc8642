//! The application's side of an update: write DFU, request the install,
//! confirm after a trial boot, rotate trust anchors.
//!
//! [`Updater::request_install`] verifies the staged envelope with the same
//! policy the bootloader will apply (anchors, model, anti-rollback minimum)
//! before marking it, so an image that would be refused at boot is never even
//! requested. The bootloader verifies again regardless.
//!
//! In A/B mode "DFU" is the slot the application does not run from and
//! "ACTIVE" the one it runs from ([`BootState::running_slot`]), so staging,
//! delta patches (base: the running slot, output: the other) and resume
//! work alike in both modes; the request also names the slot it staged.

use embassy_boot::{BlockingFirmwareState, State};
use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};

use crate::anchors::{AnchorError, TrustAnchors};
use crate::boot::{
    BootConfig, BootError, Part, SharedFlash, check_geometry, part, policy, write_named_slot,
};
use crate::envelope::{EnvelopeError, VerifiedImage, verify_in_flash};
use crate::layout::{BootMode, Partition, Slot};
use crate::records::{BootRecords, BootState, Trial};

/// Errors from the application-side update API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpdateError {
    /// Flash access failed.
    Flash(NorFlashErrorKind),
    /// A trial image is running: confirm (or reset to revert) before staging.
    NotConfirmed,
    /// Write outside the DFU bank, or not aligned to the write size.
    OutOfRange,
    /// The staged image does not verify.
    Image(EnvelopeError),
    /// The anchor rotation record was refused.
    Anchors(AnchorError),
    /// The layout does not match the flash.
    Boot(BootError),
    /// The running image is not signed by the new anchors: rotating now would
    /// leave nothing bootable. Install a transition release signed by both
    /// the old and the new keys first.
    ActiveNotTrustedByNewAnchors(EnvelopeError),
}

impl core::fmt::Display for UpdateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Flash(k) => write!(f, "flash error: {k:?}"),
            Self::NotConfirmed => write!(f, "running image is on trial; confirm it first"),
            Self::OutOfRange => write!(f, "write outside the DFU bank or misaligned"),
            Self::Image(e) => write!(f, "staged image refused: {e}"),
            Self::Anchors(e) => write!(f, "anchor rotation refused: {e}"),
            Self::Boot(e) => write!(f, "{e}"),
            Self::ActiveNotTrustedByNewAnchors(e) => write!(
                f,
                "the running image would not verify under the new anchors ({e}); \
                 install a release signed by both old and new keys first"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for UpdateError {}

impl From<NorFlashErrorKind> for UpdateError {
    fn from(k: NorFlashErrorKind) -> Self {
        Self::Flash(k)
    }
}

fn state_err(e: embassy_boot::FirmwareUpdaterError) -> UpdateError {
    match e {
        embassy_boot::FirmwareUpdaterError::Flash(k) => UpdateError::Flash(k),
        _ => UpdateError::Flash(NorFlashErrorKind::Other),
    }
}

/// Application-side handle on the update banks.
#[derive(Debug)]
pub struct Updater<'a, F: NorFlash> {
    flash: &'a SharedFlash<F>,
    config: BootConfig,
    last_erased: Option<u32>,
}

impl<'a, F: NorFlash> Updater<'a, F> {
    /// An updater for the flash and layout the bootloader uses.
    pub fn new(flash: &'a SharedFlash<F>, config: BootConfig) -> Result<Self, UpdateError> {
        check_geometry(flash, &config.layout).map_err(UpdateError::Boot)?;
        Ok(Self {
            flash,
            config,
            last_erased: None,
        })
    }

    /// The configuration this updater was built with.
    pub fn config(&self) -> &BootConfig {
        &self.config
    }

    fn records(&self) -> BootRecords<Part<'a, F>> {
        BootRecords::new(part(self.flash, self.config.layout.boot_records))
    }

    fn state(&self) -> BlockingFirmwareStateOwned<'a, F> {
        BlockingFirmwareStateOwned(part(self.flash, self.config.layout.state))
    }

    /// The bootloader's persistent state (anchors, minimum counter, pending install).
    pub fn boot_state(&self) -> Result<BootState, UpdateError> {
        Ok(self.records().load(&self.config.genesis)?)
    }

    /// embassy-boot state: `Swap` while a trial image awaits confirmation.
    pub fn firmware_state(&self) -> Result<State, UpdateError> {
        self.state().get()
    }

    /// Size of the DFU bank (the slot not running, in A/B).
    pub fn dfu_capacity(&self) -> u32 {
        self.config.layout.dfu.size
    }

    /// The slot the running image lives in (A/B; always A in swap mode).
    pub fn running_slot(&self) -> Result<Slot, UpdateError> {
        Ok(match self.config.layout.mode {
            BootMode::Swap => Slot::A,
            BootMode::Ab => self.boot_state()?.running_slot(),
        })
    }

    /// The partition the running image is read from.
    fn active_part(&self) -> Result<Partition, UpdateError> {
        Ok(self.config.layout.slot(self.running_slot()?))
    }

    /// The partition an install is staged in.
    fn dfu_part(&self) -> Result<Partition, UpdateError> {
        Ok(self.config.layout.slot(self.running_slot()?.other()))
    }

    /// A fresh download begins: forget which sector was erased last.
    pub fn begin(&mut self) -> Result<(), UpdateError> {
        if self.firmware_state()? == State::Swap {
            return Err(UpdateError::NotConfirmed);
        }
        self.last_erased = None;
        Ok(())
    }

    /// Write `data` at `offset` of DFU, erasing each sector the first time it
    /// is entered. Writes must come in increasing order from [`Self::begin`];
    /// `offset` must be write-aligned, and only the last chunk may have a
    /// length that is not (its tail word is padded with the erased value).
    pub fn write_dfu(&mut self, offset: u32, data: &[u8]) -> Result<(), UpdateError> {
        let w = F::WRITE_SIZE;
        let sector = self.config.layout.sector;
        let end = u64::from(offset) + data.len() as u64;
        if !(offset as usize).is_multiple_of(w)
            || end > u64::from(self.config.layout.max_envelope())
        {
            return Err(UpdateError::OutOfRange);
        }
        let mut dfu = part(self.flash, self.dfu_part()?);
        let mut at = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let s = at / sector;
            if self.last_erased.is_none_or(|l| l < s) {
                dfu.erase(s * sector, (s + 1) * sector)
                    .map_err(|e| e.kind())?;
                self.last_erased = Some(s);
            }
            let room = ((s + 1) * sector - at) as usize;
            let n = rest.len().min(room);
            let aligned = n - n % w;
            if aligned > 0 {
                dfu.write(at, &rest[..aligned]).map_err(|e| e.kind())?;
            }
            if aligned < n {
                let mut word = [crate::boot::STATE_ERASED; 32];
                let word = word.get_mut(..w).ok_or(UpdateError::OutOfRange)?;
                word[..n - aligned].copy_from_slice(&rest[aligned..n]);
                dfu.write(at + aligned as u32, word).map_err(|e| e.kind())?;
                if n < rest.len() {
                    return Err(UpdateError::OutOfRange);
                }
            }
            at += n as u32;
            rest = &rest[n..];
        }
        Ok(())
    }

    /// Read back from DFU (for resumable downloads and checks).
    pub fn read_dfu(&self, offset: u32, buf: &mut [u8]) -> Result<(), UpdateError> {
        part(self.flash, self.dfu_part()?)
            .read(offset, buf)
            .map_err(|e| UpdateError::Flash(e.kind()))
    }

    /// Read from the running image (a delta's base).
    pub fn read_active(&self, offset: u32, buf: &mut [u8]) -> Result<(), UpdateError> {
        part(self.flash, self.active_part()?)
            .read(offset, buf)
            .map_err(|e| UpdateError::Flash(e.kind()))
    }

    /// The largest envelope that can be installed.
    pub fn active_capacity(&self) -> u32 {
        self.config.layout.max_envelope()
    }

    /// DFU offset of the scratch sector: DFU's last sector, which only the
    /// swap uses, is free while an image is staged (an envelope never exceeds
    /// ACTIVE, which is one sector smaller than DFU). In A/B mode it is the
    /// last sector of the slot being staged, which no envelope reaches.
    fn scratch_offset(&self) -> u32 {
        self.config.layout.dfu.size - self.config.layout.sector
    }

    /// Size of the scratch sector.
    pub fn scratch_len(&self) -> u32 {
        self.config.layout.sector
    }

    /// Erase the scratch sector.
    pub fn scratch_erase(&mut self) -> Result<(), UpdateError> {
        if self.firmware_state()? == State::Swap {
            return Err(UpdateError::NotConfirmed);
        }
        let at = self.scratch_offset();
        part(self.flash, self.dfu_part()?)
            .erase(at, at + self.config.layout.sector)
            .map_err(|e| UpdateError::Flash(e.kind()))
    }

    /// Program bytes in the scratch sector (write-aligned, inside the sector).
    pub fn scratch_write(&mut self, offset: u32, data: &[u8]) -> Result<(), UpdateError> {
        if u64::from(offset) + data.len() as u64 > u64::from(self.config.layout.sector) {
            return Err(UpdateError::OutOfRange);
        }
        if self.firmware_state()? == State::Swap {
            return Err(UpdateError::NotConfirmed);
        }
        part(self.flash, self.dfu_part()?)
            .write(self.scratch_offset() + offset, data)
            .map_err(|e| UpdateError::Flash(e.kind()))
    }

    /// Read bytes from the scratch sector.
    pub fn scratch_read(&self, offset: u32, buf: &mut [u8]) -> Result<(), UpdateError> {
        if u64::from(offset) + buf.len() as u64 > u64::from(self.config.layout.sector) {
            return Err(UpdateError::OutOfRange);
        }
        part(self.flash, self.dfu_part()?)
            .read(self.scratch_offset() + offset, buf)
            .map_err(|e| UpdateError::Flash(e.kind()))
    }

    /// Verify the staged envelope with the bootloader's policy.
    pub fn verify_dfu(&self, buf: &mut [u8]) -> Result<VerifiedImage, UpdateError> {
        let st = self.boot_state()?;
        verify_in_flash(
            &mut part(
                self.flash,
                self.config.layout.slot(dfu_slot(&self.config, &st)),
            ),
            buf,
            &policy(&self.config, &st),
        )
        .map_err(UpdateError::Image)
    }

    /// Verify the running envelope.
    pub fn verify_active(&self, buf: &mut [u8]) -> Result<VerifiedImage, UpdateError> {
        let st = self.boot_state()?;
        verify_in_flash(
            &mut part(
                self.flash,
                self.config.layout.slot(active_slot(&self.config, &st)),
            ),
            buf,
            &policy(&self.config, &st),
        )
        .map_err(UpdateError::Image)
    }

    /// Verify DFU, then ask the bootloader to swap it in at the next reset.
    pub fn request_install(&mut self, buf: &mut [u8]) -> Result<VerifiedImage, UpdateError> {
        if self.firmware_state()? == State::Swap {
            return Err(UpdateError::NotConfirmed);
        }
        let img = self.verify_dfu(buf)?;
        // The record the install boot writes goes into a sector erased now,
        // while the lock is in service, not during the install.
        self.records().prepare()?;
        if self.config.layout.mode == BootMode::Ab {
            let mut st = self.boot_state()?;
            // The marker of the last revert goes before the next request
            // (the bootloader clears any request it still finds beside it).
            if st.trial == Some(Trial::Reverting) {
                st.trial = None;
                st = self.records().store(&st)?;
                self.records().prepare()?;
            }
            let target = dfu_slot(&self.config, &st);
            self.state().set(State::Swap)?;
            write_named_slot(&mut part(self.flash, self.config.layout.state), target)?;
        } else {
            self.state().set(State::Swap)?;
        }
        Ok(img)
    }

    /// Erase the boot-record sector the bootloader writes next, while the
    /// lock is in service (a trial image calls this before its self-test,
    /// so the confirm or the revert at the next reset programs without
    /// erasing). Never touches the newest record.
    pub fn prepare_records(&mut self) -> Result<(), UpdateError> {
        Ok(self.records().prepare()?)
    }

    /// Confirm the running (trial) image; without this before the next
    /// reset, the bootloader reverts.
    pub fn confirm(&mut self) -> Result<(), UpdateError> {
        self.state().set(State::Boot)
    }

    /// Apply a rotation record signed by the current and the new anchors.
    ///
    /// Refused while a trial image runs (a revert would bring back an image
    /// the new set may not trust) and when the running image does not verify
    /// under the new set, so a rotation can never leave the lock unbootable.
    pub fn rotate_anchors(
        &mut self,
        record: &[u8],
        buf: &mut [u8],
    ) -> Result<TrustAnchors, UpdateError> {
        if self.firmware_state()? == State::Swap {
            return Err(UpdateError::NotConfirmed);
        }
        let mut st = self.boot_state()?;
        let next = st.anchors.rotate(record).map_err(UpdateError::Anchors)?;
        let candidate = BootState {
            anchors: next,
            ..st
        };
        verify_in_flash(
            &mut part(
                self.flash,
                self.config.layout.slot(active_slot(&self.config, &st)),
            ),
            buf,
            &policy(&self.config, &candidate),
        )
        .map_err(UpdateError::ActiveNotTrustedByNewAnchors)?;
        st.anchors = next;
        self.records().store(&st)?;
        Ok(next)
    }
}

/// The running slot for `st` (A in swap mode: ACTIVE).
fn active_slot(config: &BootConfig, st: &BootState) -> Slot {
    match config.layout.mode {
        BootMode::Swap => Slot::A,
        BootMode::Ab => st.running_slot(),
    }
}

/// The slot an install is staged in for `st` (B in swap mode: DFU).
fn dfu_slot(config: &BootConfig, st: &BootState) -> Slot {
    active_slot(config, st).other()
}

/// embassy-boot's state handle needs a write-size buffer; keep one beside it.
struct BlockingFirmwareStateOwned<'a, F: NorFlash>(Part<'a, F>);

impl<F: NorFlash> BlockingFirmwareStateOwned<'_, F> {
    fn get(&mut self) -> Result<State, UpdateError> {
        let mut word = [0u8; 32];
        let word = word
            .get_mut(..F::WRITE_SIZE)
            .ok_or(UpdateError::OutOfRange)?;
        BlockingFirmwareState::new(self.0.clone(), word)
            .get_state()
            .map_err(state_err)
    }

    fn set(&mut self, state: State) -> Result<(), UpdateError> {
        let mut word = [0u8; 32];
        let word = word
            .get_mut(..F::WRITE_SIZE)
            .ok_or(UpdateError::OutOfRange)?;
        let mut s = BlockingFirmwareState::new(self.0.clone(), word);
        match state {
            State::Swap => s.mark_updated(),
            _ => s.mark_booted(),
        }
        .map_err(state_err)
    }
}
