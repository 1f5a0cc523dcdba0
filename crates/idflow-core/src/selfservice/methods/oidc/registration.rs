//! Registration with a provider (round trip, or an ID token from a native app).

use super::*;

impl Engine {
    /// `method=oidc` (or a `provider` button) on a registration flow (CSRF and enablement were
    /// checked by the flow). A browser flow is sent to the provider (an `Err` that redirects).
    pub(crate) async fn register_oidc(&self, flow: &mut Flow, body: &Body) -> Result<RegistrationStep> {
        let pid = body_str(body, "provider").unwrap_or_default().to_string();
        let submitted = body.get("traits").filter(|t| t.is_object()).cloned();
        let Some(p) = self.oidc_provider(&pid).cloned() else {
            let m = msg::generic(&format!("Unknown sign-in provider {pid:?}."));
            return Ok(RegistrationStep::Invalid { errors: vec![(String::new(), m)], traits: submitted });
        };
        // Verified claims waiting for the traits the provider did not give.
        if let Some(pending) = flow.internal_get(PENDING).cloned()
            && pending.get("provider").and_then(Value::as_str) == Some(p.id.as_str())
        {
            let pc = ProviderClaims {
                issuer: pending.get("issuer").and_then(Value::as_str).unwrap_or_default().to_string(),
                subject: pending.get("subject").and_then(Value::as_str).unwrap_or_default().to_string(),
                claims: pending.get("claims").cloned().unwrap_or(Value::Null),
            };
            return self.oidc_register_with(flow, &p, pc, submitted.as_ref()).await;
        }
        if flow.flow_type == FlowType::Api || nonempty(body, "id_token").is_some() {
            return match self.oidc_verify_submitted(flow, &p, body).await? {
                Ok(pc) => self.oidc_register_with(flow, &p, pc, submitted.as_ref()).await,
                Err(m) => Ok(RegistrationStep::Invalid { errors: vec![(String::new(), m)], traits: submitted }),
            };
        }
        Err(self.oidc_start(flow, &p, "registration", body).await?)
    }

    /// A registration with verified claims. An account that is already linked signs in.
    pub(crate) async fn oidc_register_with(
        &self,
        flow: &mut Flow,
        p: &OidcProvider,
        pc: ProviderClaims,
        submitted: Option<&Value>,
    ) -> Result<RegistrationStep> {
        let ident = identifier(&p.id, &pc.subject);
        if let Some(identity) = self.store.find_identity_by_identifier(CredentialType::Oidc, &ident).await? {
            if identity.state != IdentityState::Active {
                let errors = vec![(String::new(), msg::identity_disabled())];
                return Ok(RegistrationStep::Invalid { errors, traits: submitted.cloned() });
            }
            flow.internal_remove(PENDING);
            return Ok(RegistrationStep::SignedIn { identity, provider: Some(p.id.clone()) });
        }
        match self.oidc_new_identity(p, &pc, submitted)? {
            Ok(identity) => {
                flow.internal_remove(PENDING);
                Ok(RegistrationStep::Created { identity, provider: Some(p.id.clone()) })
            }
            Err(errors) => {
                let mut traits = apply_mapper(&p.mapper_or_default(), &pc.claims).traits;
                if let Some(s) = submitted {
                    overlay(&mut traits, s);
                }
                flow.internal_set(
                    PENDING,
                    json!({"provider": p.id, "issuer": pc.issuer, "subject": pc.subject, "claims": pc.claims}),
                );
                Ok(RegistrationStep::Invalid { errors, traits: Some(traits) })
            }
        }
    }
}
