//! The embedded default public base URL: `http://localhost:<port>/` when neither
//! `serve.public.base_url` nor `serve.public.host` is set, so that WebAuthn (which refuses IP
//! addresses as relying party ids) works out of the box and security keys and passkeys are
//! offered with no configuration at all.

use crate::both_dbs;
use crate::helpers::*;
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
