//! `idflow-bench seed`: fill a database with N identities, fast.
//!
//! Goes through the same code as `idflow identities import` (the engine's admin create: schema
//! validation, identifier and address derivation, one `Store::commit` per identity), with the
//! password hashed ONCE and imported as `hashed_password`, so seeding costs inserts only.
//! `--concurrency` commits run at once (PostgreSQL uses them; SQLite serialises the writes
//! but overlaps the validation). Seeded addresses are `seed-<i>@example.com` from `--start`.

use anyhow::Context;
use idflow_core::selfservice::Engine;
use idflow_core::selfservice::identities::IdentityInput;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// Open `dsn` (migrating it) with the server's own wiring and return the engine.
pub async fn engine(dsn: &str, max_connections: u32) -> anyhow::Result<Arc<Engine>> {
    let mut cfg = idflow_core::config::Config::load(None, std::iter::empty::<(String, String)>())
        .map_err(|e| anyhow::anyhow!("default configuration: {}", e.0))?;
    cfg.dsn = Some(dsn.to_string());
    cfg.database.max_connections = max_connections;
    // Offline use: bind to ephemeral ports, never serve.
    cfg.serve.public.port = Some(0);
    cfg.serve.admin.port = Some(0);
    cfg.serve.public.host = Some("127.0.0.1".into());
    cfg.serve.admin.host = Some("127.0.0.1".into());
    Ok(idflow_server::app::Application::build(cfg).await?.engine())
}

/// Number of identities in the database.
pub async fn count(engine: &Engine) -> anyhow::Result<u64> {
    Ok(engine.store.count_identities().await?)
}

/// Insert `n` identities numbered from `start`. Returns the rate (identities per second).
pub async fn seed(engine: Arc<Engine>, start: u64, n: u64, concurrency: usize, quiet: bool) -> anyhow::Result<f64> {
    let hashed = idflow_core::password::hash(&engine.cfg.hashers, "seed-Password-0")
        .map_err(|e| anyhow::anyhow!("hashing the seed password: {e}"))?;
    let t0 = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let mut next = start;
    let end = start + n;
    let mut done = 0u64;
    let mut last_report = Instant::now();
    while next < end || !set.is_empty() {
        while next < end && set.len() < concurrency.max(1) {
            let i = next;
            next += 1;
            let engine = engine.clone();
            let body = json!({
                "traits": {"email": format!("seed-{i}@example.com"), "name": {"first": "Seed", "last": format!("{i}")}},
                "credentials": {"password": {"config": {"hashed_password": hashed}}},
            });
            set.spawn(async move {
                let input: IdentityInput = serde_json::from_value(body)?;
                engine
                    .admin_create_identity(input)
                    .await
                    .map_err(|e| anyhow::anyhow!("seed identity {i}: {}", e.reason))?;
                anyhow::Ok(())
            });
        }
        if let Some(r) = set.join_next().await {
            r.context("seed task")??;
            done += 1;
            if !quiet && last_report.elapsed().as_secs() >= 10 {
                last_report = Instant::now();
                eprintln!("  seeded {done}/{n} ({:.0}/s)", done as f64 / t0.elapsed().as_secs_f64().max(1e-9));
            }
        }
    }
    Ok(n as f64 / t0.elapsed().as_secs_f64().max(1e-9))
}

/// Seed until the database holds at least `total` identities.
pub async fn seed_to(dsn: &str, total: u64, concurrency: usize) -> anyhow::Result<()> {
    let engine = engine(dsn, u32::try_from(concurrency.clamp(2, 64)).unwrap_or(16)).await?;
    let have = count(&engine).await?;
    if have >= total {
        eprintln!("database already holds {have} identities (>= {total})");
        return Ok(());
    }
    let n = total - have;
    eprintln!("seeding {n} identities (from {have} to {total}) …");
    let rate = seed(engine, have, n, concurrency, false).await?;
    eprintln!("seeded {n} identities at {rate:.0}/s");
    Ok(())
}
