//! Adding and removing factors in settings (security checklist T11, T13, T20): an enrolment is
//! not a sign-in (the privileged window and the session lifetime stay), recovery codes shown by
//! the server grant no AAL, removing a second factor needs aal2 whatever the method, and
//! removing any factor ends the identity's other sessions.

use crate::both_dbs;
use crate::support::*;
use serde_json::{Value, json};

async fn session_of(app: &TestApp, u: &User) -> Value {
    u.whoami(app).await.json().await.unwrap()
}

fn methods(session: &Value) -> Vec<String> {
    session["authentication_methods"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["method"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Enrol TOTP through the settings flow of `u`.
async fn enrol_totp(app: &TestApp, u: &User) {
    let flow = u.create(app).await;
    let code = totp_code(&totp_secret(&flow), &app.clock);
    let r = u.submit(app, &flow, json!({"method": "totp", "totp_code": code})).await;
    assert!(r.status() == 200 || r.status() == 303, "TOTP enrolment: {}", r.status());
}

/// Generate and confirm recovery codes through the settings flow of `u`.
async fn enrol_recovery_codes(app: &TestApp, u: &User) -> reqwest::Response {
    let flow = u.create(app).await;
    let r = u.submit(app, &flow, json!({"method": "lookup_secret", "lookup_secret_regenerate": true})).await;
    assert!(r.status() == 200 || r.status() == 303);
    u.submit(app, &flow, json!({"method": "lookup_secret", "lookup_secret_confirm": true})).await
}

async fn enrolment_is_not_a_sign_in(db: Db) {
    let app = spawn_app(db).await;
    let u = user(&app, Kind::Api).await;
    let before = session_of(&app, &u).await;
    // Later than the sign-in: a renewed window would move to this time.
    app.clock.advance(600);
    enrol_totp(&app, &u).await;
    let after = session_of(&app, &u).await;
    assert_eq!(after["authenticator_assurance_level"], "aal2", "the new factor counts for the session");
    assert_eq!(after["authenticated_at"], before["authenticated_at"], "the privileged window does not move");
    assert_eq!(after["expires_at"], before["expires_at"], "the session lifetime does not move");
    assert!(methods(&after).contains(&"totp".to_string()));
}
both_dbs!(enrolment_is_not_a_sign_in);

async fn recovery_codes_grant_no_aal(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.selfservice.flows.settings.required_aal = idflow_core::config::RequiredAal::Aal1;
    })
    .await;
    let u = user(&app, Kind::Api).await;
    let r = enrol_recovery_codes(&app, &u).await;
    assert_eq!(r.status(), 200);
    let s = session_of(&app, &u).await;
    assert_eq!(s["authenticator_assurance_level"], "aal1", "codes the server showed prove nothing: {s}");
    assert!(!methods(&s).contains(&"lookup_secret".to_string()), "{s}");
}
both_dbs!(recovery_codes_grant_no_aal);

async fn removing_a_second_factor_needs_aal2(db: Db) {
    // Settings and whoami admit aal1 sessions: only the removal itself asks for aal2.
    let app = spawn_app_with(db, |c| {
        c.selfservice.flows.settings.required_aal = idflow_core::config::RequiredAal::Aal1;
        c.session.whoami.required_aal = idflow_core::config::RequiredAal::Aal1;
    })
    .await;
    let u = user(&app, Kind::Api).await;
    enrol_totp(&app, &u).await;
    assert_eq!(enrol_recovery_codes(&app, &u).await.status(), 200);
    // A new password-only session of the same account (aal1).
    let weak = sign_in(&app, Kind::Api, &u.email, PASSWORD, String::new(), u.identity_id.clone()).await;
    assert_eq!(session_of(&app, &weak).await["authenticator_assurance_level"], "aal1");
    let flow = weak.create(&app).await;
    let r = weak.submit(&app, &flow, json!({"method": "lookup_secret", "lookup_secret_disable": true})).await;
    assert_eq!(r.status(), 403, "disabling recovery codes at aal1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["id"], "session_aal2_required", "{body}");
    let r = weak.submit(&app, &flow, json!({"method": "totp", "totp_unlink": true})).await;
    assert_eq!(r.status(), 403, "removing TOTP at aal1");
    // The aal2 session may.
    let flow = u.create(&app).await;
    let r = u.submit(&app, &flow, json!({"method": "lookup_secret", "lookup_secret_disable": true})).await;
    assert_eq!(r.status(), 200);
}
both_dbs!(removing_a_second_factor_needs_aal2);

async fn removing_a_factor_ends_other_sessions(db: Db) {
    let app = spawn_app(db).await;
    let u = user(&app, Kind::Api).await;
    enrol_totp(&app, &u).await;
    let other = app.login(&u.email, PASSWORD).await["session_token"].as_str().unwrap().to_string();
    assert_eq!(whoami(&app, &other).await.status(), 403, "alive, though it must step up");
    let flow = u.create(&app).await;
    let r = u.submit(&app, &flow, json!({"method": "totp", "totp_unlink": true})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(whoami(&app, &other).await.status(), 401, "the other session ended with the factor");
    assert_eq!(u.whoami(&app).await.status(), 200, "the session that removed it stays");
    // Adding a factor ends nothing.
    let third = app.login(&u.email, PASSWORD).await["session_token"].as_str().unwrap().to_string();
    enrol_totp(&app, &u).await;
    assert_ne!(whoami(&app, &third).await.status(), 401);
}
both_dbs!(removing_a_factor_ends_other_sessions);

/// The stored credentials of an identity (admin API, with the secrets' configs), to prove that
/// a refused change persisted nothing.
async fn stored_credentials(app: &TestApp, id: &str) -> Value {
    let url = app.admin_url(&format!(
        "/admin/identities/{id}?include_credential=password&include_credential=totp&include_credential=lookup_secret"
    ));
    let v: Value = api_client().get(url).send().await.unwrap().json().await.unwrap();
    v["credentials"].clone()
}

/// One settings action of the matrix: its name and body (recovery codes are generated first,
/// then confirmed, on the same flow).
fn matrix_actions() -> Vec<(&'static str, Vec<Value>)> {
    vec![
        ("password change", vec![json!({"method": "password", "password": "Matrix-Harbor-Violet-77"})]),
        ("identifier change", vec![json!({"method": "profile", "traits": {"email": ""}})]),
        ("TOTP removal", vec![json!({"method": "totp", "totp_unlink": true})]),
        (
            "recovery codes regenerated",
            vec![
                json!({"method": "lookup_secret", "lookup_secret_regenerate": true}),
                json!({"method": "lookup_secret", "lookup_secret_confirm": true}),
            ],
        ),
        ("recovery codes disabled", vec![json!({"method": "lookup_secret", "lookup_secret_disable": true})]),
    ]
}

/// Checklist T13 and T20 as one matrix: every settings action on an account with TOTP and
/// recovery codes × a fresh or stale session × aal1 or aal2 (`required_aal: aal1`, so aal1
/// sessions reach the form). Stale: re-authentication first, nothing persisted. Fresh aal1:
/// any change of a second factor (adding, replacing or removing) needs aal2, nothing persisted;
/// the password and identifier changes go through. Fresh aal2: everything goes through.
/// (WebAuthn and passkeys: `webauthn::webauthn_register_needs_privileged_session` and the
/// factor tests there.)
async fn settings_privilege_and_aal_matrix(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.selfservice.flows.settings.required_aal = idflow_core::config::RequiredAal::Aal1;
        c.session.whoami.required_aal = idflow_core::config::RequiredAal::Aal1;
    })
    .await;
    for (name, bodies) in matrix_actions() {
        for stale in [false, true] {
            for aal2 in [false, true] {
                let case = format!(
                    "{name}, {} session at {}",
                    if stale { "stale" } else { "fresh" },
                    if aal2 { "aal2" } else { "aal1" }
                );
                // A fresh account with TOTP and recovery codes for every case.
                let owner = user(&app, Kind::Api).await;
                enrol_totp(&app, &owner).await;
                assert_eq!(enrol_recovery_codes(&app, &owner).await.status(), 200, "{case}");
                let u = if aal2 {
                    owner
                } else {
                    sign_in(&app, Kind::Api, &owner.email, PASSWORD, String::new(), owner.identity_id.clone()).await
                };
                let level = session_of(&app, &u).await["authenticator_assurance_level"].clone();
                assert_eq!(level, if aal2 { "aal2" } else { "aal1" }, "{case}");
                if stale {
                    app.clock.advance(3601);
                }
                let before = stored_credentials(&app, &u.identity_id).await;
                let traits_before = admin_identity(&app, &u.identity_id).await["traits"].clone();
                let flow = u.create(&app).await;
                let mut last = None;
                for body in &bodies {
                    let mut body = body.clone();
                    if body["method"] == "profile" {
                        // A new address per case (the earlier cases took theirs).
                        body["traits"]["email"] = json!(unique_email());
                    }
                    let r = u.submit(&app, &flow, body).await;
                    let status = r.status().as_u16();
                    let v: Value = r.json().await.unwrap_or(Value::Null);
                    last = Some((status, v));
                    if status != 200 {
                        break;
                    }
                }
                let (status, v) = last.unwrap();
                let second_factor = !matches!(name, "password change" | "identifier change");
                let (want_status, want_error) = match (stale, aal2, second_factor) {
                    (true, _, _) => (403, Some("session_refresh_required")),
                    (false, false, true) => (403, Some("session_aal2_required")),
                    _ => (200, None),
                };
                assert_eq!(status, want_status, "{case}: {v}");
                if let Some(id) = want_error {
                    assert_eq!(error_id(&v), id, "{case}: {v}");
                    assert_eq!(stored_credentials(&app, &u.identity_id).await, before, "{case}: credentials changed");
                    assert_eq!(
                        admin_identity(&app, &u.identity_id).await["traits"],
                        traits_before,
                        "{case}: traits changed"
                    );
                } else if name != "identifier change" {
                    assert_ne!(stored_credentials(&app, &u.identity_id).await, before, "{case}: nothing changed");
                }
            }
        }
    }
}
both_dbs!(settings_privilege_and_aal_matrix);
