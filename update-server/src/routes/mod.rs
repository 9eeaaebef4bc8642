//! HTTP handlers, one module per noun. Public: health, metrics, the two
//! repositories, the device check-in. Admin (bearer token): everything in
//! [`admin::ENDPOINTS`].

use crate::error::ApiError;

pub mod admin;
pub mod audit;
pub mod checkin;
pub mod clock;
pub mod devices;
pub mod extract;
pub mod fleet;
pub mod health;
pub mod minimums;
pub mod releases;
pub mod repo;
pub mod repo_health;
pub mod rollout_devices;
pub mod rollout_preview;
pub mod rollouts;
pub mod sites;
pub mod tokens;
pub mod uploads;
pub mod usage;
pub mod webhooks;

/// 404 with the JSON error body.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// RFC 3339 text of optional Unix milliseconds.
pub fn time(ms: Option<i64>) -> Option<String> {
    ms.map(crate::clock::rfc3339)
}

/// Clamp a page size.
pub fn limit(requested: Option<i64>, default: i64, max: i64) -> i64 {
    requested.unwrap_or(default).clamp(1, max)
}
