//! Recovery codes (`lookup_secret`): 12 single-use codes, shown once, stored as keyed hashes
//! (HMAC-SHA256 with the server's cipher secret), consumed atomically (optimistic concurrency on
//! the identity: of two concurrent logins with one code exactly one wins).

mod settings;

use super::totp::second_factor_claim;
use super::{Claim, LoginForm, LoginStep, Method, MethodId};
use crate::crypto;
use crate::error::{Error, Result};
use crate::model::{Aal, CredentialType, Flow, Identity};
use crate::selfservice::settings::Change;
use crate::selfservice::{Authed, Body, Engine, Req, body_flag, body_str};
use crate::store::{Commit, StoreError};
use crate::ui::{Group, Node, UiText, msg};
use async_trait::async_trait;
use serde_json::{Value, json};

/// The `lookup_secret` method: single-use recovery codes (a second factor).
pub struct LookupSecret;

#[async_trait]
impl Method for LookupSecret {
    fn id(&self) -> MethodId {
        MethodId::LookupSecret
    }
    fn enabled(&self, e: &Engine) -> bool {
        e.cfg.selfservice.methods.lookup_secret.enabled
    }
    fn aal(&self, _e: &Engine) -> Aal {
        Aal::Aal2
    }
    fn claims_fields(&self, body: &Body) -> bool {
        settings::FLAGS.iter().any(|f| body_flag(body, f))
    }
    fn claims_settings(&self, _flow: &Flow, body: &Body) -> bool {
        self.claims_fields(body)
    }
    fn settings_nodes(&self, e: &Engine, flow: &mut Flow, identity: &Identity) -> Vec<Node> {
        e.lookup_settings_nodes(flow, identity)
    }
    fn settings_succeeded(&self, flow: &mut Flow, _own: bool) {
        // Codes shown once: any successful change ends their display.
        flow.internal_remove("lookup_codes");
        flow.internal_remove("lookup_revealed");
    }
    async fn settings(&self, e: &Engine, flow: &mut Flow, a: &Authed, body: &Body) -> Result<Change> {
        e.settings_lookup(flow, a, body)
    }
    fn claims_login(&self, _e: &Engine, flow: &Flow, body: &Body) -> Claim {
        second_factor_claim(body_str(body, "method") == Some("lookup_secret"), flow)
    }
    fn login_nodes(&self, _e: &Engine, _flow: &mut Flow, _req: &Req, form: &LoginForm<'_>) -> Result<Vec<Node>> {
        let enrolled = form.identity.is_some_and(|i| i.credential(CredentialType::LookupSecret).is_some());
        if !form.second_factor || !enrolled {
            return Ok(vec![]);
        }
        Ok(vec![
            Node::input(Group::LookupSecret, "lookup_secret", "text").required().label(msg::login_backup_code()),
            Node::submit(Group::LookupSecret, "method", json!("lookup_secret"), msg::login_use_lookup()),
        ])
    }
    async fn login(&self, e: &Engine, _flow: &mut Flow, body: &Body, req: &Req) -> Result<LoginStep> {
        let Some(a) = &req.auth else { return Err(super::aal1_required()) };
        match e.consume_lookup_code(&a.identity, body_str(body, "lookup_secret").unwrap_or_default()).await? {
            Err(m) => Ok(LoginStep::invalid("lookup_secret", m)),
            Ok(()) => Ok(LoginStep::Verified { identity: e.reload(&a.identity).await?, provider: None }),
        }
    }
}

pub const CODE_COUNT: usize = 12;
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

impl Engine {
    /// Keyed hash of a recovery code.
    pub fn lookup_hash(&self, code: &str) -> String {
        crypto::hmac_b64(&self.cipher_key, code.trim().to_ascii_lowercase().as_bytes())
    }

    pub fn new_lookup_codes() -> Vec<String> {
        (0..CODE_COUNT).map(|_| crypto::random_string(ALPHABET, 8)).collect()
    }

    /// (unused, total) codes of an identity.
    pub fn lookup_counts(identity: &Identity) -> (usize, usize) {
        let codes = identity
            .credential(CredentialType::LookupSecret)
            .and_then(|c| c.config.get("recovery_codes"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let unused = codes.iter().filter(|c| c.get("used_at").is_none_or(Value::is_null)).count();
        (unused, codes.len())
    }

    /// Settings nodes of the `lookup_secret` group.
    pub fn lookup_settings_nodes(&self, flow: &Flow, identity: &Identity) -> Vec<Node> {
        let mut nodes = vec![];
        if let Some(codes) = flow.internal_get("lookup_codes").and_then(Value::as_array) {
            let list: Vec<String> = codes.iter().filter_map(Value::as_str).map(str::to_string).collect();
            let secrets: Vec<Value> = list
                .iter()
                .map(|c| json!({"id": 1050009, "text": c, "type": "info", "context": {"secret": c}}))
                .collect();
            nodes.push(Node::text(
                Group::LookupSecret,
                "lookup_secret_codes",
                UiText::info(1050015, list.join(", ")).with_context(json!({ "secrets": secrets })),
                Some(msg::lookup_codes_label()),
            ));
            nodes.push(Node::submit(
                Group::LookupSecret,
                "lookup_secret_confirm",
                json!("true"),
                msg::lookup_confirm(),
            ));
            return nodes;
        }
        let (unused, total) = Self::lookup_counts(identity);
        if total == 0 {
            nodes.push(Node::submit(
                Group::LookupSecret,
                "lookup_secret_regenerate",
                json!("true"),
                msg::lookup_regenerate(),
            ));
        } else {
            let mut text = UiText::info(1050025, format!("{unused} of {total} backup recovery codes are unused."))
                .with_context(json!({"remaining": unused, "total": total}));
            if unused <= 3 {
                text = UiText::info(
                    1050026,
                    format!("Only {unused} backup recovery codes are left. Generate new ones soon."),
                )
                .with_context(json!({"remaining": unused, "total": total}));
            }
            nodes.push(Node::text(Group::LookupSecret, "lookup_secret_remaining", text, None));
            if unused > 0 && !identity.has_second_factor() {
                nodes.push(Node::text(
                    Group::LookupSecret,
                    "lookup_secret_orphaned",
                    UiText::info(
                        1050027,
                        "Your recovery codes are your only second factor, so sign-in does not ask for them. Disable them, or add an authenticator app or security key.",
                    ),
                    None,
                ));
            }
            if flow.internal_get("lookup_revealed").is_some() {
                nodes.push(Node::submit(
                    Group::LookupSecret,
                    "lookup_secret_regenerate",
                    json!("true"),
                    msg::lookup_regenerate(),
                ));
            } else {
                nodes.push(Node::submit(
                    Group::LookupSecret,
                    "lookup_secret_reveal",
                    json!("true"),
                    msg::lookup_reveal(),
                ));
            }
            nodes.push(Node::submit(
                Group::LookupSecret,
                "lookup_secret_disable",
                json!("true"),
                msg::lookup_disable(),
            ));
        }
        nodes
    }

    /// Credential config for freshly confirmed codes.
    pub fn lookup_config(&self, codes: &[String]) -> Value {
        let stored: Vec<Value> = codes.iter().map(|c| json!({ "hash": self.lookup_hash(c) })).collect();
        json!({ "recovery_codes": stored })
    }

    /// Login step-up with a recovery code: consume it atomically. `Ok(Err(msg))` is a form error.
    pub async fn consume_lookup_code(
        &self,
        identity: &Identity,
        code: &str,
    ) -> Result<std::result::Result<(), UiText>> {
        let Some(cred) = identity.credential(CredentialType::LookupSecret) else {
            return Ok(Err(msg::no_lookup()));
        };
        let key = self.second_factor_attempt(identity).await?;
        let h = self.lookup_hash(code);
        let codes = cred.config.get("recovery_codes").and_then(Value::as_array).cloned().unwrap_or_default();
        let pos = codes.iter().position(|c| {
            c.get("hash").and_then(Value::as_str).is_some_and(|s| crypto::ct_eq(s.as_bytes(), h.as_bytes()))
        });
        let Some(pos) = pos else { return Ok(Err(msg::lookup_invalid())) };
        if codes[pos].get("used_at").is_some_and(|u| !u.is_null()) {
            return Ok(Err(msg::lookup_used()));
        }
        let mut updated = identity.clone();
        let now = self.clock.now();
        if let Some(c) = updated.credentials.get_mut(&CredentialType::LookupSecret)
            && let Some(Value::Array(list)) = c.config.get_mut("recovery_codes")
            && let Some(entry) = list.get_mut(pos)
        {
            entry["used_at"] = json!(now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default());
            c.updated_at = now;
        }
        match self.store.commit(Commit { update_identity: Some(&updated), ..Default::default() }).await {
            Ok(_) => {
                let _ = self.store.rate_clear(&key).await;
                Ok(Ok(()))
            }
            Err(StoreError::Busy(_)) => Ok(Err(msg::lookup_used())),
            Err(e) => Err(Error::from(e)),
        }
    }
}
