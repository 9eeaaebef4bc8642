-- Target files uploaded but not (yet) referenced by any targets metadata.
-- Their bytes sit in the blob store under `staging/targets/<path>`, which is
-- never served; accepted metadata that lists them moves them to
-- `repo/targets/<path>` and deletes their row in the same transaction as the
-- repository commit; rows older than `uploads.staged_grace` are removed, with
-- their bytes, by a background task. `uploaded_by` is a token id.

CREATE TABLE staged_uploads (
    path TEXT PRIMARY KEY,
    length BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    uploaded_by TEXT NOT NULL
);

CREATE INDEX staged_uploads_age ON staged_uploads (uploaded_at);
