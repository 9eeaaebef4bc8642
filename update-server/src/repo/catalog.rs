//! What the image repository holds, as the director needs it: every target
//! (top-level and delegated), with its `custom.nightlatch` description —
//! firmware images, and patches from one version to another.

use nightlatch_repo::metadata::Metadata as _;
use std::collections::BTreeMap;

use nightlatch_repo::metadata::TargetFile;
use nightlatch_repo::repo::Repo;
use nightlatch_repo::repo::target::{Custom, EnvelopeRef, Kind};

/// One published target.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogTarget {
    /// Target name (`model/version.nlfw`, `model/version.from-base.nldp`).
    pub name: String,
    /// The role that signed it (`targets` or a model's delegated role).
    pub role: String,
    /// Length, hashes and custom metadata, exactly as signed.
    pub file: TargetFile,
    /// The file's SHA-256 as hex (what its stored name and the director's
    /// cache keys use), written once when the catalog is read.
    pub sha256_hex: String,
    /// Firmware or patch.
    pub kind: Kind,
    /// Hardware model.
    pub hardware_model: String,
    /// Version of the image it installs.
    pub version: String,
    /// Security counter of that image.
    pub security_counter: u32,
    /// For a patch: the envelope it applies to.
    pub base: Option<EnvelopeRef>,
    /// For a patch: the envelope it rebuilds.
    pub target: Option<EnvelopeRef>,
}

impl CatalogTarget {
    /// SHA-256 of the file, hex.
    pub fn sha256(&self) -> &str {
        &self.sha256_hex
    }
}

/// Every published target, and the metadata versions they came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    targets: BTreeMap<String, CatalogTarget>,
    /// Newest version of each role (`root`, `targets`, `snapshot`, `timestamp`, delegated roles).
    pub versions: BTreeMap<String, u64>,
}

impl Catalog {
    /// Read the repository's newest metadata.
    pub fn from_repo(repo: &Repo) -> Self {
        let mut c = Self::default();
        c.versions.insert("root".into(), repo.root.signed.version());
        if let Some(s) = &repo.snapshot {
            c.versions.insert("snapshot".into(), s.signed.version());
        }
        if let Some(t) = &repo.timestamp {
            c.versions.insert("timestamp".into(), t.signed.version());
        }
        let mut add = |role: &str, targets: &nightlatch_repo::metadata::Targets| {
            for (name, file) in &targets.targets {
                let Some(custom) = Custom::from_target(file) else {
                    continue;
                };
                c.targets.insert(
                    name.clone(),
                    CatalogTarget {
                        name: name.clone(),
                        role: role.to_owned(),
                        file: file.clone(),
                        sha256_hex: file.sha256_hex().unwrap_or_default(),
                        kind: custom.kind,
                        hardware_model: custom.hardware_model,
                        version: custom.version,
                        security_counter: custom.security_counter,
                        base: custom.base,
                        target: custom.target,
                    },
                );
            }
        };
        if let Some(top) = &repo.targets {
            add("targets", &top.signed);
        }
        for (role, meta) in &repo.delegated {
            add(role, &meta.signed);
        }
        if let Some(top) = &repo.targets {
            c.versions.insert("targets".into(), top.signed.version());
        }
        for (role, meta) in &repo.delegated {
            c.versions.insert(role.clone(), meta.signed.version());
        }
        c
    }

    /// A target by name.
    pub fn get(&self, name: &str) -> Option<&CatalogTarget> {
        self.targets.get(name)
    }

    /// A firmware image by name.
    pub fn firmware(&self, name: &str) -> Option<&CatalogTarget> {
        self.get(name).filter(|t| t.kind == Kind::Firmware)
    }

    /// Every target.
    pub fn all(&self) -> impl Iterator<Item = &CatalogTarget> {
        self.targets.values()
    }

    /// A patch that rebuilds image `image` from version `base_version`.
    pub fn patch_for(&self, image: &str, base_version: &str) -> Option<&CatalogTarget> {
        let img = self.firmware(image)?;
        self.targets.values().find(|p| {
            p.kind == Kind::Patch
                && p.hardware_model == img.hardware_model
                && p.target.as_ref().is_some_and(|t| t.sha256 == img.sha256())
                && p.base.as_ref().is_some_and(|b| b.version == base_version)
        })
    }
}
