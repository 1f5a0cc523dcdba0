//! The storage boundary. Implemented for SQLite and PostgreSQL in `idflow-store`; nothing
//! above this trait knows SQL.
//!
//! Writes that must be atomic go through [`Store::commit`]: one call, one transaction, with
//! optimistic concurrency on the identity and the flow (`version` columns), so concurrent
//! submits to one flow (or one identity) never interleave: exactly one wins, the other gets
//! [`StoreError::Busy`].

use crate::activity::{ActivityCursor, ActivityEvent};
use crate::courier::{Message, MessageFilter, Outcome, PageToken};
use crate::model::{CredentialType, Flow, Identity, PendingChange, Session};
use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint was violated (duplicate identifier, address, external id).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The row changed concurrently (stale version) or the database was busy: retryable.
    #[error("concurrent update: {0}")]
    Busy(String),
    #[error("not found")]
    NotFound,
    /// `Commit::update_session` found the session revoked (or deleted) since it was loaded.
    #[error("the session was revoked")]
    SessionRevoked,
    /// The database cannot store or compare the value (e.g. text with a NUL character).
    #[error("invalid value: {0}")]
    Invalid(String),
    /// The database could not be reached.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(String),
}

/// What [`Store::commit`] writes, all in one transaction.
#[derive(Debug, Default)]
pub struct Commit<'a> {
    /// Insert a new identity (with credentials, identifiers and addresses).
    pub create_identity: Option<&'a Identity>,
    /// Replace an identity (traits, state, metadata, credentials, identifiers, addresses);
    /// fails with `Busy` unless the stored version equals `identity.version`.
    pub update_identity: Option<&'a Identity>,
    /// The identity as stored at `update_identity.version`, when the caller has it: only the
    /// credentials and addresses that differ from it are rewritten (without it, all are).
    pub previous_identity: Option<&'a Identity>,
    /// Insert a session.
    pub create_session: Option<&'a Session>,
    /// Update a session (methods, aal, authenticated_at, expires_at, active). Compare-and-set:
    /// fails with `SessionRevoked` (and writes nothing) unless the stored session is still
    /// active, so a revocation is never undone by a request holding an older copy.
    pub update_session: Option<&'a Session>,
    /// Revoke every active session of this identity except the given one.
    pub revoke_other_sessions: Option<(Uuid, Option<Uuid>)>,
    /// Update a flow; fails with `Busy` unless the stored version equals `flow.version`.
    pub update_flow: Option<&'a Flow>,
    /// Queue mail (rendered by the courier) with the rest of the change: a flow change and the
    /// mail it causes are stored together or not at all.
    pub queue_messages: &'a [Message],
    /// Store pending trait changes (replacing one of the same identity and trait).
    pub put_pending_changes: &'a [PendingChange],
    /// Delete the pending change of `(identity id, trait path)`; fails with `NotFound` (and
    /// writes nothing) when there is none, so a change is applied or cancelled once.
    pub delete_pending_change: Option<(Uuid, &'a str)>,
    /// Activity-log entries of the change (written last, after the identity they belong to).
    pub record_activity: &'a [ActivityEvent],
}

/// What [`Store::cleanup`] deletes: rows past these instants, at most `batch` per table.
#[derive(Debug, Clone, Copy)]
pub struct Cleanup {
    /// Flows that expired before this.
    pub flows_expired_before: OffsetDateTime,
    /// Sessions that expired before this.
    pub sessions_expired_before: OffsetDateTime,
    /// Expiring key-value rows (stored errors) that expired before this.
    pub kv_expired_before: OffsetDateTime,
    /// Pending trait changes that expired before this.
    pub pending_changes_expired_before: OffsetDateTime,
    /// Rate-limit counters whose window started before this (unix seconds).
    pub rate_windows_before: i64,
    /// Activity-log entries created before this (`activity.retention`).
    pub activity_before: OffsetDateTime,
    pub batch: u32,
}

/// Rows deleted by one [`Store::cleanup`] call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cleaned {
    pub flows: u64,
    pub sessions: u64,
    pub kv: u64,
    pub rate_limits: u64,
    pub pending_changes: u64,
    pub activity: u64,
}

impl Cleaned {
    /// Whether some table had a full batch (more may be left).
    pub fn full(&self, batch: u32) -> bool {
        let b = u64::from(batch);
        self.flows >= b
            || self.sessions >= b
            || self.kv >= b
            || self.rate_limits >= b
            || self.pending_changes >= b
            || self.activity >= b
    }
}

#[derive(Debug, Clone, Default)]
pub struct IdentityFilter {
    pub credentials_identifier: Option<String>,
    pub ids: Vec<Uuid>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Backend name (`sqlite` / `postgres`).
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> Result<(), StoreError>;

    async fn get_identity(&self, id: Uuid) -> Result<Option<Identity>, StoreError>;
    /// Find the identity owning `identifier` for credential type `kind`.
    async fn find_identity_by_identifier(
        &self,
        kind: CredentialType,
        identifier: &str,
    ) -> Result<Option<Identity>, StoreError>;
    async fn find_identity_by_external_id(&self, external_id: &str) -> Result<Option<Identity>, StoreError>;
    /// Find the identity owning recovery address `value` (as stored: lower-case mail address).
    async fn find_identity_by_recovery_address(&self, value: &str) -> Result<Option<Identity>, StoreError>;
    /// Find the identity owning verifiable address `value` (as stored: lower-case mail address).
    async fn find_identity_by_verifiable_address(&self, value: &str) -> Result<Option<Identity>, StoreError>;
    /// Keyset pagination by id.
    async fn list_identities(
        &self,
        filter: &IdentityFilter,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Identity>, StoreError>;
    async fn count_identities(&self) -> Result<u64, StoreError>;
    async fn delete_identity(&self, id: Uuid) -> Result<bool, StoreError>;

    async fn get_session(&self, id: Uuid) -> Result<Option<Session>, StoreError>;
    async fn get_session_by_token_hash(&self, hash: &str) -> Result<Option<Session>, StoreError>;
    /// The session with this token hash and its identity (`None` when the identity is gone),
    /// in as few round trips as the backend allows: every authenticated request starts here.
    async fn get_session_with_identity(&self, hash: &str) -> Result<Option<(Session, Option<Identity>)>, StoreError> {
        let Some(s) = self.get_session_by_token_hash(hash).await? else { return Ok(None) };
        let i = self.get_identity(s.identity_id).await?;
        Ok(Some((s, i)))
    }
    async fn get_session_by_logout_hash(&self, hash: &str) -> Result<Option<Session>, StoreError>;
    async fn list_sessions(
        &self,
        identity_id: Option<Uuid>,
        active_only: bool,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<Session>, StoreError>;
    /// Mark a session inactive. Returns whether it existed.
    async fn revoke_session(&self, id: Uuid) -> Result<bool, StoreError>;
    async fn delete_sessions_of(&self, identity_id: Uuid) -> Result<u64, StoreError>;

    async fn create_flow(&self, flow: &Flow) -> Result<(), StoreError>;
    async fn get_flow(&self, id: Uuid) -> Result<Option<Flow>, StoreError>;

    /// Apply a set of writes in one transaction. Returns the number of sessions revoked.
    async fn commit(&self, c: Commit<'_>) -> Result<u64, StoreError>;

    /// The identity's pending trait changes (expired ones included: the caller knows the time).
    async fn list_pending_changes(&self, identity_id: Uuid) -> Result<Vec<PendingChange>, StoreError>;

    /// Get a persisted value, or store `init` if absent (first writer wins across nodes).
    async fn kv_get_or_init(&self, key: &str, init: &str) -> Result<String, StoreError>;

    /// Read a persisted value; never writes.
    async fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Store a value that the cleanup deletes after `expires_at` (first writer wins).
    async fn kv_put_expiring(&self, key: &str, value: &str, expires_at: OffsetDateTime) -> Result<(), StoreError>;

    /// Delete expired rows, at most `c.batch` per table. `Ok(None)` when another node holds
    /// the cleanup lock (PostgreSQL), so only one node cleans at a time.
    async fn cleanup(&self, c: &Cleanup) -> Result<Option<Cleaned>, StoreError>;

    /// Delete (for real) up to `batch` identities whose `delete_after` is at or before `now`,
    /// with everything that references them (credentials, identifiers, addresses, sessions,
    /// flows, and other tables through ON DELETE CASCADE). Returns the ids deleted. Across
    /// nodes each identity is deleted exactly once (PostgreSQL: `FOR UPDATE SKIP LOCKED`).
    async fn purge_scheduled_deletions(&self, now: OffsetDateTime, batch: u32) -> Result<Vec<Uuid>, StoreError>;

    /// Count an event in a fixed window: returns the count after incrementing.
    async fn rate_hit(&self, key: &str, window_start: i64) -> Result<i64, StoreError>;
    async fn rate_clear(&self, key: &str) -> Result<(), StoreError>;

    /// Queue messages on their own (a change without other writes).
    async fn courier_queue(&self, messages: &[Message]) -> Result<(), StoreError> {
        self.commit(Commit { queue_messages: messages, ..Commit::default() }).await.map(|_| ())
    }
    /// Claim up to `limit` messages that are due (`queued` with `next_attempt_at <= now`, or
    /// `processing` with an expired lease) for `claim` until `lease_until`, oldest first. No
    /// message is held by two claims at once, across nodes.
    async fn courier_claim(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        claim: Uuid,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    /// Record one attempt of a message held by `claim`: a dispatch row, one more `send_count`,
    /// and the new status (`sent`; `queued` again at `retry_at`; `abandoned`). Returns `false`
    /// (and writes nothing) when the claim is no longer held.
    async fn courier_record(
        &self,
        id: Uuid,
        claim: Uuid,
        outcome: &Outcome,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Messages newest first, with their dispatches; keyset pagination after `after`.
    async fn courier_list(
        &self,
        filter: &MessageFilter,
        after: Option<PageToken>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    async fn courier_get(&self, id: Uuid) -> Result<Option<Message>, StoreError>;

    /// Store activity-log entries that come without a change (a failed sign-in). Entries of
    /// a change go into its commit (`Commit::record_activity`).
    async fn record_activity(&self, events: &[ActivityEvent]) -> Result<(), StoreError> {
        self.commit(Commit { record_activity: events, ..Commit::default() }).await.map(|_| ())
    }
    /// An identity's activity newest first (`created_at`, then `id`, descending), after
    /// `cursor`; at most `limit` entries.
    async fn list_activity(
        &self,
        identity_id: Uuid,
        cursor: Option<ActivityCursor>,
        limit: u32,
    ) -> Result<Vec<ActivityEvent>, StoreError>;
}
