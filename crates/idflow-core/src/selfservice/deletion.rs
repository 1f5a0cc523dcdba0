//! Account deletion and data export (beyond Kratos): the flow side of the `delete_account`
//! method (schedule: one commit with the identity, the end of all its sessions and the notice
//! mail), cancelling a scheduled deletion, the deletion worker, the data export, and the
//! settings notices (the offer to cancel; the recovery-codes guard rail).
//!
//! The cancel path: the notice mail links to the sign-in. Signing in during the grace period
//! never cancels by itself; it offers to cancel: the login answer carries an
//! `account_deletion` object (browsers are sent to the settings page), the settings flow shows
//! 1050040 with a `delete_account_cancel` button, and `POST /self-service/settings/cancel-deletion`
//! / `DELETE /v1/account/deletion` cancel directly.

use super::hooks::Phase;
use super::methods::{MethodId, REGISTRY};
use super::settings::SettingsDone;
use super::{Authed, Engine, Req, Submitted};
use crate::courier::Message;
use crate::error::{Error, Result};
use crate::model::{CredentialType, Flow, Identity, Session};
use crate::store::Commit;
use crate::ui::msg;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// Upper bound on batches per worker run (what is left waits for the next run).
const MAX_BATCHES_PER_RUN: u32 = 100;

/// RFC 3339 text of an instant (UTC).
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A readable UTC date for mails and messages: `2026-12-20 14:05 UTC`.
pub(crate) fn readable(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.to_offset(time::UtcOffset::UTC).format(&f).unwrap_or_default()
}

/// Fewer unused recovery codes than this (with a set of codes at all) gets a warning.
pub const FEW_RECOVERY_CODES: usize = 3;

impl Engine {
    /// Where the deletion notice's cancel link leads: the sign-in (a sign-in during the grace
    /// period offers to cancel).
    pub fn deletion_cancel_url(&self) -> String {
        self.url("/self-service/login/browser")
    }

    /// The mail addresses a notice about the account goes to: its verifiable and recovery
    /// addresses (by mail), each once.
    pub(crate) fn notice_addresses(identity: &Identity) -> Vec<String> {
        let mut out: Vec<String> = vec![];
        let all = identity
            .verifiable_addresses
            .iter()
            .filter(|a| a.via == "email")
            .map(|a| &a.value)
            .chain(identity.recovery_addresses.iter().filter(|a| a.via == "email").map(|a| &a.value));
        for a in all {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(a)) {
                out.push(a.clone());
            }
        }
        out
    }

    /// The notices a settings form carries for `identity` (replacing earlier ones): the offer
    /// to cancel a scheduled deletion (1050040) and the guard rail for recovery codes running
    /// out (1050043: fewer than three unused codes left).
    pub fn settings_notices(&self, flow: &mut Flow, identity: &Identity) {
        flow.ui.messages.retain(|m| m.id != 1050040 && m.id != 1050043);
        if let Some(at) = identity.delete_after {
            flow.ui.messages.push(msg::deletion_scheduled_notice(&readable(at), &rfc3339(at)));
        }
        if identity.credential(CredentialType::LookupSecret).is_some() {
            let (unused, total) = Self::lookup_counts(identity);
            if total > 0 && unused < FEW_RECOVERY_CODES {
                flow.ui.messages.push(msg::few_recovery_codes(unused));
            }
        }
    }

    /// A settings change that ends every session of the identity (`Change::UpdateAndSignOut`):
    /// the identity, the revocation of ALL its sessions (the caller's too), the flow and the
    /// mails in one commit; hooks as for any settings change.
    pub(crate) async fn settings_sign_out(
        &self,
        mut flow: Flow,
        a: &Authed,
        req: &Req,
        method: MethodId,
        mut identity: Identity,
        messages: Vec<Message>,
    ) -> Result<Submitted<SettingsDone>> {
        let now = self.clock.now();
        identity.updated_at = now;
        if let Err(reason) = self.run_web_hooks(Phase::Interrupting, method, &identity, &flow).await {
            let errors = vec![(String::new(), msg::generic(&reason))];
            return self.settings_invalid(flow, a, req, errors, None).await;
        }
        flow.internal_remove(super::settings::PENDING);
        for m in REGISTRY {
            m.settings_succeeded(&mut flow, m.id() == method);
        }
        flow.state = "success".into();
        let stored_version = identity.version;
        self.settings_ui(&mut flow, &identity, req, None)?;
        flow.ui.messages = match identity.delete_after {
            Some(at) => vec![msg::deletion_scheduled(&readable(at), &rfc3339(at))],
            None => vec![msg::settings_saved()],
        };
        flow.updated_at = now;
        // The activity log: the change by method, and every session it ended (this one too).
        use crate::activity::ActivityKind;
        let events = self.successes(
            identity.id,
            [ActivityKind::SettingsChanged, ActivityKind::OtherSessionsRevoked],
            Some(method),
            Some(a.session.id),
            req,
        );
        let res = self
            .store
            .commit(Commit {
                queue_messages: &messages,
                update_identity: Some(&identity),
                previous_identity: Some(&a.identity),
                revoke_other_sessions: Some((identity.id, None)),
                update_flow: Some(&flow),
                record_activity: &events,
                ..Default::default()
            })
            .await;
        let revoked = match res {
            Ok(n) => n,
            Err(e) => {
                return Err(Error::raced(
                    e,
                    "Your account was changed by a concurrent request. Please reload the form and try again.",
                ));
            }
        };
        flow.version += 1;
        identity.version = stored_version + 1;
        tracing::info!(
            identity_id = %identity.id, flow_id = %flow.id, method = method.as_str(), revoked_sessions = revoked,
            "settings change ended every session of the identity"
        );
        let continue_with = self.run_web_hooks(Phase::After, method, &identity, &flow).await.unwrap_or_default();
        Ok(Submitted::Done(SettingsDone {
            flow,
            identity,
            method,
            session: None,
            redirect_to: self.deletion_cancel_url(),
            continue_with,
            signed_out: true,
        }))
    }

    /// Cancel the caller's scheduled deletion (the idflow extension routes; the settings flow
    /// cancels through `delete_account_cancel`). The session must meet the settings flow's
    /// `required_aal`. Returns the identity as stored now.
    pub async fn cancel_deletion(&self, a: &Authed) -> Result<Identity> {
        if !self.aal_ok(self.cfg.selfservice.flows.settings.required_aal, a) {
            return Err(self.aal2_error(None));
        }
        if !self.cfg.selfservice.methods.delete_account.enabled {
            return Err(super::methods::disabled());
        }
        if a.identity.delete_after.is_none() {
            return Err(Error::bad_request("Your account is not scheduled for deletion."));
        }
        let mut identity = a.identity.clone();
        identity.delete_after = None;
        identity.updated_at = self.clock.now();
        let res = self
            .store
            .commit(Commit {
                update_identity: Some(&identity),
                previous_identity: Some(&a.identity),
                ..Default::default()
            })
            .await;
        match res {
            Ok(_) => {}
            Err(e) => {
                return Err(Error::raced(e, "Your account was changed by a concurrent request. Please try again."));
            }
        }
        identity.version += 1;
        tracing::info!(identity_id = %identity.id, "account deletion cancelled");
        Ok(identity)
    }

    /// The deletion worker: delete every identity whose grace period is over, in batches of
    /// `cleanup.batch_size` (each a short transaction). Safe on several nodes at once: each
    /// identity is deleted by exactly one (see `Store::purge_scheduled_deletions`). Returns how
    /// many this node deleted. Time comes from the engine's clock.
    pub async fn purge_scheduled_deletions(&self) -> Result<u64> {
        let batch = self.cfg.cleanup.batch_size.max(1);
        let mut total = 0u64;
        for _ in 0..MAX_BATCHES_PER_RUN {
            let ids = self.store.purge_scheduled_deletions(self.clock.now(), batch).await?;
            for id in &ids {
                tracing::info!(identity_id = %id, "account deleted after its grace period");
            }
            total += ids.len() as u64;
            if ids.len() < batch as usize {
                break;
            }
        }
        Ok(total)
    }

    /// The caller's data as one JSON document: identity and traits, addresses (verified status
    /// and dates), credential kinds with dates (never hashes, secrets or key material: only
    /// ids, names and dates), sessions (devices, times, AAL, active) and the activity log.
    pub async fn export_account(&self, a: &Authed) -> Result<Value> {
        // The same bar as the settings flow: a second factor, when the account has one.
        if !self.aal_ok(self.cfg.selfservice.flows.settings.required_aal, a) {
            return Err(self.aal2_error(None));
        }
        let i = &a.identity;
        let now = self.clock.now();
        let ts = |t: OffsetDateTime| json!(rfc3339(t));
        let opt_ts = |t: Option<OffsetDateTime>| t.map_or(Value::Null, |t| json!(rfc3339(t)));
        let verifiable: Vec<Value> = i
            .verifiable_addresses
            .iter()
            .map(|v| {
                json!({"value": v.value, "via": v.via, "verified": v.verified, "status": v.status,
                    "verified_at": opt_ts(v.verified_at), "created_at": ts(v.created_at), "updated_at": ts(v.updated_at)})
            })
            .collect();
        let recovery: Vec<Value> = i
            .recovery_addresses
            .iter()
            .map(|r| json!({"value": r.value, "via": r.via, "created_at": ts(r.created_at), "updated_at": ts(r.updated_at)}))
            .collect();
        let credentials: Vec<Value> = i.credentials.values().map(|c| export_credential(i, c, &ts)).collect();
        let mut sessions = vec![];
        let mut after = None;
        loop {
            let page = self.store.list_sessions(Some(i.id), false, after, 500).await?;
            let n = page.len();
            after = page.last().map(|s| s.id);
            sessions.extend(page.iter().map(|s| export_session(s, a.session.id, now, &ts)));
            if n < 500 {
                break;
            }
        }
        // ---- activity (the whole log the retention kept, newest first) ------------------
        let mut activity: Vec<Value> = vec![];
        let mut cursor = None;
        loop {
            let page = self.store.list_activity(i.id, cursor, 1000).await?;
            cursor = page.last().map(|e| e.cursor());
            activity.extend(page.iter().map(|e| {
                json!({
                    "kind": e.kind.as_str(), "outcome": e.outcome.as_str(),
                    "method": e.method.map(|m| m.as_str()), "session_id": e.session_id,
                    "ip_address": e.ip_address, "user_agent": e.user_agent, "at": ts(e.created_at),
                })
            }));
            if page.len() < 1000 {
                break;
            }
        }
        Ok(json!({
            "exported_at": ts(now),
            "identity": {
                "id": i.id, "schema_id": i.schema_id, "state": i.state.as_str(),
                "traits": i.traits, "metadata_public": i.metadata_public,
                "created_at": ts(i.created_at), "updated_at": ts(i.updated_at),
                "delete_after": opt_ts(i.delete_after),
            },
            "addresses": { "verifiable": verifiable, "recovery": recovery },
            "credentials": credentials,
            "sessions": sessions,
            "activity": activity,
        }))
    }
}

/// A credential in the export: kind, identifiers (not for TOTP and recovery codes, whose
/// "identifier" is the identity id), dates, and a summary without secrets.
fn export_credential(i: &Identity, c: &crate::model::Credential, ts: &dyn Fn(OffsetDateTime) -> Value) -> Value {
    let mut o = json!({"type": c.kind.as_str(), "created_at": ts(c.created_at), "updated_at": ts(c.updated_at)});
    let list = |k: &str| c.config.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
    match c.kind {
        CredentialType::Password => {
            o["identifiers"] = json!(c.identifiers);
        }
        CredentialType::Oidc => {
            let providers: Vec<Value> = list("providers")
                .iter()
                .map(|p| json!({"provider": p.get("provider"), "subject": p.get("subject")}))
                .collect();
            o["providers"] = json!(providers);
        }
        CredentialType::Webauthn | CredentialType::Passkey => {
            let keys: Vec<Value> = list("credentials")
                .iter()
                .map(|k| {
                    json!({"id": k.get("id"), "display_name": k.get("display_name"), "added_at": k.get("added_at"),
                        "is_passwordless": k.get("is_passwordless").cloned().unwrap_or(Value::Bool(c.kind == CredentialType::Passkey))})
                })
                .collect();
            o["keys"] = json!(keys);
        }
        CredentialType::LookupSecret => {
            let (unused, total) = Engine::lookup_counts(i);
            o["codes"] = json!({"unused": unused, "total": total});
        }
        CredentialType::Totp => {}
    }
    o
}

fn export_session(
    s: &Session,
    current: uuid::Uuid,
    now: OffsetDateTime,
    ts: &dyn Fn(OffsetDateTime) -> Value,
) -> Value {
    let methods: Vec<Value> = s
        .authentication_methods
        .iter()
        .map(|m| json!({"method": m.method, "aal": m.aal.as_str(), "completed_at": ts(m.completed_at), "provider": m.provider}))
        .collect();
    let devices: Vec<Value> = s
        .devices
        .iter()
        .map(|d| json!({"ip_address": d.ip_address, "user_agent": d.user_agent, "location": d.location}))
        .collect();
    json!({
        "id": s.id, "active": s.is_active(now), "current": s.id == current, "aal": s.aal.as_str(),
        "authenticated_at": ts(s.authenticated_at), "issued_at": ts(s.issued_at), "expires_at": ts(s.expires_at),
        "authentication_methods": methods, "devices": devices,
    })
}
