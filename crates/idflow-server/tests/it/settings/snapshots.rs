//! Wire-shape snapshots (insta) of every settings response shape of settings-flow §4 and §11:
//! created flows, success flows, 400 flows and each error envelope. Volatile values are
//! redacted: ids, timestamps, tokens, CSRF values, the TOTP QR code and secrets, recovery codes,
//! and the random port of the test server.
//!
//! The snapshots live in `tests/it/settings/snapshots/`; redaction and the review workflow are
//! described in `support::snapshots`.

use crate::snap;
use crate::support::*;
use reqwest::header::ACCEPT;
use serde_json::json;

const EMAIL: &str = "ana@example.org";
/// One test (SQLite only: the shapes do not depend on the database) covering every shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_wire_shapes() {
    let app = spawn_app_with(Db::Sqlite, |c| {
        c.selfservice.allowed_return_urls = vec!["https://app.example.org/".into()];
        // The API and AJAX sessions belong to one identity: keep both alive across password changes.
        c.selfservice.flows.settings.after.method_mut(idflow_core::model::MethodId::Password).hooks = Some(vec![]);
    })
    .await;
    let (token, identity_id) = app.register(EMAIL, PASSWORD).await;
    let api = sign_in(&app, Kind::Api, EMAIL, PASSWORD, token, identity_id.clone()).await;
    let ajax = sign_in(&app, Kind::Ajax, EMAIL, PASSWORD, String::new(), identity_id.clone()).await;

    // ---- flows (§5, §9, §10) -------------------------------------------------------------
    let flow = api.create(&app).await;
    snap!(&app, "api_flow_created", &flow);
    let id = flow["id"].as_str().unwrap().to_string();
    let bflow = body(
        ajax.get(&app.url("/self-service/settings/browser?return_to=https%3A%2F%2Fapp.example.org%2Faccount"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    snap!(&app, "browser_flow_created", &bflow);

    let r = api.submit(&app, &flow, json!({"method": "password", "password": "short"})).await;
    assert_eq!(r.status(), 400);
    snap!(&app, "api_flow_400_password_too_short", &body(r).await);
    let r = api
        .submit(
            &app,
            &flow,
            json!({"method": "profile", "traits": {"email": "not-an-email", "name": {"first": "Ana"}}}),
        )
        .await;
    assert_eq!(r.status(), 400);
    snap!(&app, "api_flow_400_profile_invalid", &body(r).await);
    let r = api.submit(&app, &flow, json!({"method": "nope"})).await;
    assert_eq!(r.status(), 400);
    snap!(&app, "api_flow_400_no_strategy", &body(r).await);
    let r = api.submit(&app, &flow, json!({"method": "lookup_secret", "lookup_secret_regenerate": true})).await;
    assert_eq!(r.status(), 200);
    snap!(&app, "api_flow_lookup_regenerated", &body(r).await);
    let r = api
        .submit(
            &app,
            &flow,
            json!({"method": "profile", "traits": {"email": EMAIL, "name": {"first": "Ana", "last": "Lee"}}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    snap!(&app, "api_flow_success", &body(r).await);
    let r = ajax.submit(&app, &bflow, json!({"method": "password", "password": "Quiet-Lagoon-Ember-42"})).await;
    assert_eq!(r.status(), 200);
    snap!(&app, "ajax_flow_success", &body(r).await);

    // ---- error envelopes (§11) -----------------------------------------------------------
    let anon = api_client();
    let r = anon.get(app.url("/self-service/settings/api")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    snap!(&app, "error_401_session_inactive", &body(r).await);
    let r = anon
        .get(app.url(&format!("/self-service/settings/flows?id={id}")))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    snap!(&app, "error_401_no_session", &body(r).await);
    let r =
        api.get(&app.url(&format!("/self-service/settings/flows?id={}", uuid::Uuid::new_v4()))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    snap!(&app, "error_404_flow_not_found", &body(r).await);
    let r = api
        .req(reqwest::Method::POST, &app.url("/self-service/settings?flow=x"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    snap!(&app, "error_400_flow_param", &body(r).await);
    let r = api
        .get(&app.url("/self-service/settings/api?return_to=https%3A%2F%2Fevil.example.com%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    snap!(&app, "error_400_return_to_forbidden", &body(r).await);
    let r = ajax
        .submit(&app, &bflow, json!({"method": "profile", "csrf_token": "bogus", "traits": {"email": EMAIL}}))
        .await;
    assert_eq!(r.status(), 403);
    snap!(&app, "error_403_csrf", &body(r).await);
    let (_, other_token, _) = app.user().await;
    let r = api_client()
        .get(app.url(&format!("/self-service/settings/flows?id={id}")))
        .header("X-Session-Token", &other_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    snap!(&app, "error_403_identity_mismatch_fetch", &body(r).await);
    let r = api_client()
        .post(app.url(&format!("/self-service/settings?flow={id}")))
        .header("X-Session-Token", &other_token)
        .json(&json!({"method": "profile", "traits": {"email": EMAIL}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    snap!(&app, "error_403_identity_mismatch_submit", &body(r).await);

    // Stale session: refresh required.
    app.clock.advance(3601);
    let fresh = api.create(&app).await;
    let r = api.submit(&app, &fresh, json!({"method": "password", "password": "Quiet-Lagoon-Ember-43"})).await;
    assert_eq!(r.status(), 403);
    snap!(&app, "error_403_refresh_required", &body(r).await);
    // Expired flows (the first flow is now older than 1h).
    let r = api.fetch_raw(&app, &id).await;
    assert_eq!(r.status(), 410);
    snap!(&app, "error_410_fetch_api", &body(r).await);
    let r = ajax.fetch_raw(&app, bflow["id"].as_str().unwrap()).await;
    assert_eq!(r.status(), 410);
    snap!(&app, "error_410_fetch_browser", &body(r).await);
    let r = api.submit(&app, &flow, json!({"method": "profile", "traits": {"email": EMAIL}})).await;
    assert_eq!(r.status(), 410);
    let mut expired = body(r).await;
    assert!(expired["error"]["reason"].as_str().unwrap().starts_with("The self-service flow expired "));
    expired["error"]["reason"] = json!("[The self-service flow expired N minutes ago, initialize a new one.]");
    snap!(&app, "error_410_flow_expired", &expired);

    // AAL: an identity with TOTP and an aal1 session.
    let totp_email = "totp@example.org";
    let created = app.admin_create(totp_email, Some(TOTP_SECRET)).await;
    let weak =
        sign_in(&app, Kind::Api, totp_email, PASSWORD, String::new(), created["id"].as_str().unwrap().into()).await;
    let r = weak.get(&app.url("/self-service/settings/api")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    snap!(&app, "error_403_aal2_required", &body(r).await);
    // Too large a body.
    let big = json!({"method": "profile", "traits": {"email": EMAIL, "name": {"first": "x".repeat(100_000)}}});
    let r = api.submit(&app, &fresh, big).await;
    assert_eq!(r.status(), 413);
    snap!(&app, "error_413_payload_too_large", &body(r).await);
}
