//! Instruction-set transforms of add runs (patch header byte 7, high
//! nibble). Shared by the encoder and the device applier.
//!
//! When code moves, every call into the moved code changes its relative
//! offset by the same amount. A byte-wise difference sees that as noise:
//! the carry out of the low byte lands in the next byte or not, depending on
//! the old offset. With a transform, wherever an add run reaches an
//! instruction with an offset field *in the old image* (the applier reads the
//! old image, so both sides find the same places), the patch codes the
//! field's arithmetic difference `f = field(new) - field(old)` (mod 2^bits)
//! and then the instruction's bytes as usual with the field put back to the
//! old value. Unchanged instructions cost what they cost before (`f = 0`,
//! zero differences), a call whose target moved costs one small number that
//! usually repeats the one before, and a false positive (data that looks like
//! an instruction) costs little as long as it did not change.
//!
//! | transform | instruction | bytes | old-image test | field |
//! |---|---|---|---|---|
//! | 1 Xtensa | `CALL0/4/8/12` | 3 | `op0 = 5` (bits 0–3) | offset, bits 6–23 (18) |
//! | 1 Xtensa | `J` | 3 | `op0 = 6`, `n = 0` (bits 4–5) | offset, bits 6–23 (18) |
//! | 1 Xtensa | `L32R` | 3 | `op0 = 1` | imm16, bits 8–23 (16) |
//! | 2 Thumb-2 | `BL`, `B.W` (T4) | 4, halfword-aligned | `hw1 = 11110xxx…`, `hw2 = 1x x1 …` | `S:I1:I2:imm10:imm11` (24) |
//!
//! Bits count from the least significant bit of the little-endian
//! instruction word; Thumb-2 `I1 = NOT(J1 XOR S)`, `I2 = NOT(J2 XOR S)` (ARM
//! ARM, A7.7.18 and A7.7.12). Xtensa instructions are not aligned, so any
//! byte may start one; Thumb-2 instructions start at even old offsets.

/// Plain: add bytes are byte-wise differences.
pub const PLAIN: u8 = 0;
/// Xtensa (ESP32, ESP8266): `CALLn`, `J`, `L32R`.
pub const XTENSA: u8 = 1;
/// ARM Thumb-2 (Cortex-M): `BL`, `B.W`.
pub const THUMB2: u8 = 2;
/// Every transform, plain first.
pub const ALL: [u8; 3] = [PLAIN, XTENSA, THUMB2];

/// Does this applier know transform `t`?
pub fn known(t: u8) -> bool {
    t <= THUMB2
}

/// Short name, for reports.
pub fn name(t: u8) -> &'static str {
    match t {
        PLAIN => "plain",
        XTENSA => "xtensa",
        THUMB2 => "thumb2",
        _ => "unknown",
    }
}

/// An instruction with an offset field, found in the old image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insn {
    /// Xtensa `CALLn` / `J`: 18-bit field at bits 6–23 of 3 bytes.
    XtensaCall,
    /// Xtensa `L32R`: 16-bit field at bits 8–23 of 3 bytes.
    XtensaL32r,
    /// Thumb-2 `BL` / `B.W`: 24-bit field of 4 bytes.
    ThumbBranch,
}

impl Insn {
    /// Instruction length in bytes.
    pub const fn width(self) -> usize {
        match self {
            Self::XtensaCall | Self::XtensaL32r => 3,
            Self::ThumbBranch => 4,
        }
    }

    /// Field width in bits.
    pub const fn bits(self) -> u32 {
        match self {
            Self::XtensaCall => 18,
            Self::XtensaL32r => 16,
            Self::ThumbBranch => 24,
        }
    }

    /// Class index (for model contexts): 0..=2.
    pub const fn class(self) -> usize {
        self as usize
    }

    /// The field of instruction bytes `w` (at least [`Insn::width`] long).
    pub fn field(self, w: &[u8]) -> u32 {
        match self {
            Self::XtensaCall => (le24(w) >> 6) & 0x3_FFFF,
            Self::XtensaL32r => (le24(w) >> 8) & 0xFFFF,
            Self::ThumbBranch => {
                let (hw1, hw2) = halfwords(w);
                let s = (hw1 >> 10) & 1;
                let j1 = (hw2 >> 13) & 1;
                let j2 = (hw2 >> 11) & 1;
                let i1 = !(j1 ^ s) & 1;
                let i2 = !(j2 ^ s) & 1;
                (s << 23) | (i1 << 22) | (i2 << 21) | ((hw1 & 0x3FF) << 11) | (hw2 & 0x7FF)
            }
        }
    }

    /// Replace the field of `w` by `v` (its low [`Insn::bits`] bits),
    /// keeping every other bit.
    pub fn set_field(self, w: &mut [u8], v: u32) {
        match self {
            Self::XtensaCall => {
                let x = (le24(w) & 0x3F) | ((v & 0x3_FFFF) << 6);
                put24(w, x);
            }
            Self::XtensaL32r => {
                let x = (le24(w) & 0xFF) | ((v & 0xFFFF) << 8);
                put24(w, x);
            }
            Self::ThumbBranch => {
                let (hw1, hw2) = halfwords(w);
                let s = (v >> 23) & 1;
                let i1 = (v >> 22) & 1;
                let i2 = (v >> 21) & 1;
                let j1 = (!i1 ^ s) & 1;
                let j2 = (!i2 ^ s) & 1;
                let hw1 = (hw1 & 0xF800) | (s << 10) | ((v >> 11) & 0x3FF);
                let hw2 = (hw2 & 0xD000) | (j1 << 13) | (j2 << 11) | (v & 0x7FF);
                w[0..2].copy_from_slice(&(hw1 as u16).to_le_bytes());
                w[2..4].copy_from_slice(&(hw2 as u16).to_le_bytes());
            }
        }
    }
}

impl Insn {
    /// Where the instruction at payload offset `pc` with first byte
    /// `opcode` and field `field` points (a payload offset; may be outside
    /// the image).
    pub fn target(self, opcode: u8, pc: i64, field: u32) -> i64 {
        match self {
            Self::XtensaCall if opcode & 0x0F == 6 => pc + 4 + sext(field, 18),
            Self::XtensaCall => ((pc >> 2) + sext(field, 18) + 1) << 2,
            Self::XtensaL32r => ((pc + 3) & !3) + sext(0x3_0000 | field, 18) * 4,
            Self::ThumbBranch => pc + 4 + sext(field, 24) * 2,
        }
    }

    /// The field that makes the instruction at `pc` point to `target`
    /// (inverse of [`Insn::target`]; low [`Insn::bits`] bits).
    pub fn field_for(self, opcode: u8, pc: i64, target: i64) -> u32 {
        let mask = (1i64 << self.bits()) - 1;
        let v = match self {
            Self::XtensaCall if opcode & 0x0F == 6 => target - pc - 4,
            Self::XtensaCall => (target >> 2) - (pc >> 2) - 1,
            Self::XtensaL32r => (target - ((pc + 3) & !3)) >> 2,
            Self::ThumbBranch => (target - pc - 4) >> 1,
        };
        (v & mask) as u32
    }
}

/// Sign-extend the low `bits` bits of `v`.
fn sext(v: u32, bits: u32) -> i64 {
    i64::from(((v << (32 - bits)) as i32) >> (32 - bits))
}

fn le24(w: &[u8]) -> u32 {
    u32::from(w[0]) | (u32::from(w[1]) << 8) | (u32::from(w[2]) << 16)
}

fn put24(w: &mut [u8], x: u32) {
    w[0] = x as u8;
    w[1] = (x >> 8) as u8;
    w[2] = (x >> 16) as u8;
}

fn halfwords(w: &[u8]) -> (u32, u32) {
    (
        u32::from(u16::from_le_bytes([w[0], w[1]])),
        u32::from(u16::from_le_bytes([w[2], w[3]])),
    )
}

/// Does transform `t` see an instruction at old offset `opos`, whose first
/// bytes are `w` (4 bytes, zero past the end of the old image)? Only the
/// first byte(s) decide, so the test needs no more than `w`.
pub fn candidate(t: u8, opos: u32, w: &[u8; 4]) -> Option<Insn> {
    match t {
        XTENSA => match w[0] & 0x0F {
            5 => Some(Insn::XtensaCall),
            6 if w[0] & 0x30 == 0 => Some(Insn::XtensaCall),
            1 => Some(Insn::XtensaL32r),
            _ => None,
        },
        THUMB2 if opos.is_multiple_of(2) => {
            let (hw1, hw2) = halfwords(w);
            let bl = hw2 & 0xD000 == 0xD000;
            let bw = hw2 & 0xD000 == 0x9000;
            (hw1 & 0xF800 == 0xF000 && (bl || bw)).then_some(Insn::ThumbBranch)
        }
        _ => None,
    }
}

/// The instruction (if any) that transform `t` codes as a field difference
/// at old offset `opos` (old image `base_len` bytes, `w` its next 4 bytes,
/// zero past the end), with `add_left` bytes left in the add run and
/// `to_boundary` output bytes to the next block: the whole instruction must
/// lie in the old image, the add run and the block. The encoder and the
/// applier decide with this one function.
pub fn field_at(
    t: u8,
    opos: i64,
    base_len: u64,
    add_left: u64,
    to_boundary: u64,
    w: &[u8; 4],
) -> Option<Insn> {
    let o = u64::try_from(opos).ok()?;
    let o32 = u32::try_from(o).ok()?;
    candidate(t, o32, w).filter(|i| {
        let n = i.width() as u64;
        n <= add_left && n <= to_boundary && o + n <= base_len
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fields read back what was set, other bits untouched, for every
    /// instruction kind.
    #[test]
    fn fields_round_trip() {
        let cases: [(Insn, [u8; 4]); 4] = [
            (Insn::XtensaCall, [0x25, 0x12, 0x34, 0]),
            (Insn::XtensaCall, [0x06, 0xAB, 0xCD, 0]),
            (Insn::XtensaL32r, [0x21, 0xFF, 0xFF, 0]),
            (Insn::ThumbBranch, [0x00, 0xF0, 0x00, 0xF8]),
        ];
        for (insn, w) in cases {
            for v in [0u32, 1, 0x1234, 0x7FFF, 0xFF_FFFF, 0xAA_5555] {
                let mut x = w;
                insn.set_field(&mut x, v);
                let mask = (1u32 << insn.bits()) - 1;
                assert_eq!(insn.field(&x), v & mask, "{insn:?} {v:#x}");
                let mut back = x;
                insn.set_field(&mut back, insn.field(&w));
                assert_eq!(back, w, "{insn:?} {v:#x}");
            }
        }
    }

    /// A Thumb-2 `BL` to +0x1000: S = 0, J1 = J2 = 1 (so I1 = I2 = 0),
    /// imm10 = 1: the field is the offset in halfwords, 0x800.
    #[test]
    fn thumb_bl_field_is_the_halfword_offset() {
        // BL +0x1000: imm32 = 0x1000 = (imm10 = 1) << 12.
        let w = [0x01, 0xF0, 0x00, 0xF8];
        assert_eq!(candidate(THUMB2, 0, &w), Some(Insn::ThumbBranch));
        assert_eq!(candidate(THUMB2, 1, &w), None);
        assert_eq!(Insn::ThumbBranch.field(&w), 0x800);
    }
}
