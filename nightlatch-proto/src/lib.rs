#![no_std]
#![forbid(unsafe_code)]
#![doc = include_str!("../README.md")]

extern crate alloc;

pub mod cjson;
pub mod custom;
pub mod paths;
pub mod tuf;
pub mod wire;
