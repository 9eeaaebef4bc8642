//! Staging into DFU: the full envelope in HTTP `Range` chunks (progress
//! persisted after each chunk, the running hash rebuilt from DFU after a
//! reset), or a patch through `bootloader::delta` (resumed from the
//! applier's own checkpoints), falling back to the full image when the
//! patch does not apply. Whatever way it came, the staged image must match
//! the image repository's length and SHA-256 and pass the bootloader's
//! verification before it counts as staged.

use alloc::boxed::Box;
use alloc::vec;

use bootloader::delta::DeltaError;
use bootloader::delta::apply::{Applier, Progress};
use bootloader::delta::model::Model;
use embedded_storage::nor_flash::NorFlash;
use sha2::{Digest, Sha256};

use super::{Agent, AgentError, Hardware, Net, Phase, Staging, TargetRef};
use crate::tuf::{FetchError, MetadataStore, hex_encode};

/// Where staging stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageStatus {
    /// Nothing planned.
    Idle,
    /// Bytes of the current download done, of total.
    Downloading {
        /// Done.
        done: u64,
        /// Total.
        total: u64,
    },
    /// A verified image is in DFU.
    Staged,
    /// The attempt failed (reported at the next check-in; not retried).
    Failed(&'static str),
}

/// The running hash of a full download.
#[derive(Clone)]
pub(super) struct FullHash {
    hasher: Sha256,
    len: u64,
}

fn chunk_size<F: NorFlash>(configured: u32) -> u32 {
    let sector = u32::try_from(F::ERASE_SIZE).unwrap_or(4096).max(1);
    configured.div_ceil(sector).max(1) * sector
}

pub(super) fn run<F: NorFlash, S: MetadataStore, N: Net, H: Hardware>(
    a: &mut Agent<'_, F, S, N, H>,
    max_chunks: u32,
) -> Result<StageStatus, AgentError> {
    let Some(s) = a.state.staging.clone() else {
        return Ok(StageStatus::Idle);
    };
    match s.phase {
        Phase::Staged => Ok(StageStatus::Staged),
        Phase::Patch => run_patch(a, &s),
        Phase::Full => run_full(a, &s, max_chunks),
    }
}

/// Hash `len` bytes of DFU from its start.
fn hash_dfu<F: NorFlash>(
    up: &bootloader::Updater<'_, F>,
    len: u64,
) -> Result<(Sha256, u64), AgentError> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1024];
    let mut at = 0u64;
    while at < len {
        let n = usize::try_from((len - at).min(1024)).unwrap_or(1024);
        let off = u32::try_from(at).map_err(|_| AgentError::StagedImageRefused)?;
        let piece = buf.get_mut(..n).ok_or(AgentError::StagedImageRefused)?;
        up.read_dfu(off, piece).map_err(AgentError::Flash)?;
        h.update(&*piece);
        at += n as u64;
    }
    Ok((h, len))
}

fn fetch<N: Net>(
    net: &mut N,
    t: &TargetRef,
    offset: u64,
    chunk: u32,
) -> Result<alloc::vec::Vec<u8>, Fetch> {
    let len = u32::try_from(t.length.saturating_sub(offset).min(u64::from(chunk))).unwrap_or(chunk);
    match net.fetch_target(&t.path, offset, len) {
        Ok(b) if b.len() == len as usize => Ok(b),
        // Short (connection dropped) or long: try again later.
        Ok(_) => Err(Fetch::Retry),
        Err(FetchError::NotFound) => Err(Fetch::Missing),
        Err(_) => Err(Fetch::Retry),
    }
}

enum Fetch {
    Retry,
    Missing,
}

fn run_full<F: NorFlash, S: MetadataStore, N: Net, H: Hardware>(
    a: &mut Agent<'_, F, S, N, H>,
    s: &Staging,
    max_chunks: u32,
) -> Result<StageStatus, AgentError> {
    let chunk = chunk_size::<F>(a.config.chunk);
    let mut up = a.updater()?;
    let img = &s.image;
    if img.length > u64::from(up.dfu_capacity()) {
        a.fail_staging("image_too_large")?;
        return Ok(StageStatus::Failed("image_too_large"));
    }
    let mut offset = s.offset.min(img.length);
    if offset == 0 {
        up.begin().map_err(AgentError::Flash)?;
        a.hash = None;
    }
    let mut hash = match a.hash.take() {
        Some(h) if h.len == offset => h,
        _ => {
            let (hasher, len) = hash_dfu(&up, offset)?;
            FullHash { hasher, len }
        }
    };
    for _ in 0..max_chunks.max(1) {
        if offset >= img.length {
            break;
        }
        let bytes = match fetch(&mut a.net, img, offset, chunk) {
            Ok(b) => b,
            Err(Fetch::Missing) => {
                a.fail_staging("target_missing")?;
                return Ok(StageStatus::Failed("target_missing"));
            }
            Err(Fetch::Retry) => {
                a.hash = Some(hash);
                return Err(AgentError::Network);
            }
        };
        let at = u32::try_from(offset).map_err(|_| AgentError::StagedImageRefused)?;
        up.write_dfu(at, &bytes).map_err(AgentError::Flash)?;
        hash.hasher.update(&bytes);
        offset += bytes.len() as u64;
        hash.len = offset;
        if let Some(st) = a.state.staging.as_mut() {
            st.offset = offset;
        }
        a.save()?;
    }
    if offset < img.length {
        a.hash = Some(hash);
        return Ok(StageStatus::Downloading {
            done: offset,
            total: img.length,
        });
    }
    if hex_encode(&hash.hasher.finalize()) != img.sha256 {
        a.fail_staging("hash_mismatch")?;
        return Ok(StageStatus::Failed("hash_mismatch"));
    }
    finish(a, &up, img)
}

/// Bootloader verification of DFU and the version the repository promised.
fn finish<F: NorFlash, S: MetadataStore, N: Net, H: Hardware>(
    a: &mut Agent<'_, F, S, N, H>,
    up: &bootloader::Updater<'_, F>,
    img: &TargetRef,
) -> Result<StageStatus, AgentError> {
    let mut buf = vec![0u8; 1024];
    let verified = match up.verify_dfu(&mut buf) {
        Ok(v) => v,
        Err(_) => {
            a.fail_staging("image_refused")?;
            return Ok(StageStatus::Failed("image_refused"));
        }
    };
    let h = verified.header();
    if alloc::format!("{}", h.version) != img.version || h.security_counter != img.security_counter
    {
        a.fail_staging("version_mismatch")?;
        return Ok(StageStatus::Failed("version_mismatch"));
    }
    if let Some(st) = a.state.staging.as_mut() {
        st.phase = Phase::Staged;
    }
    a.hash = None;
    a.save()?;
    Ok(StageStatus::Staged)
}

fn fall_back<F: NorFlash, S: MetadataStore, N: Net, H: Hardware>(
    a: &mut Agent<'_, F, S, N, H>,
    why: &'static str,
) -> Result<StageStatus, AgentError> {
    if let Some(st) = a.state.staging.as_mut() {
        st.phase = Phase::Full;
        st.offset = 0;
        st.patch_fallback = Some(why.into());
    }
    a.hash = None;
    a.save()?;
    let total = a.state.staging.as_ref().map_or(0, |s| s.image.length);
    Ok(StageStatus::Downloading { done: 0, total })
}

fn run_patch<F: NorFlash, S: MetadataStore, N: Net, H: Hardware>(
    a: &mut Agent<'_, F, S, N, H>,
    s: &Staging,
) -> Result<StageStatus, AgentError> {
    let Some(patch) = s.patch.clone() else {
        return fall_back(a, "no_patch");
    };
    let chunk = chunk_size::<F>(a.config.chunk);
    let mut up = a.updater()?;
    let mut model: Box<Model> = Box::new(Model::new());
    let resumed = if s.patch_started {
        Applier::resume(&mut up, &mut model).ok().map(|_| ())
    } else {
        None
    };
    // `resume` and `new` both borrow `up`; build the one we use.
    let applier = if resumed.is_some() {
        Applier::resume(&mut up, &mut model)
    } else {
        Applier::new(&mut up, &mut model)
    };
    let mut applier = match applier {
        Ok(ap) => ap,
        Err(DeltaError::Update(e)) => return Err(AgentError::Flash(e)),
        Err(_) => return fall_back(a, "patch_failed"),
    };
    if !s.patch_started {
        if let Some(st) = a.state.staging.as_mut() {
            st.patch_started = true;
        }
        a.save()?;
    }
    let mut offset = applier.patch_offset();
    loop {
        if offset >= patch.length {
            return fall_back(a, "patch_truncated");
        }
        let bytes = match fetch(&mut a.net, &patch, offset, chunk) {
            Ok(b) => b,
            Err(Fetch::Missing) => {
                return fall_back(a, "patch_missing");
            }
            Err(Fetch::Retry) => return Err(AgentError::Network),
        };
        offset += bytes.len() as u64;
        match applier.feed(&bytes) {
            Ok(Progress::NeedMore) => {}
            Ok(Progress::Rebuilt) => break,
            Err(DeltaError::BaseMismatch) => {
                return fall_back(a, "patch_base_mismatch");
            }
            Err(DeltaError::Update(e)) => return Err(AgentError::Flash(e)),
            Err(_) => {
                return fall_back(a, "patch_failed");
            }
        }
    }
    if applier.verify().is_err() {
        return fall_back(a, "patch_image_refused");
    }
    let img = s.image.clone();
    let (hasher, _) = hash_dfu(&up, img.length)?;
    if hex_encode(&hasher.finalize()) != img.sha256 {
        return fall_back(a, "patch_hash_mismatch");
    }
    finish(a, &up, &img)
}
