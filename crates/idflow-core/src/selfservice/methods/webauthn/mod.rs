//! WebAuthn security keys (`webauthn` group, browser flows only) and the machinery shared with
//! passkeys (`passkey.rs`): the relying party, the stored credentials, ceremony state on the
//! flow and the `webauthn.js` helper script. Built on `webauthn-rs` (RustCrypto, no OpenSSL).
//!
//! - Ceremony state (challenge, expected user, excluded credentials) lives in `flow.internal`,
//!   so a flow created on one server node can be finished on another, and fetching the flow
//!   again shows the same options. A challenge serves one attempt: after a failed attempt the
//!   form comes back with a fresh one.
//! - Unparsable responses and failed verifications (wrong origin, bad signature, counter going
//!   backwards, …) are form errors (400, message 4000001), never a 500 (Kratos answers 500 for
//!   failed verifications).
//! - Stored shape (credential config of type `webauthn` / `passkey`):
//!   `{"credentials": [{"id": <base64url>, "display_name", "added_at", "is_passwordless",
//!   "user_handle": <base64url>, "authenticator": {"sign_count", "clone_warning"},
//!   "security_key" | "passkey": <serialised webauthn-rs credential>}], "user_handle": …}`.
//!   Entries this module cannot parse (e.g. imported ones) are kept untouched.

use super::{Claim, LoginForm, LoginStep, Method, MethodId, nonempty};
use crate::error::{Error, Result};
use crate::model::{Aal, Credential, CredentialType, Flow, FlowType, Identity, IdentityState};
use crate::schema::normalize_identifier;
use crate::selfservice::settings::Change;
use crate::selfservice::{Authed, Body, Engine, Req, body_str};
use crate::store::{Commit, StoreError};
use crate::ui::{Group, Node, UiText, msg};
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::OnceLock;
use time::OffsetDateTime;
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, SecurityKey, SecurityKeyAuthentication, SecurityKeyRegistration, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// The helper script served at `/.well-known/ory/webauthn.js`.
pub const WEBAUTHN_JS: &str = include_str!("webauthn.js");
pub const WEBAUTHN_JS_PATH: &str = "/.well-known/ory/webauthn.js";

/// Subresource integrity of [`WEBAUTHN_JS`] (`sha512-…`).
pub fn webauthn_js_integrity() -> &'static str {
    static I: OnceLock<String> = OnceLock::new();
    I.get_or_init(|| {
        use sha2::Digest as _;
        format!("sha512-{}", STANDARD.encode(sha2::Sha512::digest(WEBAUTHN_JS.as_bytes())))
    })
}

/// Flow-internal keys of ceremony state.
pub(crate) const WEBAUTHN_REGISTER: &str = "webauthn_register_state";
pub(crate) const PASSKEY_REGISTER: &str = "passkey_register_state";
pub(crate) const WEBAUTHN_LOGIN: &str = "webauthn_login_state";
pub(crate) const PASSKEY_LOGIN: &str = "passkey_login_state";

/// Which of the two methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `webauthn`: security keys (second factor, or first factor when `passwordless`).
    SecurityKey,
    /// `passkey`: discoverable, user-verifying first factor.
    Passkey,
}

impl KeyKind {
    pub fn credential_type(self) -> CredentialType {
        match self {
            KeyKind::SecurityKey => CredentialType::Webauthn,
            KeyKind::Passkey => CredentialType::Passkey,
        }
    }
    pub fn method(self) -> &'static str {
        match self {
            KeyKind::SecurityKey => "webauthn",
            KeyKind::Passkey => "passkey",
        }
    }
}

/// Signature counter bookkeeping of a stored key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuthenticatorState {
    #[serde(default)]
    pub sign_count: u32,
    /// Set when an assertion arrived with a counter that did not increase (possible clone).
    #[serde(default)]
    pub clone_warning: bool,
}

/// One registered key, as stored in the `credentials` list of the credential config.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredKey {
    /// Credential id, base64url without padding.
    pub id: String,
    pub display_name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub added_at: OffsetDateTime,
    pub is_passwordless: bool,
    /// WebAuthn user handle, base64url without padding.
    pub user_handle: String,
    #[serde(default)]
    pub authenticator: AuthenticatorState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_key: Option<SecurityKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey: Option<Passkey>,
}

/// Forget both registration ceremonies of a settings flow (after a key was added or removed,
/// so the next options exclude exactly the registered keys).
pub(crate) fn reset_registrations(flow: &mut Flow, change: &Change) {
    if matches!(change, Change::Update { .. }) {
        flow.internal_remove(WEBAUTHN_REGISTER);
        flow.internal_remove(PASSKEY_REGISTER);
    }
}

/// Decode a stored credential id (base64url, or standard base64 as Kratos stores it).
pub fn decode_id(s: &str) -> Option<Vec<u8>> {
    let t = s.trim_end_matches('=');
    URL_SAFE_NO_PAD.decode(t).ok().or_else(|| STANDARD.decode(s).ok()).or_else(|| URL_SAFE.decode(s).ok())
}

/// The raw `credentials` entries of a credential type.
pub fn raw_keys(identity: &Identity, t: CredentialType) -> Vec<Value> {
    identity
        .credential(t)
        .and_then(|c| c.config.get("credentials"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn entry_id(e: &Value) -> Option<Vec<u8>> {
    e.get("id").and_then(Value::as_str).and_then(decode_id)
}

fn entry_passwordless(e: &Value, t: CredentialType) -> bool {
    t == CredentialType::Passkey || e.get("is_passwordless").and_then(Value::as_bool) == Some(true)
}

/// The parseable keys of a credential type.
pub fn stored_keys(identity: &Identity, t: CredentialType) -> Vec<StoredKey> {
    raw_keys(identity, t).into_iter().filter_map(|e| serde_json::from_value(e).ok()).collect()
}

/// Every credential id registered to the identity (security keys and passkeys).
fn all_cred_ids(identity: &Identity) -> Vec<Vec<u8>> {
    [CredentialType::Webauthn, CredentialType::Passkey]
        .into_iter()
        .flat_map(|t| raw_keys(identity, t))
        .filter_map(|e| entry_id(&e))
        .collect()
}

/// Replace the key list of a credential type (removing the credential when it is empty).
fn set_keys(
    identity: &mut Identity,
    t: CredentialType,
    keys: Vec<Value>,
    identifiers: Vec<String>,
    handle: &str,
    now: OffsetDateTime,
) {
    if keys.is_empty() {
        identity.credentials.remove(&t);
        return;
    }
    let config = json!({ "credentials": keys, "user_handle": handle });
    match identity.credentials.get_mut(&t) {
        Some(c) => {
            c.config = config;
            c.identifiers = identifiers;
            c.updated_at = now;
        }
        None => {
            identity.credentials.insert(t, Credential::new(t, identifiers, config, now));
        }
    }
}

/// The WebAuthn user handle of an identity (its id) as stored: base64url.
pub fn user_handle(identity_id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(identity_id.as_bytes())
}

fn form_error<T>(node: &str, m: UiText) -> Result<std::result::Result<T, (String, UiText)>> {
    Ok(Err((node.to_string(), m)))
}

fn parse_failed(e: impl std::fmt::Display) -> UiText {
    msg::generic(&format!("Unable to parse WebAuthn response: {e}"))
}

fn verify_failed(e: &WebauthnError) -> UiText {
    let reason = match e {
        WebauthnError::InvalidRPOrigin => {
            "The WebAuthn response was made for another website (origin mismatch). Please try again on this site.".to_string()
        }
        WebauthnError::InvalidRPIDHash => {
            "The WebAuthn response was made for another relying party. Please try again on this site.".to_string()
        }
        WebauthnError::CredentialPossibleCompromise => {
            "The security key's signature counter did not increase: the key may have been cloned. Sign-in with it was refused.".to_string()
        }
        WebauthnError::InvalidClientDataType | WebauthnError::MismatchedChallenge => {
            "The WebAuthn response does not answer this challenge. Please try again.".to_string()
        }
        other => format!("The WebAuthn response could not be verified ({other}). Please try again."),
    };
    msg::generic(&reason)
}

/// (options JSON text, state kind, state JSON) of a started ceremony.
pub(crate) fn ceremony(
    options: &impl Serialize,
    kind: &'static str,
    state: &impl Serialize,
) -> std::result::Result<(String, &'static str, Value), String> {
    let o = serde_json::to_string(options).map_err(|e| e.to_string())?;
    let s = serde_json::to_value(state).map_err(|e| e.to_string())?;
    Ok((o, kind, s))
}

/// Creation options that require a discoverable credential. Passkeys sign in without an
/// identifier (discoverable authentication), which finds only resident keys; webauthn-rs'
/// passkey registration merely "discourages" one, so authenticators that honour it (security
/// keys, Chromium's virtual authenticator) would create a passkey that can never sign in.
fn discoverable(options: &impl Serialize) -> std::result::Result<Value, String> {
    let mut v = serde_json::to_value(options).map_err(|e| e.to_string())?;
    if let Some(sel) = v.pointer_mut("/publicKey/authenticatorSelection").and_then(Value::as_object_mut) {
        sel.insert("residentKey".into(), json!("required"));
        sel.insert("requireResidentKey".into(), json!(true));
    }
    Ok(v)
}

fn expired_challenge() -> UiText {
    msg::generic("The WebAuthn challenge of this form was already used or is missing. Please try again.")
}

impl Engine {
    /// The relying party of a method, or None when it cannot be derived (an IP base URL).
    pub fn webauthn_rp(&self, kind: KeyKind) -> Option<&Webauthn> {
        let slot = match kind {
            KeyKind::SecurityKey => &self.webauthn_rps[0],
            KeyKind::Passkey => &self.webauthn_rps[1],
        };
        // The configuration does not change while the engine lives: built once per kind.
        slot.get_or_init(|| self.build_webauthn_rp(kind)).as_ref()
    }

    fn build_webauthn_rp(&self, kind: KeyKind) -> Option<Webauthn> {
        let m = &self.cfg.selfservice.methods;
        let rp = match kind {
            KeyKind::SecurityKey => &m.webauthn.config.rp,
            KeyKind::Passkey => &m.passkey.config.rp,
        };
        let resolved = match rp.resolve(self.base()) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(method = kind.method(), reason = %e, "WebAuthn relying party unavailable");
                return None;
            }
        };
        let first = resolved.origins.first()?;
        let mut b = WebauthnBuilder::new(&resolved.id, first).ok()?.rp_name(&resolved.display_name);
        for o in resolved.origins.iter().skip(1) {
            b = b.append_allowed_origin(o);
        }
        b.build().ok()
    }

    /// Say at start why an enabled method is not offered (a relying party that can not be
    /// derived from the public base URL).
    pub fn log_webauthn_availability(&self) {
        let m = &self.cfg.selfservice.methods;
        for (kind, enabled, key) in [
            (KeyKind::SecurityKey, m.webauthn.enabled, "selfservice.methods.webauthn.config.rp"),
            (KeyKind::Passkey, m.passkey.enabled, "selfservice.methods.passkey.config.rp"),
        ] {
            if enabled && self.webauthn_rp(kind).is_none() {
                tracing::info!(
                    method = kind.method(),
                    "{} are not offered: no relying party can be derived from serve.public.base_url {} (WebAuthn needs a domain name); set `{key}.id` and `{key}.origins`",
                    if kind == KeyKind::Passkey { "passkeys" } else { "security keys" },
                    self.base()
                );
            }
        }
    }

    /// Whether a method is enabled and has a usable relying party.
    pub fn webauthn_enabled(&self, kind: KeyKind) -> bool {
        let m = &self.cfg.selfservice.methods;
        let on = match kind {
            KeyKind::SecurityKey => m.webauthn.enabled,
            KeyKind::Passkey => m.passkey.enabled,
        };
        on && self.webauthn_rp(kind).is_some()
    }

    fn webauthn_passwordless(&self) -> bool {
        self.cfg.selfservice.methods.webauthn.config.passwordless
    }

    /// The name authenticators show for the identity (passkey display trait, else an
    /// identifier, else the id).
    pub(crate) fn webauthn_user_name(&self, identity: &Identity) -> Option<String> {
        let ex = self.schema(&identity.schema_id).ok()?.extract(&identity.traits);
        ex.passkey_display_name
            .filter(|s| !s.trim().is_empty())
            .or_else(|| ex.webauthn_identifiers.first().cloned())
            .or_else(|| ex.password_identifiers.first().cloned())
    }

    fn webauthn_identifiers(&self, identity: &Identity) -> Vec<String> {
        self.schema(&identity.schema_id).map(|s| s.extract(&identity.traits).webauthn_identifiers).unwrap_or_default()
    }

    /// The `webauthn_script` node.
    pub(crate) fn webauthn_script_node(&self) -> Node {
        Node::script(
            Group::Webauthn,
            "webauthn_script",
            self.url(WEBAUTHN_JS_PATH),
            webauthn_js_integrity().to_string(),
            String::new(),
        )
    }

    /// Creation options of the registration ceremony kept on the flow (made when absent).
    /// Returns the options JSON text.
    pub(crate) fn registration_options(&self, flow: &mut Flow, identity: &Identity, kind: KeyKind) -> Option<String> {
        let key = match kind {
            KeyKind::SecurityKey => WEBAUTHN_REGISTER,
            KeyKind::Passkey => PASSKEY_REGISTER,
        };
        if let Some(o) = flow.internal_get(key).and_then(|s| s.get("options")).and_then(Value::as_str) {
            return Some(o.to_string());
        }
        let rp = self.webauthn_rp(kind)?;
        let name = self.webauthn_user_name(identity).unwrap_or_else(|| identity.id.to_string());
        let exclude = Some(all_cred_ids(identity));
        let made = if kind == KeyKind::SecurityKey && !self.webauthn_passwordless() {
            rp.start_securitykey_registration(identity.id, &name, &name, exclude, None, None)
                .map_err(|e| e.to_string())
                .and_then(|(ccr, st)| ceremony(&ccr, "security_key", &st))
        } else {
            // Passkeys sign in without an identifier, so they must be resident; passwordless
            // security keys sign in with one and need not be.
            rp.start_passkey_registration(identity.id, &name, &name, exclude).map_err(|e| e.to_string()).and_then(
                |(ccr, st)| {
                    if kind == KeyKind::Passkey {
                        ceremony(&discoverable(&ccr)?, "passkey", &st)
                    } else {
                        ceremony(&ccr, "passkey", &st)
                    }
                },
            )
        };
        match made {
            Ok((options, st_kind, state)) => {
                flow.internal_set(key, json!({ "options": options, "kind": st_kind, "state": state }));
                Some(options)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not start a WebAuthn registration");
                None
            }
        }
    }

    /// Remove buttons of one credential type.
    pub(crate) fn remove_nodes(&self, identity: &Identity, kind: KeyKind) -> Vec<Node> {
        let t = kind.credential_type();
        let first_factors = identity.first_factor_count();
        raw_keys(identity, t)
            .iter()
            .filter_map(|e| {
                let id = entry_id(e)?;
                let name = e.get("display_name").and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or("unnamed");
                let added = e
                    .get("added_at")
                    .and_then(Value::as_str)
                    .and_then(|s| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok());
                let added_at = added
                    .and_then(|a| a.format(&time::format_description::well_known::Rfc3339).ok())
                    .unwrap_or_default();
                let unix = added.map_or(0, OffsetDateTime::unix_timestamp);
                let (group, name_attr, label) = match kind {
                    KeyKind::SecurityKey => {
                        (Group::Webauthn, "webauthn_remove", msg::webauthn_remove(name, &added_at, unix))
                    }
                    KeyKind::Passkey => (Group::Passkey, "passkey_remove", msg::passkey_remove(name, &added_at, unix)),
                };
                let locks_out = entry_passwordless(e, t) && first_factors < 2;
                Some(Node::submit(group, name_attr, json!(hex::encode(id)), label).disabled(locks_out))
            })
            .collect()
    }

    /// Settings nodes of the `webauthn` group (browser flows).
    fn webauthn_settings_nodes(&self, flow: &mut Flow, identity: &Identity) -> Vec<Node> {
        if flow.flow_type != FlowType::Browser {
            return vec![];
        }
        let mut nodes = self.remove_nodes(identity, KeyKind::SecurityKey);
        let Some(options) = self.registration_options(flow, identity, KeyKind::SecurityKey) else {
            return nodes;
        };
        nodes.push(
            Node::input(Group::Webauthn, "webauthn_register_displayname", "text")
                .value(json!(""))
                .label(msg::webauthn_name()),
        );
        nodes.push(Node::input(Group::Webauthn, "webauthn_register", "hidden").value(json!("")));
        let onclick = format!("window.oryWebAuthnRegistration({options})");
        nodes.push(
            Node::input(Group::Webauthn, "webauthn_register_trigger", "button")
                .value(json!(options))
                .label(msg::webauthn_add())
                .with_attrs(|a| {
                    a.onclick = Some(onclick);
                    a.onclick_trigger = Some("oryWebAuthnRegistration".into());
                }),
        );
        nodes
    }

    /// Finish a registration ceremony. `Err((node, message))` is a form error.
    pub(crate) fn finish_registration(
        &self,
        flow: &mut Flow,
        identity: &Identity,
        kind: KeyKind,
        node: &str,
        response: &str,
        display_name: String,
    ) -> Result<std::result::Result<Identity, (String, UiText)>> {
        let key = match kind {
            KeyKind::SecurityKey => WEBAUTHN_REGISTER,
            KeyKind::Passkey => PASSKEY_REGISTER,
        };
        // One attempt per challenge: whatever happens, the form gets a fresh one.
        let state = flow.internal_remove(key);
        let Some(rp) = self.webauthn_rp(kind) else {
            return form_error(node, msg::generic("WebAuthn is not available on this server."));
        };
        let cred: RegisterPublicKeyCredential = match serde_json::from_str(response) {
            Ok(c) => c,
            Err(e) => return form_error(node, parse_failed(e)),
        };
        let existing = all_cred_ids(identity);
        let already = || msg::generic("this security key or passkey is already registered with your account");
        if existing.iter().any(|id| id.as_slice() == cred.raw_id.as_slice()) {
            return form_error(node, already());
        }
        let Some(state) = state else { return form_error(node, expired_challenge()) };
        let st_kind = state.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
        let st = state.get("state").cloned().unwrap_or(Value::Null);
        let now = self.clock.now();
        let (cred_id, security_key, passkey) = match st_kind.as_str() {
            "security_key" => {
                let Ok(st) = serde_json::from_value::<SecurityKeyRegistration>(st) else {
                    return form_error(node, expired_challenge());
                };
                match rp.finish_securitykey_registration(&cred, &st) {
                    Ok(k) => (k.cred_id().to_vec(), Some(k), None),
                    Err(e) => return form_error(node, verify_failed(&e)),
                }
            }
            _ => {
                let Ok(st) = serde_json::from_value::<PasskeyRegistration>(st) else {
                    return form_error(node, expired_challenge());
                };
                match rp.finish_passkey_registration(&cred, &st) {
                    Ok(k) => (k.cred_id().to_vec(), None, Some(k)),
                    Err(e) => return form_error(node, verify_failed(&e)),
                }
            }
        };
        if existing.contains(&cred_id) {
            return form_error(node, already());
        }
        let handle = user_handle(identity.id);
        let stored = StoredKey {
            id: URL_SAFE_NO_PAD.encode(&cred_id),
            display_name,
            added_at: now,
            is_passwordless: kind == KeyKind::Passkey || passkey.is_some(),
            user_handle: handle.clone(),
            authenticator: AuthenticatorState::default(),
            security_key,
            passkey,
        };
        let t = kind.credential_type();
        let mut keys = raw_keys(identity, t);
        keys.push(serde_json::to_value(&stored).map_err(Error::internal)?);
        let identifiers = match kind {
            KeyKind::SecurityKey => self.webauthn_identifiers(identity),
            KeyKind::Passkey => vec![handle.clone()],
        };
        let mut updated = identity.clone();
        set_keys(&mut updated, t, keys, identifiers, &handle, now);
        Ok(Ok(updated))
    }

    /// Remove the key with the hex credential id `hex_id`.
    pub(crate) fn remove_key(
        &self,
        identity: &Identity,
        kind: KeyKind,
        hex_id: &str,
    ) -> std::result::Result<Identity, (String, UiText)> {
        let t = kind.credential_type();
        let node = match kind {
            KeyKind::SecurityKey => "webauthn_remove",
            KeyKind::Passkey => "passkey_remove",
        };
        let keys = raw_keys(identity, t);
        if keys.is_empty() {
            let m = match kind {
                KeyKind::SecurityKey => "You tried to remove a WebAuthn but you have no WebAuthn set up.",
                KeyKind::Passkey => "You tried to remove a passkey but you have no passkey set up.",
            };
            return Err((String::new(), msg::generic(m)));
        }
        let wanted = hex::decode(hex_id.trim().to_ascii_lowercase()).ok();
        let Some(pos) = keys.iter().position(|e| wanted.is_some() && entry_id(e) == wanted) else {
            let m = match kind {
                KeyKind::SecurityKey => "You tried to remove a WebAuthn credential which does not exist.",
                KeyKind::Passkey => "You tried to remove a passkey which does not exist.",
            };
            return Err((String::new(), msg::generic(m)));
        };
        if entry_passwordless(&keys[pos], t) && identity.first_factor_count() < 2 {
            let m = match kind {
                KeyKind::SecurityKey => {
                    "unable to remove this security key because it would lock you out of your account"
                }
                KeyKind::Passkey => "unable to remove this passkey because it would lock you out of your account",
            };
            return Err((node.to_string(), msg::last_sign_in_method(m)));
        }
        let mut keys = keys;
        keys.remove(pos);
        let mut updated = identity.clone();
        let identifiers = identity.credential(t).map(|c| c.identifiers.clone()).unwrap_or_default();
        let handle = user_handle(identity.id);
        set_keys(&mut updated, t, keys, identifiers, &handle, self.clock.now());
        Ok(updated)
    }

    /// Settings submit of the `webauthn` method.
    pub(crate) async fn settings_webauthn(&self, flow: &mut Flow, a: &Authed, body: &Body) -> Result<Change> {
        if !self.privileged(a) {
            return Ok(Change::NeedsPrivilege { pending: json!({}) });
        }
        let invalid = |(node, m): (String, UiText)| Change::Invalid { errors: vec![(node, m)], echo: None };
        let register = body_str(body, "webauthn_register").unwrap_or_default();
        if !register.is_empty() {
            let name = match body.get("webauthn_register_displayname") {
                None | Some(Value::Null) => {
                    return Ok(invalid((
                        "webauthn_register_displayname".into(),
                        msg::missing("webauthn_register_displayname"),
                    )));
                }
                Some(v) => v.as_str().unwrap_or_default().trim().to_string(),
            };
            if name.is_empty() {
                let m = UiText::error(4000003, "length must be >= 1, but got 0")
                    .with_context(json!({"min_length": 1, "actual_length": 0}));
                return Ok(invalid(("webauthn_register_displayname".into(), m)));
            }
            let change = match self.finish_registration(
                flow,
                &a.identity,
                KeyKind::SecurityKey,
                "webauthn_register",
                register,
                name,
            )? {
                Ok(identity) => Change::Update { identity, add_method: Some(MethodId::Webauthn), revoke_others: false },
                Err(e) => invalid(e),
            };
            reset_registrations(flow, &change);
            return Ok(change);
        }
        let remove = body_str(body, "webauthn_remove").unwrap_or_default();
        let change = match self.remove_key(&a.identity, KeyKind::SecurityKey, remove) {
            Ok(identity) => Change::Update { identity, add_method: None, revoke_others: false },
            Err(e) => invalid(e),
        };
        reset_registrations(flow, &change);
        Ok(change)
    }

    // ---- login ----------------------------------------------------------------------------

    /// Login nodes of the `webauthn` group for `identity` (aal2 step-up: its second-factor
    /// keys; passwordless: its passwordless keys). Browser flows only. Starts the ceremony and
    /// keeps its state on the flow.
    pub(crate) fn webauthn_login_nodes(&self, flow: &mut Flow, identity: &Identity, passwordless: bool) -> Vec<Node> {
        flow.internal_remove(WEBAUTHN_LOGIN);
        if flow.flow_type != FlowType::Browser || !self.webauthn_enabled(KeyKind::SecurityKey) {
            return vec![];
        }
        let Some(rp) = self.webauthn_rp(KeyKind::SecurityKey) else { return vec![] };
        let keys: Vec<StoredKey> = stored_keys(identity, CredentialType::Webauthn)
            .into_iter()
            .filter(|k| k.is_passwordless == passwordless)
            .collect();
        let made = if passwordless {
            let list: Vec<Passkey> = keys.into_iter().filter_map(|k| k.passkey).collect();
            if list.is_empty() {
                return vec![];
            }
            rp.start_passkey_authentication(&list)
                .map_err(|e| e.to_string())
                .and_then(|(rcr, st)| ceremony(&rcr, "passkey", &st))
        } else {
            let list: Vec<SecurityKey> = keys.into_iter().filter_map(|k| k.security_key).collect();
            if list.is_empty() {
                return vec![];
            }
            rp.start_securitykey_authentication(&list)
                .map_err(|e| e.to_string())
                .and_then(|(rcr, st)| ceremony(&rcr, "security_key", &st))
        };
        let (options, st_kind, state) = match made {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "could not start a WebAuthn authentication");
                return vec![];
            }
        };
        flow.internal_set(WEBAUTHN_LOGIN, json!({ "kind": st_kind, "state": state, "identity_id": identity.id }));
        let onclick = format!("window.oryWebAuthnLogin({options})");
        vec![
            Node::input(Group::Webauthn, "webauthn_login_trigger", "button")
                .value(json!(options))
                .label(msg::login_webauthn())
                .with_attrs(|a| {
                    a.onclick = Some(onclick);
                    a.onclick_trigger = Some("oryWebAuthnLogin".into());
                }),
            Node::input(Group::Webauthn, "webauthn_login", "hidden").value(json!("")),
        ]
    }

    /// First-factor (aal1) login nodes of browser flows with `webauthn.config.passwordless`:
    /// the "continue with security key" button (identifier first).
    fn webauthn_first_factor_login_nodes(&self, flow: &Flow, has_identifier: bool) -> Result<Vec<Node>> {
        let mut nodes = vec![];
        if flow.flow_type == FlowType::Browser && !flow.refresh && self.webauthn_passwordless() {
            if !has_identifier {
                nodes.push(self.identifier_node()?);
            }
            nodes.push(Node::submit(Group::Webauthn, "method", json!("webauthn"), msg::login_continue_webauthn()));
        }
        Ok(nodes)
    }

    /// Verify an assertion against the ceremony `state` for `identity`; on success the key's
    /// counter is stored and the updated identity returned. `Ok(Err(msg))` is a form error.
    pub(crate) async fn verify_assertion(
        &self,
        identity: &Identity,
        kind: KeyKind,
        state: Option<Value>,
        response: &str,
    ) -> Result<std::result::Result<Identity, UiText>> {
        let Some(rp) = self.webauthn_rp(kind) else {
            return Ok(Err(msg::generic("WebAuthn is not available on this server.")));
        };
        let cred: PublicKeyCredential = match serde_json::from_str(response) {
            Ok(c) => c,
            Err(e) => return Ok(Err(parse_failed(e))),
        };
        let Some(state) = state else { return Ok(Err(expired_challenge())) };
        if let Some(expected) = state.get("identity_id").and_then(Value::as_str)
            && expected != identity.id.to_string()
        {
            return Ok(Err(expired_challenge()));
        }
        let t = kind.credential_type();
        let cred_id = cred.get_credential_id().to_vec();
        let mut keys = raw_keys(identity, t);
        let Some(pos) = keys.iter().position(|e| entry_id(e).as_deref() == Some(cred_id.as_slice())) else {
            return Ok(Err(msg::generic("This security key or passkey is not registered with this account.")));
        };
        let Ok(mut stored) = serde_json::from_value::<StoredKey>(keys[pos].clone()) else {
            return Ok(Err(msg::generic("This security key or passkey can not be used to sign in.")));
        };
        let st = state.get("state").cloned().unwrap_or(Value::Null);
        let res = match state.get("kind").and_then(Value::as_str).unwrap_or_default() {
            "security_key" => match serde_json::from_value::<SecurityKeyAuthentication>(st) {
                Ok(st) => rp.finish_securitykey_authentication(&cred, &st),
                Err(_) => return Ok(Err(expired_challenge())),
            },
            "passkey" => match serde_json::from_value::<PasskeyAuthentication>(st) {
                Ok(st) => rp.finish_passkey_authentication(&cred, &st),
                Err(_) => return Ok(Err(expired_challenge())),
            },
            "discoverable" => {
                let (Ok(st), Some(pk)) =
                    (serde_json::from_value::<DiscoverableAuthentication>(st), stored.passkey.as_ref())
                else {
                    return Ok(Err(expired_challenge()));
                };
                rp.finish_discoverable_authentication_v2(&cred, st, pk)
            }
            _ => return Ok(Err(expired_challenge())),
        };
        let now = self.clock.now();
        let handle = user_handle(identity.id);
        let identifiers = identity.credential(t).map(|c| c.identifiers.clone()).unwrap_or_default();
        let result = match res {
            Ok(r) => r,
            Err(e) => {
                if matches!(e, WebauthnError::CredentialPossibleCompromise) {
                    // Remember the warning on the key (best effort).
                    stored.authenticator.clone_warning = true;
                    if let Ok(v) = serde_json::to_value(&stored) {
                        keys[pos] = v;
                        let mut updated = identity.clone();
                        set_keys(&mut updated, t, keys, identifiers, &handle, now);
                        let _ =
                            self.store.commit(Commit { update_identity: Some(&updated), ..Default::default() }).await;
                    }
                    tracing::warn!(identity_id = %identity.id, "WebAuthn signature counter did not increase: possible cloned authenticator");
                }
                return Ok(Err(verify_failed(&e)));
            }
        };
        if let Some(k) = stored.security_key.as_mut() {
            k.update_credential(&result);
        }
        if let Some(k) = stored.passkey.as_mut() {
            k.update_credential(&result);
        }
        stored.authenticator.sign_count = stored.authenticator.sign_count.max(result.counter());
        keys[pos] = serde_json::to_value(&stored).map_err(Error::internal)?;
        let mut updated = identity.clone();
        set_keys(&mut updated, t, keys, identifiers, &handle, now);
        match self.store.commit(Commit { update_identity: Some(&updated), ..Default::default() }).await {
            Ok(_) => {
                updated.version += 1;
                Ok(Ok(updated))
            }
            Err(StoreError::Busy(_)) => {
                Ok(Err(msg::generic("Your account was changed by a concurrent request. Please try again.")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Login submit of the `webauthn` method (browser flows): aal2 step-up with a security key,
    /// or, with `passwordless`, identifier first and then the key.
    async fn login_webauthn(&self, flow: &mut Flow, body: &Body, req: &Req) -> Result<LoginStep> {
        let response = body_str(body, "webauthn_login").unwrap_or_default().to_string();
        if flow.requested_aal == Aal::Aal2 {
            let Some(a) = req.auth.clone() else { return Err(super::aal1_required()) };
            if response.is_empty() {
                return Ok(LoginStep::invalid("webauthn_login", msg::missing("webauthn_login")));
            }
            let state = flow.internal_remove(WEBAUTHN_LOGIN);
            return Ok(match self.verify_assertion(&a.identity, KeyKind::SecurityKey, state, &response).await? {
                Err(m) => LoginStep::invalid("webauthn_login", m),
                Ok(identity) => LoginStep::Verified { identity, provider: None },
            });
        }
        // Passwordless (aal1).
        let identifier = body_str(body, "identifier").unwrap_or_default().trim().to_string();
        let invalid = |node: &str, m: UiText, echo: bool| LoginStep::Invalid {
            errors: vec![(node.to_string(), m)],
            identifier: echo.then(|| identifier.clone()),
        };
        if response.is_empty() {
            if identifier.is_empty() {
                return Ok(invalid("identifier", msg::missing("identifier"), false));
            }
            let found = self
                .store
                .find_identity_by_identifier(CredentialType::Webauthn, &normalize_identifier(&identifier))
                .await?;
            let Some(identity) = found.filter(|i| i.state == IdentityState::Active) else {
                return Ok(invalid("", msg::no_webauthn_user(), true));
            };
            let nodes = self.webauthn_login_nodes(flow, &identity, true);
            if nodes.is_empty() {
                return Ok(invalid("", msg::no_webauthn_user(), true));
            }
            return Ok(LoginStep::ShowForm { nodes, identifier: Some(identifier) });
        }
        let state = flow.internal_remove(WEBAUTHN_LOGIN);
        let identity_id = state
            .as_ref()
            .and_then(|s| s.get("identity_id"))
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok());
        let identity = match identity_id {
            Some(id) => self.store.get_identity(id).await?,
            None => None,
        };
        let Some(identity) = identity else {
            return Ok(invalid("webauthn_login", expired_challenge(), true));
        };
        if identity.state != IdentityState::Active {
            return Ok(invalid("", msg::identity_disabled(), true));
        }
        Ok(match self.verify_assertion(&identity, KeyKind::SecurityKey, state, &response).await? {
            Err(m) => invalid("webauthn_login", m, true),
            Ok(identity) => LoginStep::Verified { identity, provider: None },
        })
    }
}

/// The `webauthn` method: security keys — a second factor (aal2), or with
/// `webauthn.config.passwordless` a first factor (identifier, then the key). Browser flows.
pub struct WebauthnMethod;

#[async_trait]
impl Method for WebauthnMethod {
    fn id(&self) -> MethodId {
        MethodId::Webauthn
    }
    fn enabled(&self, e: &Engine) -> bool {
        e.webauthn_enabled(KeyKind::SecurityKey)
    }
    fn aal(&self, e: &Engine) -> Aal {
        if e.webauthn_passwordless() { Aal::Aal1 } else { Aal::Aal2 }
    }
    fn claims_fields(&self, body: &Body) -> bool {
        ["webauthn_register", "webauthn_remove"].iter().any(|f| nonempty(body, f).is_some())
    }
    fn claims_settings(&self, flow: &Flow, body: &Body) -> bool {
        flow.flow_type == FlowType::Browser && self.claims_fields(body)
    }
    fn settings_nodes(&self, e: &Engine, flow: &mut Flow, identity: &Identity) -> Vec<Node> {
        e.webauthn_settings_nodes(flow, identity)
    }
    async fn settings(&self, e: &Engine, flow: &mut Flow, a: &Authed, body: &Body) -> Result<Change> {
        e.settings_webauthn(flow, a, body).await
    }
    fn claims_login(&self, e: &Engine, flow: &Flow, body: &Body) -> Claim {
        if body_str(body, "method") != Some("webauthn") {
            return Claim::No;
        }
        let level_ok = flow.requested_aal == Aal::Aal2 || e.webauthn_passwordless();
        if flow.flow_type == FlowType::Browser && level_ok { Claim::Yes } else { Claim::WrongLevel }
    }
    fn login_nodes(&self, e: &Engine, flow: &mut Flow, _req: &Req, form: &LoginForm<'_>) -> Result<Vec<Node>> {
        match (form.second_factor, form.identity) {
            (true, Some(identity)) => Ok(e.webauthn_login_nodes(flow, identity, false)),
            (true, None) => Ok(vec![]),
            (false, _) => e.webauthn_first_factor_login_nodes(flow, form.has_identifier),
        }
    }
    async fn login(&self, e: &Engine, flow: &mut Flow, body: &Body, req: &Req) -> Result<LoginStep> {
        e.login_webauthn(flow, body, req).await
    }
}
