//! Self-service account deletion with a grace period (issue #14 item 4): the `delete_account`
//! settings method needs a privileged session, aal2 when the account has a second factor, and
//! the confirmation; it schedules the deletion, ends every session and mails a notice with the
//! cancel link (read from a real SMTP sink). A sign-in during the grace period offers to
//! cancel (Kratos and v1, API and browser) and never cancels by itself; cancelling works from
//! the settings flow and the extension routes. The deletion worker deletes nothing before the
//! date and everything of the identity after it, exactly once across two PostgreSQL nodes.

use crate::both_dbs;
use crate::support::*;
use idflow_core::config::{Config, RequiredAal};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};

const GRACE_SECS: i64 = 14 * 24 * 3600;

fn deletion_cfg(c: &mut Config, sink: &Sink) {
    courier_cfg(c, Some(plain_uri(sink.addr)));
    c.cleanup.enabled = false; // the tests drive the deletion worker
}

async fn deletion_app(db: Db, tweak: impl FnOnce(&mut Config)) -> (TestApp, Sink) {
    let sink = start_sink(Mode::Accept, None).await;
    let app = spawn_app_with(db, |c| {
        deletion_cfg(c, &sink);
        tweak(c);
    })
    .await;
    (app, sink)
}

/// Schedule the deletion of `u`'s account through its settings flow; returns the answer.
async fn schedule(app: &TestApp, u: &User) -> (u16, Value) {
    let flow = u.create(app).await;
    let r = u.submit(app, &flow, json!({"method": "delete_account", "delete_account_confirm": true})).await;
    u.outcome(app, r).await
}

async fn admin_get(app: &TestApp, id: &str) -> reqwest::Response {
    api_client().get(app.admin_url(&format!("/admin/identities/{id}"))).send().await.unwrap()
}

/// Rows of `table` with `identity_id = id`, read straight from the database.
async fn rows_of(app: &TestApp, table: &str, id: &str) -> i64 {
    let id = uuid::Uuid::parse_str(id).unwrap();
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE identity_id = $1");
    match app.db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.dsn).await.unwrap();
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(id).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(&app.dsn).await.unwrap();
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(id).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n
        }
    }
}

/// A stale session is sent to re-authenticate; without the confirmation the form says so; with
/// it the account is scheduled at now + grace period, every session ends (the caller's and the
/// others), and the notice with the date and the cancel link arrives at the SMTP sink.
async fn deletion_needs_privilege_and_confirmation(db: Db) {
    let (app, sink) = deletion_app(db, |_| {}).await;
    let u = user(&app, Kind::Api).await;
    let other = app.login(&u.email, PASSWORD).await["session_token"].as_str().unwrap().to_string();

    // Not privileged (the login is older than privileged_session_max_age): re-authenticate.
    app.clock.advance(2 * 3600);
    let flow = u.create(&app).await;
    let r = u.submit(&app, &flow, json!({"method": "delete_account", "delete_account_confirm": true})).await;
    let e = kratos_error(r, 403, Some("session_refresh_required")).await;
    assert!(e["redirect_browser_to"].as_str().unwrap().contains("refresh=true"), "{e}");
    assert!(admin_get(&app, &u.identity_id).await.json::<Value>().await.unwrap().get("delete_after").is_none());

    // A fresh login: privileged. Without the confirmation: a form error on the checkbox.
    let fresh = sign_in(&app, Kind::Api, &u.email, PASSWORD, String::new(), u.identity_id.clone()).await;
    let flow = fresh.create(&app).await;
    assert_eq!(node(&flow, "delete_account_confirm").unwrap()["attributes"]["type"], "checkbox", "{flow}");
    assert_eq!(node(&flow, "delete_account_confirm").unwrap()["group"], "profile");
    let r = fresh.submit(&app, &flow, json!({"method": "delete_account"})).await;
    let (status, invalid) = fresh.outcome(&app, r).await;
    assert_eq!(status, 400, "{invalid}");
    assert_eq!(node_ids(&invalid, "delete_account_confirm"), vec![4000002]);
    assert!(whoami(&app, &fresh.token).await.status().is_success());

    // Confirmed: scheduled, every session ended, the notice mailed.
    let now = app.clock.now();
    let (status, done) = schedule(&app, &fresh).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["state"], "success");
    assert_eq!(message_ids(&done), vec![1050041], "{done}");
    let admin: Value = admin_get(&app, &u.identity_id).await.json().await.unwrap();
    let at = time::OffsetDateTime::parse(
        admin["delete_after"].as_str().expect("delete_after in the admin JSON"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!((at - now).whole_seconds() >= GRACE_SECS && (at - now).whole_seconds() < GRACE_SECS + 60, "{admin}");
    for t in [&u.token, &other, &fresh.token] {
        assert_eq!(whoami(&app, t).await.status(), 401, "a session survived the deletion request");
    }
    let mail = quoted_printable_decode(&sink.mail_to(&u.email, 1).await);
    assert!(mail.contains("Subject: Your account will be deleted"), "{mail}");
    assert!(mail.contains(&format!("{}/self-service/login/browser", app.public)), "cancel link: {mail}");
    assert!(mail.contains(&at.date().to_string()), "date: {mail}");
    // The identity is still there: nothing is deleted before the grace period.
    assert_eq!(admin_get(&app, &u.identity_id).await.status(), 200);
}
both_dbs!(deletion_needs_privilege_and_confirmation);

/// An account with a second factor is deleted only by an aal2 session (even where settings
/// accept aal1 sessions).
async fn deletion_needs_aal2_with_a_second_factor(db: Db) {
    let (app, _sink) = deletion_app(db, |c| c.selfservice.flows.settings.required_aal = RequiredAal::Aal1).await;
    let email = unique_email();
    let id = app.admin_create(&email, Some(TOTP_SECRET)).await["id"].as_str().unwrap().to_string();
    let aal1 = sign_in(&app, Kind::Api, &email, PASSWORD, String::new(), id.clone()).await;
    let flow = aal1.create(&app).await;
    let r = aal1.submit(&app, &flow, json!({"method": "delete_account", "delete_account_confirm": true})).await;
    kratos_error(r, 403, Some("session_aal2_required")).await;
    assert!(admin_get(&app, &id).await.json::<Value>().await.unwrap().get("delete_after").is_none());

    // Step up with the TOTP code: now it goes through.
    let lf: Value = api_client()
        .get(app.url("/self-service/login/api?aal=aal2"))
        .header("X-Session-Token", &aal1.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r: Value = api_client()
        .post(app.url(&format!("/self-service/login?flow={}", lf["id"].as_str().unwrap())))
        .header("X-Session-Token", &aal1.token)
        .json(&json!({"method": "totp", "totp_code": totp_code(TOTP_SECRET, &app.clock)}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["session"]["authenticator_assurance_level"], "aal2", "{r}");
    let aal2 = User { token: r["session_token"].as_str().unwrap().to_string(), ..aal1 };
    let (status, done) = schedule(&app, &aal2).await;
    assert_eq!(status, 200, "{done}");
    assert!(admin_get(&app, &id).await.json::<Value>().await.unwrap()["delete_after"].is_string());
}
both_dbs!(deletion_needs_aal2_with_a_second_factor);

/// Signing in during the grace period offers to cancel and cancels nothing by itself (API,
/// v1 and browser); the settings flow shows the offer, and its cancel button, the Kratos
/// extension route and the v1 route each cancel.
async fn sign_in_during_grace_offers_cancel(db: Db) {
    let (app, _sink) = deletion_app(db, |_| {}).await;
    let u = user(&app, Kind::Api).await;
    assert_eq!(schedule(&app, &u).await.0, 200);
    app.clock.advance(3600);

    // API login: the offer, nothing cancelled.
    let login = app.login(&u.email, PASSWORD).await;
    let token = login["session_token"].as_str().unwrap().to_string();
    let offer = &login["account_deletion"];
    assert_eq!(offer["scheduled"], true, "{login}");
    assert!(offer["delete_after"].is_string());
    assert_eq!(offer["cancel"]["url"], app.url("/self-service/settings/cancel-deletion"));
    assert_eq!(offer["cancel"]["method"], "POST");
    assert!(login["session"]["identity"]["delete_after"].is_string(), "{login}");
    assert!(admin_get(&app, &u.identity_id).await.json::<Value>().await.unwrap()["delete_after"].is_string());

    // The settings flow: the notice and the cancel button (no delete button).
    let api = User {
        kind: Kind::Api,
        http: api_client(),
        token: token.clone(),
        email: u.email.clone(),
        identity_id: u.identity_id.clone(),
        password: PASSWORD.into(),
    };
    let flow = api.create(&app).await;
    assert!(message_ids(&flow).contains(&1050040), "{flow}");
    assert!(node(&flow, "delete_account_cancel").is_some() && node(&flow, "delete_account_confirm").is_none());
    let r = api.submit(&app, &flow, json!({"method": "delete_account", "delete_account_cancel": true})).await;
    let (status, done) = api.outcome(&app, r).await;
    assert_eq!(status, 200, "{done}");
    assert!(!message_ids(&done).contains(&1050040), "{done}");
    assert!(admin_get(&app, &u.identity_id).await.json::<Value>().await.unwrap().get("delete_after").is_none());
    // Cancelling again is a form error, not a silent success.
    let flow = api.create(&app).await;
    let r = api.submit(&app, &flow, json!({"method": "delete_account", "delete_account_cancel": true})).await;
    assert_eq!(r.status(), 400);

    // Kratos extension route with a token.
    let fresh = sign_in(&app, Kind::Api, &u.email, PASSWORD, String::new(), u.identity_id.clone()).await;
    assert_eq!(schedule(&app, &fresh).await.0, 200);
    let t = app.login(&u.email, PASSWORD).await["session_token"].as_str().unwrap().to_string();
    let r = api_client()
        .post(app.url("/self-service/settings/cancel-deletion"))
        .header("X-Session-Token", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["account_deletion"]["scheduled"], false);
    assert!(v["identity"].get("delete_after").is_none(), "{v}");
    let r = api_client()
        .post(app.url("/self-service/settings/cancel-deletion"))
        .header("X-Session-Token", &t)
        .send()
        .await
        .unwrap();
    kratos_error(r, 400, None).await;

    // v1: scheduled through the v1 settings flow; the login answers the offer with the v1
    // route; GET reads it, DELETE cancels.
    let t = app.login(&u.email, PASSWORD).await["session_token"].as_str().unwrap().to_string();
    let f: Value = api_client()
        .get(app.url("/v1/flows/settings"))
        .header("Authorization", format!("Bearer {t}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = api_client()
        .post(app.url(&format!("/v1/flows/settings/{}:submit", f["id"].as_str().unwrap())))
        .header("Authorization", format!("Bearer {t}"))
        .json(&json!({"method": "delete_account", "body": {"delete_account_confirm": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["continue_flow"]["ui"]["messages"][0]["id"], "1050041", "{v}");
    assert_eq!(whoami(&app, &t).await.status(), 401);
    let lf: Value = api_client().get(app.url("/v1/flows/login")).send().await.unwrap().json().await.unwrap();
    let r = api_client()
        .post(app.url(&format!("/v1/flows/login/{}:submit", lf["id"].as_str().unwrap())))
        .json(&json!({"method": "password", "body": {"identifier": u.email, "password": PASSWORD}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v1: Value = r.json().await.unwrap();
    assert_eq!(v1["account_deletion"]["cancel"]["method"], "DELETE", "{v1}");
    assert_eq!(v1["account_deletion"]["cancel"]["url"], app.url("/v1/account/deletion"));
    let bearer = format!("Bearer {}", v1["session_token"].as_str().unwrap());
    let state: Value = api_client()
        .get(app.url("/v1/account/deletion"))
        .header("Authorization", &bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["scheduled"], true, "{state}");
    let r = api_client().delete(app.url("/v1/account/deletion")).header("Authorization", &bearer).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = api_client().delete(app.url("/v1/account/deletion")).header("Authorization", &bearer).send().await.unwrap();
    v1_error(r, 400, "AVNOLOGY_AUTH_001").await;
    let r = api_client().delete(app.url("/v1/account/deletion")).send().await.unwrap();
    v1_error(r, 401, "AVNOLOGY_AUTH_005").await;

    // Browser: the login sends the browser to the settings page; a cookie cancel must be JSON.
    let fresh = sign_in(&app, Kind::Api, &u.email, PASSWORD, String::new(), u.identity_id.clone()).await;
    assert_eq!(schedule(&app, &fresh).await.0, 200);
    let b = browser_client();
    let lf = ajax_get(&b, &app.url("/self-service/login/browser")).await;
    let r = b
        .post(app.url(&format!("/self-service/login?flow={}", lf["id"].as_str().unwrap())))
        .form(&[
            ("method", "password"),
            ("identifier", u.email.as_str()),
            ("password", PASSWORD),
            ("csrf_token", csrf(&lf).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), app.url("/self-service/settings/browser"));
    let r = b.post(app.url("/self-service/settings/cancel-deletion")).form(&[("x", "y")]).send().await.unwrap();
    kratos_error(r, 403, Some("security_csrf_violation")).await;
    assert!(admin_get(&app, &u.identity_id).await.json::<Value>().await.unwrap()["delete_after"].is_string());
    let r = b
        .post(app.url("/self-service/settings/cancel-deletion"))
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(admin_get(&app, &u.identity_id).await.json::<Value>().await.unwrap().get("delete_after").is_none());
}
both_dbs!(sign_in_during_grace_offers_cancel);

/// The worker deletes nothing before the date; after it, the identity with its credentials,
/// addresses, sessions and flows, and nothing of other identities.
async fn worker_deletes_after_the_grace_period(db: Db) {
    let (app, _sink) = deletion_app(db, |_| {}).await;
    let u = user(&app, Kind::Api).await;
    let keep = user(&app, Kind::Api).await;
    assert_eq!(schedule(&app, &u).await.0, 200);
    assert!(rows_of(&app, "credentials", &u.identity_id).await > 0);
    assert!(rows_of(&app, "flows", &u.identity_id).await > 0);

    assert_eq!(app.engine.purge_scheduled_deletions().await.unwrap(), 0);
    app.clock.advance(GRACE_SECS - 60);
    assert_eq!(app.engine.purge_scheduled_deletions().await.unwrap(), 0, "deleted before the grace period");
    assert_eq!(admin_get(&app, &u.identity_id).await.status(), 200);

    app.clock.advance(120);
    assert_eq!(app.engine.purge_scheduled_deletions().await.unwrap(), 1);
    assert_eq!(admin_get(&app, &u.identity_id).await.status(), 404);
    for table in
        ["credentials", "credential_identifiers", "verifiable_addresses", "recovery_addresses", "sessions", "flows"]
    {
        assert_eq!(rows_of(&app, table, &u.identity_id).await, 0, "{table} rows left");
    }
    assert!(app.login(&u.email, PASSWORD).await["session_token"].is_null());
    // Once only, and nothing else.
    assert_eq!(app.engine.purge_scheduled_deletions().await.unwrap(), 0);
    assert_eq!(admin_get(&app, &keep.identity_id).await.status(), 200);
    assert!(app.login(&keep.email, PASSWORD).await["session_token"].is_string());
    // The address is free again.
    let (t, _) = app.register(&u.email, PASSWORD).await;
    assert!(!t.is_empty());
}
both_dbs!(worker_deletes_after_the_grace_period);

/// A zero grace period deletes at the next worker run; a disabled method is refused.
async fn zero_grace_and_disabled_method(db: Db) {
    let (app, _sink) = deletion_app(db, |c| {
        c.selfservice.methods.delete_account.config.grace_period = idflow_core::config::Dur::secs(0)
    })
    .await;
    let u = user(&app, Kind::Api).await;
    assert_eq!(schedule(&app, &u).await.0, 200);
    assert_eq!(app.engine.purge_scheduled_deletions().await.unwrap(), 1);
    assert_eq!(admin_get(&app, &u.identity_id).await.status(), 404);

    let (off, _sink) = deletion_app(db, |c| c.selfservice.methods.delete_account.enabled = false).await;
    let u = user(&off, Kind::Api).await;
    let flow = u.create(&off).await;
    assert!(node(&flow, "delete_account_confirm").is_none(), "{flow}");
    let r = u.submit(&off, &flow, json!({"method": "delete_account", "delete_account_confirm": true})).await;
    assert!(r.status().is_client_error(), "{}", r.status());
    assert!(admin_get(&off, &u.identity_id).await.json::<Value>().await.unwrap().get("delete_after").is_none());
}
both_dbs!(zero_grace_and_disabled_method);

/// Two nodes on one PostgreSQL run the worker at the same time: every due identity is deleted
/// by exactly one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_deletes_exactly_once_on_two_nodes() {
    if pg_admin_url().is_none() {
        eprintln!("IDFLOW_TEST_PG_ADMIN_URL not set: multi-node deletion test skipped");
        return;
    }
    let sink = start_sink(Mode::Accept, None).await;
    let (dsn, _) = fresh_dsn(Db::Postgres).await;
    let tweak = |c: &mut Config| {
        courier_cfg(c, Some(plain_uri(sink.addr)));
        c.cleanup.enabled = false;
        c.cleanup.batch_size = 1; // many small transactions: the nodes interleave
    };
    let a = spawn_on(Db::Postgres, dsn.clone(), None, tweak).await;
    let b = spawn_on(Db::Postgres, dsn, None, tweak).await;
    let mut ids = vec![];
    for i in 0..8 {
        let node = if i % 2 == 0 { &a } else { &b };
        let u = user(node, Kind::Api).await;
        assert_eq!(schedule(node, &u).await.0, 200);
        ids.push(u.identity_id);
    }
    a.clock.advance(GRACE_SECS + 60);
    b.clock.advance(GRACE_SECS + 60);
    let (ra, rb) = tokio::join!(a.engine.purge_scheduled_deletions(), b.engine.purge_scheduled_deletions());
    let (na, nb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(na + nb, 8, "deleted {na} + {nb}");
    for id in &ids {
        assert_eq!(admin_get(&a, id).await.status(), 404);
    }
    let (ra, rb) = tokio::join!(a.engine.purge_scheduled_deletions(), b.engine.purge_scheduled_deletions());
    assert_eq!((ra.unwrap(), rb.unwrap()), (0, 0));
}

/// v1 with the session cookie (a browser flow, CSRF checked): scheduling a deletion clears the
/// session cookie, and the session is gone.
async fn v1_cookie_deletion_clears_the_cookie(db: Db) {
    let (app, _sink) = deletion_app(db, |_| {}).await;
    let b = user(&app, Kind::Browser).await;
    let f: Value = b.http.get(app.url("/v1/flows/settings")).send().await.unwrap().json().await.unwrap();
    let token = node(&f, "csrf_token").unwrap()["attributes"]["value"].as_str().unwrap().to_string();
    let r = b
        .http
        .post(app.url(&format!("/v1/flows/settings/{}:submit", f["id"].as_str().unwrap())))
        .json(&json!({"method": "delete_account", "body": {"delete_account_confirm": true, "csrf_token": token}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cleared = set_cookies(&r).iter().any(|c| c.contains("Max-Age=0"));
    assert!(cleared, "{:?}", set_cookies(&r));
    let who = b.http.get(app.url("/sessions/whoami")).header(ACCEPT, "application/json").send().await.unwrap();
    assert_eq!(who.status(), 401);
    assert!(admin_get(&app, &b.identity_id).await.json::<Value>().await.unwrap()["delete_after"].is_string());
}
both_dbs!(v1_cookie_deletion_clears_the_cookie);
