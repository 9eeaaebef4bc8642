//! One simulated lock's hardware on a host: NOR flash (the bootloader's
//! simulator, whole-flash image saved to a file between runs), OTP (the
//! bootloader's anti-rollback and anchor-set floors, saved beside the
//! flash), the bootloader, a clock, a random source and the self-test hook.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bootloader::boot::{BootConfig, BootReport, Bootloader, SharedFlash};
use bootloader::envelope::Prefix;
use bootloader::layout::{BootMode, Layout, REFERENCE, REFERENCE_AB, SMALL, SMALL_AB};
use bootloader::otp::{Otp, OtpFloor, ROW_MASK};
use bootloader::sim::{Erased, SectorPool, SimFlash, SimOtp};
use bootloader::{HardwareModel, OtpCounters, TrustAnchors};
use clap::ValueEnum;
use embassy_embedded_hal::adapter::BlockingAsync;
use embassy_embedded_hal::flash::partition::BlockingPartition;
use embassy_sync::blocking_mutex::Mutex;
use lock_app::agent::{Hardware, SelfTestFailure};
use lock_app::storage::files::{FileCache, FileStore};
use rand_core::RngCore;
use serde::{Deserialize, Serialize};

use super::error::SimError;

/// The simulated flash type (4-byte writes, 4 KiB sectors).
pub type Flash = SimFlash<4, 4096>;

/// The AGENT partition of a [`Device`]'s flash, for the agent's files.
pub type AgentFlash<'a> =
    BlockingAsync<BlockingPartition<'a, embassy_sync::blocking_mutex::raw::NoopRawMutex, Flash>>;

/// Rows of a lock's OTP (the RP2350's 4,096; only programmed rows take
/// memory, see [`SimOtp`]).
pub const OTP_ROWS: usize = 4096;

/// How an install reaches the running image (`--boot`): the command-line
/// and file name of [`BootMode`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Boot {
    /// embassy-boot copies the staged image into ACTIVE page by page
    /// (about 900 sector erases per install on the reference board).
    #[default]
    Swap,
    /// Two equal slots, execute in place: the bootloader verifies and maps
    /// the new slot; nothing is copied.
    Ab,
}

impl Boot {
    /// The bootloader's mode.
    pub const fn mode(self) -> BootMode {
        match self {
            Self::Swap => BootMode::Swap,
            Self::Ab => BootMode::Ab,
        }
    }

    /// The mode of `layout`.
    pub const fn of(layout: &Layout) -> Self {
        match layout.mode {
            BootMode::Swap => Self::Swap,
            BootMode::Ab => Self::Ab,
        }
    }

    /// The reference board's layout in this mode ([`REFERENCE`] or
    /// [`REFERENCE_AB`]: 4 MiB, the same largest envelope).
    pub const fn reference(self) -> Layout {
        match self {
            Self::Swap => REFERENCE,
            Self::Ab => REFERENCE_AB,
        }
    }

    /// The small test layout in this mode ([`SMALL`] or [`SMALL_AB`]).
    pub const fn small(self) -> Layout {
        match self {
            Self::Swap => SMALL,
            Self::Ab => SMALL_AB,
        }
    }

    /// `swap` or `ab`, as `--boot` takes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Swap => "swap",
            Self::Ab => "ab",
        }
    }
}

impl std::fmt::Display for Boot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The OTP file beside a saved flash image: its programmed rows.
#[derive(Debug, Serialize, Deserialize)]
struct OtpFile {
    /// Rows in the part.
    rows: usize,
    /// Every row with a bit set: `[row, bits]`, bits as programmed.
    programmed: Vec<(u16, u32)>,
}

/// A lock's flash, OTP and boot configuration.
#[derive(Debug)]
pub struct Device {
    /// The whole flash.
    pub flash: SharedFlash<Flash>,
    /// Model, anchors, layout (its `mode` is the boot mode).
    pub config: BootConfig,
    /// The OTP the bootloader keeps its floors in
    /// ([`OtpCounters::REFERENCE`]), used on every [`Device::boot`].
    pub otp: RefCell<SimOtp>,
}

impl Device {
    /// A factory-fresh lock: `firmware` (an envelope) in ACTIVE (slot A),
    /// the rest erased, a blank OTP.
    pub fn factory(
        layout: Layout,
        anchors: TrustAnchors,
        firmware: &[u8],
    ) -> Result<Self, SimError> {
        let prefix = Prefix::parse(firmware).map_err(|e| SimError::Lock {
            message: format!("the factory image is not a firmware envelope: {e}"),
        })?;
        if firmware.len() as u64 > u64::from(layout.max_envelope()) {
            return Err(SimError::Lock {
                message: format!(
                    "the factory image ({} bytes) is larger than the layout's largest envelope ({} bytes)",
                    firmware.len(),
                    layout.max_envelope()
                ),
            });
        }
        let mut sim = Flash::new(layout.flash_size as usize, Erased::Ones);
        sim.program_raw(layout.active.offset as usize, firmware);
        Ok(Self {
            flash: Mutex::new(RefCell::new(sim)),
            config: BootConfig {
                model: prefix.header.model,
                genesis: anchors,
                layout,
            },
            otp: RefCell::new(SimOtp::new(OTP_ROWS)),
        })
    }

    /// The file beside a flash image `flash` that holds the lock's OTP
    /// (`flash.bin` → `flash.otp.json`).
    pub fn otp_path(flash: &Path) -> PathBuf {
        flash.with_extension("otp.json")
    }

    /// A lock whose flash was saved with [`Self::save`], laid out as
    /// `layout` (the caller keeps the mode it was made with: the flash
    /// image does not say). Its OTP is read from [`Self::otp_path`]; without
    /// that file the OTP is blank (a lock saved before it had one).
    pub fn load(
        path: &Path,
        layout: Layout,
        model: HardwareModel,
        anchors: TrustAnchors,
    ) -> Result<Self, SimError> {
        let contents = std::fs::read(path).map_err(|source| SimError::Io {
            what: "cannot read the lock's flash",
            path: path.to_owned(),
            source,
        })?;
        if contents.len() != layout.flash_size as usize {
            return Err(SimError::Lock {
                message: format!("{} is not a flash image of this layout", path.display()),
            });
        }
        let otp_path = Self::otp_path(path);
        let otp = if otp_path.exists() {
            load_otp(&otp_path)?
        } else {
            SimOtp::new(OTP_ROWS)
        };
        Ok(Self {
            flash: Mutex::new(RefCell::new(Flash::from_contents(contents, Erased::Ones))),
            config: BootConfig {
                model,
                genesis: anchors,
                layout,
            },
            otp: RefCell::new(otp),
        })
    }

    /// Save the OTP to [`Self::otp_path`], then the whole flash to `path`,
    /// each atomically. The OTP goes first, as the bootloader raises the
    /// OTP before the flash record: an interrupted save leaves the OTP
    /// ahead of the flash, a state the real lock can be in too, never the
    /// reverse.
    pub fn save(&self, path: &Path) -> Result<(), SimError> {
        let otp_path = Self::otp_path(path);
        let file = OtpFile {
            rows: OTP_ROWS,
            programmed: self.otp_rows(),
        };
        let json = serde_json::to_vec_pretty(&file).unwrap_or_default();
        write_atomically(&otp_path, &json, "cannot save the lock's OTP")?;
        let bytes = self.flash.lock(|f| f.borrow().contents().to_vec());
        write_atomically(path, &bytes, "cannot save the lock's flash")
    }

    /// Every OTP row with a bit set, `(row, bits)` in row order.
    pub fn otp_rows(&self) -> Vec<(u16, u32)> {
        let otp = self.otp.borrow();
        (0..OTP_ROWS as u16)
            .map(|r| (r, otp.row(r)))
            .filter(|&(_, bits)| bits != 0)
            .collect()
    }

    /// The floors the bootloader keeps in OTP (minimum security counter,
    /// anchor set version).
    pub fn otp_floor(&self) -> Result<OtpFloor, SimError> {
        OtpCounters::REFERENCE
            .read(&mut *self.otp.borrow_mut())
            .map_err(|e| SimError::Lock {
                message: format!("OTP: {e}"),
            })
    }

    /// The boot mode (from the layout).
    pub fn boot_mode(&self) -> Boot {
        Boot::of(&self.config.layout)
    }

    /// Reset: run the bootloader with its OTP (swap mode: verify, swap or
    /// revert, verify ACTIVE; A/B: verify and map a slot).
    pub fn boot(&self) -> Result<BootReport, SimError> {
        self.flash.lock(|f| f.borrow_mut().reboot());
        let mut otp = self.otp.borrow_mut();
        let mut buf = vec![0u8; 4096];
        Bootloader::new(&self.flash, self.config)
            .map(|b| b.with_otp(&mut *otp, OtpCounters::REFERENCE))
            .and_then(|mut b| b.boot(&mut buf))
            .map_err(|e| SimError::Lock {
                message: format!("the bootloader stopped: {e}"),
            })
    }

    /// The mutating flash operations (points where power can be cut) the
    /// next [`Self::boot`] will do, found by booting a copy of this lock's
    /// flash and OTP. The lock itself is untouched.
    pub fn next_boot_ops(&self) -> u64 {
        let copy = Self {
            flash: Mutex::new(RefCell::new(self.flash.lock(|f| f.borrow().clone()))),
            config: self.config,
            otp: RefCell::new(self.otp.borrow().clone()),
        };
        let before = copy.stats().mutating_ops();
        let _ = copy.boot();
        copy.stats().mutating_ops() - before
    }

    /// Cancel a power cut armed on the flash that has not fired.
    pub fn disarm(&self) {
        self.flash.lock(|f| f.borrow_mut().disarm());
    }

    /// Power was cut (until the next [`Self::boot`]).
    pub fn is_dead(&self) -> bool {
        self.flash.lock(|f| f.borrow().is_dead())
    }

    /// The agent's files on the AGENT partition of this flash.
    pub fn files(&self) -> Result<FileStore<AgentFlash<'_>>, SimError> {
        self.files_cached(None)
    }

    /// The agent's files, with the RAM cache a store on this partition
    /// left since the lock's last reset ([`FileStore::into_parts`]).
    pub fn files_cached(
        &self,
        cache: Option<FileCache>,
    ) -> Result<FileStore<AgentFlash<'_>>, SimError> {
        let p = self.config.layout.agent;
        let part = BlockingAsync::new(BlockingPartition::new(&self.flash, p.offset, p.size));
        match cache {
            Some(c) => FileStore::open_cached(part, c),
            None => FileStore::open(part),
        }
        .map_err(|e| SimError::Lock {
            message: format!("the AGENT partition cannot hold files: {e:?}"),
        })
    }

    /// Hold every sector written since the last call once in `pool`,
    /// shared with every other flash that holds the same bytes.
    pub fn share(&self, pool: &SectorPool) {
        self.flash.lock(|f| f.borrow_mut().share(pool));
    }

    /// Flash operation counters.
    pub fn stats(&self) -> bootloader::sim::Stats {
        self.flash.lock(|f| f.borrow().stats())
    }
}

fn write_atomically(path: &Path, bytes: &[u8], what: &'static str) -> Result<(), SimError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |source| SimError::Io {
        what,
        path: path.to_owned(),
        source,
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

fn load_otp(path: &Path) -> Result<SimOtp, SimError> {
    let bytes = std::fs::read(path).map_err(|source| SimError::Io {
        what: "cannot read the lock's OTP",
        path: path.to_owned(),
        source,
    })?;
    let bad = |why: String| SimError::Lock {
        message: format!("{} is not a lock's OTP: {why}", path.display()),
    };
    let file: OtpFile = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if file.rows != OTP_ROWS {
        return Err(bad(format!("{} rows, expected {OTP_ROWS}", file.rows)));
    }
    let mut otp = SimOtp::new(OTP_ROWS);
    for (row, bits) in file.programmed {
        if usize::from(row) >= OTP_ROWS || bits & !ROW_MASK != 0 {
            return Err(bad(format!("row {row} bits {bits:#x}")));
        }
        otp.program_row(row, bits)
            .map_err(|e| bad(format!("row {row}: {e}")))?;
    }
    Ok(otp)
}

/// A clock shared between a lock and its driver: real time plus an offset,
/// or virtual time the driver advances.
#[derive(Debug, Clone)]
pub enum Clock {
    /// System time plus `offset` seconds (set by the director's signed time).
    Real(Arc<std::sync::atomic::AtomicI64>),
    /// Virtual seconds.
    Virtual(Arc<AtomicU64>),
}

impl Clock {
    /// Real time.
    pub fn real() -> Self {
        Self::Real(Arc::new(std::sync::atomic::AtomicI64::new(0)))
    }

    /// Virtual time starting at `t`.
    pub fn virtual_at(t: u64) -> Self {
        Self::Virtual(Arc::new(AtomicU64::new(t)))
    }

    /// Now, Unix seconds.
    pub fn now(&self) -> u64 {
        match self {
            Self::Real(off) => {
                let sys = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                sys.saturating_add_signed(off.load(Ordering::Relaxed))
            }
            Self::Virtual(t) => t.load(Ordering::Relaxed),
        }
    }

    /// Set now.
    pub fn set(&self, t: u64) {
        match self {
            Self::Real(off) => {
                let sys = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                off.store(t as i64 - sys as i64, Ordering::Relaxed);
            }
            Self::Virtual(v) => v.store(t, Ordering::Relaxed),
        }
    }
}

/// The board: clock, randomness, battery, self-test verdict.
#[derive(Debug, Clone)]
pub struct SimHardware {
    /// The lock's RTC.
    pub clock: Clock,
    /// Battery, percent.
    pub battery: u8,
    /// Versions whose self-test fails, and how.
    pub failing: Vec<(String, SelfTestFailure)>,
    /// The version running (set by the driver after each boot).
    pub running: String,
    /// Self-tests run.
    pub self_tests: u32,
}

impl SimHardware {
    /// A healthy board on `clock`.
    pub fn new(clock: Clock) -> Self {
        Self {
            clock,
            battery: 90,
            failing: Vec::new(),
            running: String::new(),
            self_tests: 0,
        }
    }
}

impl Hardware for SimHardware {
    fn now(&self) -> u64 {
        self.clock.now()
    }
    fn set_time(&mut self, t: u64) {
        self.clock.set(t);
    }
    fn random(&mut self, buf: &mut [u8]) {
        rand_core::OsRng.fill_bytes(buf);
    }
    fn battery_percent(&self) -> u8 {
        self.battery
    }
    fn self_test(&mut self) -> Result<(), SelfTestFailure> {
        self.self_tests += 1;
        match self.failing.iter().find(|(v, _)| *v == self.running) {
            Some((_, why)) => Err(*why),
            None => Ok(()),
        }
    }
}
