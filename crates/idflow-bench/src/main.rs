//! `idflow-bench`: a small closed-loop HTTP load generator for idflow's self-service API, and
//! the driver that produces the figures in BENCHMARKS.md. Not part of CI.
//!
//! ```sh
//! cargo build --release -p idflow-server -p idflow-bench
//! target/release/idflow-bench settings --server target/release/idflow --duration 10s
//! ```
//!
//! `settings` starts `idflow serve` itself (fresh SQLite file, release binary), seeds one user
//! per worker, and measures each scenario at each concurrency: throughput, p50/p99 latency,
//! error rate, and the server's peak RSS; plus the bare argon2id cost with the server's
//! parameters so the password figure reads as overhead over the hash.
//!
//! `peers` runs the same client against idflow, django-allauth and better-auth side by side
//! (see `peers.rs` and `bench/run-peers.sh`); `seed` fills a database with N identities;
//! `flood` floods a running server with unauthenticated requests and samples its database size;
//! `scale` measures idflow with 10^3 … 10^6 identities in the database (`bench/run-scale.sh`).

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod flood;
mod micro;
mod peers;
mod scale;
mod seed;

#[derive(Parser)]
#[command(name = "idflow-bench")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Settings-flow benchmark against a server this command starts.
    Settings {
        /// The idflow binary to start (use the release build).
        #[arg(long, default_value = "target/release/idflow")]
        server: String,
        /// Duration of each measurement, e.g. 10s.
        #[arg(long, default_value = "10s")]
        duration: String,
        /// Concurrency levels.
        #[arg(long, value_delimiter = ',', default_value = "1,32")]
        concurrency: Vec<usize>,
        /// Scenarios to run (create_fetch, get, profile, password, whoami, totp_start).
        #[arg(long, value_delimiter = ',', default_value = "create_fetch,get,profile,password,whoami,totp_start")]
        scenarios: Vec<String>,
        /// Database URL (default: a fresh SQLite file in a temp dir).
        #[arg(long)]
        database: Option<String>,
    },
    /// Drive an already running server (no process management).
    Drive {
        #[arg(long)]
        target: String,
        #[arg(long, default_value = "10s")]
        duration: String,
        #[arg(long, value_delimiter = ',', default_value = "1,32")]
        concurrency: Vec<usize>,
        #[arg(long, value_delimiter = ',', default_value = "create_fetch,get,profile,password,whoami,totp_start")]
        scenarios: Vec<String>,
    },
    /// The bare argon2id cost with the default parameters (hashes per second on one core).
    Argon2 {
        #[arg(long, default_value_t = 50)]
        iterations: u32,
    },
    /// idflow side by side with django-allauth and better-auth (see bench/run-peers.sh).
    Peers {
        /// The idflow binary to start (the dist build, as bench/run-peers.sh makes it).
        #[arg(long, default_value = "target/bench/dist/idflow")]
        server: String,
        /// A second idflow binary to measure alongside (e.g. the build before a change); it
        /// runs right after idflow in the interleaved order.
        #[arg(long)]
        baseline: Option<String>,
        /// The peers' directory (bench/peers: the Django project, the better-auth server, .venv).
        #[arg(long)]
        peers_dir: Option<std::path::PathBuf>,
        /// Python of the allauth venv (default: <peers-dir>/.venv/bin/python).
        #[arg(long)]
        python: Option<String>,
        #[arg(long, default_value = "node")]
        node: String,
        /// Identities seeded into each system before the run.
        #[arg(long, default_value_t = 1000)]
        identities: u64,
        /// Worker processes for gunicorn and the node cluster (default: one per core, or one
        /// per CPU of `--server-cpus`).
        #[arg(long)]
        workers: Option<usize>,
        /// Pinned mode: run every server under test on these CPUs only (`taskset -c` list,
        /// e.g. `0`), and the load generator on `--client-cpus`.
        #[arg(long, requires = "client_cpus")]
        server_cpus: Option<String>,
        /// Pinned mode: the CPUs of the load generator (this process), e.g. `1`.
        #[arg(long, requires = "server_cpus")]
        client_cpus: Option<String>,
        /// Systems, in the interleaving order.
        #[arg(long, value_delimiter = ',', default_value = "idflow,allauth,better-auth")]
        systems: Vec<String>,
        #[arg(long, value_delimiter = ',', default_value = peers::PEER_SCENARIOS)]
        scenarios: Vec<String>,
        #[arg(long, value_delimiter = ',', default_value = "1,32")]
        concurrency: Vec<usize>,
        #[arg(long, default_value = "10s")]
        duration: String,
        #[arg(long, default_value = "1s")]
        warmup: String,
        /// Rounds of the interleaved sequence per cell (medians are reported).
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        /// Open-loop rate for idflow's flow-fetch latency check (0 skips it).
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        /// Also write the markdown report to this file.
        #[arg(long)]
        out: Option<String>,
        /// Scratch directory for the databases and logs (default: a new temp dir, removed after).
        #[arg(long)]
        work_dir: Option<std::path::PathBuf>,
    },
    /// Flood a running server with unauthenticated flow creations and error reads while
    /// sampling its database's row counts and size (see flood.rs, BENCHMARKS.md).
    Flood {
        /// Public base URL of the running server.
        #[arg(long)]
        target: String,
        /// The server's database URL (read for row counts and size).
        #[arg(long)]
        database: String,
        #[arg(long, default_value = "10m")]
        duration: String,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value = "30s")]
        sample_every: String,
    },
    /// Micro-measurements of the hot spots (QR rendering, identity load, authentication).
    Micro {
        /// Database URL (default: a fresh SQLite file).
        #[arg(long)]
        database: Option<String>,
        #[arg(long, default_value_t = 2000)]
        iterations: u32,
    },
    /// Fill a database with identities (one password hash, reused), through the store.
    Seed {
        #[arg(long)]
        database: String,
        /// Total number of identities the database should hold afterwards.
        #[arg(long)]
        count: u64,
        /// Concurrent inserts.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// idflow's per-operation cost with growing identity tables (seeds as it goes).
    Scale {
        #[arg(long, default_value = "target/bench/dist/idflow")]
        server: String,
        /// Database URL (reused across sizes; it only grows).
        #[arg(long)]
        database: String,
        /// Label for the table (e.g. SQLite, PostgreSQL).
        #[arg(long, default_value = "")]
        label: String,
        #[arg(long, value_delimiter = ',', default_value = "1000,100000,1000000")]
        sizes: Vec<u64>,
        #[arg(long, value_delimiter = ',', default_value = "create_fetch,get,profile,whoami")]
        scenarios: Vec<String>,
        #[arg(long, value_delimiter = ',', default_value = "1,32")]
        concurrency: Vec<usize>,
        #[arg(long, default_value = "10s")]
        duration: String,
        #[arg(long, default_value_t = 8)]
        seed_concurrency: usize,
        /// Also append the markdown table to this file.
        #[arg(long)]
        out: Option<String>,
    },
}

/// One measured run.
#[derive(Debug, Clone)]
pub struct Stats {
    pub scenario: String,
    pub concurrency: usize,
    pub requests: u64,
    pub errors: u64,
    pub secs: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Stats {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.secs
    }
    pub fn row(&self) -> String {
        format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2}% |",
            self.scenario,
            self.concurrency,
            self.rps(),
            self.p50_ms,
            self.p99_ms,
            if self.requests == 0 { 0.0 } else { 100.0 * self.errors as f64 / self.requests as f64 }
        )
    }
}

/// A signed-in benchmark user with an open settings flow.
struct User {
    token: String,
    flow: String,
    email: String,
    step: u64,
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().pool_max_idle_per_host(256).redirect(reqwest::redirect::Policy::none()).build()?)
}

async fn json_ok(resp: reqwest::Response) -> anyhow::Result<Value> {
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("HTTP {status}: {v}");
    }
    Ok(v)
}

async fn new_user(c: &reqwest::Client, base: &str, i: usize) -> anyhow::Result<User> {
    let email = format!("bench-{}-{i}@example.com", uuid::Uuid::new_v4().simple());
    let flow = json_ok(c.get(format!("{base}/self-service/registration/api")).send().await?).await?;
    let id = flow["id"].as_str().context("flow id")?;
    let r = json_ok(
        c.post(format!("{base}/self-service/registration?flow={id}"))
            .json(&json!({"method": "password", "password": "bench-Password-0", "traits": {"email": email, "name": {"first": "B", "last": "U"}}}))
            .send()
            .await?,
    )
    .await?;
    let token = r["session_token"].as_str().context("session token (is the session hook on?)")?.to_string();
    let flow =
        json_ok(c.get(format!("{base}/self-service/settings/api")).header("X-Session-Token", &token).send().await?)
            .await?;
    Ok(User { token, flow: flow["id"].as_str().unwrap_or_default().to_string(), email, step: 0 })
}

/// One request (or request pair) of a scenario. Returns whether it succeeded.
async fn step(c: &reqwest::Client, base: &str, scenario: &str, u: &mut User) -> bool {
    u.step += 1;
    let tok = u.token.clone();
    let res: anyhow::Result<()> = async {
        match scenario {
            "create_fetch" => {
                let f = json_ok(c.get(format!("{base}/self-service/settings/api")).header("X-Session-Token", &tok).send().await?).await?;
                let id = f["id"].as_str().context("id")?;
                json_ok(c.get(format!("{base}/self-service/settings/flows?id={id}")).header("X-Session-Token", &tok).send().await?).await?;
            }
            "get" => {
                json_ok(
                    c.get(format!("{base}/self-service/settings/flows?id={}", u.flow)).header("X-Session-Token", &tok).send().await?,
                )
                .await?;
            }
            "profile" => {
                json_ok(
                    c.post(format!("{base}/self-service/settings?flow={}", u.flow))
                        .header("X-Session-Token", &tok)
                        .json(&json!({"method": "profile", "traits": {"email": u.email, "name": {"first": format!("N{}", u.step), "last": "U"}}}))
                        .send()
                        .await?,
                )
                .await?;
            }
            "password" => {
                json_ok(
                    c.post(format!("{base}/self-service/settings?flow={}", u.flow))
                        .header("X-Session-Token", &tok)
                        .json(&json!({"method": "password", "password": format!("bench-Password-{}", u.step % 2 + 1)}))
                        .send()
                        .await?,
                )
                .await?;
            }
            "whoami" => {
                json_ok(c.get(format!("{base}/sessions/whoami")).header("X-Session-Token", &tok).send().await?).await?;
            }
            "totp_start" => {
                let f = json_ok(c.get(format!("{base}/v1/flows/settings")).bearer_auth(&tok).send().await?).await?;
                let id = f["id"].as_str().context("id")?;
                json_ok(
                    c.post(format!("{base}/v1/flows/settings/{id}:submit"))
                        .bearer_auth(&tok)
                        .json(&json!({"method": "totp", "body": {}}))
                        .send()
                        .await?,
                )
                .await?;
            }
            other => bail!("unknown scenario {other}"),
        }
        Ok(())
    }
    .await;
    res.is_ok()
}

/// Closed-loop load: `users.len()` workers, each issuing requests back to back.
pub async fn drive(
    base: &str,
    scenario: &str,
    users: Vec<(reqwest::Client, usize)>,
    dur: Duration,
) -> anyhow::Result<Stats> {
    let concurrency = users.len();
    let c0 = client()?;
    let mut prepared = vec![];
    for (i, _) in users.into_iter().enumerate() {
        prepared.push(new_user(&c0, base, i).await?);
    }
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = vec![];
    for mut u in prepared {
        let c = c0.clone();
        let base = base.to_string();
        let scenario = scenario.to_string();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).ok();
            while Instant::now() < deadline {
                let t = Instant::now();
                let ok = step(&c, &base, &scenario, &mut u).await;
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(h) = h.as_mut() {
                    let _ = h.record(u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX).max(1));
                }
            }
            h
        }));
    }
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for t in tasks {
        if let Some(h) = t.await? {
            all.add(h)?;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(Stats {
        scenario: scenario.to_string(),
        concurrency,
        requests: all.len(),
        errors: errors.load(Ordering::Relaxed),
        secs,
        p50_ms: all.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: all.value_at_quantile(0.99) as f64 / 1000.0,
    })
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

struct Server {
    child: Child,
    base: String,
    _dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn start_server(bin: &str, database: Option<&str>) -> anyhow::Result<Server> {
    start_server_on(bin, database, None).await
}

/// `start_server`, with the process (all its threads) bound to the CPU list `cpus`
/// (`taskset -c`, e.g. `0` or `0-1`) when given: it then sizes its thread pools to those CPUs.
async fn start_server_on(bin: &str, database: Option<&str>, cpus: Option<&str>) -> anyhow::Result<Server> {
    let dir = std::env::temp_dir().join(format!("idflow-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let (pp, ap) = (free_port()?, free_port()?);
    let base = format!("http://127.0.0.1:{pp}");
    let cfg = dir.join("config.yaml");
    // Generous limits: the benchmark measures throughput, not the abuse protections.
    std::fs::write(
        &cfg,
        format!(
            "serve:\n  public:\n    base_url: {base}/\nlog:\n  level: warn\nlimits:\n  login_attempts: 1000000000\n  second_factor_attempts: 1000000000\n"
        ),
    )?;
    let db = database.map(str::to_string).unwrap_or_else(|| format!("sqlite://{}/bench.db?mode=rwc", dir.display()));
    let mut cmd = match cpus {
        Some(list) => {
            let mut c = Command::new("taskset");
            c.args(["-c", list, bin]);
            c
        }
        None => Command::new(bin),
    };
    let child = cmd
        .args(["serve", "--dev", "--config"])
        .arg(&cfg)
        .args([
            "--database",
            &db,
            "--public-addr",
            &format!("127.0.0.1:{pp}"),
            "--admin-addr",
            &format!("127.0.0.1:{ap}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("could not start {bin}"))?;
    let c = client()?;
    for _ in 0..300 {
        if c.get(format!("{base}/health/alive")).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(Server { child, base, _dir: dir });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("server did not start")
}

fn parse_dur(s: &str) -> anyhow::Result<Duration> {
    idflow_core::config::parse_duration(s).map_err(|e| anyhow::anyhow!(e))
}

fn argon2_floor(iterations: u32) -> anyhow::Result<f64> {
    let cfg = idflow_core::password::HashersConfig::default();
    let t = Instant::now();
    for i in 0..iterations {
        idflow_core::password::hash(&cfg, &format!("bench-Password-{i}")).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(t.elapsed().as_secs_f64() * 1000.0 / f64::from(iterations))
}

const HEADER: &str = "| scenario | concurrency | req/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|";

async fn run_matrix(
    base: &str,
    scenarios: &[String],
    conc: &[usize],
    dur: Duration,
    pid: Option<u32>,
) -> anyhow::Result<()> {
    println!("{HEADER}");
    for s in scenarios {
        for &n in conc {
            let users = (0..n).map(|i| (reqwest::Client::new(), i)).collect();
            let st = drive(base, s, users, dur).await?;
            println!("{}", st.row());
        }
    }
    if let Some(pid) = pid {
        println!("\nserver RSS now: {} KiB, peak: {} KiB", rss_kib(pid).unwrap_or(0), peak_rss_kib(pid).unwrap_or(0));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Settings { server, duration, concurrency, scenarios, database } => {
            let dur = parse_dur(&duration)?;
            let srv = start_server(&server, database.as_deref()).await?;
            let pid = srv.child.id();
            tokio::time::sleep(Duration::from_millis(500)).await;
            println!("idle RSS after start: {} KiB", rss_kib(pid).unwrap_or(0));
            println!("bare argon2id (m=19456 KiB, t=2, p=1), one core: {:.1} ms per hash\n", argon2_floor(20)?);
            run_matrix(&srv.base, &scenarios, &concurrency, dur, Some(pid)).await
        }
        Cmd::Drive { target, duration, concurrency, scenarios } => {
            run_matrix(target.trim_end_matches('/'), &scenarios, &concurrency, parse_dur(&duration)?, None).await
        }
        Cmd::Argon2 { iterations } => {
            println!("bare argon2id (m=19456 KiB, t=2, p=1): {:.2} ms per hash", argon2_floor(iterations)?);
            Ok(())
        }
        Cmd::Peers {
            server,
            baseline,
            peers_dir,
            python,
            node,
            identities,
            workers,
            systems,
            scenarios,
            concurrency,
            duration,
            warmup,
            rounds,
            rate,
            out,
            work_dir,
            server_cpus,
            client_cpus,
        } => {
            let cores = match &server_cpus {
                Some(list) => peers::cpu_count(list)?,
                None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            };
            if let Some(list) = &client_cpus {
                peers::pin_self(list)?;
            }
            let tmp = std::env::temp_dir().join(format!("idflow-peers-{}", uuid::Uuid::new_v4().simple()));
            let keep = work_dir.is_some();
            let mut systems = systems;
            if baseline.is_some() && !systems.iter().any(|s| s == "idflow-baseline" || s == "baseline") {
                let at = systems.iter().position(|s| s == "idflow").map_or(0, |i| i + 1);
                systems.insert(at, "idflow-baseline".into());
            }
            let o = peers::PeerOpts {
                server,
                baseline,
                peers_dir: std::fs::canonicalize(peers_dir.unwrap_or_else(peers::default_peers_dir))?,
                python,
                node,
                identities,
                workers: workers.unwrap_or(cores).max(1),
                work_dir: work_dir.unwrap_or_else(|| tmp.clone()),
                server_cpus,
                client_cpus,
            };
            peers::check_tools(&o, &systems)?;
            let m = peers::MatrixOpts { systems, scenarios, concurrency, duration, warmup, rounds, rate, out };
            let res = peers::run_peers(o, m).await;
            if !keep {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            res
        }
        Cmd::Flood { target, database, duration, concurrency, sample_every } => {
            flood::run(flood::FloodOpts {
                target,
                database,
                duration: parse_dur(&duration)?,
                concurrency,
                sample_every: parse_dur(&sample_every)?,
            })
            .await
        }
        Cmd::Micro { database, iterations } => micro::run(database, iterations).await,
        Cmd::Seed { database, count, concurrency } => seed::seed_to(&database, count, concurrency).await,
        Cmd::Scale { server, database, label, sizes, scenarios, concurrency, duration, seed_concurrency, out } => {
            let table = scale::run_scale(scale::ScaleOpts {
                server,
                database,
                label,
                sizes,
                scenarios,
                concurrency,
                duration,
                seed_concurrency,
            })
            .await?;
            println!("{table}");
            if let Some(path) = out {
                use std::io::Write as _;
                let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
                f.write_all(table.as_bytes())?;
            }
            Ok(())
        }
    }
}
