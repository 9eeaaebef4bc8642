#![doc = include_str!("../README.md")]

pub mod fleet;
pub mod harness;
pub mod sim;
