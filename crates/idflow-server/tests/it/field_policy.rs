//! Per-field policy in the identity schema (the `idflow` keyword next to `ory.sh/kratos`):
//! errors at start name the schema and the trait; `privileged` and `aal2` are enforced per
//! changed trait in the settings profile method (re-authentication, step-up), whatever the
//! trait's `ory.sh/kratos` keywords say.

use crate::both_dbs;
use crate::support::*;
use base64::Engine as _;
use idflow_core::config::{Config, RequiredAal, SchemaRef};
use serde_json::{Value, json};

/// A schema with an email identifier and the given extra traits / email keywords.
pub fn schema_with(email_extra: Value, extra: Value) -> Value {
    let mut email = json!({"type": "string", "format": "email", "title": "E-Mail",
        "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}, "verification": {"via": "email"},
            "recovery": {"via": "email"}}});
    if let (Some(e), Some(x)) = (email.as_object_mut(), email_extra.as_object()) {
        e.extend(x.clone());
    }
    let mut props = json!({"email": email, "bio": {"type": "string"}});
    if let (Some(p), Some(x)) = (props.as_object_mut(), extra.as_object()) {
        p.extend(x.clone());
    }
    json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
        "properties": {"traits": {"type": "object", "properties": props, "required": ["email"]}}})
}

/// Use `schema` (id `policy`) as the default schema.
pub fn use_schema(c: &mut Config, schema: &Value) {
    let url = format!("base64://{}", base64::engine::general_purpose::STANDARD.encode(schema.to_string()));
    c.identity.schemas = vec![SchemaRef { id: "policy".into(), url }];
    c.identity.default_schema_id = "policy".into();
}

async fn start_error(schema: Value) -> String {
    let mut cfg = base_config();
    let dir = std::env::temp_dir().join(format!("idflow-it-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    cfg.dsn = Some(format!("sqlite://{}/idflow.db?mode=rwc", dir.display()));
    use_schema(&mut cfg, &schema);
    let res = idflow_server::app::Application::build(cfg).await;
    let _ = std::fs::remove_dir_all(&dir);
    match res {
        Ok(_) => panic!("the server started with an invalid policy"),
        Err(e) => format!("{e:#}"),
    }
}

/// A bad `idflow` keyword stops the start with an error naming the schema and the trait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_policy_errors_at_start_name_schema_and_field() {
    let e = start_error(schema_with(json!({"idflow": {"verify": true}}), json!({}))).await;
    assert!(e.contains("identity schema `policy`"), "{e}");
    assert!(e.contains("unknown key \"verify\"") && e.contains("trait traits.email"), "{e}");

    let e = start_error(schema_with(json!({}), json!({"bio": {"type": "string", "idflow": {"aal2": "yes"}}}))).await;
    assert!(e.contains("idflow.aal2") && e.contains("must be a boolean") && e.contains("trait traits.bio"), "{e}");

    let e = start_error(schema_with(
        json!({}),
        json!({"bio": {"type": "string", "idflow": {"verify_before_apply": true}}}),
    ))
    .await;
    assert!(e.contains("identity schema `policy`") && e.contains("verify_before_apply"), "{e}");
    assert!(e.contains("trait traits.bio"), "{e}");

    let e = start_error(schema_with(json!({"idflow": ["privileged"]}), json!({}))).await;
    assert!(e.contains("\"idflow\" must be an object") && e.contains("trait traits.email"), "{e}");
}

async fn submit_traits(app: &TestApp, u: &User, traits: Value) -> reqwest::Response {
    let flow = u.create(app).await;
    u.submit(app, &flow, json!({"method": "profile", "traits": traits})).await
}

async fn traits_of(app: &TestApp, u: &User) -> Value {
    u.whoami(app).await.json::<Value>().await.unwrap()["identity"]["traits"].clone()
}

/// `privileged` per trait: a plain trait may ask for a recent login, an identifier may opt out.
async fn field_policy_privileged_per_field(db: Db) {
    let schema = schema_with(
        json!({"idflow": {"privileged": false}}),
        json!({"nick": {"type": "string", "idflow": {"privileged": true}}}),
    );
    let app = spawn_app_with(db, |c| use_schema(c, &schema)).await;
    let u = user(&app, Kind::Api).await;
    // Past the privileged window (an hour by default).
    app.clock.advance(61 * 60);

    let r = submit_traits(&app, &u, json!({"email": u.email, "bio": "free to change"})).await;
    assert_eq!(r.status(), 200, "a plain trait needs no recent login");

    let r = submit_traits(&app, &u, json!({"email": u.email, "bio": "free to change", "nick": "neo"})).await;
    assert_eq!(r.status(), 403, "the nick asks for a recent login");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["id"], "session_refresh_required", "{v}");
    assert!(traits_of(&app, &u).await.get("nick").is_none(), "nothing stored");

    // The identifier opted out: it changes on a stale session (verification is off: at once).
    let new = unique_email();
    let r = submit_traits(&app, &u, json!({"email": new, "bio": "free to change"})).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(traits_of(&app, &u).await["email"], new.as_str());
    assert!(app.login(&new, PASSWORD).await["session_token"].is_string(), "the identifier moved");
}
both_dbs!(field_policy_privileged_per_field);

/// `aal2` per trait: without a second factor the change is a form error on the trait; with one,
/// an aal1 session is sent to step up; an aal2 session may change it.
async fn field_policy_aal2_per_field(db: Db) {
    let schema = schema_with(json!({}), json!({"nick": {"type": "string", "idflow": {"aal2": true}}}));
    let app = spawn_app_with(db, |c| {
        use_schema(c, &schema);
        c.selfservice.flows.settings.required_aal = RequiredAal::Aal1;
        c.session.whoami.required_aal = RequiredAal::Aal1;
    })
    .await;
    let u = user(&app, Kind::Api).await;
    let r = submit_traits(&app, &u, json!({"email": u.email, "nick": "neo"})).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(node_ids(&v, "traits.nick"), vec![4000060], "{v}");
    // Other traits are not held back by the policy of one.
    let r = submit_traits(&app, &u, json!({"email": u.email, "bio": "hi"})).await;
    assert_eq!(r.status(), 200);

    // Enrol TOTP: this session is aal2 now.
    let flow = u.create(&app).await;
    let code = totp_code(&totp_secret(&flow), &app.clock);
    let r = u.submit(&app, &flow, json!({"method": "totp", "totp_code": code})).await;
    assert_eq!(r.status(), 200);
    // A password-only session of the same account is sent to the second factor.
    let weak = sign_in(&app, Kind::Api, &u.email, PASSWORD, String::new(), u.identity_id.clone()).await;
    let r = submit_traits(&app, &weak, json!({"email": u.email, "bio": "hi", "nick": "neo"})).await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["id"], "session_aal2_required", "{v}");
    assert!(traits_of(&app, &u).await.get("nick").is_none());
    let r = submit_traits(&app, &u, json!({"email": u.email, "bio": "hi", "nick": "neo"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(traits_of(&app, &u).await["nick"], "neo");
}
both_dbs!(field_policy_aal2_per_field);

/// `notify` per trait: a trait marked `notify: true` mails the account's addresses when it
/// changes ("Your account details were changed"); an identifier marked `notify: false` does
/// not send the identifier notification.
async fn field_policy_notify_per_field(db: Db) {
    let sink = start_sink(Mode::Accept, None).await;
    let schema = schema_with(
        json!({"idflow": {"notify": false, "verify_before_apply": false}}),
        json!({"bio": {"type": "string", "idflow": {"notify": true}}}),
    );
    let app = spawn_app_with(db, |c| {
        courier_cfg(c, Some(plain_uri(sink.addr)));
        use_schema(c, &schema);
    })
    .await;
    let u = user(&app, Kind::Api).await;
    let flow = u.create(&app).await;
    let r = u.submit(&app, &flow, json!({"method": "profile", "traits": {"email": u.email, "bio": "hello"}})).await;
    assert_eq!(r.status(), 200);
    let notice = notice_mail(&sink, &u.email, "Your account details were changed").await;
    assert!(!notice.contains("hello"), "the new value is not mailed: {notice}");
    // The identifier opted out: moving it sends no identifier notification.
    let new = unique_email();
    let flow = u.create(&app).await;
    let r = u.submit(&app, &flow, json!({"method": "profile", "traits": {"email": new, "bio": "hello"}})).await;
    assert_eq!(r.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let subjects: Vec<String> = sink
        .mails()
        .iter()
        .filter(|m| m.to.contains(&u.email))
        .filter_map(|m| m.data.lines().find(|l| l.starts_with("Subject:")).map(str::to_string))
        .collect();
    assert_eq!(subjects, vec!["Subject: Your account details were changed".to_string()], "{subjects:?}");
}
both_dbs!(field_policy_notify_per_field);
