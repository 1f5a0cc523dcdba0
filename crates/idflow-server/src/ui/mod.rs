//! The built-in self-service UI: server-rendered pages on the public port, so a person can
//! register, sign in and manage an account without anyone writing a frontend.
//!
//! Pages (the defaults the flows redirect to, see `Engine::ui_url`):
//! - `GET /ui/login?flow=`, `GET /ui/registration?flow=`: a login/registration flow;
//! - `GET /ui/settings?flow=`: a settings flow plus the account's active sessions;
//! - `GET /ui/recovery?flow=`, `GET /ui/verification?flow=`: a recovery / verification flow
//!   (the login page links to recovery when it is enabled);
//! - `GET /ui/welcome`: who is signed in, links to settings and logout;
//! - `GET /ui/error?id=`: a stored error (the same storage as `GET /self-service/errors`).
//!
//! Without a `flow` parameter a page redirects to `/self-service/<kind>/browser`, which creates
//! a flow and comes back. A page reads its flow server-side through the engine (the functions
//! the JSON endpoints use) with the request's cookies, and renders the flow's nodes with one
//! generic renderer ([`nodes`]): forms post `application/x-www-form-urlencoded` to the flow's
//! `ui.action`, and the server answers browser posts with a 303 back to the page.
//!
//! One route is the UI's own: `POST /ui/sessions/revoke` (sign out another session), protected
//! by the CSRF cookie and a masked token in the form.
//!
//! Pages carry no inline script or style (a strict CSP is set on them); CSS and the small
//! WebAuthn/passkey script are embedded in the binary and served under `/ui/static/`.

pub mod nodes;

use crate::http::error::KratosError;
use crate::http::{AppState, Ctx, ParsedBody, see_other};
use crate::openapi::Routes;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use idflow_core::crypto;
use idflow_core::error::{Error, ErrorKind};
use idflow_core::model::{Aal, CredentialType, Flow, FlowKind, FlowType, Session};
use idflow_core::selfservice::{Authed, body_str, with_query};
use idflow_core::ui::{Group, Node};
use nodes::{Form, Ids, Msg};
use serde_json::Value;
use std::collections::HashMap;
use time::OffsetDateTime;
use utoipa_axum::routes;
use uuid::Uuid;

type Q = Query<HashMap<String, String>>;

const CSS: &str = include_str!("static/idflow.css");
const JS: &str = include_str!("static/idflow.js");

/// The UI's pages (HTML), each documented by its `#[utoipa::path]` (tag `ui`).
pub fn routes() -> Routes {
    Routes::new()
        .routes(routes!(home))
        .routes(routes!(home_slash))
        .routes(routes!(welcome_page))
        .routes(routes!(login_page))
        .routes(routes!(registration_page))
        .routes(routes!(settings_page))
        .routes(routes!(recovery_page))
        .routes(routes!(verification_page))
        .routes(routes!(error_page))
        .routes(routes!(revoke_session))
        .routes(routes!(send_verification))
        .routes(routes!(confirm_api_verification))
        .routes(routes!(static_file))
}

// ---- page chrome and responses ---------------------------------------------------------

/// What the layout needs.
struct Chrome {
    title: String,
    /// `{public}/ui/static`.
    assets: String,
    home: String,
    settings_url: String,
    signed_in: bool,
    /// Page kind, used as a CSS class.
    kind: &'static str,
}

impl Chrome {
    fn new(state: &AppState, title: impl Into<String>, kind: &'static str, signed_in: bool) -> Self {
        let e = &state.engine;
        Chrome {
            title: title.into(),
            assets: e.url("/ui/static"),
            home: e.url("/ui/welcome"),
            settings_url: e.url("/ui/settings"),
            signed_in,
            kind,
        }
    }
}

/// A link under a card: "before <a>text</a>".
struct Link {
    id: &'static str,
    before: String,
    href: String,
    text: String,
}

#[derive(Template)]
#[template(path = "ui/flow.html")]
struct FlowPage {
    page: Chrome,
    heading: String,
    subtitle: String,
    messages: Vec<Msg>,
    forms: Vec<Form>,
    links: Vec<Link>,
}

struct SessionRow {
    id: String,
    device: String,
    details: String,
    current: bool,
}

/// A verifiable address of the signed-in identity, as the settings page lists it.
struct AddressRow {
    value: String,
    verified: bool,
    /// "verified 2026-12-06 10:00 UTC" / "code sent" / "not verified".
    details: String,
}

/// One line of "Recent security activity".
struct ActivityRow {
    when: String,
    what: String,
    method: String,
    ip: String,
    device: String,
    failed: bool,
}

#[derive(Template)]
#[template(path = "ui/settings.html")]
struct SettingsPage {
    page: Chrome,
    who: String,
    messages: Vec<Msg>,
    forms: Vec<Form>,
    /// Empty when verification is off.
    addresses: Vec<AddressRow>,
    verify_action: String,
    sessions: Vec<SessionRow>,
    activity: Vec<ActivityRow>,
    others: usize,
    revoke_action: String,
    csrf_token: String,
    flow_id: String,
    /// The data export download (`GET /self-service/settings/export`).
    export_url: String,
}

struct WelcomeUser {
    greeting: String,
    facts: Vec<(String, String)>,
    logout_url: String,
}

#[derive(Template)]
#[template(path = "ui/welcome.html")]
struct WelcomePage {
    page: Chrome,
    user: Option<WelcomeUser>,
    login_url: String,
    registration_url: String,
}

#[derive(Template)]
#[template(path = "ui/error.html")]
struct ErrorPage {
    page: Chrome,
    heading: String,
    message: String,
    reason: String,
    facts: Vec<(String, String)>,
    links: Vec<Link>,
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> Option<String> {
    url::Url::parse(url).ok().map(|u| u.origin().ascii_serialization()).filter(|o| o != "null")
}

/// The UI pages' CSP: no inline script or style, no framing; forms may post to this server and
/// be redirected to the configured return URLs.
fn csp(state: &AppState) -> HeaderValue {
    let cfg = &state.engine.cfg.selfservice;
    let own = origin(state.engine.base()).unwrap_or_default();
    let mut targets: Vec<String> = vec!["'self'".into()];
    if !own.is_empty() {
        targets.push(own.clone());
    }
    for u in cfg.allowed_return_urls.iter().chain(cfg.default_browser_return_url.iter()) {
        if let Some(o) = origin(u)
            && !targets.contains(&o)
        {
            targets.push(o);
        }
    }
    let src = if own.is_empty() { "'self'".to_string() } else { format!("'self' {own}") };
    let value = format!(
        "default-src 'none'; script-src {src}; style-src {src}; img-src {src} data:; connect-src {src}; \
         form-action {}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        targets.join(" ")
    );
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ))
}

fn html(state: &AppState, status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => {
            let mut resp = (status, Html(body)).into_response();
            resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, csp(state));
            resp
        }
        Err(e) => KratosError(Error::internal(format!("rendering a UI page failed: {e}"))).into_response(),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn error_heading(code: u64) -> &'static str {
    match code {
        400 => "The request could not be processed",
        401 => "Please sign in",
        403 => "The request was blocked",
        404 => "Not found",
        410 => "This page has expired",
        429 => "Too many attempts",
        _ => "Something went wrong",
    }
}

/// The error page for an error object in the Kratos envelope (`{id, code, status, reason,
/// message}`), shown with `status`.
fn error_view(state: &AppState, signed_in: bool, status: StatusCode, err: &Value) -> Response {
    let s = |k: &str| err.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let code = err.get("code").and_then(Value::as_u64).unwrap_or(500);
    let message = capitalize(&s("message"));
    let reason = s("reason");
    let mut facts = vec![("Status".to_string(), format!("{code} {}", s("status")).trim().to_string())];
    if !s("id").is_empty() {
        facts.push(("Error".into(), s("id")));
    }
    if !s("request").is_empty() {
        facts.push(("Request".into(), s("request")));
    }
    let e = &state.engine;
    let mut links = vec![Link {
        id: "home-link",
        before: String::new(),
        href: e.url("/ui/welcome"),
        text: "Back to the start".into(),
    }];
    if !signed_in {
        links.push(Link { id: "login-link", before: String::new(), href: e.url("/ui/login"), text: "Sign in".into() });
    }
    let page = ErrorPage {
        page: Chrome::new(state, error_heading(code), "error", signed_in),
        heading: error_heading(code).into(),
        message: if message.is_empty() { "An error occurred.".into() } else { message },
        reason,
        facts,
        links,
    };
    html(state, status, &page)
}

/// Show an error right away (not stored).
fn error_inline(state: &AppState, ctx: &Ctx, e: &Error) -> Response {
    let body = crate::wire::error(e, &crate::http::error::current_request_id());
    let err = body.get("error").cloned().unwrap_or(Value::Null);
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error_view(state, ctx.req.auth.is_some(), status, &err)
}

// ---- static assets ---------------------------------------------------------------------

#[utoipa::path(
    get,
    path = "/ui/static/{file}",
    tag = "ui",
    operation_id = "uiStatic",
    params(("file" = String, Path, description = "`idflow.css` or `idflow.js`.")),
    responses((status = 200, description = "The file.", content_type = "text/css", body = String), (status = 404, description = "No such file.", body = crate::wire::ErrorEnvelope))
)]
async fn static_file(_: Ctx, Path(file): Path<String>) -> Result<Response, KratosError> {
    let (body, ct) = match file.as_str() {
        "idflow.css" => (CSS, "text/css; charset=utf-8"),
        "idflow.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return Err(Error::not_found(format!("No UI asset named {file:?}.")).into()),
    };
    Ok(([(header::CONTENT_TYPE, ct)], body).into_response())
}

#[utoipa::path(
    get,
    path = "/ui",
    tag = "ui",
    operation_id = "uiHome",
    responses((status = 303, description = "To the start page (`/ui/welcome`)."))
)]
async fn home(State(state): State<AppState>) -> Response {
    see_other(&state.engine.url("/ui/welcome"))
}

#[utoipa::path(
    get,
    path = "/ui/",
    tag = "ui",
    operation_id = "uiHomeSlash",
    responses((status = 303, description = "To the start page."))
)]
async fn home_slash(state: State<AppState>) -> Response {
    home(state).await
}

// ---- flow lookup shared by the login and registration pages ----------------------------

fn kind_path(kind: FlowKind) -> &'static str {
    match kind {
        FlowKind::Login => "login",
        FlowKind::Registration => "registration",
        FlowKind::Settings => "settings",
        FlowKind::Recovery => "recovery",
        FlowKind::Verification => "verification",
    }
}

/// `/self-service/<kind>/browser`, passing on the query parameters that shape a new flow.
fn init_url(state: &AppState, kind: FlowKind, q: &HashMap<String, String>) -> String {
    let keep: &[&str] = match kind {
        FlowKind::Login => &["return_to", "refresh", "aal"],
        _ => &["return_to"],
    };
    let params: Vec<(&str, &str)> =
        keep.iter().filter_map(|k| q.get(*k).filter(|v| !v.is_empty()).map(|v| (*k, v.as_str()))).collect();
    let url = state.engine.url(&format!("/self-service/{}/browser", kind_path(kind)));
    if params.is_empty() { url } else { with_query(&url, &params) }
}

/// A new flow like `flow` (same return_to, refresh, aal).
fn restart_url(state: &AppState, flow: &Flow) -> String {
    let mut q = HashMap::new();
    if let Some(rt) = &flow.return_to {
        q.insert("return_to".to_string(), rt.clone());
    }
    if flow.refresh {
        q.insert("refresh".into(), "true".into());
    }
    if flow.requested_aal == Aal::Aal2 {
        q.insert("aal".into(), "aal2".into());
    }
    init_url(state, flow.kind, &q)
}

/// The flow a login/registration page shows; `Err` is the response to send instead.
async fn page_flow(state: &AppState, ctx: &Ctx, q: &HashMap<String, String>, kind: FlowKind) -> Result<Flow, Response> {
    let Some(id) = q.get("flow").and_then(|s| Uuid::parse_str(s.trim()).ok()) else {
        return Err(see_other(&init_url(state, kind, q)));
    };
    let flow = match state.engine.load_flow(id, kind).await {
        Ok(f) => f,
        Err(e) if e.kind == ErrorKind::NotFound => return Err(see_other(&init_url(state, kind, q))),
        Err(e) => return Err(error_inline(state, ctx, &e)),
    };
    // An API verification flow is the one exception: its mailed link is opened in a browser
    // (a native app's registration), and the page confirms it through the UI (no cookie binds
    // it: knowing the code is what proves the address).
    let api_verification = flow.flow_type == FlowType::Api && kind == FlowKind::Verification;
    if flow.flow_type != FlowType::Browser && !api_verification {
        let e = Error::bad_request("This flow was started by an API client and can not be shown in a browser.");
        return Err(error_inline(state, ctx, &e));
    }
    if flow.expires_at < state.engine.clock.now() {
        return Err(see_other(&restart_url(state, &flow)));
    }
    if !api_verification && !ctx.req.csrf_cookie.as_deref().is_some_and(|c| crypto::csrf_matches(c, &flow.csrf_token)) {
        // Not a redirect: a browser that refuses cookies would loop.
        return Err(cookie_error(state, ctx, &restart_url(state, &flow)));
    }
    Ok(flow)
}

/// The page for a flow this browser cannot submit (no or another CSRF cookie).
fn cookie_error(state: &AppState, ctx: &Ctx, restart: &str) -> Response {
    let page = ErrorPage {
        page: Chrome::new(state, "Please start again", "error", ctx.req.auth.is_some()),
        heading: "Please start again".into(),
        message: "This form could not be verified.".into(),
        reason: "It belongs to another browser session, or this browser did not send its security cookie. Make sure cookies are enabled for this site, then start again.".into(),
        facts: vec![],
        links: vec![
            Link { id: "restart-link", before: String::new(), href: restart.to_string(), text: "Start again".into() },
            Link { id: "home-link", before: String::new(), href: state.engine.url("/ui/welcome"), text: "Back to the start".into() },
        ],
    };
    html(state, StatusCode::FORBIDDEN, &page)
}

/// A logout URL for the caller's session (the same token `/self-service/logout/browser` hands
/// out), or None.
async fn logout_url(state: &AppState, a: &Authed) -> Option<String> {
    let token = state.engine.new_logout_token(a).await.ok()?;
    Some(with_query(&state.engine.url("/self-service/logout"), &[("token", &token)]))
}

fn first_factor_describe(g: Group, _: &[&Node]) -> (String, String) {
    match g {
        Group::Totp => ("Authenticator app".into(), "Enter the 6-digit code from your authenticator app.".into()),
        Group::LookupSecret => {
            ("Recovery code".into(), "No access to your app? Use one of your backup recovery codes.".into())
        }
        Group::Webauthn => ("Security key".into(), String::new()),
        Group::Passkey => ("Passkey".into(), String::new()),
        Group::Oidc => ("Social sign-in".into(), String::new()),
        _ => (String::new(), String::new()),
    }
}

const FLOW_ORDER: &[Group] =
    &[Group::Password, Group::Passkey, Group::Webauthn, Group::Totp, Group::LookupSecret, Group::Oidc];

/// Forms of a login/registration flow (the password form has no heading of its own).
fn flow_forms(flow: &Flow) -> Vec<Form> {
    nodes::forms(&flow.ui, FLOW_ORDER, &mut Ids::default(), &first_factor_describe)
}

// ---- login -----------------------------------------------------------------------------

#[utoipa::path(
    get,
    path = "/ui/login",
    tag = "ui",
    operation_id = "uiLogin",
    params(("flow" = Option<uuid::Uuid>, Query, description = "The flow id (a new flow is started without it).")),
    responses((status = 200, description = "The sign-in page.", content_type = "text/html", body = String), (status = 303, description = "Elsewhere (a new flow, sign-in, …)."))
)]
async fn login_page(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Response {
    let flow = match page_flow(&state, &ctx, &q, FlowKind::Login).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let e = &state.engine;
    let auth = ctx.req.auth.as_ref();
    let who = auth.map(display_name).unwrap_or_default();
    let (heading, subtitle) = if flow.requested_aal == Aal::Aal2 {
        (
            "Two-factor authentication".to_string(),
            format!("Signed in as {who}. Confirm it is you with your second factor."),
        )
    } else if flow.refresh && auth.is_some() {
        ("Confirm it is you".to_string(), format!("Enter the password of {who} to continue."))
    } else {
        ("Sign in".to_string(), String::new())
    };
    let mut links = vec![];
    match auth {
        Some(a) => {
            if let Some(url) = logout_url(&state, a).await {
                links.push(Link {
                    id: "logout-link",
                    before: "Not you, or stuck?".into(),
                    href: url,
                    text: "Sign out".into(),
                });
            }
        }
        None => {
            if e.cfg.selfservice.flows.recovery.enabled {
                links.push(Link {
                    id: "recovery-link",
                    before: String::new(),
                    href: e.url("/ui/recovery"),
                    text: "Forgot your password?".into(),
                });
            }
            let mut href = e.url("/ui/registration");
            if let Some(rt) = &flow.return_to {
                href = with_query(&href, &[("return_to", rt)]);
            }
            links.push(Link {
                id: "registration-link",
                before: "No account yet?".into(),
                href,
                text: "Create an account".into(),
            });
        }
    }
    let page = FlowPage {
        page: Chrome::new(&state, heading.clone(), "login", auth.is_some() && flow.requested_aal != Aal::Aal2),
        heading,
        subtitle,
        messages: nodes::messages(&flow.ui),
        forms: flow_forms(&flow),
        links,
    };
    html(&state, StatusCode::OK, &page)
}

// ---- registration ----------------------------------------------------------------------

#[utoipa::path(
    get,
    path = "/ui/registration",
    tag = "ui",
    operation_id = "uiRegistration",
    params(("flow" = Option<uuid::Uuid>, Query, description = "The flow id (a new flow is started without it).")),
    responses((status = 200, description = "The registration page.", content_type = "text/html", body = String), (status = 303, description = "Elsewhere (a new flow, sign-in, …)."))
)]
async fn registration_page(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Response {
    if ctx.req.auth.is_some() {
        // Registration needs no session; the init endpoint sends signed-in browsers onwards.
        return see_other(&init_url(&state, FlowKind::Registration, &q));
    }
    let flow = match page_flow(&state, &ctx, &q, FlowKind::Registration).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut href = state.engine.url("/ui/login");
    if let Some(rt) = &flow.return_to {
        href = with_query(&href, &[("return_to", rt)]);
    }
    let page = FlowPage {
        page: Chrome::new(&state, "Create an account", "registration", false),
        heading: "Create an account".into(),
        subtitle: String::new(),
        messages: nodes::messages(&flow.ui),
        forms: flow_forms(&flow),
        links: vec![Link { id: "login-link", before: "Already have an account?".into(), href, text: "Sign in".into() }],
    };
    html(&state, StatusCode::OK, &page)
}

// ---- recovery and verification ---------------------------------------------------------

fn code_describe(_: Group, _: &[&Node]) -> (String, String) {
    (String::new(), String::new())
}

/// A recovery or verification page: the flow's messages and its one form.
async fn code_page(state: AppState, ctx: Ctx, q: HashMap<String, String>, kind: FlowKind) -> Response {
    let flow = match page_flow(&state, &ctx, &q, kind).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (heading, subtitle, page_kind) = if kind == FlowKind::Recovery {
        ("Recover your account", "Enter the email address of your account to receive a recovery code.", "recovery")
    } else {
        ("Verify your email address", "Enter your email address to receive a verification code.", "verification")
    };
    let subtitle = if flow.state == "choose_method" { subtitle.to_string() } else { String::new() };
    let mut forms = nodes::forms(&flow.ui, &[Group::Code], &mut Ids::default(), &code_describe);
    if flow.flow_type == FlowType::Api {
        // An API verification flow opened from its mail: the page submits it through the UI.
        let confirm = with_query(&state.engine.url("/ui/verification/confirm"), &[("flow", &flow.id.to_string())]);
        for f in &mut forms {
            f.action = confirm.clone();
        }
    }
    let page = FlowPage {
        page: Chrome::new(&state, heading, page_kind, ctx.req.auth.is_some()),
        heading: heading.into(),
        subtitle,
        messages: nodes::messages(&flow.ui),
        forms,
        links: vec![Link {
            id: "login-link",
            before: String::new(),
            href: state.engine.url("/ui/login"),
            text: "Back to sign in".into(),
        }],
    };
    html(&state, StatusCode::OK, &page)
}

#[utoipa::path(
    get,
    path = "/ui/recovery",
    tag = "ui",
    operation_id = "uiRecovery",
    params(("flow" = Option<uuid::Uuid>, Query, description = "The flow id (a new flow is started without it).")),
    responses((status = 200, description = "The account recovery page.", content_type = "text/html", body = String), (status = 303, description = "Elsewhere (a new flow, sign-in, …)."))
)]
async fn recovery_page(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Response {
    code_page(state, ctx, q, FlowKind::Recovery).await
}

#[utoipa::path(
    get,
    path = "/ui/verification",
    tag = "ui",
    operation_id = "uiVerification",
    params(("flow" = Option<uuid::Uuid>, Query, description = "The flow id (a new flow is started without it).")),
    responses((status = 200, description = "The address verification page.", content_type = "text/html", body = String), (status = 303, description = "Elsewhere (a new flow, sign-in, …)."))
)]
async fn verification_page(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Response {
    code_page(state, ctx, q, FlowKind::Verification).await
}

// ---- settings --------------------------------------------------------------------------

const SETTINGS_ORDER: &[Group] =
    &[Group::Profile, Group::Password, Group::Totp, Group::LookupSecret, Group::Webauthn, Group::Passkey, Group::Oidc];

fn settings_describe(g: Group, nodes: &[&Node]) -> (String, String) {
    let has = |id: &str| nodes.iter().any(|n| n.id() == id);
    let (h, d) = match g {
        Group::Profile if has("delete_account_cancel") => {
            ("Delete account", "Your account is scheduled for deletion. Cancel to keep it.")
        }
        Group::Profile if has("delete_account_confirm") => (
            "Delete account",
            "Deleting the account signs you out everywhere. It is deleted for good after a grace period; signing in before then lets you cancel.",
        ),
        Group::Profile => ("Profile", "The details stored with your account."),
        Group::Password => ("Password", "Choose a new password for signing in."),
        Group::Totp if has("totp_unlink") => {
            ("Authenticator app", "An authenticator app is linked to your account and asked for when you sign in.")
        }
        Group::Totp => (
            "Authenticator app",
            "Scan the QR code with an authenticator app (or type in the secret key), then enter the 6-digit code the app shows.",
        ),
        Group::LookupSecret if has("lookup_secret_codes") => (
            "Recovery codes",
            "Write these codes down or store them in a password manager, then confirm. Each code works once.",
        ),
        Group::LookupSecret => {
            ("Recovery codes", "Single-use codes to sign in when you can not use your authenticator app.")
        }
        Group::Webauthn => ("Security keys", "Hardware keys used as a second factor."),
        Group::Passkey => ("Passkeys", "Sign in without a password, with your device's screen lock or a security key."),
        Group::Oidc => ("Linked accounts", "Accounts at other providers you can sign in with."),
        _ => ("Other", ""),
    };
    (h.to_string(), d.to_string())
}

/// A person's name for an authentication method.
fn method_label(m: &str) -> &str {
    match m {
        "password" => "Password",
        "totp" => "Authenticator app",
        "lookup_secret" => "Recovery code",
        "webauthn" => "Security key",
        "passkey" => "Passkey",
        "oidc" => "Social sign-in",
        "code" => "One-time code",
        "code_recovery" => "Account recovery code",
        other => other,
    }
}

fn methods_text(s: &Session) -> String {
    s.authentication_methods.iter().map(|m| method_label(&m.method)).collect::<Vec<_>>().join(" + ")
}

fn fmt_time(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.to_offset(time::UtcOffset::UTC).format(&f).unwrap_or_default()
}

/// A short device name from a User-Agent ("Chrome on Linux").
fn device_name(ua: &str) -> String {
    if ua.is_empty() {
        return "Unknown device".into();
    }
    let browser = [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("HeadlessChrome/", "Chrome (headless)"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(k, _)| ua.contains(k))
    .map(|(_, v)| *v);
    let os = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(k, _)| ua.contains(k))
    .map(|(_, v)| *v);
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_string(),
        _ => ua.chars().take(60).collect(),
    }
}

fn session_row(s: &Session, current: bool) -> SessionRow {
    let dev = s.devices.first();
    let mut details = vec![];
    if let Some(ip) = dev.map(|d| d.ip_address.as_str()).filter(|i| !i.is_empty()) {
        details.push(
            ip.rsplit_once(':')
                .filter(|_| ip.contains('.'))
                .map(|(h, _)| h.to_string())
                .unwrap_or_else(|| ip.to_string()),
        );
    }
    details.push(format!("signed in {}", fmt_time(s.authenticated_at)));
    if !s.authentication_methods.is_empty() {
        details.push(format!("with {}", methods_text(s)));
    }
    details.push(format!("expires {}", fmt_time(s.expires_at)));
    SessionRow {
        id: s.id.to_string(),
        device: device_name(dev.map(|d| d.user_agent.as_str()).unwrap_or_default()),
        details: details.join(" · "),
        current,
    }
}

/// How many entries "Recent security activity" shows.
const RECENT_ACTIVITY: u32 = 10;

fn activity_row(e: &idflow_core::activity::ActivityEvent) -> ActivityRow {
    ActivityRow {
        when: fmt_time(e.created_at),
        what: e.kind.describe(e.method),
        method: e.method.map(|m| idflow_core::activity::method_name(m).to_string()).unwrap_or_default(),
        ip: e.ip_address.clone(),
        device: device_name(&e.user_agent),
        failed: e.outcome == idflow_core::activity::Outcome::Failure,
    }
}

/// The name shown for the signed-in identity: the first password identifier, else the id.
fn display_name(a: &Authed) -> String {
    a.identity
        .credential(CredentialType::Password)
        .and_then(|c| c.identifiers.first().cloned())
        .or_else(|| a.identity.traits.get("email").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| a.identity.id.to_string())
}

fn login_redirect(state: &AppState, return_to: &str) -> Response {
    see_other(&with_query(&state.engine.url("/self-service/login/browser"), &[("return_to", return_to)]))
}

#[utoipa::path(
    get,
    path = "/ui/settings",
    tag = "ui",
    operation_id = "uiSettings",
    params(("flow" = Option<uuid::Uuid>, Query, description = "The flow id (a new flow is started without it).")),
    responses((status = 200, description = "The account settings page.", content_type = "text/html", body = String), (status = 303, description = "Elsewhere (a new flow, sign-in, …)."))
)]
async fn settings_page(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Response {
    let e = &state.engine;
    let Some(a) = ctx.req.auth.clone() else {
        let here =
            with_query(&e.url("/ui/settings"), &q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>());
        return login_redirect(&state, &here);
    };
    let Some(id) = q.get("flow").and_then(|s| Uuid::parse_str(s.trim()).ok()) else {
        return see_other(&init_url(&state, FlowKind::Settings, &q));
    };
    let flow = match e.get_settings(id, &ctx.req).await {
        Ok(f) => f,
        Err(err) => {
            return match err.kind {
                ErrorKind::NotFound | ErrorKind::Gone => see_other(&init_url(&state, FlowKind::Settings, &q)),
                ErrorKind::Aal2Required => {
                    see_other(err.redirect_browser_to.as_deref().unwrap_or(&e.aal2_login_url(None)))
                }
                _ => error_inline(&state, &ctx, &err),
            };
        }
    };
    if flow.flow_type != FlowType::Browser {
        let err = Error::bad_request("This flow was started by an API client and can not be shown in a browser.");
        return error_inline(&state, &ctx, &err);
    }
    let others = match e.my_other_sessions(&a).await {
        Ok(list) => list,
        Err(err) => return error_inline(&state, &ctx, &err),
    };
    let activity = match e.list_activity(a.identity.id, None, RECENT_ACTIVITY).await {
        Ok(list) => list.iter().map(activity_row).collect(),
        Err(err) => return error_inline(&state, &ctx, &err),
    };
    let mut sessions = vec![session_row(&a.session, true)];
    sessions.extend(others.iter().map(|s| session_row(s, false)));
    let mut messages = nodes::messages(&flow.ui);
    match q.get("notice").map(String::as_str) {
        Some("session_revoked") => messages.push(Msg::success("The session was signed out.")),
        Some("sessions_revoked") => messages.push(Msg::success("All other sessions were signed out.")),
        _ => {}
    }
    let mut ids = Ids::default();
    // The account deletion nodes (in the profile group on the wire) get a form of their own.
    let is_deletion = |n: &Node| n.id().starts_with("delete_account");
    let mut main = flow.ui.clone();
    main.nodes.retain(|n| !is_deletion(n));
    let mut forms = nodes::forms(&main, SETTINGS_ORDER, &mut ids, &settings_describe);
    let mut deletion = flow.ui.clone();
    deletion.nodes.retain(|n| is_deletion(n) || n.id() == "csrf_token");
    if deletion.nodes.iter().any(is_deletion) {
        forms.extend(nodes::forms(&deletion, SETTINGS_ORDER, &mut ids, &settings_describe));
    }
    let addresses = if e.cfg.selfservice.flows.verification.enabled {
        a.identity
            .verifiable_addresses
            .iter()
            .map(|v| AddressRow {
                value: v.value.clone(),
                verified: v.verified,
                details: match (v.verified, v.verified_at, v.status.as_str()) {
                    (true, Some(at), _) => format!("verified {}", fmt_time(at)),
                    (true, None, _) => "verified".into(),
                    (false, _, "sent") => "a verification code was sent".into(),
                    _ => "not verified".into(),
                },
            })
            .collect()
    } else {
        vec![]
    };
    let page = SettingsPage {
        page: Chrome::new(&state, "Account settings", "settings", true),
        who: display_name(&a),
        messages,
        forms,
        addresses,
        verify_action: e.url("/ui/verification/send"),
        sessions,
        activity,
        others: others.len(),
        revoke_action: e.url("/ui/sessions/revoke"),
        csrf_token: crypto::mask_csrf(&flow.csrf_token),
        flow_id: flow.id.to_string(),
        export_url: e.url("/self-service/settings/export"),
    };
    let mut resp = html(&state, StatusCode::OK, &page);
    // Like `GET /self-service/settings/flows`: the browser gets the flow's CSRF cookie.
    if ctx.req.csrf_cookie.as_deref() != Some(flow.csrf_token.as_str()) {
        resp.headers_mut().append(header::SET_COOKIE, state.csrf_cookie_header(&flow.csrf_token));
    }
    resp
}

/// The signed-in caller of a settings-page form (`csrf_token` of the page, `flow`), and where
/// to go back to; or the response that ends the request (sign-in, step-up, CSRF error).
async fn settings_form_caller(
    state: &AppState,
    ctx: &Ctx,
    body: &idflow_core::selfservice::Body,
) -> Result<(Authed, String), Response> {
    let e = &state.engine;
    let back = body_str(body, "flow")
        .and_then(|f| Uuid::parse_str(f).ok())
        .map(|f| with_query(&e.url("/ui/settings"), &[("flow", &f.to_string())]))
        .unwrap_or_else(|| e.url("/ui/settings"));
    if ctx.req.auth.is_none() {
        return Err(login_redirect(state, &back));
    }
    let a = match e.whoami(ctx.req.auth.clone()) {
        Ok(a) => a,
        Err(err) if err.kind == ErrorKind::Aal2Required => {
            return Err(see_other(err.redirect_browser_to.as_deref().unwrap_or(&e.aal2_login_url(None))));
        }
        Err(err) => return Err(error_inline(state, ctx, &err)),
    };
    let token_ok = match (ctx.req.csrf_cookie.as_deref(), body_str(body, "csrf_token")) {
        (Some(c), Some(t)) if !c.is_empty() && !t.is_empty() => crypto::csrf_matches(t, c),
        _ => false,
    };
    if !token_ok {
        let err = Error::new(
            ErrorKind::Csrf,
            "The request was rejected to protect you from Cross-Site-Request-Forgery: the form's token does not match this browser's cookie. Reload the settings page and try again.",
        );
        return Err(error_inline(state, ctx, &err));
    }
    Ok((a, back))
}

/// `POST /ui/sessions/revoke` (`csrf_token`, `session_id` = a session id or `others`, `flow`):
/// sign out other sessions of the caller, then back to the settings page.
#[utoipa::path(
    post,
    path = "/ui/sessions/revoke",
    tag = "ui",
    operation_id = "uiRevokeSession",
    request_body(content = Object, description = "`session_id` and `csrf_token` (form post).", content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The page with an error.", content_type = "text/html", body = String), (status = 303, description = "Elsewhere (a new flow, sign-in, …)."))
)]
async fn revoke_session(State(state): State<AppState>, ctx: Ctx, ParsedBody(body): ParsedBody) -> Response {
    let e = &state.engine;
    let (a, back) = match settings_form_caller(&state, &ctx, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (res, notice) = match body_str(&body, "session_id").unwrap_or_default() {
        "others" => (e.revoke_my_other_sessions(&a, &ctx.req).await.map(|_| ()), "sessions_revoked"),
        id => match Uuid::parse_str(id) {
            Ok(id) => (e.revoke_my_session(&a, id, &ctx.req).await, "session_revoked"),
            Err(_) => (Err(Error::bad_request("The session_id field is missing or not a valid session id.")), ""),
        },
    };
    match res {
        Ok(()) => see_other(&with_query(&back, &[("notice", notice)])),
        Err(err) => error_inline(&state, &ctx, &err),
    }
}

/// `POST /ui/verification/send` (`csrf_token`, `flow`, `email`): the settings page's "Send
/// verification code" for one of the caller's unverified addresses. Starts a browser
/// verification flow that returns to the settings page, mails the code through it, and shows
/// that flow's code form.
#[utoipa::path(
    post,
    path = "/ui/verification/send",
    tag = "ui",
    operation_id = "uiSendVerificationCode",
    request_body(content = Object, description = "`email` (an unverified address of the caller), `flow` and `csrf_token` of the settings page (form post).", content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "To the verification page of the new flow (code sent), or to sign-in."),
        (status = 400, description = "The address is not an unverified address of the caller.", content_type = "text/html", body = String),
        (status = 403, description = "The form's CSRF token does not match.", content_type = "text/html", body = String)
    )
)]
async fn send_verification(State(state): State<AppState>, ctx: Ctx, ParsedBody(body): ParsedBody) -> Response {
    let e = &state.engine;
    let (a, back) = match settings_form_caller(&state, &ctx, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let email = body_str(&body, "email").unwrap_or_default().trim().to_string();
    if !a.identity.verifiable_addresses.iter().any(|v| !v.verified && v.value.eq_ignore_ascii_case(&email)) {
        let err = Error::bad_request("The email field is not an unverified address of your account.");
        return error_inline(&state, &ctx, &err);
    }
    let init = with_query(&e.url("/self-service/verification/browser"), &[("return_to", &back)]);
    let req = idflow_core::selfservice::Req { json: false, request_url: init, ..ctx.req.clone() };
    let flow = match e.create_verification(&req, FlowType::Browser).await {
        Ok(f) => f,
        Err(err) => return error_inline(&state, &ctx, &err),
    };
    // The submit is this request's own: the new flow's CSRF token is the cookie it checks.
    let submit = idflow_core::selfservice::Req { csrf_cookie: Some(flow.csrf_token.clone()), ..req };
    let mut code_body = idflow_core::selfservice::Body::new();
    code_body.insert("method".into(), Value::from("code"));
    code_body.insert("email".into(), Value::from(email));
    code_body.insert("csrf_token".into(), Value::from(crypto::mask_csrf(&flow.csrf_token)));
    // The flow just created is handed over, not read back.
    if let Err(err) = e.submit_verification(flow.clone(), &code_body, &submit).await {
        return error_inline(&state, &ctx, &err);
    }
    let mut resp = see_other(&with_query(&e.url("/ui/verification"), &[("flow", &flow.id.to_string())]));
    if ctx.req.csrf_cookie.as_deref() != Some(flow.csrf_token.as_str()) {
        resp.headers_mut().append(header::SET_COOKIE, state.csrf_cookie_header(&flow.csrf_token));
    }
    resp
}

/// `POST /ui/verification/confirm?flow=` (`code` or `email`, `method`): the page of an
/// API-initiated verification flow (a native app's registration, whose mail was opened in a
/// browser) submits it here. The submit is the API flow's own — no browser state goes with it —
/// and the browser goes back to the page, which shows the outcome.
#[utoipa::path(
    post,
    path = "/ui/verification/confirm",
    tag = "ui",
    operation_id = "uiConfirmApiVerification",
    params(("flow" = uuid::Uuid, Query, description = "The API verification flow.")),
    request_body(content = Object, description = "`method: code` with `code` (or `email` to resend), form post.", content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Back to the verification page, which shows the outcome."),
        (status = 400, description = "Not an API verification flow, or a malformed request.", content_type = "text/html", body = String),
        (status = 410, description = "The flow expired.", content_type = "text/html", body = String)
    )
)]
async fn confirm_api_verification(
    State(state): State<AppState>,
    ctx: Ctx,
    Query(q): Q,
    ParsedBody(body): ParsedBody,
) -> Response {
    let e = &state.engine;
    let Some(id) = q.get("flow").and_then(|s| Uuid::parse_str(s.trim()).ok()) else {
        return error_inline(&state, &ctx, &Error::bad_request("The flow query parameter is missing or malformed."));
    };
    let flow = match e.load_flow(id, FlowKind::Verification).await {
        Ok(f) if f.flow_type == FlowType::Api => f,
        Ok(_) => {
            let err = Error::bad_request("Only a verification flow started by an API client is confirmed here.");
            return error_inline(&state, &ctx, &err);
        }
        Err(err) => return error_inline(&state, &ctx, &err),
    };
    // The API flow's own submit: no session, cookies or CSRF of this browser; the flow read
    // above is handed over, not read again.
    let req = idflow_core::selfservice::Req {
        json: false,
        auth: None,
        token: None,
        csrf_cookie: None,
        api_violation: None,
        ..ctx.req.clone()
    };
    // Back to the flow that shows the outcome (a restarted flow replaces this one).
    let shown = match e.submit_verification(flow, &body, &req).await {
        Ok(idflow_core::selfservice::Submitted::Done(v)) => v.flow.id,
        Ok(idflow_core::selfservice::Submitted::Invalid(f) | idflow_core::selfservice::Submitted::ShowForm(f)) => f.id,
        Err(err) => return error_inline(&state, &ctx, &err),
    };
    see_other(&with_query(&e.url("/ui/verification"), &[("flow", &shown.to_string())]))
}

// ---- welcome ---------------------------------------------------------------------------

/// The identity's traits as (label, value), labelled like the profile form (schema titles).
fn trait_facts(state: &AppState, a: &Authed) -> Vec<(String, String)> {
    let Ok(schema) = state.engine.schema(&a.identity.schema_id) else { return vec![] };
    schema
        .trait_nodes(Group::Profile, Some(&a.identity.traits))
        .iter()
        .filter_map(|n| {
            let value = match n.input_value()? {
                Value::String(s) if !s.is_empty() => s.clone(),
                Value::String(_) | Value::Null => return None,
                other => other.to_string(),
            };
            let label = n.meta.label.as_ref().map(|l| l.text.clone()).unwrap_or_else(|| n.id().to_string());
            Some((label, value))
        })
        .collect()
}

#[utoipa::path(
    get,
    path = "/ui/welcome",
    tag = "ui",
    operation_id = "uiWelcome",
    responses((status = 200, description = "The signed-in start page.", content_type = "text/html", body = String), (status = 303, description = "Elsewhere (a new flow, sign-in, …)."))
)]
async fn welcome_page(State(state): State<AppState>, ctx: Ctx) -> Response {
    let e = &state.engine;
    let user = match ctx.req.auth.clone() {
        None => None,
        Some(a) => match e.whoami(Some(a)) {
            Ok(a) => {
                let traits = &a.identity.traits;
                let first = traits.pointer("/name/first").and_then(Value::as_str).filter(|s| !s.is_empty());
                let greeting = first.map(str::to_string).unwrap_or_else(|| display_name(&a));
                let mut facts = trait_facts(&state, &a);
                facts.push(("Signed in with".into(), methods_text(&a.session)));
                facts.push((
                    "Two-factor".into(),
                    if a.session.aal == Aal::Aal2 { "Yes (aal2)".into() } else { "No (aal1)".into() },
                ));
                facts.push(("Session expires".into(), fmt_time(a.session.expires_at)));
                let logout_url = logout_url(&state, &a).await.unwrap_or_else(|| e.url("/self-service/logout/browser"));
                Some(WelcomeUser { greeting, facts, logout_url })
            }
            Err(err) if err.kind == ErrorKind::Aal2Required => {
                return see_other(err.redirect_browser_to.as_deref().unwrap_or(&e.aal2_login_url(None)));
            }
            Err(_) => None,
        },
    };
    let page = WelcomePage {
        page: Chrome::new(&state, "Welcome", "welcome", user.is_some()),
        user,
        login_url: e.url("/ui/login"),
        registration_url: e.url("/ui/registration"),
    };
    html(&state, StatusCode::OK, &page)
}

// ---- error -----------------------------------------------------------------------------

#[utoipa::path(
    get,
    path = "/ui/error",
    tag = "ui",
    operation_id = "uiError",
    params(("id" = Option<uuid::Uuid>, Query, description = "The stored error id.")),
    responses((status = 200, description = "The error page.", content_type = "text/html", body = String), (status = 303, description = "Elsewhere (a new flow, sign-in, …)."))
)]
async fn error_page(State(state): State<AppState>, ctx: Ctx, Query(q): Q) -> Response {
    let signed_in = ctx.req.auth.is_some();
    let Some(id) = q.get("id").and_then(|s| Uuid::parse_str(s.trim()).ok()) else {
        let e = Error::bad_request("The error id in the address is missing or malformed.");
        return error_inline(&state, &ctx, &e);
    };
    // A read never writes (it once inserted an empty row per unknown id).
    match state.engine.store.kv_get(&format!("error:{id}")).await {
        Ok(Some(v)) if !v.is_empty() => {
            let stored: Value = serde_json::from_str(&v).unwrap_or(Value::Null);
            let mut err = stored.get("error").cloned().unwrap_or(Value::Null);
            if !err.is_object() {
                err = serde_json::json!({"code": 500, "status": "Internal Server Error", "message": "An error occurred."});
            }
            if let Some(obj) = err.as_object_mut() {
                obj.insert("id".into(), Value::String(id.to_string()));
            }
            error_view(&state, signed_in, StatusCode::OK, &err)
        }
        Ok(_) => {
            error_inline(&state, &ctx, &Error::not_found("This error could not be found. It may have been removed."))
        }
        Err(e) => error_inline(&state, &ctx, &e.into()),
    }
}
