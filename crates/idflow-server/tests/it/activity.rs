//! The activity log (checklist T22): an entry for each security-relevant event (sign-in
//! success and failure, refresh, step-up, registration, settings changes by method, recovery,
//! verification, logout, sessions signed out, administrator changes) with time, IP, user agent,
//! method, outcome and session; never a secret. Listing newest first with keyset pagination in
//! the three routes (Kratos extension, v1, admin), 404 for an unknown identity, and the
//! retention purge run by the cleanup with the test clock.

use crate::both_dbs;
use crate::support::*;
use idflow_core::config::{Config, Dur};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

const UA: &str = "activity-test-agent/1.0";

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).user_agent(UA).build().unwrap()
}

async fn mail_app(db: Db, tweak: impl FnOnce(&mut Config)) -> (TestApp, Sink) {
    let sink = start_sink(Mode::Accept, None).await;
    let app = spawn_app_with(db, |c| {
        courier_cfg(c, Some(plain_uri(sink.addr)));
        c.selfservice.flows.recovery.enabled = true;
        c.selfservice.flows.verification.enabled = true;
        tweak(c);
    })
    .await;
    (app, sink)
}

/// Every kind of event lands in the log of its identity, with the request's IP and user agent,
/// and nothing in the log is a secret.
async fn activity_entries_for_each_event(db: Db) {
    let (app, sink) = mail_app(db, |_| {}).await;
    let (email, token, id) = app.user().await;
    let mut secrets = vec![PASSWORD.to_string(), token.clone()];

    // Sign-in failure (the identifier is this identity's), then success.
    let (status, _) = api_login_step(&app, "", None, password_body(&email, "wrong-password-123")).await;
    assert_eq!(status, 400);
    wait_for_activity(&app, &id, "login", "failure").await;
    // A failure for an unknown identifier is logged nowhere (and breaks nothing).
    let (status, _) = api_login_step(&app, "", None, password_body(&unique_email(), "whatever-123")).await;
    assert_eq!(status, 400);
    let (status, login) = api_login_step(&app, "", None, password_body(&email, PASSWORD)).await;
    assert_eq!(status, 200, "{login}");
    let t2 = login["session_token"].as_str().unwrap().to_string();
    secrets.push(t2.clone());

    // Refresh of the first session.
    let (status, refreshed) =
        api_login_step(&app, "?refresh=true", Some(&token), password_body(&email, PASSWORD)).await;
    assert_eq!(status, 200, "{refreshed}");
    let token = refreshed["session_token"].as_str().unwrap().to_string();
    secrets.push(token.clone());

    // A settings change by method (password: it also signs out the other sessions), with the
    // request's user agent.
    let new_pw = "activity-new-passphrase-42";
    secrets.push(new_pw.into());
    let flow: Value = api_client()
        .get(app.url("/self-service/settings/api"))
        .header("X-Session-Token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resp = client()
        .post(app.url(&format!("/self-service/settings?flow={}", flow["id"].as_str().unwrap())))
        .header("X-Session-Token", &token)
        .json(&json!({"method": "password", "password": new_pw}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Sessions: one signed out, all others signed out, logout.
    let other = app.login(&email, new_pw).await;
    let other_id = other["session"]["id"].as_str().unwrap().to_string();
    secrets.push(other["session_token"].as_str().unwrap().into());
    let r = api_client()
        .delete(app.url(&format!("/sessions/{other_id}")))
        .header("X-Session-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = api_client().delete(app.url("/sessions")).header("X-Session-Token", &token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let last = app.login(&email, new_pw).await["session_token"].as_str().unwrap().to_string();
    secrets.push(last.clone());
    let r = api_client()
        .delete(app.url("/self-service/logout/api"))
        .json(&json!({"session_token": last}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // Administrator changes: identity patched, a session ended, all sessions deleted.
    let r = api_client()
        .patch(app.admin_url(&format!("/admin/identities/{id}")))
        .json(&json!([{"op": "replace", "path": "/metadata_public", "value": {"plan": "gold"}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let s = app.login(&email, new_pw).await["session"]["id"].as_str().unwrap().to_string();
    let r = api_client().delete(app.admin_url(&format!("/admin/sessions/{s}"))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = api_client().delete(app.admin_url(&format!("/admin/identities/{id}/sessions"))).send().await.unwrap();
    assert_eq!(r.status(), 204);

    // Verification, then recovery (other sessions signed out with it), codes from mail.
    let flow: Value =
        api_client().get(app.url("/self-service/verification/api")).send().await.unwrap().json().await.unwrap();
    let url = app.url(&format!("/self-service/verification?flow={}", flow["id"].as_str().unwrap()));
    let r = api_client().post(&url).json(&json!({"method": "code", "email": email})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The first verification mail came with the registration.
    let code = six_digit_code(&nth_mail(&sink, &email, "Please verify your email address", 2).await);
    secrets.push(code.clone());
    let r = api_client().post(&url).json(&json!({"method": "code", "code": code})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let flow: Value =
        api_client().get(app.url("/self-service/recovery/api")).send().await.unwrap().json().await.unwrap();
    let url = app.url(&format!("/self-service/recovery?flow={}", flow["id"].as_str().unwrap()));
    let r = api_client().post(&url).json(&json!({"method": "code", "email": email})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let code = six_digit_code(&nth_mail(&sink, &email, "Recover access to your account", 1).await);
    secrets.push(code.clone());
    let r = api_client().post(&url).json(&json!({"method": "code", "code": code})).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let log = admin_activity(&app, &id).await;
    let seen: HashSet<(String, String)> = log
        .iter()
        .map(|e| (e["kind"].as_str().unwrap().to_string(), e["outcome"].as_str().unwrap().to_string()))
        .collect();
    for (kind, outcome) in [
        ("registration", "success"),
        ("login", "failure"),
        ("login", "success"),
        ("login_refresh", "success"),
        ("settings_changed", "success"),
        ("other_sessions_revoked", "success"),
        ("session_revoked", "success"),
        ("logout", "success"),
        ("admin_identity_updated", "success"),
        ("admin_session_revoked", "success"),
        ("recovery", "success"),
        ("verification", "success"),
    ] {
        assert!(seen.contains(&(kind.to_string(), outcome.to_string())), "{kind}/{outcome} missing: {log:#?}");
    }
    // Newest first.
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let times: Vec<time::OffsetDateTime> =
        log.iter().map(|e| time::OffsetDateTime::parse(e["created_at"].as_str().unwrap(), rfc3339).unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    // Details of the settings change: method, session, IP, the request's user agent.
    let change = entries_of(&log, "settings_changed", "success")[0];
    assert_eq!(change["method"], "password");
    assert_eq!(change["identity_id"], id.as_str());
    assert_eq!(change["ip_address"], "127.0.0.1");
    assert_eq!(change["user_agent"], UA);
    assert_eq!(change["session_id"], refreshed["session"]["id"]);
    // Revocation by the password change names its method; the logout its session.
    assert!(entries_of(&log, "other_sessions_revoked", "success").iter().any(|e| e["method"] == "password"));
    assert_eq!(entries_of(&log, "session_revoked", "success")[0]["session_id"], other_id.as_str());
    assert_eq!(entries_of(&log, "login", "failure")[0]["method"], "password");
    assert!(entries_of(&log, "recovery", "success").iter().all(|e| e["method"] == "code"));
    // Never a secret: no password, session token or mailed code anywhere in the log.
    let text = serde_json::to_string(&log).unwrap();
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "secret {s:?} in the activity log");
    }
}
both_dbs!(activity_entries_for_each_event);

/// Step-up to aal2 (success and a failed code), and credential deletion by an administrator.
async fn activity_step_up_and_admin_credential(db: Db) {
    let app = spawn_app(db).await;
    let email = unique_email();
    let created = app.admin_create(&email, Some(TOTP_SECRET)).await;
    let id = created["id"].as_str().unwrap().to_string();
    let login = app.login(&email, PASSWORD).await;
    let token = login["session_token"].as_str().unwrap().to_string();
    let wrong = wrong_totp_code(TOTP_SECRET, &app);
    let (status, _) =
        api_login_step(&app, "?aal=aal2", Some(&token), json!({"method": "totp", "totp_code": wrong})).await;
    assert_eq!(status, 400);
    wait_for_activity(&app, &id, "login_step_up", "failure").await;
    let code = totp_code(TOTP_SECRET, &app.clock);
    let (status, up) =
        api_login_step(&app, "?aal=aal2", Some(&token), json!({"method": "totp", "totp_code": code})).await;
    assert_eq!(status, 200, "{up}");
    let r =
        api_client().delete(app.admin_url(&format!("/admin/identities/{id}/credentials/totp"))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let log = admin_activity(&app, &id).await;
    assert_eq!(kinds(&log)[..2], ["admin_credential_deleted", "login_step_up"], "{log:#?}");
    assert_eq!(log[0]["method"], "totp");
    assert_eq!(log[1]["method"], "totp");
    assert_eq!(log[1]["session_id"], login["session"]["id"]);
    let failed = entries_of(&log, "login_step_up", "failure");
    assert_eq!(failed.len(), 1);
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains(TOTP_SECRET) && !text.contains(&code) && !text.contains(&wrong));
}
both_dbs!(activity_step_up_and_admin_credential);

/// Follow `Link: <…>; rel="next"` from `first`, collecting the entries' ids.
async fn walk_links(first: String, token: Option<&str>) -> (Vec<String>, usize) {
    let (mut ids, mut pages, mut next) = (vec![], 0, Some(first));
    while let Some(url) = next.take() {
        let mut r = api_client().get(&url);
        if let Some(t) = token {
            r = r.header("X-Session-Token", t);
        }
        let resp = r.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        next = resp
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(|l| l.strip_prefix('<'))
            .and_then(|l| l.split_once(">; rel=\"next\""))
            .map(|(u, _)| u.to_string());
        let page: Vec<Value> = resp.json().await.unwrap();
        assert!(page.len() <= 2);
        ids.extend(page.iter().map(|e| e["id"].as_str().unwrap().to_string()));
        pages += 1;
        assert!(pages < 50, "pagination does not end");
    }
    (ids, pages)
}

/// Keyset pagination newest first in the three routes; the pages together are the whole log.
async fn activity_pagination_three_routes(db: Db) {
    let app = spawn_app(db).await;
    let (email, token, id) = app.user().await;
    for _ in 0..4 {
        app.clock.advance(1);
        app.login(&email, PASSWORD).await;
    }
    let all: Vec<String> = admin_activity(&app, &id).await.iter().map(|e| e["id"].as_str().unwrap().into()).collect();
    assert_eq!(all.len(), 5, "registration and four sign-ins");

    let (ids, pages) = walk_links(app.admin_url(&format!("/admin/identities/{id}/activity?page_size=2")), None).await;
    assert_eq!(ids, all, "admin pages");
    assert_eq!(pages, 3);
    let (ids, _) = walk_links(app.url("/self-service/settings/activity?page_size=2"), Some(&token)).await;
    assert_eq!(ids, all, "Kratos-dialect pages");

    // v1: Bearer token, envelope with next_page_token.
    let mut got = vec![];
    let mut page_token: Option<String> = None;
    loop {
        let mut url = app.url("/v1/account/activity?page_size=2");
        if let Some(t) = &page_token {
            url.push_str(&format!("&page_token={t}"));
        }
        let resp = api_client().get(url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        got.extend(body["activity"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()));
        match body["next_page_token"].as_str() {
            Some(t) => page_token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(got, all, "v1 pages");

    // The caller sees only its own log.
    let (_, other_token, _) = app.user().await;
    let mine: Vec<Value> =
        app.get_with_token("/self-service/settings/activity", &other_token).await.as_array().unwrap().clone();
    assert_eq!(kinds(&mine), ["registration"]);
}
both_dbs!(activity_pagination_three_routes);

/// Errors in each dialect: unknown identity 404 (admin), bad page parameters 400, no session
/// 401 (Kratos and v1 envelopes).
async fn activity_errors(db: Db) {
    let app = spawn_app(db).await;
    let (_, token, id) = app.user().await;
    let unknown = uuid::Uuid::new_v4();
    let r = api_client().get(app.admin_url(&format!("/admin/identities/{unknown}/activity"))).send().await.unwrap();
    kratos_error(r, 404, None).await;
    let r = api_client().get(app.admin_url("/admin/identities/not-a-uuid/activity")).send().await.unwrap();
    kratos_error(r, 400, None).await;
    let r = api_client()
        .get(app.admin_url(&format!("/admin/identities/{id}/activity?page_token=garbage")))
        .send()
        .await
        .unwrap();
    kratos_error(r, 400, None).await;
    let r = api_client()
        .get(app.url("/self-service/settings/activity?page_size=0"))
        .header("X-Session-Token", &token)
        .send()
        .await
        .unwrap();
    kratos_error(r, 400, None).await;
    let r = api_client().get(app.url("/self-service/settings/activity")).send().await.unwrap();
    kratos_error(r, 401, None).await;
    let r = api_client().get(app.url("/v1/account/activity")).send().await.unwrap();
    v1_error(r, 401, "AVNOLOGY_AUTH_005").await;
    let r = api_client().get(app.url("/v1/account/activity?page_token=x")).bearer_auth(&token).send().await.unwrap();
    v1_error(r, 400, "AVNOLOGY_AUTH_001").await;
}
both_dbs!(activity_errors);

/// Entries older than `activity.retention` are purged by the cleanup (test clock); newer ones
/// stay.
async fn activity_retention_purge(db: Db) {
    let app = spawn_app_with(db, |c| c.activity.retention = Dur(Duration::from_secs(86_400))).await;
    let (email, _, id) = app.user().await;
    app.login(&email, PASSWORD).await;
    assert_eq!(admin_activity(&app, &id).await.len(), 2);
    app.clock.advance(86_400 - 60);
    app.login(&email, PASSWORD).await;
    let cleaned = app.engine.cleanup_expired().await.unwrap();
    assert_eq!(cleaned.activity, 0, "nothing is old enough yet");
    app.clock.advance(120);
    let cleaned = app.engine.cleanup_expired().await.unwrap();
    assert_eq!(cleaned.activity, 2, "the two entries older than a day");
    let left = admin_activity(&app, &id).await;
    assert_eq!(kinds(&left), ["login"], "the recent sign-in stays");
}
both_dbs!(activity_retention_purge);
