//! Address verification with mailed codes, against the real server and a real SMTP sink:
//! registration mails a code (queued with the new identity), the mailed link fills the code in
//! and the user confirms; the self-service flow (wrong code, success, retry after success); a
//! settings change of the address mails the new address only; the login hook
//! `require_verified_address`.

use crate::both_dbs;
use crate::support::*;
use idflow_core::config::{Config, Hook};
use serde_json::{Value, json};
use std::time::Duration;

async fn verification_app(db: Db, tweak: impl FnOnce(&mut Config)) -> (TestApp, Sink) {
    let sink = start_sink(Mode::Accept, None).await;
    let app = spawn_app_with(db, |c| {
        courier_cfg(c, Some(plain_uri(sink.addr)));
        c.selfservice.flows.verification.enabled = true;
        tweak(c);
    })
    .await;
    (app, sink)
}

async fn submit(app: &TestApp, id: &str, body: Value) -> (u16, Value) {
    let r =
        api_client().post(app.url(&format!("/self-service/verification?flow={id}"))).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The verification link of a mail (its plain-text part).
fn link_in(mail: &str) -> String {
    let mail = quoted_printable_decode(mail);
    let start = mail.find("http://").expect("a link in the mail");
    mail[start..].split_whitespace().next().unwrap().replace("&amp;", "&").to_string()
}

/// Registration mails a code; the link fills it in; the submit verifies the address; a second
/// submit gets a new flow with 4070002.
async fn verification_after_registration(db: Db) {
    let (app, sink) = verification_app(db, |_| {}).await;
    let (email, token, _) = app.user().await;
    let me: Value = whoami(&app, &token).await.json().await.unwrap();
    assert_eq!(me["identity"]["verifiable_addresses"][0]["verified"], false);
    assert_eq!(me["identity"]["verifiable_addresses"][0]["status"], "sent", "{me}");
    let mail = sink.mail_to(&email, 1).await;
    let code = six_digit_code(&mail);
    assert_eq!(code.len(), 6, "{mail}");
    let link = link_in(&mail);
    assert!(link.contains("/self-service/verification?flow="), "{link}");

    let c = browser_client();
    let r = c.get(&link).send().await.unwrap();
    assert_eq!(r.status(), 303, "{link}");
    let loc = location(&r);
    assert!(loc.starts_with(&format!("{}/ui/verification?flow=", app.public)), "{loc}");
    let id = loc.rsplit('=').next().unwrap().to_string();
    let flow = ajax_get(&c, &app.url(&format!("/self-service/verification/flows?id={id}"))).await;
    assert_eq!(node(&flow, "code").unwrap()["attributes"]["value"], json!(code), "the link fills the code in: {flow}");
    assert_eq!(flow["state"], "sent_email");
    assert_eq!(
        whoami(&app, &token).await.json::<Value>().await.unwrap()["identity"]["verifiable_addresses"][0]["verified"],
        false,
        "the link alone verifies nothing"
    );

    let r = c
        .post(app.url(&format!("/self-service/verification?flow={id}")))
        .header("Accept", "application/json")
        .json(&json!({"csrf_token": csrf(&flow), "method": "code", "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let done: Value = r.json().await.unwrap();
    assert_eq!(done["state"], "passed_challenge", "{done}");
    assert_eq!(message_ids(&done), vec![1080002]);
    assert!(done["ui"]["nodes"].as_array().unwrap().iter().any(|n| n["attributes"]["id"] == "continue"), "{done}");
    let me: Value = whoami(&app, &token).await.json().await.unwrap();
    let a = &me["identity"]["verifiable_addresses"][0];
    assert_eq!((a["verified"].as_bool(), a["status"].as_str()), (Some(true), Some("completed")), "{me}");
    assert!(a["verified_at"].is_string(), "{me}");

    let r = c
        .post(app.url(&format!("/self-service/verification?flow={id}")))
        .header("Accept", "application/json")
        .json(&json!({"csrf_token": csrf(&flow), "method": "code", "code": code}))
        .send()
        .await
        .unwrap();
    let again: Value = r.json().await.unwrap();
    assert_ne!(again["id"], done["id"]);
    assert_eq!(message_ids(&again), vec![4070002], "{again}");
}
both_dbs!(verification_after_registration);

/// The self-service flow: a code to a known address, a wrong code is a form error, the right
/// one verifies; an unknown address gets the same answer and no mail.
async fn verification_self_service_flow(db: Db) {
    let (app, sink) = verification_app(db, |_| {}).await;
    let (email, token, _) = app.user().await;
    sink.mail_to(&email, 1).await;
    let flow: Value =
        api_client().get(app.url("/self-service/verification/api")).send().await.unwrap().json().await.unwrap();
    let id = flow["id"].as_str().unwrap();
    let (status, sent) = submit(&app, id, json!({"method": "code", "email": email})).await;
    assert_eq!((status, message_ids(&sent)), (200, vec![1080003]), "{sent}");
    assert_eq!(node(&sent, "code").unwrap()["meta"]["label"]["id"], 1070011);
    let code = six_digit_code(&sink.mail_to(&email, 2).await);
    let bad = if code == "000000" { "111111" } else { "000000" };
    let (status, wrong) = submit(&app, id, json!({"method": "code", "code": bad})).await;
    assert_eq!((status, message_ids(&wrong)), (200, vec![4070006]), "{wrong}");
    let (status, done) = submit(&app, id, json!({"method": "code", "code": code})).await;
    assert_eq!((status, done["state"].as_str()), (200, Some("passed_challenge")), "{done}");
    let me: Value = whoami(&app, &token).await.json().await.unwrap();
    assert_eq!(me["identity"]["verifiable_addresses"][0]["verified"], true);

    let stranger = unique_email();
    let flow: Value =
        api_client().get(app.url("/self-service/verification/api")).send().await.unwrap().json().await.unwrap();
    let (status, other) =
        submit(&app, flow["id"].as_str().unwrap(), json!({"method": "code", "email": stranger})).await;
    assert_eq!((status, message_texts(&other)), (200, message_texts(&sent)));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(sink.mails().iter().all(|m| !m.to.contains(&stranger)));

    // An expired flow: 410 with a replacement carrying 4070005.
    app.clock.advance(3700);
    let (status, gone) = submit(&app, flow["id"].as_str().unwrap(), json!({"method": "code", "code": "123456"})).await;
    assert_eq!(status, 410, "{gone}");
    let new_id = gone["use_flow_id"].as_str().unwrap();
    let fresh: Value = api_client()
        .get(app.url(&format!("/self-service/verification/flows?id={new_id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(message_ids(&fresh), vec![4070005], "{fresh}");
}
both_dbs!(verification_self_service_flow);

/// Changing the address in settings mails a code to the new address; the old one gets only
/// the security notification of the change (no code).
async fn verification_settings_address_change(db: Db) {
    let (app, sink) = verification_app(db, |_| {}).await;
    let (email, token, _) = app.user().await;
    sink.mail_to(&email, 1).await;
    let flow = app.get_with_token("/self-service/settings/api", &token).await;
    let new = unique_email();
    let r = api_client()
        .post(app.url(&format!("/self-service/settings?flow={}", flow["id"].as_str().unwrap())))
        .header("X-Session-Token", &token)
        .json(&json!({"method": "profile", "traits": {"email": new, "name": {"first": "Test", "last": "User"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let code = six_digit_code(&sink.mail_to(&new, 1).await);
    assert_eq!(code.len(), 6);
    let notice = notice_mail(&sink, &email, "Your email address or sign-in identifier was changed").await;
    assert!(six_digit_code(&notice).is_empty(), "no code in the notification");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.mails().iter().filter(|m| m.to.contains(&email)).count(),
        2,
        "the old address got its registration code and the notification, nothing else"
    );
}
both_dbs!(verification_settings_address_change);

/// `require_verified_address`: a login without a verified address is refused (403, 4000010,
/// `continue_with` a verification flow; a browser is sent to it); once verified, it works.
async fn verification_required_for_login(db: Db) {
    let (app, sink) = verification_app(db, |c| {
        c.selfservice.flows.login.after.hooks.push(Hook { hook: "require_verified_address".into(), config: None });
    })
    .await;
    let (email, _, _) = app.user().await;
    let v = app.login(&email, PASSWORD).await;
    assert_eq!(v["error"]["code"], 403, "{v}");
    assert_eq!(v["error"]["details"]["messages"][0]["id"], 4000010, "{v}");
    assert_eq!(v["error"]["details"]["continue_with"][0]["action"], "show_verification_ui", "{v}");
    assert_eq!(v["error"]["details"]["continue_with"][0]["flow"]["verifiable_address"], email.as_str());

    let c = browser_client();
    let flow = ajax_get(&c, &app.url("/self-service/login/browser")).await;
    let r = c
        .post(app.url(&format!("/self-service/login?flow={}", flow["id"].as_str().unwrap())))
        .form(&[
            ("csrf_token", csrf(&flow)),
            ("method", "password".into()),
            ("identifier", email.clone()),
            ("password", PASSWORD.into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(location(&r).contains("/ui/verification?flow="), "{}", location(&r));

    // Verify with the registration mail, then the login works.
    let mail = sink.mail_to(&email, 1).await;
    let link = link_in(&mail);
    let id = link.split("flow=").nth(1).unwrap().split('&').next().unwrap().to_string();
    let (status, done) = submit(&app, &id, json!({"method": "code", "code": six_digit_code(&mail)})).await;
    assert_eq!((status, done["state"].as_str()), (200, Some("passed_challenge")), "{done}");
    assert!(app.login(&email, PASSWORD).await["session_token"].is_string());
}
both_dbs!(verification_required_for_login);

/// The registration hook `show_verification_ui`: the answer names the verification flow of the
/// new address (`continue_with`), whose code the mail carries.
async fn verification_shown_after_registration(db: Db) {
    let (app, sink) = verification_app(db, |c| {
        let after = c.selfservice.flows.registration.after.method_mut(idflow_core::model::MethodId::Password);
        after.hooks = Some(vec![
            Hook { hook: "session".into(), config: None },
            Hook { hook: "show_verification_ui".into(), config: None },
        ]);
    })
    .await;
    let c = api_client();
    let flow: Value = c.get(app.url("/self-service/registration/api")).send().await.unwrap().json().await.unwrap();
    let email = unique_email();
    let r = c
        .post(app.url(&format!("/self-service/registration?flow={}", flow["id"].as_str().unwrap())))
        .json(&json!({"method": "password", "password": PASSWORD, "traits": {"email": email, "name": {"first": "A", "last": "B"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let item = v["continue_with"].as_array().unwrap().iter().find(|i| i["action"] == "show_verification_ui").cloned();
    let item = item.unwrap_or_else(|| panic!("show_verification_ui in {v}"));
    assert_eq!(item["flow"]["verifiable_address"], email.as_str());
    assert!(v["continue_with"].as_array().unwrap().iter().any(|i| i["action"] == "set_ory_session_token"), "{v}");
    let code = six_digit_code(&sink.mail_to(&email, 1).await);
    let (status, done) =
        submit(&app, item["flow"]["id"].as_str().unwrap(), json!({"method": "code", "code": code})).await;
    assert_eq!((status, done["state"].as_str()), (200, Some("passed_challenge")), "{done}");
}
both_dbs!(verification_shown_after_registration);
