//! The OpenAPI documents: served on both listeners and at `/v1/openapi.json`; well formed
//! (unique operation ids, every `$ref` resolves, path parameters declared; the official 3.1
//! schema is checked by `tests/python/test_openapi.py`); every route of the route tables is
//! documented and every documented route is served (no answer from the router's fallback);
//! real responses of registration, login, settings, whoami, v1, admin and error paths validate
//! against the schema documented for their status; `docs/openapi-v1.json` is up to date.

use crate::both_dbs;
use crate::support::*;
use idflow_server::openapi::{Doc, document, document_text};
use serde_json::{Value, json};
use std::collections::BTreeSet;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn fetch_json(url: &str) -> Value {
    let resp = no_redirects().get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "GET {url}");
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"), "GET {url}: not JSON");
    resp.json().await.unwrap()
}

/// (method, path template) of every operation.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if item.get(m).is_some() {
                out.push((m.to_string(), path.clone()));
            }
        }
    }
    out
}

fn resolve<'a>(doc: &'a Value, r: &str) -> Option<&'a Value> {
    doc.pointer(r.strip_prefix('#')?)
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                out.push(r.to_string());
            }
            m.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// What the official schema does not check: unique operation ids, resolvable `$ref`s,
/// declared path parameters, at least one response per operation.
fn assert_well_formed(doc: &Value, name: &str) {
    assert_eq!(doc["openapi"], "3.1.0", "{name}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string(), "{name}: info");
    let mut ids = BTreeSet::new();
    for (m, path) in operations(doc) {
        let op = &doc["paths"][&path][&m];
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{name}: {m} {path} has no operationId"));
        assert!(ids.insert(id.to_string()), "{name}: operationId {id} is used twice");
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{name}: {m} {path} documents no response");
        let declared: BTreeSet<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str())
            .collect();
        let in_template: BTreeSet<&str> = path.split('{').skip(1).filter_map(|s| s.split('}').next()).collect();
        assert_eq!(declared, in_template, "{name}: {m} {path}: path parameters");
    }
    let mut refs = vec![];
    collect_refs(doc, &mut refs);
    assert!(!refs.is_empty(), "{name}: no schema references");
    for r in refs {
        assert!(resolve(doc, &r).is_some(), "{name}: {r} does not resolve");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_are_served_on_both_listeners() {
    let app = spawn_app(Db::Sqlite).await;
    let public = fetch_json(&app.url("/.well-known/openapi.json")).await;
    let admin = fetch_json(&app.admin_url("/.well-known/openapi.json")).await;
    let v1 = fetch_json(&app.url("/v1/openapi.json")).await;
    // The served documents are the built ones plus `servers`.
    assert_eq!(public["servers"][0]["url"], app.public);
    assert_eq!(v1["servers"][0]["url"], app.public);
    assert_eq!(admin["servers"][0]["url"].as_str().unwrap().trim_end_matches('/'), app.admin);
    for (served, doc) in [(&public, Doc::Public), (&admin, Doc::Admin), (&v1, Doc::V1)] {
        let mut s = served.clone();
        s.as_object_mut().unwrap().remove("servers");
        assert_eq!(s, document(doc), "{doc:?}");
    }
    for (doc, name) in [(&public, "public"), (&admin, "admin"), (&v1, "v1")] {
        assert_well_formed(doc, name);
    }
    // Each listener documents its own routes; the v1 document only v1 routes.
    let paths = |d: &Value| d["paths"].as_object().unwrap().keys().cloned().collect::<BTreeSet<_>>();
    assert!(paths(&public).contains("/self-service/login/api"));
    assert!(paths(&public).contains("/v1/flows/settings/{flow_id}:submit"));
    assert!(!paths(&public).iter().any(|p| p.starts_with("/admin/")));
    assert!(paths(&admin).contains("/admin/identities/{id}"));
    assert!(paths(&admin).contains("/identities/{id}"), "the un-prefixed aliases are routes too");
    assert!(!paths(&admin).contains("/self-service/login/api"));
    assert!(paths(&v1).iter().all(|p| p.starts_with("/v1/")), "{:?}", paths(&v1));
    assert_eq!(paths(&v1), paths(&public).into_iter().filter(|p| p.starts_with("/v1/")).collect::<BTreeSet<_>>());
    // The v1 flow schema is the v1 shape.
    let schemas = &v1["components"]["schemas"];
    assert_eq!(schemas["V1UiText"]["properties"]["id"]["type"], "string");
    assert!(schemas["V1UiNodeAttributes"].to_string().contains("\"image\""));
    assert!(!schemas["V1UiNodeAttributes"].to_string().contains("\"img\""));
    assert!(schemas.get("Flow").is_none(), "only what the v1 paths use");
}

/// A concrete URL for a path template (dummy ids).
fn concrete(path: &str) -> String {
    path.replace("{id}", "00000000-0000-4000-8000-000000000000")
        .replace("{flow_id}", "00000000-0000-4000-8000-000000000000")
        .replace("{kind}", "totp")
        .replace("{provider}", "nope")
        .replace("{file}", "idflow.css")
}

/// Every documented operation is served: no 405, no answer of the router's fallback (a 404
/// "No route matches" / "No v1 endpoint matches", or a 307 to the other listener).
async fn assert_all_served(base: &str, doc: &Value) {
    let c = no_redirects();
    let ops = operations(doc);
    assert!(ops.len() > 10);
    for (m, path) in ops {
        let url = format!("{base}{}", concrete(&path));
        let method = reqwest::Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
        let mut req = c.request(method, &url).header("Accept", "application/json");
        if m != "get" && m != "delete" {
            req = req.json(&json!({}));
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        // Checklist T35, driven by the route table: no answer is cached, and every cookie set
        // is HttpOnly with a SameSite attribute and the path `/`.
        let header = |n: &str| resp.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        assert_eq!(header("cache-control").as_deref(), Some("no-store"), "{m} {path}");
        assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"), "{m} {path}");
        for c in resp.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap_or_default().to_ascii_lowercase();
            assert!(c.contains("; httponly") && c.contains("; samesite=") && c.contains("; path=/"), "{m} {path}: {c}");
        }
        let body = resp.text().await.unwrap();
        assert_ne!(status, 405, "{m} {path}: method not routed ({body})");
        assert_ne!(status, 307, "{m} {path}: sent to the other listener");
        assert!(
            !(status == 404 && (body.contains("No route matches") || body.contains("No v1 endpoint matches"))),
            "{m} {path}: answered by the fallback: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_is_served() {
    let app = spawn_app(Db::Sqlite).await;
    assert_all_served(&app.public, &document(Doc::Public)).await;
    assert_all_served(&app.admin, &document(Doc::Admin)).await;
    // The check can fail: an undocumented path is the fallback's.
    let resp =
        no_redirects().get(app.url("/self-service/nope")).header("Accept", "application/json").send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.text().await.unwrap().contains("No route matches"));
}

/// Routes are added only through the route tables (`.routes(routes!(…))`), which document
/// them: no plain axum `.route(…)` anywhere in the server's sources.
#[test]
fn routes_are_only_added_through_the_documented_tables() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = vec![];
    walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    assert!(files.len() > 10);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for pat in [".route(", ".route_service(", ".nest_service(", "Router::new()"] {
            assert!(!text.contains(pat), "{}: `{pat}` adds a route the OpenAPI document does not know", f.display());
        }
    }
}

#[test]
fn checked_in_v1_document_is_up_to_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi-v1.json");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == document_text(Doc::V1),
        "docs/openapi-v1.json is out of date: run `cargo run -p idflow-server -- openapi --v1 > docs/openapi-v1.json`"
    );
}

#[test]
fn cli_prints_the_documents() {
    for (args, doc) in [
        (&["openapi"][..], Doc::Public),
        (&["openapi", "--admin"][..], Doc::Admin),
        (&["openapi", "--v1"][..], Doc::V1),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_idflow")).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert_eq!(String::from_utf8(out.stdout).unwrap(), document_text(doc), "{args:?}");
    }
}

// ---- real responses against the documented schemas --------------------------------------

/// Validates a response body against the schema documented for (method, path, status).
struct Checker {
    doc: Value,
    checked: usize,
}

impl Checker {
    fn new(doc: Doc) -> Self {
        Checker { doc: document(doc), checked: 0 }
    }

    fn check(&mut self, method: &str, path: &str, status: u16, body: &Value) {
        let op = &self.doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        let resp = &op["responses"][status.to_string()];
        assert!(resp.is_object(), "{method} {path}: status {status} is not documented: {body}");
        let schema = resp["content"]["application/json"]["schema"].clone();
        assert!(schema.is_object(), "{method} {path} {status}: no JSON schema documented");
        let wrapped = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.doc["components"],
            "allOf": [schema],
        });
        let v = jsonschema::validator_for(&wrapped).unwrap();
        let errors: Vec<String> = v.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{method} {path} {status}: {errors:#?}\nbody: {body:#}");
        self.checked += 1;
    }
}

async fn answer(resp: reqwest::Response) -> (u16, Value) {
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

async fn kratos_responses_match_their_schemas(db: Db) {
    let app = spawn_app(db).await;
    let mut k = Checker::new(Doc::Public);
    let c = api_client();
    let email = unique_email();

    // Registration: the flow, a form error, success.
    let (s, flow) = answer(c.get(app.url("/self-service/registration/api")).send().await.unwrap()).await;
    k.check("get", "/self-service/registration/api", s, &flow);
    let submit = app.url(&format!("/self-service/registration?flow={}", flow["id"].as_str().unwrap()));
    let (s, bad) = answer(
        c.post(&submit)
            .json(&json!({"method": "password", "password": PASSWORD, "traits": {"email": "not-an-email"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    k.check("post", "/self-service/registration", s, &bad);
    let (s, reg) = answer(
        c.post(&submit)
            .json(&json!({"method": "password", "password": PASSWORD, "traits": {"email": email, "name": {"first": "A", "last": "B"}}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{reg}");
    k.check("post", "/self-service/registration", s, &reg);
    let (s, got) = answer(
        c.get(app.url(&format!("/self-service/registration/flows?id={}", flow["id"].as_str().unwrap())))
            .send()
            .await
            .unwrap(),
    )
    .await;
    k.check("get", "/self-service/registration/flows", s, &got);

    // Login: a wrong password, success.
    let (s, lflow) = answer(c.get(app.url("/self-service/login/api")).send().await.unwrap()).await;
    k.check("get", "/self-service/login/api", s, &lflow);
    let lsubmit = app.url(&format!("/self-service/login?flow={}", lflow["id"].as_str().unwrap()));
    let (s, wrong) = answer(
        c.post(&lsubmit)
            .json(&json!({"method": "password", "identifier": email, "password": "wrong-password-1"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    k.check("post", "/self-service/login", s, &wrong);
    let (s, login) = answer(
        c.post(&lsubmit)
            .json(&json!({"method": "password", "identifier": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{login}");
    k.check("post", "/self-service/login", s, &login);
    let token = login["session_token"].as_str().unwrap().to_string();

    // whoami, with and without a session; the session lists.
    let (s, me) =
        answer(c.get(app.url("/sessions/whoami")).header("X-Session-Token", &token).send().await.unwrap()).await;
    assert_eq!(s, 200);
    k.check("get", "/sessions/whoami", s, &me);
    let (s, nobody) = answer(c.get(app.url("/sessions/whoami")).send().await.unwrap()).await;
    assert_eq!(s, 401);
    k.check("get", "/sessions/whoami", s, &nobody);
    let (s, mine) = answer(c.get(app.url("/sessions")).header("X-Session-Token", &token).send().await.unwrap()).await;
    k.check("get", "/sessions", s, &mine);
    assert!(!mine.as_array().unwrap().is_empty(), "the registration's session is another session");

    // Settings: the flow with its identity, a profile change, a weak password.
    let (s, sflow) =
        answer(c.get(app.url("/self-service/settings/api")).header("X-Session-Token", &token).send().await.unwrap())
            .await;
    assert_eq!(s, 200);
    k.check("get", "/self-service/settings/api", s, &sflow);
    let ssubmit = app.url(&format!("/self-service/settings?flow={}", sflow["id"].as_str().unwrap()));
    let (s, done) = answer(
        c.post(&ssubmit)
            .header("X-Session-Token", &token)
            .json(&json!({"method": "profile", "traits": {"email": email, "name": {"first": "C", "last": "D"}}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{done}");
    k.check("post", "/self-service/settings", s, &done);
    let (s, weak) = answer(
        c.post(&ssubmit)
            .header("X-Session-Token", &token)
            .json(&json!({"method": "password", "password": "123"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    k.check("post", "/self-service/settings", s, &weak);

    // Browser flow as JSON, recovery and verification flows, schemas, errors.
    let (s, bflow) = answer(
        browser_client()
            .get(app.url("/self-service/login/browser"))
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    k.check("get", "/self-service/login/browser", s, &bflow);
    for kind in ["recovery", "verification"] {
        let (s, f) = answer(c.get(app.url(&format!("/self-service/{kind}/api"))).send().await.unwrap()).await;
        k.check("get", &format!("/self-service/{kind}/api"), s, &f);
    }
    let (s, schemas) = answer(c.get(app.url("/schemas")).send().await.unwrap()).await;
    k.check("get", "/schemas", s, &schemas);
    let (s, missing) = answer(
        c.get(app.url("/self-service/login/flows?id=00000000-0000-4000-8000-000000000000")).send().await.unwrap(),
    )
    .await;
    assert_eq!(s, 404);
    k.check("get", "/self-service/login/flows", s, &missing);
    let (s, malformed) = answer(c.get(app.url("/self-service/login/flows?id=nope")).send().await.unwrap()).await;
    assert_eq!(s, 400);
    k.check("get", "/self-service/login/flows", s, &malformed);
    let (s, logout) =
        answer(c.get(app.url("/self-service/logout/browser")).header("X-Session-Token", &token).send().await.unwrap())
            .await;
    assert_eq!(s, 200, "{logout}");
    k.check("get", "/self-service/logout/browser", s, &logout);

    // Admin: identities, one identity, sessions, an error.
    let mut a = Checker::new(Doc::Admin);
    let id = reg["identity"]["id"].as_str().unwrap();
    let (s, list) = answer(c.get(app.admin_url("/admin/identities")).send().await.unwrap()).await;
    assert_eq!(s, 200);
    a.check("get", "/admin/identities", s, &list);
    let (s, one) = answer(
        c.get(app.admin_url(&format!("/admin/identities/{id}?include_credential=password"))).send().await.unwrap(),
    )
    .await;
    a.check("get", "/admin/identities/{id}", s, &one);
    assert!(one["credentials"]["password"].is_object(), "{one}");
    let (s, sessions) =
        answer(c.get(app.admin_url(&format!("/admin/identities/{id}/sessions"))).send().await.unwrap()).await;
    a.check("get", "/admin/identities/{id}/sessions", s, &sessions);
    let (s, all) = answer(c.get(app.admin_url("/admin/sessions")).send().await.unwrap()).await;
    a.check("get", "/admin/sessions", s, &all);
    let (s, bad_id) = answer(c.get(app.admin_url("/admin/identities/not-a-uuid")).send().await.unwrap()).await;
    assert_eq!(s, 400);
    a.check("get", "/admin/identities/{id}", s, &bad_id);
    let (s, created) = answer(
        c.post(app.admin_url("/admin/identities"))
            .json(&json!({"traits": {"email": unique_email()}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 201);
    a.check("post", "/admin/identities", s, &created);
    let (s, code) =
        answer(c.post(app.admin_url("/admin/recovery/code")).json(&json!({"identity_id": id})).send().await.unwrap())
            .await;
    a.check("post", "/admin/recovery/code", s, &code);
    let (s, msgs) = answer(c.get(app.admin_url("/admin/courier/messages")).send().await.unwrap()).await;
    a.check("get", "/admin/courier/messages", s, &msgs);
    assert_eq!((k.checked, a.checked), (20, 8));
}
both_dbs!(kratos_responses_match_their_schemas);

async fn v1_responses_match_their_schemas(db: Db) {
    let sink = start_sink(Mode::Accept, None).await;
    let app = spawn_app_with(db, |c| {
        courier_cfg(c, Some(plain_uri(sink.addr)));
        c.selfservice.flows.recovery.enabled = true;
        c.selfservice.flows.verification.enabled = true;
    })
    .await;
    let mut k = Checker::new(Doc::V1);
    let c = api_client();
    let email = unique_email();

    let (s, rflow) = answer(c.get(app.url("/v1/flows/registration")).send().await.unwrap()).await;
    assert_eq!(s, 200);
    k.check("get", "/v1/flows/registration", s, &rflow);
    let rid = rflow["id"].as_str().unwrap();
    let (s, bad) = answer(
        c.post(app.url(&format!("/v1/flows/registration/{rid}:submit")))
            .json(&json!({"method": "password", "body": {"password": "1", "traits": {"email": email}}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400, "{bad}");
    k.check("post", "/v1/flows/registration/{flow_id}:submit", s, &bad);
    let (s, reg) = answer(
        c.post(app.url(&format!("/v1/flows/registration/{rid}:submit")))
            .json(&json!({"method": "password", "body": {"password": PASSWORD, "traits": {"email": email}}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{reg}");
    k.check("post", "/v1/flows/registration/{flow_id}:submit", s, &reg);

    let (s, lflow) = answer(c.get(app.url("/v1/flows/login")).send().await.unwrap()).await;
    k.check("get", "/v1/flows/login", s, &lflow);
    let lid = lflow["id"].as_str().unwrap();
    let (s, got) = answer(c.get(app.url(&format!("/v1/flows/login/{lid}"))).send().await.unwrap()).await;
    k.check("get", "/v1/flows/login/{flow_id}", s, &got);
    let (s, login) = answer(
        c.post(app.url(&format!("/v1/flows/login/{lid}:submit")))
            .json(&json!({"method": "password", "body": {"identifier": email, "password": PASSWORD}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{login}");
    k.check("post", "/v1/flows/login/{flow_id}:submit", s, &login);
    let bearer = format!("Bearer {}", login["session_token"].as_str().unwrap());

    let (s, me) =
        answer(c.get(app.url("/v1/sessions/current")).header("Authorization", &bearer).send().await.unwrap()).await;
    k.check("get", "/v1/sessions/current", s, &me);
    let (s, nobody) = answer(c.get(app.url("/v1/sessions/current")).send().await.unwrap()).await;
    assert_eq!(s, 401);
    k.check("get", "/v1/sessions/current", s, &nobody);

    let (s, sflow) =
        answer(c.get(app.url("/v1/flows/settings")).header("Authorization", &bearer).send().await.unwrap()).await;
    assert_eq!(s, 200);
    k.check("get", "/v1/flows/settings", s, &sflow);
    let sid = sflow["id"].as_str().unwrap();
    let submit = app.url(&format!("/v1/flows/settings/{sid}:submit"));
    let (s, done) = answer(
        c.post(&submit)
            .header("Authorization", &bearer)
            .json(&json!({"method": "profile", "body": {"traits": {"email": email, "name": {"first": "E"}}}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{done}");
    k.check("post", "/v1/flows/settings/{flow_id}:submit", s, &done);
    let (s, totp) = answer(
        c.post(&submit)
            .header("Authorization", &bearer)
            .json(&json!({"method": "totp", "body": {}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{totp}");
    assert!(totp.to_string().contains("\"image\""), "the QR code node");
    k.check("post", "/v1/flows/settings/{flow_id}:submit", s, &totp);
    let (s, weak) = answer(
        c.post(&submit)
            .header("Authorization", &bearer)
            .json(&json!({"method": "password", "body": {"password": "123"}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 400);
    assert!(weak["continue_flow"].is_object());
    k.check("post", "/v1/flows/settings/{flow_id}:submit", s, &weak);
    let (s, malformed) =
        answer(c.post(&submit).header("Authorization", &bearer).json(&json!({"nope": 1})).send().await.unwrap()).await;
    assert_eq!(s, 400);
    k.check("post", "/v1/flows/settings/{flow_id}:submit", s, &malformed);

    // Recovery and verification: a code sent (mail received by the SMTP sink), a wrong code,
    // the right one.
    for (n, kind) in ["verification", "recovery"].into_iter().enumerate() {
        let (s, f) = answer(c.get(app.url(&format!("/v1/flows/{kind}"))).send().await.unwrap()).await;
        assert_eq!(s, 200, "{f}");
        k.check("get", &format!("/v1/flows/{kind}"), s, &f);
        let submit = app.url(&format!("/v1/flows/{kind}/{}:submit", f["id"].as_str().unwrap()));
        let template = format!("/v1/flows/{kind}/{{flow_id}}:submit");
        let (s, sent) =
            answer(c.post(&submit).json(&json!({"method": "code", "body": {"email": email}})).send().await.unwrap())
                .await;
        assert_eq!(s, 200, "{sent}");
        k.check("post", &template, s, &sent);
        // Registration mailed a verification code first.
        let code = six_digit_code(&quoted_printable_decode(&sink.mail_to(&email, n + 2).await));
        assert_eq!(code.len(), 6);
        let (s, wrong) =
            answer(c.post(&submit).json(&json!({"method": "code", "body": {"code": "000000"}})).send().await.unwrap())
                .await;
        assert_eq!(s, 400, "{wrong}");
        k.check("post", &template, s, &wrong);
        let (s, done) =
            answer(c.post(&submit).json(&json!({"method": "code", "body": {"code": code}})).send().await.unwrap())
                .await;
        assert_eq!(s, 200, "{done}");
        k.check("post", &template, s, &done);
    }
    let (s, unknown) =
        answer(c.get(app.url("/v1/flows/login/00000000-0000-4000-8000-000000000000")).send().await.unwrap()).await;
    assert_eq!(s, 404);
    k.check("get", "/v1/flows/login/{flow_id}", s, &unknown);
    assert!(k.checked >= 22);
}
both_dbs!(v1_responses_match_their_schemas);
