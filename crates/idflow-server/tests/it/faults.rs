//! Fault tests against the real binary run as child processes (T38, T39, graceful shutdown):
//!
//! - `kill -9` of a node during bursts of password changes, on SQLite and PostgreSQL: every
//!   change is either fully applied (new hash + the identity's other sessions revoked) or not
//!   at all, checked in the database after each kill. CI runs a few iterations per engine;
//!   bench/run-crashloop.sh runs ≥1 000 (figures in BENCHMARKS.md).
//! - PostgreSQL stopped and started under load: requests fail cleanly (5xx in the error
//!   envelope, no hang, no crash), `/health/ready` says 503 while the database is away, and
//!   the node recovers without a restart. This test runs its own throwaway cluster (so the
//!   shared test cluster stays up for the other tests) and needs `IDFLOW_TEST_PG_BIN` (the
//!   directory holding `initdb` and `pg_ctl`; scripts/test.sh sets it); it is skipped otherwise.
//! - SIGTERM drains in-flight requests before the process exits.
//!
//! Loops are bounded in count and time; all traffic stays on 127.0.0.1.

use crate::support::*;
use serde_json::{Value, json};
use sqlx::{Connection, Row};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

fn scratch_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("idflow-{tag}-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One `idflow serve` child process.
struct Node {
    child: tokio::process::Child,
    public: String,
    log: PathBuf,
}

impl Node {
    /// Start the binary with `dsn` and extra YAML appended to the base config; wait until ready.
    async fn start(dir: &std::path::Path, dsn: &str, extra_yaml: &str) -> Node {
        // A port picked here can be taken by another test process before the node binds it:
        // start again on fresh ports when that happens.
        for _ in 0..5 {
            if let Some(node) = Self::try_start(dir, dsn, extra_yaml).await {
                return node;
            }
        }
        panic!("idflow could not find free ports in five attempts");
    }

    async fn try_start(dir: &std::path::Path, dsn: &str, extra_yaml: &str) -> Option<Node> {
        let (pp, ap) = (free_port(), free_port());
        let hashers = if extra_yaml.contains("hashers:") {
            ""
        } else {
            "hashers:\n  argon2: { memory: 1024, iterations: 1, parallelism: 1 }\n"
        };
        let cfg = format!(
            "dsn: \"{dsn}\"\ndev: true\nserve:\n  public: {{ base_url: \"http://127.0.0.1:{pp}/\" }}\n  admin: {{ base_url: \"http://127.0.0.1:{ap}/\" }}\n{hashers}log: {{ level: warn }}\n{extra_yaml}"
        );
        let n = Uuid::new_v4().simple().to_string();
        let cfg_path = dir.join(format!("node-{n}.yaml"));
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = dir.join(format!("node-{n}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_idflow"))
            .arg("serve")
            .arg("-c")
            .arg(&cfg_path)
            .arg("--public-addr")
            .arg(format!("127.0.0.1:{pp}"))
            .arg("--admin-addr")
            .arg(format!("127.0.0.1:{ap}"))
            .env_remove("IDFLOW_CONFIG")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn idflow");
        let mut node = Node { child, public: format!("http://127.0.0.1:{pp}"), log };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = node.child.try_wait().unwrap() {
                let log = node.log_text();
                if log.contains("Address already in use") {
                    return None;
                }
                panic!("idflow exited during start ({status}):\n{log}");
            }
            if let Ok(r) = api_client().get(node.url("/health/ready")).timeout(Duration::from_secs(2)).send().await
                && r.status() == 200
            {
                return Some(node);
            }
            assert!(Instant::now() < deadline, "idflow did not become ready:\n{}", node.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, p: &str) -> String {
        format!("{}{p}", self.public)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn kill9(&mut self) {
        self.child.start_kill().unwrap();
        let _ = self.child.wait().await;
    }

    async fn register(&self, email: &str, password: &str) -> (String, String) {
        let c = api_client();
        let flow: Value = c.get(self.url("/self-service/registration/api")).send().await.unwrap().json().await.unwrap();
        let r: Value = c
            .post(self.url(&format!("/self-service/registration?flow={}", flow["id"].as_str().unwrap())))
            .json(&json!({"method": "password", "password": password, "traits": {"email": email}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (r["session_token"].as_str().unwrap().to_string(), r["identity"]["id"].as_str().unwrap().to_string())
    }

    /// API login; returns (token, session id) on success.
    async fn login(&self, email: &str, password: &str) -> Option<(String, String)> {
        let c = api_client();
        let flow: Value = c.get(self.url("/self-service/login/api")).send().await.ok()?.json().await.ok()?;
        let r: Value = c
            .post(self.url(&format!("/self-service/login?flow={}", flow["id"].as_str()?)))
            .json(&json!({"method": "password", "identifier": email, "password": password}))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        Some((r["session_token"].as_str()?.to_string(), r["session"]["id"].as_str()?.to_string()))
    }

    async fn settings_flow(&self, token: &str) -> String {
        let v: Value = api_client()
            .get(self.url("/self-service/settings/api"))
            .header("X-Session-Token", token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["id"].as_str().unwrap_or_else(|| panic!("settings flow: {v}")).to_string()
    }
}

/// What the database says about an identity's password: its hashes, their identifiers and the
/// `active` flag of some sessions.
struct DbState {
    hashes: Vec<String>,
    identifiers: Vec<String>,
    active: Vec<bool>,
}

/// Reads [`DbState`] with plain SQL on either engine (same schema, same column types through
/// sqlx: UUIDs bind as BLOB on SQLite and as `uuid` on PostgreSQL).
macro_rules! read_db_state {
    ($conn:expr, $identity:expr, $sessions:expr) => {{
        let c = $conn;
        let id = Uuid::parse_str($identity).unwrap();
        let rows = sqlx::query("SELECT id, config FROM credentials WHERE identity_id = $1 AND kind = 'password'")
            .bind(id)
            .fetch_all(&mut *c)
            .await
            .unwrap();
        let mut hashes = vec![];
        let mut identifiers = vec![];
        for r in &rows {
            let cfg: Value = serde_json::from_str(&r.get::<String, _>("config")).unwrap();
            hashes.push(cfg["hashed_password"].as_str().unwrap_or_default().to_string());
            let cid: Uuid = r.get("id");
            for i in sqlx::query("SELECT identifier FROM credential_identifiers WHERE credential_id = $1")
                .bind(cid)
                .fetch_all(&mut *c)
                .await
                .unwrap()
            {
                identifiers.push(i.get::<String, _>("identifier"));
            }
        }
        let mut active = vec![];
        for s in $sessions {
            let r = sqlx::query("SELECT active FROM sessions WHERE id = $1")
                .bind(Uuid::parse_str(s).unwrap())
                .fetch_one(&mut *c)
                .await
                .unwrap();
            active.push(r.get::<bool, _>("active"));
        }
        DbState { hashes, identifiers, active }
    }};
}

async fn db_state(dsn: &str, identity: &str, sessions: &[String]) -> DbState {
    if dsn.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(dsn).await.unwrap();
        let st = read_db_state!(&mut c, identity, sessions);
        let _ = c.close().await;
        st
    } else {
        // Read-only, so the check never creates or changes the file the next node opens.
        let ro = dsn.replace("mode=rwc", "mode=ro");
        let mut c = sqlx::SqliteConnection::connect(&ro).await.unwrap();
        let st = read_db_state!(&mut c, identity, sessions);
        let _ = c.close().await;
        st
    }
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// T38 on the SQLite file database: see [`kill_9_during_password_changes`].
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_password_changes_leaves_old_or_new_sqlite() {
    kill_9_during_password_changes(Db::Sqlite).await;
}

/// T38 on PostgreSQL: see [`kill_9_during_password_changes`].
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_password_changes_leaves_old_or_new_postgres() {
    if pg_admin_url().is_none() {
        eprintln!("IDFLOW_TEST_PG_ADMIN_URL not set: kill -9 test skipped (scripts/test.sh sets it)");
        return;
    }
    kill_9_during_password_changes(Db::Postgres).await;
}

/// Bursts of concurrent password changes, each ended by `kill -9` of the node at a different
/// moment (before, during, after the commits), then a look at the database and a restart.
///
/// Bounded by `IDFLOW_FAULT_ITERATIONS` (default 6 per engine) and `IDFLOW_FAULT_SECONDS`
/// (default 180); `IDFLOW_FAULT_FLOWS` sets the changes per burst (default 6).
/// bench/run-crashloop.sh runs it with ≥1 000 iterations per engine.
///
/// Every violation is counted, and the test fails at the end with the tally; a torn hash (no
/// candidate matches) ends the loop at once since the current password is then unknown.
async fn kill_9_during_password_changes(db: Db) {
    let engine = match db {
        Db::Sqlite => "sqlite",
        Db::Postgres => "postgres",
    };
    let iterations = env_num("IDFLOW_FAULT_ITERATIONS", 6);
    let seconds = env_num("IDFLOW_FAULT_SECONDS", 180);
    let per_burst = env_num("IDFLOW_FAULT_FLOWS", 6).max(1) as usize;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let dir = scratch_dir("kill9");
    let _cleanup = TempDir(dir.clone());
    let dsn = match db {
        // In the scratch directory, which is removed at the end.
        Db::Sqlite => format!("sqlite://{}/idflow.db?mode=rwc", dir.display()),
        Db::Postgres => fresh_dsn(Db::Postgres).await.0,
    };
    // Real-world hashing cost, so the burst's commits spread over the kill window.
    let yaml = "hashers:\n  argon2: { memory: 19456, iterations: 2, parallelism: 1 }\n";
    let mut node = Node::start(&dir, &dsn, yaml).await;
    let email = unique_email();
    let (main_token, identity) = node.register(&email, PASSWORD).await;
    let mut current = PASSWORD.to_string();
    let (mut done, mut changed, mut unchanged, mut acked, mut lost, mut torn) = (0u64, 0, 0, 0, 0, 0);
    let mut violations: Vec<String> = vec![];
    for it in 0..iterations {
        if Instant::now() > deadline {
            eprintln!("kill -9 test ({engine}): time bound of {seconds} s reached after {it} iterations");
            break;
        }
        // Two other sessions that a committed change must revoke.
        let mut others = vec![];
        for _ in 0..2 {
            others.push(node.login(&email, &current).await.expect("login with the current password").1);
        }
        let mut flows = vec![];
        for _ in 0..per_burst {
            flows.push(node.settings_flow(&main_token).await);
        }
        let candidates: Vec<String> =
            (0..per_burst).map(|i| format!("Crash-{it}-{i}-{}", Uuid::new_v4().simple())).collect();
        let mut tasks = vec![];
        for (f, pw) in flows.iter().zip(&candidates) {
            let req = api_client()
                .post(node.url(&format!("/self-service/settings?flow={f}")))
                .header("X-Session-Token", &main_token)
                .json(&json!({"method": "password", "password": pw}))
                .timeout(Duration::from_secs(30));
            tasks.push(tokio::spawn(req.send()));
        }
        // Kill at a different moment each time: before, during and after the commits.
        tokio::time::sleep(Duration::from_millis((it * 29) % 200)).await;
        node.kill9().await;
        let mut acknowledged = vec![];
        for (t, pw) in tasks.into_iter().zip(&candidates) {
            if let Ok(Ok(r)) = t.await
                && r.status() == 200
            {
                acknowledged.push(pw.clone());
            }
        }
        acked += acknowledged.len();
        done += 1;

        let st = db_state(&dsn, &identity, &others).await;
        assert_eq!(st.hashes.len(), 1, "exactly one password credential");
        assert_eq!(st.identifiers, vec![email.clone()], "its identifier row is intact");
        let mut all = candidates.clone();
        all.push(current.clone());
        let matching: Vec<&String> =
            all.iter().filter(|p| idflow_core::password::verify(p, &st.hashes[0]).unwrap_or(false)).collect();
        if matching.len() != 1 {
            torn += 1;
            violations
                .push(format!("iteration {it}: the stored hash is not one complete password hash: {}", st.hashes[0]));
            break;
        }
        let now = matching[0].clone();
        if now == current {
            unchanged += 1;
            if !acknowledged.is_empty() {
                lost += 1;
                violations.push(format!("iteration {it}: a change answered 200 is not in the database"));
            }
            if !st.active.iter().all(|a| *a) {
                violations.push(format!("iteration {it}: no change, yet a session was revoked: {:?}", st.active));
            }
        } else {
            changed += 1;
            if !st.active.iter().all(|a| !*a) {
                violations.push(format!(
                    "iteration {it}: the change did not revoke the other sessions in its transaction: {:?}",
                    st.active
                ));
            }
        }
        current = now;
        node = Node::start(&dir, &dsn, yaml).await;
        // The database state is what the service sees.
        assert!(node.login(&email, &current).await.is_some(), "the stored password signs in");
        let who =
            api_client().get(node.url("/sessions/whoami")).header("X-Session-Token", &main_token).send().await.unwrap();
        assert_eq!(who.status(), 200, "the session that made the changes survives");
    }
    node.kill9().await;
    eprintln!(
        "crash loop summary: engine={engine} iterations={done} changed={changed} unchanged={unchanged} \
         acknowledged_changes={acked} acknowledged_but_lost={lost} torn={torn} other_violations={} \
         flows_per_burst={per_burst} wall_seconds={}",
        violations.len() - lost - torn,
        started.elapsed().as_secs()
    );
    assert!(violations.is_empty(), "{} violations:\n{}", violations.len(), violations.join("\n"));
    assert!(done > 0, "at least one iteration ran");
}

/// A PostgreSQL cluster of this test's own.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

fn as_postgres(bin: &std::path::Path, tool: &str) -> std::process::Command {
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if root {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        std::process::Command::new(bin.join(tool))
    }
}

impl Cluster {
    fn init(bin: PathBuf) -> Cluster {
        let dir = scratch_dir("pgcluster");
        let _ = std::process::Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status();
        let st = as_postgres(&bin, "initdb")
            .current_dir(&dir)
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "initdb failed");
        let c = Cluster { bin, dir, port: free_port() };
        c.start();
        c
    }
    fn dsn(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
    fn pg_ctl(&self, args: &[&str]) -> bool {
        as_postgres(&self.bin, "pg_ctl")
            .current_dir(&self.dir)
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(args)
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }
    fn start(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=100",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        assert!(
            self.pg_ctl(&["-l", &log.to_string_lossy(), "-w", "-t", "60", "-o", &opts, "start"]),
            "pg_ctl start failed"
        );
    }
    fn stop(&self) {
        assert!(self.pg_ctl(&["-m", "fast", "-w", "-t", "60", "stop"]), "pg_ctl stop failed");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "-w", "-t", "30", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    client_errors: usize,
    unavailable: usize,
    other_5xx: usize,
    failures: Vec<String>,
}

/// One request of the load: a clean answer is recorded, anything else is a failure.
async fn record(tally: &std::sync::Mutex<Tally>, what: &str, r: Result<reqwest::Response, reqwest::Error>) {
    let line = match r {
        Err(e) => Some(format!("{what}: transport error (hang or crash?): {e}")),
        Ok(r) => {
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let mut t = tally.lock().unwrap();
            match status {
                200..=299 => t.ok += 1,
                400..=499 => t.client_errors += 1,
                500..=599 => {
                    if status == 503 {
                        t.unavailable += 1
                    } else {
                        t.other_5xx += 1
                    }
                    let enveloped = body["error"]["code"] == status
                        || body["error"]["status"] == status
                        || body["errors"].is_object();
                    if !enveloped {
                        t.failures.push(format!("{what}: {status} without an error envelope: {body}"));
                    }
                }
                s => t.failures.push(format!("{what}: unexpected status {s}")),
            }
            None
        }
    };
    if let Some(l) = line {
        tally.lock().unwrap().failures.push(l);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restart_under_load() {
    let Some(bin) = std::env::var("IDFLOW_TEST_PG_BIN").ok().filter(|s| !s.is_empty()).map(PathBuf::from) else {
        eprintln!("IDFLOW_TEST_PG_BIN not set: PostgreSQL restart test skipped (scripts/test.sh sets it)");
        return;
    };
    let cluster = Cluster::init(bin);
    let dir = scratch_dir("pgrestart");
    let _cleanup = TempDir(dir.clone());
    let mut node =
        Node::start(&dir, &cluster.dsn(), "database: { acquire_timeout: 2s }\nlimits: { request_timeout: 15s }\n")
            .await;
    let email = unique_email();
    let (token, _) = node.register(&email, PASSWORD).await;
    let node_url = node.public.clone();

    let tally = std::sync::Arc::new(std::sync::Mutex::new(Tally::default()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = vec![];
    for w in 0..4 {
        let (tally, stop, token, email, base) =
            (tally.clone(), stop.clone(), token.clone(), email.clone(), node_url.clone());
        workers.push(tokio::spawn(async move {
            let c = reqwest::Client::builder().timeout(Duration::from_secs(25)).build().unwrap();
            let started = Instant::now();
            let mut n = 0;
            // Bounded in count and time.
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 5000 && started.elapsed() < Duration::from_secs(120) {
                n += 1;
                match w {
                    0 => record(&tally, "whoami", c.get(format!("{base}/sessions/whoami")).header("X-Session-Token", &token).send().await).await,
                    1 => {
                        let r = c.get(format!("{base}/self-service/settings/api")).header("X-Session-Token", &token).send().await;
                        let id = match r {
                            Ok(r) if r.status() == 200 => r.json::<Value>().await.ok().and_then(|v| v["id"].as_str().map(str::to_string)),
                            other => {
                                record(&tally, "settings create", other).await;
                                None
                            }
                        };
                        if let Some(id) = id {
                            let r = c
                                .post(format!("{base}/self-service/settings?flow={id}"))
                                .header("X-Session-Token", &token)
                                .json(&json!({"method": "profile", "traits": {"email": email, "name": {"first": format!("n{n}")}}}))
                                .send()
                                .await;
                            record(&tally, "settings submit", r).await;
                        }
                    }
                    2 => record(&tally, "v1 session", c.get(format!("{base}/v1/sessions/current")).bearer_auth(&token).send().await).await,
                    _ => {
                        let r = c.get(format!("{base}/self-service/login/api")).send().await;
                        record(&tally, "login create", r).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    cluster.stop();
    // While the database is away: clean 503s in each envelope.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let c = api_client();
    let r = c.get(node.url("/health/ready")).send().await.unwrap();
    assert_eq!(r.status(), 503, "readiness reports the database");
    let r = c.get(node.url("/sessions/whoami")).header("X-Session-Token", &token).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], 503, "Kratos envelope: {v}");
    let r = c.get(node.url("/v1/sessions/current")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["status"], 503, "v1 envelope: {v}");
    assert_eq!(c.get(node.url("/health/alive")).send().await.unwrap().status(), 200, "the process itself is alive");
    tokio::time::sleep(Duration::from_secs(2)).await;

    cluster.start();
    // Recovery without restarting the node.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if c.get(node.url("/health/ready")).send().await.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "the node did not recover:\n{}", node.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert!(node.child.try_wait().unwrap().is_none(), "the node is still running");
    assert!(node.login(&email, PASSWORD).await.is_some(), "login works after recovery");
    let flow = node.settings_flow(&token).await;
    let r = c
        .post(node.url(&format!("/self-service/settings?flow={flow}")))
        .header("X-Session-Token", &token)
        .json(&json!({"method": "profile", "traits": {"email": email}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "settings work after recovery");

    {
        let t = tally.lock().unwrap();
        eprintln!("postgres restart under load: {t:?}");
        assert!(t.failures.is_empty(), "unclean answers: {:#?}", t.failures);
        assert!(t.unavailable > 0, "the outage was seen as 503s");
        assert!(t.ok > 0);
        assert_eq!(t.other_5xx, 0, "database errors are 503, not 500");
    }
    let log = node.log_text();
    assert!(!log.contains("panicked"), "no panic:\n{log}");
    node.kill9().await;
}

/// A tiny web-hook receiver that holds the first call until released.
async fn holding_hook() -> (u16, tokio::sync::oneshot::Receiver<()>, tokio::sync::oneshot::Sender<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (arrived_tx, arrived_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let Ok((mut s, _)) = l.accept().await else { return };
        let mut buf = vec![0u8; 65536];
        let mut got = 0;
        // Read the head and the body (Content-Length).
        loop {
            let Ok(n) = s.read(&mut buf[got..]).await else { return };
            if n == 0 {
                return;
            }
            got += n;
            let text = String::from_utf8_lossy(&buf[..got]).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if got >= end + 4 + len {
                    break;
                }
            }
        }
        let _ = arrived_tx.send(());
        let _ = release_rx.await;
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
    });
    (port, arrived_rx, release_tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_drains_in_flight_requests() {
    let dir = scratch_dir("sigterm");
    let _cleanup = TempDir(dir.clone());
    let (hook_port, arrived, release) = holding_hook().await;
    let extra = format!(
        "selfservice:\n  flows:\n    settings:\n      after:\n        profile:\n          hooks:\n            - hook: web_hook\n              config: {{ url: \"http://127.0.0.1:{hook_port}/hook\", can_interrupt: true, timeout: 30s }}\n"
    );
    let dsn = format!("sqlite://{}/idflow.db?mode=rwc", dir.display());
    let mut node = Node::start(&dir, &dsn, &extra).await;
    let email = unique_email();
    let (token, _) = node.register(&email, PASSWORD).await;
    let flow = node.settings_flow(&token).await;
    let submit = tokio::spawn(
        api_client()
            .post(node.url(&format!("/self-service/settings?flow={flow}")))
            .header("X-Session-Token", &token)
            .json(&json!({"method": "profile", "traits": {"email": email, "name": {"first": "Drained"}}}))
            .timeout(Duration::from_secs(60))
            .send(),
    );
    tokio::time::timeout(Duration::from_secs(30), arrived).await.expect("hook called").unwrap();
    // The request is inside its handler now: ask the process to stop.
    let pid = node.child.id().unwrap();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap().success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(node.child.try_wait().unwrap().is_none(), "still draining while a request is in flight");
    release.send(()).unwrap();
    let r = submit.await.unwrap().expect("the in-flight request completes");
    assert_eq!(r.status(), 200, "the in-flight request was served");
    let status =
        tokio::time::timeout(Duration::from_secs(30), node.child.wait()).await.expect("process exits").unwrap();
    assert!(status.success(), "clean exit after draining: {status}\n{}", node.log_text());
}
