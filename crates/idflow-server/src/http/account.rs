//! idflow extension routes of the account (both dialects): the data export and cancelling a
//! scheduled account deletion.
//!
//! - `GET /self-service/settings/export`, `GET /v1/account/export`: the caller's data as a JSON
//!   download (`Content-Disposition: attachment`), session cookie or token.
//! - `POST /self-service/settings/cancel-deletion`, `DELETE /v1/account/deletion`: cancel the
//!   caller's scheduled deletion; `GET /v1/account/deletion` tells whether one is scheduled.
//!
//! A cookie-authenticated cancel must be a JSON request (`Content-Type: application/json`):
//! a cross-site form cannot send one without a CORS preflight, so no CSRF token is needed.

use super::v1::{V1Error, V1Session, v1};
use super::{AppState, Ctx, json_response};
use crate::wire::{self, IdentityView};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use idflow_core::error::{Error, ErrorKind};
use idflow_core::selfservice::Authed;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/self-service/settings/export", get(kratos_export))
        .route("/self-service/settings/cancel-deletion", post(kratos_cancel))
        .route("/v1/account/export", v1(get(v1_export)))
        .route("/v1/account/deletion", v1(get(v1_deletion).delete(v1_cancel)))
}

type Answer = Result<Response, super::error::KratosError>;

/// The export as a download named after the date.
fn download(state: &AppState, v: &Value) -> Response {
    let mut resp = json_response(StatusCode::OK, v.clone());
    let date = state.engine.clock.now().date();
    let name = format!("attachment; filename=\"account-data-{date}.json\"");
    if let Ok(h) = HeaderValue::from_str(&name) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, h);
    }
    resp
}

/// A cookie-authenticated state change must be a JSON request (see the module docs).
fn json_request_or_csrf(ctx: &Ctx) -> Result<(), Error> {
    let ct = ctx.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let is_json = ct.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if ctx.via_cookie && !is_json {
        return Err(Error::new(
            ErrorKind::Csrf,
            "A request authenticated with the session cookie must send Content-Type: application/json.",
        ));
    }
    Ok(())
}

/// The account-deletion state of an identity (the login answer's `account_deletion`, the v1
/// status): the date and how to cancel.
pub fn deletion_offer(state: &AppState, delete_after: time::OffsetDateTime, v1: bool) -> Value {
    let url = if v1 {
        json!({"method": "DELETE", "url": state.engine.url("/v1/account/deletion")})
    } else {
        json!({"method": "POST", "url": state.engine.url("/self-service/settings/cancel-deletion")})
    };
    json!({"scheduled": true, "delete_after": wire::ts(delete_after), "cancel": url})
}

fn authed(ctx: &Ctx) -> Result<Authed, Error> {
    ctx.req
        .auth
        .clone()
        .ok_or_else(|| Error::new(ErrorKind::Unauthorized, "No valid session credentials found in the request."))
}

async fn kratos_export(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let a = authed(&ctx)?;
    let v = state.engine.export_account(&a).await?;
    Ok(download(&state, &v))
}

async fn kratos_cancel(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let a = authed(&ctx)?;
    json_request_or_csrf(&ctx)?;
    let identity = state.engine.cancel_deletion(&a).await?;
    let body = json!({
        "identity": wire::identity(state.engine.base(), &identity, IdentityView::Public, &[]),
        "account_deletion": {"scheduled": false},
    });
    Ok(json_response(StatusCode::OK, body))
}

async fn v1_export(State(state): State<AppState>, V1Session(c): V1Session) -> Result<Response, V1Error> {
    let a = c.auth()?;
    let v = state.engine.export_account(&a).await?;
    Ok(download(&state, &v))
}

async fn v1_deletion(State(state): State<AppState>, V1Session(c): V1Session) -> Result<Response, V1Error> {
    let a = c.auth()?;
    let body = match a.identity.delete_after {
        Some(t) => deletion_offer(&state, t, true),
        None => json!({"scheduled": false}),
    };
    Ok(json_response(StatusCode::OK, body))
}

async fn v1_cancel(State(state): State<AppState>, V1Session(c): V1Session) -> Result<Response, V1Error> {
    // A DELETE: no cross-site form can send one, and a cross-origin one needs a preflight.
    let a = c.auth()?;
    state.engine.cancel_deletion(&a).await?;
    Ok(json_response(StatusCode::OK, json!({"scheduled": false})))
}
