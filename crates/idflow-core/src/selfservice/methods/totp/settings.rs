//! TOTP in settings: enrol (a secret kept on the flow until a valid code confirms it) and
//! remove (needs aal2).

use crate::error::{Error, Result};
use crate::model::{Credential, CredentialType, Flow, MethodId};
use crate::selfservice::settings::Change;
use crate::selfservice::{Authed, Body, Engine, FormReason, body_flag, body_str};
use crate::ui::msg;
use serde_json::{Value, json};

impl Engine {
    pub(crate) async fn settings_totp(&self, flow: &mut Flow, a: &Authed, body: &Body) -> Result<Change> {
        let unlink = body_flag(body, "totp_unlink");
        if !self.privileged(a) {
            return Ok(Change::NeedsPrivilege { pending: json!({ "totp_unlink": unlink }) });
        }
        let has = a.identity.credential(CredentialType::Totp).is_some();
        if unlink {
            if !has {
                return Ok(Change::Invalid { errors: vec![(String::new(), msg::no_totp())], echo: None });
            }
            // Removing a second factor needs aal2: checked by the settings flow for every method.
            let mut identity = a.identity.clone();
            identity.credentials.remove(&CredentialType::Totp);
            return Ok(Change::Update { identity, add_method: None, revoke_others: false });
        }
        if has {
            // Already enrolled: a no-op that still reports success.
            return Ok(Change::Update { identity: a.identity.clone(), add_method: None, revoke_others: false });
        }
        let code = body_str(body, "totp_code").unwrap_or_default();
        if code.is_empty() {
            if body.get("totp_code").is_none() {
                // The section was opened without a code: the enrolment has started (the form
                // shows the QR code). Kratos clients see the missing-code error all the same.
                flow.reason = Some(FormReason::EnrolmentStarted);
            }
            return Ok(Change::Invalid { errors: vec![("totp_code".into(), msg::missing("totp_code"))], echo: None });
        }
        let key = self.second_factor_attempt(&a.identity).await?;
        let secret = flow.internal_get("totp_secret").and_then(Value::as_str).unwrap_or_default().to_string();
        let totp = self.totp_for(&a.identity, &secret);
        let step = totp.as_ref().and_then(|t| self.totp_check(t, code));
        let (Some(totp), Some(step)) = (totp, step) else {
            return Ok(Change::Invalid { errors: vec![("totp_code".into(), msg::totp_invalid())], echo: None });
        };
        let _ = self.store.rate_clear(&key).await;
        let url = totp.to_url().map_err(Error::internal)?;
        let mut identity = a.identity.clone();
        identity.credentials.insert(
            CredentialType::Totp,
            Credential::new(
                CredentialType::Totp,
                vec![identity.id.to_string()],
                json!({ "totp_url": url, "last_used_step": step }),
                self.clock.now(),
            ),
        );
        Ok(Change::Update { identity, add_method: Some(MethodId::Totp), revoke_others: false })
    }
}
