//! SQLite and PostgreSQL implementations of [`idflow_core::store::Store`].
//!
//! Both backends run the *same* SQL text (written once in the `sql_store!` macro below with
//! `$n` placeholders, which SQLite also accepts); only the DDL differs (`migrations/sqlite`,
//! `migrations/postgres`, kept in lockstep: same file names). Timestamps are stored as
//! microseconds since the epoch (BIGINT), JSON as TEXT (so traits keep their key order), ids as
//! native UUID (PostgreSQL) or 16-byte BLOB (SQLite).
//!
//! A [`Commit`] runs as a statement plan (`plan.rs`) and rows are decoded once for every engine
//! (`rows.rs`). On a SQLite file, the hot reads and every write go through the connection lane
//! (`sqlite_lane.rs`: rusqlite connections of the store's own, no thread hand-off per
//! statement); everything else, migrations included, through sqlx.

pub mod flow_format;
mod plan;
mod rows;
mod sqlite_lane;

use idflow_core::activity::{ActivityCursor, ActivityEvent, ActivityKind, Outcome as ActivityOutcome};
use idflow_core::courier::{
    Dispatch, DispatchStatus, Message, MessageFilter, MessageStatus, Outcome, PageToken, TemplateType,
};
use idflow_core::model::{CredentialType, Flow, Identity, PendingChange, Session};
use idflow_core::store::{Cleaned, Cleanup, Commit, IdentityFilter, Store, StoreError};
use serde_json::Value;
use sqlx::Row;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig { max_connections: 16, min_connections: 0, acquire_timeout: Duration::from_secs(5) }
    }
}

/// Open the database named by `dsn` (`sqlite:…` or `postgres://…`) and apply migrations.
pub async fn connect(dsn: &str, pool: &PoolConfig) -> Result<Arc<dyn Store>, StoreError> {
    if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(dsn, pool).await?))
    } else if dsn.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(dsn, pool).await?))
    } else {
        Err(StoreError::Other(format!(
            "unsupported database URL (expected sqlite:… or postgres://…): {}",
            idflow_core::config::redact_dsn(dsn)
        )))
    }
}

/// Apply migrations only.
pub async fn migrate(dsn: &str) -> Result<(), StoreError> {
    connect(dsn, &PoolConfig { max_connections: 2, ..PoolConfig::default() }).await.map(|_| ())
}

fn ts(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

fn from_ts(v: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_string()),
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Database(db) => {
            // PostgreSQL: 57P01 admin shutdown, 57P03 cannot connect now, 08xxx connection errors,
            // 53xxx insufficient resources (too many connections, disk full).
            let code = db.code().map(|c| c.to_string()).unwrap_or_default();
            if code.starts_with("08") || code.starts_with("57P") || code.starts_with("53") {
                StoreError::Unavailable(e.to_string())
            } else if code == "5" || code == "517" || code == "6" {
                // SQLite BUSY / LOCKED: treat as a retryable conflict.
                StoreError::Busy(format!("database busy: {}", db.message()))
            } else if code == "22021" || code == "22P05" {
                // PostgreSQL refuses the value itself (a NUL character in text): bad input.
                StoreError::Invalid(db.message().to_string())
            } else {
                StoreError::Other(e.to_string())
            }
        }
        _ => StoreError::Other(e.to_string()),
    }
}

fn json_text(v: &Value) -> String {
    v.to_string()
}

fn parse_json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or(Value::Null)
}

fn ser<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Other(e.to_string()))
}

fn de<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Other(format!("corrupt stored JSON: {e}")))
}

/// An identity's credentials (t=0), credential identifiers (t=1), verifiable (t=2) and
/// recovery (t=3) addresses and pending changes (t=4) in one result. NULL columns are cast so
/// PostgreSQL can type the UNION. Unordered: `rows::Children::finish` sorts each part.
pub(crate) const HYDRATE_CHILDREN: &str = "\
SELECT CAST(0 AS BIGINT) AS t, id, CAST(NULL AS UUID) AS ref_id, kind AS s1, config AS s2, CAST(NULL AS TEXT) AS s3, \
CAST(NULL AS TEXT) AS s4, version AS n1, created_at AS n2, updated_at AS n3, CAST(NULL AS BOOLEAN) AS b \
FROM credentials WHERE identity_id = $1 \
UNION ALL SELECT CAST(1 AS BIGINT), CAST(NULL AS UUID), credential_id, identifier, CAST(NULL AS TEXT), CAST(NULL AS TEXT), \
CAST(NULL AS TEXT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), CAST(NULL AS BOOLEAN) \
FROM credential_identifiers WHERE identity_id = $1 \
UNION ALL SELECT CAST(2 AS BIGINT), id, CAST(NULL AS UUID), via, value, status, CAST(NULL AS TEXT), verified_at, created_at, \
updated_at, verified FROM verifiable_addresses WHERE identity_id = $1 \
UNION ALL SELECT CAST(3 AS BIGINT), id, CAST(NULL AS UUID), via, value, CAST(NULL AS TEXT), CAST(NULL AS TEXT), \
CAST(NULL AS BIGINT), created_at, updated_at, CAST(NULL AS BOOLEAN) FROM recovery_addresses WHERE identity_id = $1 \
UNION ALL SELECT CAST(4 AS BIGINT), flow_id, CAST(NULL AS UUID), path, value, previous, address, CAST(NULL AS BIGINT), \
created_at, expires_at, CAST(NULL AS BOOLEAN) FROM pending_changes WHERE identity_id = $1";

/// The columns of `identities`, in the order `rows::identity` reads them.
pub(crate) const IDENTITY_COLUMNS: &[&str; 12] = &[
    "id",
    "schema_id",
    "state",
    "state_changed_at",
    "traits",
    "metadata_public",
    "metadata_admin",
    "external_id",
    "version",
    "created_at",
    "updated_at",
    "delete_after",
];

/// The same columns as [`SESSION_WITH_IDENTITY`] names them.
pub(crate) const PREFIXED_IDENTITY_COLUMNS: &[&str; 12] = &[
    "i_id",
    "i_schema_id",
    "i_state",
    "i_state_changed_at",
    "i_traits",
    "i_metadata_public",
    "i_metadata_admin",
    "i_external_id",
    "i_version",
    "i_created_at",
    "i_updated_at",
    "i_delete_after",
];

/// A session by token hash with its identity's row (LEFT JOIN: NULL `i_id` when the
/// identity is gone).
pub(crate) const SESSION_WITH_IDENTITY: &str = "\
SELECT s.*, i.id AS i_id, i.schema_id AS i_schema_id, i.state AS i_state, i.state_changed_at AS i_state_changed_at, \
i.traits AS i_traits, i.metadata_public AS i_metadata_public, i.metadata_admin AS i_metadata_admin, \
i.external_id AS i_external_id, i.version AS i_version, i.created_at AS i_created_at, i.updated_at AS i_updated_at, \
i.delete_after AS i_delete_after \
FROM sessions s LEFT JOIN identities i ON i.id = s.identity_id WHERE s.token_hash = $1";

/// The PostgreSQL advisory lock key that lets one node at a time run the cleanup.
pub const CLEANUP_LOCK_KEY: i64 = 0x6964_666c_6f77_0001;

macro_rules! sql_store {
    ($name:ident, $db:ty, $backend:literal) => {
        /// A store on one database pool.
        #[derive(Clone)]
        pub struct $name {
            pool: sqlx::Pool<$db>,
            /// SQLite: write transactions of this process queue here instead of in SQLite's
            /// busy handler, which polls with sleeps of up to 100 ms (seconds of p99 under
            /// concurrent settings submits). Unused on PostgreSQL (row locks).
            write_lock: Arc<tokio::sync::Mutex<()>>,
            /// SQLite on a file: the connection lane for the hot reads and the writes of
            /// `commit` and `create_flow` (`sqlite_lane.rs`). None on PostgreSQL and for an
            /// in-memory SQLite database (whose connections must all go through one pool).
            lane: Option<Arc<sqlite_lane::Lane>>,
        }

        impl $name {
            async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
                if $backend == "sqlite" { Some(self.write_lock.lock().await) } else { None }
            }

            pub fn pool(&self) -> &sqlx::Pool<$db> {
                &self.pool
            }

            /// `q` with the parameters of a [`plan::Stmt`].
            fn bind<'q>(
                mut q: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
                params: &'q [plan::P],
            ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments> {
                for p in params {
                    q = match p {
                        plan::P::Uuid(u) => q.bind(*u),
                        plan::P::OptUuid(u) => q.bind(*u),
                        plan::P::Int(i) => q.bind(*i),
                        plan::P::OptInt(i) => q.bind(*i),
                        plan::P::Text(t) => q.bind(t.as_str()),
                        plan::P::OptText(t) => q.bind(t.as_deref()),
                        plan::P::Bool(b) => q.bind(*b),
                    };
                }
                q
            }

            async fn load_identity_rows(
                &self,
                rows: Vec<<$db as sqlx::Database>::Row>,
            ) -> Result<Vec<Identity>, StoreError> {
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push(self.hydrate(row).await?);
                }
                Ok(out)
            }

            async fn hydrate(&self, row: <$db as sqlx::Database>::Row) -> Result<Identity, StoreError> {
                let ident = rows::identity(&row, IDENTITY_COLUMNS)?;
                self.hydrate_children(ident).await
            }

            /// [`Self::hydrate`] for a lookup that may have found nothing.
            async fn hydrate_opt(
                &self,
                row: Option<<$db as sqlx::Database>::Row>,
            ) -> Result<Option<Identity>, StoreError> {
                match row {
                    Some(r) => Ok(Some(self.hydrate(r).await?)),
                    None => Ok(None),
                }
            }

            async fn hydrate_children(&self, ident: Identity) -> Result<Identity, StoreError> {
                // All children in ONE round trip (each query is a hop to the connection's
                // worker thread, and every authenticated request loads its identity): a UNION
                // ALL with a row kind `t` and shared, explicitly typed columns.
                let rows = sqlx::query(HYDRATE_CHILDREN).bind(ident.id).fetch_all(&self.pool).await.map_err(map_err)?;
                let mut children = rows::Children::default();
                for r in &rows {
                    children.add(ident.id, r)?;
                }
                Ok(children.finish(ident))
            }

            fn message_from_row(row: &<$db as sqlx::Database>::Row) -> Result<Message, StoreError> {
                let status: String = row.try_get("status").map_err(map_err)?;
                let tt: String = row.try_get("template_type").map_err(map_err)?;
                Ok(Message {
                    id: row.try_get("id").map_err(map_err)?,
                    status: MessageStatus::parse(&status)
                        .ok_or_else(|| StoreError::Other(format!("corrupt message status {status:?}")))?,
                    channel: row.try_get("channel").map_err(map_err)?,
                    recipient: row.try_get("recipient").map_err(map_err)?,
                    subject: row.try_get("subject").map_err(map_err)?,
                    body: row.try_get("body").map_err(map_err)?,
                    html_body: row.try_get("html_body").map_err(map_err)?,
                    template_type: TemplateType::parse(&tt)
                        .ok_or_else(|| StoreError::Other(format!("corrupt template type {tt:?}")))?,
                    template_data: parse_json(&row.try_get::<String, _>("template_data").map_err(map_err)?),
                    send_count: row.try_get("send_count").map_err(map_err)?,
                    next_attempt_at: from_ts(row.try_get("next_attempt_at").map_err(map_err)?),
                    created_at: from_ts(row.try_get("created_at").map_err(map_err)?),
                    updated_at: from_ts(row.try_get("updated_at").map_err(map_err)?),
                    dispatches: vec![],
                })
            }

            fn dispatch_from_row(row: &<$db as sqlx::Database>::Row) -> Result<Dispatch, StoreError> {
                let status: String = row.try_get("status").map_err(map_err)?;
                let error: Option<String> = row.try_get("error").map_err(map_err)?;
                Ok(Dispatch {
                    id: row.try_get("id").map_err(map_err)?,
                    message_id: row.try_get("message_id").map_err(map_err)?,
                    status: if status == "success" { DispatchStatus::Success } else { DispatchStatus::Failed },
                    error: error.as_deref().map(parse_json),
                    created_at: from_ts(row.try_get("created_at").map_err(map_err)?),
                    updated_at: from_ts(row.try_get("updated_at").map_err(map_err)?),
                })
            }

            fn activity_from_row(row: &<$db as sqlx::Database>::Row) -> Result<ActivityEvent, StoreError> {
                let kind: String = row.try_get("kind").map_err(map_err)?;
                let outcome: String = row.try_get("outcome").map_err(map_err)?;
                let method: Option<String> = row.try_get("method").map_err(map_err)?;
                Ok(ActivityEvent {
                    id: row.try_get("id").map_err(map_err)?,
                    identity_id: row.try_get("identity_id").map_err(map_err)?,
                    kind: ActivityKind::parse(&kind)
                        .ok_or_else(|| StoreError::Other(format!("corrupt activity kind {kind:?}")))?,
                    outcome: ActivityOutcome::parse(&outcome)
                        .ok_or_else(|| StoreError::Other(format!("corrupt activity outcome {outcome:?}")))?,
                    method: method.as_deref().and_then(idflow_core::model::MethodId::parse),
                    session_id: row.try_get("session_id").map_err(map_err)?,
                    ip_address: row.try_get("ip_address").map_err(map_err)?,
                    user_agent: row.try_get("user_agent").map_err(map_err)?,
                    created_at: from_ts(row.try_get("created_at").map_err(map_err)?),
                })
            }
        }

        #[async_trait::async_trait]
        impl Store for $name {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err(map_err)?;
                Ok(())
            }

            async fn get_identity(&self, id: Uuid) -> Result<Option<Identity>, StoreError> {
                if let Some(lane) = &self.lane {
                    return lane.identity(id);
                }
                let row = sqlx::query("SELECT * FROM identities WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                self.hydrate_opt(row).await
            }

            async fn find_identity_by_identifier(
                &self,
                kind: CredentialType,
                identifier: &str,
            ) -> Result<Option<Identity>, StoreError> {
                let row = sqlx::query(
                    "SELECT i.* FROM identities i JOIN credential_identifiers c ON c.identity_id = i.id WHERE c.kind = $1 AND c.identifier = $2",
                )
                .bind(kind.as_str())
                .bind(identifier)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
                self.hydrate_opt(row).await
            }

            async fn find_identity_by_recovery_address(&self, value: &str) -> Result<Option<Identity>, StoreError> {
                let row = sqlx::query(
                    "SELECT i.* FROM identities i JOIN recovery_addresses r ON r.identity_id = i.id WHERE r.value = $1 ORDER BY r.created_at LIMIT 1",
                )
                .bind(value)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
                self.hydrate_opt(row).await
            }

            async fn find_identity_by_verifiable_address(&self, value: &str) -> Result<Option<Identity>, StoreError> {
                let row = sqlx::query(
                    "SELECT i.* FROM identities i JOIN verifiable_addresses v ON v.identity_id = i.id WHERE v.value = $1 ORDER BY v.created_at LIMIT 1",
                )
                .bind(value)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
                self.hydrate_opt(row).await
            }

            async fn find_identity_by_external_id(&self, external_id: &str) -> Result<Option<Identity>, StoreError> {
                let row = sqlx::query("SELECT * FROM identities WHERE external_id = $1")
                    .bind(external_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                self.hydrate_opt(row).await
            }

            async fn list_identities(
                &self,
                filter: &IdentityFilter,
                after: Option<Uuid>,
                limit: u32,
            ) -> Result<Vec<Identity>, StoreError> {
                let limit = i64::from(limit.clamp(1, 1000));
                let rows = if let Some(ident) = &filter.credentials_identifier {
                    sqlx::query(
                        "SELECT DISTINCT i.* FROM identities i JOIN credential_identifiers c ON c.identity_id = i.id WHERE c.identifier = $1 ORDER BY i.id LIMIT $2",
                    )
                    .bind(ident)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?
                } else if !filter.ids.is_empty() {
                    let mut out = vec![];
                    for id in &filter.ids {
                        if let Some(r) = sqlx::query("SELECT * FROM identities WHERE id = $1")
                            .bind(*id)
                            .fetch_optional(&self.pool)
                            .await
                            .map_err(map_err)?
                        {
                            out.push(r);
                        }
                    }
                    out
                } else if let Some(after) = after {
                    sqlx::query("SELECT * FROM identities WHERE id > $1 ORDER BY id LIMIT $2")
                        .bind(after)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(map_err)?
                } else {
                    sqlx::query("SELECT * FROM identities ORDER BY id LIMIT $1")
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(map_err)?
                };
                self.load_identity_rows(rows).await
            }

            async fn count_identities(&self) -> Result<u64, StoreError> {
                let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM identities")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(map_err)?
                    .try_get("n")
                    .map_err(map_err)?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn delete_identity(&self, id: Uuid) -> Result<bool, StoreError> {
                let _w = self.write_guard().await;
                let r = sqlx::query("DELETE FROM identities WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn get_session(&self, id: Uuid) -> Result<Option<Session>, StoreError> {
                let row = sqlx::query("SELECT * FROM sessions WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(rows::session).transpose()
            }

            async fn get_session_by_token_hash(&self, hash: &str) -> Result<Option<Session>, StoreError> {
                let row = sqlx::query("SELECT * FROM sessions WHERE token_hash = $1")
                    .bind(hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(rows::session).transpose()
            }

            async fn get_session_with_identity(
                &self,
                hash: &str,
            ) -> Result<Option<(Session, Option<Identity>)>, StoreError> {
                if let Some(lane) = &self.lane {
                    return lane.session_with_identity(hash);
                }
                // The session and its identity row in one query, the identity's children in a
                // second (was three round trips).
                let row = sqlx::query(SESSION_WITH_IDENTITY)
                    .bind(hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                let Some(row) = row else { return Ok(None) };
                let session = rows::session(&row)?;
                let has_identity = rows::Cols::opt_uuid(&row, "i_id")?.is_some();
                if !has_identity {
                    return Ok(Some((session, None)));
                }
                let ident = rows::identity(&row, PREFIXED_IDENTITY_COLUMNS)?;
                Ok(Some((session, Some(self.hydrate_children(ident).await?))))
            }

            async fn get_session_by_logout_hash(&self, hash: &str) -> Result<Option<Session>, StoreError> {
                let row = sqlx::query("SELECT * FROM sessions WHERE logout_token_hash = $1")
                    .bind(hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(rows::session).transpose()
            }

            async fn list_sessions(
                &self,
                identity_id: Option<Uuid>,
                active_only: bool,
                after: Option<Uuid>,
                limit: u32,
            ) -> Result<Vec<Session>, StoreError> {
                let limit = i64::from(limit.clamp(1, 1000));
                let nil = Uuid::nil();
                let rows = sqlx::query(
                    "SELECT * FROM sessions WHERE ($1 = 0 OR identity_id = $2) AND ($3 = 0 OR active = $4) AND id > $5 ORDER BY id LIMIT $6",
                )
                .bind(i64::from(identity_id.is_some()))
                .bind(identity_id.unwrap_or(nil))
                .bind(i64::from(active_only))
                .bind(true)
                .bind(after.unwrap_or(nil))
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                rows.iter().map(rows::session).collect()
            }

            async fn revoke_session(&self, id: Uuid) -> Result<bool, StoreError> {
                let _w = self.write_guard().await;
                let r = sqlx::query("UPDATE sessions SET active = $1 WHERE id = $2")
                    .bind(false)
                    .bind(id)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(r.rows_affected() > 0)
            }

            async fn delete_sessions_of(&self, identity_id: Uuid) -> Result<u64, StoreError> {
                let _w = self.write_guard().await;
                let r = sqlx::query("DELETE FROM sessions WHERE identity_id = $1")
                    .bind(identity_id)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(r.rows_affected())
            }

            async fn create_flow(&self, f: &Flow) -> Result<(), StoreError> {
                let st = plan::create_flow(f)?;
                if let Some(lane) = &self.lane {
                    lane.write(vec![st], Arc::clone(&self.write_lock).lock_owned().await).await?;
                    return Ok(());
                }
                let _w = self.write_guard().await;
                Self::bind(sqlx::query(st.sql), &st.params).execute(&self.pool).await.map_err(map_err)?;
                Ok(())
            }

            async fn get_flow(&self, id: Uuid) -> Result<Option<Flow>, StoreError> {
                if let Some(lane) = &self.lane {
                    return lane.flow(id);
                }
                let row = sqlx::query("SELECT data, version FROM flows WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                match row {
                    None => Ok(None),
                    Some(r) => {
                        let mut f = flow_format::decode(&r.try_get::<String, _>("data").map_err(map_err)?)?;
                        f.version = r.try_get("version").map_err(map_err)?;
                        Ok(Some(f))
                    }
                }
            }

            async fn commit(&self, c: Commit<'_>) -> Result<u64, StoreError> {
                let plan = plan::commit(&c)?;
                if let Some(lane) = &self.lane {
                    return lane.write(plan, Arc::clone(&self.write_lock).lock_owned().await).await;
                }
                let _w = self.write_guard().await;
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                let mut tally = plan::Tally::new();
                for s in &plan {
                    let r = Self::bind(sqlx::query(s.sql), &s.params).execute(&mut *tx).await.map_err(map_err)?;
                    tally.record(s, r.rows_affected())?;
                }
                tx.commit().await.map_err(map_err)?;
                Ok(tally.revoked())
            }

            async fn kv_get_or_init(&self, key: &str, init: &str) -> Result<String, StoreError> {
                let _w = self.write_guard().await;
                sqlx::query("INSERT INTO kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                    .bind(key)
                    .bind(init)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                sqlx::query("SELECT value FROM kv WHERE key = $1")
                    .bind(key)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(map_err)?
                    .try_get("value")
                    .map_err(map_err)
            }

            async fn list_pending_changes(&self, identity_id: Uuid) -> Result<Vec<PendingChange>, StoreError> {
                let rows = sqlx::query("SELECT * FROM pending_changes WHERE identity_id = $1 ORDER BY path")
                    .bind(identity_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                rows.iter()
                    .map(|r| {
                        Ok(PendingChange {
                            identity_id: r.try_get("identity_id").map_err(map_err)?,
                            path: r.try_get("path").map_err(map_err)?,
                            value: parse_json(&r.try_get::<String, _>("value").map_err(map_err)?),
                            previous: parse_json(&r.try_get::<String, _>("previous").map_err(map_err)?),
                            address: r.try_get("address").map_err(map_err)?,
                            flow_id: r.try_get("flow_id").map_err(map_err)?,
                            created_at: from_ts(r.try_get("created_at").map_err(map_err)?),
                            expires_at: from_ts(r.try_get("expires_at").map_err(map_err)?),
                        })
                    })
                    .collect()
            }

            async fn kv_get(&self, key: &str) -> Result<Option<String>, StoreError> {
                let row = sqlx::query("SELECT value FROM kv WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.map(|r| r.try_get("value").map_err(map_err)).transpose()
            }

            async fn kv_put_expiring(
                &self,
                key: &str,
                value: &str,
                expires_at: OffsetDateTime,
            ) -> Result<(), StoreError> {
                let _w = self.write_guard().await;
                sqlx::query(
                    "INSERT INTO kv (key, value, expires_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .bind(value)
                .bind(ts(expires_at))
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
                Ok(())
            }

            async fn cleanup(&self, c: &Cleanup) -> Result<Option<Cleaned>, StoreError> {
                let _w = self.write_guard().await;
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                if $backend == "postgres" {
                    // One node at a time: a transaction-scoped advisory lock, released at commit;
                    // a node that does not get it skips this run.
                    let got: bool = sqlx::query("SELECT pg_try_advisory_xact_lock($1) AS got")
                        .bind(CLEANUP_LOCK_KEY)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(map_err)?
                        .try_get("got")
                        .map_err(map_err)?;
                    if !got {
                        return Ok(None);
                    }
                }
                let batch = i64::from(c.batch.max(1));
                let mut out = Cleaned::default();
                for (sql, cutoff, n) in [
                    (
                        "DELETE FROM flows WHERE id IN (SELECT id FROM flows WHERE expires_at < $1 LIMIT $2)",
                        ts(c.flows_expired_before),
                        &mut out.flows,
                    ),
                    (
                        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at < $1 LIMIT $2)",
                        ts(c.sessions_expired_before),
                        &mut out.sessions,
                    ),
                    (
                        "DELETE FROM kv WHERE key IN (SELECT key FROM kv WHERE expires_at < $1 LIMIT $2)",
                        ts(c.kv_expired_before),
                        &mut out.kv,
                    ),
                    (
                        "DELETE FROM rate_limits WHERE key IN (SELECT key FROM rate_limits WHERE window_start < $1 LIMIT $2)",
                        c.rate_windows_before,
                        &mut out.rate_limits,
                    ),
                    (
                        "DELETE FROM pending_changes WHERE (identity_id, path) IN (SELECT identity_id, path FROM pending_changes WHERE expires_at < $1 LIMIT $2)",
                        ts(c.pending_changes_expired_before),
                        &mut out.pending_changes,
                    ),
                    (
                        "DELETE FROM identity_activity WHERE (identity_id, created_at, id) IN (SELECT identity_id, created_at, id FROM identity_activity WHERE created_at < $1 LIMIT $2)",
                        ts(c.activity_before),
                        &mut out.activity,
                    ),
                ] {
                    *n = sqlx::query(sql)
                        .bind(cutoff)
                        .bind(batch)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?
                        .rows_affected();
                }
                tx.commit().await.map_err(map_err)?;
                Ok(Some(out))
            }

            async fn purge_scheduled_deletions(
                &self,
                now: OffsetDateTime,
                batch: u32,
            ) -> Result<Vec<Uuid>, StoreError> {
                let _w = self.write_guard().await;
                // PostgreSQL: rows another node is deleting right now are locked and skipped, so
                // every due identity is deleted by exactly one node, and a concurrent cancel
                // (an UPDATE of the row) either commits first, and the row no longer matches,
                // or waits for the delete and finds nothing. SQLite: one writer at a time.
                // Credentials, identifiers, addresses, sessions, flows and every other row that
                // references the identity go with it (ON DELETE CASCADE).
                let sql = if $backend == "postgres" {
                    "DELETE FROM identities WHERE id IN (SELECT id FROM identities WHERE delete_after IS NOT NULL \
                     AND delete_after <= $1 ORDER BY delete_after, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
                     AND delete_after IS NOT NULL AND delete_after <= $1 RETURNING id"
                } else {
                    "DELETE FROM identities WHERE id IN (SELECT id FROM identities WHERE delete_after IS NOT NULL \
                     AND delete_after <= $1 ORDER BY delete_after, id LIMIT $2) RETURNING id"
                };
                let rows = sqlx::query(sql)
                    .bind(ts(now))
                    .bind(i64::from(batch.max(1)))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                rows.iter().map(|r| r.try_get("id").map_err(map_err)).collect()
            }

            async fn rate_hit(&self, key: &str, window_start: i64) -> Result<i64, StoreError> {
                let _w = self.write_guard().await;
                sqlx::query(
                    "INSERT INTO rate_limits (key, window_start, count) VALUES ($1, $2, 1) ON CONFLICT (key) DO UPDATE SET count = CASE WHEN rate_limits.window_start = excluded.window_start THEN rate_limits.count + 1 ELSE 1 END, window_start = excluded.window_start RETURNING count",
                )
                .bind(key)
                .bind(window_start)
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)?
                .try_get("count")
                .map_err(map_err)
            }

            async fn courier_claim(
                &self,
                now: OffsetDateTime,
                lease_until: OffsetDateTime,
                claim: Uuid,
                limit: u32,
            ) -> Result<Vec<Message>, StoreError> {
                let _w = self.write_guard().await;
                // PostgreSQL: rows locked by another node's claim are skipped, and the outer
                // WHERE re-checks each row after the lock, so two nodes never claim one message.
                // SQLite: one writer at a time (the write lock), the same statement is atomic.
                let sql = if $backend == "postgres" {
                    "UPDATE courier_messages SET status = 'processing', claim_id = $1, lease_until = $2, updated_at = $3 \
                     WHERE id IN (SELECT id FROM courier_messages WHERE (status = 'queued' AND next_attempt_at <= $3) \
                     OR (status = 'processing' AND lease_until < $3) ORDER BY created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
                     AND ((status = 'queued' AND next_attempt_at <= $3) OR (status = 'processing' AND lease_until < $3)) RETURNING *"
                } else {
                    "UPDATE courier_messages SET status = 'processing', claim_id = $1, lease_until = $2, updated_at = $3 \
                     WHERE id IN (SELECT id FROM courier_messages WHERE (status = 'queued' AND next_attempt_at <= $3) \
                     OR (status = 'processing' AND lease_until < $3) ORDER BY created_at, id LIMIT $4) RETURNING *"
                };
                let rows = sqlx::query(sql)
                    .bind(claim)
                    .bind(ts(lease_until))
                    .bind(ts(now))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                let mut out = rows.iter().map(Self::message_from_row).collect::<Result<Vec<_>, _>>()?;
                out.sort_by_key(|m| (m.created_at, m.id));
                Ok(out)
            }

            async fn courier_record(
                &self,
                id: Uuid,
                claim: Uuid,
                outcome: &Outcome,
                now: OffsetDateTime,
            ) -> Result<bool, StoreError> {
                let _w = self.write_guard().await;
                let mut tx = self.pool.begin().await.map_err(map_err)?;
                let (status, next, dispatch, error) = match outcome {
                    Outcome::Sent => (MessageStatus::Sent, now, DispatchStatus::Success, None),
                    Outcome::Failed { error, retry_at: Some(at) } => (
                        MessageStatus::Queued,
                        *at,
                        DispatchStatus::Failed,
                        Some(serde_json::json!({ "message": error }).to_string()),
                    ),
                    Outcome::Failed { error, retry_at: None } => (
                        MessageStatus::Abandoned,
                        now,
                        DispatchStatus::Failed,
                        Some(serde_json::json!({ "message": error }).to_string()),
                    ),
                };
                let r = sqlx::query(
                    "UPDATE courier_messages SET status = $1, send_count = send_count + 1, next_attempt_at = $2, claim_id = NULL, lease_until = NULL, updated_at = $3 WHERE id = $4 AND claim_id = $5 AND status = 'processing'",
                )
                .bind(status.as_str())
                .bind(ts(next))
                .bind(ts(now))
                .bind(id)
                .bind(claim)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                if r.rows_affected() != 1 {
                    // The lease ran out and another claim holds the message: its outcome counts.
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO courier_dispatches (id, message_id, status, error, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(Uuid::new_v4())
                .bind(id)
                .bind(dispatch.as_str())
                .bind(error)
                .bind(ts(now))
                .bind(ts(now))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                tx.commit().await.map_err(map_err)?;
                Ok(true)
            }

            async fn courier_list(
                &self,
                filter: &MessageFilter,
                after: Option<PageToken>,
                limit: u32,
            ) -> Result<Vec<Message>, StoreError> {
                const PAGE: &str = "SELECT id FROM courier_messages WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR recipient = $2) \
                    AND ($3 IS NULL OR created_at < $3 OR (created_at = $3 AND id < $4)) ORDER BY created_at DESC, id DESC LIMIT $5";
                let status = filter.status.map(|s| s.as_str().to_string());
                let after_ts = after.map(|a| ts(a.created_at));
                let after_id = after.map(|a| a.id).unwrap_or(Uuid::nil());
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT * FROM courier_messages WHERE id IN ({PAGE}) ORDER BY created_at DESC, id DESC"
                )))
                .bind(&status)
                .bind(&filter.recipient)
                .bind(after_ts)
                .bind(after_id)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                let mut out = rows.iter().map(Self::message_from_row).collect::<Result<Vec<_>, _>>()?;
                let drows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT * FROM courier_dispatches WHERE message_id IN ({PAGE}) ORDER BY created_at, id"
                )))
                .bind(&status)
                .bind(&filter.recipient)
                .bind(after_ts)
                .bind(after_id)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
                let mut by_message: std::collections::HashMap<Uuid, Vec<Dispatch>> = Default::default();
                for r in &drows {
                    let d = Self::dispatch_from_row(r)?;
                    by_message.entry(d.message_id).or_default().push(d);
                }
                for m in &mut out {
                    m.dispatches = by_message.remove(&m.id).unwrap_or_default();
                }
                Ok(out)
            }

            async fn courier_get(&self, id: Uuid) -> Result<Option<Message>, StoreError> {
                let row = sqlx::query("SELECT * FROM courier_messages WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                let Some(row) = row else { return Ok(None) };
                let mut m = Self::message_from_row(&row)?;
                let drows = sqlx::query("SELECT * FROM courier_dispatches WHERE message_id = $1 ORDER BY created_at, id")
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                m.dispatches = drows.iter().map(Self::dispatch_from_row).collect::<Result<_, _>>()?;
                Ok(Some(m))
            }

            async fn list_activity(
                &self,
                identity_id: Uuid,
                cursor: Option<ActivityCursor>,
                limit: u32,
            ) -> Result<Vec<ActivityEvent>, StoreError> {
                let limit = i64::from(limit.clamp(1, 1000));
                let rows = match cursor {
                    Some(c) => sqlx::query(
                        "SELECT * FROM identity_activity WHERE identity_id = $1 AND (created_at < $2 OR (created_at = $2 AND id < $3)) \
                         ORDER BY created_at DESC, id DESC LIMIT $4",
                    )
                    .bind(identity_id)
                    .bind(ts(c.created_at))
                    .bind(c.id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?,
                    None => sqlx::query(
                        "SELECT * FROM identity_activity WHERE identity_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
                    )
                    .bind(identity_id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?,
                };
                rows.iter().map(Self::activity_from_row).collect()
            }

            async fn rate_clear(&self, key: &str) -> Result<(), StoreError> {
                let _w = self.write_guard().await;
                sqlx::query("DELETE FROM rate_limits WHERE key = $1")
                    .bind(key)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }
        }
    };
}

sql_store!(SqliteStore, sqlx::Sqlite, "sqlite");
sql_store!(PgStore, sqlx::Postgres, "postgres");

impl SqliteStore {
    pub async fn connect(dsn: &str, pool: &PoolConfig) -> Result<Self, StoreError> {
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
        let opts = SqliteConnectOptions::from_str(dsn)
            .map_err(|e| StoreError::Other(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let file = opts.get_filename().to_path_buf();
        let p = SqlitePoolOptions::new()
            // sqlx pings a pooled connection before every use by default: for SQLite (a file,
            // no network to lose) that is one more hop to the connection's worker thread per
            // statement, for nothing.
            .test_before_acquire(false)
            .max_connections(pool.max_connections.max(1))
            .min_connections(pool.min_connections)
            .acquire_timeout(pool.acquire_timeout)
            .connect_with(opts)
            .await
            .map_err(map_err)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&p)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")))?;
        // The lane needs the database's own file: an in-memory database is one pool's alone.
        let in_memory = dsn.contains(":memory:") || dsn.contains("mode=memory");
        let lane = if in_memory { None } else { Some(Arc::new(sqlite_lane::Lane::open(file)?)) };
        Ok(SqliteStore { pool: p, write_lock: Arc::default(), lane })
    }
}

impl PgStore {
    /// Connect and migrate. sqlx takes a PostgreSQL advisory lock around migrations, so
    /// several nodes starting at once apply them exactly once.
    pub async fn connect(dsn: &str, pool: &PoolConfig) -> Result<Self, StoreError> {
        use sqlx::postgres::PgPoolOptions;
        let p = PgPoolOptions::new()
            .max_connections(pool.max_connections.max(1))
            .min_connections(pool.min_connections)
            .acquire_timeout(pool.acquire_timeout)
            .connect(dsn)
            .await
            .map_err(map_err)?;
        sqlx::migrate!("./migrations/postgres")
            .run(&p)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")))?;
        Ok(PgStore { pool: p, write_lock: Arc::default(), lane: None })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn migration_folders_in_lockstep() {
        let names = |dir: &str| {
            let mut v: Vec<String> = std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names("sqlite"), names("postgres"));
        assert!(!names("sqlite").is_empty());
    }
}
