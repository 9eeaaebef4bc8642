//! The streaming, resumable, `no_std` patch applier.
//!
//! Feed patch bytes as they arrive ([`Applier::feed`], chunks of any size).
//! The applier checks the patch header and that ACTIVE holds the base payload
//! before it writes anything, then writes the target envelope to DFU in order
//! through [`Updater`], reading the old image from ACTIVE and earlier new
//! bytes from DFU as the patch says. When the last byte is in, it verifies the
//! rebuilt envelope (digest, signatures, model, anti-rollback) and returns the
//! [`VerifiedImage`]: only then may the caller request the install.
//!
//! RAM: the caller's [`Model`] plus this struct (buffers below). No heap.

use embedded_storage::nor_flash::NorFlash;
use sha2::{Digest, Sha256};

use super::coder::{ByteSource, Decoder, Decoding};
use super::model::{Kind, Model};
use super::transform::{self, PLAIN};
use super::{DeltaError, HEADER_LEN, MIN_MATCH, PatchHeader, PrefixDecoder};
use crate::envelope::{PREFIX_LEN, Prefix, VerifiedImage};
use crate::updater::Updater;

/// Input buffer.
pub const IN_BUF: usize = 512;
/// Input kept buffered before decoding an element: the longest element (a
/// control) is under 112 bits, a bit consumes at most four bytes, and a block
/// start primes the decoder with four more.
pub const LOOKAHEAD: usize = 4 * 112 + 4;
/// Output buffer: also the read buffer for hashing and final verification.
pub const OUT_BUF: usize = PREFIX_LEN;
const CACHE: usize = 64;
const RECORD: usize = 64;
const HEADER_RECORD: usize = 128;

/// What [`Applier::feed`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Give me more bytes.
    NeedMore,
    /// The whole target envelope is in DFU and its payload, read back from
    /// flash, hashes to the signed target digest. Next: [`Applier::verify`]
    /// (signatures, model, anti-rollback) before requesting the install.
    Rebuilt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Header,
    Prefix,
    Body,
    Done,
    Failed,
}

/// Run state that survives a block boundary (and so goes in checkpoints).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Runs {
    /// Bytes of new payload produced.
    npos: u32,
    /// Old-image cursor.
    opos: i64,
    add_left: u32,
    copy_left: u32,
    /// Length of the current copy run (for the literal model's old-byte hint).
    copy_total: u32,
    seek: i64,
    /// Distance of the last new-image match in this block (0: none).
    rep_dist: u32,
}

/// A read cache over one flash bank.
#[derive(Debug)]
struct Cache {
    buf: [u8; CACHE],
    base: u32,
    valid: bool,
}

impl Cache {
    const fn new() -> Self {
        Self {
            buf: [0; CACHE],
            base: 0,
            valid: false,
        }
    }
}

/// The applier. See the module docs.
#[derive(Debug)]
pub struct Applier<'a, 'f, F: NorFlash> {
    up: &'a mut Updater<'f, F>,
    model: &'a mut Model,
    stage: Stage,
    header: Option<PatchHeader>,
    /// The signed target payload digest (from the target prefix).
    target_sha256: [u8; 32],
    hdr: [u8; HEADER_LEN],
    hdr_len: usize,
    /// Prefix code state (stage `Prefix`).
    prefix: PrefixDecoder,
    /// Prefix code bytes consumed.
    prefix_fed: u16,
    input: [u8; IN_BUF],
    in_pos: usize,
    in_end: usize,
    /// Patch bytes accepted so far (absolute offset in the patch).
    fed: u64,
    /// Body bytes consumed by the decoder.
    body_used: u32,
    dec: Decoder,
    primed: bool,
    out: [u8; OUT_BUF],
    out_len: usize,
    /// DFU offset of `out[0]`.
    out_base: u32,
    next_boundary: u32,
    block: u32,
    runs: Runs,
    old: Cache,
    new: Cache,
    records: u32,
}

/// `$c`: the arithmetic decoder over the applier's input. It borrows the
/// input fields only, so the model and the flash helpers stay usable around
/// it.
macro_rules! coder {
    ($a:ident, $c:ident) => {
        let mut src = Input {
            buf: &$a.input[..$a.in_end],
            pos: &mut $a.in_pos,
            used: &mut $a.body_used,
        };
        let mut $c = Decoding {
            dec: &mut $a.dec,
            src: &mut src,
        };
    };
}

struct Input<'b> {
    buf: &'b [u8],
    pos: &'b mut usize,
    used: &'b mut u32,
}

impl ByteSource for Input<'_> {
    fn next_byte(&mut self) -> u8 {
        let b = self.buf.get(*self.pos).copied().unwrap_or(0);
        if *self.pos < self.buf.len() {
            *self.pos += 1;
            *self.used += 1;
        }
        b
    }
}

impl<'a, 'f, F: NorFlash> Applier<'a, 'f, F> {
    /// Start applying a patch from its first byte.
    pub fn new(up: &'a mut Updater<'f, F>, model: &'a mut Model) -> Result<Self, DeltaError> {
        up.begin()?;
        model.reset();
        Ok(Self {
            up,
            model,
            stage: Stage::Header,
            header: None,
            target_sha256: [0; 32],
            hdr: [0; HEADER_LEN],
            hdr_len: 0,
            prefix: PrefixDecoder::new(0),
            prefix_fed: 0,
            input: [0; IN_BUF],
            in_pos: 0,
            in_end: 0,
            fed: 0,
            body_used: 0,
            dec: Decoder::new(&mut Zeros),
            primed: false,
            out: [0; OUT_BUF],
            out_len: 0,
            out_base: 0,
            next_boundary: 0,
            block: 0,
            runs: Runs::default(),
            old: Cache::new(),
            new: Cache::new(),
            records: 0,
        })
    }

    /// Continue an interrupted apply from the checkpoint in DFU's scratch
    /// sector. Feed patch bytes from [`Applier::patch_offset`] on. Without a
    /// usable checkpoint this is an error: start again with [`Applier::new`].
    pub fn resume(up: &'a mut Updater<'f, F>, model: &'a mut Model) -> Result<Self, DeltaError> {
        let mut rec = [0u8; HEADER_RECORD];
        up.scratch_read(0, &mut rec)?;
        if rec[0..4] != *b"NLCH" || !checksum_ok(&rec) {
            return Err(DeltaError::NoCheckpoint);
        }
        let mut hdr = [0u8; HEADER_LEN];
        hdr.copy_from_slice(&rec[4..4 + HEADER_LEN]);
        let header = PatchHeader::decode(&hdr)?;
        let mut target_sha256 = [0u8; 32];
        target_sha256.copy_from_slice(&rec[4 + HEADER_LEN..4 + HEADER_LEN + 32]);
        let mut last = None;
        let mut i = 0u32;
        loop {
            let at = HEADER_RECORD as u32 + i * RECORD as u32;
            if at as usize + RECORD > up.scratch_len() as usize {
                break;
            }
            let mut r = [0u8; RECORD];
            up.scratch_read(at, &mut r)?;
            match parse_block_record(&r, &header) {
                Some(c) if c.0 == i + 1 => last = Some(c),
                _ => break,
            }
            i += 1;
        }
        let (block, dfu_out, body_used, runs) = last.ok_or(DeltaError::NoCheckpoint)?;
        let mut a = Self::new(up, model)?;
        a.hdr = hdr;
        a.hdr_len = HEADER_LEN;
        a.header = Some(header);
        a.target_sha256 = target_sha256;
        a.stage = Stage::Body;
        a.fed = header.body_offset() + u64::from(body_used);
        a.body_used = body_used;
        a.out_base = dfu_out;
        a.block = block;
        a.next_boundary = dfu_out + header.block_size();
        a.runs = runs;
        a.records = i;
        Ok(a)
    }

    /// Absolute patch offset the next fed byte must come from (for an HTTP
    /// Range request after [`Applier::resume`]).
    pub fn patch_offset(&self) -> u64 {
        self.fed
    }

    /// The header, once parsed.
    pub fn header(&self) -> Option<&PatchHeader> {
        self.header.as_ref()
    }

    /// Feed the next bytes of the patch.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<Progress, DeltaError> {
        match self.stage {
            Stage::Failed => return Err(DeltaError::Poisoned),
            Stage::Done if !chunk.is_empty() => return self.fail(DeltaError::TrailingData),
            _ => {}
        }
        let r = self.feed_inner(&mut chunk);
        if r.is_err() {
            self.stage = Stage::Failed;
        }
        r
    }

    fn fail(&mut self, e: DeltaError) -> Result<Progress, DeltaError> {
        self.stage = Stage::Failed;
        Err(e)
    }

    fn feed_inner(&mut self, chunk: &mut &[u8]) -> Result<Progress, DeltaError> {
        loop {
            match self.stage {
                Stage::Header => {
                    let n = (HEADER_LEN - self.hdr_len).min(chunk.len());
                    self.hdr[self.hdr_len..self.hdr_len + n].copy_from_slice(&chunk[..n]);
                    self.hdr_len += n;
                    self.fed += n as u64;
                    *chunk = &chunk[n..];
                    if self.hdr_len < HEADER_LEN {
                        return Ok(Progress::NeedMore);
                    }
                    self.start()?;
                }
                Stage::Prefix => {
                    if self.feed_prefix(chunk)? {
                        return Ok(Progress::NeedMore);
                    }
                }
                Stage::Body => {
                    let header = self.header.ok_or(DeltaError::BadHeader)?;
                    // Refill the input buffer.
                    if self.in_pos > 0 {
                        self.input.copy_within(self.in_pos..self.in_end, 0);
                        self.in_end -= self.in_pos;
                        self.in_pos = 0;
                    }
                    let body_fed = self.fed - header.body_offset();
                    let remaining = u64::from(header.body_len).saturating_sub(body_fed);
                    let n = (IN_BUF - self.in_end)
                        .min(chunk.len())
                        .min(remaining.min(IN_BUF as u64) as usize);
                    self.input[self.in_end..self.in_end + n].copy_from_slice(&chunk[..n]);
                    self.in_end += n;
                    self.fed += n as u64;
                    *chunk = &chunk[n..];
                    if !chunk.is_empty() && remaining == n as u64 {
                        return Err(DeltaError::TrailingData);
                    }
                    let all_in = self.fed >= header.patch_len();
                    while all_in || self.in_end - self.in_pos >= LOOKAHEAD {
                        if self.step(&header)? {
                            self.check_rebuilt(&header)?;
                            self.stage = Stage::Done;
                            return Ok(Progress::Rebuilt);
                        }
                    }
                    if chunk.is_empty() {
                        return Ok(Progress::NeedMore);
                    }
                }
                Stage::Done | Stage::Failed => return Err(DeltaError::Poisoned),
            }
        }
    }

    /// Feed prefix code bytes from `chunk`; true if more are needed. When the
    /// code is complete, the target prefix is checked and written.
    fn feed_prefix(&mut self, chunk: &mut &[u8]) -> Result<bool, DeltaError> {
        let header = self.header.ok_or(DeltaError::BadHeader)?;
        let n = usize::from(header.prefix_code_len - self.prefix_fed).min(chunk.len());
        for &b in &chunk[..n] {
            self.prefix.feed(b, &mut self.out)?;
        }
        self.prefix_fed += n as u16;
        self.fed += n as u64;
        *chunk = &chunk[n..];
        if self.prefix_fed < header.prefix_code_len {
            return Ok(true);
        }
        if !self.prefix.done() {
            return Err(DeltaError::Corrupt("prefix code shorter than its prefix"));
        }
        // The padding the patch leaves out.
        self.out[header.prefix_used_len()..PREFIX_LEN].fill(0);
        self.out_len = PREFIX_LEN;
        self.check_prefix()?;
        self.flush()?;
        self.stage = Stage::Body;
        Ok(false)
    }

    /// Header complete: validate, check the base, open the checkpoint log.
    /// (Not inlined: its hasher stays out of the frame the body is decoded
    /// under; the measured stack is 3.4 KiB deeper when it is inlined.)
    #[inline(never)]
    fn start(&mut self) -> Result<(), DeltaError> {
        let h = PatchHeader::decode(&self.hdr)?;
        let max = u64::from(self.up.active_capacity());
        let len = PREFIX_LEN as u64 + u64::from(h.target_len);
        if len > max {
            return Err(DeltaError::TargetTooLarge { len, max });
        }
        if u64::from(h.base_len) + PREFIX_LEN as u64 > max {
            return Err(DeltaError::BaseMismatch);
        }
        // The base must be what ACTIVE holds, before anything is written.
        let mut hasher = Sha256::new();
        let mut off = 0u32;
        while off < h.base_len {
            let n = (h.base_len - off).min(OUT_BUF as u32) as usize;
            self.up
                .read_active(PREFIX_LEN as u32 + off, &mut self.out[..n])?;
            hasher.update(&self.out[..n]);
            off += n as u32;
        }
        let digest: [u8; 32] = hasher.finalize().into();
        if !h.is_base(&digest) {
            return Err(DeltaError::BaseMismatch);
        }
        // The target prefix is coded against the running image's prefix:
        // `out` holds it, and the prefix code overwrites it in place.
        self.up.read_active(0, &mut self.out[..PREFIX_LEN])?;
        self.prefix = PrefixDecoder::new(h.prefix_used_len());
        self.prefix_fed = 0;
        self.header = Some(h);
        self.out_len = 0;
        self.out_base = 0;
        self.next_boundary = h.block_size();
        self.stage = Stage::Prefix;
        Ok(())
    }

    /// Target prefix complete: it must parse, carry the number of signatures
    /// the header says and the header's payload length. Then open the
    /// checkpoint log (its header record binds the patch header and the
    /// signed target digest).
    fn check_prefix(&mut self) -> Result<(), DeltaError> {
        let h = self.header.ok_or(DeltaError::BadHeader)?;
        let p = Prefix::parse(&self.out[..PREFIX_LEN]).map_err(DeltaError::BadTargetPrefix)?;
        if !h.describes(&p) {
            return Err(DeltaError::BadHeader);
        }
        self.target_sha256 = p.header.payload_sha256;
        self.up.scratch_erase()?;
        let mut rec = [0u8; HEADER_RECORD];
        rec[0..4].copy_from_slice(b"NLCH");
        rec[4..4 + HEADER_LEN].copy_from_slice(&self.hdr);
        rec[4 + HEADER_LEN..4 + HEADER_LEN + 32].copy_from_slice(&self.target_sha256);
        seal(&mut rec);
        self.up.scratch_write(0, &rec)?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DeltaError> {
        if self.out_len > 0 {
            self.up
                .write_dfu(self.out_base, &self.out[..self.out_len])?;
            self.out_base += self.out_len as u32;
            self.out_len = 0;
        }
        Ok(())
    }

    fn emit(&mut self, b: u8) -> Result<(), DeltaError> {
        self.out[self.out_len] = b;
        self.out_len += 1;
        self.runs.npos += 1;
        if self.out_len == OUT_BUF {
            self.flush()?;
        }
        Ok(())
    }

    fn dfu_pos(&self) -> u32 {
        self.out_base + self.out_len as u32
    }

    fn old_byte(&mut self, pos: i64, base_len: u32) -> Result<u8, DeltaError> {
        if pos < 0 || pos >= i64::from(base_len) {
            return Err(DeltaError::Corrupt("old-image position out of range"));
        }
        let pos = pos as u32;
        let c = &mut self.old;
        if !c.valid || pos < c.base || pos >= c.base + CACHE as u32 {
            let base = pos - pos % CACHE as u32;
            let n = (base_len - base).min(CACHE as u32) as usize;
            self.up
                .read_active(PREFIX_LEN as u32 + base, &mut c.buf[..n])?;
            c.base = base;
            c.valid = true;
        }
        Ok(c.buf[(pos - c.base) as usize])
    }

    fn new_byte(&mut self, q: u32) -> Result<u8, DeltaError> {
        let d = PREFIX_LEN as u32 + q;
        if d >= self.out_base {
            return Ok(self.out[(d - self.out_base) as usize]);
        }
        let c = &mut self.new;
        if !c.valid || d < c.base || d >= c.base + CACHE as u32 {
            let base = d - d % CACHE as u32;
            let n = (self.out_base - base).min(CACHE as u32) as usize;
            self.up.read_dfu(base, &mut c.buf[..n])?;
            c.base = base;
            c.valid = true;
        }
        Ok(c.buf[(d - c.base) as usize])
    }

    /// In an add run under an instruction-set transform: if the old image
    /// has an instruction with a field here ([`transform::field_at`]), decode
    /// its field difference and its bytes, emit it and return true. (Not
    /// inlined: its buffers stay out of [`Self::step`]'s frame.)
    #[inline(never)]
    fn add_field(&mut self, h: &PatchHeader) -> Result<bool, DeltaError> {
        let (opos, npos) = (self.runs.opos, self.runs.npos);
        let base_len = i64::from(h.base_len);
        let mut w = [0u8; 4];
        for (i, b) in w.iter_mut().enumerate() {
            let p = opos + i as i64;
            if (0..base_len).contains(&p) {
                *b = self.old_byte(p, h.base_len)?;
            }
        }
        let to_boundary = u64::from(self.next_boundary - self.dfu_pos());
        let Some(insn) = transform::field_at(
            h.transform,
            opos,
            u64::from(h.base_len),
            u64::from(self.runs.add_left),
            to_boundary,
            &w,
        ) else {
            return Ok(false);
        };
        let n = insn.width();
        let old_field = insn.field(&w);
        let f = {
            coder!(self, c);
            self.model
                .field_delta(&mut c, insn, w[0], opos, i64::from(npos), old_field, 0)
        };
        let mut adj = [0u8; 4];
        let mut op = if opos > 0 {
            self.old_byte(opos - 1, h.base_len)?
        } else {
            0
        };
        for i in 0..n {
            let d = {
                coder!(self, c);
                self.model.add_byte(&mut c, w[i], op, npos + i as u32, 0)
            };
            adj[i] = w[i].wrapping_add(d);
            op = w[i];
        }
        let field = insn.field(&adj).wrapping_add(f);
        insn.set_field(&mut adj, field);
        for &b in &adj[..n] {
            self.emit(b)?;
        }
        self.runs.opos += n as i64;
        self.runs.add_left -= n as u32;
        Ok(true)
    }

    /// Decode one element. Returns true when the target is complete.
    fn step(&mut self, h: &PatchHeader) -> Result<bool, DeltaError> {
        let target = h.target_len;
        if self.runs.npos == target {
            if self.runs.add_left != 0 || self.runs.copy_left != 0 {
                return Err(DeltaError::Corrupt("runs continue past the target length"));
            }
            return Ok(true);
        }
        if self.dfu_pos() == self.next_boundary {
            self.boundary(h)?;
        }
        if !self.primed {
            let mut src = Input {
                buf: &self.input[..self.in_end],
                pos: &mut self.in_pos,
                used: &mut self.body_used,
            };
            self.dec = Decoder::new(&mut src);
            self.primed = true;
        }
        let left = target - self.runs.npos;
        if self.runs.add_left == 0 && self.runs.copy_left == 0 {
            coder!(self, c);
            let add = self.model.number(&mut c, Kind::AddLen, 0);
            let copy = self.model.number(&mut c, Kind::CopyLen, 0);
            let seek = self.model.signed(&mut c, Kind::Seek, 0);
            if add == 0 && copy == 0 {
                return Err(DeltaError::Corrupt("empty control"));
            }
            if u64::from(add) + u64::from(copy) > u64::from(left) {
                return Err(DeltaError::Corrupt("control longer than the target"));
            }
            self.runs.add_left = add;
            self.runs.copy_left = copy;
            self.runs.copy_total = copy;
            self.runs.seek = i64::from(seek);
            return Ok(false);
        }
        if self.runs.add_left > 0 && h.transform != PLAIN && self.add_field(h)? {
            self.after_run();
            return Ok(false);
        }
        if self.runs.add_left > 0 {
            let (opos, npos) = (self.runs.opos, self.runs.npos);
            let o = self.old_byte(opos, h.base_len)?;
            let op = if opos > 0 {
                self.old_byte(opos - 1, h.base_len)?
            } else {
                0
            };
            let d = {
                coder!(self, c);
                self.model.add_byte(&mut c, o, op, npos, 0)
            };
            self.runs.opos += 1;
            self.runs.add_left -= 1;
            self.emit(o.wrapping_add(d))?;
            self.after_run();
            return Ok(false);
        }
        // Copy run: a literal, or a match into the new or the old image.
        let to_boundary = self.next_boundary - self.dfu_pos();
        let (hint, pred) = {
            let r = self.runs;
            let at = r.opos + i64::from(r.copy_total - r.copy_left);
            let hint = if (0..i64::from(h.base_len)).contains(&at) {
                self.old_byte(at, h.base_len)?
            } else {
                0
            };
            let pred = if r.rep_dist > 0 && r.rep_dist <= r.npos {
                self.new_byte(r.npos - r.rep_dist)?
            } else {
                0
            };
            (hint, pred)
        };
        let element = {
            coder!(self, c);
            if self.model.token(&mut c, false) {
                let new_src = self.model.source(&mut c, false);
                let len = self.model.number(&mut c, Kind::MatchLen, 0) + MIN_MATCH;
                if new_src {
                    let dist = self.model.number(&mut c, Kind::NewDist, 0) + 1;
                    Element::NewMatch { len, dist }
                } else {
                    let off = self.model.signed(&mut c, Kind::OldOff, 0);
                    Element::OldMatch { len, off }
                }
            } else {
                Element::Literal(self.model.literal(&mut c, 0, hint, pred))
            }
        };
        match element {
            Element::Literal(b) => {
                self.runs.copy_left -= 1;
                self.emit(b)?;
            }
            Element::NewMatch { len, dist } => {
                if len > self.runs.copy_left || len > to_boundary || dist > self.runs.npos {
                    return Err(DeltaError::Corrupt("match outside the new image"));
                }
                let from = self.runs.npos - dist;
                self.runs.rep_dist = dist;
                for i in 0..len {
                    let b = self.new_byte(from + i)?;
                    self.model.note_literal(b);
                    self.emit(b)?;
                }
                self.runs.copy_left -= len;
            }
            Element::OldMatch { len, off } => {
                let from = self.runs.opos + i64::from(off);
                if len > self.runs.copy_left
                    || len > to_boundary
                    || from < 0
                    || from + i64::from(len) > i64::from(h.base_len)
                {
                    return Err(DeltaError::Corrupt("match outside the old image"));
                }
                for i in 0..len {
                    let b = self.old_byte(from + i64::from(i), h.base_len)?;
                    self.model.note_literal(b);
                    self.emit(b)?;
                }
                self.runs.copy_left -= len;
            }
        }
        self.after_run();
        Ok(false)
    }

    fn after_run(&mut self) {
        let r = &mut self.runs;
        if r.add_left == 0 && r.copy_left == 0 {
            r.opos += r.seek;
            r.seek = 0;
        }
    }

    /// Block boundary: everything before it is in flash; record a
    /// checkpoint, restart models and coder.
    fn boundary(&mut self, h: &PatchHeader) -> Result<(), DeltaError> {
        self.flush()?;
        self.block += 1;
        let mut r = [0u8; RECORD];
        r[0..4].copy_from_slice(b"NLCB");
        r[4..12].copy_from_slice(&h.id());
        r[12..16].copy_from_slice(&self.block.to_le_bytes());
        r[16..20].copy_from_slice(&self.dfu_pos().to_le_bytes());
        r[20..24].copy_from_slice(&self.body_used.to_le_bytes());
        r[24..28].copy_from_slice(&self.runs.npos.to_le_bytes());
        r[28..36].copy_from_slice(&self.runs.opos.to_le_bytes());
        r[36..40].copy_from_slice(&self.runs.add_left.to_le_bytes());
        r[40..44].copy_from_slice(&self.runs.copy_left.to_le_bytes());
        r[44..52].copy_from_slice(&self.runs.seek.to_le_bytes());
        r[52..56].copy_from_slice(&self.runs.copy_total.to_le_bytes());
        seal(&mut r);
        let at = HEADER_RECORD as u32 + self.records * RECORD as u32;
        if at as usize + RECORD <= self.up.scratch_len() as usize {
            self.up.scratch_write(at, &r)?;
            self.records += 1;
        }
        self.model.reset();
        self.runs.rep_dist = 0;
        self.primed = false;
        self.next_boundary += h.block_size();
        Ok(())
    }

    /// All output decoded: the body must be used up exactly, and the payload
    /// read back from DFU must hash to the target digest.
    fn check_rebuilt(&mut self, h: &PatchHeader) -> Result<(), DeltaError> {
        self.flush()?;
        if self.body_used != h.body_len || self.in_pos != self.in_end {
            return Err(DeltaError::Corrupt(
                "body length does not match the decoded data",
            ));
        }
        let mut hasher = Sha256::new();
        let mut off = 0u32;
        while off < h.target_len {
            let n = (h.target_len - off).min(OUT_BUF as u32) as usize;
            self.up
                .read_dfu(PREFIX_LEN as u32 + off, &mut self.out[..n])?;
            hasher.update(&self.out[..n]);
            off += n as u32;
        }
        let digest: [u8; 32] = hasher.finalize().into();
        if digest != self.target_sha256 {
            return Err(DeltaError::TargetDigestMismatch);
        }
        Ok(())
    }

    /// After [`Progress::Rebuilt`]: verify the rebuilt envelope with the
    /// bootloader's policy (signatures, model, anti-rollback minimum).
    pub fn verify(&mut self) -> Result<VerifiedImage, DeltaError> {
        if self.stage != Stage::Done {
            return Err(DeltaError::Truncated);
        }
        let img = self.up.verify_dfu(&mut self.out).map_err(|e| match e {
            crate::updater::UpdateError::Image(e) => DeltaError::Image(e),
            e => DeltaError::Update(e),
        })?;
        if img.header().payload_sha256 != self.target_sha256 {
            return Err(DeltaError::TargetDigestMismatch);
        }
        Ok(img)
    }

    /// Call when the transfer has ended: an error unless the patch completed.
    pub fn finish(&mut self) -> Result<(), DeltaError> {
        match self.stage {
            Stage::Done => Ok(()),
            Stage::Failed => Err(DeltaError::Poisoned),
            _ => Err(DeltaError::Truncated),
        }
    }
}

enum Element {
    Literal(u8),
    NewMatch { len: u32, dist: u32 },
    OldMatch { len: u32, off: i32 },
}

struct Zeros;
impl ByteSource for Zeros {
    fn next_byte(&mut self) -> u8 {
        0
    }
}

/// Last 8 bytes of a record: truncated SHA-256 of the rest.
fn seal(rec: &mut [u8]) {
    let n = rec.len() - 8;
    let d: [u8; 32] = Sha256::digest(&rec[..n]).into();
    rec[n..].copy_from_slice(&d[..8]);
}

fn checksum_ok(rec: &[u8]) -> bool {
    let n = rec.len() - 8;
    let d: [u8; 32] = Sha256::digest(&rec[..n]).into();
    rec[n..] == d[..8]
}

type Checkpoint = (u32, u32, u32, Runs);

fn parse_block_record(r: &[u8; RECORD], h: &PatchHeader) -> Option<Checkpoint> {
    if r[0..4] != *b"NLCB" || r[4..12] != h.id() || !checksum_ok(r) {
        return None;
    }
    let u32_at = |i: usize| u32::from_le_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]);
    let i64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&r[i..i + 8]);
        i64::from_le_bytes(b)
    };
    let dfu_out = u32_at(16);
    if dfu_out % h.block_size() != 0 || dfu_out == 0 {
        return None;
    }
    Some((
        u32_at(12),
        dfu_out,
        u32_at(20),
        Runs {
            npos: u32_at(24),
            opos: i64_at(28),
            add_left: u32_at(36),
            copy_left: u32_at(40),
            seek: i64_at(44),
            copy_total: u32_at(52),
            rep_dist: 0,
        },
    ))
}
