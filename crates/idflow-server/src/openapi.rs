//! The route tables of both listeners and the OpenAPI 3.1 documents generated from them.
//!
//! Every route is registered through a [`Routes`] table (utoipa-axum's `OpenApiRouter`): a
//! handler carries its `#[utoipa::path]` (method, path, parameters, responses with the wire
//! types of `wire.rs`, `http/v1.rs`, `http/courier.rs` and the core's UI types), and
//! `.routes(routes!(handler))` adds it to the router and to the document at once, so the two
//! cannot drift. Adding a documented route is one line in its module's `routes()`.
//!
//! Documents (built once, without configuration, so the checked-in `docs/openapi-v1.json` is
//! reproducible; the served copies add `servers` with the configured base URL):
//! - public listener `GET /.well-known/openapi.json`: the Kratos-compatible public routes, the
//!   v1 routes, the UI pages (HTML, tag `ui`) and the health and document routes;
//! - admin listener `GET /.well-known/openapi.json`: the admin routes (under `/admin` and their
//!   un-prefixed aliases), health, metrics;
//! - public listener `GET /v1/openapi.json`: the v1 part alone (`idflow openapi --v1`).
//!
//! Built documents are post-processed in one place ([`finish`]): the v1 submit operations are
//! listed under `…/{flow_id}:submit` (the router matches that one segment as `{flow_id}`), the
//! v1 flow schemas are derived from the Kratos ones (string message ids, `image` nodes),
//! operation ids are made unique (a handler serving GET and POST; the admin aliases).

use crate::http::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

/// A route table: the axum router and the OpenAPI paths of its routes.
pub type Routes = OpenApiRouter<AppState>;

/// Changes the method router of a documented route (a fallback for other methods, `any`),
/// keeping its documentation.
pub fn map_methods(
    r: UtoipaMethodRouter<AppState>,
    f: impl FnOnce(MethodRouter<AppState>) -> MethodRouter<AppState>,
) -> UtoipaMethodRouter<AppState> {
    let (schemas, paths, methods) = r;
    (schemas, paths, f(methods))
}

/// Which document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doc {
    /// The public listener: Kratos-compatible public routes, v1, UI, health.
    Public,
    /// The admin listener.
    Admin,
    /// The v1 routes alone.
    V1,
}

/// Every route of the public listener.
pub fn public_routes() -> Routes {
    crate::http::kratos::routes()
        .merge(crate::http::oidc::routes())
        .merge(crate::http::v1::routes())
        .merge(crate::http::account::routes())
        .merge(crate::ui::routes())
        .merge(health_routes())
        .routes(routes!(public_document))
        .routes(routes!(v1_document))
}

/// Every route of the admin listener (the metrics handler reads an `Extension<Arc<Metrics>>`).
pub fn admin_routes() -> Routes {
    crate::http::admin::routes()
        .merge(health_routes())
        .routes(routes!(crate::metrics::render_metrics))
        .routes(routes!(admin_document))
}

fn health_routes() -> Routes {
    Routes::new().routes(routes!(crate::app::alive)).routes(routes!(crate::app::ready))
}

/// The document (without `servers`).
pub fn document(doc: Doc) -> Value {
    let routes = match doc {
        Doc::Admin => admin_routes(),
        Doc::Public | Doc::V1 => public_routes(),
    };
    finish(doc, serde_json::to_value(routes.into_openapi()).unwrap_or(Value::Null))
}

/// The document as served and checked in: pretty JSON with a final newline.
pub fn document_text(doc: Doc) -> String {
    let mut s = serde_json::to_string_pretty(&document(doc)).unwrap_or_default();
    s.push('\n');
    s
}

static DOCS: LazyLock<HashMap<&'static str, Value>> = LazyLock::new(|| {
    HashMap::from([("public", document(Doc::Public)), ("admin", document(Doc::Admin)), ("v1", document(Doc::V1))])
});

/// A served document: the built one with `servers` naming this listener's base URL.
fn serve(key: &str, base: &str) -> Response {
    let mut v = DOCS.get(key).cloned().unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("servers".into(), json!([{ "url": base }]));
    }
    let mut resp = (StatusCode::OK, axum::Json(v)).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    resp
}

/// The public listener's OpenAPI document.
#[utoipa::path(
    get,
    path = "/.well-known/openapi.json",
    tag = "metadata",
    operation_id = "getPublicOpenApiDocument",
    responses((status = 200, description = "This OpenAPI 3.1 document.", body = Object))
)]
async fn public_document(State(state): State<AppState>) -> Response {
    serve("public", state.engine.base())
}

/// The v1 routes' OpenAPI document (the reference of the v1 API).
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "v1",
    operation_id = "v1GetOpenApiDocument",
    responses((status = 200, description = "The v1 OpenAPI 3.1 document.", body = Object))
)]
async fn v1_document(State(state): State<AppState>) -> Response {
    serve("v1", state.engine.base())
}

/// The admin listener's OpenAPI document.
#[utoipa::path(
    get,
    path = "/.well-known/openapi.json",
    tag = "metadata",
    operation_id = "getAdminOpenApiDocument",
    responses((status = 200, description = "This OpenAPI 3.1 document.", body = Object))
)]
async fn admin_document(State(state): State<AppState>) -> Response {
    serve("admin", state.engine.cfg.admin_base().trim_end_matches('/'))
}

const V1_TAIL: &str = "{flow_id}";

/// Post-processing of a built document (see the module docs).
pub fn finish(doc: Doc, mut v: Value) -> Value {
    let Value::Object(root) = &mut v else { return v };
    let (title, description) = match doc {
        Doc::Public => (
            "idflow public API",
            "The public listener: the Kratos-compatible self-service and session routes, the v1 API, the UI pages.",
        ),
        Doc::Admin => ("idflow admin API", "The admin listener: identities, sessions, recovery, courier messages."),
        Doc::V1 => (
            "idflow v1 API",
            "The v1 dialect: JSON in and out, `Authorization: Bearer <session_token>`, errors in the `AVNOLOGY_AUTH_xxx` envelope.",
        ),
    };
    root.insert(
        "info".into(),
        json!({
            "title": title,
            "description": description,
            "version": env!("CARGO_PKG_VERSION"),
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
        }),
    );
    let mut paths = match root.remove("paths") {
        Some(Value::Object(p)) => p,
        _ => Map::new(),
    };
    if doc != Doc::Admin {
        paths = split_v1_submits(paths);
    }
    if doc == Doc::V1 {
        paths.retain(|p, _| p.starts_with("/v1/"));
    }
    unique_operation_ids(&mut paths);
    let mut sorted: Vec<(String, Value)> = paths.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    root.insert("paths".into(), Value::Object(sorted.into_iter().collect()));
    let components = root.entry("components").or_insert_with(|| json!({}));
    if let Value::Object(c) = components {
        if let Some(Value::Object(schemas)) = c.get_mut("schemas") {
            derive_v1_schemas(schemas);
        }
        c.insert(
            "securitySchemes".into(),
            json!({
                "session_token": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The session token of a login or registration (`Authorization: Bearer <token>`)."
                }
            }),
        );
    }
    if doc == Doc::V1 {
        prune_schemas(root);
    }
    // Tags in use, described.
    let used: BTreeSet<String> = root
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|p| p.values())
        .filter_map(Value::as_object)
        .flat_map(|item| item.values())
        .filter_map(|op| op.get("tags").and_then(Value::as_array))
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    let described = [
        ("frontend", "Kratos-compatible self-service flows, sessions, schemas."),
        ("v1", "The v1 dialect."),
        ("ui", "The server-rendered UI pages (HTML)."),
        ("identity", "Kratos-compatible admin routes: identities, sessions, recovery."),
        ("courier", "Mail messages."),
        ("metadata", "Health, metrics and this document."),
    ];
    let tags: Vec<Value> = described
        .iter()
        .filter(|(n, _)| used.contains(*n))
        .map(|(n, d)| json!({ "name": n, "description": d }))
        .collect();
    root.insert("tags".into(), Value::Array(tags));
    // A fixed key order: openapi, info, tags, paths, components.
    let mut ordered = Map::new();
    for k in ["openapi", "info", "tags", "paths", "components"] {
        if let Some(x) = root.remove(k) {
            ordered.insert(k.into(), x);
        }
    }
    ordered.append(root);
    Value::Object(ordered)
}

/// v1: `GET …/{flow_id}` and `POST …/{flow_id}` share one router path; the document lists the
/// POST where clients send it, `…/{flow_id}:submit`.
fn split_v1_submits(paths: Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (path, item) in paths {
        if path.starts_with("/v1/flows/")
            && path.ends_with(V1_TAIL)
            && let Value::Object(mut ops) = item
        {
            if let Some(post) = ops.remove("post") {
                out.insert(format!("{path}:submit"), json!({ "post": post }));
            }
            out.insert(path, Value::Object(ops));
        } else {
            out.insert(path, item);
        }
    }
    out
}

/// OpenAPI requires unique operation ids: a handler serving two methods gets the method as a
/// suffix on the non-POST one; an un-prefixed admin alias gets `Unprefixed`.
fn unique_operation_ids(paths: &mut Map<String, Value>) {
    let prefixed: BTreeSet<String> = paths.keys().filter(|p| p.starts_with("/admin/")).cloned().collect();
    for (path, item) in paths.iter_mut() {
        let Value::Object(ops) = item else { continue };
        let mut count: HashMap<String, usize> = HashMap::new();
        for op in ops.values() {
            if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                *count.entry(id.to_string()).or_default() += 1;
            }
        }
        let alias = prefixed.contains(&format!("/admin{path}"));
        for (method, op) in ops.iter_mut() {
            let Some(id) = op.get("operationId").and_then(Value::as_str).map(str::to_string) else { continue };
            let mut new = id.clone();
            if count.get(&id).copied().unwrap_or(0) > 1 && method != "post" {
                let mut m = method.chars();
                let cap: String = m.next().map(|c| c.to_ascii_uppercase()).into_iter().chain(m).collect();
                new.push_str(&cap);
            }
            if alias {
                new.push_str("Unprefixed");
                op["description"] = json!(format!("The same as `/admin{path}` (served without the prefix too)."));
            }
            op["operationId"] = json!(new);
        }
    }
}

/// The UI schemas in the v1 shape, derived from the Kratos ones: `V1UiText` with a string `id`,
/// `image` instead of `img` nodes; `V1Flow` is `Flow` with the flow kind as `type` and the v1 UI.
fn derive_v1_schemas(schemas: &mut Map<String, Value>) {
    const COPIED: [&str; 5] = ["UiContainer", "UiNode", "UiNodeAttributes", "UiNodeMeta", "UiText"];
    let mut copies = vec![];
    for name in COPIED.iter().chain(["Flow"].iter()) {
        let Some(mut s) = schemas.get(*name).cloned() else { continue };
        rewrite_refs(&mut s, &COPIED);
        copies.push((format!("V1{name}"), s));
    }
    for (name, mut s) in copies {
        match name.as_str() {
            "V1UiText" => {
                s["properties"]["id"] = json!({ "type": "string", "description": "The message id (`\"1050001\"`)." })
            }
            "V1UiNodeAttributes" => rename_enum_value(&mut s, "img", "image"),
            "V1Flow" => {
                s["description"] = json!(
                    "A flow in the v1 shape: the Kratos flow with `type` the flow kind, `ui.action` the absolute `:submit` URL, string message ids and `image` nodes."
                );
                s["properties"]["type"] = json!({
                    "type": "string",
                    "enum": ["login", "registration", "settings", "recovery", "verification"],
                    "description": "The flow kind."
                });
            }
            _ => {}
        }
        schemas.insert(name, s);
    }
}

fn rewrite_refs(v: &mut Value, names: &[&str]) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref")
                && let Some(n) = r.strip_prefix("#/components/schemas/")
                && names.contains(&n)
            {
                *r = format!("#/components/schemas/V1{n}");
            }
            m.values_mut().for_each(|x| rewrite_refs(x, names));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite_refs(x, names)),
        _ => {}
    }
}

fn rename_enum_value(v: &mut Value, from: &str, to: &str) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Array(e)) = m.get_mut("enum") {
                for x in e.iter_mut() {
                    if x == from {
                        *x = json!(to);
                    }
                }
            }
            m.values_mut().for_each(|x| rename_enum_value(x, from, to));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rename_enum_value(x, from, to)),
        _ => {}
    }
}

/// Keep only the schemas the paths reach.
fn prune_schemas(root: &mut Map<String, Value>) {
    let mut reached: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<Value> = vec![root.get("paths").cloned().unwrap_or(Value::Null)];
    let all = root.get("components").and_then(|c| c.get("schemas")).cloned().unwrap_or(Value::Null);
    while let Some(v) = todo.pop() {
        let mut refs = vec![];
        collect_refs(&v, &mut refs);
        for r in refs {
            if reached.insert(r.clone())
                && let Some(s) = all.get(&r)
            {
                todo.push(s.clone());
            }
        }
    }
    if let Some(Value::Object(s)) = root.get_mut("components").and_then(|c| c.get_mut("schemas")) {
        s.retain(|k, _| reached.contains(k));
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(n) = m.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                out.push(n.to_string());
            }
            m.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}
