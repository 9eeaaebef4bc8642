//! Delta patches as targets. A patch (`NLDP`, see `bootloader::delta`) is
//! published beside the envelopes it connects, as
//! `<model>/<target version>.from-<base version>.nldp`, with `custom.nightlatch`
//! `{kind: "patch", hardware_model, version, security_counter, base, target}`
//! where `base` and `target` name the two envelopes (`version`, `sha256`,
//! `length`) exactly as their own targets do. Both envelopes must already be
//! in the repository or in the same `publish`. The patch header names its
//! base by payload length and the first 8 bytes of the payload digest, and
//! codes the target's prefix against the base's, so the base is found first
//! and the target's model, version and digest are read from the prefix the
//! patch rebuilds.

use crate::metadata::Hashes;
use std::path::{Path, PathBuf};

use bootloader::delta::{HEADER_LEN, PatchHeader};
use bootloader::envelope::PREFIX_LEN;

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
    /// The whole file.
    pub bytes: Vec<u8>,
}

fn damaged(path: &Path, reason: impl Into<String>) -> Error {
    Error::UnknownTargetFile {
        path: path.to_owned(),
        reason: format!("it is a damaged delta patch: {}", reason.into()),
    }
}

/// Parse a patch: header and exact length. The target prefix is decoded
/// once the base is known ([`resolve`]).
pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<PatchFile> {
    let header = bytes
        .get(..HEADER_LEN)
        .and_then(|h| <&[u8; HEADER_LEN]>::try_from(h).ok())
        .ok_or_else(|| damaged(path, "shorter than a patch header"))
        .and_then(|raw| {
            PatchHeader::decode(raw).map_err(|e| damaged(path, format!("its header: {e}")))
        })?;
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
    Ok(PatchFile {
        path: path.to_owned(),
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
    /// The envelope's first bytes when it is being published now (published
    /// ones are read from the repository when needed).
    pub prefix: Option<Vec<u8>>,
}

impl KnownFirmware {
    fn is_firmware(&self, model: &str, len: u32) -> bool {
        self.custom.kind == Kind::Firmware
            && self.custom.hardware_model == model
            && self.custom.payload_length == Some(len)
    }

    /// The envelope's prefix: in memory, or from the repository's file.
    fn envelope_prefix(&self, repo_dir: &Path) -> Result<Vec<u8>> {
        if let Some(p) = &self.prefix {
            return Ok(p.clone());
        }
        let sha = self.file.sha256_hex().unwrap_or_default();
        let path = crate::repo::target_file(repo_dir, &self.name, &sha);
        let mut buf = vec![0u8; PREFIX_LEN];
        let mut f = std::fs::File::open(&path).map_err(|e| Error::RepoState {
            path: path.clone(),
            reason: format!("cannot read the published envelope {}: {e}", self.name),
            help: "the repository's targets directory is incomplete; restore it from a backup"
                .into(),
        })?;
        std::io::Read::read_exact(&mut f, &mut buf).map_err(|e| Error::RepoState {
            path: path.clone(),
            reason: format!("cannot read the published envelope {}: {e}", self.name),
            help: "the repository's targets directory is incomplete; restore it from a backup"
                .into(),
        })?;
        Ok(buf)
    }
}

/// Does `custom` (a firmware target's description) describe the payload
/// `header` names as its base (length and digest prefix)?
pub fn names_base(header: &PatchHeader, custom: &Custom) -> bool {
    match (custom.payload_length, custom.payload_sha256.as_deref()) {
        (Some(len), Some(sha)) => header.is_base_hex(len, sha),
        _ => false,
    }
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
    let missing = |what: String| Error::RepoState {
        path: repo_dir.to_owned(),
        reason: format!(
            "{}: the patch's {what} is not in the repository",
            p.path.display()
        ),
        help: "publish both envelopes first (or in the same publish), then the patch".into(),
    };
    let base_hex = hex::encode(p.header.base_digest);
    let bases: Vec<&KnownFirmware> = known
        .iter()
        .filter(|k| k.custom.kind == Kind::Firmware && names_base(&p.header, &k.custom))
        .collect();
    if bases.is_empty() {
        return Err(missing(format!(
            "base envelope (payload {base_hex}…, {} bytes)",
            p.header.base_len
        )));
    }
    // The prefix code is relative to one base envelope's prefix: the base is
    // the envelope (usually the only one with that payload; several if a
    // payload was signed twice) from which it rebuilds exactly the prefix of
    // a known target envelope.
    let mut last_err = None;
    let mut last_missing = None;
    let mut found = None;
    for base in bases {
        let base_prefix = base.envelope_prefix(repo_dir)?;
        let (_, rebuilt, prefix) = match bootloader::delta::target_prefix(&p.bytes, &base_prefix) {
            Ok(t) => t,
            Err(e) => {
                last_err = Some(format!(
                    "its target prefix (coded against {}): {e}",
                    base.name
                ));
                continue;
            }
        };
        let h = prefix.header;
        let (model, version) = (h.model.to_string(), h.version.to_string());
        if model != base.custom.hardware_model {
            last_err = Some(format!(
                "it rebuilds a {model} image from a {} one",
                base.custom.hardware_model
            ));
            continue;
        }
        let target_hex = hex::encode(h.payload_sha256);
        let Some(target) = known.iter().find(|k| {
            k.is_firmware(&model, h.payload_len)
                && k.custom.payload_sha256.as_deref() == Some(target_hex.as_str())
                && k.custom.version == version
        }) else {
            // Decoded against another model's envelope of the same payload,
            // or the target is not published: try the next candidate.
            last_missing = Some(missing(format!("target envelope ({model} {version})")));
            continue;
        };
        if target.envelope_prefix(repo_dir)?.as_slice() != rebuilt.as_slice() {
            last_err = Some(format!(
                "from {} it rebuilds a prefix that is not {}'s (signed differently)",
                base.name, target.name
            ));
            continue;
        }
        found = Some((base, target, h, model, version));
        break;
    }
    let Some((base, target, h, model, version)) = found else {
        return Err(match (last_err, last_missing) {
            (_, Some(missing)) => missing,
            (err, None) => damaged(&p.path, err.unwrap_or_default()),
        });
    };
    let custom = Custom {
        kind: Kind::Patch,
        hardware_model: model.clone(),
        version: version.clone(),
        security_counter: h.security_counter,
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
        name: format!("{model}/{version}.from-{}.nldp", base.custom.version),
        model,
        info,
        bytes: p.bytes,
    })
}
