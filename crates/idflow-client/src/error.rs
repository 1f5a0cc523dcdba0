//! Errors: one variant per situation a caller handles differently, each carrying the server's
//! v1 error (`AVNOLOGY_AUTH_xxx` code, HTTP status, message and the flow's messages).

use crate::types::{Flow, Message};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The v1 error the server answered with.
///
/// Every variant of [`Error`] that comes from the server carries one of these.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The v1 code, e.g. `"AVNOLOGY_AUTH_011"`.
    pub code: String,
    /// The HTTP status, e.g. `400`.
    pub status: u16,
    /// A short message for the code, e.g. `"New password too weak"`.
    pub message: String,
    /// Why the request failed, in a sentence for a developer (or user).
    pub reason: String,
    /// The server's request id, for correlating with its logs.
    pub request_id: String,
    /// Code-specific details, e.g. `reason` and `login_url` for `AVNOLOGY_AUTH_102`.
    pub details: Map<String, Value>,
    /// The flow with its field messages, when the error concerns a form: render it again.
    pub flow: Option<Box<Flow>>,
}

impl ApiError {
    /// The flow's messages (form level and per field), e.g. the reason a password was
    /// rejected. Empty when the error does not concern a form.
    pub fn messages(&self) -> Vec<Message> {
        self.flow.as_ref().map(|f| f.messages()).unwrap_or_default()
    }

    /// The flow's error messages only.
    pub fn error_messages(&self) -> Vec<Message> {
        self.flow.as_ref().map(|f| f.errors()).unwrap_or_default()
    }

    /// A string detail, e.g. `detail("login_url")`.
    pub fn detail(&self, key: &str) -> Option<&str> {
        self.details.get(key).and_then(Value::as_str)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (HTTP {}): {}", self.code, self.status, self.message)?;
        if !self.reason.is_empty() {
            write!(f, ": {}", self.reason)?;
        }
        Ok(())
    }
}

/// Everything that can go wrong in a call.
///
/// Variants that come from the server carry the [`ApiError`] (code, status, message, the
/// flow's messages); [`Error::api`] returns it for any of them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `AVNOLOGY_AUTH_005` (401): no session token, or the token is unknown, expired or revoked,
    /// or the account is disabled. Sign in again.
    #[error("session invalid: {0}")]
    Unauthorized(Box<ApiError>),

    /// `AVNOLOGY_AUTH_102` with `details.reason = "session_refresh_required"` (403): the change
    /// needs a recent sign-in. Sign in again with
    /// [`Client::refresh_login`](crate::Client::refresh_login) (the server's v1 login flow at
    /// `login_url`), then repeat the change.
    #[error("re-authentication required (sign in again at {login_url}): {error}")]
    ReauthenticationRequired {
        /// The v1 login-flow URL with `refresh=true`.
        login_url: String,
        /// The server's error.
        error: Box<ApiError>,
    },

    /// `AVNOLOGY_AUTH_102` with `details.reason = "session_aal2_required"` (403): the account
    /// has a second factor and the session has not used it. Complete it with
    /// [`Client::login_totp`](crate::Client::login_totp) (the v1 login flow at `login_url`).
    #[error("second factor required (continue at {login_url}): {error}")]
    SecondFactorRequired {
        /// The v1 login-flow URL with `aal=aal2`.
        login_url: String,
        /// The server's error.
        error: Box<ApiError>,
    },

    /// `AVNOLOGY_AUTH_011` (400): the new password was rejected by the password policy. The
    /// reason is in the flow's messages (e.g. `4000032` too short, `4000034` breached).
    #[error("new password too weak: {0}")]
    WeakPassword(Box<ApiError>),

    /// `AVNOLOGY_AUTH_007` (400): the TOTP code is wrong or missing.
    #[error("invalid TOTP code: {0}")]
    InvalidTotpCode(Box<ApiError>),

    /// `AVNOLOGY_AUTH_008` (400): a recovery code or security key assertion was not accepted.
    #[error("invalid second factor: {0}")]
    InvalidSecondFactor(Box<ApiError>),

    /// `AVNOLOGY_AUTH_006` (400): the identifier or password is wrong (sign-in).
    #[error("invalid credentials: {0}")]
    InvalidCredentials(Box<ApiError>),

    /// `AVNOLOGY_AUTH_009` (400): the flow expired. Start a new one (the server may already
    /// have made one: `use_flow_id`).
    #[error("flow expired: {error}")]
    FlowExpired {
        /// A fresh flow the server created in place of the expired one, if any.
        use_flow_id: Option<String>,
        /// The server's error.
        error: Box<ApiError>,
    },

    /// `AVNOLOGY_AUTH_010` (400): the profile traits do not fit the identity schema; the field
    /// messages are in the flow.
    #[error("invalid profile: {0}")]
    InvalidTraits(Box<ApiError>),

    /// `AVNOLOGY_AUTH_012` (409): the identifier (e.g. the email address) is used by another
    /// account.
    #[error("identifier already in use: {0}")]
    IdentifierTaken(Box<ApiError>),

    /// `AVNOLOGY_AUTH_004` (404): the flow does not exist or belongs to someone else.
    #[error("not found: {0}")]
    NotFound(Box<ApiError>),

    /// `AVNOLOGY_AUTH_029` (429): too many attempts; retry after `retry_after` seconds.
    #[error("too many attempts: {error}")]
    RateLimited {
        /// The `Retry-After` header, in seconds.
        retry_after: Option<u64>,
        /// The server's error.
        error: Box<ApiError>,
    },

    /// Any other v1 error (`AVNOLOGY_AUTH_001` malformed request, `003` CSRF, `013`
    /// `return_to` not allowed, `500` internal error, …).
    #[error("{0}")]
    Api(Box<ApiError>),

    /// The request could not be sent or the response not read (connection refused, TLS, …).
    #[error("HTTP transport error: {0}")]
    Http(#[from] reqwest::Error),

    /// The server answered something that is not a v1 response (e.g. a proxy's error page).
    #[error("unexpected response (HTTP {status}): {detail}")]
    UnexpectedResponse {
        /// The HTTP status.
        status: u16,
        /// What was wrong, with the start of the body.
        detail: String,
    },

    /// The base URL given to [`Client::new`](crate::Client::new) is not an absolute
    /// `http(s)://` URL.
    #[error("invalid base URL {url:?}: {reason}")]
    InvalidBaseUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// [`Auth::confirm_totp`](crate::Auth::confirm_totp) was called without an enrolment
    /// started by [`Auth::enroll_totp`](crate::Auth::enroll_totp) on this client.
    #[error("no TOTP enrolment in progress: call enroll_totp() first")]
    NoTotpEnrollment,

    /// [`Auth::enroll_totp`](crate::Auth::enroll_totp) was called for an account that already
    /// has an authenticator app; remove it first with
    /// [`Auth::remove_totp`](crate::Auth::remove_totp).
    #[error("an authenticator app is already set up for this account")]
    TotpAlreadyEnrolled,
}

impl Error {
    /// The server's error, for every variant that comes from the server.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Unauthorized(e)
            | Error::WeakPassword(e)
            | Error::InvalidTotpCode(e)
            | Error::InvalidSecondFactor(e)
            | Error::InvalidCredentials(e)
            | Error::InvalidTraits(e)
            | Error::IdentifierTaken(e)
            | Error::NotFound(e)
            | Error::Api(e) => Some(e),
            Error::ReauthenticationRequired { error, .. }
            | Error::SecondFactorRequired { error, .. }
            | Error::FlowExpired { error, .. }
            | Error::RateLimited { error, .. } => Some(error),
            Error::Http(_)
            | Error::UnexpectedResponse { .. }
            | Error::InvalidBaseUrl { .. }
            | Error::NoTotpEnrollment
            | Error::TotpAlreadyEnrolled => None,
        }
    }

    /// The v1 code (`"AVNOLOGY_AUTH_xxx"`), when the server answered with an error.
    pub fn code(&self) -> Option<&str> {
        self.api().map(|e| e.code.as_str())
    }

    /// The HTTP status of the response, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::UnexpectedResponse { status, .. } => Some(*status),
            Error::Http(e) => e.status().map(|s| s.as_u16()),
            _ => self.api().map(|e| e.status),
        }
    }

    /// The flow's messages (empty when the error does not concern a form).
    pub fn messages(&self) -> Vec<Message> {
        self.api().map(ApiError::messages).unwrap_or_default()
    }

    /// The flow to render again, when the error concerns a form.
    pub fn flow(&self) -> Option<&Flow> {
        self.api().and_then(|e| e.flow.as_deref())
    }

    /// The login URL to continue at, for the two step-up variants.
    pub fn login_url(&self) -> Option<&str> {
        match self {
            Error::ReauthenticationRequired { login_url, .. } | Error::SecondFactorRequired { login_url, .. } => {
                Some(login_url)
            }
            _ => None,
        }
    }
}

/// The wire envelope `{ "error": {…}, "continue_flow": {…} }`.
#[derive(Deserialize)]
struct Envelope {
    error: WireError,
    #[serde(default)]
    continue_flow: Option<Value>,
}

#[derive(Deserialize)]
struct WireError {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    details: Map<String, Value>,
}

/// Build the error for a non-success response.
pub(crate) fn from_response(status: u16, retry_after: Option<u64>, body: &[u8]) -> Error {
    let Ok(env) = serde_json::from_slice::<Envelope>(body) else {
        let text = String::from_utf8_lossy(body);
        let start: String = text.chars().take(200).collect();
        return Error::UnexpectedResponse { status, detail: format!("not a v1 error envelope: {start:?}") };
    };
    let flow = env.continue_flow.and_then(|f| serde_json::from_value::<Flow>(f).ok()).map(Box::new);
    let e = Box::new(ApiError {
        code: env.error.code,
        status,
        message: env.error.message,
        reason: env.error.reason,
        request_id: env.error.request_id,
        details: env.error.details,
        flow,
    });
    let login_url = e.detail("login_url").unwrap_or_default().to_string();
    match e.code.as_str() {
        "AVNOLOGY_AUTH_005" => Error::Unauthorized(e),
        "AVNOLOGY_AUTH_102" if e.detail("reason") == Some("session_aal2_required") => {
            Error::SecondFactorRequired { login_url, error: e }
        }
        "AVNOLOGY_AUTH_102" => Error::ReauthenticationRequired { login_url, error: e },
        "AVNOLOGY_AUTH_011" => Error::WeakPassword(e),
        "AVNOLOGY_AUTH_007" => Error::InvalidTotpCode(e),
        "AVNOLOGY_AUTH_008" => Error::InvalidSecondFactor(e),
        "AVNOLOGY_AUTH_006" => Error::InvalidCredentials(e),
        "AVNOLOGY_AUTH_009" => {
            let use_flow_id = e.detail("use_flow_id").map(str::to_string);
            Error::FlowExpired { use_flow_id, error: e }
        }
        "AVNOLOGY_AUTH_010" => Error::InvalidTraits(e),
        "AVNOLOGY_AUTH_012" => Error::IdentifierTaken(e),
        "AVNOLOGY_AUTH_004" => Error::NotFound(e),
        "AVNOLOGY_AUTH_029" => Error::RateLimited { retry_after, error: e },
        _ => Error::Api(e),
    }
}
