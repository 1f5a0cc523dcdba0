//! `multinode-load`: sustained mixed settings traffic on two idflow nodes sharing one
//! PostgreSQL, on loopback. Reports throughput, p50/p99/max latency and the failures per
//! operation. Not part of CI (see BENCHMARKS.md, "Two nodes on PostgreSQL" and "Soak").
//!
//! ```sh
//! createdb -h 127.0.0.1 -U postgres idflow_load      # any empty database
//! cargo build --release -p idflow-server -p idflow-bench
//! target/release/multinode-load --server target/release/idflow \
//!     --database postgres://postgres@127.0.0.1:5432/idflow_load --duration 5m
//! ```
//!
//! Every operation starts a settings flow on one node and continues it on the other, so each
//! request depends on state written by the other node. Traffic stops by itself after
//! `--duration` (default 5 minutes; `--duration 30s` for a quick run).
//!
//! With `--chaos` (the soak, `bench/run-soak.sh`) it also, at random moments drawn from a seeded
//! generator (`--seed`, printed): kills one node with SIGKILL (`--kill-every`), keeps it down
//! (`--down-for`) and restarts it on the same ports; terminates every PostgreSQL connection to
//! the load database (`--terminate-every`); and runs `--pg-restart-cmd` (e.g. `pg_ctl restart -m
//! immediate`, `--pg-restart-every`). Each event opens an outage window that closes `--grace`
//! after both nodes serve again; a transport error or a 503 inside a window counts as "during
//! chaos", any other unexpected answer (and any 500 anywhere) is a violation. `--abuse-rate`
//! adds one client signing in with random unknown identifiers (expects 400, then 429 from the
//! per-address limit, or 503 with `Retry-After` from the hashing queue). At the end every user
//! must sign in on both nodes with the last acknowledged password or one whose change was in
//! flight when something failed. Row counts, database size and node RSS are sampled every
//! `--sample-every`. The exit code is 1 on any violation or failed check.

use anyhow::{Context, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "multinode-load", args_override_self = true)]
struct Cli {
    /// The idflow binary (use the release build for real figures).
    #[arg(long, default_value = "target/release/idflow")]
    server: String,
    /// PostgreSQL URL of an existing (e.g. empty) database shared by both nodes.
    #[arg(long)]
    database: String,
    /// How long to drive traffic, e.g. 5m or 30s.
    #[arg(long, default_value = "5m")]
    duration: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    workers: usize,
    /// Users to spread the traffic over.
    #[arg(long, default_value_t = 64)]
    users: usize,
    /// argon2 memory in KiB for the nodes (default: the server's default, 19456).
    #[arg(long, default_value_t = 19456)]
    argon2_memory: u32,
    /// Chaos: kill -9 and restart nodes, terminate database connections, restart PostgreSQL.
    #[arg(long)]
    chaos: bool,
    /// Seed of the chaos schedule (default: from the clock; printed either way).
    #[arg(long)]
    seed: Option<u64>,
    /// Time between two node kills, drawn uniformly from MIN..MAX (e.g. 45s..120s), or "off".
    #[arg(long, default_value = "45s..120s")]
    kill_every: String,
    /// How long a killed node stays down before its restart (MIN..MAX).
    #[arg(long, default_value = "2s..6s")]
    down_for: String,
    /// Time between two terminations of all database connections (MIN..MAX), or "off".
    #[arg(long, default_value = "8m..12m")]
    terminate_every: String,
    /// Shell command that restarts PostgreSQL (e.g. pg_ctl restart -m immediate); unset: never.
    #[arg(long)]
    pg_restart_cmd: Option<String>,
    /// Time between two PostgreSQL restarts (MIN..MAX).
    #[arg(long, default_value = "25m..35m")]
    pg_restart_every: String,
    /// How long an outage window stays open after both nodes serve again.
    #[arg(long, default_value = "5s")]
    grace: String,
    /// Sign-ins per second with random unknown identifiers from one client (0 = none).
    #[arg(long, default_value_t = 0.0)]
    abuse_rate: f64,
    /// Interval of the resource samples (node RSS, database size, row counts).
    #[arg(long, default_value = "60s")]
    sample_every: String,
    /// `cleanup.interval` of the nodes (default: the server's).
    #[arg(long)]
    cleanup_interval: Option<String>,
    /// `cleanup.keep_expired` of the nodes (default: the server's).
    #[arg(long)]
    keep_expired: Option<String>,
    /// Lifespan of settings, login and registration flows (default: the server's).
    #[arg(long)]
    flow_lifespan: Option<String>,
    /// `limits.login_window` of the nodes: how long a failed sign-in counter per identifier
    /// lives (default: the server's).
    #[arg(long)]
    login_window: Option<String>,
}

fn dur(s: &str) -> anyhow::Result<Duration> {
    idflow_core::config::parse_duration(s).map_err(|e| anyhow::anyhow!("{s}: {e}"))
}

/// "45s..120s" (uniform in between), "30s" (fixed) or "off".
fn dur_range(s: &str) -> anyhow::Result<Option<(Duration, Duration)>> {
    if s == "off" || s == "0" {
        return Ok(None);
    }
    let (lo, hi) = match s.split_once("..") {
        Some((a, b)) => (dur(a)?, dur(b)?),
        None => (dur(s)?, dur(s)?),
    };
    if hi < lo {
        bail!("{s}: the maximum is below the minimum");
    }
    Ok(Some((lo, hi)))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A small seeded generator (splitmix64): the chaos schedule is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn between(&mut self, (lo, hi): (Duration, Duration)) -> Duration {
        let span = (hi - lo).as_millis() as u64;
        lo + Duration::from_millis(self.below(span + 1))
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One node: its ports and config stay the same across restarts.
struct NodeSpec {
    name: &'static str,
    public: String,
    args: Vec<String>,
    log: PathBuf,
}

/// The two nodes; a killed node is replaced by a new process with the same arguments.
struct Nodes {
    server: String,
    specs: Vec<NodeSpec>,
    children: Mutex<Vec<Option<Child>>>,
}

impl Nodes {
    fn spawn(&self, i: usize) -> anyhow::Result<u32> {
        let spec = &self.specs[i];
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&spec.log)?;
        let child = Command::new(&self.server)
            .args(&spec.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("could not start {}", self.server))?;
        let pid = child.id();
        lock(&self.children)[i] = Some(child);
        Ok(pid)
    }

    /// SIGKILL (std's `Child::kill`), then reap. Returns the pid that was killed.
    fn kill(&self, i: usize) -> Option<u32> {
        let mut children = lock(&self.children);
        let mut child = children[i].take()?;
        let pid = child.id();
        let _ = child.kill();
        let _ = child.wait();
        Some(pid)
    }

    fn pid(&self, i: usize) -> Option<u32> {
        lock(&self.children)[i].as_ref().map(Child::id)
    }

    /// Whether the process of node `i` has exited by itself.
    fn exited(&self, i: usize) -> bool {
        lock(&self.children)[i].as_mut().is_none_or(|c| !matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in lock(&self.children).iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn node_config(cli: &Cli, public_base: &str) -> String {
    let mut cfg = format!(
        "dsn: \"{}\"\ndev: true\nserve:\n  public: {{ base_url: \"{public_base}\" }}\nhashers:\n  argon2: {{ memory: {}, iterations: 2, parallelism: 1 }}\nlog: {{ level: warn }}\ndatabase: {{ max_connections: 32 }}\n",
        cli.database, cli.argon2_memory
    );
    // The users' sessions are as old as the run: keep password changes allowed throughout.
    let lifespan = cli.flow_lifespan.as_ref().map(|l| format!(", lifespan: {l}")).unwrap_or_default();
    cfg.push_str(&format!("selfservice:\n  flows:\n    settings: {{ privileged_session_max_age: 1000h{lifespan} }}\n"));
    if let Some(l) = &cli.flow_lifespan {
        cfg.push_str(&format!("    login: {{ lifespan: {l} }}\n    registration: {{ lifespan: {l} }}\n"));
    }
    let mut cleanup = vec![];
    if let Some(i) = &cli.cleanup_interval {
        cleanup.push(format!("interval: {i}"));
    }
    if let Some(k) = &cli.keep_expired {
        cleanup.push(format!("keep_expired: {k}"));
    }
    if !cleanup.is_empty() {
        cfg.push_str(&format!("cleanup: {{ {} }}\n", cleanup.join(", ")));
    }
    if let Some(w) = &cli.login_window {
        cfg.push_str(&format!("limits: {{ login_window: {w} }}\n"));
    }
    cfg
}

fn node_spec(cli: &Cli, dir: &Path, name: &'static str, base: Option<&str>) -> anyhow::Result<NodeSpec> {
    let (pp, ap) = (free_port()?, free_port()?);
    let public_base = base.map(str::to_string).unwrap_or_else(|| format!("http://127.0.0.1:{pp}/"));
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, node_config(cli, &public_base))?;
    let args = vec![
        "serve".to_string(),
        "-c".to_string(),
        path.to_string_lossy().into_owned(),
        "--public-addr".to_string(),
        format!("127.0.0.1:{pp}"),
        "--admin-addr".to_string(),
        format!("127.0.0.1:{ap}"),
    ];
    Ok(NodeSpec { name, public: format!("http://127.0.0.1:{pp}"), args, log: dir.join(format!("{name}.log")) })
}

/// Waits until node `i` answers: `GET /sessions/whoami` with `token` (a read of the shared
/// database) or, without one, `/health/ready`. None when it does not within `limit` or its
/// process exits.
async fn wait_serving(
    c: &reqwest::Client,
    nodes: &Nodes,
    i: usize,
    token: Option<&str>,
    limit: Duration,
) -> Option<Duration> {
    let t = Instant::now();
    let base = &nodes.specs[i].public;
    while t.elapsed() < limit {
        let req = match token {
            Some(tok) => c.get(format!("{base}/sessions/whoami")).header("X-Session-Token", tok),
            None => c.get(format!("{base}/health/ready")),
        };
        if req.timeout(Duration::from_secs(5)).send().await.is_ok_and(|r| r.status() == 200) {
            return Some(t.elapsed());
        }
        if nodes.exited(i) {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// What the load generator knows of a user's password: the last one a change was answered
/// 200 for, and the ones submitted since whose outcome it could not see (transport error, 5xx).
#[derive(Default)]
struct PwState {
    confirmed: String,
    in_flight: Vec<String>,
}

struct User {
    email: String,
    identity: uuid::Uuid,
    token: String,
    pw: Mutex<PwState>,
}

const FIRST_PASSWORD: &str = "Load-Test-Password-0";

async fn register(c: &reqwest::Client, base: &str, email: &str) -> anyhow::Result<User> {
    let flow: Value = c.get(format!("{base}/self-service/registration/api")).send().await?.json().await?;
    let r: Value = c
        .post(format!("{base}/self-service/registration?flow={}", flow["id"].as_str().unwrap_or_default()))
        .json(&json!({"method": "password", "password": FIRST_PASSWORD, "traits": {"email": email}}))
        .send()
        .await?
        .json()
        .await?;
    let token = r["session_token"].as_str().context("registration gave no session token")?.to_string();
    let identity = r["identity"]["id"].as_str().context("registration gave no identity id")?.parse()?;
    Ok(User {
        email: email.to_string(),
        identity,
        token,
        pw: Mutex::new(PwState { confirmed: FIRST_PASSWORD.into(), in_flight: vec![] }),
    })
}

const OPS: &[(&str, u32)] =
    &[("create_fetch", 25), ("profile", 30), ("whoami", 20), ("totp_start", 15), ("password", 10)];

/// The answer to one operation.
enum Outcome {
    /// The expected answer (its status).
    Ok(u16),
    /// Anything else: the status (0 = transport error), the node and the start of the body.
    Unexpected { status: u16, node: String, body: String },
}

async fn unexpected(r: reqwest::Response, node: &str) -> Outcome {
    let status = r.status().as_u16();
    let body: String = r.text().await.unwrap_or_default().chars().take(300).collect();
    Outcome::Unexpected { status, node: node.to_string(), body }
}

/// A transport error, with its chain of causes (e.g. "connection closed before message
/// completed" under reqwest's "error sending request").
fn transport(e: &reqwest::Error, node: &str) -> Outcome {
    let mut body = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        body.push_str(": ");
        body.push_str(&c.to_string());
        cause = c.source();
    }
    Outcome::Unexpected { status: 0, node: node.to_string(), body }
}

/// One operation of the mixed load: starts on node `a`, finishes on node `b`.
async fn run_op(c: &reqwest::Client, op: &str, a: &str, b: &str, u: &User, n: u64) -> Outcome {
    if op == "whoami" {
        return match c.get(format!("{b}/sessions/whoami")).header("X-Session-Token", &u.token).send().await {
            Ok(r) if r.status() == 200 => Outcome::Ok(200),
            Ok(r) => unexpected(r, b).await,
            Err(e) => transport(&e, b),
        };
    }
    let flow: Value =
        match c.get(format!("{a}/self-service/settings/api")).header("X-Session-Token", &u.token).send().await {
            Ok(r) if r.status() == 200 => match r.json().await {
                Ok(v) => v,
                Err(e) => return transport(&e, a),
            },
            Ok(r) => return unexpected(r, a).await,
            Err(e) => return transport(&e, a),
        };
    let id = flow["id"].as_str().unwrap_or_default().to_string();
    let submit = |body: Value| {
        c.post(format!("{b}/self-service/settings?flow={id}")).header("X-Session-Token", &u.token).json(&body).send()
    };
    let mut new_password = None;
    let (res, want) = match op {
        "create_fetch" => (
            c.get(format!("{b}/self-service/settings/flows?id={id}")).header("X-Session-Token", &u.token).send().await,
            200,
        ),
        "profile" => (
            submit(json!({"method": "profile", "traits": {"email": u.email, "name": {"first": format!("L{n}")}}}))
                .await,
            200,
        ),
        "totp_start" => (submit(json!({"method": "totp"})).await, 400),
        _ => {
            let pw = format!("Load-Test-Password-{n}-{}", uuid::Uuid::new_v4().simple());
            // In flight until an answer says otherwise.
            lock(&u.pw).in_flight.push(pw.clone());
            new_password = Some(pw.clone());
            (submit(json!({"method": "password", "password": pw})).await, 200)
        }
    };
    let out = match res {
        Ok(r) if r.status().as_u16() == want => Outcome::Ok(want),
        Ok(r) => unexpected(r, b).await,
        Err(e) => transport(&e, b),
    };
    if let Some(pw) = new_password {
        let mut st = lock(&u.pw);
        match &out {
            Outcome::Ok(_) => {
                st.confirmed = pw;
                st.in_flight.clear();
            }
            // A definite refusal (4xx): not applied.
            Outcome::Unexpected { status, .. } if (400..500).contains(status) => st.in_flight.retain(|p| *p != pw),
            // Transport error or 5xx: it may or may not have been committed.
            Outcome::Unexpected { .. } => {}
        }
    }
    out
}

/// After a password change that got no answer (transport error or 5xx): once the outage is
/// over, read the stored hash and tell which password it is. It must be the last acknowledged
/// one or one of those in flight (old or new, never neither, as in the crash loop).
async fn resolve(pool: &sqlx::PgPool, sh: &Shared, u: &User) {
    let t = Instant::now();
    while sh.windows.any_open() && t.elapsed() < Duration::from_secs(300) {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut stored = None;
    while stored.is_none() && t.elapsed() < Duration::from_secs(300) {
        let row: Result<String, _> =
            sqlx::query_scalar("SELECT config FROM credentials WHERE identity_id = $1 AND kind = 'password'")
                .bind(u.identity)
                .fetch_one(pool)
                .await;
        match row {
            Ok(cfg) => stored = Some(cfg),
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
    let Some(cfg) = stored else {
        sh.fail(format!("could not read the password of {} after a change without an answer", u.email));
        return;
    };
    let hash = serde_json::from_str::<Value>(&cfg)
        .ok()
        .and_then(|v| v["hashed_password"].as_str().map(str::to_string))
        .unwrap_or_default();
    let (confirmed, in_flight) = {
        let st = lock(&u.pw);
        (st.confirmed.clone(), st.in_flight.clone())
    };
    let candidates: Vec<String> = std::iter::once(confirmed).chain(in_flight).collect();
    let found = tokio::task::spawn_blocking(move || {
        candidates
            .iter()
            .position(|p| idflow_core::password::verify(p, &hash).unwrap_or(false))
            .map(|k| (k, candidates))
    })
    .await
    .ok()
    .flatten();
    match found {
        Some((0, _)) => {
            sh.unanswered_not_applied.fetch_add(1, Ordering::Relaxed);
        }
        Some((k, candidates)) => {
            sh.unanswered_applied.fetch_add(1, Ordering::Relaxed);
            let mut st = lock(&u.pw);
            st.confirmed = candidates[k].clone();
            st.in_flight.clear();
        }
        None => {
            sh.unanswered_neither.fetch_add(1, Ordering::Relaxed);
            sh.fail(format!(
                "{}: after a password change without an answer the stored hash is neither the acknowledged password nor one in flight",
                u.email
            ));
        }
    }
}

/// The abusive client: one sign-in with a random unknown identifier. Expected: 400 (invalid
/// credentials), 429 (per-address limit), or 503 with `Retry-After` (hashing queue full).
async fn abuse_op(c: &reqwest::Client, a: &str, b: &str) -> Outcome {
    let flow: Value = match c.get(format!("{a}/self-service/login/api")).send().await {
        Ok(r) if r.status() == 200 => match r.json().await {
            Ok(v) => v,
            Err(e) => return transport(&e, a),
        },
        Ok(r) => return unexpected(r, a).await,
        Err(e) => return transport(&e, a),
    };
    let id = flow["id"].as_str().unwrap_or_default();
    let who = uuid::Uuid::new_v4().simple().to_string();
    let body = json!({"method": "password", "identifier": format!("nobody-{who}@example.com"), "password": format!("Guess-{who}")});
    match c.post(format!("{b}/self-service/login?flow={id}")).json(&body).send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            let retry_after = r.headers().contains_key("retry-after");
            if s == 400 || s == 429 || (s == 503 && retry_after) { Outcome::Ok(s) } else { unexpected(r, b).await }
        }
        Err(e) => transport(&e, b),
    }
}

struct Stats {
    hist: Histogram<u64>,
    ok: u64,
    /// Expected answers by status (the abusive client has several).
    expected: BTreeMap<u16, u64>,
    /// Transport errors (0) and 503s inside an outage window, by status.
    chaos: BTreeMap<u16, u64>,
    /// Every other unexpected answer, by status (0 = transport error).
    violations: BTreeMap<u16, u64>,
}

impl Stats {
    #[expect(clippy::expect_used, reason = "3 significant figures is a valid precision")]
    fn new() -> Stats {
        Stats {
            hist: Histogram::new(3).expect("histogram"),
            ok: 0,
            expected: BTreeMap::new(),
            chaos: BTreeMap::new(),
            violations: BTreeMap::new(),
        }
    }
    fn merge(&mut self, o: &Stats) -> anyhow::Result<()> {
        self.hist.add(&o.hist)?;
        self.ok += o.ok;
        for (m, om) in
            [(&mut self.expected, &o.expected), (&mut self.chaos, &o.chaos), (&mut self.violations, &o.violations)]
        {
            for (k, v) in om {
                *m.entry(*k).or_default() += v;
            }
        }
        Ok(())
    }
    fn count(m: &BTreeMap<u16, u64>) -> u64 {
        m.values().sum()
    }
}

/// Outage windows: from the moment a chaos event starts until `grace` after both nodes serve
/// again (open while the event lasts).
#[derive(Default)]
struct Windows(Mutex<Vec<(Instant, Option<Instant>)>>);

impl Windows {
    fn open(&self) -> usize {
        let mut w = lock(&self.0);
        w.push((Instant::now(), None));
        w.len() - 1
    }
    fn close(&self, i: usize, until: Instant) {
        lock(&self.0)[i].1 = Some(until);
    }
    fn any_open(&self) -> bool {
        let now = Instant::now();
        lock(&self.0).iter().rev().any(|(_, e)| e.is_none_or(|e| e > now))
    }
    fn overlaps(&self, start: Instant, end: Instant) -> bool {
        lock(&self.0).iter().rev().any(|(s, e)| *s <= end && e.is_none_or(|e| e >= start))
    }
}

/// Shared by the tasks: progress counters, what the chaos did, and failed checks.
struct Shared {
    started: Instant,
    windows: Windows,
    ops: AtomicU64,
    during_chaos: AtomicU64,
    violations: AtomicU64,
    printed: AtomicU64,
    /// Password changes without an answer, as found in the database afterwards.
    unanswered_applied: AtomicU64,
    unanswered_not_applied: AtomicU64,
    unanswered_neither: AtomicU64,
    failures: Mutex<Vec<String>>,
    events: Mutex<Events>,
}

impl Shared {
    fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
    fn fail(&self, what: String) {
        eprintln!("[{:6.0}s] FAILED: {what}", self.elapsed());
        lock(&self.failures).push(what);
    }
    /// Counts one outcome; returns whether it was the expected answer.
    fn record(&self, s: &mut Stats, op: &str, out: Outcome, t0: Instant) -> bool {
        let t1 = Instant::now();
        self.ops.fetch_add(1, Ordering::Relaxed);
        match out {
            Outcome::Ok(st) => {
                s.ok += 1;
                *s.expected.entry(st).or_default() += 1;
                let _ = s.hist.record((t1 - t0).as_micros().max(1) as u64);
                true
            }
            Outcome::Unexpected { status, node, body } => {
                let in_window = self.windows.overlaps(t0, t1);
                if in_window && (status == 0 || status == 503) {
                    self.during_chaos.fetch_add(1, Ordering::Relaxed);
                    *s.chaos.entry(status).or_default() += 1;
                } else {
                    self.violations.fetch_add(1, Ordering::Relaxed);
                    *s.violations.entry(status).or_default() += 1;
                    if self.printed.fetch_add(1, Ordering::Relaxed) < 50 {
                        eprintln!(
                            "[{:6.0}s] VIOLATION {op} on {node}: status {status} ({}in an outage window): {body}",
                            self.elapsed(),
                            if in_window { "" } else { "not " }
                        );
                    }
                }
                false
            }
        }
    }
}

#[derive(Default)]
struct Events {
    kills: [u64; 2],
    /// Seconds from the restart of a killed node until it served again.
    restart_secs: Vec<f64>,
    down_secs: Vec<f64>,
    terminations: u64,
    terminated_connections: i64,
    /// Seconds until both nodes served again after a termination / a PostgreSQL restart.
    terminate_recovery_secs: Vec<f64>,
    pg_restarts: u64,
    pg_restart_cmd_secs: Vec<f64>,
    pg_recovery_secs: Vec<f64>,
}

struct Chaos {
    kill_every: Option<(Duration, Duration)>,
    down_for: (Duration, Duration),
    terminate_every: Option<(Duration, Duration)>,
    pg_restart_every: Option<(Duration, Duration)>,
    pg_restart_cmd: Option<String>,
    grace: Duration,
    database: String,
    dir: PathBuf,
}

#[derive(Clone, Copy, PartialEq)]
enum Event {
    Kill,
    Terminate,
    PgRestart,
}

/// Waits until both nodes serve; records a failure naming `after` when one does not.
async fn both_serving(
    c: &reqwest::Client,
    nodes: &Nodes,
    token: &str,
    sh: &Shared,
    after: &str,
    limit: Duration,
) -> Option<f64> {
    let t = Instant::now();
    let mut ok = true;
    for i in 0..2 {
        if wait_serving(c, nodes, i, Some(token), limit).await.is_none() {
            sh.fail(format!(
                "node {} did not serve again within {} s after {after}",
                nodes.specs[i].name,
                limit.as_secs()
            ));
            ok = false;
        }
    }
    ok.then(|| t.elapsed().as_secs_f64())
}

async fn chaos_loop(
    ch: Chaos,
    seed: u64,
    nodes: Arc<Nodes>,
    sh: Arc<Shared>,
    token: String,
    deadline: Instant,
) -> anyhow::Result<()> {
    let mut rng = Rng(seed);
    let c = reqwest::Client::new();
    let now = Instant::now();
    let mut next: Vec<(Event, Instant)> = vec![];
    if let Some(r) = ch.kill_every {
        next.push((Event::Kill, now + rng.between(r)));
    }
    if let Some(r) = ch.terminate_every {
        next.push((Event::Terminate, now + rng.between(r)));
    }
    if let (Some(r), Some(_)) = (ch.pg_restart_every, &ch.pg_restart_cmd) {
        next.push((Event::PgRestart, now + rng.between(r)));
    }
    loop {
        let Some(&(ev, at)) = next.iter().min_by_key(|(_, at)| *at) else { return Ok(()) };
        // No new event in the last 10 s: the end checks should not start inside one.
        if at + Duration::from_secs(10) >= deadline {
            return Ok(());
        }
        tokio::time::sleep_until(at.into()).await;
        let w = sh.windows.open();
        let until = match ev {
            Event::Kill => {
                let i = rng.below(2) as usize;
                let name = nodes.specs[i].name;
                let old = nodes.kill(i);
                let down = rng.between(ch.down_for);
                tokio::time::sleep(down).await;
                let restart = Instant::now();
                let mut served = None;
                // A failed restart is a failure of the run; try twice more so the load goes on.
                for attempt in 1..=3 {
                    match nodes.spawn(i) {
                        Ok(_) => {}
                        Err(e) => {
                            sh.fail(format!("restart {attempt} of node {name} failed: {e:#}"));
                            continue;
                        }
                    }
                    if let Some(d) = wait_serving(&c, &nodes, i, Some(&token), Duration::from_secs(60)).await {
                        served = Some(d);
                        break;
                    }
                    sh.fail(format!("node {name} did not serve within 60 s of restart {attempt} (see {name}.log)"));
                    let _ = nodes.kill(i);
                }
                let mut e = lock(&sh.events);
                e.kills[i] += 1;
                e.down_secs.push(down.as_secs_f64());
                if let Some(d) = served {
                    e.restart_secs.push(restart.elapsed().as_secs_f64());
                    eprintln!(
                        "[{:6.0}s] kill -9 node {name} (pid {}), down {:.1} s, restarted as pid {}, serving {:.2} s after the restart",
                        sh.elapsed(),
                        old.unwrap_or_default(),
                        down.as_secs_f64(),
                        nodes.pid(i).unwrap_or_default(),
                        d.as_secs_f64()
                    );
                }
                Instant::now() + ch.grace
            }
            Event::Terminate => {
                let n = terminate_all(&ch.database).await;
                let rec = both_serving(
                    &c,
                    &nodes,
                    &token,
                    &sh,
                    "a termination of the database connections",
                    Duration::from_secs(60),
                )
                .await;
                let mut e = lock(&sh.events);
                e.terminations += 1;
                match n {
                    Ok(n) => {
                        e.terminated_connections += n;
                        eprintln!(
                            "[{:6.0}s] terminated {n} PostgreSQL connections of the load database; both nodes serve {:.2} s later",
                            sh.elapsed(),
                            rec.unwrap_or(f64::NAN)
                        );
                    }
                    // `fail` takes another lock than `events`.
                    Err(err) => sh.fail(format!("pg_terminate_backend failed: {err:#}")),
                }
                if let Some(r) = rec {
                    e.terminate_recovery_secs.push(r);
                }
                Instant::now() + ch.grace
            }
            Event::PgRestart => {
                let cmd = ch.pg_restart_cmd.clone().unwrap_or_default();
                let t = Instant::now();
                let res = run_restart_cmd(&cmd, &ch.dir).await;
                let took = t.elapsed().as_secs_f64();
                if let Err(err) = &res {
                    sh.fail(format!("the PostgreSQL restart command failed: {err:#}"));
                }
                let rec = both_serving(&c, &nodes, &token, &sh, "a PostgreSQL restart", Duration::from_secs(120)).await;
                let mut e = lock(&sh.events);
                e.pg_restarts += 1;
                e.pg_restart_cmd_secs.push(took);
                if let Some(r) = rec {
                    e.pg_recovery_secs.push(r);
                }
                eprintln!(
                    "[{:6.0}s] PostgreSQL restarted (-m immediate) in {took:.1} s; both nodes serve {:.2} s later, without a restart of idflow",
                    sh.elapsed(),
                    rec.unwrap_or(f64::NAN)
                );
                Instant::now() + ch.grace
            }
        };
        sh.windows.close(w, until);
        let range = match ev {
            Event::Kill => ch.kill_every,
            Event::Terminate => ch.terminate_every,
            Event::PgRestart => ch.pg_restart_every,
        };
        if let (Some(slot), Some(r)) = (next.iter_mut().find(|(e, _)| *e == ev), range) {
            slot.1 = Instant::now() + rng.between(r);
        }
    }
}

/// `pg_terminate_backend` on every other connection to the load database; returns how many.
async fn terminate_all(database: &str) -> anyhow::Result<i64> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(database).await?;
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()) s WHERE t",
    )
    .fetch_one(&mut conn)
    .await?;
    let _ = conn.close().await;
    Ok(n)
}

async fn run_restart_cmd(cmd: &str, dir: &Path) -> anyhow::Result<()> {
    // Output to a file, not a pipe: a restarted server must not hold our pipe open.
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("pg-restart.log"))?;
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let status =
        tokio::time::timeout(Duration::from_secs(120), child.wait()).await.context("timed out after 120 s")??;
    if !status.success() {
        bail!("{status}");
    }
    Ok(())
}

/// One resource sample.
struct Sample {
    elapsed: f64,
    rss_mib: [Option<f64>; 2],
    db_mib: Option<f64>,
    /// flows, sessions, rate_limits, errors (kv `error:*`), courier_messages, identity_activity.
    rows: [Option<i64>; 6],
    kills: u64,
    ops: u64,
}

const SAMPLE_QUERIES: [&str; 6] = [
    "SELECT count(*) FROM flows",
    "SELECT count(*) FROM sessions",
    "SELECT count(*) FROM rate_limits",
    "SELECT count(*) FROM kv WHERE key LIKE 'error:%'",
    "SELECT count(*) FROM courier_messages",
    "SELECT count(*) FROM identity_activity",
];

fn rss_mib(pid: Option<u32>) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

async fn sample(pool: &sqlx::PgPool, nodes: &Nodes, sh: &Shared) -> Sample {
    let db: Option<i64> = sqlx::query_scalar("SELECT pg_database_size(current_database())").fetch_one(pool).await.ok();
    let mut rows = [None; 6];
    for (r, q) in rows.iter_mut().zip(SAMPLE_QUERIES) {
        *r = sqlx::query_scalar::<_, i64>(q).fetch_one(pool).await.ok();
    }
    let e = lock(&sh.events);
    Sample {
        elapsed: sh.elapsed(),
        rss_mib: [rss_mib(nodes.pid(0)), rss_mib(nodes.pid(1))],
        db_mib: db.map(|b| b as f64 / 1_048_576.0),
        rows,
        kills: e.kills.iter().sum(),
        ops: sh.ops.load(Ordering::Relaxed),
    }
}

const SAMPLE_HEADER: &str = "| elapsed | ops so far | kills so far | RSS node a MiB | RSS node b MiB | database MiB | flows | sessions | rate_limits | errors | courier_messages | identity_activity |";

fn sample_row(s: &Sample) -> String {
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    let i = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
    format!(
        "| {:.0} s | {} | {} | {} | {} | {} | {} |",
        s.elapsed,
        s.ops,
        s.kills,
        f(s.rss_mib[0]),
        f(s.rss_mib[1]),
        f(s.db_mib),
        s.rows.iter().map(|r| i(*r)).collect::<Vec<_>>().join(" | ")
    )
}

fn summary(v: &[f64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let max = v.iter().copied().fold(f64::MIN, f64::max);
    format!("mean {:.2} s, max {:.2} s", v.iter().sum::<f64>() / v.len() as f64, max)
}

/// Sign in on `base` as `email` with `password`: the final status (429 and 503 are waited out).
async fn sign_in(c: &reqwest::Client, base: &str, email: &str, password: &str) -> anyhow::Result<u16> {
    for _ in 0..20 {
        let flow: Value = match c.get(format!("{base}/self-service/login/api")).send().await {
            Ok(r) if r.status() == 200 => r.json().await?,
            _ => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let r = c
            .post(format!("{base}/self-service/login?flow={}", flow["id"].as_str().unwrap_or_default()))
            .json(&json!({"method": "password", "identifier": email, "password": password}))
            .send()
            .await?;
        let s = r.status().as_u16();
        if s == 429 || s == 503 {
            let wait = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(1)
                .clamp(1, 65);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        return Ok(s);
    }
    bail!("sign-in on {base} as {email} still throttled or unavailable after 20 tries")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let duration = dur(&cli.duration)?;
    let grace = dur(&cli.grace)?;
    let sample_every = dur(&cli.sample_every)?;
    let seed = cli.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    let chaos = Chaos {
        kill_every: dur_range(&cli.kill_every)?,
        down_for: dur_range(&cli.down_for)?.unwrap_or_default(),
        terminate_every: dur_range(&cli.terminate_every)?,
        pg_restart_every: dur_range(&cli.pg_restart_every)?,
        pg_restart_cmd: cli.pg_restart_cmd.clone(),
        grace,
        database: cli.database.clone(),
        dir: PathBuf::new(),
    };
    let dir = std::env::temp_dir().join(format!("idflow-load-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let spec_a = node_spec(&cli, &dir, "a", None)?;
    let shared_base = format!("{}/", spec_a.public);
    let spec_b = node_spec(&cli, &dir, "b", Some(&shared_base))?;
    let nodes = Arc::new(Nodes {
        server: cli.server.clone(),
        specs: vec![spec_a, spec_b],
        children: Mutex::new(vec![None, None]),
    });
    let c = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    for i in 0..2 {
        nodes.spawn(i)?;
        if wait_serving(&c, &nodes, i, None, Duration::from_secs(60)).await.is_none() {
            bail!("node {} did not become ready (log in {})", nodes.specs[i].name, dir.display());
        }
    }
    let (a, b) = (nodes.specs[0].public.clone(), nodes.specs[1].public.clone());
    eprintln!("nodes: {a} and {b} (logs and configs in {}); seeding {} users", dir.display(), cli.users);
    let mut users = vec![];
    for i in 0..cli.users.max(cli.workers) {
        let base = if i % 2 == 0 { &a } else { &b };
        users.push(register(&c, base, &format!("load-{i}-{}@example.com", uuid::Uuid::new_v4().simple())).await?);
    }
    let users = Arc::new(users);
    let probe_token = users[0].token.clone();
    if cli.chaos {
        eprintln!(
            "chaos seed {seed}: node kills every {}, down {}, connection terminations every {}, PostgreSQL restarts every {} ({}), grace {}",
            cli.kill_every,
            cli.down_for,
            cli.terminate_every,
            cli.pg_restart_every,
            if cli.pg_restart_cmd.is_some() { "with --pg-restart-cmd" } else { "off: no --pg-restart-cmd" },
            cli.grace
        );
    }
    eprintln!("driving {} workers for {} (abusive sign-ins: {}/s)", cli.workers, cli.duration, cli.abuse_rate);
    let sh = Arc::new(Shared {
        started: Instant::now(),
        windows: Windows::default(),
        ops: AtomicU64::new(0),
        during_chaos: AtomicU64::new(0),
        violations: AtomicU64::new(0),
        printed: AtomicU64::new(0),
        unanswered_applied: AtomicU64::new(0),
        unanswered_not_applied: AtomicU64::new(0),
        unanswered_neither: AtomicU64::new(0),
        failures: Mutex::new(vec![]),
        events: Mutex::new(Events::default()),
    });
    let started = sh.started;
    let deadline = started + duration;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy(&cli.database)?;

    let mut tasks = vec![];
    let workers = cli.workers;
    for w in 0..cli.workers {
        let (c, a, b, users, sh, pool) = (c.clone(), a.clone(), b.clone(), users.clone(), sh.clone(), pool.clone());
        tasks.push(tokio::spawn(async move {
            let mut stats: BTreeMap<&'static str, Stats> = BTreeMap::new();
            let total: u32 = OPS.iter().map(|(_, w)| w).sum();
            let mut n: u64 = w as u64;
            while Instant::now() < deadline {
                n += 1;
                // A fixed pseudo-random mix (reproducible): pick by weight.
                let mut pick = ((n.wrapping_mul(2_654_435_761)) % u64::from(total)) as u32;
                let op = OPS
                    .iter()
                    .find(|(_, wt)| {
                        if pick < *wt {
                            true
                        } else {
                            pick -= wt;
                            false
                        }
                    })
                    .map(|(o, _)| *o)
                    .unwrap_or("whoami");
                // Each worker has users of its own: concurrent changes to one identity (409 by
                // design) are not part of this load.
                let per_worker = (users.len() / workers).max(1);
                let u = &users[(w + workers * (n as usize % per_worker)) % users.len()];
                let (x, y) = if n.is_multiple_of(2) { (&a, &b) } else { (&b, &a) };
                let t = Instant::now();
                let out = run_op(&c, op, x, y, u, n).await;
                let unanswered = op == "password"
                    && matches!(out, Outcome::Unexpected { status, .. } if status == 0 || status >= 500);
                let s = stats.entry(op).or_insert_with(Stats::new);
                let ok = sh.record(s, op, out, t);
                if unanswered {
                    resolve(&pool, &sh, u).await;
                }
                if !ok {
                    // A client backs off after a failure instead of spinning on a dead node.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            stats
        }));
    }
    if cli.abuse_rate > 0.0 {
        let (a, b, sh) = (a.clone(), b.clone(), sh.clone());
        let period = Duration::from_secs_f64(1.0 / cli.abuse_rate);
        let c = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        let mut stats: BTreeMap<&'static str, Stats> = BTreeMap::new();
        tasks.push(tokio::spawn(async move {
            // An open-loop stream: a new sign-in every period whether or not the earlier ones
            // were answered (an abuser does not wait for the hashing).
            let mut running = tokio::task::JoinSet::new();
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n = 0u64;
            while Instant::now() < deadline {
                tick.tick().await;
                n += 1;
                let (x, y) = if n.is_multiple_of(2) { (a.clone(), b.clone()) } else { (b.clone(), a.clone()) };
                let c = c.clone();
                running.spawn(async move {
                    let t = Instant::now();
                    (abuse_op(&c, &x, &y).await, t)
                });
                while let Some(done) = running.try_join_next() {
                    if let Ok((out, t)) = done {
                        sh.record(stats.entry("abusive_login").or_insert_with(Stats::new), "abusive_login", out, t);
                    }
                }
            }
            while let Some(done) = running.join_next().await {
                if let Ok((out, t)) = done {
                    sh.record(stats.entry("abusive_login").or_insert_with(Stats::new), "abusive_login", out, t);
                }
            }
            stats
        }));
    }
    let sampler = {
        let (pool, nodes, sh) = (pool.clone(), nodes.clone(), sh.clone());
        tokio::spawn(async move {
            let mut samples = vec![];
            eprintln!("{SAMPLE_HEADER}");
            let mut at = Instant::now();
            while at < deadline {
                let s = sample(&pool, &nodes, &sh).await;
                eprintln!(
                    "{}  (during chaos so far {}, violations so far {})",
                    sample_row(&s),
                    sh.during_chaos.load(Ordering::Relaxed),
                    sh.violations.load(Ordering::Relaxed)
                );
                samples.push(s);
                at += sample_every;
                tokio::time::sleep_until(at.into()).await;
            }
            samples
        })
    };
    let chaos_task = if cli.chaos {
        let ch = Chaos { dir: dir.clone(), ..chaos };
        Some(tokio::spawn(chaos_loop(ch, seed, nodes.clone(), sh.clone(), probe_token.clone(), deadline)))
    } else {
        None
    };

    let mut merged: BTreeMap<&'static str, Stats> = BTreeMap::new();
    for t in tasks {
        for (op, s) in t.await? {
            merged.entry(op).or_insert_with(Stats::new).merge(&s)?;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    if let Some(t) = chaos_task
        && let Err(e) = t.await?
    {
        sh.fail(format!("the chaos task stopped: {e:#}"));
    }
    let mut samples = sampler.await?;
    samples.push(sample(&pool, &nodes, &sh).await);

    // Checks at the end.
    for i in 0..2 {
        if wait_serving(&c, &nodes, i, Some(&probe_token), Duration::from_secs(30)).await.is_none() {
            sh.fail(format!("node {} does not answer at the end", nodes.specs[i].name));
        }
    }
    let (mut acknowledged, mut in_flight_applied, mut neither, mut unknown) = (0, 0, 0, 0);
    for u in users.iter() {
        let (confirmed, in_flight) = {
            let st = lock(&u.pw);
            (st.confirmed.clone(), st.in_flight.clone())
        };
        if !in_flight.is_empty() {
            unknown += 1;
        }
        let candidates: Vec<&String> = std::iter::once(&confirmed).chain(in_flight.iter()).collect();
        let mut matched = [None, None];
        for (i, m) in matched.iter_mut().enumerate() {
            for (k, pw) in candidates.iter().enumerate() {
                match sign_in(&c, &nodes.specs[i].public, &u.email, pw).await {
                    Ok(200) => {
                        *m = Some(k);
                        break;
                    }
                    Ok(400) => {}
                    Ok(s) => {
                        sh.fail(format!("sign-in of {} on node {}: status {s}", u.email, nodes.specs[i].name));
                    }
                    Err(e) => sh.fail(format!("{e:#}")),
                }
            }
        }
        match matched {
            [Some(0), Some(0)] => acknowledged += 1,
            [Some(x), Some(y)] if x == y => in_flight_applied += 1,
            _ => {
                neither += 1;
                sh.fail(format!(
                    "{} signs in with neither the acknowledged password nor one of {} in flight (node a: {:?}, node b: {:?})",
                    u.email,
                    in_flight.len(),
                    matched[0],
                    matched[1]
                ));
            }
        }
    }

    // Report.
    let mut all = Stats::new();
    let mut five_hundreds = 0;
    println!("| operation | operations | ops/s | ok | during chaos | violations | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let row = |name: &str, s: &Stats| {
        let (ch, v) = (Stats::count(&s.chaos), Stats::count(&s.violations));
        let n = s.ok + ch + v;
        println!(
            "| {name} | {n} | {:.1} | {} | {ch} | {v} | {:.1} | {:.1} | {:.1} |",
            n as f64 / secs,
            s.ok,
            s.hist.value_at_quantile(0.5) as f64 / 1000.0,
            s.hist.value_at_quantile(0.99) as f64 / 1000.0,
            s.hist.max() as f64 / 1000.0,
        );
    };
    for (op, s) in &merged {
        row(op, s);
        all.merge(s)?;
        five_hundreds += s.violations.get(&500).copied().unwrap_or(0);
    }
    row("**all**", &all);
    println!(
        "\n{} workers, {} users, {:.0} s, 2 nodes; operations start a flow on one node and finish it on the other; latency of the expected answers only",
        cli.workers, cli.users, secs
    );
    for (op, s) in &merged {
        if op.starts_with("abusive") || !s.chaos.is_empty() || !s.violations.is_empty() {
            println!(
                "{op}: expected answers by status {:?}; during chaos by status {:?}; violations by status {:?} (0 = transport error)",
                s.expected, s.chaos, s.violations
            );
        }
    }
    if cli.chaos {
        let e = lock(&sh.events);
        println!("\nchaos (seed {seed}):");
        println!(
            "- kill -9 of a node: {} (node a {}, node b {}); down {}; from restart to serving again: {}",
            e.kills.iter().sum::<u64>(),
            e.kills[0],
            e.kills[1],
            summary(&e.down_secs),
            summary(&e.restart_secs)
        );
        println!(
            "- terminations of all connections to the load database: {} ({} connections in all); both nodes serving again after: {}",
            e.terminations,
            e.terminated_connections,
            summary(&e.terminate_recovery_secs)
        );
        println!(
            "- PostgreSQL restarts (immediate): {}; the restart command took {}; both nodes serving again after the command (no idflow restart): {}",
            e.pg_restarts,
            summary(&e.pg_restart_cmd_secs),
            summary(&e.pg_recovery_secs)
        );
    }
    println!("\nresources (RSS is of the current process of each node: a killed node starts again small):\n");
    println!("{SAMPLE_HEADER}");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for s in &samples {
        println!("{}", sample_row(s));
    }
    let maxf = |f: &dyn Fn(&Sample) -> Option<f64>| {
        samples.iter().filter_map(f).fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
    };
    let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    let mut maxes = vec![fmt(maxf(&|s| s.rss_mib[0])), fmt(maxf(&|s| s.rss_mib[1])), fmt(maxf(&|s| s.db_mib))];
    for k in 0..6 {
        maxes.push(fmt(maxf(&|s| s.rows[k].map(|v| v as f64))).trim_end_matches(".0").to_string());
    }
    println!("| **max** | | | {} |", maxes.join(" | "));

    let failures = lock(&sh.failures).clone();
    let violations = Stats::count(&all.violations);
    println!("\nend checks:");
    println!(
        "- users signing in on both nodes: {} of {} ({acknowledged} with the acknowledged password, {in_flight_applied} with a change that was in flight); neither: {neither}; users with a change of unknown outcome since their last acknowledged one: {unknown}",
        acknowledged + in_flight_applied,
        users.len()
    );
    println!(
        "- password changes without an answer (transport error or 5xx), checked in the database once the outage was over: {} applied, {} not applied, {} neither",
        sh.unanswered_applied.load(Ordering::Relaxed),
        sh.unanswered_not_applied.load(Ordering::Relaxed),
        sh.unanswered_neither.load(Ordering::Relaxed)
    );
    println!("- 500 answers: {five_hundreds}; violations: {violations}; during chaos: {}", Stats::count(&all.chaos));
    println!("- failed checks: {}", failures.len());
    for f in &failures {
        println!("  - {f}");
    }
    let passed = violations == 0 && failures.is_empty();
    println!("\nRESULT: {}", if passed { "PASS" } else { "FAIL" });
    drop(nodes);
    if passed {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("node logs kept in {}", dir.display());
        std::process::exit(1);
    }
    Ok(())
}
