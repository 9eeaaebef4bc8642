//! The lock's update agent (`no_std` + `alloc`): signed check-ins with the
//! director, verification of what it assigns against the image repository,
//! staging into DFU (full envelope or delta patch, resumable), the install
//! decision, and the trial boot's self-test.
//!
//! The agent keeps no hardware of its own: the flash (the bootloader's
//! [`SharedFlash`]), the agent's files (any [`MetadataStore`]; on a lock
//! [`crate::storage::files`] on the AGENT partition), the radio ([`Net`]) and
//! the board ([`Hardware`]) are passed in. Every step persists what it needs
//! before it acts, so a reset at any point resumes:
//!
//! | step | what | persisted |
//! |---|---|---|
//! | [`Agent::after_boot`] | trial image: self-test, then confirm (or leave it for the watchdog to revert); a reverted install is noticed | `last_update` |
//! | [`Agent::check_in`] / [`Agent::check_in_with_usage`] | signed request (with the learned usage summary when due); director root chain, signed time bound to the nonce, director targets; assignment checked against the image repository (TUF) | counter reservation, director metadata, time floor, staging plan, digest of the last usage summary sent |
//! | [`Agent::stage`] | download into DFU in HTTP `Range` chunks (full image), or download the patch into DFU's patch area, check its listed SHA-256, and only then rebuild the image through `bootloader::delta` (falls back to the full image when the patch does not apply); verify | progress (full and patch download), applier checkpoints (patch) |
//! | [`Agent::decide`] | quiet-hours scheduler on the signed install policy | — |
//! | [`Agent::install`] | request the swap; the caller resets | `installing` |
//!
//! **A running lock** does not start from flash at every check-in:
//! [`Agent::into_parts`] gives back what it keeps in RAM ([`Warm`]: the
//! expanded device key, the state and counter, the running image it
//! verified once after the reset, and the director root and targets it
//! verified and stored), and [`Agent::resume`] continues with it, so an idle
//! check-in signs once and checks one signature (the time bound to its
//! nonce). A reset loses it; [`Agent::open`] then reads and verifies
//! everything again. Any step that works the bootloader's records or slots
//! drops the verified running image, so it is verified again when next asked.
//!
//! Trust: the director decides *what and when* (and can say "nothing"), but
//! the lock installs only an image that the image repository — verified with
//! the lock's own TUF client from its own trusted root — lists with the same
//! name, length, hashes and hardware model, and that the bootloader verifies
//! against its anchors. A stolen director key can pause or reorder installs,
//! never install an image the release key did not sign.
//!
//! **Usage summary.** [`Agent::check_in_with_usage`] adds the scheduler's
//! picture of the door ([`UsageSummary`]: the quiet slot of each weekday
//! and a 7×24 heat map, 62 bytes) to the signed report when it is due: the
//! first time, when it changed materially
//! ([`UsageSummary::material_digest`]: a weekday's quiet slot moved to
//! another hour, or its length changed by about an hour), or a day
//! ([`USAGE_REFRESH_SECS`]) after the last one was sent (the heat map
//! refreshes then). Otherwise it is left out, and an idle check-in stays as
//! small as before. The digest and time of the last summary sent are kept
//! in the agent state, so a reset neither resends nor forgets them. A
//! summary the server refuses as malformed (HTTP 400) counts as sent: it is
//! not retried before a day has passed, so it can never keep the lock from
//! checking in (and from its updates) for more than one check-in.
//!
//! [`UsageSummary`]: crate::scheduler::summary::UsageSummary
//! [`UsageSummary::material_digest`]: crate::scheduler::summary::UsageSummary::material_digest
//!
//! The code, by concern: `checkin.rs` (the report, the signed request, the
//! answer verified by `director.rs` and kept), `assign.rs` (an assignment
//! checked against the image repository and planned), `stage.rs` (download,
//! patch, verify), `install.rs` (the install decision and the swap),
//! `boot.rs` (self-test, confirm, revert noticed), `usage.rs` (the usage
//! summary), `state.rs` and `files.rs` (what is persisted, provisioning),
//! `ports.rs` (the radio and the board), `config.rs`, `error.rs`, and
//! `wire.rs` (the wire format, from `nightlatch_proto`).

mod assign;
mod boot;
mod checkin;
mod config;
pub mod director;
mod error;
mod files;
mod install;
mod ports;
mod stage;
mod state;
mod usage;
pub mod wire;

use bootloader::boot::{BootConfig, SharedFlash};
use bootloader::updater::Updater;
use ed25519_dalek::SigningKey;
use embedded_storage::nor_flash::NorFlash;

use crate::tuf::MetadataStore;

pub use boot::{BootOutcome, Running};
pub use checkin::CheckIn;
pub use config::AgentConfig;
pub use director::{Assignment, DirectorTarget};
pub use error::AgentError;
pub use files::{Prefixed, provision};
pub use install::site_config;
pub use ports::{Hardware, Net, NetError, Repo, SelfTestFailure};
pub use stage::StageStatus;
pub use state::{Installing, Phase, Staging, State, TargetRef};

use files::put;

/// Store name of the device key (32-byte Ed25519 seed).
pub const KEY_FILE: &str = "agent/key";
/// Store name of the agent state (JSON).
pub const STATE_FILE: &str = "agent/state";
/// Store name prefix of the image repository's trusted metadata.
pub const IMAGE_PREFIX: &str = "image/";
/// Counter values reserved per flash write (the counter survives resets by
/// jumping to the reservation).
pub const COUNTER_STEP: u64 = 64;
/// Largest check-in response accepted.
pub const RESPONSE_MAX: u64 = 64 * 1024;
/// Bytes per HTTP range request when staging.
pub const CHUNK: u32 = 16 * 1024;
/// An unchanged usage summary is sent again after this long (seconds).
pub const USAGE_REFRESH_SECS: u64 = 86_400;

/// The lock's update agent.
pub struct Agent<'a, F: NorFlash, S: MetadataStore, N: Net, H: Hardware> {
    flash: &'a SharedFlash<F>,
    boot: BootConfig,
    /// Agent files (key, state, trusted metadata).
    pub files: S,
    /// The radio.
    pub net: N,
    /// The board.
    pub hw: H,
    config: AgentConfig,
    key: SigningKey,
    state: State,
    counter: u64,
    hash: Option<stage::FullHash>,
    usage_sent: bool,
    /// The running image, verified once per boot (see [`Self::running`]).
    running: core::cell::RefCell<Option<Running>>,
    director: director::Held,
}

/// What a running lock keeps in RAM between check-ins, so it need not
/// rebuild it from flash each time: its expanded device key, its state and
/// counter, the running image it verified at start-up, and the director
/// metadata it verified and stored ([`director::Held`]). Only
/// [`Agent::into_parts`] makes one, and [`Agent::resume`] takes it back; a
/// reset loses it, so after a reset the agent is opened with
/// [`Agent::open`], which reads and verifies everything again.
pub struct Warm {
    key: SigningKey,
    state: State,
    counter: u64,
    hash: Option<stage::FullHash>,
    running: Option<Running>,
    director: director::Held,
}

impl core::fmt::Debug for Warm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never the device key.
        f.debug_struct("Warm")
            .field("state", &self.state)
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl<F: NorFlash, S: MetadataStore, N: Net, H: Hardware> core::fmt::Debug
    for Agent<'_, F, S, N, H>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never the device key.
        f.debug_struct("Agent")
            .field("device_id", &self.config.device_id)
            .field("state", &self.state)
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl<'a, F: NorFlash, S: MetadataStore, N: Net, H: Hardware> Agent<'a, F, S, N, H> {
    /// Open the agent on a provisioned lock.
    pub fn open(
        flash: &'a SharedFlash<F>,
        boot: BootConfig,
        files: S,
        net: N,
        hw: H,
        config: AgentConfig,
    ) -> Result<Self, AgentError> {
        let seed: [u8; 32] = files
            .load(KEY_FILE)
            .ok_or(AgentError::NotProvisioned)?
            .try_into()
            .map_err(|_| AgentError::BadState)?;
        let state: State = match files.load(STATE_FILE) {
            Some(b) => serde_json::from_slice(&b).map_err(|_| AgentError::BadState)?,
            None => return Err(AgentError::NotProvisioned),
        };
        let warm = Warm {
            key: SigningKey::from_bytes(&seed),
            counter: state.counter_reserved,
            state,
            hash: None,
            running: None,
            director: director::Held::default(),
        };
        Ok(Self::resume(flash, boot, files, net, hw, config, warm))
    }

    /// Continue with what this agent kept in RAM ([`Self::into_parts`]),
    /// on the same lock and since no reset: the files, flash and boot
    /// configuration must be the ones it was opened on.
    pub fn resume(
        flash: &'a SharedFlash<F>,
        boot: BootConfig,
        files: S,
        net: N,
        hw: H,
        config: AgentConfig,
        warm: Warm,
    ) -> Self {
        Self {
            flash,
            boot,
            files,
            net,
            hw,
            config,
            key: warm.key,
            state: warm.state,
            counter: warm.counter,
            hash: warm.hash,
            usage_sent: false,
            running: core::cell::RefCell::new(warm.running),
            director: warm.director,
        }
    }

    /// Take the agent apart: what it keeps in RAM until the next reset,
    /// and the ports it was given.
    pub fn into_parts(self) -> (Warm, S, N, H) {
        let warm = Warm {
            key: self.key,
            state: self.state,
            counter: self.counter,
            hash: self.hash,
            running: self.running.into_inner(),
            director: self.director,
        };
        (warm, self.files, self.net, self.hw)
    }

    /// The persistent state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The settings.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// The device's public key (registered with the server).
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    fn save(&mut self) -> Result<(), AgentError> {
        let bytes = serde_json::to_vec(&self.state).map_err(|_| AgentError::Storage)?;
        put(&mut self.files, STATE_FILE, &bytes)
    }

    /// The bootloader's updater, for a step that may change what runs
    /// after the next reset (or whether it is on trial): the running image
    /// is verified again the next time it is asked for.
    fn updater(&self) -> Result<Updater<'a, F>, AgentError> {
        self.running.borrow_mut().take();
        Updater::new(self.flash, self.boot).map_err(AgentError::Flash)
    }
}
