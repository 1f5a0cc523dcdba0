//! `idflow-bench scale`: idflow's per-operation cost as the identity table grows.
//!
//! For each size (e.g. 10^3, 10^5, 10^6): top the database up to that many identities with
//! [`crate::seed`], start idflow on it, run the scenarios, stop it. The same database is
//! reused from one size to the next, so 10^6 costs one seeding pass, not three.

use crate::{Stats, drive, parse_dur, start_server};
use std::fmt::Write;
use std::time::Duration;

pub struct ScaleOpts {
    pub server: String,
    pub database: String,
    pub label: String,
    pub sizes: Vec<u64>,
    pub scenarios: Vec<String>,
    pub concurrency: Vec<usize>,
    pub duration: String,
    pub seed_concurrency: usize,
}

pub async fn run_scale(o: ScaleOpts) -> anyhow::Result<String> {
    let dur = parse_dur(&o.duration)?;
    let mut rows: Vec<(u64, Stats, u64)> = vec![];
    for &size in &o.sizes {
        crate::seed::seed_to(&o.database, size, o.seed_concurrency).await?;
        let srv = start_server(&o.server, Some(&o.database)).await?;
        let pid = srv.child.id();
        tokio::time::sleep(Duration::from_millis(500)).await;
        for s in &o.scenarios {
            for &n in &o.concurrency {
                let users = (0..n).map(|i| (reqwest::Client::new(), i)).collect();
                let st = drive(&srv.base, s, users, dur).await?;
                let hwm = crate::peak_rss_kib(pid).unwrap_or(0);
                eprintln!(
                    "[scale] {} {size:>8} {s:<12} c={n:<3} {:>8.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}",
                    o.label,
                    st.rps(),
                    st.p50_ms,
                    st.p99_ms,
                    st.errors
                );
                rows.push((size, st, hwm));
            }
        }
        drop(srv);
    }
    let mut out = String::new();
    let _ =
        writeln!(out, "| database | identities | scenario | conc. | req/s | p50 ms | p99 ms | errors | peak RSS MiB |");
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for (size, st, hwm) in &rows {
        let _ = writeln!(
            out,
            "| {} | {size} | {} | {} | {:.1} | {:.2} | {:.2} | {:.2}% | {:.1} |",
            o.label,
            st.scenario,
            st.concurrency,
            st.rps(),
            st.p50_ms,
            st.p99_ms,
            if st.requests == 0 { 0.0 } else { 100.0 * st.errors as f64 / st.requests as f64 },
            *hwm as f64 / 1024.0
        );
    }
    Ok(out)
}
