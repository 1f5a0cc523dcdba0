//! Recovery codes in settings: regenerate (shown once, kept on the flow), confirm (stored
//! hashed), reveal (how many remain), disable.

use super::CODE_COUNT;
use crate::error::Result;
use crate::model::{Credential, CredentialType, Flow};
use crate::selfservice::settings::Change;
use crate::selfservice::{Authed, Body, Engine, body_flag};
use crate::ui::msg;
use serde_json::{Value, json};

/// The body flags of the method, in precedence order.
pub(super) const FLAGS: [&str; 4] =
    ["lookup_secret_confirm", "lookup_secret_reveal", "lookup_secret_disable", "lookup_secret_regenerate"];

impl Engine {
    pub(crate) fn settings_lookup(&self, flow: &mut Flow, a: &Authed, body: &Body) -> Result<Change> {
        if !self.privileged(a) {
            return Ok(Change::NeedsPrivilege { pending: json!({}) });
        }
        // Precedence: confirm > reveal > disable > regenerate.
        if body_flag(body, "lookup_secret_confirm") {
            let codes: Vec<String> = flow
                .internal_get("lookup_codes")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default();
            if codes.len() != CODE_COUNT {
                let m = msg::generic("You must (re-)generate recovery backup codes before you can save them.");
                return Ok(Change::Invalid { errors: vec![(String::new(), m)], echo: None });
            }
            let mut identity = a.identity.clone();
            identity.credentials.insert(
                CredentialType::LookupSecret,
                Credential::new(
                    CredentialType::LookupSecret,
                    vec![identity.id.to_string()],
                    self.lookup_config(&codes),
                    self.clock.now(),
                ),
            );
            // Codes the server showed prove nothing about who holds the session: no AAL from them.
            return Ok(Change::Update { identity, add_method: None, revoke_others: false });
        }
        if body_flag(body, "lookup_secret_reveal") {
            if Self::lookup_counts(&a.identity).1 == 0 {
                let m = msg::generic("Can not reveal lookup codes because you have none.");
                return Ok(Change::Invalid { errors: vec![(String::new(), m)], echo: None });
            }
            // Codes are stored hashed, so "reveal" shows how many remain and offers new ones.
            flow.internal_set("lookup_revealed", json!(true));
            return Ok(Change::ShowForm);
        }
        if body_flag(body, "lookup_secret_disable") {
            let mut identity = a.identity.clone();
            identity.credentials.remove(&CredentialType::LookupSecret);
            return Ok(Change::Update { identity, add_method: None, revoke_others: false });
        }
        flow.internal_set("lookup_codes", json!(Self::new_lookup_codes()));
        Ok(Change::ShowForm)
    }
}
