#![doc = include_str!("../README.md")]

pub mod app;
pub mod auth;
pub mod blob;
pub mod bootstrap;
pub mod checkin;
pub mod clock;
pub mod config;
pub mod console;
pub mod director;
pub mod error;
pub mod ids;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod recovery;
pub mod repo;
pub mod rollouts;
pub mod routes;
pub mod server;
pub mod state;
pub mod store;
pub mod webhooks;
pub mod wire;

pub use app::router;
pub use state::AppState;
