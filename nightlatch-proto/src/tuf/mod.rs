//! The TUF metadata model (specification 1.0) and its verification rules,
//! once for the lock (`lock_app::tuf`, `no_std`) and the host tools.
//!
//! * [`Envelope`]: `{"signatures": [...], "signed": {...}}`, the canonical
//!   JSON ([`crate::cjson`]) of `signed` as received, and threshold
//!   verification over it ([`Envelope::verify`]: distinct keys, not key
//!   ids).
//! * [`Root`], [`Timestamp`], [`Snapshot`], [`Targets`] (with
//!   [`Delegations`]): typed `signed` contents, read with an error that says
//!   which rule the bytes broke ([`TufError::Malformed`]) and written back
//!   (serde `Serialize`, or `to_json`) to the same canonical JSON.
//! * [`PublicKey`]: `ed25519`, `ecdsa`/`ecdsa-sha2-nistp256` (P-256) and
//!   `rsa` (`rsassa-pss-sha256`, `rsa-pkcs1v15-sha256`) keys as python-tuf
//!   writes them ([`key`] has the table); [`PublicKey::keyid`].
//! * [`rules`]: root N+1, rollback, listed versions, metadata length and
//!   hashes; [`Header::check_fresh`]: expiry against a time passed in;
//!   [`TargetFile::verify`] / [`TargetVerifier`]: a target's length and
//!   hashes.
//!
//! # Features and what they cost
//!
//! Ed25519 is always built. `ecdsa` (P-256) and `rsa` are default features
//! a lock build may leave out (`default-features = false`, or lock-app's
//! features of the same names); a key of a type left out parses as
//! [`PublicKey::Unsupported`] and never counts.
//!
//! Measured on the host (x86-64, release, 2 shared cores under load):
//!
//! | key type | verify one signature, median of 200 (`examples/verify_bench.rs`) | `.text` added, opt-level 3 / `s` (`examples/verify_size.rs`) |
//! |---|---|---|
//! | `ed25519` | 43 µs | base: 461 KB / 419 KB (std included) |
//! | `ecdsa-sha2-nistp256` | 283 µs | +78 KB / +60 KB (`ecdsa`) |
//! | `rsa` 2048, PSS or PKCS#1 v1.5 | 185 µs | +122 KB / +95 KB (`rsa`) |
//! | `rsa` 3072 (securesystemslib's default size) | 400 µs | |
//! | both features | | +160 KB / +125 KB (PEM/DER code shared) |
//!
//! For locks: Ed25519 (fastest, smallest, deterministic, no PEM parsing);
//! build `ecdsa` too only if a role's key lives in an HSM that cannot do
//! Ed25519; leave `rsa` out of lock builds (largest code, slowest on a
//! 32-bit core, big keys and signatures over the radio).

mod digest;
mod encoding;
mod error;
pub mod key;
mod metadata;
pub mod rules;
mod signed;
mod target;

pub use digest::{DigestError, Hasher, check_hashes};
pub use encoding::{
    format_utc, hex_decode, hex_decode_lower, hex_encode, parse_expires, parse_utc,
};
pub use error::{Result, Role, TufError};
pub use key::{Keys, PublicKey};
pub use metadata::{
    DelegatedRole, Delegations, Hashes, Header, MetaFile, Root, SPEC_VERSION, Snapshot, TargetFile,
    Targets, Timestamp,
};
pub use signed::{Envelope, RoleKeys};
pub use target::{TargetVerifier, check_target_name};

#[cfg(test)]
mod tests;
