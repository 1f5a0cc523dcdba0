//! Admin API (identities, sessions, courier messages in `courier.rs`), served on the admin listener under `/admin/...` and,
//! for convenience, under the same paths without the prefix.

use super::error::KratosError;
use super::{AppState, Ctx, json_response};
use crate::http::responses as R;
use crate::openapi::Routes;
use crate::wire::{self, IdentityView};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use idflow_core::error::Error;
use idflow_core::model::{FlowType, Identity};
use idflow_core::selfservice::identities::IdentityInput;
use idflow_core::store::IdentityFilter;
use serde_json::{Value, json};
use utoipa_axum::routes;
use uuid::Uuid;

type Answer = Result<Response, KratosError>;

/// The admin routes, each documented by its `#[utoipa::path]`: under `/admin` and, for
/// convenience, under the same paths without the prefix (listed as aliases in the document).
pub fn routes() -> Routes {
    let r = Routes::new()
        .routes(routes!(list_identities, create_identity))
        .routes(routes!(get_identity, update_identity, patch_identity, delete_identity))
        .routes(routes!(delete_credential))
        .routes(routes!(identity_sessions, delete_identity_sessions))
        .routes(routes!(identity_activity))
        .routes(routes!(create_recovery_code))
        .routes(routes!(create_recovery_link))
        .routes(routes!(list_sessions))
        .routes(routes!(get_session, disable_session))
        .merge(super::courier::routes());
    Routes::new().nest("/admin", r.clone()).merge(r)
}

fn parse_id(s: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(s).map_err(|_| Error::bad_request("The id is not a valid UUID."))
}

fn admin_identity(state: &AppState, i: &Identity, include: &[String]) -> Value {
    let view = if include.is_empty() { IdentityView::Admin } else { IdentityView::AdminWithConfigs };
    wire::identity(state.engine.base(), i, view, include)
}

/// The JSON body of an admin request: size, content type and nesting are checked as for the
/// self-service routes, with errors in the Kratos envelope.
fn json_body(state: &AppState, ctx: &Ctx, body: Result<Bytes, BytesRejection>) -> Result<Value, Error> {
    let bytes = body.map_err(|e| super::body_error(&e))?;
    let ct = ctx.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    super::parse_json(ct, &bytes, state.engine.cfg.limits.max_json_depth)
}

fn parse_input(v: Value) -> Result<IdentityInput, Error> {
    serde_json::from_value(v).map_err(|e| Error::bad_request(format!("Unable to decode the identity: {e}")))
}

/// Repeated query parameters (`include_credential`, `ids`).
fn multi(uri: &axum::http::Uri, name: &str) -> Vec<String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

fn single(uri: &axum::http::Uri, name: &str) -> Option<String> {
    multi(uri, name).into_iter().next()
}

#[utoipa::path(
    post,
    path = "/identities",
    tag = "identity",
    operation_id = "createIdentity",
    request_body(content = Object, description = "An identity: `schema_id`, `traits`, optional `state`, `credentials` (`password.config.password` or `hashed_password`, …), `metadata_public`, `metadata_admin`, `verifiable_addresses`, `recovery_addresses`, `external_id`."),
    responses(
        (status = 201, description = "The identity.", body = wire::IdentityJson),
        R::AdminBadRequest, R::Conflict, R::TooLarge, R::Unavailable
    )
)]
async fn create_identity(State(state): State<AppState>, ctx: Ctx, body: Result<Bytes, BytesRejection>) -> Answer {
    let input = parse_input(json_body(&state, &ctx, body)?)?;
    let i = state.engine.admin_create_identity(input).await?;
    let mut resp = json_response(StatusCode::CREATED, admin_identity(&state, &i, &[]));
    if let Ok(v) = HeaderValue::from_str(&format!("{}/admin/identities/{}", state.engine.cfg.admin_base(), i.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// `POST /admin/recovery/code` `{identity_id, expires_in?, flow_type?}`: 201
/// `{recovery_link, recovery_code, expires_at}`.
#[utoipa::path(
    post,
    path = "/recovery/code",
    tag = "identity",
    operation_id = "createRecoveryCodeForIdentity",
    request_body(content = Object, description = "`identity_id`, optional `expires_in` (duration), `flow_type` (`browser` or `api`)."),
    responses(
        (status = 201, description = "The code and the link to enter it.", body = wire::AdminRecoveryJson),
        R::AdminBadRequest, R::NotFound, R::TooLarge, R::Unavailable
    )
)]
async fn create_recovery_code(State(state): State<AppState>, ctx: Ctx, body: Result<Bytes, BytesRejection>) -> Answer {
    admin_recovery(&state, &ctx, body, false).await
}

/// `POST /admin/recovery/link` `{identity_id, expires_in?}`: 200 `{recovery_link, expires_at}`;
/// opening the link recovers the account in that browser.
#[utoipa::path(
    post,
    path = "/recovery/link",
    tag = "identity",
    operation_id = "createRecoveryLinkForIdentity",
    request_body(content = Object, description = "`identity_id`, optional `expires_in` (duration)."),
    responses(
        (status = 200, description = "The recovery link.", body = wire::AdminRecoveryJson),
        R::AdminBadRequest, R::NotFound, R::TooLarge, R::Unavailable
    )
)]
async fn create_recovery_link(State(state): State<AppState>, ctx: Ctx, body: Result<Bytes, BytesRejection>) -> Answer {
    admin_recovery(&state, &ctx, body, true).await
}

async fn admin_recovery(state: &AppState, ctx: &Ctx, body: Result<Bytes, BytesRejection>, link: bool) -> Answer {
    let v = json_body(state, ctx, body)?;
    let id = v
        .get("identity_id")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::bad_request("identity_id is missing."))
        .and_then(parse_id)?;
    let expires_in = match v.get("expires_in").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        Some(s) => Some(
            idflow_core::config::parse_duration(s)
                .map_err(|e| Error::bad_request(format!("expires_in is not a duration: {e}")))?,
        ),
        None => None,
    };
    let flow_type = match v.get("flow_type").and_then(Value::as_str) {
        None | Some("browser") => FlowType::Browser,
        Some("api") => FlowType::Api,
        Some(other) => {
            return Err(Error::bad_request(format!("flow_type must be api or browser, not {other:?}.")).into());
        }
    };
    let flow_type = if link { FlowType::Browser } else { flow_type };
    let (flow, code, expires_at) = state.engine.admin_recovery_code(id, expires_in, flow_type, link).await?;
    let expires_at = expires_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let base = state.engine.url("/self-service/recovery");
    let flow_id = flow.id.to_string();
    if link {
        let url = idflow_core::selfservice::with_query(&base, &[("flow", &flow_id), ("token", &code)]);
        let body = wire::AdminRecoveryJson { recovery_link: url, recovery_code: None, expires_at };
        return Ok(json_response(StatusCode::OK, serde_json::to_value(body).unwrap_or(Value::Null)));
    }
    let url = idflow_core::selfservice::with_query(&base, &[("flow", &flow_id)]);
    let body = wire::AdminRecoveryJson { recovery_link: url, recovery_code: Some(code), expires_at };
    Ok(json_response(StatusCode::CREATED, serde_json::to_value(body).unwrap_or(Value::Null)))
}

#[utoipa::path(
    get,
    path = "/identities",
    tag = "identity",
    operation_id = "listIdentities",
    params(("page_size" = Option<u32>, Query, description = "1 to 500 (default 100)."), ("page_token" = Option<String>, Query, description = "From the `Link` header of the previous page."), ("credentials_identifier" = Option<String>, Query, description = "Only the identity with this identifier."), ("ids" = Option<Vec<uuid::Uuid>>, Query, description = "Only these identities."), ("include_credential" = Option<Vec<String>>, Query, description = "Include the configuration of these credential types.")),
    responses(
        (status = 200, description = "Identities, oldest first; a `Link` header names the next page.", body = Vec<wire::IdentityJson>),
        R::AdminBadRequest, R::Unavailable
    )
)]
async fn list_identities(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let uri = &ctx.uri;
    let include = multi(uri, "include_credential");
    let size: u32 = single(uri, "page_size")
        .or_else(|| single(uri, "per_page"))
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
        .clamp(1, 500);
    let after = match single(uri, "page_token").filter(|s| !s.is_empty()) {
        Some(t) => Some(parse_id(&t).map_err(|_| Error::bad_request("The page_token is invalid."))?),
        None => None,
    };
    let mut filter = IdentityFilter {
        credentials_identifier: single(uri, "credentials_identifier")
            .map(|c| idflow_core::schema::normalize_identifier(&c)),
        ids: vec![],
    };
    for id in multi(uri, "ids") {
        filter.ids.push(parse_id(&id)?);
    }
    if filter.credentials_identifier.is_some() && !filter.ids.is_empty() {
        return Err(Error::bad_request("You cannot combine multiple filters in this API").into());
    }
    let list = state.engine.store.list_identities(&filter, after, size).await?;
    let full = filter.credentials_identifier.is_some() || !include.is_empty();
    let v: Vec<Value> = list
        .iter()
        .map(|i| {
            let mut j = admin_identity(&state, i, &include);
            if !full && let Value::Object(m) = &mut j {
                m.remove("credentials");
            }
            j
        })
        .collect();
    let mut resp = json_response(StatusCode::OK, Value::Array(v));
    if list.len() == size as usize
        && let Some(last) = list.last()
    {
        let link = format!(
            "<{}/admin/identities?page_size={size}&page_token={}>; rel=\"next\"",
            state.engine.cfg.admin_base(),
            last.id
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(resp)
}

async fn load(state: &AppState, id: &str) -> Result<Identity, Error> {
    let id = parse_id(id)?;
    state.engine.store.get_identity(id).await?.ok_or_else(|| Error::not_found("Unable to locate the resource"))
}

#[utoipa::path(
    get,
    path = "/identities/{id}",
    tag = "identity",
    operation_id = "getIdentity",
    params(("id" = uuid::Uuid, Path, description = "The identity id."), ("include_credential" = Option<Vec<String>>, Query, description = "Include the configuration of these credential types.")),
    responses(
        (status = 200, description = "The identity.", body = wire::IdentityJson),
        R::AdminBadRequest, R::NotFound, R::Unavailable
    )
)]
async fn get_identity(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Answer {
    let include = multi(&ctx.uri, "include_credential");
    if let Some(bad) = include.iter().find(|t| idflow_core::model::CredentialType::parse(t).is_none()) {
        return Err(Error::bad_request(format!("Unknown credential type {bad:?}.")).into());
    }
    let i = load(&state, &id).await?;
    Ok(json_response(StatusCode::OK, admin_identity(&state, &i, &include)))
}

#[utoipa::path(
    put,
    path = "/identities/{id}",
    tag = "identity",
    operation_id = "updateIdentity",
    params(("id" = uuid::Uuid, Path, description = "The identity id.")),
    request_body(content = Object, description = "An identity: `schema_id`, `traits`, optional `state`, `credentials` (`password.config.password` or `hashed_password`, …), `metadata_public`, `metadata_admin`, `verifiable_addresses`, `recovery_addresses`, `external_id`."),
    responses(
        (status = 200, description = "The identity.", body = wire::IdentityJson),
        R::AdminBadRequest, R::NotFound, R::Conflict, R::TooLarge, R::Unavailable
    )
)]
async fn update_identity(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let id = parse_id(&id)?;
    let input = parse_input(json_body(&state, &ctx, body)?)?;
    let i = state.engine.admin_update_identity(id, input, &ctx.req).await?;
    Ok(json_response(StatusCode::OK, admin_identity(&state, &i, &[])))
}

/// JSON-Patch (RFC 6902: add, replace, remove, test) over the admin form of the identity.
#[utoipa::path(
    patch,
    path = "/identities/{id}",
    tag = "identity",
    operation_id = "patchIdentity",
    params(("id" = uuid::Uuid, Path, description = "The identity id.")),
    request_body(content = Vec<Object>, description = "A JSON Patch (RFC 6902) of the identity."),
    responses(
        (status = 200, description = "The identity.", body = wire::IdentityJson),
        R::AdminBadRequest, R::NotFound, R::Conflict, R::TooLarge, R::Unavailable
    )
)]
async fn patch_identity(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let ops = json_body(&state, &ctx, body)?;
    let identity = load(&state, &id).await?;
    let ops: Vec<Value> =
        serde_json::from_value(ops).map_err(|e| Error::bad_request(format!("Unable to decode the JSON patch: {e}")))?;
    let mut doc = json!({
        "schema_id": identity.schema_id,
        "traits": identity.traits,
        "state": identity.state.as_str(),
        "metadata_public": identity.metadata_public,
        "metadata_admin": identity.metadata_admin,
        "external_id": identity.external_id,
    });
    for op in &ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let path = op.get("path").and_then(Value::as_str).unwrap_or_default();
        if !["/schema_id", "/traits", "/state", "/metadata_public", "/metadata_admin", "/external_id"]
            .iter()
            .any(|p| path == *p || path.starts_with(&format!("{p}/")))
        {
            return Err(
                Error::bad_request(format!("failed to apply JSON patch: path {path:?} may not be changed")).into()
            );
        }
        apply_patch_op(&mut doc, kind, path, op.get("value").cloned())
            .map_err(|e| Error::bad_request(format!("failed to apply JSON patch: {e}")))?;
    }
    let input: IdentityInput = serde_json::from_value(json!({
        "schema_id": doc["schema_id"], "traits": doc["traits"], "state": doc["state"],
        "metadata_public": doc["metadata_public"], "metadata_admin": doc["metadata_admin"],
        "external_id": doc["external_id"],
        "verifiable_addresses": identity.verifiable_addresses.iter().map(|a| json!({"value": a.value, "via": a.via, "verified": a.verified, "status": a.status})).collect::<Vec<_>>(),
    }))
    .map_err(|e| Error::bad_request(format!("failed to apply JSON patch: {e}")))?;
    let i = state.engine.admin_update_identity(identity.id, input, &ctx.req).await?;
    Ok(json_response(StatusCode::OK, admin_identity(&state, &i, &[])))
}

fn apply_patch_op(doc: &mut Value, op: &str, path: &str, value: Option<Value>) -> Result<(), String> {
    let segs: Vec<String> = path.split('/').skip(1).map(|s| s.replace("~1", "/").replace("~0", "~")).collect();
    let (last, parents) = segs.split_last().ok_or("empty path")?;
    let mut cur = doc;
    for s in parents {
        cur = match cur {
            Value::Object(m) => m.get_mut(s).ok_or(format!("path {path} not found"))?,
            Value::Array(a) => a.get_mut(s.parse::<usize>().map_err(|_| "bad index")?).ok_or("index out of range")?,
            _ => return Err(format!("path {path} not found")),
        };
    }
    match (op, cur) {
        ("add" | "replace", Value::Object(m)) => {
            if op == "replace" && !m.contains_key(last) {
                return Err(format!("path {path} not found"));
            }
            m.insert(last.clone(), value.ok_or("missing value")?);
        }
        ("add", Value::Array(a)) => {
            let v = value.ok_or("missing value")?;
            if last == "-" {
                a.push(v);
            } else {
                let i: usize = last.parse().map_err(|_| "bad index")?;
                if i > a.len() {
                    return Err("index out of range".into());
                }
                a.insert(i, v);
            }
        }
        ("replace", Value::Array(a)) => {
            let i: usize = last.parse().map_err(|_| "bad index")?;
            *a.get_mut(i).ok_or("index out of range")? = value.ok_or("missing value")?;
        }
        ("remove", Value::Object(m)) => {
            m.remove(last).ok_or(format!("path {path} not found"))?;
        }
        ("remove", Value::Array(a)) => {
            let i: usize = last.parse().map_err(|_| "bad index")?;
            if i >= a.len() {
                return Err("index out of range".into());
            }
            a.remove(i);
        }
        ("test", Value::Object(m)) => {
            if m.get(last) != value.as_ref() {
                return Err("test failed".into());
            }
        }
        (op, _) => return Err(format!("unsupported operation {op:?} at {path}")),
    }
    Ok(())
}

#[utoipa::path(
    delete,
    path = "/identities/{id}",
    tag = "identity",
    operation_id = "deleteIdentity",
    params(("id" = uuid::Uuid, Path, description = "The identity id.")),
    responses(
        (status = 204, description = "Deleted."),
        R::AdminBadRequest, R::NotFound, R::Unavailable
    )
)]
async fn delete_identity(State(state): State<AppState>, _: Ctx, Path(id): Path<String>) -> Answer {
    let id = parse_id(&id)?;
    if !state.engine.store.delete_identity(id).await? {
        return Err(Error::not_found("Unable to locate the resource").into());
    }
    tracing::info!(identity_id = %id, "identity deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    delete,
    path = "/identities/{id}/credentials/{kind}",
    tag = "identity",
    operation_id = "deleteIdentityCredentials",
    params(("id" = uuid::Uuid, Path, description = "The identity id."), ("kind" = String, Path, description = "`totp`, `lookup_secret`, `webauthn`, `passkey`, `oidc`, …")),
    responses(
        (status = 204, description = "Deleted."),
        R::AdminBadRequest, R::NotFound, R::Conflict, R::Unavailable
    )
)]
async fn delete_credential(
    State(state): State<AppState>,
    ctx: Ctx,
    Path((id, kind)): Path<(String, String)>,
) -> Answer {
    state.engine.admin_delete_credential(parse_id(&id)?, &kind, &ctx.req).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    get,
    path = "/identities/{id}/sessions",
    tag = "identity",
    operation_id = "listIdentitySessions",
    params(("id" = uuid::Uuid, Path, description = "The identity id."), ("active" = Option<bool>, Query, description = "Only active (or inactive) sessions.")),
    responses(
        (status = 200, description = "The identity's sessions.", body = Vec<wire::SessionJson>),
        R::AdminBadRequest, R::NotFound, R::Unavailable
    )
)]
async fn identity_sessions(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Answer {
    let active = single(&ctx.uri, "active").map(|a| a == "true");
    let identity = load(&state, &id).await?;
    let list = state.engine.store.list_sessions(Some(identity.id), active == Some(true), None, 1000).await?;
    let now = state.engine.clock.now();
    let ident = admin_identity(&state, &identity, &[]);
    let v: Vec<Value> = list
        .iter()
        .filter(|s| active != Some(false) || !s.is_active(now))
        .map(|s| wire::session(s, Some(ident.clone()), now))
        .collect();
    Ok(json_response(StatusCode::OK, Value::Array(v)))
}

#[utoipa::path(
    get,
    path = "/identities/{id}/activity",
    tag = "identity",
    operation_id = "listIdentityActivity",
    description = "idflow extension: the identity's activity log, newest first (`Link` header to the next page).",
    params(
        ("id" = uuid::Uuid, Path, description = "The identity id."),
        ("page_size" = Option<u32>, Query, description = "1 to 1000 (default 250)."),
        ("page_token" = Option<String>, Query, description = "From the `Link` header of the previous page.")
    ),
    responses(
        (status = 200, description = "Activity entries.", body = Vec<wire::ActivityJson>),
        (status = 400, description = "Bad request (malformed id or parameter).", body = wire::ErrorEnvelope),
        R::NotFound, R::Unavailable
    )
)]
/// `GET /admin/identities/{id}/activity`: the identity's activity log, newest first
/// (`page_size`, `page_token`, `Link` header to the next page); 404 for an unknown identity.
async fn identity_activity(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Answer {
    let (after, size) = super::activity_page(&ctx.uri)?;
    let identity = load(&state, &id).await?;
    let list = state.engine.list_activity(identity.id, after, size).await?;
    let next = super::activity_next(&list, size).map(|t| {
        format!(
            "{}/admin/identities/{}/activity?page_size={size}&page_token={t}",
            state.engine.cfg.admin_base(),
            identity.id
        )
    });
    Ok(super::activity_response(&list, next))
}

#[utoipa::path(
    delete,
    path = "/identities/{id}/sessions",
    tag = "identity",
    operation_id = "deleteIdentitySessions",
    params(("id" = uuid::Uuid, Path, description = "The identity id.")),
    responses(
        (status = 204, description = "Every session of the identity is revoked."),
        R::AdminBadRequest, R::NotFound, R::Unavailable
    )
)]
async fn delete_identity_sessions(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Answer {
    let identity = load(&state, &id).await?;
    state.engine.admin_delete_sessions(identity.id, &ctx.req).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    get,
    path = "/sessions",
    tag = "identity",
    operation_id = "listSessions",
    params(("active" = Option<bool>, Query, description = "Only active (or inactive) sessions."), ("page_size" = Option<u32>, Query, description = "1 to 1000 (default 250).")),
    responses(
        (status = 200, description = "Sessions.", body = Vec<wire::SessionJson>),
        R::AdminBadRequest, R::Unavailable
    )
)]
async fn list_sessions(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let active = single(&ctx.uri, "active").map(|a| a == "true");
    let size: u32 = single(&ctx.uri, "page_size").and_then(|s| s.parse().ok()).unwrap_or(250).clamp(1, 1000);
    let list = state.engine.store.list_sessions(None, active == Some(true), None, size).await?;
    let now = state.engine.clock.now();
    let v: Vec<Value> = list
        .iter()
        .filter(|s| active != Some(false) || !s.is_active(now))
        .map(|s| wire::session(s, None, now))
        .collect();
    Ok(json_response(StatusCode::OK, Value::Array(v)))
}

#[utoipa::path(
    get,
    path = "/sessions/{id}",
    tag = "identity",
    operation_id = "getSession",
    params(("id" = uuid::Uuid, Path, description = "The session id.")),
    responses(
        (status = 200, description = "The session.", body = wire::SessionJson),
        R::AdminBadRequest, R::NotFound, R::Unavailable
    )
)]
async fn get_session(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Answer {
    // `/sessions/whoami` is a public route: send callers of the admin port there.
    if id == "whoami" {
        let pq = ctx.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/sessions/whoami");
        return Ok(axum::response::Redirect::temporary(&format!("{}{pq}", state.engine.base())).into_response());
    }
    let id = parse_id(&id)?;
    let s =
        state.engine.store.get_session(id).await?.ok_or_else(|| Error::not_found("Unable to locate the resource"))?;
    let ident = state.engine.store.get_identity(s.identity_id).await?.map(|i| admin_identity(&state, &i, &[]));
    Ok(json_response(StatusCode::OK, wire::session(&s, ident, state.engine.clock.now())))
}

#[utoipa::path(
    delete,
    path = "/sessions/{id}",
    tag = "identity",
    operation_id = "disableSession",
    params(("id" = uuid::Uuid, Path, description = "The session id.")),
    responses(
        (status = 204, description = "The session is revoked."),
        R::AdminBadRequest, R::NotFound, R::Unavailable
    )
)]
async fn disable_session(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Answer {
    if !state.engine.admin_revoke_session(parse_id(&id)?, &ctx.req).await? {
        return Err(Error::not_found("Unable to locate the resource").into());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
