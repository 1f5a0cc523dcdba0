//! The method contract and the ONE registry of methods.
//!
//! A method (password, TOTP, …) is a folder here with a type implementing [`Method`]: which
//! request bodies it claims in each flow kind, the UI nodes it contributes, what it decides in
//! login / registration / settings / recovery / verification (an outcome value — the flows
//! issue sessions, run hooks and commit; a method never finishes a flow), the AAL it grants and
//! its metric label. The flows (`login.rs`, `registration.rs`, `settings.rs`, `recovery.rs`,
//! `verification.rs`) only ever iterate [`REGISTRY`].
//!
//! Adding a method: its folder with a `Method` impl, one line in [`REGISTRY`], one variant in
//! [`MethodId`], and its config struct in `config.rs` (`selfservice.methods.<id>`). See
//! ARCHITECTURE.md.

pub mod code;
pub mod delete_account;
pub mod lookup;
pub mod oidc;
pub mod passkey;
pub mod password;
pub mod profile;
pub mod totp;
pub mod webauthn;

use super::settings::Change;
use super::{Authed, Body, Engine, Req};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Aal, Flow, Identity};
use crate::ui::{Node, UiText};
use async_trait::async_trait;
use serde_json::Value;

pub use crate::model::MethodId;

/// The registered implementation of `id`.
pub fn get(id: MethodId) -> &'static dyn Method {
    // Every id is registered (checked by a unit test); the fallback is never taken.
    REGISTRY.iter().copied().find(|m| m.id() == id).unwrap_or(&password::Password)
}

/// Every method, in dispatch and node order.
pub static REGISTRY: &[&dyn Method] = &[
    &profile::Profile,
    &password::Password,
    &totp::TotpMethod,
    &lookup::LookupSecret,
    &passkey::PasskeyMethod,
    &webauthn::WebauthnMethod,
    &oidc::Oidc,
    &code::Code,
    &delete_account::DeleteAccount,
];

/// Whether a login submit is this method's, and at the flow's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Not this method's body.
    No,
    /// This method's body, at a level it serves.
    Yes,
    /// This method's body, but the flow asks for another level (aal1 vs aal2) or client kind.
    WrongLevel,
}

/// Which login form is being built.
#[derive(Debug, Clone, Copy)]
pub struct LoginForm<'a> {
    /// The identity re-authenticating (refresh) or stepping up (aal2), if any.
    pub identity: Option<&'a Identity>,
    /// A step-up (second factor) form.
    pub second_factor: bool,
    /// A refresh form (re-authentication of the session's identity).
    pub refresh: bool,
    /// An `identifier` input is already on the form.
    pub has_identifier: bool,
}

/// What a method decided in a login submit.
#[derive(Debug)]
pub enum LoginStep {
    /// The method proved `identity`. The flow issues (or, for refresh/step-up, extends) the
    /// session; `provider` names the social sign-in provider.
    Verified { identity: Identity, provider: Option<String> },
    /// An account unknown so far signed in with a provider and was created on the way: the
    /// flow stores it with the new session.
    Registered { identity: Identity, provider: Option<String> },
    /// Form errors: `(node, message)` pairs, and the identifier to echo.
    Invalid { errors: Vec<(String, UiText)>, identifier: Option<String> },
    /// Not done yet: show the form again with these nodes added (identifier-first sign-in:
    /// the identifier was accepted, now the key).
    ShowForm { nodes: Vec<Node>, identifier: Option<String> },
}

impl LoginStep {
    pub fn invalid(node: &str, m: UiText) -> Self {
        LoginStep::Invalid { errors: vec![(node.to_string(), m)], identifier: None }
    }
}

/// What a method decided in a registration submit.
#[derive(Debug)]
pub enum RegistrationStep {
    /// A new identity to create (the `session` hook decides on a session).
    Created { identity: Identity, provider: Option<String> },
    /// The account existed already (a linked provider account): sign it in.
    SignedIn { identity: Identity, provider: Option<String> },
    /// Form errors, with the traits to show again.
    Invalid { errors: Vec<(String, UiText)>, traits: Option<Value> },
}

/// What a method decided in a recovery or verification submit (a mailed code proves an address).
#[derive(Debug)]
pub enum AddressStep {
    /// A code was sent (or, for an unknown address, nothing or a notice): the flow moved to
    /// `sent_email`; the mail is queued with the flow change.
    Sent { messages: Vec<crate::courier::Message> },
    /// The form again with these messages (a wrong code): 200.
    Retry { errors: Vec<(String, UiText)> },
    /// Form errors (a missing address): 400.
    Invalid { errors: Vec<(String, UiText)> },
    /// The flow cannot go on (already completed, submitted too often): a new flow with this
    /// message replaces it.
    Restart { message: UiText },
    /// The code proved `address` of `identity` (as stored now).
    Proved { identity: Identity, address: String },
}

/// The contract every method implements. Defaults: the method takes no part in that flow.
#[async_trait]
pub trait Method: Send + Sync {
    fn id(&self) -> MethodId;

    /// Whether the method is enabled (and able to work, e.g. a WebAuthn relying party exists).
    fn enabled(&self, e: &Engine) -> bool;

    /// The AAL a completed login step of this method grants.
    fn aal(&self, _e: &Engine) -> Aal {
        Aal::Aal1
    }

    /// The label for metrics (a fixed set, never request input).
    fn label(&self) -> &'static str {
        self.id().as_str()
    }

    /// Whether `body` (of any flow) names this method through a field of its own (used for
    /// metric labels when `method` is absent).
    fn claims_fields(&self, _body: &Body) -> bool {
        false
    }

    // ---- settings ------------------------------------------------------------------------

    /// Whether this method handles a settings submit.
    fn claims_settings(&self, _flow: &Flow, _body: &Body) -> bool {
        false
    }

    /// A decode error reported before the CSRF check (settings-flow §8.2).
    fn settings_precheck(&self, _body: &Body) -> Option<(String, UiText)> {
        None
    }

    /// The nodes this method adds to a settings form.
    fn settings_nodes(&self, _e: &Engine, _flow: &mut Flow, _identity: &Identity) -> Vec<Node> {
        vec![]
    }

    /// A settings submit succeeded (`own`: it was this method's): drop the method's state
    /// kept on the flow that no longer applies.
    fn settings_succeeded(&self, _flow: &mut Flow, _own: bool) {}

    /// Decide a settings submit.
    async fn settings(&self, _e: &Engine, _flow: &mut Flow, _a: &Authed, _body: &Body) -> Result<Change> {
        Err(not_offered())
    }

    // ---- login ---------------------------------------------------------------------------

    /// Whether this method handles a login submit on `flow`.
    fn claims_login(&self, _e: &Engine, _flow: &Flow, _body: &Body) -> Claim {
        Claim::No
    }

    /// The nodes this method adds to a login form.
    fn login_nodes(&self, _e: &Engine, _flow: &mut Flow, _req: &Req, _form: &LoginForm<'_>) -> Result<Vec<Node>> {
        Ok(vec![])
    }

    /// Decide a login submit (CSRF, expiry and level were checked by the flow).
    async fn login(&self, _e: &Engine, _flow: &mut Flow, _body: &Body, _req: &Req) -> Result<LoginStep> {
        Err(not_offered())
    }

    // ---- registration --------------------------------------------------------------------

    /// Whether this method handles a registration submit.
    fn claims_registration(&self, _body: &Body) -> bool {
        false
    }

    /// The nodes this method adds to a registration form (after the trait inputs).
    fn registration_nodes(&self, _e: &Engine) -> Vec<Node> {
        vec![]
    }

    /// Decide a registration submit.
    async fn register(&self, _e: &Engine, _flow: &mut Flow, _body: &Body, _req: &Req) -> Result<RegistrationStep> {
        Err(not_offered())
    }

    /// The form error when the identity this method would create exists already.
    fn duplicate_message(&self) -> UiText {
        crate::ui::msg::duplicate()
    }

    /// Drop the method's registration state from a flow (after a refused registration).
    fn reset_registration(&self, _flow: &mut Flow) {}

    // ---- recovery -------------------------------------------------------------------------

    /// Whether this method handles a recovery submit.
    fn claims_recovery(&self, _body: &Body) -> bool {
        false
    }

    /// The nodes this method adds to a recovery form (in the flow's state).
    fn recovery_nodes(&self, _e: &Engine, _flow: &Flow) -> Vec<Node> {
        vec![]
    }

    /// Decide a recovery submit (CSRF, expiry and the session rule were checked by the flow).
    async fn recovery(&self, _e: &Engine, _flow: &mut Flow, _body: &Body, _req: &Req) -> Result<AddressStep> {
        Err(not_offered())
    }

    // ---- verification ---------------------------------------------------------------------

    /// Whether this method handles a verification submit.
    fn claims_verification(&self, _body: &Body) -> bool {
        false
    }

    /// The nodes this method adds to a verification form (in the flow's state).
    fn verification_nodes(&self, _e: &Engine, _flow: &Flow) -> Vec<Node> {
        vec![]
    }

    /// Decide a verification submit (CSRF and expiry were checked by the flow).
    async fn verification(&self, _e: &Engine, _flow: &mut Flow, _body: &Body, _req: &Req) -> Result<AddressStep> {
        Err(not_offered())
    }
}

/// The error for a method asked to do what it does not offer (a registry bug, not user input).
fn not_offered() -> Error {
    Error::new(ErrorKind::Internal, "The method does not take part in this flow.")
}

/// The error of a step-up submit without a session.
pub(crate) fn aal1_required() -> Error {
    Error::new(ErrorKind::Aal1Required, "You can not requested a higher AAL (AAL2/AAL3) without an active session.")
}

/// The "disabled by the administrator" error of a method that is switched off.
pub fn disabled() -> Error {
    Error::new(
        ErrorKind::Disabled,
        "This endpoint was disabled by system administrator. Please check your url or contact the system administrator to enable it.",
    )
}

/// The metric label of a submit: the method it names, else the one whose fields it carries.
pub fn label_of(body: &Body) -> &'static str {
    let m = super::body_str(body, "method").unwrap_or_default();
    if let Some(id) = MethodId::parse(m) {
        return get(id).label();
    }
    if let Some(found) = REGISTRY.iter().find(|x| x.claims_fields(body)) {
        return found.label();
    }
    if m.is_empty() { "none" } else { "other" }
}

/// Read a non-empty string field.
pub(crate) fn nonempty<'a>(body: &'a Body, k: &str) -> Option<&'a str> {
    super::body_str(body, k).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_id_is_registered_once() {
        let all = MethodId::ALL;
        for id in all {
            assert_eq!(REGISTRY.iter().filter(|m| m.id() == id).count(), 1, "{id}");
            assert_eq!(MethodId::parse(id.as_str()), Some(id));
            assert_eq!(get(id).id(), id);
            let json = serde_json::to_value(id).unwrap_or_default();
            assert_eq!(json, Value::String(id.as_str().into()));
        }
        assert_eq!(REGISTRY.len(), all.len());
        assert_eq!(MethodId::parse("nope"), None);
    }
}
