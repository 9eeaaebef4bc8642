#![doc = include_str!("../README.md")]

pub mod cmd;
pub mod error;
pub mod fsio;
pub mod keys;
pub mod params;
pub mod summary;

pub use error::{Error, Result};
