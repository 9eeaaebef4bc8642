-- Console sign-in sessions: the cookie's SHA-256 (never the cookie), the
-- token the operator signed in with (by id: revoking the token ends its
-- sessions), the session's CSRF token, and its expiry (Unix ms).

CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    token_id TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
