//! The lock's radio on a host: [`HttpNet`] implements the agent's
//! [`Net`](lock_app::agent::Net) over plain HTTP/1.1 (ureq, loopback or LAN)
//! against a `nightlatch-server`, and counts the bytes on air.
//!
//! Bytes on air are HTTP/1.1 message bytes: request line, headers and body
//! sent; status line, headers and body received. TCP/IP, TLS and Wi-Fi
//! framing are not included (TLS 1.3 adds about 22 bytes per record plus a
//! handshake of a few kilobytes per connection, which a lock keeps open).

use std::time::Duration;

use lock_app::agent::{Net, NetError, Repo};
use lock_app::tuf::FetchError;

/// Bytes exchanged, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Traffic {
    /// HTTP requests made.
    pub requests: u64,
    /// Check-in bytes sent.
    pub checkin_sent: u64,
    /// Check-in bytes received.
    pub checkin_received: u64,
    /// Metadata (TUF) bytes sent (requests).
    pub metadata_sent: u64,
    /// Metadata bytes received.
    pub metadata_received: u64,
    /// Target (firmware, patch) bytes sent (requests).
    pub target_sent: u64,
    /// Target bytes received.
    pub target_received: u64,
}

impl Traffic {
    /// Everything, both directions.
    pub fn total(&self) -> u64 {
        self.checkin_sent
            + self.checkin_received
            + self.metadata_sent
            + self.metadata_received
            + self.target_sent
            + self.target_received
    }

    /// `self - earlier`, field by field.
    pub fn since(&self, earlier: &Traffic) -> Traffic {
        Traffic {
            requests: self.requests - earlier.requests,
            checkin_sent: self.checkin_sent - earlier.checkin_sent,
            checkin_received: self.checkin_received - earlier.checkin_received,
            metadata_sent: self.metadata_sent - earlier.metadata_sent,
            metadata_received: self.metadata_received - earlier.metadata_received,
            target_sent: self.target_sent - earlier.target_sent,
            target_received: self.target_received - earlier.target_received,
        }
    }
}

/// HTTP to one server.
#[derive(Debug)]
pub struct HttpNet {
    base: String,
    host: String,
    agent: ureq::Agent,
    /// Bytes exchanged so far.
    pub traffic: Traffic,
}

fn request_bytes(method: &str, path: &str, host: &str, extra: &[(&str, &str)], body: usize) -> u64 {
    // "GET /path HTTP/1.1\r\n" + "host: …\r\n" + extra headers + "\r\n" + body
    let mut n = method.len() + 1 + path.len() + 11;
    n += 6 + host.len() + 2;
    for (k, v) in extra {
        n += k.len() + 2 + v.len() + 2;
    }
    if body > 0 {
        n += "content-length: ".len() + body.to_string().len() + 2;
    }
    (n + 2 + body) as u64
}

fn response_head_bytes(resp: &ureq::http::Response<ureq::Body>) -> u64 {
    // "HTTP/1.1 200 OK\r\n" + headers + "\r\n"
    let mut n = 17usize;
    for (k, v) in resp.headers() {
        n += k.as_str().len() + 2 + v.as_bytes().len() + 2;
    }
    (n + 2) as u64
}

/// `limit` on each phase of a request (connect, send, the response's head,
/// its body) and none on resolving the host name.
///
/// Not one overall timeout: with one, ureq 3 resolves the host name of every
/// request (pooled connection or not) on a thread it spawns so it can give
/// up, which cost each simulated check-in a thread. The simulator talks to
/// an IP address, which resolves without a lookup.
pub fn phase_timeouts(
    config: ureq::config::ConfigBuilder<ureq::typestate::AgentScope>,
    limit: Duration,
) -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    config
        .timeout_connect(Some(limit))
        .timeout_send_request(Some(limit))
        .timeout_send_body(Some(limit))
        .timeout_recv_response(Some(limit))
        .timeout_recv_body(Some(limit))
}

impl HttpNet {
    /// A client for the server at `base` (`http://host:port`).
    pub fn new(base: &str) -> Self {
        let base = base.trim_end_matches('/').to_owned();
        let host = base
            .strip_prefix("http://")
            .unwrap_or(&base)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let agent = phase_timeouts(ureq::Agent::config_builder(), Duration::from_secs(60))
            .http_status_as_error(false)
            // A lock's HTTP client sends no user-agent or accept header.
            .user_agent(ureq::config::AutoHeaderValue::None)
            .accept(ureq::config::AutoHeaderValue::None)
            .build()
            .new_agent();
        Self {
            base,
            host,
            agent,
            traffic: Traffic::default(),
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn get(
        &mut self,
        path: &str,
        range: Option<(u64, u64)>,
        max_len: u64,
    ) -> Result<(u64, u64, Vec<u8>), FetchError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.get(&url);
        let range_value = range.map(|(a, b)| format!("bytes={a}-{b}"));
        let mut extra = Vec::new();
        if let Some(r) = &range_value {
            req = req.header("range", r);
            extra.push(("range", r.as_str()));
        }
        let sent = request_bytes("GET", path, &self.host, &extra, 0);
        self.traffic.requests += 1;
        let mut resp = req.call().map_err(|_| FetchError::Other)?;
        let head = response_head_bytes(&resp);
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(max_len)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => FetchError::TooLarge,
                _ => FetchError::Other,
            });
        let body = match (status, body) {
            (200 | 206, b) => b?,
            (403 | 404, _) => return Err(FetchError::NotFound),
            _ => return Err(FetchError::Other),
        };
        Ok((sent, head + body.len() as u64, body))
    }
}

impl Net for HttpNet {
    fn check_in(
        &mut self,
        device_id: &str,
        body: &[u8],
        signature: &str,
        max_len: u64,
    ) -> Result<Vec<u8>, NetError> {
        let path = format!("/v1/devices/{device_id}/check-in");
        let url = format!("{}{path}", self.base);
        self.traffic.requests += 1;
        self.traffic.checkin_sent += request_bytes(
            "POST",
            &path,
            &self.host,
            &[
                ("content-type", "application/json"),
                ("nightlatch-signature", signature),
            ],
            body.len(),
        );
        let mut resp = self
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .header("nightlatch-signature", signature)
            .send(body)
            .map_err(|_| NetError::Unreachable)?;
        let head = response_head_bytes(&resp);
        let status = resp.status().as_u16();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(max_len)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => NetError::TooLarge,
                _ => NetError::Unreachable,
            })?;
        self.traffic.checkin_received += head + bytes.len() as u64;
        if status != 200 {
            return Err(NetError::Status(status));
        }
        Ok(bytes)
    }

    fn fetch_metadata(
        &mut self,
        repo: Repo,
        file: &str,
        max_len: u64,
    ) -> Result<Vec<u8>, FetchError> {
        let dir = match repo {
            Repo::Image => "/repo/metadata/",
            Repo::Director => "/director/metadata/",
        };
        let (sent, received, body) = self.get(&format!("{dir}{file}"), None, max_len)?;
        self.traffic.metadata_sent += sent;
        self.traffic.metadata_received += received;
        Ok(body)
    }

    fn fetch_target(&mut self, path: &str, offset: u64, len: u32) -> Result<Vec<u8>, FetchError> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let end = offset + u64::from(len) - 1;
        let (sent, received, mut body) = self.get(
            &format!("/repo/targets/{path}"),
            Some((offset, end)),
            // A server ignoring Range sends the whole file: allow up to the
            // DFU size, then cut.
            64 * 1024 * 1024,
        )?;
        self.traffic.target_sent += sent;
        self.traffic.target_received += received;
        if body.len() > len as usize {
            // 200 with the whole file: take the range.
            let start = usize::try_from(offset).map_err(|_| FetchError::Other)?;
            body = body
                .get(start..start + len as usize)
                .ok_or(FetchError::Other)?
                .to_vec();
        }
        Ok(body)
    }
}
