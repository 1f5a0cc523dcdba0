//! Registration: an API registration that signs in (then login and whoami with the new
//! identity), and the registration flow's wire-shape snapshots. (Browser registration with CSRF
//! is in `browser`, bad traits in `bad_input`.)

use crate::both_dbs;
use crate::snap;
use crate::support::*;
use serde_json::json;

/// Register over the API, then the token works for whoami and the password for login.
async fn register_login_whoami(db: Db) {
    let app = spawn_app(db).await;
    let (email, token, id) = app.user().await;
    let who = app.get_with_token("/sessions/whoami", &token).await;
    assert_eq!(who["identity"]["id"], id.as_str());
    assert_eq!(who["authenticator_assurance_level"], "aal1");
    let login = app.login(&email, PASSWORD).await;
    assert!(login["session_token"].as_str().unwrap().starts_with("idf_st_"));
    let bad = app.login(&email, "wrong-password-123").await;
    assert_eq!(message_ids(&bad), vec![4000006]);
}
both_dbs!(register_login_whoami);

/// insta snapshots of the registration flow's wire shapes (redacted as in
/// `support::snapshots`): the API and browser (AJAX) flow, a 400 form error (traits against the
/// schema) and the success body (identity, session, token). SQLite only: the shapes do not
/// depend on the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_wire_shapes() {
    let app = spawn_app(Db::Sqlite).await;
    let c = api_client();

    let r = c.get(app.url("/self-service/registration/api")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let flow = body(r).await;
    snap!(&app, "api_flow_created", &flow);
    let bflow = browser_flow(&app, &browser_client(), "registration").await;
    snap!(&app, "browser_flow_created", &bflow);

    let submit = |email: &str| {
        c.post(app.url(&format!("/self-service/registration?flow={}", flow["id"].as_str().unwrap())))
            .json(&json!({"method": "password", "password": PASSWORD,
                "traits": {"email": email, "name": {"first": "Ana", "last": "Lee"}}}))
            .send()
    };
    let r = submit("not-an-email").await.unwrap();
    assert_eq!(r.status(), 400);
    let invalid = body(r).await;
    assert!(!node_ids(&invalid, "traits.email").is_empty(), "field message on traits.email: {invalid}");
    snap!(&app, "api_flow_400_invalid_traits", &invalid);
    let r = submit("ana@example.org").await.unwrap();
    assert_eq!(r.status(), 200);
    let ok = body(r).await;
    assert_eq!(ok["identity"]["traits"]["email"], "ana@example.org");
    assert!(ok["session_token"].as_str().is_some_and(|t| t.starts_with("idf_st_")));
    snap!(&app, "api_success", &ok);
}
