//! Registration flow (password method), one-step style: traits and password in one form.

use super::sessions::Issued;
use super::{Body, Engine, Req, Submitted, body_str};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Credential, CredentialType, Flow, FlowKind, FlowType, Identity};
use crate::store::{Commit, StoreError};
use crate::ui::{Group, Node, msg};
use serde_json::{Value, json};
use uuid::Uuid;

/// A completed registration.
#[derive(Debug)]
pub struct Registered {
    pub flow: Flow,
    pub identity: Identity,
    /// Present when the `session` hook ran.
    pub session: Option<Issued>,
}

impl Engine {
    /// Create a registration flow.
    pub async fn create_registration(&self, req: &Req, flow_type: FlowType) -> Result<Flow> {
        if req.auth.is_some() {
            return Err(Error::new(
                ErrorKind::SessionAlreadyAvailable,
                "A valid session was detected and thus registration is not possible.",
            ));
        }
        if !self.cfg.selfservice.flows.registration.enabled {
            return Err(Error::new(ErrorKind::FlowDisabled, "Registration is not allowed because it was disabled."));
        }
        let mut flow = self.new_flow(
            FlowKind::Registration,
            flow_type,
            &req.request_url,
            self.cfg.selfservice.flows.registration.lifespan.0,
        );
        if let Some(rt) = flow.return_to.take() {
            flow.return_to = Some(self.check_return_to(&rt)?);
        }
        self.registration_ui(&mut flow, req, None)?;
        self.store.create_flow(&flow).await?;
        Ok(flow)
    }

    pub(crate) fn registration_ui(&self, flow: &mut Flow, req: &Req, traits: Option<&Value>) -> Result<()> {
        let csrf = self.bind_csrf(flow, req);
        let schema = self.default_schema()?;
        let mut nodes = vec![Node::csrf(&csrf)];
        nodes.extend(schema.trait_nodes(Group::Default, traits));
        if self.cfg.selfservice.methods.password.enabled {
            nodes.push(
                Node::input(Group::Password, "password", "password")
                    .required()
                    .autocomplete("new-password")
                    .label(msg::label_password()),
            );
            nodes.push(Node::submit(Group::Password, "method", json!("password"), msg::sign_up()));
        }
        nodes.extend(self.oidc_registration_nodes());
        flow.ui.nodes = nodes;
        Ok(())
    }

    /// Submit a registration flow.
    pub(crate) async fn submit_registration_inner(
        &self,
        id: Uuid,
        body: &Body,
        req: &Req,
    ) -> Result<Submitted<Registered>> {
        let mut flow = self.load_flow(id, FlowKind::Registration).await?;
        if flow.expires_at < self.clock.now() {
            return Err(self.expired_error(&flow, req).await);
        }
        if req.auth.is_some() {
            return Err(Error::new(
                ErrorKind::SessionAlreadyAvailable,
                "A valid session was detected and thus registration is not possible.",
            ));
        }
        if super::methods::oidc::responsible(body) {
            return self.registration_oidc(flow, body, req).await;
        }
        let method = body_str(body, "method").unwrap_or_default();
        let traits = body.get("traits").cloned();
        if method != "password" {
            self.registration_ui(&mut flow, req, traits.as_ref())?;
            flow.ui.messages = vec![msg::no_strategy_registration()];
            self.save_flow(&mut flow).await?;
            return Ok(Submitted::Invalid(flow));
        }
        if !self.cfg.selfservice.methods.password.enabled {
            return Err(Error::new(
                ErrorKind::Disabled,
                "This endpoint was disabled by system administrator. Please check your url or contact the system administrator to enable it.",
            ));
        }
        self.check_csrf(&flow, req, body_str(body, "csrf_token"))?;
        self.registration_ui(&mut flow, req, traits.as_ref())?;
        if let Some(v) = self.check_api_request(&flow, req) {
            flow.ui.messages.push(msg::generic(&v));
            self.save_flow(&mut flow).await?;
            return Ok(Submitted::Invalid(flow));
        }
        let schema = self.default_schema()?.clone();
        let mut errors: Vec<(String, crate::ui::UiText)> = vec![];
        let traits = match traits {
            Some(t) => t,
            None => {
                errors.push(("traits".into(), msg::missing("traits")));
                Value::Object(Default::default())
            }
        };
        if errors.is_empty() {
            errors.extend(schema.validate(&traits));
        }
        let password = body_str(body, "password").unwrap_or_default().to_string();
        if password.is_empty() {
            errors.push(("password".into(), msg::missing("password")));
        }
        let extracted = schema.extract(&traits);
        if errors.is_empty() && extracted.password_identifiers.is_empty() {
            errors.push((String::new(), msg::no_identifiers()));
        }
        if errors.is_empty()
            && let Err(m) = crate::password::check_policy(
                &self.cfg.selfservice.methods.password.config,
                &self.cfg.hashers,
                &password,
                &extracted.password_identifiers,
            )
        {
            errors.push(("password".into(), m));
        }
        if !errors.is_empty() {
            for (node, m) in errors {
                flow.ui.add_message(&node, m);
            }
            self.save_flow(&mut flow).await?;
            return Ok(Submitted::Invalid(flow));
        }
        let hash = self.hash_password(password).await?;
        let now = self.clock.now();
        let mut identity = Identity::new(&schema.id, traits, now);
        identity.credentials.insert(
            CredentialType::Password,
            Credential::new(
                CredentialType::Password,
                extracted.password_identifiers.clone(),
                json!({ "hashed_password": hash }),
                now,
            ),
        );
        self.apply_extracted_addresses(&mut identity, &extracted, now);
        let with_session = self.cfg.selfservice.flows.registration.after.has_hook("password", "session");
        let issued = with_session.then(|| self.new_session(&identity, "password", req));
        flow.active = Some("password".into());
        flow.state = "passed_challenge".into();
        flow.updated_at = now;
        let res = self
            .store
            .commit(Commit {
                create_identity: Some(&identity),
                create_session: issued.as_ref().map(|i| &i.session),
                update_flow: Some(&flow),
                ..Default::default()
            })
            .await;
        match res {
            Ok(_) => {
                flow.version += 1;
                tracing::info!(identity_id = %identity.id, "identity registered");
                Ok(Submitted::Done(Registered { flow, identity, session: issued }))
            }
            Err(StoreError::Conflict(_)) => {
                let mut flow = self.load_flow(id, FlowKind::Registration).await?;
                self.registration_ui(&mut flow, req, Some(&identity.traits))?;
                flow.ui.messages.push(msg::duplicate());
                self.save_flow(&mut flow).await?;
                Ok(Submitted::Invalid(flow))
            }
            Err(e) => Err(e.into()),
        }
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
