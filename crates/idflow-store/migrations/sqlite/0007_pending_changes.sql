-- Trait changes waiting for the verification of their new address (identity schema keyword
-- idflow.verify_before_apply): one per identity and trait; the identity keeps the old value
-- until the code mailed to the new address (verification flow flow_id) is submitted. value
-- and previous are JSON; expired rows are deleted by the cleanup.
CREATE TABLE pending_changes (
    identity_id BLOB NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    value TEXT NOT NULL,
    previous TEXT NOT NULL,
    address TEXT NOT NULL,
    flow_id BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (identity_id, path)
);
CREATE INDEX pending_changes_expires ON pending_changes(expires_at);
