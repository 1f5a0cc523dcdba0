//! `idflow-bench peers`: idflow side by side with django-allauth (headless app API + MFA) and
//! better-auth (twoFactor plugin), all on SQLite on this machine, driven by the same
//! closed-loop client. Cells run interleaved (idflow, allauth, better-auth, idflow, …) so the
//! ratios compare runs made under the same machine load.
//!
//! Every system gets the same treatment: a fresh SQLite file in WAL mode
//! (synchronous=NORMAL), N seeded identities, one signed-up account per client worker (reused
//! across cells; passwords and rotated tokens are tracked), one warm-up second before each
//! cell, and its peak RSS summed over its whole process tree (VmHWM, reset before each cell
//! through /proc/<pid>/clear_refs).
//!
//! Scenario adapters (what one iteration of a worker sends):
//!
//! | scenario | idflow | django-allauth (`/_allauth/app/v1`, `X-Session-Token`) | better-auth (`/api/auth`, session cookie) |
//! |---|---|---|---|
//! | create_fetch | `GET /self-service/settings/api` + `GET /self-service/settings/flows?id=` | `GET account/email` + `GET account/authenticators` | `GET get-session` + `GET list-accounts` |
//! | profile | `POST /self-service/settings?flow=` (method profile, new name) | `PATCH account/email` (mark primary) | `POST update-user` (new name) |
//! | password | `POST /self-service/settings?flow=` (method password) | `POST account/password/change` | `POST change-password` |
//! | whoami | `GET /sessions/whoami` | `GET auth/session` | `GET get-session` |
//! | totp_start | `GET /v1/flows/settings` + `POST …:submit` (method totp, no code: secret + QR) | `GET account/authenticators/totp` | `POST two-factor/enable` (needs the password) |

use crate::{Stats, User, client, json_ok, new_user, parse_dur, step};
use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Idflow,
    /// Another idflow binary (`--baseline`), e.g. the build before a change.
    IdflowBefore,
    Allauth,
    BetterAuth,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Idflow => "idflow",
            Kind::IdflowBefore => "idflow (baseline)",
            Kind::Allauth => "django-allauth",
            Kind::BetterAuth => "better-auth",
        }
    }
    fn parse(s: &str) -> anyhow::Result<Kind> {
        Ok(match s {
            "idflow" => Kind::Idflow,
            "idflow-baseline" | "baseline" => Kind::IdflowBefore,
            "allauth" | "django-allauth" => Kind::Allauth,
            "better-auth" | "betterauth" => Kind::BetterAuth,
            other => bail!("unknown system {other} (idflow, allauth, better-auth)"),
        })
    }
}

pub const BENCH_PASSWORD: &str = "bench-Password-0";

/// A signed-up benchmark account on one system.
pub struct Account {
    pub u: User,
    /// The current password (allauth and better-auth need it to change it).
    pub password: String,
}

// ------------------------------------------------------------------------------------------
// Process trees: RSS
// ------------------------------------------------------------------------------------------

fn ppid_of(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid …; comm may contain spaces and parentheses.
    let rest = &s[s.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// `root` and all its descendants.
pub fn tree_pids(root: u32) -> Vec<u32> {
    let mut all: Vec<(u32, u32)> = vec![];
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok())
                && let Some(pp) = ppid_of(pid)
            {
                all.push((pid, pp));
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(all.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Sum of `field` (VmRSS, VmHWM) over the process tree, KiB.
pub fn tree_kib(root: u32, field: &str) -> u64 {
    tree_pids(root).into_iter().map(|p| status_kib(p, field)).sum()
}

/// CPU time (user + system, in clock ticks) that `pid` has used so far, all its threads.
fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| stat_cpu_ticks(&s)).unwrap_or(0)
}

/// `utime + stime` of a `/proc/<pid>/stat` line. The command (field 2) is in parentheses and
/// may itself hold spaces and parentheses, so fields are counted from the last `)`: state(3)
/// ppid(4) … utime(14) stime(15).
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let f: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// CPU time of the whole process tree of `root` so far, in seconds.
pub fn tree_cpu_secs(root: u32) -> f64 {
    let ticks: u64 = tree_pids(root).into_iter().map(cpu_ticks).sum();
    ticks as f64 / clock_ticks_per_sec()
}

fn clock_ticks_per_sec() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The number of CPUs in a `taskset -c` list such as `0`, `0-1` or `0,2-3`.
pub fn cpu_count(list: &str) -> anyhow::Result<usize> {
    let mut n = 0;
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (
            a.parse().with_context(|| format!("bad CPU list {list:?}"))?,
            b.parse().with_context(|| format!("bad CPU list {list:?}"))?,
        );
        if b < a {
            bail!("bad CPU list {list:?}");
        }
        n += b - a + 1;
    }
    if n == 0 {
        bail!("empty CPU list {list:?}");
    }
    Ok(n)
}

/// Bind this process, every thread of it, to the CPU list `list`.
pub fn pin_self(list: &str) -> anyhow::Result<()> {
    run(
        Command::new("taskset").args(["-a", "-p", "-c", list, &std::process::id().to_string()]),
        "taskset (pinning the load generator)",
    )
    .map(|_| ())
}

/// A command that runs `program` on the server CPUs in pinned mode.
fn server_command(o: &PeerOpts, program: &str) -> Command {
    match &o.server_cpus {
        Some(list) => {
            let mut c = Command::new("taskset");
            c.args(["-c", list, program]);
            c
        }
        None => Command::new(program),
    }
}

/// Reset the peak RSS (VmHWM) of every process of the tree. Returns whether it worked.
pub fn reset_hwm(root: u32) -> bool {
    tree_pids(root).into_iter().all(|p| std::fs::write(format!("/proc/{p}/clear_refs"), "5").is_ok())
}

// ------------------------------------------------------------------------------------------
// Servers
// ------------------------------------------------------------------------------------------

pub struct Running {
    pub kind: Kind,
    /// Base of the API (idflow: the public root; allauth: `/_allauth/app/v1`; better-auth: `/api/auth`).
    pub base: String,
    /// `Origin` header value (better-auth checks it on state-changing requests).
    pub origin: String,
    pub child: Option<Child>,
    /// idflow's own process handle (kept alive, killed on drop).
    pub idflow: Option<crate::Server>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        match (&self.idflow, &self.child) {
            (Some(s), _) => s.child.id(),
            (None, Some(c)) => c.id(),
            (None, None) => 0,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            // gunicorn and the node cluster primary stop their workers on SIGTERM.
            let pids = tree_pids(c.id());
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            for _ in 0..50 {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
            for p in pids.into_iter().skip(1) {
                if std::fs::metadata(format!("/proc/{p}")).is_ok() {
                    let _ = Command::new("kill").arg("-KILL").arg(p.to_string()).status();
                }
            }
        }
    }
}

async fn wait_healthy(url: &str, child: &mut Child, what: &str) -> anyhow::Result<()> {
    let c = client()?;
    for _ in 0..600 {
        if c.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        if let Ok(Some(st)) = child.try_wait() {
            bail!("{what} exited during start-up ({st})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what} did not answer {url} within 60 s")
}

fn run(cmd: &mut Command, what: &str) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("could not run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub struct PeerOpts {
    pub server: String,
    /// A second idflow binary measured alongside (`idflow-baseline`).
    pub baseline: Option<String>,
    pub peers_dir: PathBuf,
    pub python: Option<String>,
    pub node: String,
    pub identities: u64,
    pub workers: usize,
    pub work_dir: PathBuf,
    /// Pinned mode: the servers' CPUs (`taskset -c` list) and the load generator's.
    pub server_cpus: Option<String>,
    pub client_cpus: Option<String>,
}

async fn start_idflow(o: &PeerOpts, kind: Kind) -> anyhow::Result<Running> {
    let (bin, file) = match kind {
        Kind::IdflowBefore => (o.baseline.clone().unwrap_or_else(|| o.server.clone()), "idflow-baseline.db"),
        _ => (o.server.clone(), "idflow.db"),
    };
    let db = o.work_dir.join(file);
    let dsn = format!("sqlite://{}?mode=rwc", db.display());
    let t = Instant::now();
    if kind == Kind::IdflowBefore {
        // An older binary may not know this build's migrations: it seeds its own database,
        // through its own `identities import` (one prehashed password, reused).
        let hashed = idflow_core::password::hash(&Default::default(), "seed-Password-0")
            .map_err(|e| anyhow::anyhow!("hashing the seed password: {e}"))?;
        let list: Vec<Value> = (0..o.identities)
            .map(|i| {
                json!({
                    "traits": {"email": format!("seed-{i}@example.com"), "name": {"first": "Seed", "last": format!("{i}")}},
                    "credentials": {"password": {"config": {"hashed_password": hashed}}},
                })
            })
            .collect();
        let file = o.work_dir.join("baseline-identities.json");
        std::fs::write(&file, serde_json::to_vec(&list)?)?;
        run(
            Command::new(&bin)
                .arg("identities")
                .arg("import")
                .arg(&file)
                .args(["--database", &dsn])
                .env("IDFLOW_LOG", "error"),
            "the baseline's identities import",
        )?;
    } else {
        crate::seed::seed_to(&dsn, o.identities, 8).await?;
    }
    eprintln!("[peers] {}: seeded {} identities in {:.1} s", kind.name(), o.identities, t.elapsed().as_secs_f64());
    let srv = crate::start_server_on(&bin, Some(&dsn), o.server_cpus.as_deref()).await?;
    let base = srv.base.clone();
    Ok(Running { kind, origin: base.clone(), base, child: None, idflow: Some(srv) })
}

async fn start_allauth(o: &PeerOpts) -> anyhow::Result<Running> {
    let dir = o.peers_dir.join("allauth");
    let venv = o.peers_dir.join(".venv/bin");
    let python = o.python.clone().unwrap_or_else(|| venv.join("python").display().to_string());
    let db = o.work_dir.join("allauth.db");
    let t = Instant::now();
    run(
        Command::new(&python).args(["manage.py", "migrate", "-v0"]).current_dir(&dir).env("BENCH_DB", &db),
        "allauth migrate",
    )?;
    run(
        Command::new(&python)
            .args(["manage.py", "seed_users", &o.identities.to_string()])
            .current_dir(&dir)
            .env("BENCH_DB", &db),
        "allauth seed_users",
    )?;
    eprintln!("[peers] django-allauth: seeded {} users in {:.1} s", o.identities, t.elapsed().as_secs_f64());
    let port = crate::free_port()?;
    let gunicorn = venv.join("gunicorn");
    let log = std::fs::File::create(o.work_dir.join("gunicorn.log"))?;
    let mut child = server_command(o, &gunicorn.display().to_string())
        .args([
            "benchsite.wsgi",
            "--workers",
            &o.workers.to_string(),
            "--worker-class",
            "sync",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--no-control-socket",
            "--log-level",
            "warning",
        ])
        .current_dir(&dir)
        .env("BENCH_DB", &db)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("could not start {}", gunicorn.display()))?;
    let root = format!("http://127.0.0.1:{port}");
    wait_healthy(&format!("{root}/health"), &mut child, "gunicorn").await?;
    Ok(Running {
        kind: Kind::Allauth,
        base: format!("{root}/_allauth/app/v1"),
        origin: root,
        child: Some(child),
        idflow: None,
    })
}

async fn start_better_auth(o: &PeerOpts) -> anyhow::Result<Running> {
    let dir = o.peers_dir.join("better-auth");
    let db = o.work_dir.join("better-auth.db");
    let dbs = db.display().to_string();
    let t = Instant::now();
    run(Command::new(&o.node).args(["server.mjs", "migrate", "--db", &dbs]).current_dir(&dir), "better-auth migrate")?;
    run(
        Command::new(&o.node)
            .args(["server.mjs", "seed", "--db", &dbs, "--count", &o.identities.to_string()])
            .current_dir(&dir),
        "better-auth seed",
    )?;
    eprintln!("[peers] better-auth: seeded {} users in {:.1} s", o.identities, t.elapsed().as_secs_f64());
    let port = crate::free_port()?;
    let log = std::fs::File::create(o.work_dir.join("better-auth.log"))?;
    let mut child = server_command(o, &o.node)
        .args(["server.mjs", "serve", "--db", &dbs, "--port", &port.to_string(), "--workers", &o.workers.to_string()])
        .current_dir(&dir)
        .env("NODE_ENV", "production")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("could not start node")?;
    let root = format!("http://127.0.0.1:{port}");
    wait_healthy(&format!("{root}/health"), &mut child, "better-auth").await?;
    Ok(Running {
        kind: Kind::BetterAuth,
        base: format!("{root}/api/auth"),
        origin: root,
        child: Some(child),
        idflow: None,
    })
}

// ------------------------------------------------------------------------------------------
// Scenario adapters
// ------------------------------------------------------------------------------------------

/// Sign up one benchmark account (through each system's public sign-up API).
pub async fn signup(c: &reqwest::Client, t: &Running, i: usize) -> anyhow::Result<Account> {
    let email = format!("bench-{}-{i}@example.com", uuid::Uuid::new_v4().simple());
    match t.kind {
        Kind::Idflow | Kind::IdflowBefore => {
            Ok(Account { u: new_user(c, &t.base, i).await?, password: BENCH_PASSWORD.into() })
        }
        Kind::Allauth => {
            let v = json_ok(
                c.post(format!("{}/auth/signup", t.base))
                    .json(&json!({"email": email, "password": BENCH_PASSWORD}))
                    .send()
                    .await?,
            )
            .await?;
            let token = v["meta"]["session_token"].as_str().context("allauth signup: no session_token")?.to_string();
            Ok(Account { u: User { token, flow: String::new(), email, step: 0 }, password: BENCH_PASSWORD.into() })
        }
        Kind::BetterAuth => {
            let r = c
                .post(format!("{}/sign-up/email", t.base))
                .header("Origin", &t.origin)
                .json(&json!({"email": email, "password": BENCH_PASSWORD, "name": "Bench User"}))
                .send()
                .await?;
            let cookie = r
                .headers()
                .get_all(reqwest::header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|v| v.starts_with("better-auth.session_token="))
                .and_then(|v| v.split(';').next())
                .map(str::to_string);
            let v = json_ok(r).await.context("better-auth sign-up")?;
            let cookie = cookie.with_context(|| format!("better-auth sign-up: no session cookie in the answer {v}"))?;
            Ok(Account {
                u: User { token: cookie, flow: String::new(), email, step: 0 },
                password: BENCH_PASSWORD.into(),
            })
        }
    }
}

fn next_password(a: &Account) -> String {
    let p = format!("bench-Password-{}", a.u.step % 2 + 1);
    if p == a.password { format!("bench-Password-{}", a.u.step % 2 + 3) } else { p }
}

async fn allauth_step(c: &reqwest::Client, t: &Running, scenario: &str, a: &mut Account) -> anyhow::Result<()> {
    let b = &t.base;
    let get = |path: &str| c.get(format!("{b}/{path}")).header("X-Session-Token", &a.u.token);
    match scenario {
        "create_fetch" => {
            json_ok(get("account/email").send().await?).await?;
            json_ok(get("account/authenticators").send().await?).await?;
        }
        "whoami" => {
            let v = json_ok(get("auth/session").send().await?).await?;
            if v["meta"]["is_authenticated"] != Value::Bool(true) {
                bail!("not authenticated: {v}");
            }
        }
        "profile" => {
            json_ok(
                c.patch(format!("{b}/account/email"))
                    .header("X-Session-Token", &a.u.token)
                    .json(&json!({"email": a.u.email, "primary": true}))
                    .send()
                    .await?,
            )
            .await?;
        }
        "password" => {
            let new = next_password(a);
            let v = json_ok(
                c.post(format!("{b}/account/password/change"))
                    .header("X-Session-Token", &a.u.token)
                    .json(&json!({"current_password": a.password, "new_password": new}))
                    .send()
                    .await?,
            )
            .await?;
            a.password = new;
            // Django cycles the session key on a password change: allauth returns the new token.
            if let Some(tok) = v["meta"]["session_token"].as_str() {
                a.u.token = tok.to_string();
            }
        }
        "totp_start" => {
            // allauth answers 404 with a fresh secret and otpauth URL while TOTP is not active.
            let r = get("account/authenticators/totp").send().await?;
            let st = r.status();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            if v["meta"]["secret"].as_str().is_none() {
                bail!("HTTP {st}: {v}");
            }
        }
        other => bail!("scenario {other} has no django-allauth adapter"),
    }
    Ok(())
}

async fn better_auth_step(c: &reqwest::Client, t: &Running, scenario: &str, a: &mut Account) -> anyhow::Result<()> {
    let b = &t.base;
    let get = |path: &str| c.get(format!("{b}/{path}")).header("Cookie", &a.u.token).header("Origin", &t.origin);
    let post = |path: &str, body: Value| {
        c.post(format!("{b}/{path}")).header("Cookie", &a.u.token).header("Origin", &t.origin).json(&body)
    };
    match scenario {
        "create_fetch" => {
            let s = json_ok(get("get-session").send().await?).await?;
            if s.is_null() {
                bail!("no session");
            }
            json_ok(get("list-accounts").send().await?).await?;
        }
        "whoami" => {
            let s = json_ok(get("get-session").send().await?).await?;
            if s["user"]["id"].as_str().is_none() {
                bail!("no session: {s}");
            }
        }
        "profile" => {
            json_ok(post("update-user", json!({"name": format!("N{}", a.u.step)})).send().await?).await?;
        }
        "password" => {
            let new = next_password(a);
            json_ok(
                post(
                    "change-password",
                    json!({"currentPassword": a.password, "newPassword": new, "revokeOtherSessions": false}),
                )
                .send()
                .await?,
            )
            .await?;
            a.password = new;
        }
        "totp_start" => {
            let v = json_ok(post("two-factor/enable", json!({"password": a.password})).send().await?).await?;
            if v["totpURI"].as_str().is_none() {
                bail!("no totpURI: {v}");
            }
        }
        other => bail!("scenario {other} has no better-auth adapter"),
    }
    Ok(())
}

/// One iteration of `scenario` for account `a` on system `t`.
pub async fn peer_step(c: &reqwest::Client, t: &Running, scenario: &str, a: &mut Account) -> anyhow::Result<()> {
    match t.kind {
        Kind::Idflow | Kind::IdflowBefore => {
            if scenario == "password" {
                // Keep the account's password in step with what idflow's adapter sets.
                a.password = format!("bench-Password-{}", (a.u.step + 1) % 2 + 1);
            }
            if step(c, &t.base, scenario, &mut a.u).await { Ok(()) } else { bail!("idflow {scenario} failed") }
        }
        Kind::Allauth => {
            a.u.step += 1;
            allauth_step(c, t, scenario, a).await
        }
        Kind::BetterAuth => {
            a.u.step += 1;
            better_auth_step(c, t, scenario, a).await
        }
    }
}

// ------------------------------------------------------------------------------------------
// Drivers
// ------------------------------------------------------------------------------------------

fn stats(scenario: &str, concurrency: usize, h: &Histogram<u64>, errors: u64, secs: f64) -> Stats {
    Stats {
        scenario: scenario.to_string(),
        concurrency,
        requests: h.len(),
        errors,
        secs,
        p50_ms: h.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
    }
}

/// Closed loop: one worker per account, back to back, for `dur`. With `rate > 0`, open loop
/// instead: iterations are scheduled at `rate` per second in total; one sent late because its
/// worker was still busy is counted from its scheduled start (so a stall is not hidden).
pub async fn drive_accounts(
    c: &reqwest::Client,
    t: &Arc<Running>,
    scenario: &str,
    accounts: Vec<Account>,
    dur: Duration,
    rate: f64,
) -> anyhow::Result<(Stats, Vec<Account>, Option<String>)> {
    let concurrency = accounts.len();
    let errors = Arc::new(AtomicU64::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let slot = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = vec![];
    for mut a in accounts {
        let (c, t, scenario, errors, first_error, slot) =
            (c.clone(), t.clone(), scenario.to_string(), errors.clone(), first_error.clone(), slot.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).ok();
            loop {
                let t0 = if rate > 0.0 {
                    let i = slot.fetch_add(1, Ordering::Relaxed);
                    let at = start + Duration::from_secs_f64(i as f64 / rate);
                    if at >= deadline {
                        break;
                    }
                    if Instant::now() >= at {
                        // Behind schedule (the previous request ran long): count from the
                        // scheduled time, so a server stall is not hidden.
                        at
                    } else {
                        // On time: count from the actual send, so the client timer's own
                        // lateness (about a millisecond) is not charged to the server.
                        tokio::time::sleep_until(at.into()).await;
                        Instant::now()
                    }
                } else {
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    now
                };
                if let Err(e) = peer_step(&c, &t, &scenario, &mut a).await {
                    errors.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut g) = first_error.lock() {
                        g.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
                if let Some(h) = h.as_mut() {
                    let _ = h.record(u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX).max(1));
                }
            }
            (h, a)
        }));
    }
    let mut all = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    let mut back = vec![];
    for task in tasks {
        let (h, a) = task.await?;
        if let Some(h) = h {
            all.add(h)?;
        }
        back.push(a);
    }
    let secs = start.elapsed().as_secs_f64();
    let err = first_error.lock().ok().and_then(|g| g.clone());
    Ok((stats(scenario, concurrency, &all, errors.load(Ordering::Relaxed), secs), back, err))
}

// ------------------------------------------------------------------------------------------
// The matrix
// ------------------------------------------------------------------------------------------

pub struct MatrixOpts {
    pub systems: Vec<String>,
    pub scenarios: Vec<String>,
    pub concurrency: Vec<usize>,
    pub duration: String,
    pub warmup: String,
    pub rounds: usize,
    /// Open-loop rate for idflow's fetch-flow latency check (0: skip).
    pub rate: f64,
    pub out: Option<String>,
}

struct Cell {
    kind: Kind,
    scenario: String,
    concurrency: usize,
    round: usize,
    st: Stats,
    hwm_kib: u64,
    /// Server CPU time (its whole process tree) per completed iteration, ms.
    cpu_ms: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Bare argon2id with idflow's default parameters: hashes per second with one thread per core
/// (the ceiling for any password change on this machine), each thread pinned to `cpus` (the
/// server CPUs in pinned mode) when given.
fn argon2_ceiling(threads: usize, secs: f64, cpus: Option<&str>) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let total = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let hs: Vec<_> = (0..threads)
        .map(|i| {
            let total = total.clone();
            let cpus = cpus.map(str::to_owned);
            std::thread::spawn(move || {
                if let Some(list) = &cpus {
                    pin_thread(list);
                }
                let cfg = idflow_core::password::HashersConfig::default();
                // As on the server's hashing threads: the working memory is reused.
                idflow_core::password::keep_argon2_memory();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    if idflow_core::password::hash(&cfg, &format!("floor-Password-{i}-{n}")).is_ok() {
                        n += 1;
                    }
                }
                total.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    for h in hs {
        let _ = h.join();
    }
    Ok(total.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64())
}

/// Pin the calling thread (not the whole load generator) to `list` with `taskset`.
fn pin_thread(list: &str) {
    // `/proc/thread-self` links to `<pid>/task/<tid>`.
    let tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|t| t.to_string_lossy().into_owned()));
    if let Some(tid) = tid {
        let _ = Command::new("taskset").args(["-p", "-c", list, &tid]).stdout(std::process::Stdio::null()).status();
    }
}

fn hasher_text(kind: Kind) -> &'static str {
    match kind {
        Kind::Idflow => {
            "argon2id, m=19456 KiB, t=2, p=1 (idflow's default); a password change derives once: the privileged session stands in for the current password, and the new password derived with the current hash's salt is both the same-as-old check and the new hash"
        }
        Kind::IdflowBefore => {
            "argon2id, m=19456 KiB, t=2, p=1; in builds before the one-derivation change, a password change derives twice, concurrently: the new hash and the check that it differs from the old password"
        }
        Kind::Allauth => {
            "PBKDF2-SHA256, 1 000 000 iterations (Django 5.2's default hasher); a password change checks the current password and hashes the new one: 2 derivations"
        }
        Kind::BetterAuth => {
            "scrypt N=16384, r=16, p=1, 64-byte key (better-auth's default, node:crypto on the libuv pool); a password change checks the current password and hashes the new one: 2 derivations; `two-factor/enable` checks the password: 1 derivation"
        }
    }
}

pub async fn run_peers(o: PeerOpts, m: MatrixOpts) -> anyhow::Result<()> {
    let dur = parse_dur(&m.duration)?;
    let warm = parse_dur(&m.warmup)?;
    let kinds: Vec<Kind> = m.systems.iter().map(|s| Kind::parse(s)).collect::<anyhow::Result<_>>()?;
    std::fs::create_dir_all(&o.work_dir)?;
    // The CPUs the servers run on: the pinned set, or the whole machine.
    let cores = match &o.server_cpus {
        Some(list) => cpu_count(list)?,
        None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    };

    // Start everything first, then measure: idle servers cost no CPU, and the interleaved
    // order needs all of them up.
    let mut targets: Vec<Arc<Running>> = vec![];
    for k in &kinds {
        let r = match k {
            Kind::Idflow | Kind::IdflowBefore => start_idflow(&o, *k).await?,
            Kind::Allauth => start_allauth(&o).await?,
            Kind::BetterAuth => start_better_auth(&o).await?,
        };
        targets.push(Arc::new(r));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle: BTreeMap<Kind, (usize, u64)> =
        targets.iter().map(|t| (t.kind, (tree_pids(t.pid()).len(), tree_kib(t.pid(), "VmRSS:")))).collect();

    // One account per worker of the widest cell, reused by every cell.
    let c = client()?;
    let max_c = m.concurrency.iter().copied().max().unwrap_or(1);
    let mut accounts: BTreeMap<Kind, Vec<Account>> = BTreeMap::new();
    for t in &targets {
        let t0 = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        // better-auth's sign-up transaction is a deferred SQLite transaction: two node workers
        // signing up at once fail with SQLITE_BUSY_SNAPSHOT, so its accounts are made one by one.
        let sem = Arc::new(tokio::sync::Semaphore::new(if t.kind == Kind::BetterAuth { 1 } else { 8 }));
        for i in 0..max_c {
            let (c, t, sem) = (c.clone(), t.clone(), sem.clone());
            set.spawn(async move {
                let _p = sem.acquire_owned().await?;
                signup(&c, &t, i).await
            });
        }
        let mut v = vec![];
        while let Some(r) = set.join_next().await {
            v.push(r??);
        }
        eprintln!("[peers] {}: {} accounts signed up in {:.1} s", t.kind.name(), v.len(), t0.elapsed().as_secs_f64());
        accounts.insert(t.kind, v);
    }

    let mut cells: Vec<Cell> = vec![];
    let mut notes: Vec<String> = vec![];
    // The argon2id ceiling, measured in every round of the password cells right after them on
    // the server CPUs (the servers idle meanwhile): the machine's speed drifts over a run (a
    // VM's by ±15 % within minutes), so a ceiling measured once would not match the cells.
    let mut ceilings: Vec<f64> = vec![];
    let hwm_ok = targets.iter().all(|t| reset_hwm(t.pid()));
    for scenario in &m.scenarios {
        for &n in &m.concurrency {
            for round in 0..m.rounds.max(1) {
                for t in &targets {
                    let mut pool = accounts.remove(&t.kind).unwrap_or_default();
                    let rest = pool.split_off(n.min(pool.len()));
                    if !warm.is_zero() {
                        let (_, back, _) = drive_accounts(&c, t, scenario, pool, warm, 0.0).await?;
                        pool = back;
                    }
                    reset_hwm(t.pid());
                    let cpu0 = tree_cpu_secs(t.pid());
                    let (st, back, err) = drive_accounts(&c, t, scenario, pool, dur, 0.0).await?;
                    let cpu_ms = 1000.0 * (tree_cpu_secs(t.pid()) - cpu0) / (st.requests.max(1) as f64);
                    let hwm = tree_kib(t.pid(), "VmHWM:");
                    eprintln!(
                        "[peers] {:<14} {:<12} c={:<3} round {} {:>8.1} req/s  p50 {:>8.2} ms  p99 {:>8.2} ms  cpu {:>7.3} ms/op  errors {}  peak RSS {:.1} MiB",
                        t.kind.name(),
                        scenario,
                        n,
                        round + 1,
                        st.rps(),
                        st.p50_ms,
                        st.p99_ms,
                        cpu_ms,
                        st.errors,
                        mib(hwm)
                    );
                    if let Some(e) = err {
                        let e: String = e.chars().take(300).collect();
                        eprintln!("[peers]   first error: {e}");
                        notes.push(format!(
                            "{} {} c={}: {} errors, first: {}",
                            t.kind.name(),
                            scenario,
                            n,
                            st.errors,
                            e
                        ));
                    }
                    let mut pool = back;
                    pool.extend(rest);
                    accounts.insert(t.kind, pool);
                    cells.push(Cell {
                        kind: t.kind,
                        scenario: scenario.clone(),
                        concurrency: n,
                        round,
                        st,
                        hwm_kib: hwm,
                        cpu_ms,
                    });
                }
                if scenario == "password" {
                    let (secs, cpus) = (dur.as_secs_f64(), o.server_cpus.clone());
                    let r = tokio::task::spawn_blocking(move || argon2_ceiling(cores, secs, cpus.as_deref())).await??;
                    eprintln!("[peers] bare argon2id      c={n:<3} round {} {r:>8.1} hashes/s", round + 1);
                    ceilings.push(r);
                }
            }
        }
    }

    // Open-loop latency of idflow's flow fetch at a fixed rate.
    let mut rate_rows: Vec<(Kind, Stats)> = vec![];
    if m.rate > 0.0 {
        for t in targets.iter().filter(|t| matches!(t.kind, Kind::Idflow | Kind::IdflowBefore)) {
            let mut pool = accounts.remove(&t.kind).unwrap_or_default();
            let rest = pool.split_off(32.min(pool.len()));
            let (_, back, _) = drive_accounts(&c, t, "get", pool, warm, m.rate).await?;
            let (st, mut back, _) = drive_accounts(&c, t, "get", back, dur, m.rate).await?;
            back.extend(rest);
            accounts.insert(t.kind, back);
            eprintln!(
                "[peers] {} get at {} req/s: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
                t.kind.name(),
                m.rate,
                st.rps(),
                st.p50_ms,
                st.p99_ms
            );
            rate_rows.push((t.kind, st));
        }
    }

    drop(targets);
    // The ceiling is measured where the servers ran: on their CPUs in pinned mode.
    if let Some(list) = &o.server_cpus {
        pin_self(list)?;
    }
    let floor_ms = crate::argon2_floor(10)?;
    let floor_rps = if ceilings.is_empty() { argon2_ceiling(cores, 5.0, None)? } else { median(ceilings.clone()) };

    let md =
        report(&o, &m, &kinds, cores, &idle, &cells, &rate_rows, floor_ms, floor_rps, ceilings.len(), hwm_ok, &notes);
    println!("{md}");
    if let Some(path) = &m.out {
        std::fs::write(path, &md).with_context(|| format!("could not write {path}"))?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn report(
    o: &PeerOpts,
    m: &MatrixOpts,
    kinds: &[Kind],
    cores: usize,
    idle: &BTreeMap<Kind, (usize, u64)>,
    cells: &[Cell],
    rate_rows: &[(Kind, Stats)],
    floor_ms: f64,
    floor_rps: f64,
    ceiling_runs: usize,
    hwm_ok: bool,
    notes: &[String],
) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let placement = match (&o.server_cpus, &o.client_cpus) {
        (Some(sv), Some(cl)) => format!(
            "pinned: every server on CPU {sv} ({cores} core{}), the load generator on CPU {cl}",
            if cores == 1 { "" } else { "s" }
        ),
        _ => format!("shared: the servers and the load generator on the same {cores} cores"),
    };
    let _ = writeln!(
        s,
        "Run: {placement}; {} s per cell after a {} warm-up, concurrency {:?}, {} round(s) interleaved ({}), {} seeded identities per system, {} worker processes for gunicorn and node. Load average at the end: {}.\n",
        parse_dur(&m.duration).map(|d| d.as_secs_f64()).unwrap_or(0.0),
        m.warmup,
        m.concurrency,
        m.rounds.max(1),
        kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(", "),
        o.identities,
        o.workers,
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let _ = writeln!(s, "| system | processes | idle RSS (MiB) | password hasher |\n|---|---|---|---|");
    for k in kinds {
        let (procs, kib) = idle.get(k).copied().unwrap_or((0, 0));
        let _ = writeln!(s, "| {} | {} | {:.1} | {} |", k.name(), procs, mib(kib), hasher_text(*k));
    }
    let _ = writeln!(
        s,
        "\nMedians over the rounds. `idflow ÷` is idflow's throughput divided by this system's, per round, then the median. `CPU ms/op` is the server's CPU time (user + system, its whole process tree, from /proc) per completed iteration.{}\n",
        if hwm_ok { "" } else { " (Peak RSS could not be reset per cell here: it is the peak since start.)" }
    );
    let _ = writeln!(
        s,
        "| scenario | conc. | system | req/s | p50 ms | p99 ms | CPU ms/op | errors | peak RSS MiB | idflow ÷ |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    let mut scen: Vec<&str> = vec![];
    for c in cells {
        if !scen.contains(&c.scenario.as_str()) {
            scen.push(&c.scenario);
        }
    }
    fn pick<'a>(cells: &'a [Cell], k: Kind, sc: &str, n: usize) -> impl Iterator<Item = &'a Cell> {
        let sc = sc.to_string();
        cells.iter().filter(move |c| c.kind == k && c.scenario == sc && c.concurrency == n)
    }
    let mut summary: BTreeMap<(String, usize, Kind), (f64, f64, u64)> = BTreeMap::new();
    for sc in &scen {
        for &n in &m.concurrency {
            for &k in kinds {
                let v: Vec<&Cell> = pick(cells, k, sc, n).collect();
                if v.is_empty() {
                    continue;
                }
                let rps = median(v.iter().map(|c| c.st.rps()).collect());
                let p50 = median(v.iter().map(|c| c.st.p50_ms).collect());
                let p99 = median(v.iter().map(|c| c.st.p99_ms).collect());
                let cpu = median(v.iter().map(|c| c.cpu_ms).collect());
                let req: u64 = v.iter().map(|c| c.st.requests).sum();
                let err: u64 = v.iter().map(|c| c.st.errors).sum();
                let hwm = v.iter().map(|c| c.hwm_kib).max().unwrap_or(0);
                let ratio = if k == Kind::Idflow {
                    "—".to_string()
                } else {
                    let rs: Vec<f64> = v
                        .iter()
                        .filter_map(|c| {
                            pick(cells, Kind::Idflow, sc, n)
                                .find(|i| i.round == c.round)
                                .map(|i| i.st.rps() / c.st.rps().max(1e-9))
                        })
                        .collect();
                    if rs.is_empty() { "—".into() } else { format!("{:.1}×", median(rs)) }
                };
                summary.insert((sc.to_string(), n, k), (rps, p99, hwm));
                let _ = writeln!(
                    s,
                    "| {sc} | {n} | {} | {rps:.1} | {p50:.2} | {p99:.2} | {cpu:.3} | {:.2}% | {:.1} | {ratio} |",
                    k.name(),
                    if req == 0 { 0.0 } else { 100.0 * err as f64 / req as f64 },
                    mib(hwm)
                );
            }
        }
    }
    for (k, r) in rate_rows {
        let _ = writeln!(
            s,
            "\n{} `GET /self-service/settings/flows?id=` open loop at {} req/s (32 workers; latency from the send, or from the scheduled time for a request sent late): {:.0} req/s served, p50 {:.2} ms, p99 {:.2} ms, {} errors.",
            k.name(),
            m.rate,
            r.rps(),
            r.p50_ms,
            r.p99_ms,
            r.errors
        );
    }
    let when = if ceiling_runs > 0 {
        format!("the median of {ceiling_runs} measurements, one after each round of the password cells")
    } else {
        "measured after the run".to_owned()
    };
    let _ = writeln!(
        s,
        "\nBare argon2id (m=19456 KiB, t=2, p=1) on this machine: {floor_ms:.1} ms per hash on one thread (after the run, memory allocated per hash); {floor_rps:.1} hashes/s with {cores} threads and kept memory ({when}; the ceiling for password changes that hash once)."
    );

    // Targets.
    let _ = writeln!(s, "\nTargets (measured in this run):\n");
    let get = |sc: &str, n: usize, k: Kind| summary.get(&(sc.to_string(), n, k)).copied();
    let mark = |ok: bool| if ok { "met" } else { "MISSED" };
    let top = m.concurrency.iter().copied().max().unwrap_or(1);
    // Throughput targets of the performance round (#16), at the top concurrency.
    for (sc, k, want) in [
        ("create_fetch", Kind::Allauth, 20.0),
        ("create_fetch", Kind::BetterAuth, 6.0),
        ("profile", Kind::Allauth, 20.0),
        ("profile", Kind::BetterAuth, 6.0),
        ("whoami", Kind::BetterAuth, 12.0),
        ("password", Kind::BetterAuth, 8.0),
    ] {
        if let (Some((ir, _, _)), Some((pr, _, _))) = (get(sc, top, Kind::Idflow), get(sc, top, k)) {
            let x = ir / pr.max(1e-9);
            let _ =
                writeln!(s, "- {sc} at c={top}: idflow {x:.1}× {} (target ≥ {want}×): {}", k.name(), mark(x >= want));
        }
    }
    // p99 lower than both peers in every cell.
    let mut worse: Vec<String> = vec![];
    let mut compared = 0;
    for ((sc, n, k), (_, pp99, _)) in &summary {
        if matches!(k, Kind::Idflow | Kind::IdflowBefore) {
            continue;
        }
        if let Some((_, ip99, _)) = get(sc, *n, Kind::Idflow) {
            compared += 1;
            if ip99 >= *pp99 {
                worse.push(format!("{sc} c={n} vs {} ({ip99:.2} ms vs {pp99:.2} ms)", k.name()));
            }
        }
    }
    if compared > 0 {
        let _ = writeln!(
            s,
            "- p99 lower than every peer in every cell ({compared} comparisons): {}{}",
            mark(worse.is_empty()),
            if worse.is_empty() { String::new() } else { format!(" — not in {}", worse.join("; ")) }
        );
    }
    if let Some((_, r)) = rate_rows.iter().find(|(k, _)| *k == Kind::Idflow) {
        let _ = writeln!(
            s,
            "- fetch-flow p99 at {} req/s: {:.2} ms (target < 2 ms): {}",
            m.rate,
            r.p99_ms,
            mark(r.p99_ms < 2.0 && r.errors == 0)
        );
    }
    if let Some((ir, _, _)) = get("password", top, Kind::Idflow) {
        let f = ir / floor_rps.max(1e-9);
        let _ = writeln!(
            s,
            "- password change at c={top}: {ir:.1} req/s = {:.0}% of the bare argon2id ceiling of one hash per change, {floor_rps:.1}/s (target ≥ 90%): {}",
            100.0 * f,
            mark(f >= 0.9),
        );
    }
    // Peak RSS of each system over the cells `keep` selects, idflow against the lightest peer.
    let rss_target = |s: &mut String, what: &str, keep: &dyn Fn(&Cell) -> bool| {
        let peak = |k: Kind| cells.iter().filter(|c| c.kind == k && keep(c)).map(|c| c.hwm_kib).max();
        let lightest = kinds
            .iter()
            .filter(|k| !matches!(k, Kind::Idflow | Kind::IdflowBefore))
            .filter_map(|k| peak(*k).map(|p| (p, *k)))
            .min();
        if let (Some(ip), Some((lp, lk))) = (peak(Kind::Idflow), lightest) {
            let _ = writeln!(
                s,
                "- {what}: idflow {:.1} MiB vs the lightest peer ({}) {:.1} MiB = 1/{:.1} (target ≤ 1/4): {}",
                mib(ip),
                lk.name(),
                mib(lp),
                lp as f64 / ip.max(1) as f64,
                mark(ip * 4 <= lp)
            );
        }
    };
    rss_target(&mut s, "peak RSS under load", &|_| true);
    rss_target(&mut s, "the same outside the password cells (argon2id holds 19 MiB per hash in progress)", &|c| {
        c.scenario != "password"
    });
    if let Some((_, kib)) = idle.get(&Kind::Idflow) {
        let _ = writeln!(s, "- idle RSS: idflow {:.1} MiB (target < 20 MiB): {}", mib(*kib), mark(mib(*kib) < 20.0));
    }
    if !notes.is_empty() {
        let _ = writeln!(s, "\nErrors seen:\n");
        for n in notes {
            let _ = writeln!(s, "- {n}");
        }
    }
    s
}

/// The default peers directory: `bench/peers` next to the workspace root.
pub fn default_peers_dir() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.join("../../bench/peers")
}

/// Scenarios every system has an adapter for.
pub const PEER_SCENARIOS: &str = "create_fetch,profile,password,whoami,totp_start";

/// Run a command line's worth of `run` to check the peers' toolchain before a long run.
pub fn check_tools(o: &PeerOpts, kinds: &[String]) -> anyhow::Result<()> {
    for k in kinds {
        match Kind::parse(k)? {
            Kind::IdflowBefore => {
                if o.baseline.as_deref().is_none_or(|b| !Path::new(b).exists()) {
                    bail!("the baseline idflow binary (--baseline) is missing");
                }
            }
            Kind::Idflow => {
                if !Path::new(&o.server).exists() {
                    bail!("idflow binary {} not found (build it: cargo build --release -p idflow-server)", o.server);
                }
            }
            Kind::Allauth => {
                let py = o.python.clone().unwrap_or_else(|| o.peers_dir.join(".venv/bin/python").display().to_string());
                run(
                    Command::new(&py).args(["-c", "import allauth, django, gunicorn"]),
                    "the allauth venv (run bench/run-peers.sh)",
                )?;
            }
            Kind::BetterAuth => {
                if !o.peers_dir.join("better-auth/node_modules/better-auth").exists() {
                    bail!(
                        "better-auth is not installed in {} (run bench/run-peers.sh)",
                        o.peers_dir.join("better-auth").display()
                    );
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_are_counted_like_taskset() {
        assert_eq!(cpu_count("0").unwrap(), 1);
        assert_eq!(cpu_count("0-1").unwrap(), 2);
        assert_eq!(cpu_count("0,2-3").unwrap(), 3);
        assert_eq!(cpu_count(" 1 , 3 ").unwrap(), 2);
        for bad in ["", ",", "a", "3-1", "0-", "-1"] {
            assert!(cpu_count(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn stat_lines_give_user_plus_system_ticks() {
        // A command name with spaces and a parenthesis must not shift the fields.
        let line = "4242 (idflow (a) b) S 1 4242 4242 0 -1 4194560 1 0 0 0 120 35 0 0 20 0 7 0 1 2 3";
        assert_eq!(stat_cpu_ticks(line), Some(155));
        assert_eq!(stat_cpu_ticks("4242 (x) S 1"), None);
        assert_eq!(stat_cpu_ticks("no parenthesis"), None);
    }

    #[test]
    fn the_process_tree_holds_children_and_counts_cpu() {
        let me = std::process::id();
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pids = tree_pids(me);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(pids[0], me);
        assert!(pids.contains(&child.id()), "{pids:?} lacks the child {}", child.id());
        // Burn CPU in this process until the tree's CPU time has grown by 50 ms (a reader that
        // sees nothing never gets there; the wall-clock bound only matters on a busy machine).
        let before = tree_cpu_secs(me);
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while tree_cpu_secs(me) < before + 0.05 {
            assert!(t.elapsed() < Duration::from_secs(60), "CPU time of the test process not read");
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        }
    }
}
