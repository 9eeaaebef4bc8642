//! Add envelopes to the repository: each goes into the delegated role of its
//! hardware model (or top-level targets when the model has no delegation),
//! signed by the release keys given; the targets metadata is written as a
//! new version. Clients see it after the next `repo refresh`. Delta patches
//! go in beside them (see [`crate::repo::patch`]).

use crate::metadata::Metadata as _;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::fsio::{Access, create_dir, write_atomic};
use crate::keysource::KeySource;
use crate::metadata::{Expiry, KeyId, PublicKey, RoleKeys, Signed, Targets};
use crate::repo::patch::{self, KnownFirmware};
use crate::repo::signer::{refuse_strangers, sign_role};
use crate::repo::target::{Custom, PublishFile, TargetEntry, read_file};
use crate::repo::{Expiries, Repo, role_file, target_file};

/// What `publish` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PublishReport {
    /// Targets added.
    pub added: Vec<String>,
    /// Targets that were already published with the same content.
    pub unchanged: Vec<String>,
    /// Metadata files written.
    pub metadata: Vec<String>,
    /// Every target the new metadata lists, as `ROLE: TARGET`: what the
    /// release key(s) signed (after verifying the metadata it builds on).
    pub signed_targets: Vec<String>,
}

/// A role being rewritten: its keys and its next metadata.
struct Pending {
    keys: BTreeMap<KeyId, PublicKey>,
    role: RoleKeys,
    next: Targets,
}

/// Publish `files` (envelopes) into the repository at `dir`, signing with
/// `keys`; the targets metadata written expires `expiries.targets` after
/// `clock`'s now. With no files, re-sign top-level targets (new version,
/// fresh expiry).
pub fn publish(
    dir: &Path,
    keys: &[Box<dyn KeySource>],
    files: &[PathBuf],
    expiries: &Expiries,
    clock: &dyn Clock,
) -> Result<PublishReport> {
    let repo = Repo::load_verified(dir)?;
    let mut entries = Vec::new();
    let mut patches = Vec::new();
    for f in files {
        match read_file(f)? {
            PublishFile::Firmware(e) => entries.push(e),
            PublishFile::Patch(p) => patches.push(p),
        }
    }
    if !patches.is_empty() {
        let known = known_firmware(&repo, &entries);
        for p in patches {
            entries.push(patch::resolve(p, &known, dir)?);
        }
    }
    let expires = clock.expires_in(expiries.targets);
    let top = repo
        .targets
        .as_ref()
        .map(|t| t.signed.clone())
        .unwrap_or_else(|| Targets::new(0, expires.unix()));
    let top_role = repo
        .root
        .signed
        .role("targets")
        .cloned()
        .ok_or_else(|| Error::RepoState {
            path: dir.to_owned(),
            reason: "the root has no targets role".into(),
            help: "the root is invalid; rotate to a correct one".into(),
        })?;

    let mut pending: BTreeMap<String, Pending> = BTreeMap::new();
    let mut report = PublishReport::default();
    if entries.is_empty() {
        pending.insert(
            "targets".into(),
            pending_for("targets", &repo, &top, &top_role, expires)?,
        );
    }
    let mut changed = BTreeSet::new();
    for entry in &entries {
        let role = if top.delegation(&entry.model).is_some() {
            entry.model.as_str()
        } else {
            "targets"
        };
        if !pending.contains_key(role) {
            let p = pending_for(role, &repo, &top, &top_role, expires)?;
            pending.insert(role.to_owned(), p);
        }
        let Some(slot) = pending.get_mut(role) else {
            continue;
        };
        if add_target(&mut slot.next, entry, &mut report)? {
            changed.insert(role.to_owned());
        }
    }
    // Roles none of whose targets changed are left alone.
    if !entries.is_empty() {
        pending.retain(|name, _| changed.contains(name));
    }
    if pending.is_empty() {
        return Ok(report);
    }
    let roles: Vec<(&str, &RoleKeys)> =
        pending.iter().map(|(n, p)| (n.as_str(), &p.role)).collect();
    refuse_strangers(keys, &roles, dir)?;

    let mut signed_roles = Vec::new();
    for (name, p) in pending {
        report
            .signed_targets
            .extend(p.next.targets.keys().map(|t| format!("{name}: {t}")));
        let path = role_file(dir, p.next.version(), &name);
        let mut meta = Signed::new(p.next)?;
        sign_role(&mut meta, keys, &p.keys, &p.role, &name, &path)?;
        signed_roles.push((path, meta));
    }
    for entry in &entries {
        if report.added.contains(&entry.name) {
            write_target(dir, entry)?;
        }
    }
    for (path, meta) in signed_roles {
        write_atomic(&path, &meta.to_bytes()?, Access::Public, false)?;
        report.metadata.push(path.display().to_string());
    }
    Ok(report)
}

/// Every firmware target already published or being published now.
fn known_firmware(repo: &Repo, entries: &[TargetEntry]) -> Vec<KnownFirmware> {
    let published = repo
        .targets
        .iter()
        .map(|t| &t.signed)
        .chain(repo.delegated.values().map(|t| &t.signed))
        .flat_map(|t| t.targets.iter().map(|(n, f)| (n.clone(), f.clone())));
    let new = entries.iter().map(|e| {
        let prefix = e
            .bytes
            .get(..bootloader::envelope::PREFIX_LEN)
            .map(<[u8]>::to_vec);
        (e.name.clone(), e.info.clone(), prefix)
    });
    published
        .map(|(n, f)| (n, f, None))
        .chain(new)
        .filter_map(|(name, file, prefix)| {
            let custom = Custom::from_target(&file)?;
            Some(KnownFirmware {
                name,
                file,
                custom,
                prefix,
            })
        })
        .collect()
}

fn pending_for(
    role: &str,
    repo: &Repo,
    top: &Targets,
    top_role: &RoleKeys,
    expires: Expiry,
) -> Result<Pending> {
    let (current, keys, role_keys) = if role == "targets" {
        (
            Some(top.clone()),
            repo.root.signed.keys.clone(),
            top_role.clone(),
        )
    } else {
        let d = top.delegations.clone().unwrap_or_default();
        let role_keys = top
            .delegation(role)
            .map(|r| r.keys.clone())
            .unwrap_or(RoleKeys {
                keyids: Vec::new(),
                threshold: 1,
            });
        (
            repo.delegated.get(role).map(|t| t.signed.clone()),
            d.keys,
            role_keys,
        )
    };
    let mut next = current.unwrap_or_else(|| Targets::new(0, expires.unix()));
    let version = crate::repo::next_version(&repo.dir, next.version(), role)?;
    next.set_header(version, expires);
    Ok(Pending {
        keys,
        role: role_keys,
        next,
    })
}

/// Add `entry` to `next`; false if it is already there with the same content.
fn add_target(next: &mut Targets, entry: &TargetEntry, report: &mut PublishReport) -> Result<bool> {
    match next.targets.get(&entry.name) {
        Some(existing)
            if existing.hashes == entry.info.hashes && existing.length == entry.info.length =>
        {
            report.unchanged.push(entry.name.clone());
            Ok(false)
        }
        Some(_) => Err(Error::TargetConflict {
            target: entry.name.clone(),
        }),
        None => {
            next.targets.insert(entry.name.clone(), entry.info.clone());
            report.added.push(entry.name.clone());
            Ok(true)
        }
    }
}

fn write_target(dir: &Path, entry: &TargetEntry) -> Result<()> {
    let sha = entry.info.sha256_hex().unwrap_or_default();
    let path = target_file(dir, &entry.name, &sha);
    if let Some(parent) = path.parent() {
        create_dir(parent)?;
    }
    write_atomic(&path, &entry.bytes, Access::Public, true)?;
    Ok(())
}
