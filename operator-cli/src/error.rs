//! What a command can fail with, and the exit code each failure maps to.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | failure: the server refused the request (400, 409, 422, …), a server or network error, a bad config file |
//! | 2 | usage: bad arguments, a destructive verb without `--yes` off a terminal |
//! | 3 | refused: not logged in, token unknown, revoked or expired (401), or role too low (403) |
//! | 4 | not found (404) |
//!
//! Messages never contain the token: the token only ever travels in the
//! `Authorization` header, and nothing here formats headers.

use std::fmt;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: a failure.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: bad usage.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: not logged in, token refused, or role too low.
pub const EXIT_REFUSED: u8 = 3;
/// Exit code: not found.
pub const EXIT_NOT_FOUND: u8 = 4;

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or a missing `--yes`.
    #[error("{0}")]
    Usage(String),
    /// No token to send.
    #[error("{0}")]
    NotLoggedIn(String),
    /// The server answered with an error body `{"error", "message"}`.
    #[error("{}", api_text(*status, code, message))]
    Api {
        /// HTTP status.
        status: u16,
        /// The API's stable error code.
        code: String,
        /// The API's message.
        message: String,
    },
    /// Something looked up on the client side is not there (e.g. a release).
    #[error("{0}")]
    NotFound(String),
    /// Anything else (network, config file, unexpected answers).
    #[error("{0}")]
    Other(String),
}

fn api_text(status: u16, code: &str, message: &str) -> String {
    match status {
        401 => format!(
            "not logged in or token revoked or expired: the server refused the token \
             ({code}: {message}); run `nightlatch login` with a valid token"
        ),
        403 => format!("refused by role: {code}: {message}"),
        _ => format!("{code}: {message} (HTTP {status})"),
    }
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => EXIT_USAGE,
            Self::NotLoggedIn(_) => EXIT_REFUSED,
            Self::Api { status, .. } => match status {
                401 | 403 => EXIT_REFUSED,
                404 => EXIT_NOT_FOUND,
                _ => EXIT_FAILURE,
            },
            Self::NotFound(_) => EXIT_NOT_FOUND,
            Self::Other(_) => EXIT_FAILURE,
        }
    }

    /// The stable error code shown in `--json` error output.
    pub fn code(&self) -> &str {
        match self {
            Self::Usage(_) => "usage",
            Self::NotLoggedIn(_) => "not_logged_in",
            Self::Api { code, .. } => code,
            Self::NotFound(_) => "not_found",
            Self::Other(_) => "failure",
        }
    }

    /// The error as the JSON object printed on stderr with `--json`:
    /// `{"error": CODE, "message": TEXT, "status": HTTP status or null,
    /// "exit_code": N}`.
    pub fn to_json(&self) -> serde_json::Value {
        let (status, message) = match self {
            Self::Api {
                status, message, ..
            } => (Some(*status), message.clone()),
            other => (None, other.to_string()),
        };
        serde_json::json!({
            "error": self.code(),
            "message": message,
            "status": status,
            "exit_code": self.exit_code(),
        })
    }

    /// A failure with a message.
    pub fn other(message: impl fmt::Display) -> Self {
        Self::Other(message.to_string())
    }

    /// A usage error with a message.
    pub fn usage(message: impl fmt::Display) -> Self {
        Self::Usage(message.to_string())
    }
}

/// Result of a command.
pub type CliResult<T> = Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_table() {
        let api = |status| CliError::Api {
            status,
            code: "x".into(),
            message: "y".into(),
        };
        assert_eq!(api(401).exit_code(), EXIT_REFUSED);
        assert_eq!(api(403).exit_code(), EXIT_REFUSED);
        assert_eq!(api(404).exit_code(), EXIT_NOT_FOUND);
        assert_eq!(api(409).exit_code(), EXIT_FAILURE);
        assert_eq!(api(500).exit_code(), EXIT_FAILURE);
        assert_eq!(CliError::usage("u").exit_code(), EXIT_USAGE);
        assert_eq!(CliError::NotLoggedIn("n".into()).exit_code(), EXIT_REFUSED);
        assert_eq!(CliError::NotFound("n".into()).exit_code(), EXIT_NOT_FOUND);
        assert!(
            api(401)
                .to_string()
                .contains("not logged in or token revoked")
        );
        assert_eq!(api(403).to_json()["status"], 403);
        assert_eq!(api(403).to_json()["error"], "x");
    }
}
