//! The social sign-in callback: `/self-service/methods/oidc/callback/{provider}`.
//!
//! Providers send the browser back here with `code` and `state` (GET), or post them
//! (`response_mode=form_post`, Apple). A POST is answered with a 303 to the same URL with the
//! parameters in the query: the browser then comes back with a top-level GET, which carries its
//! `SameSite=Lax` cookies (the CSRF cookie binds the flow to the browser).
//!
//! Outcomes are browser responses: 303 to the post-login / post-registration / settings URL with
//! the session cookie, 303 back to the flow's UI with a form error, or the error page.

use super::kratos::flow_error;
use super::{AppState, Ctx, ParsedBody, error_redirect, see_other};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::Response;
use axum::routing::get;
use idflow_core::model::{FlowType, Session};
use idflow_core::selfservice::methods::oidc::{CallbackParams, OidcDone};
use idflow_core::selfservice::{Submitted, with_query};
use serde_json::Value;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new().route("/self-service/methods/oidc/callback/{provider}", get(callback).post(callback_post))
}

const PARAMS: &[&str] = &["code", "state", "error", "error_description", "iss", "user"];

/// A `form_post` response: continue as a GET so that the browser's cookies come along.
async fn callback_post(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    ParsedBody(body): ParsedBody,
) -> Response {
    let mut params: Vec<(&str, String)> = vec![];
    for k in PARAMS {
        match body.get(*k) {
            Some(Value::String(s)) => params.push((k, s.clone())),
            Some(v @ Value::Object(_)) => params.push((k, v.to_string())),
            _ => {}
        }
    }
    let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let base = state.engine.oidc_redirect_uri(&provider);
    see_other(&with_query(&base, &p))
}

fn set_session_cookie(state: &AppState, resp: &mut Response, token: &str, session: &Session) {
    let remaining = (session.expires_at - state.engine.clock.now()).whole_seconds();
    resp.headers_mut().append(header::SET_COOKIE, state.session_cookie(token, remaining));
}

/// A new session (another identity, or none before) also gets a new CSRF secret.
fn rotate_csrf(state: &AppState, resp: &mut Response) {
    let secret = idflow_core::crypto::new_csrf_secret();
    resp.headers_mut().append(header::SET_COOKIE, state.csrf_cookie_header(&secret));
}

async fn callback(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(provider): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let engine = &state.engine;
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let params = CallbackParams {
        state: get("state"),
        code: get("code"),
        error: get("error"),
        error_description: get("error_description"),
        iss: get("iss"),
    };
    let (kind, res) = engine.oidc_callback(&provider, &params, &ctx.req).await;
    let done = match res {
        Ok(d) => d,
        Err(e) => {
            return match kind {
                Some(k) => flow_error(&state, &ctx, FlowType::Browser, k, e).await,
                None => error_redirect(&state, &e, &ctx.request_id).await,
            };
        }
    };
    match done {
        OidcDone::Login(r) => {
            let target = if r.aal_satisfied {
                engine.return_url_after(&r.flow)
            } else {
                engine.aal2_login_url(r.flow.return_to.as_deref())
            };
            let mut resp = see_other(&target);
            set_session_cookie(&state, &mut resp, &r.issued.token, &r.issued.session);
            rotate_csrf(&state, &mut resp);
            resp
        }
        OidcDone::Registration(r) => {
            let target = engine.return_url_after(&r.flow);
            let mut resp = see_other(&target);
            if let Some(s) = &r.session {
                set_session_cookie(&state, &mut resp, &s.token, &s.session);
                rotate_csrf(&state, &mut resp);
            }
            resp
        }
        OidcDone::Settings(Submitted::Done(r)) => {
            let mut resp = see_other(&r.redirect_to);
            if ctx.via_cookie
                && let (Some(tok), Some(a)) = (&ctx.req.token, &ctx.req.auth)
            {
                let s = r.session.as_ref().map(|i| &i.session).unwrap_or(&a.session);
                set_session_cookie(&state, &mut resp, tok, s);
            }
            resp
        }
        OidcDone::Settings(Submitted::Invalid(flow) | Submitted::ShowForm(flow)) | OidcDone::Invalid(flow) => {
            see_other(&engine.ui_url_for_flow(flow.kind, flow.id))
        }
    }
}
