//! Admin authentication: bearer tokens with one of four roles, ordered
//! viewer < operator < release < security-admin; an endpoint needing a role
//! accepts it and every role above it. Tokens are 256-bit random strings
//! (`nlt_` + 64 hex); only their SHA-256 is stored.
//!
//! Which role each endpoint needs is written once, in
//! [`crate::routes::admin::ENDPOINTS`]; the middleware here enforces that
//! table (an admin route missing from it is refused), the OpenAPI document
//! is generated from it, and the security tests walk it.
//!
//! Every refused request (no token, unknown or revoked token, role too low)
//! is counted in `nightlatch_admin_auth_refusals_total{reason}` and sampled
//! into the audit log: at most one entry per reason per
//! [`REFUSAL_SAMPLE_MS`] on each replica (server clock), carrying the
//! number of refusals it stands for — never the token or its hash.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::audit::AuditEntry;

/// An admin role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Read fleet state, rollouts, the repository.
    Viewer,
    /// Register locks, run rollouts, set site policies.
    Operator,
    /// Upload targets and targets metadata.
    Release,
    /// Revoke locks, manage tokens, read the audit log, rotate roots.
    SecurityAdmin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Self; 4] = [
        Self::Viewer,
        Self::Operator,
        Self::Release,
        Self::SecurityAdmin,
    ];

    /// Stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Release => "release",
            Self::SecurityAdmin => "security-admin",
        }
    }

    /// Parse a name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// Who is calling (inserted into request extensions by [`authorize`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Token id.
    pub token_id: String,
    /// Token name.
    pub name: String,
    /// Role.
    pub role: Role,
}

impl Caller {
    /// An audit entry by this caller (by token id, and name).
    pub fn audit(&self, action: &str, subject: &str, detail: serde_json::Value) -> AuditEntry {
        AuditEntry {
            token_id: Some(self.token_id.clone()),
            actor: self.name.clone(),
            role: self.role.as_str().to_owned(),
            action: action.to_owned(),
            subject: subject.to_owned(),
            detail,
        }
    }
}

/// Longest token name, in characters.
pub const MAX_TOKEN_NAME_CHARS: usize = 64;

/// Whether `c` must not appear in a token name: control characters, bidi
/// embeddings, overrides, isolates and marks, zero-width and other invisible
/// formatting characters (names are shown to people reading the audit log,
/// who must see what is there).
fn forbidden_in_name(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}'                 // Arabic letter mark
            | '\u{00AD}'               // soft hyphen
            | '\u{180E}'               // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}'  // zero-width space/non-joiner/joiner, LRM, RLM
            | '\u{2028}'..='\u{202E}'  // line/paragraph separators, bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}'  // word joiner, invisible operators
            | '\u{2066}'..='\u{206F}'  // bidi isolates, deprecated format characters
            | '\u{FEFF}'               // zero-width no-break space (BOM)
            | '\u{FFF9}'..='\u{FFFB}'  // interlinear annotation
        )
}

/// Check a token name given by a client: printable text people can read in
/// the audit log. The refusal says what is wrong.
pub fn check_token_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("the name must not be empty or only whitespace".into());
    }
    let chars = name.chars().count();
    if chars > MAX_TOKEN_NAME_CHARS {
        return Err(format!(
            "the name is {chars} characters long; at most {MAX_TOKEN_NAME_CHARS} are allowed"
        ));
    }
    if let Some(c) = name.chars().find(|c| forbidden_in_name(*c)) {
        return Err(format!(
            "the name contains U+{:04X}: control, bidirectional-override, zero-width and other invisible characters are not allowed",
            u32::from(c)
        ));
    }
    if name.trim() != name {
        return Err("the name must not start or end with whitespace".into());
    }
    if name.eq_ignore_ascii_case("system") {
        return Err("\"system\" is reserved for entries the server writes itself".into());
    }
    Ok(())
}

/// The identity of a console session, attached by [`crate::console`] to
/// the in-process API requests it makes (never present on a request from
/// the network). The session was checked against the tokens table for
/// this very request; the role table applies to it as to a bearer token.
#[derive(Debug, Clone)]
pub struct InternalCaller(pub Caller);

/// A new secret token.
pub fn new_token() -> String {
    format!("nlt_{}", hex::encode(crate::ids::random_bytes::<32>()))
}

/// What is stored of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Recently looked-up tokens (a few seconds), so every admin request does
/// not cost a database read. Revocation on this replica clears it at once;
/// other replicas see it within [`TokenCache::TTL`]. A token's expiry is
/// kept with it, so an expired token is refused at once, cached or not.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, CacheEntry>>,
    refusals: Mutex<HashMap<&'static str, RefusalSample>>,
}

/// At most one audit entry per refusal reason per this many milliseconds
/// (server clock), on each replica.
pub const REFUSAL_SAMPLE_MS: i64 = 60_000;

/// Refusal reasons, the values of the metric's `reason` label.
pub const REFUSAL_REASONS: [&str; 3] = ["missing_token", "bad_token", "forbidden"];

/// A looked-up token: when it was looked up, who it is (none: unknown,
/// revoked or expired) and when it expires (server clock, ms).
type CacheEntry = (Instant, Option<Caller>, Option<i64>);

#[derive(Debug, Clone, Copy)]
struct RefusalSample {
    /// When the last entry for this reason was written.
    last_at: i64,
    /// Refusals since then that got no entry.
    suppressed: u64,
}

impl TokenCache {
    /// How long a lookup is trusted.
    pub const TTL: Duration = Duration::from_secs(5);

    fn get(&self, hash: &str, now_ms: i64) -> Option<Option<Caller>> {
        let map = self.entries.lock().ok()?;
        map.get(hash)
            .filter(|(at, _, _)| at.elapsed() < Self::TTL)
            .map(|(_, c, expires)| c.clone().filter(|_| expires.is_none_or(|e| e > now_ms)))
    }

    fn put(&self, hash: String, caller: Option<Caller>, expires_at: Option<i64>) {
        if let Ok(mut map) = self.entries.lock() {
            if map.len() > 10_000 {
                map.clear();
            }
            map.insert(hash, (Instant::now(), caller, expires_at));
        }
    }

    /// Forget everything (after a revocation).
    pub fn clear(&self) {
        if let Ok(mut map) = self.entries.lock() {
            map.clear();
        }
    }

    /// A refusal for `reason` at `now`: Some(refusals left unrecorded since
    /// the last entry) if this one is to be written to the audit log.
    fn sample_refusal(&self, reason: &'static str, now: i64) -> Option<u64> {
        let mut map = self.refusals.lock().ok()?;
        match map.get_mut(reason) {
            Some(s) if now.saturating_sub(s.last_at) < REFUSAL_SAMPLE_MS && now >= s.last_at => {
                s.suppressed += 1;
                None
            }
            Some(s) => {
                let suppressed = s.suppressed;
                *s = RefusalSample {
                    last_at: now,
                    suppressed: 0,
                };
                Some(suppressed)
            }
            None => {
                map.insert(
                    reason,
                    RefusalSample {
                        last_at: now,
                        suppressed: 0,
                    },
                );
                Some(0)
            }
        }
    }
}

/// Count a refused request, sample it into the audit log, and answer with `error`.
async fn refuse(
    state: &AppState,
    reason: &'static str,
    caller: Option<&Caller>,
    route: &str,
    method: &str,
    needed: Role,
    error: ApiError,
) -> Response {
    state
        .metrics
        .auth_refusals
        .with_label_values(&[reason])
        .inc();
    let now = state.clock.now_ms();
    if let Some(suppressed) = state.tokens.sample_refusal(reason, now) {
        let entry = AuditEntry {
            token_id: caller.map(|c| c.token_id.clone()),
            actor: caller.map_or_else(|| "anonymous".to_owned(), |c| c.name.clone()),
            role: caller.map_or("none", |c| c.role.as_str()).to_owned(),
            action: "auth.refused".into(),
            subject: format!("{method} {route}"),
            detail: serde_json::json!({
                "reason": reason,
                "needed": needed.as_str(),
                "refusals_not_recorded_since_last_entry": suppressed,
                "sample_interval_secs": REFUSAL_SAMPLE_MS / 1000,
            }),
        };
        if let Err(e) = state.store.audit(&entry, now).await {
            tracing::warn!(error = %format!("{e:#}"), "could not record a refused authentication");
        }
    }
    error.into_response()
}

async fn caller_for(state: &AppState, token: &str) -> Result<Option<Caller>, ApiError> {
    let hash = hash_token(token);
    let now = state.clock.now_ms();
    if let Some(hit) = state.tokens.get(&hash, now) {
        return Ok(hit);
    }
    let record = state.store.token_by_hash(&hash, now).await?;
    let expires_at = record.as_ref().and_then(|t| t.expires_at);
    let caller = record.and_then(|t| {
        Some(Caller {
            role: Role::parse(&t.role)?,
            token_id: t.id,
            name: t.name,
        })
    });
    state.tokens.put(hash, caller.clone(), expires_at);
    Ok(caller)
}

/// Middleware on `/admin/v1/…`: the route's required role from the
/// endpoint table, a valid bearer token, and a role at least that high.
pub async fn authorize(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let needed = path
        .as_deref()
        .and_then(|p| crate::routes::admin::required_role(req.method(), p));
    let (Some(needed), Some(route)) = (needed, path.as_deref()) else {
        return ApiError::not_found("no such admin endpoint").into_response();
    };
    let method = req.method().as_str().to_owned();
    // The console calls the API in process for a signed-in session it has
    // just checked against the tokens table; nothing from the network can
    // put this extension on a request.
    let internal = req.extensions_mut().remove::<InternalCaller>();
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let caller = match (internal, token) {
        (Some(InternalCaller(c)), _) => Ok(Some(c)),
        (None, Some(token)) => caller_for(&state, token).await,
        (None, None) => {
            let e = ApiError::unauthorized("missing_token", "send Authorization: Bearer <token>");
            return refuse(&state, "missing_token", None, route, &method, needed, e).await;
        }
    };
    let caller = match caller {
        Ok(Some(c)) => c,
        Ok(None) => {
            let e = ApiError::unauthorized("bad_token", "the token is unknown or revoked");
            return refuse(&state, "bad_token", None, route, &method, needed, e).await;
        }
        Err(e) => return e.into_response(),
    };
    if caller.role < needed {
        let e = ApiError::forbidden(
            "forbidden",
            format!(
                "this needs the {} role; the token has {}",
                needed.as_str(),
                caller.role.as_str()
            ),
        );
        return refuse(
            &state,
            "forbidden",
            Some(&caller),
            route,
            &method,
            needed,
            e,
        )
        .await;
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_named() {
        assert!(Role::Viewer < Role::Operator && Role::Release < Role::SecurityAdmin);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
        let t = new_token();
        assert!(t.starts_with("nlt_") && t.len() == 68);
        assert_eq!(hash_token(&t).len(), 64);
        assert_ne!(hash_token(&t), hash_token(&new_token()));
    }

    #[test]
    fn token_names_are_readable_text() {
        for good in [
            "Alice Example",
            "ops-bot",
            "Zoë",
            "release 2030",
            &"x".repeat(64),
        ] {
            assert_eq!(check_token_name(good), Ok(()), "{good:?}");
        }
        for bad in [
            "",
            "   ",
            "system",
            "SYSTEM",
            "System",
            " alice",
            "alice ",
            "a\tb",
            "a\nb",
            "a\u{7f}b",
            "admin\u{202E}txt.exe",
            "\u{202A}x",
            "\u{2066}x\u{2069}",
            "a\u{200B}b",
            "a\u{200D}b",
            "\u{FEFF}bob",
            &"x".repeat(65),
        ] {
            assert!(check_token_name(bad).is_err(), "{bad:?}");
        }
        assert!(
            check_token_name("a\u{202E}b")
                .unwrap_err()
                .contains("U+202E")
        );
    }

    #[test]
    fn refusals_are_sampled_per_reason() {
        let c = TokenCache::default();
        assert_eq!(c.sample_refusal("bad_token", 1_000), Some(0));
        assert_eq!(c.sample_refusal("bad_token", 2_000), None);
        assert_eq!(c.sample_refusal("bad_token", 3_000), None);
        assert_eq!(c.sample_refusal("forbidden", 3_000), Some(0));
        assert_eq!(
            c.sample_refusal("bad_token", 1_000 + REFUSAL_SAMPLE_MS),
            Some(2)
        );
        assert_eq!(
            c.sample_refusal("bad_token", 2_000 + REFUSAL_SAMPLE_MS),
            None
        );
    }
}
