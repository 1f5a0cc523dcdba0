-- Self-service account deletion: when an identity is deleted for real (now + the grace period
-- of the delete_account settings method; NULL when none is scheduled). The deletion worker
-- reads due rows through the partial index. Keep in lockstep with ../postgres/0006_account_deletion.sql.
ALTER TABLE identities ADD COLUMN delete_after BIGINT;
CREATE INDEX identities_delete_after ON identities(delete_after) WHERE delete_after IS NOT NULL;
