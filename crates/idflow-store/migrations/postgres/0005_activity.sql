-- The activity log of each identity (sign-ins, settings changes, recovery, verification,
-- sessions ended, administrator changes). Never a secret: no column holds a token, code,
-- password or hash. Keep in lockstep with ../sqlite/0005_activity.sql.
CREATE TABLE identity_activity (
    id UUID PRIMARY KEY NOT NULL,
    identity_id UUID NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    method TEXT,
    session_id UUID,
    ip_address TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
-- Per-identity listing, newest first (keyset pagination on created_at, id).
CREATE INDEX identity_activity_identity ON identity_activity(identity_id, created_at, id);
-- The retention purge (oldest first, across identities).
CREATE INDEX identity_activity_created ON identity_activity(created_at);
