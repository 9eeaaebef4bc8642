//! Delegate one hardware model's targets to its own release keys: the
//! top-level targets role names a role `<model>` trusted only for the paths
//! `<model>/*`, terminating, so the release key of one lock model cannot sign
//! for another.

use crate::metadata::Metadata as _;
use crate::metadata::RoleKeys;
use std::path::Path;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::fsio::{Access, write_atomic};
use crate::keysource::KeySource;
use crate::metadata::targets::check_role_name;
use crate::metadata::{DelegatedRole, KeyIdOf, PublicKey, Signed, Targets};
use crate::repo::signer::{refuse_strangers, sign_role};
use crate::repo::{Expiries, Repo, role_file};

/// Add (or replace) the delegation for `model` to `delegate_keys` with
/// `threshold`, signing the new top-level targets with `keys` (expiring
/// `expiries.targets` after `clock`'s now). Returns the metadata file written.
pub fn delegate(
    dir: &Path,
    keys: &[Box<dyn KeySource>],
    model: &str,
    delegate_keys: &[PublicKey],
    threshold: u32,
    expiries: &Expiries,
    clock: &dyn Clock,
) -> Result<String> {
    let state = |reason: String, help: &str| Error::RepoState {
        path: dir.to_owned(),
        reason,
        help: help.into(),
    };
    crate::params::parse_model(model)?;
    check_role_name(model).map_err(|r| state(r, "choose another hardware model name"))?;
    if delegate_keys.is_empty() || threshold == 0 || threshold as usize > delegate_keys.len() {
        return Err(state(
            format!(
                "threshold {threshold} with {} delegated key(s)",
                delegate_keys.len()
            ),
            "pass at least one --delegate-key and a --threshold between 1 and their number",
        ));
    }
    let repo = Repo::load_verified(dir)?;
    let expires = clock.expires_in(expiries.targets);
    let mut next = repo
        .targets
        .as_ref()
        .map(|t| t.signed.clone())
        .unwrap_or_else(|| Targets::new(0, expires.unix()));
    let version = crate::repo::next_version(dir, next.version(), "targets")?;
    next.set_header(version, expires);
    let mut d = next.delegations.take().unwrap_or_default();
    let publics: &[PublicKey] = delegate_keys;
    let mut keyids = Vec::new();
    for key in publics {
        let id = key.key_id();
        if keyids.contains(&id) {
            return Err(state(
                "a --delegate-key is given twice".into(),
                "pass each key once",
            ));
        }
        keyids.push(id.clone());
        d.keys.insert(id, key.clone());
    }
    let role = DelegatedRole {
        name: model.to_owned(),
        keys: RoleKeys { keyids, threshold },
        terminating: true,
        paths: Some(vec![format!("{model}/*")]),
        path_hash_prefixes: None,
    };
    match d.roles.iter_mut().find(|r| r.name == model) {
        Some(existing) => *existing = role,
        None => d.roles.push(role),
    }
    let used: Vec<_> = d.roles.iter().flat_map(|r| r.keys.keyids.clone()).collect();
    d.keys.retain(|id, _| used.contains(id));
    next.delegations = Some(d);

    let top_role = repo.root.signed.role("targets").cloned().ok_or_else(|| {
        state(
            "the root has no targets role".into(),
            "rotate to a correct root",
        )
    })?;
    refuse_strangers(keys, &[("targets", &top_role)], dir)?;
    let path = role_file(dir, next.version(), "targets");
    let mut meta = Signed::new(next)?;
    sign_role(
        &mut meta,
        keys,
        &repo.root.signed.keys,
        &top_role,
        "targets",
        &path,
    )?;
    write_atomic(&path, &meta.to_bytes()?, Access::Public, false)?;
    Ok(path.display().to_string())
}
