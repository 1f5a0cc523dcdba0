//! Command line: `serve`, `migrate`, `config show`, `identities import|list`, `courier watch`.

use crate::app::{self, Application};
use clap::{Args, Parser, Subcommand};
use idflow_core::config::Config;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(name = "idflow", version, about = "idflow: a self-hosted identity server (Kratos-compatible API)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Debug, Clone, Default)]
struct Common {
    /// YAML configuration file.
    #[arg(long, short = 'c', env = "IDFLOW_CONFIG")]
    config: Option<String>,
    /// Database URL (`sqlite://file.db?mode=rwc` or `postgres://…`); overrides `dsn`.
    #[arg(long)]
    database: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the public and admin APIs.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Development mode: allows plain-http cookies.
        #[arg(long)]
        dev: bool,
        /// Public listener address (host:port), overrides `serve.public.host/port`.
        #[arg(long)]
        public_addr: Option<String>,
        /// Admin listener address (host:port), overrides `serve.admin.host/port`.
        #[arg(long)]
        admin_addr: Option<String>,
        /// Do not send mail from this process (`courier.worker.enabled: false`); run
        /// `idflow courier watch` separately.
        #[arg(long, conflicts_with = "watch_courier")]
        no_watch_courier: bool,
        /// Send queued mail from this process (the default; accepted for Kratos compatibility).
        #[arg(long)]
        watch_courier: bool,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        common: Common,
    },
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Identity commands.
    Identities {
        #[command(subcommand)]
        cmd: IdentitiesCmd,
    },
    /// Mail courier commands.
    Courier {
        #[command(subcommand)]
        cmd: CourierCmd,
    },
    /// Print an OpenAPI 3.1 document of the API (JSON): the public listener's by default.
    Openapi {
        /// The v1 API alone (the checked-in `docs/openapi-v1.json`).
        #[arg(long, conflicts_with = "admin")]
        v1: bool,
        /// The admin listener's.
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Subcommand, Debug)]
enum CourierCmd {
    /// Send queued mail until stopped (a separate process from `serve`, which can then run
    /// with `--no-watch-courier`).
    Watch {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCmd {
    /// Print the effective configuration (secrets redacted).
    Show {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand, Debug)]
enum IdentitiesCmd {
    /// Import identities from a JSON file: one identity object or an array of them
    /// (the admin API's create body, with `credentials.password.config.password` or
    /// `hashed_password`).
    ///
    /// Prints `imported <id>` per identity on stdout and `record N: <message>` on stderr for a
    /// record that could not be imported (N is its 0-based position in the array). Shows
    /// progress (count, rate, time left) on stderr when stderr is a terminal. Exits non-zero
    /// when any record failed.
    Import {
        file: String,
        /// Stop at the first record that cannot be imported (default: report it and go on).
        #[arg(long)]
        stop_on_error: bool,
        #[command(flatten)]
        common: Common,
    },
    /// List identities as JSON.
    List {
        #[command(flatten)]
        common: Common,
    },
}

fn load_config(common: &Common) -> anyhow::Result<Config> {
    let text = match &common.config {
        Some(path) => {
            Some(std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("could not read config file {path}: {e}"))?)
        }
        None => None,
    };
    let mut cfg = Config::load(text.as_deref(), std::env::vars())?;
    if let Some(db) = &common.database {
        cfg.dsn = Some(db.clone());
    }
    Ok(cfg)
}

fn split_addr(a: &str) -> anyhow::Result<(String, u16)> {
    let (h, p) = a.rsplit_once(':').ok_or_else(|| anyhow::anyhow!("address {a:?} must be host:port"))?;
    let p: u16 = p.parse().map_err(|_| anyhow::anyhow!("address {a:?} has an invalid port"))?;
    Ok((h.trim_matches(['[', ']']).to_string(), p))
}

fn init_tracing(cfg: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("IDFLOW_LOG").unwrap_or_else(|_| EnvFilter::new(&cfg.log.level));
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if cfg.log.format == "json" {
        let _ = b.json().try_init();
    } else {
        let _ = b.try_init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Serve { common, dev, public_addr, admin_addr, no_watch_courier, watch_courier } => {
            let mut cfg = load_config(&common)?;
            cfg.dev |= dev;
            if no_watch_courier {
                cfg.courier.worker.enabled = false;
            } else if watch_courier {
                cfg.courier.worker.enabled = true;
            }
            if let Some(a) = public_addr {
                let (h, p) = split_addr(&a)?;
                cfg.serve.public.host = Some(h);
                cfg.serve.public.port = Some(p);
            }
            if let Some(a) = admin_addr {
                let (h, p) = split_addr(&a)?;
                cfg.serve.admin.host = Some(h);
                cfg.serve.admin.port = Some(p);
            }
            init_tracing(&cfg);
            if cfg.dsn.is_none() {
                tracing::info!("no database configured: using the SQLite file idflow.db");
            }
            let app = Application::build(cfg).await?;
            app.run_until_started(shutdown_signal(), || {
                release_startup_pages();
                // The background workers' first runs (the expired-row cleanup at start, the
                // courier's first poll) follow right after and run code serving never runs
                // again: drop that too once they are done.
                tokio::spawn(async {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    release_startup_pages();
                });
            })
            .await
        }
        Cmd::Openapi { v1, admin } => {
            use crate::openapi::{Doc, document_text};
            let doc = if v1 {
                Doc::V1
            } else if admin {
                Doc::Admin
            } else {
                Doc::Public
            };
            print!("{}", document_text(doc));
            Ok(())
        }
        Cmd::Migrate { common } => {
            let cfg = load_config(&common)?;
            init_tracing(&cfg);
            idflow_store::migrate(&app::dsn(&cfg)).await?;
            println!("migrations applied");
            Ok(())
        }
        Cmd::Config { cmd: ConfigCmd::Show { common } } => {
            let cfg = load_config(&common)?;
            print!("{}", cfg.redacted_yaml());
            Ok(())
        }
        Cmd::Identities { cmd } => identities(cmd).await,
        Cmd::Courier { cmd: CourierCmd::Watch { common } } => {
            let mut cfg = load_config(&common)?;
            cfg.serve.public.port = Some(0);
            cfg.serve.admin.port = Some(0);
            init_tracing(&cfg);
            let app = Application::build(cfg).await?;
            let Some(mail) = app.mail_transport() else {
                anyhow::bail!("`courier watch` needs an SMTP server: set courier.smtp.connection_uri");
            };
            tracing::info!("courier watching the mail queue");
            crate::courier::run_worker(app.engine(), Some(mail), shutdown_signal()).await;
            Ok(())
        }
    }
}

async fn engine_for(common: &Common) -> anyhow::Result<std::sync::Arc<idflow_core::selfservice::Engine>> {
    let mut cfg = load_config(common)?;
    // Offline commands do not listen: bind to ephemeral ports.
    cfg.serve.public.port = Some(0);
    cfg.serve.admin.port = Some(0);
    init_tracing(&cfg);
    Ok(Application::build(cfg).await?.engine())
}

async fn identities(cmd: IdentitiesCmd) -> anyhow::Result<()> {
    match cmd {
        IdentitiesCmd::Import { file, stop_on_error, common } => {
            let engine = engine_for(&common).await?;
            let text = std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("could not read {file}: {e}"))?;
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{file} is not valid JSON: {e}"))?;
            drop(text);
            let list = match v {
                serde_json::Value::Array(a) => a,
                other => vec![other],
            };
            let total = list.len();
            let mut progress = Progress::new(total, std::io::stderr().is_terminal());
            let (mut imported, mut failed) = (0usize, 0usize);
            for (i, item) in list.into_iter().enumerate() {
                let res = match serde_json::from_value(item) {
                    Ok(input) => engine.admin_create_identity(input).await.map_err(|e| e.reason.clone()),
                    Err(e) => Err(e.to_string()),
                };
                progress.clear();
                match res {
                    Ok(identity) => {
                        imported += 1;
                        println!("imported {}", identity.id);
                    }
                    Err(e) => {
                        failed += 1;
                        eprintln!("record {i}: {e}");
                        if stop_on_error {
                            progress.finish(i + 1);
                            anyhow::bail!(
                                "stopped at record {i} (--stop-on-error): {imported} imported, {} not attempted",
                                total - i - 1
                            );
                        }
                    }
                }
                progress.tick(i + 1);
            }
            progress.finish(total);
            if failed > 0 {
                anyhow::bail!("{failed} of {total} records could not be imported ({imported} imported)");
            }
            Ok(())
        }
        IdentitiesCmd::List { common } => {
            let engine = engine_for(&common).await?;
            let mut after = None;
            loop {
                let page = engine.store.list_identities(&Default::default(), after, 500).await?;
                for i in &page {
                    let j = crate::wire::identity(engine.base(), i, crate::wire::IdentityView::Admin, &[]);
                    println!("{j}");
                }
                match page.last() {
                    Some(l) if page.len() == 500 => after = Some(l.id),
                    _ => break,
                }
            }
            Ok(())
        }
    }
}

/// Progress of `identities import` on a terminal: one line on stderr, redrawn at most every
/// 200 ms, with the count, the rate and the estimated time left. Inactive (prints nothing) when
/// stderr is not a terminal.
struct Progress {
    total: usize,
    active: bool,
    start: Instant,
    last_draw: Option<Instant>,
    drawn: bool,
}

impl Progress {
    const EVERY: Duration = Duration::from_millis(200);

    fn new(total: usize, active: bool) -> Self {
        Progress { total, active, start: Instant::now(), last_draw: None, drawn: false }
    }

    /// `done` records are handled: redraw when the last draw is old enough.
    fn tick(&mut self, done: usize) {
        if !self.active {
            return;
        }
        let now = Instant::now();
        if self.last_draw.is_some_and(|t| now.duration_since(t) < Self::EVERY) {
            return;
        }
        self.last_draw = Some(now);
        self.draw(&progress_line(done, self.total, now.duration_since(self.start)));
    }

    /// Erase the progress line (before other output on the terminal).
    fn clear(&mut self) {
        if self.drawn {
            self.draw("");
            self.drawn = false;
        }
    }

    /// The final state, ended with a newline.
    fn finish(&mut self, done: usize) {
        if self.active {
            self.draw(&progress_line(done, self.total, self.start.elapsed()));
            eprintln!();
            self.drawn = false;
        }
    }

    fn draw(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        // A progress line that cannot be written is not worth failing the import for.
        let _ = write!(err, "\r\x1b[K{line}");
        let _ = err.flush();
        self.drawn = !line.is_empty();
    }
}

/// `1200/5000 records (24%), 310/s, 12s left`; the last line says `done in …` instead.
fn progress_line(done: usize, total: usize, elapsed: Duration) -> String {
    let pct = done.saturating_mul(100).checked_div(total).unwrap_or(100);
    let mut line = format!("{done}/{total} records ({pct}%)");
    let secs = elapsed.as_secs_f64();
    if done > 0 && secs > 0.0 {
        let rate = done as f64 / secs;
        line.push_str(&format!(", {rate:.0}/s"));
        if done < total {
            let left = Duration::try_from_secs_f64((total - done) as f64 / rate).unwrap_or(Duration::MAX);
            line.push_str(&format!(", {} left", short_duration(left)));
        } else {
            line.push_str(&format!(", done in {}", short_duration(elapsed)));
        }
    }
    line
}

/// `45s`, `3m05s`, `2h07m`.
fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

pub fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives every thread that allocates while the others hold their arenas an arena of its
/// own, up to 8 per core: on one core the blocking threads (checkpoints, hashing) each kept
/// one, 2 MiB of resident memory under load for no gain in throughput (BENCHMARKS.md). One
/// arena per core the process may run on bounds contention the same way. `MALLOC_ARENA_MAX`
/// in the environment, when set, still decides. Runs before any thread starts.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// Start-up (configuration, migrations, schema and template compilation, TLS set-up) runs code
/// from all over the executable, and the kernel maps the code around every page it faults in
/// (64 KiB): after start about 65 % of the code was resident although serving runs a fraction
/// of it (BENCHMARKS.md). Dropping the executable's clean read-only pages (code and read-only
/// data) from the process once start-up is done leaves resident what runs afterwards; the
/// kernel maps a page back from the page cache (no I/O while it is cached) the first time it is
/// used again.
fn release_startup_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (start, len) in std::fs::read_to_string("/proc/self/smaps").map(|s| clean_exe_mappings(&s)).unwrap_or_default()
    {
        // SAFETY: a whole read-only mapping of the executable file without a single private
        // (written) page: MADV_DONTNEED only unmaps clean file pages, which the next access
        // faults back in unchanged. Nothing maps them writable in between.
        unsafe {
            libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED);
        }
    }
}

/// The read-only mappings of this process's executable that hold no anonymous (copy-on-write)
/// page, as `(start, length)`, from the text of `/proc/self/smaps`. The relocated read-only data
/// (RELRO) has such pages and is never among them, nor is code a debugger wrote breakpoints
/// into.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn clean_exe_mappings(smaps: &str) -> Vec<(usize, usize)> {
    use std::os::unix::fs::MetadataExt;
    let Ok(exe) = std::fs::metadata("/proc/self/exe") else { return vec![] };
    let (dev, ino) = (exe.dev(), exe.ino());
    let mut out = vec![];
    // The mapping being read, while it still qualifies.
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let Some(range) = f.first().filter(|r| r.contains('-') && f.len() >= 5) {
            if let Some(m) = current.take() {
                out.push(m);
            }
            // `start-end perms offset major:minor inode path`
            let (Some(perms), Some(devno), Some(inode)) = (f.get(1), f.get(3), f.get(4)) else { continue };
            let same_file = devno.split_once(':').and_then(|(ma, mi)| {
                Some(libc::makedev(u32::from_str_radix(ma, 16).ok()?, u32::from_str_radix(mi, 16).ok()?))
            }) == Some(dev)
                && inode.parse::<u64>().ok() == Some(ino);
            let read_only = perms.starts_with('r') && perms.get(1..2) == Some("-") && perms.ends_with('p');
            let bounds = range
                .split_once('-')
                .and_then(|(a, b)| Some((usize::from_str_radix(a, 16).ok()?, usize::from_str_radix(b, 16).ok()?)));
            if let (true, true, Some((a, b))) = (same_file, read_only, bounds) {
                current = Some((a, b.saturating_sub(a)));
            }
        } else if f.first() == Some(&"Anonymous:") && f.get(1) != Some(&"0") {
            current = None;
        }
    }
    out.extend(current);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The linker's symbol ordering file (build.rs) as `bench/order-functions.sh` writes it: one
    /// symbol name per line, each once, the settings and session paths among them.
    #[test]
    fn function_order_file_names_each_request_path_symbol_once() {
        let text = include_str!("../function-order.txt");
        let names: Vec<&str> = text.lines().collect();
        assert!(names.len() > 1000, "{} names", names.len());
        assert!(names.iter().all(|n| !n.is_empty() && !n.contains(char::is_whitespace)));
        let unique: std::collections::HashSet<&&str> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert!(names.iter().any(|n| n.contains("create_settings")));
        assert!(names.iter().any(|n| n.contains("whoami")));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn startup_release_picks_only_clean_read_only_mappings_of_the_executable() {
        use std::os::unix::fs::MetadataExt;
        let exe = std::fs::metadata("/proc/self/exe").unwrap();
        let (ma, mi) = (libc::major(exe.dev()), libc::minor(exe.dev()));
        let ino = exe.ino();
        let head = |range: &str, perms: &str, inode: u64| {
            format!("{range} {perms} 00000000 {ma:02x}:{mi:02x} {inode} /x/idflow")
        };
        let smaps = [
            head("1000-3000", "r--p", ino),
            "Rss:                   8 kB".into(),
            "Anonymous:             0 kB".into(),
            head("3000-9000", "r-xp", ino),
            "Anonymous:             0 kB".into(),
            "VmFlags: rd ex mr mw me dw".into(),
            // RELRO: relocated, so it holds copy-on-write pages.
            head("9000-a000", "r--p", ino),
            "Anonymous:             4 kB".into(),
            head("a000-b000", "rw-p", ino),
            "Anonymous:             0 kB".into(),
            head("c000-d000", "r-xp", ino + 1),
            "Anonymous:             0 kB".into(),
            "e000-f000 rw-p 00000000 00:00 0 ".into(),
            "Anonymous:             4 kB".into(),
            head("f000-11000", "r-xp", ino),
            "Anonymous:             0 kB".into(),
        ]
        .join("\n");
        assert_eq!(clean_exe_mappings(&smaps), vec![(0x1000, 0x2000), (0x3000, 0x6000), (0xf000, 0x2000)]);

        // This test binary's own code is found, and releasing it leaves the process working.
        let real = clean_exe_mappings(&std::fs::read_to_string("/proc/self/smaps").unwrap());
        assert!(!real.is_empty(), "the executable's code mapping is found");
        release_startup_pages();
        assert_eq!(progress_line(1, 2, Duration::from_secs(1)), "1/2 records (50%), 1/s, 1s left");
    }

    #[test]
    fn progress_line_shows_count_rate_and_time_left() {
        assert_eq!(progress_line(0, 10, Duration::ZERO), "0/10 records (0%)");
        assert_eq!(progress_line(250, 1000, Duration::from_secs(5)), "250/1000 records (25%), 50/s, 15s left");
        assert_eq!(progress_line(100, 100_000, Duration::from_secs(1)), "100/100000 records (0%), 100/s, 16m39s left");
        assert_eq!(progress_line(10, 10, Duration::from_secs(2)), "10/10 records (100%), 5/s, done in 2s");
        assert_eq!(progress_line(0, 0, Duration::ZERO), "0/0 records (100%)");
        assert_eq!(short_duration(Duration::from_secs(7600)), "2h06m");
    }
}
