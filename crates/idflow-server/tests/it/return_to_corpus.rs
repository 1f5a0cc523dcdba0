//! `return_to` bypass corpus (checklist T33): every entry is refused when a flow is created,
//! allowed entries are stored once, normalised, and that stored value is where the browser
//! goes after login (a value with a control character used to pass the check, then fail the
//! redirect with a 500 after the session was committed).

use crate::both_dbs;
use crate::support::*;
use reqwest::header::ACCEPT;
use serde_json::Value;

const ALLOWED: &str = "https://app.example.org/account";

async fn create_api_login(app: &TestApp, rt: &str) -> (u16, Value) {
    let r = api_client()
        .get(app.url(&format!("/self-service/login/api?return_to={}", form_encode(rt))))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn return_to_bypass_corpus(db: Db) {
    let app = spawn_app_with(db, |c| c.selfservice.allowed_return_urls = vec![ALLOWED.to_string()]).await;
    let base = app.public.clone();
    let port = base.rsplit(':').next().unwrap().to_string();
    let other_port = reserve_port();
    let refused = [
        "https://evil.example.com/".to_string(),
        "//evil.example.com/".to_string(),
        "/\\evil.example.com/".to_string(),
        "\\\\evil.example.com/".to_string(),
        "https:evil.example.com".to_string(),
        "javascript:alert(1)".to_string(),
        "data:text/html,<script>alert(1)</script>".to_string(),
        format!("http://127.0.0.1:{port}@evil.example.com/ui/"),
        format!("http://evil.example.com#@127.0.0.1:{port}/ui/"),
        format!("http://evil.example.com?@127.0.0.1:{port}/ui/"),
        format!("http://127.0.0.1:{port}.evil.example.com/ui/"),
        format!("http://127.0.0.1:{other_port}/ui/welcome"),
        format!("https://127.0.0.1:{port}/ui/welcome"),
        format!("http://user:pass@127.0.0.1:{port}/ui/welcome"),
        // Prefixes that are not whole path segments.
        format!("{base}/uievil"),
        format!("{base}/self-serviceevil"),
        format!("{ALLOWED}evil"),
        "https://app.example.org/accountevil/x".to_string(),
        "https://app.example.org/".to_string(),
        // Dot segments are resolved before the check.
        format!("{base}/ui/../admin"),
        format!("{base}/ui/%2e%2e/admin"),
        format!("{base}/ui/%2E%2E/%2e%2e/etc"),
        format!("{ALLOWED}/../admin"),
        // Control characters (decoded from %0A, %0D, %09, %00) are never silently dropped.
        format!("{base}/ui/welcome\n"),
        format!("{base}/ui/welcome\r\nSet-Cookie: x=1"),
        format!("{base}/u\ti/welcome"),
        format!("\n{base}/ui/welcome"),
        format!("{base}/ui/welcome\0"),
        "https://evil.example.com\t/".to_string(),
        // Other hosts that look alike.
        "https://app.example.org.evil.example.com/account".to_string(),
        "https://evil.example.com/https://app.example.org/account".to_string(),
        "http://app.example.org/account".to_string(),
        "https://app.example.org:8443/account".to_string(),
    ];
    for rt in &refused {
        let (status, v) = create_api_login(&app, rt).await;
        assert_eq!(status, 400, "{rt:?} must be refused: {v}");
        // Forbidden, or not even a URL (a plain 400).
        let id = error_id(&v);
        assert!(
            id == "self_service_flow_return_to_forbidden" || (id.is_empty() && v["error"]["code"] == 400),
            "{rt:?}: {v}"
        );
    }
    // Accepted: stored as one normalised absolute URL.
    let accepted = [
        (format!("{base}/ui/welcome"), format!("{base}/ui/welcome")),
        ("/ui/welcome".to_string(), format!("{base}/ui/welcome")),
        (format!("{base}/ui"), format!("{base}/ui")),
        (format!("{base}/ui/a/../settings"), format!("{base}/ui/settings")),
        (ALLOWED.to_string(), ALLOWED.to_string()),
        (format!("{ALLOWED}/security?tab=1"), format!("{ALLOWED}/security?tab=1")),
        ("HTTPS://APP.EXAMPLE.ORG/account/x".to_string(), format!("{ALLOWED}/x")),
    ];
    for (rt, stored) in &accepted {
        let (status, v) = create_api_login(&app, rt).await;
        assert_eq!(status, 200, "{rt:?} must be accepted: {v}");
        assert_eq!(v["return_to"], stored.as_str(), "{rt:?}");
    }
}
both_dbs!(return_to_bypass_corpus);

/// A browser login with a `return_to` goes to the stored, normalised value; one with an
/// encoded line break is refused before any session exists (no 500 after the commit).
async fn return_to_redirect_after_login(db: Db) {
    let app = spawn_app(db).await;
    let (email, _, _) = app.user().await;
    let http = browser_client();
    let bad = format!("{}/ui/welcome%0ASet-Cookie:%20x=1", app.public);
    let r = http
        .get(app.url(&format!("/self-service/login/browser?return_to={bad}")))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(error_id(&v), "self_service_flow_return_to_forbidden", "{v}");

    let rt = format!("{}/ui/x/../settings", app.public);
    let flow: Value = http
        .get(app.url(&format!("/self-service/login/browser?return_to={}", form_encode(&rt))))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let normalised = format!("{}/ui/settings", app.public);
    assert_eq!(flow["return_to"], normalised.as_str());
    let r = http
        .post(app.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap())))
        .form(&[
            ("csrf_token", csrf(&flow).as_str()),
            ("identifier", email.as_str()),
            ("password", PASSWORD),
            ("method", "password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), normalised);
}
both_dbs!(return_to_redirect_after_login);
