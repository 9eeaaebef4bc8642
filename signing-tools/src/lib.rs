#![doc = include_str!("../README.md")]

pub mod cmd;
pub mod stackmeter;
pub mod summary;
