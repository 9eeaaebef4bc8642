//! bootloader integration tests: one binary, one module per concern.

mod anchors;
mod common;
mod power_cut;
mod tampering;
