//! The agent's files: factory provisioning, and a prefixed view of the
//! store for the image repository's metadata.

use alloc::format;
use alloc::vec::Vec;

use crate::tuf::{self, MetadataStore, StoreError};

use super::{AgentError, IMAGE_PREFIX, KEY_FILE, STATE_FILE, State, director};

/// Store `bytes` under `name` with a fresh store wrapper.
pub(super) fn put<S: MetadataStore>(
    store: &mut S,
    name: &str,
    bytes: &[u8],
) -> Result<(), AgentError> {
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
