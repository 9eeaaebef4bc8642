#![cfg_attr(not(feature = "std"), no_std)]
#![doc = include_str!("../README.md")]

pub mod anchors;
pub mod boot;
pub mod delta;
pub mod envelope;
pub mod layout;
pub mod otp;
pub mod records;
#[cfg(feature = "sim")]
pub mod sim;
pub mod state_mirror;
pub mod updater;

pub use anchors::{KeyId, TrustAnchors};
pub use boot::{BootConfig, BootError, BootReport, Bootloader, SharedFlash};
pub use envelope::{EnvelopeError, HardwareModel, Header, Policy, VerifiedImage, Version};
pub use layout::Layout;
pub use otp::{Otp, OtpCounters, OtpError};
pub use updater::{UpdateError, Updater};
