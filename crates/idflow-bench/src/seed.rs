//! `idflow-bench seed`: fill a database with N identities, fast.
//!
//! Goes through the same code as `idflow identities import` (the engine's admin create: schema
//! validation, identifier and address derivation, one `Store::commit` per identity), with the
//! password hashed ONCE and imported as `hashed_password`, so seeding costs inserts only.
//! `--concurrency` commits run at once. Seeded addresses are `seed-<i>@example.com`.
//! [`seed_to`] (the `seed` and `scale` subcommands) uses that path for the first identity and
//! a bulk copy of it for the rest (see there).

use anyhow::Context;
use idflow_core::model::{Credential, Identity, RecoveryAddress, VerifiableAddress};
use idflow_core::selfservice::Engine;
use idflow_core::selfservice::identities::IdentityInput;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

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
///
/// The first identity goes through the engine (`admin_create_identity`, as an import would);
/// the rest are copies of it (new ids, `seed-<i>@example.com` in the traits, identifiers and
/// addresses, the same prehashed password) written with multi-row INSERTs, 1000 identities per
/// statement and 10 000 per transaction, in exactly the encoding the store uses. That is what
/// makes 10^6 identities a matter of a minute or two instead of the ~10 minutes one engine
/// commit per identity takes.
/// Any one identity of the database (the template for bulk copies, the subject of micro
/// measurements).
pub async fn first_identity(engine: &Engine) -> anyhow::Result<Identity> {
    engine
        .store
        .list_identities(&Default::default(), None, 1)
        .await?
        .into_iter()
        .next()
        .context("no identity in the database")
}

pub async fn seed_to(dsn: &str, total: u64, concurrency: usize) -> anyhow::Result<()> {
    let engine = engine(dsn, u32::try_from(concurrency.clamp(2, 64)).unwrap_or(16)).await?;
    let have = count(&engine).await?;
    if have >= total {
        eprintln!("database already holds {have} identities (>= {total})");
        return Ok(());
    }
    let t0 = Instant::now();
    let mut have = have;
    if have == 0 {
        seed(engine.clone(), 0, 1, 1, true).await?;
        have = 1;
    }
    let template = first_identity(&engine).await?;
    let n = total - have;
    eprintln!("seeding {n} identities (from {have} to {total}) …");
    if dsn.starts_with("sqlite:") {
        let store = idflow_store::SqliteStore::connect(dsn, &idflow_store::PoolConfig::default()).await?;
        bulk_sqlite(store.pool(), &template, have, total).await?;
        // Settle the bulk load before measuring: fold the WAL into the database file.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(store.pool()).await?;
    } else {
        let store = idflow_store::PgStore::connect(dsn, &idflow_store::PoolConfig::default()).await?;
        bulk_pg(store.pool(), &template, have, total).await?;
        // Settle the bulk load before measuring, as autovacuum would in a running system:
        // fresh planner statistics and visibility maps, the dirty pages written out (without
        // this, the first cells after a bulk load of 10^5 ran at a tenth of their speed).
        sqlx::query("VACUUM ANALYZE").execute(store.pool()).await?;
        sqlx::query("CHECKPOINT").execute(store.pool()).await?;
    }
    eprintln!("seeded {n} identities at {:.0}/s", n as f64 / t0.elapsed().as_secs_f64().max(1e-9));
    Ok(())
}

/// A copy of `t` as identity number `i`.
fn copy_of(t: &Identity, i: u64) -> Identity {
    let old = t.traits["email"].as_str().unwrap_or_default().to_string();
    let email = format!("seed-{i}@example.com");
    let mut c = t.clone();
    c.id = Uuid::new_v4();
    c.traits["email"] = json!(email);
    c.traits["name"]["last"] = json!(i.to_string());
    for cred in c.credentials.values_mut() {
        cred.id = Uuid::new_v4();
        for ident in cred.identifiers.iter_mut() {
            if *ident == old {
                ident.clone_from(&email);
            }
        }
    }
    for a in c.verifiable_addresses.iter_mut() {
        a.id = Uuid::new_v4();
        if a.value == old {
            a.value.clone_from(&email);
        }
    }
    for a in c.recovery_addresses.iter_mut() {
        a.id = Uuid::new_v4();
        if a.value == old {
            a.value.clone_from(&email);
        }
    }
    c
}

fn ts(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

const ROWS_PER_STATEMENT: u64 = 1000;
const ROWS_PER_TRANSACTION: u64 = 10_000;

macro_rules! bulk_insert {
    ($name:ident, $db:ty) => {
        async fn $name(pool: &sqlx::Pool<$db>, t: &Identity, from: u64, to: u64) -> anyhow::Result<()> {
            let mut next = from;
            let mut last_report = Instant::now();
            while next < to {
                let tx_end = (next + ROWS_PER_TRANSACTION).min(to);
                let mut tx = pool.begin().await?;
                while next < tx_end {
                    let end = (next + ROWS_PER_STATEMENT).min(tx_end);
                    let batch: Vec<Identity> = (next..end).map(|i| copy_of(t, i)).collect();
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO identities (id, schema_id, state, state_changed_at, traits, metadata_public, metadata_admin, external_id, version, created_at, updated_at) ",
                    );
                    q.push_values(batch.iter(), |mut b, i| {
                        b.push_bind(i.id)
                            .push_bind(i.schema_id.clone())
                            .push_bind(i.state.as_str())
                            .push_bind(i.state_changed_at.map(ts))
                            .push_bind(i.traits.to_string())
                            .push_bind(i.metadata_public.to_string())
                            .push_bind(i.metadata_admin.to_string())
                            .push_bind(i.external_id.clone())
                            .push_bind(i.version)
                            .push_bind(ts(i.created_at))
                            .push_bind(ts(i.updated_at));
                    });
                    q.build().execute(&mut *tx).await?;
                    let creds: Vec<(Uuid, &Credential)> =
                        batch.iter().flat_map(|i| i.credentials.values().map(move |c| (i.id, c))).collect();
                    if !creds.is_empty() {
                        let mut q = sqlx::QueryBuilder::<$db>::new(
                            "INSERT INTO credentials (id, identity_id, kind, config, version, created_at, updated_at) ",
                        );
                        q.push_values(creds.iter(), |mut b, (iid, c)| {
                            b.push_bind(c.id)
                                .push_bind(*iid)
                                .push_bind(c.kind.as_str())
                                .push_bind(c.config.to_string())
                                .push_bind(c.version)
                                .push_bind(ts(c.created_at))
                                .push_bind(ts(c.updated_at));
                        });
                        q.build().execute(&mut *tx).await?;
                    }
                    let idents: Vec<(Uuid, &Credential, &String)> =
                        creds.iter().flat_map(|(iid, c)| c.identifiers.iter().map(move |x| (*iid, *c, x))).collect();
                    if !idents.is_empty() {
                        let mut q = sqlx::QueryBuilder::<$db>::new(
                            "INSERT INTO credential_identifiers (kind, identifier, identity_id, credential_id) ",
                        );
                        q.push_values(idents.iter(), |mut b, (iid, c, x)| {
                            b.push_bind(c.kind.as_str()).push_bind((*x).clone()).push_bind(*iid).push_bind(c.id);
                        });
                        q.build().execute(&mut *tx).await?;
                    }
                    let va: Vec<(Uuid, &VerifiableAddress)> =
                        batch.iter().flat_map(|i| i.verifiable_addresses.iter().map(move |a| (i.id, a))).collect();
                    if !va.is_empty() {
                        let mut q = sqlx::QueryBuilder::<$db>::new(
                            "INSERT INTO verifiable_addresses (id, identity_id, via, value, verified, status, verified_at, created_at, updated_at) ",
                        );
                        q.push_values(va.iter(), |mut b, (iid, a)| {
                            b.push_bind(a.id)
                                .push_bind(*iid)
                                .push_bind(a.via.clone())
                                .push_bind(a.value.clone())
                                .push_bind(a.verified)
                                .push_bind(a.status.clone())
                                .push_bind(a.verified_at.map(ts))
                                .push_bind(ts(a.created_at))
                                .push_bind(ts(a.updated_at));
                        });
                        q.build().execute(&mut *tx).await?;
                    }
                    let ra: Vec<(Uuid, &RecoveryAddress)> =
                        batch.iter().flat_map(|i| i.recovery_addresses.iter().map(move |a| (i.id, a))).collect();
                    if !ra.is_empty() {
                        let mut q = sqlx::QueryBuilder::<$db>::new(
                            "INSERT INTO recovery_addresses (id, identity_id, via, value, created_at, updated_at) ",
                        );
                        q.push_values(ra.iter(), |mut b, (iid, a)| {
                            b.push_bind(a.id)
                                .push_bind(*iid)
                                .push_bind(a.via.clone())
                                .push_bind(a.value.clone())
                                .push_bind(ts(a.created_at))
                                .push_bind(ts(a.updated_at));
                        });
                        q.build().execute(&mut *tx).await?;
                    }
                    next = end;
                }
                tx.commit().await?;
                if last_report.elapsed().as_secs() >= 10 {
                    last_report = Instant::now();
                    eprintln!("  seeded up to {next}/{to}");
                }
            }
            Ok(())
        }
    };
}

bulk_insert!(bulk_sqlite, sqlx::Sqlite);
bulk_insert!(bulk_pg, sqlx::Postgres);
