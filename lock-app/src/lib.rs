#![no_std]
#![doc = include_str!("../README.md")]

extern crate alloc;

pub mod agent;
pub mod scheduler;
pub mod storage;
pub mod tuf;
