//! `after` hooks of every flow kind, run by the flow pipeline (never by a method):
//! `selfservice.flows.<kind>.after[.<method>].hooks`.
//!
//! - `web_hook` (`config: {url, timeout, can_interrupt}`): an interrupting hook runs before
//!   anything is written and its failure is a form error; a non-interrupting one runs after the
//!   commit and its failure is reported (settings: `continue_with`; others: the log).
//! - `revoke_active_sessions` (settings, login, recovery — on by default after recovery): the identity's other sessions are revoked in the
//!   same transaction as the change.
//! - `session` (registration): the new identity is signed in.
//! - `show_verification_ui` (registration): the answer names the verification flow started for
//!   each new address (`continue_with` `show_verification_ui`).
//! - `require_verified_address` (login): an identity without a verified address is refused
//!   (403, message 4000010) and pointed at a verification flow for its address.

use super::Engine;
use super::methods::MethodId;
use crate::config::{After, Hook};
use crate::model::{Flow, FlowKind, Identity};
use serde_json::{Value, json};
use std::time::Duration;

/// A hook name of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookName {
    Session,
    RevokeActiveSessions,
    WebHook,
    RequireVerifiedAddress,
    ShowVerificationUi,
}

impl HookName {
    pub fn as_str(self) -> &'static str {
        match self {
            HookName::Session => "session",
            HookName::RevokeActiveSessions => "revoke_active_sessions",
            HookName::WebHook => "web_hook",
            HookName::RequireVerifiedAddress => "require_verified_address",
            HookName::ShowVerificationUi => "show_verification_ui",
        }
    }
}

/// When a web hook runs relative to the commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the commit: `can_interrupt: true` hooks; a failure stops the flow.
    Interrupting,
    /// After the commit: a failure is only reported.
    After,
}

impl Engine {
    /// The `after` configuration of a flow kind.
    pub fn after_config(&self, kind: FlowKind) -> Option<&After> {
        let f = &self.cfg.selfservice.flows;
        match kind {
            FlowKind::Login => Some(&f.login.after),
            FlowKind::Registration => Some(&f.registration.after),
            FlowKind::Settings => Some(&f.settings.after),
            FlowKind::Recovery => Some(&f.recovery.after),
            FlowKind::Verification => Some(&f.verification.after),
        }
    }

    /// Where a browser goes after a completed login or registration: the flow's `return_to`,
    /// else `after.<method>.default_browser_return_url` (the method that completed the flow),
    /// else `after.default_browser_return_url`, else `selfservice.default_browser_return_url`.
    pub fn return_url_after(&self, flow: &Flow) -> String {
        let after = self.after_config(flow.kind);
        let method = flow.active.as_deref().and_then(MethodId::parse);
        flow.return_to
            .clone()
            .or_else(|| after.zip(method).and_then(|(a, m)| a.method(m)?.default_browser_return_url.clone()))
            .or_else(|| after.and_then(|a| a.default_browser_return_url.clone()))
            .unwrap_or_else(|| self.default_return_url())
    }

    /// The hooks configured after `method` in a flow of `kind`.
    pub fn hooks(&self, kind: FlowKind, method: MethodId) -> &[Hook] {
        self.after_config(kind).map(|a| a.hooks_for(method)).unwrap_or(&[])
    }

    /// Whether hook `name` is configured after `method` in a flow of `kind`.
    pub fn has_hook(&self, kind: FlowKind, method: MethodId, name: HookName) -> bool {
        self.hooks(kind, method).iter().any(|h| h.hook == name.as_str())
    }

    /// `require_verified_address`: `Err` (403 with 4000010, `continue_with`
    /// `show_verification_ui` and a redirect to that flow's UI) when `identity` has no verified
    /// address.
    pub(crate) async fn require_verified_address(
        &self,
        method: MethodId,
        identity: &Identity,
        flow: &Flow,
    ) -> crate::error::Result<()> {
        if !self.has_hook(FlowKind::Login, method, HookName::RequireVerifiedAddress)
            || identity.verifiable_addresses.iter().any(|a| a.verified)
        {
            return Ok(());
        }
        let text = crate::ui::msg::address_not_verified();
        let mut e = crate::error::Error::new(crate::error::ErrorKind::Forbidden, text.text.clone())
            .with_detail("messages", json!([text]));
        if let Some(a) = identity.verifiable_addresses.first()
            && self.cfg.selfservice.flows.verification.enabled
        {
            let req = super::Req { request_url: self.url("/self-service/verification/browser"), ..Default::default() };
            let mut v = self.new_code_flow(FlowKind::Verification, &req, flow.flow_type)?;
            v.ui.set_value("email", json!(a.value));
            self.store.create_flow(&v).await?;
            let url = self.ui_url_for_flow(FlowKind::Verification, v.id);
            e = e
                .with_detail(
                    "continue_with",
                    json!([{"action": "show_verification_ui",
                        "flow": {"id": v.id, "verifiable_address": a.value, "url": url}}]),
                )
                .with_redirect(url);
        }
        tracing::info!(identity_id = %identity.id, flow_id = %flow.id, "login refused: no verified address");
        Err(e)
    }

    /// Run the web hooks of one phase. Interrupting: `Err(reason)` on the first failure.
    /// After: every failure is returned as a `continue_with` item (and logged).
    pub(crate) async fn run_web_hooks(
        &self,
        phase: Phase,
        method: MethodId,
        identity: &Identity,
        flow: &Flow,
    ) -> std::result::Result<Vec<Value>, String> {
        let mut failed = vec![];
        for h in self.hooks(flow.kind, method).iter().filter(|h| h.hook == HookName::WebHook.as_str()) {
            let can_interrupt =
                h.config.as_ref().and_then(|c| c.get("can_interrupt")).and_then(Value::as_bool).unwrap_or(false);
            if can_interrupt != (phase == Phase::Interrupting) {
                continue;
            }
            if let Err(reason) = self.post_web_hook(h, identity, flow, method).await {
                if phase == Phase::Interrupting {
                    return Err(reason);
                }
                tracing::warn!(flow_id = %flow.id, kind = flow.kind.as_str(), %reason, "web hook failed after the flow completed");
                failed.push(json!({"action": "web_hook_failed", "reason": reason}));
            }
        }
        Ok(failed)
    }

    /// POST the identity to a configured web hook. Err carries a clear reason.
    async fn post_web_hook(
        &self,
        h: &Hook,
        identity: &Identity,
        flow: &Flow,
        method: MethodId,
    ) -> std::result::Result<(), String> {
        let cfg = h.config.clone().unwrap_or(Value::Null);
        let url = cfg.get("url").and_then(Value::as_str).unwrap_or_default();
        let timeout = cfg
            .get("timeout")
            .and_then(Value::as_str)
            .and_then(|t| crate::config::parse_duration(t).ok())
            .unwrap_or(Duration::from_secs(5));
        let payload = json!({
            "flow_id": flow.id,
            "flow_type": flow.flow_type.as_str(),
            "flow_kind": flow.kind.as_str(),
            "method": method.as_str(),
            "identity": {
                "id": identity.id,
                "schema_id": identity.schema_id,
                "state": identity.state.as_str(),
                "traits": identity.traits,
                "metadata_public": identity.metadata_public,
            },
        });
        match self.hooks.post(url, &payload, timeout).await {
            Ok(s) if (200..300).contains(&s) => Ok(()),
            Ok(s) => Err(format!("The web hook answered with HTTP status {s}.")),
            Err(e) => Err(format!("The web hook could not be reached: {e}.")),
        }
    }
}
