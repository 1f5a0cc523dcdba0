//! The flow responder: the one place that decides how a self-service flow answers — JSON
//! (200 / 400), a 303 to the flow's UI or to the next page, 422
//! `browser_location_change_required`, or the error UI — for the Kratos flow routes (login,
//! registration, settings, logout) and the OIDC callback. Handlers only build the outcome.

use super::error::KratosError;
use super::{AppState, Ctx, error_redirect, json_response, see_other};
use crate::wire::Body;
use axum::http::StatusCode;
use axum::http::header::{self, HeaderValue};
use axum::response::{IntoResponse, Response};
use idflow_core::error::{Error, ErrorKind};
use idflow_core::model::{Flow, FlowKind, FlowType};
use idflow_core::selfservice::settings::SettingsDone;
use idflow_core::selfservice::with_query;
use serde_json::{Value, json};

/// What a flow request came to.
pub enum Outcome {
    /// A new flow: its JSON, or the browser sent to the flow's UI; browsers get the CSRF cookie.
    Created { flow: Flow, body: Body },
    /// The flow's form again (`status` 400 with form errors, 200 to continue): its JSON, or the
    /// browser sent back to the flow's UI.
    Form { flow: Flow, body: Body, status: StatusCode },
    /// The flow finished.
    Done(Done),
    /// Not a form: no session, CSRF, expiry, …
    Error(Error),
}

/// A finished flow.
pub struct Done {
    /// The JSON answer (`None`: 204 No Content).
    pub body: Option<Body>,
    /// Where a browser goes next.
    pub redirect_to: String,
    /// The flow is not complete until the browser visits `redirect_to` (a second factor is
    /// due): JSON callers of browser flows get 422 `browser_location_change_required`.
    pub location_change: bool,
    /// `Set-Cookie` values, sent to browser flows only.
    pub cookies: Vec<HeaderValue>,
}

/// The public identity shown with a settings flow. A settings flow is only served to a session
/// of its own identity (the core checks it), so the caller's identity, loaded with its session
/// for this request, is the flow's: no second read. Read from the store otherwise.
pub async fn settings_flow_identity(state: &AppState, ctx: &Ctx, flow: &Flow) -> Option<Value> {
    let id = flow.identity_id?;
    let view = |i: &idflow_core::model::Identity| {
        crate::wire::identity(state.engine.base(), i, crate::wire::IdentityView::Public, &[])
    };
    match ctx.req.auth.as_ref().filter(|a| a.identity.id == id) {
        Some(a) => Some(view(&a.identity)),
        None => state.engine.store.get_identity(id).await.ok().flatten().map(|i| view(&i)),
    }
}

/// The `continue_with` item that sends a browser on.
pub fn redirect_action(url: &str) -> Value {
    json!({"action": "redirect_browser_to", "redirect_browser_to": url})
}

/// How one request to one flow is answered.
pub struct FlowResponder<'a> {
    state: &'a AppState,
    ctx: &'a Ctx,
    /// The flow's kind (where an expired flow's replacement is shown); `None` outside a flow.
    kind: Option<FlowKind>,
    browser: bool,
    /// Errors as JSON (API flows; browser requests that send or accept JSON).
    json_errors: bool,
    /// Forms as JSON (same as errors, except for the OIDC callback).
    json_forms: bool,
    /// Finished and created flows as JSON (API flows; browser requests that accept JSON).
    json_done: bool,
}

impl<'a> FlowResponder<'a> {
    /// A request to a flow of `flow_type` (a flow endpoint of the Kratos routes).
    pub fn new(state: &'a AppState, ctx: &'a Ctx, flow_type: FlowType, kind: Option<FlowKind>) -> Self {
        let browser = flow_type == FlowType::Browser;
        let navigates = browser && !ctx.req.json;
        FlowResponder {
            state,
            ctx,
            kind,
            browser,
            json_errors: !navigates,
            json_forms: !navigates,
            json_done: !browser || ctx.accept_json,
        }
    }

    /// The OIDC callback: the browser's top-level navigation back from the provider. Outcomes
    /// are always redirects; only errors follow the request's JSON preference.
    pub fn navigation(state: &'a AppState, ctx: &'a Ctx, kind: Option<FlowKind>) -> Self {
        FlowResponder {
            state,
            ctx,
            kind,
            browser: true,
            json_errors: ctx.req.json,
            json_forms: false,
            json_done: false,
        }
    }

    /// A settings request without a session, before its flow is known: a browser navigating
    /// gets a 302 to the login UI (`None`: the engine answers 401 for the others).
    pub fn no_session(state: &AppState, ctx: &Ctx) -> Option<Response> {
        if ctx.req.auth.is_none() && !ctx.req.json {
            let mut r = axum::response::Redirect::to(&state.engine.ui_url("login")).into_response();
            *r.status_mut() = StatusCode::FOUND;
            return Some(r);
        }
        None
    }

    /// Whether this is a browser navigating (answered with redirects, not JSON).
    pub fn navigates(&self) -> bool {
        !self.json_forms
    }

    pub async fn respond(&self, outcome: Outcome) -> Response {
        let engine = &self.state.engine;
        match outcome {
            Outcome::Created { flow, body } => {
                let mut resp = if self.json_done {
                    json_response(StatusCode::OK, body)
                } else {
                    see_other(&engine.ui_url_for_flow(flow.kind, flow.id))
                };
                super::set_csrf_cookie(self.state, self.ctx, &flow, &mut resp);
                resp
            }
            Outcome::Form { flow, body, status } => {
                if self.json_forms {
                    json_response(status, body)
                } else {
                    see_other(&engine.ui_url_for_flow(flow.kind, flow.id))
                }
            }
            Outcome::Done(done) => self.done(done),
            Outcome::Error(e) => self.error(e).await,
        }
    }

    fn done(&self, done: Done) -> Response {
        let mut resp = if !self.json_done {
            see_other(&done.redirect_to)
        } else if done.location_change && self.browser {
            let url = done.redirect_to;
            let e = Error::new(
                ErrorKind::BrowserLocationChange,
                format!("In order to complete this flow please redirect the browser to: {url}"),
            )
            .with_redirect(url);
            KratosError(e).into_response()
        } else {
            match done.body {
                Some(body) => json_response(StatusCode::OK, body),
                None => StatusCode::NO_CONTENT.into_response(),
            }
        };
        if self.browser {
            for c in done.cookies {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
        }
        resp
    }

    /// An error: JSON, or for a browser a redirect to where it can go on (sign in, a second
    /// factor, the replacement of an expired flow, …) or else to the error UI.
    pub async fn error(&self, e: Error) -> Response {
        if self.json_errors {
            return KratosError(e).into_response();
        }
        let engine = &self.state.engine;
        match e.kind {
            ErrorKind::SessionInactive | ErrorKind::Unauthorized => {
                let rt = url::Url::parse(&self.ctx.req.request_url)
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
            ErrorKind::FlowExpired => match (self.kind, e.use_flow_id) {
                (Some(kind), Some(id)) => see_other(&engine.ui_url_for_flow(kind, id)),
                _ => self.error_page(e).await,
            },
            ErrorKind::SessionAlreadyAvailable => see_other(&engine.default_return_url()),
            // A refusal that names where to go on (login without a verified address).
            ErrorKind::Forbidden if e.redirect_browser_to.is_some() => {
                see_other(e.redirect_browser_to.as_deref().unwrap_or_default())
            }
            _ => self.error_page(e).await,
        }
    }

    /// An error as JSON, or for a browser stored and shown by the error UI.
    pub async fn error_page(&self, e: Error) -> Response {
        if self.json_errors { KratosError(e).into_response() } else { error_redirect(self.state, e).await }
    }
}

/// The session cookie after a settings change: a browser that authenticated with the cookie
/// gets it again (for the updated session, when a method changed it).
pub fn settings_cookies(state: &AppState, ctx: &Ctx, r: &SettingsDone) -> Vec<HeaderValue> {
    if r.signed_out {
        // Every session ended with the change (an account scheduled for deletion).
        return if ctx.via_cookie { vec![state.clear_session_cookie(), state.new_csrf_cookie()] } else { vec![] };
    }
    match (ctx.via_cookie, &ctx.req.token, &ctx.req.auth) {
        (true, Some(tok), Some(a)) => {
            let s = r.session.as_ref().map(|i| &i.session).unwrap_or(&a.session);
            vec![state.session_cookie_for(tok, s)]
        }
        _ => vec![],
    }
}
