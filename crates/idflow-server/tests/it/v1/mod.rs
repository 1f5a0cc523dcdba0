//! The v1 dialect: the login/registration/session skeleton and its `AVNOLOGY_AUTH_xxx` envelope
//! here; the settings endpoints and the Rust SDK (`idflow-client`) in the submodules.

mod sdk;
mod settings;
mod snapshots;

use crate::both_dbs;
use crate::support::*;
use serde_json::{Value, json};

async fn v1_flow(app: &TestApp, kind: &str) -> Value {
    let resp = api_client().get(app.url(&format!("/v1/flows/{kind}"))).send().await.unwrap();
    assert_eq!(resp.status(), 200, "create v1 {kind} flow");
    let flow: Value = resp.json().await.unwrap();
    assert_eq!(flow["type"], kind);
    let id = flow["id"].as_str().unwrap();
    assert_eq!(flow["ui"]["action"], format!("{}/v1/flows/{kind}/{id}:submit", app.public));
    flow
}

async fn v1_submit(app: &TestApp, kind: &str, flow: &Value, body: Value) -> reqwest::Response {
    api_client()
        .post(app.url(&format!("/v1/flows/{kind}/{}:submit", flow["id"].as_str().unwrap())))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn current(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let mut r = api_client().get(app.url("/v1/sessions/current"));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.unwrap()
}

/// Register, log in, read and end the session through v1.
async fn v1_register_login_session(db: Db) {
    let app = spawn_app(db).await;
    let email = unique_email();
    let flow = v1_flow(&app, "registration").await;
    // The flow can be fetched again by id.
    let fetched: Value = api_client()
        .get(app.url(&format!("/v1/flows/registration/{}", flow["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["id"], flow["id"]);
    let resp = v1_submit(
        &app,
        "registration",
        &flow,
        json!({"method": "password", "body": {"traits": {"email": email}, "password": PASSWORD}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let reg: Value = resp.json().await.unwrap();
    let id = reg["identity"]["id"].as_str().unwrap().to_string();
    assert_eq!(reg["identity"]["traits"]["email"], email.as_str());
    assert!(reg["session_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(reg["session"]["identity"]["id"], id.as_str());

    let flow = v1_flow(&app, "login").await;
    let resp = v1_submit(
        &app,
        "login",
        &flow,
        json!({"method": "password", "body": {"identifier": email, "password": PASSWORD}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let login: Value = resp.json().await.unwrap();
    let token = login["session_token"].as_str().unwrap().to_string();
    assert_ne!(token, reg["session_token"].as_str().unwrap());
    assert_eq!(login["session"]["identity"]["id"], id.as_str());

    let resp = current(&app, Some(&token)).await;
    assert_eq!(resp.status(), 200);
    let s: Value = resp.json().await.unwrap();
    assert_eq!(s["id"], login["session"]["id"]);
    assert_eq!(s["identity"]["id"], id.as_str());

    let body = v1_error(current(&app, None).await, 401, "AVNOLOGY_AUTH_005").await;
    assert!(body["error"]["reason"].is_string());
    v1_error(current(&app, Some("idf_st_nope")).await, 401, "AVNOLOGY_AUTH_005").await;

    let resp = api_client().delete(app.url("/v1/sessions/current")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    v1_error(current(&app, Some(&token)).await, 401, "AVNOLOGY_AUTH_005").await;
    let resp = api_client().delete(app.url("/v1/sessions/current")).bearer_auth(&token).send().await.unwrap();
    v1_error(resp, 401, "AVNOLOGY_AUTH_005").await;
    // The registration session is a different one and still works.
    assert_eq!(current(&app, reg["session_token"].as_str()).await.status(), 200);
}
both_dbs!(v1_register_login_session);

/// Malformed envelopes → 400 `AVNOLOGY_AUTH_001`.
async fn v1_malformed_envelope(db: Db) {
    let app = spawn_app(db).await;
    for kind in ["login", "registration"] {
        let flow = v1_flow(&app, kind).await;
        let url = app.url(&format!("/v1/flows/{kind}/{}:submit", flow["id"].as_str().unwrap()));
        let bodies: Vec<(&str, String)> = vec![
            ("application/json", "not json".into()),
            ("application/json", "[1,2]".into()),
            ("application/json", r#"{"body": {}}"#.into()),
            ("application/json", r#"{"method": 5, "body": {}}"#.into()),
            ("application/json", r#"{"method": "", "body": {}}"#.into()),
            ("application/json", r#"{"method": "password", "body": "x"}"#.into()),
            ("application/json", r#"{"method": "password", "body": [1]}"#.into()),
        ];
        for (ct, b) in bodies {
            let resp = api_client().post(&url).header("content-type", ct).body(b.clone()).send().await.unwrap();
            v1_error(resp, 400, "AVNOLOGY_AUTH_001").await;
        }
        // The path must end in :submit.
        let resp = api_client()
            .post(app.url(&format!("/v1/flows/{kind}/{}", flow["id"].as_str().unwrap())))
            .json(&json!({"method": "password", "body": {}}))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_client_error(), "{}", resp.status());
    }
}
both_dbs!(v1_malformed_envelope);

/// Form errors: 400 with `continue_flow` (v1 shape, string message ids).
async fn v1_form_errors(db: Db) {
    let app = spawn_app(db).await;
    let (email, _, _) = app.user().await;

    let flow = v1_flow(&app, "login").await;
    let resp = v1_submit(
        &app,
        "login",
        &flow,
        json!({"method": "password", "body": {"identifier": email, "password": "wrong-password-99"}}),
    )
    .await;
    let body = v1_error(resp, 400, "AVNOLOGY_AUTH_006").await;
    let cf = &body["continue_flow"];
    assert_eq!(cf["id"], flow["id"]);
    assert_eq!(cf["type"], "login");
    assert_eq!(cf["ui"]["messages"][0]["id"], "4000006", "string message ids: {cf}");

    let flow = v1_flow(&app, "registration").await;
    let resp = v1_submit(
        &app,
        "registration",
        &flow,
        json!({"method": "password", "body": {"traits": {"email": unique_email()}, "password": "short"}}),
    )
    .await;
    let body = v1_error(resp, 400, "AVNOLOGY_AUTH_011").await;
    assert_eq!(body["continue_flow"]["type"], "registration");
    let resp = v1_submit(
        &app,
        "registration",
        &flow,
        json!({"method": "password", "body": {"traits": {"email": email}, "password": PASSWORD}}),
    )
    .await;
    let body = v1_error(resp, 409, "AVNOLOGY_AUTH_012").await;
    assert!(body["continue_flow"].is_object());
    let resp = v1_submit(
        &app,
        "registration",
        &flow,
        json!({"method": "password", "body": {"traits": {"email": "nope"}, "password": PASSWORD}}),
    )
    .await;
    let body = v1_error(resp, 400, "AVNOLOGY_AUTH_010").await;
    assert!(body["continue_flow"].is_object());
}
both_dbs!(v1_form_errors);

/// Unknown or malformed flow ids → 404 `AVNOLOGY_AUTH_004`; a Kratos browser flow is not a v1
/// flow.
async fn v1_unknown_flow(db: Db) {
    let app = spawn_app(db).await;
    let c = api_client();
    let unknown = uuid::Uuid::new_v4();
    for kind in ["login", "registration"] {
        v1_error(
            c.get(app.url(&format!("/v1/flows/{kind}/{unknown}"))).send().await.unwrap(),
            404,
            "AVNOLOGY_AUTH_004",
        )
        .await;
        let resp = c
            .post(app.url(&format!("/v1/flows/{kind}/{unknown}:submit")))
            .json(&json!({"method": "password", "body": {}}))
            .send()
            .await
            .unwrap();
        v1_error(resp, 404, "AVNOLOGY_AUTH_004").await;
        let resp = c
            .post(app.url(&format!("/v1/flows/{kind}/xyz:submit")))
            .json(&json!({"method": "password", "body": {}}))
            .send()
            .await
            .unwrap();
        v1_error(resp, 404, "AVNOLOGY_AUTH_004").await;
        let b = browser_client();
        let browser = browser_flow(&app, &b, kind).await;
        v1_error(
            c.get(app.url(&format!("/v1/flows/{kind}/{}", browser["id"].as_str().unwrap()))).send().await.unwrap(),
            404,
            "AVNOLOGY_AUTH_004",
        )
        .await;
    }
    // A login flow id is not a registration flow.
    let login = v1_flow(&app, "login").await;
    v1_error(
        c.get(app.url(&format!("/v1/flows/registration/{}", login["id"].as_str().unwrap()))).send().await.unwrap(),
        404,
        "AVNOLOGY_AUTH_004",
    )
    .await;
}
both_dbs!(v1_unknown_flow);

/// An expired v1 flow → 400 `AVNOLOGY_AUTH_009` naming a fresh flow.
async fn v1_expired_flow(db: Db) {
    let app = spawn_app(db).await;
    let flow = v1_flow(&app, "registration").await;
    app.clock.advance(3601);
    let resp = v1_submit(
        &app,
        "registration",
        &flow,
        json!({"method": "password", "body": {"traits": {"email": unique_email()}, "password": PASSWORD}}),
    )
    .await;
    let body = v1_error(resp, 400, "AVNOLOGY_AUTH_009").await;
    let fresh = body["error"]["details"]["use_flow_id"].as_str().expect("use_flow_id");
    assert_ne!(fresh, flow["id"].as_str().unwrap());
    let again: Value = api_client()
        .get(app.url(&format!("/v1/flows/registration/{fresh}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["id"], fresh);
}
both_dbs!(v1_expired_flow);
