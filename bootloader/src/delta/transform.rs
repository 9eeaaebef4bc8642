//! Instruction-set transforms of add runs (header byte 7, high nibble).

/// Plain: add bytes are byte-wise differences.
pub const PLAIN: u8 = 0;

/// Does this applier know transform `t`?
pub fn known(t: u8) -> bool {
    t == PLAIN
}
