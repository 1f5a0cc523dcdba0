//! Error envelopes of both dialects (asserted field by field), stored self-service errors and
//! the admin view of an identity.

use super::*;
use serde_json::Value;

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

/// An error envelope's `error.id`.
pub fn error_id(v: &Value) -> &str {
    v["error"]["id"].as_str().unwrap_or("")
}

/// `GET /self-service/errors?id=` for an error UI redirect.
pub async fn stored_error(app: &TestApp, location: &str) -> Value {
    let id = location.split("id=").nth(1).expect("error id in location");
    api_client().get(app.url(&format!("/self-service/errors?id={id}"))).send().await.unwrap().json().await.unwrap()
}

/// Identity JSON from the admin API (with credentials).
pub async fn admin_identity(app: &TestApp, id: &str) -> Value {
    api_client().get(app.admin_url(&format!("/admin/identities/{id}"))).send().await.unwrap().json().await.unwrap()
}
