//! Host side: turn bsdiff-style controls into a patch, and apply a patch on
//! the flash simulator with the device's own applier.
//!
//! The encoder walks the target in exactly the order the applier decodes it
//! (same block boundaries, same elements, same models through [`BitCoder`]).
//! Inside copy runs it searches the old image and the new image so far for
//! LZ77 matches (hash chains over 4-byte prefixes).

use std::vec;
use std::vec::Vec;

use super::coder::{BitCoder, Encoder};
use super::model::{Kind, Model};
use super::transform::{ALL, Insn, field_at};
use super::{
    BASE_DIGEST_LEN, DEFAULT_BLOCK_LOG2, DeltaError, HEADER_LEN, MIN_MATCH, PatchHeader,
    encode_prefix,
};
use crate::envelope::{PREFIX_LEN, Prefix};
use sha2::{Digest, Sha256};

/// One bsdiff control: `add` bytes of `new = old + diff`, `copy` bytes
/// taken from the patch, then move the old cursor by `seek`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    /// Add-run length.
    pub add: usize,
    /// Copy-run length.
    pub copy: usize,
    /// Old-cursor move after the copy run.
    pub seek: i64,
}

/// Encoder settings.
#[derive(Debug, Clone, Copy)]
pub struct EncodeOptions {
    /// Output bytes per block, log2 (checkpoint granularity).
    pub block_log2: u8,
    /// Candidates examined per match search.
    pub max_chain: usize,
    /// Instruction-set transform ([`super::transform`]); `None`: try each
    /// and keep the smallest patch.
    pub transform: Option<u8>,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            block_log2: DEFAULT_BLOCK_LOG2,
            max_chain: 64,
            transform: None,
        }
    }
}

/// Check that `controls` rebuild `new` from `old`, drop empty controls
/// (folding their seeks into the previous one), and reject seeks that do not
/// fit the format.
fn normalise(old: &[u8], new: &[u8], controls: &[Control]) -> Result<Vec<Control>, DeltaError> {
    let bad = DeltaError::Corrupt("controls do not rebuild the target");
    let mut out: Vec<Control> = Vec::with_capacity(controls.len());
    let (mut opos, mut npos) = (0i64, 0usize);
    for c in controls {
        for k in 0..c.add {
            let o = usize::try_from(opos + k as i64).map_err(|_| bad)?;
            if o >= old.len() || npos + k >= new.len() {
                return Err(bad);
            }
        }
        opos += c.add as i64 + c.seek;
        npos += c.add + c.copy;
        if npos > new.len() || i32::try_from(c.seek).is_err() {
            return Err(bad);
        }
        if c.add == 0 && c.copy == 0 {
            if let Some(prev) = out.last_mut() {
                prev.seek += c.seek;
            } else if c.seek != 0 {
                return Err(bad);
            }
        } else {
            out.push(*c);
        }
    }
    if npos != new.len() || out.iter().any(|c| i32::try_from(c.seek).is_err()) {
        return Err(bad);
    }
    Ok(out)
}

/// Hash chains over `old ++ new`, indexed by 4-byte prefixes.
struct Matcher<'d> {
    data: Vec<u8>,
    old_len: usize,
    head: Vec<u32>,
    prev: Vec<u32>,
    indexed: usize,
    max_chain: usize,
    _p: core::marker::PhantomData<&'d ()>,
}

const HASH: u32 = 20;

impl Matcher<'_> {
    fn new(old: &[u8], new: &[u8], max_chain: usize) -> Self {
        let mut data = Vec::with_capacity(old.len() + new.len());
        data.extend_from_slice(old);
        data.extend_from_slice(new);
        let mut m = Self {
            prev: vec![u32::MAX; data.len()],
            data,
            old_len: old.len(),
            head: vec![u32::MAX; 1 << HASH],
            indexed: 0,
            max_chain,
            _p: core::marker::PhantomData,
        };
        m.index_to(old.len().saturating_sub(3));
        m
    }

    fn hash(&self, p: usize) -> usize {
        let d = &self.data;
        let v = u32::from_le_bytes([d[p], d[p + 1], d[p + 2], d[p + 3]]);
        (v.wrapping_mul(2_654_435_761) >> (32 - HASH)) as usize
    }

    /// Index every position below `to` (old positions only while `to` is in
    /// the old part; new positions as the target is produced).
    fn index_to(&mut self, to: usize) {
        while self.indexed < to && self.indexed + 4 <= self.data.len() {
            let h = self.hash(self.indexed);
            self.prev[self.indexed] = self.head[h];
            self.head[h] = self.indexed as u32;
            self.indexed += 1;
        }
    }

    /// Longest match for new position `npos` (≤ `max_len`): (length, source
    /// position in the combined buffer).
    fn find(&mut self, npos: usize, max_len: usize) -> Option<(usize, usize)> {
        let cur = self.old_len + npos;
        // Skip old positions whose 4-byte window would straddle into new.
        if self.indexed < self.old_len.saturating_sub(3) {
            self.index_to(self.old_len.saturating_sub(3));
        }
        if self.indexed < self.old_len {
            self.indexed = self.old_len;
        }
        self.index_to(cur);
        if cur + 4 > self.data.len() || max_len < MIN_MATCH as usize {
            return None;
        }
        let mut cand = self.head[self.hash(cur)];
        let mut best: Option<(usize, usize)> = None;
        let mut tries = 0;
        while cand != u32::MAX && tries < self.max_chain {
            let c = cand as usize;
            let limit = if c < self.old_len {
                max_len.min(self.old_len - c)
            } else {
                max_len
            };
            let mut l = 0;
            while l < limit && cur + l < self.data.len() && self.data[c + l] == self.data[cur + l] {
                l += 1;
            }
            if l >= MIN_MATCH as usize && best.is_none_or(|(bl, _)| l > bl) {
                best = Some((l, c));
                if l == max_len {
                    break;
                }
            }
            cand = self.prev[c];
            tries += 1;
        }
        best
    }
}

/// Where the bits of a patch go (ideal code lengths, in bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EncodeStats {
    /// Controls (run lengths and seeks).
    pub controls: f64,
    /// Add bytes: the zero / non-zero flags.
    pub add_flags: f64,
    /// Add bytes: non-zero values.
    pub add_values: f64,
    /// Literal-or-match tokens.
    pub tokens: f64,
    /// Literal bytes in copy runs.
    pub literals: f64,
    /// Match sources, lengths and distances.
    pub matches: f64,
    /// Number of controls, add bytes, literals, matches, matched bytes.
    pub counts: [u64; 5],
    /// Bytes before the body: header and prefix code.
    pub head: usize,
    /// Instruction field differences (transforms).
    pub fields: f64,
    /// Instructions whose field was coded as a difference.
    pub field_count: u64,
    /// The transform the patch uses.
    pub transform: u8,
    /// Patch length with each transform tried (index: transform; 0 if not
    /// tried).
    pub tried: [usize; ALL.len()],
}

/// [`field_at`] over the old image in memory.
fn field_in(t: u8, old: &[u8], opos: i64, add_left: usize, to_boundary: u64) -> Option<Insn> {
    let o = usize::try_from(opos).ok()?;
    let mut w = [0u8; 4];
    for (i, b) in w.iter_mut().enumerate() {
        *b = old.get(o + i).copied().unwrap_or(0);
    }
    field_at(t, opos, old.len() as u64, add_left as u64, to_boundary, &w)
}

/// Counts the ideal code length of every bit it passes on.
struct Costing<'a> {
    enc: &'a mut Encoder,
    bits: f64,
}

impl BitCoder for Costing<'_> {
    fn code(&mut self, p1: u32, bit: u32) -> u32 {
        let p = f64::from(p1.clamp(1, 4095)) / 4096.0;
        self.bits -= if bit != 0 { p } else { 1.0 - p }.log2();
        self.enc.code(p1, bit)
    }
}

/// Encode a patch from `old` to `new` (payloads) using `controls` (as
/// bidiff's match finder produces them). `base_prefix` and `target_prefix`
/// are the 1024-byte prefixes of the two envelopes (the target's must be
/// canonical: it is rebuilt from its used part, coded against the base's).
pub fn encode(
    old: &[u8],
    new: &[u8],
    controls: &[Control],
    base_prefix: &[u8],
    target_prefix: &[u8],
    opts: EncodeOptions,
) -> Result<Vec<u8>, DeltaError> {
    encode_with_stats(old, new, controls, base_prefix, target_prefix, opts).map(|(p, _)| p)
}

/// [`encode`], also reporting where the bytes went.
pub fn encode_with_stats(
    old_raw: &[u8],
    new_raw: &[u8],
    controls: &[Control],
    base_prefix: &[u8],
    target_prefix: &[u8],
    opts: EncodeOptions,
) -> Result<(Vec<u8>, EncodeStats), DeltaError> {
    let forced;
    let transforms: &[u8] = match opts.transform {
        Some(t) => {
            forced = [t];
            &forced
        }
        None => &ALL,
    };
    let mut best: Option<(Vec<u8>, EncodeStats)> = None;
    let mut tried = [0usize; ALL.len()];
    for &t in transforms {
        let made = encode_one(
            old_raw,
            new_raw,
            controls,
            base_prefix,
            target_prefix,
            opts,
            t,
        )?;
        if let Some(slot) = tried.get_mut(usize::from(t)) {
            *slot = made.0.len();
        }
        if best.as_ref().is_none_or(|(b, _)| made.0.len() < b.len()) {
            best = Some(made);
        }
    }
    let (patch, mut stats) = best.ok_or(DeltaError::UnsupportedParameters)?;
    stats.tried = tried;
    Ok((patch, stats))
}

fn encode_one(
    old_raw: &[u8],
    new_raw: &[u8],
    controls: &[Control],
    base_prefix: &[u8],
    target_prefix: &[u8],
    opts: EncodeOptions,
    transform: u8,
) -> Result<(Vec<u8>, EncodeStats), DeltaError> {
    let mut stats = EncodeStats::default();
    let (Ok(base_prefix), Ok(target_prefix)) = (
        <&[u8; PREFIX_LEN]>::try_from(base_prefix),
        <&[u8; PREFIX_LEN]>::try_from(target_prefix),
    ) else {
        return Err(DeltaError::UnsupportedParameters);
    };
    if Prefix::parse(base_prefix).is_err()
        || !(12..=20).contains(&opts.block_log2)
        || u32::try_from(old_raw.len()).is_err()
        || u32::try_from(new_raw.len()).is_err()
    {
        return Err(DeltaError::UnsupportedParameters);
    }
    // The prefix must be canonical (it is rebuilt from its used part) and
    // describe `new_raw`.
    let parsed = Prefix::parse(target_prefix).map_err(DeltaError::BadTargetPrefix)?;
    let digest: [u8; 32] = Sha256::digest(new_raw).into();
    if parsed.header.payload_len as usize != new_raw.len() || parsed.header.payload_sha256 != digest
    {
        return Err(DeltaError::BadHeader);
    }
    let signatures = parsed.signatures().len();
    let (old, new) = (old_raw, new_raw);
    let controls = normalise(old, new, controls)?;
    let block = 1u64 << opts.block_log2;
    let mut model = Model::new();
    let mut matcher = Matcher::new(old, new, opts.max_chain);
    let mut body = Vec::new();
    let mut enc: Option<Encoder> = None;
    let mut next_boundary = block;
    let (mut npos, mut opos) = (0usize, 0i64);
    let (mut add_left, mut copy_left, mut seek) = (0usize, 0usize, 0i64);
    let mut copy_total = 0usize;
    let mut rep_dist = 0usize;
    let mut ctl = controls.iter();

    macro_rules! coder {
        () => {
            &mut Costing {
                enc: enc.get_or_insert_with(Encoder::new),
                bits: 0.0,
            }
        };
    }
    macro_rules! account {
        ($e:ident, $field:ident) => {
            stats.$field += $e.bits / 8.0;
        };
    }

    while npos < new.len() {
        let dfu_pos = (PREFIX_LEN + npos) as u64;
        if dfu_pos == next_boundary {
            if let Some(e) = enc.take() {
                body.extend_from_slice(&e.finish());
            }
            model.reset();
            rep_dist = 0;
            next_boundary += block;
        }
        if add_left == 0 && copy_left == 0 {
            let c = ctl
                .next()
                .ok_or(DeltaError::Corrupt("controls end early"))?;
            let e = coder!();
            model.number(e, Kind::AddLen, c.add as u32);
            model.number(e, Kind::CopyLen, c.copy as u32);
            model.signed(e, Kind::Seek, c.seek as i32);
            account!(e, controls);
            stats.counts[0] += 1;
            (add_left, copy_left, seek) = (c.add, c.copy, c.seek);
            copy_total = c.copy;
            continue;
        }
        if add_left > 0 {
            let insn = field_in(transform, old, opos, add_left, next_boundary - dfu_pos);
            if let Some(insn) = insn {
                let (o0, w) = (opos as usize, insn.width());
                let w_old = &old[o0..o0 + w];
                let mut w_new = [0u8; 4];
                w_new[..w].copy_from_slice(&new[npos..npos + w]);
                let f = insn.field(&w_new).wrapping_sub(insn.field(w_old));
                insn.set_field(&mut w_new, insn.field(w_old));
                let e = coder!();
                model.field_delta(e, insn, w_old[0], opos, npos as i64, insn.field(w_old), f);
                account!(e, fields);
                stats.field_count += 1;
                for (i, &nb) in w_new[..w].iter().enumerate() {
                    let o = old[o0 + i];
                    let op = if o0 + i > 0 { old[o0 + i - 1] } else { 0 };
                    let e = coder!();
                    model.add_byte(e, o, op, (npos + i) as u32, nb.wrapping_sub(o));
                    account!(e, add_values);
                }
                stats.counts[1] += w as u64;
                opos += w as i64;
                add_left -= w;
                npos += w;
                if add_left == 0 && copy_left == 0 {
                    opos += seek;
                    seek = 0;
                }
                continue;
            }
            let o = old[opos as usize];
            let op = if opos > 0 { old[opos as usize - 1] } else { 0 };
            let d = new[npos].wrapping_sub(o);
            let e = coder!();
            model.add_byte(e, o, op, npos as u32, d);
            if d == 0 {
                account!(e, add_flags);
            } else {
                account!(e, add_values);
            }
            stats.counts[1] += 1;
            opos += 1;
            add_left -= 1;
            npos += 1;
        } else {
            let to_boundary = (next_boundary - dfu_pos) as usize;
            let max_len = copy_left.min(to_boundary);
            let mut pick = |at: usize, max_len: usize| {
                matcher.find(at, max_len).and_then(|(len, src)| {
                    if src >= matcher.old_len {
                        Some((len, src, true))
                    } else {
                        let off = src as i64 - opos;
                        // An old offset costs more than a short new distance.
                        (i32::try_from(off).is_ok() && len > MIN_MATCH as usize)
                            .then_some((len, src, false))
                    }
                })
            };
            let mut found = pick(npos, max_len);
            // Lazy matching: a clearly longer match one byte later wins.
            if let Some((len, _, _)) = found
                && len < 64
                && max_len > 1
                && pick(npos + 1, max_len - 1).is_some_and(|(l2, _, _)| l2 > len + 1)
            {
                found = None;
            }
            let e = coder!();
            match found {
                Some((len, src, is_new)) => {
                    model.token(e, true);
                    account!(e, tokens);
                    e.bits = 0.0;
                    model.source(e, is_new);
                    model.number(e, Kind::MatchLen, (len as u32) - MIN_MATCH);
                    if is_new {
                        let dist = matcher.old_len + npos - src;
                        model.number(e, Kind::NewDist, (dist - 1) as u32);
                        rep_dist = dist;
                    } else {
                        model.signed(e, Kind::OldOff, (src as i64 - opos) as i32);
                    }
                    account!(e, matches);
                    stats.counts[3] += 1;
                    stats.counts[4] += len as u64;
                    for &b in &new[npos..npos + len] {
                        model.note_literal(b);
                    }
                    npos += len;
                    copy_left -= len;
                }
                None => {
                    model.token(e, false);
                    account!(e, tokens);
                    e.bits = 0.0;
                    let at = opos + (copy_total - copy_left) as i64;
                    let hint = usize::try_from(at)
                        .ok()
                        .and_then(|i| old.get(i))
                        .copied()
                        .unwrap_or(0);
                    let pred = if rep_dist > 0 && rep_dist <= npos {
                        new[npos - rep_dist]
                    } else {
                        0
                    };
                    model.literal(e, new[npos], hint, pred);
                    account!(e, literals);
                    stats.counts[2] += 1;
                    npos += 1;
                    copy_left -= 1;
                }
            }
        }
        if add_left == 0 && copy_left == 0 {
            opos += seek;
            seek = 0;
        }
    }
    if add_left != 0 || copy_left != 0 || ctl.next().is_some() {
        return Err(DeltaError::Corrupt("controls do not end with the target"));
    }
    if let Some(e) = enc.take() {
        body.extend_from_slice(&e.finish());
    }

    let base_sha: [u8; 32] = Sha256::digest(old_raw).into();
    let mut base_digest = [0u8; BASE_DIGEST_LEN];
    base_digest.copy_from_slice(&base_sha[..BASE_DIGEST_LEN]);
    let code = encode_prefix(base_prefix, target_prefix, Prefix::used_len(signatures));
    let header = PatchHeader {
        block_log2: opts.block_log2,
        signatures: signatures as u8,
        transform,
        base_len: old.len() as u32,
        base_digest,
        target_len: new.len() as u32,
        prefix_code_len: u16::try_from(code.len()).map_err(|_| DeltaError::BadHeader)?,
        body_len: u32::try_from(body.len()).map_err(|_| DeltaError::UnsupportedParameters)?,
    };
    let mut patch = Vec::with_capacity(header.patch_len() as usize);
    patch.extend_from_slice(&header.encode());
    patch.extend_from_slice(&code);
    patch.extend_from_slice(&body);
    stats.head = HEADER_LEN + code.len();
    stats.transform = transform;
    stats.tried[usize::from(transform)] = patch.len();
    Ok((patch, stats))
}

/// A simulated lock big enough for `old_envelope` and the patch's target,
/// with `old_envelope` in ACTIVE: what [`apply_on_sim`] and the delta
/// benchmark run the device applier on. Its anchor is a placeholder (the
/// digest is checked, not signatures).
#[cfg(feature = "sim")]
pub fn sim_lock(
    old_envelope: &[u8],
    patch: &[u8],
) -> Result<
    (
        crate::sim::SimFlash<4, 4096>,
        crate::boot::BootConfig,
        PatchHeader,
    ),
    DeltaError,
> {
    use crate::anchors::TrustAnchors;
    use crate::boot::BootConfig;
    use crate::envelope::HardwareModel;
    use crate::layout::{Layout, Sizes};
    use crate::sim::{Erased, SimFlash};

    let mut raw = [0u8; super::HEADER_LEN];
    raw.copy_from_slice(
        patch
            .get(..super::HEADER_LEN)
            .ok_or(DeltaError::Truncated)?,
    );
    let header = PatchHeader::decode(&raw)?;
    let sector = 4096u32;
    let need = (PREFIX_LEN as u64 + u64::from(header.target_len.max(header.base_len)))
        .max(old_envelope.len() as u64);
    let active = u32::try_from(need.div_ceil(u64::from(sector)) * u64::from(sector))
        .map_err(|_| DeltaError::UnsupportedParameters)?
        .max(sector);
    let pages = active / sector;
    let state = ((2 + 4 * pages) * 4).div_ceil(sector) * sector;
    let sizes = Sizes {
        flash_size: 8192 + 2 * sector + state + 2 * active + sector + 3 * sector,
        sector,
        write_size: 4,
        bootloader: 8192,
        state,
        active,
        credentials: sector,
        agent: sector,
    };
    let layout = Layout::try_new(sizes).map_err(|_| DeltaError::UnsupportedParameters)?;
    let mut sim = SimFlash::<4, 4096>::new(layout.flash_size as usize, Erased::Ones);
    sim.program_raw(layout.active.offset as usize, old_envelope);
    let placeholder = ed25519_dalek::SigningKey::from_bytes(&[1; 32])
        .verifying_key()
        .to_bytes();
    let config = BootConfig {
        model: HardwareModel::new("host").map_err(|_| DeltaError::UnsupportedParameters)?,
        genesis: TrustAnchors::new(1, 1, &[placeholder])
            .map_err(|_| DeltaError::UnsupportedParameters)?,
        layout,
    };
    Ok((sim, config, header))
}

/// Apply `patch` to `old_envelope` with the device's own applier on a
/// simulated flash, and return the rebuilt target envelope. Signatures are
/// not checked here (that needs the lock's anchors); the digest is.
#[cfg(feature = "sim")]
pub fn apply_on_sim(old_envelope: &[u8], patch: &[u8]) -> Result<Vec<u8>, DeltaError> {
    use core::cell::RefCell;

    use embassy_sync::blocking_mutex::Mutex;

    use super::apply::{Applier, Progress};
    use crate::updater::Updater;

    let (sim, config, header) = sim_lock(old_envelope, patch)?;
    let flash = Mutex::new(RefCell::new(sim));
    let mut up = Updater::new(&flash, config)?;
    let mut model = std::boxed::Box::new(super::model::Model::new());
    let mut applier = Applier::new(&mut up, &mut model)?;
    match applier.feed(patch)? {
        Progress::Rebuilt => {}
        Progress::NeedMore => return Err(DeltaError::Truncated),
    }
    let mut out = vec![0u8; PREFIX_LEN + header.target_len as usize];
    up.read_dfu(0, &mut out)?;
    Ok(out)
}
