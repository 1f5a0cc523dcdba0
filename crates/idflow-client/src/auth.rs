//! Account settings: each operation creates a settings flow and submits one method to it.

use crate::types::{Flow, Node, TotpEnrollment};
use crate::{Client, Error, Result};
use base64::Engine as _;
use serde_json::{Value, json};

/// The account settings of the signed-in user, from [`Client::auth`].
///
/// Every operation creates a settings flow (`GET /v1/flows/settings`) and submits one method
/// to it (`POST /v1/flows/settings/{id}:submit`). On success it returns the flow in state
/// `"success"`.
///
/// Changing the password or the second factor needs a recent sign-in; otherwise the call fails
/// with [`Error::ReauthenticationRequired`] (see [`Client::refresh_login`]).
#[derive(Debug, Clone, Copy)]
pub struct Auth<'a> {
    client: &'a Client,
}

impl<'a> Auth<'a> {
    pub(crate) fn new(client: &'a Client) -> Self {
        Auth { client }
    }

    /// Create a settings flow and submit `method` with `body` (plus the flow's CSRF token).
    async fn create_and_submit(&self, method: &str, body: Value) -> Result<Flow> {
        let flow = self.client.create_settings_flow(None).await?;
        self.submit(&flow, method, body).await
    }

    async fn submit(&self, flow: &Flow, method: &str, mut body: Value) -> Result<Flow> {
        if let Some(m) = body.as_object_mut() {
            m.insert("csrf_token".into(), json!(flow.csrf_token()));
        }
        self.client.submit_settings_flow(&flow.id, method, body).await
    }

    /// Replace the profile traits (e.g. `{"email": "…", "name": {"first": "…"}}`; the whole
    /// set, as the identity schema defines it).
    ///
    /// # Errors
    /// [`Error::InvalidTraits`] when the traits do not fit the schema (field messages in
    /// [`Error::messages`]); [`Error::IdentifierTaken`] when the new email address belongs to
    /// another account; [`Error::ReauthenticationRequired`] when a changed identifier needs a
    /// recent sign-in.
    pub async fn update_profile(&self, traits: Value) -> Result<Flow> {
        self.create_and_submit("profile", json!({ "traits": traits })).await
    }

    /// Set a new password.
    ///
    /// # Errors
    /// [`Error::WeakPassword`] when the password policy rejects it (the reason is in
    /// [`Error::messages`]); [`Error::ReauthenticationRequired`] when the sign-in is too old.
    pub async fn change_password(&self, new_password: &str) -> Result<Flow> {
        self.create_and_submit("password", json!({ "password": new_password })).await
    }

    /// Start adding an authenticator app: returns the QR code (PNG), the `otpauth://` URI and
    /// the base32 secret to show the user. Confirm with [`Auth::confirm_totp`] and a code from
    /// the app; the secret stays bound to this enrolment's flow until then.
    ///
    /// # Errors
    /// [`Error::TotpAlreadyEnrolled`] when the account already has an authenticator app;
    /// [`Error::ReauthenticationRequired`] when the sign-in is too old;
    /// [`Error::UnexpectedResponse`] when the server's answer lacks the QR code or secret.
    pub async fn enroll_totp(&self) -> Result<TotpEnrollment> {
        let flow = self.client.create_settings_flow(None).await?;
        let flow = self.submit(&flow, "totp", json!({})).await?;
        if flow.node("totp_unlink").is_some() {
            return Err(Error::TotpAlreadyEnrolled);
        }
        let enrollment = read_enrollment(flow)?;
        self.client.set_pending_totp(Some(enrollment.flow_id.clone()));
        Ok(enrollment)
    }

    /// Finish the enrolment started last by [`Auth::enroll_totp`] on this client with a code
    /// from the authenticator app. A wrong code can be retried.
    ///
    /// # Errors
    /// [`Error::InvalidTotpCode`] for a wrong code; [`Error::NoTotpEnrollment`] when no
    /// enrolment was started; [`Error::FlowExpired`] when the enrolment is too old (start
    /// again).
    pub async fn confirm_totp(&self, code: &str) -> Result<Flow> {
        let flow_id = self.client.pending_totp().ok_or(Error::NoTotpEnrollment)?;
        self.confirm_totp_in(&flow_id, code).await
    }

    /// Finish the enrolment whose flow is `flow_id` (from [`TotpEnrollment::flow_id`]) with a
    /// code from the authenticator app.
    ///
    /// # Errors
    /// As [`Auth::confirm_totp`].
    pub async fn confirm_totp_in(&self, flow_id: &str, code: &str) -> Result<Flow> {
        // Token-authenticated flows need no CSRF token, so the flow need not be fetched first.
        let done = self.client.submit_settings_flow(flow_id, "totp", json!({ "totp_code": code })).await?;
        if self.client.pending_totp().as_deref() == Some(flow_id) {
            self.client.set_pending_totp(None);
        }
        Ok(done)
    }

    /// Remove the authenticator app from the account.
    ///
    /// # Errors
    /// [`Error::InvalidTotpCode`] when the account has no authenticator app;
    /// [`Error::ReauthenticationRequired`] when the sign-in is too old.
    pub async fn remove_totp(&self) -> Result<Flow> {
        self.create_and_submit("totp", json!({ "totp_unlink": true })).await
    }
}

/// Pull the QR code, key URI and secret out of a flow showing the TOTP enrolment form.
fn read_enrollment(flow: Flow) -> Result<TotpEnrollment> {
    let bad = |detail: &str| Error::UnexpectedResponse { status: 200, detail: detail.to_string() };
    let src = flow.node("totp_qr").and_then(Node::src).ok_or_else(|| bad("the flow has no totp_qr image"))?;
    let b64 = src
        .strip_prefix("data:image/png;base64,")
        .ok_or_else(|| bad("the totp_qr image is not a data:image/png;base64 URI"))?;
    let qr_png = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| bad(&format!("the totp_qr image is not valid base64: {e}")))?;
    let text =
        flow.node("totp_secret_key").and_then(Node::text).ok_or_else(|| bad("the flow has no totp_secret_key text"))?;
    let ctx = text.context.unwrap_or(Value::Null);
    let secret = ctx.get("secret").and_then(Value::as_str).map(str::to_string).unwrap_or(text.text);
    let otpauth_url = ctx
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("otpauth://"))
        .ok_or_else(|| bad("the totp_secret_key text has no otpauth:// URL in its context"))?
        .to_string();
    Ok(TotpEnrollment { flow_id: flow.id.clone(), qr_png, otpauth_url, secret, flow })
}
