//! File reading with a size limit, atomic writes (temp file + rename), and
//! printing that reports a closed pipe instead of panicking.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// Who may read a written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Owner only (mode 0600 on unix): private keys.
    Secret,
    /// Everyone may read (mode 0644 on unix): metadata, public keys.
    Public,
}

/// Read a whole file, refusing files longer than `limit` bytes without reading them.
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

/// Atomically write `bytes` to `path` (temporary file in the same directory,
/// synced, then renamed). Without `overwrite`, an existing file is never replaced.
pub fn write_atomic(path: &Path, bytes: &[u8], access: Access, overwrite: bool) -> Result<()> {
    let write_err = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".nightlatch-")
        .tempfile_in(dir)
        .map_err(write_err)?;
    tmp.write_all(bytes).map_err(write_err)?;
    set_access(tmp.as_file(), access).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    let result = if overwrite {
        tmp.persist(path)
    } else {
        tmp.persist_noclobber(path)
    };
    match result {
        Ok(_) => Ok(()),
        Err(e) if !overwrite && e.error.kind() == io::ErrorKind::AlreadyExists => {
            Err(Error::Exists {
                path: path.to_owned(),
            })
        }
        Err(e) => Err(write_err(e.error)),
    }
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

/// Print `text` and a newline to standard output.
pub fn print(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|source| Error::Stdout { source })
}

/// Print `value` as pretty JSON to standard output.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Canonical {
        reason: e.to_string(),
    })?;
    print(&text)
}
