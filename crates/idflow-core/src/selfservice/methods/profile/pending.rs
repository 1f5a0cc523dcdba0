//! Email changes verified before they apply (`verify_before_apply`).
//!
//! A settings submit that changes such a trait keeps the old value (trait, identifier,
//! address) and stores the new one as a [`PendingChange`] (table `pending_changes`), with a
//! verification flow of its own whose code goes to the NEW address and a notice to the old one
//! (no secret in it). The verification flow's commit applies the change: the trait changes,
//! the identifier moves and the address is stored verified, re-validated against the schema and
//! the other identities' addresses. Pending changes expire with the code
//! (`selfservice.methods.code.config.lifespan`); the settings form shows them with a button
//! that cancels one. Admin updates set traits directly; a change whose trait no longer has the
//! value it replaced does not apply.
//!
//! Only with verification (`selfservice.flows.verification.enabled`) and the `code` method on:
//! otherwise nothing could ever confirm the new address and changes apply at once.

use crate::courier::{Message, TemplateType};
use crate::error::Result;
use crate::model::{CredentialType, Flow, Identity, PendingChange};
use crate::schema::{Extracted, FieldPolicy, IdentitySchema};
use crate::selfservice::methods::code::template_identity;
use crate::selfservice::{Authed, Engine, with_query};
use crate::ui::{Group, Node, UiText, msg};
use serde_json::{Value, json};
use uuid::Uuid;

/// The flow state key (`flow.internal`) under which a settings flow keeps the identity's
/// pending changes as last read (for its form).
pub const PENDING_CHANGES: &str = "pending_changes";

/// The state key of a verification flow whose code confirms a pending change.
pub(crate) const PENDING_CHANGE: &str = "pending_change";

/// The form node of the cancel buttons.
const CANCEL: &str = "cancel_pending";

/// The message on a trait with a pending change.
const PENDING_INFO: u32 = 1050050;

/// A change to keep pending: decided by the profile method, stored by the settings flow.
#[derive(Debug, Clone)]
pub struct PendingStart {
    /// The trait's node name (`traits.email`).
    pub path: String,
    pub value: Value,
    /// The value it replaces (`None`: the trait had none).
    pub previous: Option<Value>,
    /// The new address, normalised.
    pub address: String,
}

fn pending_info(value: &str, address: &str, expires_unix: i64) -> UiText {
    UiText::info(
        PENDING_INFO,
        format!(
            "The change to {value} is waiting for verification: enter the code we sent to {address}. Until then the current value stays in effect."
        ),
    )
    .with_context(json!({"value": value, "address": address, "expires_at_unix": expires_unix}))
}

fn cancel_label(value: &str) -> UiText {
    UiText::info(1050051, "Cancel the pending change").with_context(json!({"value": value}))
}

fn verify_label() -> UiText {
    UiText::info(1050053, "Enter the verification code")
}

/// The notice after a cancel.
pub(crate) fn cancelled(path: &str) -> UiText {
    UiText::info(1050052, "The pending change was cancelled.").with_context(json!({"path": path}))
}

/// Nothing pending to cancel.
pub(crate) fn nothing_pending(path: &str) -> UiText {
    UiText::error(4000061, "There is no pending change to cancel.").with_context(json!({"path": path}))
}

/// The verification code confirms a change that is gone.
pub(crate) fn no_longer_applies() -> UiText {
    UiText::error(4070010, "The change this code confirms was cancelled, has expired or no longer applies.")
}

/// `n***@example.com`.
fn masked(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => format!("{}***@{domain}", local.chars().next().unwrap_or('*')),
        None => "***".into(),
    }
}

/// Replace the identity's traits and derive identifiers and addresses from them.
pub(crate) fn set_traits(e: &Engine, identity: &mut Identity, traits: Value, new: &Extracted) {
    let now = e.clock.now();
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
    e.apply_extracted_addresses(identity, new, now);
}

impl Engine {
    /// Whether changes can wait for a verification (verification flows with mailed codes).
    pub fn verify_before_apply_active(&self) -> bool {
        self.cfg.selfservice.flows.verification.enabled && self.cfg.selfservice.methods.code.enabled
    }

    /// Split the submitted traits: the returned traits keep the old value of every changed
    /// trait to verify first, listed as [`PendingStart`]s. An address another identity has
    /// is a form error.
    pub(super) async fn split_pending(
        &self,
        schema: &IdentitySchema,
        a: &Authed,
        mut traits: Value,
        changed: &[(String, FieldPolicy)],
    ) -> Result<std::result::Result<(Value, Vec<PendingStart>), Vec<(String, UiText)>>> {
        let mut start = vec![];
        if !self.verify_before_apply_active() {
            return Ok(Ok((traits, start)));
        }
        for (path, _) in changed.iter().filter(|(_, p)| p.verify_before_apply) {
            // Removing the address (or a value that is no address) applies at once.
            let Some(Value::String(new)) = schema.field_value(path, &traits).cloned() else { continue };
            let address = new.trim().to_lowercase();
            let previous = schema.field_value(path, &a.identity.traits).cloned();
            let same = previous.as_ref().and_then(Value::as_str).is_some_and(|p| p.trim().to_lowercase() == address);
            if address.is_empty() || same {
                continue;
            }
            let by_address = self.store.find_identity_by_verifiable_address(&address).await?;
            let by_identifier = match by_address {
                Some(_) => None,
                None => {
                    let id = crate::schema::normalize_identifier(&new);
                    self.store.find_identity_by_identifier(CredentialType::Password, &id).await?
                }
            };
            if by_address.or(by_identifier).is_some_and(|other| other.id != a.identity.id) {
                return Ok(Err(vec![(String::new(), msg::duplicate())]));
            }
            let Some(kept) = schema.with_field_value(path, &traits, previous.clone()) else { continue };
            traits = kept;
            start.push(PendingStart { path: path.clone(), value: Value::String(new), previous, address });
        }
        Ok(Ok((traits, start)))
    }

    /// Read the identity's pending changes into the settings flow's state: those that can still
    /// apply (not expired, the trait still has the value they replace: an admin may have
    /// changed it meanwhile).
    pub async fn load_pending_changes(&self, flow: &mut Flow, identity: &Identity) -> Result<()> {
        let now = self.clock.now();
        let schema = self.schema(&identity.schema_id)?.clone();
        // Read with the identity when it came from the store (its session's); else read now.
        let stored = match &identity.pending_changes {
            Some(p) => p.clone(),
            None => self.store.list_pending_changes(identity.id).await?,
        };
        let list: Vec<Value> = stored
            .into_iter()
            .filter(|p| {
                p.expires_at > now
                    && schema.field_value(&p.path, &identity.traits).unwrap_or(&Value::Null) == &p.previous
            })
            .map(|p| {
                json!({"path": p.path, "value": p.value, "address": p.address, "flow_id": p.flow_id,
                    "expires_at": p.expires_at.unix_timestamp()})
            })
            .collect();
        if list.is_empty() {
            flow.internal_remove(PENDING_CHANGES);
        } else {
            flow.internal_set(PENDING_CHANGES, Value::Array(list));
        }
        Ok(())
    }

    /// Show the pending changes of the flow's state on its form: a message on the trait, a
    /// link to the verification form and a cancel button (replacing earlier ones).
    pub fn place_pending_nodes(&self, flow: &mut Flow) {
        flow.ui.nodes.retain(|n| n.id() != CANCEL && !n.id().starts_with("verify_pending."));
        for n in &mut flow.ui.nodes {
            n.messages.retain(|m| m.id != PENDING_INFO);
        }
        let list = flow.internal_get(PENDING_CHANGES).and_then(Value::as_array).cloned().unwrap_or_default();
        for p in list {
            let text = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            let (path, address) = (text("path"), text("address"));
            let value = p.get("value").and_then(Value::as_str).map(String::from).unwrap_or_else(|| address.clone());
            let expires = p.get("expires_at").and_then(Value::as_i64).unwrap_or_default();
            flow.ui.add_message(&path, pending_info(&value, &address, expires));
            if let Some(id) = p.get("flow_id").and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok()) {
                // Through the public link (without a code): it binds the flow to this browser
                // (the flow was created by the settings submit) and leads to the form.
                let url = with_query(&self.url("/self-service/verification"), &[("flow", &id.to_string())]);
                flow.ui.nodes.push(Node::anchor(
                    Group::Profile,
                    &format!("verify_pending.{path}"),
                    &url,
                    verify_label(),
                ));
            }
            flow.ui.nodes.push(Node::submit(Group::Profile, CANCEL, json!(path), cancel_label(&value)));
        }
    }

    /// The pending change a stored one of `start` becomes, confirmed by verification flow
    /// `flow_id`.
    pub(crate) fn pending_change(&self, identity_id: Uuid, start: &PendingStart, flow_id: Uuid) -> PendingChange {
        let now = self.clock.now();
        let lifespan = self.cfg.selfservice.methods.code.config.lifespan.as_time();
        PendingChange {
            identity_id,
            path: start.path.clone(),
            value: start.value.clone(),
            previous: start.previous.clone().unwrap_or(Value::Null),
            address: start.address.clone(),
            flow_id,
            created_at: now,
            expires_at: now + lifespan,
        }
    }

    /// The notice to the address a pending change replaces (no code, no link that acts).
    pub(crate) fn pending_notice(&self, identity: &Identity, old: &str, new: &str) -> Result<Message> {
        let data = json!({
            "To": old,
            "Subject": "A change of your email address was requested",
            "Body": format!(
                "someone asked to change the email address of your account to {}. The change applies only once the new address is confirmed with the code sent to it; until then this address stays in effect. If you did not ask for this, sign in, cancel the change in your account settings and change your password.",
                masked(new)
            ),
            "Event": "email_change_requested",
            "NewAddressMasked": masked(new),
            "Identity": template_identity(identity),
        });
        self.render_mail(TemplateType::SecurityNotification, old, data)
    }

    /// `identity` with the pending change of `path` (confirmed by verification flow `flow_id`
    /// for `address`) applied and the address verified; a message when it cannot apply any
    /// more (cancelled, expired, replaced, the trait changed meanwhile, the address taken).
    pub(crate) async fn apply_pending_change(
        &self,
        identity: &Identity,
        path: &str,
        flow_id: Uuid,
        address: &str,
    ) -> Result<std::result::Result<Identity, UiText>> {
        let now = self.clock.now();
        let found = self.store.list_pending_changes(identity.id).await?.into_iter().find(|p| {
            p.path == path && p.flow_id == flow_id && p.address.eq_ignore_ascii_case(address) && p.expires_at > now
        });
        let Some(p) = found else { return Ok(Err(no_longer_applies())) };
        let schema = self.schema(&identity.schema_id)?.clone();
        let current = schema.field_value(path, &identity.traits).cloned().unwrap_or(Value::Null);
        if current != p.previous {
            return Ok(Err(no_longer_applies()));
        }
        let Some(traits) = schema.with_field_value(path, &identity.traits, Some(p.value.clone())) else {
            return Ok(Err(no_longer_applies()));
        };
        if !schema.validate(&traits).is_empty() {
            return Ok(Err(no_longer_applies()));
        }
        if let Some(other) = self.store.find_identity_by_verifiable_address(&p.address).await?
            && other.id != identity.id
        {
            return Ok(Err(msg::duplicate()));
        }
        let new = schema.extract(&traits);
        let mut out = identity.clone();
        set_traits(self, &mut out, traits, &new);
        for a in out.verifiable_addresses.iter_mut().filter(|a| a.value.eq_ignore_ascii_case(&p.address)) {
            a.verified = true;
            a.status = "completed".into();
            a.verified_at = Some(now);
            a.updated_at = now;
        }
        Ok(Ok(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_local_part() {
        assert_eq!(masked("nora@example.com"), "n***@example.com");
        assert_eq!(masked("@x.io"), "****@x.io");
        assert_eq!(masked("nope"), "***");
    }
}
