//! The Uptane-style director: for each lock, TUF targets metadata signed by
//! the director's online `targets` key saying which image it should install
//! now (empty: none), and a signed time bound to its check-in's nonce.
//!
//! Each image target is copied from the image repository (same name, length,
//! hashes, `custom.nightlatch`) and gets a `custom.director` object
//! ([`DirectorCustom`]; its JSON is shown in [`nightlatch_proto::custom`])
//! binding it to the lock and carrying the install policy. When the lock
//! runs the patch's base, the patch target is listed too, with
//! `"role": "patch"` and `"patch_for": "<image target>"`: the lock downloads
//! the patch, rebuilds the image and checks it against the image target.
//!
//! The metadata only changes when the assignment (or policy) does, so it is
//! signed once per change and cached per lock; what makes every response
//! fresh is the [`SignedTime`](crate::wire::SignedTime), whose Merkle leaf
//! names the metadata's version and hash.

use nightlatch_repo::metadata::Metadata as _;
use std::time::Duration;

use anyhow::Context;
use nightlatch_proto::custom::DirectorCustom;
use nightlatch_repo::keysource::{FileKey, KeySource};
use nightlatch_repo::metadata::{Expiry, KeyIdOf, Root, Signed, TargetFile, Targets};
use sha2::{Digest, Sha256};

use crate::repo::catalog::CatalogTarget;
use crate::rollouts::engine::Assignment;
use crate::store::devices::DirectorCache;
use crate::wire::{InstallPolicy, MerkleTree, SignedTime, time_message};

/// The director's online keys and its newest root.
#[derive(Debug)]
pub struct Director {
    root: Signed<Root>,
    root_bytes: Vec<u8>,
    targets_key: FileKey,
    time_key: FileKey,
    time_public: ed25519_dalek::VerifyingKey,
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
    let id = key.public().key_id();
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
            root.signed.version()
        );
        anyhow::ensure!(
            role_has(&root.signed, "timestamp", &time_key),
            "the director timestamp key is not a timestamp key of director root version {}",
            root.signed.version()
        );
        let targets_keyid = targets_key.public().key_id().to_string();
        // The lock checks the signed time with Ed25519 (nightlatch_proto::wire).
        let time_public = nightlatch_repo::keysource::ed25519_public(&time_key)
            .map_err(|e| anyhow::anyhow!("director timestamp key: {e}"))?;
        Ok(Self {
            root,
            root_bytes,
            targets_key,
            time_key,
            time_public,
            targets_keyid,
            targets_expires,
        })
    }

    /// Newest director root version.
    pub fn root_version(&self) -> u64 {
        self.root.signed.version()
    }

    /// Newest director root, as served.
    pub fn root_bytes(&self) -> &[u8] {
        &self.root_bytes
    }

    /// The verifying key of the signed time.
    pub fn time_public_key(&self) -> &ed25519_dalek::VerifyingKey {
        &self.time_public
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
        let mut targets = Targets::new(u64::try_from(version).unwrap_or(1), expires.unix());
        if let Some(r) = resolved {
            let rollout = r.assignment.rollout_id.as_str();
            let image = DirectorCustom::image(device_id, hardware_model, rollout, r.policy.clone());
            targets
                .targets
                .insert(r.image.name.clone(), with_director(&r.image.file, &image)?);
            if let Some(p) = r.patch {
                let patch =
                    DirectorCustom::patch(device_id, hardware_model, rollout, &r.image.name);
                targets
                    .targets
                    .insert(p.name.clone(), with_director(&p.file, &patch)?);
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
        let Some(tree) = MerkleTree::build(leaves) else {
            return Ok(Vec::new());
        };
        let sig = nightlatch_repo::keysource::sign_ed25519(
            &self.time_key,
            &time_message(time_secs, tree.root()),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(tree.signed_times(time_secs, &sig))
    }
}

/// `file` with `director` as its `custom.director`.
fn with_director(file: &TargetFile, director: &DirectorCustom) -> anyhow::Result<TargetFile> {
    Ok(TargetFile {
        custom: Some(director.add_to(file.custom.as_ref())?),
        ..file.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden(name: &str) -> serde_json::Value {
        let text = match name {
            "director_image" => {
                include_str!("../../../nightlatch-proto/src/wire/golden/director_image.json")
            }
            "director_patch" => {
                include_str!("../../../nightlatch-proto/src/wire/golden/director_patch.json")
            }
            "nightlatch_firmware" => {
                include_str!("../../../nightlatch-proto/src/wire/golden/nightlatch_firmware.json")
            }
            _ => include_str!("../../../nightlatch-proto/src/wire/golden/nightlatch_patch.json"),
        };
        serde_json::from_str(text).unwrap()
    }

    /// A director target: the image repository's `custom` kept as it is,
    /// `custom.director` byte for byte what locks in the field parse (the
    /// text the `json!` builder of the version before wrote).
    #[test]
    fn director_targets_carry_the_pinned_custom_director() {
        let policy: InstallPolicy =
            serde_json::from_value(golden("director_image")["policy"].clone()).unwrap();
        assert!(policy.quiet_hours.is_some() && policy.security_deadline.is_some());
        for (release, director, golden_name) in [
            (
                "nightlatch_firmware",
                DirectorCustom::image("lock-0001", "nl-lock-v2", "ro-1", policy),
                "director_image",
            ),
            (
                "nightlatch_patch",
                DirectorCustom::patch("lock-0001", "nl-lock-v2", "ro-1", "nl-lock-v2/1.4.2.nlfw"),
                "director_patch",
            ),
        ] {
            let file = TargetFile::new(
                6024,
                nightlatch_repo::metadata::Hashes::from_hex([("sha256", "ab".repeat(32).as_str())])
                    .unwrap(),
                Some(serde_json::json!({ "nightlatch": golden(release) })),
            );
            let out = with_director(&file, &director).unwrap();
            let custom = out.custom.unwrap();
            assert_eq!(custom["nightlatch"], golden(release));
            assert_eq!(
                serde_json::to_string(&custom["director"]).unwrap(),
                serde_json::to_string(&golden(golden_name)).unwrap()
            );
            assert_eq!((out.length, out.hashes), (file.length, file.hashes));
        }
    }

    /// `custom.nightlatch` as the release tools write it
    /// (`nightlatch_repo::repo::target::Custom`) is the proto type's JSON.
    #[test]
    fn release_tools_write_the_proto_custom_nightlatch() {
        use nightlatch_proto::custom::NightlatchCustom;
        use nightlatch_repo::repo::target::Custom;
        for name in ["nightlatch_firmware", "nightlatch_patch"] {
            let v = golden(name);
            let tools: Custom = serde_json::from_value(v.clone()).unwrap();
            let proto: NightlatchCustom = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(serde_json::to_value(&tools).unwrap(), v);
            assert_eq!(serde_json::to_value(&proto).unwrap(), v);
        }
    }
}
