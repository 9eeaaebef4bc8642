//! Staging into DFU: the full envelope in HTTP `Range` chunks (progress
//! persisted after each chunk, the running hash rebuilt from DFU after a
//! reset), or a patch through `bootloader::delta`, falling back to the full
//! image when the patch does not apply. Whatever way it came, the staged
//! image must match the image repository's length and SHA-256 and pass the
//! bootloader's verification before it counts as staged.
//!
//! ## Patches: verified before they are applied
//!
//! The delta applier is a decoder of attacker-reachable bytes, and
//! everything it writes to DFU is derived from them. A streaming design that
//! hashes the patch *while* applying it would learn of a mismatch only at
//! the last byte — the listed SHA-256 covers the whole patch — after the
//! applier had already decoded every unverified byte and written its output
//! to flash. So the patch never streams into the applier:
//!
//! 1. **download**: the patch is written, as received, to the *patch area*
//!    at the top of DFU's image area ([`patch_area`]: sector-aligned, above
//!    every sector the rebuilt image will use, below the applier's
//!    checkpoint sector), in `Range` chunks with the offset persisted after
//!    each (`Staging::patch_offset`), so a reset resumes the download. These
//!    are raw received bytes, exactly like a full-image download; nothing
//!    derived from them is written, and nothing parses them but a check of
//!    the fixed header's base digest, which can only make the agent skip the
//!    patch early;
//! 2. **check**: the whole area is hashed from flash and compared with the
//!    SHA-256 the verified metadata lists ([`VerifiedPatch::check`], the only
//!    way to obtain a [`VerifiedPatch`]); a mismatch abandons the patch
//!    (`patch_hash_mismatch`, the full image is fetched instead) before the
//!    applier is even created: no checkpoint, no byte of output;
//! 3. **apply**: [`apply`] takes a [`VerifiedPatch`] and feeds the applier
//!    only from that area. The check runs again at every start or resume of
//!    the applier (after a reset the applier continues from its own
//!    checkpoint), so what the applier reads was hashed by this same run;
//! 4. **finish**: the rebuilt envelope must still pass the applier's target
//!    digest, the bootloader's verification (signatures, model,
//!    anti-rollback) and the image repository's SHA-256 before the staging
//!    counts as `Staged`; only a `Staged` image may be requested for install
//!    (and `request_install` verifies it again). ACTIVE, the verified
//!    bootable image, is only ever read.
//!
//! The cost: a patch is used only when the image and the patch fit in the
//! DFU image area together (`patch_no_room` otherwise, and the full image is
//! fetched); patches are a tenth of an image or less, so images up to about
//! 90 % of ACTIVE can be patched.

use alloc::boxed::Box;
use alloc::vec;

use bootloader::delta::apply::{Applier, Progress};
use bootloader::delta::model::Model;
use bootloader::delta::{DeltaError, HEADER_LEN, PatchHeader};
use bootloader::envelope::PREFIX_LEN;
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
        Phase::Patch => run_patch(a, &s, max_chunks),
        Phase::Full => run_full(a, &s, max_chunks),
    }
}

/// Hash `len` bytes of DFU from its start.
fn hash_dfu<F: NorFlash>(
    up: &bootloader::Updater<'_, F>,
    len: u64,
) -> Result<(Sha256, u64), AgentError> {
    hash_dfu_at(up, 0, len)
}

/// Hash `len` bytes of DFU from offset `start`.
fn hash_dfu_at<F: NorFlash>(
    up: &bootloader::Updater<'_, F>,
    start: u32,
    len: u64,
) -> Result<(Sha256, u64), AgentError> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1024];
    let mut at = 0u64;
    while at < len {
        let n = usize::try_from((len - at).min(1024)).unwrap_or(1024);
        let off = u64::from(start)
            .checked_add(at)
            .and_then(|o| u32::try_from(o).ok())
            .ok_or(AgentError::StagedImageRefused)?;
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
    if img.length > u64::from(up.active_capacity()) {
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

/// DFU offset of the patch area for an image of `image_len` bytes and a
/// patch of `patch_len`: the top of DFU's image area (what
/// `Updater::write_dfu` accepts; the applier's checkpoint sector lies above
/// it), sector-aligned, and above every sector the rebuilt image uses, so
/// neither the applier's output nor its erases can reach the patch while it
/// is read. `None` when the two do not fit together.
fn patch_area<F: NorFlash>(
    up: &bootloader::Updater<'_, F>,
    image_len: u64,
    patch_len: u64,
) -> Option<u32> {
    let sector = u64::from(up.config().layout.sector).max(1);
    let round = |n: u64| n.div_ceil(sector).checked_mul(sector);
    if patch_len == 0 {
        return None;
    }
    let start = u64::from(up.active_capacity()).checked_sub(round(patch_len)?)?;
    if round(image_len)? > start {
        return None;
    }
    u32::try_from(start).ok()
}

/// A patch in the patch area whose bytes, read back from flash, hash to the
/// SHA-256 the verified metadata lists, and whose header names the staged
/// image. Only [`VerifiedPatch::check`] makes one, and only [`apply`] feeds
/// the delta applier, from one.
struct VerifiedPatch {
    /// DFU offset of the patch area.
    start: u32,
    /// Patch length.
    len: u64,
    /// Its header.
    header: PatchHeader,
}

/// Why a staged patch is not used.
enum Unusable {
    /// The bytes do not hash to the listed SHA-256.
    Hash,
    /// The (verified) header does not rebuild the staged image.
    WrongTarget,
}

impl VerifiedPatch {
    fn check<F: NorFlash>(
        up: &bootloader::Updater<'_, F>,
        start: u32,
        patch: &TargetRef,
        image: &TargetRef,
    ) -> Result<Result<Self, Unusable>, AgentError> {
        let (hasher, _) = hash_dfu_at(up, start, patch.length)?;
        if hex_encode(&hasher.finalize()) != patch.sha256 {
            return Ok(Err(Unusable::Hash));
        }
        let mut raw = [0u8; HEADER_LEN];
        if patch.length < HEADER_LEN as u64 {
            return Ok(Err(Unusable::WrongTarget));
        }
        up.read_dfu(start, &mut raw).map_err(AgentError::Flash)?;
        let header = match PatchHeader::decode(&raw) {
            Ok(h)
                if h.patch_len() == patch.length
                    && PREFIX_LEN as u64 + u64::from(h.target_len) == image.length =>
            {
                h
            }
            _ => return Ok(Err(Unusable::WrongTarget)),
        };
        Ok(Ok(Self {
            start,
            len: patch.length,
            header,
        }))
    }

    /// Read patch bytes `[at, at + buf.len())` from the patch area.
    fn read<F: NorFlash>(
        &self,
        up: &bootloader::Updater<'_, F>,
        at: u64,
        buf: &mut [u8],
    ) -> Result<(), AgentError> {
        let end = at.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.len) {
            return Err(AgentError::StagedImageRefused);
        }
        let off = u64::from(self.start)
            .checked_add(at)
            .and_then(|o| u32::try_from(o).ok())
            .ok_or(AgentError::StagedImageRefused)?;
        up.read_dfu(off, buf).map_err(AgentError::Flash)
    }
}

/// Does ACTIVE hold the base the (still unverified) patch header names?
/// Only used to skip a patch early, before the rest of it is downloaded: a
/// forged header can at worst make the lock fetch the full image.
fn base_matches<F: NorFlash>(
    up: &bootloader::Updater<'_, F>,
    first: &[u8],
) -> Result<bool, AgentError> {
    let Some(raw) = first.get(..HEADER_LEN) else {
        return Ok(true);
    };
    let mut hdr = [0u8; HEADER_LEN];
    hdr.copy_from_slice(raw);
    let Ok(h) = PatchHeader::decode(&hdr) else {
        return Ok(true); // the hash check decides
    };
    if u64::from(h.base_len) + PREFIX_LEN as u64 > u64::from(up.active_capacity()) {
        return Ok(false);
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1024];
    let mut at = 0u32;
    while at < h.base_len {
        let n = usize::try_from((h.base_len - at).min(1024)).unwrap_or(1024);
        let piece = buf.get_mut(..n).ok_or(AgentError::StagedImageRefused)?;
        let off = (PREFIX_LEN as u32)
            .checked_add(at)
            .ok_or(AgentError::StagedImageRefused)?;
        up.read_active(off, piece).map_err(AgentError::Flash)?;
        hasher.update(&*piece);
        at = at.saturating_add(n as u32);
    }
    Ok(h.is_base(&hasher.finalize().into()))
}

/// Patch phase: download the whole patch into the patch area (resumable),
/// check it against its listed SHA-256, then rebuild the image from it.
/// See the module documentation.
fn run_patch<F: NorFlash, S: MetadataStore, N: Net, H: Hardware>(
    a: &mut Agent<'_, F, S, N, H>,
    s: &Staging,
    max_chunks: u32,
) -> Result<StageStatus, AgentError> {
    let Some(patch) = s.patch.clone() else {
        return fall_back(a, "no_patch");
    };
    let img = s.image.clone();
    let chunk = chunk_size::<F>(a.config.chunk);
    let mut up = a.updater()?;
    let Some(area) = patch_area(&up, img.length, patch.length) else {
        return fall_back(a, "patch_no_room");
    };

    // 1. Download, as received, into the patch area.
    let mut offset = s.patch_offset.min(patch.length);
    if offset < patch.length {
        up.begin().map_err(AgentError::Flash)?;
        if s.patch_started {
            // Never resume an applier on a patch that was not downloaded
            // and checked whole (state written by an older agent).
            if let Some(st) = a.state.staging.as_mut() {
                st.patch_started = false;
            }
            a.save()?;
        }
        for _ in 0..max_chunks.max(1) {
            if offset >= patch.length {
                break;
            }
            let bytes = match fetch(&mut a.net, &patch, offset, chunk) {
                Ok(b) => b,
                Err(Fetch::Missing) => return fall_back(a, "patch_missing"),
                Err(Fetch::Retry) => return Err(AgentError::Network),
            };
            if offset == 0 && !base_matches(&up, &bytes)? {
                return fall_back(a, "patch_base_mismatch");
            }
            let at = u64::from(area)
                .checked_add(offset)
                .and_then(|o| u32::try_from(o).ok())
                .ok_or(AgentError::StagedImageRefused)?;
            up.write_dfu(at, &bytes).map_err(AgentError::Flash)?;
            offset += bytes.len() as u64;
            if let Some(st) = a.state.staging.as_mut() {
                st.patch_offset = offset;
            }
            a.save()?;
        }
        if offset < patch.length {
            return Ok(StageStatus::Downloading {
                done: offset,
                total: patch.length,
            });
        }
    }

    // 2. Check the whole patch against the verified metadata's SHA-256.
    let verified = match VerifiedPatch::check(&up, area, &patch, &img)? {
        Ok(v) => v,
        Err(Unusable::Hash) => return fall_back(a, "patch_hash_mismatch"),
        Err(Unusable::WrongTarget) => return fall_back(a, "patch_wrong_target"),
    };

    // 3. Rebuild the image from the verified patch only.
    apply(a, s, up, &verified, &img)
}

/// Feed the delta applier from a [`VerifiedPatch`] (start, or resume from
/// the applier's checkpoint), then check the rebuilt image.
fn apply<F: NorFlash, S: MetadataStore, N: Net, H: Hardware>(
    a: &mut Agent<'_, F, S, N, H>,
    s: &Staging,
    mut up: bootloader::Updater<'_, F>,
    patch: &VerifiedPatch,
    img: &TargetRef,
) -> Result<StageStatus, AgentError> {
    // A second handle to read the patch area while the applier holds `up`.
    let reader = a.updater()?;
    let mut model: Box<Model> = Box::new(Model::new());
    // Resume only from checkpoints of this very patch.
    let resumed = s.patch_started
        && Applier::resume(&mut up, &mut model).is_ok_and(|ap| ap.header() == Some(&patch.header));
    // `resume` and `new` both borrow `up`; build the one we use.
    let applier = if resumed {
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
    let mut buf = vec![0u8; 1024];
    let mut at = applier.patch_offset();
    loop {
        let left = patch.len.saturating_sub(at);
        if left == 0 {
            return fall_back(a, "patch_truncated");
        }
        let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        let piece = buf.get_mut(..n).ok_or(AgentError::StagedImageRefused)?;
        patch.read(&reader, at, piece)?;
        at += n as u64;
        match applier.feed(piece) {
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
    let (hasher, _) = hash_dfu(&up, img.length)?;
    if hex_encode(&hasher.finalize()) != img.sha256 {
        return fall_back(a, "patch_image_mismatch");
    }
    finish(a, &up, img)
}
