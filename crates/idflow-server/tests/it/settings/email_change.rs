//! Email changes verified before they apply (`idflow.verify_before_apply`, on by default for
//! email addresses verified by mail): the old address stays in effect (trait, identifier,
//! address) until the code mailed to the new one is submitted; the old one gets a notice; the
//! settings flow shows the pending change and cancels it; it expires; the code can be resent;
//! an address taken meanwhile is a clean error; admins set traits directly; both dialects. Mail
//! from a real SMTP sink.

use crate::both_dbs;
use crate::support::*;
use idflow_core::config::Config;
use serde_json::{Value, json};
use std::time::Duration;

async fn app_with_mail(db: Db, tweak: impl FnOnce(&mut Config)) -> (TestApp, Sink) {
    let sink = start_sink(Mode::Accept, None).await;
    let app = spawn_app_with(db, |c| {
        courier_cfg(c, Some(plain_uri(sink.addr)));
        c.selfservice.flows.verification.enabled = true;
        tweak(c);
    })
    .await;
    (app, sink)
}

/// A registered user (API kind) whose registration mail has arrived.
async fn mailed_user(app: &TestApp, sink: &Sink, kind: Kind) -> User {
    let u = user(app, kind).await;
    sink.mail_to(&u.email, 1).await;
    u
}

async fn me(app: &TestApp, u: &User) -> Value {
    u.whoami(app).await.json::<Value>().await.unwrap()["identity"].clone()
}

async fn change_email(app: &TestApp, u: &User, new: &str, first: &str) -> (u16, Value) {
    let flow = u.create(app).await;
    let r = u
        .submit(
            app,
            &flow,
            json!({"method": "profile", "traits": {"email": new, "name": {"first": first, "last": "User"}}}),
        )
        .await;
    u.outcome(app, r).await
}

/// Submit a code to a verification flow (API).
async fn verify(app: &TestApp, flow_id: &str, code: &str) -> (u16, Value) {
    let r = api_client()
        .post(app.url(&format!("/self-service/verification?flow={flow_id}")))
        .json(&json!({"method": "code", "code": code}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn logs_in(v: &Value) -> bool {
    v["session_token"].is_string()
}

/// The verification flow of a pending change, from `continue_with`.
fn verification_flow_id(done: &Value) -> String {
    let cw = done["continue_with"].as_array().expect("continue_with");
    let item = cw.iter().find(|c| c["action"] == "show_verification_ui").expect("show_verification_ui");
    item["flow"]["id"].as_str().unwrap().to_string()
}

/// The whole way: the change waits, mails go to both addresses (code to the new one, a notice
/// without it to the old one), the old identifier keeps working, the code applies the change.
async fn email_change_applies_after_verification(db: Db) {
    let (app, sink) = app_with_mail(db, |_| {}).await;
    let u = mailed_user(&app, &sink, Kind::Api).await;
    let new = unique_email();
    let (status, done) = change_email(&app, &u, &new, "Grace").await;
    assert_eq!(status, 200, "{done}");
    // The other trait applied now; the address is pending.
    assert_eq!(done["identity"]["traits"]["email"], u.email.as_str(), "{done}");
    assert_eq!(done["identity"]["traits"]["name"]["first"], "Grace");
    assert_eq!(form_ids(&done), vec![1050001], "the name change was saved: {done}");
    assert_eq!(node_ids(&done, "traits.email"), vec![1050050], "{done}");
    assert_eq!(node(&done, "traits.email").unwrap()["attributes"]["value"], u.email.as_str());
    let cancel = node(&done, "cancel_pending").expect("a cancel button");
    assert_eq!(cancel["attributes"]["value"], "traits.email");
    assert_eq!(cancel["group"], "profile");
    let flow_id = verification_flow_id(&done);
    let item = &done["continue_with"][0];
    assert_eq!(item["flow"]["verifiable_address"], new.as_str());

    let identity = me(&app, &u).await;
    assert_eq!(identity["traits"]["email"], u.email.as_str());
    assert_eq!(identity["traits"]["name"]["first"], "Grace");
    assert_eq!(identity["verifiable_addresses"].as_array().unwrap().len(), 1);
    assert_eq!(identity["verifiable_addresses"][0]["value"], u.email.as_str());

    let code_mail = sink.mail_to(&new, 1).await;
    let code = six_digit_code(&code_mail);
    assert_eq!(code.len(), 6, "{code_mail}");
    let notice = quoted_printable_decode(&sink.mail_to(&u.email, 2).await);
    assert!(notice.contains("change the email address"), "{notice}");
    assert!(!notice.contains(&code), "no code in the notice");
    assert!(!notice.contains(&new), "the new address is masked: {notice}");
    let masked = format!("{}***@example.com", &new[..1]);
    assert!(notice.contains(&masked), "{notice}");

    assert!(logs_in(&app.login(&u.email, PASSWORD).await), "the old identifier still works");
    assert!(!logs_in(&app.login(&new, PASSWORD).await), "the new one does not yet");

    // Another settings flow shows the pending change too.
    let shown = u.create(&app).await;
    assert_eq!(node_ids(&shown, "traits.email"), vec![1050050], "{shown}");
    assert_eq!(node(&shown, "traits.email").unwrap()["messages"][0]["context"]["value"], new.as_str());

    let bad = if code == "000000" { "111111" } else { "000000" };
    let (status, wrong) = verify(&app, &flow_id, bad).await;
    assert_eq!((status, message_ids(&wrong)), (200, vec![4070006]), "{wrong}");
    assert_eq!(me(&app, &u).await["traits"]["email"], u.email.as_str());
    let (status, ok) = verify(&app, &flow_id, &code).await;
    assert_eq!((status, ok["state"].as_str()), (200, Some("passed_challenge")), "{ok}");

    let identity = me(&app, &u).await;
    assert_eq!(identity["traits"]["email"], new.as_str());
    assert_eq!(identity["traits"]["name"]["first"], "Grace");
    let addrs = identity["verifiable_addresses"].as_array().unwrap();
    assert_eq!(addrs.len(), 1, "{identity}");
    assert_eq!(addrs[0]["value"], new.as_str());
    assert_eq!(addrs[0]["verified"], true);
    assert_eq!(addrs[0]["status"], "completed");
    assert_eq!(identity["recovery_addresses"][0]["value"], new.as_str());
    assert!(logs_in(&app.login(&new, PASSWORD).await), "the identifier moved");
    assert!(!logs_in(&app.login(&u.email, PASSWORD).await));
    // The change applied now: the old address is told (a security notification, no code), in
    // the commit that applied it, and the log has the change.
    let applied = notice_mail(&sink, &u.email, "Your email address or sign-in identifier was changed").await;
    assert!(!applied.contains(&code), "no code in the notification");
    let log = admin_activity(&app, &u.identity_id).await;
    assert!(log.iter().any(|e| e["kind"] == "settings_changed" && e["method"] == "profile"), "{log:?}");

    // Nothing pending any more; the earlier flow shows that on its next fetch.
    let after = u.fetch(&app, done["id"].as_str().unwrap()).await;
    assert!(node(&after, "cancel_pending").is_none(), "{after}");
    assert!(node_ids(&after, "traits.email").is_empty(), "{after}");
    // The code is spent.
    let (_, again) = verify(&app, &flow_id, &code).await;
    assert_eq!(message_ids(&again), vec![4070002], "{again}");
}
both_dbs!(email_change_applies_after_verification);

/// Cancel: from the browser form (the button posts `cancel_pending` without `method`), and the
/// code mailed before no longer applies anything.
async fn email_change_cancel(db: Db) {
    let (app, sink) = app_with_mail(db, |_| {}).await;
    let u = mailed_user(&app, &sink, Kind::Browser).await;
    let new = unique_email();
    let (status, done) = change_email(&app, &u, &new, "Test").await;
    assert_eq!(status, 303, "{done}");
    assert!(form_ids(&done).is_empty(), "nothing saved yet: {done}");
    assert_eq!(node_ids(&done, "traits.email"), vec![1050050], "{done}");
    let verify_link = node(&done, "verify_pending.traits.email").expect("a link to the code form");
    let href = verify_link["attributes"]["href"].as_str().unwrap().to_string();
    assert!(href.starts_with(&app.url("/self-service/verification?flow=")), "{verify_link}");
    let code = six_digit_code(&sink.mail_to(&new, 1).await);

    let r = u.submit(&app, &done, json!({"cancel_pending": "traits.email", "traits": {"email": u.email}})).await;
    let (status, cancelled) = u.outcome(&app, r).await;
    assert_eq!(status, 303);
    assert_eq!(message_ids(&cancelled), vec![1050052], "{cancelled}");
    assert!(node(&cancelled, "cancel_pending").is_none(), "{cancelled}");
    // Twice: nothing left to cancel (a form error, not a 500).
    let r = u.submit(&app, &cancelled, json!({"method": "profile", "cancel_pending": "traits.email"})).await;
    let (status, again) = u.outcome(&app, r).await;
    assert_eq!(status, 303);
    assert_eq!(form_ids(&again), vec![4000061], "{again}");

    // The link binds the code form to this browser.
    let r = u.http.get(&href).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with(&format!("{}/ui/verification?flow=", app.public)), "{}", location(&r));
    let flow_id = href.rsplit('=').next().unwrap().to_string();
    let form = ajax_get(&u.http, &app.url(&format!("/self-service/verification/flows?id={flow_id}"))).await;
    let r = u
        .http
        .post(app.url(&format!("/self-service/verification?flow={flow_id}")))
        .header("Accept", "application/json")
        .json(&json!({"csrf_token": csrf(&form), "method": "code", "code": code}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 400, "{v}");
    assert_eq!(form_ids(&v), vec![4070010], "{v}");
    assert_eq!(me(&app, &u).await["traits"]["email"], u.email.as_str());
    assert!(!logs_in(&app.login(&new, PASSWORD).await));
}
both_dbs!(email_change_cancel);

/// A pending change expires with the code lifespan; the cleanup deletes it.
async fn email_change_expires(db: Db) {
    let (app, sink) = app_with_mail(db, |_| {}).await;
    let u = mailed_user(&app, &sink, Kind::Ajax).await;
    let new = unique_email();
    let (status, done) = change_email(&app, &u, &new, "Test").await;
    assert_eq!(status, 200, "{done}");
    let code = six_digit_code(&sink.mail_to(&new, 1).await);
    let flow_id = verification_flow_id(&done);
    app.clock.advance(61 * 60);
    let shown = u.create(&app).await;
    assert!(node(&shown, "cancel_pending").is_none(), "an expired change is not shown: {shown}");
    let (status, _) = verify(&app, &flow_id, &code).await;
    assert_eq!(status, 410, "the code's flow expired too");
    assert_eq!(me(&app, &u).await["traits"]["email"], u.email.as_str());
    let cleaned = app.engine.cleanup_expired().await.unwrap();
    assert_eq!(cleaned.pending_changes, 1);
}
both_dbs!(email_change_expires);

/// The new address belongs to another account: refused at once; taken meanwhile: the code
/// gives a clean error and the change is dropped.
async fn email_change_address_taken(db: Db) {
    let (app, sink) = app_with_mail(db, |_| {}).await;
    let a = mailed_user(&app, &sink, Kind::Api).await;
    let b = mailed_user(&app, &sink, Kind::Api).await;
    let (status, taken) = change_email(&app, &a, &b.email, "Test").await;
    assert_eq!(status, 400, "{taken}");
    assert_eq!(form_ids(&taken), vec![4000007], "{taken}");

    let new = unique_email();
    let (status, done) = change_email(&app, &a, &new, "Test").await;
    assert_eq!(status, 200, "{done}");
    let code = six_digit_code(&sink.mail_to(&new, 1).await);
    // Someone else registers the address meanwhile.
    app.register(&new, PASSWORD).await;
    let (status, v) = verify(&app, &verification_flow_id(&done), &code).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(form_ids(&v), vec![4000007], "{v}");
    assert_eq!(me(&app, &a).await["traits"]["email"], a.email.as_str());
    let shown = a.create(&app).await;
    assert!(node(&shown, "cancel_pending").is_none(), "the change is dropped: {shown}");
}
both_dbs!(email_change_address_taken);

/// Admins set traits directly; a change pending meanwhile no longer applies. Without
/// verification, or for a schema that opts out, changes apply at once.
async fn email_change_admin_and_opt_out(db: Db) {
    let (app, sink) = app_with_mail(db, |_| {}).await;
    let u = mailed_user(&app, &sink, Kind::Api).await;
    let new = unique_email();
    let (_, done) = change_email(&app, &u, &new, "Test").await;
    let code = six_digit_code(&sink.mail_to(&new, 1).await);
    let by_admin = unique_email();
    let r = api_client()
        .put(app.admin_url(&format!("/admin/identities/{}", u.identity_id)))
        .json(&json!({"schema_id": "default", "state": "active", "traits": {"email": by_admin}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(me(&app, &u).await["traits"]["email"], by_admin.as_str(), "admins are not held back");
    let shown = u.create(&app).await;
    assert!(node(&shown, "cancel_pending").is_none(), "a change that cannot apply is not shown: {shown}");
    let (status, v) = verify(&app, &verification_flow_id(&done), &code).await;
    assert_eq!((status, form_ids(&v)), (400, vec![4070010]), "{v}");
    assert_eq!(me(&app, &u).await["traits"]["email"], by_admin.as_str());

    let schema = crate::field_policy::schema_with(json!({"idflow": {"verify_before_apply": false}}), json!({}));
    let (app, sink) = app_with_mail(db, |c| crate::field_policy::use_schema(c, &schema)).await;
    let u = mailed_user(&app, &sink, Kind::Api).await;
    let new = unique_email();
    let (status, done) = change_email(&app, &u, &new, "Test").await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["identity"]["traits"]["email"], new.as_str(), "opted out: applied at once");
    sink.mail_to(&new, 1).await;
    // No pending-change notice: the old address gets the security notification of the
    // change that applied (and its registration code before it), nothing else.
    let notice = notice_mail(&sink, &u.email, "Your email address or sign-in identifier was changed").await;
    assert!(six_digit_code(&notice).is_empty(), "no code in the notification");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.mails().iter().filter(|m| m.to.contains(&u.email)).count(), 2, "registration code + notification");
}
both_dbs!(email_change_admin_and_opt_out);

/// The v1 dialect: the same pending change, shown and cancelled through `/v1/flows/settings`.
async fn email_change_v1(db: Db) {
    let (app, sink) = app_with_mail(db, |_| {}).await;
    let u = mailed_user(&app, &sink, Kind::Api).await;
    let c = api_client();
    let flow: Value =
        c.get(app.url("/v1/flows/settings")).bearer_auth(&u.token).send().await.unwrap().json().await.unwrap();
    let id = flow["id"].as_str().unwrap();
    let new = unique_email();
    let submit = |body: Value| {
        c.post(app.url(&format!("/v1/flows/settings/{id}:submit"))).bearer_auth(&u.token).json(&body).send()
    };
    let r = submit(json!({"method": "profile", "body": {"traits": {"email": new}}})).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let f = &v["continue_flow"];
    assert_eq!(f["continue_with"][0]["action"], "show_verification_ui", "{v}");
    let email_node = node(f, "traits.email").unwrap();
    assert_eq!(email_node["messages"][0]["id"], "1050050", "{v}");
    assert!(node(f, "cancel_pending").is_some(), "{v}");
    sink.mail_to(&new, 1).await;

    let r = submit(json!({"method": "profile", "body": {"cancel_pending": "traits.email"}})).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(node(&v["continue_flow"], "cancel_pending").is_none(), "{v}");
    assert_eq!(me(&app, &u).await["traits"]["email"], u.email.as_str());
}
both_dbs!(email_change_v1);

/// "Resend code" on the verification flow of a pending change mails a new code to the new
/// address (it is no address of the account yet); the earlier code is void, the new one applies.
async fn email_change_code_resent(db: Db) {
    let (app, sink) = app_with_mail(db, |_| {}).await;
    let u = mailed_user(&app, &sink, Kind::Api).await;
    let new = unique_email();
    let (_, done) = change_email(&app, &u, &new, "Test").await;
    let first = six_digit_code(&sink.mail_to(&new, 1).await);
    let flow_id = verification_flow_id(&done);
    let r = api_client()
        .post(app.url(&format!("/self-service/verification?flow={flow_id}")))
        .json(&json!({"method": "code", "email": new}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let second = six_digit_code(&sink.mail_to(&new, 2).await);
    assert_eq!(second.len(), 6);
    if first != second {
        let (status, wrong) = verify(&app, &flow_id, &first).await;
        assert_eq!((status, message_ids(&wrong)), (200, vec![4070006]), "{wrong}");
    }
    let (status, ok) = verify(&app, &flow_id, &second).await;
    assert_eq!((status, ok["state"].as_str()), (200, Some("passed_challenge")), "{ok}");
    assert_eq!(me(&app, &u).await["traits"]["email"], new.as_str());
}
both_dbs!(email_change_code_resent);
