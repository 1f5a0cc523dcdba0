-- Expiring key-value rows (stored self-service errors) and indexes for the cleanup worker.
-- Keep in lockstep with ../sqlite/0004_hardening.sql.
ALTER TABLE kv ADD COLUMN expires_at BIGINT;
-- Errors stored before this migration (and the empty rows reads used to insert) expire now.
UPDATE kv SET expires_at = 0 WHERE key LIKE 'error:%';
CREATE INDEX kv_expires ON kv(expires_at);
CREATE INDEX sessions_expires ON sessions(expires_at);
CREATE INDEX rate_limits_window ON rate_limits(window_start);
