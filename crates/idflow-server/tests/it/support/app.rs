//! The harness: `spawn_app(Db)` builds the real application on ephemeral loopback ports with a
//! fresh database (SQLite file or a new PostgreSQL database); `both_dbs!` runs a test on both
//! engines; `TestApp` knows the URLs and registers, logs in and imports users.

use idflow_core::clock::Clock;
use idflow_core::config::Config;
use idflow_core::selfservice::Engine;
use idflow_server::app::Application;
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Run an `async fn(Db)` test on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! both_dbs {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Db::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::support::pg_admin_url().is_none() {
                    eprintln!("IDFLOW_TEST_PG_ADMIN_URL not set: PostgreSQL run skipped (scripts/test.sh sets it)");
                    return;
                }
                super::$name($crate::support::Db::Postgres).await
            }
        }
    };
}

pub fn pg_admin_url() -> Option<String> {
    std::env::var("IDFLOW_TEST_PG_ADMIN_URL").ok().filter(|s| !s.is_empty())
}

pub struct TestApp {
    /// Public base URL without trailing slash.
    pub public: String,
    pub admin: String,
    pub engine: Arc<Engine>,
    pub clock: Clock,
    pub db: Db,
    pub dsn: String,
    _tmp: Option<TempDir>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The base test configuration (cheap hashing; dev mode).
pub fn base_config() -> Config {
    let yaml = r#"
dev: true
serve:
  public: { host: 127.0.0.1, port: 0 }
  admin: { host: 127.0.0.1, port: 0 }
hashers:
  argon2: { memory: 1024, iterations: 1, parallelism: 1 }
  max_queue: 1000000
limits:
  per_ip: { login: 0, registration: 0 }
log: { level: warn }
"#;
    Config::load(Some(yaml), Vec::<(String, String)>::new()).expect("test config")
}

pub async fn fresh_dsn(db: Db) -> (String, Option<TempDir>) {
    match db {
        Db::Sqlite => {
            let dir = std::env::temp_dir().join(format!("idflow-it-{}", Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            (format!("sqlite://{}/idflow.db?mode=rwc", dir.display()), Some(TempDir(dir)))
        }
        Db::Postgres => {
            use sqlx::Connection;
            let admin = pg_admin_url().expect("IDFLOW_TEST_PG_ADMIN_URL");
            let name = format!("it_{}", Uuid::new_v4().simple());
            let mut c = sqlx::PgConnection::connect(&admin).await.expect("connect to PostgreSQL");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut c)
                .await
                .expect("create database");
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
            (format!("{base}/{name}"), None)
        }
    }
}

pub async fn spawn_app(db: Db) -> TestApp {
    spawn_app_with(db, |_| {}).await
}

static RESERVED: std::sync::Mutex<Vec<std::net::TcpListener>> = std::sync::Mutex::new(Vec::new());

/// A free loopback port, kept bound until a server started by [`spawn_on`] takes it over.
pub fn reserve_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    RESERVED.lock().unwrap().push(l);
    port
}

fn take_reserved(port: u16) -> Option<std::net::TcpListener> {
    let mut all = RESERVED.lock().unwrap();
    let i = all.iter().position(|l| l.local_addr().map(|a| a.port()).ok() == Some(port))?;
    Some(all.swap_remove(i))
}

/// Start the server with a tweaked configuration.
pub async fn spawn_app_with(db: Db, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let (dsn, tmp) = fresh_dsn(db).await;
    spawn_on(db, dsn, tmp, tweak).await
}

pub async fn spawn_on(db: Db, dsn: String, tmp: Option<TempDir>, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut cfg = base_config();
    cfg.dsn = Some(dsn.clone());
    // Bind first to learn the ports, then set the base URLs accordingly. The listeners stay
    // open and are handed to the server, so no other process can take the ports in between.
    let (pp, ap) = (reserve_port(), reserve_port());
    cfg.serve.public.port = Some(pp);
    cfg.serve.admin.port = Some(ap);
    cfg.serve.public.base_url = Some(format!("http://127.0.0.1:{pp}/"));
    cfg.serve.admin.base_url = Some(format!("http://127.0.0.1:{ap}/"));
    tweak(&mut cfg);
    let public = take_reserved(cfg.serve.public.port.unwrap_or(pp));
    let admin = take_reserved(cfg.serve.admin.port.unwrap_or(ap));
    // Whatever the tweak left unused goes back to the system.
    take_reserved(pp);
    take_reserved(ap);
    let listeners = public.zip(admin);
    let clock = Clock::new();
    let app = Application::build_with_listeners(cfg, clock.clone(), listeners).await.expect("build app");
    let public = format!("http://{}", app.public_addr());
    let admin = format!("http://{}", app.admin_addr());
    let engine = app.engine();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = app
            .run_until(async move {
                let _ = rx.await;
            })
            .await;
    });
    TestApp { public, admin, engine, clock, db, dsn, _tmp: tmp, shutdown: Some(tx) }
}

/// A free loopback port (released again: for child processes that bind it themselves).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A plain API client (no cookies, no redirects).
pub fn api_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A browser-like client: keeps cookies, does not follow redirects.
pub fn browser_client() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub const PASSWORD: &str = "correct-horse-battery-9";

pub fn unique_email() -> String {
    format!("user-{}@example.com", Uuid::new_v4().simple())
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.public, path)
    }
    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{}", self.admin, path)
    }

    /// Register through the API flow; returns (session token, identity id).
    pub async fn register(&self, email: &str, password: &str) -> (String, String) {
        let c = api_client();
        let flow: Value = c.get(self.url("/self-service/registration/api")).send().await.unwrap().json().await.unwrap();
        let resp = c
            .post(self.url(&format!("/self-service/registration?flow={}", flow["id"].as_str().unwrap())))
            .json(&json!({"method": "password", "password": password, "traits": {"email": email, "name": {"first": "Test", "last": "User"}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "registration failed");
        let body: Value = resp.json().await.unwrap();
        (body["session_token"].as_str().unwrap().to_string(), body["identity"]["id"].as_str().unwrap().to_string())
    }

    /// A fresh registered user; returns (email, token, identity id).
    pub async fn user(&self) -> (String, String, String) {
        let email = unique_email();
        let (t, id) = self.register(&email, PASSWORD).await;
        (email, t, id)
    }

    /// `GET` a public path with `X-Session-Token: token`; returns the JSON body.
    pub async fn get_with_token(&self, path: &str, token: &str) -> Value {
        api_client().get(self.url(path)).header("X-Session-Token", token).send().await.unwrap().json().await.unwrap()
    }

    /// API password login; returns the response JSON.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let c = api_client();
        let flow: Value = c.get(self.url("/self-service/login/api")).send().await.unwrap().json().await.unwrap();
        c.post(self.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap())))
            .json(&json!({"method": "password", "identifier": email, "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Create an identity through the admin API with an optional TOTP secret (base32).
    pub async fn admin_create(&self, email: &str, totp_secret: Option<&str>) -> Value {
        let mut creds = json!({"password": {"config": {"password": PASSWORD}}});
        if let Some(s) = totp_secret {
            creds["totp"] =
                json!({"config": {"totp_url": format!("otpauth://totp/idflow:{email}?secret={s}&issuer=idflow")}});
        }
        let resp = api_client()
            .post(self.admin_url("/admin/identities"))
            .json(&json!({"traits": {"email": email}, "credentials": creds}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        resp.json().await.unwrap()
    }
}

/// Move the servers' clocks to the start of a rate-limit window (fixed one-minute windows), so
/// a test's requests are never split across two windows.
pub fn start_of_window(clocks: &[&idflow_core::clock::Clock]) {
    let into = clocks[0].now().unix_timestamp().rem_euclid(60);
    if into > 5 {
        for c in clocks {
            c.advance(60 - into);
        }
    }
}

/// `GET /sessions/whoami` with a session token.
pub async fn whoami(app: &TestApp, token: &str) -> reqwest::Response {
    api_client().get(app.url("/sessions/whoami")).header("X-Session-Token", token).send().await.unwrap()
}
