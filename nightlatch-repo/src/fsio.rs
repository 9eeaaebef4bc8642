//! File reading with a size limit, atomic writes (temp file + rename, so a
//! crash or a full disk never leaves a half-written key, metadata file or
//! envelope behind), and printing that reports a closed pipe instead of
//! panicking. The one copy every Nightlatch host tool and the server use.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::error::{Error, Result};

/// Who may read a written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Owner only (mode 0600 on unix): private keys.
    Secret,
    /// Everyone may read (mode 0644 on unix): metadata, public keys, envelopes.
    Public,
}

/// Read a whole file, refusing files longer than `limit` bytes without
/// reading them (`/dev/zero` or a disk image passed by mistake fails fast).
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let read_err = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let too_large = || Error::TooLarge {
        path: path.to_owned(),
        limit,
    };
    let file = File::open(path).map_err(read_err)?;
    if let Ok(meta) = file.metadata()
        && meta.is_file()
        && meta.len() > limit
    {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// A file written to a temporary name next to its destination, not yet visible
/// under its final name. Dropping it removes the temporary file.
#[derive(Debug)]
pub struct Staged {
    tmp: NamedTempFile,
    path: PathBuf,
}

/// Write `bytes` to a temporary file in the directory of `path`, synced to disk.
pub fn stage(path: &Path, bytes: &[u8], access: Access) -> Result<Staged> {
    let write_err = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // NamedTempFile is created with mode 0600.
    let mut tmp = tempfile::Builder::new()
        .prefix(".nightlatch-")
        .tempfile_in(dir)
        .map_err(write_err)?;
    tmp.write_all(bytes).map_err(write_err)?;
    set_access(tmp.as_file(), access).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    Ok(Staged {
        tmp,
        path: path.to_owned(),
    })
}

impl Staged {
    /// Rename the temporary file to its final name. Without `overwrite`, an
    /// existing file is never replaced (checked atomically by the rename).
    pub fn commit(self, overwrite: bool) -> Result<()> {
        let Self { tmp, path } = self;
        let result = if overwrite {
            tmp.persist(&path)
        } else {
            tmp.persist_noclobber(&path)
        };
        match result {
            Ok(_) => Ok(()),
            Err(e) if !overwrite && e.error.kind() == io::ErrorKind::AlreadyExists => {
                Err(Error::Exists { path })
            }
            Err(e) => Err(Error::Write {
                path,
                source: e.error,
            }),
        }
    }
}

/// Atomically write `bytes` to `path` (temporary file in the same directory,
/// synced, then renamed). Without `overwrite`, an existing file is never replaced.
pub fn write_atomic(path: &Path, bytes: &[u8], access: Access, overwrite: bool) -> Result<()> {
    stage(path, bytes, access)?.commit(overwrite)
}

/// Create a directory and its parents.
pub fn create_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })
}

#[cfg(unix)]
fn set_access(file: &File, access: Access) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = match access {
        Access::Secret => 0o600,
        Access::Public => 0o644,
    };
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_access(_file: &File, _access: Access) -> io::Result<()> {
    Ok(())
}

/// Print `text` and a newline to standard output, reporting (not panicking
/// on) a closed pipe.
pub fn print(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|source| Error::Stdout { source })
}

/// Print `value` as pretty JSON to standard output.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|source| Error::Json { source })?;
    print(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_atomic_and_never_clobber_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"one", Access::Public, false).unwrap();
        assert!(matches!(
            write_atomic(&path, b"two", Access::Public, false),
            Err(Error::Exists { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        write_atomic(&path, b"two", Access::Secret, true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // A staged file that is dropped leaves nothing behind.
        drop(stage(&dir.path().join("g"), b"x", Access::Public).unwrap());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
        assert!(matches!(
            read_limited(&path, 2),
            Err(Error::TooLarge { limit: 2, .. })
        ));
        assert_eq!(read_limited(&path, 3).unwrap(), b"two");
    }
}
