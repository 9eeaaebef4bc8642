//! Snapshot metadata: the version of every targets metadata file.

use crate::metadata::{Metadata, Snapshot, metadata_header};

impl Metadata for Snapshot {
    const TYPE: &'static str = "snapshot";
    metadata_header!();

    fn validate(&self) -> Result<(), String> {
        if !self.meta.contains_key("targets.json") {
            return Err("meta has no targets.json".into());
        }
        Ok(())
    }
}
