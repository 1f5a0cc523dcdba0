//! Small helpers shared by the foundation tests (browser flows, error envelopes).
#![allow(dead_code)]

use crate::helpers::*;
use reqwest::header::{ACCEPT, SET_COOKIE};
use serde_json::{Value, json};

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

pub fn location(resp: &reqwest::Response) -> String {
    resp.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

/// Create a browser flow (`login` or `registration`) the AJAX way; returns the flow JSON.
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
pub async fn browser_login(app: &TestApp, c: &reqwest::Client, email: &str) -> Value {
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

/// Assert a Kratos error envelope with `status` and (optional) `error.id`; returns the body.
pub async fn kratos_error(resp: reqwest::Response, status: u16, id: Option<&str>) -> Value {
    let got = resp.status().as_u16();
    let header = resp.headers().get("ory-error-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let text = resp.text().await.unwrap();
    assert_eq!(got, status, "unexpected status; body: {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("error body is not JSON ({e}): {text}"));
    assert_eq!(body["error"]["code"], status, "error.code: {body}");
    assert!(body["error"]["status"].is_string(), "error.status: {body}");
    assert!(body["error"]["message"].is_string(), "error.message: {body}");
    match id {
        Some(id) => {
            assert_eq!(body["error"]["id"], id, "error.id: {body}");
            assert_eq!(header.as_deref(), Some(id), "Ory-Error-Id header");
        }
        None => assert!(body["error"].get("id").is_none(), "no error.id expected: {body}"),
    }
    body
}

/// Assert a v1 error envelope with `status` and `code`; returns the body.
pub async fn v1_error(resp: reqwest::Response, status: u16, code: &str) -> Value {
    let got = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_eq!(got, status, "unexpected status; body: {text}");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("error body is not JSON ({e}): {text}"));
    assert_eq!(body["error"]["code"], code, "error.code: {body}");
    assert_eq!(body["error"]["status"], status, "error.status: {body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "error.message: {body}");
    assert!(body["error"]["request_id"].as_str().is_some_and(|m| !m.is_empty()), "error.request_id: {body}");
    body
}

/// A fresh base32 TOTP secret (160 bits).
pub fn new_totp_secret() -> String {
    totp_rs::Secret::generate().to_base32()
}

/// A well-formed six-digit code that is wrong for `secret` at every step the server accepts.
pub fn wrong_totp_code(secret: &str, app: &TestApp) -> String {
    let s = totp_rs::Secret::try_from_base32(secret).unwrap();
    let t = totp_rs::Builder::new().with_secret(s).build().unwrap();
    let now = u64::try_from(app.clock.now().unix_timestamp()).unwrap();
    let valid: Vec<String> =
        [now - 60, now - 30, now, now + 30, now + 60].iter().map(|t2| t.generate(*t2).to_string()).collect();
    (0..1_000_000u32).map(|n| format!("{n:06}")).find(|c| !valid.contains(c)).unwrap()
}
