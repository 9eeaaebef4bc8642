//! `nightlatch-sim`: host tools around the lock's firmware logic. One file
//! per subcommand: `XArgs` with `run()`. (`tuf-client`, `lock`, `fleet`,
//! `demo`.)

pub mod device;
pub mod dir_store;
pub mod error;
pub mod fleet_cmd;
pub mod lock;
pub mod net;
pub mod transport;
pub mod tuf_client;

use clap::{Parser, Subcommand};

pub use error::SimError;

/// Simulated Nightlatch locks and the lock's clients, on a host.
#[derive(Debug, Parser)]
#[command(name = "nightlatch-sim", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The lock's TUF client alone (interop checks against any TUF
    /// repository): `init`, `refresh`, `download`.
    TufClient(tuf_client::TufClientArgs),
    /// One simulated lock (the real agent and bootloader on simulated
    /// flash) against a running `nightlatch-server`.
    Lock(lock::LockArgs),
    /// Rehearse a rollout on a virtual fleet (thousands of locks, virtual
    /// days) against a real server on loopback.
    Fleet(fleet_cmd::FleetArgs),
    /// The whole system in about a minute: ceremony (dev keys), sign,
    /// publish, a staged rollout on a simulated fleet, the report.
    Demo(fleet_cmd::DemoArgs),
}

impl Cli {
    /// Run the chosen subcommand.
    pub fn run(self) -> Result<(), SimError> {
        match self.command {
            Command::TufClient(args) => args.run(),
            Command::Lock(args) => args.run(),
            Command::Fleet(args) => args.run(),
            Command::Demo(args) => args.run(),
        }
    }
}
