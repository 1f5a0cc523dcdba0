//! Profile (traits) updates in settings. Traits replace the old ones entirely and are validated
//! against the identity schema; what a change needs follows each trait's policy (the schema's
//! `idflow` keyword, [`crate::schema::FieldPolicy`]): a privileged session (default: identifiers
//! and addresses), a session at AAL2, and for email addresses with `verify_before_apply` the
//! verification of the new address before the change applies (the change is kept pending,
//! `pending.rs`). `{"method": "profile", "cancel_pending": "traits.email"}` cancels one.

mod pending;

pub(crate) use pending::{PENDING_CHANGE, cancelled, no_longer_applies, nothing_pending};
pub use pending::{PENDING_CHANGES, PendingStart};

use super::{Method, MethodId};
use crate::error::Result;
use crate::model::{Aal, Flow};
use crate::selfservice::settings::Change;
use crate::selfservice::{Authed, Body, Engine, body_str};
use crate::ui::{UiText, msg};
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
        // A browser form's "cancel" button sends its own name instead of `method`.
        match body_str(body, "method") {
            Some(m) => m == "profile",
            None => body_str(body, "cancel_pending").is_some(),
        }
    }
    async fn settings(&self, e: &Engine, _flow: &mut Flow, a: &Authed, body: &Body) -> Result<Change> {
        e.settings_profile(a, body).await
    }
}

/// The form error of a change to a trait that needs AAL2 by an identity without a second factor.
fn needs_second_factor() -> UiText {
    UiText::error(4000060, "This field can only be changed after you set up a second factor and sign in with it.")
}

impl Engine {
    pub(crate) async fn settings_profile(&self, a: &Authed, body: &Body) -> Result<Change> {
        if let Some(path) = body_str(body, "cancel_pending") {
            return Ok(Change::Pending { identity: a.identity.clone(), start: vec![], cancel: Some(path.to_string()) });
        }
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
        // Per trait: the policy of each changed trait decides. An identifier or address change
        // no trait accounts for (e.g. through a `oneOf` branch) still needs a privileged session.
        let changed = schema.changed_fields(&a.identity.traits, &traits);
        let protected_paths = schema.protected_trait_paths();
        let unattributed = protected_changed && !changed.iter().any(|(p, _)| protected_paths.contains(p));
        if (unattributed || changed.iter().any(|(_, p)| p.privileged)) && !self.privileged(a) {
            return Ok(Change::NeedsPrivilege { pending: json!({ "traits": traits }) });
        }
        let aal2: Vec<&String> = changed.iter().filter(|(_, p)| p.aal2).map(|(path, _)| path).collect();
        if !aal2.is_empty() && a.session.aal < Aal::Aal2 {
            if a.identity.has_second_factor() {
                return Err(self.aal2_error(None));
            }
            let errors = aal2.into_iter().map(|p| (p.clone(), needs_second_factor())).collect();
            return Ok(Change::Invalid { errors, echo: Some(traits) });
        }
        // Changes to verify first keep the old value; the rest applies now.
        let (traits, start) = match self.split_pending(&schema, a, traits, &changed).await? {
            Ok(split) => split,
            Err(errors) => return Ok(Change::Invalid { errors, echo: body.get("traits").cloned() }),
        };
        let new = if start.is_empty() { new } else { schema.extract(&traits) };
        let mut identity = a.identity.clone();
        pending::set_traits(self, &mut identity, traits, &new);
        if identity.traits == Value::Null {
            return Ok(Change::Invalid { errors: vec![("traits".into(), msg::missing("traits"))], echo: None });
        }
        if !start.is_empty() {
            return Ok(Change::Pending { identity, start, cancel: None });
        }
        Ok(Change::Update { identity, add_method: None, revoke_others: false })
    }
}
