//! TOTP (authenticator app): enrolment and removal in settings, second factor in login.
//! Codes are replay-safe: the last accepted time step is stored on the credential and only a
//! later step is accepted; the store's optimistic concurrency makes two concurrent uses of one
//! code resolve to exactly one success.

mod settings;

use super::{Claim, LoginForm, LoginStep, Method, MethodId};
use crate::error::{Error, Result};
use crate::model::{Aal, CredentialType, Flow, Identity};
use crate::selfservice::settings::Change;
use crate::selfservice::{Authed, Body, Engine, Req, body_flag, body_str};
use crate::store::{Commit, StoreError};
use crate::ui::{Group, Node, UiText, msg};
use async_trait::async_trait;
use serde_json::{Value, json};
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// The node with the QR code of the secret being enrolled.
const QR_NODE: &str = "totp_qr";
/// The node with that secret as text (its context holds the `otpauth://` URL).
const SECRET_NODE: &str = "totp_secret_key";

/// The `totp` method: authenticator apps (a second factor).
pub struct TotpMethod;

#[async_trait]
impl Method for TotpMethod {
    fn id(&self) -> MethodId {
        MethodId::Totp
    }
    fn enabled(&self, e: &Engine) -> bool {
        e.cfg.selfservice.methods.totp.enabled
    }
    fn aal(&self, _e: &Engine) -> Aal {
        Aal::Aal2
    }
    fn claims_fields(&self, body: &Body) -> bool {
        body_flag(body, "totp_unlink")
    }
    fn claims_settings(&self, _flow: &Flow, body: &Body) -> bool {
        body_flag(body, "totp_unlink") || body_str(body, "method") == Some("totp")
    }
    fn settings_nodes(&self, e: &Engine, flow: &mut Flow, identity: &Identity) -> Vec<Node> {
        e.totp_settings_nodes(flow, identity)
    }
    fn settings_succeeded(&self, flow: &mut Flow, own: bool) {
        // An enrolment secret not yet used stays (and its QR code with it) unless this submit
        // was the TOTP section itself.
        if own {
            flow.internal_remove("totp_secret");
        }
    }
    async fn settings(&self, e: &Engine, flow: &mut Flow, a: &Authed, body: &Body) -> Result<Change> {
        e.settings_totp(flow, a, body).await
    }
    fn claims_login(&self, _e: &Engine, flow: &Flow, body: &Body) -> Claim {
        second_factor_claim(body_str(body, "method") == Some("totp"), flow)
    }
    fn login_nodes(&self, _e: &Engine, _flow: &mut Flow, _req: &Req, form: &LoginForm<'_>) -> Result<Vec<Node>> {
        let enrolled = form.identity.is_some_and(|i| i.credential(CredentialType::Totp).is_some());
        if !form.second_factor || !enrolled {
            return Ok(vec![]);
        }
        Ok(vec![
            Node::input(Group::Totp, "totp_code", "text")
                .required()
                .autocomplete("one-time-code")
                .label(msg::login_auth_code()),
            Node::submit(Group::Totp, "method", json!("totp"), msg::login_use_totp()),
        ])
    }
    async fn login(&self, e: &Engine, _flow: &mut Flow, body: &Body, req: &Req) -> Result<LoginStep> {
        let Some(a) = &req.auth else { return Err(super::aal1_required()) };
        match e.verify_totp_login(&a.identity, body_str(body, "totp_code").unwrap_or_default()).await? {
            Err(m) => Ok(LoginStep::invalid("totp_code", m)),
            Ok(()) => Ok(LoginStep::Verified { identity: e.reload(&a.identity).await?, provider: None }),
        }
    }
}

/// The claim of a second-factor method: its body serves step-up (aal2) flows only.
pub(super) fn second_factor_claim(named: bool, flow: &Flow) -> Claim {
    match (named, flow.requested_aal == Aal::Aal2) {
        (false, _) => Claim::No,
        (true, true) => Claim::Yes,
        (true, false) => Claim::WrongLevel,
    }
}

impl Engine {
    /// Count an attempt at a guessable second-factor secret for this identity (429 over the
    /// configured limit; counted in the database so it holds across nodes).
    pub async fn second_factor_attempt(&self, identity: &Identity) -> Result<String> {
        let key = format!("2fa:{}", identity.id);
        let l = &self.cfg.limits;
        let window = i64::try_from(l.second_factor_window.0.as_secs()).unwrap_or(300);
        self.rate_check(&key, l.second_factor_attempts, window).await?;
        Ok(key)
    }

    fn totp_account(&self, identity: &Identity) -> String {
        self.schema(&identity.schema_id)
            .ok()
            .and_then(|s| s.extract(&identity.traits).totp_account_name)
            .filter(|a| !a.contains(':') && !a.is_empty())
            .unwrap_or_else(|| identity.id.to_string())
    }

    /// Build a TOTP from a base32 secret for this identity.
    pub fn totp_for(&self, identity: &Identity, secret_b32: &str) -> Option<Totp> {
        let secret = Secret::try_from_base32(secret_b32).ok()?;
        let issuer = self.totp_issuer.clone();
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_step_duration(30)
            .with_skew(1)
            .with_secret(secret)
            .with_issuer(Some(issuer))
            .with_account_name(self.totp_account(identity))
            .build()
            .ok()
    }

    /// Settings nodes of the `totp` group. Generates (and keeps on the flow) the secret being
    /// enrolled when the identity has no TOTP yet.
    pub fn totp_settings_nodes(&self, flow: &mut Flow, identity: &Identity) -> Vec<Node> {
        if identity.credential(CredentialType::Totp).is_some() {
            return vec![Node::submit(Group::Totp, "totp_unlink", json!("true"), msg::totp_unlink()).required()];
        }
        let secret = match flow.internal_get("totp_secret").and_then(Value::as_str) {
            Some(s) => s.to_string(),
            None => {
                let s = Secret::from(crate::crypto::random_bytes::<20>().to_vec()).to_base32();
                flow.internal_set("totp_secret", json!(s));
                s
            }
        };
        let Some(totp) = self.totp_for(identity, &secret) else { return vec![] };
        let url = totp.to_url().unwrap_or_default();
        // A form rebuilt for the same `otpauth://` URL (after a submit of another section)
        // keeps the QR code it already shows instead of rendering it again.
        let qr = match shown_qr(flow, &url) {
            Some(src) => src,
            None => crate::qr::png_data_url(&url).unwrap_or_default(),
        };
        vec![
            Node::img(Group::Totp, QR_NODE, qr, 256, 256, msg::totp_qr()),
            Node::text(
                Group::Totp,
                SECRET_NODE,
                msg::totp_secret_with_url(&secret, &url),
                Some(msg::totp_secret_label()),
            ),
            Node::input(Group::Totp, "totp_code", "text")
                .required()
                .autocomplete("one-time-code")
                .label(msg::label_verify_code()),
            Node::submit(Group::Totp, "method", json!("totp"), msg::label_save()),
        ]
    }

    /// The `otpauth://` URL of the secret being enrolled on this flow.
    pub fn totp_url_for_flow(&self, flow: &Flow, identity: &Identity) -> Option<String> {
        let secret = flow.internal_get("totp_secret")?.as_str()?;
        self.totp_for(identity, secret)?.to_url().ok()
    }

    /// Check `code` against `totp` at the engine's time; returns the matched step.
    pub fn totp_check(&self, totp: &Totp, code: &str) -> Option<u64> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now = u64::try_from(self.clock.now().unix_timestamp()).ok()?;
        totp.check(code, now)
    }

    /// Login step-up with TOTP: verify and consume the code (replay-safe, rate limited).
    /// `Ok(Err(msg))` is a form error.
    pub async fn verify_totp_login(&self, identity: &Identity, code: &str) -> Result<std::result::Result<(), UiText>> {
        let Some(cred) = identity.credential(CredentialType::Totp) else {
            return Ok(Err(msg::no_totp()));
        };
        // Count the attempt before checking it: once over the limit nothing is evaluated.
        let key = self.second_factor_attempt(identity).await?;
        let url = cred.config.get("totp_url").and_then(Value::as_str).unwrap_or_default();
        let Ok(totp) = Totp::from_url_unchecked(url) else {
            return Ok(Err(msg::no_totp()));
        };
        let step = self.totp_check(&totp, code);
        let last = cred.config.get("last_used_step").and_then(Value::as_u64);
        match step {
            Some(s) if last.is_none_or(|l| s > l) => {
                let mut updated = identity.clone();
                if let Some(c) = updated.credentials.get_mut(&CredentialType::Totp) {
                    c.config["last_used_step"] = json!(s);
                    c.updated_at = self.clock.now();
                }
                match self.store.commit(Commit { update_identity: Some(&updated), ..Default::default() }).await {
                    Ok(_) => {
                        let _ = self.store.rate_clear(&key).await;
                        Ok(Ok(()))
                    }
                    // Someone else changed the identity at the same time (e.g. used this code).
                    Err(StoreError::Busy(_)) => Ok(Err(msg::totp_invalid())),
                    Err(e) => Err(Error::from(e)),
                }
            }
            _ => Ok(Err(msg::totp_invalid())),
        }
    }
}

/// The QR code image the flow's form already shows for `url`, if any.
fn shown_qr(flow: &Flow, url: &str) -> Option<String> {
    use crate::ui::Attributes;
    let shown_url = flow.ui.nodes.iter().find_map(|n| match &n.attributes {
        Attributes::Text { id, text } if id == SECRET_NODE => text.context.as_ref()?.get("url")?.as_str(),
        _ => None,
    })?;
    if shown_url != url {
        return None;
    }
    flow.ui.nodes.iter().find_map(|n| match &n.attributes {
        Attributes::Img { id, src, .. } if id == QR_NODE && !src.is_empty() => Some(src.clone()),
        _ => None,
    })
}
