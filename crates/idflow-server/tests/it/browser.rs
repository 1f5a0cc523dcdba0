//! Browser flows: creation redirects to the UI and sets the CSRF cookie, AJAX creation returns
//! the flow, CSRF is enforced on submit and on fetching a browser flow, success sets the session
//! cookie.

use crate::both_dbs;
use crate::support::*;
use reqwest::header::ACCEPT;
use serde_json::{Value, json};

/// Non-AJAX creation: 303 to `{public}/ui/<kind>?flow=<id>` plus an HttpOnly CSRF cookie; the
/// flow can then be fetched with the cookie (200) but not without it (403).
async fn browser_creation_redirects_to_ui(db: Db) {
    let app = spawn_app(db).await;
    for kind in ["registration", "login"] {
        let c = browser_client();
        let resp = c.get(app.url(&format!("/self-service/{kind}/browser"))).send().await.unwrap();
        assert_eq!(resp.status(), 303, "{kind}");
        let loc = location(&resp);
        let prefix = format!("{}/ui/{kind}?flow=", app.public);
        assert!(loc.starts_with(&prefix), "{kind}: Location {loc}");
        let id = loc[prefix.len()..].to_string();
        uuid::Uuid::parse_str(&id).expect("flow id in the Location");
        let csrf_cookie = set_cookie(&resp, &csrf_cookie_name(&app)).expect("CSRF cookie set");
        assert!(csrf_cookie.contains("HttpOnly"), "{csrf_cookie}");
        assert!(!cookie_value(&csrf_cookie).is_empty());

        let fetched = c.get(app.url(&format!("/self-service/{kind}/flows?id={id}"))).send().await.unwrap();
        assert_eq!(fetched.status(), 200, "{kind}: fetch with the CSRF cookie");
        let flow: Value = fetched.json().await.unwrap();
        assert_eq!(flow["id"], id.as_str());
        assert_eq!(flow["type"], "browser");
        assert!(!csrf(&flow).is_empty(), "csrf_token node");

        // Another browser (no cookie) may not read the flow.
        let resp = api_client().get(app.url(&format!("/self-service/{kind}/flows?id={id}"))).send().await.unwrap();
        kratos_error(resp, 403, Some("security_csrf_violation")).await;
        // Nor may a browser holding some other CSRF cookie.
        let other = browser_client();
        browser_flow(&app, &other, kind).await;
        let resp = other.get(app.url(&format!("/self-service/{kind}/flows?id={id}"))).send().await.unwrap();
        kratos_error(resp, 403, Some("security_csrf_violation")).await;
    }
}
both_dbs!(browser_creation_redirects_to_ui);

/// A configured `selfservice.flows.<kind>.ui_url` is where the browser is sent.
async fn browser_creation_uses_configured_ui_url(db: Db) {
    let app = spawn_app_with(db, |cfg| {
        cfg.selfservice.flows.login.ui_url = Some("https://ui.example.com/auth/login".into());
        cfg.selfservice.flows.registration.ui_url = Some("https://ui.example.com/auth/register?lang=en".into());
        cfg.selfservice.flows.settings.ui_url = Some("https://ui.example.com/app#/settings".into());
        cfg.selfservice.flows.verification.ui_url = Some("https://UI.example.com".into());
    })
    .await;
    // The flow's UI URL (kept per kind after the first) is what the URL parser writes.
    use idflow_core::model::FlowKind;
    let id = uuid::Uuid::new_v4();
    for kind in
        [FlowKind::Login, FlowKind::Registration, FlowKind::Settings, FlowKind::Recovery, FlowKind::Verification]
    {
        let want =
            idflow_core::selfservice::with_query(&app.engine.ui_url(kind.as_str()), &[("flow", &id.to_string())]);
        assert_eq!(app.engine.ui_url_for_flow(kind, id), want);
        assert_eq!(app.engine.ui_url_for_flow(kind, id), want);
    }
    assert_eq!(app.engine.ui_url_for_flow(FlowKind::Verification, id), format!("https://ui.example.com/?flow={id}"));
    assert_eq!(
        app.engine.ui_url_for_flow(FlowKind::Settings, id),
        format!("https://ui.example.com/app?flow={id}#/settings")
    );
    let c = browser_client();
    let resp = c.get(app.url("/self-service/login/browser")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).starts_with("https://ui.example.com/auth/login?flow="), "{}", location(&resp));
    let resp = c.get(app.url("/self-service/registration/browser")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).starts_with("https://ui.example.com/auth/register?lang=en&flow="), "{}", location(&resp));
}
both_dbs!(browser_creation_uses_configured_ui_url);

/// AJAX creation (`Accept: application/json`): 200 with the flow and the CSRF cookie.
async fn browser_creation_ajax_returns_flow(db: Db) {
    let app = spawn_app(db).await;
    for kind in ["registration", "login"] {
        let c = browser_client();
        let resp = c
            .get(app.url(&format!("/self-service/{kind}/browser")))
            .header(ACCEPT, "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{kind}");
        assert!(set_cookie(&resp, &csrf_cookie_name(&app)).is_some(), "{kind}: CSRF cookie");
        let flow: Value = resp.json().await.unwrap();
        assert_eq!(flow["type"], "browser");
        assert!(
            flow["ui"]["action"].as_str().unwrap().starts_with(&format!("{}/self-service/{kind}?flow=", app.public))
        );
        assert!(!csrf(&flow).is_empty(), "{kind}: csrf_token node");
    }
}
both_dbs!(browser_creation_ajax_returns_flow);

/// Registration submit: no token → 403, a wrong token → 403, the right one → 200 with an
/// HttpOnly session cookie that whoami accepts.
async fn browser_registration_csrf_and_session_cookie(db: Db) {
    let app = spawn_app(db).await;
    let c = browser_client();
    let flow = browser_flow(&app, &c, "registration").await;
    let url = app.url(&format!("/self-service/registration?flow={}", flow["id"].as_str().unwrap()));
    let email = unique_email();
    let body = |csrf_token: Option<String>| {
        let mut b = json!({"method": "password", "password": PASSWORD, "traits": {"email": email, "name": {"first": "A", "last": "B"}}});
        if let Some(t) = csrf_token {
            b["csrf_token"] = json!(t);
        }
        b
    };

    let resp = c.post(&url).header(ACCEPT, "application/json").json(&body(None)).send().await.unwrap();
    let err = kratos_error(resp, 403, Some("security_csrf_violation")).await;
    assert!(err["error"]["reason"].as_str().is_some_and(|r| !r.is_empty()));

    // A token minted for another browser is wrong for this one.
    let other = browser_client();
    let foreign = csrf(&browser_flow(&app, &other, "registration").await);
    let resp = c.post(&url).header(ACCEPT, "application/json").json(&body(Some(foreign))).send().await.unwrap();
    kratos_error(resp, 403, Some("security_csrf_violation")).await;
    let resp =
        c.post(&url).header(ACCEPT, "application/json").json(&body(Some("not-a-token".into()))).send().await.unwrap();
    kratos_error(resp, 403, Some("security_csrf_violation")).await;

    // Nothing was created by the rejected submits.
    let list: Value = api_client()
        .get(app.admin_url(&format!("/admin/identities?credentials_identifier={email}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 0);

    let resp = c.post(&url).header(ACCEPT, "application/json").json(&body(Some(csrf(&flow)))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = set_cookie(&resp, "ory_kratos_session").expect("session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("Path=/"), "{cookie}");
    let out: Value = resp.json().await.unwrap();
    assert!(out.get("session_token").is_none(), "browser flows never return the token: {out}");
    assert_eq!(out["identity"]["traits"]["email"], email.as_str());
    let id = out["identity"]["id"].as_str().unwrap();

    let who = c.get(app.url("/sessions/whoami")).send().await.unwrap();
    assert_eq!(who.status(), 200);
    let who: Value = who.json().await.unwrap();
    assert_eq!(who["identity"]["id"], id);
    assert_eq!(who["id"], out["session"]["id"]);
}
both_dbs!(browser_registration_csrf_and_session_cookie);

/// Login submit with the CSRF checks, then success by AJAX (200 JSON) and by a plain form post
/// (303 to the default return URL); both set the session cookie.
async fn browser_login_csrf_and_redirects(db: Db) {
    let app = spawn_app(db).await;
    let (email, _, id) = app.user().await;

    let c = browser_client();
    let flow = browser_flow(&app, &c, "login").await;
    let url = app.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap()));
    let resp = c
        .post(&url)
        .header(ACCEPT, "application/json")
        .json(&json!({"method": "password", "identifier": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    kratos_error(resp, 403, Some("security_csrf_violation")).await;
    let resp = c
        .post(&url)
        .header(ACCEPT, "application/json")
        .json(&json!({"method": "password", "identifier": email, "password": PASSWORD, "csrf_token": "AAAA"}))
        .send()
        .await
        .unwrap();
    kratos_error(resp, 403, Some("security_csrf_violation")).await;
    let resp = c
        .post(&url)
        .header(ACCEPT, "application/json")
        .json(&json!({"method": "password", "identifier": email, "password": PASSWORD, "csrf_token": csrf(&flow)}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = set_cookie(&resp, "ory_kratos_session").expect("session cookie");
    assert!(cookie.contains("HttpOnly"));
    let out: Value = resp.json().await.unwrap();
    assert!(out.get("session_token").is_none());
    assert_eq!(out["session"]["identity"]["id"], id.as_str());
    let who: Value = c.get(app.url("/sessions/whoami")).send().await.unwrap().json().await.unwrap();
    assert_eq!(who["identity"]["id"], id.as_str());

    // A plain browser (form post, no Accept: application/json).
    let b = browser_client();
    let resp = b.get(app.url("/self-service/login/browser")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let fid = location(&resp).rsplit_once("flow=").unwrap().1.to_string();
    let flow: Value =
        b.get(app.url(&format!("/self-service/login/flows?id={fid}"))).send().await.unwrap().json().await.unwrap();
    let form_url = app.url(&format!("/self-service/login?flow={fid}"));
    // Wrong password: back to the UI with the same flow.
    let resp = b
        .post(&form_url)
        .form(&[
            ("method", "password"),
            ("identifier", email.as_str()),
            ("password", "wrong-password-42"),
            ("csrf_token", &csrf(&flow)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), format!("{}/ui/login?flow={fid}", app.public));
    assert!(set_cookie(&resp, "ory_kratos_session").is_none());
    let resp = b
        .post(&form_url)
        .form(&[
            ("method", "password"),
            ("identifier", email.as_str()),
            ("password", PASSWORD),
            ("csrf_token", &csrf(&flow)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), format!("{}/ui/welcome", app.public));
    assert!(set_cookie(&resp, "ory_kratos_session").is_some());
    let who = b.get(app.url("/sessions/whoami")).send().await.unwrap();
    assert_eq!(who.status(), 200);
}
both_dbs!(browser_login_csrf_and_redirects);

/// A browser that already has a session is sent away from registration; AJAX gets 400.
async fn browser_with_session_cannot_register(db: Db) {
    let app = spawn_app(db).await;
    let c = browser_client();
    browser_register(&app, &c).await;
    let resp =
        c.get(app.url("/self-service/registration/browser")).header(ACCEPT, "application/json").send().await.unwrap();
    kratos_error(resp, 400, Some("session_already_available")).await;
    let resp = c.get(app.url("/self-service/registration/browser")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), format!("{}/ui/welcome", app.public));
}
both_dbs!(browser_with_session_cannot_register);
