//! Binary arithmetic coder (carry-less, 32-bit, 12-bit probabilities).
//!
//! The encoder emits one byte each time the top bytes of its interval bounds
//! agree; [`Encoder::finish`] writes the four bytes of the low bound. The
//! decoder consumes exactly as many bytes as the encoder wrote (4 to prime it,
//! then one per shift), so blocks coded back to back can be restarted at
//! byte-aligned offsets: that is what makes resume after a reset possible.
//!
//! Each coded bit consumes at most four input bytes (when the interval
//! collapses to a point all four bytes shift out), so a caller that keeps
//! [`MAX_BYTES_PER_BIT`] bytes buffered per bit it will decode never starves.

/// Upper bound on input bytes one decoded bit consumes.
pub const MAX_BYTES_PER_BIT: usize = 4;

/// Something that codes one bit with probability `p1` (of a 1, scaled to 4096).
/// The encoder takes the bit; the decoder ignores the argument and returns the
/// bit it reads. Models are written once against this trait, so encoder and
/// decoder cannot drift apart.
pub trait BitCoder {
    /// Code `bit` (encoder) or decode and return it (decoder).
    fn code(&mut self, p1: u32, bit: u32) -> u32;
}

#[inline]
fn split(x1: u32, x2: u32, p1: u32) -> u32 {
    debug_assert!((1..4096).contains(&p1));
    x1 + ((x2 - x1) >> 12) * p1
}

/// Arithmetic decoder over bytes supplied by [`Decoder::push`].
#[derive(Debug, Clone, Copy)]
pub struct Decoder {
    x1: u32,
    x2: u32,
    x: u32,
}

/// A source of input bytes for the decoder; running dry yields zeros (the
/// caller guarantees enough lookahead, or has reached the end of the data).
pub trait ByteSource {
    /// The next byte, or 0 past the end.
    fn next_byte(&mut self) -> u8;
}

impl Decoder {
    /// Prime a decoder from the first four bytes of a block.
    pub fn new(src: &mut impl ByteSource) -> Self {
        let mut x = 0u32;
        for _ in 0..4 {
            x = (x << 8) | u32::from(src.next_byte());
        }
        Self {
            x1: 0,
            x2: u32::MAX,
            x,
        }
    }

    /// Decode one bit.
    #[inline]
    pub fn decode(&mut self, p1: u32, src: &mut impl ByteSource) -> u32 {
        let mid = split(self.x1, self.x2, p1.clamp(1, 4095));
        let bit = if self.x <= mid {
            self.x2 = mid;
            1
        } else {
            self.x1 = mid + 1;
            0
        };
        while (self.x1 ^ self.x2) & 0xFF00_0000 == 0 {
            self.x1 <<= 8;
            self.x2 = (self.x2 << 8) | 0xFF;
            self.x = (self.x << 8) | u32::from(src.next_byte());
        }
        bit
    }
}

/// A decoder bound to its byte source, usable as a [`BitCoder`].
#[derive(Debug)]
pub struct Decoding<'a, S: ByteSource> {
    /// Coder state.
    pub dec: &'a mut Decoder,
    /// Input.
    pub src: &'a mut S,
}

impl<S: ByteSource> BitCoder for Decoding<'_, S> {
    #[inline]
    fn code(&mut self, p1: u32, _bit: u32) -> u32 {
        self.dec.decode(p1, self.src)
    }
}

/// Arithmetic encoder collecting its output bytes.
#[cfg(feature = "std")]
#[derive(Debug, Default)]
pub struct Encoder {
    x1: u32,
    x2: u32,
    out: std::vec::Vec<u8>,
}

#[cfg(feature = "std")]
impl Encoder {
    /// Start a block.
    pub fn new() -> Self {
        Self {
            x1: 0,
            x2: u32::MAX,
            out: std::vec::Vec::new(),
        }
    }

    /// End the block: write the low bound so the decoder can finish, and
    /// return the block's bytes.
    pub fn finish(mut self) -> std::vec::Vec<u8> {
        self.out.extend_from_slice(&self.x1.to_be_bytes());
        self.out
    }
}

#[cfg(feature = "std")]
impl BitCoder for Encoder {
    #[inline]
    fn code(&mut self, p1: u32, bit: u32) -> u32 {
        let mid = split(self.x1, self.x2, p1.clamp(1, 4095));
        if bit != 0 {
            self.x2 = mid;
        } else {
            self.x1 = mid + 1;
        }
        while (self.x1 ^ self.x2) & 0xFF00_0000 == 0 {
            self.out.push((self.x2 >> 24) as u8);
            self.x1 <<= 8;
            self.x2 = (self.x2 << 8) | 0xFF;
        }
        bit
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    struct Bytes<'a>(&'a [u8], usize);
    impl ByteSource for Bytes<'_> {
        fn next_byte(&mut self) -> u8 {
            let b = self.0.get(self.1).copied().unwrap_or(0);
            self.1 += 1;
            b
        }
    }

    #[test]
    fn round_trip_and_exact_consumption() {
        let bits: std::vec::Vec<(u32, u32)> = (0..20_000u32)
            .map(|i| {
                let p = 1 + (i.wrapping_mul(2_654_435_761) >> 20) % 4095;
                let b = u32::from((i.wrapping_mul(40_503) >> 7) % 7 < 2);
                (p, b)
            })
            .collect();
        let mut e = Encoder::new();
        for &(p, b) in &bits {
            e.code(p, b);
        }
        let mut out = e.finish();
        let n = out.len();
        out.extend_from_slice(&[0xAB; 8]); // the next block
        let mut src = Bytes(&out, 0);
        let mut d = Decoder::new(&mut src);
        for &(p, b) in &bits {
            assert_eq!(d.decode(p, &mut src), b);
        }
        assert_eq!(src.1, n, "decoder consumed exactly the block");
    }
}
