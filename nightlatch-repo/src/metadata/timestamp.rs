//! Timestamp metadata: the current snapshot, re-signed often by an online
//! key. The protocol reader already requires `meta` to name exactly
//! `snapshot.json`.

use crate::metadata::{Metadata, Timestamp, metadata_header};

impl Metadata for Timestamp {
    const TYPE: &'static str = "timestamp";
    metadata_header!();

    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}
