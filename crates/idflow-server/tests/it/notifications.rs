//! Security notifications (checklist T21) against the real server and a real SMTP sink: a
//! password change, an email change (mailed to the OLD address), a second factor added and
//! removed, recovery codes regenerated and disabled, all other sessions signed out, and a
//! recovery. Each mail arrives at the address the account had before the change, carries the
//! "this wasn't me" recovery link and no secret (new password, TOTP secret, recovery codes).
//! A failed change sends nothing, a change refused at commit (duplicate address) leaves no
//! queued message, and each event has its own switch.

use crate::both_dbs;
use crate::support::*;
use idflow_core::config::Config;
use serde_json::{Value, json};

async fn notify_app(db: Db, tweak: impl FnOnce(&mut Config)) -> (TestApp, Sink) {
    let sink = start_sink(Mode::Accept, None).await;
    let app = spawn_app_with(db, |c| {
        courier_cfg(c, Some(plain_uri(sink.addr)));
        c.selfservice.flows.recovery.enabled = true;
        tweak(c);
    })
    .await;
    (app, sink)
}

/// The "this wasn't me" link (the recovery browser flow) is in the mail.
fn assert_recovery_link(app: &TestApp, mail: &str) {
    assert!(mail.contains(&app.url("/self-service/recovery/browser")), "recovery link in the mail: {mail}");
}

async fn submit_ok(app: &TestApp, u: &User, flow: &Value, body: Value) -> Value {
    let resp = u.submit(app, flow, body).await;
    let (status, out) = u.outcome(app, resp).await;
    assert_eq!(status, 200, "{out}");
    out
}

async fn notify_password_changed(db: Db) {
    let (app, sink) = notify_app(db, |_| {}).await;
    let u = user(&app, Kind::Api).await;
    let new_pw = "a-brand-new-passphrase-77";
    let flow = u.create(&app).await;
    submit_ok(&app, &u, &flow, json!({"method": "password", "password": new_pw})).await;
    let mail = notice_mail(&sink, &u.email, "Your password was changed").await;
    assert!(mail.contains("The password of your account was changed."), "{mail}");
    assert_recovery_link(&app, &mail);
    assert!(!mail.contains(new_pw), "no password in the mail");
    assert!(!mail.contains(&u.token), "no session token in the mail");
    assert_eq!(notifications_to(&app, &u.email).await.len(), 1);

    // A failed change (too short) sends nothing more.
    let flow = u.create(&app).await;
    let resp = u.submit(&app, &flow, json!({"method": "password", "password": "short"})).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(notifications_to(&app, &u.email).await.len(), 1, "a failed change sends no notification");
}
both_dbs!(notify_password_changed);

/// An email change notifies the OLD address, never the new one; a change refused at commit
/// (the address belongs to someone else) queues nothing.
async fn notify_identifier_changed_to_old_address(db: Db) {
    let (app, sink) = notify_app(db, |_| {}).await;
    let u = user(&app, Kind::Api).await;
    let (other, _, _) = app.user().await;

    // Refused at commit: a duplicate address. The change and its mail are one transaction.
    let flow = u.create(&app).await;
    let resp = u
        .submit(
            &app,
            &flow,
            json!({"method": "profile", "traits": {"email": other, "name": {"first": "A", "last": "B"}}}),
        )
        .await;
    assert_eq!(resp.status(), 400, "duplicate address refused");
    assert!(notifications_to(&app, &u.email).await.is_empty(), "no message without the change");

    let new_email = unique_email();
    let flow = u.create(&app).await;
    submit_ok(
        &app,
        &u,
        &flow,
        json!({"method": "profile", "traits": {"email": new_email, "name": {"first": "A", "last": "B"}}}),
    )
    .await;
    let mail = notice_mail(&sink, &u.email, "Your email address or sign-in identifier was changed").await;
    assert_recovery_link(&app, &mail);
    let queued = notifications_to(&app, &u.email).await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert!(notifications_to(&app, &new_email).await.is_empty(), "the new address gets no notification");

    // A profile change that touches no identifier or address notifies nobody.
    let flow = u.create(&app).await;
    submit_ok(
        &app,
        &u,
        &flow,
        json!({"method": "profile", "traits": {"email": new_email, "name": {"first": "C", "last": "D"}}}),
    )
    .await;
    assert!(notifications_to(&app, &new_email).await.is_empty());
}
both_dbs!(notify_identifier_changed_to_old_address);

/// TOTP added then removed, and a wrong code (a failed change) sends nothing; neither mail
/// holds the secret.
async fn notify_second_factor_added_and_removed(db: Db) {
    let (app, sink) = notify_app(db, |_| {}).await;
    let u = user(&app, Kind::Api).await;
    let flow = u.create(&app).await;
    let secret = totp_secret(&flow);
    let resp = u.submit(&app, &flow, json!({"method": "totp", "totp_code": wrong_totp_code(&secret, &app)})).await;
    assert_eq!(resp.status(), 400);
    assert!(notifications_to(&app, &u.email).await.is_empty(), "a wrong code sends nothing");

    let code = totp_code(&secret, &app.clock);
    submit_ok(&app, &u, &flow, json!({"method": "totp", "totp_code": code})).await;
    let added = notice_mail(&sink, &u.email, "A sign-in method was added").await;
    assert!(added.contains("An authenticator app was added"), "{added}");
    assert_recovery_link(&app, &added);
    assert!(!added.contains(&secret), "no TOTP secret in the mail");
    assert!(!added.contains(&code), "no TOTP code in the mail");

    let flow = u.create(&app).await;
    submit_ok(&app, &u, &flow, json!({"method": "totp", "totp_unlink": true})).await;
    let removed = notice_mail(&sink, &u.email, "A sign-in method was removed").await;
    assert!(removed.contains("An authenticator app was removed"), "{removed}");
    assert!(!removed.contains(&secret));
    assert_eq!(notifications_to(&app, &u.email).await.len(), 2);
}
both_dbs!(notify_second_factor_added_and_removed);

/// Recovery codes: confirming a new set notifies (without the codes), regenerating again
/// notifies, disabling notifies.
async fn notify_recovery_codes(db: Db) {
    let (app, sink) = notify_app(db, |_| {}).await;
    let u = user(&app, Kind::Api).await;
    let flow = u.create(&app).await;
    let resp = u.submit(&app, &flow, json!({"method": "lookup_secret", "lookup_secret_regenerate": true})).await;
    let (_, shown) = u.outcome(&app, resp).await;
    let codes = lookup_codes(&shown);
    assert_eq!(codes.len(), 12);
    assert!(notifications_to(&app, &u.email).await.is_empty(), "showing codes changes nothing yet");
    submit_ok(&app, &u, &shown, json!({"method": "lookup_secret", "lookup_secret_confirm": true})).await;
    let mail = notice_mail(&sink, &u.email, "New recovery codes were created").await;
    for c in &codes {
        assert!(!mail.contains(c.as_str()), "no recovery code in the mail");
    }

    let flow = u.create(&app).await;
    submit_ok(&app, &u, &flow, json!({"method": "lookup_secret", "lookup_secret_disable": true})).await;
    let mail = notice_mail(&sink, &u.email, "Your recovery codes were disabled").await;
    assert_recovery_link(&app, &mail);
    assert_eq!(notifications_to(&app, &u.email).await.len(), 2);
}
both_dbs!(notify_recovery_codes);

/// "Sign out all other sessions" notifies; revoking one session does not.
async fn notify_sessions_revoked(db: Db) {
    let (app, sink) = notify_app(db, |_| {}).await;
    let (email, token, _) = app.user().await;
    let other = app.login(&email, PASSWORD).await;
    let other_id = other["session"]["id"].as_str().unwrap().to_string();
    let resp = api_client()
        .delete(app.url(&format!("/sessions/{other_id}")))
        .header("X-Session-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(notifications_to(&app, &email).await.is_empty(), "one session: no notification");

    app.login(&email, PASSWORD).await;
    let resp = api_client().delete(app.url("/sessions")).header("X-Session-Token", &token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mail = notice_mail(&sink, &email, "You were signed out everywhere else").await;
    assert_recovery_link(&app, &mail);
    assert!(!mail.contains(&token));
}
both_dbs!(notify_sessions_revoked);

/// A recovery that signs out the other sessions notifies; the password set afterwards in
/// the settings flow notifies `password_changed`.
async fn notify_after_recovery(db: Db) {
    let (app, sink) = notify_app(db, |_| {}).await;
    let (email, _, _) = app.user().await;
    let flow: Value =
        api_client().get(app.url("/self-service/recovery/api")).send().await.unwrap().json().await.unwrap();
    let url = app.url(&format!("/self-service/recovery?flow={}", flow["id"].as_str().unwrap()));
    let sent: Value = api_client()
        .post(&url)
        .json(&json!({"method": "code", "email": email}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sent["state"], "sent_email", "{sent}");
    let code = six_digit_code(&nth_mail(&sink, &email, "Recover access to your account", 1).await);
    let resp = api_client().post(&url).json(&json!({"method": "code", "code": code})).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mail = notice_mail(&sink, &email, "You were signed out everywhere else").await;
    assert!(!mail.contains(&code), "no recovery code in the notification");
    assert_recovery_link(&app, &mail);
}
both_dbs!(notify_after_recovery);

/// One switch per event: `password_changed: false` silences that notice only.
async fn notify_switches(db: Db) {
    let (app, sink) = notify_app(db, |c| c.selfservice.notifications.password_changed = false).await;
    let u = user(&app, Kind::Api).await;
    let flow = u.create(&app).await;
    submit_ok(&app, &u, &flow, json!({"method": "password", "password": "another-fine-passphrase-4"})).await;
    assert!(notifications_to(&app, &u.email).await.is_empty(), "password_changed is off");
    let resp = api_client().delete(app.url("/sessions")).header("X-Session-Token", &u.token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    notice_mail(&sink, &u.email, "You were signed out everywhere else").await;
    assert_eq!(notifications_to(&app, &u.email).await.len(), 1);
}
both_dbs!(notify_switches);
