//! The ceremony transcript: one JSON line per operation (who, what, which
//! keys, file hashes), each line carrying the SHA-256 of the line before it.
//! Lines are only ever appended, after the existing chain has been checked,
//! so an edited or removed line in the middle breaks the chain.
//!
//! What the chain does not prove: the hashes are unkeyed, so someone who can
//! rewrite the whole file can recompute it, and dropping lines from the end
//! leaves a valid (shorter) chain. Keyholders should record the hash of the
//! last line (`sha256sum` of it) in their own ceremony notes after each
//! operation, and keep the transcript on write-once media. Appends are not locked against a second
//! concurrent ceremony process (one operator at a time is the ceremony rule).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::fsio::read_limited;

/// Largest transcript read.
const MAX_TRANSCRIPT: u64 = 16 * 1024 * 1024;
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// File name used when no `--transcript` is given: beside the root files.
pub const DEFAULT_NAME: &str = "transcript.jsonl";

/// One transcript line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// 1, 2, 3 … in file order.
    pub seq: u64,
    /// When (UTC, whole seconds).
    pub time: String,
    /// Who ran the operation (`--who`, or the login name).
    pub who: String,
    /// `init`, `sign`, `rotate`, `keygen`, …
    pub operation: String,
    /// Which repository or file it concerns.
    pub subject: String,
    /// Root version concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// TUF key ids involved (signer, keys added …).
    pub key_ids: Vec<String>,
    /// SHA-256 of the file before the operation, if it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256_before: Option<String>,
    /// SHA-256 of the file after the operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256_after: Option<String>,
    /// Free text (e.g. the key source used, never a secret).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// SHA-256 of the previous line (zeros for the first).
    pub prev: String,
}

/// What the caller fills in; the sequence, time and chain hash are added.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// Who.
    pub who: String,
    /// Operation.
    pub operation: String,
    /// Subject.
    pub subject: String,
    /// Root version.
    pub version: Option<u64>,
    /// Key ids.
    pub key_ids: Vec<String>,
    /// Hash before.
    pub sha256_before: Option<String>,
    /// Hash after.
    pub sha256_after: Option<String>,
    /// Note.
    pub note: String,
}

/// Where transcript lines go and who is operating (the CLIs' `--transcript`
/// and `--who`, or the server's bootstrap).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Log {
    /// Transcript file (default: `transcript.jsonl` beside the file concerned).
    pub transcript: Option<PathBuf>,
    /// Name recorded (default: `$USER`).
    pub who: Option<String>,
}

impl Log {
    /// Append a transcript line about `file`, stamped with `clock`'s time.
    pub fn record(&self, file: &Path, mut draft: Draft, clock: &dyn Clock) -> Result<()> {
        draft.who = who(self.who.as_deref());
        let path = path_for(self.transcript.as_deref(), file);
        append(&path, draft, clock).map(|_| ())
    }
}

/// SHA-256 hex of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The operator's name: `--who`, else `$USER`/`$LOGNAME`, else `unknown`.
pub fn who(given: Option<&str>) -> String {
    given
        .map(str::to_owned)
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Read and check a transcript; a missing file is an empty transcript.
pub fn read(path: &Path) -> Result<Vec<Entry>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let bytes = read_limited(path, MAX_TRANSCRIPT)?;
    let damaged = |line: usize, reason: String| Error::Transcript {
        path: path.to_owned(),
        line,
        reason,
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| damaged(0, "not UTF-8 text".into()))?;
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(damaged(
            text.lines().count(),
            "the last line is incomplete".into(),
        ));
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut prev = GENESIS.to_owned();
    for (i, line) in text.lines().enumerate() {
        let entry: Entry = serde_json::from_str(line).map_err(|e| damaged(i + 1, e.to_string()))?;
        if entry.prev != prev {
            return Err(damaged(
                i + 1,
                "does not chain to the line before it".into(),
            ));
        }
        if entry.seq != i as u64 + 1 {
            return Err(damaged(
                i + 1,
                format!("sequence number {} out of order", entry.seq),
            ));
        }
        prev = sha256_hex(line.as_bytes());
        entries.push(entry);
    }
    Ok(entries)
}

/// Append one entry, stamped with `clock`'s time, after checking the
/// existing chain.
pub fn append(path: &Path, draft: Draft, clock: &dyn Clock) -> Result<Entry> {
    let existing = read(path)?;
    let prev = match existing.last() {
        Some(_) => {
            let bytes = read_limited(path, MAX_TRANSCRIPT)?;
            let text = String::from_utf8_lossy(&bytes);
            sha256_hex(text.lines().last().unwrap_or_default().as_bytes())
        }
        None => GENESIS.to_owned(),
    };
    let entry = Entry {
        seq: existing.len() as u64 + 1,
        time: clock.now().to_string(),
        who: draft.who,
        operation: draft.operation,
        subject: draft.subject,
        version: draft.version,
        key_ids: draft.key_ids,
        sha256_before: draft.sha256_before,
        sha256_after: draft.sha256_after,
        note: draft.note,
        prev,
    };
    let mut line = serde_json::to_string(&entry).map_err(|e| Error::Canonical {
        reason: e.to_string(),
    })?;
    line.push('\n');
    let write_err = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(write_err)?;
    file.write_all(line.as_bytes()).map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    Ok(entry)
}

/// The transcript path: `given`, or `transcript.jsonl` beside `file`.
pub fn path_for(given: Option<&Path>, file: &Path) -> PathBuf {
    match given {
        Some(p) => p.to_owned(),
        None => file.with_file_name(DEFAULT_NAME),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    #[test]
    fn appends_chain_and_tampering_is_caught() {
        let clock = FixedClock::at_unix(1_900_000_000);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        for op in ["init", "sign", "sign"] {
            append(
                &path,
                Draft {
                    operation: op.into(),
                    who: "alice".into(),
                    ..Draft::default()
                },
                &clock,
            )
            .unwrap();
        }
        let entries = read(&path).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[2].seq, 3);
        assert_eq!(entries[2].time, "2030-03-17T17:46:40Z");

        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("alice", "mallory", 1)).unwrap();
        assert!(matches!(
            read(&path),
            Err(Error::Transcript { line: 2, .. })
        ));
        assert!(
            append(&path, Draft::default(), &clock).is_err(),
            "no append onto a broken chain"
        );

        let dropped: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, dropped).unwrap();
        assert!(read(&path).is_err());
    }
}
