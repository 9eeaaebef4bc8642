//! End-to-end tests of `nightlatch-keys`, and of repositories built from its
//! roots read by python-tuf (the independent client).
//!
//! Needs `bash .ci/setup` (python-tuf venv, SoftHSM2 token); without it the
//! tests that need them fail and say so.

// Test helpers outside `#[test]` functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod chain;
mod cli;
mod hostile;
mod rotation;
mod softhsm;
mod support;
