//! Admin authentication: bearer tokens with one of four roles, ordered
//! viewer < operator < release < security-admin; an endpoint needing a role
//! accepts it and every role above it. Tokens are 256-bit random strings
//! (`nlt_` + 64 hex); only their SHA-256 is stored.
//!
//! Which role each endpoint needs is written once, in
//! [`crate::routes::admin::ENDPOINTS`]; the middleware here enforces that
//! table (an admin route missing from it is refused), the OpenAPI document
//! is generated from it, and the security tests walk it.

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
    /// An audit entry by this caller.
    pub fn audit(&self, action: &str, subject: &str, detail: serde_json::Value) -> AuditEntry {
        AuditEntry {
            actor: self.name.clone(),
            role: self.role.as_str().to_owned(),
            action: action.to_owned(),
            subject: subject.to_owned(),
            detail,
        }
    }
}

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
/// other replicas see it within [`TokenCache::TTL`].
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<String, (Instant, Option<Caller>)>>,
}

impl TokenCache {
    /// How long a lookup is trusted.
    pub const TTL: Duration = Duration::from_secs(5);

    fn get(&self, hash: &str) -> Option<Option<Caller>> {
        let map = self.entries.lock().ok()?;
        map.get(hash)
            .filter(|(at, _)| at.elapsed() < Self::TTL)
            .map(|(_, c)| c.clone())
    }

    fn put(&self, hash: String, caller: Option<Caller>) {
        if let Ok(mut map) = self.entries.lock() {
            if map.len() > 10_000 {
                map.clear();
            }
            map.insert(hash, (Instant::now(), caller));
        }
    }

    /// Forget everything (after a revocation).
    pub fn clear(&self) {
        if let Ok(mut map) = self.entries.lock() {
            map.clear();
        }
    }
}

async fn caller_for(state: &AppState, token: &str) -> Result<Option<Caller>, ApiError> {
    let hash = hash_token(token);
    if let Some(hit) = state.tokens.get(&hash) {
        return Ok(hit);
    }
    let caller = state.store.token_by_hash(&hash).await?.and_then(|t| {
        Some(Caller {
            role: Role::parse(&t.role)?,
            token_id: t.id,
            name: t.name,
        })
    });
    state.tokens.put(hash, caller.clone());
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
    let Some(needed) = needed else {
        return ApiError::not_found("no such admin endpoint").into_response();
    };
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return ApiError::unauthorized("missing_token", "send Authorization: Bearer <token>")
            .into_response();
    };
    let caller = match caller_for(&state, token).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return ApiError::unauthorized("bad_token", "the token is unknown or revoked")
                .into_response();
        }
        Err(e) => return e.into_response(),
    };
    if caller.role < needed {
        return ApiError::forbidden(
            "forbidden",
            format!(
                "this needs the {} role; the token has {}",
                needed.as_str(),
                caller.role.as_str()
            ),
        )
        .into_response();
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
}
