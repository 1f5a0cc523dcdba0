//! A revoked session stays revoked: a request that loaded the session before the revocation
//! (logout-token refresh, refresh/step-up login, settings enrolment) cannot write it back.
//! The revocation lands between the load and the update, deterministically: the test loads
//! the session through the engine, revokes it over HTTP, then lets the stale copy write.

use crate::both_dbs;
use crate::support::*;
use idflow_core::store::{Commit, StoreError};
use serde_json::Value;

async fn whoami_status(app: &TestApp, token: &str) -> u16 {
    api_client()
        .get(app.url("/sessions/whoami"))
        .header("X-Session-Token", token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn admin_session(app: &TestApp, id: uuid::Uuid) -> Value {
    api_client().get(app.admin_url(&format!("/admin/sessions/{id}"))).send().await.unwrap().json().await.unwrap()
}

/// `DELETE /admin/sessions/{id}` between load and update: the logout-token refresh and a
/// refresh login (extended, rotated session) both fail and the session stays inactive.
async fn session_revoked_by_admin_stays_revoked(db: Db) {
    let app = spawn_app(db).await;
    let (_, token, _) = app.user().await;
    let a = app.engine.authenticate(&token).await.unwrap().expect("an active session");
    // The revocation lands after the load.
    let r = api_client().delete(app.admin_url(&format!("/admin/sessions/{}", a.session.id))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    // The browser logout-token refresh writes the stale copy: refused as unauthenticated.
    let e = app.engine.new_logout_token(&a).await.expect_err("a revoked session is not updated");
    assert_eq!(e.kind.status(), 401, "{e:?}");
    // A refresh login on the stale copy (new expiry, rotated token).
    let issued = app.engine.extend_session(&a.session, "password", true);
    let r = app.engine.store.commit(Commit { update_session: Some(&issued.session), ..Default::default() }).await;
    assert!(matches!(r, Err(StoreError::SessionRevoked)), "{r:?}");
    assert_eq!(whoami_status(&app, &token).await, 401);
    assert_eq!(whoami_status(&app, &issued.token).await, 401, "the rotated token never became valid");
    assert_eq!(admin_session(&app, a.session.id).await["active"], false);
}
both_dbs!(session_revoked_by_admin_stays_revoked);

/// "Revoke other sessions" (`DELETE /sessions`) between the load of another session and its
/// update: the other session stays revoked.
async fn session_revoked_by_other_device_stays_revoked(db: Db) {
    let app = spawn_app(db).await;
    let (email, token, _) = app.user().await;
    let other = app.login(&email, PASSWORD).await["session_token"].as_str().unwrap().to_string();
    let stale = app.engine.authenticate(&other).await.unwrap().expect("an active session");
    let r = api_client().delete(app.url("/sessions")).header("X-Session-Token", &token).send().await.unwrap();
    assert_eq!(r.status(), 200, "revoke other sessions");
    let issued = app.engine.extend_session(&stale.session, "totp", false);
    let r = app.engine.store.commit(Commit { update_session: Some(&issued.session), ..Default::default() }).await;
    assert!(matches!(r, Err(StoreError::SessionRevoked)), "{r:?}");
    assert_eq!(whoami_status(&app, &other).await, 401);
    assert_eq!(whoami_status(&app, &token).await, 200, "the caller's session is untouched");
    // An update of a live session still works (the compare-and-set does not block it).
    let live = app.engine.authenticate(&token).await.unwrap().unwrap();
    app.engine.new_logout_token(&live).await.expect("a live session is updated");
}
both_dbs!(session_revoked_by_other_device_stays_revoked);
