//! Second-factor logins: TOTP clock-skew window, and single use of TOTP codes and recovery codes
//! under concurrency (two logins with one code: exactly one wins).

use crate::both_dbs;
use crate::helpers::*;
use serde_json::{Value, json};

const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

fn code_at(app: &TestApp, offset_secs: i64) -> String {
    let secret = totp_rs::Secret::try_from_base32(SECRET).unwrap();
    let t = totp_rs::Builder::new().with_secret(secret).build().unwrap();
    let now = app.clock.now().unix_timestamp() + offset_secs;
    t.generate(u64::try_from(now).unwrap()).to_string()
}

/// A user with TOTP and recovery codes; returns the email.
async fn mfa_user(app: &TestApp) -> String {
    let email = unique_email();
    let body = json!({
        "traits": {"email": email},
        "credentials": {
            "password": {"config": {"password": PASSWORD}},
            "totp": {"config": {"totp_url": format!("otpauth://totp/idflow:{email}?secret={SECRET}&issuer=idflow")}},
            "lookup_secret": {"config": {"codes": [{"code": "abcd1234"}, {"code": "efgh5678"}]}},
        }
    });
    let r = api_client().post(app.admin_url("/admin/identities")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    email
}

/// A password session and an aal2 login flow for it: (token, flow id).
async fn step_up_flow(app: &TestApp, email: &str) -> (String, String) {
    let login = app.login(email, PASSWORD).await;
    let token = login["session_token"].as_str().unwrap().to_string();
    assert!(login["session"]["identity"].is_null(), "aal1 session of an aal2 identity hides the identity");
    let flow: Value = api_client()
        .get(app.url("/self-service/login/api?aal=aal2"))
        .header("X-Session-Token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (token, flow["id"].as_str().unwrap().to_string())
}

async fn submit(app: &TestApp, token: &str, flow: &str, body: Value) -> (u16, Value) {
    let r = api_client()
        .post(app.url(&format!("/self-service/login?flow={flow}")))
        .header("X-Session-Token", token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn totp_skew_window(db: Db) {
    let app = spawn_app(db).await;
    let email = mfa_user(&app).await;
    // Two steps in the past: outside the ±1 step window.
    let (t, f) = step_up_flow(&app, &email).await;
    let (s, body) = submit(&app, &t, &f, json!({"method": "totp", "totp_code": code_at(&app, -60)})).await;
    assert_eq!(s, 400, "{body}");
    assert!(message_ids(&body).contains(&4000008), "{body}");
    // One step in the past: accepted.
    let (s, body) = submit(&app, &t, &f, json!({"method": "totp", "totp_code": code_at(&app, -30)})).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["session"]["authenticator_assurance_level"], "aal2");
    // Two steps ahead: rejected; one step ahead (later than the last used step): accepted.
    let (t, f) = step_up_flow(&app, &email).await;
    let (s, _) = submit(&app, &t, &f, json!({"method": "totp", "totp_code": code_at(&app, 90)})).await;
    assert_eq!(s, 400);
    let (s, body) = submit(&app, &t, &f, json!({"method": "totp", "totp_code": code_at(&app, 30)})).await;
    assert_eq!(s, 200, "{body}");
    // The fake clock moves the window: after 5 minutes the current code is fine again.
    app.clock.advance(300);
    let (t, f) = step_up_flow(&app, &email).await;
    let (s, body) = submit(&app, &t, &f, json!({"method": "totp", "totp_code": code_at(&app, 0)})).await;
    assert_eq!(s, 200, "{body}");
}
both_dbs!(totp_skew_window);

async fn totp_code_used_concurrently_wins_once(db: Db) {
    let app = spawn_app(db).await;
    let email = mfa_user(&app).await;
    let (t1, f1) = step_up_flow(&app, &email).await;
    let (t2, f2) = step_up_flow(&app, &email).await;
    let code = code_at(&app, 0);
    let body = json!({"method": "totp", "totp_code": code});
    let (a, b) = tokio::join!(submit(&app, &t1, &f1, body.clone()), submit(&app, &t2, &f2, body.clone()));
    let mut statuses = vec![a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, vec![200, 400], "{a:?} {b:?}");
}
both_dbs!(totp_code_used_concurrently_wins_once);

async fn recovery_code_used_concurrently_wins_once(db: Db) {
    let app = spawn_app(db).await;
    let email = mfa_user(&app).await;
    let (t1, f1) = step_up_flow(&app, &email).await;
    let (t2, f2) = step_up_flow(&app, &email).await;
    let body = json!({"method": "lookup_secret", "lookup_secret": "abcd1234"});
    let (a, b) = tokio::join!(submit(&app, &t1, &f1, body.clone()), submit(&app, &t2, &f2, body.clone()));
    let (win, lose) = if a.0 == 200 { (a, b) } else { (b, a) };
    assert_eq!(win.0, 200, "{win:?}");
    assert_eq!(win.1["session"]["authenticator_assurance_level"], "aal2");
    assert_eq!(lose.0, 400, "{lose:?}");
    assert!(message_ids(&lose.1).contains(&4000012), "{lose:?}");
    // The other code still works, once; unknown codes are refused.
    let (t3, f3) = step_up_flow(&app, &email).await;
    let (s, body) = submit(&app, &t3, &f3, json!({"method": "lookup_secret", "lookup_secret": "nope0000"})).await;
    assert_eq!(s, 400);
    assert!(message_ids(&body).contains(&4000016), "{body}");
    let (s, _) = submit(&app, &t3, &f3, json!({"method": "lookup_secret", "lookup_secret": "efgh5678"})).await;
    assert_eq!(s, 200);
    // Codes are stored hashed: the admin view does not contain them.
    let admin: Value =
        api_client()
            .get(app.admin_url(&format!(
                "/admin/identities?credentials_identifier={email}&include_credential=lookup_secret"
            )))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let text = admin.to_string();
    assert!(text.contains("recovery_codes"), "{text}");
    assert!(!text.contains("abcd1234") && !text.contains("efgh5678"), "{text}");
}
both_dbs!(recovery_code_used_concurrently_wins_once);
