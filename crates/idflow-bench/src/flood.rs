//! `flood`: unauthenticated requests that used to grow the database without bound (flow
//! creations, error-page reads with random ids, browser errors that store an error record)
//! against a running server, sampling the database's row counts and size while it runs. With
//! the cleanup worker the size levels off at roughly rate × (lifespan + `cleanup.keep_expired`);
//! without it, it grows linearly. Works against SQLite (file size from `page_count ×
//! page_size`) and PostgreSQL (`pg_database_size`, plus the tables' own share: the sum of
//! `pg_total_relation_size` over the sampled tables, indexes and TOAST included). Figures in
//! BENCHMARKS.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Options of one flood run.
pub struct FloodOpts {
    /// Public base URL of the server under test.
    pub target: String,
    /// The server's database, read for row counts and size.
    pub database: String,
    pub duration: Duration,
    pub concurrency: usize,
    pub sample_every: Duration,
}

/// One sample of the database.
struct Sample {
    counts: Vec<(&'static str, i64)>,
    /// The whole database (SQLite: the file; PostgreSQL: `pg_database_size`).
    size: i64,
    /// PostgreSQL only: the sampled tables with their indexes and TOAST.
    tables: Option<i64>,
}

/// Row counts and size of the database.
async fn sample(database: &str) -> anyhow::Result<Sample> {
    const TABLES: [&str; 4] = ["flows", "kv", "rate_limits", "sessions"];
    let mut counts = vec![];
    if database.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(database).await?;
        let mut tables = 0i64;
        for t in TABLES {
            let n: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {t}"))).fetch_one(&pool).await?;
            counts.push((t, n));
            let bytes: i64 =
                sqlx::query_scalar("SELECT pg_total_relation_size($1::regclass)").bind(t).fetch_one(&pool).await?;
            tables += bytes;
        }
        let size = sqlx::query_scalar("SELECT pg_database_size(current_database())").fetch_one(&pool).await?;
        pool.close().await;
        Ok(Sample { counts, size, tables: Some(tables) })
    } else {
        let pool = sqlx::SqlitePool::connect(database).await?;
        for t in TABLES {
            let n: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {t}"))).fetch_one(&pool).await?;
            counts.push((t, n));
        }
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(&pool).await?;
        let page: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(&pool).await?;
        pool.close().await;
        Ok(Sample { counts, size: pages * page, tables: None })
    }
}

fn mib(bytes: i64) -> String {
    let m = bytes as f64 / (1024.0 * 1024.0);
    format!("{m:.1} MiB")
}

/// Run the flood and print one line per sample.
pub async fn run(o: FloodOpts) -> anyhow::Result<()> {
    let base = o.target.trim_end_matches('/').to_string();
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + o.duration;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let mut workers = vec![];
    for w in 0..o.concurrency.max(1) {
        let (client, base, sent, failed) = (client.clone(), base.clone(), sent.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            let mut i = w;
            while Instant::now() < until {
                let id = uuid::Uuid::new_v4();
                let path = match i % 5 {
                    0 => "/self-service/login/api".to_string(),
                    1 => "/self-service/registration/api".to_string(),
                    2 => format!("/self-service/errors?id={id}"),
                    3 => format!("/ui/error?id={id}"),
                    // A browser whose flow is refused (a foreign return_to): an error record
                    // and a redirect to the error page.
                    _ => format!("/self-service/login/browser?return_to=https%3A%2F%2Fevil-{id}.example.com%2F"),
                };
                i += 1;
                match client.get(format!("{base}{path}")).send().await {
                    Ok(r) if r.status().is_server_error() => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    let pg = o.database.starts_with("postgres");
    if pg {
        println!(
            "| elapsed | requests | 5xx/errors | flows | kv (errors) | rate_limits | sessions | database size | these tables |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    } else {
        println!("| elapsed | requests | 5xx/errors | flows | kv (errors) | rate_limits | sessions | database size |");
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    }
    loop {
        let s = sample(&o.database).await?;
        let c = |t: &str| s.counts.iter().find(|(n, _)| *n == t).map_or(0, |(_, v)| *v);
        let tables = s.tables.map(|t| format!(" {} |", mib(t))).unwrap_or_default();
        println!(
            "| {:>4} s | {} | {} | {} | {} | {} | {} | {} |{tables}",
            started.elapsed().as_secs(),
            sent.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
            c("flows"),
            c("kv"),
            c("rate_limits"),
            c("sessions"),
            mib(s.size),
        );
        if Instant::now() >= until {
            break;
        }
        tokio::time::sleep(
            o.sample_every.min(until.saturating_duration_since(Instant::now()) + Duration::from_millis(50)),
        )
        .await;
    }
    for w in workers {
        let _ = w.await;
    }
    Ok(())
}
