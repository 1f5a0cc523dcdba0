//! Profile (traits) updates in settings. Traits replace the old ones entirely and are validated
//! against the identity schema; changing an identifier or an address needs a privileged session.

use super::{Method, MethodId};
use crate::error::Result;
use crate::model::{CredentialType, Flow};
use crate::selfservice::settings::Change;
use crate::selfservice::{Authed, Body, Engine, body_str};
use crate::ui::msg;
use async_trait::async_trait;
use serde_json::{Value, json};

/// The `profile` method: trait updates in settings. Its form nodes are the schema's trait
/// inputs, which the settings flow builds (they echo submitted values).
pub struct Profile;

#[async_trait]
impl Method for Profile {
    fn id(&self) -> MethodId {
        MethodId::Profile
    }
    fn enabled(&self, e: &Engine) -> bool {
        e.cfg.selfservice.methods.profile.enabled
    }
    fn claims_settings(&self, _flow: &Flow, body: &Body) -> bool {
        body_str(body, "method") == Some("profile")
    }
    async fn settings(&self, e: &Engine, _flow: &mut Flow, a: &Authed, body: &Body) -> Result<Change> {
        e.settings_profile(a, body).await
    }
}

impl Engine {
    pub(crate) async fn settings_profile(&self, a: &Authed, body: &Body) -> Result<Change> {
        let Some(traits) = body.get("traits").cloned() else {
            return Ok(Change::Invalid { errors: vec![("traits".into(), msg::missing("traits"))], echo: None });
        };
        let schema = self.schema(&a.identity.schema_id)?.clone();
        let errors = schema.validate(&traits);
        if !errors.is_empty() {
            return Ok(Change::Invalid { errors, echo: Some(traits) });
        }
        let old = schema.extract(&a.identity.traits);
        let new = schema.extract(&traits);
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        let pairs = |v: &[(String, String)]| sorted(v.iter().map(|(a, b)| format!("{a}:{b}")).collect());
        let protected_changed = sorted(old.password_identifiers.clone()) != sorted(new.password_identifiers.clone())
            || sorted(old.webauthn_identifiers.clone()) != sorted(new.webauthn_identifiers.clone())
            || pairs(&old.verifiable_addresses) != pairs(&new.verifiable_addresses)
            || pairs(&old.recovery_addresses) != pairs(&new.recovery_addresses);
        if protected_changed && !self.privileged(a) {
            return Ok(Change::NeedsPrivilege { pending: json!({ "traits": traits }) });
        }
        let now = self.clock.now();
        let mut identity = a.identity.clone();
        identity.traits = traits;
        if let Some(c) = identity.credentials.get_mut(&CredentialType::Password)
            && c.identifiers != new.password_identifiers
        {
            // Only a change of the identifiers touches the credential.
            c.identifiers = new.password_identifiers.clone();
            c.updated_at = now;
        }
        if let Some(c) = identity.credentials.get_mut(&CredentialType::Webauthn) {
            c.identifiers = new.webauthn_identifiers.clone();
        }
        self.apply_extracted_addresses(&mut identity, &new, now);
        if identity.traits == Value::Null {
            return Ok(Change::Invalid { errors: vec![("traits".into(), msg::missing("traits"))], echo: None });
        }
        Ok(Change::Update { identity, add_method: None, revoke_others: false })
    }
}
