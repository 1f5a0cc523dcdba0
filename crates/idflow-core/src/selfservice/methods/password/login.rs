//! Password sign-in (aal1, and refresh of the session's own identity): identifier lookup,
//! per-account attempt limit, a dummy verification for unknown identifiers, rehash on success
//! when the configured hasher changed.

use super::super::LoginStep;
use crate::error::Result;
use crate::model::{CredentialType, Flow, IdentityState};
use crate::schema::normalize_identifier;
use crate::selfservice::{Body, Engine, body_str};
use crate::store::Commit;
use crate::ui::msg;
use serde_json::json;

impl Engine {
    pub(crate) async fn login_password(&self, _flow: &Flow, body: &Body) -> Result<LoginStep> {
        let identifier = body_str(body, "identifier")
            .or_else(|| body_str(body, "password_identifier"))
            .unwrap_or_default()
            .to_string();
        let password = body_str(body, "password").unwrap_or_default().to_string();
        let invalid = |node: &str, m, identifier: Option<&str>| LoginStep::Invalid {
            errors: vec![(node.to_string(), m)],
            identifier: identifier.map(str::to_string),
        };
        if identifier.is_empty() {
            return Ok(invalid("identifier", msg::missing("identifier"), None));
        }
        if password.is_empty() {
            return Ok(invalid("password", msg::missing("password"), Some(&identifier)));
        }
        if password.chars().count() > self.cfg.selfservice.methods.password.config.max_password_length.max(1024) {
            return Ok(invalid("", msg::invalid_credentials(), Some(&identifier)));
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
            return Ok(invalid("", msg::invalid_credentials(), Some(&identifier)));
        };
        if identity.state != IdentityState::Active {
            return Ok(invalid("", msg::identity_disabled(), Some(&identifier)));
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
        Ok(LoginStep::Verified { identity, provider: None })
    }
}
