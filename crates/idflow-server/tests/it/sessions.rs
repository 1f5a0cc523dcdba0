//! Sessions: whoami errors, browser and API logout, the caller's session list and revocation,
//! and expiry after `session.lifespan`.

use crate::both_dbs;
use crate::snap;
use crate::support::*;
use idflow_core::config::Dur;
use reqwest::header::ACCEPT;
use serde_json::{Value, json};

/// 401 without an `error.id`, whatever the way a (bad) token is presented.
async fn whoami_unauthorized_shape(db: Db) {
    let app = spawn_app(db).await;
    let c = api_client();
    let cases = [
        c.get(app.url("/sessions/whoami")),
        c.get(app.url("/sessions/whoami")).header("X-Session-Token", "idf_st_unknown"),
        c.get(app.url("/sessions/whoami")).header("Authorization", "Bearer idf_st_unknown"),
        c.get(app.url("/sessions/whoami")).header("Cookie", "ory_kratos_session=forged-value"),
        c.post(app.url("/sessions/whoami")),
    ];
    for req in cases {
        let body = kratos_error(req.send().await.unwrap(), 401, None).await;
        assert_eq!(body["error"]["status"], "Unauthorized");
        assert_eq!(body["error"]["reason"], "No valid session credentials found in the request.");
    }
    // Bearer works as a token source.
    let (_, token, id) = app.user().await;
    let who =
        c.get(app.url("/sessions/whoami")).header("Authorization", format!("bearer {token}")).send().await.unwrap();
    assert_eq!(who.status(), 200);
    assert_eq!(who.headers()["x-kratos-authenticated-identity-id"], id.as_str());
}
both_dbs!(whoami_unauthorized_shape);

/// Browser logout: logout URL → 303 with the cookie cleared; the session is dead server-side
/// (replaying the old cookie does not work).
async fn browser_logout(db: Db) {
    let app = spawn_app(db).await;
    let c = browser_client();
    // Register through the browser and remember the raw session cookie.
    let flow = browser_flow(&app, &c, "registration").await;
    let resp = c
        .post(app.url(&format!("/self-service/registration?flow={}", flow["id"].as_str().unwrap())))
        .header(ACCEPT, "application/json")
        .json(&json!({"method": "password", "csrf_token": csrf(&flow), "password": PASSWORD,
            "traits": {"email": unique_email()}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let raw = cookie_value(&set_cookie(&resp, "ory_kratos_session").unwrap());

    // Without a session there is nothing to log out from.
    let resp = api_client()
        .get(app.url("/self-service/logout/browser"))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    kratos_error(resp, 401, Some("session_inactive")).await;

    let resp = c.get(app.url("/self-service/logout/browser")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let out: Value = resp.json().await.unwrap();
    let url = out["logout_url"].as_str().unwrap().to_string();
    let token = out["logout_token"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/self-service/logout?token=", app.public)), "{url}");
    assert!(url.contains(token));

    // A wrong logout token is refused and logs nobody out.
    let resp = c.get(app.url("/self-service/logout?token=idf_lo_wrong")).send().await.unwrap();
    kratos_error(resp, 403, None).await;
    assert_eq!(c.get(app.url("/sessions/whoami")).send().await.unwrap().status(), 200);

    let resp = c.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), format!("{}/ui/login", app.public));
    let cleared = set_cookie(&resp, "ory_kratos_session").expect("session cookie cleared");
    assert_eq!(cookie_value(&cleared), "");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    assert_eq!(c.get(app.url("/sessions/whoami")).send().await.unwrap().status(), 401);
    let replay = api_client()
        .get(app.url("/sessions/whoami"))
        .header("Cookie", format!("ory_kratos_session={raw}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401, "the session is revoked server-side");
}
both_dbs!(browser_logout);

/// Browser logout by AJAX: 204.
async fn browser_logout_ajax(db: Db) {
    let app = spawn_app(db).await;
    let c = browser_client();
    browser_register(&app, &c).await;
    let out: Value = c.get(app.url("/self-service/logout/browser")).send().await.unwrap().json().await.unwrap();
    let resp = c.get(out["logout_url"].as_str().unwrap()).header(ACCEPT, "application/json").send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert!(set_cookie(&resp, "ory_kratos_session").is_some_and(|c| cookie_value(&c).is_empty()));
    assert_eq!(c.get(app.url("/sessions/whoami")).send().await.unwrap().status(), 401);
}
both_dbs!(browser_logout_ajax);

/// API logout: 204 and the token is dead; an unknown token → 403; a missing one → 400.
async fn api_logout(db: Db) {
    let app = spawn_app(db).await;
    let (_, token, _) = app.user().await;
    let c = api_client();
    let url = app.url("/self-service/logout/api");
    let resp = c.delete(&url).json(&json!({"session_token": token})).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(whoami(&app, &token).await.status(), 401);
    // Revoking an already revoked session still answers 204.
    assert_eq!(c.delete(&url).json(&json!({"session_token": token})).send().await.unwrap().status(), 204);
    let resp = c.delete(&url).json(&json!({"session_token": "idf_st_doesnotexist"})).send().await.unwrap();
    kratos_error(resp, 403, None).await;
    let resp = c.delete(&url).json(&json!({})).send().await.unwrap();
    kratos_error(resp, 400, None).await;
}
both_dbs!(api_logout);

/// `GET /sessions` lists the caller's other sessions; `DELETE /sessions/{id}` revokes one of
/// them (not the current one: 400; not someone else's: 404); `DELETE /sessions` the rest.
async fn my_sessions(db: Db) {
    let app = spawn_app(db).await;
    let (email, a, _) = app.user().await;
    let b = app.login(&email, PASSWORD).await["session_token"].as_str().unwrap().to_string();
    let c_tok = app.login(&email, PASSWORD).await["session_token"].as_str().unwrap().to_string();
    let d = app.login(&email, PASSWORD).await["session_token"].as_str().unwrap().to_string();
    let sid = |t: String| {
        let app = &app;
        async move { whoami(app, &t).await.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string() }
    };
    let (sa, sb, sc, sd) = (sid(a.clone()).await, sid(b.clone()).await, sid(c_tok.clone()).await, sid(d.clone()).await);
    let (_, other_token, _) = app.user().await;
    let foreign = sid(other_token.clone()).await;

    let api = api_client();
    let list: Value =
        api.get(app.url("/sessions")).header("X-Session-Token", &a).send().await.unwrap().json().await.unwrap();
    let mut ids: Vec<&str> = list.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    ids.sort();
    let mut want = vec![sb.as_str(), sc.as_str(), sd.as_str()];
    want.sort();
    assert_eq!(ids, want, "other sessions only");

    let resp = api.delete(app.url(&format!("/sessions/{sa}"))).header("X-Session-Token", &a).send().await.unwrap();
    kratos_error(resp, 400, None).await;
    let resp = api.delete(app.url(&format!("/sessions/{foreign}"))).header("X-Session-Token", &a).send().await.unwrap();
    kratos_error(resp, 404, None).await;
    assert_eq!(whoami(&app, &other_token).await.status(), 200, "foreign session untouched");
    let resp = api.delete(app.url("/sessions/not-a-uuid")).header("X-Session-Token", &a).send().await.unwrap();
    kratos_error(resp, 400, None).await;

    let resp = api.delete(app.url(&format!("/sessions/{sd}"))).header("X-Session-Token", &a).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(whoami(&app, &d).await.status(), 401);

    let resp = api.delete(app.url("/sessions")).header("X-Session-Token", &a).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let out: Value = resp.json().await.unwrap();
    assert_eq!(out["count"], 2);
    assert_eq!(whoami(&app, &b).await.status(), 401);
    assert_eq!(whoami(&app, &c_tok).await.status(), 401);
    assert_eq!(whoami(&app, &a).await.status(), 200, "the current session stays");
    let list: Value =
        api.get(app.url("/sessions")).header("X-Session-Token", &a).send().await.unwrap().json().await.unwrap();
    assert_eq!(list, json!([]));

    // Without a session: 401.
    kratos_error(api.get(app.url("/sessions")).send().await.unwrap(), 401, None).await;
    kratos_error(api.delete(app.url("/sessions")).send().await.unwrap(), 401, None).await;
}
both_dbs!(my_sessions);

/// A session ends after `session.lifespan` (fake clock).
async fn session_expires(db: Db) {
    let app = spawn_app_with(db, |cfg| cfg.session.lifespan = Dur::secs(3600)).await;
    let (_, token, _) = app.user().await;
    app.clock.advance(3500);
    let who = whoami(&app, &token).await;
    assert_eq!(who.status(), 200);
    let who: Value = who.json().await.unwrap();
    assert_eq!(who["active"], true);
    app.clock.advance(200);
    kratos_error(whoami(&app, &token).await, 401, None).await;
    let resp = api_client().get(app.url("/sessions")).header("X-Session-Token", &token).send().await.unwrap();
    assert_eq!(resp.status(), 401);
}
both_dbs!(session_expires);

/// insta snapshots of the session as `/sessions/whoami` shows it (API token and browser
/// cookie) and of its 401 envelope, redacted as in `support::snapshots`. SQLite only: the shapes
/// do not depend on the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_wire_shapes() {
    let app = spawn_app(Db::Sqlite).await;
    let (token, id) = app.register("ana@example.org", PASSWORD).await;

    let r = whoami(&app, &token).await;
    assert_eq!(r.status(), 200);
    let who = body(r).await;
    assert_eq!(who["identity"]["id"], id.as_str());
    snap!(&app, "whoami_api", &who);

    let b = browser_client();
    browser_login(&app, &b, "ana@example.org", PASSWORD).await;
    let r = b.get(app.url("/sessions/whoami")).header(ACCEPT, "application/json").send().await.unwrap();
    assert_eq!(r.status(), 200);
    snap!(&app, "whoami_browser", &body(r).await);

    let r = api_client().get(app.url("/sessions/whoami")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    snap!(&app, "error_401_no_session", &body(r).await);
}
