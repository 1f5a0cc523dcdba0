-- Index the two foreign keys that had none. Deleting a credential (every identity update
-- rewrites the credentials) made the database look for rows referencing it in
-- credential_identifiers by credential_id, and deleting an identity looks in flows by
-- identity_id: without these indexes both were full table scans (a profile update took
-- ~170 ms with 10^6 identities on SQLite instead of ~3 ms).
CREATE INDEX credential_identifiers_credential ON credential_identifiers(credential_id);
CREATE INDEX flows_identity ON flows(identity_id);
