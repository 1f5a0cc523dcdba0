//! The provider's redirect back: state, browser and answer checked; the step of the flow the
//! state names is decided here and completed by the flow (`selfservice/callback.rs`).

use super::*;

impl Engine {
    /// Resume a flow after the provider's redirect back
    /// (`GET /self-service/methods/oidc/callback/<provider>`): check the state, the browser and
    /// the provider's answer, and decide the step of the flow the state names. The flow
    /// completes it (`selfservice/callback.rs`).
    pub(crate) async fn oidc_resume(
        &self,
        provider_id: &str,
        params: &CallbackParams,
        req: &Req,
        kind: &mut Option<FlowKind>,
    ) -> Result<(Flow, Resumed)> {
        if !self.cfg.selfservice.methods.oidc.enabled {
            return Err(super::super::disabled());
        }
        let Some(p) = self.oidc_provider(provider_id).cloned() else {
            return Err(Error::not_found(format!("The sign-in provider {provider_id:?} is not configured.")));
        };
        let state_error = || {
            Error::bad_request(
                "The sign-in could not be completed: the state parameter is missing, unknown, already used, or belongs to another provider. Please start again.",
            )
        };
        let flow_id =
            params.state.split_once('.').and_then(|(id, _)| Uuid::parse_str(id).ok()).ok_or_else(state_error)?;
        let mut flow = self.store.get_flow(flow_id).await?.ok_or_else(state_error)?;
        *kind = Some(flow.kind);
        let rt = flow.internal_get(ROUND_TRIP).cloned().ok_or_else(state_error)?;
        let expected = rt.get("state_hash").and_then(Value::as_str).unwrap_or_default();
        let got = crypto::sha256_hex(params.state.as_bytes());
        if !crypto::ct_eq(expected.as_bytes(), got.as_bytes())
            || rt.get("provider").and_then(Value::as_str) != Some(p.id.as_str())
        {
            tracing::warn!(flow_id = %flow.id, provider = %p.id, "sign-in callback with a state that does not match the flow");
            return Err(state_error());
        }
        // The browser that comes back must be the one that started the flow.
        if flow.flow_type != FlowType::Browser
            || !req.csrf_cookie.as_deref().is_some_and(|c| crypto::csrf_matches(c, &flow.csrf_token))
        {
            tracing::warn!(flow_id = %flow.id, provider = %p.id, "sign-in callback from another browser");
            return Err(Error::new(
                ErrorKind::Csrf,
                "The sign-in was started in another browser (or its cookies were cleared), so it can not be completed here. Please start again.",
            )
            .with_detail("reject_reason", json!("The anti-CSRF cookie of this browser does not belong to the flow of this sign-in.")));
        }
        // A state is good for one callback.
        flow.internal_remove(ROUND_TRIP);
        self.save_flow(&mut flow).await?;
        if flow.expires_at < self.clock.now() {
            return Err(self.expired_error(&flow, req).await);
        }
        let label = p.display_label();
        let form_error = |reason: String| failed(&label, &reason);
        let outcome: std::result::Result<ProviderClaims, UiText> = if !params.error.is_empty() {
            let mut reason = format!("the provider answered {:?}", params.error);
            if !params.error_description.is_empty() {
                reason.push_str(&format!(" ({})", params.error_description));
            }
            Err(form_error(reason))
        } else if !params.iss.is_empty() && !p.is_multi_tenant() && params.iss.trim_end_matches('/') != p.issuer() {
            Err(form_error(format!("the authorization response names the issuer {:?}", params.iss)))
        } else if params.code.is_empty() {
            Err(form_error("the provider sent no authorization code".into()))
        } else {
            let verifier = rt.get("pkce_verifier").and_then(Value::as_str).unwrap_or_default();
            let nonce = rt.get("nonce").and_then(Value::as_str).unwrap_or_default();
            let redirect_uri = self.oidc_redirect_uri(&p.id);
            self.oidc.exchange_code(&p, &redirect_uri, &params.code, verifier, nonce, self.clock.now()).await.map_err(
                |reason| {
                    tracing::info!(flow_id = %flow.id, provider = %p.id, %reason, "sign-in callback rejected");
                    form_error(reason)
                },
            )
        };
        let intent = rt.get("intent").and_then(Value::as_str).unwrap_or_default().to_string();
        match flow.kind {
            FlowKind::Login => {
                if intent != "login" {
                    return Err(state_error());
                }
                let step = match outcome {
                    Ok(pc) => self.oidc_login_with(&flow, &p, pc, req).await?,
                    Err(m) => LoginStep::invalid("", m),
                };
                Ok((flow, Resumed::Login(step)))
            }
            FlowKind::Registration => {
                if intent != "registration" {
                    return Err(state_error());
                }
                if req.auth.is_some() {
                    return Err(Error::new(
                        ErrorKind::SessionAlreadyAvailable,
                        "A valid session was detected and thus registration is not possible.",
                    ));
                }
                let submitted = rt.get("traits").cloned();
                let step = match outcome {
                    Ok(pc) => self.oidc_register_with(&mut flow, &p, pc, submitted.as_ref()).await?,
                    Err(m) => RegistrationStep::Invalid { errors: vec![(String::new(), m)], traits: submitted },
                };
                Ok((flow, Resumed::Registration(step)))
            }
            FlowKind::Settings => {
                if intent != "link" {
                    return Err(state_error());
                }
                let a = req.auth.as_ref().ok_or_else(|| {
                    Error::new(ErrorKind::Unauthorized, "A valid Ory Session Cookie or Ory Session Token is missing.")
                })?;
                if flow.identity_id != Some(a.identity.id) {
                    return Err(Error::new(
                        ErrorKind::IdentityMismatch,
                        "The request was initiated by someone else and has been blocked for security reasons. Please go back and try again.",
                    ));
                }
                let change = match outcome {
                    Err(m) => Change::Invalid { errors: vec![(String::new(), m)], echo: None },
                    Ok(_) if !self.privileged(a) => Change::NeedsPrivilege { pending: json!({ "link": p.id }) },
                    Ok(pc) => self.oidc_link_change(a, &p, &pc).await?,
                };
                Ok((flow, Resumed::Settings(change)))
            }
            // Social sign-in takes no part in recovery or verification.
            FlowKind::Recovery | FlowKind::Verification => Err(state_error()),
        }
    }
}
