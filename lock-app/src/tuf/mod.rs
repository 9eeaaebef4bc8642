//! The lock's TUF client (`no_std` + `alloc`), following the TUF 1.0
//! specification's client workflow (sections 5.1–5.7).
//!
//! * [`Updater`] runs the workflow over a [`Transport`] (the radio) and a
//!   [`MetadataStore`] (flash): [`Updater::refresh`] updates the root chain
//!   (`N+1.root.json` until not found, each signed by the old and the new
//!   root threshold), then timestamp → snapshot → targets;
//!   [`Updater::target_info`] walks the delegations;
//!   [`Updater::download_target`] fetches and checks a target
//!   ([`TargetVerifier`] does the same for a stream written to DFU).
//! * The lock has no clock: the caller passes a trusted time floor (Unix
//!   seconds); every expiry is checked against it.
//! * [`TrustedSet`] holds the verified metadata and makes each check; every
//!   refusal is its own [`TufError`] variant (rollback, freeze,
//!   mix-and-match, endless data, partial bundle, arbitrary software, bad
//!   signature, root version gap).
//! * Signatures cover the OLPC canonical JSON ([`cjson`], from
//!   `nightlatch-proto`, the one the host tools sign with) of the received
//!   `signed` object; keys are Ed25519; key ids are taken as listed.
//!
//! Not supported: `succinct_roles` (hash-bin delegations), key types other
//! than Ed25519 (they parse but never count towards a threshold).

mod digest;
mod encoding;
mod error;
pub mod metadata;
mod signed;
mod storage;
mod target;
mod transport;
mod trusted;
mod updater;

pub use nightlatch_proto::cjson;

pub use encoding::{hex_decode, hex_encode, parse_utc};
pub use error::{Result, Role, TufError};
pub use metadata::{
    DelegatedRole, Delegations, Hashes, Header, MetaFile, Root, Snapshot, TargetFile, Targets,
    Timestamp,
};
pub use signed::{Envelope, PublicKey, RoleKeys};
pub use storage::{MemoryStore, MetadataStore, StoreError};
pub use target::{NightlatchTarget, TargetInfo, TargetVerifier, check_target_name};
pub use transport::{FetchError, MemoryTransport, Transport};
pub use trusted::{TimestampUpdate, TrustedSet};
pub use updater::{Limits, Updater, bootstrap, quote};
