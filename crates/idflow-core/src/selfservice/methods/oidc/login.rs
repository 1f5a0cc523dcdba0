//! Sign-in with a provider: the linked identity signs in; an unknown account registers (or,
//! when the provider gives too little, continues on a prefilled registration form).

use super::*;

impl Engine {
    /// `method=oidc` (or a `provider` button) on a login flow (CSRF, level and enablement were
    /// checked by the flow). A browser flow is sent to the provider (an `Err` that redirects).
    pub(crate) async fn login_oidc(&self, flow: &mut Flow, body: &Body, req: &Req) -> Result<LoginStep> {
        let pid = body_str(body, "provider").unwrap_or_default();
        let Some(p) = self.oidc_provider(pid).cloned() else {
            return Ok(LoginStep::invalid("provider", msg::generic(&format!("Unknown sign-in provider {pid:?}."))));
        };
        if flow.flow_type == FlowType::Api || nonempty(body, "id_token").is_some() {
            return match self.oidc_verify_submitted(flow, &p, body).await? {
                Ok(pc) => self.oidc_login_with(flow, &p, pc, req).await,
                Err(m) => Ok(LoginStep::invalid("", m)),
            };
        }
        Err(self.oidc_start(flow, &p, "login", body).await?)
    }

    /// A login with verified claims: the linked identity signs in; an unknown account registers.
    pub(crate) async fn oidc_login_with(
        &self,
        flow: &Flow,
        p: &OidcProvider,
        pc: ProviderClaims,
        req: &Req,
    ) -> Result<LoginStep> {
        let ident = identifier(&p.id, &pc.subject);
        let found = self.store.find_identity_by_identifier(CredentialType::Oidc, &ident).await?;
        let Some(identity) = found else {
            return self.oidc_login_registers(flow, p, pc, req).await;
        };
        if identity.state != IdentityState::Active {
            return Ok(LoginStep::invalid("", msg::identity_disabled()));
        }
        Ok(LoginStep::Verified { identity, provider: Some(p.id.clone()) })
    }

    /// A login with an account nobody linked yet: register it (registration must be enabled).
    pub(super) async fn oidc_login_registers(
        &self,
        flow: &Flow,
        p: &OidcProvider,
        pc: ProviderClaims,
        req: &Req,
    ) -> Result<LoginStep> {
        let label = p.display_label();
        if !self.cfg.selfservice.flows.registration.enabled || flow.refresh || req.auth.is_some() {
            return Ok(LoginStep::invalid("", msg::generic(&format!("No account is linked to this {label} account."))));
        }
        match self.oidc_new_identity(p, &pc, None)? {
            Ok(identity) => Ok(LoginStep::Registered { identity, provider: Some(p.id.clone()) }),
            Err(errors) if flow.flow_type == FlowType::Browser => {
                // The user completes the missing traits on a registration form.
                let reg = self.oidc_pending_registration(p, &pc, req, errors).await?;
                let url = self.ui_url_for_flow(FlowKind::Registration, reg.id);
                Err(Error::new(
                    ErrorKind::BrowserLocationChange,
                    format!("In order to complete this flow please redirect the browser to: {url}"),
                )
                .with_redirect(url))
            }
            Err(errors) => {
                let m = msg::generic(&format!(
                    "The {label} account does not provide every required profile field: register with a registration flow (method oidc) and submit the missing traits."
                ));
                let errors = std::iter::once((String::new(), m)).chain(errors).collect();
                Ok(LoginStep::Invalid { errors, identifier: None })
            }
        }
    }

    /// A new identity from verified claims (+ traits the user typed). `Ok(Err(errors))` when the
    /// traits do not validate.
    pub(super) fn oidc_new_identity(
        &self,
        p: &OidcProvider,
        pc: &ProviderClaims,
        submitted: Option<&Value>,
    ) -> Result<std::result::Result<Identity, Vec<(String, UiText)>>> {
        let schema = self.default_schema()?.clone();
        let mapped = apply_mapper(&p.mapper_or_default(), &pc.claims);
        let mut traits = mapped.traits;
        if let Some(s) = submitted {
            overlay(&mut traits, s);
        }
        let errors = schema.validate(&traits);
        if !errors.is_empty() {
            return Ok(Err(errors
                .into_iter()
                .chain(std::iter::once((String::new(), msg::generic("Please complete the missing profile fields."))))
                .collect()));
        }
        let now = self.clock.now();
        let extracted = schema.extract(&traits);
        let mut identity = Identity::new(&schema.id, traits, now);
        identity.metadata_public = mapped.metadata_public;
        identity.metadata_admin = mapped.metadata_admin;
        identity.credentials.insert(
            CredentialType::Oidc,
            Credential::new(
                CredentialType::Oidc,
                vec![identifier(&p.id, &pc.subject)],
                json!({"providers": [{"provider": p.id, "subject": pc.subject}]}),
                now,
            ),
        );
        // The login identifiers are reserved like a password account's (no password yet): a
        // second account with the same email is refused, and a password can be set later.
        if !extracted.password_identifiers.is_empty() {
            identity.credentials.insert(
                CredentialType::Password,
                Credential::new(CredentialType::Password, extracted.password_identifiers.clone(), json!({}), now),
            );
        }
        self.apply_extracted_addresses(&mut identity, &extracted, now);
        // The provider vouches for its email address.
        if is_true(pc.claims.get("email_verified"))
            && let Some(email) = pc.claims.get("email").and_then(Value::as_str)
        {
            let email = email.trim().to_lowercase();
            for a in
                identity.verifiable_addresses.iter_mut().filter(|a| a.via == "email" && a.value.to_lowercase() == email)
            {
                a.verified = true;
                a.status = "completed".into();
                a.verified_at = Some(now);
            }
        }
        Ok(Ok(identity))
    }

    /// A registration flow holding verified claims, prefilled with the mapped traits.
    pub(super) async fn oidc_pending_registration(
        &self,
        p: &OidcProvider,
        pc: &ProviderClaims,
        req: &Req,
        errors: Vec<(String, UiText)>,
    ) -> Result<Flow> {
        let url = self.url("/self-service/registration/browser");
        let mut flow = self.new_flow(
            FlowKind::Registration,
            FlowType::Browser,
            &url,
            self.cfg.selfservice.flows.registration.lifespan.0,
        )?;
        let traits = apply_mapper(&p.mapper_or_default(), &pc.claims).traits;
        self.registration_ui(&mut flow, req, Some(&traits))?;
        for (node, m) in errors {
            flow.ui.add_message(&node, m);
        }
        flow.internal_set(
            PENDING,
            json!({"provider": p.id, "issuer": pc.issuer, "subject": pc.subject, "claims": pc.claims}),
        );
        self.store.create_flow(&flow).await?;
        Ok(flow)
    }
}
