//! The agent's settings.

use alloc::string::{String, ToString};

use crate::scheduler::{self, InstallCost};
use crate::tuf::Limits;

use super::CHUNK;

/// Agent settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// The lock's id.
    pub device_id: String,
    /// IANA zone (or POSIX TZ string) the lock reports, if configured.
    pub time_zone: Option<String>,
    /// TUF size limits for the image repository.
    pub limits: Limits,
    /// Door closed and untouched this long before an install.
    pub idle_secs: u64,
    /// How far ahead the scheduler looks.
    pub horizon_hours: u32,
    /// The install's modelled cost.
    pub install_cost: InstallCost,
    /// Energy reserve after an install.
    pub battery: scheduler::BatteryPolicy,
    /// Range request size.
    pub chunk: u32,
}

impl AgentConfig {
    /// Defaults for a lock named `device_id`: 15 min idle, 36 h horizon,
    /// 60 s modelled downtime (see `bootloader/benches/install_downtime.rs`).
    pub fn new(device_id: &str) -> Self {
        Self {
            device_id: device_id.to_string(),
            time_zone: None,
            limits: Limits::default(),
            idle_secs: 15 * 60,
            horizon_hours: 36,
            install_cost: InstallCost {
                downtime_secs: 60,
                energy_mwh: 150,
            },
            battery: scheduler::BatteryPolicy {
                reserve_ops: 200,
                energy_per_op_mwh: 2,
            },
            chunk: CHUNK,
        }
    }
}
