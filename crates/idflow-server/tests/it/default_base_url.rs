//! The embedded default public base URL: `http://localhost:<port>/` when neither
//! `serve.public.base_url` nor `serve.public.host` is set, so that WebAuthn (which refuses IP
//! addresses as relying party ids) works out of the box and security keys and passkeys are
//! offered with no configuration at all (in-process on both engines, and the `idflow serve`
//! binary without a configuration file); bound to an IP address without a base URL, the start-up
//! log explains why they are missing.

use crate::both_dbs;
use crate::support::*;
use idflow_core::config::Config;
use reqwest::header::ACCEPT;
use serde_json::{Value, json};

/// A configuration file with nothing in it gives `http://localhost:4433` (public) while the
/// listeners still bind loopback; an explicit host or base URL is used as given.
#[test]
fn default_public_base_url_is_localhost() {
    let c = Config::load(None, Vec::<(String, String)>::new()).unwrap();
    assert_eq!(c.public_base(), "http://localhost:4433");
    assert_eq!(c.serve.public.addr(4433), "127.0.0.1:4433");
    assert_eq!(c.serve.admin.addr(4434), "127.0.0.1:4434");
    // The derived relying party is usable: id `localhost`, origin the base URL.
    let rp = c.selfservice.methods.passkey.config.rp.resolve(&c.public_base()).unwrap();
    assert_eq!(rp.id, "localhost");
    assert_eq!(rp.origins[0].as_str(), "http://localhost:4433/");

    let c = Config::load(Some("serve:\n  public:\n    port: 8080\n"), Vec::<(String, String)>::new()).unwrap();
    assert_eq!(c.public_base(), "http://localhost:8080");
    let c = Config::load(Some("serve:\n  public:\n    host: 127.0.0.1\n"), Vec::<(String, String)>::new()).unwrap();
    assert_eq!(c.public_base(), "http://127.0.0.1:4433");
    assert!(c.selfservice.methods.passkey.config.rp.resolve(&c.public_base()).is_err());
    let c = Config::load(
        Some("serve:\n  public:\n    base_url: https://id.example.org/\n"),
        Vec::<(String, String)>::new(),
    )
    .unwrap();
    assert_eq!(c.public_base(), "https://id.example.org");
}

async fn get_json(c: &reqwest::Client, url: &str, token: Option<&str>) -> Value {
    let mut req = c.get(url).header(ACCEPT, "application/json");
    if let Some(t) = token {
        req = req.header("X-Session-Token", t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "GET {url}: {body}");
    body
}

/// With the default base URL (no base URL, no host, no relying party configured) every
/// enabled method is offered: passkey sign-in and the WebAuthn script on browser login flows,
/// security-key and passkey registration in browser settings, passkeys in API settings.
async fn default_base_url_offers_webauthn_and_passkeys(db: Db) {
    let app = spawn_app_with(db, |cfg| {
        cfg.serve.public.base_url = None;
        cfg.serve.public.host = None;
    })
    .await;
    let port = app.public.rsplit_once(':').unwrap().1.to_string();
    let base = format!("http://localhost:{port}");
    assert_eq!(app.engine.cfg.public_base(), base);

    let b = browser_client();
    let login = get_json(&b, &app.url("/self-service/login/browser"), None).await;
    assert!(
        login["ui"]["action"].as_str().unwrap().starts_with(&format!("{base}/self-service/login?flow=")),
        "{login}"
    );
    assert_eq!(node(&login, "passkey_login_trigger").expect("passkey sign-in offered")["group"], "passkey");
    assert!(node(&login, "webauthn_script").is_some(), "{login}");

    // Browser settings: security keys and passkeys can be registered.
    let (email, token, _) = app.user().await;
    let r = b
        .post(app.url(&format!("/self-service/login?flow={}", login["id"].as_str().unwrap())))
        .header(ACCEPT, "application/json")
        .json(&json!({"method": "password", "identifier": email, "password": PASSWORD, "csrf_token": csrf(&login)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let settings = get_json(&b, &app.url("/self-service/settings/browser"), None).await;
    assert_eq!(node(&settings, "webauthn_register_trigger").expect("security keys offered")["group"], "webauthn");
    assert_eq!(node(&settings, "passkey_register_trigger").expect("passkeys offered")["group"], "passkey");

    // API settings: passkeys.
    let api = get_json(&api_client(), &app.url("/self-service/settings/api"), Some(&token)).await;
    assert!(node(&api, "passkey_register_trigger").is_some(), "{api}");
}
both_dbs!(default_base_url_offers_webauthn_and_passkeys);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `idflow serve` started with `extra` arguments and `envs` (no configuration file, a fresh
/// SQLite file); waits for `/health/alive` on `port`, returns the child and its log file.
async fn serve(dir: &std::path::Path, port: u16, extra: &[String], envs: &[(&str, String)]) -> std::process::Child {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_idflow"));
    cmd.args(["serve", "--dev", "--database"]).arg(format!("sqlite://{}/idflow.db?mode=rwc", dir.display()));
    cmd.args(extra);
    for (k, _) in std::env::vars() {
        if k.starts_with("IDFLOW_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("IDFLOW_LOG", "info");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let mut child = cmd.current_dir(dir).stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
    let c = api_client();
    for _ in 0..300 {
        if let Ok(r) = c.get(format!("http://127.0.0.1:{port}/health/alive")).send().await
            && r.status() == 200
        {
            return child;
        }
        assert!(child.try_wait().unwrap().is_none(), "idflow exited: {}", read_log(dir));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    panic!("idflow did not start: {}", read_log(dir));
}

/// The server's log without terminal colour codes.
fn read_log(dir: &std::path::Path) -> String {
    let raw = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    let mut out = String::with_capacity(raw.len());
    let mut it = raw.chars();
    while let Some(c) = it.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            for d in it.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The binary with no configuration at all (only the ports moved off 4433/4434 through the
/// environment) uses `http://localhost:<port>/`, offers passkeys and logs nothing about WebAuthn
/// being unavailable; bound to an IP address with no base URL it logs why security keys and
/// passkeys are not offered.
#[tokio::test]
async fn serve_without_config_offers_passkeys_and_explains_ip_addresses() {
    let dir = std::env::temp_dir().join(format!("idflow-default-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir(dir.clone());

    let (pp, ap) = (free_port(), free_port());
    let envs = [("IDFLOW_SERVE__PUBLIC__PORT", pp.to_string()), ("IDFLOW_SERVE__ADMIN__PORT", ap.to_string())];
    let mut child = serve(&dir, pp, &[], &envs).await;
    let flow = get_json(&browser_client(), &format!("http://127.0.0.1:{pp}/self-service/login/browser"), None).await;
    let _ = child.kill();
    let _ = child.wait();
    let log = read_log(&dir);
    assert!(
        flow["ui"]["action"].as_str().unwrap().starts_with(&format!("http://localhost:{pp}/self-service/login?flow=")),
        "{flow}"
    );
    assert!(node(&flow, "passkey_login_trigger").is_some(), "{flow}");
    assert!(log.contains(&format!("base_url=http://localhost:{pp}")), "{log}");
    assert!(!log.contains("are not offered"), "{log}");

    // Bound to an explicit IP address without a base URL: the base URL is that address, and the
    // start-up log says why security keys and passkeys are missing.
    let (pp, ap) = (free_port(), free_port());
    let extra =
        ["--public-addr".to_string(), format!("127.0.0.1:{pp}"), "--admin-addr".to_string(), format!("127.0.0.1:{ap}")];
    let mut child = serve(&dir, pp, &extra, &[]).await;
    let flow = get_json(&browser_client(), &format!("http://127.0.0.1:{pp}/self-service/login/browser"), None).await;
    let _ = child.kill();
    let _ = child.wait();
    let log = read_log(&dir);
    assert!(node(&flow, "passkey_login_trigger").is_none(), "{flow}");
    assert!(log.contains("passkeys are not offered"), "{log}");
    assert!(log.contains("security keys are not offered"), "{log}");
    assert!(log.contains("WebAuthn needs a domain name"), "{log}");
}
