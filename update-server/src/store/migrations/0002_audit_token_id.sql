-- Audit entries name the token that made the change by its id (token names
-- need not be unique); NULL for entries by the server itself (`system`) and
-- for entries written before this migration.

ALTER TABLE audit_log ADD COLUMN token_id TEXT;

CREATE INDEX audit_log_token ON audit_log (token_id);
