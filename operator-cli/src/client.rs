//! The admin API client: base URL + bearer token, JSON in and out, API
//! errors (`{"error", "message"}`) turned into [`CliError::Api`].
//!
//! The token goes only into the `Authorization` header (marked sensitive);
//! `--debug` prints method, URL, status and time, never headers.

use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use serde_json::Value;

use crate::config::Secret;
use crate::error::{CliError, CliResult};

/// Query parameters.
pub type Query = Vec<(&'static str, String)>;

/// A client of one server with one token.
#[derive(Debug)]
pub struct Client {
    http: Http,
    base: String,
    token: Secret,
    debug: bool,
}

/// Percent-encode one path segment (ids, site names): everything but
/// `A-Z a-z 0-9 - . _ ~`. Refuses empty, `.` and `..` segments, which a URL
/// parser would fold into a different path.
pub fn segment(s: &str) -> CliResult<String> {
    if s.is_empty() || s == "." || s == ".." {
        return Err(CliError::usage(format!("{s:?} is not a valid id")));
    }
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(out)
}

/// Check and normalise a server URL (`http://` or `https://`, no trailing
/// slash); warn when a token would travel unencrypted off this machine.
pub fn normalise_server(url: &str) -> CliResult<String> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| {
        CliError::usage(format!(
            "server {url:?} is not a URL ({e}); give e.g. http://127.0.0.1:8080"
        ))
    })?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(CliError::usage(format!(
            "server {url:?} must be an http:// or https:// URL"
        )));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(CliError::usage(format!(
            "server {url:?} must not have a query or fragment"
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(CliError::usage(
            "the server URL must not carry credentials; the token comes from `nightlatch login`",
        ));
    }
    if parsed.scheme() == "http" {
        let host = parsed.host_str().unwrap_or_default();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = bare.eq_ignore_ascii_case("localhost")
            || bare
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback());
        if !loopback {
            eprintln!(
                "warning: {} is plain http: the token travels unencrypted; use https",
                parsed.host_str().unwrap_or("the server")
            );
        }
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

impl Client {
    /// A client of `base` (normalised) with `token`.
    pub fn new(base: String, token: Secret, debug: bool) -> CliResult<Self> {
        let http = Http::builder()
            .user_agent(concat!("nightlatch/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| CliError::other(format!("cannot start the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            token,
            debug,
        })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str, query: &Query) -> RequestBuilder {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token.expose());
        if !query.is_empty() {
            r = r.query(query);
        }
        r
    }

    fn send(&self, req: RequestBuilder) -> CliResult<Response> {
        let req = req
            .build()
            .map_err(|e| CliError::other(format!("cannot build the request: {e}")))?;
        let (method, url) = (req.method().clone(), req.url().clone());
        if self.debug {
            eprintln!("debug: > {method} {url}");
        }
        let started = Instant::now();
        let resp = self.http.execute(req).map_err(|e| {
            let mut text = format!("cannot reach {}: {e}", self.base);
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            CliError::other(text)
        })?;
        if self.debug {
            eprintln!(
                "debug: < {} {method} {url} ({} ms)",
                resp.status(),
                started.elapsed().as_millis()
            );
        }
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(api_error(resp, &method, url.path()))
        }
    }

    /// `method path?query` with an optional JSON body; the JSON answer
    /// (Null when the body is empty).
    pub fn call(
        &self,
        method: Method,
        path: &str,
        query: &Query,
        body: Option<&Value>,
    ) -> CliResult<Value> {
        let mut req = self.request(method, path, query);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = self.send(req)?;
        let bytes = resp
            .bytes()
            .map_err(|e| CliError::other(format!("cannot read the answer: {e}")))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| CliError::other(format!("the server's answer is not JSON: {e}")))
    }

    /// `GET path?query`, JSON.
    pub fn get(&self, path: &str, query: &Query) -> CliResult<Value> {
        self.call(Method::GET, path, query, None)
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> CliResult<Value> {
        self.call(Method::POST, path, &Vec::new(), Some(body))
    }

    /// `GET path?query` streamed into `sink` (CSV exports); the response
    /// headers.
    pub fn download(
        &self,
        path: &str,
        query: &Query,
        sink: &mut dyn std::io::Write,
    ) -> CliResult<reqwest::header::HeaderMap> {
        let mut resp = self.send(self.request(Method::GET, path, query))?;
        let headers = resp.headers().clone();
        resp.copy_to(sink).map_err(|e| {
            CliError::other(format!("the download from {} stopped: {e}", self.base))
        })?;
        Ok(headers)
    }
}

/// Turn an error response into [`CliError::Api`]. A 404 for a route the
/// server does not have says so (a server older than this CLI).
fn api_error(resp: Response, method: &Method, path: &str) -> CliError {
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    match serde_json::from_str::<Value>(&text) {
        Ok(v) if v["error"].is_string() => {
            let mut message = v["message"].as_str().unwrap_or_default().to_owned();
            if status == 404 && message.starts_with("no such") && message.ends_with("endpoint") {
                message = format!(
                    "this server has no {method} {path} endpoint (is it older than this CLI?)"
                );
            }
            CliError::Api {
                status,
                code: v["error"].as_str().unwrap_or_default().to_owned(),
                message,
            }
        }
        _ => {
            let snippet: String = text.chars().take(200).collect();
            CliError::Api {
                status,
                code: format!("http_{status}"),
                message: if snippet.trim().is_empty() {
                    "the server answered without an error body".into()
                } else {
                    snippet.trim().to_owned()
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded_and_dot_segments_refused() {
        assert_eq!(segment("lock-0001").unwrap(), "lock-0001");
        assert_eq!(segment("a:b/c d").unwrap(), "a%3Ab%2Fc%20d");
        assert!(segment("..").is_err());
        assert!(segment(".").is_err());
        assert!(segment("").is_err());
    }

    #[test]
    fn servers_are_normalised() {
        assert_eq!(
            normalise_server("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(normalise_server("ftp://x").is_err());
        assert!(normalise_server("not a url").is_err());
        assert!(normalise_server("http://u:p@127.0.0.1/").is_err());
    }
}
