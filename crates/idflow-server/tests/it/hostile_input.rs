//! Hostile clients (T42, T09): slow-header (slowloris) clients are cut off
//! `limits.header_read_timeout` after the first byte of a request, idle connections after
//! `limits.idle_timeout` (and not before: a reused keep-alive connection is served); per-IP and per-identity submit rate limits answer 429 with
//! `Retry-After` in each dialect's envelope and ignore `X-Forwarded-For`; metrics use route
//! templates, so hostile paths cannot grow the label set.

use crate::both_dbs;
use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Read until the server closes the connection (bounded); returns what it sent.
async fn read_until_closed(s: &mut TcpStream, bound: Duration) -> Option<Vec<u8>> {
    let mut out = vec![];
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(out),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

fn addr(app: &TestApp) -> String {
    app.public.trim_start_matches("http://").to_string()
}

async fn slow_clients_are_cut_off(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.limits.header_read_timeout = idflow_core::config::Dur(Duration::from_millis(800));
        c.limits.idle_timeout = idflow_core::config::Dur(Duration::from_secs(4));
    })
    .await;

    // Headers that never finish.
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    s.write_all(b"GET /health/alive HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let got = read_until_closed(&mut s, Duration::from_secs(20)).await;
    let got = got.expect("the server closes a connection whose headers never finish");
    assert!(!String::from_utf8_lossy(&got).contains("200 OK"), "no response to half a request");

    // Headers trickled one byte at a time: the deadline covers the whole head, not each byte.
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    let req = b"GET /health/alive HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut closed = false;
    for b in req.iter().take(60) {
        if s.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !closed {
        let got = read_until_closed(&mut s, Duration::from_secs(20)).await.expect("trickling client is cut off");
        assert!(!String::from_utf8_lossy(&got).contains("200 OK"), "trickled request must not complete");
    }

    // An idle keep-alive connection is closed too, after its first request was answered, at
    // `idle_timeout`, not at the head deadline.
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    s.write_all(b"GET /health/alive HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let t = std::time::Instant::now();
    let got = read_until_closed(&mut s, Duration::from_secs(20)).await.expect("idle connection is closed");
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"), "first request answered");
    assert!(t.elapsed() >= Duration::from_secs(3), "closed after {:?}, before the idle timeout", t.elapsed());

    // A keep-alive connection idle for longer than the head deadline (but not the idle
    // timeout) still takes its next request: a client or proxy reusing it is not cut off.
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    for round in 0..2 {
        s.write_all(b"GET /health/alive HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains("\"ok\"") {
            let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await.unwrap().unwrap();
            assert!(n > 0, "round {round}: the connection was closed instead of answered");
            got.extend_from_slice(&buf[..n]);
        }
        assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"), "round {round} answered");
        tokio::time::sleep(Duration::from_millis(2000)).await;
    }

    // Meanwhile normal clients are served.
    let r = api_client().get(app.url("/health/alive")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Oversized headers: refused with 431, not buffered without bound.
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    let big = format!("GET /health/alive HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(200 * 1024));
    let _ = s.write_all(big.as_bytes()).await;
    let got = read_until_closed(&mut s, Duration::from_secs(20)).await.expect("oversized head is refused");
    let text = String::from_utf8_lossy(&got);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 431"), "{text}");
}
both_dbs!(slow_clients_are_cut_off);

async fn api_login(app: &TestApp, identifier: &str, xff: &str) -> reqwest::Response {
    let c = api_client();
    let flow: Value = c.get(app.url("/self-service/login/api")).send().await.unwrap().json().await.unwrap();
    c.post(app.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap())))
        .header("X-Forwarded-For", xff)
        .header("X-Real-IP", xff)
        .json(&json!({"method": "password", "identifier": identifier, "password": "not-the-password-1"}))
        .send()
        .await
        .unwrap()
}

async fn v1_login(app: &TestApp, identifier: &str) -> reqwest::Response {
    let c = api_client();
    let flow: Value = c.get(app.url("/v1/flows/login")).send().await.unwrap().json().await.unwrap();
    c.post(app.url(&format!("/v1/flows/login/{}:submit", flow["id"].as_str().unwrap())))
        .json(&json!({"method": "password", "body": {"identifier": identifier, "password": "not-the-password-1"}}))
        .send()
        .await
        .unwrap()
}

/// 429 with a positive `Retry-After`; returns the body.
async fn throttled(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers().get("retry-after").expect("Retry-After").to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    r.json().await.unwrap()
}

async fn per_ip_login_limit(db: Db) {
    let app = spawn_app_with(db, |c| c.limits.per_ip.login = 3).await;
    start_of_window(&[&app.clock]);
    for i in 0..3 {
        // Different identifiers and spoofed client addresses: only the socket peer counts.
        let r = api_login(&app, &unique_email(), &format!("203.0.113.{i}")).await;
        assert_eq!(r.status(), 400);
    }
    let body = throttled(api_login(&app, &unique_email(), "198.51.100.77").await).await;
    assert_eq!(body["error"]["code"], 429, "Kratos envelope: {body}");
    assert_eq!(body["error"]["status"], "Too Many Requests");

    // The v1 dialect answers in its own envelope.
    let body = throttled(v1_login(&app, &unique_email()).await).await;
    assert_eq!(body["error"]["code"], "AVNOLOGY_AUTH_029", "v1 envelope: {body}");
    assert_eq!(body["error"]["status"], 429);

    // A browser form post gets the 429 directly (nothing is stored for the error page).
    let c = browser_client();
    let flow = ajax_get(&c, &app.url("/self-service/login/browser")).await;
    let r = c
        .post(app.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap())))
        .form(&[
            ("method", "password"),
            ("identifier", "x@example.com"),
            ("password", "whatever-123"),
            ("csrf_token", &csrf(&flow)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);

    // Other submits are not limited by the login limit.
    let (_email, token, _) = app.user().await;
    let who = api_client().get(app.url("/sessions/whoami")).header("X-Session-Token", token).send().await.unwrap();
    assert_eq!(who.status(), 200);
}
both_dbs!(per_ip_login_limit);

async fn per_identity_limits(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.limits.per_identity.login = 2;
        c.limits.per_identity.settings = 2;
    })
    .await;
    start_of_window(&[&app.clock]);
    // Login: counted per normalised identifier (case and invisible variants are one identifier).
    let target = unique_email();
    assert_eq!(api_login(&app, &target, "").await.status(), 400);
    assert_eq!(api_login(&app, &format!("\u{200B}{}", target.to_uppercase()), "").await.status(), 400);
    throttled(api_login(&app, &target, "").await).await;
    assert_eq!(api_login(&app, &unique_email(), "").await.status(), 400, "another identifier is not affected");

    // Settings: counted per identity, in both dialects.
    let (email, token, _) = app.user().await;
    let c = api_client();
    let mut last = None;
    for _ in 0..3 {
        let flow = app.get_with_token("/self-service/settings/api", &token).await;
        last = Some(
            c.post(app.url(&format!("/self-service/settings?flow={}", flow["id"].as_str().unwrap())))
                .header("X-Session-Token", &token)
                .json(&json!({"method": "profile", "traits": {"email": email}}))
                .send()
                .await
                .unwrap(),
        );
    }
    let body = throttled(last.unwrap()).await;
    assert_eq!(body["error"]["code"], 429);
    let flow: Value =
        c.get(app.url("/v1/flows/settings")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    let r = c
        .post(app.url(&format!("/v1/flows/settings/{}:submit", flow["id"].as_str().unwrap())))
        .bearer_auth(&token)
        .json(&json!({"method": "profile", "body": {"traits": {"email": email}}}))
        .send()
        .await
        .unwrap();
    let body = throttled(r).await;
    assert_eq!(body["error"]["code"], "AVNOLOGY_AUTH_029");

    // Another identity on the same address is not affected.
    let (email2, token2, _) = app.user().await;
    let flow = app.get_with_token("/self-service/settings/api", &token2).await;
    let r = c
        .post(app.url(&format!("/self-service/settings?flow={}", flow["id"].as_str().unwrap())))
        .header("X-Session-Token", &token2)
        .json(&json!({"method": "profile", "traits": {"email": email2}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
both_dbs!(per_identity_limits);

/// The value of one sample line (`name{labels} value`).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

async fn metrics_exposition(db: Db) {
    let app = spawn_app(db).await;
    let (email, _token, _) = app.user().await;
    assert!(app.login(&email, PASSWORD).await["session_token"].is_string());
    assert!(app.login(&email, "wrong-password-123").await["session_token"].is_null());
    let hostile = format!("/no-such-route-{}", uuid::Uuid::new_v4().simple());
    assert_eq!(api_client().get(app.url(&hostile)).send().await.unwrap().status(), 404);
    let weird_method = reqwest::Method::from_bytes(b"BREW").unwrap();
    let _ = api_client().request(weird_method, app.url("/health/alive")).send().await.unwrap();

    let r = api_client().get(app.admin_url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.unwrap();
    let get = |p: &str| sample(&text, p).unwrap_or_else(|| panic!("no sample {p} in\n{text}"));
    assert!(
        get(r#"idflow_http_requests_total{listener="public",method="POST",route="/self-service/login",status="200"}"#)
            >= 1.0
    );
    assert!(
        get(r#"idflow_http_requests_total{listener="public",method="POST",route="/self-service/login",status="400"}"#)
            >= 1.0
    );
    assert!(
        get(
            r#"idflow_http_request_duration_seconds_count{listener="public",method="POST",route="/self-service/login"}"#
        ) >= 2.0
    );
    assert!(
        get(
            r#"idflow_http_request_duration_seconds_bucket{listener="public",method="POST",route="/self-service/login",le="+Inf"}"#
        ) >= 2.0
    );
    assert_eq!(get(r#"idflow_flow_submits_total{kind="login",method="password",outcome="success"}"#), 1.0);
    assert_eq!(get(r#"idflow_flow_submits_total{kind="login",method="password",outcome="invalid"}"#), 1.0);
    assert_eq!(get(r#"idflow_flow_submits_total{kind="registration",method="password",outcome="success"}"#), 1.0);
    assert!(get(r#"idflow_password_hashing_seconds_count{op="hash"}"#) >= 1.0);
    assert!(get(r#"idflow_password_hashing_seconds_count{op="verify"}"#) >= 2.0);
    assert!(get(r#"idflow_http_requests_total{listener="public",method="GET",route="unmatched",status="404"}"#) >= 1.0);
    assert!(get(r#"idflow_http_requests_total{listener="public",method="OTHER",route="/health/alive""#) >= 1.0);
    assert!(!text.contains("no-such-route"), "raw paths never become labels");
    assert!(!text.contains("BREW"));

    // Only on the admin listener.
    assert_eq!(api_client().get(app.url("/metrics")).send().await.unwrap().status(), 404);
}
both_dbs!(metrics_exposition);

/// A form field name of 60 000 dots once unflattened into a nesting that overflowed the stack
/// and killed the process: now a 400, and the server keeps serving.
async fn dotted_key_bomb(db: Db) {
    let app = spawn_app_with(db, |c| c.limits.max_body_bytes = 256 * 1024).await;
    let c = api_client();
    let flow: Value = c.get(app.url("/self-service/login/api")).send().await.unwrap().json().await.unwrap();
    let url = app.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap()));
    let dots = ".".repeat(60_000);
    let r = c
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("{dots}=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c.post(&url).json(&json!({ dots.clone(): 1, "method": "password" })).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let v1: Value = c.get(app.url("/v1/flows/login")).send().await.unwrap().json().await.unwrap();
    let r = c
        .post(app.url(&format!("/v1/flows/login/{}:submit", v1["id"].as_str().unwrap())))
        .json(&json!({"method": "password", "body": { dots: 1 }}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(c.get(app.url("/health/alive")).send().await.unwrap().status(), 200, "still serving");
}
both_dbs!(dotted_key_bomb);
