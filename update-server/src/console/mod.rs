//! The operator console at `/console/`: server-rendered pages (askama
//! templates compiled into the binary, one stylesheet and one small script
//! embedded too), for fleet operators and security teams.
//!
//! * **No back door to the data.** Every page reads and changes the fleet
//!   through the admin API ([`crate::routes::admin`]), called in process
//!   with the signed-in token's identity: the same handlers, the same role
//!   table, the same audit entries. A button a role may not use is not
//!   shown, and the API refuses it anyway.
//! * **Sessions** ([`session`]): sign-in with an admin token; the cookie is
//!   `HttpOnly; SameSite=Strict; Path=/console` (and `Secure` over HTTPS),
//!   its SHA-256 is stored with the token's id and an expiry, and revoking
//!   the token ends the session. Every form carries the session's CSRF
//!   token; a POST without it is refused with 403.
//! * **Headers**: a Content-Security-Policy with no inline script or style,
//!   `X-Frame-Options: DENY`, `nosniff`, no referrer, no caching of pages.
//! * **Works without JavaScript**: the script only refreshes live parts
//!   (rollout progress) by polling fragments the pages also render whole.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;
use tower::ServiceExt;

use crate::auth::{Caller, InternalCaller, Role};
use crate::state::AppState;

mod pages;
pub mod session;
mod views;

/// What console handlers share.
#[derive(Debug, Clone)]
pub struct Console {
    /// The service.
    pub state: AppState,
    /// The admin API (with its authorization), called in process.
    api: Router,
}

/// The Content-Security-Policy of every console response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A refusal or failure of the API as the console shows it.
#[derive(Debug)]
pub struct ApiFailure {
    /// HTTP status.
    pub status: StatusCode,
    /// The API's error code.
    pub code: String,
    /// Its message.
    pub message: String,
}

impl Console {
    /// Call the admin API as `caller`: the status and the body's bytes.
    pub async fn api_raw(
        &self,
        caller: &Caller,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, bytes::Bytes), ApiFailure> {
        let failure = |status: StatusCode, e: String| ApiFailure {
            status,
            code: "internal".into(),
            message: e,
        };
        let mut req = Request::builder().method(method).uri(path);
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut req = req
            .body(Body::from(body))
            .map_err(|e| failure(StatusCode::BAD_REQUEST, e.to_string()))?;
        req.extensions_mut().insert(InternalCaller(caller.clone()));
        let response = match self.api.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 256 * 1024 * 1024)
            .await
            .map_err(|e| failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Ok((status, bytes))
    }

    /// Call the admin API as `caller`: the JSON answer, or the refusal.
    pub async fn api(
        &self,
        caller: &Caller,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ApiFailure> {
        let (status, bytes) = self.api_raw(caller, method, path, body).await?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            Ok(value)
        } else {
            Err(ApiFailure {
                status,
                code: value["error"].as_str().unwrap_or("error").to_owned(),
                message: value["message"]
                    .as_str()
                    .unwrap_or("the request failed")
                    .to_owned(),
            })
        }
    }
}

/// Whether `role` may use buttons that need `needed`.
pub fn allows(role: Role, needed: Role) -> bool {
    role >= needed
}

/// The console's routes (mounted at `/console`), or none when disabled.
pub fn router(state: AppState, api: Router) -> Router<AppState> {
    if !state.config.console.enabled {
        return Router::new();
    }
    let console = Arc::new(Console { state, api });
    pages::routes(console).layer(axum::middleware::from_fn(headers))
}

/// Every console route that needs a session (method, template), for the
/// role × route tests.
pub const ROUTES: &[(&str, &str)] = pages::ROUTES;
/// The console routes open without a session.
pub const PUBLIC_ROUTES: &[(&str, &str)] = pages::PUBLIC_ROUTES;

/// Security headers on every console response.
async fn headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// Render a template, or a plain error if it cannot be.
pub fn render<T: askama::Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console template");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}
