//! The `delete_account` decision in settings: schedule (privileged, aal2 with a second factor,
//! confirmed) or cancel.

use super::{CANCEL, CONFIRM};
use crate::courier::TemplateType;
use crate::error::Result;
use crate::model::Aal;
use crate::selfservice::settings::Change;
use crate::selfservice::{Authed, Body, Engine, body_flag};
use crate::ui::msg;
use serde_json::json;

impl Engine {
    pub(crate) fn settings_delete_account(&self, a: &Authed, body: &Body) -> Result<Change> {
        if body_flag(body, CANCEL) {
            if a.identity.delete_after.is_none() {
                let m = msg::generic("Your account is not scheduled for deletion.");
                return Ok(Change::Invalid { errors: vec![(String::new(), m)], echo: None });
            }
            // Keeping the account needs no re-authentication: whoever may use the settings
            // flow (at the AAL it requires) may cancel.
            let mut identity = a.identity.clone();
            identity.delete_after = None;
            return Ok(Change::Update { identity, add_method: None, revoke_others: false });
        }
        if a.identity.delete_after.is_some() {
            let m = msg::generic("Your account is already scheduled for deletion.");
            return Ok(Change::Invalid { errors: vec![(String::new(), m)], echo: None });
        }
        if !self.privileged(a) {
            return Ok(Change::NeedsPrivilege { pending: json!({}) });
        }
        // Whatever `required_aal` says: an account with a second factor is deleted only by a
        // session that used it.
        if a.identity.has_second_factor() && a.session.aal < Aal::Aal2 {
            return Err(self.aal2_error(None));
        }
        if !body_flag(body, CONFIRM) {
            return Ok(Change::Invalid { errors: vec![(CONFIRM.into(), msg::missing(CONFIRM))], echo: None });
        }
        let delete_after = self.clock.now() + self.cfg.selfservice.methods.delete_account.config.grace_period.as_time();
        let mut identity = a.identity.clone();
        identity.delete_after = Some(delete_after);
        let data = json!({
            "Identity": crate::selfservice::methods::code::template_identity(&identity),
            "DeleteAfter": crate::selfservice::deletion::rfc3339(delete_after),
            "DeleteAfterDate": crate::selfservice::deletion::readable(delete_after),
            "CancelURL": self.deletion_cancel_url(),
        });
        let mut messages = vec![];
        for to in Self::notice_addresses(&identity) {
            messages.push(self.render_mail(TemplateType::AccountDeletionScheduled, &to, data.clone())?);
        }
        Ok(Change::UpdateAndSignOut { identity, messages })
    }
}
