//! The admin API under `/admin/v1`: one table ([`ENDPOINTS`]) names every
//! endpoint, the role it needs and what it does. The router is built from
//! it, [`crate::auth::authorize`] enforces it, the OpenAPI document is
//! generated from it, and the security tests walk it.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post, put};

use crate::auth::Role;
use crate::routes::{
    audit, clock, devices, fleet, minimums, releases, repo_health, rollout_devices, rollouts,
    sites, tokens, uploads, webhooks,
};
use crate::state::AppState;

/// One admin endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    /// HTTP method.
    pub method: &'static str,
    /// Route template (axum syntax).
    pub path: &'static str,
    /// Lowest role allowed.
    pub role: Role,
    /// What it does.
    pub summary: &'static str,
    /// Request body schema name in the OpenAPI document, if any.
    pub body: Option<&'static str>,
}

const fn ep(
    method: &'static str,
    path: &'static str,
    role: Role,
    summary: &'static str,
    body: Option<&'static str>,
) -> Endpoint {
    Endpoint {
        method,
        path,
        role,
        summary,
        body,
    }
}

use Role::{Operator, Release, SecurityAdmin, Viewer};

/// Every admin endpoint.
pub const ENDPOINTS: &[Endpoint] = &[
    ep(
        "GET",
        "/admin/v1/whoami",
        Viewer,
        "The calling token's name and role",
        None,
    ),
    ep(
        "GET",
        "/admin/v1/devices",
        Viewer,
        "List locks (filters: model, site, group; paging: after, limit)",
        None,
    ),
    ep(
        "POST",
        "/admin/v1/devices",
        Operator,
        "Register a lock",
        Some("RegisterDevice"),
    ),
    ep(
        "POST",
        "/admin/v1/devices/import",
        Operator,
        "Register many locks at once (all or none)",
        Some("ImportDevices"),
    ),
    ep(
        "GET",
        "/admin/v1/devices/{id}",
        Viewer,
        "One lock: registration, last report, assignment",
        None,
    ),
    ep(
        "GET",
        "/admin/v1/devices/{id}/history",
        Viewer,
        "A lock's history, newest first",
        None,
    ),
    ep(
        "GET",
        "/admin/v1/devices/{id}/usage",
        Viewer,
        "A lock's learned usage: quiet slot per weekday, 7x24 heat map, reported_at (404 no_usage if none yet)",
        None,
    ),
    ep(
        "POST",
        "/admin/v1/devices/{id}/revoke",
        SecurityAdmin,
        "Revoke a lock: its check-ins are refused",
        Some("Reason"),
    ),
    ep(
        "GET",
        "/admin/v1/rollouts",
        Viewer,
        "List rollouts, newest first",
        None,
    ),
    ep(
        "POST",
        "/admin/v1/rollouts",
        Operator,
        "Create a rollout (draft, or started at once)",
        Some("CreateRollout"),
    ),
    ep(
        "POST",
        "/admin/v1/rollouts/preview",
        Operator,
        "Preview a rollout (the create body): eligible locks per wave and the nights they would install on; creates nothing",
        Some("CreateRollout"),
    ),
    ep(
        "GET",
        "/admin/v1/rollouts/{id}",
        Viewer,
        "Rollout status per wave, per version, per delivery",
        None,
    ),
    ep(
        "GET",
        "/admin/v1/rollouts/{id}/devices",
        Viewer,
        "The locks of a rollout with their status there (?status=failed,rolled_back&after=&limit=)",
        None,
    ),
    ep(
        "POST",
        "/admin/v1/rollouts/{id}/start",
        Operator,
        "Start a draft rollout",
        Some("Reason"),
    ),
    ep(
        "POST",
        "/admin/v1/rollouts/{id}/pause",
        Operator,
        "Pause: no new assignments, locks not yet installed hold",
        Some("Reason"),
    ),
    ep(
        "POST",
        "/admin/v1/rollouts/{id}/resume",
        Operator,
        "Resume a paused rollout",
        Some("Reason"),
    ),
    ep(
        "POST",
        "/admin/v1/rollouts/{id}/abort",
        Operator,
        "Abort for good",
        Some("Reason"),
    ),
    ep(
        "GET",
        "/admin/v1/fleet/versions",
        Viewer,
        "Locks per hardware model and firmware version",
        None,
    ),
    ep(
        "GET",
        "/admin/v1/fleet/below-minimum",
        Viewer,
        "Locks below a minimum secure version or security counter",
        None,
    ),
    ep(
        "GET",
        "/admin/v1/fleet/stale",
        Viewer,
        "Locks not seen for N days",
        None,
    ),
    ep(
        "GET",
        "/admin/v1/sites",
        Viewer,
        "Every site's install policy",
        None,
    ),
    ep(
        "GET",
        "/admin/v1/sites/{site}/policy",
        Viewer,
        "A site's install policy",
        None,
    ),
    ep(
        "PUT",
        "/admin/v1/sites/{site}/policy",
        Operator,
        "Set a site's install policy",
        Some("SitePolicy"),
    ),
    ep(
        "GET",
        "/admin/v1/repo",
        Viewer,
        "Repository metadata versions and published targets",
        None,
    ),
    ep(
        "GET",
        "/admin/v1/repo/health",
        Viewer,
        "Expiry of every role of the image and director repositories, with warnings (?warning_days=7)",
        None,
    ),
    ep(
        "GET",
        "/admin/v1/releases",
        Viewer,
        "Published firmware images with their patches, by model then version, newest first (?model=)",
        None,
    ),
    ep(
        "PUT",
        "/admin/v1/repo/targets/{*path}",
        Release,
        "Upload a target file under <dir>/<sha256>.<name>",
        Some("Binary"),
    ),
    ep(
        "PUT",
        "/admin/v1/repo/metadata/{file}",
        Release,
        "Upload signed targets metadata N.ROLE.json (checked against the root and delegations)",
        Some("Metadata"),
    ),
    ep(
        "POST",
        "/admin/v1/repo/refresh",
        Release,
        "Re-sign snapshot and timestamp now",
        None,
    ),
    ep(
        "PUT",
        "/admin/v1/repo/roots/{file}",
        SecurityAdmin,
        "Add a rotated image root N.root.json",
        Some("Metadata"),
    ),
    ep(
        "GET",
        "/admin/v1/tokens",
        SecurityAdmin,
        "List admin tokens (never their secrets)",
        None,
    ),
    ep(
        "POST",
        "/admin/v1/tokens",
        SecurityAdmin,
        "Create an admin token",
        Some("CreateToken"),
    ),
    ep(
        "DELETE",
        "/admin/v1/tokens/{id}",
        SecurityAdmin,
        "Revoke an admin token",
        None,
    ),
    ep(
        "GET",
        "/admin/v1/audit",
        SecurityAdmin,
        "The audit log, oldest first (filters: actor, token_id, action or prefix.*, since, until; paging: after, limit)",
        None,
    ),
    ep(
        "GET",
        "/admin/v1/audit/export",
        SecurityAdmin,
        "The audit log as CSV (same filters; at most 100,000 rows, streamed)",
        None,
    ),
    ep(
        "GET",
        "/admin/v1/fleet/minimums",
        Viewer,
        "The minimum secure version (and security counter) per hardware model",
        None,
    ),
    ep(
        "PUT",
        "/admin/v1/fleet/minimums/{model}",
        SecurityAdmin,
        "Set a model's minimum secure version and/or security counter (both null: clear)",
        Some("SetMinimum"),
    ),
    ep(
        "GET",
        "/admin/v1/webhooks",
        Operator,
        "List webhook subscriptions (never their secrets)",
        None,
    ),
    ep(
        "POST",
        "/admin/v1/webhooks",
        SecurityAdmin,
        "Subscribe a URL to events; the signing secret is in this response only",
        Some("CreateWebhook"),
    ),
    ep(
        "GET",
        "/admin/v1/webhooks/{id}",
        Operator,
        "One subscription with its delivery counts and last attempt",
        None,
    ),
    ep(
        "POST",
        "/admin/v1/webhooks/{id}/test",
        SecurityAdmin,
        "Send a test.ping to this subscription (202 with the event id)",
        None,
    ),
    ep(
        "GET",
        "/admin/v1/webhooks/{id}/deliveries",
        Operator,
        "The delivery log: every attempt with its status code, latency and outcome, newest first (?limit=)",
        None,
    ),
    ep(
        "POST",
        "/admin/v1/webhooks/{id}/rotate-secret",
        SecurityAdmin,
        "A new signing secret (in this response only); the old one keeps signing during the overlap",
        Some("RotateSecret"),
    ),
    ep(
        "POST",
        "/admin/v1/webhooks/{id}/enable",
        SecurityAdmin,
        "Deliver again to a subscription the server disabled after repeated failures",
        None,
    ),
    ep(
        "DELETE",
        "/admin/v1/webhooks/{id}",
        SecurityAdmin,
        "Delete a subscription, its pending deliveries and its log",
        None,
    ),
    ep(
        "POST",
        "/admin/v1/clock",
        SecurityAdmin,
        "Set or advance the clock (only with --clock manual)",
        Some("SetClock"),
    ),
];

/// Endpoints other than `GET` that change nothing (no audit entry either).
pub const READ_ONLY_POSTS: &[&str] = &["/admin/v1/rollouts/preview"];

impl Endpoint {
    /// Whether calling it changes state (and so writes an audit entry in
    /// the same transaction): every method but `GET`, except
    /// [`READ_ONLY_POSTS`].
    pub fn changes_state(&self) -> bool {
        self.method != "GET" && !READ_ONLY_POSTS.contains(&self.path)
    }
}

/// The role `method path` needs; None if it is not an admin endpoint.
pub fn required_role(method: &Method, path: &str) -> Option<Role> {
    ENDPOINTS
        .iter()
        .find(|e| e.path == path && e.method == method.as_str())
        .map(|e| e.role)
}

fn handler(e: &Endpoint, max_upload: usize) -> Option<MethodRouter<AppState>> {
    Some(match (e.method, e.path) {
        ("GET", "/admin/v1/whoami") => get(tokens::whoami),
        ("GET", "/admin/v1/devices") => get(devices::list),
        ("POST", "/admin/v1/devices") => post(devices::register),
        ("POST", "/admin/v1/devices/import") => {
            post(devices::import).layer(DefaultBodyLimit::max(64 << 20))
        }
        ("GET", "/admin/v1/devices/{id}") => get(devices::show),
        ("GET", "/admin/v1/devices/{id}/history") => get(devices::history),
        ("GET", "/admin/v1/devices/{id}/usage") => get(super::usage::show),
        ("POST", "/admin/v1/devices/{id}/revoke") => post(devices::revoke),
        ("GET", "/admin/v1/rollouts") => get(rollouts::list),
        ("POST", "/admin/v1/rollouts") => post(rollouts::create),
        ("POST", "/admin/v1/rollouts/preview") => post(rollouts::preview),
        ("GET", "/admin/v1/rollouts/{id}") => get(rollouts::show),
        ("GET", "/admin/v1/rollouts/{id}/devices") => get(rollout_devices::list),
        ("POST", "/admin/v1/rollouts/{id}/start") => post(rollouts::start),
        ("POST", "/admin/v1/rollouts/{id}/pause") => post(rollouts::pause),
        ("POST", "/admin/v1/rollouts/{id}/resume") => post(rollouts::resume),
        ("POST", "/admin/v1/rollouts/{id}/abort") => post(rollouts::abort),
        ("GET", "/admin/v1/fleet/versions") => get(fleet::versions),
        ("GET", "/admin/v1/fleet/below-minimum") => get(fleet::below_minimum),
        ("GET", "/admin/v1/fleet/stale") => get(fleet::stale),
        ("GET", "/admin/v1/sites") => get(sites::list),
        ("GET", "/admin/v1/sites/{site}/policy") => get(sites::show),
        ("PUT", "/admin/v1/sites/{site}/policy") => put(sites::set),
        ("GET", "/admin/v1/repo") => get(uploads::status),
        ("GET", "/admin/v1/repo/health") => get(repo_health::show),
        ("GET", "/admin/v1/releases") => get(releases::list),
        ("PUT", "/admin/v1/repo/targets/{*path}") => {
            put(uploads::target).layer(DefaultBodyLimit::max(max_upload))
        }
        ("PUT", "/admin/v1/repo/metadata/{file}") => {
            put(uploads::metadata).layer(DefaultBodyLimit::max(16 << 20))
        }
        ("POST", "/admin/v1/repo/refresh") => post(uploads::refresh),
        ("PUT", "/admin/v1/repo/roots/{file}") => {
            put(uploads::root).layer(DefaultBodyLimit::max(1 << 20))
        }
        ("GET", "/admin/v1/tokens") => get(tokens::list),
        ("POST", "/admin/v1/tokens") => post(tokens::create),
        ("DELETE", "/admin/v1/tokens/{id}") => delete(tokens::revoke),
        ("GET", "/admin/v1/fleet/minimums") => get(minimums::list),
        ("PUT", "/admin/v1/fleet/minimums/{model}") => put(minimums::set),
        ("GET", "/admin/v1/webhooks") => get(webhooks::list),
        ("POST", "/admin/v1/webhooks") => post(webhooks::create),
        ("GET", "/admin/v1/webhooks/{id}") => get(webhooks::show),
        ("DELETE", "/admin/v1/webhooks/{id}") => delete(webhooks::delete),
        ("POST", "/admin/v1/webhooks/{id}/test") => post(webhooks::test),
        ("GET", "/admin/v1/webhooks/{id}/deliveries") => get(webhooks::deliveries),
        ("POST", "/admin/v1/webhooks/{id}/rotate-secret") => post(webhooks::rotate_secret),
        ("POST", "/admin/v1/webhooks/{id}/enable") => post(webhooks::enable),
        ("GET", "/admin/v1/audit") => get(audit::list),
        ("GET", "/admin/v1/audit/export") => get(audit::export),
        ("POST", "/admin/v1/clock") => post(clock::set),
        // Every entry of the table has a handler (checked by a test).
        _ => return None,
    })
}

/// The admin routes (authorization is layered on by the caller).
pub fn router(max_upload: usize) -> Router<AppState> {
    let mut r = Router::new();
    let mut paths: Vec<&str> = ENDPOINTS.iter().map(|e| e.path).collect();
    paths.dedup();
    let mut seen = std::collections::HashSet::new();
    for path in paths {
        if !seen.insert(path) {
            continue;
        }
        let mut mr: MethodRouter<AppState> = MethodRouter::new();
        for e in ENDPOINTS.iter().filter(|e| e.path == path) {
            match handler(e, max_upload) {
                Some(h) => mr = mr.merge(h),
                None => tracing::error!(
                    method = e.method,
                    path = e.path,
                    "admin endpoint without a handler"
                ),
            }
        }
        r = r.route(path, mr);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_has_a_handler_and_a_unique_entry() {
        let mut seen = std::collections::HashSet::new();
        for e in ENDPOINTS {
            assert!(
                handler(e, 1).is_some(),
                "{} {} has no handler",
                e.method,
                e.path
            );
            assert!(
                seen.insert((e.method, e.path)),
                "{} {} is listed twice",
                e.method,
                e.path
            );
            assert!(e.path.starts_with("/admin/v1/"));
        }
    }
}
