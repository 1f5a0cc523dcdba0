//! `delete_account`: self-service account deletion with a grace period (beyond Kratos).
//!
//! In settings the user confirms (`delete_account_confirm: true`) and submits
//! `method: delete_account` (the form's button sends `delete_account: true`); with a privileged session (and at aal2 when the account has a
//! second factor) the identity is scheduled for deletion at now + `grace_period`, ALL its
//! sessions end (the current one too) and a notice with a cancel link is mailed, in one commit
//! (`settings::Change::UpdateAndSignOut`). Signing in during the grace period offers to cancel:
//! the settings form then carries `delete_account_cancel` (and the flow a 1050042 notice), and
//! the idflow extension routes cancel too (`Engine::cancel_deletion`). The deletion worker
//! (`selfservice/deletion.rs`) deletes the identity for real once the date has passed.
//!
//! The nodes are in the `profile` group: Kratos clients (the official SDKs among them) accept
//! only Kratos's node groups.

mod settings;

use super::{Method, MethodId};
use crate::error::Result;
use crate::model::{Flow, Identity};
use crate::selfservice::settings::Change;
use crate::selfservice::{Authed, Body, Engine, body_flag, body_str};
use crate::ui::{Group, Node, msg};
use async_trait::async_trait;
use serde_json::json;

/// The confirmation checkbox a schedule needs.
pub const CONFIRM: &str = "delete_account_confirm";
/// The button that schedules the deletion (a flag, like `lookup_secret_regenerate`: the
/// profile group keeps its one `method` button).
pub const DELETE: &str = "delete_account";
/// The button that cancels a scheduled deletion.
pub const CANCEL: &str = "delete_account_cancel";

/// The `delete_account` method.
pub struct DeleteAccount;

#[async_trait]
impl Method for DeleteAccount {
    fn id(&self) -> MethodId {
        MethodId::DeleteAccount
    }
    fn enabled(&self, e: &Engine) -> bool {
        e.cfg.selfservice.methods.delete_account.enabled
    }
    fn claims_fields(&self, body: &Body) -> bool {
        body_flag(body, DELETE) || body_flag(body, CANCEL)
    }
    fn claims_settings(&self, _flow: &Flow, body: &Body) -> bool {
        body_str(body, "method") == Some(MethodId::DeleteAccount.as_str()) || self.claims_fields(body)
    }
    fn settings_nodes(&self, _e: &Engine, _flow: &mut Flow, identity: &Identity) -> Vec<Node> {
        if identity.delete_after.is_some() {
            return vec![Node::submit(Group::Profile, CANCEL, json!(true), msg::delete_account_cancel())];
        }
        vec![
            Node::input(Group::Profile, CONFIRM, "checkbox").value(json!(false)).label(msg::delete_account_confirm()),
            Node::submit(Group::Profile, DELETE, json!(true), msg::delete_account()),
        ]
    }
    async fn settings(&self, e: &Engine, _flow: &mut Flow, a: &Authed, body: &Body) -> Result<Change> {
        e.settings_delete_account(a, body)
    }
}
