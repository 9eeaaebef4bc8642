//! What an envelope holds, for people (an aligned table) and for scripts (JSON).
//!
//! `inspect --json`, `sign --json` and `verify --json` all print this shape.

use bootloader::envelope::{FORMAT_VERSION, Prefix};
use serde::{Deserialize, Serialize};

/// The parsed (not necessarily verified) contents of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSummary {
    /// Envelope format version (always 1 today).
    pub format_version: u16,
    /// Hardware model the image is for.
    pub hardware_model: String,
    /// Firmware version, `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// Anti-rollback counter.
    pub security_counter: u32,
    /// Payload length in bytes.
    pub payload_len: u32,
    /// SHA-256 of the payload, lowercase hex.
    pub payload_sha256: String,
    /// Total envelope length (1024-byte prefix plus payload).
    pub envelope_len: u64,
    /// Signatures, in envelope order.
    pub signatures: Vec<SignatureSummary>,
}

/// One signature entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureSummary {
    /// Key id (SHA-256 of the raw public key), lowercase hex.
    pub key_id: String,
}

impl EnvelopeSummary {
    /// Summarise a parsed prefix.
    pub fn from_prefix(prefix: &Prefix) -> Self {
        let h = &prefix.header;
        Self {
            format_version: FORMAT_VERSION,
            hardware_model: h.model.to_string(),
            version: h.version.to_string(),
            security_counter: h.security_counter,
            payload_len: h.payload_len,
            payload_sha256: hex::encode(h.payload_sha256),
            envelope_len: h.envelope_len(),
            signatures: prefix
                .signatures()
                .iter()
                .map(|s| SignatureSummary {
                    key_id: hex::encode(s.key_id),
                })
                .collect(),
        }
    }

    /// A two-column table, labels aligned.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, String)> = vec![
            ("format version".into(), self.format_version.to_string()),
            ("hardware model".into(), self.hardware_model.clone()),
            ("version".into(), self.version.clone()),
            ("security counter".into(), self.security_counter.to_string()),
            (
                "payload length".into(),
                format!("{} bytes", self.payload_len),
            ),
            ("payload sha256".into(), self.payload_sha256.clone()),
            (
                "envelope length".into(),
                format!("{} bytes", self.envelope_len),
            ),
            ("signatures".into(), self.signatures.len().to_string()),
        ];
        for (i, s) in self.signatures.iter().enumerate() {
            rows.push((format!("  key id #{}", i + 1), s.key_id.clone()));
        }
        let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        rows.iter()
            .map(|(label, value)| format!("{label:<width$}  {value}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
