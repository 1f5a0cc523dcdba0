//! The settings flow: create, fetch, submit. Dispatch to one method per submit, privileged
//! session (re-authentication) and AAL gates, CSRF, expiry, success handling and hooks.
//!
//! Beyond Kratos: when a change is blocked because the session is too old, the submitted
//! values (minus secrets) are kept on the flow and the form comes back filled after the
//! refresh login, for every client kind.

use super::hooks::{HookName, Phase};
use super::methods::profile::{PENDING_CHANGES, PendingStart};
use super::methods::{MethodId, REGISTRY};
use super::sessions::Issued;
use super::{Authed, Body, Engine, Req, SubmitFlow, Submitted, with_query};
use crate::activity::ActivityKind;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Aal, CredentialType, Flow, FlowKind, FlowType, Identity};
use crate::store::{Commit, StoreError};
use crate::ui::{Group, Node, UiText, msg};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

/// What a method decided.
#[derive(Debug)]
pub enum Change {
    /// Persist this identity (and optionally extend the session with a method, revoke the
    /// identity's other sessions).
    Update { identity: Identity, add_method: Option<MethodId>, revoke_others: bool },
    /// Form errors: (node name or "" for form level, message). `echo` re-fills trait nodes.
    Invalid { errors: Vec<(String, UiText)>, echo: Option<Value> },
    /// The change needs a privileged session; `pending` is what to keep (no secrets).
    NeedsPrivilege { pending: Value },
    /// Not an update: show the (changed) form again.
    ShowForm,
    /// Persist this identity, end ALL of its sessions (the current one too) and queue these
    /// mails, in one commit (`delete_account` scheduling a deletion).
    UpdateAndSignOut { identity: Identity, messages: Vec<crate::courier::Message> },
    /// Profile changes that wait for the verification of a new address (`verify_before_apply`):
    /// persist `identity` (the other trait changes, if any) and keep `start` pending; or
    /// cancel the pending change of trait `cancel`.
    Pending { identity: Identity, start: Vec<PendingStart>, cancel: Option<String> },
}

/// What a settings success writes besides the identity: pending changes with their mails.
#[derive(Debug, Default)]
struct PendingWrites {
    changes: Vec<crate::model::PendingChange>,
    messages: Vec<crate::courier::Message>,
    continue_with: Vec<Value>,
}

/// A successful settings submit.
#[derive(Debug)]
pub struct SettingsDone {
    pub flow: Flow,
    pub identity: Identity,
    pub method: MethodId,
    /// The updated session, when the method added an authentication method to it.
    pub session: Option<Issued>,
    /// Where a browser goes next.
    pub redirect_to: String,
    /// `continue_with` items produced by hooks.
    pub continue_with: Vec<Value>,
    /// Every session of the identity ended with the change (the caller's too): the client
    /// drops its session (cookie) and a browser goes to `redirect_to` (the sign-in).
    pub signed_out: bool,
}

pub(crate) const PENDING: &str = "pending_change";

impl Engine {
    fn no_session(api: bool) -> Error {
        Error::new(
            ErrorKind::SessionInactive,
            if api {
                "This endpoint can only be accessed with a valid session. Please log in and try again."
            } else {
                "No active session was found in this request."
            },
        )
    }

    fn missing_session() -> Error {
        Error::new(ErrorKind::Unauthorized, "A valid Ory Session Cookie or Ory Session Token is missing.")
    }

    /// `GET /self-service/settings/{browser,api}`.
    pub async fn create_settings(&self, req: &Req, flow_type: FlowType) -> Result<Flow> {
        let a = req.auth.as_ref().ok_or_else(|| Self::no_session(flow_type == FlowType::Api))?;
        let has_return_to =
            url::Url::parse(&req.request_url).ok().is_some_and(|u| u.query_pairs().any(|(k, _)| k == "return_to"));
        if !self.aal_ok(self.cfg.selfservice.flows.settings.required_aal, a) {
            return Err(self.aal2_error(has_return_to.then_some(req.request_url.as_str())));
        }
        self.build_settings_flow(req, a, flow_type).await
    }

    /// Create and store a settings flow for `a` (also used for expiry replacements).
    pub async fn build_settings_flow(&self, req: &Req, a: &Authed, flow_type: FlowType) -> Result<Flow> {
        self.build_settings_flow_with(req, a, flow_type, None).await
    }

    /// [`Engine::build_settings_flow`] carrying a `notice` (a completed recovery's 1060001).
    pub async fn build_settings_flow_with(
        &self,
        req: &Req,
        a: &Authed,
        flow_type: FlowType,
        notice: Option<UiText>,
    ) -> Result<Flow> {
        let mut flow = self.new_flow(
            FlowKind::Settings,
            flow_type,
            &req.request_url,
            self.cfg.selfservice.flows.settings.lifespan.0,
        )?;
        flow.identity_id = Some(a.identity.id);
        flow.state = "show_form".into();
        self.load_pending_changes(&mut flow, &a.identity).await?;
        self.settings_ui(&mut flow, &a.identity, req, None)?;
        flow.ui.messages.extend(notice);
        self.settings_notices(&mut flow, &a.identity);
        self.store.create_flow(&flow).await?;
        Ok(flow)
    }

    /// Build the settings form from scratch for `identity`. `echo` re-fills trait inputs with
    /// submitted values.
    pub fn settings_ui(&self, flow: &mut Flow, identity: &Identity, req: &Req, echo: Option<&Value>) -> Result<()> {
        let csrf = self.bind_csrf(flow, req);
        let schema = self.schema(&identity.schema_id)?.clone();
        let mut nodes = vec![Node::csrf(&csrf)];
        for m in REGISTRY.iter().filter(|m| m.enabled(self)) {
            let mut own = m.settings_nodes(self, flow, identity);
            if m.id() == MethodId::Profile {
                // The profile section shows the values the user submitted, if any.
                own = schema.trait_nodes(Group::Profile, Some(echo.unwrap_or(&identity.traits)));
                own.push(Node::submit(Group::Profile, "method", json!("profile"), msg::label_save()));
            }
            nodes.extend(own);
        }
        self.place_webauthn_script(flow, &mut nodes);
        flow.ui.nodes = nodes;
        if self.cfg.selfservice.methods.profile.enabled {
            self.place_pending_nodes(flow);
        }
        flow.ui.sort(&schema.trait_order());
        if let Some(p) = flow.internal_get(PENDING).cloned() {
            self.prefill_pending(flow, &p);
        }
        Ok(())
    }

    /// Re-fill the form with a change that was blocked for re-authentication.
    fn prefill_pending(&self, flow: &mut Flow, pending: &Value) {
        if let Some(t) = pending.get("traits") {
            let mut leaves = vec![];
            crate::ui::flatten("traits", t, &mut leaves);
            for (k, v) in leaves {
                flow.ui.set_value(&k, v);
            }
        }
        if !flow.ui.messages.iter().any(|m| m.id == 1050024) {
            flow.ui.messages.push(
                UiText::info(
                    1050024,
                    "Your change has not been saved yet: please confirm it is you, then submit it again. Secrets such as passwords must be entered again.",
                )
                .with_context(json!({ "method": pending.get("method").cloned().unwrap_or(Value::Null) })),
            );
        }
    }

    /// `GET /self-service/settings/flows?id=`.
    pub async fn get_settings(&self, id: Uuid, req: &Req) -> Result<Flow> {
        let a = req.auth.as_ref().ok_or_else(Self::missing_session)?;
        let mut flow = self.load_flow(id, FlowKind::Settings).await?;
        if flow.identity_id != Some(a.identity.id) {
            return Err(Error::new(
                ErrorKind::IdentityMismatch,
                "The request was made for another identity and has been blocked for security reasons.",
            ));
        }
        if !self.aal_ok(self.cfg.selfservice.flows.settings.required_aal, a) {
            return Err(self.aal2_error(Some(&self.ui_url_for_flow(FlowKind::Settings, id))));
        }
        if flow.expires_at < self.clock.now() {
            let mut e = Error::new(
                ErrorKind::Gone,
                "The settings flow has expired. Redirect the user to the settings flow init endpoint to initialize a new settings flow.",
            );
            if flow.flow_type == FlowType::Browser {
                let mut init = self.url("/self-service/settings/browser");
                if let Some(rt) = &flow.return_to {
                    init = with_query(&init, &[("return_to", rt)]);
                }
                e = e
                    .with_detail("redirect_to", json!(init))
                    .with_detail("return_to", json!(flow.return_to.clone().unwrap_or_default()));
            } else {
                e = e.with_detail("api", json!(self.url("/self-service/settings/api")));
            }
            return Err(e);
        }
        // The pending changes as they are now (one may have been confirmed or cancelled in
        // another flow); shown, not stored.
        let before = flow.internal_get(PENDING_CHANGES).cloned();
        self.load_pending_changes(&mut flow, &a.identity).await?;
        if flow.internal_get(PENDING_CHANGES).cloned() != before && self.cfg.selfservice.methods.profile.enabled {
            self.place_pending_nodes(&mut flow);
            let order = self.schema(&a.identity.schema_id)?.trait_order();
            flow.ui.sort(&order);
        }
        Ok(flow)
    }

    /// Whether the session may make sensitive changes (`privileged_session_max_age`; a zero
    /// max age means always privileged, for every method alike).
    pub fn privileged(&self, a: &Authed) -> bool {
        let max = self.cfg.selfservice.flows.settings.privileged_session_max_age;
        max.0 == Duration::ZERO || a.session.authenticated_at + max.as_time() > self.clock.now()
    }

    /// `POST /self-service/settings?flow=` (limits and metrics: `instrument.rs`).
    pub(crate) async fn submit_settings_inner(
        &self,
        flow: SubmitFlow,
        body: &Body,
        req: &Req,
    ) -> Result<Submitted<SettingsDone>> {
        let a = req.auth.as_ref().ok_or_else(Self::missing_session)?;
        let mut flow = self.submit_flow(flow, FlowKind::Settings).await?;
        if !self.aal_ok(self.cfg.selfservice.flows.settings.required_aal, a) {
            return Err(self.aal2_error(Some(&req.request_url)));
        }
        if flow.expires_at < self.clock.now() {
            return Err(self.expired_error(&flow, req).await);
        }
        if flow.identity_id != Some(a.identity.id) {
            return Err(Error::new(
                ErrorKind::IdentityMismatch,
                "The request was initiated by someone else and has been blocked for security reasons. Please go back and try again.",
            ));
        }
        self.load_pending_changes(&mut flow, &a.identity).await?;
        // Dispatch: the first responsible method handles the request (settings-flow §7.3).
        let Some(m) = REGISTRY.iter().copied().find(|m| m.claims_settings(&flow, body)) else {
            self.settings_ui(&mut flow, &a.identity, req, None)?;
            flow.ui.messages.retain(|m| m.id == 1050024);
            flow.ui.messages.push(msg::no_strategy_settings());
            self.settings_notices(&mut flow, &a.identity);
            self.save_flow(&mut flow).await?;
            return Ok(Submitted::Invalid(flow));
        };
        match self.gate(m, &flow, req, body, m.settings_precheck(body))? {
            Some(error) => self.settings_invalid(flow, a, req, vec![error], None).await,
            None => {
                let change = m.settings(self, &mut flow, a, body).await?;
                super::with_reason(
                    self.settings_apply(flow, a, req, m.id(), change).await,
                    FlowKind::Settings,
                    Some(m.id()),
                )
            }
        }
    }

    /// Turn a method's decision into the outcome of the submit (also used by the OpenID Connect
    /// callback, which completes a link outside of a submit).
    pub(crate) async fn settings_apply(
        &self,
        mut flow: Flow,
        a: &Authed,
        req: &Req,
        method: MethodId,
        change: Change,
    ) -> Result<Submitted<SettingsDone>> {
        match change {
            Change::Invalid { errors, echo } => self.settings_invalid(flow, a, req, errors, echo).await,
            Change::NeedsPrivilege { mut pending } => {
                pending["method"] = json!(method.as_str());
                flow.internal_set(PENDING, pending);
                // The form shown after the refresh login carries only the pending-change notice.
                flow.ui.messages.clear();
                self.settings_ui(&mut flow, &a.identity, req, None)?;
                self.settings_notices(&mut flow, &a.identity);
                self.save_flow(&mut flow).await?;
                let back = self.url(&format!("/self-service/settings?flow={}", flow.id));
                let url = self.refresh_login_url(&back);
                tracing::info!(flow_id = %flow.id, method = method.as_str(), "settings change needs re-authentication");
                Err(Error::new(
                    ErrorKind::RefreshRequired,
                    "The login session is too old and thus not allowed to update these fields. Please re-authenticate.",
                )
                .with_redirect(url))
            }
            Change::ShowForm => {
                // A fresh form: earlier errors (and success notices) do not apply to it.
                flow.ui.messages.retain(|m| m.id == 1050024);
                self.settings_ui(&mut flow, &a.identity, req, None)?;
                self.settings_notices(&mut flow, &a.identity);
                self.save_flow(&mut flow).await?;
                Ok(Submitted::ShowForm(flow))
            }
            Change::Update { identity, add_method, revoke_others } => {
                let none = PendingWrites::default();
                self.settings_success(flow, a, req, method, identity, add_method, revoke_others, none).await
            }
            Change::Pending { cancel: Some(path), .. } => self.cancel_pending(flow, a, req, &path).await,
            Change::Pending { identity, start, cancel: None } => {
                let writes = self.pending_writes(&identity, &a.identity, &start, flow.flow_type, req).await?;
                self.settings_success(flow, a, req, method, identity, None, false, writes).await
            }
            Change::UpdateAndSignOut { identity, messages } => {
                self.settings_sign_out(flow, a, req, method, identity, messages).await
            }
        }
    }

    /// The verification flows, mails and rows of changes that wait for their new address: a
    /// code to the new address, a notice to the old one.
    async fn pending_writes(
        &self,
        identity: &Identity,
        before: &Identity,
        start: &[PendingStart],
        flow_type: FlowType,
        req: &Req,
    ) -> Result<PendingWrites> {
        let mut w = PendingWrites::default();
        for s in start {
            let (mail, flow_id) = self.pending_change_mail(identity, s, flow_type, &req.request_url).await?;
            w.messages.push(mail);
            if let Some(old) = s.previous.as_ref().and_then(Value::as_str).map(|o| o.trim().to_lowercase())
                && before.verifiable_addresses.iter().any(|a| a.value.eq_ignore_ascii_case(&old) && a.via == "email")
            {
                w.messages.push(self.pending_notice(before, &old, &s.address)?);
            }
            w.changes.push(self.pending_change(identity.id, s, flow_id));
            w.continue_with.push(json!({"action": "show_verification_ui", "flow": {"id": flow_id,
                "verifiable_address": s.address, "url": self.ui_url_for_flow(FlowKind::Verification, flow_id)}}));
        }
        Ok(w)
    }

    /// Cancel the pending change of trait `path`: one commit deletes it with the flow update.
    async fn cancel_pending(
        &self,
        mut flow: Flow,
        a: &Authed,
        req: &Req,
        path: &str,
    ) -> Result<Submitted<SettingsDone>> {
        let pending = flow.internal_get(PENDING_CHANGES).and_then(Value::as_array).cloned().unwrap_or_default();
        if !pending.iter().any(|p| p.get("path").and_then(Value::as_str) == Some(path)) {
            let errors = vec![(String::new(), super::methods::profile::nothing_pending(path))];
            return self.settings_invalid(flow, a, req, errors, None).await;
        }
        flow.internal_set(
            PENDING_CHANGES,
            Value::Array(pending.into_iter().filter(|p| p.get("path").and_then(Value::as_str) != Some(path)).collect()),
        );
        flow.ui.messages.retain(|m| m.id == 1050024);
        self.settings_ui(&mut flow, &a.identity, req, None)?;
        flow.ui.messages.push(super::methods::profile::cancelled(path));
        self.settings_notices(&mut flow, &a.identity);
        flow.updated_at = self.clock.now();
        let res = self
            .store
            .commit(Commit {
                delete_pending_change: Some((a.identity.id, path)),
                update_flow: Some(&flow),
                ..Default::default()
            })
            .await;
        match res {
            Ok(_) => flow.version += 1,
            Err(StoreError::NotFound) => {
                let flow = self.load_flow(flow.id, FlowKind::Settings).await?;
                let errors = vec![(String::new(), super::methods::profile::nothing_pending(path))];
                return self.settings_invalid(flow, a, req, errors, None).await;
            }
            Err(e) => return Err(Error::raced(e, "The flow was changed by a concurrent request.")),
        }
        tracing::info!(identity_id = %a.identity.id, flow_id = %flow.id, "pending change cancelled");
        Ok(Submitted::ShowForm(flow))
    }

    pub(crate) async fn settings_invalid(
        &self,
        mut flow: Flow,
        a: &Authed,
        req: &Req,
        errors: Vec<(String, UiText)>,
        echo: Option<Value>,
    ) -> Result<Submitted<SettingsDone>> {
        let keep_success = flow.state == "success";
        self.settings_ui(&mut flow, &a.identity, req, echo.as_ref())?;
        flow.ui.messages.retain(|m| m.id == 1050024);
        for (node, m) in errors {
            flow.ui.add_message(&node, m);
        }
        if !keep_success {
            flow.state = "show_form".into();
        }
        self.settings_notices(&mut flow, &a.identity);
        self.save_flow(&mut flow).await?;
        Ok(Submitted::Invalid(flow))
    }

    #[allow(clippy::too_many_arguments)]
    async fn settings_success(
        &self,
        mut flow: Flow,
        a: &Authed,
        req: &Req,
        method: MethodId,
        mut identity: Identity,
        add_method: Option<MethodId>,
        revoke_others: bool,
        pending: PendingWrites,
    ) -> Result<Submitted<SettingsDone>> {
        let now = self.clock.now();
        identity.updated_at = now;
        // Post-success redirect target (validated now: it may have left the allow-list).
        let after = &self.cfg.selfservice.flows.settings.after;
        let redirect_to = match &flow.return_to {
            Some(rt) => self.check_return_to(rt)?,
            None => after
                .method(method)
                .and_then(|m| m.default_browser_return_url.clone())
                .or_else(|| after.default_browser_return_url.clone())
                .unwrap_or_else(|| self.ui_url_for_flow(FlowKind::Settings, flow.id)),
        };
        // Changing a second factor (adding, replacing — e.g. regenerated recovery codes — or
        // removing one) needs a session at aal2 when the account has a second factor, whatever
        // `required_aal` says: a password-only session must not mint itself a way past 2FA. Any
        // removal ends the identity's other sessions (a stolen session cannot outlive the
        // factor it used).
        let (before, after) = (a.identity.factor_counts(), identity.factor_counts());
        let lost = |t: &CredentialType| after.get(t).copied().unwrap_or(0) < before.get(t).copied().unwrap_or(0);
        let removed_any = before.keys().any(lost);
        let second_factor = [CredentialType::Totp, CredentialType::LookupSecret, CredentialType::Webauthn];
        // (What a factor holds: a profile change that only renames a key's identifiers is none.)
        let touched = |t: &CredentialType| match (a.identity.credentials.get(t), identity.credentials.get(t)) {
            (Some(x), Some(y)) => x.config != y.config,
            (x, y) => x.is_some() != y.is_some(),
        };
        if second_factor.iter().any(touched) && a.identity.has_second_factor() && a.session.aal < Aal::Aal2 {
            return Err(self.aal2_error(None));
        }
        // Interrupting web hooks run before anything is written.
        if let Err(reason) = self.run_web_hooks(Phase::Interrupting, method, &identity, &flow).await {
            let errors = vec![(String::new(), msg::generic(&reason))];
            return self.settings_invalid(flow, a, req, errors, None).await;
        }
        let session = add_method.map(|m| self.add_enrolled_method(&a.session, m.as_str()));
        let revoke =
            revoke_others || removed_any || self.has_hook(FlowKind::Settings, method, HookName::RevokeActiveSessions);
        flow.internal_remove(PENDING);
        for m in REGISTRY {
            m.settings_succeeded(&mut flow, m.id() == method);
        }
        flow.state = "success".into();
        // The fresh form reflects the updated identity.
        let stored_version = identity.version;
        // The form shows the pending changes as they will be after this commit.
        if !pending.changes.is_empty() {
            let mut list = flow.internal_get(PENDING_CHANGES).and_then(Value::as_array).cloned().unwrap_or_default();
            for p in &pending.changes {
                list.retain(|x| x.get("path").and_then(Value::as_str) != Some(p.path.as_str()));
                list.push(json!({"path": p.path, "value": p.value, "address": p.address, "flow_id": p.flow_id,
                    "expires_at": p.expires_at.unix_timestamp()}));
            }
            flow.internal_set(PENDING_CHANGES, Value::Array(list));
        }
        self.settings_ui(&mut flow, &identity, req, None)?;
        // Only pending changes: nothing was saved yet (the trait nodes carry the notice).
        let identity_changed = identity.traits != a.identity.traits || pending.changes.is_empty();
        flow.ui.messages = if identity_changed { vec![msg::settings_saved()] } else { vec![] };
        self.settings_notices(&mut flow, &identity);
        flow.updated_at = now;
        // A new or changed address gets a verification code; the addresses the account had
        // before get the security notifications of the change (`notify.rs`).
        let mails = self.verification_mails(&identity, Some(&a.identity), flow.flow_type, &req.request_url).await?;
        Self::mark_sent(&mut identity, &mails.messages);
        let schema = self.schema(&identity.schema_id).ok().cloned();
        let notices = super::notify::settings_notices(&a.identity, &identity, method, schema.as_deref());
        let mut messages = mails.messages;
        messages.extend(pending.messages);
        messages.extend(self.notification_mails(&a.identity, &notices)?);
        // The activity log: the change by method, and the other sessions it ended.
        let kinds = [Some(ActivityKind::SettingsChanged), revoke.then_some(ActivityKind::OtherSessionsRevoked)];
        let events = self.successes(identity.id, kinds.into_iter().flatten(), Some(method), Some(a.session.id), req);
        let res = self
            .store
            .commit(Commit {
                queue_messages: &messages,
                update_identity: identity_changed.then_some(&identity),
                previous_identity: Some(&a.identity),
                put_pending_changes: &pending.changes,
                update_session: session.as_ref().map(|s| &s.session),
                revoke_other_sessions: revoke.then_some((identity.id, Some(a.session.id))),
                update_flow: Some(&flow),
                record_activity: &events,
                ..Default::default()
            })
            .await;
        let revoked = match res {
            Ok(n) => n,
            // A concurrent write (or a busy SQLite database) is no duplicate identifier: 409.
            Err(StoreError::Busy(_)) => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "Your account was changed by a concurrent request. Please reload the form and try again.",
                ));
            }
            Err(StoreError::Conflict(_)) => {
                let flow = self.load_flow(flow.id, FlowKind::Settings).await?;
                let errors = vec![(String::new(), msg::duplicate())];
                return self.settings_invalid(flow, a, req, errors, Some(identity.traits.clone())).await;
            }
            Err(e) => return Err(e.into()),
        };
        flow.version += 1;
        if identity_changed {
            identity.version = stored_version + 1;
        }
        tracing::info!(
            identity_id = %identity.id, flow_id = %flow.id, method = method.as_str(), revoked_sessions = revoked,
            "settings updated"
        );
        let mut continue_with = pending.continue_with;
        continue_with.extend(self.run_web_hooks(Phase::After, method, &identity, &flow).await.unwrap_or_default());
        Ok(Submitted::Done(SettingsDone {
            flow,
            identity,
            method,
            session,
            redirect_to,
            continue_with,
            signed_out: false,
        }))
    }
}
