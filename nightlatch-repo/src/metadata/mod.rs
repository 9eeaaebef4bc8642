//! TUF metadata (specification 1.0) as the tools write and check it.
//!
//! The model is the protocol crate's ([`nightlatch_proto::tuf`]): the same
//! [`Root`], [`Targets`], [`Snapshot`] and [`Timestamp`] types, keys,
//! canonical JSON and path matching the lock reads and verifies with, so a
//! file these tools read or write is read by the lock's own parser. What
//! this module adds is a writer's side: [`Signed`] (a file with its
//! signatures, signing through a key source, tallies), expiries as
//! [`Expiry`], and [`Metadata::validate`] — the rules a repository *author*
//! must keep that a reader need not check (thresholds that can be met, keys
//! listed once under their own key id, safe target paths, role names).
//!
//! Every type parses untrusted bytes without panicking: the protocol
//! reader refuses what breaks the format, [`Metadata::validate`] what
//! breaks an authoring rule, and [`Signed`] keeps the exact `signed` object
//! it read so signatures are checked over what was signed (unknown fields
//! included).

pub mod expiry;
pub mod key;
pub mod root;
pub mod signed;
pub mod snapshot;
pub mod targets;
pub mod timestamp;

pub use expiry::Expiry;
pub use key::{KeyId, KeyIdOf, PublicKey, parse_key_id, short_key_id};
pub use nightlatch_proto::tuf::{
    DelegatedRole, Delegations, Hashes, Header, MetaFile, RoleKeys, Root, SPEC_VERSION, Snapshot,
    TargetFile, Targets, Timestamp,
};
pub use signed::{Signature, Signed, Tally, canonical_json};

/// Largest metadata file any tool here reads (the endless-data attack).
pub const MAX_METADATA_LEN: u64 = 16 * 1024 * 1024;

/// What every role's `signed` object has in common, for a writer.
pub trait Metadata: serde::Serialize + serde::de::DeserializeOwned {
    /// The `_type` value and the kind named in errors.
    const TYPE: &'static str;
    /// Version and expiry.
    fn header(&self) -> &Header;
    /// Version and expiry, to change.
    fn header_mut(&mut self) -> &mut Header;
    /// Check the rules a repository author must keep beyond what the
    /// protocol reader checks; the reason on failure.
    fn validate(&self) -> Result<(), String>;

    /// The metadata version.
    fn version(&self) -> u64 {
        self.header().version
    }
    /// When the metadata expires.
    fn expires(&self) -> Expiry {
        Expiry::from_unix(self.header().expires)
    }
    /// Set the version and expiry of the next file of this role.
    fn set_header(&mut self, version: u64, expires: Expiry) {
        let header = self.header_mut();
        header.version = version;
        header.expires = expires.unix();
    }
}

macro_rules! metadata_header {
    () => {
        fn header(&self) -> &crate::metadata::Header {
            &self.header
        }
        fn header_mut(&mut self) -> &mut crate::metadata::Header {
            &mut self.header
        }
    };
}
pub(crate) use metadata_header;
