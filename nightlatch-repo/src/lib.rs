#![doc = include_str!("../README.md")]

pub mod ceremony;
pub mod chain;
pub mod clock;
pub mod delta;
pub mod dev;
pub mod envelope;
pub mod error;
pub mod fsio;
pub mod keys;
pub mod keysource;
pub mod metadata;
pub mod params;
pub mod repo;
pub mod rotation;
pub mod status;
pub mod transcript;

pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{Error, Result};
