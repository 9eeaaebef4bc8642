//! Admin: the audit log. Each entry names who by `token_id` (the id of the
//! token used; null for the server itself and for refusals without a usable
//! token) and `actor` (that token's name, `system` or `anonymous`).
//!
//! Both the list and its CSV export take the same filters: `actor`,
//! `token_id`, `action` (exact, or a prefix ending in `*`: `rollout.*`),
//! `since` / `until` (RFC 3339, `[since, until)`), and keyset paging by id
//! (`after`, `limit`).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::error::{ApiError, AppResult};
use crate::routes::extract::ApiQuery;
use crate::routes::{limit, time};
use crate::state::AppState;
use crate::store::audit::{ActionMatch, AuditFilter, AuditRecord};

/// `?actor=&token_id=&action=&since=&until=&after=&limit=`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    actor: Option<String>,
    token_id: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    after: Option<String>,
    limit: Option<i64>,
}

/// Most rows one export holds.
pub const EXPORT_MAX_ROWS: i64 = 100_000;
/// Rows read from the database at a time while exporting.
const EXPORT_PAGE: i64 = 1000;
/// The export's header row.
pub const CSV_HEADER: &str = "id,at,token_id,actor,role,action,subject,detail";
/// Response header set when the export stopped at its row limit and more
/// entries match (continue with `after=` the last id).
pub const TRUNCATED_HEADER: &str = "x-nightlatch-truncated";

fn bad(text: String) -> ApiError {
    ApiError::bad_request("bad_query", text)
}

fn time_query(what: &str, text: Option<&str>) -> AppResult<Option<i64>> {
    text.filter(|t| !t.is_empty())
        .map(|t| crate::clock::parse_rfc3339(t).map_err(|e| bad(format!("{what}: {e}"))))
        .transpose()
}

impl AuditQuery {
    fn filter(self, default_limit: i64, max_limit: i64) -> AppResult<AuditFilter> {
        let action = match self.action.as_deref() {
            None => None,
            Some(a) => ActionMatch::parse(a).ok_or_else(|| {
                bad(
                    "action is an action (rollout.pause) or a prefix ending in * (rollout.*)"
                        .into(),
                )
            })?,
        };
        let some = |v: Option<String>| v.filter(|s| !s.is_empty());
        Ok(AuditFilter {
            actor: some(self.actor),
            token_id: some(self.token_id),
            action,
            since: time_query("since", self.since.as_deref())?,
            until: time_query("until", self.until.as_deref())?,
            after: some(self.after),
            limit: limit(self.limit, default_limit, max_limit),
        })
    }
}

fn entry_json(e: &AuditRecord) -> serde_json::Value {
    json!({
        "id": e.id, "at": time(Some(e.at)), "token_id": e.token_id, "actor": e.actor, "role": e.role,
        "action": e.action, "subject": e.subject, "detail": e.detail,
    })
}

/// `GET /admin/v1/audit`.
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> AppResult<Json<serde_json::Value>> {
    let entries = state.store.audit_entries(&q.filter(100, 1000)?).await?;
    Ok(Json(json!({
        "entries": entries.iter().map(entry_json).collect::<Vec<_>>(),
        "next_after": entries.last().map(|e| &e.id),
    })))
}

/// One CSV cell (RFC 4180): text that a spreadsheet would run as a formula
/// (starting with `=`, `+`, `-`, `@`, tab or carriage return) gets a
/// leading `'`; cells with a comma, quote or line break are quoted, quotes
/// doubled.
pub fn csv_cell(text: &str) -> String {
    let neutral = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if neutral.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

fn csv_row(e: &AuditRecord, out: &mut String) {
    let cells = [
        e.id.clone(),
        crate::clock::rfc3339(e.at),
        e.token_id.clone().unwrap_or_default(),
        e.actor.clone(),
        e.role.clone(),
        e.action.clone(),
        e.subject.clone(),
        e.detail.to_string(),
    ];
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&csv_cell(c));
    }
    out.push_str("\r\n");
}

/// `GET /admin/v1/audit/export`: the matching entries as `text/csv`
/// (header row [`CSV_HEADER`], CRLF line ends), oldest first, at most
/// `limit` rows (default and maximum [`EXPORT_MAX_ROWS`]), read from the
/// database a page at a time while the body streams. When more entries
/// match, the response carries `x-nightlatch-truncated: true`.
pub async fn export(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> AppResult<Response> {
    let filter = q.filter(EXPORT_MAX_ROWS, EXPORT_MAX_ROWS)?;
    let max_rows = filter.limit;
    let truncated = state.store.audit_more_than(&filter, max_rows).await?;
    struct Cursor {
        state: AppState,
        filter: AuditFilter,
        left: i64,
        header: bool,
    }
    let start = Cursor {
        state,
        filter,
        left: max_rows,
        header: true,
    };
    let stream = futures_util::stream::unfold(start, |mut c| async move {
        if c.header {
            c.header = false;
            return Some((Ok(bytes::Bytes::from(format!("{CSV_HEADER}\r\n"))), c));
        }
        if c.left <= 0 {
            return None;
        }
        c.filter.limit = c.left.min(EXPORT_PAGE);
        match c.state.store.audit_entries(&c.filter).await {
            Ok(page) if page.is_empty() => None,
            Ok(page) => {
                let mut text = String::with_capacity(page.len() * 200);
                for e in &page {
                    csv_row(e, &mut text);
                }
                c.left -= page.len() as i64;
                c.filter.after = page.last().map(|e| e.id.clone());
                Some((Ok(bytes::Bytes::from(text)), c))
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "audit export stopped");
                c.left = 0;
                Some((Err(std::io::Error::other("audit export failed")), c))
            }
        }
    });
    let mut r = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8; header=present"),
    );
    h.insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"nightlatch-audit.csv\""),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if truncated {
        h.insert(TRUNCATED_HEADER, HeaderValue::from_static("true"));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_quote_and_neutralise_formulas() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell(""), "");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\r\nlines"), "\"two\r\nlines\"");
        assert_eq!(csv_cell("=1+2"), "'=1+2");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(
            csv_cell("=HYPERLINK(\"x\",\"y\")"),
            "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\""
        );
        assert_eq!(csv_cell("a=b"), "a=b");
    }
}
