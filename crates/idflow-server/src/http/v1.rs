//! The v1 dialect: a thin translation over the same selfservice functions as the Kratos routes.
//! Calls are API flows internally (no redirects, JSON in and out, Bearer tokens); the flow
//! shape is converted (`type` = flow kind, string message ids, `image` nodes, absolute
//! `:submit` action) and every error uses the `AVNOLOGY_AUTH_xxx` envelope.

use super::error::{current_base, current_request_id};
use super::{AppState, Ctx, json_response};
use crate::http::responses as R;
use crate::openapi::{Routes, map_methods};
use crate::wire;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use idflow_core::error::{Error, ErrorKind};
use idflow_core::model::{Aal, Flow, FlowKind, FlowType};
use idflow_core::selfservice::{Body, Req, Submitted, with_query};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use utoipa::ToSchema;
use utoipa_axum::router::UtoipaMethodRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The v1 routes, each documented by its `#[utoipa::path]`. `{flow_id}` is one path segment:
/// `GET …/{flow_id}` reads a flow, `POST …/{flow_id}:submit` submits it (the document lists the
/// POST under `{flow_id}:submit`, see `openapi.rs`).
pub fn routes() -> Routes {
    Routes::new()
        .routes(v1(routes!(settings_create)))
        .routes(v1(routes!(settings_get, settings_submit)))
        .routes(v1(routes!(login_create)))
        .routes(v1(routes!(login_get, login_submit)))
        .routes(v1(routes!(registration_create)))
        .routes(v1(routes!(registration_get, registration_submit)))
        .routes(v1(routes!(recovery_create)))
        .routes(v1(routes!(recovery_get, recovery_submit)))
        .routes(v1(routes!(verification_create)))
        .routes(v1(routes!(verification_get, verification_submit)))
        .routes(v1(routes!(session_current, session_delete)))
        .routes(v1(routes!(account_activity)))
}

/// A v1 route: other HTTP methods get 405 in the v1 envelope (axum's default is an empty body).
pub(super) fn v1(r: UtoipaMethodRouter<AppState>) -> UtoipaMethodRouter<AppState> {
    map_methods(r, |m| m.fallback(method_not_allowed))
}

async fn method_not_allowed() -> V1Error {
    V1Error::new("AVNOLOGY_AUTH_001", 405, "Method not allowed", "This HTTP method is not supported on this path.")
}

/// Unknown paths under `/v1/` (used by the router's fallback).
pub fn not_found(path: &str) -> V1Error {
    V1Error::new("AVNOLOGY_AUTH_004", 404, "Not found", format!("No v1 endpoint matches {path}."))
}

/// The request body, or the v1 error for an unreadable one (413 when over the size limit).
fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, V1Error> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            V1Error::new("AVNOLOGY_AUTH_001", 413, "Malformed request", "The request body is too large.")
        } else {
            V1Error::malformed(e.body_text())
        }
    })
}

/// The `{tail}` path segment, or the v1 error for an undecodable one.
fn path_tail(p: Result<Path<String>, PathRejection>) -> Result<String, V1Error> {
    p.map(|Path(t)| t).map_err(|e| V1Error::malformed(e.body_text()))
}

/// A v1 error: renders itself in the `AVNOLOGY_AUTH_xxx` envelope with the request id.
#[derive(Debug)]
pub struct V1Error {
    pub code: &'static str,
    pub status: u16,
    pub message: String,
    pub reason: String,
    // Boxed: the error travels in `Result`s, keep it small.
    pub details: Box<Map<String, Value>>,
    pub continue_flow: Option<Box<Value>>,
    pub retry_after: Option<u64>,
}

impl V1Error {
    pub fn new(code: &'static str, status: u16, message: &str, reason: impl Into<String>) -> Self {
        V1Error {
            code,
            status,
            message: message.into(),
            reason: reason.into(),
            details: Box::default(),
            continue_flow: None,
            retry_after: None,
        }
    }

    fn malformed(reason: impl Into<String>) -> Self {
        Self::new("AVNOLOGY_AUTH_001", 400, "Malformed request", reason)
    }
}

/// A core error in its v1 code.
impl From<Error> for V1Error {
    fn from(e: Error) -> Self {
        map_error(&current_base(), &e)
    }
}

impl IntoResponse for V1Error {
    fn into_response(self) -> Response {
        let body = V1ErrorJson {
            error: V1ErrorBody {
                code: self.code.into(),
                status: self.status,
                message: self.message,
                reason: self.reason,
                request_id: current_request_id(),
                details: *self.details,
            },
            continue_flow: self.continue_flow.map(|f| *f),
        };
        let body = serde_json::to_value(body).unwrap_or(Value::Null);
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = json_response(status, body);
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// The error object of the v1 envelope.
#[derive(Serialize, ToSchema)]
pub struct V1ErrorBody {
    /// `AVNOLOGY_AUTH_xxx`.
    pub code: String,
    /// The HTTP status.
    pub status: u16,
    pub message: String,
    pub reason: String,
    pub request_id: String,
    /// `login_url`, `reason` (step-up), `use_flow_id` (expired flow), `redirect_browser_to`.
    #[schema(value_type = Object)]
    pub details: Map<String, Value>,
}

/// Every v1 error: the envelope, and the flow with its field messages when the error concerns
/// a form.
#[derive(Serialize, ToSchema)]
#[schema(as = V1Error)]
pub struct V1ErrorJson {
    pub error: V1ErrorBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<V1Flow>)]
    pub continue_flow: Option<Value>,
}

/// A flow in the v1 shape: the Kratos flow (`Flow`) with `type` the flow kind (`login`,
/// `registration`, `settings`, `recovery`, `verification`), `ui.action` the absolute
/// `:submit` URL, string message ids and `image` nodes. Its schema is derived from `Flow` and
/// the UI types when the document is built (`openapi::derive_v1_schemas`).
pub struct V1Flow;

impl utoipa::PartialSchema for V1Flow {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        // A placeholder, replaced by the derived schema.
        utoipa::openapi::ObjectBuilder::new().into()
    }
}

impl ToSchema for V1Flow {
    fn name() -> std::borrow::Cow<'static, str> {
        "V1Flow".into()
    }
}

/// `{flow_id}:submit` request body.
#[derive(ToSchema)]
pub struct V1Submission {
    /// The method: `password`, `profile`, `totp`, `lookup_secret`, `webauthn`, `passkey`,
    /// `oidc`, `code`, …
    pub method: String,
    /// The method's fields, by their Kratos node names (nested objects for `traits.*`).
    #[schema(value_type = Object)]
    pub body: Map<String, Value>,
}

/// A submit answered with the flow going on.
#[derive(Serialize, ToSchema)]
pub struct V1ContinueFlow {
    #[schema(value_type = V1Flow)]
    pub continue_flow: Value,
}

/// A page of the caller's activity log.
#[derive(Serialize, ToSchema)]
pub struct V1ActivityPage {
    pub activity: Vec<wire::ActivityJson>,
    /// The token of the next page; null on the last one.
    pub next_page_token: Option<String>,
}

/// A login: the session and its token.
#[derive(Serialize, ToSchema)]
pub struct V1LoginResult {
    pub session_token: String,
    #[schema(value_type = wire::SessionJson)]
    pub session: Value,
    /// Present when the account is scheduled for deletion: the date and how to cancel (signing
    /// in never cancels).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<wire::AccountDeletionOffer>)]
    pub account_deletion: Option<Value>,
}

/// A registration: the identity; the session and its token when the `session` hook runs.
#[derive(Serialize, ToSchema)]
pub struct V1RegistrationResult {
    #[schema(value_type = wire::IdentityJson)]
    pub identity: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<wire::SessionJson>)]
    pub session: Option<Value>,
}

/// A recovery submit: the flow; once recovered also the session and its token.
#[derive(Serialize, ToSchema)]
pub struct V1RecoveryResult {
    #[schema(value_type = V1Flow)]
    pub continue_flow: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<wire::SessionJson>)]
    pub session: Option<Value>,
}

/// Serialises a response body.
fn to_json(v: impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Map a core error to its v1 code (v1-api.md §5); `base` is the public base URL.
pub fn map_error(base: &str, e: &Error) -> V1Error {
    let mut v = match e.kind {
        ErrorKind::SessionInactive | ErrorKind::Unauthorized | ErrorKind::Aal1Required => V1Error::new(
            "AVNOLOGY_AUTH_005",
            401,
            "Session invalid",
            "No valid session was found: sign in and send the session token as `Authorization: Bearer <token>`.",
        ),
        ErrorKind::Aal2Required | ErrorKind::RefreshRequired => {
            let (reason, q) = if e.kind == ErrorKind::Aal2Required {
                ("session_aal2_required", "aal=aal2")
            } else {
                ("session_refresh_required", "refresh=true")
            };
            let mut v = V1Error::new("AVNOLOGY_AUTH_102", 403, "Step-up authentication required", e.reason.clone());
            v.details.insert("reason".into(), json!(reason));
            v.details.insert("login_url".into(), json!(format!("{base}/v1/flows/login?{q}")));
            v
        }
        ErrorKind::Csrf => V1Error::new("AVNOLOGY_AUTH_003", 403, "CSRF token missing or wrong", e.reason.clone()),
        ErrorKind::NotFound | ErrorKind::IdentityMismatch => V1Error::new(
            "AVNOLOGY_AUTH_004",
            404,
            "Flow not found",
            "The flow does not exist or does not belong to the caller.",
        ),
        ErrorKind::FlowExpired | ErrorKind::Gone => {
            let mut v = V1Error::new("AVNOLOGY_AUTH_009", 400, "Flow expired", e.reason.clone());
            if let Some(id) = e.use_flow_id {
                v.details.insert("use_flow_id".into(), json!(id));
            }
            v
        }
        ErrorKind::ReturnToForbidden => {
            V1Error::new("AVNOLOGY_AUTH_013", 400, "return_to not allowed", e.reason.clone())
        }
        ErrorKind::RateLimited => {
            let mut v = V1Error::new("AVNOLOGY_AUTH_029", 429, "Too many attempts", e.reason.clone());
            v.retry_after = e.retry_after;
            v
        }
        ErrorKind::Conflict => V1Error::new("AVNOLOGY_AUTH_012", 409, "Conflict", e.reason.clone()),
        ErrorKind::PayloadTooLarge => V1Error::new("AVNOLOGY_AUTH_001", 413, "Malformed request", e.reason.clone()),
        ErrorKind::BadRequest
        | ErrorKind::Disabled
        | ErrorKind::SessionAlreadyAvailable
        | ErrorKind::FlowDisabled
        | ErrorKind::Forbidden => V1Error::malformed(e.reason.clone()),
        ErrorKind::BrowserLocationChange => {
            let mut v = V1Error::new("AVNOLOGY_AUTH_001", 422, "Browser redirect required", e.reason.clone());
            if let Some(r) = &e.redirect_browser_to {
                v.details.insert("redirect_browser_to".into(), json!(r));
            }
            v
        }
        ErrorKind::Unavailable => {
            V1Error::new("AVNOLOGY_AUTH_500", 503, "Service unavailable", "The service is temporarily unavailable.")
        }
        ErrorKind::Internal => V1Error::new("AVNOLOGY_AUTH_500", 500, "Internal error", "An internal error occurred."),
    };
    if v.code == "AVNOLOGY_AUTH_001" && v.reason.is_empty() {
        v.reason = e.message().to_string();
    }
    v
}

/// Convert a Kratos flow JSON to the v1 shape.
pub fn to_v1_flow(state: &AppState, mut flow: Value, kind: FlowKind, method: Option<&str>) -> Value {
    let id = flow.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    flow["type"] = json!(kind.as_str());
    flow["ui"]["action"] = json!(format!("{}/v1/flows/{}/{id}:submit", state.engine.base(), kind.as_str()));
    if flow["ui"]["messages"].is_null() {
        flow["ui"]["messages"] = json!([]);
    }
    if let Some(nodes) = flow["ui"]["nodes"].as_array_mut() {
        for n in nodes {
            if n["messages"].is_null() {
                n["messages"] = json!([]);
            }
            if n["type"] == "img" {
                n["type"] = json!("image");
                n["attributes"]["node_type"] = json!("image");
            }
        }
    }
    if let (Some(method), Some(msgs)) = (method, flow["ui"]["messages"].as_array_mut()) {
        for m in msgs {
            if let Some((_, _, text)) = V1_TEXTS.iter().find(|(id, on, _)| m["id"] == *id && *on == method) {
                m["text"] = json!(text);
            }
        }
    }
    stringify_ids(&mut flow["ui"]);
    flow
}

/// The v1 dialect's own wording of a message the core words as Kratos does: (message id, the
/// submitted method it applies to, the v1 text). The v1 API documents ask for these texts; the
/// ids, types and contexts stay the core's.
const V1_TEXTS: &[(u64, &str, &str)] = &[(1050001, "profile", "Your profile has been updated.")];

/// Every UiText id becomes a string.
fn stringify_ids(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let is_text =
                m.get("type").and_then(Value::as_str).is_some_and(|t| matches!(t, "info" | "error" | "success"))
                    && m.get("text").is_some();
            if is_text && let Some(Value::Number(n)) = m.get("id").cloned() {
                m.insert("id".into(), Value::String(n.to_string()));
            }
            for (_, x) in m.iter_mut() {
                stringify_ids(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(stringify_ids),
        _ => {}
    }
}

/// The v1 error for a flow returned with form errors: the code translates the reason the core
/// gave; the reason text is the first error message.
fn form_error(state: &AppState, flow: &Flow, flow_json: Value, method: &str) -> V1Error {
    use idflow_core::selfservice::FormReason;
    let reason = flow
        .ui
        .messages
        .iter()
        .chain(flow.ui.nodes.iter().flat_map(|n| n.messages.iter()))
        .find(|m| m.kind == idflow_core::ui::TextType::Error)
        .map_or_else(|| "The form contains errors.".to_string(), |m| m.text.clone());
    let (code, msg) = match flow.reason.unwrap_or(FormReason::Invalid) {
        FormReason::LastSignInMethod => ("AVNOLOGY_AUTH_014", "Last way to sign in"),
        FormReason::Malformed => ("AVNOLOGY_AUTH_001", "Malformed request"),
        FormReason::InvalidCredentials => ("AVNOLOGY_AUTH_006", "Invalid credentials"),
        FormReason::IdentifierTaken => ("AVNOLOGY_AUTH_012", "Identifier already in use"),
        FormReason::WeakPassword => ("AVNOLOGY_AUTH_011", "New password too weak"),
        FormReason::InvalidTotpCode | FormReason::EnrolmentStarted => ("AVNOLOGY_AUTH_007", "Invalid TOTP code"),
        FormReason::InvalidSecondFactor => ("AVNOLOGY_AUTH_008", "Invalid second factor"),
        FormReason::InvalidCode => ("AVNOLOGY_AUTH_008", "Invalid code"),
        FormReason::Invalid => ("AVNOLOGY_AUTH_010", "Invalid input"),
    };
    let status = if code == "AVNOLOGY_AUTH_012" { 409 } else { 400 };
    let mut e = V1Error::new(code, status, msg, reason);
    e.continue_flow = Some(Box::new(to_v1_flow(state, flow_json, flow.kind, Some(method))));
    e
}

/// `{flow_id}:submit` → flow id.
fn parse_tail(tail: &str, submit: bool) -> Result<Uuid, V1Error> {
    let id = if submit {
        match tail.rsplit_once(':') {
            Some((id, "submit")) => id,
            _ => return Err(V1Error::malformed("The path must be /v1/flows/<kind>/<flow_id>:submit.")),
        }
    } else {
        tail
    };
    Uuid::parse_str(id)
        .map_err(|_| V1Error::new("AVNOLOGY_AUTH_004", 404, "Flow not found", "The flow id is not a valid id."))
}

/// `{ "method": "...", "body": { ... } }` → the flat Kratos body. The content type must be
/// JSON (or absent): a cross-site `text/plain` or form post is refused. Public for the fuzz
/// targets.
pub fn parse_envelope_bytes(ct: Option<&str>, bytes: &[u8], max_depth: usize) -> Result<(String, Body), V1Error> {
    let body = match super::parse_json(ct, bytes, max_depth).map_err(|e| V1Error::malformed(e.reason.clone()))? {
        Value::Object(m) => idflow_core::ui::unflatten(m),
        _ => return Err(V1Error::malformed("The request body must be a JSON object.")),
    };
    let method = body
        .get("method")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            V1Error::malformed("The request body must be {\"method\": \"...\", \"body\": {...}} with a string method.")
        })?
        .to_string();
    let inner = match body.get("body") {
        Some(Value::Object(m)) => idflow_core::ui::unflatten(m.clone()),
        _ => {
            return Err(V1Error::malformed(
                "The request body must be {\"method\": \"...\", \"body\": {...}} with `body` a JSON object.",
            ));
        }
    };
    let mut flat = inner;
    flat.insert("method".into(), json!(method));
    Ok((method, flat))
}

/// The request context of a v1 route; a failed session lookup is a v1 error. v1 calls are
/// API flows unless the caller authenticated with the session cookie (then the flow is a
/// browser flow and `csrf_token` is checked); Origin and cookies are fine here.
pub struct V1Ctx {
    ctx: Ctx,
    /// The request as the engine sees it: JSON, no API-flow header rules.
    req: Req,
}

impl FromRequestParts<AppState> for V1Ctx {
    type Rejection = V1Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let ctx = Ctx::from_request_parts(parts, state).await.map_err(|e| map_error(state.engine.base(), &e.0))?;
        let mut req = ctx.req.clone();
        req.api_violation = None;
        req.json = true;
        Ok(V1Ctx { ctx, req })
    }
}

impl V1Ctx {
    /// The caller (a [`V1Session`] always has one).
    pub fn auth(&self) -> Result<idflow_core::selfservice::Authed, V1Error> {
        self.req.auth.clone().ok_or_else(|| Error::new(ErrorKind::Unauthorized, "").into())
    }

    fn flow_type(&self) -> FlowType {
        if self.ctx.via_cookie { FlowType::Browser } else { FlowType::Api }
    }
}

/// [`V1Ctx`] of a caller with a session (401 otherwise, before the request is read further).
pub struct V1Session(pub V1Ctx);

impl FromRequestParts<AppState> for V1Session {
    type Rejection = V1Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let c = V1Ctx::from_request_parts(parts, state).await?;
        match c.req.auth {
            Some(_) => Ok(V1Session(c)),
            None => Err(map_error(state.engine.base(), &Error::new(ErrorKind::Unauthorized, ""))),
        }
    }
}

/// A `{flow_id}:submit` request: the flow id and the `{method, body}` envelope turned into the
/// flat Kratos body (the last extractor of a handler: it reads the body).
pub struct Submission {
    id: Uuid,
    method: String,
    body: Body,
}

impl FromRequest<AppState> for Submission {
    type Rejection = V1Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let tail = Path::<String>::from_request_parts(&mut parts, state).await;
        let ct = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state).await;
        let id = path_tail(tail).and_then(|t| parse_tail(&t, true))?;
        let (method, body) =
            parse_envelope_bytes(ct.as_deref(), &body_bytes(bytes)?, state.engine.cfg.limits.max_json_depth)?;
        Ok(Submission { id, method, body })
    }
}

type Answer = Result<Response, V1Error>;

async fn settings_json(state: &AppState, ctx: &Ctx, flow: &Flow, method: Option<&str>) -> Value {
    let identity = super::flow::settings_flow_identity(state, ctx, flow).await;
    to_v1_flow(state, wire::flow(flow, identity), FlowKind::Settings, method)
}

/// A settings flow answer; a cookie-authenticated (browser) flow also gets its CSRF cookie, so
/// the `body.csrf_token` of the flow can be checked on submit.
fn settings_flow_response(state: &AppState, ctx: &Ctx, flow: &Flow, body: Value) -> Response {
    let mut resp = json_response(StatusCode::OK, body);
    super::set_csrf_cookie(state, ctx, flow, &mut resp);
    resp
}

#[utoipa::path(
    get,
    path = "/v1/flows/settings",
    tag = "v1",
    operation_id = "v1CreateSettingsFlow",
    security(("session_token" = [])),
    params(("return_to" = Option<String>, Query, description = "Where to go after the flow (checked against the allow-list).")),
    responses(
        (status = 200, description = "The new settings flow.", body = V1Flow),
        R::V1SubmitBadRequest, R::V1NoSession, R::V1Forbidden, R::V1TooMany, R::V1Unavailable
    )
)]
async fn settings_create(State(state): State<AppState>, c: V1Ctx) -> Answer {
    let flow = state.engine.create_settings(&c.req, c.flow_type()).await?;
    let body = settings_json(&state, &c.ctx, &flow, None).await;
    Ok(settings_flow_response(&state, &c.ctx, &flow, body))
}

#[utoipa::path(
    get,
    path = "/v1/flows/settings/{flow_id}",
    tag = "v1",
    operation_id = "v1GetSettingsFlow",
    params(("flow_id" = uuid::Uuid, Path, description = "The flow id.")),
    security(("session_token" = [])),
    responses(
        (status = 200, description = "The settings flow.", body = V1Flow),
        R::V1NoSession, R::V1Forbidden, R::V1FlowNotFound, R::V1Unavailable
    )
)]
async fn settings_get(
    State(state): State<AppState>,
    V1Session(c): V1Session,
    tail: Result<Path<String>, PathRejection>,
) -> Answer {
    let id = path_tail(tail).and_then(|t| parse_tail(&t, false))?;
    let flow = state.engine.get_settings(id, &c.req).await?;
    let body = settings_json(&state, &c.ctx, &flow, None).await;
    Ok(settings_flow_response(&state, &c.ctx, &flow, body))
}

#[utoipa::path(
    post,
    path = "/v1/flows/settings/{flow_id}",
    tag = "v1",
    operation_id = "v1SubmitSettingsFlow",
    description = "`POST /v1/flows/settings/{flow_id}:submit` (the router matches the one segment `{flow_id}:submit`).",
    params(("flow_id" = uuid::Uuid, Path, description = "The flow id.")),
    request_body(content = V1Submission),
    security(("session_token" = [])),
    responses(
        (status = 200, description = "The flow goes on (`continue_flow`).", body = V1ContinueFlow),
        R::V1SubmitBadRequest, R::V1NoSession, R::V1Forbidden, R::V1FlowNotFound, R::V1IdentifierTaken, R::V1TooLarge, R::V1TooMany, R::V1Unavailable
    )
)]
async fn settings_submit(
    State(state): State<AppState>,
    V1Session(c): V1Session,
    Submission { id, method, body: flat }: Submission,
) -> Answer {
    if idflow_core::model::MethodId::parse(&method).is_none() {
        let known: Vec<&str> = idflow_core::model::MethodId::ALL.iter().map(|m| m.as_str()).collect();
        return Err(V1Error::malformed(format!("Unknown method {method:?}. Known methods: {}.", known.join(", "))));
    }
    match state.engine.submit_settings(id, &flat, &c.req).await? {
        Submitted::Done(r) => {
            let identity = wire::identity(state.engine.base(), &r.identity, wire::IdentityView::Public, &[]);
            let mut flow = to_v1_flow(&state, wire::flow(&r.flow, Some(identity)), FlowKind::Settings, Some(&method));
            if !r.continue_with.is_empty() {
                flow["continue_with"] = Value::Array(r.continue_with.clone());
            }
            let mut resp = json_response(StatusCode::OK, to_json(V1ContinueFlow { continue_flow: flow }));
            // Every session ended with the change (a deletion scheduled): drop the cookie.
            if r.signed_out && c.ctx.via_cookie {
                resp.headers_mut().append(header::SET_COOKIE, state.clear_session_cookie());
            }
            Ok(resp)
        }
        Submitted::ShowForm(flow) => Ok(json_response(
            StatusCode::OK,
            to_json(V1ContinueFlow { continue_flow: settings_json(&state, &c.ctx, &flow, Some(&method)).await }),
        )),
        Submitted::Invalid(flow) => {
            // TOTP enrolment start (`{"method":"totp","body":{}}`, decided by the core): the form
            // with its QR code, no error.
            let only_missing_code = flow.reason == Some(idflow_core::selfservice::FormReason::EnrolmentStarted);
            if only_missing_code {
                let mut f = flow.clone();
                f.ui.clear_messages();
                return Ok(json_response(
                    StatusCode::OK,
                    to_json(V1ContinueFlow { continue_flow: settings_json(&state, &c.ctx, &f, Some(&method)).await }),
                ));
            }
            let identity = super::flow::settings_flow_identity(&state, &c.ctx, &flow).await;
            Err(form_error(&state, &flow, wire::flow(&flow, identity), &method))
        }
    }
}

// ---- login / registration / sessions -----------------------------------------------------

#[utoipa::path(
    get,
    path = "/v1/flows/login",
    tag = "v1",
    operation_id = "v1CreateLoginFlow",
    params(("refresh" = Option<bool>, Query, description = "Re-authenticate."), ("aal" = Option<String>, Query, description = "`aal1` or `aal2`."), ("return_to" = Option<String>, Query, description = "Where to go after the flow.")),
    responses(
        (status = 200, description = "The new login flow.", body = V1Flow),
        R::V1SubmitBadRequest, R::V1TooMany, R::V1Unavailable
    )
)]
async fn login_create(State(state): State<AppState>, c: V1Ctx, Query(q): Query<HashMap<String, String>>) -> Answer {
    let aal = match q.get("aal").map(String::as_str) {
        None | Some("") | Some("aal1") => Aal::Aal1,
        Some("aal2") => Aal::Aal2,
        Some(_) => return Err(V1Error::malformed("`aal` must be aal1 or aal2.")),
    };
    let refresh = q.get("refresh").is_some_and(|r| r == "true" || r == "1");
    let flow = state.engine.create_login(&c.req, FlowType::Api, refresh, aal).await?;
    Ok(json_response(StatusCode::OK, to_v1_flow(&state, wire::flow(&flow, None), FlowKind::Login, None)))
}

async fn plain_get(state: &AppState, tail: Result<Path<String>, PathRejection>, kind: FlowKind) -> Answer {
    let id = path_tail(tail).and_then(|t| parse_tail(&t, false))?;
    let flow = state.engine.load_flow(id, kind).await?;
    if flow.flow_type != FlowType::Api {
        return Err(Error::not_found("").into());
    }
    Ok(json_response(StatusCode::OK, to_v1_flow(state, wire::flow(&flow, None), kind, None)))
}

#[utoipa::path(
    get,
    path = "/v1/flows/login/{flow_id}",
    tag = "v1",
    operation_id = "v1GetLoginFlow",
    params(("flow_id" = uuid::Uuid, Path, description = "The flow id.")),
    responses(
        (status = 200, description = "The login flow.", body = V1Flow),
        R::V1FlowNotFound, R::V1Unavailable
    )
)]
async fn login_get(State(state): State<AppState>, _: V1Ctx, tail: Result<Path<String>, PathRejection>) -> Answer {
    plain_get(&state, tail, FlowKind::Login).await
}

#[utoipa::path(
    get,
    path = "/v1/flows/registration/{flow_id}",
    tag = "v1",
    operation_id = "v1GetRegistrationFlow",
    params(("flow_id" = uuid::Uuid, Path, description = "The flow id.")),
    responses(
        (status = 200, description = "The registration flow.", body = V1Flow),
        R::V1FlowNotFound, R::V1Unavailable
    )
)]
async fn registration_get(
    State(state): State<AppState>,
    _: V1Ctx,
    tail: Result<Path<String>, PathRejection>,
) -> Answer {
    plain_get(&state, tail, FlowKind::Registration).await
}

#[utoipa::path(
    post,
    path = "/v1/flows/login/{flow_id}",
    tag = "v1",
    operation_id = "v1SubmitLoginFlow",
    description = "`POST /v1/flows/login/{flow_id}:submit` (the router matches the one segment `{flow_id}:submit`).",
    params(("flow_id" = uuid::Uuid, Path, description = "The flow id.")),
    request_body(content = V1Submission),
    responses(
        (status = 200, description = "Signed in.", body = V1LoginResult),
        R::V1SubmitBadRequest, R::V1Forbidden, R::V1FlowNotFound, R::V1IdentifierTaken, R::V1TooLarge, R::V1TooMany, R::V1Unavailable
    )
)]
async fn login_submit(
    State(state): State<AppState>,
    c: V1Ctx,
    Submission { id, method, body: flat }: Submission,
) -> Answer {
    match state.engine.submit_login(id, &flat, &c.req).await? {
        Submitted::Done(r) => {
            let now = state.engine.clock.now();
            let identity = if r.aal_satisfied {
                wire::identity(state.engine.base(), &r.identity, wire::IdentityView::Public, &[])
            } else {
                Value::Null
            };
            let token = if r.issued.token.is_empty() {
                c.req.token.clone().unwrap_or_default()
            } else {
                r.issued.token.clone()
            };
            let session = wire::session(&r.issued.session, Some(identity), now);
            // The sign-in of an account scheduled for deletion offers to cancel (never cancels).
            let account_deletion = r
                .identity
                .delete_after
                .filter(|_| r.aal_satisfied)
                .map(|t| super::account::deletion_offer(&state, t, true));
            Ok(json_response(
                StatusCode::OK,
                to_json(V1LoginResult { session_token: token, session, account_deletion }),
            ))
        }
        Submitted::Invalid(flow) | Submitted::ShowForm(flow) => {
            Err(form_error(&state, &flow, wire::flow(&flow, None), &method))
        }
    }
}

#[utoipa::path(
    get,
    path = "/v1/flows/registration",
    tag = "v1",
    operation_id = "v1CreateRegistrationFlow",
    responses(
        (status = 200, description = "The new registration flow.", body = V1Flow),
        R::V1SubmitBadRequest, R::V1TooMany, R::V1Unavailable
    )
)]
async fn registration_create(State(state): State<AppState>, c: V1Ctx) -> Answer {
    let flow = state.engine.create_registration(&c.req, FlowType::Api).await?;
    Ok(json_response(StatusCode::OK, to_v1_flow(&state, wire::flow(&flow, None), FlowKind::Registration, None)))
}

#[utoipa::path(
    post,
    path = "/v1/flows/registration/{flow_id}",
    tag = "v1",
    operation_id = "v1SubmitRegistrationFlow",
    description = "`POST /v1/flows/registration/{flow_id}:submit` (the router matches the one segment `{flow_id}:submit`).",
    params(("flow_id" = uuid::Uuid, Path, description = "The flow id.")),
    request_body(content = V1Submission),
    responses(
        (status = 200, description = "Registered (with a session when the `session` hook runs).", body = V1RegistrationResult),
        R::V1SubmitBadRequest, R::V1Forbidden, R::V1FlowNotFound, R::V1IdentifierTaken, R::V1TooLarge, R::V1TooMany, R::V1Unavailable
    )
)]
async fn registration_submit(
    State(state): State<AppState>,
    c: V1Ctx,
    Submission { id, method, body: flat }: Submission,
) -> Answer {
    match state.engine.submit_registration(id, &flat, &c.req).await? {
        Submitted::Done(r) => {
            let identity = wire::identity(state.engine.base(), &r.identity, wire::IdentityView::Public, &[]);
            let now = state.engine.clock.now();
            let out = V1RegistrationResult {
                session_token: r.session.as_ref().map(|s| s.token.clone()),
                session: r.session.as_ref().map(|s| wire::session(&s.session, Some(identity.clone()), now)),
                identity,
            };
            Ok(json_response(StatusCode::OK, to_json(out)))
        }
        Submitted::Invalid(flow) | Submitted::ShowForm(flow) => {
            Err(form_error(&state, &flow, wire::flow(&flow, None), &method))
        }
    }
}

// ---- recovery / verification -------------------------------------------------------------

/// The one method of recovery and verification submits.
fn code_method(method: &str) -> Result<(), V1Error> {
    if method == "code" {
        Ok(())
    } else {
        Err(V1Error::malformed(format!("Unknown method {method:?}. Known methods: code.")))
    }
}

#[utoipa::path(
    get,
    path = "/v1/flows/recovery",
    tag = "v1",
    operation_id = "v1CreateRecoveryFlow",
    responses(
        (status = 200, description = "The new recovery flow.", body = V1Flow),
        R::V1SubmitBadRequest, R::V1TooMany, R::V1Unavailable
    )
)]
async fn recovery_create(State(state): State<AppState>, c: V1Ctx) -> Answer {
    let flow = state.engine.create_recovery(&c.req, FlowType::Api).await?;
    Ok(json_response(StatusCode::OK, to_v1_flow(&state, wire::flow(&flow, None), FlowKind::Recovery, None)))
}

#[utoipa::path(
    get,
    path = "/v1/flows/recovery/{flow_id}",
    tag = "v1",
    operation_id = "v1GetRecoveryFlow",
    params(("flow_id" = uuid::Uuid, Path, description = "The flow id.")),
    responses(
        (status = 200, description = "The recovery flow.", body = V1Flow),
        R::V1FlowNotFound, R::V1Unavailable
    )
)]
async fn recovery_get(State(state): State<AppState>, _: V1Ctx, tail: Result<Path<String>, PathRejection>) -> Answer {
    plain_get(&state, tail, FlowKind::Recovery).await
}

/// `{"method":"code","body":{"email":…}}` sends a code (`continue_flow` in `sent_email`);
/// `{"method":"code","body":{"code":…}}` recovers: the session and its token, and
/// `continue_flow` with `continue_with` (`show_settings_ui`, `set_ory_session_token`).
#[utoipa::path(
    post,
    path = "/v1/flows/recovery/{flow_id}",
    tag = "v1",
    operation_id = "v1SubmitRecoveryFlow",
    description = "`POST /v1/flows/recovery/{flow_id}:submit` (the router matches the one segment `{flow_id}:submit`).",
    params(("flow_id" = uuid::Uuid, Path, description = "The flow id.")),
    request_body(content = V1Submission),
    responses(
        (status = 200, description = "A code was sent (`continue_flow`), or recovered: the session, its token and `continue_flow` with `continue_with`.", body = V1RecoveryResult),
        R::V1SubmitBadRequest, R::V1Forbidden, R::V1FlowNotFound, R::V1IdentifierTaken, R::V1TooLarge, R::V1TooMany, R::V1Unavailable
    )
)]
async fn recovery_submit(
    State(state): State<AppState>,
    c: V1Ctx,
    Submission { id, method, body: flat }: Submission,
) -> Answer {
    code_method(&method)?;
    match state.engine.submit_recovery(id, &flat, &c.req).await? {
        Submitted::Done(r) => {
            let settings_ui = state.engine.ui_url_for_flow(FlowKind::Settings, r.settings_flow.id);
            let mut flow = to_v1_flow(&state, wire::flow(&r.flow, None), FlowKind::Recovery, Some(&method));
            flow["continue_with"] = json!([
                {"action": "show_settings_ui", "flow": {"id": r.settings_flow.id, "url": settings_ui}},
                {"action": "set_ory_session_token", "ory_session_token": r.issued.token},
            ]);
            let identity = wire::identity(state.engine.base(), &r.identity, wire::IdentityView::Public, &[]);
            let session = wire::session(&r.issued.session, Some(identity), state.engine.clock.now());
            let out = V1RecoveryResult {
                continue_flow: flow,
                session_token: Some(r.issued.token.clone()),
                session: Some(session),
            };
            Ok(json_response(StatusCode::OK, to_json(out)))
        }
        // A code not accepted is an error in this dialect (the Kratos routes answer 200).
        Submitted::ShowForm(flow) if !flow.ui.has_errors() => Ok(json_response(
            StatusCode::OK,
            to_json(V1RecoveryResult {
                continue_flow: to_v1_flow(&state, wire::flow(&flow, None), FlowKind::Recovery, Some(&method)),
                session_token: None,
                session: None,
            }),
        )),
        Submitted::Invalid(flow) | Submitted::ShowForm(flow) => {
            Err(form_error(&state, &flow, wire::flow(&flow, None), &method))
        }
    }
}

#[utoipa::path(
    get,
    path = "/v1/flows/verification",
    tag = "v1",
    operation_id = "v1CreateVerificationFlow",
    responses(
        (status = 200, description = "The new verification flow.", body = V1Flow),
        R::V1SubmitBadRequest, R::V1TooMany, R::V1Unavailable
    )
)]
async fn verification_create(State(state): State<AppState>, c: V1Ctx) -> Answer {
    let flow = state.engine.create_verification(&c.req, FlowType::Api).await?;
    Ok(json_response(StatusCode::OK, to_v1_flow(&state, wire::flow(&flow, None), FlowKind::Verification, None)))
}

#[utoipa::path(
    get,
    path = "/v1/flows/verification/{flow_id}",
    tag = "v1",
    operation_id = "v1GetVerificationFlow",
    params(("flow_id" = uuid::Uuid, Path, description = "The flow id.")),
    responses(
        (status = 200, description = "The verification flow.", body = V1Flow),
        R::V1FlowNotFound, R::V1Unavailable
    )
)]
async fn verification_get(
    State(state): State<AppState>,
    _: V1Ctx,
    tail: Result<Path<String>, PathRejection>,
) -> Answer {
    plain_get(&state, tail, FlowKind::Verification).await
}

/// `{"method":"code","body":{"email":…}}` / `{"method":"code","body":{"code":…}}`: the flow as
/// `continue_flow` (`passed_challenge` once the address is verified).
#[utoipa::path(
    post,
    path = "/v1/flows/verification/{flow_id}",
    tag = "v1",
    operation_id = "v1SubmitVerificationFlow",
    description = "`POST /v1/flows/verification/{flow_id}:submit` (the router matches the one segment `{flow_id}:submit`).",
    params(("flow_id" = uuid::Uuid, Path, description = "The flow id.")),
    request_body(content = V1Submission),
    responses(
        (status = 200, description = "The flow goes on (`continue_flow`).", body = V1ContinueFlow),
        R::V1SubmitBadRequest, R::V1Forbidden, R::V1FlowNotFound, R::V1IdentifierTaken, R::V1TooLarge, R::V1TooMany, R::V1Unavailable
    )
)]
async fn verification_submit(
    State(state): State<AppState>,
    c: V1Ctx,
    Submission { id, method, body: flat }: Submission,
) -> Answer {
    code_method(&method)?;
    match state.engine.submit_verification(id, &flat, &c.req).await? {
        Submitted::ShowForm(flow) if flow.ui.has_errors() => {
            Err(form_error(&state, &flow, wire::flow(&flow, None), &method))
        }
        Submitted::Done(idflow_core::selfservice::verification::Verified { flow, .. }) | Submitted::ShowForm(flow) => {
            let continue_flow = to_v1_flow(&state, wire::flow(&flow, None), FlowKind::Verification, Some(&method));
            Ok(json_response(StatusCode::OK, to_json(V1ContinueFlow { continue_flow })))
        }
        Submitted::Invalid(flow) => Err(form_error(&state, &flow, wire::flow(&flow, None), &method)),
    }
}

#[utoipa::path(
    get,
    path = "/v1/sessions/current",
    tag = "v1",
    operation_id = "v1GetCurrentSession",
    security(("session_token" = [])),
    responses(
        (status = 200, description = "The caller's session.", body = wire::SessionJson),
        R::V1NoSession, R::V1Forbidden, R::V1Unavailable
    )
)]
async fn session_current(State(state): State<AppState>, c: V1Ctx) -> Answer {
    let a = state.engine.whoami(c.req.auth.clone()).map_err(|e| {
        let mut v = map_error(state.engine.base(), &e);
        if e.kind == ErrorKind::Aal2Required {
            v.details.insert(
                "login_url".into(),
                json!(with_query(&state.engine.url("/v1/flows/login"), &[("aal", "aal2")])),
            );
        }
        v
    })?;
    let identity = wire::identity(state.engine.base(), &a.identity, wire::IdentityView::Public, &[]);
    Ok(json_response(StatusCode::OK, wire::session(&a.session, Some(identity), state.engine.clock.now())))
}

#[utoipa::path(
    delete,
    path = "/v1/sessions/current",
    tag = "v1",
    operation_id = "v1DeleteCurrentSession",
    security(("session_token" = [])),
    responses(
        (status = 204, description = "Signed out: the session is revoked."),
        R::V1NoSession, R::V1Unavailable
    )
)]
async fn session_delete(State(state): State<AppState>, c: V1Ctx) -> Answer {
    let Some(a) = c.req.auth.as_ref() else {
        return Err(Error::new(ErrorKind::Unauthorized, "").into());
    };
    state.engine.logout(a, &c.req).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/account/activity`: the caller's activity log, newest first. Query `page_size`
/// (1–1000, default 250) and `page_token`; 200 `{"activity": [...], "next_page_token": …}`
/// (`null` on the last page).
#[utoipa::path(
    get,
    path = "/v1/account/activity",
    tag = "v1",
    operation_id = "v1ListAccountActivity",
    security(("session_token" = [])),
    params(
        ("page_size" = Option<u32>, Query, description = "1 to 1000 (default 250)."),
        ("page_token" = Option<String>, Query, description = "`next_page_token` of the previous page.")
    ),
    responses(
        (status = 200, description = "The caller's activity, newest first.", body = V1ActivityPage),
        (status = 400, description = "AVNOLOGY_AUTH_001: a malformed page token or size.", body = V1ErrorJson),
        R::V1NoSession,
        (status = 403, description = "AVNOLOGY_AUTH_102: step-up needed.", body = V1ErrorJson)
    )
)]
async fn account_activity(State(state): State<AppState>, c: V1Session) -> Answer {
    let c = c.0;
    let a = state.engine.whoami(c.req.auth.clone())?;
    let (after, size) = super::activity_page(&c.ctx.uri)?;
    let list = state.engine.list_activity(a.identity.id, after, size).await?;
    let next = super::activity_next(&list, size);
    Ok(json_response(
        StatusCode::OK,
        json!({"activity": list.iter().map(wire::activity).collect::<Vec<_>>(), "next_page_token": next}),
    ))
}
