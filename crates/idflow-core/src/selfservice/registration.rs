//! The registration flow: the trait inputs of the default schema plus each method's nodes; the
//! method decides (a new identity, or form errors), the flow signs the user in (`session` hook),
//! runs the `after` hooks and commits once.

use super::hooks::{HookName, Phase};
use super::methods::{Method, REGISTRY, RegistrationStep};
use super::sessions::Issued;
use super::{Body, Engine, Req, SubmitFlow, Submitted};
use crate::activity::{ActivityKind, Outcome};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Flow, FlowKind, FlowType, Identity};
use crate::store::Commit;
use crate::ui::{Group, Node, msg};
use serde_json::Value;
use uuid::Uuid;

/// A completed registration.
#[derive(Debug)]
pub struct Registered {
    pub flow: Flow,
    pub identity: Identity,
    /// Present when the `session` hook ran.
    pub session: Option<Issued>,
    /// `continue_with` items of the hooks: `show_verification_ui` for each verification flow
    /// started, when that hook is configured.
    pub continue_with: Vec<Value>,
}

impl Engine {
    /// Create a registration flow.
    pub async fn create_registration(&self, req: &Req, flow_type: FlowType) -> Result<Flow> {
        if req.auth.is_some() {
            return Err(Self::session_already_available());
        }
        self.kind_enabled(FlowKind::Registration)?;
        let mut flow = self.new_flow(
            FlowKind::Registration,
            flow_type,
            &req.request_url,
            self.cfg.selfservice.flows.registration.lifespan.0,
        )?;
        self.registration_ui(&mut flow, req, None)?;
        self.store.create_flow(&flow).await?;
        Ok(flow)
    }

    pub(crate) fn registration_ui(&self, flow: &mut Flow, req: &Req, traits: Option<&Value>) -> Result<()> {
        let csrf = self.bind_csrf(flow, req);
        let schema = self.default_schema()?;
        let mut nodes = vec![Node::csrf(&csrf)];
        nodes.extend(schema.trait_nodes(Group::Default, traits));
        for m in REGISTRY.iter().filter(|m| m.enabled(self)) {
            nodes.extend(m.registration_nodes(self));
        }
        flow.ui.nodes = nodes;
        Ok(())
    }

    fn session_already_available() -> Error {
        Error::new(
            ErrorKind::SessionAlreadyAvailable,
            "A valid session was detected and thus registration is not possible.",
        )
    }

    /// The form again with the submitted traits and these errors.
    pub(crate) async fn registration_invalid(
        &self,
        mut flow: Flow,
        req: &Req,
        traits: Option<&Value>,
        errors: Vec<(String, crate::ui::UiText)>,
    ) -> Result<Submitted<Registered>> {
        self.registration_ui(&mut flow, req, traits)?;
        for (node, m) in errors {
            flow.ui.add_message(&node, m);
        }
        self.save_flow(&mut flow).await?;
        Ok(Submitted::Invalid(flow))
    }

    /// Submit a registration flow (limits and metrics: `instrument.rs`).
    pub(crate) async fn submit_registration_inner(
        &self,
        flow: SubmitFlow,
        body: &Body,
        req: &Req,
    ) -> Result<Submitted<Registered>> {
        let rules = |_: &Flow| if req.auth.is_some() { Err(Self::session_already_available()) } else { Ok(()) };
        let mut flow = self.open_flow(flow, FlowKind::Registration, req, rules).await?;
        let traits = body.get("traits").filter(|t| t.is_object()).cloned();
        let Some(m) = REGISTRY.iter().copied().find(|m| m.claims_registration(body)) else {
            flow.ui.messages.clear();
            let errors = vec![(String::new(), msg::no_strategy_registration())];
            return self.registration_invalid(flow, req, traits.as_ref(), errors).await;
        };
        if let Some(error) = self.gate(m, &flow, req, body, None)? {
            return self.registration_invalid(flow, req, traits.as_ref(), vec![error]).await;
        }
        let step = m.register(self, &mut flow, body, req).await?;
        let res = self.complete_registration(flow, m, step, req).await;
        super::with_reason(res, FlowKind::Registration, Some(m.id()))
    }

    /// Turn a method's registration step into the outcome: form errors, or the identity stored
    /// (with a session when the `session` hook is configured), after hooks, one commit.
    pub(crate) async fn complete_registration(
        &self,
        mut flow: Flow,
        m: &dyn Method,
        step: RegistrationStep,
        req: &Req,
    ) -> Result<Submitted<Registered>> {
        let method = m.id();
        let (mut identity, provider, created) = match step {
            RegistrationStep::Invalid { errors, traits } => {
                return self.registration_invalid(flow, req, traits.as_ref(), errors).await;
            }
            RegistrationStep::Created { identity, provider } => (identity, provider, true),
            RegistrationStep::SignedIn { identity, provider } => (identity, provider, false),
        };
        // An account that existed already always signs in; a new one per the `session` hook.
        let with_session = !created || self.has_hook(FlowKind::Registration, method, HookName::Session);
        let issued = with_session.then(|| {
            let mut i = self.new_session(&identity, method.as_str(), req);
            if let Some(last) = i.session.authentication_methods.last_mut() {
                last.provider = provider.clone();
            }
            i
        });
        if let Err(reason) = self.run_web_hooks(Phase::Interrupting, method, &identity, &flow).await {
            return self
                .registration_invalid(flow, req, Some(&identity.traits), vec![(String::new(), msg::generic(&reason))])
                .await;
        }
        flow.active = Some(method.as_str().into());
        flow.state = "passed_challenge".into();
        flow.updated_at = self.clock.now();
        // With verification enabled, each unverified address gets a code, queued with the
        // new identity.
        let mails = if created {
            self.verification_mails(&identity, None, flow.flow_type, &req.request_url).await?
        } else {
            super::verification::VerificationMails::default()
        };
        Self::mark_sent(&mut identity, &mails.messages);
        let continue_with = if self.has_hook(FlowKind::Registration, method, HookName::ShowVerificationUi) {
            mails.continue_with(self)
        } else {
            vec![]
        };
        let sid = issued.as_ref().map(|i| i.session.id);
        let kind = if created { ActivityKind::Registration } else { ActivityKind::Login };
        let events = [self.activity(identity.id, kind, Outcome::Success, Some(method), sid, req)];
        let res = self
            .store
            .commit(Commit {
                create_identity: created.then_some(&identity),
                create_session: issued.as_ref().map(|i| &i.session),
                update_flow: Some(&flow),
                queue_messages: &mails.messages,
                record_activity: &events,
                ..Default::default()
            })
            .await;
        if !Self::completed(res, created)? {
            let mut flow = self.load_flow(flow.id, FlowKind::Registration).await?;
            m.reset_registration(&mut flow);
            let errors = vec![(String::new(), m.duplicate_message())];
            return self.registration_invalid(flow, req, Some(&identity.traits), errors).await;
        }
        flow.version += 1;
        if created {
            tracing::info!(identity_id = %identity.id, method = method.as_str(), "identity registered");
        } else {
            tracing::info!(identity_id = %identity.id, method = method.as_str(), "registration of a known account signed in");
        }
        let _ = self.run_web_hooks(Phase::After, method, &identity, &flow).await;
        Ok(Submitted::Done(Registered { flow, identity, session: issued, continue_with }))
    }

    /// Re-derive verifiable and recovery addresses from the schema extension, keeping the
    /// status of addresses that did not change.
    pub fn apply_extracted_addresses(
        &self,
        identity: &mut Identity,
        extracted: &crate::schema::Extracted,
        now: time::OffsetDateTime,
    ) {
        let old_v = std::mem::take(&mut identity.verifiable_addresses);
        for (via, value) in &extracted.verifiable_addresses {
            if let Some(a) = old_v.iter().find(|a| &a.via == via && &a.value == value) {
                identity.verifiable_addresses.push(a.clone());
            } else if !identity.verifiable_addresses.iter().any(|a| &a.via == via && &a.value == value) {
                identity.verifiable_addresses.push(crate::model::VerifiableAddress {
                    id: Uuid::new_v4(),
                    value: value.clone(),
                    verified: false,
                    via: via.clone(),
                    status: "pending".into(),
                    verified_at: None,
                    created_at: now,
                    updated_at: now,
                });
            }
        }
        let old_r = std::mem::take(&mut identity.recovery_addresses);
        for (via, value) in &extracted.recovery_addresses {
            if let Some(a) = old_r.iter().find(|a| &a.via == via && &a.value == value) {
                identity.recovery_addresses.push(a.clone());
            } else if !identity.recovery_addresses.iter().any(|a| &a.via == via && &a.value == value) {
                identity.recovery_addresses.push(crate::model::RecoveryAddress {
                    id: Uuid::new_v4(),
                    value: value.clone(),
                    via: via.clone(),
                    created_at: now,
                    updated_at: now,
                });
            }
        }
    }
}
