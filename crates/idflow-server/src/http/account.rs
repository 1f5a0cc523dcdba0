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

use super::v1::{V1Error, V1ErrorJson, V1Session, v1};
use super::{AppState, Ctx, json_response};
use crate::http::responses as R;
use crate::openapi::Routes;
use crate::wire::{self, IdentityView};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use idflow_core::error::{Error, ErrorKind};
use idflow_core::selfservice::Authed;
use serde_json::{Value, json};
use utoipa_axum::routes;

/// The account extension routes, each documented by its `#[utoipa::path]`.
pub fn routes() -> Routes {
    Routes::new()
        .routes(routes!(kratos_export))
        .routes(routes!(kratos_cancel))
        .routes(v1(routes!(v1_export)))
        .routes(v1(routes!(v1_deletion, v1_cancel)))
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

#[utoipa::path(
    get,
    path = "/self-service/settings/export",
    tag = "idflow",
    operation_id = "exportMyAccountData",
    description = "idflow extension: the caller's data (traits, addresses, credential kinds with dates, sessions, activity) as a JSON download. Session cookie or token.",
    responses(
        (status = 200, description = "The account data (`Content-Disposition: attachment`).", body = Object),
        R::NoSession,
        (status = 403, description = "A higher AAL is needed.", body = wire::ErrorEnvelope)
    )
)]
async fn kratos_export(State(state): State<AppState>, ctx: Ctx) -> Answer {
    let a = authed(&ctx)?;
    let v = state.engine.export_account(&a).await?;
    Ok(download(&state, &v))
}

#[utoipa::path(
    post,
    path = "/self-service/settings/cancel-deletion",
    tag = "idflow",
    operation_id = "cancelMyAccountDeletion",
    description = "idflow extension: cancel the caller's scheduled account deletion. A cookie-authenticated call must send `Content-Type: application/json`.",
    responses(
        (status = 200, description = "The identity, no longer scheduled for deletion.", body = Object),
        R::NoSession,
        (status = 403, description = "Cookie call without a JSON content type, or a higher AAL is needed.", body = wire::ErrorEnvelope)
    )
)]
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

#[utoipa::path(
    get,
    path = "/v1/account/export",
    tag = "v1",
    operation_id = "v1ExportAccountData",
    security(("session_token" = [])),
    responses(
        (status = 200, description = "The account data (`Content-Disposition: attachment`).", body = Object),
        R::V1NoSession,
        (status = 403, description = "AVNOLOGY_AUTH_102: step-up needed.", body = V1ErrorJson)
    )
)]
async fn v1_export(State(state): State<AppState>, V1Session(c): V1Session) -> Result<Response, V1Error> {
    let a = c.auth()?;
    let v = state.engine.export_account(&a).await?;
    Ok(download(&state, &v))
}

#[utoipa::path(
    get,
    path = "/v1/account/deletion",
    tag = "v1",
    operation_id = "v1GetAccountDeletion",
    security(("session_token" = [])),
    responses(
        (status = 200, description = "Whether a deletion is scheduled, its date and how to cancel.", body = wire::AccountDeletionOffer),
        R::V1NoSession
    )
)]
async fn v1_deletion(State(state): State<AppState>, V1Session(c): V1Session) -> Result<Response, V1Error> {
    let a = c.auth()?;
    let body = match a.identity.delete_after {
        Some(t) => deletion_offer(&state, t, true),
        None => json!({"scheduled": false}),
    };
    Ok(json_response(StatusCode::OK, body))
}

#[utoipa::path(
    delete,
    path = "/v1/account/deletion",
    tag = "v1",
    operation_id = "v1CancelAccountDeletion",
    security(("session_token" = [])),
    responses(
        (status = 200, description = "No deletion is scheduled any more.", body = wire::AccountDeletionOffer),
        R::V1NoSession
    )
)]
async fn v1_cancel(State(state): State<AppState>, V1Session(c): V1Session) -> Result<Response, V1Error> {
    // A DELETE: no cross-site form can send one, and a cross-origin one needs a preflight.
    let a = c.auth()?;
    state.engine.cancel_deletion(&a).await?;
    Ok(json_response(StatusCode::OK, json!({"scheduled": false})))
}
