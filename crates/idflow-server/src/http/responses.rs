//! The error responses that many routes document, each written once: a route lists them by name
//! in its `#[utoipa::path(responses(...))]` after its own success answers (`responses((status =
//! 200, …), BadRequest, NoSession, Unavailable)`), and keeps a tuple only where its wording is
//! its own.

use super::v1::V1ErrorJson;
use crate::wire::ErrorEnvelope;
use utoipa::IntoResponses;

/// 400 of the Kratos self-service routes.
#[derive(IntoResponses)]
#[response(status = 400, description = "Bad request (missing or malformed parameter, already signed in, …).")]
pub struct BadRequest(pub ErrorEnvelope);

/// 400 of the admin routes.
#[derive(IntoResponses)]
#[response(status = 400, description = "Bad request (malformed id, body or parameter).")]
pub struct AdminBadRequest(pub ErrorEnvelope);

#[derive(IntoResponses)]
#[response(status = 401, description = "No valid session.")]
pub struct NoSession(pub ErrorEnvelope);

#[derive(IntoResponses)]
#[response(status = 403, description = "Forbidden: CSRF check failed, or a higher AAL / a fresher session is needed.")]
pub struct Forbidden(pub ErrorEnvelope);

#[derive(IntoResponses)]
#[response(status = 404, description = "Not found.")]
pub struct NotFound(pub ErrorEnvelope);

#[derive(IntoResponses)]
#[response(status = 409, description = "Conflict: an identifier is already used, or a concurrent change.")]
pub struct Conflict(pub ErrorEnvelope);

#[derive(IntoResponses)]
#[response(status = 410, description = "The flow expired.")]
pub struct Expired(pub ErrorEnvelope);

#[derive(IntoResponses)]
#[response(status = 413, description = "Body too large.")]
pub struct TooLarge(pub ErrorEnvelope);

#[derive(IntoResponses)]
#[response(status = 422, description = "browser_location_change_required: send the browser to `redirect_browser_to`.")]
pub struct LocationChange(pub ErrorEnvelope);

#[derive(IntoResponses)]
#[response(status = 429, description = "Too many attempts (`Retry-After`).")]
pub struct TooMany(pub ErrorEnvelope);

#[derive(IntoResponses)]
#[response(status = 503, description = "The database is unavailable.")]
pub struct Unavailable(pub ErrorEnvelope);

/// 400 of the v1 flow submits.
#[derive(IntoResponses)]
#[response(
    status = 400,
    description = "AVNOLOGY_AUTH_001 (malformed), 009 (flow expired), 013 (return_to), or a form error (`continue_flow`)."
)]
pub struct V1SubmitBadRequest(pub V1ErrorJson);

#[derive(IntoResponses)]
#[response(status = 401, description = "AVNOLOGY_AUTH_005: no valid session.")]
pub struct V1NoSession(pub V1ErrorJson);

#[derive(IntoResponses)]
#[response(status = 403, description = "AVNOLOGY_AUTH_003 (CSRF) or 102 (step-up needed: `details.login_url`).")]
pub struct V1Forbidden(pub V1ErrorJson);

#[derive(IntoResponses)]
#[response(status = 404, description = "AVNOLOGY_AUTH_004: flow not found or not the caller's.")]
pub struct V1FlowNotFound(pub V1ErrorJson);

#[derive(IntoResponses)]
#[response(status = 409, description = "AVNOLOGY_AUTH_012: identifier already in use.")]
pub struct V1IdentifierTaken(pub V1ErrorJson);

#[derive(IntoResponses)]
#[response(status = 413, description = "AVNOLOGY_AUTH_001: body too large.")]
pub struct V1TooLarge(pub V1ErrorJson);

#[derive(IntoResponses)]
#[response(status = 429, description = "AVNOLOGY_AUTH_029: too many attempts (`Retry-After`).")]
pub struct V1TooMany(pub V1ErrorJson);

#[derive(IntoResponses)]
#[response(status = 503, description = "AVNOLOGY_AUTH_500: service unavailable.")]
pub struct V1Unavailable(pub V1ErrorJson);
