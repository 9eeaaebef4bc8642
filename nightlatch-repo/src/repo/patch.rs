//! Delta patches as targets. A patch (`NLDP`, see `bootloader::delta`) is
//! published beside the envelopes it connects, as
//! `<model>/<target version>.from-<base version>.nldp`, with `custom.nightlatch`
//! `{kind: "patch", hardware_model, version, security_counter, base, target}`
//! where `base` and `target` name the two envelopes (`version`, `sha256`,
//! `length`) exactly as their own targets do. Both envelopes must already be
//! in the repository or in the same `publish`: the patch header only holds
//! payload digests, so they are found by payload SHA-256 and length.

use crate::metadata::Hashes;
use std::path::{Path, PathBuf};

use bootloader::delta::PatchHeader;

use crate::error::{Error, Result};
use crate::metadata::TargetFile;
use crate::repo::target::{Custom, EnvelopeRef, Kind, TargetEntry};

/// A patch file read from disk, not yet tied to its envelopes.
#[derive(Debug, Clone)]
pub struct PatchFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its header.
    pub header: PatchHeader,
    /// Hardware model of the target envelope.
    pub model: String,
    /// Version of the target envelope.
    pub version: String,
    /// Security counter of the target envelope.
    pub security_counter: u32,
    /// Payload digest of the target envelope (from its signed header).
    pub target_sha256: [u8; 32],
    /// The whole file.
    pub bytes: Vec<u8>,
}

fn damaged(path: &Path, reason: impl Into<String>) -> Error {
    Error::UnknownTargetFile {
        path: path.to_owned(),
        reason: format!("it is a damaged delta patch: {}", reason.into()),
    }
}

/// Parse a patch: header, embedded target prefix, exact length.
pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<PatchFile> {
    let (header, _, prefix) = bootloader::delta::target_prefix(&bytes)
        .map_err(|e| damaged(path, format!("its header or target prefix: {e}")))?;
    if header.patch_len() != bytes.len() as u64 {
        return Err(damaged(
            path,
            format!(
                "{} bytes, the header says {}",
                bytes.len(),
                header.patch_len()
            ),
        ));
    }
    let h = prefix.header;
    Ok(PatchFile {
        path: path.to_owned(),
        model: h.model.to_string(),
        version: h.version.to_string(),
        security_counter: h.security_counter,
        target_sha256: h.payload_sha256,
        header,
        bytes,
    })
}

/// A firmware target already known (published, or in the same publish).
#[derive(Debug, Clone)]
pub struct KnownFirmware {
    /// Target name.
    pub name: String,
    /// Its length and hashes.
    pub file: TargetFile,
    /// Its custom description.
    pub custom: Custom,
}

fn find<'a>(
    known: &'a [KnownFirmware],
    model: &str,
    sha: &[u8; 32],
    len: u32,
) -> Option<&'a KnownFirmware> {
    let sha = hex::encode(sha);
    known.iter().find(|k| {
        k.custom.kind == Kind::Firmware
            && k.custom.hardware_model == model
            && k.custom.payload_sha256.as_deref() == Some(sha.as_str())
            && k.custom.payload_length == Some(len)
    })
}

fn envelope_ref(k: &KnownFirmware) -> EnvelopeRef {
    EnvelopeRef {
        version: k.custom.version.clone(),
        sha256: k.file.sha256_hex().unwrap_or_default(),
        length: k.file.length,
    }
}

/// Tie a patch to its base and target envelopes among `known`.
pub fn resolve(p: PatchFile, known: &[KnownFirmware], repo_dir: &Path) -> Result<TargetEntry> {
    let missing = |which: &str| Error::RepoState {
        path: repo_dir.to_owned(),
        reason: format!(
            "{}: the patch's {which} envelope ({} {}) is not in the repository",
            p.path.display(),
            p.model,
            if which == "base" {
                "base".to_owned()
            } else {
                p.version.clone()
            }
        ),
        help: "publish both envelopes first (or in the same publish), then the patch".into(),
    };
    let target = find(known, &p.model, &p.target_sha256, p.header.target_len)
        .filter(|k| k.custom.version == p.version)
        .ok_or_else(|| missing("target"))?;
    let base = find(known, &p.model, &p.header.base_sha256, p.header.base_len)
        .ok_or_else(|| missing("base"))?;
    let custom = Custom {
        kind: Kind::Patch,
        hardware_model: p.model.clone(),
        version: p.version.clone(),
        security_counter: p.security_counter,
        payload_length: None,
        payload_sha256: None,
        base: Some(envelope_ref(base)),
        target: Some(envelope_ref(target)),
    };
    let info = TargetFile::new(
        p.bytes.len() as u64,
        Hashes::sha256_of(&p.bytes),
        Some(serde_json::json!({ "nightlatch": custom })),
    );
    Ok(TargetEntry {
        name: format!(
            "{}/{}.from-{}.nldp",
            p.model, p.version, base.custom.version
        ),
        model: p.model,
        info,
        bytes: p.bytes,
    })
}
