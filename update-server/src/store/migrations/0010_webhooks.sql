-- Webhooks (issue 15). A subscription names a URL, the event types it
-- wants ('*' for all) and its signing secret; during a rotation the
-- previous secret stays valid until previous_expires_at (Unix ms). The
-- secret must be readable to sign with, so it is stored as given.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    description TEXT NOT NULL,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_expires_at BIGINT,
    secret_rotated_at BIGINT,
    enabled INTEGER NOT NULL,
    disabled_reason TEXT,
    consecutive_failures BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The outbox: one row per event, written in the transaction of the change
-- that caused it. dedupe_key (NULL for most events) makes events derived
-- from time passing (a wave starting, metadata about to expire) unique
-- when several replicas notice them.
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    dedupe_key TEXT UNIQUE,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- One delivery per event and subscription, written with the event. A
-- replica claims due deliveries (claimed_until: a lease, so a killed
-- replica's claims are taken over); state pending | delivered | failed.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    UNIQUE (event_id, webhook_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, state);

-- The delivery log: every attempt with its answer.
CREATE TABLE webhook_attempts (
    id TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    at BIGINT NOT NULL,
    status_code BIGINT,
    latency_ms BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT
);

CREATE INDEX webhook_attempts_webhook ON webhook_attempts (webhook_id, id);
