//! Console sign-in: cookies, sessions and CSRF tokens.
//!
//! * The session cookie `nl_console` holds 256 random bits; the database
//!   keeps only its SHA-256 ([`crate::store::sessions`]).
//! * Each session has its own CSRF token, put in every form and checked on
//!   every POST (constant-time). The sign-in form, before any session, uses
//!   a double-submit cookie (`nl_login`, also `SameSite=Strict`).
//! * Expiry is wall-clock time (`console.session_lifetime`), whatever the
//!   service's clock says (a simulation's manual clock must not sign people
//!   out or in).

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

use crate::auth::{Caller, Role};
use crate::config::Config;
use crate::store::Store;

/// The session cookie.
pub const COOKIE_NAME: &str = "nl_console";
/// The sign-in form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "nl_login";

/// A signed-in operator.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the cookie.
    pub id_hash: String,
    /// Who (as the API sees them).
    pub caller: Caller,
    /// The CSRF token of this session's forms.
    pub csrf: String,
    /// Expiry (Unix ms).
    pub expires_at: i64,
}

/// Wall-clock now (Unix ms).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A new random secret (URL-safe).
pub fn random_secret() -> String {
    hex::encode(crate::ids::random_bytes::<32>())
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Equal in constant time (for CSRF tokens).
pub fn same(a: &str, b: &str) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.bytes()
        .zip(b.bytes())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The value of cookie `name` in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Whether cookies should be `Secure` for this request.
pub fn secure(config: &Config, headers: &HeaderMap) -> bool {
    match config.console.secure_cookies {
        Some(s) => s,
        // Only a trusted proxy's word counts (`server::connection` drops
        // the header from any other peer); without any, plain HTTP.
        None => {
            !config.http.trusted_proxies.is_empty()
                && headers
                    .get("x-forwarded-proto")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|p| p.eq_ignore_ascii_case("https"))
        }
    }
}

/// A `Set-Cookie` value.
pub fn set_cookie(name: &str, value: &str, max_age_s: i64, secure: bool) -> HeaderValue {
    let text = format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// Append a `Set-Cookie`.
pub fn add_cookie(headers: &mut HeaderMap, value: HeaderValue) {
    headers.append(SET_COOKIE, value);
}

/// The live session of this request, if any.
pub async fn load(store: &Store, headers: &HeaderMap) -> anyhow::Result<Option<Session>> {
    let Some(id) = cookie(headers, COOKIE_NAME) else {
        return Ok(None);
    };
    let Some(rec) = store.live_session(&sha256_hex(&id), now_ms()).await? else {
        return Ok(None);
    };
    let Some(role) = Role::parse(&rec.role) else {
        return Ok(None);
    };
    Ok(Some(Session {
        id_hash: rec.id_hash,
        caller: Caller {
            token_id: rec.token_id,
            name: rec.token_name,
            role,
        },
        csrf: rec.csrf,
        expires_at: rec.expires_at,
    }))
}

/// Sign in with `token`: the new session's cookie value, or None when the
/// token is unknown or revoked.
pub async fn sign_in(
    store: &Store,
    config: &Config,
    token: &str,
) -> anyhow::Result<Option<(String, Caller)>> {
    let token = token.trim();
    if token.is_empty() || token.len() > 256 {
        return Ok(None);
    }
    let Some(t) = store
        .token_by_hash(&crate::auth::hash_token(token), now_ms())
        .await?
    else {
        return Ok(None);
    };
    let Some(role) = Role::parse(&t.role) else {
        return Ok(None);
    };
    let id = random_secret();
    let now = now_ms();
    let lifetime = i64::try_from(config.console.session_lifetime.as_millis()).unwrap_or(i64::MAX);
    store
        .insert_session(
            &sha256_hex(&id),
            &t.id,
            &random_secret(),
            now,
            now.saturating_add(lifetime),
        )
        .await?;
    Ok(Some((
        id,
        Caller {
            token_id: t.id,
            name: t.name,
            role,
        },
    )))
}

/// Sign out.
pub async fn sign_out(store: &Store, session: &Session) -> anyhow::Result<()> {
    store.delete_session(&session.id_hash).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_parsed_and_bounded() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("a=1; nl_console=abc; b=2"));
        assert_eq!(cookie(&h, "nl_console").as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "nl_login"), None);
        let long = format!("nl_console={}", "x".repeat(200));
        h.insert(COOKIE, HeaderValue::from_str(&long).unwrap());
        assert_eq!(cookie(&h, "nl_console"), None);
    }

    #[test]
    fn csrf_comparison() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }

    #[test]
    fn cookie_flags() {
        let c = set_cookie(COOKIE_NAME, "v", 60, true);
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Secure"));
        let c = set_cookie(COOKIE_NAME, "v", 60, false);
        assert!(!c.to_str().unwrap().contains("Secure"));
    }
}
