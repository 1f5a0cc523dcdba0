//! insta snapshots of every v1 envelope (redacted as in `support::snapshots`): each `/v1/...`
//! route's success body, and the error envelope for a malformed request, an unknown flow, an
//! expired flow, no session, validation errors, a password-policy rejection and wrong
//! credentials. SQLite only: the shapes do not depend on the database.

use crate::snap;
use crate::support::*;
use serde_json::{Value, json};

const EMAIL: &str = "ana@example.org";

/// One test walking every route in order (registration → login → session → settings → logout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_wire_shapes() {
    let app = spawn_app(Db::Sqlite).await;
    let c = api_client();
    let get = |path: String, token: Option<String>| {
        let mut r = c.get(app.url(&path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let submit = |kind: &str, id: &str, token: Option<&str>, b: Value| {
        let mut r = c.post(app.url(&format!("/v1/flows/{kind}/{id}:submit")));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.json(&b).send()
    };

    // ---- registration ---------------------------------------------------------------------
    let r = get("/v1/flows/registration".into(), None).await.unwrap();
    assert_eq!(r.status(), 200);
    let reg = body(r).await;
    snap!(&app, "registration_flow_created", &reg);
    let reg_id = reg["id"].as_str().unwrap().to_string();
    let r = get(format!("/v1/flows/registration/{reg_id}"), None).await.unwrap();
    assert_eq!(r.status(), 200);
    snap!(&app, "registration_flow_fetched", &body(r).await);
    let r = submit(
        "registration",
        &reg_id,
        None,
        json!({"method": "password", "body": {"traits": {"email": "not-an-email"}, "password": PASSWORD}}),
    )
    .await
    .unwrap();
    snap!(&app, "error_400_validation", &v1_error(r, 400, "AVNOLOGY_AUTH_010").await);
    let r = submit(
        "registration",
        &reg_id,
        None,
        json!({"method": "password", "body": {"traits": {"email": EMAIL}, "password": PASSWORD}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let registered = body(r).await;
    assert_eq!(registered["identity"]["traits"]["email"], EMAIL);
    snap!(&app, "registration_success", &registered);

    // ---- login ----------------------------------------------------------------------------
    let r = get("/v1/flows/login".into(), None).await.unwrap();
    assert_eq!(r.status(), 200);
    let login = body(r).await;
    snap!(&app, "login_flow_created", &login);
    let login_id = login["id"].as_str().unwrap().to_string();
    let r = get(format!("/v1/flows/login/{login_id}"), None).await.unwrap();
    assert_eq!(r.status(), 200);
    snap!(&app, "login_flow_fetched", &body(r).await);
    let r = submit(
        "login",
        &login_id,
        None,
        json!({"method": "password", "body": {"identifier": EMAIL, "password": "wrong-password-99"}}),
    )
    .await
    .unwrap();
    snap!(&app, "error_400_invalid_credentials", &v1_error(r, 400, "AVNOLOGY_AUTH_006").await);
    let r = submit(
        "login",
        &login_id,
        None,
        json!({"method": "password", "body": {"identifier": EMAIL, "password": PASSWORD}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let logged_in = body(r).await;
    snap!(&app, "login_success", &logged_in);
    let token = logged_in["session_token"].as_str().unwrap().to_string();

    // ---- session --------------------------------------------------------------------------
    let r = get("/v1/sessions/current".into(), Some(token.clone())).await.unwrap();
    assert_eq!(r.status(), 200);
    let session = body(r).await;
    assert_eq!(session["id"], logged_in["session"]["id"]);
    snap!(&app, "session_current", &session);
    let r = get("/v1/sessions/current".into(), None).await.unwrap();
    snap!(&app, "error_401_unauthorized", &v1_error(r, 401, "AVNOLOGY_AUTH_005").await);

    // ---- settings -------------------------------------------------------------------------
    let r = get("/v1/flows/settings".into(), Some(token.clone())).await.unwrap();
    assert_eq!(r.status(), 200);
    let settings = body(r).await;
    snap!(&app, "settings_flow_created", &settings);
    let settings_id = settings["id"].as_str().unwrap().to_string();
    let r = get(format!("/v1/flows/settings/{settings_id}"), Some(token.clone())).await.unwrap();
    assert_eq!(r.status(), 200);
    snap!(&app, "settings_flow_fetched", &body(r).await);
    let r =
        submit("settings", &settings_id, Some(&token), json!({"method": "password", "body": {"password": "short"}}))
            .await
            .unwrap();
    snap!(&app, "error_400_password_policy", &v1_error(r, 400, "AVNOLOGY_AUTH_011").await);
    let r = submit(
        "settings",
        &settings_id,
        Some(&token),
        json!({"method": "profile", "body": {"traits": {"email": EMAIL, "name": {"first": "Ana", "last": "Lee"}}}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let saved = body(r).await;
    assert_eq!(saved["continue_flow"]["state"], "success");
    snap!(&app, "settings_success", &saved);
    let r = submit("settings", &settings_id, Some(&token), json!({"body": {}})).await.unwrap();
    snap!(&app, "error_400_malformed", &v1_error(r, 400, "AVNOLOGY_AUTH_001").await);
    let r = get(format!("/v1/flows/settings/{}", uuid::Uuid::new_v4()), Some(token.clone())).await.unwrap();
    snap!(&app, "error_404_unknown_flow", &v1_error(r, 404, "AVNOLOGY_AUTH_004").await);

    // ---- expiry: the registration flow is now older than its lifespan ---------------------
    app.clock.advance(3601);
    let r = submit(
        "registration",
        &reg_id,
        None,
        json!({"method": "password", "body": {"traits": {"email": "bo@example.org"}, "password": PASSWORD}}),
    )
    .await
    .unwrap();
    let mut expired = v1_error(r, 400, "AVNOLOGY_AUTH_009").await;
    assert!(expired["error"]["details"]["use_flow_id"].is_string());
    if let Some(reason) = expired["error"]["reason"].as_str()
        && reason.contains(" ago")
    {
        expired["error"]["reason"] = json!("[expired N minutes ago]");
    }
    snap!(&app, "error_400_flow_expired", &expired);

    // ---- logout ---------------------------------------------------------------------------
    let r = c.delete(app.url("/v1/sessions/current")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.text().await.unwrap().is_empty(), "204 has no body");
}
