//! The login flow: first factor (aal1), refresh (re-authentication of the session's identity)
//! and step-up (aal2). Every method is reached through the registry; the flow issues or extends
//! the session, runs the `after` hooks and commits once.

use super::hooks::{HookName, Phase};
use super::methods::{Claim, LoginForm, LoginStep, Method, REGISTRY};
use super::sessions::Issued;
use super::{Authed, Body, Engine, Req, SubmitFlow, Submitted};
use crate::activity::{ActivityKind, Outcome};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Aal, CredentialType, Flow, FlowKind, FlowType, Identity};
use crate::schema::normalize_identifier;
use crate::store::Commit;
use crate::ui::{Node, UiText, msg};
use serde_json::json;
use uuid::Uuid;

/// A completed login.
#[derive(Debug)]
pub struct LoggedIn {
    pub flow: Flow,
    pub identity: Identity,
    /// The session, with the token when one was minted or rotated.
    pub issued: Issued,
    /// Whether the session now meets `session.whoami.required_aal`.
    pub aal_satisfied: bool,
}

impl Engine {
    /// Create a login flow. `refresh` re-authenticates an existing session; `aal2` steps it up.
    pub async fn create_login(&self, req: &Req, flow_type: FlowType, refresh: bool, aal: Aal) -> Result<Flow> {
        let mut flow =
            self.new_flow(FlowKind::Login, flow_type, &req.request_url, self.cfg.selfservice.flows.login.lifespan.0)?;
        flow.requested_aal = if aal == Aal::Aal2 { Aal::Aal2 } else { Aal::Aal1 };
        match &req.auth {
            None => {
                if flow.requested_aal == Aal::Aal2 {
                    return Err(super::methods::aal1_required());
                }
                flow.refresh = false;
            }
            Some(a) => {
                if refresh {
                    flow.refresh = true;
                } else if flow.requested_aal <= a.session.aal {
                    return Err(Error::new(
                        ErrorKind::SessionAlreadyAvailable,
                        "A valid session was detected and thus login is not possible. Did you forget to set `?refresh=true`?",
                    ));
                }
                flow.identity_id = Some(a.identity.id);
            }
        }
        self.login_ui(&mut flow, req)?;
        self.store.create_flow(&flow).await?;
        Ok(flow)
    }

    /// The `identifier` input of a first-factor login form, labelled by the schema.
    pub(crate) fn identifier_node(&self) -> Result<Node> {
        let label = match self.default_schema()?.identifier_label() {
            Some((title, name)) => msg::label_trait(&title, &name),
            None => msg::label_id(),
        };
        Ok(Node::input(crate::ui::Group::Default, "identifier", "text")
            .value(json!(""))
            .required()
            .autocomplete("username webauthn")
            .label(label))
    }

    pub(crate) fn login_ui(&self, flow: &mut Flow, req: &Req) -> Result<()> {
        let csrf = self.bind_csrf(flow, req);
        let mut nodes = vec![Node::csrf(&csrf)];
        flow.ui.messages.clear();
        let second_factor = flow.requested_aal == Aal::Aal2;
        if second_factor {
            flow.ui.messages.push(msg::login_aal2());
        }
        let identity = if second_factor || flow.refresh { req.auth.as_ref().map(|a| &a.identity) } else { None };
        // A step-up form needs the session's identity; without one it offers nothing.
        if !(second_factor && identity.is_none()) {
            for m in REGISTRY.iter().filter(|m| m.enabled(self)) {
                let form = LoginForm {
                    identity,
                    second_factor,
                    refresh: flow.refresh,
                    has_identifier: nodes.iter().any(|n| n.id() == "identifier"),
                };
                nodes.extend(m.login_nodes(self, flow, req, &form)?);
            }
        }
        self.place_webauthn_script(flow, &mut nodes);
        flow.ui.nodes = nodes;
        Ok(())
    }

    pub(crate) async fn login_invalid(
        &self,
        mut flow: Flow,
        req: &Req,
        errors: Vec<(String, UiText)>,
        identifier: Option<&str>,
    ) -> Result<Submitted<LoggedIn>> {
        self.login_ui(&mut flow, req)?;
        if let Some(i) = identifier
            && !flow.refresh
        {
            flow.ui.set_value("identifier", json!(i));
        }
        for (node, m) in errors {
            flow.ui.add_message(&node, m);
        }
        self.save_flow(&mut flow).await?;
        Ok(Submitted::Invalid(flow))
    }

    /// Submit a login flow (limits and metrics: `instrument.rs`).
    pub(crate) async fn submit_login_inner(
        &self,
        flow: SubmitFlow,
        body: &Body,
        req: &Req,
    ) -> Result<Submitted<LoggedIn>> {
        let mut flow = self.open_flow(flow, FlowKind::Login, req, |_| Ok(())).await?;
        let claimed =
            REGISTRY.iter().copied().map(|m| (m, m.claims_login(self, &flow, body))).find(|(_, c)| *c != Claim::No);
        let Some((m, Claim::Yes)) = claimed else {
            return self.login_invalid(flow, req, vec![(String::new(), msg::no_strategy_login())], None).await;
        };
        if let Some(error) = self.gate(m, &flow, req, body, None)? {
            return self.login_invalid(flow, req, vec![error], None).await;
        }
        if flow.requested_aal == Aal::Aal2 {
            // The flow was made for this session's identity.
            let Some(a) = &req.auth else {
                return Err(super::methods::aal1_required());
            };
            if flow.identity_id.is_some_and(|fid| fid != a.identity.id) {
                return Err(Error::new(ErrorKind::IdentityMismatch, "The login flow was initiated by someone else."));
            }
        }
        let step = m.login(self, &mut flow, body, req).await?;
        super::with_reason(self.complete_login(flow, m, step, req).await, FlowKind::Login, Some(m.id()))
    }

    /// Turn a method's login step into the outcome: form errors, or a session issued (new, or
    /// the caller's extended for refresh / step-up), after hooks, one commit.
    pub(crate) async fn complete_login(
        &self,
        flow: Flow,
        m: &dyn Method,
        step: LoginStep,
        req: &Req,
    ) -> Result<Submitted<LoggedIn>> {
        let method = m.id();
        let (identity, provider, created) = match step {
            LoginStep::Invalid { errors, identifier } => {
                self.record_login_failure(&flow, method, &errors, identifier.as_deref(), req);
                return self.login_invalid(flow, req, errors, identifier.as_deref()).await;
            }
            LoginStep::ShowForm { nodes, identifier } => {
                let mut flow = flow;
                self.login_ui(&mut flow, req)?;
                let mut all = std::mem::take(&mut flow.ui.nodes);
                all.extend(nodes);
                self.place_webauthn_script(&flow, &mut all);
                flow.ui.nodes = all;
                if let Some(i) = identifier {
                    flow.ui.set_value("identifier", json!(i));
                }
                self.save_flow(&mut flow).await?;
                return Ok(Submitted::ShowForm(flow));
            }
            LoginStep::Verified { identity, provider } => (identity, provider, false),
            LoginStep::Registered { identity, provider } => (identity, provider, true),
        };
        let step_up = flow.requested_aal == Aal::Aal2;
        let (mut issued, is_new) = match &req.auth {
            Some(a) if a.identity.id == identity.id && (step_up || flow.refresh) => {
                (self.extend_session(&a.session, method.as_str(), true), false)
            }
            _ => (self.new_session(&identity, method.as_str(), req), true),
        };
        if let Some(last) = issued.session.authentication_methods.last_mut() {
            last.provider = provider;
            // A step completed on a step-up flow is a second factor, whatever the method's
            // first-factor settings say (a passwordless-capable security key).
            if step_up {
                last.aal = Aal::Aal2;
            }
        }
        issued.session.recompute_aal();
        if let Err(reason) = self.run_web_hooks(Phase::Interrupting, method, &identity, &flow).await {
            return self.login_invalid(flow, req, vec![(String::new(), msg::generic(&reason))], None).await;
        }
        self.require_verified_address(method, &identity, &flow).await?;
        let revoke = self.has_hook(FlowKind::Login, method, HookName::RevokeActiveSessions);
        let sid = Some(issued.session.id);
        let kinds = [
            created.then_some(ActivityKind::Registration),
            Some(Self::login_kind(&flow, !is_new)),
            revoke.then_some(ActivityKind::OtherSessionsRevoked),
        ];
        let events = self.successes(identity.id, kinds.into_iter().flatten(), Some(method), sid, req);
        let mut flow = flow;
        flow.active = Some(method.as_str().into());
        flow.state = "passed_challenge".into();
        flow.updated_at = self.clock.now();
        let res = self
            .store
            .commit(Commit {
                create_identity: created.then_some(&identity),
                create_session: is_new.then_some(&issued.session),
                update_session: (!is_new).then_some(&issued.session),
                revoke_other_sessions: revoke.then_some((identity.id, Some(issued.session.id))),
                update_flow: Some(&flow),
                record_activity: &events,
                ..Default::default()
            })
            .await;
        if !Self::completed(res, created)? {
            let flow = self.load_flow(flow.id, FlowKind::Login).await?;
            return self.login_invalid(flow, req, vec![(String::new(), m.duplicate_message())], None).await;
        }
        flow.version += 1;
        if created {
            tracing::info!(identity_id = %identity.id, method = method.as_str(), "identity registered through a login");
        }
        tracing::info!(identity_id = %identity.id, session_id = %issued.session.id, method = method.as_str(), "login completed");
        let _ = self.run_web_hooks(Phase::After, method, &identity, &flow).await;
        let a = Authed { session: issued.session.clone(), identity: identity.clone() };
        let aal_satisfied = self.aal_ok(self.cfg.session.whoami.required_aal, &a);
        Ok(Submitted::Done(LoggedIn { flow, identity, issued, aal_satisfied }))
    }
}

/// The activity log of sign-ins.
impl Engine {
    /// The kind of a login on `flow`: a step-up, a refresh of the caller's session
    /// (`extends`), or a first-factor sign-in.
    fn login_kind(flow: &Flow, extends: bool) -> ActivityKind {
        if flow.requested_aal == Aal::Aal2 {
            ActivityKind::LoginStepUp
        } else if flow.refresh && extends {
            ActivityKind::LoginRefresh
        } else {
            ActivityKind::Login
        }
    }

    /// Log a failed sign-in on the identity it was for: the session's identity on refresh and
    /// step-up flows, else the owner of the submitted identifier (nothing for an unknown one).
    /// A form that only lacked a field is no attempt. The lookup and the write run off the
    /// request's path, so a known identifier answers exactly like an unknown one.
    fn record_login_failure(
        &self,
        flow: &Flow,
        method: crate::model::MethodId,
        errors: &[(String, crate::ui::UiText)],
        identifier: Option<&str>,
        req: &Req,
    ) {
        if errors.iter().all(|(_, m)| m.id == 4000002) {
            return;
        }
        match (flow.identity_id, identifier.filter(|i| !i.is_empty())) {
            (Some(id), _) => {
                let session = req.auth.as_ref().filter(|a| a.identity.id == id).map(|a| a.session.id);
                let kind = Self::login_kind(flow, session.is_some());
                self.record_activity_detached(vec![self.activity(
                    id,
                    kind,
                    Outcome::Failure,
                    Some(method),
                    session,
                    req,
                )]);
            }
            (None, Some(identifier)) => {
                let mut event = self.activity(
                    Uuid::nil(),
                    Self::login_kind(flow, false),
                    Outcome::Failure,
                    Some(method),
                    None,
                    req,
                );
                let store = self.store.clone();
                let raw = identifier.to_string();
                tokio::spawn(async move {
                    let normalized = normalize_identifier(&raw);
                    let mut found = store.find_identity_by_identifier(CredentialType::Password, &normalized).await;
                    if matches!(found, Ok(None)) && normalized != raw {
                        found = store.find_identity_by_identifier(CredentialType::Password, &raw).await;
                    }
                    let res = match found {
                        Ok(Some(identity)) => {
                            event.identity_id = identity.id;
                            store.record_activity(&[event]).await
                        }
                        Ok(None) => Ok(()),
                        Err(e) => Err(e),
                    };
                    if let Err(e) = res {
                        tracing::warn!(error = %e, "could not record a failed sign-in");
                    }
                });
            }
            (None, None) => {}
        }
    }
}
