-- The activity log keyed by what reads it: one identity's entries, newest first. The primary
-- key (identity_id, created_at, id) is the listing's index, so a new entry writes two b-trees
-- (the rows and the retention index) instead of four (the rows, the id key, the per-identity
-- index and the retention index). Keep in lockstep with ../postgres/0008_activity_keys.sql.
CREATE TABLE identity_activity_keyed (
    identity_id BLOB NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    id BLOB NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    method TEXT,
    session_id BLOB,
    ip_address TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    PRIMARY KEY (identity_id, created_at, id)
) WITHOUT ROWID;
INSERT INTO identity_activity_keyed (identity_id, created_at, id, kind, outcome, method, session_id, ip_address, user_agent)
    SELECT identity_id, created_at, id, kind, outcome, method, session_id, ip_address, user_agent FROM identity_activity;
DROP TABLE identity_activity;
ALTER TABLE identity_activity_keyed RENAME TO identity_activity;
-- The retention purge (oldest first, across identities).
CREATE INDEX identity_activity_created ON identity_activity(created_at);
