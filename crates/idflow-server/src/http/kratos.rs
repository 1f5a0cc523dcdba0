//! The Kratos-compatible public routes: self-service registration, login, settings, logout,
//! sessions, schemas and errors, with Kratos's status codes, redirects and JSON shapes.

use super::error::KratosError;
use super::flow::{Done, FlowResponder, Outcome, redirect_action, settings_cookies};
use super::{AppState, Ctx, ParsedBody, json_response, parse_uuid, see_other, set_csrf_cookie};
use crate::wire::{self, IdentityView};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get};
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

type Q = Query<HashMap<String, String>>;
type Answer = Result<Response, KratosError>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/self-service/registration/api", get(registration_api))
        .route("/self-service/registration/browser", get(registration_browser))
        .route("/self-service/registration/flows", get(registration_get))
        .route("/self-service/registration", get(registration_submit).post(registration_submit))
        .route("/self-service/login/api", get(login_api))
        .route("/self-service/login/browser", get(login_browser))
        .route("/self-service/login/flows", get(login_get))
        .route("/self-service/login", get(login_submit).post(login_submit))
        .route("/self-service/settings/api", get(settings_api))
        .route("/self-service/settings/browser", get(settings_browser))
        .route("/self-service/settings/flows", get(settings_get))
        .route("/self-service/settings/activity", get(my_activity))
        .route("/self-service/settings", get(settings_submit).post(settings_submit))
        .route("/self-service/recovery/api", get(recovery_api))
        .route("/self-service/recovery/browser", get(recovery_browser))
        .route("/self-service/recovery/flows", get(recovery_get))
        .route("/self-service/recovery", get(recovery_link).post(recovery_submit))
        .route("/self-service/verification/api", get(verification_api))
        .route("/self-service/verification/browser", get(verification_browser))
        .route("/self-service/verification/flows", get(verification_get))
        .route("/self-service/verification", get(verification_link).post(verification_submit))
        .route("/.well-known/change-password", get(change_password))
        .route(idflow_core::selfservice::methods::webauthn::WEBAUTHN_JS_PATH, get(webauthn_js))
        .route("/self-service/logout/browser", get(logout_browser))
        .route("/self-service/logout", get(logout))
        .route("/self-service/logout/api", delete(logout_api))
        .route("/self-service/errors", get(get_error))
        .route("/sessions/whoami", any(whoami))
        .route("/sessions", get(list_my_sessions).delete(revoke_my_sessions))
        .route("/sessions/{id}", delete(revoke_my_session))
        .route("/schemas", get(list_schemas))
        .route("/schemas/{id}", get(get_schema))
}

fn public_identity(state: &AppState, i: &Identity) -> Value {
    wire::identity(state.engine.base(), i, IdentityView::Public, &[])
}

async fn flow_json(state: &AppState, flow: &Flow) -> Value {
    let identity = match (flow.kind, flow.identity_id) {
        (FlowKind::Settings, Some(id)) => {
            state.engine.store.get_identity(id).await.ok().flatten().map(|i| public_identity(state, &i))
        }
        _ => None,
    };
    wire::flow(flow, identity)
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
        Ok(flow) => Outcome::Created { body: wire::flow(&flow, identity), flow },
        Err(e) => Outcome::Error(e),
    };
    FlowResponder::new(state, ctx, flow_type, Some(kind)).respond(outcome).await
}

/// A login or registration flow returned with form errors: 400.
fn invalid(flow: Flow) -> Outcome {
    Outcome::Form { body: wire::flow(&flow, None), flow, status: StatusCode::BAD_REQUEST }
}

// ---- registration ----------------------------------------------------------------------

async fn registration_create(state: AppState, ctx: Ctx, flow_type: FlowType) -> Response {
    let res = state.engine.create_registration(&ctx.req, flow_type).await;
    respond_created(&state, &ctx, flow_type, FlowKind::Registration, res, None).await
}

async fn registration_api(State(state): State<AppState>, ctx: Ctx) -> Response {
    registration_create(state, ctx, FlowType::Api).await
}

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
    Ok(json_response(StatusCode::OK, wire::flow(&flow, None)))
}

async fn registration_get(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Answer {
    get_plain_flow(&state, &ctx, &q, FlowKind::Registration).await
}

async fn registration_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Q,
    ParsedBody(body): ParsedBody,
) -> Answer {
    let engine = &state.engine;
    let id = parse_uuid(q.get("flow"), "flow")?;
    let flow_type = engine.load_flow(id, FlowKind::Registration).await?.flow_type;
    let responder = FlowResponder::new(&state, &ctx, flow_type, Some(FlowKind::Registration));
    if ctx.req.auth.is_some() && responder.navigates() {
        return Ok(see_other(&engine.default_return_url()));
    }
    let outcome = match engine.submit_registration(id, &body, &ctx.req).await {
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
    let body = if flow_type == FlowType::Api {
        let mut out = json!({ "identity": identity, "continue_with": Value::Null });
        if let Some(s) = &r.session {
            out["session_token"] = json!(s.token);
            out["session"] = wire::session(&s.session, Some(identity.clone()), now);
            out["continue_with"] = json!([{"action": "set_ory_session_token", "ory_session_token": s.token}]);
        }
        out
    } else {
        let mut out = json!({ "identity": identity, "continue_with": [redirect_action(&after)] });
        if let Some(s) = &r.session {
            out["session"] = wire::session(&s.session, Some(identity.clone()), now);
        }
        out
    };
    // Hook items (`show_verification_ui`) come first; browsers still get the redirect.
    let mut body = body;
    if !r.continue_with.is_empty() {
        let mut cw = r.continue_with.clone();
        cw.extend(body["continue_with"].as_array().cloned().unwrap_or_default());
        body["continue_with"] = Value::Array(cw);
    }
    // A new session rotates the CSRF secret, as after login.
    let cookies = match &r.session {
        Some(s) => vec![state.session_cookie_for(&s.token, &s.session), state.new_csrf_cookie()],
        None => vec![],
    };
    Done { body: Some(body), redirect_to: after, location_change: false, cookies }
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

async fn login_api(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Answer {
    login_create(state, ctx, q, FlowType::Api).await
}

async fn login_browser(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Answer {
    login_create(state, ctx, q, FlowType::Browser).await
}

async fn login_get(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Answer {
    get_plain_flow(&state, &ctx, &q, FlowKind::Login).await
}

async fn login_submit(State(state): State<AppState>, ctx: Ctx, Query(q): Q, ParsedBody(body): ParsedBody) -> Answer {
    let engine = &state.engine;
    let id = parse_uuid(q.get("flow"), "flow")?;
    let flow_type = engine.load_flow(id, FlowKind::Login).await?.flow_type;
    let outcome = match engine.submit_login(id, &body, &ctx.req).await {
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
    let after = engine.return_url_after(&r.flow);
    let body = if flow_type == FlowType::Api {
        json!({ "session_token": token, "session": session_json, "continue_with": Value::Null })
    } else {
        json!({ "session": session_json, "continue_with": [redirect_action(&after)] })
    };
    let redirect_to = if r.aal_satisfied { after } else { engine.aal2_login_url(r.flow.return_to.as_deref()) };
    // A new session rotates the CSRF secret.
    let cookies = vec![state.session_cookie_for(&token, session), state.new_csrf_cookie()];
    Done { body: Some(body), redirect_to, location_change: !r.aal_satisfied, cookies }
}

// ---- settings --------------------------------------------------------------------------

async fn settings_create(state: AppState, ctx: Ctx, flow_type: FlowType) -> Response {
    let res = state.engine.create_settings(&ctx.req, flow_type).await;
    let identity = ctx.req.auth.as_ref().map(|a| public_identity(&state, &a.identity));
    respond_created(&state, &ctx, flow_type, FlowKind::Settings, res, identity).await
}

async fn settings_api(State(state): State<AppState>, ctx: Ctx) -> Response {
    settings_create(state, ctx, FlowType::Api).await
}

async fn settings_browser(State(state): State<AppState>, ctx: Ctx) -> Response {
    settings_create(state, ctx, FlowType::Browser).await
}

async fn settings_get(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Answer {
    if let Some(r) = FlowResponder::no_session(&state, &ctx) {
        return Ok(r);
    }
    // A missing or malformed id is a flow that does not exist: 404 (settings-flow §4.3 step 1).
    let id = parse_uuid(q.get("id"), "id").unwrap_or(uuid::Uuid::nil());
    let flow = state.engine.get_settings(id, &ctx.req).await?;
    let mut resp = json_response(StatusCode::OK, flow_json(&state, &flow).await);
    set_csrf_cookie(&state, &ctx, &flow, &mut resp);
    Ok(resp)
}

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
    let flow_type = engine.load_flow(id, FlowKind::Settings).await?.flow_type;
    let state = &state;
    let form = |flow: Flow, status: StatusCode| async move {
        Outcome::Form { body: flow_json(state, &flow).await, flow, status }
    };
    let outcome = if method == axum::http::Method::GET {
        // The browser comes back from a refresh login: show the kept change in the form.
        match engine.get_settings(id, &ctx.req).await {
            Ok(flow) => form(flow, StatusCode::OK).await,
            Err(e) => Outcome::Error(e),
        }
    } else {
        match engine.submit_settings(id, &body, &ctx.req).await {
            Ok(Submitted::Done(r)) => Outcome::Done(settings_done(state, &ctx, flow_type, r)),
            Ok(Submitted::ShowForm(flow)) => form(flow, StatusCode::OK).await,
            Ok(Submitted::Invalid(flow)) => form(flow, StatusCode::BAD_REQUEST).await,
            Err(e) => Outcome::Error(e),
        }
    };
    Ok(FlowResponder::new(state, &ctx, flow_type, Some(FlowKind::Settings)).respond(outcome).await)
}

fn settings_done(state: &AppState, ctx: &Ctx, flow_type: FlowType, r: SettingsDone) -> Done {
    let mut out = wire::flow(&r.flow, Some(public_identity(state, &r.identity)));
    let mut cw = r.continue_with.clone();
    if flow_type == FlowType::Browser {
        cw.push(redirect_action(&r.redirect_to));
    }
    if !cw.is_empty() {
        out["continue_with"] = Value::Array(cw);
    }
    let cookies = settings_cookies(state, ctx, &r);
    Done { body: Some(out), redirect_to: r.redirect_to, location_change: false, cookies }
}

// ---- recovery --------------------------------------------------------------------------

async fn recovery_create(state: AppState, ctx: Ctx, flow_type: FlowType) -> Response {
    let res = state.engine.create_recovery(&ctx.req, flow_type).await;
    respond_created(&state, &ctx, flow_type, FlowKind::Recovery, res, None).await
}

async fn recovery_api(State(state): State<AppState>, ctx: Ctx) -> Response {
    recovery_create(state, ctx, FlowType::Api).await
}

async fn recovery_browser(State(state): State<AppState>, ctx: Ctx) -> Response {
    recovery_create(state, ctx, FlowType::Browser).await
}

async fn recovery_get(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Answer {
    get_plain_flow(&state, &ctx, &q, FlowKind::Recovery).await
}

/// `GET /self-service/recovery?flow=`: the link of a flow created by an administrator
/// (`POST /admin/recovery/code`) binds the flow to this browser and shows its UI.
async fn recovery_link(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Answer {
    let engine = &state.engine;
    let id = parse_uuid(q.get("flow"), "flow")?;
    if let Some(token) = q.get("token") {
        // The link of `POST /admin/recovery/link`: a browser navigation that recovers.
        let outcome = match engine.recover_with_link(id, token, &ctx.req).await {
            Ok(Submitted::Done(r)) => Outcome::Done(recovered(&state, &ctx, FlowType::Browser, r)),
            Ok(Submitted::ShowForm(flow) | Submitted::Invalid(flow)) => {
                Outcome::Form { body: wire::flow(&flow, None), flow, status: StatusCode::OK }
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

async fn recovery_submit(State(state): State<AppState>, ctx: Ctx, Query(q): Q, ParsedBody(body): ParsedBody) -> Answer {
    let engine = &state.engine;
    let id = parse_uuid(q.get("flow"), "flow")?;
    let flow_type = engine.load_flow(id, FlowKind::Recovery).await?.flow_type;
    let outcome = match engine.submit_recovery(id, &body, &ctx.req).await {
        Ok(Submitted::Done(r)) => Outcome::Done(recovered(&state, &ctx, flow_type, r)),
        Ok(Submitted::ShowForm(flow)) => Outcome::Form { body: wire::flow(&flow, None), flow, status: StatusCode::OK },
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
    let mut body = wire::flow(&r.flow, None);
    body["continue_with"] = Value::Array(cw);
    let mut cookies = vec![state.session_cookie_for(&r.issued.token, &r.issued.session)];
    // The settings flow is bound to this browser's CSRF cookie (a new one if it had none).
    if ctx.req.csrf_cookie.as_deref() != Some(r.settings_flow.csrf_token.as_str()) && flow_type == FlowType::Browser {
        cookies.push(state.csrf_cookie_header(&r.settings_flow.csrf_token));
    }
    let location_change = !engine.cfg.feature_flags.use_continue_with_transitions;
    Done { body: Some(body), redirect_to: r.redirect_to, location_change, cookies }
}

// ---- verification ----------------------------------------------------------------------

async fn verification_create(state: AppState, ctx: Ctx, flow_type: FlowType) -> Response {
    let res = state.engine.create_verification(&ctx.req, flow_type).await;
    respond_created(&state, &ctx, flow_type, FlowKind::Verification, res, None).await
}

async fn verification_api(State(state): State<AppState>, ctx: Ctx) -> Response {
    verification_create(state, ctx, FlowType::Api).await
}

async fn verification_browser(State(state): State<AppState>, ctx: Ctx) -> Response {
    verification_create(state, ctx, FlowType::Browser).await
}

async fn verification_get(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Answer {
    get_plain_flow(&state, &ctx, &q, FlowKind::Verification).await
}

/// `GET /self-service/verification?flow=&code=`: the mailed link fills the code in and sends
/// the browser to the verification UI, where the user confirms.
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
async fn verification_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Q,
    ParsedBody(body): ParsedBody,
) -> Answer {
    let engine = &state.engine;
    let id = parse_uuid(q.get("flow"), "flow")?;
    let flow_type = engine.load_flow(id, FlowKind::Verification).await?.flow_type;
    let outcome = match engine.submit_verification(id, &body, &ctx.req).await {
        Ok(Submitted::Done(Verified { flow, .. }) | Submitted::ShowForm(flow)) => {
            Outcome::Form { body: wire::flow(&flow, None), flow, status: StatusCode::OK }
        }
        Ok(Submitted::Invalid(flow)) => invalid(flow),
        Err(e) => Outcome::Error(e),
    };
    Ok(FlowResponder::new(&state, &ctx, flow_type, Some(FlowKind::Verification)).respond(outcome).await)
}

/// `GET /.well-known/ory/webauthn.js`: the WebAuthn/passkey helper script of the `webauthn_script`
/// node (its `integrity` attribute is the SHA-512 of exactly these bytes).
async fn webauthn_js() -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"))],
        idflow_core::selfservice::methods::webauthn::WEBAUTHN_JS,
    )
        .into_response()
}

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
    Ok(json_response(StatusCode::OK, json!({ "logout_url": url, "logout_token": token })))
}

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

async fn logout_api(State(state): State<AppState>, ctx: Ctx, ParsedBody(body): ParsedBody) -> Answer {
    let Some(token) = body.get("session_token").and_then(Value::as_str).filter(|t| !t.is_empty()) else {
        return Err(Error::bad_request("The request body must contain a session_token.").into());
    };
    state.engine.logout_by_token(token, &ctx.req).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_error(State(state): State<AppState>, _: Ctx, Query(q): Q) -> Answer {
    let id = parse_uuid(q.get("id"), "id")?;
    // A read never writes (it once inserted an empty row per unknown id).
    match state.engine.store.kv_get(&format!("error:{id}")).await? {
        Some(v) if !v.is_empty() => Ok(json_response(StatusCode::OK, serde_json::from_str(&v).unwrap_or(Value::Null))),
        _ => Err(Error::not_found("The error could not be found.").into()),
    }
}

// ---- sessions --------------------------------------------------------------------------

async fn whoami(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let a = state.engine.whoami(ctx.req.auth)?;
    let body = wire::session(&a.session, Some(public_identity(&state, &a.identity)), state.engine.clock.now());
    let mut resp = json_response(StatusCode::OK, body);
    if let Ok(v) = HeaderValue::from_str(&a.identity.id.to_string()) {
        resp.headers_mut().insert("x-kratos-authenticated-identity-id", v);
    }
    Ok(resp)
}

async fn list_my_sessions(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let a = state.engine.whoami(ctx.req.auth)?;
    let list = state.engine.my_other_sessions(&a).await?;
    let now = state.engine.clock.now();
    let v: Vec<Value> = list.iter().map(|s| wire::session(s, None, now)).collect();
    Ok(json_response(StatusCode::OK, Value::Array(v)))
}

async fn revoke_my_sessions(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let a = state.engine.whoami(ctx.req.auth.clone())?;
    let n = state.engine.revoke_my_other_sessions(&a, &ctx.req).await?;
    Ok(json_response(StatusCode::OK, json!({ "count": n })))
}

async fn revoke_my_session(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Answer {
    let a = state.engine.whoami(ctx.req.auth.clone())?;
    let id = uuid::Uuid::parse_str(&id).map_err(|_| Error::bad_request("The session id is not a valid UUID."))?;
    state.engine.revoke_my_session(&a, id, &ctx.req).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /self-service/settings/activity` (an idflow extension): the caller's activity log,
/// newest first; `page_size` (1–1000, default 250) and `page_token`, with a `Link` header to
/// the next page as on the admin list routes.
async fn my_activity(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let a = state.engine.whoami(ctx.req.auth.clone())?;
    let (after, size) = super::activity_page(&ctx.uri)?;
    let list = state.engine.list_activity(a.identity.id, after, size).await?;
    let next = super::activity_next(&list, size)
        .map(|t| format!("{}/self-service/settings/activity?page_size={size}&page_token={t}", state.engine.base()));
    Ok(super::activity_response(&list, next))
}

// ---- schemas ---------------------------------------------------------------------------

async fn list_schemas(State(state): State<AppState>) -> Response {
    let mut v: Vec<Value> = state.engine.schemas.values().map(|s| json!({"id": s.id, "schema": s.raw})).collect();
    v.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    json_response(StatusCode::OK, Value::Array(v))
}

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
