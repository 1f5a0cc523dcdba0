//! Link and unlink providers in settings.

use super::*;

impl Engine {
    /// Settings `link` / `unlink`. A browser link answers "go to the provider" (an `Err`);
    /// an API flow links with a submitted ID token.
    pub(crate) async fn settings_oidc(&self, flow: &mut Flow, a: &Authed, body: &Body) -> Result<Change> {
        let link = nonempty(body, "link");
        let unlink = nonempty(body, "unlink");
        let invalid = |m: UiText| Ok(Change::Invalid { errors: vec![(String::new(), m)], echo: None });
        if link.is_some() && unlink.is_some() {
            return invalid(msg::generic("it is not possible to link and unlink providers in the same request"));
        }
        if !self.privileged(a) {
            let pending = match (link, unlink) {
                (Some(l), _) => json!({ "link": l }),
                (_, Some(u)) => json!({ "unlink": u }),
                _ => json!({}),
            };
            return Ok(Change::NeedsPrivilege { pending });
        }
        let linked_now = linked(&a.identity);
        if let Some(pid) = unlink {
            if !linked_now.iter().any(|(p, _)| p == pid) {
                return invalid(msg::generic("can not unlink non-existing OpenID Connect connection"));
            }
            if a.identity.first_factor_count() < 2 {
                return invalid(msg::last_sign_in_method(
                    "can not unlink OpenID Connect connection because it is the last remaining first factor credential",
                ));
            }
            let mut identity = a.identity.clone();
            let now = self.clock.now();
            let remove = |c: &mut Credential| {
                if let Some(Value::Array(list)) = c.config.get_mut("providers") {
                    list.retain(|e| e.get("provider").and_then(Value::as_str) != Some(pid));
                }
                c.identifiers.retain(|i| !i.starts_with(&format!("{pid}:")));
                c.updated_at = now;
            };
            let mut empty = false;
            if let Some(c) = identity.credentials.get_mut(&CredentialType::Oidc) {
                remove(c);
                empty = c.identifiers.is_empty();
            }
            if empty {
                identity.credentials.remove(&CredentialType::Oidc);
            }
            return Ok(Change::Update { identity, add_method: None, revoke_others: false });
        }
        let pid = link.unwrap_or_default();
        let Some(p) = self.oidc_provider(pid).cloned().filter(|p| !linked_now.iter().any(|(l, _)| *l == p.id)) else {
            return invalid(msg::generic("can not link unknown or already existing OpenID Connect connection"));
        };
        if flow.flow_type == FlowType::Api || nonempty(body, "id_token").is_some() {
            return match self.oidc_verify_submitted(flow, &p, body).await? {
                Ok(pc) => self.oidc_link_change(a, &p, &pc).await,
                Err(m) => invalid(m),
            };
        }
        Err(self.oidc_start(flow, &p, "link", body).await?)
    }

    /// The identity with `pc` linked, or why not.
    pub(super) async fn oidc_link_change(&self, a: &Authed, p: &OidcProvider, pc: &ProviderClaims) -> Result<Change> {
        let ident = identifier(&p.id, &pc.subject);
        let label = p.display_label();
        if let Some(owner) = self.store.find_identity_by_identifier(CredentialType::Oidc, &ident).await? {
            let m = if owner.id == a.identity.id {
                msg::generic("can not link unknown or already existing OpenID Connect connection")
            } else {
                already_linked_elsewhere(&label)
            };
            return Ok(Change::Invalid { errors: vec![(String::new(), m)], echo: None });
        }
        if linked(&a.identity).iter().any(|(l, _)| *l == p.id) {
            let m = msg::generic("can not link unknown or already existing OpenID Connect connection");
            return Ok(Change::Invalid { errors: vec![(String::new(), m)], echo: None });
        }
        let now = self.clock.now();
        let mut identity = a.identity.clone();
        let entry = json!({"provider": p.id, "subject": pc.subject});
        match identity.credentials.get_mut(&CredentialType::Oidc) {
            Some(c) => {
                match c.config.get_mut("providers") {
                    Some(Value::Array(list)) => list.push(entry),
                    _ => c.config = json!({"providers": [entry]}),
                }
                c.identifiers.push(ident);
                c.updated_at = now;
            }
            None => {
                identity.credentials.insert(
                    CredentialType::Oidc,
                    Credential::new(CredentialType::Oidc, vec![ident], json!({"providers": [entry]}), now),
                );
            }
        }
        Ok(Change::Update { identity, add_method: Some(MethodId::Oidc), revoke_others: false })
    }
}
