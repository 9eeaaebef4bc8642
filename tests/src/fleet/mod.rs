//! `nightlatch-sim fleet` and `nightlatch-sim demo`: a rollout rehearsed on
//! a virtual fleet (see [`engine`]).

pub mod engine;
pub mod scenario;
pub mod usage;

pub use engine::{Faults, Fleet, FleetConfig, Policy, Report};
pub use scenario::{Release, Scenario};
