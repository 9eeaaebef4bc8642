//! Timestamp metadata: the current snapshot, re-signed often by an online key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metadata::{Expiry, MetaFile, Metadata, SPEC_VERSION, check_header};

/// The `signed` object of timestamp metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamp {
    /// Always `timestamp`.
    #[serde(rename = "_type")]
    pub kind: String,
    /// TUF specification version.
    pub spec_version: String,
    /// Version.
    pub version: u64,
    /// Expiry.
    pub expires: Expiry,
    /// Exactly `snapshot.json`.
    pub meta: BTreeMap<String, MetaFile>,
}

impl Timestamp {
    /// A timestamp naming `snapshot`.
    pub fn new(version: u64, expires: Expiry, snapshot: MetaFile) -> Self {
        Self {
            kind: Self::TYPE.into(),
            spec_version: SPEC_VERSION.into(),
            version,
            expires,
            meta: BTreeMap::from([("snapshot.json".to_owned(), snapshot)]),
        }
    }

    /// The snapshot it names.
    pub fn snapshot(&self) -> Option<&MetaFile> {
        self.meta.get("snapshot.json")
    }
}

impl Metadata for Timestamp {
    const TYPE: &'static str = "timestamp";

    fn version(&self) -> u64 {
        self.version
    }

    fn expires(&self) -> Expiry {
        self.expires
    }

    fn check_with_protocol(
        signed: &serde_json::Value,
    ) -> Result<(), nightlatch_proto::tuf::TufError> {
        nightlatch_proto::tuf::Timestamp::from_json(signed).map(drop)
    }

    fn validate(&self) -> Result<(), String> {
        check_header(&self.kind, Self::TYPE, &self.spec_version, self.version)?;
        if self.meta.len() != 1 || self.snapshot().is_none() {
            return Err("meta must name exactly snapshot.json".into());
        }
        Ok(())
    }
}
