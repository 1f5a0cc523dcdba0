//! The SQLite connection lane: the hot reads and writes of a file database on connections
//! this process owns directly (rusqlite, on the same libsqlite3 as sqlx), instead of sqlx's
//! driver, which sends every statement to the connection's worker thread and back (two thread
//! wake-ups per statement; a settings submit is about eight statements).
//!
//! - A read (a session with its identity, an identity, a flow) runs on the calling thread in one
//!   read transaction: no hand-off at all. Reads in WAL mode never wait for a writer, and the
//!   pages come from SQLite's cache; this is the same kind of work as decoding the JSON after.
//! - A write (a [`plan`](crate::plan) of statements: a `Commit`, a new flow) runs in one
//!   `BEGIN IMMEDIATE` transaction, also on the calling thread: the process's writers already
//!   queue on the store's `write_lock`, and a WAL commit with `synchronous=NORMAL` does not
//!   sync. Only when another process holds SQLite's lock does the write move to a blocking
//!   thread that waits for it; WAL checkpoints (which sync) run on a blocking thread too,
//!   holding the write lock like a commit.
//!
//! Same durability as the sqlx connections: WAL, `synchronous=NORMAL`, foreign keys on, a
//! 10 s busy timeout. Everything else the store does stays on sqlx.

use crate::plan::{P, Stmt, Tally};
use crate::rows::{self, Children, Cols};
use crate::{HYDRATE_CHILDREN, IDENTITY_COLUMNS, PREFIXED_IDENTITY_COLUMNS, SESSION_WITH_IDENTITY};
use idflow_core::model::{Flow, Identity, Session};
use idflow_core::store::StoreError;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// Idle connections kept for reuse. Reads hold a connection only while they run (never across
/// an await), writes one at a time, so a few cover any load; more are opened when needed and
/// closed when returned to a full shelf.
const IDLE: usize = 8;

pub(crate) struct Lane {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Commits through the lane (see `checkpoint_due`).
    commits: AtomicU64,
}

/// SQLite's busy timeout when a write waits for another process's lock, as on sqlx's
/// connections.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Commits between two WAL checkpoints: 1 000 to 1 800 pages (a settings change writes 4 or
/// 5, a new settings flow about 7; SQLite's own default is a checkpoint per 1 000 pages).
const CHECKPOINT_EVERY: u64 = 256;

/// How a write attempt ended, when not with a commit.
enum Attempt {
    /// Another process holds SQLite's write lock and this attempt was not to wait: nothing was
    /// written; try again on a thread that may wait.
    Locked,
    Failed(StoreError),
}

impl Attempt {
    fn from_sqlite(e: rusqlite::Error, waited: bool) -> Attempt {
        let busy = matches!(&e, rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ffi::ErrorCode::DatabaseBusy | rusqlite::ffi::ErrorCode::DatabaseLocked));
        if busy && !waited { Attempt::Locked } else { Attempt::Failed(lane_err(e)) }
    }

    fn into_error(self) -> StoreError {
        match self {
            Attempt::Locked => StoreError::Busy("database busy: locked by another process".into()),
            Attempt::Failed(e) => e,
        }
    }
}

impl From<StoreError> for Attempt {
    fn from(e: StoreError) -> Attempt {
        Attempt::Failed(e)
    }
}

/// A connection taken from the lane; back on the shelf when dropped.
struct Taken<'a> {
    lane: &'a Lane,
    conn: Option<Connection>,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if let (Some(c), Ok(mut idle)) = (self.conn.take(), self.lane.idle.lock()) {
            // A connection still inside a transaction (its rollback failed) is closed, not
            // shelved: the next BEGIN on it would fail.
            if idle.len() < IDLE && c.is_autocommit() {
                idle.push(c);
            }
        }
    }
}

/// A transaction whose `BEGIN`, `COMMIT` and `ROLLBACK` come from the connection's statement
/// cache (rusqlite's `Transaction` prepares them again each time). Rolled back when dropped
/// uncommitted; a connection whose rollback failed is not shelved again (`Taken`).
struct Tx<'c> {
    c: &'c Connection,
    open: bool,
}

impl<'c> Tx<'c> {
    fn begin(c: &'c Connection, begin: &str) -> rusqlite::Result<Self> {
        c.prepare_cached(begin)?.execute([])?;
        Ok(Tx { c, open: true })
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        self.c.prepare_cached("COMMIT")?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open && !self.c.is_autocommit() {
            let _ = self.c.prepare_cached("ROLLBACK").and_then(|mut st| st.execute([]));
        }
    }
}

impl Taken<'_> {
    fn conn(&self) -> Result<&Connection, StoreError> {
        self.conn.as_ref().ok_or_else(|| StoreError::Other("connection already returned".into()))
    }
}

pub(crate) fn lane_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ffi;
    match &e {
        rusqlite::Error::SqliteFailure(f, msg) => {
            let msg = msg.clone().unwrap_or_else(|| f.to_string());
            match f.code {
                ffi::ErrorCode::ConstraintViolation => match f.extended_code {
                    ffi::SQLITE_CONSTRAINT_FOREIGNKEY => StoreError::NotFound,
                    ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => StoreError::Conflict(msg),
                    _ => StoreError::Other(msg),
                },
                ffi::ErrorCode::DatabaseBusy | ffi::ErrorCode::DatabaseLocked => {
                    StoreError::Busy(format!("database busy: {msg}"))
                }
                ffi::ErrorCode::DiskFull | ffi::ErrorCode::SystemIoFailure | ffi::ErrorCode::CannotOpen => {
                    StoreError::Unavailable(msg)
                }
                _ => StoreError::Other(msg),
            }
        }
        _ => StoreError::Other(e.to_string()),
    }
}

impl ToSql for P {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        // UUIDs as the 16-byte BLOBs sqlx writes; booleans as 0/1.
        Ok(match self {
            P::Uuid(u) | P::OptUuid(Some(u)) => ToSqlOutput::Borrowed(ValueRef::Blob(u.as_bytes())),
            P::Int(i) | P::OptInt(Some(i)) => ToSqlOutput::Owned(Value::Integer(*i)),
            P::Text(s) | P::OptText(Some(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            P::Bool(b) => ToSqlOutput::Owned(Value::Integer(i64::from(*b))),
            P::OptUuid(None) | P::OptInt(None) | P::OptText(None) => ToSqlOutput::Owned(Value::Null),
        })
    }
}

/// A rusqlite row, read by column name like sqlx's. `names` are the statement's column names
/// ([`column_names`], taken once per query): rusqlite's own lookup by name asks SQLite for
/// every column's name on every read, which was a tenth of loading a session.
struct LaneRow<'a, 'b> {
    row: &'a rusqlite::Row<'b>,
    names: &'a [String],
}

/// The column names of `st`, for [`LaneRow`].
fn column_names(st: &rusqlite::Statement<'_>) -> Vec<String> {
    st.column_names().into_iter().map(String::from).collect()
}

impl LaneRow<'_, '_> {
    fn idx(&self, c: &str) -> Result<usize, StoreError> {
        self.names.iter().position(|n| n == c).ok_or_else(|| StoreError::Other(format!("no column {c}")))
    }
    fn get<T: rusqlite::types::FromSql>(&self, c: &str) -> Result<T, StoreError> {
        self.row.get(self.idx(c)?).map_err(lane_err)
    }
}

impl Cols for LaneRow<'_, '_> {
    fn text(&self, c: &str) -> Result<String, StoreError> {
        self.get(c)
    }
    fn opt_text(&self, c: &str) -> Result<Option<String>, StoreError> {
        self.get(c)
    }
    fn int(&self, c: &str) -> Result<i64, StoreError> {
        self.get(c)
    }
    fn opt_int(&self, c: &str) -> Result<Option<i64>, StoreError> {
        self.get(c)
    }
    fn uuid(&self, c: &str) -> Result<Uuid, StoreError> {
        self.opt_uuid(c)?.ok_or_else(|| StoreError::Other(format!("column {c}: NULL where a UUID was expected")))
    }
    fn opt_uuid(&self, c: &str) -> Result<Option<Uuid>, StoreError> {
        match self.row.get_ref(self.idx(c)?).map_err(lane_err)? {
            ValueRef::Null => Ok(None),
            ValueRef::Blob(b) => {
                Uuid::from_slice(b).map(Some).map_err(|e| StoreError::Other(format!("column {c}: not a UUID: {e}")))
            }
            _ => Err(StoreError::Other(format!("column {c}: not a UUID"))),
        }
    }
    fn boolean(&self, c: &str) -> Result<bool, StoreError> {
        self.get(c)
    }
}

/// Bind `params` to the `$n` placeholders of `st` (by name: SQLite numbers its parameters in
/// order of first appearance, which is not always `$1, $2, …`).
fn bind(st: &mut rusqlite::CachedStatement<'_>, params: &[P]) -> Result<(), StoreError> {
    for idx in 1..=st.parameter_count() {
        let n = st
            .parameter_name(idx)
            .and_then(|n| n.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| n.checked_sub(1))
            .and_then(|n| params.get(n))
            .ok_or_else(|| StoreError::Other(format!("statement parameter {idx} has no value")))?;
        st.raw_bind_parameter(idx, n).map_err(lane_err)?;
    }
    Ok(())
}

impl Lane {
    /// A lane on the database file `path` (already created and migrated through sqlx).
    pub(crate) fn open(path: PathBuf) -> Result<Lane, StoreError> {
        let lane = Lane { path, idle: Mutex::new(Vec::new()), commits: AtomicU64::new(0) };
        // Open one now, so a bad path fails at start-up, not on the first request.
        let c = lane.connect()?;
        if let Ok(mut idle) = lane.idle.lock() {
            idle.push(c);
        }
        Ok(lane)
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(lane_err)?;
        c.busy_timeout(BUSY_TIMEOUT).map_err(lane_err)?;
        c.pragma_update(None, "foreign_keys", true).map_err(lane_err)?;
        c.pragma_update(None, "synchronous", "NORMAL").map_err(lane_err)?;
        c.pragma_update(None, "wal_autocheckpoint", 0).map_err(lane_err)?;
        c.set_prepared_statement_cache_capacity(64);
        Ok(c)
    }

    fn take(&self) -> Result<Taken<'_>, StoreError> {
        let shelved = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match shelved {
            Some(c) => c,
            None => self.connect()?,
        };
        Ok(Taken { lane: self, conn: Some(conn) })
    }

    /// Run `f` in a read transaction on a connection of the lane, on this thread.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let taken = self.take()?;
        let c = taken.conn()?;
        // Dropped at the end: a read-only transaction ends the same way committed or rolled back.
        let _tx = Tx::begin(c, "BEGIN").map_err(lane_err)?;
        f(c)
    }

    fn children(c: &Connection, ident: Identity) -> Result<Identity, StoreError> {
        let mut st = c.prepare_cached(HYDRATE_CHILDREN).map_err(lane_err)?;
        let names = column_names(&st);
        st.raw_bind_parameter(1, ident.id.as_bytes()).map_err(lane_err)?;
        let mut rows = st.raw_query();
        let mut children = Children::default();
        while let Some(r) = rows.next().map_err(lane_err)? {
            children.add(ident.id, &LaneRow { row: r, names: &names })?;
        }
        Ok(children.finish(ident))
    }

    pub(crate) fn session_with_identity(&self, hash: &str) -> Result<Option<(Session, Option<Identity>)>, StoreError> {
        self.read(|c| {
            let (session, ident) = {
                let mut st = c.prepare_cached(SESSION_WITH_IDENTITY).map_err(lane_err)?;
                let names = column_names(&st);
                st.raw_bind_parameter(1, hash).map_err(lane_err)?;
                let mut rows = st.raw_query();
                let Some(r) = rows.next().map_err(lane_err)? else { return Ok(None) };
                let r = LaneRow { row: r, names: &names };
                let session = rows::session(&r)?;
                let ident = match r.opt_uuid("i_id")? {
                    Some(_) => Some(rows::identity(&r, PREFIXED_IDENTITY_COLUMNS)?),
                    None => None,
                };
                (session, ident)
            };
            let ident = match ident {
                Some(i) => Some(Self::children(c, i)?),
                None => None,
            };
            Ok(Some((session, ident)))
        })
    }

    pub(crate) fn identity(&self, id: Uuid) -> Result<Option<Identity>, StoreError> {
        self.read(|c| {
            let ident = {
                let mut st = c.prepare_cached("SELECT * FROM identities WHERE id = $1").map_err(lane_err)?;
                let names = column_names(&st);
                st.raw_bind_parameter(1, id.as_bytes()).map_err(lane_err)?;
                let mut rows = st.raw_query();
                let Some(r) = rows.next().map_err(lane_err)? else { return Ok(None) };
                rows::identity(&LaneRow { row: r, names: &names }, IDENTITY_COLUMNS)?
            };
            Ok(Some(Self::children(c, ident)?))
        })
    }

    pub(crate) fn flow(&self, id: Uuid) -> Result<Option<Flow>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT data, version FROM flows WHERE id = $1").map_err(lane_err)?;
            st.raw_bind_parameter(1, id.as_bytes()).map_err(lane_err)?;
            let mut rows = st.raw_query();
            let Some(r) = rows.next().map_err(lane_err)? else { return Ok(None) };
            let data = r.get_ref(0).map_err(lane_err)?;
            let data = data.as_str().map_err(|e| StoreError::Other(format!("corrupt stored flow: {e}")))?;
            let mut f = crate::flow_format::decode(data)?;
            f.version = r.get(1).map_err(lane_err)?;
            Ok(Some(f))
        })
    }

    /// Run `plan` in one write transaction, holding `guard` (the store's write lock) until it
    /// ends. The number of sessions the plan revoked.
    ///
    /// First on this thread, without waiting for SQLite's lock: this process's writers queue on
    /// `guard`, so the lock is free unless another process (an `idflow` command on the same
    /// file) holds it, and a commit in WAL mode with `synchronous=NORMAL` is a few writes to the
    /// page cache, no fsync (the checkpoints, which do sync, run on a blocking thread, see
    /// [`Self::checkpoint`]). Only if the lock is taken does the write move to a blocking thread
    /// that waits for it (busy timeout), keeping `guard` until it ends even when the request
    /// that started it is gone.
    pub(crate) async fn write(
        self: &Arc<Self>,
        plan: Vec<Stmt>,
        guard: tokio::sync::OwnedMutexGuard<()>,
    ) -> Result<u64, StoreError> {
        match self.write_now(&plan, false) {
            Err(Attempt::Locked) => {}
            r => {
                let r = r.map_err(Attempt::into_error);
                if r.is_ok() && self.checkpoint_due() {
                    let lane = Arc::clone(self);
                    tokio::task::spawn_blocking(move || {
                        let _guard = guard;
                        lane.checkpoint();
                    });
                }
                return r;
            }
        }
        let lane = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _guard = guard;
            let r = lane.write_now(&plan, true).map_err(Attempt::into_error);
            if r.is_ok() && lane.checkpoint_due() {
                lane.checkpoint();
            }
            r
        })
        .await
        .map_err(|e| StoreError::Other(format!("the database thread failed: {e}")))?
    }

    fn write_now(&self, plan: &[Stmt], wait: bool) -> Result<u64, Attempt> {
        let taken = self.take()?;
        let c = taken.conn()?;
        if wait {
            return Self::run_plan(c, plan, true);
        }
        // Not waiting for another process's lock, just for this attempt: the connection goes
        // back to the shelf with the usual busy timeout (its next use may be a read).
        c.busy_timeout(Duration::ZERO).map_err(lane_err)?;
        let r = Self::run_plan(c, plan, false);
        // The write's outcome stands whatever this gives (it never fails for a valid handle).
        if let Err(e) = c.busy_timeout(BUSY_TIMEOUT) {
            tracing::warn!(error = %e, "could not restore the SQLite busy timeout");
        }
        r
    }

    fn run_plan(c: &Connection, plan: &[Stmt], wait: bool) -> Result<u64, Attempt> {
        let tx = Tx::begin(c, "BEGIN IMMEDIATE").map_err(|e| Attempt::from_sqlite(e, wait))?;
        let mut tally = Tally::new();
        for s in plan {
            let mut st = c.prepare_cached(s.sql).map_err(|e| Attempt::from_sqlite(e, wait))?;
            bind(&mut st, &s.params)?;
            let n = st.raw_execute().map_err(|e| Attempt::from_sqlite(e, wait))?;
            tally.record(s, u64::try_from(n).unwrap_or(u64::MAX))?;
        }
        tx.commit().map_err(|e| Attempt::from_sqlite(e, wait))?;
        Ok(tally.revoked())
    }

    /// Count a commit: whether a checkpoint is due after it (every [`CHECKPOINT_EVERY`]).
    fn checkpoint_due(&self) -> bool {
        (self.commits.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(CHECKPOINT_EVERY)
    }

    /// Checkpoint the WAL (`PASSIVE`: never waits for readers). The lane's connections do not
    /// checkpoint on commit (`wal_autocheckpoint=0`), which would sync files on the caller's
    /// thread; this runs on a blocking thread instead, holding the store's write lock as a
    /// commit would: with no commit adding frames meanwhile it can copy them all, so that the
    /// next writer starts the WAL file over instead of growing it.
    fn checkpoint(&self) {
        let r = self
            .take()
            .and_then(|t| t.conn()?.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).map_err(lane_err));
        if let Err(e) = r {
            tracing::warn!(error = %e, "SQLite WAL checkpoint failed");
        }
    }
}
