//! The TUF client (`lock_app::tuf`) against repositories built in the test
//! (`support`: fixed-seed keys, metadata signed over canonical JSON, served
//! from memory): the happy path, then every attack, each refused with its
//! own error. One file per attack class.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

/// What every test file uses.
mod prelude {
    pub(crate) use crate::support;
    pub(crate) use crate::support::{DAY, Device, FIRMWARE, Key, NOW, Repo, key, refreshed, sign};
    pub use lock_app::tuf::{Limits, MetadataStore, Role, TufError, Updater, bootstrap};
    pub use serde_json::json;
}

mod arbitrary_software;
mod cached_target;
mod delegations;
mod endless_data;
mod freeze;
mod happy_path;
mod hostile_bytes;
mod mix_and_match;
mod partial_bundle;
mod rollback;
mod root_chain;
