//! The cleanup of what expires (flows, sessions, stored errors, rate-limit counters) and reads
//! that never write: unauthenticated requests cannot grow the database without bound.

use crate::both_dbs;
use crate::support::*;
use serde_json::Value;
use uuid::Uuid;

/// Rows of `table` matching `filter` (SQL), read straight from the database.
async fn count(app: &TestApp, table: &str, filter: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE {filter}");
    match app.db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.dsn).await.unwrap();
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(&app.dsn).await.unwrap();
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n
        }
    }
}

/// `GET /self-service/errors?id=` and `GET /ui/error?id=` with unknown ids: 404, no row.
async fn error_reads_never_insert(db: Db) {
    let app = spawn_app(db).await;
    let before = count(&app, "kv", "1 = 1").await;
    for _ in 0..10 {
        let id = Uuid::new_v4();
        let r = api_client().get(app.url(&format!("/self-service/errors?id={id}"))).send().await.unwrap();
        assert_eq!(r.status(), 404);
        let r = api_client().get(app.url(&format!("/ui/error?id={id}"))).send().await.unwrap();
        assert_eq!(r.status(), 404);
    }
    assert_eq!(count(&app, "kv", "1 = 1").await, before, "a read wrote rows");
}
both_dbs!(error_reads_never_insert);

/// Expired flows and sessions (past `cleanup.keep_expired`), expired stored errors and
/// finished rate-limit windows are deleted in batches; live rows and server secrets stay.
async fn cleanup_deletes_expired_rows(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.cleanup.enabled = false; // driven by the test
        c.cleanup.batch_size = 3;
        c.limits.per_ip.login = 1000;
    })
    .await;
    let (email, token, _) = app.user().await;
    assert!(app.login(&email, PASSWORD).await["session_token"].is_string());
    for _ in 0..10 {
        let r = api_client().get(app.url("/self-service/login/api")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    // A browser error (a forbidden return_to) is stored for the error page.
    let r = browser_client()
        .get(app.url("/self-service/login/browser?return_to=https%3A%2F%2Fevil.example.com%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "a browser error is stored and redirected to");
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let err_id = loc.split("id=").nth(1).unwrap().to_string();
    let r = api_client().get(app.url(&format!("/self-service/errors?id={err_id}"))).send().await.unwrap();
    assert_eq!(r.status(), 200, "a stored error is readable");

    let flows = count(&app, "flows", "1 = 1").await;
    let sessions = count(&app, "sessions", "1 = 1").await;
    let secrets = count(&app, "kv", "key LIKE 'secret:%'").await;
    assert!(flows >= 12 && sessions >= 2, "flows {flows}, sessions {sessions}");
    assert_eq!(count(&app, "kv", "key LIKE 'error:%'").await, 1);
    assert!(count(&app, "rate_limits", "1 = 1").await >= 1);

    // Nothing has expired yet: nothing is deleted.
    let n = app.engine.cleanup_expired().await.unwrap();
    assert_eq!(n, Default::default(), "nothing expired yet");
    // Past the error lifespan and the longest rate-limit window (1 h) only: the error and the
    // counters go; flows and sessions are within keep_expired.
    app.clock.advance(3601);
    let n = app.engine.cleanup_expired().await.unwrap();
    assert_eq!((n.kv, n.flows, n.sessions), (1, 0, 0), "{n:?}");
    assert!(n.rate_limits >= 1, "{n:?}");
    assert_eq!(count(&app, "rate_limits", "1 = 1").await, 0);
    let r = api_client().get(app.url(&format!("/self-service/errors?id={err_id}"))).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // Thirty days later: everything that expired is gone, in batches of three.
    app.clock.advance(30 * 24 * 3600);
    let live = api_client().get(app.url("/self-service/login/api")).send().await.unwrap();
    let live: Value = live.json().await.unwrap();
    let n = app.engine.cleanup_expired().await.unwrap();
    assert_eq!(i64::try_from(n.flows).unwrap(), flows, "{n:?}");
    assert_eq!(i64::try_from(n.sessions).unwrap(), sessions, "{n:?}");
    assert_eq!(count(&app, "flows", "1 = 1").await, 1, "the live flow stays");
    assert_eq!(count(&app, "sessions", "1 = 1").await, 0);
    assert_eq!(count(&app, "rate_limits", "1 = 1").await, 0);
    assert_eq!(count(&app, "kv", "key LIKE 'secret:%'").await, secrets, "server secrets never expire");
    let r = api_client()
        .get(app.url(&format!("/self-service/login/flows?id={}", live["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = api_client().get(app.url("/sessions/whoami")).header("X-Session-Token", &token).send().await.unwrap();
    assert_eq!(r.status(), 401);
}
both_dbs!(cleanup_deletes_expired_rows);

/// PostgreSQL: while another node holds the cleanup lock, a run deletes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_one_node_at_a_time_postgres() {
    if pg_admin_url().is_none() {
        return;
    }
    let app = spawn_app_with(Db::Postgres, |c| c.cleanup.enabled = false).await;
    for _ in 0..3 {
        api_client().get(app.url("/self-service/login/api")).send().await.unwrap();
    }
    app.clock.advance(30 * 24 * 3600);
    let pool = sqlx::PgPool::connect(&app.dsn).await.unwrap();
    let mut other = pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)").bind(idflow_store::CLEANUP_LOCK_KEY).execute(&mut *other).await.unwrap();
    let n = app.engine.cleanup_expired().await.unwrap();
    assert_eq!(n, Default::default(), "another node is cleaning");
    assert_eq!(count(&app, "flows", "1 = 1").await, 3);
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(idflow_store::CLEANUP_LOCK_KEY)
        .execute(&mut *other)
        .await
        .unwrap();
    let n = app.engine.cleanup_expired().await.unwrap();
    assert_eq!(n.flows, 3);
    assert_eq!(count(&app, "flows", "1 = 1").await, 0);
}
