//! The `code` method: six-digit one-time codes sent by mail (account recovery, address
//! verification).
//!
//! Codes live on the flow (`internal.codes`), stored as an HMAC with the cipher secret like
//! backup recovery codes, each with its expiry (`selfservice.methods.code.config.lifespan`).
//! A resend replaces the flow's codes. Code submits are counted per flow
//! (`config.max_submissions`, checked before comparing); then the flow is replaced. A
//! successful code ends with the flow's commit, so two concurrent submits of one code cannot
//! both win (the flow's version).

use super::{AddressStep, Method, MethodId, nonempty};
use crate::courier::{Message, TemplateType};
use crate::crypto;
use crate::error::Result;
use crate::model::{Flow, FlowKind, Identity};
use crate::selfservice::{Body, Engine, Req, body_str};
use crate::ui::{Group, Node, UiText, msg};
use async_trait::async_trait;
use serde_json::{Value, json};
use uuid::Uuid;

/// Flow state keys.
const CODES: &str = "codes";
const SUBMISSIONS: &str = "code_submissions";
const ADDRESS: &str = "code_address";

pub struct Code;

#[async_trait]
impl Method for Code {
    fn id(&self) -> MethodId {
        MethodId::Code
    }
    fn enabled(&self, e: &Engine) -> bool {
        e.cfg.selfservice.methods.code.enabled
    }
    fn claims_recovery(&self, body: &Body) -> bool {
        body_str(body, "method") == Some("code")
    }
    fn recovery_nodes(&self, _e: &Engine, flow: &Flow) -> Vec<Node> {
        code_nodes(flow)
    }
    async fn recovery(&self, e: &Engine, flow: &mut Flow, body: &Body, req: &Req) -> Result<AddressStep> {
        e.code_step(flow, body, req).await
    }
    fn claims_verification(&self, body: &Body) -> bool {
        body_str(body, "method") == Some("code")
    }
    fn verification_nodes(&self, _e: &Engine, flow: &Flow) -> Vec<Node> {
        code_nodes(flow)
    }
    async fn verification(&self, e: &Engine, flow: &mut Flow, body: &Body, req: &Req) -> Result<AddressStep> {
        e.code_step(flow, body, req).await
    }
}

/// The nodes of a recovery or verification flow in its state.
fn code_nodes(flow: &Flow) -> Vec<Node> {
    let recovery = flow.kind == FlowKind::Recovery;
    match flow.state.as_str() {
        "sent_email" => {
            let address = flow.internal_get(ADDRESS).and_then(Value::as_str).unwrap_or_default().to_string();
            vec![
                Node::input(Group::Code, "code", "text")
                    .required()
                    .autocomplete("one-time-code")
                    .with_attrs(|a| {
                        a.pattern = Some("[0-9]+".into());
                        a.maxlength = Some(6);
                    })
                    .label(if recovery { msg::label_recovery_code() } else { msg::label_verification_code() }),
                Node::input(Group::Code, "method", "hidden").value(json!("code")),
                Node::submit(Group::Code, "method", json!("code"), msg::label_continue()),
                Node::submit(Group::Code, "email", json!(address), msg::label_resend_code()),
            ]
        }
        "choose_method" => vec![
            Node::input(Group::Code, "email", "email").required().autocomplete("email").label(msg::label_email()),
            Node::submit(Group::Code, "method", json!("code"), msg::label_continue()),
        ],
        _ => vec![],
    }
}

impl Engine {
    /// A code-method submit to a recovery or verification flow.
    async fn code_step(&self, flow: &mut Flow, body: &Body, req: &Req) -> Result<AddressStep> {
        let recovery = flow.kind == FlowKind::Recovery;
        match flow.state.as_str() {
            "passed_challenge" => {
                let message = if recovery { msg::recovery_retry_success() } else { msg::verification_retry_success() };
                return Ok(AddressStep::Restart { message });
            }
            "choose_method" | "sent_email" => {}
            _ => {
                let message = if recovery { msg::recovery_state_failure() } else { msg::verification_state_failure() };
                return Ok(AddressStep::Restart { message });
            }
        }
        let code = nonempty(body, "code");
        if let (Some(code), "sent_email") = (code, flow.state.as_str()) {
            return self.check_code(flow, code).await;
        }
        let Some(email) = nonempty(body, "email") else {
            return Ok(AddressStep::Invalid { errors: vec![("email".into(), msg::missing("email"))] });
        };
        let email = email.trim().to_lowercase();
        if !email.contains('@') || email.len() > 320 {
            let text = UiText::error(4000001, format!("{email:?} is not valid \"email\""))
                .with_context(json!({"reason": "not a valid email address"}));
            return Ok(AddressStep::Invalid { errors: vec![("email".into(), text)] });
        }
        let messages = self.send_code(flow, &email, req).await?;
        Ok(AddressStep::Sent { messages })
    }
}

/// The identity's data for mail templates (`Identity`).
pub fn template_identity(i: &Identity) -> Value {
    json!({"id": i.id, "schema_id": i.schema_id, "state": i.state.as_str(), "traits": i.traits,
        "metadata_public": i.metadata_public})
}

impl Engine {
    /// Keyed hash of a mailed one-time code.
    pub fn one_time_code_hash(&self, code: &str) -> String {
        crypto::hmac_b64(&self.cipher_key, format!("code:{}", code.trim()).as_bytes())
    }

    /// A new six-digit code.
    pub fn new_one_time_code() -> String {
        crypto::random_string(b"0123456789", 6)
    }

    /// Put a fresh code for `identity`'s `address` on the flow (replacing earlier ones) and
    /// return it with its expiry. `lifespan` defaults to the method's.
    pub fn put_recovery_code(
        &self,
        flow: &mut Flow,
        identity: Option<&Identity>,
        address: &str,
        lifespan: Option<std::time::Duration>,
    ) -> (String, time::OffsetDateTime) {
        let lifespan = lifespan.unwrap_or(self.cfg.selfservice.methods.code.config.lifespan.0);
        let expires_at =
            self.clock.now() + time::Duration::seconds(i64::try_from(lifespan.as_secs()).unwrap_or(i64::MAX / 2));
        let code = Self::new_one_time_code();
        let codes = match identity {
            Some(i) => json!([{"hash": self.one_time_code_hash(&code), "expires_at": expires_at.unix_timestamp(),
                "identity_id": i.id, "address": address}]),
            None => json!([]),
        };
        flow.internal_set(CODES, codes);
        // A resend replaces the code but not the count of submits: the flow still dies after
        // `max_submissions` (checklist T26), so resending never buys more guesses.
        flow.internal_set(ADDRESS, json!(address));
        flow.state = "sent_email".into();
        (code, expires_at)
    }

    /// Send a code to `email` for the flow's kind (same answer whether an account has the
    /// address or not).
    async fn send_code(&self, flow: &mut Flow, email: &str, req: &Req) -> Result<Vec<Message>> {
        let recovery = flow.kind == FlowKind::Recovery;
        let identity = if recovery {
            // A deactivated account is not recovered (it gets the unknown-address answer).
            self.store
                .find_identity_by_recovery_address(email)
                .await?
                .filter(|i| i.state == crate::model::IdentityState::Active)
        } else {
            match self.store.find_identity_by_verifiable_address(email).await? {
                Some(i) => Some(i),
                // A resend of the code that confirms a pending change (the address is no
                // verifiable address of the identity yet).
                None => self.pending_change_identity(flow, email).await?,
            }
        };
        let notify = if recovery {
            self.cfg.selfservice.flows.recovery.notify_unknown_recipients
        } else {
            self.cfg.selfservice.flows.verification.notify_unknown_recipients
        };
        let (code, _) = self.put_recovery_code(flow, identity.as_ref(), email, None);
        let kind = flow.kind.as_str();
        match &identity {
            Some(i) => {
                tracing::info!(flow_id = %flow.id, identity_id = %i.id, kind, "code sent");
                Ok(vec![self.code_mail(flow, Some(i), email, &code, &req.request_url)?])
            }
            None if notify => {
                tracing::info!(flow_id = %flow.id, kind, "code requested for an unknown address; notice sent");
                Ok(vec![self.code_mail(flow, None, email, "", &req.request_url)?])
            }
            None => {
                tracing::info!(flow_id = %flow.id, kind, "code requested for an unknown address");
                Ok(vec![])
            }
        }
    }

    /// The identity whose pending change to `email` this verification flow confirms.
    async fn pending_change_identity(&self, flow: &Flow, email: &str) -> Result<Option<Identity>> {
        let Some(p) = flow.internal_get(crate::selfservice::methods::profile::PENDING_CHANGE) else {
            return Ok(None);
        };
        if !p.get("address").and_then(Value::as_str).is_some_and(|a| a.eq_ignore_ascii_case(email)) {
            return Ok(None);
        }
        let Some(id) = p.get("identity_id").and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok()) else {
            return Ok(None);
        };
        Ok(self.store.get_identity(id).await?.filter(|i| i.state == crate::model::IdentityState::Active))
    }

    /// The mail with `code` for the flow's kind (`identity` None: the unknown-address notice).
    pub fn code_mail(
        &self,
        flow: &Flow,
        identity: Option<&Identity>,
        email: &str,
        code: &str,
        request_url: &str,
    ) -> Result<Message> {
        let minutes = self.cfg.selfservice.methods.code.config.lifespan.0.as_secs() / 60;
        let mut data = json!({"To": email, "RequestURL": request_url, "TransientPayload": {},
            "ExpiresInMinutes": minutes});
        let recovery = flow.kind == FlowKind::Recovery;
        let template = match (identity, recovery) {
            (Some(i), true) => {
                data["RecoveryCode"] = json!(code);
                data["Identity"] = template_identity(i);
                TemplateType::RecoveryCodeValid
            }
            (Some(i), false) => {
                data["VerificationCode"] = json!(code);
                data["VerificationURL"] = json!(crate::selfservice::with_query(
                    &self.url("/self-service/verification"),
                    &[("flow", &flow.id.to_string()), ("code", code)]
                ));
                data["Identity"] = template_identity(i);
                TemplateType::VerificationCodeValid
            }
            (None, true) => TemplateType::RecoveryCodeInvalid,
            (None, false) => TemplateType::VerificationCodeInvalid,
        };
        self.render_mail(template, email, data)
    }

    /// Compare a submitted code with the flow's codes (after counting the submit).
    async fn check_code(&self, flow: &mut Flow, code: &str) -> Result<AddressStep> {
        let n = flow.internal_get(SUBMISSIONS).and_then(Value::as_u64).unwrap_or(0) + 1;
        if n > u64::from(self.cfg.selfservice.methods.code.config.max_submissions) {
            return Ok(AddressStep::Restart { message: msg::code_submitted_too_often() });
        }
        flow.internal_set(SUBMISSIONS, json!(n));
        let h = self.one_time_code_hash(code);
        let now = self.clock.now().unix_timestamp();
        let codes = flow.internal_get(CODES).and_then(Value::as_array).cloned().unwrap_or_default();
        let found = codes.iter().find(|c| {
            c.get("hash").and_then(Value::as_str).is_some_and(|s| crypto::ct_eq(s.as_bytes(), h.as_bytes()))
                && c.get("expires_at").and_then(Value::as_i64).is_some_and(|x| x > now)
        });
        let invalid = if flow.kind == FlowKind::Recovery {
            msg::recovery_code_invalid()
        } else {
            msg::verification_code_invalid()
        };
        let wrong = || AddressStep::Retry { errors: vec![(String::new(), invalid.clone())] };
        let Some(found) = found else { return Ok(wrong()) };
        let id = found.get("identity_id").and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok());
        let address = found.get("address").and_then(Value::as_str).unwrap_or_default().to_string();
        let Some(identity) = (match id {
            Some(id) => self.store.get_identity(id).await?.filter(|i| i.state == crate::model::IdentityState::Active),
            None => None,
        }) else {
            return Ok(wrong());
        };
        flow.internal_remove(CODES);
        Ok(AddressStep::Proved { identity, address })
    }
}
