//! How the client gets files: a trait the lock implements over its radio
//! (and the host tool over `file://` or HTTP).

use alloc::vec::Vec;

/// Why a fetch failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchError {
    /// The file does not exist (HTTP 403/404).
    NotFound,
    /// The file is longer than `max_len`: the transport stopped reading.
    TooLarge,
    /// Any other failure (connection, I/O, server error).
    Other,
}

/// A source of repository files.
pub trait Transport {
    /// Fetch `path` (relative to the transport's base: `1.root.json`,
    /// `timestamp.json`, `nl-lock-v2/<hash>.1.0.0.nlfw`), reading at most
    /// `max_len` bytes: a longer file must fail with
    /// [`FetchError::TooLarge`] without being read to its end. (The client
    /// checks the length again.)
    fn fetch(&mut self, path: &str, max_len: u64) -> Result<Vec<u8>, FetchError>;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn fetch(&mut self, path: &str, max_len: u64) -> Result<Vec<u8>, FetchError> {
        (**self).fetch(path, max_len)
    }
}

/// An in-memory repository: path → bytes. For tests and simulations.
#[derive(Debug, Clone, Default)]
pub struct MemoryTransport {
    /// The files served.
    pub files: alloc::collections::BTreeMap<alloc::string::String, Vec<u8>>,
}

impl Transport for MemoryTransport {
    fn fetch(&mut self, path: &str, max_len: u64) -> Result<Vec<u8>, FetchError> {
        let file = self.files.get(path).ok_or(FetchError::NotFound)?;
        if u64::try_from(file.len()).map_or(true, |l| l > max_len) {
            return Err(FetchError::TooLarge);
        }
        Ok(file.clone())
    }
}
