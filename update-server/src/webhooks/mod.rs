//! Signed webhooks: what happened in the fleet, POSTed to the operators'
//! own tools.
//!
//! * **Events** ([`EVENT_TYPES`]) are written to an outbox table in the
//!   transaction of the change that caused them: every audited change maps
//!   to its events in [`from_audit`] (called by `store::audit::write`), so a
//!   change and its event commit together or not at all. Events that come
//!   from time passing — a wave starting, a rollout completing, metadata
//!   about to expire, a minute of failed updates — are noticed by
//!   [`watch`] and written once however many replicas notice them (a
//!   unique dedupe key, or a compare-and-swap on a cursor).
//! * **Delivery** ([`deliver`]) is at least once: each replica claims due
//!   deliveries with a lease, POSTs them, logs each attempt, and retries
//!   with exponential backoff and jitter up to a cap; the event id
//!   (`X-Nightlatch-Delivery` and the body's `id`) is the same on every
//!   attempt, so receivers drop duplicates by it.
//! * **Signature**: `X-Nightlatch-Signature: t=UNIX_SECONDS,v1=HEX` where
//!   HEX is HMAC-SHA256(secret, t + "." + body); during a secret rotation a
//!   second `v1=` carries the signature with the previous secret.
//! * **Addresses**: only `http` and `https` URLs; hosts that resolve to
//!   loopback, private, link-local, shared, multicast or otherwise
//!   non-public addresses are refused when the subscription is created and
//!   again on every delivery (the resolver checks what it connects to, so a
//!   DNS answer that changes later cannot reach inside), unless
//!   `webhooks.allow_private_addresses` is set. Redirects are not followed.
//! * A run of `webhooks.disable_after_failures` failed attempts disables
//!   the subscription; the others receive `webhook.disabled`, and
//!   `nightlatch_webhooks_disabled_total` counts it.

pub mod deliver;
pub mod watch;

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::store::audit::AuditEntry;

/// Every event type, with what it means.
pub const EVENT_TYPES: &[(&str, &str)] = &[
    (
        "rollout.created",
        "a rollout was created (draft, or started at once)",
    ),
    ("rollout.started", "an operator started a rollout"),
    (
        "rollout.paused",
        "a rollout was paused: by an operator (automatic: false, with the reason) or by its failure threshold (automatic: true, with failures, sample and rate)",
    ),
    ("rollout.resumed", "a paused rollout was resumed"),
    ("rollout.aborted", "a rollout was aborted"),
    (
        "rollout.completed",
        "every lock a rollout assigned has finished and, when its last wave takes every lock, none is left to update",
    ),
    ("wave.started", "a rollout's wave came into force"),
    (
        "wave.completed",
        "a wave's soak ended and the next wave started (or the rollout completed)",
    ),
    (
        "device.update_failed",
        "locks reported a failed or rolled-back update: one event per minute with every such lock",
    ),
    (
        "device.below_minimum",
        "locks reported a new firmware version below their model's minimum secure version (PUT /admin/v1/fleet/minimums/{model}): one event per check-in batch",
    ),
    (
        "release.published",
        "new firmware targets were published in signed targets metadata",
    ),
    (
        "repo.metadata_expiring",
        "a TUF role of either repository expires within webhooks.expiry_warning_days",
    ),
    (
        "repo.key_rotation",
        "a new root changed the keys of one or more roles",
    ),
    (
        "token.created",
        "an admin token was created (or minted by recover-admin)",
    ),
    ("token.revoked", "an admin token was revoked"),
    (
        "webhook.disabled",
        "a subscription was disabled after a run of failed deliveries",
    ),
    (
        "test.ping",
        "sent by POST /admin/v1/webhooks/{id}/test to that subscription only",
    ),
];

/// One event to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its type, one of [`EVENT_TYPES`].
    pub kind: String,
    /// What happened.
    pub data: Value,
    /// Written at most once per key (events noticed by several replicas).
    pub dedupe_key: Option<String>,
}

impl Event {
    /// An event of `kind`.
    pub fn new(kind: &str, data: Value) -> Self {
        Self {
            kind: kind.to_owned(),
            data,
            dedupe_key: None,
        }
    }

    /// The same, written at most once for `key`.
    pub fn once(mut self, key: String) -> Self {
        self.dedupe_key = Some(key);
        self
    }

    /// The body every attempt sends.
    pub fn body(&self, id: &str, now: i64) -> String {
        json!({
            "id": id,
            "type": self.kind,
            "created_at": crate::clock::rfc3339(now),
            "data": self.data,
        })
        .to_string()
    }
}

/// Whether a subscription to `patterns` wants events of `kind`: `*`, the
/// type itself, or its family (`rollout.*`). Test pings go only to the
/// subscription tested.
pub fn wants(patterns: &[String], kind: &str) -> bool {
    if kind == "test.ping" {
        return false;
    }
    patterns.iter().any(|p| {
        p == "*"
            || p == kind
            || p.strip_suffix(".*")
                .is_some_and(|family| kind.split('.').next() == Some(family))
    })
}

/// Check the event patterns of a new subscription.
pub fn check_patterns(patterns: &[String]) -> Result<(), String> {
    if patterns.is_empty() {
        return Err("events must name at least one event type (or \"*\")".into());
    }
    if patterns.len() > 64 {
        return Err("at most 64 event patterns".into());
    }
    for p in patterns {
        let known = p == "*"
            || EVENT_TYPES.iter().any(|(k, _)| k == p)
            || p.strip_suffix(".*").is_some_and(|family| {
                EVENT_TYPES
                    .iter()
                    .any(|(k, _)| k.split('.').next() == Some(family))
            });
        if !known {
            return Err(format!(
                "unknown event type {p:?} (known: *, {})",
                EVENT_TYPES
                    .iter()
                    .map(|(k, _)| *k)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(())
}

/// `X-Nightlatch-Signature` for `body` sent at `t` (Unix seconds), one
/// `v1=` per secret.
pub fn signature_header(secrets: &[&str], t: i64, body: &[u8]) -> String {
    let mut out = format!("t={t}");
    for secret in secrets {
        out.push_str(",v1=");
        out.push_str(&hex::encode(sign(secret, t, body)));
    }
    out
}

/// HMAC-SHA256(secret, t + "." + body).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// A new signing secret: `whsec_` and 256 random bits.
pub fn new_secret() -> String {
    format!("whsec_{}", hex::encode(crate::ids::random_bytes::<32>()))
}

/// Whether `ip` is a public unicast address (what a webhook may reach
/// unless private addresses are allowed).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // shared (CGNAT) 100.64/10
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking
                || o[0] >= 240) // reserved
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64
                || s[0] == 0x0100 // discard 100::/64
                || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0)) // IPv4-compatible
        }
    }
}

/// Check a subscription URL: `http`/`https`, a host, no credentials, and
/// (unless `allow_private`) every address it resolves to public. The
/// parsed URL.
pub async fn check_url(text: &str, allow_private: bool) -> Result<reqwest::Url, UrlRefused> {
    if text.len() > 2048 {
        return Err(UrlRefused::Invalid("url is longer than 2048 bytes".into()));
    }
    let url = reqwest::Url::parse(text)
        .map_err(|e| UrlRefused::Invalid(format!("url is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlRefused::Invalid(
            "url must be http:// or https://".into(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefused::Invalid(
            "url must not carry credentials (the signature authenticates the server)".into(),
        ));
    }
    let Some(host) = url.host_str().map(str::to_owned) else {
        return Err(UrlRefused::Invalid("url has no host".into()));
    };
    if allow_private {
        return Ok(url);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<IpAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| UrlRefused::Invalid(format!("url host {host} does not resolve: {e}")))?
            .map(|a| a.ip())
            .collect(),
    };
    if let Some(ip) = addrs.iter().find(|ip| !is_public(**ip)) {
        return Err(UrlRefused::Private(format!(
            "url host {host} is (or resolves to) {ip}, which is not a public address; \
             set webhooks.allow_private_addresses = true in the server's config to allow it"
        )));
    }
    Ok(url)
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlRefused {
    /// Malformed or not http(s).
    Invalid(String),
    /// Resolves to a non-public address.
    Private(String),
}

impl std::fmt::Display for UrlRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(m) | Self::Private(m) => f.write_str(m),
        }
    }
}

/// The events an audited change causes (written by `store::audit::write`
/// in the same transaction).
pub fn from_audit(e: &AuditEntry) -> Vec<Event> {
    let by = json!({ "actor": e.actor, "role": e.role, "token_id": e.token_id });
    let d = &e.detail;
    let rollout = |kind: &str, extra: Value| {
        let mut data = json!({
            "rollout_id": e.subject, "name": d["name"], "target": d["target"], "by": by,
        });
        if let (Some(m), Some(x)) = (data.as_object_mut(), extra.as_object()) {
            for (k, v) in x {
                m.insert(k.clone(), v.clone());
            }
        }
        Event::new(kind, data)
    };
    match e.action.as_str() {
        "rollout.create" => {
            let mut out = vec![rollout(
                "rollout.created",
                json!({ "spec": d["spec"], "started": d["started"] }),
            )];
            if d["started"] == json!(true) {
                out.push(rollout("rollout.started", json!({})));
            }
            out
        }
        "rollout.start" => vec![rollout("rollout.started", json!({}))],
        "rollout.pause" => vec![rollout(
            "rollout.paused",
            json!({ "automatic": false, "reason": d["reason"] }),
        )],
        "rollout.auto_pause" => {
            let (s, f) = (
                d["successes"].as_i64().unwrap_or(0),
                d["failures"].as_i64().unwrap_or(0),
            );
            let sample = s + f;
            vec![rollout(
                "rollout.paused",
                json!({
                    "automatic": true, "reason": d["reason"], "failures": f, "successes": s,
                    "sample": sample,
                    "failure_rate": if sample > 0 { f as f64 / sample as f64 } else { 0.0 },
                    "threshold": d["threshold"], "min_sample": d["min_sample"],
                }),
            )]
        }
        "rollout.resume" => vec![rollout("rollout.resumed", json!({}))],
        "rollout.abort" => vec![rollout("rollout.aborted", json!({ "reason": d["reason"] }))],
        "token.create" => vec![Event::new(
            "token.created",
            json!({ "token_id": e.subject, "name": d["name"], "role": d["role"],
                    "expires_at": d["expires_at"], "by": by }),
        )],
        "token.recover" => {
            // The new token, and each token the recovery revoked (a
            // subscriber watching revocations sees them as it sees any).
            let mut out = vec![Event::new(
                "token.created",
                json!({ "token_id": e.subject, "name": d["name"], "role": d["role"],
                        "recovered": true, "revoked": d["revoked"], "by": by }),
            )];
            for id in d["revoked"].as_array().into_iter().flatten() {
                out.push(Event::new(
                    "token.revoked",
                    json!({ "token_id": id, "by": by, "recovered": true }),
                ));
            }
            out
        }
        "token.revoke" => vec![Event::new(
            "token.revoked",
            json!({ "token_id": e.subject, "by": by }),
        )],
        "repo.root" => {
            let changed = d["roles_changed"].as_array().cloned().unwrap_or_default();
            if changed.is_empty() {
                vec![]
            } else {
                vec![Event::new(
                    "repo.key_rotation",
                    json!({ "repository": "image", "root": e.subject, "roles_changed": changed, "by": by }),
                )]
            }
        }
        "repo.metadata" => {
            let targets = d["new_targets"].as_array().cloned().unwrap_or_default();
            if targets.is_empty() {
                vec![]
            } else {
                vec![Event::new(
                    "release.published",
                    json!({ "metadata": e.subject, "targets": targets, "by": by }),
                )]
            }
        }
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_types_and_families() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(wants(&p(&["*"]), "rollout.paused"));
        assert!(wants(&p(&["rollout.*"]), "rollout.paused"));
        assert!(!wants(&p(&["rollout.*"]), "wave.started"));
        assert!(wants(&p(&["wave.started"]), "wave.started"));
        assert!(!wants(&p(&["*"]), "test.ping"));
        assert!(check_patterns(&p(&["rollout.*", "token.created"])).is_ok());
        assert!(check_patterns(&p(&["rollout.paused.x"])).is_err());
        assert!(check_patterns(&p(&["nothing.*"])).is_err());
        assert!(check_patterns(&[]).is_err());
    }

    #[test]
    fn signature_is_hmac_of_time_dot_body_one_per_secret() {
        // RFC 4231 test case 2 shape: key "Jefe"; the message here is
        // "1700000000." + body, checked against an independent computation.
        let body = br#"{"id":"evt-1"}"#;
        let h = signature_header(&["Jefe", "old"], 1_700_000_000, body);
        let parts: Vec<&str> = h.split(',').collect();
        assert_eq!(parts[0], "t=1700000000");
        assert_eq!(parts.len(), 3);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"1700000000.{\"id\":\"evt-1\"}");
        assert_eq!(
            parts[1],
            format!("v1={}", hex::encode(mac.finalize().into_bytes()))
        );
        assert_ne!(parts[1], parts[2]);
    }

    #[test]
    fn non_public_addresses_are_recognised() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(a.parse().unwrap()), "{a}");
        }
        for a in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(a.parse().unwrap()), "{a}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked() {
        assert!(matches!(
            check_url("ftp://example.com/x", false).await,
            Err(UrlRefused::Invalid(_))
        ));
        assert!(matches!(
            check_url("https://user:pw@93.184.216.34/x", false).await,
            Err(UrlRefused::Invalid(_))
        ));
        assert!(matches!(
            check_url("http://127.0.0.1:9/x", false).await,
            Err(UrlRefused::Private(_))
        ));
        assert!(matches!(
            check_url("http://[::1]:9/x", false).await,
            Err(UrlRefused::Private(_))
        ));
        assert!(matches!(
            check_url("http://localhost:9/x", false).await,
            Err(UrlRefused::Private(_))
        ));
        assert!(check_url("http://127.0.0.1:9/x", true).await.is_ok());
        assert!(check_url("https://93.184.216.34/hook", false).await.is_ok());
    }

    #[test]
    fn audited_changes_map_to_events() {
        let mut e = AuditEntry::system(
            "rollout.auto_pause",
            "ro-1",
            json!({"successes": 7, "failures": 3, "reason": "r", "name": "n", "target": "m/2.0.0.nlfw"}),
        );
        let ev = from_audit(&e);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].kind, "rollout.paused");
        assert_eq!(ev[0].data["automatic"], json!(true));
        assert_eq!(ev[0].data["sample"], json!(10));
        assert_eq!(ev[0].data["failure_rate"], json!(0.3));
        e.action = "site.policy".into();
        assert!(from_audit(&e).is_empty());
        e.action = "rollout.create".into();
        e.detail = json!({"started": true});
        let kinds: Vec<String> = from_audit(&e).into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["rollout.created", "rollout.started"]);
    }
}
