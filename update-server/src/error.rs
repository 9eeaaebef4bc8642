//! Error policy for the whole service, stated once (after crates.io's
//! `util/errors.rs`):
//!
//! * Handlers return [`AppResult<T>`]. A refusal the caller can act on is an
//!   [`ApiError::Client`]: an HTTP status, a **stable** machine-readable code
//!   and a message safe to show. Clients branch on the code, never the message.
//! * Anything else (database down, disk full, a bug) is
//!   [`ApiError::Internal`]: the detail is logged with `tracing::error!` and
//!   the caller only sees `{"error": "internal", "message": "internal error"}`.
//! * Every error body is `{"error": CODE, "message": TEXT}` with
//!   `content-type: application/json`, including refusals made by extractors
//!   (malformed JSON, oversized bodies), see [`crate::routes::extract`].

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// What a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A refusal the caller can act on.
    #[error("{code}: {message}")]
    Client {
        /// HTTP status.
        status: StatusCode,
        /// Stable error code.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
    /// A failure of the server itself; logged, never shown.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

/// The result type of handlers.
pub type AppResult<T> = Result<T, ApiError>;

/// The JSON body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// Stable error code.
    pub error: String,
    /// Human-readable explanation.
    pub message: String,
}

impl ApiError {
    /// A client error with `status`, `code` and `message`.
    pub fn client(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::Client {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::client(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409 with `code`.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::CONFLICT, code, message)
    }

    /// 401 with `code`.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 403 with `code`.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::client(StatusCode::FORBIDDEN, code, message)
    }

    /// 422 `invalid` (well-formed but not acceptable).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::client(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    /// 503 `unavailable`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::client(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// The status this error is sent with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Client { status, .. } => *status,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Client { code, .. } => code,
            Self::Internal(_) => "internal",
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self::Internal(e)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(anyhow::Error::new(e).context("database"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Self::Client {
                status,
                code,
                message,
            } => (
                status,
                ErrorBody {
                    error: code.into(),
                    message,
                },
            ),
            Self::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorBody {
                        error: "internal".into(),
                        message: "internal error".into(),
                    },
                )
            }
        };
        (status, Json(body)).into_response()
    }
}
