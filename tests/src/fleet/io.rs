//! What each lock's agent talks to: a radio that may drop firmware
//! downloads, and its files on flash or in memory.

use lock_app::agent::{self, Net, Repo};
use lock_app::storage::files::FileCache;
use lock_app::tuf::{FetchError, MemoryStore};

use super::usage::Rng;
use crate::sim::device::Device;
use crate::sim::net::HttpNet;

/// A network that drops firmware downloads at random.
pub(super) struct Flaky<'n> {
    pub(super) inner: &'n mut HttpNet,
    pub(super) drop: f64,
    pub(super) rng: &'n mut Rng,
}

impl Net for Flaky<'_> {
    fn check_in(
        &mut self,
        device_id: &str,
        body: &[u8],
        signature: &str,
        max_len: u64,
    ) -> Result<Vec<u8>, agent::NetError> {
        self.inner.check_in(device_id, body, signature, max_len)
    }
    fn fetch_metadata(
        &mut self,
        repo: Repo,
        file: &str,
        max_len: u64,
    ) -> Result<Vec<u8>, FetchError> {
        self.inner.fetch_metadata(repo, file, max_len)
    }
    fn fetch_target(&mut self, path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FetchError> {
        let mut b = self.inner.fetch_target(path, offset, len)?;
        if self.drop > 0.0 && self.rng.chance(self.drop) {
            // The connection dropped part-way through the range.
            b.truncate(b.len() / 3);
        }
        Ok(b)
    }
}

/// A lock's agent files: on its flash (the AGENT partition, as on a real
/// lock) or, to save time in very large runs, in memory.
pub(super) enum Files<'a> {
    Flash(lock_app::storage::files::FileStore<crate::sim::device::AgentFlash<'a>>),
    Memory(&'a mut MemoryStore),
}

impl Files<'_> {
    /// The files of `device` (with the RAM cache its store kept since the
    /// lock's last reset, if any), or `memory`.
    pub(super) fn of<'a>(
        device: &'a Device,
        memory: &'a mut MemoryStore,
        on_flash: bool,
        cache: Option<FileCache>,
    ) -> Files<'a> {
        if on_flash && let Ok(f) = device.files_cached(cache) {
            return Files::Flash(f);
        }
        Files::Memory(memory)
    }

    /// What the store keeps in RAM until the lock's next reset.
    pub(super) fn into_cache(self) -> Option<FileCache> {
        match self {
            Files::Flash(f) => Some(f.into_parts().1),
            Files::Memory(_) => None,
        }
    }
}

impl lock_app::tuf::MetadataStore for Files<'_> {
    fn load(&self, role: &str) -> Option<Vec<u8>> {
        match self {
            Files::Flash(f) => f.load(role),
            Files::Memory(m) => m.load(role),
        }
    }
    fn store(&mut self, role: &str, bytes: &[u8]) -> Result<(), lock_app::tuf::StoreError> {
        match self {
            Files::Flash(f) => f.store(role, bytes),
            Files::Memory(m) => m.store(role, bytes),
        }
    }
    fn remove(&mut self, role: &str) -> Result<(), lock_app::tuf::StoreError> {
        match self {
            Files::Flash(f) => lock_app::tuf::MetadataStore::remove(f, role),
            Files::Memory(m) => m.remove(role),
        }
    }
}
