//! The agent's persistent state (`agent/state`, JSON): the counter
//! reservation, the time floor, the update being staged or installed, the
//! last update's result, the targets that failed, and the last usage
//! summary sent.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use super::CHUNK;
use super::wire::{self, UpdateResult};
#[cfg(doc)]
use crate::scheduler::summary::UsageSummary;

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
