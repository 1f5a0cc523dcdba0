//! A Rust client for the **v1 API** of idflow, a self-hosted
//! identity server: sign-in, registration, sessions, and account settings (profile, password,
//! TOTP authenticator apps).
//!
//! The v1 API works with session tokens (`Authorization: Bearer <token>`). Every settings
//! operation of this crate creates a settings flow (`GET /v1/flows/settings`) and submits one
//! method to it (`POST /v1/flows/settings/{id}:submit`), exactly as the API documentation
//! describes; the low-level calls are public too.
//!
//! # Example
//!
//! ```no_run
//! use idflow_client::{Client, Error};
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), Error> {
//! let client = Client::new("https://id.example.com")?;
//!
//! // Sign in and use the session token for the following calls.
//! let signed_in = client.login("ada@example.com", "correct horse battery staple").await?;
//! let client = client.with_token(signed_in.session_token);
//!
//! // Update the profile.
//! client.auth().update_profile(json!({"email": "ada@example.com", "name": {"first": "Ada"}})).await?;
//!
//! // Change the password; recent sign-in required.
//! // (refresh_login below switches the client to the rotated session token by itself)
//! match client.auth().change_password("a much better passphrase").await {
//!     Ok(_) => println!("password changed"),
//!     Err(Error::WeakPassword(e)) => {
//!         for m in e.error_messages() {
//!             println!("rejected: {}", m.text);
//!         }
//!     }
//!     Err(Error::ReauthenticationRequired { .. }) => {
//!         client.refresh_login("ada@example.com", "correct horse battery staple").await?;
//!         client.auth().change_password("a much better passphrase").await?;
//!     }
//!     Err(e) => return Err(e),
//! }
//!
//! // Add an authenticator app: show the QR code, then confirm a code from the app.
//! let enrollment = client.auth().enroll_totp().await?;
//! std::fs::write("totp.png", &enrollment.qr_png).ok();
//! println!("or enter the key {} / open {}", enrollment.secret, enrollment.otpauth_url);
//! client.auth().confirm_totp("123456").await?;
//!
//! client.logout().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Errors
//!
//! Every call returns [`Error`]. Server errors carry an [`ApiError`] with the v1 code
//! (`AVNOLOGY_AUTH_xxx`), the HTTP status, the message and — for form errors — the flow with
//! its field messages. The situations a caller handles differently have their own variants:
//! [`Error::Unauthorized`] (005), [`Error::ReauthenticationRequired`] and
//! [`Error::SecondFactorRequired`] (102, carrying the login URL), [`Error::WeakPassword`]
//! (011), [`Error::InvalidTotpCode`] (007), [`Error::FlowExpired`] (009), and more.
//!
//! # Cookies and CSRF
//!
//! This client never stores cookies; it authenticates with the session token only, for which
//! the server needs no CSRF token. It still sends each flow's `csrf_token` back, as the API
//! documentation's examples do.

#![warn(missing_docs)]

mod auth;
mod error;
mod types;

pub use auth::Auth;
pub use error::{ApiError, Error};
pub use types::{
    AccountDeletion, ActivityEntry, ActivityPage, Authenticated, Flow, Identity, Message, Node, Recovered, Registered,
    Session, TotpEnrollment, Ui,
};

use reqwest::header::{ACCEPT, AUTHORIZATION, RETRY_AFTER};
use reqwest::{RequestBuilder, Url};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// A convenient alias for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A client of one idflow server's v1 API, optionally holding a session token.
///
/// Cloning is cheap (the HTTP connection pool is shared).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    /// The session token; shared by clones, because the server may rotate it (refresh and
    /// second-factor sign-in issue a new token for the same session).
    token: Arc<Mutex<Option<String>>>,
    /// The settings flow of the TOTP enrolment started last (its secret is bound to it).
    pending_totp: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base.as_str())
            .field("token", &self.token().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the server at `base_url` (e.g. `https://id.example.com`; a path prefix such
    /// as `https://example.com/auth` is kept), without a session token.
    ///
    /// # Errors
    /// [`Error::InvalidBaseUrl`] when `base_url` is not an absolute `http` or `https` URL;
    /// [`Error::Http`] when the HTTP client cannot be initialised (TLS setup).
    pub fn new(base_url: impl AsRef<str>) -> Result<Self> {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        Self::with_http_client(base_url, http)
    }

    /// Like [`Client::new`], with your own configured [`reqwest::Client`] (timeouts, proxy,
    /// root certificates, …).
    ///
    /// # Errors
    /// [`Error::InvalidBaseUrl`] when `base_url` is not an absolute `http` or `https` URL.
    pub fn with_http_client(base_url: impl AsRef<str>, http: reqwest::Client) -> Result<Self> {
        let raw = base_url.as_ref();
        let invalid = |reason: &str| Error::InvalidBaseUrl { url: raw.to_string(), reason: reason.to_string() };
        let mut base = Url::parse(raw).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if base.cannot_be_a_base() || base.host_str().is_none() {
            return Err(invalid("the URL must name a host"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(invalid("the URL must not have a query or fragment"));
        }
        let path = base.path().trim_end_matches('/').to_string();
        base.set_path(&path);
        Ok(Client { http, base, token: Arc::new(Mutex::new(None)), pending_totp: Arc::new(Mutex::new(None)) })
    }

    /// This client with a session token (from [`Client::login`], [`Client::register`] or
    /// elsewhere), sent as `Authorization: Bearer <token>` on every call. The returned client
    /// has its own token state (clones of it share it; the original is unchanged).
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Arc::new(Mutex::new(Some(token.into())));
        self.pending_totp = Arc::new(Mutex::new(None));
        self
    }

    /// The session token this client sends, if any. It changes after
    /// [`Client::refresh_login`] and [`Client::login_totp`], which rotate it.
    pub fn token(&self) -> Option<String> {
        match self.token.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_token(&self, token: String) {
        match self.token.lock() {
            Ok(mut g) => *g = Some(token),
            Err(poisoned) => *poisoned.into_inner() = Some(token),
        }
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        self.base.as_str()
    }

    /// The account settings operations (profile, password, TOTP).
    pub fn auth(&self) -> Auth<'_> {
        Auth::new(self)
    }

    // ---- sign-in, registration, sessions -----------------------------------------------

    /// Sign in with an identifier (e.g. the email address) and password through the v1 login
    /// flow. Use the returned token with [`Client::with_token`].
    ///
    /// If the account has a second factor, the returned session is `aal1`; settings calls then
    /// fail with [`Error::SecondFactorRequired`] until [`Client::login_totp`] completes it.
    ///
    /// # Errors
    /// [`Error::InvalidCredentials`] for a wrong identifier or password;
    /// [`Error::RateLimited`] after too many attempts; other [`Error`]s as for any call.
    pub async fn login(&self, identifier: &str, password: &str) -> Result<Authenticated> {
        let flow = self.create_login_flow(&[]).await?;
        self.submit_login_flow(&flow.id, "password", json!({"identifier": identifier, "password": password})).await
    }

    /// Sign in again with the password for the session this client holds (a "refresh"), so
    /// that changes needing a recent sign-in are allowed again. This is what to do on
    /// [`Error::ReauthenticationRequired`].
    ///
    /// The session stays the same, but the server issues a new session token for it (the old
    /// one stops working): this client (and its clones) switch to the new token, which is
    /// also in the result.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] without a valid session token; [`Error::InvalidCredentials`]
    /// for a wrong password.
    pub async fn refresh_login(&self, identifier: &str, password: &str) -> Result<Authenticated> {
        let flow = self.create_login_flow(&[("refresh", "true")]).await?;
        let done = self
            .submit_login_flow(&flow.id, "password", json!({"identifier": identifier, "password": password}))
            .await?;
        self.adopt_token(&done);
        Ok(done)
    }

    /// Complete the second factor of the session this client holds with a code from the
    /// authenticator app. This is what to do on [`Error::SecondFactorRequired`]. The session
    /// becomes `aal2`; as with [`Client::refresh_login`], its token is rotated and this client
    /// switches to the new one.
    ///
    /// # Errors
    /// [`Error::InvalidTotpCode`] for a wrong code; [`Error::Unauthorized`] without a valid
    /// session token; [`Error::RateLimited`] after too many attempts.
    pub async fn login_totp(&self, code: &str) -> Result<Authenticated> {
        let flow = self.create_login_flow(&[("aal", "aal2")]).await?;
        let done = self.submit_login_flow(&flow.id, "totp", json!({"totp_code": code})).await?;
        self.adopt_token(&done);
        Ok(done)
    }

    /// Use the token of a re-authentication of this client's own session.
    fn adopt_token(&self, done: &Authenticated) {
        if !done.session_token.is_empty() {
            self.set_token(done.session_token.clone());
        }
    }

    /// Create an account with `traits` (e.g. `{"email": "…"}`; the server's identity schema
    /// decides which traits exist) and a password. By default the server signs the new user in
    /// and the result carries a session token.
    ///
    /// # Errors
    /// [`Error::WeakPassword`] when the password policy rejects the password;
    /// [`Error::IdentifierTaken`] when the identifier is in use; [`Error::InvalidTraits`] when
    /// the traits do not fit the schema.
    pub async fn register(&self, traits: Value, password: &str) -> Result<Registered> {
        let url = self.endpoint(&["v1", "flows", "registration"]);
        let flow: Flow = self.call(self.http.get(url)).await?;
        let url = self.endpoint(&["v1", "flows", "registration", &format!("{}:submit", flow.id)]);
        let body = json!({"method": "password", "body": {"traits": traits, "password": password}});
        self.call(self.http.post(url).json(&body)).await
    }

    /// The session this client's token stands for (`GET /v1/sessions/current`).
    ///
    /// # Errors
    /// [`Error::Unauthorized`] when there is no valid session;
    /// [`Error::SecondFactorRequired`] when the server requires the second factor first.
    pub async fn get_session(&self) -> Result<Session> {
        let url = self.endpoint(&["v1", "sessions", "current"]);
        self.call(self.http.get(url)).await
    }

    /// Sign out: revoke the session this client's token stands for
    /// (`DELETE /v1/sessions/current`). The token is useless afterwards.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] when there is no valid session.
    pub async fn logout(&self) -> Result<()> {
        let url = self.endpoint(&["v1", "sessions", "current"]);
        let (status, retry_after, bytes) = self.send(self.http.delete(url)).await?;
        if (200..300).contains(&status) { Ok(()) } else { Err(error::from_response(status, retry_after, &bytes)) }
    }

    // ---- settings flows (low level) ----------------------------------------------------

    /// Create a settings flow for the signed-in user (`GET /v1/flows/settings`).
    /// `return_to` must be on the server's allow-list.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] without a valid session; [`Error::SecondFactorRequired`] when
    /// the account has a second factor the session has not used; [`Error::Api`] with
    /// `AVNOLOGY_AUTH_013` when `return_to` is not allowed.
    pub async fn create_settings_flow(&self, return_to: Option<&str>) -> Result<Flow> {
        let mut url = self.endpoint(&["v1", "flows", "settings"]);
        if let Some(rt) = return_to {
            url.query_pairs_mut().append_pair("return_to", rt);
        }
        self.call(self.http.get(url)).await
    }

    /// Fetch a settings flow of the signed-in user (`GET /v1/flows/settings/{id}`).
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown flow or one of another user; [`Error::FlowExpired`]
    /// when it expired; [`Error::Unauthorized`] without a valid session.
    pub async fn get_settings_flow(&self, flow_id: &str) -> Result<Flow> {
        let url = self.endpoint(&["v1", "flows", "settings", flow_id]);
        self.call(self.http.get(url)).await
    }

    /// Submit one method to a settings flow (`POST /v1/flows/settings/{id}:submit` with
    /// `{"method": method, "body": body}`) and return the resulting flow (`continue_flow`).
    ///
    /// `method` is `"profile"` (body `{"traits": {…}}`), `"password"` (`{"password": "…"}`),
    /// `"totp"` (`{}` to start enrolment, `{"totp_code": "…"}` to confirm it,
    /// `{"totp_unlink": true}` to remove it) or `"lookup_secret"` (recovery codes:
    /// `{"lookup_secret_regenerate": true}`, then `{"lookup_secret_confirm": true}`, …).
    ///
    /// # Errors
    /// The form errors of the method ([`Error::WeakPassword`], [`Error::InvalidTotpCode`],
    /// [`Error::InvalidTraits`], …) carry the flow with field messages; see [`Error`].
    pub async fn submit_settings_flow(&self, flow_id: &str, method: &str, body: Value) -> Result<Flow> {
        let url = self.endpoint(&["v1", "flows", "settings", &format!("{flow_id}:submit")]);
        let out: ContinueFlow = self.call(self.http.post(url).json(&json!({"method": method, "body": body}))).await?;
        Ok(out.continue_flow)
    }

    // ---- recovery and verification -------------------------------------------------------

    /// Start account recovery ("forgot password"): the server mails a six-digit code to `email`
    /// when an account has it as its recovery address (the answer is the same either way, so
    /// it reveals nothing). Returns the recovery flow (`state` `"sent_email"`); pass its id and
    /// the code from the mail to [`Client::recover_account`].
    ///
    /// # Errors
    /// [`Error::Api`] with `AVNOLOGY_AUTH_001` when recovery is disabled on the server;
    /// [`Error::InvalidTraits`] for a malformed address.
    pub async fn send_recovery_code(&self, email: &str) -> Result<Flow> {
        self.code_flow("recovery", json!({"email": email})).await
    }

    /// Recover the account with the mailed code: the server signs the user in (a session that
    /// may change the password right away, e.g. with `auth().change_password`, and that is
    /// `aal1` only: an account with a second factor must complete [`Client::login_totp`]
    /// first). This client switches to the new session token, which is also in the result.
    /// By default the account's other sessions are signed out.
    ///
    /// # Errors
    /// [`Error::InvalidSecondFactor`] (`AVNOLOGY_AUTH_008`) when the code is wrong or expired,
    /// or was tried too often (then the error's flow is a new one: send a new code);
    /// [`Error::FlowExpired`] / [`Error::NotFound`] for an expired or unknown flow.
    pub async fn recover_account(&self, flow_id: &str, code: &str) -> Result<Recovered> {
        let url = self.endpoint(&["v1", "flows", "recovery", &format!("{flow_id}:submit")]);
        let body = json!({"method": "code", "body": {"code": code}});
        let done: Recovered = self.call(self.http.post(url).json(&body)).await?;
        if !done.session_token.is_empty() {
            self.set_token(done.session_token.clone());
        }
        Ok(done)
    }

    /// Ask for a verification code for `email` (an address of an account; the answer is the
    /// same for unknown addresses). Returns the verification flow (`state` `"sent_email"`);
    /// pass its id and the code from the mail to [`Client::verify_address`]. A server with
    /// verification enabled also mails a code on registration and on an address change.
    ///
    /// # Errors
    /// [`Error::Api`] with `AVNOLOGY_AUTH_001` when verification is disabled on the server.
    pub async fn send_verification_code(&self, email: &str) -> Result<Flow> {
        self.code_flow("verification", json!({"email": email})).await
    }

    /// Verify an address with the mailed code: returns the flow in `state`
    /// `"passed_challenge"`; the address is then `verified`.
    ///
    /// # Errors
    /// [`Error::InvalidSecondFactor`] (`AVNOLOGY_AUTH_008`) when the code is wrong or expired;
    /// [`Error::FlowExpired`] / [`Error::NotFound`] for an expired or unknown flow.
    pub async fn verify_address(&self, flow_id: &str, code: &str) -> Result<Flow> {
        let url = self.endpoint(&["v1", "flows", "verification", &format!("{flow_id}:submit")]);
        let body = json!({"method": "code", "body": {"code": code}});
        let out: ContinueFlow = self.call(self.http.post(url).json(&body)).await?;
        Ok(out.continue_flow)
    }

    // ---- the account ---------------------------------------------------------------------

    /// The signed-in user's activity log, newest first (`GET /v1/account/activity`): up to
    /// `page_size` entries (1–1000) after `page_token` (from the previous page).
    ///
    /// # Errors
    /// [`Error::Unauthorized`] without a valid session; [`Error::Api`] for a malformed token.
    pub async fn activity(&self, page_size: u32, page_token: Option<&str>) -> Result<ActivityPage> {
        let mut url = self.endpoint(&["v1", "account", "activity"]);
        url.query_pairs_mut().append_pair("page_size", &page_size.to_string());
        if let Some(t) = page_token {
            url.query_pairs_mut().append_pair("page_token", t);
        }
        self.call(self.http.get(url)).await
    }

    /// Everything stored about the signed-in user (traits, addresses, credential kinds with
    /// dates, sessions, activity) as JSON (`GET /v1/account/export`); never a secret.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] without a valid session; [`Error::SecondFactorRequired`] when
    /// the account has a second factor the session has not used.
    pub async fn export_account(&self) -> Result<Value> {
        self.call(self.http.get(self.endpoint(&["v1", "account", "export"]))).await
    }

    /// Whether the signed-in user's account is scheduled for deletion
    /// (`GET /v1/account/deletion`). Deletion itself is a settings change (method
    /// `delete_account`, see [`Client::submit_settings_flow`]).
    ///
    /// # Errors
    /// [`Error::Unauthorized`] without a valid session.
    pub async fn account_deletion(&self) -> Result<AccountDeletion> {
        self.call(self.http.get(self.endpoint(&["v1", "account", "deletion"]))).await
    }

    /// Cancel a scheduled deletion of the signed-in user's account
    /// (`DELETE /v1/account/deletion`).
    ///
    /// # Errors
    /// [`Error::Unauthorized`] without a valid session.
    pub async fn cancel_account_deletion(&self) -> Result<AccountDeletion> {
        self.call(self.http.delete(self.endpoint(&["v1", "account", "deletion"]))).await
    }

    /// Create a recovery or verification flow and submit `body` with the code method.
    async fn code_flow(&self, kind: &str, body: Value) -> Result<Flow> {
        let flow: Flow = self.call(self.http.get(self.endpoint(&["v1", "flows", kind]))).await?;
        let url = self.endpoint(&["v1", "flows", kind, &format!("{}:submit", flow.id)]);
        let out: ContinueFlow = self.call(self.http.post(url).json(&json!({"method": "code", "body": body}))).await?;
        Ok(out.continue_flow)
    }

    // ---- internals ---------------------------------------------------------------------

    async fn create_login_flow(&self, query: &[(&str, &str)]) -> Result<Flow> {
        let mut url = self.endpoint(&["v1", "flows", "login"]);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.call(self.http.get(url)).await
    }

    async fn submit_login_flow(&self, flow_id: &str, method: &str, body: Value) -> Result<Authenticated> {
        let url = self.endpoint(&["v1", "flows", "login", &format!("{flow_id}:submit")]);
        self.call(self.http.post(url).json(&json!({"method": method, "body": body}))).await
    }

    pub(crate) fn set_pending_totp(&self, flow_id: Option<String>) {
        match self.pending_totp.lock() {
            Ok(mut g) => *g = flow_id,
            Err(poisoned) => *poisoned.into_inner() = flow_id,
        }
    }

    pub(crate) fn pending_totp(&self) -> Option<String> {
        match self.pending_totp.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The base URL with path segments appended (each percent-encoded as needed).
    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut p) = url.path_segments_mut() {
            p.pop_if_empty().extend(segments);
        }
        url
    }

    async fn send(&self, rb: RequestBuilder) -> Result<(u16, Option<u64>, Vec<u8>)> {
        let mut rb = rb.header(ACCEPT, "application/json");
        if let Some(t) = self.token() {
            rb = rb.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        let resp = rb.send().await?;
        let status = resp.status().as_u16();
        let retry_after =
            resp.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|s| s.trim().parse::<u64>().ok());
        let bytes = resp.bytes().await?;
        Ok((status, retry_after, bytes.to_vec()))
    }

    async fn call<T: DeserializeOwned>(&self, rb: RequestBuilder) -> Result<T> {
        let (status, retry_after, bytes) = self.send(rb).await?;
        if !(200..300).contains(&status) {
            return Err(error::from_response(status, retry_after, &bytes));
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::UnexpectedResponse {
            status,
            detail: format!("the response body could not be read: {e}"),
        })
    }
}

#[derive(serde::Deserialize)]
struct ContinueFlow {
    continue_flow: Flow,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_is_validated_and_normalised() {
        assert!(matches!(Client::new("id.example.com"), Err(Error::InvalidBaseUrl { .. })));
        assert!(matches!(Client::new("ftp://id.example.com"), Err(Error::InvalidBaseUrl { .. })));
        assert!(matches!(Client::new("https://id.example.com/?x=1"), Err(Error::InvalidBaseUrl { .. })));
        let Ok(c) = Client::new("https://id.example.com/auth/") else { panic!("valid URL rejected") };
        assert_eq!(
            c.endpoint(&["v1", "flows", "settings", "abc:submit"]).as_str(),
            "https://id.example.com/auth/v1/flows/settings/abc:submit"
        );
        let Ok(c) = Client::new("http://127.0.0.1:4433") else { panic!("valid URL rejected") };
        assert_eq!(c.endpoint(&["v1", "sessions", "current"]).as_str(), "http://127.0.0.1:4433/v1/sessions/current");
    }

    #[test]
    fn debug_redacts_the_token() {
        let Ok(c) = Client::new("https://id.example.com") else { panic!("valid URL rejected") };
        let c = c.with_token("idf_st_secret");
        assert!(!format!("{c:?}").contains("idf_st_secret"));
    }

    #[test]
    fn error_envelope_maps_to_variants() {
        let body = br#"{"error":{"code":"AVNOLOGY_AUTH_102","status":403,"message":"Step-up authentication required","reason":"r","request_id":"x","details":{"reason":"session_refresh_required","login_url":"https://id.example.com/v1/flows/login?refresh=true"}}}"#;
        let e = error::from_response(403, None, body);
        assert!(matches!(e, Error::ReauthenticationRequired { .. }));
        assert_eq!(e.login_url(), Some("https://id.example.com/v1/flows/login?refresh=true"));
        assert_eq!(e.code(), Some("AVNOLOGY_AUTH_102"));
        assert_eq!(e.status(), Some(403));

        let body = br#"{"error":{"code":"AVNOLOGY_AUTH_102","status":403,"message":"m","reason":"r","details":{"reason":"session_aal2_required","login_url":"u"}}}"#;
        assert!(matches!(error::from_response(403, None, body), Error::SecondFactorRequired { .. }));

        let body = br#"{"error":{"code":"AVNOLOGY_AUTH_029","status":429,"message":"m","reason":"r","details":{}}}"#;
        assert!(matches!(error::from_response(429, Some(30), body), Error::RateLimited { retry_after: Some(30), .. }));

        let e = error::from_response(502, None, b"<html>bad gateway</html>");
        assert!(matches!(e, Error::UnexpectedResponse { status: 502, .. }));
    }

    #[test]
    fn message_ids_may_be_strings_or_numbers() {
        let m: Message = serde_json::from_value(json!({"id": "1050001", "text": "t", "type": "success"}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.id, "1050001");
        let m: Message = serde_json::from_value(json!({"id": 1050001, "text": "t", "type": "success"}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.id, "1050001");
    }
}
