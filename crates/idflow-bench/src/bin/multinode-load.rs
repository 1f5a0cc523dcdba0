//! `multinode-load`: sustained mixed settings traffic on two idflow nodes sharing one
//! PostgreSQL, on loopback. Reports throughput, p50/p99/max latency and the error rate per
//! operation. Not part of CI (see BENCHMARKS.md, "Two nodes on PostgreSQL").
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

use anyhow::{Context, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "multinode-load")]
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
}

struct Node {
    child: Child,
    public: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn start_node(cli: &Cli, dir: &std::path::Path, name: &str, base: Option<&str>) -> anyhow::Result<Node> {
    let (pp, ap) = (free_port()?, free_port()?);
    let public_base = base.map(str::to_string).unwrap_or_else(|| format!("http://127.0.0.1:{pp}/"));
    let cfg = format!(
        "dsn: \"{}\"\ndev: true\nserve:\n  public: {{ base_url: \"{public_base}\" }}\nhashers:\n  argon2: {{ memory: {}, iterations: 2, parallelism: 1 }}\nlog: {{ level: warn }}\ndatabase: {{ max_connections: 32 }}\n",
        cli.database, cli.argon2_memory
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, cfg)?;
    let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
    let child = Command::new(&cli.server)
        .args(["serve", "-c"])
        .arg(&path)
        .args(["--public-addr", &format!("127.0.0.1:{pp}"), "--admin-addr", &format!("127.0.0.1:{ap}")])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("could not start {}", cli.server))?;
    let node = Node { child, public: format!("http://127.0.0.1:{pp}") };
    let c = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if c.get(format!("{}/health/ready", node.public)).send().await.is_ok_and(|r| r.status() == 200) {
            return Ok(node);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("node {name} did not become ready (log in {})", dir.display())
}

#[derive(Clone)]
struct User {
    email: String,
    token: String,
}

async fn register(c: &reqwest::Client, base: &str, email: &str) -> anyhow::Result<User> {
    let flow: Value = c.get(format!("{base}/self-service/registration/api")).send().await?.json().await?;
    let r: Value = c
        .post(format!("{base}/self-service/registration?flow={}", flow["id"].as_str().unwrap_or_default()))
        .json(&json!({"method": "password", "password": "Load-Test-Password-0", "traits": {"email": email}}))
        .send()
        .await?
        .json()
        .await?;
    let token = r["session_token"].as_str().context("registration gave no session token")?.to_string();
    Ok(User { email: email.to_string(), token })
}

const OPS: &[(&str, u32)] =
    &[("create_fetch", 25), ("profile", 30), ("whoami", 20), ("totp_start", 15), ("password", 10)];

/// One operation; Ok(None) = expected answers, Ok(Some(status)) = an unexpected status.
async fn run_op(
    c: &reqwest::Client,
    op: &str,
    a: &str,
    b: &str,
    u: &User,
    n: u64,
) -> Result<Option<u16>, reqwest::Error> {
    let create =
        |base: &str| c.get(format!("{base}/self-service/settings/api")).header("X-Session-Token", &u.token).send();
    if op == "whoami" {
        let s =
            c.get(format!("{b}/sessions/whoami")).header("X-Session-Token", &u.token).send().await?.status().as_u16();
        return Ok((s != 200).then_some(s));
    }
    let r = create(a).await?;
    if r.status() != 200 {
        return Ok(Some(r.status().as_u16()));
    }
    let flow: Value = r.json().await?;
    let id = flow["id"].as_str().unwrap_or_default().to_string();
    let submit = |body: Value| {
        c.post(format!("{b}/self-service/settings?flow={id}")).header("X-Session-Token", &u.token).json(&body).send()
    };
    let (status, want) = match op {
        "create_fetch" => {
            let r = c
                .get(format!("{b}/self-service/settings/flows?id={id}"))
                .header("X-Session-Token", &u.token)
                .send()
                .await?;
            (r.status().as_u16(), 200)
        }
        "profile" => {
            let r =
                submit(json!({"method": "profile", "traits": {"email": u.email, "name": {"first": format!("L{n}")}}}))
                    .await?;
            (r.status().as_u16(), 200)
        }
        "totp_start" => (submit(json!({"method": "totp"})).await?.status().as_u16(), 400),
        _ => {
            let r = submit(json!({"method": "password", "password": format!("Load-Test-Password-{n}-{}", uuid::Uuid::new_v4().simple())})).await?;
            (r.status().as_u16(), 200)
        }
    };
    Ok((status != want).then_some(status))
}

struct Stats {
    hist: Histogram<u64>,
    errors: u64,
    /// Unexpected answers by status (0 = transport error).
    statuses: BTreeMap<u16, u64>,
}

impl Stats {
    #[expect(clippy::expect_used, reason = "3 significant figures is a valid precision")]
    fn new() -> Stats {
        Stats { hist: Histogram::new(3).expect("histogram"), errors: 0, statuses: BTreeMap::new() }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let duration = idflow_core::config::parse_duration(&cli.duration).map_err(anyhow::Error::msg)?;
    let dir = std::env::temp_dir().join(format!("idflow-load-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let node_a = start_node(&cli, &dir, "a", None).await?;
    let shared_base = format!("{}/", node_a.public);
    let node_b = start_node(&cli, &dir, "b", Some(&shared_base)).await?;
    let (a, b) = (node_a.public.clone(), node_b.public.clone());
    eprintln!("nodes: {a} and {b}; seeding {} users", cli.users);
    let c = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let mut users = vec![];
    for i in 0..cli.users.max(cli.workers) {
        let base = if i % 2 == 0 { &a } else { &b };
        users.push(register(&c, base, &format!("load-{i}-{}@example.com", uuid::Uuid::new_v4().simple())).await?);
    }
    eprintln!("driving {} workers for {}", cli.workers, cli.duration);
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = vec![];
    let workers = cli.workers;
    for w in 0..cli.workers {
        let (c, a, b, users) = (c.clone(), a.clone(), b.clone(), users.clone());
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
                let res = run_op(&c, op, x, y, u, n).await;
                let took = t.elapsed().as_micros() as u64;
                let s = stats.entry(op).or_insert_with(Stats::new);
                let _ = s.hist.record(took.max(1));
                match res {
                    Ok(None) => {}
                    Ok(Some(st)) => {
                        s.errors += 1;
                        *s.statuses.entry(st).or_default() += 1;
                    }
                    Err(_) => {
                        s.errors += 1;
                        *s.statuses.entry(0).or_default() += 1;
                    }
                }
            }
            stats
        }));
    }
    let mut merged: BTreeMap<&'static str, Stats> = BTreeMap::new();
    for t in tasks {
        for (op, s) in t.await? {
            let m = merged.entry(op).or_insert_with(Stats::new);
            m.hist.add(&s.hist)?;
            m.errors += s.errors;
            for (k, v) in s.statuses {
                *m.statuses.entry(k).or_default() += v;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let mut all = Stats::new();
    println!("| operation | requests | ops/s | p50 ms | p99 ms | max ms | errors |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let row = |name: &str, s: &Stats| {
        let n = s.hist.len();
        println!(
            "| {name} | {n} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2}% |",
            n as f64 / secs,
            s.hist.value_at_quantile(0.5) as f64 / 1000.0,
            s.hist.value_at_quantile(0.99) as f64 / 1000.0,
            s.hist.max() as f64 / 1000.0,
            if n == 0 { 0.0 } else { 100.0 * s.errors as f64 / n as f64 }
        );
    };
    for (op, s) in &merged {
        row(op, s);
        if !s.statuses.is_empty() {
            eprintln!("{op}: unexpected answers by status (0 = transport error): {:?}", s.statuses);
        }
        all.hist.add(&s.hist)?;
        all.errors += s.errors;
    }
    row("**all**", &all);
    println!(
        "\n{} workers, {} users, {:.0} s, 2 nodes; operations start a flow on one node and finish it on the other",
        cli.workers, cli.users, secs
    );
    drop((node_a, node_b));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
