//! Flash cost and modelled downtime of installing a 1.5 MiB image on the
//! reference layout (4 MiB QSPI NOR, 1,792 KiB ACTIVE).
//!
//! Run: `cargo bench -p bootloader --bench install_downtime`
//!
//! Prints figures; does not pass or fail. Every flash operation of the real
//! boot flow (embassy-boot swap included) goes through a wrapper that charges
//! it with datasheet timings:
//!
//! | operation | time | source |
//! |---|---|---|
//! | 4 KiB sector erase | 45 ms typical (400 ms max) | Winbond W25Q32JV datasheet rev. I, table 9.7, tSE |
//! | 256-byte page program | 0.7 ms typical (3 ms max) | same, tPP |
//! | program of a few bytes | 30 µs first byte + 2.5 µs each next | same, tBP1 / tBP2 |
//! | read | 37.5 MB/s | quad I/O at 75 MHz (RP2350 QMI, clkdiv 2 at 150 MHz) |
//!
//! Verification compute is charged separately: SHA-256 at 5 MB/s (software on
//! a 150 MHz Cortex-M33; the RP2350's SHA-256 block is faster) and 15 ms per
//! Ed25519 verification.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;

use bootloader::TrustAnchors;
use bootloader::anchors::key_id;
use bootloader::boot::{BootConfig, Bootloader, SharedFlash};
use bootloader::envelope::{HardwareModel, Header, Prefix, SignatureEntry, Version};
use bootloader::layout::REFERENCE;
use bootloader::sim::{Erased, SimError, SimFlash};
use bootloader::updater::Updater;
use ed25519_dalek::{Signer, SigningKey};
use embassy_sync::blocking_mutex::Mutex;
use embedded_storage::nor_flash::{ErrorType, NorFlash, ReadNorFlash};
use sha2::{Digest, Sha256};

const T_SECTOR_ERASE_MS: f64 = 45.0;
const T_PAGE_PROGRAM_MS: f64 = 0.7;
const T_BYTE_FIRST_MS: f64 = 0.030;
const T_BYTE_NEXT_MS: f64 = 0.0025;
const READ_BYTES_PER_MS: f64 = 37_500.0;
const SHA_BYTES_PER_MS: f64 = 5_000.0;
const ED25519_VERIFY_MS: f64 = 15.0;

#[derive(Debug, Default, Clone, Copy)]
struct Cost {
    erases: u64,
    writes: u64,
    bytes_written: u64,
    bytes_read: u64,
    erase_ms: f64,
    program_ms: f64,
    read_ms: f64,
}

impl Cost {
    fn flash_ms(&self) -> f64 {
        self.erase_ms + self.program_ms + self.read_ms
    }
    fn minus(&self, o: &Cost) -> Cost {
        Cost {
            erases: self.erases - o.erases,
            writes: self.writes - o.writes,
            bytes_written: self.bytes_written - o.bytes_written,
            bytes_read: self.bytes_read - o.bytes_read,
            erase_ms: self.erase_ms - o.erase_ms,
            program_ms: self.program_ms - o.program_ms,
            read_ms: self.read_ms - o.read_ms,
        }
    }
}

/// SimFlash that charges each operation with the timing table.
struct Timed {
    inner: SimFlash<4, 4096>,
    cost: Cost,
}

impl ErrorType for Timed {
    type Error = SimError;
}

impl ReadNorFlash for Timed {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SimError> {
        self.cost.bytes_read += bytes.len() as u64;
        self.cost.read_ms += bytes.len() as f64 / READ_BYTES_PER_MS;
        self.inner.read(offset, bytes)
    }
    fn capacity(&self) -> usize {
        self.inner.capacity()
    }
}

impl NorFlash for Timed {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), SimError> {
        let sectors = u64::from((to - from) / 4096);
        self.cost.erases += sectors;
        self.cost.erase_ms += sectors as f64 * T_SECTOR_ERASE_MS;
        self.inner.erase(from, to)
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimError> {
        self.cost.writes += 1;
        self.cost.bytes_written += bytes.len() as u64;
        // Whole 256-byte pages at tPP; a short tail at byte-program rates.
        let full = bytes.len() / 256;
        let tail = bytes.len() % 256;
        self.cost.program_ms += full as f64 * T_PAGE_PROGRAM_MS;
        if tail > 0 {
            self.cost.program_ms +=
                (T_BYTE_FIRST_MS + (tail - 1) as f64 * T_BYTE_NEXT_MS).min(T_PAGE_PROGRAM_MS);
        }
        self.inner.write(offset, bytes)
    }
}

fn envelope(key: &SigningKey, version: Version, counter: u32, payload: &[u8]) -> Vec<u8> {
    let h = Header {
        model: HardwareModel::new("nl-pico2w-r1").unwrap(),
        version,
        security_counter: counter,
        payload_len: payload.len() as u32,
        payload_sha256: Sha256::digest(payload).into(),
    };
    let sig = SignatureEntry {
        key_id: key_id(&key.verifying_key().to_bytes()),
        signature: key.sign(&h.encode()).to_bytes(),
    };
    let mut out = Prefix::encode(&h, &[sig]).unwrap().to_vec();
    out.extend_from_slice(payload);
    out
}

fn cost(flash: &SharedFlash<Timed>) -> Cost {
    flash.lock(|f| f.borrow().cost)
}

fn row(label: &str, c: &Cost, verify_bytes: u64, verifies: u32) {
    let compute = verify_bytes as f64 / SHA_BYTES_PER_MS + f64::from(verifies) * ED25519_VERIFY_MS;
    println!(
        "{label:<38} {:>7} {:>10} {:>10.1} {:>10.1} {:>9.1} {:>9.1} {:>10.1}",
        c.erases,
        c.bytes_written,
        c.erase_ms / 1000.0,
        c.program_ms / 1000.0,
        c.read_ms / 1000.0,
        compute / 1000.0,
        (c.flash_ms() + compute) / 1000.0
    );
}

fn main() {
    let image_len = 1536 * 1024;
    let key = SigningKey::from_bytes(&[7; 32]);
    let old_payload: Vec<u8> = (0..image_len).map(|i| (i * 31 % 251) as u8).collect();
    let new_payload: Vec<u8> = (0..image_len).map(|i| (i * 17 % 241) as u8).collect();
    let old = envelope(&key, Version::new(1, 0, 0), 1, &old_payload);
    let new = envelope(&key, Version::new(1, 1, 0), 2, &new_payload);

    let mut sim = SimFlash::<4, 4096>::new(REFERENCE.flash_size as usize, Erased::Ones);
    sim.program_raw(REFERENCE.active.offset as usize, &old);
    let flash: SharedFlash<Timed> = Mutex::new(RefCell::new(Timed {
        inner: sim,
        cost: Cost::default(),
    }));
    let config = BootConfig {
        model: HardwareModel::new("nl-pico2w-r1").unwrap(),
        genesis: TrustAnchors::new(1, 1, &[key.verifying_key().to_bytes()]).unwrap(),
        layout: REFERENCE,
    };
    let mut buf = vec![0u8; 4096];
    Bootloader::new(&flash, config)
        .unwrap()
        .boot(&mut buf)
        .unwrap();

    // Staging: the lock keeps working meanwhile.
    let c0 = cost(&flash);
    let mut up = Updater::new(&flash, config).unwrap();
    up.begin().unwrap();
    for (i, chunk) in new.chunks(4096).enumerate() {
        up.write_dfu((i * 4096) as u32, chunk).unwrap();
    }
    up.request_install(&mut buf).unwrap();
    let staging = cost(&flash).minus(&c0);

    // Install boot: verify DFU, record, swap 448 pages, verify ACTIVE.
    let c1 = cost(&flash);
    let r = Bootloader::new(&flash, config)
        .unwrap()
        .boot(&mut buf)
        .unwrap();
    assert!(r.trial);
    let install = cost(&flash).minus(&c1);

    // Confirm after the self-test.
    let c2 = cost(&flash);
    Updater::new(&flash, config).unwrap().confirm().unwrap();
    let confirm = cost(&flash).minus(&c2);

    // The next ordinary boot settles the anti-rollback minimum.
    let c3 = cost(&flash);
    let r = Bootloader::new(&flash, config)
        .unwrap()
        .boot(&mut buf)
        .unwrap();
    assert_eq!(r.min_security_counter, 2);
    let settle = cost(&flash).minus(&c3);

    // A failed trial: install again, never confirm, reset, revert.
    let newer = envelope(&key, Version::new(1, 2, 0), 3, &old_payload);
    let mut up = Updater::new(&flash, config).unwrap();
    up.begin().unwrap();
    for (i, chunk) in newer.chunks(4096).enumerate() {
        up.write_dfu((i * 4096) as u32, chunk).unwrap();
    }
    up.request_install(&mut buf).unwrap();
    Bootloader::new(&flash, config)
        .unwrap()
        .boot(&mut buf)
        .unwrap();
    let c4 = cost(&flash);
    let r = Bootloader::new(&flash, config)
        .unwrap()
        .boot(&mut buf)
        .unwrap();
    assert!(r.reverted);
    let revert = cost(&flash).minus(&c4);

    let env_len = new.len() as u64;
    let pages = REFERENCE.active_pages();
    let image_pages = new.len().div_ceil(4096) as u32;
    println!(
        "install of a {} KiB image ({} B envelope) on the reference layout",
        image_len / 1024,
        env_len
    );
    println!(
        "ACTIVE {} KiB = {pages} pages swapped by embassy-boot; the image fills {image_pages} of them",
        REFERENCE.active.size / 1024
    );
    println!();
    println!(
        "{:<38} {:>7} {:>10} {:>10} {:>10} {:>9} {:>9} {:>10}",
        "phase", "erases", "bytes wr", "erase s", "program s", "read s", "verify s", "total s"
    );
    row("staging into DFU (lock in service)", &staging, env_len, 1);
    row(
        "install boot: verify + swap + verify",
        &install,
        2 * env_len,
        2,
    );
    row("confirm (mark_booted)", &confirm, 0, 0);
    row("next boot: verify + settle minimum", &settle, env_len, 1);
    row("revert boot after a failed trial", &revert, env_len, 1);
    let verify_s =
        (2 * env_len) as f64 / SHA_BYTES_PER_MS / 1000.0 + 2.0 * ED25519_VERIFY_MS / 1000.0;
    let downtime = install.flash_ms() / 1000.0 + verify_s + confirm.flash_ms() / 1000.0;
    println!();
    println!("modelled downtime (install boot + confirm): {downtime:.1} s");
    // The same swap restricted to the pages the image occupies.
    let per_page =
        (install.flash_ms() - env_len as f64 * 2.0 / READ_BYTES_PER_MS) / f64::from(pages);
    let trimmed = per_page * f64::from(image_pages) / 1000.0 + verify_s;
    println!("if only the image's {image_pages} pages were swapped: {trimmed:.1} s");
    println!(
        "with in-place A/B boot (RP2350 flash address translation, no copy): {verify_s:.1} s (verification only)"
    );
    println!(
        "worst case (400 ms erase, 3 ms page program): {:.1} s",
        (install.erases as f64 * 400.0 + install.bytes_written as f64 / 256.0 * 3.0) / 1000.0
            + verify_s
    );
}
