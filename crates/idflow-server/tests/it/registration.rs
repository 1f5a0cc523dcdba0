//! Smoke tests of the harness and the basic API flows.

use crate::both_dbs;
use crate::support::*;

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
