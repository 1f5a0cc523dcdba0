//! Password registration, one-step style: traits and password in one form, validated against
//! the identity schema and the password policy.

use super::super::RegistrationStep;
use crate::error::Result;
use crate::model::{Credential, CredentialType, Identity};
use crate::selfservice::{Body, Engine, body_str};
use crate::ui::msg;
use serde_json::{Value, json};

impl Engine {
    pub(crate) async fn register_password(&self, body: &Body) -> Result<RegistrationStep> {
        let submitted = body.get("traits").cloned();
        let schema = self.default_schema()?.clone();
        let mut errors: Vec<(String, crate::ui::UiText)> = vec![];
        let traits = match &submitted {
            Some(t) => t.clone(),
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
            return Ok(RegistrationStep::Invalid { errors, traits: submitted });
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
        Ok(RegistrationStep::Created { identity, provider: None })
    }
}
