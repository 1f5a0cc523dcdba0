//! Social sign-in with OpenID Connect (and GitHub's OAuth2): login, registration, and link /
//! unlink in settings.
//!
//! The core knows no HTTP: talking to providers (discovery, code exchange, ID-token signature,
//! issuer, audience, expiry and nonce checks, userinfo) is behind [`OidcClient`], implemented by
//! the server with the `openidconnect` crate. The core owns the flow state:
//!
//! * Starting a browser round trip stores `{provider, intent, state hash, PKCE verifier, nonce}`
//!   in `flow.internal["oidc"]` and answers "go to the provider" ([`ErrorKind::BrowserLocationChange`]).
//! * The callback (`/self-service/methods/oidc/callback/<provider>`) finds the flow from the
//!   `state` (`<flow id>.<random>`), checks it against the stored hash, checks that the browser
//!   is the one that started the flow (its CSRF cookie matches the flow's), consumes the state,
//!   then exchanges the code and completes login, registration or linking.
//! * Native apps (API flows) submit an ID token they obtained themselves (`id_token`,
//!   `id_token_nonce`); it is verified against the provider's keys and its `nonce` claim must
//!   equal `id_token_nonce` (a nonce is accepted for one flow only).
//!
//! Accounts are keyed by (provider id, subject): oidc credential identifiers are
//! `<provider id>:<subject>`, the config is `{"providers": [{"provider", "subject"}]}`. Provider
//! tokens are not stored.
//!
//! Claims become traits through the provider's `mapper` (see [`apply_mapper`]): a JSON/YAML
//! object whose strings may contain `{{ claims.<name> }}` templates. A first login with an
//! unknown account registers it; when the mapped traits do not validate, the browser is sent to
//! a registration form prefilled with them, and the verified claims wait on that flow until the
//! user submits the missing traits (`method=oidc&provider=<id>`).

mod callback;
mod client;
mod login;
mod registration;
mod settings;

pub use client::{AuthRequest, NoOidcClient, OidcClient, ProviderClaims};

use super::{Claim, LoginForm, LoginStep, Method, MethodId, RegistrationStep, nonempty};
use crate::claims_mapper::{apply_mapper, overlay};
use crate::config::OidcProvider;
use crate::crypto;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Aal, Credential, CredentialType, Flow, FlowKind, FlowType, Identity, IdentityState};
use crate::selfservice::settings::Change;
use crate::selfservice::{Authed, Body, Engine, Req, body_str};
use crate::ui::{Group, Node, UiText, msg};
use async_trait::async_trait;
use serde_json::{Value, json};
use uuid::Uuid;

/// `flow.internal` key of a started provider round trip.
pub const ROUND_TRIP: &str = "oidc";
/// `flow.internal` key of verified claims waiting for missing traits (registration flows).
pub const PENDING: &str = "oidc_pending";

/// Upstream parameters a client may forward to the provider's authorization endpoint.
const UPSTREAM_ALLOWED: &[&str] = &["login_hint", "hd", "prompt", "acr_values", "auth_type", "domain_hint"];

// ---- helpers -----------------------------------------------------------------------------

/// Whether the oidc method handles a login/registration submit: `provider` is set and `method`
/// is `oidc` or absent (a provider button posts only its own name and value).
pub fn responsible(body: &Body) -> bool {
    let method = body_str(body, "method").unwrap_or_default();
    body_str(body, "provider").is_some_and(|p| !p.is_empty()) && (method.is_empty() || method == "oidc")
}

/// The credential identifier of a provider account.
pub fn identifier(provider_id: &str, subject: &str) -> String {
    format!("{provider_id}:{subject}")
}

/// `(provider id, subject)` pairs linked to an identity.
pub fn linked(identity: &Identity) -> Vec<(String, String)> {
    identity
        .credential(CredentialType::Oidc)
        .and_then(|c| c.config.get("providers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    Some((p.get("provider")?.as_str()?.to_string(), p.get("subject")?.as_str()?.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn is_true(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn sign_in_with(label: &str, id: &str) -> UiText {
    UiText::info(1010002, format!("Sign in with {label}")).with_context(json!({"provider": label, "provider_id": id}))
}

fn sign_up_with(label: &str, id: &str) -> UiText {
    UiText::info(1040002, format!("Sign up with {label}")).with_context(json!({"provider": label, "provider_id": id}))
}

/// 4000027: the provider account's identifier or address belongs to another identity.
pub(crate) fn duplicate_on_oidc() -> UiText {
    UiText::error(
        4000027,
        "An account with the same identifier (email, phone, username, ...) exists already. Please sign in to your existing account and link your social profile in the settings page.",
    )
}

fn already_linked_elsewhere(label: &str) -> UiText {
    UiText::error(
        4000027,
        format!("This {label} account is already linked to another account. Sign in to that account and unlink it there first."),
    )
    .with_context(json!({"provider": label}))
}

fn failed(label: &str, reason: &str) -> UiText {
    msg::generic(&format!("Unable to complete the sign-in with {label}: {reason}"))
}

/// A PKCE verifier: 64 characters of the RFC 7636 alphabet.
fn pkce_verifier() -> String {
    crypto::random_string(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~", 64)
}

/// Parameters of a provider callback.
#[derive(Debug, Clone, Default)]
pub struct CallbackParams {
    pub state: String,
    pub code: String,
    pub error: String,
    pub error_description: String,
    /// RFC 9207 `iss`, when the provider sends it.
    pub iss: String,
}

pub use crate::selfservice::callback::OidcDone;

/// What a provider's answer decided, for the flow its state names.
#[derive(Debug)]
pub enum Resumed {
    Login(LoginStep),
    Registration(RegistrationStep),
    Settings(Change),
}

/// The `oidc` method: social sign-in (login, registration) and linking in settings.
pub struct Oidc;

#[async_trait]
impl Method for Oidc {
    fn id(&self) -> MethodId {
        MethodId::Oidc
    }
    fn enabled(&self, e: &Engine) -> bool {
        e.cfg.selfservice.methods.oidc.enabled
    }
    fn claims_fields(&self, body: &Body) -> bool {
        responsible(body) || ["link", "unlink"].iter().any(|f| nonempty(body, f).is_some())
    }
    fn claims_settings(&self, _flow: &Flow, body: &Body) -> bool {
        ["link", "unlink"].iter().any(|f| nonempty(body, f).is_some())
    }
    fn settings_nodes(&self, e: &Engine, _flow: &mut Flow, identity: &Identity) -> Vec<Node> {
        e.oidc_settings_nodes(identity)
    }
    async fn settings(&self, e: &Engine, flow: &mut Flow, a: &Authed, body: &Body) -> Result<Change> {
        e.settings_oidc(flow, a, body).await
    }
    fn claims_login(&self, _e: &Engine, flow: &Flow, body: &Body) -> Claim {
        match (responsible(body), flow.requested_aal) {
            (false, _) => Claim::No,
            (true, Aal::Aal2) => Claim::WrongLevel,
            (true, _) => Claim::Yes,
        }
    }
    fn login_nodes(&self, e: &Engine, _flow: &mut Flow, _req: &Req, form: &LoginForm<'_>) -> Result<Vec<Node>> {
        if form.second_factor {
            return Ok(vec![]);
        }
        Ok(e.oidc_login_nodes(if form.refresh { form.identity } else { None }))
    }
    async fn login(&self, e: &Engine, flow: &mut Flow, body: &Body, req: &Req) -> Result<LoginStep> {
        e.login_oidc(flow, body, req).await
    }
    fn claims_registration(&self, body: &Body) -> bool {
        responsible(body)
    }
    fn registration_nodes(&self, e: &Engine) -> Vec<Node> {
        e.oidc_registration_nodes()
    }
    async fn register(&self, e: &Engine, flow: &mut Flow, body: &Body, _req: &Req) -> Result<RegistrationStep> {
        e.register_oidc(flow, body).await
    }
    fn duplicate_message(&self) -> UiText {
        duplicate_on_oidc()
    }
    fn reset_registration(&self, flow: &mut Flow) {
        flow.internal_remove(PENDING);
    }
}

impl Engine {
    /// A configured provider by id.
    pub fn oidc_provider(&self, id: &str) -> Option<&OidcProvider> {
        self.cfg.selfservice.methods.oidc.config.providers.iter().find(|p| p.id == id)
    }

    /// The callback URL registered at providers.
    pub fn oidc_redirect_uri(&self, provider_id: &str) -> String {
        self.url(&format!("/self-service/methods/oidc/callback/{provider_id}"))
    }

    /// Login nodes: one `provider` button per provider (refresh: only the linked ones).
    pub fn oidc_login_nodes(&self, refresh_identity: Option<&Identity>) -> Vec<Node> {
        let m = &self.cfg.selfservice.methods.oidc;
        if !m.enabled {
            return vec![];
        }
        let linked: Option<Vec<String>> = refresh_identity.map(|i| linked(i).into_iter().map(|(p, _)| p).collect());
        m.config
            .providers
            .iter()
            .filter(|p| linked.as_ref().is_none_or(|l| l.contains(&p.id)))
            .map(|p| Node::submit(Group::Oidc, "provider", json!(p.id), sign_in_with(&p.display_label(), &p.id)))
            .collect()
    }

    /// Registration nodes: one `provider` button per provider.
    pub fn oidc_registration_nodes(&self) -> Vec<Node> {
        let m = &self.cfg.selfservice.methods.oidc;
        if !m.enabled {
            return vec![];
        }
        m.config
            .providers
            .iter()
            .map(|p| Node::submit(Group::Oidc, "provider", json!(p.id), sign_up_with(&p.display_label(), &p.id)))
            .collect()
    }

    /// Settings nodes: `link` per provider not linked yet, `unlink` per linked provider when
    /// another first factor remains.
    pub fn oidc_settings_nodes(&self, identity: &Identity) -> Vec<Node> {
        let m = &self.cfg.selfservice.methods.oidc;
        if !m.enabled {
            return vec![];
        }
        let linked: Vec<String> = linked(identity).into_iter().map(|(p, _)| p).collect();
        let can_unlink = identity.first_factor_count() > 1;
        let mut nodes = vec![];
        for p in &m.config.providers {
            let label = p.display_label();
            if linked.contains(&p.id) {
                if can_unlink {
                    nodes.push(Node::submit(Group::Oidc, "unlink", json!(p.id), msg::unlink_provider(&label)));
                }
            } else {
                nodes.push(Node::submit(Group::Oidc, "link", json!(p.id), msg::link_provider(&label)));
            }
        }
        nodes
    }

    /// Start a browser round trip: keep the state on the flow and answer "go to the provider".
    async fn oidc_start(&self, flow: &mut Flow, p: &OidcProvider, intent: &str, body: &Body) -> Result<Error> {
        let state = format!("{}.{}", flow.id.simple(), crypto::random_token(""));
        let nonce = crypto::random_token("");
        let verifier = pkce_verifier();
        let upstream: Vec<(String, String)> = body
            .get("upstream_parameters")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| UPSTREAM_ALLOWED.contains(&k.as_str()))
                    .filter_map(|(k, v)| {
                        v.as_str().filter(|s| !s.is_empty() && s.len() <= 256).map(|s| (k.clone(), s.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let request = AuthRequest {
            redirect_uri: self.oidc_redirect_uri(&p.id),
            state: state.clone(),
            nonce: nonce.clone(),
            pkce_verifier: verifier.clone(),
            upstream,
        };
        let url = self.oidc.authorization_url(p, &request).await.map_err(|reason| {
            tracing::warn!(provider = %p.id, %reason, "could not start the OpenID Connect round trip");
            Error::new(
                ErrorKind::Unavailable,
                format!("The sign-in provider {} could not be reached. Please try again later.", p.display_label()),
            )
        })?;
        let mut rt = json!({
            "provider": p.id,
            "intent": intent,
            "state_hash": crypto::sha256_hex(state.as_bytes()),
            "pkce_verifier": verifier,
            "nonce": nonce,
        });
        // Traits typed into a registration form before choosing the provider.
        if let Some(t) = body.get("traits").filter(|t| t.is_object()) {
            rt["traits"] = t.clone();
        }
        flow.internal_set(ROUND_TRIP, rt);
        self.save_flow(flow).await?;
        tracing::info!(flow_id = %flow.id, provider = %p.id, intent, "redirecting to the sign-in provider");
        Ok(Error::new(
            ErrorKind::BrowserLocationChange,
            format!("In order to complete this flow please redirect the browser to: {url}"),
        )
        .with_redirect(url))
    }

    /// Verify an ID token submitted by a native app; `Ok(Err(message))` is a form error.
    async fn oidc_verify_submitted(
        &self,
        flow: &Flow,
        p: &OidcProvider,
        body: &Body,
    ) -> Result<std::result::Result<ProviderClaims, UiText>> {
        let Some(token) = nonempty(body, "id_token") else {
            return Ok(Err(msg::missing("id_token")));
        };
        let Some(nonce) = nonempty(body, "id_token_nonce") else {
            return Ok(Err(msg::missing("id_token_nonce")));
        };
        if p.is_oauth2_only() {
            return Ok(Err(failed(&p.display_label(), "this provider does not issue ID tokens")));
        }
        let pc = match self.oidc.verify_id_token(p, token, self.clock.now()).await {
            Ok(pc) => pc,
            Err(reason) => {
                tracing::info!(flow_id = %flow.id, provider = %p.id, %reason, "submitted ID token rejected");
                return Ok(Err(failed(&p.display_label(), &reason)));
            }
        };
        let claimed = pc.claims.get("nonce").and_then(Value::as_str).unwrap_or_default();
        if claimed.is_empty() {
            return Ok(Err(failed(&p.display_label(), "the ID token has no nonce claim")));
        }
        if !crypto::ct_eq(
            crypto::sha256_hex(claimed.as_bytes()).as_bytes(),
            crypto::sha256_hex(nonce.as_bytes()).as_bytes(),
        ) {
            return Ok(Err(failed(&p.display_label(), "the supplied nonce does not match the nonce of the ID token")));
        }
        // A nonce (and so an ID token) is good for one flow only.
        let key = format!("oidc_nonce:{}:{}", p.id, crypto::sha256_hex(nonce.as_bytes()));
        let owner = self.store.kv_get_or_init(&key, &flow.id.to_string()).await?;
        if owner != flow.id.to_string() {
            return Ok(Err(failed(&p.display_label(), "this ID token nonce was already used")));
        }
        Ok(Ok(pc))
    }
}

impl Engine {
    /// An imported oidc credential (admin API): `{"providers": [{"provider", "subject"}]}` with
    /// configured provider ids; returns the stored config and the identifiers.
    pub(crate) fn import_oidc(&self, cfg: &Value) -> Result<(Value, Vec<String>)> {
        let list = cfg.get("providers").and_then(Value::as_array).filter(|l| !l.is_empty()).ok_or_else(|| {
            Error::bad_request("An oidc credential needs config.providers: [{\"provider\": …, \"subject\": …}].")
        })?;
        let mut entries = vec![];
        let mut identifiers: Vec<String> = vec![];
        for e in list {
            let provider = e.get("provider").and_then(Value::as_str).unwrap_or_default();
            let subject = e.get("subject").and_then(Value::as_str).unwrap_or_default();
            if provider.is_empty() || subject.is_empty() {
                return Err(Error::bad_request("Every oidc provider entry needs a provider and a subject."));
            }
            if self.oidc_provider(provider).is_none() {
                return Err(Error::bad_request(format!("The sign-in provider {provider:?} is not configured.")));
            }
            if entries.iter().any(|x: &Value| x["provider"] == provider) {
                return Err(Error::bad_request(format!("The sign-in provider {provider:?} is listed twice.")));
            }
            entries.push(json!({"provider": provider, "subject": subject}));
            identifiers.push(identifier(provider, subject));
        }
        Ok((json!({"providers": entries}), identifiers))
    }
}
