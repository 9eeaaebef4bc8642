-- Indexes for the console's read endpoints (issue 14/15): every filter of
-- the device list and the audit log is served in keyset order (`id`), so a
-- page, and a capped count, reads only what it returns. Indexes on
-- columns that every check-in rewrites (firmware_version, last_seen) cost
-- check-in throughput: the model/version index below replaces the one
-- migration 1 made, instead of adding a second. Revoked locks are few: a
-- partial index finds them (queries name the status as a literal, so both
-- databases can use it); active ones are found by scanning in id order.

CREATE INDEX devices_model_id ON devices (hardware_model, id);

CREATE INDEX devices_model_version_id ON devices (hardware_model, firmware_version, id);

DROP INDEX devices_model_version;

CREATE INDEX devices_site_id ON devices (site, id);

CREATE INDEX devices_revoked ON devices (id) WHERE status = 'revoked';

CREATE INDEX device_tags_tag_device ON device_tags (tag, device_id);

DROP INDEX device_tags_tag;

CREATE INDEX audit_log_actor_id ON audit_log (actor, id);

CREATE INDEX audit_log_action_id ON audit_log (action, id);

CREATE INDEX audit_log_token_id ON audit_log (token_id, id);

DROP INDEX audit_log_token;
