//! Errors as values that render themselves. [`KratosError`] answers in the Kratos envelope
//! (with `Ory-Error-Id` and `Retry-After`), [`super::v1::V1Error`] in the v1 envelope; both
//! implement `IntoResponse`, so handlers return `Result<Response, _>` and use `?`.
//!
//! The request id (and, for `since` of expired flows, the server clock) is not threaded through
//! the handlers: the [`scope`] middleware keeps the request's [`AppState`] and id for the
//! request's task, and an error reads them when it renders.

use super::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use idflow_core::error::Error;
use idflow_core::store::StoreError;
use time::OffsetDateTime;

tokio::task_local! {
    static REQUEST: Scope;
}

/// What an error needs from the request it answers.
struct Scope {
    state: AppState,
    request_id: String,
}

/// The `X-Request-Id` of a request ("" without one).
fn request_id(headers: &HeaderMap) -> String {
    headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

/// Middleware: run the rest of the request inside its error scope (state and request id).
pub async fn scope(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let request_id = request_id(req.headers());
    REQUEST.scope(Scope { state, request_id }, next.run(req)).await
}

/// The current request's state and id; `None` outside a request (an error then renders
/// without a request id, against the system time).
fn current() -> Option<(AppState, String)> {
    REQUEST.try_with(|s| (s.state.clone(), s.request_id.clone())).ok()
}

/// The current request's id ("" outside a request).
pub fn current_request_id() -> String {
    current().map(|(_, id)| id).unwrap_or_default()
}

/// The public base URL of the current request's server ("" outside a request).
pub fn current_base() -> String {
    current().map(|(s, _)| s.engine.base().to_string()).unwrap_or_default()
}

/// A core error answered in the Kratos envelope.
#[derive(Debug)]
pub struct KratosError(pub Error);

impl From<Error> for KratosError {
    fn from(e: Error) -> Self {
        KratosError(e)
    }
}

impl From<StoreError> for KratosError {
    fn from(e: StoreError) -> Self {
        KratosError(e.into())
    }
}

impl IntoResponse for KratosError {
    fn into_response(self) -> Response {
        let e = self.0;
        let (request_id, now) = match current() {
            Some((state, id)) => (id, state.engine.clock.now()),
            None => (String::new(), OffsetDateTime::now_utc()),
        };
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = crate::wire::error_at(&e, &request_id, now);
        let mut resp = (status, axum::Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(e.kind.id().unwrap_or("")) {
            resp.headers_mut().insert("ory-error-id", v);
        }
        if let Some(secs) = e.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}
