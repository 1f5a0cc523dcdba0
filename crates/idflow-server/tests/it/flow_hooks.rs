//! `after` hooks of login and registration, run by the flow pipeline like the settings hooks:
//! `web_hook` (after the commit, or interrupting before it) and `revoke_active_sessions` (login),
//! and hooks refused at start where the flow kind does not take them.

use crate::both_dbs;
use crate::support::*;
use idflow_core::config::{Config, Hook};
use idflow_core::model::MethodId;
use serde_json::{Value, json};

fn hooks(yaml: &str) -> Vec<Hook> {
    serde_yaml_ng::from_str(yaml).unwrap()
}

fn web_hook(url: &str, interrupt: bool) -> Vec<Hook> {
    hooks(&format!("- hook: web_hook\n  config: {{url: \"{url}\", timeout: 1s, can_interrupt: {interrupt}}}\n"))
}

async fn api_registration(app: &TestApp, email: &str) -> reqwest::Response {
    let c = api_client();
    let flow: Value = c.get(app.url("/self-service/registration/api")).send().await.unwrap().json().await.unwrap();
    c.post(app.url(&format!("/self-service/registration?flow={}", flow["id"].as_str().unwrap())))
        .json(&json!({"method": "password", "password": PASSWORD, "traits": {"email": email, "name": {"first": "H"}}}))
        .send()
        .await
        .unwrap()
}

async fn login_web_hook_receives_identity(db: Db) {
    let (url, got) = receiver(200).await;
    let app = spawn_app_with(db, |c| c.selfservice.flows.login.after.hooks = web_hook(&url, false)).await;
    let (email, _, id) = app.user().await;
    let r = app.login(&email, PASSWORD).await;
    assert!(r["session_token"].is_string(), "{r}");
    let calls = got.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "one call per login: {calls:?}");
    assert_eq!(calls[0]["flow_kind"], "login");
    assert_eq!(calls[0]["method"], "password");
    assert_eq!(calls[0]["identity"]["id"], id.as_str());
    assert!(calls[0]["identity"].get("credentials").is_none(), "no credentials in hook payloads");
}
both_dbs!(login_web_hook_receives_identity);

async fn login_interrupting_web_hook_refuses_the_login(db: Db) {
    let url = unreachable_url();
    let app = spawn_app_with(db, |c| {
        c.selfservice.flows.login.after.method_mut(MethodId::Password).hooks = Some(web_hook(&url, true))
    })
    .await;
    let (email, _, id) = app.user().await;
    let r = app.login(&email, PASSWORD).await;
    assert!(r.get("session_token").is_none(), "no session when an interrupting hook fails: {r}");
    let texts = message_texts(&r);
    assert!(texts.iter().any(|t| t.contains("web hook")), "{texts:?}");
    assert!(!texts.iter().any(|t| t.contains("127.0.0.1")), "the hook's URL is not shown: {texts:?}");
    // No session was stored for the identity.
    let sessions: Value = reqwest::Client::new()
        .get(app.admin_url(&format!("/admin/identities/{id}/sessions")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sessions.as_array().map(Vec::len), Some(1), "only the registration's session: {sessions}");
}
both_dbs!(login_interrupting_web_hook_refuses_the_login);

async fn login_revoke_active_sessions(db: Db) {
    let app =
        spawn_app_with(db, |c| c.selfservice.flows.login.after.hooks = hooks("- hook: revoke_active_sessions\n")).await;
    let (email, first, _) = app.user().await;
    assert_eq!(whoami(&app, &first).await.status(), 200);
    let second = app.login(&email, PASSWORD).await["session_token"].as_str().unwrap().to_string();
    assert_eq!(whoami(&app, &first).await.status(), 401, "the earlier session is revoked by the login");
    assert_eq!(whoami(&app, &second).await.status(), 200, "the new session lives");
}
both_dbs!(login_revoke_active_sessions);

async fn login_without_hooks_keeps_other_sessions(db: Db) {
    let app = spawn_app(db).await;
    let (email, first, _) = app.user().await;
    app.login(&email, PASSWORD).await;
    assert_eq!(whoami(&app, &first).await.status(), 200);
}
both_dbs!(login_without_hooks_keeps_other_sessions);

async fn registration_web_hooks(db: Db) {
    let (url, got) = receiver(200).await;
    let app = spawn_app_with(db, |c| {
        let after = c.selfservice.flows.registration.after.method_mut(MethodId::Password);
        let mut list = hooks("- hook: session\n");
        list.extend(web_hook(&url, false));
        after.hooks = Some(list);
    })
    .await;
    let email = unique_email();
    let r = api_registration(&app, &email).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body["session_token"].is_string(), "the session hook still runs: {body}");
    let calls = got.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["flow_kind"], "registration");
    assert_eq!(calls[0]["identity"]["id"], body["identity"]["id"]);
    assert_eq!(calls[0]["identity"]["traits"]["email"], email.as_str());
}
both_dbs!(registration_web_hooks);

async fn registration_interrupting_web_hook_creates_nothing(db: Db) {
    let (url, got) = receiver(403).await;
    // The method's own list replaces the flow's (`after.password.hooks` is `[session]` by default).
    let app = spawn_app_with(db, |c| {
        let mut list = hooks("- hook: session\n");
        list.extend(web_hook(&url, true));
        c.selfservice.flows.registration.after.method_mut(MethodId::Password).hooks = Some(list);
    })
    .await;
    let email = unique_email();
    let r = api_registration(&app, &email).await;
    assert_eq!(r.status(), 400, "a failing interrupting hook is a form error");
    let body: Value = r.json().await.unwrap();
    assert!(message_texts(&body).iter().any(|t| t.contains("403")), "{body}");
    assert_eq!(got.lock().unwrap().len(), 1, "the hook saw the would-be identity");
    // Nothing was stored: the same address registers fine once the hook is gone, and no
    // identity exists for it now.
    let list: Value = reqwest::Client::new()
        .get(app.admin_url(&format!("/admin/identities?credentials_identifier={email}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
}
both_dbs!(registration_interrupting_web_hook_creates_nothing);

#[test]
fn hooks_are_checked_per_flow_kind() {
    let load = |yaml: &str| Config::load(Some(yaml), Vec::<(String, String)>::new());
    let e = load("selfservice:\n  flows:\n    login:\n      after:\n        hooks:\n          - hook: session\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("selfservice.flows.login.after.hooks") && e.contains("session"), "{e}");
    let e = load(
        "selfservice:\n  flows:\n    registration:\n      after:\n        password:\n          hooks:\n            - hook: revoke_active_sessions\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("selfservice.flows.registration.after.password.hooks"), "{e}");
    let e = load("selfservice:\n  flows:\n    login:\n      after:\n        nosuchmethod:\n          hooks: []\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("nosuchmethod"), "an unknown method key is refused: {e}");
    assert!(load("selfservice:\n  flows:\n    login:\n      after:\n        totp:\n          hooks:\n            - hook: revoke_active_sessions\n").is_ok());
}
