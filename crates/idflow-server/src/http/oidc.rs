//! The social sign-in callback: `/self-service/methods/oidc/callback/{provider}`.
//!
//! Providers send the browser back here with `code` and `state` (GET), or post them
//! (`response_mode=form_post`, Apple). A POST is answered with a 303 to the same URL with the
//! parameters in the query: the browser then comes back with a top-level GET, which carries its
//! `SameSite=Lax` cookies (the CSRF cookie binds the flow to the browser).
//!
//! Outcomes are browser responses: 303 to the post-login / post-registration / settings URL with
//! the session cookie, 303 back to the flow's UI with a form error, or the error page.

use super::flow::{Done, FlowResponder, Outcome, settings_cookies};
use super::{AppState, Ctx, ParsedBody, error_redirect, see_other};
use crate::openapi::Routes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use idflow_core::selfservice::methods::oidc::{CallbackParams, OidcDone};
use idflow_core::selfservice::{Submitted, with_query};
use serde_json::Value;
use std::collections::HashMap;
use utoipa_axum::routes;

/// The callback route, documented by the handlers' `#[utoipa::path]`.
pub fn routes() -> Routes {
    Routes::new().routes(routes!(callback, callback_post))
}

const PARAMS: &[&str] = &["code", "state", "error", "error_description", "iss", "user"];

/// A `form_post` response: continue as a GET so that the browser's cookies come along.
#[utoipa::path(
    post,
    path = "/self-service/methods/oidc/callback/{provider}",
    tag = "frontend",
    operation_id = "postOidcCallback",
    params(("provider" = String, Path, description = "The provider id (`selfservice.methods.oidc.config.providers[].id`).")),
    request_body(content = Object, description = "`code`, `state`, `error`, … (`response_mode=form_post`).", content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "To the same URL with the parameters in the query."))
)]
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

#[utoipa::path(
    get,
    path = "/self-service/methods/oidc/callback/{provider}",
    tag = "frontend",
    operation_id = "getOidcCallback",
    params(("provider" = String, Path, description = "The provider id (`selfservice.methods.oidc.config.providers[].id`)."), ("code" = Option<String>, Query), ("state" = Option<String>, Query), ("error" = Option<String>, Query)),
    responses((status = 303, description = "Signed in or registered: to the return URL; otherwise back to the flow's UI or the error page."))
)]
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
    let done =
        |redirect_to: String, cookies| Outcome::Done(Done { body: None, redirect_to, location_change: false, cookies });
    let outcome = match res {
        Err(e) if kind.is_some() => Outcome::Error(e),
        // Without a flow (unknown or missing `state`) there is nothing to go back to: the error UI.
        Err(e) => return error_redirect(&state, e).await,
        Ok(OidcDone::Login(r)) => {
            let target = if r.aal_satisfied {
                engine.return_url_after(&r.flow)
            } else {
                engine.aal2_login_url(r.flow.return_to.as_deref())
            };
            // A new session (another identity, or none before) also gets a new CSRF secret.
            done(target, vec![state.session_cookie_for(&r.issued.token, &r.issued.session), state.new_csrf_cookie()])
        }
        Ok(OidcDone::Registration(r)) => {
            let target = engine.return_url_after(&r.flow);
            let cookies = match &r.session {
                Some(s) => vec![state.session_cookie_for(&s.token, &s.session), state.new_csrf_cookie()],
                None => vec![],
            };
            done(target, cookies)
        }
        Ok(OidcDone::Settings(Submitted::Done(r))) => {
            let cookies = settings_cookies(&state, &ctx, &r);
            done(r.redirect_to, cookies)
        }
        Ok(OidcDone::Settings(Submitted::Invalid(flow) | Submitted::ShowForm(flow)) | OidcDone::Invalid(flow)) => {
            Outcome::Form { flow, body: Value::Null.into(), status: axum::http::StatusCode::BAD_REQUEST }
        }
    };
    FlowResponder::navigation(&state, &ctx, kind).respond(outcome).await
}
