//! Password changes in settings: privileged session always, policy (length, similarity to
//! identifiers, common-password list, not the old one), one argon2id derivation per change off
//! the async runtime, and the `revoke_active_sessions` hook in the same transaction as the
//! credential write.

use crate::error::Result;
use crate::model::{Credential, CredentialType};
use crate::selfservice::settings::Change;
use crate::selfservice::{Authed, Body, Engine, body_str};
use crate::ui::msg;
use serde_json::json;

impl Engine {
    pub(crate) async fn settings_password(&self, a: &Authed, body: &Body) -> Result<Change> {
        let password = body_str(body, "password").unwrap_or_default().to_string();
        if !self.privileged(a) {
            // Secrets are never kept for later.
            return Ok(Change::NeedsPrivilege { pending: json!({}) });
        }
        let schema = self.schema(&a.identity.schema_id)?.clone();
        let identifiers = schema.extract(&a.identity.traits).password_identifiers;
        if identifiers.is_empty() {
            return Ok(Change::Invalid { errors: vec![(String::new(), msg::no_identifiers())], echo: None });
        }
        // Policy order (settings-flow §17.9): min length → max length → same-as-old →
        // similarity → breach.
        let policy = &self.cfg.selfservice.methods.password.config;
        if let Err(m) = crate::password::check_length(policy, &self.cfg.hashers, &password) {
            return Ok(Change::Invalid { errors: vec![("password".into(), m)], echo: None });
        }
        // One argon2id derivation both hashes the new password and tells whether it is the
        // current one (the new password is derived with the current hash's salt).
        let old = a.identity.password_hash().map(str::to_string);
        let Some(hash) = self.hash_changed_password(password.clone(), old).await? else {
            return Ok(Change::Invalid { errors: vec![("password".into(), msg::password_same_as_old())], echo: None });
        };
        if let Err(m) = crate::password::check_content(policy, &password, &identifiers) {
            return Ok(Change::Invalid { errors: vec![("password".into(), m)], echo: None });
        }
        let now = self.clock.now();
        let mut identity = a.identity.clone();
        match identity.credentials.get_mut(&CredentialType::Password) {
            Some(c) => {
                c.config = json!({ "hashed_password": hash });
                c.identifiers = identifiers;
                c.updated_at = now;
            }
            None => {
                identity.credentials.insert(
                    CredentialType::Password,
                    Credential::new(CredentialType::Password, identifiers, json!({ "hashed_password": hash }), now),
                );
            }
        }
        // `revoke_active_sessions` (on by default for password changes) is a hook of the flow.
        Ok(Change::Update { identity, add_method: None, revoke_others: false })
    }
}
