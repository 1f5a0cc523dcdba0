//! Imported bcrypt hashes: bcrypt reads only 72 bytes, so a longer password is refused against
//! a bcrypt hash instead of being compared by its prefix; a correct password logs in and the
//! hash is upgraded to argon2id.

use crate::both_dbs;
use crate::support::*;
use serde_json::{Value, json};

async fn bcrypt_rejects_passwords_past_72_bytes(db: Db) {
    let app = spawn_app(db).await;
    let email = unique_email();
    let exact = "b".repeat(60) + "-Tulip-Stone"; // 72 bytes
    assert_eq!(exact.len(), 72);
    let hash = bcrypt::hash(&exact, 4).unwrap();
    let resp = api_client()
        .post(app.admin_url("/admin/identities"))
        .json(&json!({"traits": {"email": email}, "credentials": {"password": {"config": {"hashed_password": hash}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let id = resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let stored = || async {
        let v: Value = api_client()
            .get(app.admin_url(&format!("/admin/identities/{id}?include_credential=password")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["credentials"]["password"]["config"]["hashed_password"].as_str().unwrap().to_string()
    };
    // The prefix matches what bcrypt hashed, but the password is longer: refused.
    for longer in [format!("{exact}x"), format!("{exact}-and-a-lot-more-text")] {
        let out = app.login(&email, &longer).await;
        assert!(out["session_token"].is_null(), "a {}-byte password must not match: {out}", longer.len());
        assert_eq!(message_ids(&out), vec![4000006], "{out}");
    }
    assert_eq!(stored().await, hash, "nothing rehashed after a refusal");
    // The exact password logs in and upgrades the hash.
    let out = app.login(&email, &exact).await;
    assert!(out["session_token"].is_string(), "{out}");
    let now = stored().await;
    assert!(now.starts_with("$argon2id$"), "rehashed on login: {now}");
    assert!(app.login(&email, &format!("{exact}x")).await["session_token"].is_null(), "argon2id does not truncate");
    assert!(app.login(&email, &exact).await["session_token"].is_string());
}
both_dbs!(bcrypt_rejects_passwords_past_72_bytes);
