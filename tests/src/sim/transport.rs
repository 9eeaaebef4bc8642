//! A [`Transport`] over a base URL: `file://` (a directory) or `http://`
//! (ureq, no TLS). Reads stop at the size limit.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::PathBuf;

use lock_app::tuf::{FetchError, Transport};

use super::error::SimError;

/// Where files come from.
#[derive(Debug)]
pub enum UrlTransport {
    /// A local directory.
    Dir(PathBuf),
    /// An HTTP base URL, ending in `/`.
    Http { base: String, agent: ureq::Agent },
}

impl UrlTransport {
    /// Parse `file:///dir` or `http://host/path`.
    pub fn parse(url: &str) -> Result<Self, SimError> {
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(SimError::Url { url: url.into() });
            }
            return Ok(Self::Dir(PathBuf::from(path)));
        }
        if url.starts_with("http://") {
            let mut base = url.to_owned();
            if !base.ends_with('/') {
                base.push('/');
            }
            let agent = super::net::phase_timeouts(
                ureq::Agent::config_builder(),
                std::time::Duration::from_secs(60),
            )
            .build()
            .new_agent();
            return Ok(Self::Http { base, agent });
        }
        Err(SimError::Url { url: url.into() })
    }
}

impl Transport for UrlTransport {
    fn fetch(&mut self, path: &str, max_len: u64) -> Result<Vec<u8>, FetchError> {
        match self {
            Self::Dir(dir) => {
                let file = File::open(dir.join(path)).map_err(|e| match e.kind() {
                    ErrorKind::NotFound => FetchError::NotFound,
                    _ => FetchError::Other,
                })?;
                let mut out = Vec::new();
                file.take(max_len.saturating_add(1))
                    .read_to_end(&mut out)
                    .map_err(|_| FetchError::Other)?;
                if u64::try_from(out.len()).map_or(true, |l| l > max_len) {
                    return Err(FetchError::TooLarge);
                }
                Ok(out)
            }
            Self::Http { base, agent } => {
                let url = format!("{base}{path}");
                let mut resp = agent.get(&url).call().map_err(|e| match e {
                    ureq::Error::StatusCode(403 | 404) => FetchError::NotFound,
                    _ => FetchError::Other,
                })?;
                resp.body_mut()
                    .with_config()
                    .limit(max_len)
                    .read_to_vec()
                    .map_err(|e| match e {
                        ureq::Error::BodyExceedsLimit(_) => FetchError::TooLarge,
                        _ => FetchError::Other,
                    })
            }
        }
    }
}
