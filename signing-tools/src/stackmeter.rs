//! Stack high-water measurement by painting, for the delta benchmark.
//!
//! The work runs on a fresh thread. Just before it starts, the unused stack
//! below the current frame is filled with a pattern; afterwards the lowest
//! address no longer holding the pattern gives the deepest point the work
//! reached. This measures the host build (x86-64 code), which is what
//! `bench-delta` reports; a device build differs by its code generation.
#![allow(
    unsafe_code,
    reason = "reading and writing the thread's unused stack is the measurement"
)]

use std::hint::black_box;

const PATTERN: u8 = 0xA5;
/// Stack given to the measuring thread.
const STACK: usize = 2 << 20;
/// Bytes painted below the current frame.
const PAINT: usize = 1 << 20;
/// Bytes just below the current frame left alone (the painter's own frames).
const GUARD: usize = 1 << 10;

#[inline(never)]
fn stack_pointer() -> usize {
    let marker = 0u8;
    black_box(&marker) as *const u8 as usize
}

#[inline(never)]
fn paint(low: usize, len: usize) {
    for a in low..low + len {
        // SAFETY: [low, low + len) lies inside this thread's stack mapping
        // (STACK bytes, more than GUARD + PAINT), below every live frame.
        unsafe { std::ptr::write_volatile(a as *mut u8, PATTERN) };
    }
}

#[inline(never)]
fn deepest(low: usize, len: usize) -> usize {
    let mut a = low;
    // SAFETY: as in `paint`: the same mapped, unused region.
    while a < low + len && unsafe { std::ptr::read_volatile(a as *const u8) } == PATTERN {
        a += 1;
    }
    a
}

/// Run `setup` then `work` on a fresh thread; return `work`'s result and the
/// stack depth `work` used, in bytes (what `setup` used is not counted).
pub fn measure<S, R>(
    setup: impl FnOnce() -> S + Send + 'static,
    work: impl FnOnce(S) -> R + Send + 'static,
) -> std::io::Result<(R, usize)>
where
    R: Send + 'static,
{
    let handle = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || run(setup, work))?;
    handle
        .join()
        .map_err(|_| std::io::Error::other("the measured work panicked"))
}

#[inline(never)]
fn run<S, R>(setup: impl FnOnce() -> S, work: impl FnOnce(S) -> R) -> (R, usize) {
    let state = setup();
    let top = stack_pointer() - GUARD;
    let low = top - PAINT;
    paint(low, PAINT);
    let r = work(black_box(state));
    let lowest = deepest(low, PAINT);
    (r, top + GUARD - lowest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn burn(n: usize) -> u8 {
        let buf = black_box([7u8; 32 * 1024]);
        black_box(buf[n % buf.len()])
    }

    #[test]
    fn measures_a_known_frame() {
        let (_, idle) = measure(|| (), |()| 0u8).unwrap();
        let (_, used) = measure(|| (), |()| burn(3)).unwrap();
        assert!(used >= 32 * 1024, "{used}");
        assert!(used < 64 * 1024 + idle, "{used}");
    }
}
