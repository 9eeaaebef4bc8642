//! Context-mixing models for the delta stream.
//!
//! Every syntax element is coded bit by bit through [`BitCoder`]; the encoder
//! and the decoder run this same code, so they cannot disagree. Probabilities
//! come from small adaptive counters (12-bit probability + 4-bit count in a
//! `u16`) selected by contexts, mixed in the logistic domain by online-trained
//! mixers (as in lpaq). All state is in fixed arrays: [`Model`] is the whole
//! RAM the models need, decided at compile time.
//!
//! What is modelled:
//! - **add bytes** (bsdiff's `new - old` differences, mostly zero): first a
//!   "non-zero?" flag from five contexts (zero-run length, the old byte, the
//!   recent flag pattern and position, hashed old-byte pairs, earlier
//!   differences at stride 4 and 8), then the value from the old byte, the last
//!   non-zero difference and neighbouring differences;
//! - **literals** inside copy runs: orders 0–3;
//! - **numbers** (lengths, seeks, match positions): bit length through a
//!   bit tree, then the top mantissa bits modelled, the rest near-uniform.

use super::coder::BitCoder;
use super::transform::Insn;

/// log2 of the shared hashed-context table size.
pub const HASH_BITS: u32 = 13;
const HASH_MASK: u32 = (1 << HASH_BITS) - 1;

/// Number kinds (each has its own contexts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Length of an add run.
    AddLen = 0,
    /// Length of a copy run.
    CopyLen = 1,
    /// Old-cursor move after a control.
    Seek = 2,
    /// Match length (minus the minimum).
    MatchLen = 3,
    /// Distance back into the new image.
    NewDist = 4,
    /// Offset of an old-image match from the old cursor.
    OldOff = 5,
    /// An instruction field difference not among the recent ones.
    Field = 6,
}
const KINDS: usize = 7;
/// Instruction classes ([`Insn::class`]).
const CLASSES: usize = 3;
/// Recent field differences remembered per class.
const MRU: usize = 4;
/// Regions of old targets whose move is remembered.
const SHIFTS: usize = 256;
/// log2 of a target region's size.
const REGION_LOG2: u32 = 10;

const SQUASH_T: [i32; 33] = [
    1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047, 2549, 2994, 3348,
    3607, 3785, 3901, 3975, 4022, 4050, 4068, 4079, 4085, 4089, 4092, 4093, 4094,
];

/// Logistic function: stretch domain (±2047, 8 fractional bits) → 12-bit probability.
#[inline]
pub const fn squash(d: i32) -> i32 {
    if d > 2047 {
        return 4095;
    }
    if d < -2047 {
        return 1;
    }
    let w = d & 127;
    let i = ((d >> 7) + 16) as usize;
    (SQUASH_T[i] * (128 - w) + SQUASH_T[i + 1] * w + 64) >> 7
}

const fn build_stretch() -> [i16; 4096] {
    let mut t = [0i16; 4096];
    let mut pi = 0usize;
    let mut x = -2047i32;
    while x <= 2047 {
        let v = squash(x) as usize;
        let mut i = pi;
        while i <= v && i < 4096 {
            t[i] = x as i16;
            i += 1;
        }
        pi = v + 1;
        x += 1;
    }
    while pi < 4096 {
        t[pi] = 2047;
        pi += 1;
    }
    t
}

/// Inverse of [`squash`], in flash (a `const` table, no RAM).
static STRETCH: [i16; 4096] = build_stretch();

#[inline]
fn stretch(p: u32) -> i32 {
    i32::from(STRETCH[(p & 4095) as usize])
}

/// Adaptation rate by observation count: 2 / (2n + 3), scaled by 65536.
const RATE: [i32; 16] = {
    let mut t = [0i32; 16];
    let mut n = 0;
    while n < 16 {
        t[n] = 131_072 / (2 * n as i32 + 3);
        n += 1;
    }
    t
};

const CTR_INIT: u16 = 2048 << 4;

#[inline]
fn p_of(c: u16) -> u32 {
    u32::from(c >> 4).clamp(1, 4095)
}

#[inline]
fn update(c: &mut u16, bit: u32, limit: u16) {
    let p = i32::from(*c >> 4);
    let n = *c & 15;
    let target = if bit != 0 { 4095 } else { 0 };
    let p = (p + (((target - p) * RATE[usize::from(n)]) >> 16)).clamp(1, 4095);
    let n = if n < limit { n + 1 } else { n };
    *c = ((p as u16) << 4) | n;
}

/// A logistic mixer of `N` inputs with `S` weight sets.
#[derive(Debug, Clone)]
struct Mixer<const N: usize, const S: usize> {
    w: [[i32; N]; S],
    x: [i32; N],
    set: usize,
    pr: i32,
    lr: i32,
}

impl<const N: usize, const S: usize> Mixer<N, S> {
    const fn new(lr: i32) -> Self {
        Self {
            w: [[(1 << 17) / N as i32; N]; S],
            x: [0; N],
            set: 0,
            pr: 2048,
            lr,
        }
    }

    #[inline]
    fn mix(&mut self, x: [i32; N], set: usize) -> u32 {
        self.x = x;
        self.set = set % S;
        let dot: i64 = x
            .iter()
            .zip(&self.w[self.set])
            .map(|(&x, &w)| i64::from(x) * i64::from(w))
            .sum();
        self.pr = squash((dot >> 16) as i32).clamp(1, 4095);
        self.pr as u32
    }

    #[inline]
    fn learn(&mut self, bit: u32) {
        let err = ((bit as i32) << 12) - self.pr;
        for (w, &x) in self.w[self.set].iter_mut().zip(&self.x) {
            // Clamped so no input, however hostile, can overflow a weight.
            *w = (*w + ((x * err * self.lr) >> 10)).clamp(-(1 << 24), 1 << 24);
        }
    }
}

#[inline]
fn hash(a: u32, b: u32) -> usize {
    ((a.wrapping_mul(0x9E37_79B1) ^ b.wrapping_mul(0x85EB_CA77))
        .rotate_left(13)
        .wrapping_mul(0xC2B2_AE3D)
        >> (32 - HASH_BITS)
        & HASH_MASK) as usize
}

/// All model state. `const`-constructible so a device can place it in a
/// `static`; [`Model::reset`] restarts it in place at each block.
#[derive(Debug, Clone)]
pub struct Model {
    hashed: [u16; 1 << HASH_BITS],
    f1: [u16; 64],
    f2: [u16; 1024],
    f3: [u16; 1024],
    v1: [u16; 256],
    l1: [u16; 256],
    token: [u16; 4],
    src: [u16; 2],
    sign: [u16; KINDS],
    nbits: [[u16; 32]; KINDS],
    mant: [[u16; 128]; KINDS],
    fzero: [u16; CLASSES * 16 * 2],
    fpred: [u16; CLASSES * 4],
    /// Learned target moves (new - old) per old target region.
    shifts: [i32; SHIFTS],
    fhit: [u16; CLASSES * MRU],
    fmru: [[u32; MRU]; CLASSES],
    fhist: [u8; CLASSES],
    mf: Mixer<6, 64>,
    mv: Mixer<6, 16>,
    ml: Mixer<8, 16>,
    // history
    diffs: u64,
    flags: u32,
    zrun: u32,
    last_nz: u8,
    lits: u32,
    last_token: u8,
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

impl Model {
    /// Fresh model.
    pub const fn new() -> Self {
        Self {
            hashed: [CTR_INIT; 1 << HASH_BITS],
            f1: [CTR_INIT; 64],
            f2: [CTR_INIT; 1024],
            f3: [CTR_INIT; 1024],
            v1: [CTR_INIT; 256],
            l1: [CTR_INIT; 256],
            token: [CTR_INIT; 4],
            src: [CTR_INIT; 2],
            sign: [CTR_INIT; KINDS],
            nbits: [[CTR_INIT; 32]; KINDS],
            mant: [[CTR_INIT; 128]; KINDS],
            fzero: [CTR_INIT; CLASSES * 16 * 2],
            fpred: [CTR_INIT; CLASSES * 4],
            shifts: [0; SHIFTS],
            fhit: [CTR_INIT; CLASSES * MRU],
            fmru: [[0; MRU]; CLASSES],
            fhist: [0; CLASSES],
            mf: Mixer::new(6),
            mv: Mixer::new(2),
            ml: Mixer::new(3),
            diffs: 0,
            flags: 0,
            zrun: 0,
            last_nz: 0,
            lits: 0,
            last_token: 0,
        }
    }

    /// Restart every table and history (block boundary).
    pub fn reset(&mut self) {
        self.hashed.fill(CTR_INIT);
        self.f1.fill(CTR_INIT);
        self.f2.fill(CTR_INIT);
        self.f3.fill(CTR_INIT);
        self.v1.fill(CTR_INIT);
        self.l1.fill(CTR_INIT);
        self.token.fill(CTR_INIT);
        self.src.fill(CTR_INIT);
        self.sign.fill(CTR_INIT);
        for t in &mut self.nbits {
            t.fill(CTR_INIT);
        }
        for t in &mut self.mant {
            t.fill(CTR_INIT);
        }
        self.fzero.fill(CTR_INIT);
        self.fpred.fill(CTR_INIT);
        self.shifts.fill(0);
        self.fhit.fill(CTR_INIT);
        self.fmru = [[0; MRU]; CLASSES];
        self.fhist = [0; CLASSES];
        self.mf = Mixer::new(6);
        self.mv = Mixer::new(2);
        self.ml = Mixer::new(3);
        self.diffs = 0;
        self.flags = 0;
        self.zrun = 0;
        self.last_nz = 0;
        self.lits = 0;
        self.last_token = 0;
    }

    #[inline]
    fn bit_direct<C: BitCoder>(c: &mut C, ctr: &mut u16, bit: u32, limit: u16) -> u32 {
        let b = c.code(p_of(*ctr), bit);
        update(ctr, b, limit);
        b
    }

    /// Code one add byte `d = new - old` (the encoder passes `d`, the decoder
    /// gets it back). `o`, `op` are the old bytes at and before the cursor;
    /// `npos` is the position in the new image.
    pub fn add_byte<C: BitCoder>(&mut self, c: &mut C, o: u8, op: u8, npos: u32, d: u8) -> u8 {
        let (o, op) = (u32::from(o), u32::from(op));
        let d1 = (self.diffs & 0xFF) as u32;
        let d4 = ((self.diffs >> 24) & 0xFF) as u32;
        let d8 = ((self.diffs >> 56) & 0xFF) as u32;
        let (d1nz, d4nz) = (u32::from(d1 != 0), u32::from(d4 != 0));
        let i1 = (self.zrun.min(15) * 2 + d1nz + 32 * (npos & 1)) as usize;
        let i2 = (o * 4 + d1nz * 2 + d4nz) as usize;
        let i3 = ((self.flags & 0xFF) * 4 + (npos & 3)) as usize;
        let i4 = hash(o | (op << 8), 1 + (self.flags & 0xF));
        let i5 = hash(d4 | (d8 << 8), 2 + ((self.flags & 3) << 4));
        let x = [
            stretch(p_of(self.f1[i1])),
            stretch(p_of(self.f2[i2])),
            stretch(p_of(self.f3[i3])),
            stretch(p_of(self.hashed[i4])),
            stretch(p_of(self.hashed[i5])),
            256,
        ];
        let p = self.mf.mix(x, (self.flags & 0x3F) as usize);
        let nz = c.code(p, u32::from(d != 0));
        self.mf.learn(nz);
        update(&mut self.f1[i1], nz, 14);
        update(&mut self.f2[i2], nz, 15);
        update(&mut self.f3[i3], nz, 15);
        update(&mut self.hashed[i4], nz, 15);
        update(&mut self.hashed[i5], nz, 15);

        let value = if nz == 1 {
            let mut c0 = 1u32;
            let last = u32::from(self.last_nz);
            while c0 < 256 {
                let bit = (u32::from(d) >> (8 - (32 - c0.leading_zeros()))) & 1;
                let j2 = hash(o, c0);
                let j3 = hash(last | 0x1000, c0);
                let j4 = hash(d4 | 0x2000 | (d1 << 8), c0);
                let j5 = hash(o | (op << 8) | 0x3_0000, c0);
                let x = [
                    stretch(p_of(self.v1[c0 as usize])),
                    stretch(p_of(self.hashed[j2])),
                    stretch(p_of(self.hashed[j3])),
                    stretch(p_of(self.hashed[j4])),
                    stretch(p_of(self.hashed[j5])),
                    256,
                ];
                let p = self
                    .mv
                    .mix(x, (32 - c0.leading_zeros()) as usize * 2 + d1nz as usize);
                let b = c.code(p, bit);
                self.mv.learn(b);
                update(&mut self.v1[c0 as usize], b, 14);
                update(&mut self.hashed[j2], b, 4);
                update(&mut self.hashed[j3], b, 4);
                update(&mut self.hashed[j4], b, 4);
                update(&mut self.hashed[j5], b, 4);
                c0 = (c0 << 1) | b;
            }
            let v = (c0 & 0xFF) as u8;
            self.last_nz = v;
            self.zrun = 0;
            v
        } else {
            self.zrun += 1;
            0
        };
        self.flags = (self.flags << 1) | nz;
        self.diffs = (self.diffs << 8) | u64::from(value);
        value
    }

    /// Code a literal byte of a copy run.
    pub fn literal<C: BitCoder>(&mut self, c: &mut C, byte: u8, hint: u8, pred: u8) -> u8 {
        let h = self.lits;
        let (c1, c12, c123) = (h & 0xFF, h & 0xFFFF, h & 0xFF_FFFF);
        let c2 = (h >> 8) & 0xFF;
        let hint = u32::from(hint);
        let pred = u32::from(pred) | 0x100;
        let mut c0 = 1u32;
        while c0 < 256 {
            let bit = (u32::from(byte) >> (8 - (32 - c0.leading_zeros()))) & 1;
            let j2 = hash(c1 | 0x100, c0);
            let j3 = hash(c12 | 0x2_0000, c0);
            let j4 = hash(c123 | 0x300_0000, c0);
            let j5 = hash(c2 | 0x4000, c0);
            let j6 = hash(hint | (c1 << 8) | 0x5_0000, c0);
            // The byte a repeat of the last match distance would give, as far
            // as it agrees with the bits coded so far.
            let agree = (pred >> (9 - (32 - c0.leading_zeros()))) == c0;
            let j7 = hash(pred | (u32::from(agree) << 9) | 0x60_0000, c0);
            let x = [
                stretch(p_of(self.l1[c0 as usize])),
                stretch(p_of(self.hashed[j2])),
                stretch(p_of(self.hashed[j3])),
                stretch(p_of(self.hashed[j4])),
                stretch(p_of(self.hashed[j5])),
                stretch(p_of(self.hashed[j6])),
                stretch(p_of(self.hashed[j7])),
                256,
            ];
            let p = self.ml.mix(
                x,
                (32 - c0.leading_zeros()) as usize * 2 + usize::from(agree),
            );
            let b = c.code(p, bit);
            self.ml.learn(b);
            update(&mut self.l1[c0 as usize], b, 14);
            update(&mut self.hashed[j2], b, 4);
            update(&mut self.hashed[j3], b, 4);
            update(&mut self.hashed[j4], b, 4);
            update(&mut self.hashed[j5], b, 4);
            update(&mut self.hashed[j6], b, 4);
            update(&mut self.hashed[j7], b, 4);
            c0 = (c0 << 1) | b;
        }
        let v = (c0 & 0xFF) as u8;
        self.note_literal(v);
        v
    }

    /// Bytes produced by a match also feed the literal history.
    pub fn note_literal(&mut self, v: u8) {
        self.lits = (self.lits << 8) | u32::from(v);
    }

    /// Code whether the next copy element is a match (1) or a literal (0).
    pub fn token<C: BitCoder>(&mut self, c: &mut C, is_match: bool) -> bool {
        let i = usize::from(self.last_token & 3);
        let b = Self::bit_direct(c, &mut self.token[i], u32::from(is_match), 14);
        self.last_token = ((self.last_token << 1) | b as u8) & 3;
        b == 1
    }

    /// Code a match source: old image (0) or new image (1).
    pub fn source<C: BitCoder>(&mut self, c: &mut C, new: bool) -> bool {
        Self::bit_direct(c, &mut self.src[0], u32::from(new), 14) == 1
    }

    /// Code an unsigned number below 2^31.
    pub fn number<C: BitCoder>(&mut self, c: &mut C, kind: Kind, v: u32) -> u32 {
        let k = kind as usize;
        let v = v & 0x7FFF_FFFF;
        let n = 32 - v.leading_zeros(); // 0..=31
        // bit length through a 5-level bit tree
        let mut node = 1usize;
        for i in (0..5).rev() {
            let bit = (n >> i) & 1;
            let b = Self::bit_direct(c, &mut self.nbits[k][node], bit, 14);
            node = (node << 1) | b as usize;
        }
        let n = (node & 31) as u32;
        if n <= 1 {
            return n;
        }
        let mut value = 1u32;
        for i in (0..n - 1).rev() {
            let bit = (v >> i) & 1;
            let top = n - 2 - i; // 0 for the bit just under the MSB
            let b = if top < 2 {
                let ctx = ((n as usize) * 4 + (value as usize & 1) * 2 + top as usize) & 127;
                Self::bit_direct(c, &mut self.mant[k][ctx], bit, 14)
            } else {
                c.code(2048, bit)
            };
            value = (value << 1) | b;
        }
        value
    }

    /// Code an instruction field difference `f` (mod 2^[`Insn::bits`]) of
    /// the instruction at old offset `opos` / new offset `npos`, whose old
    /// first byte is `opcode` and old field `old_field`: first whether it
    /// moves its target as the last one into the same region of the old image
    /// did, then zero, one of the last few differences, or a new number.
    #[allow(clippy::too_many_arguments)]
    pub fn field_delta<C: BitCoder>(
        &mut self,
        c: &mut C,
        insn: Insn,
        opcode: u8,
        opos: i64,
        npos: i64,
        old_field: u32,
        f: u32,
    ) -> u32 {
        let k = insn.class();
        let bits = insn.bits();
        let mask = (1u32 << bits) - 1;
        let f = f & mask;
        let old_target = insn.target(opcode, opos, old_field);
        let region = ((old_target >> REGION_LOG2) as u64 as usize) % SHIFTS;
        let pred_target = old_target + i64::from(self.shifts[region]);
        let pred = insn
            .field_for(opcode, npos, pred_target)
            .wrapping_sub(old_field)
            & mask;
        let h = usize::from(self.fhist[k] & 3);
        let v = if pred != 0
            && Self::bit_direct(c, &mut self.fpred[k * 4 + h], u32::from(f == pred), 14) == 1
        {
            pred
        } else {
            self.field_value(c, insn, opcode, f, pred)
        };
        self.fhist[k] = (self.fhist[k] << 1) | u8::from(v == pred);
        // What this instruction says about its target's region.
        let new_target = insn.target(opcode, npos, old_field.wrapping_add(v) & mask);
        self.shifts[region] = (new_target - old_target) as i32;
        v
    }

    fn field_value<C: BitCoder>(
        &mut self,
        c: &mut C,
        insn: Insn,
        opcode: u8,
        f: u32,
        pred: u32,
    ) -> u32 {
        let k = insn.class();
        let bits = insn.bits();
        let mask = (1u32 << bits) - 1;
        let zi = (k * 16 + usize::from(opcode >> 4)) * 2 + usize::from(pred != 0);
        if Self::bit_direct(c, &mut self.fzero[zi], u32::from(f == 0), 14) == 1 {
            return 0;
        }
        for i in 0..MRU {
            let m = self.fmru[k][i];
            let hit = Self::bit_direct(c, &mut self.fhit[k * MRU + i], u32::from(f == m), 14);
            if hit == 1 {
                self.fmru[k].copy_within(0..i, 1);
                self.fmru[k][0] = m;
                return m;
            }
        }
        // Sign-extend from `bits`.
        let signed = ((f << (32 - bits)) as i32) >> (32 - bits);
        let v = (self.signed(c, Kind::Field, signed) as u32) & mask;
        self.fmru[k].copy_within(0..MRU - 1, 1);
        self.fmru[k][0] = v;
        v
    }

    /// Code a signed number with magnitude below 2^31.
    pub fn signed<C: BitCoder>(&mut self, c: &mut C, kind: Kind, v: i32) -> i32 {
        let k = kind as usize;
        let neg = Self::bit_direct(c, &mut self.sign[k], u32::from(v < 0), 14);
        let m = self.number(c, kind, v.unsigned_abs()) as i32;
        if neg == 1 { -m } else { m }
    }
}
