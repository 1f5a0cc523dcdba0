//! The Rust SDK (`idflow-client`) against the real server over the v1 API: every operation
//! and every error variant it maps.

use crate::both_dbs;
use crate::support::*;
use idflow_client::{Client, Error, Flow};
use serde_json::json;

const NEW_PASSWORD: &str = "another-horse-battery-7";

fn sdk(app: &TestApp) -> Client {
    Client::new(&app.public).unwrap()
}

/// A registered user through the SDK: (email, client holding the session token).
async fn sdk_user(app: &TestApp) -> (String, Client) {
    let email = unique_email();
    let reg =
        sdk(app).register(json!({"email": email, "name": {"first": "Sdk", "last": "User"}}), PASSWORD).await.unwrap();
    assert_eq!(reg.identity.traits["email"], email.as_str());
    let token = reg.session_token.expect("registration signs the user in");
    assert!(!token.is_empty());
    (email, sdk(app).with_token(token))
}

fn message_ids(flow: &Flow) -> Vec<String> {
    flow.messages().into_iter().map(|m| m.id).collect()
}

/// The base32 secret inside an `otpauth://` URI.
fn secret_of(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    u.query_pairs().find(|(k, _)| k == "secret").map(|(_, v)| v.into_owned()).unwrap()
}

async fn sdk_session_lifecycle(db: Db) {
    let app = spawn_app(db).await;
    let (email, client) = sdk_user(&app).await;
    let s = client.get_session().await.unwrap();
    assert!(s.active);
    assert_eq!(s.identity.as_ref().unwrap().traits["email"], email.as_str());

    let login = sdk(&app).login(&email, PASSWORD).await.unwrap();
    assert_ne!(Some(login.session_token.clone()), client.token());
    assert_eq!(login.session.authenticator_assurance_level, "aal1");
    let second = sdk(&app).with_token(&login.session_token);
    assert_eq!(second.get_session().await.unwrap().id, login.session.id);

    // Wrong password: its own variant with the flow's messages.
    let e = sdk(&app).login(&email, "not-the-password-1").await.unwrap_err();
    assert!(matches!(e, Error::InvalidCredentials(_)), "{e:?}");
    assert_eq!((e.code(), e.status()), (Some("AVNOLOGY_AUTH_006"), Some(400)));
    assert!(e.messages().iter().any(|m| m.id == "4000006"), "{:?}", e.messages());

    second.logout().await.unwrap();
    let e = second.get_session().await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized(_)), "{e:?}");
    // The other session is untouched.
    assert!(client.get_session().await.is_ok());
    // Registering the same email again: 012.
    let e = sdk(&app).register(json!({"email": email}), PASSWORD).await.unwrap_err();
    assert!(matches!(e, Error::IdentifierTaken(_)), "{e:?}");
    assert_eq!(e.status(), Some(409));
    // A weak password at registration: 011.
    let e = sdk(&app).register(json!({"email": unique_email()}), "short").await.unwrap_err();
    assert!(matches!(e, Error::WeakPassword(_)), "{e:?}");
}
both_dbs!(sdk_session_lifecycle);

async fn sdk_update_profile(db: Db) {
    let app = spawn_app(db).await;
    let (email, client) = sdk_user(&app).await;
    let flow =
        client.auth().update_profile(json!({"email": email, "name": {"first": "Jane", "last": "Doe"}})).await.unwrap();
    assert!(flow.is_success(), "{flow:?}");
    assert_eq!(flow.kind, "settings");
    assert_eq!(flow.ui.messages.len(), 1);
    assert_eq!(flow.ui.messages[0].id, "1050001");
    assert_eq!(flow.ui.messages[0].text, "Your profile has been updated.");
    assert_eq!(flow.ui.messages[0].kind, "success");
    assert_eq!(flow.identity.as_ref().unwrap().traits["name"]["first"], "Jane");
    assert_eq!(flow.ui.action, format!("{}/v1/flows/settings/{}:submit", app.public, flow.id));
    let s = client.get_session().await.unwrap();
    assert_eq!(s.identity.unwrap().traits["name"]["last"], "Doe");

    // Schema violations: 010 with the field messages under the flow.
    let e = client.auth().update_profile(json!({"email": "not-an-email"})).await.unwrap_err();
    assert!(matches!(e, Error::InvalidTraits(_)), "{e:?}");
    assert_eq!((e.code(), e.status()), (Some("AVNOLOGY_AUTH_010"), Some(400)));
    let flow = e.flow().expect("continue_flow");
    let email_node = flow.node("traits.email").unwrap();
    assert!(!email_node.messages.is_empty(), "{email_node:?}");
    assert!(email_node.messages.iter().all(|m| m.kind == "error" && m.id.starts_with("4000")));
    // Another account's email: 012 (409).
    let (other_email, _) = sdk_user(&app).await;
    let e = client.auth().update_profile(json!({"email": other_email})).await.unwrap_err();
    assert!(matches!(e, Error::IdentifierTaken(_)), "{e:?}");
    assert_eq!((e.code(), e.status()), (Some("AVNOLOGY_AUTH_012"), Some(409)));
    assert!(e.messages().iter().any(|m| m.id == "4000007"), "{:?}", e.messages());
    // Nothing was changed by the failures.
    let s = client.get_session().await.unwrap();
    assert_eq!(s.identity.unwrap().traits["email"], email.as_str());
}
both_dbs!(sdk_update_profile);

async fn sdk_change_password(db: Db) {
    let app = spawn_app(db).await;
    let (email, client) = sdk_user(&app).await;
    let e = client.auth().change_password("short").await.unwrap_err();
    let Error::WeakPassword(api) = &e else { panic!("expected WeakPassword, got {e:?}") };
    assert_eq!(api.code, "AVNOLOGY_AUTH_011");
    assert_eq!(api.status, 400);
    assert_eq!(api.message, "New password too weak");
    assert!(!api.reason.is_empty());
    let flow = api.flow.as_ref().expect("continue_flow");
    assert_eq!(flow.kind, "settings");
    assert_eq!(flow.state, "show_form");
    let pw = flow.node("password").unwrap();
    assert!(pw.messages.iter().any(|m| m.id == "4000032"), "{pw:?}");
    assert!(api.error_messages().iter().any(|m| m.id == "4000032"));

    let flow = client.auth().change_password(NEW_PASSWORD).await.unwrap();
    assert!(flow.is_success());
    assert!(message_ids(&flow).contains(&"1050001".to_string()));
    assert!(sdk(&app).login(&email, NEW_PASSWORD).await.is_ok());
    let e = sdk(&app).login(&email, PASSWORD).await.unwrap_err();
    assert!(matches!(e, Error::InvalidCredentials(_)), "{e:?}");
    // The session that made the change is kept.
    assert!(client.get_session().await.is_ok());
}
both_dbs!(sdk_change_password);

async fn sdk_totp_lifecycle(db: Db) {
    let app = spawn_app(db).await;
    let (email, client) = sdk_user(&app).await;
    let e = client.auth().confirm_totp("123456").await.unwrap_err();
    assert!(matches!(e, Error::NoTotpEnrollment), "{e:?}");
    let e = client.auth().remove_totp().await.unwrap_err();
    assert!(matches!(e, Error::InvalidTotpCode(_)), "no TOTP to remove: {e:?}");

    let en = client.auth().enroll_totp().await.unwrap();
    assert_eq!(&en.qr_png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    assert_eq!(en.secret.len(), 32, "160-bit base32 secret");
    assert!(en.otpauth_url.starts_with("otpauth://totp/"), "{}", en.otpauth_url);
    assert_eq!(secret_of(&en.otpauth_url), en.secret);
    assert!(
        en.otpauth_url.contains(&email.replace('@', "%40")) || en.otpauth_url.contains(&email),
        "{}",
        en.otpauth_url
    );
    assert_eq!(en.flow.state, "show_form");
    assert!(en.flow.errors().is_empty(), "enrolment start is no error: {:?}", en.flow.errors());
    let qr = en.flow.node("totp_qr").unwrap();
    assert_eq!(qr.kind, "image");
    assert_eq!((qr.attributes["width"].as_u64(), qr.attributes["height"].as_u64()), (Some(256), Some(256)));
    assert!(!format!("{en:?}").contains(&en.secret), "Debug redacts the secret");

    // Wrong code: 007, and it can be retried on the same enrolment.
    let wrong = wrong_totp_code(&en.secret, &app);
    let e = client.auth().confirm_totp(&wrong).await.unwrap_err();
    let Error::InvalidTotpCode(api) = &e else { panic!("expected InvalidTotpCode, got {e:?}") };
    assert_eq!((api.code.as_str(), api.status), ("AVNOLOGY_AUTH_007", 400));
    assert!(api.messages().iter().any(|m| m.id == "4000008"), "{:?}", api.messages());
    assert_eq!(api.flow.as_ref().unwrap().id, en.flow_id);

    let done = client.auth().confirm_totp(&totp_code(&en.secret, &app.clock)).await.unwrap();
    assert!(done.is_success());
    assert!(done.node("totp_unlink").is_some());
    let s = client.get_session().await.unwrap();
    assert_eq!(s.authenticator_assurance_level, "aal2");
    let e = client.auth().confirm_totp("123456").await.unwrap_err();
    assert!(matches!(e, Error::NoTotpEnrollment), "the enrolment is finished: {e:?}");
    let e = client.auth().enroll_totp().await.unwrap_err();
    assert!(matches!(e, Error::TotpAlreadyEnrolled), "{e:?}");

    let flow = client.auth().remove_totp().await.unwrap();
    assert!(flow.is_success());
    assert!(flow.node("totp_qr").is_some(), "enrolment is offered again");
    // Enrolling again gives a new secret, confirmed with the explicit flow id.
    let en2 = client.auth().enroll_totp().await.unwrap();
    assert_ne!(en2.secret, en.secret);
    app.clock.advance(30);
    let done = client.auth().confirm_totp_in(&en2.flow_id, &totp_code(&en2.secret, &app.clock)).await.unwrap();
    assert!(done.is_success());
}
both_dbs!(sdk_totp_lifecycle);

/// An account with TOTP signed in with the password only: settings need the second factor
/// (102 `session_aal2_required` with the v1 login URL); `login_totp` completes it.
async fn sdk_second_factor_required(db: Db) {
    let app = spawn_app(db).await;
    let email = unique_email();
    let secret = new_totp_secret();
    app.admin_create(&email, Some(&secret)).await;
    let login = sdk(&app).login(&email, PASSWORD).await.unwrap();
    assert_eq!(login.session.authenticator_assurance_level, "aal1");
    let client = sdk(&app).with_token(&login.session_token);

    let e = client.create_settings_flow(None).await.unwrap_err();
    let Error::SecondFactorRequired { login_url, error } = &e else {
        panic!("expected SecondFactorRequired, got {e:?}")
    };
    assert_eq!(login_url, &format!("{}/v1/flows/login?aal=aal2", app.public));
    assert_eq!((error.code.as_str(), error.status), ("AVNOLOGY_AUTH_102", 403));
    assert_eq!(error.detail("reason"), Some("session_aal2_required"));
    assert_eq!(e.login_url(), Some(login_url.as_str()));
    let e = client.auth().change_password(NEW_PASSWORD).await.unwrap_err();
    assert!(matches!(e, Error::SecondFactorRequired { .. }), "{e:?}");

    let e = client.login_totp(&wrong_totp_code(&secret, &app)).await.unwrap_err();
    assert!(matches!(e, Error::InvalidTotpCode(_)), "{e:?}");
    let done = client.login_totp(&totp_code(&secret, &app.clock)).await.unwrap();
    assert_eq!(done.session.id, login.session.id, "same session, stepped up");
    assert_eq!(done.session.authenticator_assurance_level, "aal2");
    // The token was rotated; the client switched to the new one.
    assert_ne!(done.session_token, login.session_token);
    assert_eq!(client.token().as_deref(), Some(done.session_token.as_str()));
    let e = sdk(&app).with_token(&login.session_token).get_session().await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized(_)), "the old token is gone: {e:?}");
    assert_eq!(client.get_session().await.unwrap().authenticator_assurance_level, "aal2");
    assert!(client.auth().change_password(NEW_PASSWORD).await.unwrap().is_success());
}
both_dbs!(sdk_second_factor_required);

/// A session older than the privileged max age (1 h): 102 `session_refresh_required` with the
/// v1 login URL; `refresh_login` makes it privileged again.
async fn sdk_reauthentication_required(db: Db) {
    let app = spawn_app(db).await;
    let (email, client) = sdk_user(&app).await;
    app.clock.advance(3601);
    let e = client.auth().change_password(NEW_PASSWORD).await.unwrap_err();
    let Error::ReauthenticationRequired { login_url, error } = &e else {
        panic!("expected ReauthenticationRequired, got {e:?}")
    };
    assert_eq!(login_url, &format!("{}/v1/flows/login?refresh=true", app.public));
    assert_eq!((error.code.as_str(), error.status), ("AVNOLOGY_AUTH_102", 403));
    assert_eq!(error.detail("reason"), Some("session_refresh_required"));
    assert_eq!(e.code(), Some("AVNOLOGY_AUTH_102"));
    let e = client.auth().enroll_totp().await.unwrap_err();
    assert!(matches!(e, Error::ReauthenticationRequired { .. }), "{e:?}");
    // Nothing changed.
    assert!(sdk(&app).login(&email, PASSWORD).await.is_ok());

    let e = client.refresh_login(&email, "wrong-password-123").await.unwrap_err();
    assert!(matches!(e, Error::InvalidCredentials(_)), "{e:?}");
    let old_token = client.token().unwrap();
    let old_session = client.get_session().await.unwrap();
    let refreshed = client.refresh_login(&email, PASSWORD).await.unwrap();
    assert_eq!(refreshed.session.id, old_session.id, "the same session, re-authenticated");
    assert_ne!(refreshed.session.authenticated_at, old_session.authenticated_at);
    assert_eq!(client.token().as_deref(), Some(refreshed.session_token.as_str()));
    if refreshed.session_token != old_token {
        let e = sdk(&app).with_token(&old_token).get_session().await.unwrap_err();
        assert!(matches!(e, Error::Unauthorized(_)), "a rotated token is gone: {e:?}");
    }
    assert!(client.auth().change_password(NEW_PASSWORD).await.unwrap().is_success());
    assert!(sdk(&app).login(&email, NEW_PASSWORD).await.is_ok());
}
both_dbs!(sdk_reauthentication_required);

/// No token, an unknown token, a revoked token, a deleted identity's token: 005 everywhere.
async fn sdk_unauthorized(db: Db) {
    let app = spawn_app(db).await;
    let (_, client) = sdk_user(&app).await;
    let flow = client.create_settings_flow(None).await.unwrap();
    for c in [sdk(&app), sdk(&app).with_token("idf_st_not-a-real-token")] {
        let results = [
            c.create_settings_flow(None).await.map(|_| ()),
            c.get_settings_flow(&flow.id).await.map(|_| ()),
            c.submit_settings_flow(&flow.id, "profile", json!({"traits": {"email": unique_email()}})).await.map(|_| ()),
            c.auth().change_password(NEW_PASSWORD).await.map(|_| ()),
            c.get_session().await.map(|_| ()),
            c.logout().await,
        ];
        for r in results {
            let e = r.unwrap_err();
            assert!(matches!(e, Error::Unauthorized(_)), "{e:?}");
            assert_eq!((e.code(), e.status()), (Some("AVNOLOGY_AUTH_005"), Some(401)));
        }
    }
    // The token of an identity deleted by an administrator.
    let id = client.get_session().await.unwrap().identity.unwrap().id;
    let resp = api_client().delete(app.admin_url(&format!("/admin/identities/{id}"))).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    let e = client.submit_settings_flow(&flow.id, "password", json!({"password": NEW_PASSWORD})).await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized(_)), "{e:?}");
    let e = client.create_settings_flow(None).await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized(_)), "{e:?}");
}
both_dbs!(sdk_unauthorized);

/// Settings flows live one hour: later submits are 009 with a replacement flow; fetching is
/// 009 too.
async fn sdk_flow_expired(db: Db) {
    let app = spawn_app(db).await;
    let (email, client) = sdk_user(&app).await;
    let flow = client.create_settings_flow(None).await.unwrap();
    app.clock.advance(3601);
    let e = client.submit_settings_flow(&flow.id, "profile", json!({"traits": {"email": email}})).await.unwrap_err();
    let Error::FlowExpired { use_flow_id, error } = &e else { panic!("expected FlowExpired, got {e:?}") };
    assert_eq!((error.code.as_str(), error.status), ("AVNOLOGY_AUTH_009", 400));
    let fresh = use_flow_id.clone().expect("a replacement flow");
    assert_ne!(fresh, flow.id);
    let e = client.get_settings_flow(&flow.id).await.unwrap_err();
    assert!(matches!(e, Error::FlowExpired { .. }), "{e:?}");
    // The replacement works.
    let f = client.get_settings_flow(&fresh).await.unwrap();
    assert_eq!(f.id, fresh);
    let done = client
        .submit_settings_flow(&fresh, "profile", json!({"traits": {"email": email, "name": {"first": "Late"}}}))
        .await
        .unwrap();
    assert!(done.is_success());
}
both_dbs!(sdk_flow_expired);

/// Unknown flows and other users' flows: 004; `return_to` off the allow-list: 013.
async fn sdk_not_found_and_return_to(db: Db) {
    let app = spawn_app(db).await;
    let (_, alice) = sdk_user(&app).await;
    let (_, bob) = sdk_user(&app).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let e = alice.get_settings_flow(&unknown).await.unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    assert_eq!((e.code(), e.status()), (Some("AVNOLOGY_AUTH_004"), Some(404)));
    let e = alice.submit_settings_flow(&unknown, "password", json!({"password": NEW_PASSWORD})).await.unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    let bobs = bob.create_settings_flow(None).await.unwrap();
    let e = alice.get_settings_flow(&bobs.id).await.unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    let e = alice.submit_settings_flow(&bobs.id, "password", json!({"password": NEW_PASSWORD})).await.unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");

    let e = alice.create_settings_flow(Some("https://evil.example.com/after")).await.unwrap_err();
    assert!(matches!(e, Error::Api(_)), "{e:?}");
    assert_eq!((e.code(), e.status()), (Some("AVNOLOGY_AUTH_013"), Some(400)));
    let ok = format!("{}/ui/welcome", app.public);
    let flow = alice.create_settings_flow(Some(&ok)).await.unwrap();
    assert_eq!(flow.return_to.as_deref(), Some(ok.as_str()));
    assert!(flow.request_url.contains("return_to="), "{}", flow.request_url);
}
both_dbs!(sdk_not_found_and_return_to);

/// Too many wrong TOTP codes: 029 with `Retry-After`.
async fn sdk_rate_limited(db: Db) {
    let app = spawn_app_with(db, |c| c.limits.second_factor_attempts = 2).await;
    let (_, client) = sdk_user(&app).await;
    let en = client.auth().enroll_totp().await.unwrap();
    let wrong = wrong_totp_code(&en.secret, &app);
    for _ in 0..2 {
        let e = client.auth().confirm_totp(&wrong).await.unwrap_err();
        assert!(matches!(e, Error::InvalidTotpCode(_)), "{e:?}");
    }
    let e = client.auth().confirm_totp(&totp_code(&en.secret, &app.clock)).await.unwrap_err();
    let Error::RateLimited { retry_after, error } = &e else { panic!("expected RateLimited, got {e:?}") };
    assert_eq!((error.code.as_str(), error.status), ("AVNOLOGY_AUTH_029", 429));
    assert!(retry_after.is_some_and(|s| s > 0), "{retry_after:?}");
}
both_dbs!(sdk_rate_limited);

/// Recovery codes through the low-level calls: regenerate shows codes, confirm saves them;
/// confirming without codes is 008.
async fn sdk_lookup_secret(db: Db) {
    let app = spawn_app(db).await;
    let (_, client) = sdk_user(&app).await;
    let flow = client.create_settings_flow(None).await.unwrap();
    let e = client
        .submit_settings_flow(&flow.id, "lookup_secret", json!({"lookup_secret_confirm": true}))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidSecondFactor(_)), "{e:?}");
    assert_eq!((e.code(), e.status()), (Some("AVNOLOGY_AUTH_008"), Some(400)));

    let shown = client
        .submit_settings_flow(&flow.id, "lookup_secret", json!({"lookup_secret_regenerate": true}))
        .await
        .unwrap();
    assert_eq!(shown.state, "show_form");
    let codes = shown.node("lookup_secret_codes").expect("codes are shown");
    assert_eq!(codes.kind, "text");
    assert!(shown.node("lookup_secret_confirm").is_some());
    let done =
        client.submit_settings_flow(&flow.id, "lookup_secret", json!({"lookup_secret_confirm": true})).await.unwrap();
    assert!(done.is_success());
    assert!(done.node("lookup_secret_reveal").is_some(), "{:?}", done.ui.nodes);
}
both_dbs!(sdk_lookup_secret);

/// Client-side failures: nothing listening (transport error), a server that does not speak v1
/// (the admin port), a bad base URL.
async fn sdk_client_side_errors(db: Db) {
    let app = spawn_app(db).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        format!("http://127.0.0.1:{port}")
    };
    let e = Client::new(&closed).unwrap().login("a@example.com", PASSWORD).await.unwrap_err();
    assert!(matches!(e, Error::Http(_)), "{e:?}");
    assert_eq!(e.code(), None);

    let e = Client::new(&app.admin).unwrap().with_token("idf_st_x").get_session().await.unwrap_err();
    assert!(matches!(e, Error::UnexpectedResponse { .. }), "{e:?}");
    assert!(e.status().is_some_and(|s| s >= 300), "{e:?}");

    let e = Client::new("not a url").unwrap_err();
    assert!(matches!(e, Error::InvalidBaseUrl { .. }), "{e:?}");
    // A base URL with a trailing slash or a path prefix is fine.
    let c = Client::new(format!("{}/", app.public)).unwrap();
    let (email, _) = sdk_user(&app).await;
    assert!(c.login(&email, PASSWORD).await.is_ok());
}
both_dbs!(sdk_client_side_errors);

/// The account calls of the SDK: the activity log (paged), the data export, and a scheduled
/// deletion read and cancelled (the deletion itself is a settings submit; it ends the session,
/// so the cancel uses a new sign-in).
async fn sdk_account_activity_export_and_deletion(db: Db) {
    let app = spawn_app(db).await;
    let (email, client) = sdk_user(&app).await;
    client.auth().change_password("Sdk-Harbor-Violet-88").await.unwrap();
    let page = client.activity(1, None).await.unwrap();
    assert_eq!(page.activity.len(), 1);
    let token = page.next_page_token.clone().expect("more than one entry");
    let rest = client.activity(100, Some(&token)).await.unwrap();
    let all: Vec<_> = page.activity.iter().chain(&rest.activity).collect();
    assert!(all.iter().any(|e| e.kind == "settings_changed" && e.method.as_deref() == Some("password")), "{all:?}");
    assert!(all.iter().any(|e| e.kind == "registration"), "{all:?}");
    assert!(!rest.activity.iter().any(|e| e.id == page.activity[0].id), "pages do not overlap");
    assert!(rest.next_page_token.is_none());
    assert!(matches!(client.activity(10, Some("not-a-token")).await, Err(Error::Api(_))));

    let export = client.export_account().await.unwrap();
    assert_eq!(export["identity"]["traits"]["email"], email.as_str());
    assert!(export["activity"].as_array().is_some_and(|a| a.len() >= 2), "{export}");
    assert!(!export.to_string().contains("$argon2"), "no hash in the export");

    assert!(!client.account_deletion().await.unwrap().scheduled);
    let flow = client.create_settings_flow(None).await.unwrap();
    client.submit_settings_flow(&flow.id, "delete_account", json!({"delete_account_confirm": true})).await.unwrap();
    assert!(matches!(client.get_session().await, Err(Error::Unauthorized(_))), "every session ended");
    let login = sdk(&app).login(&email, "Sdk-Harbor-Violet-88").await.unwrap();
    let again = sdk(&app).with_token(&login.session_token);
    let state = again.account_deletion().await.unwrap();
    assert!(state.scheduled && state.delete_after.is_some(), "{state:?}");
    let cancelled = again.cancel_account_deletion().await.unwrap();
    assert!(!cancelled.scheduled);
    assert!(!again.account_deletion().await.unwrap().scheduled);
}
both_dbs!(sdk_account_activity_export_and_deletion);
