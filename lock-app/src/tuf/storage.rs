//! Where trusted metadata is kept between refreshes: a small trait (the
//! lock's flash implementation comes with the storage partitions), and an
//! in-memory implementation for tests.
//!
//! Keys are role names: `root`, `timestamp`, `snapshot`, `targets` and
//! delegated role names. Only metadata the client has verified is stored.

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

/// Metadata kept in RAM.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    /// Role name → bytes.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl MemoryStore {
    /// A store holding only the trusted root (as flash does at manufacture).
    pub fn with_root(root: &[u8]) -> Self {
        let mut files = BTreeMap::new();
        files.insert("root".to_string(), root.to_vec());
        Self { files }
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
