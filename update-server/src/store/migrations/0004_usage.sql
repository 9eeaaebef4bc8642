-- Each lock's latest usage summary: what its quiet-hours scheduler learned
-- of its door (quiet slot per weekday, 7x24 heat map), as the lock packed
-- it (`lock_app::scheduler::summary`, unpadded base64url, checked on
-- arrival), and when the server accepted it (Unix ms). Written in the same
-- transaction as the check-in that carried it; a check-in without one
-- leaves the row alone.

CREATE TABLE device_usage (
    device_id TEXT PRIMARY KEY,
    summary TEXT NOT NULL,
    reported_at BIGINT NOT NULL
);
