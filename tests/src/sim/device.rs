//! One simulated lock's hardware on a host: NOR flash (the bootloader's
//! simulator, whole-flash image saved to a file between runs), the
//! bootloader, a clock, a random source and the self-test hook.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bootloader::boot::{BootConfig, BootReport, Bootloader, SharedFlash};
use bootloader::envelope::Prefix;
use bootloader::layout::Layout;
use bootloader::sim::{Erased, SimFlash};
use bootloader::{HardwareModel, TrustAnchors};
use embassy_embedded_hal::adapter::BlockingAsync;
use embassy_embedded_hal::flash::partition::BlockingPartition;
use embassy_sync::blocking_mutex::Mutex;
use lock_app::agent::{Hardware, SelfTestFailure};
use lock_app::storage::files::FileStore;
use rand_core::RngCore;

use super::error::SimError;

/// The simulated flash type (4-byte writes, 4 KiB sectors).
pub type Flash = SimFlash<4, 4096>;

/// The AGENT partition of a [`Device`]'s flash, for the agent's files.
pub type AgentFlash<'a> =
    BlockingAsync<BlockingPartition<'a, embassy_sync::blocking_mutex::raw::NoopRawMutex, Flash>>;

/// A lock's flash and boot configuration.
#[derive(Debug)]
pub struct Device {
    /// The whole flash.
    pub flash: SharedFlash<Flash>,
    /// Model, anchors, layout.
    pub config: BootConfig,
}

impl Device {
    /// A factory-fresh lock: `firmware` (an envelope) in ACTIVE, the rest erased.
    pub fn factory(
        layout: Layout,
        anchors: TrustAnchors,
        firmware: &[u8],
    ) -> Result<Self, SimError> {
        let prefix = Prefix::parse(firmware).map_err(|e| SimError::Lock {
            message: format!("the factory image is not a firmware envelope: {e}"),
        })?;
        if firmware.len() as u64 > u64::from(layout.active.size) {
            return Err(SimError::Lock {
                message: format!(
                    "the factory image ({} bytes) does not fit ACTIVE ({} bytes)",
                    firmware.len(),
                    layout.active.size
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
        })
    }

    /// A lock whose flash was saved with [`Self::save`].
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
        Ok(Self {
            flash: Mutex::new(RefCell::new(Flash::from_contents(contents, Erased::Ones))),
            config: BootConfig {
                model,
                genesis: anchors,
                layout,
            },
        })
    }

    /// Save the whole flash to `path` (atomically).
    pub fn save(&self, path: &Path) -> Result<(), SimError> {
        let bytes = self.flash.lock(|f| f.borrow().contents().to_vec());
        let dir = path.parent().unwrap_or(Path::new("."));
        let io = |source| SimError::Io {
            what: "cannot save the lock's flash",
            path: path.to_owned(),
            source,
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        std::io::Write::write_all(&mut tmp, &bytes).map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Reset: run the bootloader (verify, swap or revert, verify ACTIVE).
    pub fn boot(&self) -> Result<BootReport, SimError> {
        self.flash.lock(|f| f.borrow_mut().reboot());
        let mut buf = vec![0u8; 4096];
        Bootloader::new(&self.flash, self.config)
            .and_then(|mut b| b.boot(&mut buf))
            .map_err(|e| SimError::Lock {
                message: format!("the bootloader stopped: {e}"),
            })
    }

    /// The agent's files on the AGENT partition of this flash.
    pub fn files(&self) -> Result<FileStore<AgentFlash<'_>>, SimError> {
        let p = self.config.layout.agent;
        FileStore::open(BlockingAsync::new(BlockingPartition::new(
            &self.flash,
            p.offset,
            p.size,
        )))
        .map_err(|e| SimError::Lock {
            message: format!("the AGENT partition cannot hold files: {e:?}"),
        })
    }

    /// Flash operation counters.
    pub fn stats(&self) -> bootloader::sim::Stats {
        self.flash.lock(|f| f.borrow().stats())
    }
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
