//! The Kratos-compatible public routes: self-service registration, login, settings, logout,
//! sessions, schemas and errors, with Kratos's status codes, redirects and JSON shapes.

use super::error::KratosError;
use super::flow::{Done, FlowResponder, Outcome, redirect_action, settings_cookies};
use super::{AppState, Ctx, ParsedBody, json_response, parse_uuid, see_other, set_csrf_cookie};
use crate::http::responses as R;
use crate::openapi::{Routes, map_methods};
use crate::wire::{self, IdentityView};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use idflow_core::error::{Error, ErrorKind};
use idflow_core::model::{Aal, Flow, FlowKind, FlowType, Identity};
use idflow_core::selfservice::login::LoggedIn;
use idflow_core::selfservice::recovery::Recovered;
use idflow_core::selfservice::registration::Registered;
use idflow_core::selfservice::sessions::Issued;
use idflow_core::selfservice::settings::SettingsDone;
use idflow_core::selfservice::verification::Verified;
use idflow_core::selfservice::{Submitted, with_query};
use serde_json::{Value, json};
use std::collections::HashMap;
use utoipa_axum::routes;

type Q = Query<HashMap<String, String>>;
type Answer = Result<Response, KratosError>;

/// The Kratos-compatible public routes, each documented by its `#[utoipa::path]`.
pub fn routes() -> Routes {
    Routes::new()
        .routes(routes!(registration_api))
        .routes(routes!(registration_browser))
        .routes(routes!(registration_get))
        .routes(routes!(registration_submit))
        .routes(routes!(login_api))
        .routes(routes!(login_browser))
        .routes(routes!(login_get))
        .routes(routes!(login_submit))
        .routes(routes!(settings_api))
        .routes(routes!(settings_browser))
        .routes(routes!(settings_get))
        .routes(routes!(my_activity))
        .routes(routes!(settings_submit))
        .routes(routes!(recovery_api))
        .routes(routes!(recovery_browser))
        .routes(routes!(recovery_get))
        .routes(routes!(recovery_link, recovery_submit))
        .routes(routes!(verification_api))
        .routes(routes!(verification_browser))
        .routes(routes!(verification_get))
        .routes(routes!(verification_link, verification_submit))
        .routes(routes!(change_password))
        .routes(routes!(webauthn_js))
        .routes(routes!(logout_browser))
        .routes(routes!(logout))
        .routes(routes!(logout_api))
        .routes(routes!(get_error))
        // Every method (proxies forward the original one); documented as GET.
        .routes(map_methods(routes!(whoami), |_| any(whoami)))
        .routes(routes!(list_my_sessions, revoke_my_sessions))
        .routes(routes!(revoke_my_session))
        .routes(routes!(list_schemas))
        .routes(routes!(get_schema))
}

fn public_identity(state: &AppState, i: &Identity) -> Value {
    wire::identity(state.engine.base(), i, IdentityView::Public, &[])
}

async fn flow_json(state: &AppState, ctx: &Ctx, flow: &Flow) -> wire::FlowJson {
    let identity = match flow.kind {
        FlowKind::Settings => super::flow::settings_flow_identity(state, ctx, flow).await,
        _ => None,
    };
    wire::flow_json(flow, identity)
}

/// A created flow (`identity` for settings flows), or the error creating it.
async fn respond_created(
    state: &AppState,
    ctx: &Ctx,
    flow_type: FlowType,
    kind: FlowKind,
    res: Result<Flow, Error>,
    identity: Option<Value>,
) -> Response {
    let outcome = match res {
        Ok(flow) => Outcome::Created { body: wire::flow_json(&flow, identity).into(), flow },
        Err(e) => Outcome::Error(e),
    };
    FlowResponder::new(state, ctx, flow_type, Some(kind)).respond(outcome).await
}

/// A login or registration flow returned with form errors: 400.
fn invalid(flow: Flow) -> Outcome {
    Outcome::Form { body: wire::flow_json(&flow, None).into(), flow, status: StatusCode::BAD_REQUEST }
}

// ---- registration ----------------------------------------------------------------------

async fn registration_create(state: AppState, ctx: Ctx, flow_type: FlowType) -> Response {
    let res = state.engine.create_registration(&ctx.req, flow_type).await;
    respond_created(&state, &ctx, flow_type, FlowKind::Registration, res, None).await
}

#[utoipa::path(
    get,
    path = "/self-service/registration/api",
    tag = "frontend",
    operation_id = "createNativeRegistrationFlow",
    responses(
        (status = 200, description = "The new registration flow.", body = wire::FlowJson),
        R::BadRequest, R::NoSession, R::Forbidden, R::TooMany, R::Unavailable
    )
)]
async fn registration_api(State(state): State<AppState>, ctx: Ctx) -> Response {
    registration_create(state, ctx, FlowType::Api).await
}

#[utoipa::path(
    get,
    path = "/self-service/registration/browser",
    tag = "frontend",
    operation_id = "createBrowserRegistrationFlow",
    params(("return_to" = Option<String>, Query, description = "Where to go after the flow (checked against the allow-list).")),
    responses(
        (status = 200, description = "The new registration flow (JSON clients).", body = wire::FlowJson),
        (status = 303, description = "Browsers: to the registration UI with the flow id (or on, when already signed in)."),
        R::BadRequest, R::NoSession, R::Forbidden, R::TooMany, R::Unavailable
    )
)]
async fn registration_browser(State(state): State<AppState>, ctx: Ctx) -> Response {
    registration_create(state, ctx, FlowType::Browser).await
}

/// `GET /self-service/{login,registration}/flows?id=`: browser flows need the CSRF cookie.
async fn get_plain_flow(state: &AppState, ctx: &Ctx, q: &HashMap<String, String>, kind: FlowKind) -> Answer {
    let id = parse_uuid(q.get("id"), "id")?;
    let flow = state.engine.load_flow(id, kind).await?;
    if flow.flow_type == FlowType::Browser
        && !ctx.req.csrf_cookie.as_deref().is_some_and(|c| idflow_core::crypto::csrf_matches(c, &flow.csrf_token))
    {
        let e = Error::new(ErrorKind::Csrf, "Please retry the flow and optionally clear your cookies. The request was rejected to protect you from Cross-Site-Request-Forgery (CSRF).")
            .with_detail("reject_reason", json!("The HTTP Cookie Header was set but did not include the anti-CSRF cookie."));
        return Err(e.into());
    }
    if flow.expires_at < state.engine.clock.now() {
        let path = kind.as_str();
        let e = Error::new(ErrorKind::Gone, format!("The {path} flow has expired. Please initialize a new one."))
            .with_detail(
                "redirect_to",
                json!(state.engine.url(&format!("/self-service/{path}/{}", flow.flow_type.as_str()))),
            );
        return Err(e.into());
    }
    Ok(json_response(StatusCode::OK, wire::flow_json(&flow, None)))
}

#[utoipa::path(
    get,
    path = "/self-service/registration/flows",
    tag = "frontend",
    operation_id = "getRegistrationFlow",
    params(("id" = uuid::Uuid, Query, description = "The flow id.")),
    responses(
        (status = 200, description = "The registration flow.", body = wire::FlowJson),
        R::BadRequest, R::NoSession, R::Forbidden, R::NotFound, R::Expired, R::Unavailable
    )
)]
async fn registration_get(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Answer {
    get_plain_flow(&state, &ctx, &q, FlowKind::Registration).await
}

#[utoipa::path(
    method(get, post),
    path = "/self-service/registration",
    tag = "frontend",
    operation_id = "updateRegistrationFlow",
    params(("flow" = uuid::Uuid, Query, description = "The flow id.")),
    request_body(content = Object, description = "The method's fields (`method` and e.g. `identifier`, `password`, `traits`, `csrf_token`), as JSON or `application/x-www-form-urlencoded`."),
    responses(
        (status = 200, description = "Registered: the identity (and the session, with its token for API flows).", body = wire::RegistrationResultJson),
        (status = 400, description = "The form with its messages, or an error (malformed request, …).", body = wire::FlowOrErrorJson),
        (status = 303, description = "Browsers: on to the return URL, or back to the UI with the form."),
        R::NoSession, R::Forbidden, R::NotFound, R::Expired, R::LocationChange, R::TooMany, R::Unavailable
    )
)]
async fn registration_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Q,
    ParsedBody(body): ParsedBody,
) -> Answer {
    let engine = &state.engine;
    let id = parse_uuid(q.get("flow"), "flow")?;
    // Read once: its type decides how errors answer, and the submit takes it as read.
    let flow = engine.load_flow(id, FlowKind::Registration).await?;
    let flow_type = flow.flow_type;
    let responder = FlowResponder::new(&state, &ctx, flow_type, Some(FlowKind::Registration));
    if ctx.req.auth.is_some() && responder.navigates() {
        return Ok(see_other(&engine.default_return_url()));
    }
    let outcome = match engine.submit_registration(flow, &body, &ctx.req).await {
        Ok(Submitted::Done(r)) => Outcome::Done(registered(&state, flow_type, r)),
        Ok(Submitted::Invalid(flow) | Submitted::ShowForm(flow)) => invalid(flow),
        Err(e) => Outcome::Error(e),
    };
    Ok(responder.respond(outcome).await)
}

fn registered(state: &AppState, flow_type: FlowType, r: Registered) -> Done {
    let identity = public_identity(state, &r.identity);
    let now = state.engine.clock.now();
    let after = state.engine.return_url_after(&r.flow);
    let session = r.session.as_ref().map(|s| wire::session(&s.session, Some(identity.clone()), now));
    let mut continue_with: Vec<Value> = r.continue_with.clone();
    let session_token = if flow_type == FlowType::Api {
        if let Some(s) = &r.session {
            continue_with.push(json!({"action": "set_ory_session_token", "ory_session_token": s.token}));
        }
        r.session.as_ref().map(|s| s.token.clone())
    } else {
        continue_with.push(redirect_action(&after));
        None
    };
    // Hook items (`show_verification_ui`) come first; browsers still get the redirect.
    let body = wire::RegistrationResultJson {
        identity,
        continue_with: (!continue_with.is_empty()).then_some(continue_with),
        session_token,
        session,
    };
    let body = serde_json::to_value(body).unwrap_or(Value::Null);
    // A new session rotates the CSRF secret, as after login.
    let cookies = match &r.session {
        Some(s) => vec![state.session_cookie_for(&s.token, &s.session), state.new_csrf_cookie()],
        None => vec![],
    };
    Done { body: Some(body.into()), redirect_to: after, location_change: false, cookies }
}

// ---- login -----------------------------------------------------------------------------

fn parse_bool(v: Option<&String>) -> bool {
    matches!(v.map(String::as_str), Some("1" | "t" | "T" | "TRUE" | "true" | "True"))
}

async fn login_create(state: AppState, ctx: Ctx, q: HashMap<String, String>, flow_type: FlowType) -> Answer {
    let aal = match q.get("aal").map(String::as_str) {
        None | Some("") => Aal::Aal1,
        Some(s) => match Aal::parse(s) {
            Some(a @ (Aal::Aal1 | Aal::Aal2)) => a,
            _ => {
                return Err(Error::bad_request(
                    "Unable to parse AuthenticationMethod Assurance Level (AAL): expected one of [aal1, aal2]",
                )
                .into());
            }
        },
    };
    let res = state.engine.create_login(&ctx.req, flow_type, parse_bool(q.get("refresh")), aal).await;
    Ok(respond_created(&state, &ctx, flow_type, FlowKind::Login, res, None).await)
}

#[utoipa::path(
    get,
    path = "/self-service/login/api",
    tag = "frontend",
    operation_id = "createNativeLoginFlow",
    params(("return_to" = Option<String>, Query, description = "Where to go after the flow (checked against the allow-list)."), ("refresh" = Option<bool>, Query, description = "Re-authenticate an existing session."), ("aal" = Option<String>, Query, description = "`aal1` or `aal2`.")),
    responses(
        (status = 200, description = "The new login flow.", body = wire::FlowJson),
        R::BadRequest, R::NoSession, R::Forbidden, R::TooMany, R::Unavailable
    )
)]
async fn login_api(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Answer {
    login_create(state, ctx, q, FlowType::Api).await
}

#[utoipa::path(
    get,
    path = "/self-service/login/browser",
    tag = "frontend",
    operation_id = "createBrowserLoginFlow",
    params(("return_to" = Option<String>, Query, description = "Where to go after the flow (checked against the allow-list)."), ("refresh" = Option<bool>, Query, description = "Re-authenticate an existing session."), ("aal" = Option<String>, Query, description = "`aal1` or `aal2`.")),
    responses(
        (status = 200, description = "The new login flow (JSON clients).", body = wire::FlowJson),
        (status = 303, description = "Browsers: to the login UI with the flow id (or on, when already signed in)."),
        R::BadRequest, R::NoSession, R::Forbidden, R::TooMany, R::Unavailable
    )
)]
async fn login_browser(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Answer {
    login_create(state, ctx, q, FlowType::Browser).await
}

#[utoipa::path(
    get,
    path = "/self-service/login/flows",
    tag = "frontend",
    operation_id = "getLoginFlow",
    params(("id" = uuid::Uuid, Query, description = "The flow id.")),
    responses(
        (status = 200, description = "The login flow.", body = wire::FlowJson),
        R::BadRequest, R::NoSession, R::Forbidden, R::NotFound, R::Expired, R::Unavailable
    )
)]
async fn login_get(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Answer {
    get_plain_flow(&state, &ctx, &q, FlowKind::Login).await
}

#[utoipa::path(
    method(get, post),
    path = "/self-service/login",
    tag = "frontend",
    operation_id = "updateLoginFlow",
    params(("flow" = uuid::Uuid, Query, description = "The flow id.")),
    request_body(content = Object, description = "The method's fields (`method` and e.g. `identifier`, `password`, `traits`, `csrf_token`), as JSON or `application/x-www-form-urlencoded`."),
    responses(
        (status = 200, description = "Signed in: the session (and its token for API flows).", body = wire::LoginResultJson),
        (status = 400, description = "The form with its messages, or an error (malformed request, …).", body = wire::FlowOrErrorJson),
        (status = 303, description = "Browsers: on to the return URL, or back to the UI with the form."),
        R::NoSession, R::Forbidden, R::NotFound, R::Expired, R::LocationChange, R::TooMany, R::Unavailable
    )
)]
async fn login_submit(State(state): State<AppState>, ctx: Ctx, Query(q): Q, ParsedBody(body): ParsedBody) -> Answer {
    let engine = &state.engine;
    let id = parse_uuid(q.get("flow"), "flow")?;
    // Read once: its type decides how errors answer, and the submit takes it as read.
    let flow = engine.load_flow(id, FlowKind::Login).await?;
    let flow_type = flow.flow_type;
    let outcome = match engine.submit_login(flow, &body, &ctx.req).await {
        Ok(Submitted::Done(r)) => Outcome::Done(logged_in(&state, &ctx, flow_type, r)),
        Ok(Submitted::Invalid(flow) | Submitted::ShowForm(flow)) => invalid(flow),
        Err(e) => Outcome::Error(e),
    };
    Ok(FlowResponder::new(&state, &ctx, flow_type, Some(FlowKind::Login)).respond(outcome).await)
}

/// A login: the session (and its token for API flows); a browser goes on to the post-login URL,
/// or first to the second factor when the session does not meet the required AAL yet.
fn logged_in(state: &AppState, ctx: &Ctx, flow_type: FlowType, r: LoggedIn) -> Done {
    let engine = &state.engine;
    let now = engine.clock.now();
    let identity = if r.aal_satisfied { public_identity(state, &r.identity) } else { Value::Null };
    let Issued { session, token, .. } = &r.issued;
    // A rotated or new token is always returned; an unchanged one is what the client has.
    let token = if token.is_empty() { ctx.req.token.clone().unwrap_or_default() } else { token.clone() };
    let session_json = wire::session(session, Some(identity), now);
    let mut after = engine.return_url_after(&r.flow);
    // An account scheduled for deletion: the sign-in never cancels by itself, it offers to
    // (idflow extension `account_deletion`); a browser goes to the settings page, which shows
    // the offer.
    let offer = r.identity.delete_after.filter(|_| r.aal_satisfied);
    if offer.is_some() {
        after = engine.url("/self-service/settings/browser");
    }
    let api = flow_type == FlowType::Api;
    let body = wire::LoginResultJson {
        session_token: api.then(|| token.clone()),
        session: session_json,
        continue_with: (!api).then(|| vec![redirect_action(&after)]),
        account_deletion: offer.map(|t| super::account::deletion_offer(state, t, false)),
    };
    let body = serde_json::to_value(body).unwrap_or(Value::Null);
    let redirect_to = if r.aal_satisfied { after } else { engine.aal2_login_url(r.flow.return_to.as_deref()) };
    // A new session rotates the CSRF secret.
    let cookies = vec![state.session_cookie_for(&token, session), state.new_csrf_cookie()];
    Done { body: Some(body.into()), redirect_to, location_change: !r.aal_satisfied, cookies }
}

// ---- settings --------------------------------------------------------------------------

async fn settings_create(state: AppState, ctx: Ctx, flow_type: FlowType) -> Response {
    let res = state.engine.create_settings(&ctx.req, flow_type).await;
    let identity = ctx.req.auth.as_ref().map(|a| public_identity(&state, &a.identity));
    respond_created(&state, &ctx, flow_type, FlowKind::Settings, res, identity).await
}

#[utoipa::path(
    get,
    path = "/self-service/settings/api",
    tag = "frontend",
    operation_id = "createNativeSettingsFlow",
    responses(
        (status = 200, description = "The new settings flow.", body = wire::FlowJson),
        R::BadRequest, R::NoSession, R::Forbidden, R::TooMany, R::Unavailable
    )
)]
async fn settings_api(State(state): State<AppState>, ctx: Ctx) -> Response {
    settings_create(state, ctx, FlowType::Api).await
}

#[utoipa::path(
    get,
    path = "/self-service/settings/browser",
    tag = "frontend",
    operation_id = "createBrowserSettingsFlow",
    params(("return_to" = Option<String>, Query, description = "Where to go after the flow (checked against the allow-list).")),
    responses(
        (status = 200, description = "The new settings flow (JSON clients).", body = wire::FlowJson),
        (status = 303, description = "Browsers: to the settings UI with the flow id (or on, when already signed in)."),
        R::BadRequest, R::NoSession, R::Forbidden, R::TooMany, R::Unavailable
    )
)]
async fn settings_browser(State(state): State<AppState>, ctx: Ctx) -> Response {
    settings_create(state, ctx, FlowType::Browser).await
}

#[utoipa::path(
    get,
    path = "/self-service/settings/flows",
    tag = "frontend",
    operation_id = "getSettingsFlow",
    params(("id" = uuid::Uuid, Query, description = "The flow id.")),
    responses(
        (status = 200, description = "The settings flow.", body = wire::FlowJson),
        R::BadRequest, R::NoSession, R::Forbidden, R::NotFound, R::Expired, R::Unavailable
    )
)]
async fn settings_get(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Answer {
    if let Some(r) = FlowResponder::no_session(&state, &ctx) {
        return Ok(r);
    }
    // A missing or malformed id is a flow that does not exist: 404 (settings-flow §4.3 step 1).
    let id = parse_uuid(q.get("id"), "id").unwrap_or(uuid::Uuid::nil());
    let flow = state.engine.get_settings(id, &ctx.req).await?;
    let mut resp = json_response(StatusCode::OK, flow_json(&state, &ctx, &flow).await);
    set_csrf_cookie(&state, &ctx, &flow, &mut resp);
    Ok(resp)
}

#[utoipa::path(
    method(get, post),
    path = "/self-service/settings",
    tag = "frontend",
    operation_id = "updateSettingsFlow",
    params(("flow" = uuid::Uuid, Query, description = "The flow id.")),
    request_body(content = Object, description = "The method's fields (`method` and e.g. `identifier`, `password`, `traits`, `csrf_token`), as JSON or `application/x-www-form-urlencoded`."),
    responses(
        (status = 200, description = "The flow: `state` is `success` once saved (with `continue_with`), or `show_form` (TOTP enrolment, a kept change).", body = wire::FlowJson),
        (status = 400, description = "The form with its messages, or an error (malformed request, …).", body = wire::FlowOrErrorJson),
        (status = 303, description = "Browsers: on to the return URL, or back to the UI with the form."),
        R::NoSession, R::Forbidden, R::NotFound, R::Expired, R::LocationChange, R::TooMany, R::Unavailable
    )
)]
async fn settings_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    method: axum::http::Method,
    Query(q): Q,
    ParsedBody(body): ParsedBody,
) -> Answer {
    if let Some(r) = FlowResponder::no_session(&state, &ctx) {
        return Ok(r);
    }
    let engine = &state.engine;
    let id = parse_uuid(q.get("flow"), "flow")?;
    // Read once: its type decides how errors answer, and the submit takes it as read.
    let flow = engine.load_flow(id, FlowKind::Settings).await?;
    let flow_type = flow.flow_type;
    let state = &state;
    let ctx_ref = &ctx;
    let form = |flow: Flow, status: StatusCode| async move {
        Outcome::Form { body: flow_json(state, ctx_ref, &flow).await.into(), flow, status }
    };
    let outcome = if method == axum::http::Method::GET {
        // The browser comes back from a refresh login: show the kept change in the form.
        match engine.get_settings(id, &ctx.req).await {
            Ok(flow) => form(flow, StatusCode::OK).await,
            Err(e) => Outcome::Error(e),
        }
    } else {
        match engine.submit_settings(flow, &body, &ctx.req).await {
            Ok(Submitted::Done(r)) => Outcome::Done(settings_done(state, &ctx, flow_type, r)),
            Ok(Submitted::ShowForm(flow)) => form(flow, StatusCode::OK).await,
            Ok(Submitted::Invalid(flow)) => form(flow, StatusCode::BAD_REQUEST).await,
            Err(e) => Outcome::Error(e),
        }
    };
    Ok(FlowResponder::new(state, &ctx, flow_type, Some(FlowKind::Settings)).respond(outcome).await)
}

fn settings_done(state: &AppState, ctx: &Ctx, flow_type: FlowType, r: SettingsDone) -> Done {
    let mut out = wire::flow_json(&r.flow, Some(public_identity(state, &r.identity)));
    let mut cw = r.continue_with.clone();
    if flow_type == FlowType::Browser {
        cw.push(redirect_action(&r.redirect_to));
    }
    if !cw.is_empty() {
        out.continue_with = Some(cw);
    }
    let cookies = settings_cookies(state, ctx, &r);
    Done { body: Some(out.into()), redirect_to: r.redirect_to, location_change: false, cookies }
}

// ---- recovery --------------------------------------------------------------------------

async fn recovery_create(state: AppState, ctx: Ctx, flow_type: FlowType) -> Response {
    let res = state.engine.create_recovery(&ctx.req, flow_type).await;
    respond_created(&state, &ctx, flow_type, FlowKind::Recovery, res, None).await
}

#[utoipa::path(
    get,
    path = "/self-service/recovery/api",
    tag = "frontend",
    operation_id = "createNativeRecoveryFlow",
    responses(
        (status = 200, description = "The new recovery flow.", body = wire::FlowJson),
        R::BadRequest, R::NoSession, R::Forbidden, R::TooMany, R::Unavailable
    )
)]
async fn recovery_api(State(state): State<AppState>, ctx: Ctx) -> Response {
    recovery_create(state, ctx, FlowType::Api).await
}

#[utoipa::path(
    get,
    path = "/self-service/recovery/browser",
    tag = "frontend",
    operation_id = "createBrowserRecoveryFlow",
    params(("return_to" = Option<String>, Query, description = "Where to go after the flow (checked against the allow-list).")),
    responses(
        (status = 200, description = "The new recovery flow (JSON clients).", body = wire::FlowJson),
        (status = 303, description = "Browsers: to the recovery UI with the flow id (or on, when already signed in)."),
        R::BadRequest, R::NoSession, R::Forbidden, R::TooMany, R::Unavailable
    )
)]
async fn recovery_browser(State(state): State<AppState>, ctx: Ctx) -> Response {
    recovery_create(state, ctx, FlowType::Browser).await
}

#[utoipa::path(
    get,
    path = "/self-service/recovery/flows",
    tag = "frontend",
    operation_id = "getRecoveryFlow",
    params(("id" = uuid::Uuid, Query, description = "The flow id.")),
    responses(
        (status = 200, description = "The recovery flow.", body = wire::FlowJson),
        R::BadRequest, R::NoSession, R::Forbidden, R::NotFound, R::Expired, R::Unavailable
    )
)]
async fn recovery_get(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Answer {
    get_plain_flow(&state, &ctx, &q, FlowKind::Recovery).await
}

/// `GET /self-service/recovery?flow=`: the link of a flow created by an administrator
/// (`POST /admin/recovery/code`) binds the flow to this browser and shows its UI.
#[utoipa::path(
    get,
    path = "/self-service/recovery",
    tag = "frontend",
    operation_id = "openRecoveryLink",
    params(("flow" = uuid::Uuid, Query, description = "The flow id."), ("token" = Option<String>, Query, description = "The token of an administrator's recovery link.")),
    responses(
        (status = 303, description = "To the recovery UI, or (with `token`) on to the settings UI, signed in."),
        R::BadRequest, R::Forbidden, R::NotFound, R::Expired, R::Unavailable
    )
)]
async fn recovery_link(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Answer {
    let engine = &state.engine;
    let id = parse_uuid(q.get("flow"), "flow")?;
    if let Some(token) = q.get("token") {
        // The link of `POST /admin/recovery/link`: a browser navigation that recovers.
        let outcome = match engine.recover_with_link(id, token, &ctx.req).await {
            Ok(Submitted::Done(r)) => Outcome::Done(recovered(&state, &ctx, FlowType::Browser, r)),
            Ok(Submitted::ShowForm(flow) | Submitted::Invalid(flow)) => {
                Outcome::Form { body: wire::flow_json(&flow, None).into(), flow, status: StatusCode::OK }
            }
            Err(e) => Outcome::Error(e),
        };
        return Ok(FlowResponder::navigation(&state, &ctx, Some(FlowKind::Recovery)).respond(outcome).await);
    }
    let flow = engine.claim_admin_recovery(id, &ctx.req).await?;
    let mut resp = see_other(&engine.ui_url_for_flow(FlowKind::Recovery, flow.id));
    set_csrf_cookie(&state, &ctx, &flow, &mut resp);
    Ok(resp)
}

#[utoipa::path(
    post,
    path = "/self-service/recovery",
    tag = "frontend",
    operation_id = "updateRecoveryFlow",
    params(("flow" = uuid::Uuid, Query, description = "The flow id.")),
    request_body(content = Object, description = "The method's fields (`method` and e.g. `identifier`, `password`, `traits`, `csrf_token`), as JSON or `application/x-www-form-urlencoded`."),
    responses(
        (status = 200, description = "The flow (`sent_email`, or `passed_challenge` with `continue_with`).", body = wire::FlowJson),
        (status = 400, description = "The form with its messages, or an error (malformed request, …).", body = wire::FlowOrErrorJson),
        (status = 303, description = "Browsers: on to the return URL, or back to the UI with the form."),
        R::NoSession, R::Forbidden, R::NotFound, R::Expired, R::LocationChange, R::TooMany, R::Unavailable
    )
)]
async fn recovery_submit(State(state): State<AppState>, ctx: Ctx, Query(q): Q, ParsedBody(body): ParsedBody) -> Answer {
    let engine = &state.engine;
    let id = parse_uuid(q.get("flow"), "flow")?;
    // Read once: its type decides how errors answer, and the submit takes it as read.
    let flow = engine.load_flow(id, FlowKind::Recovery).await?;
    let flow_type = flow.flow_type;
    let outcome = match engine.submit_recovery(flow, &body, &ctx.req).await {
        Ok(Submitted::Done(r)) => Outcome::Done(recovered(&state, &ctx, flow_type, r)),
        Ok(Submitted::ShowForm(flow)) => {
            Outcome::Form { body: wire::flow_json(&flow, None).into(), flow, status: StatusCode::OK }
        }
        Ok(Submitted::Invalid(flow)) => invalid(flow),
        Err(e) => Outcome::Error(e),
    };
    Ok(FlowResponder::new(&state, &ctx, flow_type, Some(FlowKind::Recovery)).respond(outcome).await)
}

/// A completed recovery. With `feature_flags.use_continue_with_transitions` (and always for
/// API flows) the answer is the flow with `continue_with` (`show_settings_ui`, and
/// `set_ory_session_token` for API flows); without it a browser is sent to the settings UI
/// (JSON callers: 422 `browser_location_change_required`), like Kratos.
fn recovered(state: &AppState, ctx: &Ctx, flow_type: FlowType, r: Recovered) -> Done {
    let engine = &state.engine;
    let settings_ui = engine.ui_url_for_flow(FlowKind::Settings, r.settings_flow.id);
    let mut cw = vec![json!({"action": "show_settings_ui", "flow": {"id": r.settings_flow.id, "url": settings_ui}})];
    if flow_type == FlowType::Api {
        cw.push(json!({"action": "set_ory_session_token", "ory_session_token": r.issued.token}));
    }
    let mut body = wire::flow_json(&r.flow, None);
    body.continue_with = Some(cw);
    let mut cookies = vec![state.session_cookie_for(&r.issued.token, &r.issued.session)];
    // The settings flow is bound to this browser's CSRF cookie (a new one if it had none).
    if ctx.req.csrf_cookie.as_deref() != Some(r.settings_flow.csrf_token.as_str()) && flow_type == FlowType::Browser {
        cookies.push(state.csrf_cookie_header(&r.settings_flow.csrf_token));
    }
    let location_change = !engine.cfg.feature_flags.use_continue_with_transitions;
    Done { body: Some(body.into()), redirect_to: r.redirect_to, location_change, cookies }
}

// ---- verification ----------------------------------------------------------------------

async fn verification_create(state: AppState, ctx: Ctx, flow_type: FlowType) -> Response {
    let res = state.engine.create_verification(&ctx.req, flow_type).await;
    respond_created(&state, &ctx, flow_type, FlowKind::Verification, res, None).await
}

#[utoipa::path(
    get,
    path = "/self-service/verification/api",
    tag = "frontend",
    operation_id = "createNativeVerificationFlow",
    responses(
        (status = 200, description = "The new verification flow.", body = wire::FlowJson),
        R::BadRequest, R::NoSession, R::Forbidden, R::TooMany, R::Unavailable
    )
)]
async fn verification_api(State(state): State<AppState>, ctx: Ctx) -> Response {
    verification_create(state, ctx, FlowType::Api).await
}

#[utoipa::path(
    get,
    path = "/self-service/verification/browser",
    tag = "frontend",
    operation_id = "createBrowserVerificationFlow",
    params(("return_to" = Option<String>, Query, description = "Where to go after the flow (checked against the allow-list).")),
    responses(
        (status = 200, description = "The new verification flow (JSON clients).", body = wire::FlowJson),
        (status = 303, description = "Browsers: to the verification UI with the flow id (or on, when already signed in)."),
        R::BadRequest, R::NoSession, R::Forbidden, R::TooMany, R::Unavailable
    )
)]
async fn verification_browser(State(state): State<AppState>, ctx: Ctx) -> Response {
    verification_create(state, ctx, FlowType::Browser).await
}

#[utoipa::path(
    get,
    path = "/self-service/verification/flows",
    tag = "frontend",
    operation_id = "getVerificationFlow",
    params(("id" = uuid::Uuid, Query, description = "The flow id.")),
    responses(
        (status = 200, description = "The verification flow.", body = wire::FlowJson),
        R::BadRequest, R::NoSession, R::Forbidden, R::NotFound, R::Expired, R::Unavailable
    )
)]
async fn verification_get(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Answer {
    get_plain_flow(&state, &ctx, &q, FlowKind::Verification).await
}

/// `GET /self-service/verification?flow=&code=`: the mailed link fills the code in and sends
/// the browser to the verification UI, where the user confirms.
#[utoipa::path(
    get,
    path = "/self-service/verification",
    tag = "frontend",
    operation_id = "openVerificationLink",
    params(("flow" = uuid::Uuid, Query, description = "The flow id."), ("code" = Option<String>, Query, description = "The mailed code.")),
    responses(
        (status = 303, description = "To the verification UI with the code filled in."),
        R::BadRequest, R::Forbidden, R::NotFound, R::Expired, R::Unavailable
    )
)]
async fn verification_link(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Answer {
    let engine = &state.engine;
    let id = parse_uuid(q.get("flow"), "flow")?;
    let code = q.get("code").map(String::as_str).unwrap_or_default();
    let flow = engine.fill_verification_code(id, code, &ctx.req).await?;
    let mut resp = see_other(&engine.ui_url_for_flow(FlowKind::Verification, flow.id));
    set_csrf_cookie(&state, &ctx, &flow, &mut resp);
    Ok(resp)
}

/// `POST /self-service/verification?flow=`: the flow (200; 400 with form errors), or a browser
/// sent back to the verification UI.
#[utoipa::path(
    post,
    path = "/self-service/verification",
    tag = "frontend",
    operation_id = "updateVerificationFlow",
    params(("flow" = uuid::Uuid, Query, description = "The flow id.")),
    request_body(content = Object, description = "The method's fields (`method` and e.g. `identifier`, `password`, `traits`, `csrf_token`), as JSON or `application/x-www-form-urlencoded`."),
    responses(
        (status = 200, description = "The flow (`sent_email`, or `passed_challenge` once verified).", body = wire::FlowJson),
        (status = 400, description = "The form with its messages, or an error (malformed request, …).", body = wire::FlowOrErrorJson),
        (status = 303, description = "Browsers: on to the return URL, or back to the UI with the form."),
        R::NoSession, R::Forbidden, R::NotFound, R::Expired, R::LocationChange, R::TooMany, R::Unavailable
    )
)]
async fn verification_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Q,
    ParsedBody(body): ParsedBody,
) -> Answer {
    let engine = &state.engine;
    let id = parse_uuid(q.get("flow"), "flow")?;
    // Read once: its type decides how errors answer, and the submit takes it as read.
    let flow = engine.load_flow(id, FlowKind::Verification).await?;
    let flow_type = flow.flow_type;
    let outcome = match engine.submit_verification(flow, &body, &ctx.req).await {
        Ok(Submitted::Done(Verified { flow, .. }) | Submitted::ShowForm(flow)) => {
            Outcome::Form { body: wire::flow_json(&flow, None).into(), flow, status: StatusCode::OK }
        }
        Ok(Submitted::Invalid(flow)) => invalid(flow),
        Err(e) => Outcome::Error(e),
    };
    Ok(FlowResponder::new(&state, &ctx, flow_type, Some(FlowKind::Verification)).respond(outcome).await)
}

/// `GET /.well-known/ory/webauthn.js`: the WebAuthn/passkey helper script of the `webauthn_script`
/// node (its `integrity` attribute is the SHA-512 of exactly these bytes).
#[utoipa::path(
    get,
    path = "/.well-known/ory/webauthn.js",
    tag = "frontend",
    operation_id = "getWebAuthnJavaScript",
    responses((status = 200, description = "The WebAuthn helper script.", content_type = "text/javascript", body = String))
)]
async fn webauthn_js() -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"))],
        idflow_core::selfservice::methods::webauthn::WEBAUTHN_JS,
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/.well-known/change-password",
    tag = "frontend",
    operation_id = "wellKnownChangePassword",
    responses((status = 303, description = "To the settings UI (RFC 8615 well-known change-password URL)."))
)]
async fn change_password(State(state): State<AppState>) -> Response {
    let url = state
        .engine
        .cfg
        .selfservice
        .flows
        .settings
        .ui_url
        .clone()
        .unwrap_or_else(|| state.engine.url("/self-service/settings/browser"));
    see_other(&url)
}

// ---- logout ----------------------------------------------------------------------------

#[utoipa::path(
    get,
    path = "/self-service/logout/browser",
    tag = "frontend",
    operation_id = "createBrowserLogoutFlow",
    params(("return_to" = Option<String>, Query, description = "Where to go after the flow (checked against the allow-list).")),
    responses(
        (status = 200, description = "The logout URL and token.", body = wire::LogoutUrlJson),
        (status = 303, description = "No session: a browser is sent to the error page."),
        R::BadRequest, R::NoSession, R::Unavailable
    )
)]
async fn logout_browser(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Answer {
    let Some(a) = ctx.req.auth.as_ref() else {
        let e = Error::new(ErrorKind::SessionInactive, "No active session was found in this request.");
        return Ok(FlowResponder::new(&state, &ctx, FlowType::Browser, None).error_page(e).await);
    };
    let return_to = state.engine.opt_return_to(q.get("return_to").map(String::as_str))?;
    let token = state.engine.new_logout_token(a).await?;
    let mut params = vec![("token", token.as_str())];
    if let Some(rt) = &return_to {
        params.push(("return_to", rt.as_str()));
    }
    let url = with_query(&state.engine.url("/self-service/logout"), &params);
    let body = wire::LogoutUrlJson { logout_url: url, logout_token: token };
    Ok(json_response(StatusCode::OK, serde_json::to_value(body).unwrap_or(Value::Null)))
}

#[utoipa::path(
    get,
    path = "/self-service/logout",
    tag = "frontend",
    operation_id = "updateLogoutFlow",
    params(("token" = String, Query, description = "The logout token."), ("return_to" = Option<String>, Query, description = "Where to go after the flow (checked against the allow-list).")),
    responses(
        (status = 204, description = "Signed out (JSON clients)."),
        (status = 303, description = "Signed out: on to the return URL."),
        R::BadRequest, R::NoSession, R::Forbidden, R::Unavailable
    )
)]
async fn logout(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Answer {
    let Some(token) = q.get("token").filter(|t| !t.is_empty()) else {
        return Err(Error::bad_request("Please include a token in the URL query.").into());
    };
    let Some(a) = ctx.req.auth.as_ref() else {
        return Err(Error::new(ErrorKind::Unauthorized, "No active session was found in this request.").into());
    };
    state.engine.logout_with_logout_token(a, token, &ctx.req).await?;
    let redirect_to = match q.get("return_to").map(|r| state.engine.check_return_to(r)) {
        Some(Ok(u)) => u,
        _ => state
            .engine
            .cfg
            .selfservice
            .flows
            .logout
            .after
            .default_browser_return_url
            .clone()
            .unwrap_or_else(|| state.engine.ui_url("login")),
    };
    let cookies = vec![state.clear_session_cookie(), state.new_csrf_cookie()];
    let done = Done { body: None, redirect_to, location_change: false, cookies };
    Ok(FlowResponder::new(&state, &ctx, FlowType::Browser, None).respond(Outcome::Done(done)).await)
}

#[utoipa::path(
    delete,
    path = "/self-service/logout/api",
    tag = "frontend",
    operation_id = "performNativeLogout",
    request_body(content = Object, description = "`{\"session_token\": \"…\"}`"),
    responses(
        (status = 204, description = "The session is revoked."),
        R::BadRequest, R::NoSession, R::Forbidden, R::Unavailable
    )
)]
async fn logout_api(State(state): State<AppState>, ctx: Ctx, ParsedBody(body): ParsedBody) -> Answer {
    let Some(token) = body.get("session_token").and_then(Value::as_str).filter(|t| !t.is_empty()) else {
        return Err(Error::bad_request("The request body must contain a session_token.").into());
    };
    state.engine.logout_by_token(token, &ctx.req).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(
    get,
    path = "/self-service/errors",
    tag = "frontend",
    operation_id = "getFlowError",
    params(("id" = uuid::Uuid, Query, description = "The error id.")),
    responses(
        (status = 200, description = "The stored error.", body = wire::StoredErrorJson),
        R::BadRequest, R::NotFound, R::Unavailable
    )
)]
async fn get_error(State(state): State<AppState>, _: Ctx, Query(q): Q) -> Answer {
    let id = parse_uuid(q.get("id"), "id")?;
    // A read never writes (it once inserted an empty row per unknown id).
    match state.engine.store.kv_get(&format!("error:{id}")).await? {
        Some(v) if !v.is_empty() => Ok(json_response(StatusCode::OK, serde_json::from_str(&v).unwrap_or(Value::Null))),
        _ => Err(Error::not_found("The error could not be found.").into()),
    }
}

// ---- sessions --------------------------------------------------------------------------

#[utoipa::path(
    get,
    path = "/sessions/whoami",
    tag = "frontend",
    operation_id = "toSession",
    description = "The session of the cookie or the `X-Session-Token` / `Authorization: Bearer` token. Every HTTP method is answered the same (for proxies that forward the original method).",
    responses(
        (status = 200, description = "The session.", body = wire::SessionJson),
        R::NoSession, R::Forbidden, R::Unavailable
    )
)]
async fn whoami(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let a = state.engine.whoami(ctx.req.auth)?;
    let body = wire::session(&a.session, Some(public_identity(&state, &a.identity)), state.engine.clock.now());
    let mut resp = json_response(StatusCode::OK, body);
    if let Ok(v) = HeaderValue::from_str(&a.identity.id.to_string()) {
        resp.headers_mut().insert("x-kratos-authenticated-identity-id", v);
    }
    Ok(resp)
}

#[utoipa::path(
    get,
    path = "/sessions",
    tag = "frontend",
    operation_id = "listMySessions",
    responses(
        (status = 200, description = "The caller's other active sessions.", body = Vec<wire::SessionJson>),
        R::NoSession, R::Forbidden, R::Unavailable
    )
)]
async fn list_my_sessions(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let a = state.engine.whoami(ctx.req.auth)?;
    let list = state.engine.my_other_sessions(&a).await?;
    let now = state.engine.clock.now();
    let v: Vec<Value> = list.iter().map(|s| wire::session(s, None, now)).collect();
    Ok(json_response(StatusCode::OK, Value::Array(v)))
}

#[utoipa::path(
    delete,
    path = "/sessions",
    tag = "frontend",
    operation_id = "disableMyOtherSessions",
    responses(
        (status = 200, description = "How many sessions were revoked.", body = wire::SessionCountJson),
        R::NoSession, R::Forbidden, R::Unavailable
    )
)]
async fn revoke_my_sessions(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let a = state.engine.whoami(ctx.req.auth.clone())?;
    let n = state.engine.revoke_my_other_sessions(&a, &ctx.req).await?;
    Ok(json_response(StatusCode::OK, serde_json::to_value(wire::SessionCountJson { count: n }).unwrap_or(Value::Null)))
}

#[utoipa::path(
    delete,
    path = "/sessions/{id}",
    tag = "frontend",
    operation_id = "disableMySession",
    params(("id" = uuid::Uuid, Path, description = "The session id.")),
    responses(
        (status = 204, description = "The session is revoked."),
        R::BadRequest, R::NoSession, R::Forbidden, R::NotFound, R::Unavailable
    )
)]
async fn revoke_my_session(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Answer {
    let a = state.engine.whoami(ctx.req.auth.clone())?;
    let id = uuid::Uuid::parse_str(&id).map_err(|_| Error::bad_request("The session id is not a valid UUID."))?;
    state.engine.revoke_my_session(&a, id, &ctx.req).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /self-service/settings/activity` (an idflow extension): the caller's activity log,
/// newest first; `page_size` (1–1000, default 250) and `page_token`, with a `Link` header to
/// the next page as on the admin list routes.
#[utoipa::path(
    get,
    path = "/self-service/settings/activity",
    tag = "idflow",
    operation_id = "listMyActivity",
    description = "idflow extension: the caller's activity log (session cookie or token), newest first, `Link` header to the next page.",
    params(
        ("page_size" = Option<u32>, Query, description = "1 to 1000 (default 250)."),
        ("page_token" = Option<String>, Query, description = "From the `Link` header of the previous page.")
    ),
    responses(
        (status = 200, description = "Activity entries.", body = Vec<wire::ActivityJson>),
        (status = 400, description = "A malformed page token or size.", body = wire::ErrorEnvelope),
        R::NoSession,
        (status = 403, description = "A higher AAL is needed.", body = wire::ErrorEnvelope)
    )
)]
async fn my_activity(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let a = state.engine.whoami(ctx.req.auth.clone())?;
    let (after, size) = super::activity_page(&ctx.uri)?;
    let list = state.engine.list_activity(a.identity.id, after, size).await?;
    let next = super::activity_next(&list, size)
        .map(|t| format!("{}/self-service/settings/activity?page_size={size}&page_token={t}", state.engine.base()));
    Ok(super::activity_response(&list, next))
}

// ---- schemas ---------------------------------------------------------------------------

#[utoipa::path(
    get,
    path = "/schemas",
    tag = "frontend",
    operation_id = "listIdentitySchemas",
    responses((status = 200, description = "The identity schemas.", body = Vec<wire::SchemaEntryJson>))
)]
async fn list_schemas(State(state): State<AppState>) -> Response {
    let mut v: Vec<wire::SchemaEntryJson> = state
        .engine
        .schemas
        .values()
        .map(|s| wire::SchemaEntryJson { id: s.id.clone(), schema: s.raw.clone() })
        .collect();
    v.sort_by(|a, b| a.id.cmp(&b.id));
    json_response(StatusCode::OK, serde_json::to_value(v).unwrap_or(Value::Null))
}

#[utoipa::path(
    get,
    path = "/schemas/{id}",
    tag = "frontend",
    operation_id = "getIdentitySchema",
    params(("id" = String, Path, description = "The schema id (or its URL-safe base64).")),
    responses(
        (status = 200, description = "The identity JSON schema.", body = Object),
        R::NotFound
    )
)]
async fn get_schema(State(state): State<AppState>, _: Ctx, Path(id): Path<String>) -> Answer {
    use base64::Engine as _;
    let decoded =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&id).ok().and_then(|b| String::from_utf8(b).ok());
    let found = state.engine.schemas.get(&id).or_else(|| decoded.as_ref().and_then(|d| state.engine.schemas.get(d)));
    match found {
        Some(s) => Ok(json_response(StatusCode::OK, s.raw.clone())),
        None => Err(Error::not_found(format!("Identity schema `{id}` could not be found.")).into()),
    }
}
