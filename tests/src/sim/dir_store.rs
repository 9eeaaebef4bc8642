//! Trusted metadata in a directory, one `<role>.json` per role (the layout
//! python-tuf's client uses), written atomically (temporary file + rename).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use lock_app::tuf::{MetadataStore, StoreError, quote};

/// A [`MetadataStore`] over a directory.
#[derive(Debug, Clone)]
pub struct DirStore {
    dir: PathBuf,
}

impl DirStore {
    /// Use `dir` (created on first write).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    /// The file that holds `role`.
    pub fn path(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{}.json", quote(role)))
    }
}

impl MetadataStore for DirStore {
    fn load(&self, role: &str) -> Option<Vec<u8>> {
        fs::read(self.path(role)).ok()
    }

    fn store(&mut self, role: &str, bytes: &[u8]) -> Result<(), StoreError> {
        fs::create_dir_all(&self.dir).map_err(|_| StoreError)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(|_| StoreError)?;
        tmp.write_all(bytes).map_err(|_| StoreError)?;
        tmp.as_file().sync_all().map_err(|_| StoreError)?;
        tmp.persist(self.path(role)).map_err(|_| StoreError)?;
        Ok(())
    }

    fn remove(&mut self, role: &str) -> Result<(), StoreError> {
        match fs::remove_file(self.path(role)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(_) => Err(StoreError),
        }
    }
}
