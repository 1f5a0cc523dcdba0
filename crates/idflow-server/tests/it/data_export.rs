//! The data export (issue #14 item 4): the caller's traits, addresses, credential kinds with
//! dates, sessions and activity as a JSON download, through the Kratos extension route (token
//! and cookie) and the v1 route, never with a hash, secret or key material; the settings page
//! links to it.

use crate::both_dbs;
use crate::support::*;
use reqwest::header::CONTENT_DISPOSITION;
use serde_json::{Value, json};

/// Generate and confirm recovery codes in the settings flow of `u`.
async fn enrol_recovery_codes(app: &TestApp, u: &User) {
    let flow = u.create(app).await;
    let r = u.submit(app, &flow, json!({"method": "lookup_secret", "lookup_secret_regenerate": true})).await;
    let (_, shown) = u.outcome(app, r).await;
    assert_eq!(lookup_codes(&shown).len(), 12, "{shown}");
    let r = u.submit(app, &shown, json!({"method": "lookup_secret", "lookup_secret_confirm": true})).await;
    assert!(r.status() == 200 || r.status() == 303, "{}", r.status());
}

async fn export_has_the_account_data_and_no_secrets(db: Db) {
    let app = spawn_app(db).await;
    let u = user(&app, Kind::Api).await;
    enrol_recovery_codes(&app, &u).await;
    let other = app.login(&u.email, PASSWORD).await["session_token"].as_str().unwrap().to_string();
    assert!(!other.is_empty());

    let r = api_client()
        .get(app.url("/self-service/settings/export"))
        .header("X-Session-Token", &u.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cd = r.headers().get(CONTENT_DISPOSITION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(cd.starts_with("attachment; filename=\"account-data-") && cd.ends_with(".json\""), "{cd}");
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();

    assert_eq!(v["identity"]["id"], u.identity_id.as_str());
    assert_eq!(v["identity"]["traits"]["email"], u.email.as_str());
    assert!(v["identity"]["delete_after"].is_null());
    let va = &v["addresses"]["verifiable"][0];
    assert_eq!(va["value"], u.email.as_str(), "{v}");
    assert_eq!(va["verified"], false);
    assert!(va["created_at"].is_string() && va.get("verified_at").is_some());
    assert_eq!(v["addresses"]["recovery"][0]["value"], u.email.as_str());

    let creds = v["credentials"].as_array().unwrap();
    let kinds: Vec<&str> = creds.iter().filter_map(|c| c["type"].as_str()).collect();
    assert!(kinds.contains(&"password") && kinds.contains(&"lookup_secret"), "{kinds:?}");
    let pw = creds.iter().find(|c| c["type"] == "password").unwrap();
    assert_eq!(pw["identifiers"], json!([u.email]));
    assert!(pw["created_at"].is_string() && pw["updated_at"].is_string());
    let codes = creds.iter().find(|c| c["type"] == "lookup_secret").unwrap();
    assert_eq!(codes["codes"], json!({"unused": 12, "total": 12}));

    let sessions = v["sessions"].as_array().unwrap();
    assert!(sessions.len() >= 2, "{v}");
    let current = sessions.iter().find(|s| s["current"] == true).expect("the current session");
    assert_eq!(current["active"], true);
    assert_eq!(current["aal"], "aal1");
    assert!(current["authenticated_at"].is_string() && current["expires_at"].is_string());
    assert!(current["devices"][0]["user_agent"].is_string(), "{current}");
    assert_eq!(current["authentication_methods"][0]["method"], "password");
    // The activity log: at least the registration and the sign-ins, newest first, no secrets.
    let activity = v["activity"].as_array().unwrap();
    assert!(activity.iter().any(|e| e["kind"] == "registration"), "{v}");
    assert!(activity.iter().any(|e| e["kind"] == "login" && e["outcome"] == "success"), "{v}");
    assert!(activity.iter().all(|e| e["at"].is_string() && e["ip_address"].is_string()), "{v}");

    // No secret of any kind.
    for needle in ["$argon2", "hashed_password", "recovery_codes", "\"hash\"", "totp_url", "public_key"] {
        assert!(!text.contains(needle), "the export contains {needle}: {text}");
    }

    // The same from the v1 route and with a browser's cookie; nothing without a session.
    let r = api_client()
        .get(app.url("/v1/account/export"))
        .header("Authorization", format!("Bearer {}", u.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get(CONTENT_DISPOSITION).is_some());
    let v1: Value = r.json().await.unwrap();
    assert_eq!(v1["identity"]["traits"], v["identity"]["traits"]);
    let b = user(&app, Kind::Browser).await;
    let r = b.get(&app.url("/self-service/settings/export")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let bv: Value = r.json().await.unwrap();
    assert_eq!(bv["identity"]["id"], b.identity_id.as_str());
    kratos_error(api_client().get(app.url("/self-service/settings/export")).send().await.unwrap(), 401, None).await;
    v1_error(api_client().get(app.url("/v1/account/export")).send().await.unwrap(), 401, "AVNOLOGY_AUTH_005").await;
    v1_error(api_client().post(app.url("/v1/account/export")).send().await.unwrap(), 405, "AVNOLOGY_AUTH_001").await;

    // The settings page links to the download.
    let r = b.get(&app.url("/self-service/settings/browser")).send().await.unwrap();
    let page = b.get(&location(&r)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("id=\"export-data\"") && page.contains("/self-service/settings/export"), "{page}");
}
both_dbs!(export_has_the_account_data_and_no_secrets);

/// An account with a second factor exports only from an aal2 session (like settings).
async fn export_needs_aal2_with_a_second_factor(db: Db) {
    let app = spawn_app(db).await;
    let email = unique_email();
    let id = app.admin_create(&email, Some(TOTP_SECRET)).await["id"].as_str().unwrap().to_string();
    let aal1 = sign_in(&app, Kind::Api, &email, PASSWORD, String::new(), id).await;
    let r = aal1.get(&app.url("/self-service/settings/export")).send().await.unwrap();
    kratos_error(r, 403, Some("session_aal2_required")).await;
    let r = api_client()
        .get(app.url("/v1/account/export"))
        .header("Authorization", format!("Bearer {}", aal1.token))
        .send()
        .await
        .unwrap();
    v1_error(r, 403, "AVNOLOGY_AUTH_102").await;
}
both_dbs!(export_needs_aal2_with_a_second_factor);
