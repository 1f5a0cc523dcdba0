//! Bad input on every body-taking endpoint of the foundation (Kratos self-service, logout,
//! admin identities, v1 login/registration): malformed JSON, a wrong content type, a body over
//! `limits.max_body_bytes`, nesting deeper than `limits.max_json_depth`, wrong types and huge
//! strings all get a 4xx in the endpoint's error envelope, never a 5xx. Also unknown,
//! malformed and expired flow ids.

use crate::both_dbs;
use crate::support::*;
use serde_json::{Value, json};

const MAX_BODY: usize = 16 * 1024;
const MAX_DEPTH: usize = 8;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Envelope {
    /// The Kratos error envelope, or (status 400) a flow carrying form errors.
    Kratos,
    /// `{"error": {"code": "AVNOLOGY_AUTH_xxx", ...}}`.
    V1,
}

struct Target {
    name: &'static str,
    method: reqwest::Method,
    url: String,
    envelope: Envelope,
    /// Builds a well-formed body around a value (of the wrong type, or huge).
    wrap: fn(Value) -> Value,
    /// Builds a body that is fine except for nesting (the value goes where any JSON is valid).
    deep: fn(Value) -> Value,
}

/// `{"a": {"a": ... leaf}}` with `depth` objects.
fn nested(depth: usize, leaf: Value) -> Value {
    (0..depth).fold(leaf, |v, _| json!({ "a": v }))
}

async fn targets(app: &TestApp) -> Vec<Target> {
    let c = api_client();
    let reg: Value = c.get(app.url("/self-service/registration/api")).send().await.unwrap().json().await.unwrap();
    let login: Value = c.get(app.url("/self-service/login/api")).send().await.unwrap().json().await.unwrap();
    let v1_reg: Value = c.get(app.url("/v1/flows/registration")).send().await.unwrap().json().await.unwrap();
    let v1_login: Value = c.get(app.url("/v1/flows/login")).send().await.unwrap().json().await.unwrap();
    let ident = app.admin_create(&unique_email(), None).await;
    let id = ident["id"].as_str().unwrap();
    let s = |v: &Value| v["id"].as_str().unwrap().to_string();
    use reqwest::Method;
    vec![
        Target {
            name: "registration submit",
            method: Method::POST,
            url: app.url(&format!("/self-service/registration?flow={}", s(&reg))),
            envelope: Envelope::Kratos,
            wrap: |v| json!({"method": "password", "password": PASSWORD, "traits": {"email": v}}),
            deep: |v| json!({"method": "password", "password": PASSWORD, "traits": {"email": "deep@example.com", "name": v}}),
        },
        Target {
            name: "login submit",
            method: Method::POST,
            url: app.url(&format!("/self-service/login?flow={}", s(&login))),
            envelope: Envelope::Kratos,
            wrap: |v| json!({"method": "password", "identifier": v, "password": v}),
            deep: |v| json!({"method": "password", "identifier": "deep@example.com", "password": PASSWORD, "transient_payload": v}),
        },
        Target {
            name: "api logout",
            method: Method::DELETE,
            url: app.url("/self-service/logout/api"),
            envelope: Envelope::Kratos,
            wrap: |v| json!({"session_token": v}),
            deep: |v| json!({"session_token": "idf_st_x", "extra": v}),
        },
        Target {
            name: "admin create",
            method: Method::POST,
            url: app.admin_url("/admin/identities"),
            envelope: Envelope::Kratos,
            wrap: |v| json!({"traits": {"email": v}}),
            deep: |v| json!({"traits": {"email": "deep@example.com"}, "metadata_public": v}),
        },
        Target {
            name: "admin put",
            method: Method::PUT,
            url: app.admin_url(&format!("/admin/identities/{id}")),
            envelope: Envelope::Kratos,
            wrap: |v| json!({"traits": {"email": v}}),
            deep: |v| json!({"traits": {"email": "deep@example.com"}, "metadata_admin": v}),
        },
        Target {
            name: "admin patch",
            method: Method::PATCH,
            url: app.admin_url(&format!("/admin/identities/{id}")),
            envelope: Envelope::Kratos,
            wrap: |v| json!([{"op": "replace", "path": "/traits/email", "value": v}]),
            deep: |v| json!([{"op": "add", "path": "/metadata_public", "value": v}]),
        },
        Target {
            name: "v1 registration submit",
            method: Method::POST,
            url: app.url(&format!("/v1/flows/registration/{}:submit", s(&v1_reg))),
            envelope: Envelope::V1,
            wrap: |v| json!({"method": "password", "body": {"traits": {"email": v}, "password": PASSWORD}}),
            deep: |v| json!({"method": "password", "body": {"traits": {"email": "deep@example.com", "name": v}, "password": PASSWORD}}),
        },
        Target {
            name: "v1 login submit",
            method: Method::POST,
            url: app.url(&format!("/v1/flows/login/{}:submit", s(&v1_login))),
            envelope: Envelope::V1,
            wrap: |v| json!({"method": "password", "body": {"identifier": v, "password": v}}),
            deep: |v| json!({"method": "password", "body": {"identifier": "deep@example.com", "password": PASSWORD, "transient_payload": v}}),
        },
    ]
}

/// Send and check: a 4xx (the expected one when given) in the target's envelope.
async fn check(t: &Target, case: &str, content_type: &str, body: Vec<u8>, want: Option<u16>) {
    let resp = api_client()
        .request(t.method.clone(), &t.url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{} / {case}: request failed: {e}", t.name));
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let ctx = format!("{} / {case}: status {status}, body {}", t.name, text.chars().take(400).collect::<String>());
    assert!((400..500).contains(&status), "{ctx}");
    if let Some(w) = want {
        assert_eq!(status, w, "{ctx}");
    }
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {ctx}"));
    match t.envelope {
        Envelope::Kratos => {
            let is_error = v["error"]["code"] == status && v["error"]["message"].is_string();
            let is_flow = status == 400 && v["ui"]["nodes"].is_array();
            assert!(is_error || is_flow, "not a Kratos error or flow: {ctx}");
        }
        Envelope::V1 => {
            assert!(
                v["error"]["code"].as_str().is_some_and(|c| c.starts_with("AVNOLOGY_AUTH_")),
                "not a v1 error: {ctx}"
            );
            assert_eq!(v["error"]["status"], status, "{ctx}");
            assert!(v["error"]["message"].is_string(), "{ctx}");
        }
    }
}

async fn bad_bodies_everywhere(db: Db) {
    let app = spawn_app_with(db, |cfg| {
        cfg.limits.max_body_bytes = MAX_BODY;
        cfg.limits.max_json_depth = MAX_DEPTH;
    })
    .await;
    for t in targets(&app).await {
        let json_ct = "application/json";
        check(&t, "malformed JSON", json_ct, br#"{"method": "password", "#.to_vec(), Some(400)).await;
        check(&t, "invalid UTF-8", json_ct, vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'], Some(400)).await;
        check(&t, "JSON scalar", json_ct, b"42".to_vec(), Some(400)).await;
        let good = serde_json::to_vec(&(t.wrap)(json!("someone@example.com"))).unwrap();
        check(&t, "text/plain", "text/plain", good.clone(), None).await;
        check(&t, "text/plain; charset", "text/plain;charset=UTF-8", good.clone(), None).await;
        check(&t, "multipart", "multipart/form-data; boundary=x", good, None).await;
        let big = serde_json::to_vec(&(t.wrap)(json!("x".repeat(MAX_BODY * 3)))).unwrap();
        check(&t, "over max_body_bytes", json_ct, big, Some(413)).await;
        let deep = serde_json::to_vec(&(t.deep)(nested(MAX_DEPTH + 2, json!("x")))).unwrap();
        check(&t, "nested deeper than max_json_depth", json_ct, deep, Some(400)).await;
        // Just within the limit is fine for the parser (the endpoint may still refuse the content).
        let ok_depth = serde_json::to_vec(&(t.deep)(json!({"a": 1}))).unwrap();
        let resp = api_client()
            .request(t.method.clone(), &t.url)
            .header("content-type", json_ct)
            .body(ok_depth)
            .send()
            .await
            .unwrap();
        assert!(resp.status().as_u16() < 500, "{}: {}", t.name, resp.status());
        let very_deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000)).into_bytes();
        check(&t, "5000 levels of arrays", json_ct, very_deep, Some(400)).await;
        for (case, v) in [
            ("number", json!(12345)),
            ("array", json!(["a", "b"])),
            ("object", json!({"x": 1})),
            ("null", Value::Null),
            ("boolean", json!(true)),
            ("huge string", json!(format!("{}@example.com", "a".repeat(MAX_BODY / 2)))),
            ("control characters", json!("a\u{0}b\u{7}c@example.com")),
        ] {
            let body = serde_json::to_vec(&(t.wrap)(v)).unwrap();
            check(&t, case, json_ct, body, None).await;
        }
    }
}
both_dbs!(bad_bodies_everywhere);

/// Unknown, malformed and missing flow ids on fetch and submit.
async fn bad_flow_ids(db: Db) {
    let app = spawn_app(db).await;
    let c = api_client();
    let unknown = uuid::Uuid::new_v4();
    for kind in ["registration", "login"] {
        kratos_error(
            c.get(app.url(&format!("/self-service/{kind}/flows?id={unknown}"))).send().await.unwrap(),
            404,
            None,
        )
        .await;
        kratos_error(
            c.get(app.url(&format!("/self-service/{kind}/flows?id=not-a-uuid"))).send().await.unwrap(),
            400,
            None,
        )
        .await;
        kratos_error(c.get(app.url(&format!("/self-service/{kind}/flows"))).send().await.unwrap(), 400, None).await;
        let body =
            json!({"method": "password", "password": PASSWORD, "identifier": "a@b.c", "traits": {"email": "a@b.c"}});
        kratos_error(
            c.post(app.url(&format!("/self-service/{kind}?flow={unknown}"))).json(&body).send().await.unwrap(),
            404,
            None,
        )
        .await;
        kratos_error(
            c.post(app.url(&format!("/self-service/{kind}?flow=123"))).json(&body).send().await.unwrap(),
            400,
            None,
        )
        .await;
        kratos_error(c.post(app.url(&format!("/self-service/{kind}"))).json(&body).send().await.unwrap(), 400, None)
            .await;
        // A flow of the other kind is unknown here.
        let other = if kind == "login" { "registration" } else { "login" };
        let f: Value =
            c.get(app.url(&format!("/self-service/{other}/api"))).send().await.unwrap().json().await.unwrap();
        let resp = c
            .post(app.url(&format!("/self-service/{kind}?flow={}", f["id"].as_str().unwrap())))
            .json(&body)
            .send()
            .await
            .unwrap();
        kratos_error(resp, 404, None).await;
    }
    kratos_error(c.get(app.admin_url("/admin/identities/123")).send().await.unwrap(), 400, None).await;
    kratos_error(c.delete(app.admin_url("/admin/identities/123")).send().await.unwrap(), 400, None).await;
    kratos_error(c.get(app.url("/self-service/errors?id=nope")).send().await.unwrap(), 400, None).await;
    kratos_error(c.get(app.url(&format!("/self-service/errors?id={unknown}"))).send().await.unwrap(), 404, None).await;
    // A huge token is just an unknown token.
    let resp = c.get(app.url("/sessions/whoami")).header("X-Session-Token", "x".repeat(8000)).send().await.unwrap();
    kratos_error(resp, 401, None).await;
}
both_dbs!(bad_flow_ids);

/// Traits of the wrong type on registration: a 400 flow with field messages, nothing created.
async fn registration_traits_wrong_type(db: Db) {
    let app = spawn_app(db).await;
    let c = api_client();
    let flow: Value = c.get(app.url("/self-service/registration/api")).send().await.unwrap().json().await.unwrap();
    let url = app.url(&format!("/self-service/registration?flow={}", flow["id"].as_str().unwrap()));
    for traits in [
        json!("a string"),
        json!(["x"]),
        json!({"email": 42}),
        json!({"email": {"nested": true}}),
        json!({"email": null}),
        json!({"email": "a@b.c", "name": "not an object"}),
    ] {
        let resp = c
            .post(&url)
            .json(&json!({"method": "password", "password": PASSWORD, "traits": traits}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "traits {traits}");
        let f: Value = resp.json().await.unwrap();
        assert!(!message_ids(&f).is_empty(), "form errors for traits {traits}: {f}");
    }
    let n: Value = api_client().get(app.admin_url("/admin/identities")).send().await.unwrap().json().await.unwrap();
    assert_eq!(n, json!([]), "nothing was created");
}
both_dbs!(registration_traits_wrong_type);

/// Expired flows: the API submit gets 410 `self_service_flow_expired` with a fresh
/// `use_flow_id`; fetching gets 410; a browser form post is sent to the UI with the new flow.
async fn expired_flows(db: Db) {
    let app = spawn_app(db).await;
    let c = api_client();
    for kind in ["registration", "login"] {
        let flow: Value =
            c.get(app.url(&format!("/self-service/{kind}/api"))).send().await.unwrap().json().await.unwrap();
        let old = flow["id"].as_str().unwrap().to_string();
        app.clock.advance(3601);
        let body = json!({"method": "password", "password": PASSWORD, "identifier": "a@b.c", "traits": {"email": unique_email()}});
        let resp = c.post(app.url(&format!("/self-service/{kind}?flow={old}"))).json(&body).send().await.unwrap();
        let err = kratos_error(resp, 410, Some("self_service_flow_expired")).await;
        let fresh = err["use_flow_id"].as_str().expect("use_flow_id").to_string();
        assert_ne!(fresh, old);
        assert!(err["expired_at"].is_string());
        let resp = c.get(app.url(&format!("/self-service/{kind}/flows?id={old}"))).send().await.unwrap();
        kratos_error(resp, 410, None).await;
        let f: Value = c
            .get(app.url(&format!("/self-service/{kind}/flows?id={fresh}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(f["id"], fresh.as_str());
        assert_eq!(f["type"], "api");
        assert!(!message_ids(&f).is_empty(), "the new flow says why: {f}");
    }
    // Nothing was registered through the expired flow.
    let n: Value = c.get(app.admin_url("/admin/identities")).send().await.unwrap().json().await.unwrap();
    assert_eq!(n, json!([]));

    let (email, _, _) = app.user().await;
    let b = browser_client();
    let resp = b.get(app.url("/self-service/login/browser")).send().await.unwrap();
    let old = location(&resp).rsplit_once("flow=").unwrap().1.to_string();
    let flow: Value =
        b.get(app.url(&format!("/self-service/login/flows?id={old}"))).send().await.unwrap().json().await.unwrap();
    app.clock.advance(3601);
    let resp = b
        .post(app.url(&format!("/self-service/login?flow={old}")))
        .form(&[
            ("method", "password"),
            ("identifier", email.as_str()),
            ("password", PASSWORD),
            ("csrf_token", &csrf(&flow)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let loc = location(&resp);
    let prefix = format!("{}/ui/login?flow=", app.public);
    assert!(loc.starts_with(&prefix), "{loc}");
    let fresh = &loc[prefix.len()..];
    assert_ne!(fresh, old);
    assert!(set_cookie(&resp, "ory_kratos_session").is_none(), "no login through an expired flow");
    let f: Value =
        b.get(app.url(&format!("/self-service/login/flows?id={fresh}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(message_ids(&f), vec![4010001]);
    // The new flow works with this browser's CSRF cookie.
    let resp = b
        .post(app.url(&format!("/self-service/login?flow={fresh}")))
        .form(&[
            ("method", "password"),
            ("identifier", email.as_str()),
            ("password", PASSWORD),
            ("csrf_token", &csrf(&f)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(set_cookie(&resp, "ory_kratos_session").is_some());
}
both_dbs!(expired_flows);
