-- Admin tokens may expire (Unix ms); NULL: never. An expired token is
-- refused like a revoked one, and its console sessions end with it.

ALTER TABLE tokens ADD COLUMN expires_at BIGINT;
