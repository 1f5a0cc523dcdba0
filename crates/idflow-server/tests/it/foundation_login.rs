//! Login: refresh (same session, rotated token), AAL rules, already-logged-in, and TOTP step-up
//! for an identity imported with a TOTP secret (replay and rate limit included).

use crate::both_dbs;
use crate::foundation_util::*;
use crate::helpers::*;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn at(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(v.as_str().unwrap(), &Rfc3339).unwrap()
}

async fn whoami(app: &TestApp, token: &str) -> reqwest::Response {
    api_client().get(app.url("/sessions/whoami")).header("X-Session-Token", token).send().await.unwrap()
}

/// Create an API login flow with `query`, authenticated with `token`.
async fn api_login_flow(app: &TestApp, query: &str, token: Option<&str>) -> reqwest::Response {
    let mut r = api_client().get(app.url(&format!("/self-service/login/api{query}")));
    if let Some(t) = token {
        r = r.header("X-Session-Token", t);
    }
    r.send().await.unwrap()
}

async fn submit_login(app: &TestApp, flow: &Value, token: Option<&str>, body: Value) -> reqwest::Response {
    let mut r =
        api_client().post(app.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap()))).json(&body);
    if let Some(t) = token {
        r = r.header("X-Session-Token", t);
    }
    r.send().await.unwrap()
}

/// `refresh=true`: the same session, `authenticated_at` moves forward, a new token is issued
/// and the old one stops working (security checklist T10).
async fn refresh_login_rotates_token(db: Db) {
    let app = spawn_app(db).await;
    let (email, token, _) = app.user().await;
    let before: Value = whoami(&app, &token).await.json().await.unwrap();
    app.clock.advance(120);

    let resp = api_login_flow(&app, "?refresh=true", Some(&token)).await;
    assert_eq!(resp.status(), 200);
    let flow: Value = resp.json().await.unwrap();
    assert_eq!(flow["refresh"], true);
    let resp = submit_login(
        &app,
        &flow,
        Some(&token),
        json!({"method": "password", "identifier": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let out: Value = resp.json().await.unwrap();
    let new_token = out["session_token"].as_str().unwrap();
    assert_ne!(new_token, token, "the token is rotated on refresh");
    assert_eq!(out["session"]["id"], before["id"], "the same session is refreshed");
    assert!(at(&out["session"]["authenticated_at"]) >= at(&before["authenticated_at"]) + time::Duration::seconds(119));
    assert!(at(&out["session"]["expires_at"]) > at(&before["expires_at"]));
    assert_eq!(out["session"]["authentication_methods"].as_array().unwrap().len(), 2);

    assert_eq!(whoami(&app, &token).await.status(), 401, "the old token is dead");
    let who: Value = whoami(&app, new_token).await.json().await.unwrap();
    assert_eq!(who["id"], before["id"]);
}
both_dbs!(refresh_login_rotates_token);

/// `aal=aal2` needs a session; without one → 401 `session_aal1_required`.
async fn aal2_without_session(db: Db) {
    let app = spawn_app(db).await;
    kratos_error(api_login_flow(&app, "?aal=aal2", None).await, 401, Some("session_aal1_required")).await;
    // Bad AAL values are a plain 400.
    kratos_error(api_login_flow(&app, "?aal=aal9", None).await, 400, None).await;
}
both_dbs!(aal2_without_session);

/// Logging in again while logged in (no refresh) → 400 `session_already_available`; so is
/// registering.
async fn login_while_logged_in(db: Db) {
    let app = spawn_app(db).await;
    let (_, token, _) = app.user().await;
    kratos_error(api_login_flow(&app, "", Some(&token)).await, 400, Some("session_already_available")).await;
    kratos_error(api_login_flow(&app, "?refresh=false", Some(&token)).await, 400, Some("session_already_available"))
        .await;
    // Registration is refused as well.
    let resp = api_client()
        .get(app.url("/self-service/registration/api"))
        .header("X-Session-Token", &token)
        .send()
        .await
        .unwrap();
    kratos_error(resp, 400, Some("session_already_available")).await;
}
both_dbs!(login_while_logged_in);

/// Password login of an identity with TOTP: the token's session has `identity: null`, whoami
/// answers 403 `session_aal2_required`; the aal2 flow with the right code upgrades the session
/// (and rotates the token); the same code cannot be used again.
async fn totp_step_up(db: Db) {
    let app = spawn_app(db).await;
    let email = unique_email();
    let secret = new_totp_secret();
    app.admin_create(&email, Some(&secret)).await;

    let out = app.login(&email, PASSWORD).await;
    let t1 = out["session_token"].as_str().unwrap().to_string();
    assert!(out["session"]["identity"].is_null(), "identity hidden until aal2: {out}");
    assert_eq!(out["session"]["authenticator_assurance_level"], "aal1");
    let err = kratos_error(whoami(&app, &t1).await, 403, Some("session_aal2_required")).await;
    assert!(err["redirect_browser_to"].as_str().unwrap().contains("aal=aal2"));

    let resp = api_login_flow(&app, "?aal=aal2", Some(&t1)).await;
    assert_eq!(resp.status(), 200);
    let flow: Value = resp.json().await.unwrap();
    assert_eq!(flow["requested_aal"], "aal2");
    assert!(node(&flow, "totp_code").is_some(), "totp_code node: {flow}");
    assert!(node(&flow, "password").is_none());

    // Without the session the step-up cannot be submitted.
    let code = totp_code(&secret, &app.clock);
    let resp = submit_login(&app, &flow, None, json!({"method": "totp", "totp_code": code})).await;
    kratos_error(resp, 401, Some("session_aal1_required")).await;

    let resp = submit_login(&app, &flow, Some(&t1), json!({"method": "totp", "totp_code": code})).await;
    assert_eq!(resp.status(), 200);
    let up: Value = resp.json().await.unwrap();
    let t2 = up["session_token"].as_str().unwrap().to_string();
    assert_ne!(t2, t1, "the token is rotated on step-up");
    assert_eq!(up["session"]["authenticator_assurance_level"], "aal2");
    assert_eq!(up["session"]["identity"]["traits"]["email"], email.as_str());
    assert_eq!(up["session"]["id"], out["session"]["id"]);
    let who = whoami(&app, &t2).await;
    assert_eq!(who.status(), 200);
    let who: Value = who.json().await.unwrap();
    assert_eq!(who["authenticator_assurance_level"], "aal2");
    assert_eq!(whoami(&app, &t1).await.status(), 401, "the pre-step-up token is dead");

    // Replay: a second session tries the code that was just used.
    let t3 = app.login(&email, PASSWORD).await["session_token"].as_str().unwrap().to_string();
    let flow: Value = api_login_flow(&app, "?aal=aal2", Some(&t3)).await.json().await.unwrap();
    let resp = submit_login(&app, &flow, Some(&t3), json!({"method": "totp", "totp_code": code})).await;
    assert_eq!(resp.status(), 400);
    let flow: Value = resp.json().await.unwrap();
    assert!(message_ids(&flow).contains(&4000008), "replayed code rejected: {flow}");
    kratos_error(whoami(&app, &t3).await, 403, Some("session_aal2_required")).await;
}
both_dbs!(totp_step_up);

/// Ten wrong TOTP codes are evaluated (400 each); the eleventh is refused with 429 and
/// `Retry-After`, and then even the right code is refused until the window passes.
async fn totp_rate_limited(db: Db) {
    let app = spawn_app(db).await;
    let email = unique_email();
    let secret = new_totp_secret();
    app.admin_create(&email, Some(&secret)).await;
    let token = app.login(&email, PASSWORD).await["session_token"].as_str().unwrap().to_string();
    let flow: Value = api_login_flow(&app, "?aal=aal2", Some(&token)).await.json().await.unwrap();
    for i in 0..10 {
        let wrong = wrong_totp_code(&secret, &app);
        let resp = submit_login(&app, &flow, Some(&token), json!({"method": "totp", "totp_code": wrong})).await;
        assert_eq!(resp.status(), 400, "attempt {i}");
    }
    let wrong = wrong_totp_code(&secret, &app);
    let resp = submit_login(&app, &flow, Some(&token), json!({"method": "totp", "totp_code": wrong})).await;
    let retry: u64 = resp.headers().get("retry-after").expect("Retry-After").to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    kratos_error(resp, 429, None).await;
    let right = totp_code(&secret, &app.clock);
    let resp = submit_login(&app, &flow, Some(&token), json!({"method": "totp", "totp_code": right})).await;
    assert_eq!(resp.status(), 429, "locked out for the window");
    kratos_error(whoami(&app, &token).await, 403, Some("session_aal2_required")).await;
}
both_dbs!(totp_rate_limited);
