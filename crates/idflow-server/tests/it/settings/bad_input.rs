//! Bad input to the settings submit: malformed bodies, unknown methods, missing fields, wrong
//! types, huge payloads and traits that violate the identity schema. Always a clear 4xx, never a
//! 500, and nothing saved.

use crate::both_dbs;
use crate::support::*;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};

async fn raw_post(app: &TestApp, u: &User, id: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let r = u
        .req(reqwest::Method::POST, &app.url(&format!("/self-service/settings?flow={id}")))
        .header(CONTENT_TYPE, content_type)
        .header(ACCEPT, "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    let text = r.text().await.unwrap();
    (st, serde_json::from_str(&text).unwrap_or(json!({ "raw": text })))
}

async fn malformed_bodies(db: Db) {
    let app = spawn_app(db).await;
    let u = user(&app, Kind::Api).await;
    let flow = u.create(&app).await;
    let id = flow["id"].as_str().unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("application/json", b"{\"method\": \"profile\", ".to_vec()),
        ("application/json", b"[1, 2, 3]".to_vec()),
        ("application/json", b"\"profile\"".to_vec()),
        ("application/json", vec![0xff, 0xfe, 0x00]),
        ("text/plain", b"method=profile".to_vec()),
        ("application/json", format!("{}1{}", "[".repeat(200), "]".repeat(200)).into_bytes()),
    ];
    for (ct, body) in cases {
        let (st, v) = raw_post(&app, &u, id, ct, body.clone()).await;
        assert_eq!(st, 400, "{ct} {:?}: {v}", String::from_utf8_lossy(&body));
        assert_eq!(v["error"]["code"], 400, "error envelope: {v}");
        assert!(v["error"]["reason"].as_str().is_some_and(|r| !r.is_empty()), "{v}");
    }
    // Huge payloads: 413 in the envelope.
    let big = json!({"method": "profile", "traits": {"email": u.email, "name": {"first": "x".repeat(200_000)}}});
    let (st, v) = raw_post(&app, &u, id, "application/json", big.to_string().into_bytes()).await;
    assert_eq!(st, 413, "{v}");
    assert_eq!(v["error"]["code"], 413);
    assert_eq!(admin_identity(&app, &u.identity_id).await["traits"]["email"], u.email.as_str());
    // The flow still works.
    let r = u.submit(&app, &flow, json!({"method": "profile", "traits": {"email": u.email}})).await;
    assert_eq!(r.status(), 200);
}
both_dbs!(malformed_bodies);

async fn unknown_method_and_missing_fields(db: Db) {
    let app = spawn_app(db).await;
    for kind in KINDS {
        let u = user(&app, kind).await;
        let flow = u.create(&app).await;
        for body in
            [json!({"method": "magic"}), json!({}), json!({"method": 5}), json!({"method": "code", "code": "123456"})]
        {
            let r = u.submit(&app, &flow, body.clone()).await;
            let (st, f) = u.outcome(&app, r).await;
            assert_eq!(st, if kind == Kind::Browser { 303 } else { 400 }, "{kind:?} {body}: {f}");
            assert_eq!(form_ids(&f), vec![4010004], "{kind:?} {body}: {f}");
            assert_eq!(
                f["ui"]["messages"][0]["text"],
                "Could not find a strategy to update your settings. Did you fill out the form correctly?"
            );
        }
        // Profile without traits: 4000002 on a synthetic `traits` node.
        let r = u.submit(&app, &flow, json!({"method": "profile"})).await;
        let (_, f) = u.outcome(&app, r).await;
        assert_eq!(node_ids(&f, "traits"), vec![4000002], "{f}");
        let t = node(&f, "traits").unwrap();
        assert_eq!(t["group"], "default");
        assert_eq!(t["attributes"]["type"], "text");
        // TOTP without code.
        let r = u.submit(&app, &flow, json!({"method": "totp"})).await;
        let (_, f) = u.outcome(&app, r).await;
        assert_eq!(node_ids(&f, "totp_code"), vec![4000002]);
        // Unknown extra fields are ignored; `flow` in the body is ignored.
        let r = u
            .submit(&app, &flow, json!({"method": "profile", "flow": "00000000-0000-0000-0000-000000000000", "extra": {"x": 1}, "traits": {"email": u.email, "name": {"first": "Extra"}}}))
            .await;
        assert!(r.status() == 200 || r.status() == 303, "{kind:?}: {}", r.status());
        assert_eq!(admin_identity(&app, &u.identity_id).await["traits"]["name"]["first"], "Extra");
    }
}
both_dbs!(unknown_method_and_missing_fields);

async fn wrong_types_and_schema_violations(db: Db) {
    let app = spawn_app(db).await;
    for kind in [Kind::Api, Kind::Ajax] {
        let u = user(&app, kind).await;
        let flow = u.create(&app).await;
        let invalid = |traits: Value| json!({"method": "profile", "traits": traits});
        let cases: Vec<(Value, &str, i64)> = vec![
            (json!({"email": "not-an-email"}), "traits.email", 4000040),
            (json!({"email": 42}), "traits.email", 4000026),
            (json!({"email": "a@b.co", "name": {"first": "y".repeat(300)}}), "traits.name.first", 4000017),
            (json!({"email": "ab"}), "traits.email", 4000003),
            (json!({"name": {"first": "NoEmail"}}), "traits.email", 4000002),
            (json!({"email": "a@b.co", "name": "flat"}), "traits.name", 4000026),
        ];
        for (traits, node_name, id) in cases {
            let r = u.submit(&app, &flow, invalid(traits.clone())).await;
            assert_eq!(r.status(), 400, "{traits}");
            let f: Value = r.json().await.unwrap();
            assert!(node_ids(&f, node_name).contains(&id), "{kind:?} {traits}: expected {id} on {node_name}: {f}");
            assert_eq!(f["state"], "show_form");
        }
        // The invalid email is echoed back with its context.
        let r = u.submit(&app, &flow, invalid(json!({"email": "not-an-email"}))).await;
        let f: Value = r.json().await.unwrap();
        let email = node(&f, "traits.email").unwrap();
        assert_eq!(email["attributes"]["value"], "not-an-email");
        assert_eq!(
            email["messages"][0],
            json!({"id": 4000040, "text": "Enter a valid email address", "type": "error", "context": {"value": "not-an-email"}})
        );
        // traits as a string / array / null: a 400 form error, never a 500.
        for traits in [json!("x"), json!([1]), json!(null), json!(true)] {
            let r = u
                .submit_raw(&app, flow["id"].as_str().unwrap(), {
                    let mut b = json!({"method": "profile", "traits": traits});
                    if kind == Kind::Ajax {
                        b["csrf_token"] = json!(csrf(&flow));
                    }
                    b
                })
                .await;
            assert_eq!(r.status(), 400, "traits = {traits}");
            let f: Value = r.json().await.unwrap();
            assert!(!message_ids(&f).is_empty(), "{traits}: {f}");
        }
        // Additional properties are refused.
        let r = u.submit(&app, &flow, invalid(json!({"email": u.email, "admin": true}))).await;
        assert_eq!(r.status(), 400);
        // Wrong types elsewhere: password as a number, totp_code as an object.
        let r = u.submit(&app, &flow, json!({"method": "password", "password": 12345678})).await;
        assert_eq!(r.status(), 400);
        let f: Value = r.json().await.unwrap();
        assert!(!node_ids(&f, "password").is_empty(), "{f}");
        let r = u.submit(&app, &flow, json!({"method": "totp", "totp_code": {"a": 1}})).await;
        assert_eq!(r.status(), 400);
        let r = u.submit(&app, &flow, json!({"method": "lookup_secret", "lookup_secret_confirm": {"x": 1}})).await;
        assert_eq!(r.status(), 400, "a non-boolean flag is no flag: no method responsible");
        let stored = admin_identity(&app, &u.identity_id).await;
        assert_eq!(stored["traits"]["email"], u.email.as_str(), "{kind:?}: nothing saved");
        assert!(u.password_works(&app, PASSWORD).await);
    }
}
both_dbs!(wrong_types_and_schema_violations);

/// Browser form posts coerce values by the schema (checkbox/number) and dot-notation keys nest.
async fn form_posts_nest_dot_keys(db: Db) {
    let app = spawn_app(db).await;
    let u = user(&app, Kind::Browser).await;
    let flow = u.create(&app).await;
    let r = u
        .http
        .post(app.url(&format!("/self-service/settings?flow={}", flow["id"].as_str().unwrap())))
        .form(&[
            ("csrf_token", csrf(&flow).as_str()),
            ("method", "profile"),
            ("traits.email", u.email.as_str()),
            ("traits.name.first", "Dotted"),
            ("traits.name.last", "Keys"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        admin_identity(&app, &u.identity_id).await["traits"]["name"],
        json!({"first": "Dotted", "last": "Keys"})
    );
}
both_dbs!(form_posts_nest_dot_keys);

/// Checklist T32: fields a settings submit may not set (identity id, schema, state, metadata,
/// addresses' verified flag, credentials, session data) are ignored by every method: the stored
/// identity, read back through the admin API with its credentials, differs from before only in
/// what the method changes.
async fn mass_assignment_is_ignored(db: Db) {
    let app = spawn_app(db).await;
    let u = user(&app, Kind::Api).await;
    let stored = || async {
        let url = app.admin_url(&format!(
            "/admin/identities/{}?include_credential=password&include_credential=totp",
            u.identity_id
        ));
        let mut v: Value = api_client().get(url).send().await.unwrap().json().await.unwrap();
        // Timestamps of the write itself are expected to move.
        v.as_object_mut().unwrap().remove("updated_at");
        v
    };
    let protected = json!({
        "id": "00000000-0000-4000-8000-000000000001",
        "identity_id": "00000000-0000-4000-8000-000000000001",
        "schema_id": "other",
        "state": "inactive",
        "metadata_public": {"role": "admin"},
        "metadata_admin": {"role": "admin"},
        "verifiable_addresses": [{"value": u.email, "verified": true, "status": "completed"}],
        "recovery_addresses": [{"value": "attacker@example.org"}],
        "credentials": {"password": {"identifiers": ["attacker@example.org"]}},
        "aal": "aal2",
        "authenticator_assurance_level": "aal2",
        "authentication_methods": [{"method": "totp"}],
        "expires_at": "2999-01-01T00:00:00Z",
        "active": true
    });
    let with = |mut body: Value| {
        for (k, v) in protected.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };

    // Profile: only the name changes.
    let before = stored().await;
    let flow = u.create(&app).await;
    let body = with(json!({"method": "profile", "traits": {"email": u.email, "name": {"first": "Mass"}}}));
    let r = u.submit(&app, &flow, body).await;
    assert_eq!(r.status(), 200);
    let after = stored().await;
    let mut expected = before.clone();
    expected["traits"]["name"] = json!({"first": "Mass"});
    assert_eq!(after, expected, "a profile submit changed more than the traits");

    // Password: only the password credential's hash and dates change.
    let before = stored().await;
    let flow = u.create(&app).await;
    let body = with(json!({"method": "password", "password": "a brand new passphrase 9"}));
    let r = u.submit(&app, &flow, body).await;
    assert_eq!(r.status(), 200);
    let after = stored().await;
    let strip = |mut v: Value| {
        if let Some(p) = v["credentials"]["password"].as_object_mut() {
            p.remove("config");
            p.remove("updated_at");
            p.remove("version");
        }
        v
    };
    assert_eq!(strip(after.clone()), strip(before.clone()), "a password submit changed more than the password");
    assert_ne!(after["credentials"]["password"]["config"], before["credentials"]["password"]["config"]);

    // The session did not gain anything either.
    let me = app.get_with_token("/sessions/whoami", &u.token).await;
    assert_eq!(me["authenticator_assurance_level"], "aal1");
    assert_eq!(me["identity"]["state"], "active");
    assert_ne!(me["expires_at"], "2999-01-01T00:00:00Z");
}
both_dbs!(mass_assignment_is_ignored);
