//! The Kratos-compatible public routes: self-service registration, login, settings, logout,
//! sessions, schemas and errors, with Kratos's status codes, redirects and JSON shapes.

use super::{AppState, Ctx, ParsedBody, error_redirect, json_response, parse_uuid, render_error, see_other};
use crate::wire::{self, IdentityView};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get};
use idflow_core::error::{Error, ErrorKind};
use idflow_core::model::{Aal, Flow, FlowKind, FlowType, Identity};
use idflow_core::selfservice::sessions::Issued;
use idflow_core::selfservice::{Submitted, with_query};
use serde_json::{Value, json};
use std::collections::HashMap;

type Q = Query<HashMap<String, String>>;

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
        .route("/self-service/settings", get(settings_submit).post(settings_submit))
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

fn is_browser_nav(ctx: &Ctx, flow_type: FlowType) -> bool {
    flow_type == FlowType::Browser && !ctx.req.json
}

/// Render an error for a flow endpoint: JSON for API/AJAX, redirects for browsers.
pub(crate) async fn flow_error(state: &AppState, ctx: &Ctx, flow_type: FlowType, kind: FlowKind, e: Error) -> Response {
    if !is_browser_nav(ctx, flow_type) {
        return render_error(state, &e, &ctx.request_id);
    }
    let engine = &state.engine;
    match e.kind {
        ErrorKind::SessionInactive | ErrorKind::Unauthorized => {
            let rt = url::Url::parse(&ctx.req.request_url)
                .ok()
                .and_then(|u| u.query_pairs().find(|(k, _)| k == "return_to").map(|(_, v)| v.into_owned()));
            let mut login = engine.url("/self-service/login/browser");
            if let Some(rt) = rt {
                login = with_query(&login, &[("return_to", &rt)]);
            }
            see_other(&login)
        }
        ErrorKind::Aal2Required | ErrorKind::RefreshRequired | ErrorKind::BrowserLocationChange => {
            see_other(e.redirect_browser_to.as_deref().unwrap_or(&engine.url("/self-service/login/browser")))
        }
        ErrorKind::FlowExpired => match e.use_flow_id {
            Some(id) => see_other(&engine.ui_url_for_flow(kind, id)),
            None => error_redirect(state, &e, &ctx.request_id).await,
        },
        ErrorKind::SessionAlreadyAvailable => see_other(&engine.default_return_url()),
        _ => error_redirect(state, &e, &ctx.request_id).await,
    }
}

/// The response to a created flow.
fn flow_created(state: &AppState, ctx: &Ctx, flow: &Flow, body: Value) -> Response {
    if flow.flow_type == FlowType::Api {
        return json_response(StatusCode::OK, body);
    }
    let mut resp = if ctx.accept_json {
        json_response(StatusCode::OK, body)
    } else {
        see_other(&state.engine.ui_url_for_flow(flow.kind, flow.id))
    };
    set_csrf_cookie(state, ctx, flow, &mut resp);
    resp
}

pub(crate) fn set_csrf_cookie(state: &AppState, ctx: &Ctx, flow: &Flow, resp: &mut Response) {
    if flow.flow_type == FlowType::Browser && ctx.req.csrf_cookie.as_deref() != Some(flow.csrf_token.as_str()) {
        resp.headers_mut().append(header::SET_COOKIE, state.csrf_cookie_header(&flow.csrf_token));
    }
}

fn set_session_cookie(state: &AppState, resp: &mut Response, token: &str, session: &idflow_core::model::Session) {
    let remaining = (session.expires_at - state.engine.clock.now()).whole_seconds();
    resp.headers_mut().append(header::SET_COOKIE, state.session_cookie(token, remaining));
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

/// 400 flow JSON, or a redirect back to the UI for browsers.
fn invalid_flow(state: &AppState, ctx: &Ctx, flow: &Flow, body: Value) -> Response {
    if is_browser_nav(ctx, flow.flow_type) {
        see_other(&state.engine.ui_url_for_flow(flow.kind, flow.id))
    } else {
        json_response(StatusCode::BAD_REQUEST, body)
    }
}

// ---- registration ----------------------------------------------------------------------

async fn registration_create(state: AppState, ctx: Ctx, flow_type: FlowType) -> Response {
    match state.engine.create_registration(&ctx.req, flow_type).await {
        Ok(flow) => {
            let body = wire::flow(&flow, None);
            flow_created(&state, &ctx, &flow, body)
        }
        Err(e) => flow_error(&state, &ctx, flow_type, FlowKind::Registration, e).await,
    }
}

async fn registration_api(State(state): State<AppState>, ctx: Ctx) -> Response {
    registration_create(state, ctx, FlowType::Api).await
}

async fn registration_browser(State(state): State<AppState>, ctx: Ctx) -> Response {
    registration_create(state, ctx, FlowType::Browser).await
}

/// `GET /self-service/{login,registration}/flows?id=`: browser flows need the CSRF cookie.
async fn get_plain_flow(state: &AppState, ctx: &Ctx, q: &HashMap<String, String>, kind: FlowKind) -> Response {
    let id = match parse_uuid(q.get("id"), "id") {
        Ok(id) => id,
        Err(e) => return render_error(state, &e, &ctx.request_id),
    };
    let flow = match state.engine.load_flow(id, kind).await {
        Ok(f) => f,
        Err(e) => return render_error(state, &e, &ctx.request_id),
    };
    if flow.flow_type == FlowType::Browser
        && !ctx.req.csrf_cookie.as_deref().is_some_and(|c| idflow_core::crypto::csrf_matches(c, &flow.csrf_token))
    {
        let e = Error::new(ErrorKind::Csrf, "Please retry the flow and optionally clear your cookies. The request was rejected to protect you from Cross-Site-Request-Forgery (CSRF).")
            .with_detail("reject_reason", json!("The HTTP Cookie Header was set but did not include the anti-CSRF cookie."));
        return render_error(state, &e, &ctx.request_id);
    }
    if flow.expires_at < state.engine.clock.now() {
        let path = match kind {
            FlowKind::Login => "login",
            FlowKind::Registration => "registration",
            FlowKind::Settings => "settings",
        };
        let e = Error::new(ErrorKind::Gone, format!("The {path} flow has expired. Please initialize a new one."))
            .with_detail(
                "redirect_to",
                json!(state.engine.url(&format!("/self-service/{path}/{}", flow.flow_type.as_str()))),
            );
        return render_error(state, &e, &ctx.request_id);
    }
    json_response(StatusCode::OK, wire::flow(&flow, None))
}

async fn registration_get(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Response {
    get_plain_flow(&state, &ctx, &q, FlowKind::Registration).await
}

async fn registration_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Q,
    ParsedBody(body): ParsedBody,
) -> Response {
    let engine = &state.engine;
    let id = match parse_uuid(q.get("flow"), "flow") {
        Ok(id) => id,
        Err(e) => return render_error(&state, &e, &ctx.request_id),
    };
    let flow_type = match engine.load_flow(id, FlowKind::Registration).await {
        Ok(f) => f.flow_type,
        Err(e) => return render_error(&state, &e, &ctx.request_id),
    };
    if ctx.req.auth.is_some() && is_browser_nav(&ctx, flow_type) {
        return axum::response::Redirect::to(&engine.default_return_url()).into_response();
    }
    match engine.submit_registration(id, &body, &ctx.req).await {
        Ok(Submitted::Done(r)) => {
            let identity = public_identity(&state, &r.identity);
            let now = engine.clock.now();
            let after = registration_after_url(&state, &r.flow);
            if flow_type == FlowType::Api {
                let mut out = json!({ "identity": identity, "continue_with": Value::Null });
                if let Some(s) = &r.session {
                    out["session_token"] = json!(s.token);
                    out["session"] = wire::session(&s.session, Some(identity.clone()), now);
                    out["continue_with"] = json!([{"action": "set_ory_session_token", "ory_session_token": s.token}]);
                }
                return json_response(StatusCode::OK, out);
            }
            let mut resp = if ctx.accept_json {
                let mut out = json!({ "identity": identity, "continue_with": [{"action": "redirect_browser_to", "redirect_browser_to": after}] });
                if let Some(s) = &r.session {
                    out["session"] = wire::session(&s.session, Some(identity.clone()), now);
                }
                json_response(StatusCode::OK, out)
            } else {
                see_other(&after)
            };
            if let Some(s) = &r.session {
                set_session_cookie(&state, &mut resp, &s.token, &s.session);
                // A new session rotates the CSRF secret, as after login.
                let secret = idflow_core::crypto::new_csrf_secret();
                resp.headers_mut().append(header::SET_COOKIE, state.csrf_cookie_header(&secret));
            }
            resp
        }
        Ok(Submitted::Invalid(flow)) | Ok(Submitted::ShowForm(flow)) => {
            let body = wire::flow(&flow, None);
            invalid_flow(&state, &ctx, &flow, body)
        }
        Err(e) => flow_error(&state, &ctx, flow_type, FlowKind::Registration, e).await,
    }
}

fn registration_after_url(state: &AppState, flow: &Flow) -> String {
    let f = &state.engine.cfg.selfservice.flows.registration.after;
    flow.return_to
        .clone()
        .or_else(|| f.password.default_browser_return_url.clone())
        .or_else(|| f.default_browser_return_url.clone())
        .unwrap_or_else(|| state.engine.default_return_url())
}

// ---- login -----------------------------------------------------------------------------

fn parse_bool(v: Option<&String>) -> bool {
    matches!(v.map(String::as_str), Some("1" | "t" | "T" | "TRUE" | "true" | "True"))
}

async fn login_create(state: AppState, ctx: Ctx, q: HashMap<String, String>, flow_type: FlowType) -> Response {
    let aal = match q.get("aal").map(String::as_str) {
        None | Some("") => Aal::Aal1,
        Some(s) => match Aal::parse(s) {
            Some(a @ (Aal::Aal1 | Aal::Aal2)) => a,
            _ => {
                let e = Error::bad_request(
                    "Unable to parse AuthenticationMethod Assurance Level (AAL): expected one of [aal1, aal2]",
                );
                return render_error(&state, &e, &ctx.request_id);
            }
        },
    };
    match state.engine.create_login(&ctx.req, flow_type, parse_bool(q.get("refresh")), aal).await {
        Ok(flow) => {
            let body = wire::flow(&flow, None);
            flow_created(&state, &ctx, &flow, body)
        }
        Err(e) => flow_error(&state, &ctx, flow_type, FlowKind::Login, e).await,
    }
}

async fn login_api(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Response {
    login_create(state, ctx, q, FlowType::Api).await
}

async fn login_browser(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Response {
    login_create(state, ctx, q, FlowType::Browser).await
}

async fn login_get(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Response {
    get_plain_flow(&state, &ctx, &q, FlowKind::Login).await
}

fn login_after_url(state: &AppState, flow: &Flow) -> String {
    let f = &state.engine.cfg.selfservice.flows.login.after;
    flow.return_to
        .clone()
        .or_else(|| f.password.default_browser_return_url.clone())
        .or_else(|| f.default_browser_return_url.clone())
        .unwrap_or_else(|| state.engine.default_return_url())
}

async fn login_submit(State(state): State<AppState>, ctx: Ctx, Query(q): Q, ParsedBody(body): ParsedBody) -> Response {
    let engine = &state.engine;
    let id = match parse_uuid(q.get("flow"), "flow") {
        Ok(id) => id,
        Err(e) => return render_error(&state, &e, &ctx.request_id),
    };
    let flow_type = match engine.load_flow(id, FlowKind::Login).await {
        Ok(f) => f.flow_type,
        Err(e) => return render_error(&state, &e, &ctx.request_id),
    };
    match engine.submit_login(id, &body, &ctx.req).await {
        Ok(Submitted::Done(r)) => login_done(&state, &ctx, flow_type, r),
        Ok(Submitted::Invalid(flow)) | Ok(Submitted::ShowForm(flow)) => {
            let body = wire::flow(&flow, None);
            invalid_flow(&state, &ctx, &flow, body)
        }
        Err(e) => flow_error(&state, &ctx, flow_type, FlowKind::Login, e).await,
    }
}

fn login_done(
    state: &AppState,
    ctx: &Ctx,
    flow_type: FlowType,
    r: idflow_core::selfservice::login::LoggedIn,
) -> Response {
    let engine = &state.engine;
    let now = engine.clock.now();
    let identity = if r.aal_satisfied { public_identity(state, &r.identity) } else { Value::Null };
    let Issued { session, token, .. } = &r.issued;
    // A rotated or new token is always returned; an unchanged one is what the client has.
    let token = if token.is_empty() { ctx.req.token.clone().unwrap_or_default() } else { token.clone() };
    if flow_type == FlowType::Api {
        let out = json!({
            "session_token": token,
            "session": wire::session(session, Some(identity), now),
            "continue_with": Value::Null,
        });
        return json_response(StatusCode::OK, out);
    }
    let after = login_after_url(state, &r.flow);
    let mut resp = if !r.aal_satisfied {
        let url = engine.aal2_login_url(r.flow.return_to.as_deref());
        if ctx.accept_json {
            let e = Error::new(
                ErrorKind::BrowserLocationChange,
                format!("In order to complete this flow please redirect the browser to: {url}"),
            )
            .with_redirect(url);
            render_error(state, &e, &ctx.request_id)
        } else {
            see_other(&url)
        }
    } else if ctx.accept_json {
        json_response(
            StatusCode::OK,
            json!({
                "session": wire::session(session, Some(identity), now),
                "continue_with": [{"action": "redirect_browser_to", "redirect_browser_to": after}],
            }),
        )
    } else {
        see_other(&after)
    };
    set_session_cookie(state, &mut resp, &token, session);
    // A new session rotates the CSRF secret.
    let secret = idflow_core::crypto::new_csrf_secret();
    resp.headers_mut().append(header::SET_COOKIE, state.csrf_cookie_header(&secret));
    resp
}

// ---- settings --------------------------------------------------------------------------

async fn settings_create(state: AppState, ctx: Ctx, flow_type: FlowType) -> Response {
    match state.engine.create_settings(&ctx.req, flow_type).await {
        Ok(flow) => {
            let identity = ctx.req.auth.as_ref().map(|a| public_identity(&state, &a.identity));
            let body = wire::flow(&flow, identity);
            flow_created(&state, &ctx, &flow, body)
        }
        Err(e) => flow_error(&state, &ctx, flow_type, FlowKind::Settings, e).await,
    }
}

async fn settings_api(State(state): State<AppState>, ctx: Ctx) -> Response {
    settings_create(state, ctx, FlowType::Api).await
}

async fn settings_browser(State(state): State<AppState>, ctx: Ctx) -> Response {
    settings_create(state, ctx, FlowType::Browser).await
}

/// Without a session, non-JSON fetch/submit requests get a 302 to the login UI.
fn no_session_redirect(state: &AppState, ctx: &Ctx) -> Option<Response> {
    if ctx.req.auth.is_none() && !ctx.req.json {
        let mut r = axum::response::Redirect::to(&state.engine.ui_url("login")).into_response();
        *r.status_mut() = StatusCode::FOUND;
        return Some(r);
    }
    None
}

async fn settings_get(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Response {
    if let Some(r) = no_session_redirect(&state, &ctx) {
        return r;
    }
    // A missing or malformed id is a flow that does not exist: 404 (settings-flow §4.3 step 1).
    let id = parse_uuid(q.get("id"), "id").unwrap_or(uuid::Uuid::nil());
    match state.engine.get_settings(id, &ctx.req).await {
        Ok(flow) => {
            let mut resp = json_response(StatusCode::OK, flow_json(&state, &flow).await);
            set_csrf_cookie(&state, &ctx, &flow, &mut resp);
            resp
        }
        Err(e) => render_error(&state, &e, &ctx.request_id),
    }
}

async fn settings_submit(
    State(state): State<AppState>,
    ctx: Ctx,
    method: axum::http::Method,
    Query(q): Q,
    ParsedBody(body): ParsedBody,
) -> Response {
    if let Some(r) = no_session_redirect(&state, &ctx) {
        return r;
    }
    let engine = &state.engine;
    let id = match parse_uuid(q.get("flow"), "flow") {
        Ok(id) => id,
        Err(e) => return render_error(&state, &e, &ctx.request_id),
    };
    let flow_type = match engine.load_flow(id, FlowKind::Settings).await {
        Ok(f) => f.flow_type,
        Err(e) => return flow_error(&state, &ctx, FlowType::Api, FlowKind::Settings, e).await,
    };
    // GET: the browser comes back from a refresh login; show the kept change in the form.
    if method == axum::http::Method::GET {
        return match engine.get_settings(id, &ctx.req).await {
            Ok(flow) if is_browser_nav(&ctx, flow_type) => {
                see_other(&engine.ui_url_for_flow(FlowKind::Settings, flow.id))
            }
            Ok(flow) => json_response(StatusCode::OK, flow_json(&state, &flow).await),
            Err(e) => flow_error(&state, &ctx, flow_type, FlowKind::Settings, e).await,
        };
    }
    match engine.submit_settings(id, &body, &ctx.req).await {
        Ok(Submitted::Done(r)) => {
            let identity = public_identity(&state, &r.identity);
            let mut out = wire::flow(&r.flow, Some(identity));
            let mut cw = r.continue_with.clone();
            if flow_type == FlowType::Browser {
                cw.push(json!({"action": "redirect_browser_to", "redirect_browser_to": r.redirect_to}));
            }
            if !cw.is_empty() {
                out["continue_with"] = Value::Array(cw);
            }
            let mut resp = if flow_type == FlowType::Api || ctx.accept_json {
                json_response(StatusCode::OK, out)
            } else {
                see_other(&r.redirect_to)
            };
            if flow_type == FlowType::Browser
                && ctx.via_cookie
                && let (Some(tok), Some(a)) = (&ctx.req.token, &ctx.req.auth)
            {
                let s = r.session.as_ref().map(|i| &i.session).unwrap_or(&a.session);
                set_session_cookie(&state, &mut resp, tok, s);
            }
            resp
        }
        Ok(Submitted::ShowForm(flow)) => {
            if is_browser_nav(&ctx, flow_type) {
                see_other(&engine.ui_url_for_flow(FlowKind::Settings, flow.id))
            } else {
                json_response(StatusCode::OK, flow_json(&state, &flow).await)
            }
        }
        Ok(Submitted::Invalid(flow)) => {
            let body = flow_json(&state, &flow).await;
            invalid_flow(&state, &ctx, &flow, body)
        }
        Err(e) => flow_error(&state, &ctx, flow_type, FlowKind::Settings, e).await,
    }
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

async fn logout_browser(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Response {
    let Some(a) = ctx.req.auth.as_ref() else {
        let e = Error::new(ErrorKind::SessionInactive, "No active session was found in this request.");
        return if ctx.req.json {
            render_error(&state, &e, &ctx.request_id)
        } else {
            error_redirect(&state, &e, &ctx.request_id).await
        };
    };
    let return_to = match state.engine.opt_return_to(q.get("return_to").map(String::as_str)) {
        Ok(r) => r,
        Err(e) => return render_error(&state, &e, &ctx.request_id),
    };
    match state.engine.new_logout_token(a).await {
        Ok(token) => {
            let mut params = vec![("token", token.as_str())];
            if let Some(rt) = &return_to {
                params.push(("return_to", rt.as_str()));
            }
            let url = with_query(&state.engine.url("/self-service/logout"), &params);
            json_response(StatusCode::OK, json!({ "logout_url": url, "logout_token": token }))
        }
        Err(e) => render_error(&state, &e, &ctx.request_id),
    }
}

async fn logout(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Response {
    let Some(token) = q.get("token").filter(|t| !t.is_empty()) else {
        return render_error(&state, &Error::bad_request("Please include a token in the URL query."), &ctx.request_id);
    };
    let Some(a) = ctx.req.auth.as_ref() else {
        let e = Error::new(ErrorKind::Unauthorized, "No active session was found in this request.");
        return render_error(&state, &e, &ctx.request_id);
    };
    if let Err(e) = state.engine.logout_with_logout_token(a, token).await {
        return render_error(&state, &e, &ctx.request_id);
    }
    let mut resp = if ctx.accept_json {
        StatusCode::NO_CONTENT.into_response()
    } else {
        let target = match q.get("return_to").map(|r| state.engine.check_return_to(r)) {
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
        see_other(&target)
    };
    resp.headers_mut().append(header::SET_COOKIE, state.clear_session_cookie());
    resp.headers_mut().append(header::SET_COOKIE, state.csrf_cookie_header(&idflow_core::crypto::new_csrf_secret()));
    resp
}

async fn logout_api(State(state): State<AppState>, ctx: Ctx, ParsedBody(body): ParsedBody) -> Response {
    let Some(token) = body.get("session_token").and_then(Value::as_str).filter(|t| !t.is_empty()) else {
        return render_error(
            &state,
            &Error::bad_request("The request body must contain a session_token."),
            &ctx.request_id,
        );
    };
    match state.engine.logout_by_token(token).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => render_error(&state, &e, &ctx.request_id),
    }
}

async fn get_error(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Response {
    let id = match parse_uuid(q.get("id"), "id") {
        Ok(id) => id,
        Err(e) => return render_error(&state, &e, &ctx.request_id),
    };
    // A read never writes (it once inserted an empty row per unknown id).
    match state.engine.store.kv_get(&format!("error:{id}")).await {
        Ok(Some(v)) if !v.is_empty() => json_response(StatusCode::OK, serde_json::from_str(&v).unwrap_or(Value::Null)),
        Ok(_) => render_error(&state, &Error::not_found("The error could not be found."), &ctx.request_id),
        Err(e) => render_error(&state, &e.into(), &ctx.request_id),
    }
}

// ---- sessions --------------------------------------------------------------------------

async fn whoami(State(state): State<AppState>, ctx: Ctx) -> Response {
    match state.engine.whoami(ctx.req.auth.clone()) {
        Ok(a) => {
            let body = wire::session(&a.session, Some(public_identity(&state, &a.identity)), state.engine.clock.now());
            let mut resp = json_response(StatusCode::OK, body);
            if let Ok(v) = HeaderValue::from_str(&a.identity.id.to_string()) {
                resp.headers_mut().insert("x-kratos-authenticated-identity-id", v);
            }
            resp
        }
        Err(e) => render_error(&state, &e, &ctx.request_id),
    }
}

fn require_session(state: &AppState, ctx: &Ctx) -> Result<idflow_core::selfservice::Authed, Response> {
    match state.engine.whoami(ctx.req.auth.clone()) {
        Ok(a) => Ok(a),
        Err(e) => Err(render_error(state, &e, &ctx.request_id)),
    }
}

async fn list_my_sessions(State(state): State<AppState>, ctx: Ctx) -> Response {
    let a = match require_session(&state, &ctx) {
        Ok(a) => a,
        Err(r) => return r,
    };
    match state.engine.my_other_sessions(&a).await {
        Ok(list) => {
            let now = state.engine.clock.now();
            let v: Vec<Value> = list.iter().map(|s| wire::session(s, None, now)).collect();
            json_response(StatusCode::OK, Value::Array(v))
        }
        Err(e) => render_error(&state, &e, &ctx.request_id),
    }
}

async fn revoke_my_sessions(State(state): State<AppState>, ctx: Ctx) -> Response {
    let a = match require_session(&state, &ctx) {
        Ok(a) => a,
        Err(r) => return r,
    };
    match state.engine.revoke_my_other_sessions(&a).await {
        Ok(n) => json_response(StatusCode::OK, json!({ "count": n })),
        Err(e) => render_error(&state, &e, &ctx.request_id),
    }
}

async fn revoke_my_session(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Response {
    let a = match require_session(&state, &ctx) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return render_error(&state, &Error::bad_request("The session id is not a valid UUID."), &ctx.request_id);
    };
    match state.engine.revoke_my_session(&a, id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => render_error(&state, &e, &ctx.request_id),
    }
}

// ---- schemas ---------------------------------------------------------------------------

async fn list_schemas(State(state): State<AppState>) -> Response {
    let mut v: Vec<Value> = state.engine.schemas.values().map(|s| json!({"id": s.id, "schema": s.raw})).collect();
    v.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    json_response(StatusCode::OK, Value::Array(v))
}

async fn get_schema(State(state): State<AppState>, ctx: Ctx, Path(id): Path<String>) -> Response {
    use base64::Engine as _;
    let decoded =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&id).ok().and_then(|b| String::from_utf8(b).ok());
    let found = state.engine.schemas.get(&id).or_else(|| decoded.as_ref().and_then(|d| state.engine.schemas.get(d)));
    match found {
        Some(s) => json_response(StatusCode::OK, s.raw.clone()),
        None => render_error(
            &state,
            &Error::not_found(format!("Identity schema `{id}` could not be found.")),
            &ctx.request_id,
        ),
    }
}
