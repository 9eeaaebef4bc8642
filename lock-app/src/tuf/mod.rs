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
//! * [`Updater::fetch_target`] does not download a target again when the
//!   copy a [`TargetStore`] holds has the listed length and hashes.
//! * The metadata model, the signature and version rules and the key types
//!   come from [`nightlatch_proto::tuf`] (shared with the host tools):
//!   signatures cover the OLPC canonical JSON ([`cjson`]) of the received
//!   `signed` object; keys are Ed25519 and — with this crate's `ecdsa` and
//!   `rsa` features, on by default — ECDSA P-256 and RSA (PSS or PKCS#1
//!   v1.5, SHA-256); key ids are taken as listed.
//!
//! Not supported: `succinct_roles` (hash-bin delegations, refused as
//! malformed); key types and schemes other than those (they parse but never
//! count towards a threshold).

mod storage;
mod target;
mod transport;
mod trusted;
mod updater;

pub use nightlatch_proto::cjson;
pub use nightlatch_proto::tuf::{
    DelegatedRole, Delegations, Envelope, Hashes, Header, MetaFile, PublicKey, Result, Role,
    RoleKeys, Root, Snapshot, TargetFile, TargetVerifier, Targets, Timestamp, TufError,
    check_target_name, format_utc, hex_decode, hex_encode, parse_utc,
};

pub use storage::{MemoryStore, MetadataStore, StoreError, TargetStore};
pub use target::{NightlatchTarget, TargetInfo};
pub use transport::{FetchError, MemoryTransport, Transport};
pub use trusted::{TimestampUpdate, TrustedSet};
pub use updater::{Fetched, Limits, Updater, bootstrap, quote};
