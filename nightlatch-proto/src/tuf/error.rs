//! Why TUF metadata or a target was refused: one variant per attack or
//! failure.
//!
//! The error is small and `Copy` (no `String`, no heap): it names the role
//! and, where it helps, the versions or counts involved, or (for malformed
//! metadata) which rule the bytes broke. Every attack the
//! TUF specification lists maps to its own variant, so tests (and the lock's
//! audit log) can tell a freeze from a rollback from a mix-and-match.

use core::fmt;

/// A metadata role, as errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `root`
    Root,
    /// `timestamp`
    Timestamp,
    /// `snapshot`
    Snapshot,
    /// top-level `targets`
    Targets,
    /// a delegated targets role
    Delegated,
}

impl Role {
    /// The role's TUF name (`"delegated"` for any delegated role).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Timestamp => "timestamp",
            Role::Snapshot => "snapshot",
            Role::Targets => "targets",
            Role::Delegated => "delegated targets",
        }
    }

    /// The top-level role called `name`, if it is one.
    pub fn top_level(name: &str) -> Option<Role> {
        match name {
            "root" => Some(Role::Root),
            "timestamp" => Some(Role::Timestamp),
            "snapshot" => Some(Role::Snapshot),
            "targets" => Some(Role::Targets),
            _ => None,
        }
    }

    /// The role of a targets-type metadata file named `name`.
    pub fn of_targets(name: &str) -> Role {
        if name == "targets" {
            Role::Targets
        } else {
            Role::Delegated
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything the TUF client can refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TufError {
    // --- bytes that are not valid metadata ---
    /// Not JSON, wrong shape, bad hex, bad date, a float in signed data, a
    /// key that does not decode; `what` says which.
    Malformed { role: Role, what: &'static str },
    /// `_type` is not the role that was expected.
    WrongType { expected: Role },
    /// `spec_version` is not 1.x.
    UnsupportedSpecVersion { role: Role },

    // --- signatures (arbitrary metadata, bad root chain) ---
    /// Fewer valid signatures by the role's keys than its threshold.
    Signature {
        role: Role,
        valid: u32,
        threshold: u32,
    },

    // --- root chain ---
    /// `N+1.root.json` holds a version above N+1 (a gap in the chain).
    RootVersionGap { expected: u64, got: u64 },

    // --- rollback ---
    /// A role's version went down (or a root file held an older version).
    Rollback {
        role: Role,
        trusted: u64,
        offered: u64,
    },
    /// A role the trusted snapshot lists is missing from the new snapshot.
    RoleRemovedFromSnapshot { role: Role },

    // --- freeze ---
    /// The metadata expired before the trusted time floor.
    Expired { role: Role },

    // --- mix-and-match ---
    /// The version does not match what the referring metadata says
    /// (snapshot vs. timestamp, targets vs. snapshot).
    VersionMismatch { role: Role, expected: u64, got: u64 },
    /// Metadata length differs from what the referring metadata says.
    MetaLengthMismatch { role: Role },
    /// Metadata hash differs from what the referring metadata says.
    MetaHashMismatch { role: Role },

    // --- endless data ---
    /// A metadata file is larger than its limit.
    TooLarge { role: Role },
    /// The parent metadata (timestamp for the snapshot, snapshot for
    /// targets) lists a length above the client's own limit for the role:
    /// refused without fetching (the listed length may only lower the
    /// client's limit, never raise it).
    ListedLengthOverLimit { role: Role, listed: u64, limit: u64 },
    /// A target is larger than its signed length or the target size limit.
    TargetTooLarge,

    // --- partial bundle ---
    /// A metadata file the client needs is not in the repository.
    MissingMetadata { role: Role },
    /// The role is not listed in the trusted snapshot.
    NotInSnapshot { role: Role },
    /// The target file is not in the repository.
    MissingTarget,

    // --- arbitrary software ---
    /// The target's length differs from its signed length.
    TargetLengthMismatch,
    /// The target's hash differs from its signed hash.
    TargetHashMismatch,
    /// The target lists no hash algorithm the client supports.
    UnsupportedHash,

    // --- other ---
    /// A target name with `..`, an empty segment, a backslash or a leading `/`.
    InvalidTargetName,
    /// More delegated roles visited than the limit allows.
    DelegationLimit,
    /// The transport failed for a reason other than not-found or too-large.
    Transport,
    /// The metadata store failed.
    Storage,
    /// No trusted root: bootstrap the store first.
    NoTrustedRoot,
    /// Calls made out of the workflow's order (a bug in the caller).
    OutOfOrder,
}

impl fmt::Display for TufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TufError::*;
        match *self {
            Malformed { role, what } => write!(f, "{role} metadata is malformed: {what}"),
            WrongType { expected } => write!(f, "metadata is not of type {expected}"),
            UnsupportedSpecVersion { role } => {
                write!(f, "{role} metadata has an unsupported spec_version")
            }
            Signature {
                role,
                valid,
                threshold,
            } => write!(
                f,
                "{role} metadata has {valid} valid signature(s), {threshold} required"
            ),
            RootVersionGap { expected, got } => write!(
                f,
                "root chain has a gap: expected root version {expected}, got {got}"
            ),
            Rollback {
                role,
                trusted,
                offered,
            } => write!(
                f,
                "rollback of {role}: trusted version {trusted}, offered {offered}"
            ),
            RoleRemovedFromSnapshot { role } => {
                write!(
                    f,
                    "a {role} role listed by the trusted snapshot was removed"
                )
            }
            Expired { role } => write!(f, "{role} metadata has expired (freeze attack?)"),
            VersionMismatch {
                role,
                expected,
                got,
            } => write!(
                f,
                "{role} version {got} is not the version {expected} that its parent lists (mix-and-match?)"
            ),
            MetaLengthMismatch { role } => {
                write!(f, "{role} metadata length differs from the signed length")
            }
            MetaHashMismatch { role } => {
                write!(f, "{role} metadata hash differs from the signed hash")
            }
            TooLarge { role } => write!(f, "{role} metadata exceeds its size limit"),
            ListedLengthOverLimit {
                role,
                listed,
                limit,
            } => write!(
                f,
                "{role} metadata is listed with {listed} bytes, above this client's limit of {limit} bytes; not fetched"
            ),
            TargetTooLarge => f.write_str("target exceeds its signed length or the size limit"),
            MissingMetadata { role } => write!(f, "{role} metadata is missing from the repository"),
            NotInSnapshot { role } => write!(f, "{role} metadata is not listed in the snapshot"),
            MissingTarget => f.write_str("target file is missing from the repository"),
            TargetLengthMismatch => f.write_str("target length differs from its signed length"),
            TargetHashMismatch => f.write_str("target hash differs from its signed hash"),
            UnsupportedHash => f.write_str("target lists no supported hash (sha256, sha512)"),
            InvalidTargetName => f.write_str("target name is not a safe relative path"),
            DelegationLimit => f.write_str("too many delegated roles visited"),
            Transport => f.write_str("transport error"),
            Storage => f.write_str("metadata storage error"),
            NoTrustedRoot => f.write_str("no trusted root in the metadata store"),
            OutOfOrder => f.write_str("TUF workflow steps called out of order"),
        }
    }
}

impl core::error::Error for TufError {}

/// Result of the TUF client.
pub type Result<T> = core::result::Result<T, TufError>;

impl TufError {
    /// [`TufError::Malformed`] for `role`, saying `what` is wrong.
    pub const fn malformed(role: Role, what: &'static str) -> Self {
        TufError::Malformed { role, what }
    }
}
