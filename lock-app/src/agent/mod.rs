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

pub mod director;
mod stage;
pub mod wire;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use bootloader::boot::{BootConfig, SharedFlash};
use bootloader::updater::{UpdateError, Updater};
use ed25519_dalek::SigningKey;
use embassy_boot::State as FwState;
use embedded_storage::nor_flash::NorFlash;
use nightlatch_proto::custom::NightlatchCustom;
use serde::{Deserialize, Serialize};

use crate::scheduler::summary::UsageSummary;
use crate::scheduler::{self, InstallCost, Situation, UsageProfile, Window};
use crate::tuf::{self, FetchError, Limits, MetadataStore, StoreError, TufError};

pub use director::{Assignment, DirectorTarget};
pub use stage::StageStatus;
use wire::{BootState, CheckinRequest, CheckinResponse, Firmware, Outcome, Report, UpdateResult};

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

/// Which repository a metadata file comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repo {
    /// The image repository (`/repo/metadata/`).
    Image,
    /// The director (`/director/metadata/`).
    Director,
}

/// Why a request failed at the transport or HTTP level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetError {
    /// No connection, timeout, reset.
    Unreachable,
    /// The server answered with this status (not 200).
    Status(u16),
    /// The answer was larger than allowed.
    TooLarge,
}

/// The radio: HTTP to the server.
pub trait Net {
    /// `POST /v1/devices/{id}/check-in` with the signature header; the body
    /// of a 200 answer (at most `max_len` bytes).
    fn check_in(
        &mut self,
        device_id: &str,
        body: &[u8],
        signature: &str,
        max_len: u64,
    ) -> Result<Vec<u8>, NetError>;
    /// A metadata file of `repo` (at most `max_len` bytes).
    fn fetch_metadata(
        &mut self,
        repo: Repo,
        file: &str,
        max_len: u64,
    ) -> Result<Vec<u8>, FetchError>;
    /// Bytes `[offset, offset + len)` of a target file (`path` under
    /// `/repo/targets/`); fewer only at the end of the file.
    fn fetch_target(&mut self, path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FetchError>;
}

impl<T: Net + ?Sized> Net for &mut T {
    fn check_in(
        &mut self,
        device_id: &str,
        body: &[u8],
        signature: &str,
        max_len: u64,
    ) -> Result<Vec<u8>, NetError> {
        (**self).check_in(device_id, body, signature, max_len)
    }
    fn fetch_metadata(
        &mut self,
        repo: Repo,
        file: &str,
        max_len: u64,
    ) -> Result<Vec<u8>, FetchError> {
        (**self).fetch_metadata(repo, file, max_len)
    }
    fn fetch_target(&mut self, path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FetchError> {
        (**self).fetch_target(path, offset, len)
    }
}

/// Why the self-test failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfTestFailure {
    /// The bolt motor did not move or its sensor disagrees.
    Motor,
    /// Credentials or audit storage did not open.
    Storage,
    /// The radio did not come up.
    Radio,
}

impl SelfTestFailure {
    /// Reason code sent to the server.
    pub fn code(self) -> &'static str {
        match self {
            Self::Motor => "self_test_motor",
            Self::Storage => "self_test_storage",
            Self::Radio => "self_test_radio",
        }
    }
}

/// The board around the agent.
pub trait Hardware {
    /// The real-time clock (Unix seconds; may drift).
    fn now(&self) -> u64;
    /// Set the real-time clock (from the director's signed time).
    fn set_time(&mut self, t: u64);
    /// Fill `buf` with random bytes (nonces).
    fn random(&mut self, buf: &mut [u8]);
    /// Battery charge, percent.
    fn battery_percent(&self) -> u8;
    /// Self-test of a freshly installed image: motor, storage, radio.
    fn self_test(&mut self) -> Result<(), SelfTestFailure>;
}

/// Everything the agent can fail with. Small and `Copy`: each cause is its
/// own variant, so the audit log and tests can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentError {
    /// Key, roots or state missing from the agent files: not provisioned.
    NotProvisioned,
    /// Stored agent files are unreadable.
    BadState,
    /// The agent files could not be written.
    Storage,
    /// No answer from the server.
    Network,
    /// The server refused the check-in with this HTTP status.
    Refused(u16),
    /// The server says the counter was already used (409).
    CounterReplayed,
    /// Not a check-in answer (JSON, hex, sizes).
    MalformedResponse,
    /// The signed time is not bound to this check-in's nonce and counter:
    /// a replayed (or misdirected) director answer.
    ReplayedResponse,
    /// The signed time is not signed by the director's timestamp key.
    TimeSignature,
    /// The director's metadata failed a TUF check (signature, rollback,
    /// expiry, root chain).
    Director(TufError),
    /// The director metadata is not the one the signed time names.
    DirectorTargetsMismatch,
    /// The director metadata names another lock or hardware model.
    NotForThisLock,
    /// The director metadata's targets are not an assignment.
    MalformedAssignment,
    /// The image repository failed a TUF check.
    Image(TufError),
    /// The image repository does not list the assigned target.
    NotInImageRepository,
    /// The director and the image repository disagree on the target
    /// (length, hashes).
    DirectorImageDisagreement,
    /// The target is for another hardware model.
    WrongHardwareModel,
    /// The target would lower the security counter.
    SecurityCounterTooLow,
    /// The downloaded or rebuilt image failed its checks (the reason code
    /// is in the report).
    StagedImageRefused,
    /// Flash or bootloader refused an operation.
    Flash(UpdateError),
    /// Nothing staged to install.
    NothingStaged,
}

impl core::fmt::Display for AgentError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotProvisioned => f.write_str("agent not provisioned (key, roots)"),
            Self::BadState => f.write_str("agent files unreadable"),
            Self::Storage => f.write_str("agent files could not be written"),
            Self::Network => f.write_str("server unreachable"),
            Self::Refused(s) => write!(f, "server refused the check-in (HTTP {s})"),
            Self::CounterReplayed => f.write_str("server says the counter was used (409)"),
            Self::MalformedResponse => f.write_str("malformed check-in answer"),
            Self::ReplayedResponse => {
                f.write_str("director answer not bound to this check-in (replayed)")
            }
            Self::TimeSignature => f.write_str("signed time not signed by the director"),
            Self::Director(e) => write!(f, "director metadata refused: {e}"),
            Self::DirectorTargetsMismatch => {
                f.write_str("director metadata is not the one the signed time names")
            }
            Self::NotForThisLock => f.write_str("director metadata is for another lock"),
            Self::MalformedAssignment => f.write_str("director metadata is not an assignment"),
            Self::Image(e) => write!(f, "image repository refused: {e}"),
            Self::NotInImageRepository => {
                f.write_str("the image repository does not list the assigned image")
            }
            Self::DirectorImageDisagreement => {
                f.write_str("director and image repository disagree on the image")
            }
            Self::WrongHardwareModel => f.write_str("image is for another hardware model"),
            Self::SecurityCounterTooLow => f.write_str("image would lower the security counter"),
            Self::StagedImageRefused => f.write_str("staged image failed verification"),
            Self::Flash(e) => write!(f, "flash: {e}"),
            Self::NothingStaged => f.write_str("nothing staged"),
        }
    }
}

impl core::error::Error for AgentError {}

/// A target reference kept in the agent state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRef {
    /// Name in the repositories.
    pub name: String,
    /// Length.
    pub length: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// Download path (consistent snapshot name).
    pub path: String,
    /// Version (images: the firmware version; patches: the target's).
    pub version: String,
    /// Security counter (images).
    #[serde(default)]
    pub security_counter: u32,
}

/// How the image is being staged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Through the patch.
    Patch,
    /// The full envelope.
    Full,
    /// Verified in DFU.
    Staged,
}

/// An update in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staging {
    /// The image to end up with.
    pub image: TargetRef,
    /// The patch, if one applies to the running version.
    #[serde(default)]
    pub patch: Option<TargetRef>,
    /// Current phase.
    pub phase: Phase,
    /// Full image: bytes written to DFU (a multiple of [`CHUNK`]).
    #[serde(default)]
    pub offset: u64,
    /// Patch: bytes of the patch downloaded into DFU's patch area (a
    /// multiple of [`CHUNK`] until complete). The patch reaches the delta
    /// applier only once all of it is there and hashes to its listed
    /// SHA-256 (see `agent/stage.rs`).
    #[serde(default)]
    pub patch_offset: u64,
    /// Patch: the applier was started on the downloaded and verified patch
    /// and has written checkpoints (resume, not restart).
    #[serde(default)]
    pub patch_started: bool,
    /// Install policy, as signed by the director.
    #[serde(default)]
    pub policy: wire::InstallPolicy,
    /// Why the patch was abandoned, if it was.
    #[serde(default)]
    pub patch_fallback: Option<String>,
}

/// An install requested and not yet confirmed or reverted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installing {
    /// Target name.
    pub target: String,
    /// Version.
    pub version: String,
}

/// The agent's persistent state (`agent/state`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Check-in counters up to this value may have been used.
    #[serde(default)]
    pub counter_reserved: u64,
    /// Newest verified director time (the TUF expiry floor).
    #[serde(default)]
    pub time_floor: u64,
    /// Update being staged or staged.
    #[serde(default)]
    pub staging: Option<Staging>,
    /// Update swapped in, awaiting its trial verdict.
    #[serde(default)]
    pub installing: Option<Installing>,
    /// Most recent update attempt, reported at every check-in.
    #[serde(default)]
    pub last_update: Option<UpdateResult>,
    /// Targets that failed on this lock (never tried again).
    #[serde(default)]
    pub failed: Vec<String>,
    /// [`UsageSummary::material_digest`] (base64url) of the last usage
    /// summary sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_digest: Option<String>,
    /// When it was sent (the lock's clock, never below the time floor).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub usage_sent_at: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Agent settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// The lock's id.
    pub device_id: String,
    /// IANA zone (or POSIX TZ string) the lock reports, if configured.
    pub time_zone: Option<String>,
    /// TUF size limits for the image repository.
    pub limits: Limits,
    /// Door closed and untouched this long before an install.
    pub idle_secs: u64,
    /// How far ahead the scheduler looks.
    pub horizon_hours: u32,
    /// The install's modelled cost.
    pub install_cost: InstallCost,
    /// Energy reserve after an install.
    pub battery: scheduler::BatteryPolicy,
    /// Range request size.
    pub chunk: u32,
}

impl AgentConfig {
    /// Defaults for a lock named `device_id`: 15 min idle, 36 h horizon,
    /// 60 s modelled downtime (see `bootloader/benches/install_downtime.rs`).
    pub fn new(device_id: &str) -> Self {
        Self {
            device_id: device_id.to_string(),
            time_zone: None,
            limits: Limits::default(),
            idle_secs: 15 * 60,
            horizon_hours: 36,
            install_cost: InstallCost {
                downtime_secs: 60,
                energy_mwh: 150,
            },
            battery: scheduler::BatteryPolicy {
                reserve_ops: 200,
                energy_per_op_mwh: 2,
            },
            chunk: CHUNK,
        }
    }
}

/// What a check-in led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckIn {
    /// Nothing to do.
    UpToDate,
    /// A verified assignment is being (or has been) staged.
    Assigned {
        /// Image target name.
        target: String,
        /// A patch will be used.
        patch: bool,
    },
    /// The director withdrew an assignment that was not installed yet
    /// (rollout paused or aborted): staging dropped.
    Withdrawn,
}

/// What [`Agent::after_boot`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootOutcome {
    /// Normal boot.
    Normal,
    /// A trial image passed its self-test and is confirmed.
    Confirmed {
        /// Version now running.
        version: String,
    },
    /// A trial image failed its self-test: reset so the bootloader reverts.
    SelfTestFailed(SelfTestFailure),
    /// The bootloader reverted an install.
    Reverted {
        /// Target that failed.
        target: String,
    },
}

/// Firmware version and security counter of the running image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// Security counter.
    pub security_counter: u32,
    /// Hardware model.
    pub hardware_model: String,
    /// On trial.
    pub trial: bool,
}

/// Store `bytes` under `name` with a fresh store wrapper.
fn put<S: MetadataStore>(store: &mut S, name: &str, bytes: &[u8]) -> Result<(), AgentError> {
    store.store(name, bytes).map_err(|_| AgentError::Storage)
}

/// Factory provisioning: the device key, the image and director roots the
/// lock trusts from manufacture.
pub fn provision<S: MetadataStore>(
    store: &mut S,
    device_key_seed: &[u8; 32],
    image_root: &[u8],
    director_root: &[u8],
    now: u64,
) -> Result<(), AgentError> {
    tuf::TrustedSet::new(image_root, now).map_err(AgentError::Image)?;
    tuf::TrustedSet::new(director_root, now).map_err(AgentError::Director)?;
    put(store, KEY_FILE, device_key_seed)?;
    let mut image = Prefixed {
        inner: &mut *store,
        prefix: IMAGE_PREFIX,
    };
    tuf::bootstrap(&mut image, image_root, now).map_err(AgentError::Image)?;
    put(store, director::ROOT_FILE, director_root)?;
    store
        .remove(director::TARGETS_FILE)
        .map_err(|_| AgentError::Storage)?;
    let state = State {
        time_floor: now,
        ..State::default()
    };
    let bytes = serde_json::to_vec(&state).map_err(|_| AgentError::Storage)?;
    put(store, STATE_FILE, &bytes)
}

/// A [`MetadataStore`] view with every name under `prefix`.
pub struct Prefixed<'s, S: MetadataStore> {
    /// The store.
    pub inner: &'s mut S,
    /// Prefix, e.g. `image/`.
    pub prefix: &'static str,
}

impl<S: MetadataStore> core::fmt::Debug for Prefixed<'_, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Prefixed")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl<S: MetadataStore> MetadataStore for Prefixed<'_, S> {
    fn load(&self, role: &str) -> Option<Vec<u8>> {
        self.inner.load(&format!("{}{role}", self.prefix))
    }
    fn store(&mut self, role: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.inner.store(&format!("{}{role}", self.prefix), bytes)
    }
    fn remove(&mut self, role: &str) -> Result<(), StoreError> {
        self.inner.remove(&format!("{}{role}", self.prefix))
    }
}

/// The image repository's metadata over [`Net`], as a TUF transport.
struct RepoTransport<'n, N: Net>(&'n mut N, Repo);

impl<N: Net> tuf::Transport for RepoTransport<'_, N> {
    fn fetch(&mut self, path: &str, max_len: u64) -> Result<Vec<u8>, FetchError> {
        self.0.fetch_metadata(self.1, path, max_len)
    }
}

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
        let counter = state.counter_reserved;
        Ok(Self {
            flash,
            boot,
            files,
            net,
            hw,
            config,
            key: SigningKey::from_bytes(&seed),
            state,
            counter,
            hash: None,
            usage_sent: false,
        })
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

    fn updater(&self) -> Result<Updater<'a, F>, AgentError> {
        Updater::new(self.flash, self.boot).map_err(AgentError::Flash)
    }

    /// The running image (verified in ACTIVE).
    pub fn running(&self) -> Result<Running, AgentError> {
        let up = self.updater()?;
        let mut buf = vec![0u8; 1024];
        let img = up.verify_active(&mut buf).map_err(AgentError::Flash)?;
        let h = img.header();
        Ok(Running {
            version: h.version.to_string(),
            security_counter: h.security_counter,
            hardware_model: h.model.as_str().to_string(),
            trial: up.firmware_state().map_err(AgentError::Flash)? == FwState::Swap,
        })
    }

    /// Run after every boot: a trial image self-tests and confirms; a
    /// revert of the last install is noticed and remembered.
    pub fn after_boot(&mut self) -> Result<BootOutcome, AgentError> {
        let running = self.running()?;
        let target = self
            .state
            .installing
            .as_ref()
            .map(|i| i.target.clone())
            .or_else(|| self.state.staging.as_ref().map(|s| s.image.name.clone()))
            .unwrap_or_default();
        if running.trial {
            return match self.hw.self_test() {
                Ok(()) => {
                    self.updater()?.confirm().map_err(AgentError::Flash)?;
                    self.state.installing = None;
                    self.state.staging = None;
                    self.hash = None;
                    self.state.last_update = Some(UpdateResult {
                        target,
                        outcome: Outcome::Confirmed,
                        reason: None,
                    });
                    self.save()?;
                    Ok(BootOutcome::Confirmed {
                        version: running.version,
                    })
                }
                Err(why) => {
                    self.state.last_update = Some(UpdateResult {
                        target,
                        outcome: Outcome::RolledBack,
                        reason: Some(why.code().to_string()),
                    });
                    self.save()?;
                    Ok(BootOutcome::SelfTestFailed(why))
                }
            };
        }
        if let Some(inst) = self.state.installing.clone()
            && inst.version != running.version
        {
            // Swapped in, never confirmed, swapped back.
            let reason = match &self.state.last_update {
                Some(u) if u.target == inst.target && u.outcome == Outcome::RolledBack => {
                    u.reason.clone()
                }
                _ => Some("trial_not_confirmed".to_string()),
            };
            self.state.last_update = Some(UpdateResult {
                target: inst.target.clone(),
                outcome: Outcome::RolledBack,
                reason,
            });
            self.remember_failed(&inst.target);
            self.state.installing = None;
            self.state.staging = None;
            self.hash = None;
            self.save()?;
            return Ok(BootOutcome::Reverted {
                target: inst.target,
            });
        }
        Ok(BootOutcome::Normal)
    }

    fn remember_failed(&mut self, target: &str) {
        if !self.state.failed.iter().any(|t| t == target) {
            if self.state.failed.len() >= 8 {
                self.state.failed.remove(0);
            }
            self.state.failed.push(target.to_string());
        }
    }

    fn report(&self) -> Result<Report, AgentError> {
        let running = self.running()?;
        let boot_state = if running.trial {
            BootState::Trial
        } else if self
            .state
            .last_update
            .as_ref()
            .is_some_and(|u| u.outcome == Outcome::RolledBack)
        {
            BootState::Reverted
        } else {
            BootState::Confirmed
        };
        Ok(Report {
            hardware_model: running.hardware_model,
            firmware: Firmware {
                version: running.version,
                security_counter: running.security_counter,
            },
            boot_state,
            last_update: self.state.last_update.clone(),
            battery_percent: Some(self.hw.battery_percent()),
            time_zone: self.config.time_zone.clone(),
            usage: None,
        })
    }

    /// Now for the usage summary: the lock's clock, never below the time
    /// floor.
    fn usage_now(&self) -> u64 {
        self.hw.now().max(self.state.time_floor)
    }

    /// The summary of `profile` the lock would send now: in the zone the
    /// scheduler uses, quiet slots over the whole day (the door's own
    /// picture; the server knows each site's window) for the modelled
    /// install downtime.
    pub fn usage_summary(&self, profile: &UsageProfile) -> UsageSummary {
        UsageSummary::from_profile(
            profile,
            &self.time_zone(),
            Window::ALL_DAY,
            self.config.install_cost.downtime_secs,
            self.usage_now(),
        )
    }

    /// Whether `summary` is due (see the module documentation).
    pub fn usage_due(&self, summary: &UsageSummary) -> bool {
        let Some(sent) = &self.state.usage_digest else {
            return true;
        };
        let now = self.usage_now();
        let at = self.state.usage_sent_at;
        *sent != wire::b64::encode(summary.material_digest())
            || now >= at.saturating_add(USAGE_REFRESH_SECS)
            // The clock was far ahead when it was sent.
            || now.saturating_add(USAGE_REFRESH_SECS) < at
    }

    /// Whether the last check-in carried a usage summary.
    pub fn sent_usage(&self) -> bool {
        self.usage_sent
    }

    /// One signed check-in carrying the usage summary of `profile` if it is
    /// due (see the module documentation); otherwise as [`Self::check_in`].
    pub fn check_in_with_usage(&mut self, profile: &UsageProfile) -> Result<CheckIn, AgentError> {
        let summary = self.usage_summary(profile);
        let due = self.usage_due(&summary);
        self.check_in_carrying(due.then_some(summary))
    }

    /// One signed check-in: report, verify the director's answer, and plan
    /// (or drop) the staging of what it assigns. No usage summary (see
    /// [`Self::check_in_with_usage`]).
    pub fn check_in(&mut self) -> Result<CheckIn, AgentError> {
        self.check_in_carrying(None)
    }

    fn check_in_carrying(&mut self, usage: Option<UsageSummary>) -> Result<CheckIn, AgentError> {
        self.usage_sent = false;
        // Counter: strictly increasing across resets (reserve, then use).
        self.counter = self.counter.saturating_add(1);
        if self.counter > self.state.counter_reserved {
            self.state.counter_reserved = self.counter.saturating_add(COUNTER_STEP);
            self.save()?;
        }
        let mut nonce = [0u8; wire::NONCE_LEN];
        self.hw.random(&mut nonce);
        let mut report = self.report()?;
        report.usage = usage.as_ref().map(UsageSummary::to_text);
        let hardware_model = report.hardware_model.clone();
        let running_version = report.firmware.version.clone();
        let running_counter = report.firmware.security_counter;
        let req = CheckinRequest {
            device_id: self.config.device_id.clone(),
            counter: self.counter,
            nonce: wire::b64::encode(nonce),
            director_targets_version: director::held_targets_version(&self.files),
            report,
        };
        let body = serde_json::to_vec(&req).map_err(|_| AgentError::Storage)?;
        let sig = wire::sign_body(&self.key, &body);
        let answer = self
            .net
            .check_in(&self.config.device_id, &body, &sig, RESPONSE_MAX)
            .map_err(|e| match e {
                NetError::Status(409) => AgentError::CounterReplayed,
                NetError::Status(s) => AgentError::Refused(s),
                NetError::Unreachable => AgentError::Network,
                NetError::TooLarge => AgentError::MalformedResponse,
            });
        if let Some(s) = &usage
            && matches!(answer, Ok(_) | Err(AgentError::Refused(400)))
        {
            // Stored by the server (or refused as malformed: not retried
            // before a day has passed).
            self.state.usage_digest = Some(wire::b64::encode(s.material_digest()));
            self.state.usage_sent_at = self.usage_now();
            self.usage_sent = answer.is_ok();
            if answer.is_err() {
                self.save()?;
            }
        }
        let answer = match answer {
            Err(AgentError::CounterReplayed) => {
                // Our counter fell behind the server's (restored state):
                // jump a whole reservation ahead for the next try.
                self.counter = self.state.counter_reserved;
                self.state.counter_reserved = self.counter.saturating_add(COUNTER_STEP);
                self.save()?;
                return Err(AgentError::CounterReplayed);
            }
            other => other?,
        };
        let resp: CheckinResponse =
            serde_json::from_slice(&answer).map_err(|_| AgentError::MalformedResponse)?;
        let sent = director::Sent {
            device_id: &self.config.device_id,
            hardware_model: &hardware_model,
            nonce: &nonce,
            counter: self.counter,
            floor: self.state.time_floor,
        };
        let mut verified = match director::verify(&resp, &sent, &self.files, &mut self.net) {
            Ok(v) => v,
            Err(AgentError::DirectorTargetsMismatch) if resp.director_targets.is_none() => {
                // What we hold is not what the director signed for this
                // version (e.g. metadata kept from a director that has since
                // been restored): forget it, so the next check-in asks for
                // the metadata again.
                self.files
                    .remove(director::TARGETS_FILE)
                    .map_err(|_| AgentError::Storage)?;
                return Err(AgentError::DirectorTargetsMismatch);
            }
            Err(e) => return Err(e),
        };

        // The roots and the time are verified on their own: keep them.
        for root in verified.new_roots() {
            put(&mut self.files, director::ROOT_FILE, root)?;
        }
        self.state.time_floor = self.state.time_floor.max(verified.time());
        if self.hw.now().abs_diff(verified.time()) > 60 {
            self.hw.set_time(verified.time());
        }
        if self.usage_sent {
            // The summary's time by the corrected clock.
            self.state.usage_sent_at = self.usage_now();
        }

        // The director targets are kept only once what they assign has been
        // checked against the image repository: metadata that disagrees with
        // it is discarded, never held (Uptane full verification).
        let outcome = match verified.take_assignment() {
            None => {
                if self.state.staging.take().is_some() {
                    self.hash = None;
                    CheckIn::Withdrawn
                } else {
                    CheckIn::UpToDate
                }
            }
            Some(a) => match self.plan(a, &running_version, running_counter, &hardware_model) {
                Ok(o) => o,
                Err(e) => {
                    self.save()?;
                    return Err(e);
                }
            },
        };
        if let Some(t) = verified.new_targets() {
            put(&mut self.files, director::TARGETS_FILE, t)?;
        }
        self.save()?;
        Ok(outcome)
    }

    /// Check an assignment against the image repository and plan its staging.
    fn plan(
        &mut self,
        a: Assignment,
        running_version: &str,
        running_counter: u32,
        hardware_model: &str,
    ) -> Result<CheckIn, AgentError> {
        let img_meta = a
            .image
            .file
            .custom
            .as_ref()
            .and_then(NightlatchCustom::from_custom)
            .ok_or(AgentError::MalformedAssignment)?;
        if img_meta.version == running_version
            || self.state.failed.contains(&a.image.name)
            || self.state.installing.is_some()
        {
            return Ok(CheckIn::UpToDate);
        }
        if let Some(s) = &self.state.staging
            && s.image.name == a.image.name
        {
            // Same target: keep going (policy may have changed).
            let patch = s.patch.is_some() && s.phase == Phase::Patch;
            if let Some(s) = self.state.staging.as_mut() {
                s.policy = a.policy;
            }
            return Ok(CheckIn::Assigned {
                target: a.image.name,
                patch,
            });
        }

        // The image repository must vouch for the same bytes.
        let mut images = Prefixed {
            inner: &mut self.files,
            prefix: IMAGE_PREFIX,
        };
        let mut repo = tuf::Updater::new(
            RepoTransport(&mut self.net, Repo::Image),
            &mut images,
            self.config.limits,
            self.state.time_floor,
        )
        .map_err(AgentError::Image)?;
        repo.refresh().map_err(AgentError::Image)?;
        let consistent = repo.trusted().root().consistent_snapshot;
        let image_ref = cross_check(&mut repo, &a.image, consistent, hardware_model)?;
        let nl = img_meta;
        if nl.hardware_model != hardware_model {
            return Err(AgentError::WrongHardwareModel);
        }
        if nl.security_counter < running_counter {
            return Err(AgentError::SecurityCounterTooLow);
        }
        // A bad patch listing only costs the patch: take the image.
        let patch_ref = a
            .patch
            .as_ref()
            .and_then(|p| cross_check(&mut repo, p, consistent, hardware_model).ok());
        drop(repo);
        let image_ref = TargetRef {
            version: nl.version,
            security_counter: nl.security_counter,
            ..image_ref
        };
        let patch = patch_ref.is_some();
        self.hash = None;
        self.state.staging = Some(Staging {
            image: image_ref,
            phase: if patch { Phase::Patch } else { Phase::Full },
            patch: patch_ref,
            offset: 0,
            patch_offset: 0,
            patch_started: false,
            policy: a.policy,
            patch_fallback: None,
        });
        Ok(CheckIn::Assigned {
            target: a.image.name,
            patch,
        })
    }

    /// Stage the planned update: up to `max_chunks` range requests (full
    /// image or patch download); once the whole patch is downloaded and
    /// matches its listed SHA-256, the image is rebuilt from it in the same
    /// call.
    pub fn stage(&mut self, max_chunks: u32) -> Result<StageStatus, AgentError> {
        stage::run(self, max_chunks)
    }

    /// Is a verified image staged?
    pub fn staged(&self) -> bool {
        self.state
            .staging
            .as_ref()
            .is_some_and(|s| s.phase == Phase::Staged)
    }

    /// Ask the quiet-hours scheduler whether to install now.
    pub fn decide(
        &self,
        profile: &UsageProfile,
        door_closed: bool,
        last_activity: Option<u64>,
        battery_mwh: u32,
    ) -> scheduler::Decision {
        let policy = self
            .state
            .staging
            .as_ref()
            .map(|s| s.policy.clone())
            .unwrap_or_default();
        let site = site_config(&policy, &self.config);
        scheduler::decide(
            &site,
            &self.config.install_cost,
            &self.config.battery,
            profile,
            &Situation {
                now: self.hw.now(),
                door_closed,
                last_activity,
                battery_mwh,
                staged: self.staged(),
                deadline: policy.security_deadline,
            },
        )
    }

    /// The site's time zone rule for the staged policy (or the lock's own).
    pub fn time_zone(&self) -> scheduler::TzRule {
        let policy = self
            .state
            .staging
            .as_ref()
            .map(|s| s.policy.clone())
            .unwrap_or_default();
        site_config(&policy, &self.config).tz
    }

    /// Request the swap of the staged image. The caller then resets the lock
    /// (the bootloader verifies and swaps), and calls [`Self::after_boot`].
    pub fn install(&mut self) -> Result<(), AgentError> {
        let s = self
            .state
            .staging
            .clone()
            .ok_or(AgentError::NothingStaged)?;
        if s.phase != Phase::Staged {
            return Err(AgentError::NothingStaged);
        }
        let mut up = self.updater()?;
        let mut buf = vec![0u8; 1024];
        up.request_install(&mut buf).map_err(AgentError::Flash)?;
        self.state.installing = Some(Installing {
            target: s.image.name.clone(),
            version: s.image.version.clone(),
        });
        self.state.last_update = Some(UpdateResult {
            target: s.image.name,
            outcome: Outcome::Installed,
            reason: None,
        });
        self.save()
    }

    fn fail_staging(&mut self, reason: &str) -> Result<(), AgentError> {
        if let Some(s) = self.state.staging.take() {
            self.remember_failed(&s.image.name);
            self.state.last_update = Some(UpdateResult {
                target: s.image.name,
                outcome: Outcome::Failed,
                reason: Some(reason.to_string()),
            });
        }
        self.hash = None;
        self.save()
    }
}

/// The image repository's listing of `t` must match the director's.
fn cross_check<T: tuf::Transport, S: MetadataStore>(
    repo: &mut tuf::Updater<T, S>,
    t: &DirectorTarget,
    consistent: bool,
    hardware_model: &str,
) -> Result<TargetRef, AgentError> {
    let info = repo
        .target_info(&t.name)
        .map_err(AgentError::Image)?
        .ok_or(AgentError::NotInImageRepository)?;
    if info.length() != t.file.length || info.hashes() != &t.file.hashes {
        return Err(AgentError::DirectorImageDisagreement);
    }
    let nl = info.nightlatch().ok_or(AgentError::WrongHardwareModel)?;
    if nl.hardware_model != hardware_model {
        return Err(AgentError::WrongHardwareModel);
    }
    let sha = info
        .hashes()
        .get("sha256")
        .map(tuf::hex_encode)
        .ok_or(AgentError::Image(TufError::UnsupportedHash))?;
    Ok(TargetRef {
        name: t.name.clone(),
        length: info.length(),
        sha256: sha,
        path: info.download_path(consistent),
        version: nl.version,
        security_counter: nl.security_counter,
    })
}

/// `HH:MM` → minutes.
fn minutes(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// The scheduler's site configuration from a signed install policy.
pub fn site_config(policy: &wire::InstallPolicy, config: &AgentConfig) -> scheduler::SiteConfig {
    let zone = policy
        .time_zone
        .as_deref()
        .or(config.time_zone.as_deref())
        .unwrap_or("UTC");
    let tz = scheduler::tz::rule_for_zone(zone).unwrap_or(scheduler::TzRule::UTC);
    let window = policy
        .quiet_hours
        .as_ref()
        .and_then(|q| {
            Some(Window {
                start_min: minutes(&q.start)?,
                end_min: minutes(&q.end)?,
            })
        })
        .unwrap_or(Window::ALL_DAY);
    let blackout = policy
        .blackout_dates
        .iter()
        .filter_map(|d| {
            let mut it = d.splitn(3, '-');
            Some(scheduler::LocalDate {
                year: it.next()?.parse().ok()?,
                month: it.next()?.parse().ok()?,
                day: it.next()?.parse().ok()?,
            })
        })
        .collect();
    scheduler::SiteConfig {
        tz,
        window,
        blackout,
        idle_secs: config.idle_secs,
        horizon_hours: config.horizon_hours,
    }
}
