//! Identity management for the admin API and the import command: create and update with
//! credential import (password plaintext or hash, TOTP URL, recovery codes).

use super::{Engine, Req};
use crate::activity::{ActivityKind, Outcome};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Credential, CredentialType, Identity, IdentityState, MethodId};
use crate::store::{Commit, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    pub value: String,
    pub via: String,
    #[serde(default)]
    pub verified: bool,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub id: Option<Value>,
    #[serde(default)]
    pub verified_at: Option<Value>,
    #[serde(default)]
    pub created_at: Option<Value>,
    #[serde(default)]
    pub updated_at: Option<Value>,
}

#[derive(Debug, Deserialize, Default)]
pub struct CredentialInput {
    #[serde(default)]
    pub config: Value,
}

/// `POST /admin/identities` body (also `PUT`).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct IdentityInput {
    #[serde(default)]
    pub schema_id: Option<String>,
    pub traits: Value,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub metadata_public: Option<Value>,
    #[serde(default)]
    pub metadata_admin: Option<Value>,
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub verifiable_addresses: Option<Vec<AddressInput>>,
    #[serde(default)]
    pub recovery_addresses: Option<Vec<AddressInput>>,
    #[serde(default)]
    pub credentials: Option<std::collections::BTreeMap<String, CredentialInput>>,
    #[serde(default)]
    pub organization_id: Option<Value>,
}

impl Engine {
    fn conflict() -> Error {
        Error::new(ErrorKind::Conflict, "This identity conflicts with another identity that already exists.")
    }

    /// Validate traits and derive identifiers/addresses into `identity`.
    fn derive(&self, identity: &mut Identity, verified: &[AddressInput]) -> Result<()> {
        let schema = self.schema(&identity.schema_id)?.clone();
        let errs = schema.validate(&identity.traits);
        if !errs.is_empty() {
            let reason = errs
                .iter()
                .map(|(n, m)| format!("I[#/{}] {}", n.replace('.', "/"), m.text))
                .collect::<Vec<_>>()
                .join("\n");
            return Err(Error::bad_request(format!(
                "The request was malformed or contained invalid parameters: {reason}"
            )));
        }
        let ex = schema.extract(&identity.traits);
        let now = self.clock.now();
        if let Some(c) = identity.credentials.get_mut(&CredentialType::Password) {
            c.identifiers = ex.password_identifiers.clone();
        }
        for kind in [CredentialType::Totp, CredentialType::LookupSecret] {
            let id = identity.id.to_string();
            if let Some(c) = identity.credentials.get_mut(&kind) {
                c.identifiers = vec![id];
            }
        }
        self.apply_extracted_addresses(identity, &ex, now);
        for a in identity.verifiable_addresses.iter_mut() {
            if let Some(v) = verified.iter().find(|v| v.via == a.via && v.value.to_lowercase() == a.value) {
                a.verified = v.verified;
                a.status =
                    v.status.clone().unwrap_or_else(|| if v.verified { "completed".into() } else { "pending".into() });
                if v.verified && a.verified_at.is_none() {
                    a.verified_at = Some(now);
                }
            }
        }
        Ok(())
    }

    async fn import_credentials(
        &self,
        identity: &mut Identity,
        creds: std::collections::BTreeMap<String, CredentialInput>,
    ) -> Result<()> {
        let now = self.clock.now();
        for (kind, input) in creds {
            let kind = CredentialType::parse(&kind)
                .ok_or_else(|| Error::bad_request(format!("Unknown credential type {kind:?}.")))?;
            let cfg = input.config;
            let config = match kind {
                CredentialType::Password => {
                    if let Some(p) = cfg.get("password").and_then(Value::as_str).filter(|p| !p.is_empty()) {
                        json!({ "hashed_password": self.hash_password(p.to_string()).await? })
                    } else if let Some(h) = cfg.get("hashed_password").and_then(Value::as_str) {
                        crate::password::validate_import(h).map_err(|e| {
                            Error::bad_request(format!(
                                "The imported password does not match any known hash format: {e}"
                            ))
                        })?;
                        json!({ "hashed_password": h })
                    } else {
                        return Err(Error::bad_request(
                            "A password credential needs config.password or config.hashed_password.",
                        ));
                    }
                }
                CredentialType::Totp => {
                    let url = cfg.get("totp_url").and_then(Value::as_str).unwrap_or_default();
                    if totp_rs::Totp::from_url_unchecked(url).is_err() {
                        return Err(Error::bad_request("config.totp_url is not a valid otpauth:// TOTP URL."));
                    }
                    json!({ "totp_url": url })
                }
                CredentialType::LookupSecret => {
                    let codes: Vec<String> = cfg
                        .get("codes")
                        .or_else(|| cfg.get("recovery_codes"))
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter().filter_map(|c| c.get("code").and_then(Value::as_str)).map(str::to_string).collect()
                        })
                        .unwrap_or_default();
                    if codes.is_empty() {
                        return Err(Error::bad_request(
                            "A lookup_secret credential needs config.codes: [{\"code\": …}].",
                        ));
                    }
                    self.lookup_config(&codes)
                }
                CredentialType::Oidc => {
                    let (config, identifiers) = self.import_oidc(&cfg)?;
                    identity.credentials.insert(kind, Credential::new(kind, identifiers, config, now));
                    continue;
                }
                _ => {
                    return Err(Error::bad_request(format!(
                        "Importing {} credentials is not supported.",
                        kind.as_str()
                    )));
                }
            };
            identity.credentials.insert(kind, Credential::new(kind, vec![], config, now));
        }
        Ok(())
    }

    /// What an admin create and update both take from the input: metadata, the external id,
    /// imported credentials, and the identifiers and addresses derived from the traits.
    async fn apply_admin_input(&self, identity: &mut Identity, input: IdentityInput) -> Result<()> {
        identity.metadata_public = input.metadata_public.unwrap_or(Value::Null);
        identity.metadata_admin = input.metadata_admin.unwrap_or(Value::Null);
        identity.external_id = input.external_id.filter(|e| !e.is_empty());
        if let Some(c) = input.credentials {
            self.import_credentials(identity, c).await?;
        }
        self.derive(identity, input.verifiable_addresses.as_deref().unwrap_or_default())
    }

    /// Create an identity (admin API / import). Password policy is not applied to imports.
    pub async fn admin_create_identity(&self, mut input: IdentityInput) -> Result<Identity> {
        let schema_id = (input.schema_id.take().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| self.cfg.identity.default_schema_id.clone());
        self.schema(&schema_id)?;
        let mut identity = Identity::new(&schema_id, std::mem::take(&mut input.traits), self.clock.now());
        if let Some(s) = &input.state {
            identity.state = parse_state(s)?;
        }
        self.apply_admin_input(&mut identity, input).await?;
        match self.store.commit(Commit { create_identity: Some(&identity), ..Default::default() }).await {
            Ok(_) => Ok(identity),
            Err(StoreError::Conflict(_)) => Err(Self::conflict()),
            Err(e) => Err(e.into()),
        }
    }

    /// Replace an identity's traits/state/metadata (admin `PUT`); credentials are merged.
    pub async fn admin_update_identity(&self, id: uuid::Uuid, mut input: IdentityInput, req: &Req) -> Result<Identity> {
        let mut identity =
            self.store.get_identity(id).await?.ok_or_else(|| Error::not_found("Unable to locate the resource"))?;
        if let Some(s) = input.schema_id.take().filter(|s| !s.is_empty()) {
            self.schema(&s)?;
            identity.schema_id = s;
        }
        identity.traits = std::mem::take(&mut input.traits);
        if let Some(s) = &input.state {
            let st = parse_state(s)?;
            if st != identity.state {
                identity.state = st;
                identity.state_changed_at = Some(self.clock.now());
            }
        }
        self.apply_admin_input(&mut identity, input).await?;
        identity.updated_at = self.clock.now();
        let events = [self.activity(id, ActivityKind::AdminIdentityUpdated, Outcome::Success, None, None, req)];
        match self
            .store
            .commit(Commit { update_identity: Some(&identity), record_activity: &events, ..Default::default() })
            .await
        {
            Ok(_) => {
                identity.version += 1;
                Ok(identity)
            }
            Err(StoreError::Busy(_)) => {
                Err(Error::new(ErrorKind::Conflict, "The identity was changed by a concurrent request. Please retry."))
            }
            Err(StoreError::Conflict(_)) => Err(Self::conflict()),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove one credential type (admin). The last first factor cannot be removed.
    pub async fn admin_delete_credential(&self, id: uuid::Uuid, kind: &str, req: &Req) -> Result<()> {
        let kind = CredentialType::parse(kind)
            .ok_or_else(|| Error::bad_request(format!("Unknown credential type {kind:?}.")))?;
        let mut identity =
            self.store.get_identity(id).await?.ok_or_else(|| Error::not_found("Unable to locate the resource"))?;
        if identity.credentials.remove(&kind).is_none() {
            return Err(Error::not_found("The identity has no credential of this type."));
        }
        if kind.is_first_factor() && identity.first_factor_count() == 0 {
            return Err(Error::bad_request("You cannot remove the last first factor credential."));
        }
        let method = MethodId::parse(kind.as_str());
        let events = [self.activity(id, ActivityKind::AdminCredentialDeleted, Outcome::Success, method, None, req)];
        self.store
            .commit(Commit { update_identity: Some(&identity), record_activity: &events, ..Default::default() })
            .await?;
        Ok(())
    }
}

/// An identity state of the admin API (`active`, `inactive`).
fn parse_state(s: &str) -> Result<IdentityState> {
    IdentityState::parse(s).ok_or_else(|| {
        Error::bad_request(format!(
            "The supplied state ('{s}') was not valid. Valid states are ('active', 'inactive')."
        ))
    })
}
