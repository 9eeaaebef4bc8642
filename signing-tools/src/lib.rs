#![doc = include_str!("../README.md")]

pub mod cmd;
pub mod delta;
pub mod error;
pub mod fsio;
pub mod keys;
pub mod params;
pub mod repo;
pub mod stackmeter;
pub mod summary;

pub use error::{Error, Result};
