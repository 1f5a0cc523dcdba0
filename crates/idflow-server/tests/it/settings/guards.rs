//! The gates in front of every settings method: AAL (§14), CSRF and API-flow browser state
//! (§15), expiry and ownership (§4.3, §4.4.1), `return_to` (§4.6) and the well-known redirect.

use crate::both_dbs;
use crate::support::*;
use reqwest::header::ACCEPT;
use serde_json::{Value, json};

/// An identity imported with TOTP, and an aal2 API session for it (password + TOTP step-up).
async fn aal2_api_session(app: &TestApp, email: &str) -> String {
    let aal1 = app.login(email, PASSWORD).await["session_token"].as_str().unwrap().to_string();
    let c = api_client();
    let lf: Value = c
        .get(app.url("/self-service/login/api?aal=aal2"))
        .header("X-Session-Token", &aal1)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r: Value = c
        .post(app.url(&format!("/self-service/login?flow={}", lf["id"].as_str().unwrap())))
        .header("X-Session-Token", &aal1)
        .json(&json!({"method": "totp", "totp_code": totp_code(TOTP_SECRET, &app.clock)}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["session"]["authenticator_assurance_level"], "aal2", "{r}");
    r["session_token"].as_str().unwrap().to_string()
}

async fn expect_aal2_error(resp: reqwest::Response, want_redirect: &str) {
    assert_eq!(resp.status(), 403);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(error_id(&v), "session_aal2_required");
    assert_eq!(v["error"]["message"], "Session does not fulfill the requested Authenticator Assurance Level");
    assert_eq!(v["redirect_browser_to"], want_redirect);
    assert_eq!(v["error"]["details"]["redirect_browser_to"], want_redirect);
}

async fn aal_gate(db: Db) {
    let app = spawn_app(db).await;
    let email = unique_email();
    let created = app.admin_create(&email, Some(TOTP_SECRET)).await;
    let identity_id = created["id"].as_str().unwrap().to_string();
    let login = format!("{}/self-service/login/browser?aal=aal2", app.public);

    // aal1 API session: create → 403.
    let api = sign_in(&app, Kind::Api, &email, PASSWORD, String::new(), identity_id.clone()).await;
    expect_aal2_error(api.get(&app.url("/self-service/settings/api")).send().await.unwrap(), &login).await;
    // Browser aal1 session: 303 to the aal2 login; AJAX 403.
    let browser = sign_in(&app, Kind::Browser, &email, PASSWORD, String::new(), identity_id.clone()).await;
    let r = browser.get(&app.url("/self-service/settings/browser")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), login);
    let rt = "http://127.0.0.1/after";
    let r = browser
        .get(&app.url(&format!("/self-service/settings/browser?return_to={}", form_encode(rt))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let init = app.url(&format!("/self-service/settings/browser?return_to={}", form_encode(rt)));
    assert_eq!(
        location(&r),
        format!("{login}&return_to={}", form_encode(&init)),
        "return_to = the init URL when it had one"
    );
    let ajax = sign_in(&app, Kind::Ajax, &email, PASSWORD, String::new(), identity_id.clone()).await;
    expect_aal2_error(ajax.get(&app.url("/self-service/settings/browser")).send().await.unwrap(), &login).await;

    // A flow made by an aal2 session of the same identity: fetch and submit with aal1 → 403.
    let strong = User {
        kind: Kind::Api,
        http: api_client(),
        token: aal2_api_session(&app, &email).await,
        email: email.clone(),
        identity_id,
        password: PASSWORD.into(),
    };
    let flow = strong.create(&app).await;
    let id = flow["id"].as_str().unwrap();
    let r = api.get(&app.url(&format!("/self-service/settings/flows?id={id}"))).send().await.unwrap();
    expect_aal2_error(r, &format!("{login}&return_to={}", form_encode(&ui_url(&app, id)))).await;
    let r = api.submit(&app, &flow, json!({"method": "profile", "traits": {"email": email}})).await;
    let submit_url = app.url(&format!("/self-service/settings?flow={id}"));
    expect_aal2_error(r, &format!("{login}&return_to={}", form_encode(&submit_url))).await;
    // Browser flows: a browser with an aal1 session is redirected to the aal2 login instead.
    app.clock.advance(30); // the next TOTP code (codes are single-use)
    let strong_browser =
        sign_in(&app, Kind::Browser, &email, PASSWORD, String::new(), strong.identity_id.clone()).await;
    let lf = ajax_get(&strong_browser.http, &app.url("/self-service/login/browser?aal=aal2")).await;
    let r = strong_browser
        .http
        .post(app.url(&format!("/self-service/login?flow={}", lf["id"].as_str().unwrap())))
        .form(&[
            ("csrf_token", csrf(&lf).as_str()),
            ("method", "totp"),
            ("totp_code", totp_code(TOTP_SECRET, &app.clock).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "browser step-up");
    let bflow = strong_browser.create(&app).await;
    let bid = bflow["id"].as_str().unwrap();
    let r = browser.submit_raw(&app, bid, json!({"method": "profile", "traits": {"email": email}})).await;
    assert_eq!(r.status(), 303);
    let bsubmit = app.url(&format!("/self-service/settings?flow={bid}"));
    assert_eq!(location(&r), format!("{login}&return_to={}", form_encode(&bsubmit)));
    // The aal2 session itself may use it.
    let r = strong
        .submit(&app, &flow, json!({"method": "profile", "traits": {"email": email, "name": {"first": "Strong"}}}))
        .await;
    assert_eq!(r.status(), 200);
}
both_dbs!(aal_gate);

async fn aal1_config_allows_aal1_sessions(db: Db) {
    let app =
        spawn_app_with(db, |c| c.selfservice.flows.settings.required_aal = idflow_core::config::RequiredAal::Aal1)
            .await;
    let email = unique_email();
    let id = app.admin_create(&email, Some(TOTP_SECRET)).await["id"].as_str().unwrap().to_string();
    let api = sign_in(&app, Kind::Api, &email, PASSWORD, String::new(), id.clone()).await;
    let flow = api.create(&app).await;
    let r = api
        .submit(&app, &flow, json!({"method": "profile", "traits": {"email": email, "name": {"first": "Weak"}}}))
        .await;
    assert_eq!(r.status(), 200);
    let browser = sign_in(&app, Kind::Browser, &email, PASSWORD, String::new(), id).await;
    let flow = browser.create(&app).await;
    assert_eq!(flow["type"], "browser");
}
both_dbs!(aal1_config_allows_aal1_sessions);

async fn csrf_on_browser_flows(db: Db) {
    let app = spawn_app(db).await;
    for kind in [Kind::Ajax, Kind::Browser] {
        let u = user(&app, kind).await;
        let flow = u.create(&app).await;
        let body = |csrf: Value| json!({"method": "profile", "csrf_token": csrf, "traits": {"email": u.email, "name": {"first": "X"}}});
        // Missing token, then a wrong (well-formed) token.
        let other = user(&app, Kind::Ajax).await.create(&app).await;
        for token in [Value::Null, json!(csrf(&other)), json!("not-a-token")] {
            let r = u.submit(&app, &flow, body(token.clone())).await;
            if kind == Kind::Ajax {
                assert_eq!(r.status(), 403, "{token}");
                assert_eq!(r.headers()["ory-error-id"], "security_csrf_violation");
                let v: Value = r.json().await.unwrap();
                assert_eq!(error_id(&v), "security_csrf_violation");
                assert_eq!(
                    v["error"]["message"],
                    "the request was rejected to protect you from Cross-Site-Request-Forgery"
                );
                assert!(v["error"]["details"]["reject_reason"].is_string());
            } else {
                assert_eq!(r.status(), 303);
                let loc = location(&r);
                assert!(loc.starts_with(&format!("{}/ui/error?id=", app.public)), "{loc}");
                let stored = stored_error(&app, &loc).await;
                assert_eq!(stored["error"]["id"], "security_csrf_violation");
            }
        }
        // No CSRF cookie at all (a fresh client with the session cookie only is impossible to
        // build with a jar, so send the body token from a client without cookies).
        let r = api_client()
            .post(app.url(&format!("/self-service/settings?flow={}", flow["id"].as_str().unwrap())))
            .header(ACCEPT, "application/json")
            .json(&body(json!(csrf(&flow))))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "no cookies: no session either");
        assert!(
            admin_identity(&app, &u.identity_id).await["traits"].get("name").unwrap()["first"] != "X",
            "nothing saved"
        );
        // The right token works.
        let r = u.submit(&app, &flow, body(json!(csrf(&flow)))).await;
        assert!(r.status() == 200 || r.status() == 303);
    }
}
both_dbs!(csrf_on_browser_flows);

async fn api_flows_reject_browser_state(db: Db) {
    let app = spawn_app(db).await;
    let u = user(&app, Kind::Api).await;
    let flow = u.create(&app).await;
    let id = flow["id"].as_str().unwrap();
    let url = app.url(&format!("/self-service/settings?flow={id}"));
    let body = json!({"method": "profile", "traits": {"email": u.email, "name": {"first": "Origin"}}});
    for (h, v) in [("Origin", "https://evil.example"), ("Cookie", "foo=bar")] {
        let r =
            api_client().post(&url).header("X-Session-Token", &u.token).header(h, v).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 400, "{h}");
        let f: Value = r.json().await.unwrap();
        assert_eq!(form_ids(&f), vec![4000001], "{h}: {f}");
        assert!(f["ui"]["messages"][0]["text"].as_str().unwrap().contains(h), "{h}");
    }
    assert!(admin_identity(&app, &u.identity_id).await["traits"]["name"]["first"] != "Origin");
    // Cloudflare cookies are tolerated.
    let r = api_client()
        .post(&url)
        .header("X-Session-Token", &u.token)
        .header("Cookie", "__cf_bm=abc")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // API flows do not need a CSRF token.
    assert_eq!(flow["ui"]["nodes"][0]["attributes"]["value"], "");
}
both_dbs!(api_flows_reject_browser_state);

async fn expired_flows(db: Db) {
    let app = spawn_app(db).await;
    for kind in KINDS {
        let u = user(&app, kind).await;
        let flow = u.create(&app).await;
        let id = flow["id"].as_str().unwrap().to_string();
        app.clock.advance(3601);
        // Fetch: 410 without id; browser flows point at the browser init, API flows at the API init.
        let r = u.fetch_raw(&app, &id).await;
        assert_eq!(r.status(), 410, "{kind:?}");
        let v: Value = r.json().await.unwrap();
        assert!(v["error"].get("id").is_none());
        if kind == Kind::Api {
            assert_eq!(v["error"]["details"]["api"], app.url("/self-service/settings/api"));
        } else {
            assert_eq!(v["error"]["details"]["redirect_to"], app.url("/self-service/settings/browser"));
            assert_eq!(v["error"]["details"]["return_to"], "");
        }
        // Submit: a replacement flow.
        let r = u
            .submit(&app, &flow, json!({"method": "profile", "traits": {"email": u.email, "name": {"first": "Late"}}}))
            .await;
        let new_id = if kind == Kind::Browser {
            assert_eq!(r.status(), 303);
            let loc = location(&r);
            let prefix = format!("{}/ui/settings?flow=", app.public);
            assert!(loc.starts_with(&prefix), "{loc}");
            loc[prefix.len()..].to_string()
        } else {
            assert_eq!(r.status(), 410);
            assert_eq!(r.headers()["ory-error-id"], "self_service_flow_expired");
            let v: Value = r.json().await.unwrap();
            assert_eq!(error_id(&v), "self_service_flow_expired");
            assert_eq!(v["error"]["message"], "self-service flow expired");
            assert!(v["expired_at"].is_string());
            assert!(v["since"].as_i64().unwrap() > 0, "nanoseconds since expiry: {v}");
            v["use_flow_id"].as_str().expect("use_flow_id").to_string()
        };
        assert_ne!(new_id, id);
        let fresh = u.fetch(&app, &new_id).await;
        assert_eq!(fresh["type"], if kind == Kind::Api { "api" } else { "browser" });
        assert_eq!(fresh["request_url"], flow["request_url"], "replacement keeps request_url");
        let m = &fresh["ui"]["messages"][0];
        assert_eq!(m["id"], 4050001);
        assert_eq!(m["type"], "error");
        assert!(m["context"]["expired_at"].is_string(), "{m}");
        assert!(admin_identity(&app, &u.identity_id).await["traits"]["name"]["first"] != "Late");
        // The replacement is usable.
        let r = u
            .submit(&app, &fresh, json!({"method": "profile", "traits": {"email": u.email, "name": {"first": "Late"}}}))
            .await;
        assert!(r.status() == 200 || r.status() == 303, "{kind:?}: {}", r.status());
        assert_eq!(admin_identity(&app, &u.identity_id).await["traits"]["name"]["first"], "Late");
    }
}
both_dbs!(expired_flows);

async fn flows_belong_to_their_identity(db: Db) {
    let app = spawn_app(db).await;
    for kind in KINDS {
        let a = user(&app, kind).await;
        let b = user(&app, kind).await;
        let flow = a.create(&app).await;
        let id = flow["id"].as_str().unwrap();
        let r = b.fetch_raw(&app, id).await;
        assert_eq!(r.status(), 403);
        let v: Value = r.json().await.unwrap();
        assert_eq!(error_id(&v), "security_identity_mismatch");
        assert!(v["error"]["reason"].as_str().unwrap().contains("another identity"));
        // B submits A's flow (with B's own CSRF token: the browser's cookie).
        let own = b.create(&app).await;
        let mut body = json!({"method": "profile", "traits": {"email": b.email, "name": {"first": "Mallory"}}});
        if kind != Kind::Api {
            body["csrf_token"] = json!(csrf(&own));
        }
        let r = b.submit_raw(&app, id, body).await;
        if kind == Kind::Browser {
            assert_eq!(r.status(), 303);
            let loc = location(&r);
            assert!(loc.starts_with(&format!("{}/ui/error?id=", app.public)), "{loc}");
            assert_eq!(stored_error(&app, &loc).await["error"]["id"], "security_identity_mismatch");
        } else {
            assert_eq!(r.status(), 403);
            let v: Value = r.json().await.unwrap();
            assert_eq!(error_id(&v), "security_identity_mismatch");
            assert!(v["error"]["reason"].as_str().unwrap().contains("initiated by someone else"));
        }
        for u in [&a, &b] {
            assert!(admin_identity(&app, &u.identity_id).await["traits"]["name"]["first"] != "Mallory");
        }
    }
}
both_dbs!(flows_belong_to_their_identity);

async fn return_to_allow_list(db: Db) {
    let allowed = "https://app.example.org/account";
    let app = spawn_app_with(db, |c| c.selfservice.allowed_return_urls = vec![allowed.to_string()]).await;
    let evil = format!("?return_to={}", form_encode("https://evil.example.com/steal"));
    for kind in KINDS {
        let u = user(&app, kind).await;
        let r = u.get(&app.url(&format!("{}{evil}", u.init_path()))).send().await.unwrap();
        if kind == Kind::Browser {
            assert_eq!(r.status(), 303);
            let loc = location(&r);
            assert!(loc.starts_with(&format!("{}/ui/error?id=", app.public)), "{loc}");
            assert_eq!(stored_error(&app, &loc).await["error"]["id"], "self_service_flow_return_to_forbidden");
        } else {
            assert_eq!(r.status(), 400, "{kind:?}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(error_id(&v), "self_service_flow_return_to_forbidden");
            assert_eq!(
                v["error"]["reason"],
                "Requested return_to URL \"https://evil.example.com/steal\" is not allowed."
            );
        }
        // An allowed one (a sub path) is kept and used after success.
        let target = format!("{allowed}/security");
        let flow = u.create_with(&app, &format!("?return_to={}", form_encode(&target))).await;
        assert_eq!(flow["return_to"], target.as_str());
        let r = u
            .submit(&app, &flow, json!({"method": "profile", "traits": {"email": u.email, "name": {"first": "Back"}}}))
            .await;
        match kind {
            Kind::Browser => {
                assert_eq!(r.status(), 303);
                assert_eq!(location(&r), target);
            }
            Kind::Ajax => {
                assert_eq!(r.status(), 200);
                let v: Value = r.json().await.unwrap();
                assert_eq!(
                    v["continue_with"],
                    json!([{"action": "redirect_browser_to", "redirect_browser_to": target}])
                );
            }
            Kind::Api => {
                assert_eq!(r.status(), 200);
                let v: Value = r.json().await.unwrap();
                assert_eq!(v["return_to"], target.as_str());
            }
        }
    }
    // /.well-known/change-password → the settings init.
    let r = api_client().get(app.url("/.well-known/change-password")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), app.url("/self-service/settings/browser"));
}
both_dbs!(return_to_allow_list);

async fn after_urls_and_well_known_with_ui(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.selfservice.flows.settings.ui_url = Some("https://ui.example.org/settings".into());
        c.selfservice.flows.settings.after.default_browser_return_url = Some("https://ui.example.org/done".into());
        c.selfservice
            .flows
            .settings
            .after
            .method_mut(idflow_core::model::MethodId::Password)
            .default_browser_return_url = Some("https://ui.example.org/pw-done".into());
    })
    .await;
    let u = user(&app, Kind::Browser).await;
    let r = u.get(&app.url("/self-service/settings/browser")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let loc = location(&r);
    assert!(loc.starts_with("https://ui.example.org/settings?flow="), "{loc}");
    let flow = u.fetch(&app, &loc["https://ui.example.org/settings?flow=".len()..]).await;
    let r = u.submit(&app, &flow, json!({"method": "profile", "traits": {"email": u.email}})).await;
    assert_eq!(location(&r), "https://ui.example.org/done", "after.default_browser_return_url");
    let r = u.submit(&app, &flow, json!({"method": "password", "password": "Cobalt-Meadow-Ferry-64"})).await;
    assert_eq!(location(&r), "https://ui.example.org/pw-done", "per-method override");
    let r = api_client().get(app.url("/.well-known/change-password")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "https://ui.example.org/settings");
}
both_dbs!(after_urls_and_well_known_with_ui);
