//! Login flow: password (aal1, refresh) and second factors (aal2 step-up: TOTP, recovery codes).

use super::sessions::Issued;
use super::{Authed, Body, Engine, Req, Submitted, body_str};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Aal, CredentialType, Flow, FlowKind, FlowType, Identity, IdentityState};
use crate::schema::normalize_identifier;
use crate::store::{Commit, StoreError};
use crate::ui::{Group, Node, msg};
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
            self.new_flow(FlowKind::Login, flow_type, &req.request_url, self.cfg.selfservice.flows.login.lifespan.0);
        if let Some(rt) = flow.return_to.take() {
            flow.return_to = Some(self.check_return_to(&rt)?);
        }
        flow.requested_aal = if aal == Aal::Aal2 { Aal::Aal2 } else { Aal::Aal1 };
        match &req.auth {
            None => {
                if flow.requested_aal == Aal::Aal2 {
                    return Err(Error::new(
                        ErrorKind::Aal1Required,
                        "You can not requested a higher AAL (AAL2/AAL3) without an active session.",
                    ));
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

    pub(crate) fn login_ui(&self, flow: &mut Flow, req: &Req) -> Result<()> {
        let csrf = self.bind_csrf(flow, req);
        let mut nodes = vec![Node::csrf(&csrf)];
        flow.ui.messages.clear();
        if flow.requested_aal == Aal::Aal2 {
            flow.ui.messages.push(msg::login_aal2());
            if let Some(a) = &req.auth {
                let id = &a.identity;
                if self.cfg.selfservice.methods.totp.enabled && id.credential(CredentialType::Totp).is_some() {
                    nodes.push(
                        Node::input(Group::Totp, "totp_code", "text")
                            .required()
                            .autocomplete("one-time-code")
                            .label(msg::login_auth_code()),
                    );
                    nodes.push(Node::submit(Group::Totp, "method", json!("totp"), msg::login_use_totp()));
                }
                if self.cfg.selfservice.methods.lookup_secret.enabled
                    && id.credential(CredentialType::LookupSecret).is_some()
                {
                    nodes.push(
                        Node::input(Group::LookupSecret, "lookup_secret", "text")
                            .required()
                            .label(msg::login_backup_code()),
                    );
                    nodes.push(Node::submit(
                        Group::LookupSecret,
                        "method",
                        json!("lookup_secret"),
                        msg::login_use_lookup(),
                    ));
                }
                nodes.extend(self.webauthn_login_nodes(flow, id, false));
            }
        } else if self.cfg.selfservice.methods.password.enabled {
            let refreshing = flow.refresh && req.auth.is_some();
            if refreshing {
                flow.ui.messages.push(msg::login_refresh());
                let ident = req
                    .auth
                    .as_ref()
                    .and_then(|a| a.identity.credential(CredentialType::Password))
                    .and_then(|c| c.identifiers.first().cloned())
                    .unwrap_or_default();
                nodes.push(Node::input(Group::Default, "identifier", "hidden").value(json!(ident)).required());
            } else {
                let label = match self.default_schema()?.identifier_label() {
                    Some((title, name)) => msg::label_trait(&title, &name),
                    None => msg::label_id(),
                };
                nodes.push(
                    Node::input(Group::Default, "identifier", "text")
                        .value(json!(""))
                        .required()
                        .autocomplete("username webauthn")
                        .label(label),
                );
            }
            nodes.push(
                Node::input(Group::Password, "password", "password")
                    .required()
                    .autocomplete("current-password")
                    .label(msg::label_password()),
            );
            let label = if refreshing { msg::login_sign_in() } else { msg::login_with_password() };
            nodes.push(Node::submit(Group::Password, "method", json!("password"), label));
        }
        if flow.requested_aal != Aal::Aal2 {
            let has_identifier = nodes.iter().any(|n| n.id() == "identifier");
            nodes.extend(self.webauthn_first_factor_login_nodes(flow, req, has_identifier)?);
        }
        if flow.requested_aal != Aal::Aal2 {
            let refreshing = if flow.refresh { req.auth.as_ref().map(|a| &a.identity) } else { None };
            nodes.extend(self.oidc_login_nodes(refreshing));
        }
        flow.ui.nodes = nodes;
        Ok(())
    }

    pub(crate) async fn login_invalid(
        &self,
        mut flow: Flow,
        req: &Req,
        node: &str,
        m: crate::ui::UiText,
        identifier: Option<&str>,
    ) -> Result<Submitted<LoggedIn>> {
        self.login_ui(&mut flow, req)?;
        if let Some(i) = identifier
            && !flow.refresh
        {
            flow.ui.set_value("identifier", json!(i));
        }
        flow.ui.add_message(node, m);
        self.save_flow(&mut flow).await?;
        Ok(Submitted::Invalid(flow))
    }

    /// Submit a login flow (limits and metrics: `instrument.rs`).
    pub(crate) async fn submit_login_inner(&self, id: Uuid, body: &Body, req: &Req) -> Result<Submitted<LoggedIn>> {
        let flow = self.load_flow(id, FlowKind::Login).await?;
        if flow.expires_at < self.clock.now() {
            return Err(self.expired_error(&flow, req).await);
        }
        if super::methods::oidc::responsible(body) {
            return self.login_oidc(flow, body, req).await;
        }
        let method = body_str(body, "method").unwrap_or_default().to_string();
        // WebAuthn and passkeys are browser-only strategies (API flows ignore them).
        let browser = flow.flow_type == FlowType::Browser;
        let known = matches!(method.as_str(), "password" | "totp" | "lookup_secret")
            || (browser && matches!(method.as_str(), "webauthn" | "passkey"));
        let level_ok = match method.as_str() {
            "password" | "passkey" => flow.requested_aal == Aal::Aal1,
            "totp" | "lookup_secret" => flow.requested_aal == Aal::Aal2,
            "webauthn" => flow.requested_aal == Aal::Aal2 || self.cfg.selfservice.methods.webauthn.config.passwordless,
            _ => false,
        };
        if !known || !level_ok {
            return self.login_invalid(flow, req, "", msg::no_strategy_login(), None).await;
        }
        let enabled = match method.as_str() {
            "password" => self.cfg.selfservice.methods.password.enabled,
            "totp" => self.cfg.selfservice.methods.totp.enabled,
            "webauthn" => self.webauthn_enabled(super::methods::webauthn::KeyKind::SecurityKey),
            "passkey" => self.webauthn_enabled(super::methods::webauthn::KeyKind::Passkey),
            _ => self.cfg.selfservice.methods.lookup_secret.enabled,
        };
        if !enabled {
            return Err(Error::new(
                ErrorKind::Disabled,
                "This endpoint was disabled by system administrator. Please check your url or contact the system administrator to enable it.",
            ));
        }
        self.check_csrf(&flow, req, body_str(body, "csrf_token"))?;
        if let Some(v) = self.check_api_request(&flow, req) {
            return self.login_invalid(flow, req, "", msg::generic(&v), None).await;
        }
        if flow.refresh || flow.requested_aal == Aal::Aal2 {
            // The flow was made for this session's identity.
            if let (Some(a), Some(fid)) = (&req.auth, flow.identity_id)
                && a.identity.id != fid
                && flow.requested_aal == Aal::Aal2
            {
                return Err(Error::new(ErrorKind::IdentityMismatch, "The login flow was initiated by someone else."));
            }
        }
        match method.as_str() {
            "password" => self.login_password(flow, body, req).await,
            "webauthn" => self.login_webauthn(flow, body, req).await,
            "passkey" => self.login_passkey(flow, body, req).await,
            _ => {
                let Some(a) = req.auth.clone() else {
                    return Err(Error::new(
                        ErrorKind::Aal1Required,
                        "You can not requested a higher AAL (AAL2/AAL3) without an active session.",
                    ));
                };
                let res = if method == "totp" {
                    self.verify_totp_login(&a.identity, body_str(body, "totp_code").unwrap_or_default()).await?
                } else {
                    self.consume_lookup_code(&a.identity, body_str(body, "lookup_secret").unwrap_or_default()).await?
                };
                match res {
                    Err(m) => {
                        let node = if method == "totp" { "totp_code" } else { "lookup_secret" };
                        self.login_invalid(flow, req, node, m, None).await
                    }
                    Ok(()) => {
                        let identity = self.store.get_identity(a.identity.id).await?.unwrap_or(a.identity.clone());
                        let issued = self.extend_session(&a.session, &method, true);
                        self.finish_login(flow, identity, issued, false, &method).await
                    }
                }
            }
        }
    }

    async fn login_password(&self, flow: Flow, body: &Body, req: &Req) -> Result<Submitted<LoggedIn>> {
        let identifier = body_str(body, "identifier")
            .or_else(|| body_str(body, "password_identifier"))
            .unwrap_or_default()
            .to_string();
        let password = body_str(body, "password").unwrap_or_default().to_string();
        if identifier.is_empty() {
            return self.login_invalid(flow, req, "identifier", msg::missing("identifier"), None).await;
        }
        if password.is_empty() {
            return self.login_invalid(flow, req, "password", msg::missing("password"), Some(&identifier)).await;
        }
        if password.chars().count() > self.cfg.selfservice.methods.password.config.max_password_length.max(1024) {
            return self.login_invalid(flow, req, "", msg::invalid_credentials(), Some(&identifier)).await;
        }
        let normalized = normalize_identifier(&identifier);
        let mut found = self.store.find_identity_by_identifier(CredentialType::Password, &normalized).await?;
        if found.is_none() && normalized != identifier {
            found = self.store.find_identity_by_identifier(CredentialType::Password, &identifier).await?;
        }
        // Per-account throttle of failed attempts (counted across nodes in the database).
        let limit_key = format!("login:{normalized}");
        let l = &self.cfg.limits;
        self.rate_check(&limit_key, l.login_attempts, i64::try_from(l.login_window.0.as_secs()).unwrap_or(3600))
            .await?;
        let hash = found.as_ref().and_then(|i| i.password_hash().map(str::to_string));
        let ok = self.verify_password(password.clone(), hash.clone()).await?;
        let Some(identity) = found.filter(|_| ok) else {
            return self.login_invalid(flow, req, "", msg::invalid_credentials(), Some(&identifier)).await;
        };
        if identity.state != IdentityState::Active {
            return self.login_invalid(flow, req, "", msg::identity_disabled(), Some(&identifier)).await;
        }
        let _ = self.store.rate_clear(&limit_key).await;
        // Upgrade the stored hash when the configured hasher changed.
        let mut identity = identity;
        if let Some(h) = &hash
            && crate::password::needs_rehash(&self.cfg.hashers, h)
            && let Ok(new_hash) = self.hash_password(password).await
            && let Some(c) = identity.credentials.get_mut(&CredentialType::Password)
        {
            c.config = json!({ "hashed_password": new_hash });
            c.updated_at = self.clock.now();
            match self.store.commit(Commit { update_identity: Some(&identity), ..Default::default() }).await {
                Ok(_) => identity.version += 1,
                Err(e) => tracing::warn!(error = %e, "password rehash skipped"),
            }
        }
        let (issued, is_new) = match (&req.auth, flow.refresh) {
            (Some(a), true) if a.identity.id == identity.id => {
                (self.extend_session(&a.session, "password", true), false)
            }
            _ => (self.new_session(&identity, "password", req), true),
        };
        self.finish_login(flow, identity, issued, is_new, "password").await
    }

    pub(crate) async fn finish_login(
        &self,
        mut flow: Flow,
        identity: Identity,
        issued: Issued,
        is_new: bool,
        method: &str,
    ) -> Result<Submitted<LoggedIn>> {
        flow.active = Some(method.into());
        flow.state = "passed_challenge".into();
        flow.updated_at = self.clock.now();
        let res = self
            .store
            .commit(Commit {
                create_session: is_new.then_some(&issued.session),
                update_session: (!is_new).then_some(&issued.session),
                update_flow: Some(&flow),
                ..Default::default()
            })
            .await;
        match res {
            Ok(_) => flow.version += 1,
            Err(StoreError::Busy(_)) => {
                return Err(Error::new(ErrorKind::Conflict, "The flow was completed by a concurrent request."));
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(identity_id = %identity.id, session_id = %issued.session.id, method, "login completed");
        let a = Authed { session: issued.session.clone(), identity: identity.clone() };
        let aal_satisfied = self.aal_ok(self.cfg.session.whoami.required_aal, &a);
        Ok(Submitted::Done(LoggedIn { flow, identity, issued, aal_satisfied }))
    }
}
