//! Hashing denial of service (checklist T44): a full hashing queue is a 503 with
//! `Retry-After` (never an unbounded wait), and the default per-IP submit limit stops a single
//! client sending logins with random identifiers (each costs a dummy argon2id) long before
//! the hashing pool saturates.

use crate::both_dbs;
use crate::support::*;
use serde_json::{Value, json};

async fn api_login(app: &TestApp, identifier: &str, password: &str) -> reqwest::Response {
    let c = api_client();
    let flow: Value = c.get(app.url("/self-service/login/api")).send().await.unwrap().json().await.unwrap();
    c.post(app.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap())))
        .json(&json!({"method": "password", "identifier": identifier, "password": password}))
        .send()
        .await
        .unwrap()
}

/// `hashers.max_queue: 0`: no hashing job is accepted, so login and registration answer 503
/// with `Retry-After` in the error envelope, and nothing is written.
async fn full_hashing_queue_answers_503(db: Db) {
    let app = spawn_app_with(db, |c| c.hashers.max_queue = 0).await;
    let r = api_login(&app, &unique_email(), PASSWORD).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], 503, "{v}");

    let c = api_client();
    let flow: Value = c.get(app.url("/self-service/registration/api")).send().await.unwrap().json().await.unwrap();
    let email = unique_email();
    let r = c
        .post(app.url(&format!("/self-service/registration?flow={}", flow["id"].as_str().unwrap())))
        .json(&json!({"method": "password", "password": PASSWORD, "traits": {"email": email}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let found: Value = api_client()
        .get(app.admin_url(&format!("/admin/identities?credentials_identifier={email}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found, json!([]), "nothing registered");
}
both_dbs!(full_hashing_queue_answers_503);

/// The default `limits.per_ip.login` (on unless configured off): one client with random
/// identifiers gets 429 with `Retry-After` after the limit, within one minute.
async fn default_per_ip_login_limit(db: Db) {
    let defaults = idflow_core::config::Limits::default().per_ip;
    assert!(defaults.login > 0 && defaults.registration > 0, "on by default");
    let app = spawn_app_with(db, move |c| c.limits.per_ip = defaults).await;
    // Start at the beginning of a (fake-clock) minute and hold the clock there (it runs with
    // real time), so the run stays in one window however slow the machine is.
    let now = app.clock.now().unix_timestamp();
    app.clock.advance(60 - now.rem_euclid(60));
    let mut held = std::time::Instant::now();
    let limit = usize::try_from(defaults.login).unwrap();
    let mut ok = 0;
    for _ in 0..limit {
        let secs = i64::try_from(held.elapsed().as_secs()).unwrap();
        if secs > 0 {
            app.clock.advance(-secs);
            held += std::time::Duration::from_secs(secs.unsigned_abs());
        }
        let st =
            api_login(&app, &format!("nobody-{}@example.com", uuid::Uuid::new_v4()), "Wrong-Horse-1").await.status();
        assert_eq!(st, 400, "within the limit: a plain wrong-credentials answer");
        ok += 1;
    }
    assert_eq!(ok, limit);
    let r = api_login(&app, "someone-else@example.com", "Wrong-Horse-1").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    // The next window lets the client in again (no lockout).
    app.clock.advance(60);
    assert_eq!(api_login(&app, "someone-else@example.com", "Wrong-Horse-1").await.status(), 400);
}
both_dbs!(default_per_ip_login_limit);
