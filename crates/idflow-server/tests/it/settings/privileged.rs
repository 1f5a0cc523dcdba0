//! Privileged sessions (settings-flow §13): stale sessions get `session_refresh_required`,
//! nothing is persisted, non-identifier profile changes stay allowed, and after a refresh login
//! the blocked change is offered again (values filled in, message 1050024) without secrets.

use crate::both_dbs;
use crate::support::*;
use serde_json::{Value, json};

fn refresh_url(app: &TestApp, flow_id: &str) -> String {
    let back = app.url(&format!("/self-service/settings?flow={flow_id}"));
    format!("{}/self-service/login/browser?refresh=true&return_to={}", app.public, form_encode(&back))
}

/// Assert the refresh-required response of a client kind.
async fn expect_refresh_required(app: &TestApp, u: &User, flow_id: &str, resp: reqwest::Response) {
    let want = refresh_url(app, flow_id);
    if u.kind == Kind::Browser {
        assert_eq!(resp.status(), 303);
        assert_eq!(location(&resp), want);
        return;
    }
    assert_eq!(resp.status(), 403, "{:?}", u.kind);
    assert_eq!(resp.headers()["ory-error-id"], "session_refresh_required");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(error_id(&v), "session_refresh_required");
    assert_eq!(v["error"]["code"], 403);
    assert_eq!(v["error"]["message"], "The requested action was forbidden");
    assert_eq!(
        v["error"]["reason"],
        "The login session is too old and thus not allowed to update these fields. Please re-authenticate."
    );
    assert_eq!(v["redirect_browser_to"], want.as_str());
}

/// Re-authenticate (refresh login) the way the client kind does; for browsers the login
/// returns to the submit URL, which (GET) leads back to the flow.
async fn refresh_login(app: &TestApp, u: &mut User, flow_id: &str) {
    match u.kind {
        Kind::Api => {
            let c = api_client();
            let lf: Value = c
                .get(app.url("/self-service/login/api?refresh=true"))
                .header("X-Session-Token", &u.token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(lf["refresh"], true);
            let r: Value = c
                .post(app.url(&format!("/self-service/login?flow={}", lf["id"].as_str().unwrap())))
                .header("X-Session-Token", &u.token)
                .json(&json!({"method": "password", "identifier": u.email, "password": u.password}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            u.token = r["session_token"].as_str().expect("refreshed token").to_string();
        }
        Kind::Browser | Kind::Ajax => {
            let lf = ajax_get(&u.http, &refresh_url(app, flow_id)).await;
            assert_eq!(lf["refresh"], true);
            assert!(message_ids(&lf).contains(&1010003), "refresh login asks to confirm: {lf}");
            let resp = u
                .http
                .post(app.url(&format!("/self-service/login?flow={}", lf["id"].as_str().unwrap())))
                .form(&[
                    ("csrf_token", csrf(&lf).as_str()),
                    ("identifier", u.email.as_str()),
                    ("password", u.password.as_str()),
                    ("method", "password"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 303);
            let back = location(&resp);
            assert_eq!(
                back,
                app.url(&format!("/self-service/settings?flow={flow_id}")),
                "login returns to the paused submit"
            );
            // The browser follows with a GET on the submit URL.
            let resp = u.get(&back).send().await.unwrap();
            if u.kind == Kind::Browser {
                assert_eq!(resp.status(), 303);
                assert_eq!(location(&resp), ui_url(app, flow_id));
            } else {
                assert_eq!(resp.status(), 200);
                let v: Value = resp.json().await.unwrap();
                assert_eq!(v["id"], flow_id);
            }
        }
    }
}

async fn stale_password_change_needs_refresh(db: Db) {
    let app = spawn_app(db).await;
    for kind in KINDS {
        let mut u = user(&app, kind).await;
        app.clock.advance(3601);
        let flow = u.create(&app).await; // creation never checks privilege
        let id = flow["id"].as_str().unwrap().to_string();
        let new_pw = "Fresh-Orchid-Walnut-31";
        let resp = u.submit(&app, &flow, json!({"method": "password", "password": new_pw})).await;
        expect_refresh_required(&app, &u, &id, resp).await;
        // Nothing persisted; the password is kept nowhere.
        assert!(u.password_works(&app, PASSWORD).await, "{kind:?}: old password still works");
        assert!(!u.password_works(&app, new_pw).await);
        let stored = app.engine.store.get_flow(id.parse().unwrap()).await.unwrap().unwrap();
        assert!(!serde_json::to_string(&stored).unwrap().contains(new_pw), "the password is not stored on the flow");
        // After a refresh login the form comes back with the notice, the password empty.
        refresh_login(&app, &mut u, &id).await;
        let shown = u.fetch(&app, &id).await;
        assert!(form_ids(&shown).contains(&1050024), "{kind:?}: {shown}");
        assert!(group_node(&shown, "password", "password").unwrap()["attributes"].get("value").is_none());
        assert!(!shown.to_string().contains(new_pw));
        let resp = u.submit(&app, &shown, json!({"method": "password", "password": new_pw})).await;
        let st = resp.status().as_u16();
        assert!(st == 200 || st == 303, "{kind:?}: re-submit after refresh succeeds ({st})");
        let done = u.fetch(&app, &id).await;
        assert_eq!(done["state"], "success");
        assert_eq!(form_ids(&done), vec![1050001], "the notice is gone after success");
        assert!(u.password_works(&app, new_pw).await, "{kind:?}");
    }
}
both_dbs!(stale_password_change_needs_refresh);

async fn stale_profile_changes(db: Db) {
    let app = spawn_app(db).await;
    for kind in KINDS {
        let mut u = user(&app, kind).await;
        app.clock.advance(3601);
        let flow = u.create(&app).await;
        let id = flow["id"].as_str().unwrap().to_string();
        // A non-identifier trait may change with a stale session.
        let resp = u
            .submit(&app, &flow, json!({"method": "profile", "traits": {"email": u.email, "name": {"first": "Stale"}}}))
            .await;
        let st = resp.status().as_u16();
        assert!(st == 200 || st == 303, "{kind:?}: name change allowed ({st})");
        assert_eq!(admin_identity(&app, &u.identity_id).await["traits"]["name"]["first"], "Stale");
        // The email (identifier, verifiable and recovery address) needs a privileged session.
        let new_email = unique_email();
        let resp = u
            .submit(
                &app,
                &flow,
                json!({"method": "profile", "traits": {"email": new_email, "name": {"first": "Stale"}}}),
            )
            .await;
        expect_refresh_required(&app, &u, &id, resp).await;
        assert_eq!(admin_identity(&app, &u.identity_id).await["traits"]["email"], u.email.as_str(), "not persisted");
        // Refresh, then the blocked change is offered again.
        refresh_login(&app, &mut u, &id).await;
        let shown = u.fetch(&app, &id).await;
        assert_eq!(node(&shown, "traits.email").unwrap()["attributes"]["value"], new_email.as_str(), "{kind:?}");
        assert_eq!(node(&shown, "traits.name.first").unwrap()["attributes"]["value"], "Stale");
        let notice = shown["ui"]["messages"].as_array().unwrap().iter().find(|m| m["id"] == 1050024).expect("1050024");
        assert_eq!(notice["type"], "info");
        assert_eq!(notice["context"]["method"], "profile");
        let resp = u
            .submit(
                &app,
                &shown,
                json!({"method": "profile", "traits": {"email": new_email, "name": {"first": "Stale"}}}),
            )
            .await;
        let st = resp.status().as_u16();
        assert!(st == 200 || st == 303, "{kind:?}: re-submit succeeds ({st})");
        let stored = admin_identity(&app, &u.identity_id).await;
        assert_eq!(stored["traits"]["email"], new_email.as_str());
        assert_eq!(
            stored["credentials"]["password"]["identifiers"],
            json!([new_email]),
            "identifier follows the trait"
        );
        u.email = new_email;
        assert!(u.password_works(&app, PASSWORD).await, "login with the new email");
    }
}
both_dbs!(stale_profile_changes);

async fn stale_second_factor_actions_need_refresh(db: Db) {
    let app = spawn_app(db).await;
    let u = user(&app, Kind::Api).await;
    app.clock.advance(3601);
    let flow = u.create(&app).await;
    let id = flow["id"].as_str().unwrap();
    let code = totp_code(&totp_secret(&flow), &app.clock);
    for body in [
        json!({"method": "totp", "totp_code": code}),
        json!({"method": "lookup_secret", "lookup_secret_regenerate": true}),
        json!({"method": "lookup_secret", "lookup_secret_reveal": true}),
    ] {
        let resp = u.submit(&app, &flow, body.clone()).await;
        expect_refresh_required(&app, &u, id, resp).await;
    }
    assert!(admin_identity(&app, &u.identity_id).await["credentials"].get("totp").is_none());
}
both_dbs!(stale_second_factor_actions_need_refresh);

async fn privileged_max_age_is_configurable(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.selfservice.flows.settings.privileged_session_max_age = idflow_core::config::Dur::secs(600);
    })
    .await;
    let u = user(&app, Kind::Api).await;
    app.clock.advance(500);
    let flow = u.create(&app).await;
    let resp = u.submit(&app, &flow, json!({"method": "password", "password": "Maple-Harbor-Violet-52"})).await;
    assert_eq!(resp.status(), 200, "within 10 minutes");
    let u = user(&app, Kind::Api).await;
    app.clock.advance(601);
    let flow = u.create(&app).await;
    let resp = u.submit(&app, &flow, json!({"method": "password", "password": "Maple-Harbor-Violet-52"})).await;
    assert_eq!(resp.status(), 403, "after 10 minutes");
}
both_dbs!(privileged_max_age_is_configurable);
