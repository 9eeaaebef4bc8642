//! Why an agent operation failed.

use bootloader::updater::UpdateError;

use crate::tuf::TufError;

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
