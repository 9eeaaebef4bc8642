//! Shared fixtures: keys, envelopes, and a simulated lock.

use std::cell::RefCell;

use bootloader::anchors::{MAX_ROTATION_LEN, Rotation};
use bootloader::boot::{BootConfig, BootError, BootReport, Bootloader, SharedFlash};
use bootloader::envelope::{HardwareModel, Header, PREFIX_LEN, Prefix, SignatureEntry, Version};
use bootloader::layout::Layout;
use bootloader::otp::OtpCounters;
use bootloader::sim::{Cut, Erased, SimFlash, SimOtp};
use bootloader::updater::{UpdateError, Updater};
use bootloader::{TrustAnchors, anchors::key_id};
use ed25519_dalek::{Signer, SigningKey};
use embassy_sync::blocking_mutex::Mutex;
use sha2::{Digest, Sha256};

pub type Flash = SimFlash<4, 4096>;

pub const MODEL: &str = "nl-pico2w-r1";

pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn public(k: &SigningKey) -> [u8; 32] {
    k.verifying_key().to_bytes()
}

pub fn model() -> HardwareModel {
    HardwareModel::new(MODEL).unwrap()
}

/// A deterministic payload of `len` bytes, distinct per `tag`.
pub fn payload(tag: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[3] ^ tag)
        .collect()
}

pub fn header(model: &str, version: Version, counter: u32, payload: &[u8]) -> Header {
    Header {
        model: HardwareModel::new(model).unwrap(),
        version,
        security_counter: counter,
        payload_len: payload.len() as u32,
        payload_sha256: Sha256::digest(payload).into(),
    }
}

/// A signed envelope.
pub fn envelope_with(h: &Header, keys: &[&SigningKey], payload: &[u8]) -> Vec<u8> {
    let hb = h.encode();
    let sigs: Vec<SignatureEntry> = keys
        .iter()
        .map(|k| SignatureEntry {
            key_id: key_id(&public(k)),
            signature: k.sign(&hb).to_bytes(),
        })
        .collect();
    let mut out = Prefix::encode(h, &sigs).unwrap().to_vec();
    out.extend_from_slice(payload);
    out
}

pub fn envelope(keys: &[&SigningKey], version: Version, counter: u32, payload: &[u8]) -> Vec<u8> {
    envelope_with(&header(MODEL, version, counter, payload), keys, payload)
}

pub fn anchors_of(keys: &[&SigningKey], threshold: u8) -> TrustAnchors {
    let pubs: Vec<[u8; 32]> = keys.iter().map(|k| public(k)).collect();
    TrustAnchors::new(1, threshold, &pubs).unwrap()
}

/// A lock: simulated flash plus the bootloader configuration.
pub struct Lock {
    pub flash: SharedFlash<Flash>,
    pub config: BootConfig,
    pub buf: Vec<u8>,
    /// OTP the bootloader keeps its floors in ([`Lock::with_otp`]); none by
    /// default.
    pub otp: Option<SimOtp>,
}

impl Lock {
    /// Factory state: `active` programmed into ACTIVE, everything else erased.
    pub fn factory(layout: Layout, anchors: TrustAnchors, active: &[u8]) -> Self {
        let mut f = Flash::new(layout.flash_size as usize, Erased::Ones);
        f.program_raw(layout.active.offset as usize, active);
        Self {
            flash: Mutex::new(RefCell::new(f)),
            config: BootConfig {
                model: model(),
                genesis: anchors,
                layout,
            },
            buf: vec![0; 4096],
            otp: None,
        }
    }

    /// Give the bootloader OTP (the reference board's rows).
    pub fn with_otp(mut self) -> Self {
        self.otp = Some(SimOtp::new(4096));
        self
    }

    pub fn with_flash<R>(&self, f: impl FnOnce(&mut Flash) -> R) -> R {
        self.flash.lock(|c| f(&mut c.borrow_mut()))
    }

    pub fn arm(&self, cut: Cut) {
        self.with_flash(|f| f.arm(cut));
    }

    /// Power was lost (in a flash or an OTP operation).
    pub fn dead(&self) -> bool {
        self.with_flash(|f| f.is_dead()) || self.otp.as_ref().is_some_and(|o| o.is_lost())
    }

    /// Reset: power returns, RAM is lost, flash and OTP are kept.
    pub fn reboot(&mut self) {
        self.with_flash(|f| f.reboot());
        if let Some(o) = &mut self.otp {
            o.reboot();
        }
    }

    /// A factory lock of an A/B layout whose image was flashed into `slot`
    /// (and the records say so), to show nothing assumes slot A.
    pub fn factory_in_slot(
        layout: Layout,
        anchors: TrustAnchors,
        slot: bootloader::layout::Slot,
        active: &[u8],
    ) -> Self {
        let lock = Self::factory(layout, anchors, &[]);
        let p = layout.slot(slot);
        lock.with_flash(|f| f.program_raw(p.offset as usize, active));
        let records = embassy_embedded_hal::flash::partition::BlockingPartition::new(
            &lock.flash,
            layout.boot_records.offset,
            layout.boot_records.size,
        );
        let mut st = bootloader::records::BootState::factory(&anchors, 0);
        st.slot = slot;
        bootloader::records::BootRecords::new(records)
            .store(&st)
            .unwrap();
        lock
    }

    /// The bytes of the slot the running image lives in (ACTIVE in swap mode).
    pub fn running_bytes(&self) -> Vec<u8> {
        let p = self
            .config
            .layout
            .slot(self.updater().running_slot().unwrap());
        self.raw(p.offset, p.size as usize)
    }

    /// Offset of the partition an install is staged in (DFU, or the slot
    /// not running).
    pub fn staging_offset(&self) -> u32 {
        self.config
            .layout
            .slot(self.updater().running_slot().unwrap().other())
            .offset
    }

    pub fn boot(&mut self) -> Result<BootReport, BootError> {
        let b = Bootloader::new(&self.flash, self.config)?;
        match &mut self.otp {
            Some(otp) => b.with_otp(otp, OtpCounters::REFERENCE).boot(&mut self.buf),
            None => {
                let mut b = b;
                b.boot(&mut self.buf)
            }
        }
    }

    /// What an attacker with flash access (or two failing sectors) does to
    /// the boot records: erase both copies.
    pub fn erase_records(&self) {
        let p = self.config.layout.boot_records;
        self.with_flash(|f| {
            embedded_storage::nor_flash::NorFlash::erase(f, p.offset, p.offset + p.size).unwrap()
        });
    }

    /// Both copies of the boot records as they are now.
    pub fn records_bytes(&self) -> Vec<u8> {
        let p = self.config.layout.boot_records;
        self.raw(p.offset, p.size as usize)
    }

    /// Put back records saved with [`Lock::records_bytes`] (a rollback).
    pub fn restore_records(&self, bytes: &[u8]) {
        self.erase_records();
        let off = self.config.layout.boot_records.offset as usize;
        self.with_flash(|f| f.program_raw(off, bytes));
    }

    pub fn updater(&self) -> Updater<'_, Flash> {
        Updater::new(&self.flash, self.config).unwrap()
    }

    /// Stage an envelope into DFU in 1 KiB chunks, as a download would.
    pub fn stage(&self, envelope: &[u8]) -> Result<(), UpdateError> {
        let mut u = self.updater();
        u.begin()?;
        for (i, chunk) in envelope.chunks(1024).enumerate() {
            u.write_dfu((i * 1024) as u32, chunk)?;
        }
        Ok(())
    }

    /// Stage and request an install through the application API.
    pub fn stage_and_request(&mut self, envelope: &[u8]) -> Result<(), UpdateError> {
        self.stage(envelope)?;
        let mut buf = vec![0u8; 4096];
        self.updater().request_install(&mut buf).map(|_| ())
    }

    /// Stage and mark for swap *without* verification, as a compromised or
    /// buggy application could: the bootloader must catch it.
    pub fn stage_unchecked(&self, envelope: &[u8]) {
        self.stage(envelope).unwrap();
        self.mark_updated_raw();
    }

    /// embassy-boot's `mark_updated` straight on STATE, nothing checked.
    pub fn mark_updated_raw(&self) {
        let l = self.config.layout;
        let part = embassy_embedded_hal::flash::partition::BlockingPartition::new(
            &self.flash,
            l.state.offset,
            l.state.size,
        );
        let mut word = [0u8; 4];
        embassy_boot::BlockingFirmwareState::new(part, &mut word)
            .mark_updated()
            .unwrap();
    }

    /// Install `env` through the app API: trial boot, confirm, and the
    /// boot that settles it.
    pub fn install(&mut self, env: &[u8]) -> BootReport {
        self.stage_and_request(env).unwrap();
        assert!(self.boot().unwrap().trial);
        self.updater().confirm().unwrap();
        let r = self.boot().unwrap();
        assert!(!r.trial);
        assert_eq!(r.image.header().payload_sha256, digest_of(env));
        r
    }

    pub fn raw(&self, offset: u32, len: usize) -> Vec<u8> {
        self.with_flash(|f| f.contents()[offset as usize..offset as usize + len].to_vec())
    }

    pub fn active_bytes(&self) -> Vec<u8> {
        let l = self.config.layout;
        self.raw(l.active.offset, l.active.size as usize)
    }
}

/// Payload digest of an envelope.
pub fn digest_of(envelope: &[u8]) -> [u8; 32] {
    Sha256::digest(&envelope[PREFIX_LEN..]).into()
}

/// A rotation record to `new`, signed by `signers`.
pub fn record(new: &TrustAnchors, signers: &[&SigningKey]) -> Vec<u8> {
    let mut buf = [0u8; MAX_ROTATION_LEN];
    let n = Rotation::signed_bytes(new, &mut buf);
    let signed = buf[..n].to_vec();
    let sigs: Vec<_> = signers
        .iter()
        .map(|k| (key_id(&public(k)), k.sign(&signed).to_bytes()))
        .collect();
    let len = Rotation::encode(new, &sigs, &mut buf).unwrap();
    buf[..len].to_vec()
}

/// A trust anchor set.
pub fn set(version: u32, threshold: u8, keys: &[&SigningKey]) -> TrustAnchors {
    let pubs: Vec<[u8; 32]> = keys.iter().map(|k| public(k)).collect();
    TrustAnchors::new(version, threshold, &pubs).unwrap()
}

/// A lock on `layout` whose genesis key 1 was rotated out for key 2: it
/// runs a transition release (counter 2) signed by both, installed while
/// set 1 was in force. Returns the lock and its boot records as they were
/// before the rotation (the copy an attacker keeps).
pub fn rotated_lock(layout: Layout, otp: bool) -> (Lock, Vec<u8>) {
    let (compromised, replacement) = (key(1), key(2));
    let both = [&compromised, &replacement];
    let running = envelope(&both, Version::new(1, 0, 0), 1, &payload(1, 9000));
    let mut lock = Lock::factory(layout, set(1, 1, &[&compromised]), &running);
    if otp {
        lock = lock.with_otp();
    }
    assert_eq!(lock.boot().unwrap().anchors_version, 1);
    let transition = envelope(&both, Version::new(1, 1, 0), 2, &payload(2, 9000));
    lock.install(&transition);
    let before = lock.records_bytes();
    let mut buf = vec![0u8; 4096];
    lock.updater()
        .rotate_anchors(
            &record(&set(2, 1, &[&replacement]), &[&compromised, &replacement]),
            &mut buf,
        )
        .unwrap();
    assert_eq!(lock.boot().unwrap().anchors_version, 2);
    (lock, before)
}

/// An image signed only by the key [`rotated_lock`] rotated out.
pub fn signed_by_removed_key() -> Vec<u8> {
    envelope(&[&key(1)], Version::new(9, 0, 0), 9, &payload(9, 9000))
}
