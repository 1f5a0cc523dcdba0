//! Test harness: `spawn_app(Db)` builds the real application on ephemeral ports.
#![allow(dead_code)]

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
                super::$name($crate::helpers::Db::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::helpers::pg_admin_url().is_none() {
                    eprintln!("IDFLOW_TEST_PG_ADMIN_URL not set: PostgreSQL run skipped (scripts/test.sh sets it)");
                    return;
                }
                super::$name($crate::helpers::Db::Postgres).await
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

/// The current TOTP code of a base32 secret (at the server's clock offset).
pub fn totp_code(secret_b32: &str, clock: &Clock) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_b32).unwrap();
    let t = totp_rs::Builder::new().with_secret(secret).build().unwrap();
    let now = u64::try_from(clock.now().unix_timestamp()).unwrap();
    t.generate(now).to_string()
}

/// Find a node by name (input) or id.
pub fn node<'a>(flow: &'a Value, name: &str) -> Option<&'a Value> {
    flow["ui"]["nodes"].as_array()?.iter().find(|n| n["attributes"]["name"] == name || n["attributes"]["id"] == name)
}

/// The `csrf_token` node value.
pub fn csrf(flow: &Value) -> String {
    node(flow, "csrf_token").and_then(|n| n["attributes"]["value"].as_str()).unwrap_or_default().to_string()
}

/// All message ids of a flow (form level and nodes).
pub fn message_ids(flow: &Value) -> Vec<i64> {
    let mut out = vec![];
    for m in flow["ui"]["messages"].as_array().into_iter().flatten() {
        out.push(m["id"].as_i64().unwrap_or(0));
    }
    for n in flow["ui"]["nodes"].as_array().into_iter().flatten() {
        for m in n["messages"].as_array().into_iter().flatten() {
            out.push(m["id"].as_i64().unwrap_or(0));
        }
    }
    out
}
