//! Cookie hardening (checklist T35, T15): the opt-in `__Host-` prefix, clearing the session
//! cookie with the attributes it was set with, CSRF rotation on registration, and CSRF
//! cookies we did not issue (unsigned) never adopted.

use crate::both_dbs;
use crate::support::*;
use reqwest::header::{ACCEPT, COOKIE};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A hand-made cookie jar (the server may mark cookies `Secure` while the test speaks plain
/// HTTP, and the tests look at every attribute).
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, resp: &reqwest::Response) {
        for c in set_cookies(resp) {
            let pair = c.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() {
                    self.0.remove(k);
                } else {
                    self.0.insert(k.to_string(), v.to_string());
                }
            }
        }
    }
    fn header(&self) -> String {
        self.0.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }
}

async fn get(app: &TestApp, jar: &mut Jar, path: &str) -> reqwest::Response {
    let r = api_client()
        .get(app.url(path))
        .header(ACCEPT, "application/json")
        .header(COOKIE, jar.header())
        .send()
        .await
        .unwrap();
    jar.take(&r);
    r
}

async fn post(app: &TestApp, jar: &mut Jar, path: &str, body: Value) -> reqwest::Response {
    let r = api_client()
        .post(app.url(path))
        .header(ACCEPT, "application/json")
        .header(COOKIE, jar.header())
        .json(&body)
        .send()
        .await
        .unwrap();
    jar.take(&r);
    r
}

/// Sign up through the browser flow with `jar`; returns the registration response.
async fn browser_signup(app: &TestApp, jar: &mut Jar) -> reqwest::Response {
    let flow: Value = get(app, jar, "/self-service/registration/browser").await.json().await.unwrap();
    let body = json!({"method": "password", "csrf_token": csrf(&flow), "password": PASSWORD,
        "traits": {"email": unique_email(), "name": {"first": "C", "last": "J"}}});
    post(app, jar, &format!("/self-service/registration?flow={}", flow["id"].as_str().unwrap()), body).await
}

/// An https public base URL (the tests still speak HTTP to the listener) outside dev mode, so
/// cookies are `Secure`.
fn https(c: &mut idflow_core::config::Config) {
    let port = c.serve.public.port.unwrap();
    c.dev = false;
    c.serve.public.base_url = Some(format!("https://127.0.0.1:{port}/"));
}

async fn host_prefix_is_opt_in(db: Db) {
    // Default: the plain names Ory SDKs expect, also over https.
    let app = spawn_app_with(db, https).await;
    let mut jar = Jar::default();
    let r = browser_signup(&app, &mut jar).await;
    assert_eq!(r.status(), 200);
    assert!(set_cookie(&r, "ory_kratos_session").is_some(), "{:?}", set_cookies(&r));
    drop(app);

    // Opted in: `__Host-` names, Secure, Path=/, no Domain; only the prefixed name is read.
    let app = spawn_app_with(db, |c| {
        https(c);
        c.cookies.host_prefix = true;
    })
    .await;
    let mut jar = Jar::default();
    let r = browser_signup(&app, &mut jar).await;
    assert_eq!(r.status(), 200);
    let all = set_cookies(&r);
    let session = set_cookie(&r, "__Host-ory_kratos_session").unwrap_or_else(|| panic!("{all:?}"));
    let csrf = all.iter().find(|c| c.starts_with("__Host-csrf_token_")).unwrap_or_else(|| panic!("{all:?}"));
    for c in [&session, csrf] {
        assert!(c.contains("; Secure") && c.contains("Path=/;") && !c.contains("Domain="), "{c}");
    }
    let value = jar.0["__Host-ory_kratos_session"].clone();
    let whoami = |cookie: String| {
        let url = app.url("/sessions/whoami");
        async move { api_client().get(url).header(COOKIE, cookie).send().await.unwrap().status() }
    };
    assert_eq!(whoami(format!("__Host-ory_kratos_session={value}")).await, 200);
    assert_eq!(whoami(format!("ory_kratos_session={value}")).await, 401, "the unprefixed name is not read");
    drop(app);

    // With a cookie domain the prefix cannot apply (browsers would drop the cookie): plain names.
    let app = spawn_app_with(db, |c| {
        https(c);
        c.cookies.host_prefix = true;
        c.cookies.domain = Some("127.0.0.1".into());
    })
    .await;
    let mut jar = Jar::default();
    let r = browser_signup(&app, &mut jar).await;
    assert!(
        set_cookie(&r, "ory_kratos_session").is_some_and(|c| c.contains("Domain=127.0.0.1")),
        "{:?}",
        set_cookies(&r)
    );
}
both_dbs!(host_prefix_is_opt_in);

/// Logout clears the session cookie with the same `Domain` and `Path` it was set with (a
/// clearing cookie with other attributes is another cookie: the session cookie stayed).
async fn session_cookie_cleared_with_its_attributes(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.cookies.domain = Some("127.0.0.1".into());
        c.session.cookie.path = Some("/".into());
    })
    .await;
    let mut jar = Jar::default();
    let r = browser_signup(&app, &mut jar).await;
    let set = set_cookie(&r, "ory_kratos_session").expect("session cookie");
    let out: Value = get(&app, &mut jar, "/self-service/logout/browser").await.json().await.unwrap();
    let r = api_client().get(out["logout_url"].as_str().unwrap()).header(COOKIE, jar.header()).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let cleared = set_cookie(&r, "ory_kratos_session").expect("cleared");
    let attrs = |c: &str| {
        let mut v: Vec<String> = c
            .split(';')
            .skip(1)
            .map(|a| a.trim().to_string())
            .filter(|a| a.starts_with("Domain=") || a.starts_with("Path="))
            .collect();
        v.sort();
        v
    };
    assert_eq!(attrs(&cleared), attrs(&set), "set: {set}\ncleared: {cleared}");
    assert!(attrs(&set).iter().any(|a| a == "Domain=127.0.0.1"), "{set}");
    assert!(cleared.contains("Max-Age=0"));
}
both_dbs!(session_cookie_cleared_with_its_attributes);

/// A browser registration that signs in rotates the CSRF secret, as a login does.
async fn registration_rotates_csrf_cookie(db: Db) {
    let app = spawn_app(db).await;
    let mut jar = Jar::default();
    let flow: Value = get(&app, &mut jar, "/self-service/registration/browser").await.json().await.unwrap();
    let name = jar.0.keys().find(|k| k.starts_with("csrf_token_")).expect("csrf cookie").clone();
    let before = jar.0[&name].clone();
    let body = json!({"method": "password", "csrf_token": csrf(&flow), "password": PASSWORD,
        "traits": {"email": unique_email(), "name": {"first": "C", "last": "J"}}});
    let r =
        post(&app, &mut jar, &format!("/self-service/registration?flow={}", flow["id"].as_str().unwrap()), body).await;
    assert_eq!(r.status(), 200);
    assert!(set_cookie(&r, &name).is_some(), "a new CSRF cookie: {:?}", set_cookies(&r));
    assert_ne!(jar.0[&name], before, "the CSRF secret changed");
}
both_dbs!(registration_rotates_csrf_cookie);

/// A CSRF cookie we did not sign (a well-formed secret planted by another site or a sibling
/// subdomain) is ignored: the flow gets its own secret, and a form built from the planted one
/// is refused.
async fn foreign_csrf_cookie_not_adopted(db: Db) {
    let app = spawn_app(db).await;
    let (email, _, _) = app.user().await;
    let name = csrf_cookie_name(&app);
    let planted = idflow_core::crypto::new_csrf_secret();
    let mut jar = Jar::default();
    jar.0.insert(name.clone(), planted.clone());
    let flow: Value = get(&app, &mut jar, "/self-service/login/browser").await.json().await.unwrap();
    assert_ne!(jar.0[&name], planted, "a cookie of our own replaces the planted one");
    // The attacker's form: a token masked from the planted secret, sent with the planted cookie.
    let forged = idflow_core::crypto::mask_csrf(&planted);
    let r = api_client()
        .post(app.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap())))
        .header(ACCEPT, "application/json")
        .header(COOKIE, format!("{name}={planted}"))
        .json(&json!({"method": "password", "csrf_token": forged, "identifier": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "refused");
    assert!(set_cookie(&r, "ory_kratos_session").is_none());
    // The browser's own cookie and token work.
    let r = post(
        &app,
        &mut jar,
        &format!("/self-service/login?flow={}", flow["id"].as_str().unwrap()),
        json!({"method": "password", "csrf_token": csrf(&flow), "identifier": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status(), 200);
}
both_dbs!(foreign_csrf_cookie_not_adopted);
