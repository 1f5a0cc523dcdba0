//! Password policy and identifier clashes in settings (settings-flow §8.1, §8.2, §17.9), and
//! concurrent submits to one flow.

use crate::both_dbs;
use crate::support::*;
use serde_json::{Value, json};

async fn password_error(app: &TestApp, u: &User, flow: &Value, password: &str) -> Value {
    let r = u.submit(app, flow, json!({"method": "password", "password": password})).await;
    let (status, f) = u.outcome(app, r).await;
    assert_eq!(status, if u.kind == Kind::Browser { 303 } else { 400 }, "{password:?}: {f}");
    let msgs = node(&f, "password").unwrap()["messages"].as_array().unwrap().clone();
    assert_eq!(msgs.len(), 1, "exactly one policy error: {msgs:?}");
    assert!(form_ids(&f).is_empty(), "errors are on the password node");
    msgs[0].clone()
}

async fn password_policy(db: Db) {
    let app = spawn_app(db).await;
    for kind in KINDS {
        let u = user(&app, kind).await;
        let flow = u.create(&app).await;
        let m = password_error(&app, &u, &flow, "abc12").await;
        assert_eq!(
            m,
            json!({"id": 4000032, "text": "The password must be at least 8 characters long, but got 5.", "type": "error",
                   "context": {"min_length": 8, "actual_length": 5}})
        );
        let m = password_error(&app, &u, &flow, &"x7Q!".repeat(65)).await;
        assert_eq!(m["id"], 4000033);
        assert_eq!(m["context"], json!({"max_length": 256, "actual_length": 260}));
        let m = password_error(&app, &u, &flow, &u.email.to_uppercase()).await;
        assert_eq!(m["id"], 4000031, "similar to the email (case-insensitive)");
        assert_eq!(m["text"], "The password can not be used because it is too similar to the identifier.");
        let m = password_error(&app, &u, &flow, "password123").await;
        assert_eq!(m["id"], 4000034);
        assert_eq!(m["text"], "The password has been found in data breaches and must no longer be used.");
        let m = password_error(&app, &u, &flow, PASSWORD).await;
        assert_eq!(m["id"], 4000039);
        assert_eq!(m["text"], "The new password must be different from the old password.");
        // Missing / empty password: 4000002.
        for body in [json!({"method": "password"}), json!({"method": "password", "password": ""})] {
            let r = u.submit(&app, &flow, body).await;
            let (_, f) = u.outcome(&app, r).await;
            assert_eq!(node_ids(&f, "password"), vec![4000002], "{kind:?}");
        }
        assert!(u.password_works(&app, PASSWORD).await, "{kind:?}: nothing changed");
        // Errors never echo the password and the flow stays usable.
        let r = u.submit(&app, &flow, json!({"method": "password", "password": "Juniper-Comet-Basalt-90"})).await;
        let (status, f) = u.outcome(&app, r).await;
        assert!(status == 200 || status == 303);
        assert_eq!(f["state"], "success");
        assert!(node_ids(&f, "password").is_empty(), "old errors are cleared");
    }
}
both_dbs!(password_policy);

/// Fixed order of §17.9: min length → max length → same-as-old → similarity → breach.
async fn password_policy_order(db: Db) {
    let app = spawn_app(db).await;
    let email = unique_email();
    // Imported with a weak password (the admin API imports as-is).
    let r = api_client()
        .post(app.admin_url("/admin/identities"))
        .json(
            &json!({"traits": {"email": email}, "credentials": {"password": {"config": {"password": "password123"}}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let u = sign_in(&app, Kind::Api, &email, "password123", String::new(), id).await;
    let flow = u.create(&app).await;
    let m = password_error(&app, &u, &flow, "password123").await;
    assert_eq!(m["id"], 4000039, "same-as-old is reported before the breach check");
    let m = password_error(&app, &u, &flow, "short").await;
    assert_eq!(m["id"], 4000032, "length first");
}
both_dbs!(password_policy_order);

async fn duplicate_and_look_alike_identifiers(db: Db) {
    let app = spawn_app(db).await;
    // A short local part: a fullwidth look-alike must stay within 64 bytes to be a valid email.
    let alice_email = "alice-7@example.com".to_string();
    let (_, alice_id) = app.register(&alice_email, PASSWORD).await;
    let local = alice_email.split('@').next().unwrap();
    // Fullwidth look-alike of alice's local part (NFKC folds it back to ASCII).
    let fullwidth: String = local
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap() } else { c })
        .collect();
    for kind in KINDS {
        let bob = user(&app, kind).await;
        let flow = bob.create(&app).await;
        for clash in [alice_email.clone(), alice_email.to_uppercase(), format!("{fullwidth}@example.com")] {
            let r = bob.submit(&app, &flow, json!({"method": "profile", "traits": {"email": clash}})).await;
            let (status, f) = bob.outcome(&app, r).await;
            assert_eq!(status, if kind == Kind::Browser { 303 } else { 400 }, "{clash}: {f}");
            assert_eq!(form_ids(&f), vec![4000007], "{kind:?} {clash}: {f}");
            assert_eq!(node(&f, "traits.email").unwrap()["attributes"]["value"], clash.as_str(), "the value is echoed");
            assert_eq!(admin_identity(&app, &bob.identity_id).await["traits"]["email"], bob.email.as_str());
        }
    }
    assert_eq!(admin_identity(&app, &alice_id).await["traits"]["email"], alice_email.as_str());
}
both_dbs!(duplicate_and_look_alike_identifiers);

/// Two concurrent password submits to one flow: both end cleanly and exactly one password is
/// stored.
async fn concurrent_password_submits(db: Db) {
    let app = spawn_app(db).await;
    for kind in [Kind::Api, Kind::Ajax] {
        for round in 0..4 {
            let u = user(&app, kind).await;
            let flow = u.create(&app).await;
            let (p1, p2) = (format!("Orbit-Cedar-Mango-{round}1"), format!("Pebble-Frost-Lilac-{round}2"));
            let (r1, r2) = tokio::join!(
                u.submit(&app, &flow, json!({"method": "password", "password": p1})),
                u.submit(&app, &flow, json!({"method": "password", "password": p2}))
            );
            let mut ok = 0;
            for r in [r1, r2] {
                let st = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                assert!([200, 400, 409].contains(&st), "{kind:?}: status {st}: {body}");
                if st == 200 {
                    ok += 1;
                }
                if st == 400 {
                    assert!(!message_ids(&body).contains(&4000007), "a race is no duplicate: {body}");
                }
                if st == 409 {
                    assert!(body["error"]["reason"].is_string(), "{body}");
                }
            }
            assert!(ok >= 1, "{kind:?}: at least one submit wins");
            let w1 = u.password_works(&app, &p1).await;
            let w2 = u.password_works(&app, &p2).await;
            assert!(w1 ^ w2, "{kind:?}: exactly one password is stored (p1 {w1}, p2 {w2})");
            assert!(!u.password_works(&app, PASSWORD).await);
        }
    }
}
both_dbs!(concurrent_password_submits);

/// Password-hashing work done by `app` so far, from its metrics: (hashes, verifications).
async fn hashing_counts(app: &TestApp) -> (f64, f64) {
    let text = api_client().get(app.admin_url("/metrics")).send().await.unwrap().text().await.unwrap();
    let count = |op: &str| {
        let prefix = format!("idflow_password_hashing_seconds_count{{op=\"{op}\"}}");
        text.lines()
            .find(|l| l.starts_with(&prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    (count("hash"), count("verify"))
}

/// A password change costs one argon2id derivation (issue: "one hash per change"): the
/// privileged session stands in for the current password, and the same-as-old check is the
/// new hash itself, derived with the current hash's salt. The salt stays with the identity;
/// another identity with the same password still gets another salt.
async fn password_change_derives_once(db: Db) {
    let app = spawn_app(db).await;
    let u = user(&app, Kind::Api).await;
    let flow = u.create(&app).await;
    let stored = |app: &TestApp, id: String| {
        let url = app.admin_url(&format!("/admin/identities/{id}?include_credential=password"));
        async move {
            let v: Value = api_client().get(url).send().await.unwrap().json().await.unwrap();
            v["credentials"]["password"]["config"]["hashed_password"].as_str().unwrap().to_string()
        }
    };
    let salt = |phc: &str| phc.split('$').nth(4).unwrap().to_string();
    let first = stored(&app, u.identity_id.clone()).await;

    let (h0, v0) = hashing_counts(&app).await;
    let m = password_error(&app, &u, &flow, PASSWORD).await;
    assert_eq!(m["id"], 4000039);
    let (h1, v1) = hashing_counts(&app).await;
    assert_eq!((h1 - h0, v1 - v0), (1.0, 0.0), "same-as-old is found with one derivation");

    let r = u.submit(&app, &flow, json!({"method": "password", "password": "Juniper-Comet-Basalt-90"})).await;
    let (status, f) = u.outcome(&app, r).await;
    assert_eq!((status, f["state"].as_str()), (200, Some("success")), "{f}");
    let (h2, v2) = hashing_counts(&app).await;
    assert_eq!((h2 - h1, v2 - v1), (1.0, 0.0), "a change is one derivation");
    let second = stored(&app, u.identity_id.clone()).await;
    assert_ne!(first, second);
    assert_eq!(salt(&first), salt(&second), "the identity keeps its salt");
    assert!(u.password_works(&app, "Juniper-Comet-Basalt-90").await);
    assert!(!u.password_works(&app, PASSWORD).await);

    let other = user(&app, Kind::Api).await;
    assert_ne!(salt(&stored(&app, other.identity_id.clone()).await), salt(&second), "salts differ between identities");
}
both_dbs!(password_change_derives_once);

/// A current hash with other parameters than configured (here an imported argon2id with twice
/// the memory, which login does not rehash) cannot be derived with: the change falls back to a
/// verification plus a fresh hash, still finds the same password, and stores the new one with
/// the configured parameters and a fresh salt.
async fn password_change_from_other_parameters(db: Db) {
    use idflow_core::password::{Argon2Config, HashersConfig};
    let app = spawn_app(db).await;
    let email = unique_email();
    let stronger = HashersConfig {
        argon2: Argon2Config { memory: 2048, iterations: 1, parallelism: 1, ..Default::default() },
        ..Default::default()
    };
    let imported = idflow_core::password::hash(&stronger, PASSWORD).unwrap();
    let r = api_client()
        .post(app.admin_url("/admin/identities"))
        .json(&json!({"traits": {"email": email},
                      "credentials": {"password": {"config": {"hashed_password": imported}}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let u = sign_in(&app, Kind::Api, &email, PASSWORD, String::new(), id.clone()).await;
    let stored = || async {
        let url = app.admin_url(&format!("/admin/identities/{id}?include_credential=password"));
        let v: Value = api_client().get(url).send().await.unwrap().json().await.unwrap();
        v["credentials"]["password"]["config"]["hashed_password"].as_str().unwrap().to_string()
    };
    assert_eq!(stored().await, imported, "a stronger hash is not rehashed on login");

    let flow = u.create(&app).await;
    let (h0, v0) = hashing_counts(&app).await;
    assert_eq!(password_error(&app, &u, &flow, PASSWORD).await["id"], 4000039);
    let (h1, v1) = hashing_counts(&app).await;
    assert_eq!((h1 - h0, v1 - v0), (1.0, 1.0), "verification and a fresh hash");

    let r = u.submit(&app, &flow, json!({"method": "password", "password": "Juniper-Comet-Basalt-90"})).await;
    let (status, f) = u.outcome(&app, r).await;
    assert_eq!((status, f["state"].as_str()), (200, Some("success")), "{f}");
    let now = stored().await;
    assert!(now.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "configured parameters: {now}");
    assert_ne!(now.split('$').nth(4), imported.split('$').nth(4), "a fresh salt");
    assert!(u.password_works(&app, "Juniper-Comet-Basalt-90").await);
}
both_dbs!(password_change_from_other_parameters);
