//! Where trusted metadata is kept between refreshes, and where downloaded
//! targets are: two small traits (the lock's flash implementations come
//! with the storage partitions and the DFU bank), and an in-memory
//! implementation of both for tests.
//!
//! Metadata keys are role names: `root`, `timestamp`, `snapshot`, `targets`
//! and delegated role names. Only metadata the client has verified is
//! stored. Targets are kept by target name; a held copy is only ever used
//! after it was checked against the length and hashes listed now.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// The store failed to write or remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreError;

/// Persistent storage of trusted metadata.
pub trait MetadataStore {
    /// The stored bytes of `role`, if any.
    fn load(&self, role: &str) -> Option<Vec<u8>>;
    /// Replace the stored bytes of `role` (atomically: old or new, never torn).
    fn store(&mut self, role: &str, bytes: &[u8]) -> Result<(), StoreError>;
    /// Forget `role` (no error when it is absent).
    fn remove(&mut self, role: &str) -> Result<(), StoreError>;
}

impl<S: MetadataStore + ?Sized> MetadataStore for &mut S {
    fn load(&self, role: &str) -> Option<Vec<u8>> {
        (**self).load(role)
    }
    fn store(&mut self, role: &str, bytes: &[u8]) -> Result<(), StoreError> {
        (**self).store(role, bytes)
    }
    fn remove(&mut self, role: &str) -> Result<(), StoreError> {
        (**self).remove(role)
    }
}

/// Where downloaded targets are kept (a file, the inactive flash bank).
pub trait TargetStore {
    /// Feed the held copy of target `name` to `sink`, in order, in chunks
    /// of the store's choosing; `Ok(false)` when no copy is held. A copy
    /// that cannot be read to its end is an error (then it is fetched
    /// again).
    fn read_target(&self, name: &str, sink: &mut dyn FnMut(&[u8])) -> Result<bool, StoreError>;
    /// Keep `bytes` (already checked) as the copy of target `name`.
    fn write_target(&mut self, name: &str, bytes: &[u8]) -> Result<(), StoreError>;
}

impl<S: TargetStore + ?Sized> TargetStore for &mut S {
    fn read_target(&self, name: &str, sink: &mut dyn FnMut(&[u8])) -> Result<bool, StoreError> {
        (**self).read_target(name, sink)
    }
    fn write_target(&mut self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        (**self).write_target(name, bytes)
    }
}

/// Metadata (and targets) kept in RAM.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    /// Role name → bytes.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Target name → bytes.
    pub targets: BTreeMap<String, Vec<u8>>,
}

impl MemoryStore {
    /// A store holding only the trusted root (as flash does at manufacture).
    pub fn with_root(root: &[u8]) -> Self {
        let mut files = BTreeMap::new();
        files.insert("root".to_string(), root.to_vec());
        Self {
            files,
            targets: BTreeMap::new(),
        }
    }
}

impl MetadataStore for MemoryStore {
    fn load(&self, role: &str) -> Option<Vec<u8>> {
        self.files.get(role).cloned()
    }
    fn store(&mut self, role: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.files.insert(role.to_string(), bytes.to_vec());
        Ok(())
    }
    fn remove(&mut self, role: &str) -> Result<(), StoreError> {
        self.files.remove(role);
        Ok(())
    }
}

impl TargetStore for MemoryStore {
    fn read_target(&self, name: &str, sink: &mut dyn FnMut(&[u8])) -> Result<bool, StoreError> {
        let Some(bytes) = self.targets.get(name) else {
            return Ok(false);
        };
        for chunk in bytes.chunks(4096) {
            sink(chunk);
        }
        Ok(true)
    }
    fn write_target(&mut self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.targets.insert(name.to_string(), bytes.to_vec());
        Ok(())
    }
}
