//! Login: refresh (same session, rotated token), AAL rules, already-logged-in, TOTP step-up for
//! an identity imported with a TOTP secret (replay and rate limit included), the TOTP clock-skew
//! window, and single use of TOTP codes and recovery codes under concurrency (two logins with one
//! code: exactly one wins).

use crate::both_dbs;
use crate::snap;
use crate::support::*;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn at(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(v.as_str().unwrap(), &Rfc3339).unwrap()
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

// ---- second factors: skew window and single use -------------------------------------------

/// A user with TOTP and recovery codes; returns the email.
async fn mfa_user(app: &TestApp) -> String {
    let email = unique_email();
    let body = json!({
        "traits": {"email": email},
        "credentials": {
            "password": {"config": {"password": PASSWORD}},
            "totp": {"config": {"totp_url": format!("otpauth://totp/idflow:{email}?secret={TOTP_SECRET}&issuer=idflow")}},
            "lookup_secret": {"config": {"codes": [{"code": "abcd1234"}, {"code": "efgh5678"}]}},
        }
    });
    let r = api_client().post(app.admin_url("/admin/identities")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    email
}

/// A password session and an aal2 login flow for it: (token, flow id).
async fn step_up_flow(app: &TestApp, email: &str) -> (String, String) {
    let login = app.login(email, PASSWORD).await;
    let token = login["session_token"].as_str().unwrap().to_string();
    assert!(login["session"]["identity"].is_null(), "aal1 session of an aal2 identity hides the identity");
    let flow = app.get_with_token("/self-service/login/api?aal=aal2", &token).await;
    (token, flow["id"].as_str().unwrap().to_string())
}

async fn submit(app: &TestApp, token: &str, flow: &str, body: Value) -> (u16, Value) {
    let r = api_client()
        .post(app.url(&format!("/self-service/login?flow={flow}")))
        .header("X-Session-Token", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn totp_skew_window(db: Db) {
    let app = spawn_app(db).await;
    let email = mfa_user(&app).await;
    // Two steps in the past: outside the ±1 step window.
    let (t, f) = step_up_flow(&app, &email).await;
    let (s, body) =
        submit(&app, &t, &f, json!({"method": "totp", "totp_code": totp_code_at(TOTP_SECRET, &app.clock, -60)})).await;
    assert_eq!(s, 400, "{body}");
    assert!(message_ids(&body).contains(&4000008), "{body}");
    // One step in the past: accepted.
    let (s, body) =
        submit(&app, &t, &f, json!({"method": "totp", "totp_code": totp_code_at(TOTP_SECRET, &app.clock, -30)})).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["session"]["authenticator_assurance_level"], "aal2");
    // Two steps ahead: rejected; one step ahead (later than the last used step): accepted.
    let (t, f) = step_up_flow(&app, &email).await;
    let (s, _) =
        submit(&app, &t, &f, json!({"method": "totp", "totp_code": totp_code_at(TOTP_SECRET, &app.clock, 90)})).await;
    assert_eq!(s, 400);
    let (s, body) =
        submit(&app, &t, &f, json!({"method": "totp", "totp_code": totp_code_at(TOTP_SECRET, &app.clock, 30)})).await;
    assert_eq!(s, 200, "{body}");
    // The fake clock moves the window: after 5 minutes the current code is fine again.
    app.clock.advance(300);
    let (t, f) = step_up_flow(&app, &email).await;
    let (s, body) =
        submit(&app, &t, &f, json!({"method": "totp", "totp_code": totp_code_at(TOTP_SECRET, &app.clock, 0)})).await;
    assert_eq!(s, 200, "{body}");
}
both_dbs!(totp_skew_window);

async fn totp_code_used_concurrently_wins_once(db: Db) {
    let app = spawn_app(db).await;
    let email = mfa_user(&app).await;
    let (t1, f1) = step_up_flow(&app, &email).await;
    let (t2, f2) = step_up_flow(&app, &email).await;
    let code = totp_code_at(TOTP_SECRET, &app.clock, 0);
    let body = json!({"method": "totp", "totp_code": code});
    let (a, b) = tokio::join!(submit(&app, &t1, &f1, body.clone()), submit(&app, &t2, &f2, body.clone()));
    let mut statuses = vec![a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, vec![200, 400], "{a:?} {b:?}");
}
both_dbs!(totp_code_used_concurrently_wins_once);

async fn recovery_code_used_concurrently_wins_once(db: Db) {
    let app = spawn_app(db).await;
    let email = mfa_user(&app).await;
    let (t1, f1) = step_up_flow(&app, &email).await;
    let (t2, f2) = step_up_flow(&app, &email).await;
    let body = json!({"method": "lookup_secret", "lookup_secret": "abcd1234"});
    let (a, b) = tokio::join!(submit(&app, &t1, &f1, body.clone()), submit(&app, &t2, &f2, body.clone()));
    let (win, lose) = if a.0 == 200 { (a, b) } else { (b, a) };
    assert_eq!(win.0, 200, "{win:?}");
    assert_eq!(win.1["session"]["authenticator_assurance_level"], "aal2");
    assert_eq!(lose.0, 400, "{lose:?}");
    assert!(message_ids(&lose.1).contains(&4000012), "{lose:?}");
    // The other code still works, once; unknown codes are refused.
    let (t3, f3) = step_up_flow(&app, &email).await;
    let (s, body) = submit(&app, &t3, &f3, json!({"method": "lookup_secret", "lookup_secret": "nope0000"})).await;
    assert_eq!(s, 400);
    assert!(message_ids(&body).contains(&4000016), "{body}");
    let (s, _) = submit(&app, &t3, &f3, json!({"method": "lookup_secret", "lookup_secret": "efgh5678"})).await;
    assert_eq!(s, 200);
    // Codes are stored hashed: the admin view does not contain them.
    let admin: Value =
        api_client()
            .get(app.admin_url(&format!(
                "/admin/identities?credentials_identifier={email}&include_credential=lookup_secret"
            )))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let text = admin.to_string();
    assert!(text.contains("recovery_codes"), "{text}");
    assert!(!text.contains("abcd1234") && !text.contains("efgh5678"), "{text}");
}
both_dbs!(recovery_code_used_concurrently_wins_once);

// ---- wire shapes --------------------------------------------------------------------------

/// insta snapshots of the login flow's wire shapes (redacted as in `support::snapshots`): the
/// API and browser (AJAX) flow, the 400 flow for invalid credentials, the success body with the
/// session, and the unknown-flow error. SQLite only: the shapes do not depend on the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_wire_shapes() {
    let app = spawn_app(Db::Sqlite).await;
    let email = "ana@example.org";
    app.register(email, PASSWORD).await;
    let c = api_client();

    let r = c.get(app.url("/self-service/login/api")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let flow = body(r).await;
    snap!(&app, "api_flow_created", &flow);
    let bflow = browser_flow(&app, &browser_client(), "login").await;
    snap!(&app, "browser_flow_created", &bflow);

    let submit = |password: &str| {
        c.post(app.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap())))
            .json(&json!({"method": "password", "identifier": email, "password": password}))
            .send()
    };
    let r = submit("wrong-password-123").await.unwrap();
    assert_eq!(r.status(), 400);
    let invalid = body(r).await;
    assert_eq!(message_ids(&invalid), vec![4000006]);
    snap!(&app, "api_flow_400_invalid_credentials", &invalid);
    let r = submit(PASSWORD).await.unwrap();
    assert_eq!(r.status(), 200);
    let ok = body(r).await;
    assert!(ok["session_token"].as_str().is_some_and(|t| t.starts_with("idf_st_")));
    snap!(&app, "api_success", &ok);

    let r = c.get(app.url(&format!("/self-service/login/flows?id={}", uuid::Uuid::new_v4()))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    snap!(&app, "error_404_flow_not_found", &body(r).await);
}
