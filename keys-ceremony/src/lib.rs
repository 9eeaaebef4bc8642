#![doc = include_str!("../README.md")]

pub mod chain;
pub mod cmd;
pub mod dev;
pub mod error;
pub mod fsio;
pub mod keysource;
pub mod metadata;
pub mod rotation;
pub mod status;
pub mod transcript;

pub use error::{Error, Result};
