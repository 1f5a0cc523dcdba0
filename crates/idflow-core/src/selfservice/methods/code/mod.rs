//! The `code` method: six-digit one-time codes sent by mail (account recovery).
//!
//! Codes live on the flow (`internal.codes`), stored as an HMAC with the cipher secret like
//! backup recovery codes, each with its expiry (`selfservice.methods.code.config.lifespan`).
//! A resend replaces the flow's codes. Code submits are counted per flow
//! (`config.max_submissions`, checked before comparing); then the flow is replaced. A
//! successful code ends with the flow's commit, so two concurrent submits of one code cannot
//! both win (the flow's version).

use super::{Method, MethodId, RecoveryStep, nonempty};
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
    fn kinds(&self) -> &'static [FlowKind] {
        &[FlowKind::Recovery]
    }
    fn claims_recovery(&self, body: &Body) -> bool {
        body_str(body, "method") == Some("code")
    }
    fn recovery_nodes(&self, _e: &Engine, flow: &Flow) -> Vec<Node> {
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
                        .label(msg::label_recovery_code()),
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
    async fn recovery(&self, e: &Engine, flow: &mut Flow, body: &Body, req: &Req) -> Result<RecoveryStep> {
        match flow.state.as_str() {
            "passed_challenge" => return Ok(RecoveryStep::Restart { message: msg::recovery_retry_success() }),
            "choose_method" | "sent_email" => {}
            _ => return Ok(RecoveryStep::Restart { message: msg::recovery_state_failure() }),
        }
        let code = nonempty(body, "code");
        if let (Some(code), "sent_email") = (code, flow.state.as_str()) {
            return e.check_recovery_code(flow, code).await;
        }
        let Some(email) = nonempty(body, "email") else {
            return Ok(RecoveryStep::Invalid { errors: vec![("email".into(), msg::missing("email"))] });
        };
        let email = email.trim().to_lowercase();
        if !email.contains('@') || email.len() > 320 {
            let text = UiText::error(4000001, format!("{email:?} is not valid \"email\""))
                .with_context(json!({"reason": "not a valid email address"}));
            return Ok(RecoveryStep::Invalid { errors: vec![("email".into(), text)] });
        }
        let messages = e.send_recovery_code(flow, &email, req).await?;
        Ok(RecoveryStep::Sent { messages })
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
        flow.internal_set(SUBMISSIONS, json!(0));
        flow.internal_set(ADDRESS, json!(address));
        flow.state = "sent_email".into();
        (code, expires_at)
    }

    /// Send a recovery code to `email` (same answer whether an account has it or not).
    async fn send_recovery_code(&self, flow: &mut Flow, email: &str, req: &Req) -> Result<Vec<Message>> {
        let identity = self.store.find_identity_by_recovery_address(email).await?;
        let (code, _) = self.put_recovery_code(flow, identity.as_ref(), email, None);
        let minutes = self.cfg.selfservice.methods.code.config.lifespan.0.as_secs() / 60;
        let mut data = json!({"To": email, "RequestURL": req.request_url, "TransientPayload": {},
            "ExpiresInMinutes": minutes});
        let template = match &identity {
            Some(i) => {
                data["RecoveryCode"] = json!(code);
                data["Identity"] = template_identity(i);
                tracing::info!(flow_id = %flow.id, identity_id = %i.id, "recovery code sent");
                TemplateType::RecoveryCodeValid
            }
            None if self.cfg.selfservice.flows.recovery.notify_unknown_recipients => {
                tracing::info!(flow_id = %flow.id, "recovery attempted for an unknown address; notice sent");
                TemplateType::RecoveryCodeInvalid
            }
            None => {
                tracing::info!(flow_id = %flow.id, "recovery attempted for an unknown address");
                return Ok(vec![]);
            }
        };
        Ok(vec![self.render_mail(template, email, data)?])
    }

    /// Compare a submitted code with the flow's codes (after counting the submit).
    async fn check_recovery_code(&self, flow: &mut Flow, code: &str) -> Result<RecoveryStep> {
        let n = flow.internal_get(SUBMISSIONS).and_then(Value::as_u64).unwrap_or(0) + 1;
        if n > u64::from(self.cfg.selfservice.methods.code.config.max_submissions) {
            return Ok(RecoveryStep::Restart { message: msg::code_submitted_too_often() });
        }
        flow.internal_set(SUBMISSIONS, json!(n));
        let h = self.one_time_code_hash(code);
        let now = self.clock.now().unix_timestamp();
        let codes = flow.internal_get(CODES).and_then(Value::as_array).cloned().unwrap_or_default();
        let found = codes.iter().find(|c| {
            c.get("hash").and_then(Value::as_str).is_some_and(|s| crypto::ct_eq(s.as_bytes(), h.as_bytes()))
                && c.get("expires_at").and_then(Value::as_i64).is_some_and(|x| x > now)
        });
        let wrong = || RecoveryStep::Retry { errors: vec![(String::new(), msg::recovery_code_invalid())] };
        let Some(found) = found else { return Ok(wrong()) };
        let id = found.get("identity_id").and_then(Value::as_str).and_then(|s| Uuid::parse_str(s).ok());
        let address = found.get("address").and_then(Value::as_str).unwrap_or_default().to_string();
        let Some(identity) = (match id {
            Some(id) => self.store.get_identity(id).await?,
            None => None,
        }) else {
            return Ok(wrong());
        };
        flow.internal_remove(CODES);
        Ok(RecoveryStep::Recovered { identity, address })
    }
}
