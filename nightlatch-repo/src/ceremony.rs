//! The root ceremony's file operations, as `nightlatch-keys` runs them and
//! as tests and drills call them: write a root, add one keyholder's
//! signature to a root file, write root N+1 from root N. Each records a
//! transcript line ([`crate::transcript`]).

use crate::metadata::Metadata as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::fsio::{self, Access, write_atomic};
use crate::keysource::KeySpec;
use crate::metadata::{KeyIdOf, RoleKeys, Root, Signed};
use crate::rotation::{Change, rotate};
use crate::status::load_with_previous;
use crate::transcript::{Draft, Log, sha256_hex};

/// Write root metadata (creating its directory); returns the SHA-256 of
/// the bytes written.
pub fn write_root(path: &Path, root: &Signed<Root>, overwrite: bool) -> Result<String> {
    let bytes = root.to_bytes()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fsio::create_dir(dir)?;
    }
    write_atomic(path, &bytes, Access::Public, overwrite)?;
    Ok(sha256_hex(&bytes))
}

/// Sign the root `file` with the key `spec` (which must be a root key of
/// it or, for a rotated root, of `previous`: given, or `N-1.root.json`
/// beside it), rewrite it in place and record it in the transcript.
/// Returns the TUF key id that signed.
pub fn sign_file(
    file: &Path,
    previous: Option<&Path>,
    spec: &KeySpec,
    log: &Log,
    clock: &dyn Clock,
) -> Result<String> {
    let before = fsio::read_limited(file, crate::metadata::MAX_METADATA_LEN)?;
    let (mut root, prev) = load_with_previous(file, previous)?;
    let key = spec.open()?;
    let key_id = key.public().key_id();
    let allowed = root.signed.root_keyids().contains(&key_id)
        || prev
            .as_ref()
            .is_some_and(|(_, p)| p.signed.root_keyids().contains(&key_id));
    if !allowed {
        return Err(Error::KeyNotInRole {
            path: file.to_owned(),
            role: "root".into(),
            key_id: key_id.to_string(),
        });
    }
    root.sign_with(key.as_ref(), file)?;
    let sha = write_root(file, &root, true)?;
    log.record(
        file,
        Draft {
            operation: "sign".into(),
            subject: file.display().to_string(),
            version: Some(root.signed.version()),
            key_ids: vec![key_id.to_string()],
            sha256_before: Some(sha256_hex(&before)),
            sha256_after: Some(sha),
            note: key.describe(),
            ..Draft::default()
        },
        clock,
    )?;
    Ok(key_id.to_string())
}

/// What [`rotate_file`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The new (unsigned) root file.
    pub path: PathBuf,
    /// Its version.
    pub version: u64,
    /// The version it follows.
    pub previous_version: u64,
    /// Signatures it needs by the previous root's root keys.
    pub previous_threshold: u32,
    /// Signatures it needs by its own root keys.
    pub threshold: u32,
}

/// Write root N+1 (unsigned) from the fully signed root N at `from`, with
/// `changes` applied and expiring `lifetime` from now; to `out`, or
/// `N+1.root.json` beside `from`. Without `overwrite` an existing file is
/// kept (and an error returned).
pub fn rotate_file(
    from: &Path,
    out: Option<&Path>,
    changes: &[Change],
    lifetime: Duration,
    overwrite: bool,
    log: &Log,
    clock: &dyn Clock,
) -> Result<Rotated> {
    let (prev, _) = load_with_previous(from, None)?;
    let role = prev.signed.role("root").cloned().unwrap_or(RoleKeys {
        keyids: Vec::new(),
        threshold: 1,
    });
    let what = format!(
        "{} (root version {})",
        from.display(),
        prev.signed.version()
    );
    prev.require(&prev.signed.keys, &role, &what, "root")?;
    let next = rotate(&prev.signed, changes, clock.expires_in(lifetime)).map_err(|r| {
        Error::usage(
            format!("cannot rotate: {r}"),
            "check the --add/--revoke/--threshold options against `nightlatch-keys status`",
        )
    })?;
    let out = out
        .map(Path::to_owned)
        .unwrap_or_else(|| from.with_file_name(format!("{}.root.json", next.version())));
    let next = Signed::new(next)?;
    let sha = write_root(&out, &next, overwrite)?;
    let key_ids = changes
        .iter()
        .filter_map(|c| match c {
            Change::Add { key, .. } => Some(key.key_id().to_string()),
            Change::Revoke { key_id, .. } => Some(key_id.to_string()),
            Change::Threshold { .. } => None,
        })
        .collect();
    let thresholds: Vec<String> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Threshold { role, threshold } => Some(format!("{role}={threshold}")),
            _ => None,
        })
        .collect();
    log.record(
        &out,
        Draft {
            operation: "rotate".into(),
            subject: format!("{} -> {}", from.display(), out.display()),
            version: Some(next.signed.version()),
            key_ids,
            sha256_after: Some(sha),
            note: format!("threshold changes {thresholds:?}"),
            ..Draft::default()
        },
        clock,
    )?;
    Ok(Rotated {
        path: out,
        version: next.signed.version(),
        previous_version: prev.signed.version(),
        previous_threshold: role.threshold,
        threshold: next.signed.role("root").map_or(1, |r| r.threshold),
    })
}
