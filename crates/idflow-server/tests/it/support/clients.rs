//! The three client kinds (browser form posts with cookies, AJAX = browser flow with
//! `Accept: application/json`, native API with a session token), the actor `User` (a registered
//! identity with a session, seen through one kind), and cookie and redirect helpers.

use super::*;
use reqwest::header::{ACCEPT, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

/// How the client talks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Server-rendered forms: cookies, urlencoded posts, no `Accept: application/json` (303s).
    Browser,
    /// SPA: browser flow with cookies, JSON bodies and `Accept: application/json`.
    Ajax,
    /// Native app: API flow, `X-Session-Token`, JSON.
    Api,
}

pub const KINDS: [Kind; 3] = [Kind::Browser, Kind::Ajax, Kind::Api];

/// A signed-in user seen through one client kind.
pub struct User {
    pub kind: Kind,
    pub http: reqwest::Client,
    /// Session token (API kind; for browsers the token is in the cookie jar).
    pub token: String,
    pub email: String,
    pub identity_id: String,
    pub password: String,
}

/// Register a fresh user and sign it in with the given client kind.
pub async fn user(app: &TestApp, kind: Kind) -> User {
    let email = unique_email();
    let (token, identity_id) = app.register(&email, PASSWORD).await;
    sign_in(app, kind, &email, PASSWORD, token, identity_id).await
}

/// Sign an existing identity in (a new session) with the given client kind.
pub async fn sign_in(
    app: &TestApp,
    kind: Kind,
    email: &str,
    password: &str,
    api_token: String,
    identity_id: String,
) -> User {
    match kind {
        Kind::Api => {
            let token = if api_token.is_empty() {
                app.login(email, password).await["session_token"].as_str().expect("session token").to_string()
            } else {
                api_token
            };
            User { kind, http: api_client(), token, email: email.into(), identity_id, password: password.into() }
        }
        Kind::Browser | Kind::Ajax => {
            let http = browser_client();
            browser_login(app, &http, email, password).await;
            User { kind, http, token: String::new(), email: email.into(), identity_id, password: password.into() }
        }
    }
}

/// Password login through the browser flow (cookies land in the client's jar).
pub async fn browser_login(app: &TestApp, http: &reqwest::Client, email: &str, password: &str) {
    let flow = ajax_get(http, &app.url("/self-service/login/browser")).await;
    let resp = http
        .post(app.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap())))
        .form(&[
            ("csrf_token", csrf(&flow).as_str()),
            ("identifier", email),
            ("password", password),
            ("method", "password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "browser login failed");
}

impl User {
    /// A request with this client's credentials and negotiation.
    pub fn req(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, url);
        match self.kind {
            Kind::Api => r = r.header("X-Session-Token", &self.token),
            Kind::Ajax => r = r.header(ACCEPT, "application/json"),
            Kind::Browser => {}
        }
        r
    }

    pub fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.req(reqwest::Method::GET, url)
    }

    /// The init endpoint of this kind.
    pub fn init_path(&self) -> &'static str {
        if self.kind == Kind::Api { "/self-service/settings/api" } else { "/self-service/settings/browser" }
    }

    /// Create a settings flow and return its JSON (browsers follow the 303 to the UI by fetching
    /// the flow, like a UI would).
    pub async fn create(&self, app: &TestApp) -> Value {
        self.create_with(app, "").await
    }

    /// Create with a query string (e.g. `?return_to=...`).
    pub async fn create_with(&self, app: &TestApp, query: &str) -> Value {
        let resp = self.get(&app.url(&format!("{}{query}", self.init_path()))).send().await.unwrap();
        if self.kind == Kind::Browser {
            assert_eq!(resp.status(), 303, "browser create");
            let loc = location(&resp);
            let prefix = format!("{}/ui/settings?flow=", app.public);
            assert!(loc.starts_with(&prefix), "redirect to the settings UI, got {loc}");
            return self.fetch(app, &loc[prefix.len()..]).await;
        }
        assert_eq!(resp.status(), 200, "create settings flow");
        resp.json().await.unwrap()
    }

    /// `GET /self-service/settings/flows?id=` (as JSON; browsers too, as the UI would).
    pub async fn fetch(&self, app: &TestApp, id: &str) -> Value {
        let resp = self.fetch_raw(app, id).await;
        assert_eq!(resp.status(), 200, "fetch settings flow");
        resp.json().await.unwrap()
    }

    pub async fn fetch_raw(&self, app: &TestApp, id: &str) -> reqwest::Response {
        let mut r = self.get(&app.url(&format!("/self-service/settings/flows?id={id}")));
        if self.kind == Kind::Browser {
            r = r.header(ACCEPT, "application/json");
        }
        r.send().await.unwrap()
    }

    /// Submit a body to a flow the way this client kind does: browsers post a urlencoded form
    /// (dot notation keys), AJAX and API post JSON. The flow's CSRF token is added for browser
    /// kinds unless the body already has a `csrf_token` key (use `null` to send none).
    pub async fn submit(&self, app: &TestApp, flow: &Value, body: Value) -> reqwest::Response {
        let mut body = body.as_object().cloned().unwrap_or_default();
        if self.kind != Kind::Api && !body.contains_key("csrf_token") {
            body.insert("csrf_token".into(), json!(csrf(flow)));
        }
        body.retain(|_, v| !v.is_null());
        self.submit_raw(app, flow["id"].as_str().unwrap(), Value::Object(body)).await
    }

    /// Submit exactly this body.
    pub async fn submit_raw(&self, app: &TestApp, id: &str, body: Value) -> reqwest::Response {
        let url = app.url(&format!("/self-service/settings?flow={id}"));
        let r = self.req(reqwest::Method::POST, &url);
        match self.kind {
            Kind::Browser => {
                let mut pairs = vec![];
                flatten_form("", &body, &mut pairs);
                r.form(&pairs).send().await.unwrap()
            }
            _ => r.json(&body).send().await.unwrap(),
        }
    }

    /// The flow after a submit: the JSON body, or for browser redirects to the settings UI the
    /// flow fetched from the id in `Location`.
    pub async fn outcome(&self, app: &TestApp, resp: reqwest::Response) -> (u16, Value) {
        let status = resp.status().as_u16();
        if status == 303 {
            let loc = location(&resp);
            let prefix = format!("{}/ui/settings?flow=", app.public);
            if let Some(id) = loc.strip_prefix(&prefix) {
                return (status, self.fetch(app, id).await);
            }
            return (status, json!({ "location": loc }));
        }
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(json!({ "raw": text })))
    }

    /// `GET /sessions/whoami` with this client's credentials.
    pub async fn whoami(&self, app: &TestApp) -> reqwest::Response {
        let mut r = self.get(&app.url("/sessions/whoami"));
        if self.kind == Kind::Browser {
            r = r.header(ACCEPT, "application/json");
        }
        r.send().await.unwrap()
    }

    /// Whether `password` signs this user in (API login).
    pub async fn password_works(&self, app: &TestApp, password: &str) -> bool {
        app.login(&self.email, password).await["session_token"].is_string()
    }
}

/// Urlencoded pairs in dot notation (`traits.name.first=...`), booleans as `true`/`false`.
pub fn flatten_form(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten_form(&p, v, out);
            }
        }
        Value::String(s) => out.push((prefix.into(), s.clone())),
        Value::Null => {}
        other => out.push((prefix.into(), other.to_string())),
    }
}

pub fn location(resp: &reqwest::Response) -> String {
    resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

/// Name of the CSRF cookie: `csrf_token_` + hex SHA-256 of the public base URL (with its `/`).
pub fn csrf_cookie_name(app: &TestApp) -> String {
    format!("csrf_token_{}", idflow_core::crypto::sha256_hex(format!("{}/", app.public).as_bytes()))
}

/// All `Set-Cookie` header values of a response.
pub fn set_cookies(resp: &reqwest::Response) -> Vec<String> {
    resp.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect()
}

/// The `Set-Cookie` value for cookie `name`, if set.
pub fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    set_cookies(resp).into_iter().find(|c| c.starts_with(&format!("{name}=")))
}

/// The value part of a `Set-Cookie` line.
pub fn cookie_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or("").split_once('=').map(|(_, v)| v.to_string()).unwrap_or_default()
}

/// `GET url` the AJAX way (`Accept: application/json`) with this client; returns the JSON body.
pub async fn ajax_get(c: &reqwest::Client, url: &str) -> Value {
    c.get(url).header(ACCEPT, "application/json").send().await.unwrap().json().await.unwrap()
}

/// Create a browser flow (`login`, `registration` or `settings`) the AJAX way; returns the flow
/// JSON.
pub async fn browser_flow(app: &TestApp, c: &reqwest::Client, kind: &str) -> Value {
    let resp = c
        .get(app.url(&format!("/self-service/{kind}/browser")))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "creating a browser {kind} flow");
    resp.json().await.unwrap()
}

/// Register through a browser flow (AJAX); the client ends up with the session cookie.
pub async fn browser_register(app: &TestApp, c: &reqwest::Client) -> (String, String) {
    let email = unique_email();
    let flow = browser_flow(app, c, "registration").await;
    let resp = c
        .post(app.url(&format!("/self-service/registration?flow={}", flow["id"].as_str().unwrap())))
        .header(ACCEPT, "application/json")
        .json(&json!({"method": "password", "csrf_token": csrf(&flow), "password": PASSWORD,
            "traits": {"email": email, "name": {"first": "Browser", "last": "User"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "browser registration");
    let body: Value = resp.json().await.unwrap();
    (email, body["identity"]["id"].as_str().unwrap().to_string())
}

/// Log in through a browser flow (AJAX); returns the response JSON.
pub async fn ajax_login(app: &TestApp, c: &reqwest::Client, email: &str) -> Value {
    let flow = browser_flow(app, c, "login").await;
    let resp = c
        .post(app.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap())))
        .header(ACCEPT, "application/json")
        .json(&json!({"method": "password", "csrf_token": csrf(&flow), "identifier": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "browser login");
    resp.json().await.unwrap()
}
