//! Snapshot metadata: the version of every targets metadata file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metadata::{Expiry, Metadata, SPEC_VERSION, check_header};

/// Version (and optionally length and hashes) of one metadata file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaFile {
    /// Metadata version.
    pub version: u64,
    /// File length in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// File hashes, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
}

/// The `signed` object of snapshot metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Always `snapshot`.
    #[serde(rename = "_type")]
    pub kind: String,
    /// TUF specification version.
    pub spec_version: String,
    /// Version.
    pub version: u64,
    /// Expiry.
    pub expires: Expiry,
    /// `targets.json` and every delegated role's `NAME.json`.
    pub meta: BTreeMap<String, MetaFile>,
}

impl Snapshot {
    /// A snapshot listing `meta`.
    pub fn new(version: u64, expires: Expiry, meta: BTreeMap<String, MetaFile>) -> Self {
        Self {
            kind: Self::TYPE.into(),
            spec_version: SPEC_VERSION.into(),
            version,
            expires,
            meta,
        }
    }
}

impl Metadata for Snapshot {
    const TYPE: &'static str = "snapshot";

    fn version(&self) -> u64 {
        self.version
    }

    fn expires(&self) -> Expiry {
        self.expires
    }

    fn check_with_protocol(
        signed: &serde_json::Value,
    ) -> Result<(), nightlatch_proto::tuf::TufError> {
        nightlatch_proto::tuf::Snapshot::from_json(signed).map(drop)
    }

    fn validate(&self) -> Result<(), String> {
        check_header(&self.kind, Self::TYPE, &self.spec_version, self.version)?;
        if !self.meta.contains_key("targets.json") {
            return Err("meta has no targets.json".into());
        }
        Ok(())
    }
}
