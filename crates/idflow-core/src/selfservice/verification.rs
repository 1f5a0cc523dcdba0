//! The verification flow (`selfservice.flows.verification`): create, submit via
//! [`Engine::open_flow`] → registry dispatch → [`Engine::gate`] → the method decides an
//! [`AddressStep`] → the flow completes here: `choose_method` → `sent_email` →
//! `passed_challenge` (the address `verified`, `verified_at`, status `completed`, message
//! 1080002, one commit, then the `after` web hooks).
//!
//! A session is neither needed nor refused. The mailed link
//! (`/self-service/verification?flow=&code=`) only fills the code in: the user confirms.
//! Registration and settings changes start flows of their own for new unverified addresses
//! ([`Engine::verification_mails`]), queued in the commit that stores the address.

use super::hooks::Phase;
use super::methods::profile::{PENDING_CHANGE, PendingStart, no_longer_applies};
use super::methods::{AddressStep, Method, MethodId, REGISTRY};
use super::{Body, Engine, Req, SubmitFlow, Submitted};
use crate::activity::{ActivityKind, Outcome};
use crate::courier::Message;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Flow, FlowKind, FlowType, Identity};
use crate::store::{Commit, StoreError};
use crate::ui::{Node, UiText, msg};
use serde_json::{Value, json};
use uuid::Uuid;

/// Verification codes for new addresses: the mails for the caller's commit and the flows they
/// belong to (`(flow id, address)`).
#[derive(Debug, Default)]
pub struct VerificationMails {
    pub messages: Vec<Message>,
    pub flows: Vec<(Uuid, String)>,
}

impl VerificationMails {
    /// `continue_with` `show_verification_ui` items, one per flow.
    pub fn continue_with(&self, e: &Engine) -> Vec<serde_json::Value> {
        self.flows
            .iter()
            .map(|(id, address)| {
                json!({"action": "show_verification_ui", "flow": {"id": id, "verifiable_address": address,
                    "url": e.ui_url_for_flow(FlowKind::Verification, *id)}})
            })
            .collect()
    }
}

/// A completed verification.
#[derive(Debug)]
pub struct Verified {
    /// The flow, `passed_challenge` with 1080002.
    pub flow: Flow,
    pub identity: Identity,
}

impl Engine {
    /// `GET /self-service/verification/{browser,api}`.
    pub async fn create_verification(&self, req: &Req, flow_type: FlowType) -> Result<Flow> {
        self.kind_enabled(FlowKind::Verification)?;
        let flow = self.new_code_flow(FlowKind::Verification, req, flow_type)?;
        self.store.create_flow(&flow).await?;
        Ok(flow)
    }

    /// `POST /self-service/verification?flow=` (limits and metrics: `instrument.rs`).
    pub(crate) async fn submit_verification_inner(
        &self,
        flow: SubmitFlow,
        body: &Body,
        req: &Req,
    ) -> Result<Submitted<Verified>> {
        self.kind_enabled(FlowKind::Verification)?;
        let mut flow = self.open_flow(flow, FlowKind::Verification, req, |_| Ok(())).await?;
        let Some(m) = REGISTRY.iter().copied().find(|m| m.claims_verification(body)) else {
            let text = UiText::error(
                4000001,
                "Could not find a strategy to verify your account with. Did you fill out the form correctly?",
            );
            return self.recovery_form(flow, req, vec![(String::new(), text)], false).await;
        };
        if let Some(error) = self.gate(m, &flow, req, body, None)? {
            return self.recovery_form(flow, req, vec![error], false).await;
        }
        let step = m.verification(self, &mut flow, body, req).await?;
        let res = match step {
            AddressStep::Proved { identity, address } => self.verified(flow, m, identity, &address, req).await,
            other => self.code_form_step(flow, m, other, req).await,
        };
        super::with_reason(res, FlowKind::Verification, Some(m.id()))
    }

    /// `GET /self-service/verification?flow=&code=`: the mailed link fills the code in.
    pub async fn fill_verification_code(&self, id: Uuid, code: &str, req: &Req) -> Result<Flow> {
        self.kind_enabled(FlowKind::Verification)?;
        let mut flow = self.open_flow(id.into(), FlowKind::Verification, req, |_| Ok(())).await?;
        if flow.state == "sent_email" {
            // The link carries the code: the flow may be opened in another browser than the one
            // that started it (or none started it: registration, settings).
            let bound = req.csrf_cookie.as_deref().is_some_and(|c| crate::crypto::csrf_matches(c, &flow.csrf_token));
            if flow.flow_type == FlowType::Browser && !bound {
                flow.csrf_token = crate::crypto::new_csrf_secret();
            }
            self.recovery_ui(&mut flow, req);
            let code: String = code.chars().filter(char::is_ascii_digit).take(6).collect();
            flow.ui.set_value("code", json!(code));
            self.save_flow(&mut flow).await?;
        }
        Ok(flow)
    }

    async fn verified(
        &self,
        mut flow: Flow,
        m: &dyn Method,
        previous: Identity,
        address: &str,
        req: &Req,
    ) -> Result<Submitted<Verified>> {
        let now = self.clock.now();
        let mut identity = previous.clone();
        let mut changed = false;
        // A code confirming a pending change (`verify_before_apply`) applies it.
        let pending = flow
            .internal_get(PENDING_CHANGE)
            .filter(|p| p.get("address").and_then(Value::as_str).is_some_and(|x| x.eq_ignore_ascii_case(address)))
            .and_then(|p| p.get("path").and_then(Value::as_str))
            .map(String::from);
        if let Some(path) = &pending {
            match self.apply_pending_change(&previous, path, flow.id, address).await? {
                Ok(applied) => {
                    identity = applied;
                    changed = true;
                }
                Err(message) => return self.pending_failed(flow, &previous, path, message, req).await,
            }
        }
        for a in identity.verifiable_addresses.iter_mut().filter(|a| a.value.eq_ignore_ascii_case(address)) {
            if !a.verified {
                a.verified = true;
                a.status = "completed".into();
                a.verified_at = Some(now);
                a.updated_at = now;
                changed = true;
            }
        }
        let method = m.id();
        if let Err(reason) = self.run_web_hooks(Phase::Interrupting, method, &identity, &flow).await {
            return self.recovery_form(flow, req, vec![(String::new(), msg::generic(&reason))], false).await;
        }
        flow.state = "passed_challenge".into();
        flow.active = Some(method.as_str().into());
        self.recovery_ui(&mut flow, req);
        let back = self.return_url_after(&flow);
        flow.ui.nodes.push(Node::anchor(crate::ui::Group::Code, "continue", &back, msg::label_continue()));
        flow.ui.messages = vec![msg::verification_successful()];
        flow.updated_at = now;
        let sid = req.auth.as_ref().filter(|a| a.identity.id == identity.id).map(|a| a.session.id);
        let mut events =
            vec![self.activity(identity.id, ActivityKind::Verification, Outcome::Success, Some(method), sid, req)];
        // A pending profile change applied now is the change itself: it is logged, and the
        // addresses the account had before it are told (as for any settings change).
        let mut mails = vec![];
        if pending.is_some() {
            events.push(self.activity(
                identity.id,
                ActivityKind::SettingsChanged,
                Outcome::Success,
                Some(MethodId::Profile),
                sid,
                req,
            ));
            let schema = self.schema(&identity.schema_id).ok().cloned();
            let notices = super::notify::settings_notices(&previous, &identity, MethodId::Profile, schema.as_deref());
            mails = self.notification_mails(&previous, &notices)?;
        }
        let res = self
            .store
            .commit(Commit {
                update_identity: changed.then_some(&identity),
                previous_identity: changed.then_some(&previous),
                update_flow: Some(&flow),
                delete_pending_change: pending.as_deref().map(|p| (identity.id, p)),
                record_activity: &events,
                queue_messages: &mails,
                ..Default::default()
            })
            .await;
        match res {
            Ok(_) => flow.version += 1,
            Err(StoreError::Busy(_)) => {
                return Err(Error::new(ErrorKind::Conflict, "The flow was completed by a concurrent request."));
            }
            // Cancelled meanwhile, or the address was taken by another identity meanwhile.
            Err(StoreError::NotFound) if pending.is_some() => {
                let flow = self.load_flow(flow.id, FlowKind::Verification).await?;
                return self.recovery_form(flow, req, vec![(String::new(), no_longer_applies())], false).await;
            }
            Err(StoreError::Conflict(_)) if pending.is_some() => {
                let flow = self.load_flow(flow.id, FlowKind::Verification).await?;
                let path = pending.unwrap_or_default();
                return self.pending_failed(flow, &previous, &path, msg::duplicate(), req).await;
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(identity_id = %identity.id, flow_id = %flow.id, "address verified");
        let _ = self.run_web_hooks(Phase::After, method, &identity, &flow).await;
        Ok(Submitted::Done(Verified { flow, identity }))
    }

    /// A pending change that cannot apply: it is dropped (when still there) with the flow's
    /// error, in one commit; the form shows `message`.
    async fn pending_failed(
        &self,
        mut flow: Flow,
        identity: &Identity,
        path: &str,
        message: UiText,
        req: &Req,
    ) -> Result<Submitted<Verified>> {
        flow.internal_remove(PENDING_CHANGE);
        self.recovery_ui(&mut flow, req);
        flow.ui.messages.clear();
        flow.ui.add_message("", message);
        let ours = self
            .store
            .list_pending_changes(identity.id)
            .await?
            .into_iter()
            .any(|p| p.path == path && p.flow_id == flow.id);
        let res = self
            .store
            .commit(Commit {
                update_flow: Some(&flow),
                delete_pending_change: ours.then_some((identity.id, path)),
                ..Default::default()
            })
            .await;
        match res {
            Ok(_) => flow.version += 1,
            Err(StoreError::Busy(_) | StoreError::NotFound) => {
                return Err(Error::new(ErrorKind::Conflict, "The flow was completed by a concurrent request."));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(identity_id = %identity.id, flow_id = %flow.id, "pending change could not apply");
        Ok(Submitted::Invalid(flow))
    }

    /// A verification flow whose code (mailed to the new address) confirms a pending change;
    /// the flow is stored, the mail is for the caller's commit.
    pub(crate) async fn pending_change_mail(
        &self,
        identity: &Identity,
        start: &PendingStart,
        flow_type: FlowType,
        request_url: &str,
    ) -> Result<(Message, Uuid)> {
        let pending = json!({"identity_id": identity.id, "path": start.path, "address": start.address});
        let (flow, mail) =
            self.address_code_flow(identity, &start.address, Some(pending), flow_type, request_url).await?;
        tracing::info!(identity_id = %identity.id, flow_id = %flow.id, "verification code for a pending change sent");
        Ok((mail, flow.id))
    }

    /// A stored verification flow (code sent) for `address` of `identity`, with the mail of its
    /// code for the caller's commit; `pending` ties it to a pending change.
    async fn address_code_flow(
        &self,
        identity: &Identity,
        address: &str,
        pending: Option<Value>,
        flow_type: FlowType,
        request_url: &str,
    ) -> Result<(Flow, Message)> {
        let req = Req { request_url: self.url("/self-service/verification/browser"), ..Req::default() };
        let lifespan = self.cfg.selfservice.flows.verification.lifespan.0;
        let mut flow = self.new_flow(FlowKind::Verification, flow_type, &req.request_url, lifespan)?;
        let (code, _) = self.put_recovery_code(&mut flow, Some(identity), address, None);
        if let Some(p) = pending {
            flow.internal_set(PENDING_CHANGE, p);
        }
        flow.active = Some(MethodId::Code.as_str().into());
        self.recovery_ui(&mut flow, &req);
        flow.ui.messages = vec![msg::verification_code_sent()];
        self.store.create_flow(&flow).await?;
        let mail = self.code_mail(&flow, Some(identity), address, &code, request_url)?;
        Ok((flow, mail))
    }

    /// Addresses a verification mail goes to move from `pending` to `sent`.
    pub(crate) fn mark_sent(identity: &mut Identity, mails: &[Message]) {
        for a in identity.verifiable_addresses.iter_mut().filter(|a| !a.verified && a.status != "sent") {
            if let Some(m) = mails.iter().find(|m| m.recipient.eq_ignore_ascii_case(&a.value)) {
                a.status = "sent".into();
                a.updated_at = m.created_at;
            }
        }
    }

    /// With verification enabled: a verification flow and its mail for each unverified
    /// address of `identity` that `before` does not have unverified already (registration:
    /// `before` is None, every unverified address). The flows are stored; the mails are for the
    /// caller's commit.
    pub async fn verification_mails(
        &self,
        identity: &Identity,
        before: Option<&Identity>,
        flow_type: FlowType,
        request_url: &str,
    ) -> Result<VerificationMails> {
        let mut out = VerificationMails::default();
        if !self.cfg.selfservice.flows.verification.enabled || !self.cfg.selfservice.methods.code.enabled {
            return Ok(out);
        }
        for a in identity.verifiable_addresses.iter().filter(|a| !a.verified && a.via == "email") {
            let known = before.is_some_and(|b| {
                b.verifiable_addresses.iter().any(|o| o.value.eq_ignore_ascii_case(&a.value) && !o.verified)
            });
            if known {
                continue;
            }
            let (flow, mail) = self.address_code_flow(identity, &a.value, None, flow_type, request_url).await?;
            out.messages.push(mail);
            out.flows.push((flow.id, a.value.clone()));
            tracing::info!(identity_id = %identity.id, flow_id = %flow.id, "verification code sent");
        }
        Ok(out)
    }
}
