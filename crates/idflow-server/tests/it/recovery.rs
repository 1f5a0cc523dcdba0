//! Account recovery with mailed codes, against the real server and a real SMTP sink: the code is
//! read from the received mail. Forgot-password end to end (then the password is changed in the
//! returned settings flow), the same answer for unknown addresses (and the notice mail when
//! `notify_unknown_recipients`), wrong / too many / expired codes, resend, other sessions
//! revoked, a 2FA identity sent to an aal2 login, single use under concurrent submits, the
//! legacy browser answer, and the admin code endpoint.

use crate::both_dbs;
use crate::support::*;
use idflow_core::config::{Config, Dur};
use serde_json::{Value, json};
use std::time::Duration;

fn recovery_cfg(c: &mut Config, sink: &Sink) {
    courier_cfg(c, Some(plain_uri(sink.addr)));
    c.selfservice.flows.recovery.enabled = true;
}

async fn recovery_app(db: Db, tweak: impl FnOnce(&mut Config)) -> (TestApp, Sink) {
    let sink = start_sink(Mode::Accept, None).await;
    let app = spawn_app_with(db, |c| {
        recovery_cfg(c, &sink);
        tweak(c);
    })
    .await;
    (app, sink)
}

async fn api_flow(app: &TestApp) -> Value {
    let r = api_client().get(app.url("/self-service/recovery/api")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn api_submit(app: &TestApp, flow: &Value, body: Value) -> (u16, Value) {
    let r = api_client()
        .post(app.url(&format!("/self-service/recovery?flow={}", flow["id"].as_str().unwrap())))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Start an API recovery for `email` and return the flow in `sent_email`.
async fn send_code(app: &TestApp, email: &str) -> Value {
    let flow = api_flow(app).await;
    let (status, sent) = api_submit(app, &flow, json!({"method": "code", "email": email})).await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["state"], "sent_email", "{sent}");
    sent
}

fn action<'a>(body: &'a Value, name: &str) -> Option<&'a Value> {
    body["continue_with"].as_array()?.iter().find(|c| c["action"] == name)
}

/// Forgot password: the code from the mail signs the user in with a privileged `code_recovery`
/// session, the address is verified, other sessions are revoked, and the password is changed
/// in the settings flow the answer names.
async fn recovery_forgot_password_end_to_end(db: Db) {
    let (app, sink) = recovery_app(db, |_| {}).await;
    let (email, old_token, id) = app.user().await;
    let flow = api_flow(&app).await;
    assert_eq!(flow["state"], "choose_method");
    assert_eq!(node(&flow, "email").unwrap()["meta"]["label"]["id"], 1070007, "{flow}");
    let sent = send_code(&app, &email).await;
    assert_eq!(message_ids(&sent), vec![1060003]);
    assert_eq!(node(&sent, "code").unwrap()["attributes"]["maxlength"], 6);
    let mail = sink.mail_to(&email, 1).await;
    let code = six_digit_code(&mail);
    assert_eq!(code.len(), 6, "{mail}");

    let (status, done) = api_submit(&app, &sent, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["state"], "passed_challenge");
    let token = action(&done, "set_ory_session_token").unwrap()["ory_session_token"].as_str().unwrap().to_string();
    let settings = action(&done, "show_settings_ui").unwrap()["flow"].clone();
    assert!(settings["url"].as_str().unwrap().contains("/ui/settings?flow="), "{settings}");

    let me: Value = whoami(&app, &token).await.json().await.unwrap();
    assert_eq!(me["authentication_methods"][0]["method"], "code_recovery", "{me}");
    assert_eq!(me["authenticator_assurance_level"], "aal1");
    assert_eq!(me["identity"]["verifiable_addresses"][0]["verified"], true, "{me}");
    assert_eq!(me["identity"]["verifiable_addresses"][0]["status"], "completed");
    assert_eq!(whoami(&app, &old_token).await.status(), 401, "other sessions are revoked");
    assert_eq!(me["identity"]["id"], id);

    // The settings flow carries 1060001 and takes the new password.
    let sf = app
        .get_with_token(&format!("/self-service/settings/flows?id={}", settings["id"].as_str().unwrap()), &token)
        .await;
    assert_eq!(message_ids(&sf), vec![1060001], "{sf}");
    let r = api_client()
        .post(app.url(&format!("/self-service/settings?flow={}", settings["id"].as_str().unwrap())))
        .header("X-Session-Token", &token)
        .json(&json!({"method": "password", "password": "a-brand-new-passphrase-42"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert!(app.login(&email, "a-brand-new-passphrase-42").await["session_token"].is_string());
    assert!(app.login(&email, PASSWORD).await["session_token"].is_null());

    // The flow is done: a second submit gets a new flow with 4060001.
    let (status, again) = api_submit(&app, &sent, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 200, "{again}");
    assert_ne!(again["id"], sent["id"]);
    assert_eq!(message_ids(&again), vec![4060001]);
}
both_dbs!(recovery_forgot_password_end_to_end);

/// An unknown address gets the same answer and no mail; with `notify_unknown_recipients` it
/// gets the "access attempted" notice (never a code).
async fn recovery_unknown_address_same_answer(db: Db) {
    let (app, sink) = recovery_app(db, |_| {}).await;
    let (email, _, _) = app.user().await;
    let known = send_code(&app, &email).await;
    let stranger = unique_email();
    let unknown = send_code(&app, &stranger).await;
    assert_eq!(message_texts(&known), message_texts(&unknown));
    assert_eq!(form_ids(&known), form_ids(&unknown));
    sink.mail_to(&email, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sink.mails().iter().all(|m| !m.to.contains(&stranger)), "no mail to an unknown address");
    // Any code is wrong there.
    let (status, wrong) = api_submit(&app, &unknown, json!({"method": "code", "code": "123456"})).await;
    assert_eq!((status, message_ids(&wrong)), (200, vec![4060006]));

    let (app, sink) = recovery_app(db, |c| c.selfservice.flows.recovery.notify_unknown_recipients = true).await;
    let stranger = unique_email();
    send_code(&app, &stranger).await;
    let mail = sink.mail_to(&stranger, 1).await;
    assert!(mail.contains("Subject: Account access attempted"), "{mail}");
    assert!(six_digit_code(&mail).is_empty(), "{mail}");
}
both_dbs!(recovery_unknown_address_same_answer);

/// Wrong codes are form errors until `max_submissions`, then the flow is replaced; a resend
/// replaces the code; an expired code is refused; an expired flow answers 410 with a
/// replacement.
async fn recovery_wrong_expired_and_resent_codes(db: Db) {
    let (app, sink) = recovery_app(db, |c| {
        c.selfservice.methods.code.config.lifespan = Dur(Duration::from_secs(600));
        c.selfservice.methods.code.config.max_submissions = 3;
    })
    .await;
    let (email, _, _) = app.user().await;
    let sent = send_code(&app, &email).await;
    let first = six_digit_code(&sink.mail_to(&email, 1).await);

    // Resend: a new code, the old one no longer works.
    let (status, resent) = api_submit(&app, &sent, json!({"method": "code", "email": email})).await;
    assert_eq!((status, resent["state"].as_str()), (200, Some("sent_email")));
    let second = six_digit_code(&sink.mail_to(&email, 2).await);
    let (status, wrong) = api_submit(&app, &sent, json!({"method": "code", "code": first})).await;
    if first != second {
        assert_eq!((status, message_ids(&wrong)), (200, vec![4060006]), "{wrong}");
    }
    let bad = if second == "000000" { "111111" } else { "000000" };
    api_submit(&app, &sent, json!({"method": "code", "code": bad})).await;
    api_submit(&app, &sent, json!({"method": "code", "code": bad})).await;
    // The fourth submit is over the limit: even the right code gets a new flow.
    let (status, replaced) = api_submit(&app, &sent, json!({"method": "code", "code": second})).await;
    assert_eq!(status, 200, "{replaced}");
    assert_ne!(replaced["id"], sent["id"]);
    assert_eq!(replaced["state"], "choose_method");
    assert_eq!(message_texts(&replaced), vec!["The request was submitted too often. Please request another code."]);

    // An expired code.
    let sent = send_code(&app, &email).await;
    let code = six_digit_code(&sink.mail_to(&email, 3).await);
    app.clock.advance(601);
    let (status, wrong) = api_submit(&app, &sent, json!({"method": "code", "code": code})).await;
    assert_eq!((status, message_ids(&wrong)), (200, vec![4060006]), "{wrong}");

    // An expired flow.
    app.clock.advance(3600);
    let (status, gone) = api_submit(&app, &sent, json!({"method": "code", "code": code})).await;
    assert_eq!(status, 410, "{gone}");
    assert_eq!(gone["error"]["id"], "self_service_flow_expired");
    let new_id = gone["use_flow_id"].as_str().unwrap();
    let fresh: Value = api_client()
        .get(app.url(&format!("/self-service/recovery/flows?id={new_id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(message_ids(&fresh), vec![4060005], "{fresh}");
}
both_dbs!(recovery_wrong_expired_and_resent_codes);

/// Checklist T26: a new code does not reset the count of wrong submits; the flow dies after
/// `max_submissions` submits in all, whatever was resent in between.
async fn recovery_resend_does_not_reset_failures(db: Db) {
    let (app, sink) = recovery_app(db, |c| c.selfservice.methods.code.config.max_submissions = 3).await;
    let (email, _, _) = app.user().await;
    let sent = send_code(&app, &email).await;
    let first = six_digit_code(&sink.mail_to(&email, 1).await);
    let bad = |code: &str| if code == "000000" { "111111".to_string() } else { "000000".to_string() };
    for _ in 0..2 {
        let (status, wrong) = api_submit(&app, &sent, json!({"method": "code", "code": bad(&first)})).await;
        assert_eq!((status, message_ids(&wrong)), (200, vec![4060006]), "{wrong}");
    }
    let (status, _) = api_submit(&app, &sent, json!({"method": "code", "email": email})).await;
    assert_eq!(status, 200);
    let second = six_digit_code(&sink.mail_to(&email, 2).await);
    let (status, wrong) = api_submit(&app, &sent, json!({"method": "code", "code": bad(&second)})).await;
    assert_eq!((status, message_ids(&wrong)), (200, vec![4060006]), "the third submit: {wrong}");
    // The fourth submit in all is over the limit, even with the right new code.
    let (status, replaced) = api_submit(&app, &sent, json!({"method": "code", "code": second})).await;
    assert_eq!(status, 200, "{replaced}");
    assert_ne!(replaced["id"], sent["id"], "the flow was replaced: {replaced}");
    assert_eq!(message_texts(&replaced), vec!["The request was submitted too often. Please request another code."]);
}
both_dbs!(recovery_resend_does_not_reset_failures);

/// A browser (legacy answer): 303 to the settings UI with the session cookie; an AJAX caller
/// gets 422 `browser_location_change_required`. An identity with a second factor is sent to an
/// aal2 login first.
async fn recovery_browser_and_second_factor(db: Db) {
    let (app, sink) = recovery_app(db, |_| {}).await;
    let email = unique_email();
    let secret = new_totp_secret();
    app.admin_create(&email, Some(&secret)).await;
    let c = browser_client();
    let r = c.get(app.url("/self-service/recovery/browser")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let loc = location(&r);
    assert!(loc.starts_with(&format!("{}/ui/recovery?flow=", app.public)), "{loc}");
    let id = loc.rsplit('=').next().unwrap().to_string();
    let flow = ajax_get(&c, &app.url(&format!("/self-service/recovery/flows?id={id}"))).await;
    let submit = |body: Vec<(&'static str, String)>| {
        let c = c.clone();
        let url = app.url(&format!("/self-service/recovery?flow={id}"));
        async move { c.post(url).form(&body).send().await.unwrap() }
    };
    let r = submit(vec![("csrf_token", csrf(&flow)), ("method", "code".into()), ("email", email.clone())]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), loc);
    let code = six_digit_code(&sink.mail_to(&email, 1).await);
    // Without the CSRF token: refused.
    let r = submit(vec![("method", "code".into()), ("code", code.clone())]).await;
    assert_ne!(r.status(), 200);
    let r = submit(vec![("csrf_token", csrf(&flow)), ("method", "code".into()), ("code", code)]).await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(to.contains("/self-service/login/browser?aal=aal2"), "recovery never bypasses MFA: {to}");
    assert!(to.contains("return_to="), "{to}");
    let me = ajax_get(&c, &app.url("/sessions/whoami")).await;
    assert_eq!(me["error"]["id"], "session_aal2_required", "the recovery session is aal1 only: {me}");
    // The second factor completes it.
    let r = c.get(&to).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let login_id = location(&r).rsplit('=').next().unwrap().to_string();
    let login = ajax_get(&c, &app.url(&format!("/self-service/login/flows?id={login_id}"))).await;
    let r = c
        .post(app.url(&format!("/self-service/login?flow={login_id}")))
        .form(&[("csrf_token", csrf(&login)), ("method", "totp".into()), ("totp_code", totp_code(&secret, &app.clock))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(location(&r).contains("/ui/settings?flow="), "back to the settings flow: {}", location(&r));
    let me = ajax_get(&c, &app.url("/sessions/whoami")).await;
    assert_eq!(me["authentication_methods"][0]["method"], "code_recovery", "{me}");
    assert_eq!(me["authenticator_assurance_level"], "aal2", "{me}");

    // Without a second factor, an AJAX caller gets 422 with the settings UI.
    let (email, _, _) = app.user().await;
    let c = browser_client();
    let flow = ajax_get(&c, &app.url("/self-service/recovery/browser")).await;
    let url = app.url(&format!("/self-service/recovery?flow={}", flow["id"].as_str().unwrap()));
    let r = c
        .post(&url)
        .header("Accept", "application/json")
        .json(&json!({"csrf_token": csrf(&flow), "method": "code", "email": email}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let code = six_digit_code(&sink.mail_to(&email, 1).await);
    let r = c
        .post(&url)
        .header("Accept", "application/json")
        .json(&json!({"csrf_token": csrf(&flow), "method": "code", "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["id"], "browser_location_change_required", "{v}");
    assert!(v["redirect_browser_to"].as_str().unwrap().contains("/ui/settings?flow="), "{v}");
}
both_dbs!(recovery_browser_and_second_factor);

/// Two concurrent submits of one code: exactly one recovers.
async fn recovery_code_single_use_under_concurrency(db: Db) {
    let (app, sink) = recovery_app(db, |c| c.selfservice.flows.recovery.after.hooks.clear()).await;
    let (email, _, id) = app.user().await;
    let sent = send_code(&app, &email).await;
    let code = six_digit_code(&sink.mail_to(&email, 1).await);
    let body = json!({"method": "code", "code": code});
    let (a, b) = tokio::join!(api_submit(&app, &sent, body.clone()), api_submit(&app, &sent, body.clone()));
    let wins = [&a, &b].iter().filter(|(_, v)| action(v, "set_ory_session_token").is_some()).count();
    assert_eq!(wins, 1, "{a:?} {b:?}");
    let sessions: Value = api_client()
        .get(app.admin_url(&format!("/admin/identities/{id}/sessions")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let recovery_sessions = sessions
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["authentication_methods"][0]["method"] == "code_recovery")
        .count();
    assert_eq!(recovery_sessions, 1, "{sessions}");
}
both_dbs!(recovery_code_single_use_under_concurrency);

/// `POST /admin/recovery/code`: 201 with a link and a code; the link binds the flow to the
/// browser that opens it, and the code recovers the account. Recovery is off by default.
async fn recovery_admin_code(db: Db) {
    let (app, _sink) = recovery_app(db, |_| {}).await;
    let (_, _, id) = app.user().await;
    let r = api_client()
        .post(app.admin_url("/admin/recovery/code"))
        .json(&json!({"identity_id": id, "expires_in": "15m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let link = v["recovery_link"].as_str().unwrap();
    let code = v["recovery_code"].as_str().unwrap();
    assert_eq!(code.len(), 6);
    assert!(v["expires_at"].is_string());
    let c = browser_client();
    let r = c.get(link).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let id = location(&r).rsplit('=').next().unwrap().to_string();
    let flow = ajax_get(&c, &app.url(&format!("/self-service/recovery/flows?id={id}"))).await;
    assert_eq!(flow["state"], "sent_email", "{flow}");
    let r = c
        .post(app.url(&format!("/self-service/recovery?flow={id}")))
        .form(&[("csrf_token", csrf(&flow)), ("method", "code".into()), ("code", code.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(location(&r).contains("/ui/settings?flow="), "{}", location(&r));

    let r = api_client()
        .post(app.admin_url("/admin/recovery/code"))
        .json(&json!({"identity_id": uuid::Uuid::new_v4()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The link endpoint: opening the link recovers in that browser, once.
    let (link_email, _, id) = app.user().await;
    let r = api_client()
        .post(app.admin_url("/admin/recovery/link"))
        .json(&json!({"identity_id": id}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let link = v["recovery_link"].as_str().unwrap().to_string();
    assert!(link.contains("token="), "{v}");
    let c = browser_client();
    let r = c.get(&link).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(to.contains("/ui/settings?flow="), "{to}");
    let settings_id = to.rsplit('=').next().unwrap().to_string();
    let sf = ajax_get(&c, &app.url(&format!("/self-service/settings/flows?id={settings_id}"))).await;
    assert_eq!(message_ids(&sf), vec![1060001], "{sf}");
    let r = c
        .post(app.url(&format!("/self-service/settings?flow={settings_id}")))
        .form(&[
            ("csrf_token", csrf(&sf)),
            ("method", "password".into()),
            ("password", "link-recovered-pass-77".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(app.login(&link_email, "link-recovered-pass-77").await["session_token"].is_string());
    let r = browser_client().get(&link).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(location(&r).contains("/ui/recovery?flow="), "a used link starts over: {}", location(&r));

    let off = spawn_app(db).await;
    let r = api_client().get(off.url("/self-service/recovery/api")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["id"], "self_service_flow_disabled");
}
both_dbs!(recovery_admin_code);

/// The v1 dialect: `GET /v1/flows/recovery`, `POST /v1/flows/recovery/{id}:submit` with
/// `{"method":"code","body":{"email"|"code":…}}`; the session token comes back with the flow;
/// unknown flows are `AVNOLOGY_AUTH_004`, expired ones `_009`. Verification the same way.
async fn recovery_and_verification_v1(db: Db) {
    let (app, sink) = recovery_app(db, |c| c.selfservice.flows.verification.enabled = true).await;
    let (email, _, _) = app.user().await;
    let verification_mail = sink.mail_to(&email, 1).await;
    let c = api_client();
    let flow: Value = c.get(app.url("/v1/flows/recovery")).send().await.unwrap().json().await.unwrap();
    assert_eq!(flow["type"], "recovery");
    let id = flow["id"].as_str().unwrap();
    assert_eq!(flow["ui"]["action"], format!("{}/v1/flows/recovery/{id}:submit", app.public));
    let submit = |body: Value| {
        let c = c.clone();
        let url = app.url(&format!("/v1/flows/recovery/{id}:submit"));
        async move {
            let r = c.post(url).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, sent) = submit(json!({"method": "code", "body": {"email": email}})).await;
    assert_eq!((status, sent["continue_flow"]["state"].as_str()), (200, Some("sent_email")), "{sent}");
    let code = six_digit_code(&sink.mail_to(&email, 2).await);
    let (status, done) = submit(json!({"method": "code", "body": {"code": code}})).await;
    assert_eq!(status, 200, "{done}");
    let token = done["session_token"].as_str().unwrap();
    assert_eq!(done["session"]["authentication_methods"][0]["method"], "code_recovery");
    assert_eq!(done["continue_flow"]["continue_with"][0]["action"], "show_settings_ui", "{done}");
    let me = c.get(app.url("/v1/sessions/current")).bearer_auth(token).send().await.unwrap();
    assert_eq!(me.status(), 200);

    let (status, wrong) = submit(json!({"method": "password", "body": {}})).await;
    assert_eq!((status, wrong["error"]["code"].as_str()), (400, Some("AVNOLOGY_AUTH_001")), "{wrong}");
    let r = c
        .post(app.url(&format!("/v1/flows/recovery/{}:submit", uuid::Uuid::new_v4())))
        .json(&json!({"method": "code", "body": {"email": email}}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "AVNOLOGY_AUTH_004", "{v}");
    let flow: Value = c.get(app.url("/v1/flows/recovery")).send().await.unwrap().json().await.unwrap();
    app.clock.advance(3700);
    let r = c
        .post(app.url(&format!("/v1/flows/recovery/{}:submit", flow["id"].as_str().unwrap())))
        .json(&json!({"method": "code", "body": {"email": email}}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "AVNOLOGY_AUTH_009", "{v}");

    // Verification: the code of the registration mail, through a new v1 flow.
    let flow: Value = c.get(app.url("/v1/flows/verification")).send().await.unwrap().json().await.unwrap();
    let url = app.url(&format!("/v1/flows/verification/{}:submit", flow["id"].as_str().unwrap()));
    let r = c.post(&url).json(&json!({"method": "code", "body": {"email": email}})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The second verification mail (the first came with the registration); the recovery's
    // security notification may arrive in between.
    let code = six_digit_code(&nth_mail(&sink, &email, "Please verify your email address", 2).await);
    assert_ne!(six_digit_code(&verification_mail), "");
    let r = c.post(&url).json(&json!({"method": "code", "body": {"code": code}})).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["continue_flow"]["state"], "passed_challenge", "{v}");
}
both_dbs!(recovery_and_verification_v1);

/// `feature_flags.use_continue_with_transitions`: a browser's AJAX recovery answers 200 with the
/// flow and `continue_with` `show_settings_ui` (no token: the session is in the cookie).
async fn recovery_continue_with_transitions(db: Db) {
    let (app, sink) = recovery_app(db, |c| c.feature_flags.use_continue_with_transitions = true).await;
    let (email, _, _) = app.user().await;
    let c = browser_client();
    let back = app.url("/ui/welcome?from=recovery");
    let flow =
        ajax_get(&c, &app.url(&format!("/self-service/recovery/browser?return_to={}", form_encode(&back)))).await;
    assert_eq!(flow["return_to"], back.as_str(), "{flow}");
    let url = app.url(&format!("/self-service/recovery?flow={}", flow["id"].as_str().unwrap()));
    let post = |body: Value| {
        let (c, url) = (c.clone(), url.clone());
        async move { c.post(url).header("Accept", "application/json").json(&body).send().await.unwrap() }
    };
    post(json!({"csrf_token": csrf(&flow), "method": "code", "email": email})).await;
    let code = six_digit_code(&sink.mail_to(&email, 1).await);
    let r = post(json!({"csrf_token": csrf(&flow), "method": "code", "code": code})).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["state"], "passed_challenge");
    assert_eq!(v["continue_with"][0]["action"], "show_settings_ui", "{v}");
    assert!(action(&v, "set_ory_session_token").is_none(), "{v}");
    let me = ajax_get(&c, &app.url("/sessions/whoami")).await;
    assert_eq!(me["authentication_methods"][0]["method"], "code_recovery", "{me}");
    // The settings flow inherits the recovery flow's return_to.
    let settings_id = v["continue_with"][0]["flow"]["id"].as_str().unwrap();
    let sf = ajax_get(&c, &app.url(&format!("/self-service/settings/flows?id={settings_id}"))).await;
    assert_eq!(sf["return_to"], back.as_str(), "{sf}");
}
both_dbs!(recovery_continue_with_transitions);

/// The Rust SDK: `send_recovery_code` + `recover_account` (the client adopts the new token and
/// changes the password), a wrong code is `InvalidSecondFactor`; `send_verification_code` +
/// `verify_address`.
async fn recovery_and_verification_sdk(db: Db) {
    let (app, sink) = recovery_app(db, |c| c.selfservice.flows.verification.enabled = true).await;
    let (email, _, _) = app.user().await;
    sink.mail_to(&email, 1).await;
    let client = idflow_client::Client::new(&app.public).unwrap();
    let flow = client.send_recovery_code(&email).await.unwrap();
    assert_eq!(flow.state, "sent_email");
    let code = six_digit_code(&sink.mail_to(&email, 2).await);
    let bad = if code == "000000" { "111111" } else { "000000" };
    match client.recover_account(&flow.id, bad).await {
        Err(idflow_client::Error::InvalidSecondFactor(e)) => assert_eq!(e.code, "AVNOLOGY_AUTH_008"),
        other => panic!("expected InvalidSecondFactor, got {other:?}"),
    }
    let done = client.recover_account(&flow.id, &code).await.unwrap();
    assert_eq!(done.session.authentication_methods[0]["method"], "code_recovery");
    assert_eq!(client.token().as_deref(), Some(done.session_token.as_str()));
    client.auth().change_password("sdk-recovered-passphrase-5").await.unwrap();
    assert!(app.login(&email, "sdk-recovered-passphrase-5").await["session_token"].is_string());

    let flow = client.send_verification_code(&email).await.unwrap();
    // The recovery and the password change were notified in between: pick the second
    // verification mail (the first came with the registration).
    let code = six_digit_code(&nth_mail(&sink, &email, "Please verify your email address", 2).await);
    let done = client.verify_address(&flow.id, &code).await.unwrap();
    assert_eq!(done.state, "passed_challenge");
    let me: Value = whoami(&app, &done_token(&client)).await.json().await.unwrap();
    assert_eq!(me["identity"]["verifiable_addresses"][0]["verified"], true, "{me}");
}
both_dbs!(recovery_and_verification_sdk);

fn done_token(c: &idflow_client::Client) -> String {
    c.token().unwrap_or_default()
}

/// Bad input to recovery and verification is a form error or a 4xx, never a 500: odd types, a
/// NUL character, an overlong address or code, no method, a malformed flow id.
async fn recovery_bad_input_is_never_a_server_error(db: Db) {
    let (app, _sink) = recovery_app(db, |c| c.selfservice.flows.verification.enabled = true).await;
    for kind in ["recovery", "verification"] {
        let flow: Value =
            api_client().get(app.url(&format!("/self-service/{kind}/api"))).send().await.unwrap().json().await.unwrap();
        let id = flow["id"].as_str().unwrap();
        let long = format!("{}@example.com", "a".repeat(5000));
        for body in [
            json!({"method": "code", "email": 42}),
            json!({"method": "code", "email": "nul\u{0}@example.com"}),
            json!({"method": "code", "email": long}),
            json!({"method": "code", "email": "not-an-address"}),
            json!({"method": "code", "code": "1".repeat(10_000)}),
            json!({"method": "code", "code": {"nested": true}}),
            json!({"email": "a@example.com"}),
            json!({"method": ["code"]}),
        ] {
            let r = api_client()
                .post(app.url(&format!("/self-service/{kind}?flow={id}")))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            assert!((200..500).contains(&status), "{kind} {body}: {status} {}", r.text().await.unwrap());
        }
        let r = api_client()
            .post(app.url(&format!("/self-service/{kind}?flow=not-a-uuid")))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let r = api_client()
            .get(app.url(&format!("/self-service/{kind}/flows?id={}", uuid::Uuid::new_v4())))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
}
both_dbs!(recovery_bad_input_is_never_a_server_error);

/// `limits.per_identity.recovery` counts recovery submits per submitted address: the mail one
/// address receives is bounded (429 with `Retry-After` above the limit).
async fn recovery_mail_per_address_is_limited(db: Db) {
    let (app, sink) = recovery_app(db, |c| c.limits.per_identity.recovery = 2).await;
    let (email, _, _) = app.user().await;
    start_of_window(&[&app.clock]);
    send_code(&app, &email).await;
    send_code(&app, &email).await;
    let flow = api_flow(&app).await;
    let r = api_client()
        .post(app.url(&format!("/self-service/recovery?flow={}", flow["id"].as_str().unwrap())))
        .json(&json!({"method": "code", "email": email.to_uppercase()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    sink.mail_to(&email, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.mails().iter().filter(|m| m.to.contains(&email)).count(), 2);
}
both_dbs!(recovery_mail_per_address_is_limited);
