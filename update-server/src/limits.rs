//! Limits that keep a client without a token from exhausting the server
//! (settings in [`crate::config::HttpConfig`]):
//!
//! * [`ConnectionLimiter`]: open connections in all and per client address;
//!   the accept loop ([`crate::server`]) answers a connection past either
//!   limit with a 503 and closes it at once.
//! * [`RateLimits`] (middleware [`guard`]): requests per second to the
//!   public routes per client, and refusals per client (unknown lock, bad
//!   signature, malformed or replayed check-in, bad admin token) — a client
//!   past its refusal budget gets 429 on check-ins and admin routes before
//!   any parsing, database read or signature check.
//!
//! Header-read, request and keep-alive limits are set on the connections
//! themselves ([`crate::server`]) and on the routes ([`crate::app`]).
//!
//! A client is its address; IPv6 addresses count per /64 (one host usually
//! holds a whole /64). Behind a proxy listed in `http.trusted_proxies`, the
//! client is the last address in `X-Forwarded-For` that is not itself a
//! trusted proxy.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::HttpConfig;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// The key limits are counted under: an IPv4 address, or an IPv6 /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The client of a request: its peer, or what a trusted proxy says.
pub fn client_ip(req: &Request, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in forwarded.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => continue,
            Ok(ip) => return Some(ip),
            // A hop we cannot read: count the request under the proxy.
            Err(_) => return Some(peer),
        }
    }
    Some(peer)
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionRefusal {
    /// `http.max_connections` reached.
    Total,
    /// `http.max_connections_per_client` reached for this client.
    Client,
}

impl ConnectionRefusal {
    /// Metric label.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Total => "connection_limit",
            Self::Client => "client_connection_limit",
        }
    }

    /// The whole HTTP/1.1 response sent before closing.
    pub fn response(self) -> Vec<u8> {
        let (code, message) = match self {
            Self::Total => (
                "too_many_connections",
                "the server is at its connection limit; retry later",
            ),
            Self::Client => (
                "too_many_client_connections",
                "too many open connections from your address; close some and retry",
            ),
        };
        let body = format!("{{\"error\":\"{code}\",\"message\":\"{message}\"}}");
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 5\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }
}

/// Open connections, in all and per client.
#[derive(Debug)]
pub struct ConnectionLimiter {
    max: usize,
    max_per_client: usize,
    total: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnectionSlot {
    limiter: Arc<ConnectionLimiter>,
    key: IpAddr,
}

impl ConnectionLimiter {
    /// A limiter for `max` connections, `max_per_client` from one client.
    pub fn new(max: usize, max_per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            max_per_client: max_per_client.min(max),
            total: AtomicUsize::new(0),
            per_client: Mutex::new(HashMap::new()),
        })
    }

    /// Admit a connection from `ip`, or say why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, ConnectionRefusal> {
        let key = client_key(ip);
        let mut per = self
            .per_client
            .lock()
            .map_err(|_| ConnectionRefusal::Total)?;
        let open = per.get(&key).copied().unwrap_or(0);
        if open >= self.max_per_client {
            return Err(ConnectionRefusal::Client);
        }
        if self.total.load(Ordering::Relaxed) >= self.max {
            return Err(ConnectionRefusal::Total);
        }
        self.total.fetch_add(1, Ordering::Relaxed);
        per.insert(key, open + 1);
        Ok(ConnectionSlot {
            limiter: Arc::clone(self),
            key,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.limiter.total.fetch_sub(1, Ordering::Relaxed);
        if let Ok(mut per) = self.limiter.per_client.lock()
            && let Some(n) = per.get_mut(&self.key)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per.remove(&self.key);
            }
        }
    }
}

/// Per-client request and refusal budgets.
#[derive(Debug)]
pub struct RateLimits {
    public: DefaultKeyedRateLimiter<IpAddr>,
    refusals: DefaultKeyedRateLimiter<IpAddr>,
    /// Clients past their refusal budget, and until when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    trusted: Vec<IpAddr>,
    metrics: Arc<Metrics>,
    last_sweep: Mutex<Instant>,
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// Most clients remembered as blocked at once.
const BLOCKED_MAX: usize = 100_000;

impl RateLimits {
    /// Budgets from the configuration.
    pub fn new(http: &HttpConfig, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            public: RateLimiter::keyed(
                Quota::per_second(nonzero(http.public_rate))
                    .allow_burst(nonzero(http.public_burst)),
            ),
            refusals: RateLimiter::keyed(
                Quota::per_second(nonzero(http.refusal_rate))
                    .allow_burst(nonzero(http.refusal_burst)),
            ),
            blocked: Mutex::new(HashMap::new()),
            trusted: http.trusted_proxies.clone(),
            metrics,
            last_sweep: Mutex::new(Instant::now()),
        })
    }

    fn blocked_for(&self, key: IpAddr) -> Option<Duration> {
        let blocked = self.blocked.lock().ok()?;
        let until = blocked.get(&key)?;
        until.checked_duration_since(Instant::now())
    }

    fn refused(&self, key: IpAddr) {
        if let Err(not_until) = self.refusals.check_key(&key) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            if let Ok(mut blocked) = self.blocked.lock() {
                if blocked.len() >= BLOCKED_MAX {
                    let now = Instant::now();
                    blocked.retain(|_, until| *until > now);
                }
                if blocked.len() < BLOCKED_MAX {
                    blocked.insert(key, Instant::now() + wait.max(Duration::from_secs(1)));
                }
            }
        }
    }

    /// Forget clients that have been quiet (once a minute at most).
    fn sweep(&self) {
        let Ok(mut last) = self.last_sweep.lock() else {
            return;
        };
        if last.elapsed() < Duration::from_secs(60) {
            return;
        }
        *last = Instant::now();
        drop(last);
        self.public.retain_recent();
        self.refusals.retain_recent();
        self.public.shrink_to_fit();
        self.refusals.shrink_to_fit();
        if let Ok(mut blocked) = self.blocked.lock() {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
        }
    }
}

fn too_many(code: &'static str, message: &str, wait: Duration) -> Response {
    let mut r = ApiError::client(StatusCode::TOO_MANY_REQUESTS, code, message).into_response();
    let secs = wait.as_secs().max(1);
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(RETRY_AFTER, v);
    }
    r
}

/// Which budget a route draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Token-authenticated admin routes: refusals only.
    Admin,
    /// Check-ins: requests and refusals.
    CheckIn,
    /// Everything else public: requests.
    Public,
}

fn class(path: &str) -> Class {
    if path.starts_with("/admin/") && path != "/admin/v1/openapi.json" {
        Class::Admin
    } else if path.starts_with("/v1/devices/") || path == "/console/login" {
        // Check-ins, and console sign-ins (a bad token there is a refusal).
        Class::CheckIn
    } else {
        Class::Public
    }
}

/// Middleware over every route: the per-client budgets. Requests that came
/// through no socket (in-process tests) are not limited.
pub async fn guard(State(limits): State<Arc<RateLimits>>, req: Request, next: Next) -> Response {
    let Some(ip) = client_ip(&req, &limits.trusted) else {
        return next.run(req).await;
    };
    let key = client_key(ip);
    limits.sweep();
    let class = class(req.uri().path());
    if class != Class::Admin
        && let Err(not_until) = limits.public.check_key(&key)
    {
        limits
            .metrics
            .http_refused
            .with_label_values(&["rate_limited"])
            .inc();
        return too_many(
            "rate_limited",
            "too many requests from your address; slow down",
            not_until.wait_time_from(DefaultClock::default().now()),
        );
    }
    if class != Class::Public
        && let Some(wait) = limits.blocked_for(key)
    {
        limits
            .metrics
            .http_refused
            .with_label_values(&["refusal_limited"])
            .inc();
        return too_many(
            "too_many_refusals",
            "too many refused requests from your address; wait before retrying",
            wait,
        );
    }
    let response = next.run(req).await;
    if class != Class::Public
        && matches!(
            response.status(),
            StatusCode::BAD_REQUEST
                | StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
                | StatusCode::NOT_FOUND
                | StatusCode::CONFLICT
                | StatusCode::PAYLOAD_TOO_LARGE
                | StatusCode::UNPROCESSABLE_ENTITY
        )
    {
        limits.refused(key);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let m: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(m), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn connection_slots_are_counted_and_freed() {
        let l = ConnectionLimiter::new(3, 2);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let s1 = l.admit(a).unwrap();
        let _s2 = l.admit(a).unwrap();
        assert_eq!(l.admit(a).unwrap_err(), ConnectionRefusal::Client);
        let _s3 = l.admit(b).unwrap();
        assert_eq!(l.admit(b).unwrap_err(), ConnectionRefusal::Total);
        drop(s1);
        assert_eq!(l.open(), 2);
        assert!(l.admit(a).is_ok());
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let mk = |peer: &str, xff: Option<&str>| {
            let mut b = axum::http::Request::builder().uri("/healthz");
            if let Some(x) = xff {
                b = b.header("x-forwarded-for", x);
            }
            let mut r = b.body(axum::body::Body::empty()).unwrap();
            r.extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 1)));
            r
        };
        let trusted = [proxy];
        assert_eq!(
            client_ip(&mk("10.0.0.1", Some("198.51.100.1, 203.0.113.9")), &trusted),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(
            client_ip(&mk("203.0.113.5", Some("198.51.100.1")), &trusted),
            Some("203.0.113.5".parse().unwrap())
        );
        assert_eq!(client_ip(&mk("10.0.0.1", None), &trusted), Some(proxy));
    }

    #[test]
    fn the_refusal_response_is_http() {
        let r = String::from_utf8(ConnectionRefusal::Client.response()).unwrap();
        assert!(r.starts_with("HTTP/1.1 503 "));
        let (_, body) = r.split_once("\r\n\r\n").unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"], "too_many_client_connections");
    }
}
