//! insta JSON snapshots of wire shapes with volatile values redacted: ids, timestamps, tokens,
//! CSRF values, the TOTP QR code and secrets, recovery codes, and the random port of the test
//! server. Snapshot files are named after the test's module path (`it__<module>__<name>.snap`)
//! and live in `snapshots/` next to the test file.
//!
//! CI runs with `INSTA_UPDATE=no`: the `.snap` files must exist and match. After an intended
//! change of a shape, review and accept with `INSTA_UPDATE=always cargo test -p idflow-server
//! --test it <module>` (or `cargo insta review`) and commit the `.snap` files.

use super::*;
use serde_json::{Value, json};

/// Whether `s[i..]` starts with a UUID (8-4-4-4-12 hex digits).
fn uuid_at(s: &[u8], i: usize) -> bool {
    const SHAPE: [usize; 5] = [8, 4, 4, 4, 12];
    let mut p = i;
    for (k, n) in SHAPE.iter().enumerate() {
        for _ in 0..*n {
            if p >= s.len() || !s[p].is_ascii_hexdigit() {
                return false;
            }
            p += 1;
        }
        if k < 4 {
            if p >= s.len() || s[p] != b'-' {
                return false;
            }
            p += 1;
        }
    }
    true
}

pub fn redact_uuids(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if uuid_at(b, i) {
            out.push_str("[uuid]");
            i += 36;
        } else {
            let ch = s[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Pre-pass: stable host, ids, CSRF values, TOTP and recovery secrets (they are found by
/// their node, which a key selector cannot express).
pub fn normalize(app: &TestApp, v: &Value) -> Value {
    fn walk(app: &TestApp, v: &mut Value) {
        match v {
            Value::String(s) => {
                let host = "http://idflow.test";
                let mut t = s.replace(&app.public, host).replace(&form_encode(&app.public), &form_encode(host));
                t = redact_uuids(&t);
                *s = t;
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(app, x)),
            Value::Object(m) => {
                let name = m
                    .get("attributes")
                    .and_then(|a| a.get("name").or_else(|| a.get("id")))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                match name.as_deref() {
                    Some("csrf_token") if m["attributes"]["value"].as_str().is_some_and(|s| !s.is_empty()) => {
                        m.get_mut("attributes").unwrap()["value"] = json!("[csrf]");
                    }
                    Some("totp_qr") => m.get_mut("attributes").unwrap()["src"] = json!("[qr]"),
                    Some("totp_secret_key") => {
                        let t = &mut m.get_mut("attributes").unwrap()["text"];
                        t["text"] = json!("[secret]");
                        t["context"]["secret"] = json!("[secret]");
                        if t["context"].get("url").is_some() {
                            t["context"]["url"] = json!("[otpauth-url]");
                        }
                    }
                    Some("lookup_secret_codes") => {
                        let t = &mut m.get_mut("attributes").unwrap()["text"];
                        t["text"] = json!("[codes]");
                        for c in t["context"]["secrets"].as_array_mut().into_iter().flatten() {
                            c["text"] = json!("[code]");
                            c["context"]["secret"] = json!("[code]");
                        }
                    }
                    _ => {}
                }
                m.values_mut().for_each(|x| walk(app, x));
            }
            _ => {}
        }
    }
    let mut v = v.clone();
    walk(app, &mut v);
    v
}

/// The insta settings of the wire snapshots: module-prefixed names and the key-based
/// redactions (timestamps, request ids).
pub fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(true);
    for k in [
        "expires_at",
        "issued_at",
        "created_at",
        "updated_at",
        "state_changed_at",
        "verified_at",
        "expired_at",
        "authenticated_at",
        "completed_at",
    ] {
        settings.add_redaction(&format!(".**.{k}"), "[timestamp]");
    }
    for k in ["session_token", "ory_session_token"] {
        settings.add_redaction(&format!(".**.{k}"), "[session-token]");
    }
    settings.add_redaction(".since", "[nanoseconds]");
    settings.add_redaction(".error.request", "[request-id]");
    settings.add_redaction(".error.request_id", "[request-id]");
    settings
}

/// Assert a JSON snapshot of `$v` (a `&Value`) named `$name`, normalized for `$app` and with the
/// key-based redactions. A macro, so the snapshot is named and stored after the calling test's
/// module and file.
#[macro_export]
macro_rules! snap {
    ($app:expr, $name:expr, $v:expr) => {{
        let v = $crate::support::normalize($app, $v);
        $crate::support::snapshot_settings().bind(|| insta::assert_json_snapshot!($name, v));
    }};
}

/// The JSON body of a response.
pub async fn body(r: reqwest::Response) -> Value {
    r.json().await.unwrap()
}
