//! TUF metadata (specification 1.0), as python-tuf and any conforming client
//! read it: the four top-level roles and delegated targets roles as the
//! tools edit them. Keys, signature verification, canonical JSON and path
//! matching are the protocol crate's (`nightlatch_proto`), the code the
//! lock runs; every file read here is also parsed by the protocol crate's
//! reader for its role ([`signed::Signed::parse`]), so the tools refuse
//! what a lock would.
//!
//! Every type parses untrusted bytes without panicking: serde refuses wrong
//! types, [`Metadata::validate`] refuses what breaks a TUF rule, and
//! [`Signed`] keeps the exact `signed` object it read so signatures are
//! checked over what was signed (unknown fields included).

pub mod expiry;
pub mod key;
pub mod root;
pub mod signed;
pub mod snapshot;
pub mod targets;
pub mod timestamp;

pub use expiry::Expiry;
pub use key::{KeyId, KeyIdOf, PublicKey};
pub use root::{RoleKeys, Root};
pub use signed::{Signature, Signed, Tally, canonical_json};
pub use snapshot::{MetaFile, Snapshot};
pub use targets::{DelegatedRole, Delegations, TargetFile, Targets};
pub use timestamp::Timestamp;

/// The TUF specification version written into new metadata.
pub const SPEC_VERSION: &str = "1.0.31";

/// Largest metadata file any tool here reads (the endless-data attack).
pub const MAX_METADATA_LEN: u64 = 16 * 1024 * 1024;

/// What every role's `signed` object has in common.
pub trait Metadata: serde::Serialize + serde::de::DeserializeOwned {
    /// The `_type` value and the kind named in errors.
    const TYPE: &'static str;
    /// The metadata version.
    fn version(&self) -> u64;
    /// When the metadata expires.
    fn expires(&self) -> Expiry;
    /// Check the TUF rules serde cannot express; the reason on failure.
    fn validate(&self) -> Result<(), String>;
    /// Parse the `signed` object with the protocol crate's reader for this
    /// role (what a lock runs).
    fn check_with_protocol(
        signed: &serde_json::Value,
    ) -> Result<(), nightlatch_proto::tuf::TufError>;
}

/// Common checks of `_type`, `spec_version` and `version`.
pub(crate) fn check_header(
    kind: &str,
    expected: &str,
    spec_version: &str,
    version: u64,
) -> Result<(), String> {
    if kind != expected {
        return Err(format!("_type is {kind:?}, expected {expected:?}"));
    }
    let parts: Vec<&str> = spec_version.split('.').collect();
    if !(2..=3).contains(&parts.len())
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        || parts.first() != Some(&"1")
    {
        return Err(format!(
            "spec_version {spec_version:?} is not a 1.x TUF version"
        ));
    }
    if version == 0 {
        return Err("version must be at least 1".into());
    }
    Ok(())
}
