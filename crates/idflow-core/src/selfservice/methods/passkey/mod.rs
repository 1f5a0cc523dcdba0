//! Passkeys (`passkey` group): registration and removal in settings (API and browser flows),
//! passwordless sign-in with a discoverable credential in login (browser flows). The shared
//! WebAuthn machinery (relying party, stored keys, ceremony state, verification) is in
//! `webauthn.rs`.

use super::webauthn::{KeyKind, PASSKEY_LOGIN, ceremony, decode_id, raw_keys, reset_registrations, user_handle};
use super::{Claim, LoginForm, LoginStep, Method, MethodId, nonempty};
use crate::error::Result;
use crate::model::{Aal, CredentialType, Flow, FlowType, Identity, IdentityState};
use crate::selfservice::settings::Change;
use crate::selfservice::{Authed, Body, Engine, Req, body_str};
use crate::ui::{Group, Node, UiText, msg};
use async_trait::async_trait;
use serde_json::{Value, json};
use webauthn_rs::prelude::PublicKeyCredential;

/// The `passkey` method: passwordless first factor (discoverable WebAuthn credentials).
pub struct PasskeyMethod;

#[async_trait]
impl Method for PasskeyMethod {
    fn id(&self) -> MethodId {
        MethodId::Passkey
    }
    fn enabled(&self, e: &Engine) -> bool {
        e.webauthn_enabled(KeyKind::Passkey)
    }
    fn claims_fields(&self, body: &Body) -> bool {
        ["passkey_settings_register", "passkey_remove"].iter().any(|f| nonempty(body, f).is_some())
    }
    fn claims_settings(&self, _flow: &Flow, body: &Body) -> bool {
        self.claims_fields(body)
    }
    fn settings_nodes(&self, e: &Engine, flow: &mut Flow, identity: &Identity) -> Vec<Node> {
        e.passkey_settings_nodes(flow, identity)
    }
    async fn settings(&self, e: &Engine, flow: &mut Flow, a: &Authed, body: &Body) -> Result<Change> {
        e.settings_passkey(flow, a, body).await
    }
    fn claims_login(&self, _e: &Engine, flow: &Flow, body: &Body) -> Claim {
        // A browser-only first factor.
        match (body_str(body, "method") == Some("passkey"), flow.flow_type, flow.requested_aal) {
            (false, _, _) => Claim::No,
            (true, FlowType::Browser, Aal::Aal1) => Claim::Yes,
            _ => Claim::WrongLevel,
        }
    }
    fn login_nodes(&self, e: &Engine, flow: &mut Flow, req: &Req, form: &LoginForm<'_>) -> Result<Vec<Node>> {
        if form.second_factor {
            return Ok(vec![]);
        }
        Ok(e.passkey_login_nodes(flow, req))
    }
    async fn login(&self, e: &Engine, flow: &mut Flow, body: &Body, _req: &Req) -> Result<LoginStep> {
        e.login_passkey(flow, body).await
    }
}

impl Engine {
    /// Settings nodes of the `passkey` group (without the script node).
    pub(crate) fn passkey_settings_nodes(&self, flow: &mut Flow, identity: &Identity) -> Vec<Node> {
        let mut nodes = self.remove_nodes(identity, KeyKind::Passkey);
        let Some(display_name) = self.webauthn_user_name(identity) else {
            // Nothing to show the authenticator: no register nodes (settings-flow §8.6).
            if !flow.ui.messages.iter().any(|m| m.id == 4000009) {
                flow.ui.messages.push(msg::no_identifiers());
            }
            return nodes;
        };
        let Some(options) = self.registration_options(flow, identity, KeyKind::Passkey) else {
            return nodes;
        };
        let options_value: Value = serde_json::from_str(&options).unwrap_or(Value::Null);
        let create_data = json!({ "credentialOptions": options_value, "displayName": display_name }).to_string();
        let browser = flow.flow_type == FlowType::Browser;
        nodes.push(
            Node::input(Group::Passkey, "passkey_register_trigger", "button")
                .value(json!(""))
                .label(msg::passkey_add())
                .with_attrs(|a| {
                    a.onclick_trigger = Some("oryPasskeySettingsRegistration".into());
                    if browser {
                        a.onclick = Some("window.oryPasskeySettingsRegistration()".into());
                    }
                }),
        );
        nodes.push(Node::input(Group::Passkey, "passkey_settings_register", "hidden"));
        nodes.push(Node::input(Group::Passkey, "passkey_create_data", "hidden").value(json!(create_data)));
        nodes
    }

    /// Settings submit of the `passkey` method.
    pub(crate) async fn settings_passkey(&self, flow: &mut Flow, a: &Authed, body: &Body) -> Result<Change> {
        if !self.privileged(a) {
            return Ok(Change::NeedsPrivilege { pending: json!({}) });
        }
        let invalid = |(node, m): (String, UiText)| Change::Invalid { errors: vec![(node, m)], echo: None };
        let register = body_str(body, "passkey_settings_register").unwrap_or_default();
        if !register.is_empty() {
            let name = self.webauthn_user_name(&a.identity).unwrap_or_else(|| "passkey".into());
            let change = match self.finish_registration(
                flow,
                &a.identity,
                KeyKind::Passkey,
                "passkey_settings_register",
                register,
                name,
            )? {
                Ok(identity) => Change::Update { identity, add_method: Some(MethodId::Passkey), revoke_others: false },
                Err(e) => invalid(e),
            };
            reset_registrations(flow, &change);
            return Ok(change);
        }
        let remove = body_str(body, "passkey_remove").unwrap_or_default();
        let change = match self.remove_key(&a.identity, KeyKind::Passkey, remove) {
            Ok(identity) => Change::Update { identity, add_method: None, revoke_others: false },
            Err(e) => invalid(e),
        };
        reset_registrations(flow, &change);
        Ok(change)
    }

    /// Login nodes of the `passkey` group (browser flows, aal1): a discoverable-credential
    /// challenge (state kept on the flow), the hidden result input and the trigger button.
    /// In a refresh flow they are only offered when the session's identity has a passkey.
    pub(crate) fn passkey_login_nodes(&self, flow: &mut Flow, req: &Req) -> Vec<Node> {
        flow.internal_remove(PASSKEY_LOGIN);
        if flow.flow_type != FlowType::Browser || !self.webauthn_enabled(KeyKind::Passkey) {
            return vec![];
        }
        if flow.refresh
            && let Some(a) = &req.auth
            && raw_keys(&a.identity, CredentialType::Passkey).is_empty()
        {
            return vec![];
        }
        let Some(rp) = self.webauthn_rp(KeyKind::Passkey) else { return vec![] };
        let made = rp
            .start_discoverable_authentication()
            .map_err(|e| e.to_string())
            .and_then(|(rcr, st)| ceremony(&rcr, "discoverable", &st));
        let (options, kind, state) = match made {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "could not start a passkey authentication");
                return vec![];
            }
        };
        flow.internal_set(PASSKEY_LOGIN, json!({ "kind": kind, "state": state }));
        vec![
            Node::input(Group::Passkey, "passkey_challenge", "hidden").value(json!(options)),
            Node::input(Group::Passkey, "passkey_login", "hidden").value(json!("")),
            Node::input(Group::Passkey, "passkey_login_trigger", "button")
                .value(json!(""))
                .label(msg::login_passkey())
                .with_attrs(|a| {
                    a.onclick = Some("window.oryPasskeyLogin()".into());
                    a.onclick_trigger = Some("oryPasskeyLogin".into());
                }),
        ]
    }

    /// Login submit of the `passkey` method: the user handle of the assertion names the
    /// identity; the assertion is verified against that identity's passkey.
    pub(crate) async fn login_passkey(&self, flow: &mut Flow, body: &Body) -> Result<LoginStep> {
        let response = body_str(body, "passkey_login").unwrap_or_default().to_string();
        if response.is_empty() {
            return Ok(LoginStep::invalid("passkey_login", msg::missing("passkey_login")));
        }
        let state = flow.internal_remove(PASSKEY_LOGIN);
        let cred: PublicKeyCredential = match serde_json::from_str(&response) {
            Ok(c) => c,
            Err(e) => {
                let m = msg::generic(&format!("Unable to parse WebAuthn response: {e}"));
                return Ok(LoginStep::invalid("passkey_login", m));
            }
        };
        let not_registered =
            || LoginStep::invalid("passkey_login", msg::generic("This passkey is not registered with any account."));
        let Some(handle) = cred.get_user_unique_id().map(<[u8]>::to_vec) else {
            return Ok(not_registered());
        };
        let handle_txt = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &handle);
        let mut found = self.store.find_identity_by_identifier(CredentialType::Passkey, &handle_txt).await?;
        if found.is_none()
            && let Ok(id) = uuid::Uuid::from_slice(&handle)
            && user_handle(id) == handle_txt
        {
            found = self.store.get_identity(id).await?;
        }
        let Some(identity) = found.filter(|i| {
            raw_keys(i, CredentialType::Passkey).iter().any(|e| {
                e.get("id").and_then(Value::as_str).and_then(decode_id).as_deref() == Some(cred.get_credential_id())
            })
        }) else {
            return Ok(not_registered());
        };
        if identity.state != IdentityState::Active {
            return Ok(LoginStep::invalid("", msg::identity_disabled()));
        }
        Ok(match self.verify_assertion(&identity, KeyKind::Passkey, state, &response).await? {
            Err(m) => LoginStep::invalid("passkey_login", m),
            Ok(identity) => LoginStep::Verified { identity, provider: None },
        })
    }
}
