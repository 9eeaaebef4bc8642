//! The Uptane-style director: for each lock, TUF targets metadata signed by
//! the director's online `targets` key saying which image it should install
//! now (empty: none), and a signed time bound to its check-in's nonce.
//!
//! Each image target is copied from the image repository (same name, length,
//! hashes, `custom.nightlatch`) and gets a `custom.director` object binding
//! it to the lock and carrying the install policy:
//!
//! ```json
//! "nl-lock-v2/1.4.2.nlfw": { "length": 6024, "hashes": {"sha256": "…"}, "custom": {
//!     "nightlatch": { "kind": "firmware", "hardware_model": "nl-lock-v2", "version": "1.4.2", … },
//!     "director": { "device_id": "lock-0001", "hardware_model": "nl-lock-v2",
//!                   "rollout": "ro-…", "role": "image",
//!                   "policy": { "quiet_hours": {"start": "01:00", "end": "05:00"},
//!                               "blackout_dates": [], "security_deadline": 1767225600 } } } }
//! ```
//!
//! When the lock runs the patch's base, the patch target is listed too, with
//! `"role": "patch"` and `"patch_for": "<image target>"`: the lock downloads
//! the patch, rebuilds the image and checks it against the image target.
//!
//! The metadata only changes when the assignment (or policy) does, so it is
//! signed once per change and cached per lock; what makes every response
//! fresh is the [`SignedTime`](crate::wire::SignedTime), whose Merkle leaf
//! names the metadata's version and hash.

use std::time::Duration;

use anyhow::Context;
use keys_ceremony::keysource::{FileKey, KeySource};
use keys_ceremony::metadata::{Expiry, PublicKey, Root, Signed, TargetFile, Targets};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::repo::catalog::CatalogTarget;
use crate::rollouts::engine::Assignment;
use crate::store::devices::DirectorCache;
use crate::wire::{InstallPolicy, SignedTime, b64, merkle_tree, time_message};

/// The director's online keys and its newest root.
#[derive(Debug)]
pub struct Director {
    root: Signed<Root>,
    root_bytes: Vec<u8>,
    targets_key: FileKey,
    time_key: FileKey,
    targets_keyid: String,
    targets_expires: Duration,
}

/// What a lock is told, resolved against the image repository.
#[derive(Debug, Clone)]
pub struct Resolved<'a> {
    /// The assignment.
    pub assignment: &'a Assignment,
    /// Its image target.
    pub image: &'a CatalogTarget,
    /// Its patch target, if any.
    pub patch: Option<&'a CatalogTarget>,
    /// Install policy.
    pub policy: InstallPolicy,
}

/// A string naming exactly what a lock's director metadata says (so it is
/// re-signed only when that changes).
pub fn assignment_key(resolved: Option<&Resolved<'_>>) -> String {
    match resolved {
        None => "none".into(),
        Some(r) => {
            let policy = serde_json::to_vec(&r.policy).unwrap_or_default();
            format!(
                "{}|{}@{}|{}|{}",
                r.assignment.rollout_id,
                r.image.name,
                r.image.sha256(),
                r.patch.map_or("-", |p| p.sha256()),
                hex::encode(&Sha256::digest(&policy)[..8])
            )
        }
    }
}

fn role_has(root: &Root, role: &str, key: &dyn KeySource) -> bool {
    let id = PublicKey::ed25519(key.public_key()).key_id();
    root.role(role).is_some_and(|r| r.keyids.contains(&id))
}

impl Director {
    /// A director with `root` (its newest root), refusing keys the root does
    /// not name for their role.
    pub fn new(
        root_bytes: Vec<u8>,
        targets_key: FileKey,
        time_key: FileKey,
        targets_expires: Duration,
    ) -> anyhow::Result<Self> {
        let root = Signed::<Root>::parse(&root_bytes, std::path::Path::new("director root"))
            .map_err(|e| anyhow::anyhow!("director root: {e}"))?;
        anyhow::ensure!(
            role_has(&root.signed, "targets", &targets_key),
            "the director targets key is not a targets key of director root version {}",
            root.signed.version
        );
        anyhow::ensure!(
            role_has(&root.signed, "timestamp", &time_key),
            "the director timestamp key is not a timestamp key of director root version {}",
            root.signed.version
        );
        let targets_keyid = PublicKey::ed25519(targets_key.public_key())
            .key_id()
            .to_string();
        Ok(Self {
            root,
            root_bytes,
            targets_key,
            time_key,
            targets_keyid,
            targets_expires,
        })
    }

    /// Newest director root version.
    pub fn root_version(&self) -> u64 {
        self.root.signed.version
    }

    /// Newest director root, as served.
    pub fn root_bytes(&self) -> &[u8] {
        &self.root_bytes
    }

    /// The verifying key of the signed time.
    pub fn time_public_key(&self) -> &ed25519_dalek::VerifyingKey {
        self.time_key.public_key()
    }

    /// What a lock's cached metadata must match to be reused: what it
    /// assigns and which key signs it (`assignment|signer`), so metadata
    /// signed by a key rotated out of the director root is re-signed at once.
    pub fn cache_key(&self, resolved: Option<&Resolved<'_>>) -> String {
        format!(
            "{}|{}",
            assignment_key(resolved),
            self.targets_keyid.get(..16).unwrap_or_default()
        )
    }

    /// TUF key id of the director targets key (metadata signed by another
    /// key — before a key rotation — is re-signed).
    pub fn targets_keyid(&self) -> &str {
        &self.targets_keyid
    }

    /// The verifying key of director targets.
    pub fn targets_public_key(&self) -> &ed25519_dalek::VerifyingKey {
        self.targets_key.public_key()
    }

    /// Sign new targets metadata (version `version`) for a lock.
    pub fn sign_targets(
        &self,
        device_id: &str,
        hardware_model: &str,
        resolved: Option<&Resolved<'_>>,
        version: i64,
        now_ms: i64,
    ) -> anyhow::Result<DirectorCache> {
        let now_secs = u64::try_from(now_ms.div_euclid(1000)).unwrap_or(0);
        let expires = Expiry::from_unix(now_secs).after(self.targets_expires);
        let mut targets = Targets::new(u64::try_from(version).unwrap_or(1), expires);
        if let Some(r) = resolved {
            let rollout = r.assignment.rollout_id.as_str();
            let image_dir =
                director_custom(device_id, hardware_model, rollout, Bound::Image(&r.policy))?;
            targets.targets.insert(
                r.image.name.clone(),
                with_director(&r.image.file, image_dir),
            );
            if let Some(p) = r.patch {
                let patch_dir = director_custom(
                    device_id,
                    hardware_model,
                    rollout,
                    Bound::Patch(&r.image.name),
                )?;
                targets
                    .targets
                    .insert(p.name.clone(), with_director(&p.file, patch_dir));
            }
        }
        let mut meta = Signed::new(targets).map_err(|e| anyhow::anyhow!("{e}"))?;
        meta.sign_with(&self.targets_key, std::path::Path::new("director targets"))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let canonical = meta.canonical().map_err(|e| anyhow::anyhow!("{e}"))?;
        // Stored and sent compact: the signature covers the canonical form,
        // which whitespace does not change.
        let bytes = meta.to_bytes().map_err(|e| anyhow::anyhow!("{e}"))?;
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).context("re-reading metadata")?;
        let text = serde_json::to_string(&value)?;
        Ok(DirectorCache {
            version,
            key: Some(self.cache_key(resolved)),
            expires: Some(
                i64::try_from(expires.unix())
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1000),
            ),
            sha256: Some(hex::encode(Sha256::digest(&canonical))),
            targets: Some(text),
        })
    }

    /// One signature over the Merkle root of `leaves` and `time_secs`; the
    /// [`SignedTime`] of each leaf.
    pub fn sign_time(
        &self,
        time_secs: u64,
        leaves: &[[u8; 32]],
    ) -> anyhow::Result<Vec<SignedTime>> {
        let Some((root, paths)) = merkle_tree(leaves) else {
            return Ok(Vec::new());
        };
        let sig = self
            .time_key
            .sign(&time_message(time_secs, &root))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let root_b64 = b64::encode(root);
        let sig_b64 = b64::encode(sig.to_bytes());
        Ok(paths
            .into_iter()
            .enumerate()
            .map(|(i, path)| SignedTime {
                time: time_secs,
                merkle_root: root_b64.clone(),
                index: u32::try_from(i).unwrap_or(u32::MAX),
                path: path.iter().map(b64::encode).collect(),
                sig: sig_b64.clone(),
            })
            .collect())
    }
}

/// What a director target is bound to: the image (with its install
/// policy), or a patch for the image of that name.
enum Bound<'a> {
    Image(&'a InstallPolicy),
    Patch(&'a str),
}

/// The `custom.director` object of a director target.
fn director_custom(
    device_id: &str,
    hardware_model: &str,
    rollout: &str,
    bound: Bound<'_>,
) -> anyhow::Result<serde_json::Value> {
    let role = match bound {
        Bound::Image(_) => "image",
        Bound::Patch(_) => "patch",
    };
    let mut v = json!({
        "device_id": device_id,
        "hardware_model": hardware_model,
        "rollout": rollout,
        "role": role,
    });
    match bound {
        Bound::Image(policy) => v["policy"] = serde_json::to_value(policy)?,
        Bound::Patch(image) => v["patch_for"] = json!(image),
    }
    Ok(v)
}

fn with_director(file: &TargetFile, director: serde_json::Value) -> TargetFile {
    let mut custom = match &file.custom {
        Some(serde_json::Value::Object(m)) => m.clone(),
        _ => serde_json::Map::new(),
    };
    custom.insert("director".into(), director);
    TargetFile {
        length: file.length,
        hashes: file.hashes.clone(),
        custom: Some(serde_json::Value::Object(custom)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::QuietWindow;

    /// `custom.director` as locks in the field parse it, byte for byte
    /// (the same files pin `nightlatch_proto::custom`).
    #[test]
    fn custom_director_json_is_pinned() {
        let policy = InstallPolicy {
            quiet_hours: Some(QuietWindow {
                start: "01:00".into(),
                end: "05:00".into(),
            }),
            blackout_dates: vec!["2030-01-05".into()],
            time_zone: Some("Europe/Berlin".into()),
            security_deadline: Some(1_893_456_000),
        };
        let image =
            director_custom("lock-0001", "nl-lock-v2", "ro-1", Bound::Image(&policy)).unwrap();
        assert_eq!(
            serde_json::to_string(&image).unwrap(),
            include_str!("../../../nightlatch-proto/src/wire/golden/director_image.json")
                .trim_end()
        );
        let patch = director_custom(
            "lock-0001",
            "nl-lock-v2",
            "ro-1",
            Bound::Patch("nl-lock-v2/1.4.2.nlfw"),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&patch).unwrap(),
            include_str!("../../../nightlatch-proto/src/wire/golden/director_patch.json")
                .trim_end()
        );
    }
}
