//! The core error: a self-service outcome that is not a form error. Each kind maps to one
//! Kratos error id/status (and one v1 code); both dialects render it in the http layer.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

/// What went wrong (drives status, `error.id` and the v1 code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 401 `session_inactive` (flow creation without a session).
    SessionInactive,
    /// 401 without id (whoami, fetch/submit without session).
    Unauthorized,
    /// 401 `session_aal1_required`.
    Aal1Required,
    /// 403 `session_aal2_required`.
    Aal2Required,
    /// 403 `session_refresh_required`.
    RefreshRequired,
    /// 403 `security_csrf_violation`.
    Csrf,
    /// 403 `security_identity_mismatch`.
    IdentityMismatch,
    /// 403 without id.
    Forbidden,
    /// 404 without id.
    NotFound,
    /// 404: method disabled.
    Disabled,
    /// 410 `self_service_flow_expired` (submit) — `use_flow_id` set.
    FlowExpired,
    /// 410 without id (fetch of an expired flow).
    Gone,
    /// 400 `self_service_flow_return_to_forbidden`.
    ReturnToForbidden,
    /// 400 `session_already_available`.
    SessionAlreadyAvailable,
    /// 400 `self_service_flow_disabled`.
    FlowDisabled,
    /// 400 without id: malformed request.
    BadRequest,
    /// 409 conflict.
    Conflict,
    /// 413 body too large.
    PayloadTooLarge,
    /// 422 `browser_location_change_required`.
    BrowserLocationChange,
    /// 429 too many attempts.
    RateLimited,
    /// 503 database unavailable.
    Unavailable,
    /// 500.
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> u16 {
        use ErrorKind::*;
        match self {
            SessionInactive | Unauthorized | Aal1Required => 401,
            Aal2Required | RefreshRequired | Csrf | IdentityMismatch | Forbidden => 403,
            NotFound | Disabled => 404,
            FlowExpired | Gone => 410,
            ReturnToForbidden | SessionAlreadyAvailable | FlowDisabled | BadRequest => 400,
            Conflict => 409,
            PayloadTooLarge => 413,
            BrowserLocationChange => 422,
            RateLimited => 429,
            Unavailable => 503,
            Internal => 500,
        }
    }
    pub fn id(self) -> Option<&'static str> {
        use ErrorKind::*;
        Some(match self {
            SessionInactive => "session_inactive",
            Aal1Required => "session_aal1_required",
            Aal2Required => "session_aal2_required",
            RefreshRequired => "session_refresh_required",
            Csrf => "security_csrf_violation",
            IdentityMismatch => "security_identity_mismatch",
            FlowExpired => "self_service_flow_expired",
            ReturnToForbidden => "self_service_flow_return_to_forbidden",
            SessionAlreadyAvailable => "session_already_available",
            FlowDisabled => "self_service_flow_disabled",
            BrowserLocationChange => "browser_location_change_required",
            _ => return None,
        })
    }
    pub fn default_message(self) -> &'static str {
        use ErrorKind::*;
        match self {
            SessionInactive => "request does not have a valid authentication session",
            Aal2Required => "Session does not fulfill the requested Authenticator Assurance Level",
            Csrf => "the request was rejected to protect you from Cross-Site-Request-Forgery",
            FlowExpired => "self-service flow expired",
            BrowserLocationChange => "browser location change required",
            Unauthorized | Aal1Required => "The request could not be authorized",
            RefreshRequired | IdentityMismatch | Forbidden => "The requested action was forbidden",
            NotFound | Disabled => "The requested resource could not be found",
            Gone => "The requested resource is no longer available because it has expired or is otherwise invalid.",
            ReturnToForbidden | SessionAlreadyAvailable | FlowDisabled | BadRequest => {
                "The request was malformed or contained invalid parameters"
            }
            Conflict => "The resource could not be created due to a conflict",
            PayloadTooLarge => "The request body is too large",
            RateLimited => "Too many requests",
            Unavailable => "The service is temporarily unavailable",
            Internal => "An internal server error occurred, please contact the system administrator",
        }
    }
}

/// A self-service error (boxed: errors travel through many `Result`s and should stay small;
/// fields are reached through `Deref`).
#[derive(Debug, Clone)]
pub struct Error(Box<ErrorData>);

/// The contents of an [`Error`].
#[derive(Debug, Clone)]
pub struct ErrorData {
    pub kind: ErrorKind,
    pub reason: String,
    pub message: Option<String>,
    pub details: Map<String, Value>,
    /// Top-level `redirect_browser_to` (aal2, refresh, location change).
    pub redirect_browser_to: Option<String>,
    /// Replacement flow (expired flows).
    pub use_flow_id: Option<Uuid>,
    pub expired_at: Option<OffsetDateTime>,
    /// Seconds until a retry may succeed (rate limits).
    pub retry_after: Option<u64>,
}

impl Error {
    pub fn new(kind: ErrorKind, reason: impl Into<String>) -> Self {
        Error(Box::new(ErrorData {
            kind,
            reason: reason.into(),
            message: None,
            details: Map::new(),
            redirect_browser_to: None,
            use_flow_id: None,
            expired_at: None,
            retry_after: None,
        }))
    }
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, reason)
    }
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(ErrorKind::Internal, "")
    }
    pub fn not_found(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, reason)
    }
    pub fn with_message(mut self, m: impl Into<String>) -> Self {
        self.message = Some(m.into());
        self
    }
    pub fn with_detail(mut self, k: &str, v: Value) -> Self {
        self.details.insert(k.into(), v);
        self
    }
    pub fn with_redirect(mut self, url: String) -> Self {
        self.redirect_browser_to = Some(url);
        self
    }
    pub fn status(&self) -> u16 {
        self.kind.status()
    }
    pub fn message(&self) -> &str {
        self.message.as_deref().unwrap_or(self.kind.default_message())
    }
}

impl std::ops::Deref for Error {
    type Target = ErrorData;
    fn deref(&self) -> &ErrorData {
        &self.0
    }
}

impl std::ops::DerefMut for Error {
    fn deref_mut(&mut self) -> &mut ErrorData {
        &mut self.0
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.reason)
    }
}

impl std::error::Error for Error {}

impl Error {
    /// A store error of a commit, where losing a race to a concurrent request (`Busy`) is a 409
    /// with `message`; every other store error converts as usual.
    pub fn raced(e: crate::store::StoreError, message: &str) -> Self {
        match e {
            crate::store::StoreError::Busy(_) => Error::new(ErrorKind::Conflict, message),
            e => e.into(),
        }
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::Conflict(what) => Error::new(ErrorKind::Conflict, what),
            StoreError::Busy(_) => Error::new(
                ErrorKind::Conflict,
                "The resource was changed by a concurrent request. Please reload and try again.",
            ),
            StoreError::NotFound => Error::not_found("The requested resource could not be found"),
            StoreError::SessionRevoked => {
                Error::new(ErrorKind::Unauthorized, "No valid session credentials found in the request.")
            }
            StoreError::Invalid(d) => {
                tracing::debug!(error = %d, "value refused by the database");
                Error::bad_request("The request contains characters that are not allowed (such as NUL).")
            }
            StoreError::Unavailable(d) => {
                tracing::error!(error = %d, "database unavailable");
                Error::new(ErrorKind::Unavailable, "The database is not reachable. Please try again later.")
            }
            StoreError::Other(d) => Error::internal(d),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
