//! Serving the image repository (`/repo/metadata/…`, `/repo/targets/…`) and
//! the director's roots (`/director/metadata/…`) from the blob store, as any
//! TUF client expects: `application/json` metadata, immutable caching for
//! versioned and hash-named files, `no-cache` for `timestamp.json` and
//! `root.json`, entity tags, and single-range requests (resumable downloads).
//!
//! Metadata is served from memory: each file is read from the blob store
//! once, with its `ETag` and length headers prepared then, and the copies are
//! dropped whenever the repository changes (here or on another replica).
//!
//! The entry points of the image repository follow its commit point in the
//! database ([`crate::repo::commit`]), not the files: `timestamp.json` is
//! the committed one (from memory), `root.json` the committed newest root,
//! and `N.root.json` newer than that is not found — so nothing a write
//! leaves behind without committing is reachable. Targets are only those
//! published: uploads staged until metadata lists them live elsewhere.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    IF_RANGE, RANGE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::blob::check_key;
use crate::error::{ApiError, AppResult};
use crate::repo::CachedFile;
use crate::state::AppState;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// `GET /repo/metadata/{file}`.
pub async fn metadata(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let committed_root = state.repo.committed_root_version();
    let key = match (file.as_str(), committed_root) {
        ("timestamp.json", _) => {
            let Some(ts) = state.repo.served_timestamp() else {
                return Err(ApiError::not_found("no such file"));
            };
            return Ok(serve_memory(&state, &ts, "metadata", REVALIDATE, &headers));
        }
        ("root.json", Some(v)) => format!("repo/metadata/{v}.root.json"),
        (name, Some(v))
            if crate::repo::upload::parse_file_name(name)
                .is_some_and(|(n, role)| role == "root" && n > v) =>
        {
            return Err(ApiError::not_found("no such file"));
        }
        (name, _) => format!("repo/metadata/{name}"),
    };
    let cache = if file == "root.json" {
        REVALIDATE
    } else {
        IMMUTABLE
    };
    serve_metadata(&state, &key, "metadata", cache, &headers).await
}

/// Metadata from the repository host's in-memory copy (read from the blob
/// store once, dropped when the repository changes).
async fn serve_metadata(
    state: &AppState,
    key: &str,
    kind: &'static str,
    cache: &'static str,
    headers: &HeaderMap,
) -> AppResult<Response> {
    if check_key(key).is_err() {
        return Err(ApiError::not_found("no such file"));
    }
    let Some(file) = state.repo.served_metadata(key).await? else {
        return Err(ApiError::not_found("no such file"));
    };
    Ok(serve_memory(state, &file, kind, cache, headers))
}

/// Serve a file held in memory, as [`serve`] serves blobs: its `ETag` and
/// length headers were prepared when it was loaded.
fn serve_memory(
    state: &AppState,
    file: &CachedFile,
    kind: &'static str,
    cache: &'static str,
    headers: &HeaderMap,
) -> Response {
    let (bytes, etag) = (&file.bytes, file.etag.as_str());
    let len = bytes.len() as u64;
    let common = |mut r: Response| {
        let h = r.headers_mut();
        h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
        h.insert(ETAG, file.etag_header.clone());
        h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        r
    };
    if let Some(inm) = headers.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok())
        && inm.split(',').any(|t| t.trim() == etag || t.trim() == "*")
    {
        return common(StatusCode::NOT_MODIFIED.into_response());
    }
    let range = match headers.get(RANGE).and_then(|v| v.to_str().ok()) {
        None => RangeRequest::Full,
        Some(v) => {
            let if_range_ok = headers
                .get(IF_RANGE)
                .and_then(|v| v.to_str().ok())
                .is_none_or(|v| v.trim() == etag);
            if if_range_ok {
                parse_range(v, len)
            } else {
                RangeRequest::Full
            }
        }
    };
    let (status, start, end) = match range {
        RangeRequest::Full => (StatusCode::OK, 0, len),
        RangeRequest::Part(s, e) => (StatusCode::PARTIAL_CONTENT, s, e),
        RangeRequest::Unsatisfiable => {
            let mut r = common(
                ApiError::client(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "range_not_satisfiable",
                    format!("the file is {len} bytes"),
                )
                .into_response(),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(CONTENT_RANGE, v);
            }
            return r;
        }
    };
    state.metrics.record_download(kind, end - start);
    let body = if status == StatusCode::OK {
        Body::from(bytes.clone())
    } else {
        let (s, e) = (
            usize::try_from(start).unwrap_or(0),
            usize::try_from(end).unwrap_or(0),
        );
        Body::from(bytes.slice(s..e))
    };
    let mut r = common((status, body).into_response());
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if status == StatusCode::OK {
        h.insert(CONTENT_LENGTH, file.len_header.clone());
    } else {
        h.insert(CONTENT_LENGTH, HeaderValue::from(end - start));
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{}", start, end - 1, len)) {
            h.insert(CONTENT_RANGE, v);
        }
    }
    r
}

/// `GET /repo/targets/{*path}`.
pub async fn target(
    State(state): State<AppState>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> AppResult<Response> {
    serve(
        &state,
        &format!("repo/targets/{path}"),
        "target",
        IMMUTABLE,
        "application/octet-stream",
        &headers,
    )
    .await
}

/// `GET /director/metadata/{file}`.
pub async fn director_metadata(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let key = format!("director/metadata/{file}");
    if file == "root.json" {
        // The one mutable director file (another replica may publish a new
        // root at startup): always from the blob store.
        return serve(
            &state,
            &key,
            "director",
            REVALIDATE,
            "application/json",
            &headers,
        )
        .await;
    }
    serve_metadata(&state, &key, "director", IMMUTABLE, &headers).await
}

/// What a `Range` header asks for, against a blob of `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// No (usable) range: the whole blob.
    Full,
    /// Bytes `start..end`.
    Part(u64, u64),
    /// Nothing of the blob can satisfy it.
    Unsatisfiable,
}

/// Parse a `Range` header (single `bytes=` ranges; anything else is ignored,
/// as RFC 9110 allows).
pub fn parse_range(value: &str, len: u64) -> RangeRequest {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        match b.parse::<u64>() {
            Ok(0) => return RangeRequest::Unsatisfiable,
            Ok(n) => (len.saturating_sub(n), len),
            Err(_) => return RangeRequest::Full,
        }
    } else {
        let Ok(start) = a.parse::<u64>() else {
            return RangeRequest::Full;
        };
        let end = if b.is_empty() {
            len
        } else {
            match b.parse::<u64>() {
                Ok(e) if e >= start => e.saturating_add(1).min(len),
                _ => return RangeRequest::Full,
            }
        };
        (start, end)
    };
    if range.0 >= len || range.0 >= range.1 {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part(range.0, range.1)
}

async fn serve(
    state: &AppState,
    key: &str,
    kind: &'static str,
    cache: &'static str,
    content_type: &'static str,
    headers: &HeaderMap,
) -> AppResult<Response> {
    if check_key(key).is_err() {
        return Err(ApiError::not_found("no such file"));
    }
    let Some(meta) = state.blobs.head(key).await? else {
        return Err(ApiError::not_found("no such file"));
    };
    let etag =
        HeaderValue::from_str(&meta.etag).unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    let common = |mut r: Response| {
        let h = r.headers_mut();
        h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
        h.insert(ETAG, etag.clone());
        h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        r
    };
    if let Some(inm) = headers.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok())
        && inm
            .split(',')
            .any(|t| t.trim() == meta.etag || t.trim() == "*")
    {
        return Ok(common(StatusCode::NOT_MODIFIED.into_response()));
    }
    let if_range_ok = headers
        .get(IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == meta.etag);
    let range = match headers.get(RANGE).and_then(|v| v.to_str().ok()) {
        Some(v) if if_range_ok => parse_range(v, meta.len),
        _ => RangeRequest::Full,
    };
    let (status, start, end) = match range {
        RangeRequest::Full => (StatusCode::OK, 0, meta.len),
        RangeRequest::Part(s, e) => (StatusCode::PARTIAL_CONTENT, s, e),
        RangeRequest::Unsatisfiable => {
            let mut r = common(
                ApiError::client(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "range_not_satisfiable",
                    format!("the file is {} bytes", meta.len),
                )
                .into_response(),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", meta.len)) {
                r.headers_mut().insert(CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    let body = state
        .blobs
        .read(
            key,
            (status == StatusCode::PARTIAL_CONTENT).then_some(start..end),
        )
        .await?
        .unwrap_or_else(Body::empty);
    state.metrics.record_download(kind, end - start);
    let mut r = common((status, body).into_response());
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CONTENT_LENGTH, HeaderValue::from(end - start));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{}", start, end - 1, meta.len))
    {
        h.insert(CONTENT_RANGE, v);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=0-99", 1000), Part(0, 100));
        assert_eq!(parse_range("bytes=900-", 1000), Part(900, 1000));
        assert_eq!(parse_range("bytes=-100", 1000), Part(900, 1000));
        assert_eq!(parse_range("bytes=-5000", 1000), Part(0, 1000));
        assert_eq!(parse_range("bytes=990-2000", 1000), Part(990, 1000));
        assert_eq!(parse_range("bytes=1000-", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 1000), Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 1000), Full);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), Full);
        assert_eq!(parse_range("items=0-1", 1000), Full);
        assert_eq!(parse_range("bytes=x-1", 1000), Full);
    }
}
