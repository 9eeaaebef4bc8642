//! Re-sign snapshot and timestamp with the online keys (what the server does
//! on a timer, and what makes newly published targets visible).
//!
//! The snapshot lists the newest version of top-level targets and of every
//! published delegated role, each checked against the keys that must sign it.
//! A new snapshot is written when that list changed, when the current one is
//! not valid under the newest root, or when it would expire within the
//! timestamp's lifetime; the timestamp is always renewed.

use crate::metadata::Hashes;
use crate::metadata::Metadata as _;
use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::fsio::{Access, write_atomic};
use crate::keysource::KeySource;
use crate::metadata::{MetaFile, Signed, Snapshot, Timestamp};
use crate::repo::signer::{refuse_strangers, sign_role};
use crate::repo::{Expiries, Repo, metadata_dir, next_version, role_file};

/// What `refresh` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct RefreshReport {
    /// Snapshot version now current.
    pub snapshot_version: u64,
    /// Whether a new snapshot was written.
    pub new_snapshot: bool,
    /// Timestamp version written.
    pub timestamp_version: u64,
    /// Timestamp expiry.
    pub timestamp_expires: String,
}

fn state(dir: &Path, reason: String, help: &str) -> Error {
    Error::RepoState {
        path: dir.to_owned(),
        reason,
        help: help.into(),
    }
}

/// What the snapshot must list: newest valid targets metadata.
fn snapshot_meta(repo: &Repo) -> Result<BTreeMap<String, MetaFile>> {
    let dir = &repo.dir;
    let root = &repo.root.signed;
    let top = repo.targets.as_ref().ok_or_else(|| {
        state(
            dir,
            "there is no targets metadata yet".into(),
            "run `nightlatch-sign publish --repo DIR --key TARGETS.key` first",
        )
    })?;
    let role = root.role("targets").cloned().ok_or_else(|| {
        state(
            dir,
            "root has no targets role".into(),
            "rotate to a correct root",
        )
    })?;
    let what = role_file(dir, top.signed.version(), "targets")
        .display()
        .to_string();
    top.require(&root.keys, &role, &what, "targets").map_err(|e| {
        state(dir, format!("{e}"), "re-sign targets with the keys the newest root names: `nightlatch-sign publish --repo DIR --key TARGETS.key`")
    })?;
    let version = MetaFile::new;
    let mut meta = BTreeMap::from([("targets.json".to_owned(), version(top.signed.version()))]);
    let delegations = top.signed.delegations.clone().unwrap_or_default();
    for d in &delegations.roles {
        let Some(m) = repo.delegated.get(&d.name) else {
            continue;
        };
        let what = role_file(dir, m.signed.version(), &d.name)
            .display()
            .to_string();
        m.require(&delegations.keys, &d.keys, &what, &d.name)
            .map_err(|e| {
                state(
                    dir,
                    format!("{e}"),
                    "publish again for this model with its current release keys",
                )
            })?;
        meta.insert(format!("{}.json", d.name), version(m.signed.version()));
    }
    Ok(meta)
}

/// Refresh the repository at `dir` with the online `keys`, at `clock`'s now.
pub fn refresh(
    dir: &Path,
    keys: &[Box<dyn KeySource>],
    expiries: &Expiries,
    clock: &dyn Clock,
) -> Result<RefreshReport> {
    let repo = Repo::load(dir)?;
    let root = &repo.root.signed;
    if clock.has_passed(root.expires()) {
        return Err(state(
            dir,
            format!(
                "root version {} expired at {}",
                root.version(),
                root.expires()
            ),
            "rotate the root (`nightlatch-keys rotate`) and add it with `nightlatch-sign repo add-root`",
        ));
    }
    let snap_role = root.role("snapshot").cloned().ok_or_else(|| {
        state(
            dir,
            "root has no snapshot role".into(),
            "rotate to a correct root",
        )
    })?;
    let ts_role = root.role("timestamp").cloned().ok_or_else(|| {
        state(
            dir,
            "root has no timestamp role".into(),
            "rotate to a correct root",
        )
    })?;
    refuse_strangers(
        keys,
        &[("snapshot", &snap_role), ("timestamp", &ts_role)],
        dir,
    )?;

    let meta = snapshot_meta(&repo)?;
    let ts_expires = clock.expires_in(expiries.timestamp);
    let current_ok = repo.snapshot.as_ref().filter(|s| {
        s.signed.meta == meta
            && s.signed.expires() > ts_expires
            && s.tally(&root.keys, &snap_role).is_ok_and(|t| t.met())
    });
    let (snapshot_bytes, snapshot_version, new_snapshot) = match current_ok {
        Some(s) => {
            // Hash the file exactly as stored.
            let path = role_file(dir, s.signed.version(), "snapshot");
            let bytes = crate::fsio::read_limited(&path, crate::metadata::MAX_METADATA_LEN)?;
            (bytes, s.signed.version(), false)
        }
        None => {
            let version = match &repo.snapshot {
                Some(s) => next_version(dir, s.signed.version(), "snapshot")?,
                None => 1,
            };
            let path = role_file(dir, version, "snapshot");
            let mut snap = Signed::new(Snapshot::new(
                version,
                clock.expires_in(expiries.snapshot).unix(),
                meta,
            ))?;
            sign_role(&mut snap, keys, &root.keys, &snap_role, "snapshot", &path)?;
            let bytes = snap.to_bytes()?;
            write_atomic(&path, &bytes, Access::Public, false)?;
            (bytes, version, true)
        }
    };
    let ts_version = match (&repo.timestamp, &repo.snapshot) {
        (Some(t), _) => next_version(dir, t.signed.version(), "timestamp")?,
        (None, None) => 1,
        // Clients hold a timestamp version we no longer know: starting again
        // at 1 would look like a rollback to every one of them.
        (None, Some(_)) => {
            return Err(state(
                dir,
                "metadata/timestamp.json is missing but snapshots were published: its version is unknown".into(),
                "restore metadata/timestamp.json from a backup (or the server); never restart the timestamp at version 1",
            ));
        }
    };
    let info = MetaFile {
        length: Some(snapshot_bytes.len() as u64),
        hashes: Some(Hashes::sha256_of(&snapshot_bytes)),
        ..MetaFile::new(snapshot_version)
    };
    let path = metadata_dir(dir).join("timestamp.json");
    let mut ts = Signed::new(Timestamp::new(ts_version, ts_expires.unix(), info))?;
    sign_role(&mut ts, keys, &root.keys, &ts_role, "timestamp", &path)?;
    write_atomic(&path, &ts.to_bytes()?, Access::Public, true)?;
    Ok(RefreshReport {
        snapshot_version,
        new_snapshot,
        timestamp_version: ts_version,
        timestamp_expires: ts_expires.to_string(),
    })
}
