-- Nightlatch fleet state. One schema for SQLite and PostgreSQL: only types
-- both understand (TEXT, BIGINT, DOUBLE PRECISION), times as Unix
-- milliseconds, JSON as TEXT. Statements are separated by lines ending in ';'.

CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    hardware_model TEXT NOT NULL,
    public_key TEXT NOT NULL,
    site TEXT NOT NULL,
    status TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    revoked_at BIGINT,
    last_seen BIGINT,
    last_counter BIGINT NOT NULL,
    firmware_version TEXT,
    firmware_order BIGINT,
    security_counter BIGINT,
    boot_state TEXT,
    battery_percent BIGINT,
    time_zone TEXT,
    last_target TEXT,
    last_outcome TEXT,
    last_reason TEXT,
    assigned_rollout TEXT,
    assigned_target TEXT,
    director_version BIGINT NOT NULL,
    director_key TEXT,
    director_expires BIGINT,
    director_sha256 TEXT,
    director_targets TEXT
);

CREATE INDEX devices_model_version ON devices (hardware_model, firmware_version);

CREATE INDEX devices_last_seen ON devices (last_seen);

CREATE TABLE device_tags (
    device_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (device_id, tag)
);

CREATE INDEX device_tags_tag ON device_tags (tag);

CREATE TABLE device_events (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);

CREATE INDEX device_events_device ON device_events (device_id, id);

CREATE TABLE rollouts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    target TEXT NOT NULL,
    hardware_model TEXT NOT NULL,
    target_version TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    state_reason TEXT,
    wave_index BIGINT NOT NULL,
    wave_started_at BIGINT,
    paused_at BIGINT,
    successes BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
);

CREATE TABLE rollout_devices (
    rollout_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    wave BIGINT NOT NULL,
    status TEXT NOT NULL,
    delivery TEXT NOT NULL,
    reason TEXT,
    assigned_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (rollout_id, device_id)
);

CREATE INDEX rollout_devices_status ON rollout_devices (rollout_id, wave, status);

CREATE TABLE sites (
    name TEXT PRIMARY KEY,
    policy TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL
);

CREATE TABLE kv (
    k TEXT PRIMARY KEY,
    v TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
