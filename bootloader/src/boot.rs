//! The boot flow: verify, swap, trial-boot, revert, on embassy-boot's blocking API.
//!
//! embassy-boot provides the power-fail-safe page swap and its state partition.
//! It does not verify anything itself (its `ed25519-dalek` feature verifies in
//! the application and hides `mark_updated`), so [`Bootloader::boot`] adds the
//! checks around it:
//!
//! 1. A **fresh** swap request (state SWAP, no page swapped yet) is honoured only
//!    if the DFU envelope verifies: signatures by a threshold of trust anchors,
//!    this board's hardware model, security counter ≥ the stored minimum. The
//!    approved image is recorded as *pending* in the boot records **before**
//!    the first page moves. An invalid request is cleared (state back to BOOT)
//!    and the current image boots.
//! 2. `prepare_boot` swaps (or resumes an interrupted swap, or reverts a trial
//!    that was never confirmed).
//! 3. ACTIVE is verified before it is booted. If a trial image failed to
//!    verify, the bootloader reverts at once.
//! 4. When the state is no longer SWAP (the trial confirmed with `mark_booted`,
//!    or was reverted), the pending record is settled: if ACTIVE is the
//!    approved image, the anti-rollback minimum rises to its counter. The
//!    minimum never rises on approval or on swap alone (MCUboot #2549).
//!
//! Every step is idempotent, so a power cut anywhere is survived by running
//! `boot` again; `tests/power_cut.rs` proves it at every flash operation.
//!
//! ## Failing closed (with OTP)
//!
//! Built with [`Bootloader::with_otp`], the bootloader keeps the
//! anti-rollback minimum and the trust-anchor set version in OTP counters
//! ([`crate::otp`]) as well as in the records, and ratchets both up (OTP
//! first, then records) whenever it accepts higher ones. A record is used
//! only if its anchor set is at least the OTP version; the minimum in force
//! is the higher of the record's and the OTP's. With no usable record (both
//! copies erased or corrupted, or only an older one left) the state is the
//! genesis anchors and the **OTP** minimum — and if the anchors were ever
//! rotated (OTP version above genesis), nothing boots at all
//! ([`BootError::AnchorsRevoked`]): a rotated-out key never signs for the
//! lock again, whatever happened to its flash.
//!
//! A STATE that claims a swap or trial under way while no approval is
//! recorded (`pending` empty) was not started by this bootloader: if ACTIVE
//! verifies, the request is cleared and ACTIVE boots as it is; if ACTIVE is
//! mid-swap, embassy-boot finishes the move and the result is reverted at
//! once, so an unapproved image never runs ([`BootReport::unapproved`]).
//!
//! ## A/B mode (execute in place)
//!
//! With a [`BootMode::Ab`] layout nothing is copied. Both slots hold
//! complete envelopes; each image is linked for one virtual window and the
//! bootloader maps the slot it verified there ([`BootReport::slot`]; on the
//! RP2350 the QMI address translation, as the bootrom's own A/B partitions
//! do). What embassy-boot still does, and what it no longer does:
//!
//! | embassy-boot | used? | for |
//! |---|---|---|
//! | `FirmwareUpdater` / `BlockingFirmwareState::mark_updated` | yes (application) | the install request: STATE magic SWAP |
//! | `BlockingFirmwareState::mark_booted` | yes (application, bootloader) | the confirm; the bootloader also clears a refused or reverted request with it |
//! | `BlockingFirmwareState::get_state` | yes (both) | reading the request |
//! | `BootLoader::prepare_boot` (page swap, progress words, revert copy) | **never** | the copy is what A/B removes |
//!
//! The application writes the slot it does not run from and names it in
//! STATE (the word after the progress marker) when it requests. The
//! records hold the confirmed slot and the trial phase
//! ([`crate::records::Trial`]); a boot is:
//!
//! 1. **Trial booted at the last reset.** If STATE still carries the
//!    request that named the trial slot, the trial never confirmed: record
//!    `Reverting` (and drop the approval), clear the request, boot the
//!    confirmed slot (`reverted`). Otherwise the application confirmed:
//!    the trial slot is verified again and becomes the confirmed slot, and
//!    the minimum rises to its counter (OTP first, then the record).
//! 2. **Revert interrupted.** `Reverting` with the request still set: clear it.
//! 3. **Request.** The named slot must be the one not confirmed, and it
//!    must verify (anchors, model, counter ≥ minimum, envelope within the
//!    slot less its scratch sector). Then `Booted` and the approval are
//!    recorded **before** the slot is mapped; a refused request is cleared
//!    and the confirmed slot boots (`rejected_update`, or `unapproved` when
//!    the request names no slot or the running one).
//! 4. **Otherwise** the confirmed slot is verified and mapped.
//!
//! With no usable record (factory-fresh, or both copies lost) the slot not
//! named by a pending request is taken as confirmed; without a request, if
//! both slots verify, the one with the higher counter boots **on trial**
//! with the other as the way back (an image that once failed its self-test
//! fails it again and is reverted), else the one that verifies is
//! confirmed. The choice is recorded at once; the OTP floors still apply,
//! so a lost record cannot bring back an older image or a removed key.
//!
//! An install costs one record write; a revert one record write and one
//! STATE erase; neither moves an image page. Every step is idempotent, and
//! `tests/integration/ab.rs` cuts power at every flash and OTP operation.

use core::cell::RefCell;

use embassy_boot::{BlockingFirmwareState, BootLoader, BootLoaderConfig, State};
use embassy_embedded_hal::flash::partition::BlockingPartition;
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embedded_storage::nor_flash::{NorFlash, NorFlashError, NorFlashErrorKind};

use crate::anchors::TrustAnchors;
use crate::envelope::{
    EnvelopeError, HardwareModel, PREFIX_LEN, Policy, VerifiedImage, verify_in_flash,
};
use crate::layout::{BootMode, Layout, Partition, Slot};
use crate::otp::{Otp, OtpCounters, OtpError, OtpFloor};
use crate::records::{BootRecords, BootState, Pending, Trial};
use crate::state_mirror::{MIRROR_MAX, MirroredState};

/// The whole flash, shared by partitions.
pub type SharedFlash<F> = Mutex<NoopRawMutex, RefCell<F>>;
/// One partition of the shared flash.
pub type Part<'a, F> = BlockingPartition<'a, NoopRawMutex, F>;

#[cfg(not(feature = "flash-erase-zero"))]
pub(crate) const STATE_ERASED: u8 = 0xFF;
#[cfg(feature = "flash-erase-zero")]
pub(crate) const STATE_ERASED: u8 = 0x00;

/// What the bootloader is built with.
#[derive(Debug, Clone, Copy)]
pub struct BootConfig {
    /// The board's hardware model; images for others are refused.
    pub model: HardwareModel,
    /// Anchors used until a rotation is stored.
    pub genesis: TrustAnchors,
    /// Partition layout.
    pub layout: Layout,
}

/// Errors that stop the boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BootError {
    /// Flash access failed.
    Flash(NorFlashErrorKind),
    /// The layout does not match the flash geometry.
    Geometry,
    /// The work buffer must divide the sector size, hold 1024 bytes and be write-aligned.
    BufferSize,
    /// Neither a verified image in ACTIVE nor a way back to one.
    NoBootableImage(EnvelopeError),
    /// embassy-boot reported a bad magic.
    BadMagic,
    /// Reading or raising the OTP counters failed.
    Otp(OtpError),
    /// No usable boot record, and the genesis anchors were rotated out
    /// (the OTP anchor set version is above theirs): no image may boot.
    AnchorsRevoked {
        /// Anchor set version the OTP requires.
        required: u32,
        /// Version of the genesis set.
        genesis: u32,
    },
}

impl core::fmt::Display for BootError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Flash(k) => write!(f, "flash error: {k:?}"),
            Self::Geometry => write!(f, "layout does not match the flash geometry"),
            Self::BufferSize => write!(f, "work buffer size unusable for this flash"),
            Self::NoBootableImage(e) => write!(f, "no bootable image: {e}"),
            Self::BadMagic => write!(f, "bad embassy-boot magic"),
            Self::Otp(e) => write!(f, "OTP: {e}"),
            Self::AnchorsRevoked { required, genesis } => write!(
                f,
                "boot records unreadable and the genesis anchors (set {genesis}) were \
                 rotated out (OTP requires set {required} or later): not booting"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BootError {}

impl From<NorFlashErrorKind> for BootError {
    fn from(k: NorFlashErrorKind) -> Self {
        Self::Flash(k)
    }
}

impl From<OtpError> for BootError {
    fn from(e: OtpError) -> Self {
        Self::Otp(e)
    }
}

impl From<embassy_boot::BootError> for BootError {
    fn from(e: embassy_boot::BootError) -> Self {
        match e {
            embassy_boot::BootError::Flash(k) => Self::Flash(k),
            embassy_boot::BootError::BadMagic => Self::BadMagic,
        }
    }
}

/// What happened during a boot, and what is about to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootReport {
    /// The verified image that will be started.
    pub image: VerifiedImage,
    /// The slot it runs from: mapped into the execution window (A/B), or
    /// always [`Slot::A`], ACTIVE (swap).
    pub slot: Slot,
    /// Booting a new image on trial: it must confirm before the next reset.
    pub trial: bool,
    /// This boot reverted a trial image that never confirmed.
    pub reverted: bool,
    /// A swap request was refused, and why.
    pub rejected_update: Option<EnvelopeError>,
    /// Anti-rollback minimum after this boot.
    pub min_security_counter: u32,
    /// Version of the trust anchor set in force.
    pub anchors_version: u32,
    /// The STATE claimed a swap or trial this bootloader never approved; it
    /// was refused (cleared, or reverted at once).
    pub unapproved: bool,
    /// The boot records were lost: only a record older than the OTP anchor
    /// version was found, or none although the OTP shows the lock has run
    /// before (erased or corrupted). The genesis anchors and the OTP minimum
    /// were used. Without OTP a lost record looks like a fresh device and
    /// this stays false.
    pub records_lost: bool,
}

impl BootReport {
    /// An ordinary boot of `image` from `slot` under `st`: nothing refused,
    /// reverted or on trial (callers set what happened).
    fn ordinary(image: VerifiedImage, slot: Slot, st: &BootState, records_lost: bool) -> Self {
        Self {
            image,
            slot,
            trial: false,
            reverted: false,
            rejected_update: None,
            min_security_counter: st.min_security_counter,
            anchors_version: st.anchors.version(),
            unapproved: false,
            records_lost,
        }
    }
}

/// Where embassy-boot's swap stands, read from its state partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// No page moved yet.
    Fresh,
    /// Swap or revert under way, or progress invalidated by a confirm.
    Started,
}

/// STATE byte naming slot A / B in an A/B request (neither erased value).
const NAMED_A: u8 = 0xA1;
const NAMED_B: u8 = 0xB2;

/// The byte an A/B request repeats over the STATE word after embassy-boot's
/// progress marker to name `slot` (format documentation, and for tests that
/// forge requests).
pub const fn named_slot_byte(slot: Slot) -> u8 {
    match slot {
        Slot::A => NAMED_A,
        Slot::B => NAMED_B,
    }
}

/// Offset in STATE of the word naming the requested slot (after
/// embassy-boot's magic and progress-validity words).
fn named_offset<F: NorFlash>() -> u32 {
    2 * F::WRITE_SIZE as u32
}

/// The slot an A/B request names: `None` if the word is erased or holds
/// anything else.
pub(crate) fn read_named_slot<F: NorFlash>(
    state: &mut F,
    buf: &mut [u8],
) -> Result<Option<Slot>, NorFlashErrorKind> {
    let word = buf
        .get_mut(..F::WRITE_SIZE)
        .ok_or(NorFlashErrorKind::Other)?;
    state
        .read(named_offset::<F>(), word)
        .map_err(|e| e.kind())?;
    Ok(if word.iter().all(|&b| b == NAMED_A) {
        Some(Slot::A)
    } else if word.iter().all(|&b| b == NAMED_B) {
        Some(Slot::B)
    } else {
        None
    })
}

/// Name `slot` in STATE (after `mark_updated`, which erased the word).
pub(crate) fn write_named_slot<F: NorFlash>(
    state: &mut F,
    slot: Slot,
) -> Result<(), NorFlashErrorKind> {
    let mut word = [0u8; 32];
    let word = word
        .get_mut(..F::WRITE_SIZE)
        .ok_or(NorFlashErrorKind::Other)?;
    word.fill(named_slot_byte(slot));
    state.write(named_offset::<F>(), word).map_err(|e| e.kind())
}

/// Read embassy-boot 0.7's progress words (format documented in its
/// `boot_loader.rs`: word 1 is the validity marker, words 2.. the progress).
pub(crate) fn swap_progress<F: NorFlash>(
    state: &mut F,
    buf: &mut [u8],
) -> Result<Progress, NorFlashErrorKind> {
    let w = F::WRITE_SIZE;
    let word = buf.get_mut(..w).ok_or(NorFlashErrorKind::Other)?;
    state.read(w as u32, word).map_err(|e| e.kind())?;
    if word.iter().any(|&b| b != STATE_ERASED) {
        return Ok(Progress::Started);
    }
    state.read(2 * w as u32, word).map_err(|e| e.kind())?;
    Ok(if word.contains(&STATE_ERASED) {
        Progress::Fresh
    } else {
        Progress::Started
    })
}

/// Partition handle on a shared flash.
pub(crate) fn part<F: NorFlash>(flash: &SharedFlash<F>, p: Partition) -> Part<'_, F> {
    BlockingPartition::new(flash, p.offset, p.size)
}

/// Check that a layout fits the flash type and size.
pub(crate) fn check_geometry<F: NorFlash>(
    flash: &SharedFlash<F>,
    layout: &Layout,
) -> Result<(), BootError> {
    let capacity = flash.lock(|f| f.borrow().capacity());
    if layout.sector as usize != F::ERASE_SIZE
        || layout.write_size as usize != F::WRITE_SIZE
        || F::READ_SIZE > F::WRITE_SIZE
        || F::WRITE_SIZE > 32
        || (layout.flash_size as usize) > capacity
        || layout.check().is_err()
    {
        return Err(BootError::Geometry);
    }
    Ok(())
}

/// Policy for images in a bank of this layout, given the stored state.
pub(crate) fn policy<'a>(config: &'a BootConfig, st: &'a BootState) -> Policy<'a> {
    Policy {
        anchors: &st.anchors,
        model: Some(&config.model),
        min_security_counter: st.min_security_counter,
        max_payload_len: config.layout.max_envelope() - PREFIX_LEN as u32,
    }
}

/// The OTP a bootloader keeps its floors in.
struct OtpBinding<'a> {
    otp: &'a mut dyn Otp,
    counters: OtpCounters,
}

impl core::fmt::Debug for OtpBinding<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OtpBinding")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// The bootloader.
#[derive(Debug)]
pub struct Bootloader<'a, F: NorFlash> {
    flash: &'a SharedFlash<F>,
    config: BootConfig,
    otp: Option<OtpBinding<'a>>,
}

impl<'a, F: NorFlash> Bootloader<'a, F> {
    /// A bootloader on `flash` laid out as `config.layout`, with its
    /// minimum and anchor version in flash records only.
    pub fn new(flash: &'a SharedFlash<F>, config: BootConfig) -> Result<Self, BootError> {
        check_geometry(flash, &config.layout)?;
        Ok(Self {
            flash,
            config,
            otp: None,
        })
    }

    /// Also keep the minimum and the anchor set version in `otp` (see the
    /// module docs, "Failing closed").
    #[must_use]
    pub fn with_otp(mut self, otp: &'a mut dyn Otp, counters: OtpCounters) -> Self {
        self.otp = Some(OtpBinding { otp, counters });
        self
    }

    /// What the OTP requires (nothing without OTP).
    fn otp_floor(&mut self) -> Result<OtpFloor, BootError> {
        match &mut self.otp {
            None => Ok(OtpFloor::default()),
            Some(b) => Ok(b.counters.read(&mut b.otp)?),
        }
    }

    /// Raise the OTP counters to what `st` holds (before `st` is stored).
    fn ratchet(&mut self, st: &BootState) -> Result<(), BootError> {
        if let Some(b) = &mut self.otp {
            b.counters
                .anchors_version
                .raise(&mut b.otp, st.anchors.version())?;
            b.counters
                .min_security_counter
                .raise(&mut b.otp, st.min_security_counter)?;
        }
        Ok(())
    }

    /// The state to boot with: the newest record if its anchors are not
    /// older than the OTP allows, with the higher of the two minimums;
    /// otherwise the genesis anchors (if the OTP still allows them) and the
    /// OTP minimum. The second value says the records were unusable.
    fn load_state(&mut self) -> Result<(BootState, bool), BootError> {
        let floor = self.otp_floor()?;
        let stored = self.records().load_stored()?;
        if let Some(mut st) = stored
            && st.anchors.version() >= floor.anchors_version
        {
            st.min_security_counter = st.min_security_counter.max(floor.min_security_counter);
            self.ratchet(&st)?;
            return Ok((st, false));
        }
        let genesis = self.config.genesis;
        if genesis.version() < floor.anchors_version {
            return Err(BootError::AnchorsRevoked {
                required: floor.anchors_version,
                genesis: genesis.version(),
            });
        }
        Ok((
            BootState::factory(&genesis, floor.min_security_counter),
            stored.is_some() || floor != OtpFloor::default(),
        ))
    }

    fn records(&self) -> BootRecords<Part<'a, F>> {
        BootRecords::new(part(self.flash, self.config.layout.boot_records))
    }

    fn verify(
        &self,
        bank: Partition,
        st: &BootState,
        buf: &mut [u8],
    ) -> Result<VerifiedImage, EnvelopeError> {
        verify_in_flash(&mut part(self.flash, bank), buf, &policy(&self.config, st))
    }

    /// Clear a swap request (state back to BOOT) without moving a page.
    fn clear_request(&self, buf: &mut [u8]) -> Result<(), BootError> {
        let w = F::WRITE_SIZE;
        BlockingFirmwareState::new(part(self.flash, self.config.layout.state), &mut buf[..w])
            .mark_booted()
            .map_err(|_| BootError::Flash(NorFlashErrorKind::Other))
    }

    /// Settle a pending install once the state is no longer SWAP: raise the
    /// minimum if ACTIVE is the approved image, and forget the approval.
    fn settle(&mut self, st: &mut BootState, active: &VerifiedImage) -> Result<(), BootError> {
        let Some(p) = st.pending else { return Ok(()) };
        let h = active.header();
        if h.payload_sha256 == p.payload_sha256 && h.security_counter == p.security_counter {
            st.min_security_counter = st.min_security_counter.max(p.security_counter);
        }
        st.pending = None;
        // OTP first: a cut between the two leaves the OTP minimum ahead of
        // the record's, and the higher one is used.
        self.ratchet(st)?;
        *st = self.records().store(st)?;
        Ok(())
    }

    /// Run the boot flow. `buf` is the work buffer: it must divide the sector
    /// size, be a multiple of the write size and hold at least 1024 bytes
    /// (a whole sector is fastest). Returns what to start, or an error if
    /// nothing verified can be started.
    pub fn boot(&mut self, buf: &mut [u8]) -> Result<BootReport, BootError> {
        let sector = self.config.layout.sector as usize;
        if buf.len() < PREFIX_LEN
            || !sector.is_multiple_of(buf.len())
            || !buf.len().is_multiple_of(F::WRITE_SIZE)
        {
            return Err(BootError::BufferSize);
        }
        match self.config.layout.mode {
            BootMode::Swap => self.boot_swap(buf),
            BootMode::Ab => self.boot_ab(buf),
        }
    }

    /// The request in STATE, if any, and the slot it names (A/B).
    fn read_request(&self, buf: &mut [u8]) -> Result<Option<Option<Slot>>, BootError> {
        let w = F::WRITE_SIZE;
        let mut state = part(self.flash, self.config.layout.state);
        let magic = BlockingFirmwareState::new(state.clone(), &mut buf[..w])
            .get_state()
            .map_err(|_| BootError::Flash(NorFlashErrorKind::Other))?;
        if magic != State::Swap {
            return Ok(None);
        }
        Ok(Some(read_named_slot(&mut state, buf)?))
    }

    /// With no record: the slot whose image verifies and has the higher
    /// security counter (A if neither verifies or both tie), and whether
    /// the other slot verifies with a lower counter (a way back).
    fn best_slot(&self, st: &BootState, buf: &mut [u8]) -> (Slot, bool) {
        let layout = self.config.layout;
        let counter = |slot: Slot, buf: &mut [u8]| {
            self.verify(layout.slot(slot), st, buf)
                .ok()
                .map(|img| img.header().security_counter)
        };
        let a = counter(Slot::A, buf);
        let b = counter(Slot::B, buf);
        match (a, b) {
            (Some(a), Some(b)) if b > a => (Slot::B, true),
            (Some(a), Some(b)) if a > b => (Slot::A, true),
            (None, Some(_)) => (Slot::B, false),
            _ => (Slot::A, false),
        }
    }

    /// Request `slot` as the application would (A/B): STATE SWAP, slot named.
    fn request_slot(&self, slot: Slot, buf: &mut [u8]) -> Result<(), BootError> {
        let w = F::WRITE_SIZE;
        let state = part(self.flash, self.config.layout.state);
        BlockingFirmwareState::new(state.clone(), &mut buf[..w])
            .mark_updated()
            .map_err(|_| BootError::Flash(NorFlashErrorKind::Other))?;
        write_named_slot(&mut state.clone(), slot)?;
        Ok(())
    }

    /// The A/B boot flow (module docs, "A/B mode").
    fn boot_ab(&mut self, buf: &mut [u8]) -> Result<BootReport, BootError> {
        let layout = self.config.layout;
        let (mut st, records_lost) = self.load_state()?;
        let mut requested = self.read_request(buf)?;
        if st.seq == 0 {
            // No usable record (factory-fresh, or lost): which slot is
            // confirmed is not known. A request names the slot it staged,
            // so the other one is. Without one: if both slots verify, the
            // one with the higher counter runs on trial (a request for it
            // is made here) and the other is the way back, so an image that
            // failed its self-test before fails it again and is reverted;
            // if one verifies, it is confirmed. Recorded at once, so a
            // later staging cannot change the choice.
            st.slot = match requested {
                Some(Some(named)) => named.other(),
                _ => match self.best_slot(&st, buf) {
                    (best, true) => {
                        self.request_slot(best, buf)?;
                        requested = Some(Some(best));
                        best.other()
                    }
                    (best, false) => best,
                },
            };
            st = self.records().store(&st)?;
        }
        let mut reverted = false;
        let mut unapproved = false;
        let mut rejected_update = None;
        // A slot verified during this boot (not hashed twice).
        let mut verified: Option<(Slot, VerifiedImage)> = None;

        // 1. A trial booted at the last reset: confirmed, or reverted.
        if st.trial == Some(Trial::Booted) {
            let trial_slot = st.slot.other();
            // The request that started the trial names the trial slot; once
            // the application confirms, STATE is BOOT (or a newer request
            // names the old slot).
            let confirmed = requested != Some(Some(trial_slot));
            let img = if confirmed {
                self.verify(layout.slot(trial_slot), &st, buf).ok()
            } else {
                None
            };
            if let Some(img) = img {
                st.slot = trial_slot;
                st.trial = None;
                self.settle(&mut st, &img)?;
                verified = Some((trial_slot, img));
            } else {
                st.trial = Some(Trial::Reverting);
                st.pending = None;
                st = self.records().store(&st)?;
                reverted = true;
            }
        }
        // 2. A revert clears the request that started the trial (also when
        // a power cut came between the two).
        if st.trial == Some(Trial::Reverting) && requested.is_some() {
            self.clear_request(buf)?;
            requested = None;
            reverted = true;
        }
        // 3. A request: the named slot must be the one not confirmed.
        if let Some(named) = requested {
            let target = st.slot.other();
            if named != Some(target) {
                unapproved = true;
                self.clear_request(buf)?;
            } else {
                match self.verify(layout.slot(target), &st, buf) {
                    Ok(img) => {
                        st.pending = Some(Pending {
                            payload_sha256: img.header().payload_sha256,
                            security_counter: img.header().security_counter,
                        });
                        st.trial = Some(Trial::Booted);
                        st = self.records().store(&st)?;
                        return Ok(BootReport {
                            trial: true,
                            ..BootReport::ordinary(img, target, &st, records_lost)
                        });
                    }
                    Err(e) => {
                        self.clear_request(buf)?;
                        rejected_update = Some(e);
                    }
                }
            }
        }
        // 4. The confirmed slot.
        let image = match verified {
            Some((slot, img)) if slot == st.slot => img,
            _ => self
                .verify(layout.slot(st.slot), &st, buf)
                .map_err(BootError::NoBootableImage)?,
        };
        if st.pending.is_some() {
            self.settle(&mut st, &image)?;
        }
        Ok(BootReport {
            reverted,
            rejected_update,
            unapproved,
            ..BootReport::ordinary(image, st.slot, &st, records_lost)
        })
    }

    /// embassy-boot's `prepare_boot` (swap, resume or revert) on a loader
    /// whose STATE reads come from RAM ([`crate::state_mirror`]: one read
    /// of STATE instead of one per progress word, about 400,000 for a
    /// 448-page swap). The loader is made for this one call, during which
    /// only embassy-boot touches STATE.
    fn prepare_boot(&self, buf: &mut [u8]) -> Result<State, BootError> {
        let layout = self.config.layout;
        let mut ram = [0u8; MIRROR_MAX];
        let mut loader = BootLoader::new(BootLoaderConfig {
            active: part(self.flash, layout.active),
            dfu: part(self.flash, layout.dfu),
            state: MirroredState::new(part(self.flash, layout.state), &mut ram),
        });
        Ok(loader.prepare_boot(buf)?)
    }

    /// The swap boot flow (module docs, steps 1–4).
    fn boot_swap(&mut self, buf: &mut [u8]) -> Result<BootReport, BootError> {
        let layout = self.config.layout;
        let (mut st, records_lost) = self.load_state()?;
        let mut rejected_update = None;
        let mut unapproved = false;

        let mut loader = BootLoader::new(BootLoaderConfig {
            active: part(self.flash, layout.active),
            dfu: part(self.flash, layout.dfu),
            state: part(self.flash, layout.state),
        });
        let mut before = loader.read_state(buf)?;
        let fresh = before == State::Swap
            && swap_progress(&mut part(self.flash, layout.state), buf)? == Progress::Fresh;
        if before == State::Swap && !fresh && st.pending.is_none() {
            // A swap or trial under way that this bootloader never approved
            // (every approval is recorded before the first page moves).
            unapproved = true;
            if self.verify(layout.active, &st, buf).is_ok() {
                // ACTIVE is whole: nothing was moved, or the claim is
                // forged. Clear it and boot ACTIVE as it is.
                self.clear_request(buf)?;
                before = loader.read_state(buf)?;
            }
            // Otherwise ACTIVE is mid-move: embassy-boot must finish it
            // before anything is whole; the trial it leaves is reverted
            // below.
        }
        if fresh {
            // A previous install may have confirmed without a reset since:
            // settle it before approving the next one.
            if st.pending.is_some()
                && let Ok(img) = self.verify(layout.active, &st, buf)
            {
                self.settle(&mut st, &img)?;
            }
            match self.verify(layout.dfu, &st, buf) {
                Ok(img) => {
                    st.pending = Some(Pending {
                        payload_sha256: img.header().payload_sha256,
                        security_counter: img.header().security_counter,
                    });
                    st = self.records().store(&st)?;
                }
                Err(e) => {
                    self.clear_request(buf)?;
                    rejected_update = Some(e);
                }
            }
        }
        // An approved swap (new, or resumed after a reset), or a revert.
        let was_trial = before == State::Swap && !fresh;
        self.prepare_boot(buf)?;
        let mut after = loader.read_state(buf)?;
        if unapproved && after == State::Swap {
            // The unapproved move left a trial: take the other image back.
            self.prepare_boot(buf)?;
            after = loader.read_state(buf)?;
        }

        let image = match self.verify(layout.active, &st, buf) {
            Ok(img) => img,
            Err(_) if after == State::Swap => {
                // The swapped-in image does not verify (flash corrupted under
                // us): revert now rather than start it.
                self.prepare_boot(buf)?;
                after = loader.read_state(buf)?;
                self.verify(layout.active, &st, buf)
                    .map_err(BootError::NoBootableImage)?
            }
            Err(e) => return Err(BootError::NoBootableImage(e)),
        };
        let trial = after == State::Swap;
        let reverted = (was_trial || fresh) && after == State::Revert && {
            st.pending
                .is_some_and(|p| p.payload_sha256 != image.header().payload_sha256)
        };
        if !trial {
            self.settle(&mut st, &image)?;
        }
        Ok(BootReport {
            trial,
            reverted,
            rejected_update,
            unapproved,
            ..BootReport::ordinary(image, Slot::A, &st, records_lost)
        })
    }
}
