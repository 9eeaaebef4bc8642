//! bootloader integration tests: one binary, one module per concern.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ab;
mod anchors;
mod common;
mod delta;
mod otp;
mod power_cut;
mod tampering;
