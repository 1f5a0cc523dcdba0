//! The v1 settings endpoints over raw HTTP: the flow shape, TOTP enrolment start, cookie
//! authentication with CSRF, and bad input (each its v1 code, never a 500).

use crate::both_dbs;
use crate::support::*;
use serde_json::{Value, json};

async fn create(app: &TestApp, token: &str) -> Value {
    let resp = api_client().get(app.url("/v1/flows/settings")).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn submit(app: &TestApp, token: &str, id: &str, body: Value) -> reqwest::Response {
    api_client()
        .post(app.url(&format!("/v1/flows/settings/{id}:submit")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Every message id in a flow is a string.
fn assert_string_ids(flow: &Value) {
    let mut n = 0;
    for m in flow["ui"]["messages"].as_array().into_iter().flatten() {
        assert!(m["id"].is_string(), "{m}");
        n += 1;
    }
    for node in flow["ui"]["nodes"].as_array().unwrap() {
        for m in node["messages"].as_array().into_iter().flatten() {
            assert!(m["id"].is_string(), "{m}");
            n += 1;
        }
        for key in ["label"] {
            if let Some(l) = node["meta"].get(key) {
                assert!(l["id"].is_string(), "{l}");
            }
        }
        if node["type"] == "text" {
            assert!(node["attributes"]["text"]["id"].is_string(), "{node}");
        }
    }
    let _ = n;
}

/// The v1 flow shape (settings-flow §18, v1-api §3) and the seed's create/submit examples.
async fn v1_settings_flow_shape(db: Db) {
    let app = spawn_app(db).await;
    let (email, token, identity_id) = app.user().await;
    let flow = create(&app, &token).await;
    let id = flow["id"].as_str().unwrap();
    assert_eq!(flow["type"], "settings");
    assert_eq!(flow["state"], "show_form");
    assert_eq!(flow["ui"]["method"], "POST");
    assert_eq!(flow["ui"]["action"], format!("{}/v1/flows/settings/{id}:submit", app.public));
    assert_eq!(flow["identity"]["id"], identity_id.as_str());
    assert!(flow["expires_at"].is_string());
    let qr = node(&flow, "totp_qr").unwrap();
    assert_eq!(qr["type"], "image");
    assert_eq!(qr["group"], "totp");
    assert!(qr["attributes"]["src"].as_str().unwrap().starts_with("data:image/png;base64,iVBORw0KGgo"));
    assert_eq!(qr["attributes"]["width"], 256);
    assert_eq!(qr["attributes"]["height"], 256);
    assert!(flow["ui"]["nodes"].as_array().unwrap().iter().all(|n| n["type"] != "img"));
    assert_string_ids(&flow);
    // The fetch returns the same flow.
    let resp = api_client().get(app.url(&format!("/v1/flows/settings/{id}"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let fetched: Value = resp.json().await.unwrap();
    assert_eq!(fetched["id"], flow["id"]);
    assert_eq!(fetched["ui"]["action"], flow["ui"]["action"]);

    // Profile update exactly as in the seed (csrf_token sent and ignored with Bearer auth).
    let resp = submit(
        &app,
        &token,
        id,
        json!({"method": "profile", "body": {
        "traits": {"email": email, "name": {"first": "Jane", "last": "Doe"}}, "csrf_token": "dG9rZW4..."}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let cf = &body["continue_flow"];
    assert_eq!(cf["id"], flow["id"]);
    assert_eq!(cf["type"], "settings");
    assert_eq!(cf["state"], "success");
    assert_eq!(
        cf["ui"]["messages"],
        json!([{"id": "1050001", "text": "Your profile has been updated.", "type": "success"}])
    );
    assert_eq!(cf["identity"]["traits"]["name"]["first"], "Jane");
    assert_string_ids(cf);
    // Flattened node names inside `body` are accepted too.
    let resp = submit(
        &app,
        &token,
        id,
        json!({"method": "profile", "body": {"traits.email": email, "traits.name.first": "Flat"}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["continue_flow"]["identity"]["traits"]["name"]["first"], "Flat");

    // A password change: the generic success text.
    let resp = submit(
        &app,
        &token,
        id,
        json!({"method": "password", "body": {"password": "NewSecureP@ss2026!", "csrf_token": "dG9rZW4..."}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["continue_flow"]["state"], "success");
    assert_eq!(body["continue_flow"]["ui"]["messages"][0]["id"], "1050001");
    assert_eq!(app.login(&email, "NewSecureP@ss2026!").await["session"]["active"], true);
}
both_dbs!(v1_settings_flow_shape);

/// TOTP over raw HTTP: `{"method":"totp","body":{}}` starts enrolment (200, QR image node and
/// secret text node with the otpauth URI); a code confirms; `totp_unlink` removes it.
async fn v1_totp_enrolment(db: Db) {
    let app = spawn_app(db).await;
    let (_, token, _) = app.user().await;
    let flow = create(&app, &token).await;
    let id = flow["id"].as_str().unwrap();
    let resp = submit(&app, &token, id, json!({"method": "totp", "body": {}})).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let cf = &body["continue_flow"];
    assert_eq!(cf["state"], "show_form");
    assert!(body.get("error").is_none());
    assert!(
        message_ids(cf).is_empty() || cf["ui"]["messages"].as_array().unwrap().iter().all(|m| m["type"] != "error"),
        "{cf}"
    );
    for n in cf["ui"]["nodes"].as_array().unwrap() {
        assert!(n["messages"].as_array().unwrap().iter().all(|m| m["type"] != "error"), "no errors: {n}");
    }
    let qr = node(cf, "totp_qr").unwrap();
    assert_eq!(qr["type"], "image");
    let text = node(cf, "totp_secret_key").unwrap();
    assert_eq!(text["type"], "text");
    let secret = text["attributes"]["text"]["text"].as_str().unwrap().to_string();
    assert_eq!(text["attributes"]["text"]["context"]["secret"], secret.as_str());
    let url = text["attributes"]["text"]["context"]["url"].as_str().unwrap();
    assert!(url.starts_with("otpauth://totp/") && url.contains(&format!("secret={secret}")), "{url}");
    // The same secret stays bound to the flow.
    let again: Value = submit(&app, &token, id, json!({"method": "totp", "body": {}})).await.json().await.unwrap();
    assert_eq!(
        node(&again["continue_flow"], "totp_secret_key").unwrap()["attributes"]["text"]["text"],
        secret.as_str()
    );

    // Wrong / empty code: 007 with continue_flow.
    for code in ["000000x", ""] {
        let resp = submit(
            &app,
            &token,
            id,
            json!({"method": "totp", "body": {"totp_code": code, "csrf_token": "dG9rZW4..."}}),
        )
        .await;
        let body = v1_error(resp, 400, "AVNOLOGY_AUTH_007").await;
        assert_eq!(body["continue_flow"]["id"], id);
        assert_string_ids(&body["continue_flow"]);
    }
    let resp =
        submit(&app, &token, id, json!({"method": "totp", "body": {"totp_code": totp_code(&secret, &app.clock)}}))
            .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["continue_flow"]["state"], "success");
    assert!(node(&body["continue_flow"], "totp_unlink").is_some());

    let flow = create(&app, &token).await;
    let resp = submit(
        &app,
        &token,
        flow["id"].as_str().unwrap(),
        json!({"method": "totp", "body": {"totp_unlink": true, "csrf_token": "dG9rZW4..."}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["continue_flow"]["state"], "success");
    assert!(node(&body["continue_flow"], "totp_qr").is_some());
}
both_dbs!(v1_totp_enrolment);

/// Cookie authentication: the flow is a browser flow whose `body.csrf_token` is checked (003);
/// a caller holding only the session cookie gets the CSRF cookie with the flow.
async fn v1_cookie_auth_csrf(db: Db) {
    let app = spawn_app(db).await;
    // Register in a browser; keep only the session cookie.
    let b = browser_client();
    let reg_flow = browser_flow(&app, &b, "registration").await;
    let email = unique_email();
    let resp = b
        .post(app.url(&format!("/self-service/registration?flow={}", reg_flow["id"].as_str().unwrap())))
        .header("accept", "application/json")
        .json(&json!({"method": "password", "csrf_token": csrf(&reg_flow), "password": PASSWORD, "traits": {"email": email}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let session_name = app.engine.cfg.session.cookie.name.clone();
    let session = cookie_value(&set_cookie(&resp, &session_name).expect("session cookie"));
    let session_cookie = format!("{session_name}={session}");

    let c = api_client();
    let resp = c.get(app.url("/v1/flows/settings")).header("cookie", &session_cookie).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let csrf_set =
        set_cookie(&resp, &csrf_cookie_name(&app)).expect("the CSRF cookie is set with a cookie-authenticated flow");
    let csrf_cookie = format!("{}={}", csrf_cookie_name(&app), cookie_value(&csrf_set));
    let flow: Value = resp.json().await.unwrap();
    assert_eq!(flow["type"], "settings");
    let id = flow["id"].as_str().unwrap().to_string();
    let token = csrf(&flow);
    assert!(!token.is_empty(), "a cookie-authenticated flow has a CSRF token");
    let both = format!("{session_cookie}; {csrf_cookie}");
    let url = app.url(&format!("/v1/flows/settings/{id}:submit"));
    let good = json!({"method": "profile", "body": {"traits": {"email": email, "name": {"first": "Cookie"}}, "csrf_token": token}});
    let cases = [
        (both.clone(), json!({"method": "profile", "body": {"traits": {"email": email}}})),
        (both.clone(), json!({"method": "profile", "body": {"traits": {"email": email}, "csrf_token": "wrong"}})),
        (session_cookie.clone(), good.clone()),
    ];
    for (cookie, body) in cases {
        let resp = c.post(&url).header("cookie", cookie).json(&body).send().await.unwrap();
        v1_error(resp, 403, "AVNOLOGY_AUTH_003").await;
    }
    // The fetch hands out the same token.
    let resp = c.get(app.url(&format!("/v1/flows/settings/{id}"))).header("cookie", &both).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = c.post(&url).header("cookie", &both).json(&good).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["continue_flow"]["state"], "success");
    assert_eq!(body["continue_flow"]["ui"]["messages"][0]["text"], "Your profile has been updated.");
    assert_eq!(body["continue_flow"]["identity"]["traits"]["name"]["first"], "Cookie");
}
both_dbs!(v1_cookie_auth_csrf);

/// Bad input on the settings endpoints: each its v1 code, never a 500.
async fn v1_settings_bad_input(db: Db) {
    let app = spawn_app(db).await;
    let (_, token, identity_id) = app.user().await;
    let flow = create(&app, &token).await;
    let id = flow["id"].as_str().unwrap().to_string();
    let c = api_client();
    let post = |path: String, ct: &'static str, body: Vec<u8>| {
        c.post(app.url(&path)).bearer_auth(&token).header("content-type", ct).body(body).send()
    };
    let submit_path = format!("/v1/flows/settings/{id}:submit");

    // Malformed flow ids.
    for bad in ["not-a-uuid", "1234", "%00", "..", "x:y", &format!("{id}x")] {
        let resp = post(
            format!("/v1/flows/settings/{bad}:submit"),
            "application/json",
            br#"{"method":"profile","body":{}}"#.to_vec(),
        )
        .await
        .unwrap();
        v1_error(resp, 404, "AVNOLOGY_AUTH_004").await;
        let resp = c.get(app.url(&format!("/v1/flows/settings/{bad}"))).bearer_auth(&token).send().await.unwrap();
        v1_error(resp, 404, "AVNOLOGY_AUTH_004").await;
    }
    // Missing or wrong custom verb.
    for path in [
        format!("/v1/flows/settings/{id}"),
        format!("/v1/flows/settings/{id}:save"),
        format!("/v1/flows/settings/{id}:"),
    ] {
        let resp = post(path, "application/json", br#"{"method":"profile","body":{}}"#.to_vec()).await.unwrap();
        v1_error(resp, 400, "AVNOLOGY_AUTH_001").await;
    }
    // Not `{method, body}`.
    let bodies: &[&str] = &[
        "",
        "not json",
        "[]",
        "null",
        r#""profile""#,
        r#"{}"#,
        r#"{"body": {}}"#,
        r#"{"method": "profile"}"#,
        r#"{"method": 1, "body": {}}"#,
        r#"{"method": null, "body": {}}"#,
        r#"{"method": "", "body": {}}"#,
        r#"{"method": "profile", "body": "traits"}"#,
        r#"{"method": "profile", "body": []}"#,
        r#"{"method": "profile", "body": null}"#,
        r#"{"method": "profile", "body": 5}"#,
        r#"{"method": "webauthn_magic", "body": {}}"#,
        r#"{"method": "oidc", "body": {}}"#,
        r#"{"method": "profile", "body": {"traits": {"email": "a@example.com"}}"#,
    ];
    for b in bodies {
        let resp = post(submit_path.clone(), "application/json", b.as_bytes().to_vec()).await.unwrap();
        let body = v1_error(resp, 400, "AVNOLOGY_AUTH_001").await;
        assert!(body["error"]["reason"].as_str().is_some_and(|r| !r.is_empty()), "{b}: {body}");
    }
    // Wrong field types inside body.
    let resp = post(submit_path.clone(), "application/json", br#"{"method":"profile","body":{"traits":"x"}}"#.to_vec())
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "{}", resp.text().await.unwrap());
    let resp = post(
        submit_path.clone(),
        "application/json",
        br#"{"method":"password","body":{"password":12345678901}}"#.to_vec(),
    )
    .await
    .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    let resp =
        post(submit_path.clone(), "application/json", br#"{"method":"totp","body":{"totp_code":123456}}"#.to_vec())
            .await
            .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    // Too large: 413.
    let big = format!(r#"{{"method":"profile","body":{{"traits":{{"email":"{}"}}}}}}"#, "a".repeat(128 * 1024));
    let resp = post(submit_path.clone(), "application/json", big.into_bytes()).await.unwrap();
    v1_error(resp, 413, "AVNOLOGY_AUTH_001").await;
    // Unknown v1 paths and methods stay in the v1 envelope.
    let resp = post(format!("/v1/flows/settings/{id}/submit"), "application/json", b"{}".to_vec()).await.unwrap();
    v1_error(resp, 404, "AVNOLOGY_AUTH_004").await;
    let resp = post("/v1/flows/settings".into(), "application/json", b"{}".to_vec()).await.unwrap();
    v1_error(resp, 405, "AVNOLOGY_AUTH_001").await;
    let resp = c.delete(app.url(&submit_path)).bearer_auth(&token).send().await.unwrap();
    v1_error(resp, 405, "AVNOLOGY_AUTH_001").await;
    // Malformed Authorization headers are no session.
    for h in ["Bearer", "Bearer ", "Basic abc", "Bearer a b", "bearer"] {
        let resp = c.get(app.url("/v1/flows/settings")).header("authorization", h).send().await.unwrap();
        v1_error(resp, 401, "AVNOLOGY_AUTH_005").await;
    }
    let long = format!("Bearer {}", "x".repeat(4096));
    let resp = c.get(app.url("/v1/flows/settings")).header("authorization", long).send().await.unwrap();
    v1_error(resp, 401, "AVNOLOGY_AUTH_005").await;
    // No session at all, with a malformed id or body: 005 first.
    let resp = c.post(app.url("/v1/flows/settings/nope:submit")).body("garbage").send().await.unwrap();
    v1_error(resp, 401, "AVNOLOGY_AUTH_005").await;

    // The token of a deleted identity.
    let resp = c.delete(app.admin_url(&format!("/admin/identities/{identity_id}"))).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    let resp =
        post(submit_path.clone(), "application/json", br#"{"method":"profile","body":{}}"#.to_vec()).await.unwrap();
    v1_error(resp, 401, "AVNOLOGY_AUTH_005").await;
    let resp = c.get(app.url(&format!("/v1/flows/settings/{id}"))).bearer_auth(&token).send().await.unwrap();
    v1_error(resp, 401, "AVNOLOGY_AUTH_005").await;
    let resp = c.get(app.url("/v1/flows/settings")).bearer_auth(&token).send().await.unwrap();
    v1_error(resp, 401, "AVNOLOGY_AUTH_005").await;
}
both_dbs!(v1_settings_bad_input);
