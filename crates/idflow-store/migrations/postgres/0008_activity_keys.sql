-- The activity log keyed by what reads it: one identity's entries, newest first. The primary
-- key (identity_id, created_at, id) is the listing's index, so a new entry updates two
-- indexes (the key and the retention index) instead of three. Keep in lockstep with
-- ../sqlite/0008_activity_keys.sql.
ALTER TABLE identity_activity DROP CONSTRAINT identity_activity_pkey;
DROP INDEX identity_activity_identity;
ALTER TABLE identity_activity ADD PRIMARY KEY (identity_id, created_at, id);
