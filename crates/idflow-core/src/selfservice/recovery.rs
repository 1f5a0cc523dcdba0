//! The recovery flow (`selfservice.flows.recovery`): create, submit via [`Engine::open_flow`] →
//! registry dispatch → [`Engine::gate`] → the method decides a [`AddressStep`] → the flow
//! completes here: states `choose_method` → `sent_email` → `passed_challenge`.
//!
//! On success (one commit): the recovery address is marked verified, a privileged session is
//! issued (`code_recovery`, aal1), the recovery `after` hooks run (`revoke_active_sessions` by
//! default, `web_hook`), and a settings flow is created for the new session (the recovery
//! flow's `return_to` inherited) carrying message 1060001. An identity with a second factor is
//! sent to an aal2 login first when settings require the highest available AAL: recovery
//! never bypasses MFA.

use super::hooks::{HookName, Phase};
use super::methods::{AddressStep, Method, MethodId, REGISTRY};
use super::sessions::Issued;
use super::{Authed, Body, Engine, Req, SubmitFlow, Submitted, with_query};
use crate::activity::ActivityKind;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Flow, FlowKind, FlowType, Identity};
use crate::store::Commit;
use crate::ui::{Node, UiText, msg};
use uuid::Uuid;

/// A completed recovery.
#[derive(Debug)]
pub struct Recovered {
    /// The recovery flow, `passed_challenge`.
    pub flow: Flow,
    pub identity: Identity,
    /// The privileged session (with its token).
    pub issued: Issued,
    /// The settings flow the user changes the password in.
    pub settings_flow: Flow,
    /// Where a browser goes next: the settings UI, or first an aal2 login.
    pub redirect_to: String,
}

impl Engine {
    fn recovery_session_refused() -> Error {
        Error::new(
            ErrorKind::SessionAlreadyAvailable,
            "A valid session was detected and thus recovery is not possible. Please sign out first.",
        )
    }

    /// `GET /self-service/recovery/{browser,api}`.
    pub async fn create_recovery(&self, req: &Req, flow_type: FlowType) -> Result<Flow> {
        self.kind_enabled(FlowKind::Recovery)?;
        if req.auth.is_some() {
            return Err(Self::recovery_session_refused());
        }
        let flow = self.new_code_flow(FlowKind::Recovery, req, flow_type)?;
        self.store.create_flow(&flow).await?;
        Ok(flow)
    }

    /// A recovery or verification flow (`kind`) in `choose_method`, not stored yet.
    pub fn new_code_flow(&self, kind: FlowKind, req: &Req, flow_type: FlowType) -> Result<Flow> {
        let f = &self.cfg.selfservice.flows;
        let lifespan = if kind == FlowKind::Recovery { f.recovery.lifespan.0 } else { f.verification.lifespan.0 };
        let mut flow = self.new_flow(kind, flow_type, &req.request_url, lifespan)?;
        self.recovery_ui(&mut flow, req);
        Ok(flow)
    }

    /// The form of a recovery or verification flow in its state (the registry's nodes).
    pub(crate) fn recovery_ui(&self, flow: &mut Flow, req: &Req) {
        let csrf = self.bind_csrf(flow, req);
        let mut nodes = vec![Node::csrf(&csrf)];
        for m in REGISTRY.iter().filter(|m| m.enabled(self)) {
            if flow.kind == FlowKind::Recovery {
                nodes.extend(m.recovery_nodes(self, flow));
            } else {
                nodes.extend(m.verification_nodes(self, flow));
            }
        }
        flow.ui.nodes = nodes;
    }

    /// `POST /self-service/recovery?flow=` (limits and metrics: `instrument.rs`).
    pub(crate) async fn submit_recovery_inner(
        &self,
        flow: SubmitFlow,
        body: &Body,
        req: &Req,
    ) -> Result<Submitted<Recovered>> {
        self.kind_enabled(FlowKind::Recovery)?;
        let mut flow = self
            .open_flow(flow, FlowKind::Recovery, req, |_| {
                if req.auth.is_some() { Err(Self::recovery_session_refused()) } else { Ok(()) }
            })
            .await?;
        let Some(m) = REGISTRY.iter().copied().find(|m| m.claims_recovery(body)) else {
            let text = UiText::error(
                4000001,
                "Could not find a strategy to recover your account with. Did you fill out the form correctly?",
            );
            return self.recovery_form(flow, req, vec![(String::new(), text)], false).await;
        };
        if let Some(error) = self.gate(m, &flow, req, body, None)? {
            return self.recovery_form(flow, req, vec![error], false).await;
        }
        let step = m.recovery(self, &mut flow, body, req).await?;
        super::with_reason(self.complete_recovery(flow, m, step, req).await, FlowKind::Recovery, Some(m.id()))
    }

    /// The form again with `errors`: 400 (`invalid`) or 200 (`show`).
    pub(crate) async fn recovery_form<T>(
        &self,
        mut flow: Flow,
        req: &Req,
        errors: Vec<(String, UiText)>,
        show: bool,
    ) -> Result<Submitted<T>> {
        self.recovery_ui(&mut flow, req);
        flow.ui.messages.clear();
        for (node, m) in errors {
            flow.ui.add_message(&node, m);
        }
        self.save_flow(&mut flow).await?;
        Ok(if show { Submitted::ShowForm(flow) } else { Submitted::Invalid(flow) })
    }

    async fn complete_recovery(
        &self,
        flow: Flow,
        m: &dyn Method,
        step: AddressStep,
        req: &Req,
    ) -> Result<Submitted<Recovered>> {
        match step {
            AddressStep::Proved { identity, address } => self.recovered(flow, m.id(), identity, &address, req).await,
            other => self.code_form_step(flow, m, other, req).await,
        }
    }

    /// The steps recovery and verification share: form errors, a wrong code, a replaced flow,
    /// a code sent (the flow change and its mail in one commit).
    pub(crate) async fn code_form_step<T>(
        &self,
        mut flow: Flow,
        m: &dyn Method,
        step: AddressStep,
        req: &Req,
    ) -> Result<Submitted<T>> {
        let recovery = flow.kind == FlowKind::Recovery;
        match step {
            AddressStep::Invalid { errors } => self.recovery_form(flow, req, errors, false).await,
            AddressStep::Retry { errors } => self.recovery_form(flow, req, errors, true).await,
            AddressStep::Restart { message } => {
                let r = Req { auth: None, request_url: flow.request_url.clone(), ..req.clone() };
                let mut fresh = self.new_code_flow(flow.kind, &r, flow.flow_type)?;
                fresh.ui.messages.push(message);
                self.store.create_flow(&fresh).await?;
                Ok(Submitted::ShowForm(fresh))
            }
            AddressStep::Sent { messages } => {
                self.recovery_ui(&mut flow, req);
                flow.ui.messages =
                    vec![if recovery { msg::recovery_code_sent() } else { msg::verification_code_sent() }];
                flow.active = Some(m.id().as_str().into());
                flow.updated_at = self.clock.now();
                // Verification: a pending address whose code goes out now is `sent`.
                let mut owner = None;
                if let (false, Some(first)) = (recovery, messages.first()) {
                    let to = first.recipient.to_lowercase();
                    if let Some(previous) = self.store.find_identity_by_verifiable_address(&to).await? {
                        let mut next = previous.clone();
                        Self::mark_sent(&mut next, &messages);
                        if next.verifiable_addresses != previous.verifiable_addresses {
                            owner = Some((previous, next));
                        }
                    }
                }
                match self
                    .store
                    .commit(Commit {
                        update_flow: Some(&flow),
                        queue_messages: &messages,
                        update_identity: owner.as_ref().map(|(_, next)| next),
                        previous_identity: owner.as_ref().map(|(previous, _)| previous),
                        ..Default::default()
                    })
                    .await
                {
                    Ok(_) => flow.version += 1,
                    Err(e) => {
                        return Err(Error::raced(e, "The flow was changed by a concurrent request. Please try again."));
                    }
                }
                Ok(Submitted::ShowForm(flow))
            }
            AddressStep::Proved { .. } => Err(Error::internal("a proved address is the flow kind's to complete")),
        }
    }

    async fn recovered(
        &self,
        mut flow: Flow,
        method: MethodId,
        previous: Identity,
        address: &str,
        req: &Req,
    ) -> Result<Submitted<Recovered>> {
        let now = self.clock.now();
        // Proving the mail address verifies it.
        let mut identity = previous.clone();
        let mut changed = false;
        for a in identity.verifiable_addresses.iter_mut().filter(|a| a.value.eq_ignore_ascii_case(address)) {
            if !a.verified {
                a.verified = true;
                a.status = "completed".into();
                a.verified_at = Some(now);
                a.updated_at = now;
                changed = true;
            }
        }
        if let Err(reason) = self.run_web_hooks(Phase::Interrupting, method, &identity, &flow).await {
            return self.recovery_form(flow, req, vec![(String::new(), msg::generic(&reason))], false).await;
        }
        let issued = self.new_session(&identity, "code_recovery", req);
        let a = Authed { session: issued.session.clone(), identity: identity.clone() };
        // The settings flow, created for the new session (stored before the commit: a lost
        // commit leaves an unused flow, never a session without its form).
        let mut settings_url = self.url("/self-service/settings/browser");
        if let Some(rt) = &flow.return_to {
            settings_url = with_query(&settings_url, &[("return_to", rt)]);
        }
        let sr = Req { auth: Some(a.clone()), request_url: settings_url, ..req.clone() };
        let max = self.cfg.selfservice.flows.settings.privileged_session_max_age.0;
        let notice = msg::recovery_successful(
            max.as_secs_f64() / 60.0,
            (now + time::Duration::seconds(i64::try_from(max.as_secs()).unwrap_or(0))).unix_timestamp(),
        );
        let settings_flow = self.build_settings_flow_with(&sr, &a, flow.flow_type, Some(notice)).await?;
        let revoke = self.has_hook(FlowKind::Recovery, method, HookName::RevokeActiveSessions);
        // The activity log, and the notices of a recovery (`notify.rs`) to the addresses the
        // account had before it.
        let sid = Some(issued.session.id);
        let kinds = [Some(ActivityKind::Recovery), revoke.then_some(ActivityKind::OtherSessionsRevoked)];
        let events = self.successes(identity.id, kinds.into_iter().flatten(), Some(method), sid, req);
        let mails = self.notification_mails(&previous, &super::notify::recovery_notices(revoke))?;
        flow.state = "passed_challenge".into();
        flow.active = Some(method.as_str().into());
        flow.ui.nodes.retain(|n| n.id() == "csrf_token");
        flow.ui.messages.clear();
        flow.updated_at = now;
        let res = self
            .store
            .commit(Commit {
                update_identity: changed.then_some(&identity),
                previous_identity: changed.then_some(&previous),
                create_session: Some(&issued.session),
                revoke_other_sessions: revoke.then_some((identity.id, Some(issued.session.id))),
                update_flow: Some(&flow),
                queue_messages: &mails,
                record_activity: &events,
                ..Default::default()
            })
            .await;
        match res {
            Ok(_) => flow.version += 1,
            Err(e) => return Err(Error::raced(e, "The flow was completed by a concurrent request.")),
        }
        tracing::info!(identity_id = %identity.id, session_id = %issued.session.id, flow_id = %flow.id, "account recovered");
        let _ = self.run_web_hooks(Phase::After, method, &identity, &flow).await;
        let settings_ui = self.ui_url_for_flow(FlowKind::Settings, settings_flow.id);
        let redirect_to = if self.aal_ok(self.cfg.selfservice.flows.settings.required_aal, &a) {
            settings_ui
        } else {
            self.aal2_login_url(Some(&settings_ui))
        };
        Ok(Submitted::Done(Recovered { flow, identity, issued, settings_flow, redirect_to }))
    }
}

/// Recovery started by an administrator.
impl Engine {
    /// `POST /admin/recovery/code`: a recovery flow for `identity_id` in `sent_email` with a
    /// fresh code, valid `expires_in` (default: the code method's lifespan). Returns the flow,
    /// the code and its expiry.
    pub async fn admin_recovery_code(
        &self,
        identity_id: Uuid,
        expires_in: Option<std::time::Duration>,
        flow_type: FlowType,
        link: bool,
    ) -> Result<(Flow, String, time::OffsetDateTime)> {
        self.kind_enabled(FlowKind::Recovery)?;
        let identity = self
            .store
            .get_identity(identity_id)
            .await?
            .ok_or_else(|| Error::not_found("The requested identity does not exist."))?;
        let lifespan = expires_in.unwrap_or(self.cfg.selfservice.methods.code.config.lifespan.0);
        let req = Req { request_url: self.url("/self-service/recovery/browser"), ..Req::default() };
        let mut flow = self.new_flow(FlowKind::Recovery, flow_type, &req.request_url, lifespan)?;
        let address = identity.recovery_addresses.first().map(|a| a.value.clone()).unwrap_or_default();
        let (code, expires_at) = self.put_recovery_code(&mut flow, Some(&identity), &address, Some(lifespan));
        flow.internal_set(ADMIN, serde_json::json!(true));
        if link {
            flow.internal_set(LINK, serde_json::json!(true));
        }
        flow.active = Some(MethodId::Code.as_str().into());
        self.recovery_ui(&mut flow, &req);
        self.store.create_flow(&flow).await?;
        tracing::info!(flow_id = %flow.id, identity_id = %identity.id, "recovery code created by an administrator");
        Ok((flow, code, expires_at))
    }

    /// `GET /self-service/recovery?flow=&token=`: the link of `POST /admin/recovery/link`
    /// carries the code; opening it recovers the account in this browser (the link is the
    /// secret, so the flow is bound to the browser that opens it, without a form).
    pub async fn recover_with_link(&self, id: Uuid, token: &str, req: &Req) -> Result<Submitted<Recovered>> {
        self.kind_enabled(FlowKind::Recovery)?;
        let mut flow = self
            .open_flow(id.into(), FlowKind::Recovery, req, |_| {
                if req.auth.is_some() { Err(Self::recovery_session_refused()) } else { Ok(()) }
            })
            .await?;
        if flow.internal_get(LINK).is_none() {
            let text = UiText::error(
                4060004,
                "The recovery token is invalid or has already been used. Please retry the flow.",
            );
            return self.recovery_form(flow, req, vec![(String::new(), text)], true).await;
        }
        let m = super::methods::get(MethodId::Code);
        if !m.enabled(self) {
            return Err(super::methods::disabled());
        }
        flow.internal_remove(ADMIN);
        flow.internal_remove(LINK);
        if let Some(c) = req.csrf_cookie.as_ref().filter(|c| !c.is_empty()) {
            flow.csrf_token = c.clone();
        }
        let mut body = Body::new();
        body.insert("method".into(), serde_json::json!("code"));
        body.insert("code".into(), serde_json::json!(token));
        let step = m.recovery(self, &mut flow, &body, req).await?;
        self.complete_recovery(flow, m, step, req).await
    }

    /// `GET /self-service/recovery?flow=`: a browser flow created by an administrator is bound
    /// to the first browser that opens its link (its CSRF cookie); other flows are returned as
    /// they are.
    pub async fn claim_admin_recovery(&self, id: Uuid, req: &Req) -> Result<Flow> {
        self.kind_enabled(FlowKind::Recovery)?;
        let mut flow = self.open_flow(id.into(), FlowKind::Recovery, req, |_| Ok(())).await?;
        if flow.flow_type == FlowType::Browser && flow.internal_get(ADMIN).is_some() {
            flow.internal_remove(ADMIN);
            flow.csrf_token = crate::crypto::new_csrf_secret();
            self.recovery_ui(&mut flow, req);
            self.save_flow(&mut flow).await?;
        }
        Ok(flow)
    }
}

/// Flow state key: created by an administrator, not yet opened by a browser.
const ADMIN: &str = "admin_created";
/// Flow state key: created for `POST /admin/recovery/link` (its link carries the code).
const LINK: &str = "admin_link";
