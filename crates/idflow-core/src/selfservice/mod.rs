//! Self-service: the flows (registration, login, settings), sessions and the methods that
//! take part in them. Both HTTP dialects call these functions; none of them knows HTTP.
//!
//! Outcomes are values: a form error is the flow with messages ([`Submitted::Invalid`]), not an
//! `Err`. `Err` is reserved for what is not a form (no session, CSRF, expiry, …).

pub mod callback;
pub mod deletion;
pub mod hashpool;
pub mod hooks;
pub mod identities;
pub mod instrument;
pub mod login;
pub mod methods;
pub mod notify;
pub mod recovery;
pub mod registration;
pub mod sessions;
pub mod settings;
pub mod verification;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Flow, FlowKind, FlowType, Identity, Session};
use crate::schema::IdentitySchema;
use crate::store::Store;
use async_trait::async_trait;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Sends `web_hook` payloads. Implemented by the server with a real HTTP client.
#[async_trait]
pub trait WebHooks: Send + Sync {
    /// POST `body` as JSON to `url`; returns the status code, or an error text (timeout,
    /// connection refused, …).
    async fn post(&self, url: &str, body: &Value, timeout: Duration) -> std::result::Result<u16, String>;
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Authed {
    pub session: Session,
    pub identity: Identity,
}

/// What the http layer knows about the request.
#[derive(Debug, Clone, Default)]
pub struct Req {
    /// The caller wants JSON (AJAX / API).
    pub json: bool,
    /// Absolute URL of the request as received.
    pub request_url: String,
    /// The caller's session, when it presented a valid one.
    pub auth: Option<Authed>,
    /// The raw session token the caller presented (to rotate it on refresh/step-up).
    pub token: Option<String>,
    /// The CSRF cookie value, if sent.
    pub csrf_cookie: Option<String>,
    /// Set when the request carries an `Origin` header or cookies (rejected on API flows).
    pub api_violation: Option<String>,
    pub ip: String,
    pub user_agent: String,
}

/// The engine: configuration, store, clock and compiled identity schemas.
pub struct Engine {
    pub cfg: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub schemas: HashMap<String, Arc<IdentitySchema>>,
    /// Keys that sign session cookies (first signs, all verify).
    pub cookie_keys: Vec<Vec<u8>>,
    /// Key for hashing recovery codes (from `secrets.cipher`).
    pub cipher_key: Vec<u8>,
    pub hooks: Arc<dyn WebHooks>,
    /// Receives outcomes and timings (metrics); a no-op unless installed with `with_observer`.
    pub observer: Arc<dyn instrument::Observer>,
    /// Talks to social sign-in providers; a stub unless installed with `with_oidc`.
    pub oidc: Arc<dyn methods::oidc::OidcClient>,
    /// Mail templates: built-ins unless installed with `with_courier` (from the configuration).
    pub courier: Arc<crate::courier::Courier>,
    base: String,
    /// The WebAuthn relying parties (security keys, passkeys), built from the configuration
    /// on first use (`webauthn_rp`).
    webauthn_rps: [std::sync::OnceLock<Option<webauthn_rs::Webauthn>>; 2],
    /// Per flow kind (`FlowKind as usize`; a kind past the end is not kept): the UI URL with
    /// `?flow=` appended, when it has no query or fragment (`ui_url_for_flow`).
    ui_flow_prefixes: [std::sync::OnceLock<Option<String>>; 5],
    /// The issuer shown in authenticator apps (`totp_for`): the configured one, else the public
    /// host; without `:` (the separator of an `otpauth://` label).
    totp_issuer: String,
}

impl Engine {
    pub fn new(
        cfg: Arc<Config>,
        store: Arc<dyn Store>,
        clock: Clock,
        schemas: HashMap<String, Arc<IdentitySchema>>,
        cookie_keys: Vec<Vec<u8>>,
        cipher_key: Vec<u8>,
        hooks: Arc<dyn WebHooks>,
    ) -> Self {
        let base = cfg.public_base();
        crate::password::prepare_dummy(&cfg.hashers);
        let totp_issuer = cfg.selfservice.methods.totp.config.issuer.clone().unwrap_or_else(|| {
            url::Url::parse(&base)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| "idflow".into())
        });
        Engine {
            cfg,
            store,
            clock,
            schemas,
            cookie_keys,
            cipher_key,
            hooks,
            observer: Arc::new(instrument::NoopObserver),
            oidc: Arc::new(methods::oidc::NoOidcClient),
            courier: Arc::new(crate::courier::Courier::builtin()),
            base,
            webauthn_rps: Default::default(),
            ui_flow_prefixes: Default::default(),
            totp_issuer: totp_issuer.replace(':', ""),
        }
    }

    /// Install the mail templates (`Courier::from_config`).
    pub fn with_courier(mut self, courier: crate::courier::Courier) -> Self {
        self.courier = Arc::new(courier);
        self
    }

    /// Render a mail of type `t` to `recipient` with template `data` (a JSON object with
    /// Kratos's names: `RecoveryCode`, `VerificationURL`, `Identity`, …), ready to queue in the
    /// flow's `Commit::queue_messages`.
    pub fn render_mail(
        &self,
        t: crate::courier::TemplateType,
        recipient: &str,
        data: serde_json::Value,
    ) -> Result<crate::courier::Message, crate::error::Error> {
        self.courier.render(t, recipient, data, self.clock.now()).map_err(|e| crate::error::Error::internal(e.0))
    }

    /// Install the observer that receives outcomes and timings.
    pub fn with_observer(mut self, observer: Arc<dyn instrument::Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// Install the client that talks to social sign-in providers.
    pub fn with_oidc(mut self, client: Arc<dyn methods::oidc::OidcClient>) -> Self {
        self.oidc = client;
        self
    }

    /// `{public}` without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn schema(&self, id: &str) -> Result<&Arc<IdentitySchema>> {
        self.schemas.get(id).ok_or_else(|| Error::bad_request(format!("Unable to find JSON Schema ID: {id}")))
    }

    pub fn default_schema(&self) -> Result<&Arc<IdentitySchema>> {
        self.schema(&self.cfg.identity.default_schema_id)
    }

    /// The UI URL of a flow kind (configured, else the built-in UI under `/ui/...`).
    pub fn ui_url(&self, kind: &str) -> String {
        let f = &self.cfg.selfservice.flows;
        let configured = match kind {
            "login" => f.login.ui_url.clone(),
            "registration" => f.registration.ui_url.clone(),
            "settings" => f.settings.ui_url.clone(),
            "recovery" => f.recovery.ui_url.clone(),
            "verification" => f.verification.ui_url.clone(),
            "error" => f.error.ui_url.clone(),
            _ => None,
        };
        configured.unwrap_or_else(|| self.url(&format!("/ui/{kind}")))
    }

    pub fn ui_url_for_flow(&self, kind: FlowKind, id: Uuid) -> String {
        // Every flow answer carries this URL: the UI URL is parsed once per kind. One without
        // a query or fragment (the usual) takes `?flow=<id>` as is (a UUID needs no escaping);
        // any other goes through `with_query`.
        let prefix = self.ui_flow_prefixes.get(kind as usize).and_then(|slot| {
            slot.get_or_init(|| {
                url::Url::parse(&self.ui_url(kind.as_str()))
                    .ok()
                    .filter(|u| u.query().is_none() && u.fragment().is_none())
                    .map(|u| format!("{u}?flow="))
            })
            .as_ref()
        });
        match prefix {
            Some(p) => format!("{p}{id}"),
            None => with_query(&self.ui_url(kind.as_str()), &[("flow", &id.to_string())]),
        }
    }

    /// `selfservice.default_browser_return_url`, else the settings UI... else `{public}/`.
    pub fn default_return_url(&self) -> String {
        self.cfg.selfservice.default_browser_return_url.clone().unwrap_or_else(|| self.url("/ui/welcome"))
    }

    /// Validate a `return_to` against the allow-list; returns the absolute, normalised URL,
    /// which is what flows store and redirect to (one value is validated and used).
    ///
    /// Refused: control characters anywhere (the URL parser would silently drop a decoded
    /// `%0A`, and the raw value once broke the redirect after login), user info, and any URL
    /// whose scheme, host (`*.example.com` wildcards), port and path do not match an allowed
    /// entry. Paths match on whole segments: `/account` admits `/account` and `/account/x`,
    /// never `/accountevil`.
    pub fn check_return_to(&self, rt: &str) -> Result<String> {
        let forbidden = |shown: &str| {
            Error::new(ErrorKind::ReturnToForbidden, format!("Requested return_to URL \"{shown}\" is not allowed."))
        };
        if rt.chars().any(char::is_control) {
            return Err(forbidden(&rt.escape_default().to_string()));
        }
        let base = url::Url::parse(&self.default_return_url())
            .or_else(|_| url::Url::parse(&format!("{}/", self.base)))
            .map_err(Error::internal)?;
        let target = base.join(rt).map_err(|_| Error::bad_request(format!("Unable to parse return_to URL {rt:?}.")))?;
        if !target.username().is_empty() || target.password().is_some() {
            return Err(forbidden(target.as_str()));
        }
        let mut allowed: Vec<String> = self.cfg.selfservice.allowed_return_urls.clone();
        allowed.push(format!("{}/self-service", self.base));
        allowed.push(format!("{}/ui", self.base));
        if let Some(d) = &self.cfg.selfservice.default_browser_return_url {
            allowed.push(d.clone());
        }
        let ok = allowed.iter().filter_map(|a| url::Url::parse(a).ok()).any(|a| {
            let host_ok = match (a.host_str(), target.host_str()) {
                (Some(ah), Some(th)) => {
                    let ah = ah.to_ascii_lowercase();
                    let th = th.to_ascii_lowercase();
                    if let Some(suffix) = ah.strip_prefix('*') { th.ends_with(suffix) } else { ah == th }
                }
                _ => false,
            };
            a.scheme().eq_ignore_ascii_case(target.scheme())
                && host_ok
                && a.port_or_known_default() == target.port_or_known_default()
                && path_within(target.path(), a.path())
        });
        if ok { Ok(target.to_string()) } else { Err(forbidden(target.as_str())) }
    }

    /// Validate an optional `return_to` query value.
    pub fn opt_return_to(&self, rt: Option<&str>) -> Result<Option<String>> {
        match rt.filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(r) => self.check_return_to(r).map(Some),
        }
    }

    /// Load a flow of `kind`; unknown ids are 404.
    pub async fn load_flow(&self, id: Uuid, kind: FlowKind) -> Result<Flow> {
        match self.store.get_flow(id).await? {
            Some(f) if f.kind == kind => Ok(f),
            _ => Err(Error::not_found(match kind {
                FlowKind::Settings => "The settings request could not be found. Please restart the flow.",
                FlowKind::Login => "The login request could not be found. Please restart the flow.",
                FlowKind::Registration => "The registration request could not be found. Please restart the flow.",
                FlowKind::Recovery => "The recovery request could not be found. Please restart the flow.",
                FlowKind::Verification => "The verification request could not be found. Please restart the flow.",
            })
            .with_message("Unable to locate the resource")),
        }
    }

    /// A new flow shell.
    /// A new flow shell: its `return_to` (from the request URL) is validated against the
    /// allow-list and kept in its normalised form (unknown or malformed targets are refused).
    pub fn new_flow(&self, kind: FlowKind, flow_type: FlowType, request_url: &str, lifespan: Duration) -> Result<Flow> {
        let now = self.clock.now();
        let id = Uuid::new_v4();
        let action = match kind {
            FlowKind::Login => self.url(&format!("/self-service/login?flow={id}")),
            FlowKind::Registration => self.url(&format!("/self-service/registration?flow={id}")),
            FlowKind::Settings => self.url(&format!("/self-service/settings?flow={id}")),
            FlowKind::Recovery => self.url(&format!("/self-service/recovery?flow={id}")),
            FlowKind::Verification => self.url(&format!("/self-service/verification?flow={id}")),
        };
        let return_to = url::Url::parse(request_url)
            .ok()
            .and_then(|u| u.query_pairs().find(|(k, _)| k == "return_to").map(|(_, v)| v.into_owned()))
            .filter(|s| !s.is_empty())
            .map(|rt| self.check_return_to(&rt))
            .transpose()?;
        Ok(Flow {
            id,
            kind,
            flow_type,
            identity_id: None,
            expires_at: now + time::Duration::microseconds(i64::try_from(lifespan.as_micros()).unwrap_or(i64::MAX)),
            issued_at: now,
            request_url: request_url.to_string(),
            return_to,
            ui: crate::ui::Ui::new(action),
            state: "choose_method".into(),
            active: None,
            refresh: false,
            requested_aal: crate::model::Aal::Aal1,
            csrf_token: if flow_type == FlowType::Browser { crypto::new_csrf_secret() } else { String::new() },
            internal: Value::Object(Map::new()),
            version: 0,
            created_at: now,
            updated_at: now,
            reason: None,
        })
    }

    /// For browser flows: bind the flow to the browser's CSRF cookie (reusing it when valid)
    /// and return the masked token for the form.
    pub fn bind_csrf(&self, flow: &mut Flow, req: &Req) -> String {
        if flow.flow_type != FlowType::Browser {
            return match &req.csrf_cookie {
                Some(c) if !c.is_empty() => crypto::mask_csrf(c),
                _ => String::new(),
            };
        }
        if let Some(c) = req.csrf_cookie.as_ref().filter(|c| is_valid_csrf_secret(c)) {
            flow.csrf_token = c.clone();
        }
        crypto::mask_csrf(&flow.csrf_token)
    }

    /// CSRF for browser-flow submits: the body token must match the cookie, and the cookie
    /// must be the one the flow was created for.
    pub fn check_csrf(&self, flow: &Flow, req: &Req, body_token: Option<&str>) -> Result<()> {
        if flow.flow_type != FlowType::Browser {
            return Ok(());
        }
        let fail = |reason: &str| {
            Error::new(
                ErrorKind::Csrf,
                "Please retry the flow and optionally clear your cookies. The request was rejected to protect you from Cross-Site-Request-Forgery (CSRF) which could cause account takeover, leaking personal information, and other serious security issues.",
            )
            .with_detail("reject_reason", Value::String(reason.into()))
            .with_detail("docs", Value::String("https://www.ory.com/docs/troubleshooting/csrf".into()))
        };
        let Some(cookie) = req.csrf_cookie.as_deref().filter(|c| !c.is_empty()) else {
            return Err(fail("The HTTP Cookie Header was set but did not include the anti-CSRF cookie."));
        };
        let Some(token) = body_token.filter(|t| !t.is_empty()) else {
            return Err(fail("The anti-CSRF token was not sent in the request body."));
        };
        if !crypto::csrf_matches(token, cookie) || !crypto::csrf_matches(cookie, &flow.csrf_token) {
            return Err(fail(
                "The HTTP Cookie Header was set and a CSRF token was sent but they do not match. We recommend deleting all cookies for this domain and retrying the flow.",
            ));
        }
        Ok(())
    }

    /// API flows refuse requests that carry browser state (an `Origin` header or cookies).
    pub fn check_api_request(&self, flow: &Flow, req: &Req) -> Option<String> {
        if flow.flow_type == FlowType::Api { req.api_violation.clone() } else { None }
    }

    /// Resolve a session token to an active session and its identity.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Authed>> {
        if token.is_empty() || token.len() > 512 {
            return Ok(None);
        }
        let Some((session, identity)) = self.store.get_session_with_identity(&crypto::token_hash(token)).await? else {
            return Ok(None);
        };
        if !session.is_active(self.clock.now()) {
            return Ok(None);
        }
        let Some(identity) = identity else {
            return Ok(None);
        };
        if identity.state != crate::model::IdentityState::Active {
            return Ok(None);
        }
        Ok(Some(Authed { session, identity }))
    }

    /// The login URL a browser is sent to for a second factor.
    pub fn aal2_login_url(&self, return_to: Option<&str>) -> String {
        let mut params = vec![("aal", "aal2".to_string())];
        if let Some(r) = return_to {
            params.push(("return_to", r.to_string()));
        }
        let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        with_query(&self.url("/self-service/login/browser"), &p)
    }

    pub fn refresh_login_url(&self, return_to: &str) -> String {
        with_query(&self.url("/self-service/login/browser"), &[("refresh", "true"), ("return_to", return_to)])
    }

    /// `session_aal2_required` error.
    pub fn aal2_error(&self, return_to: Option<&str>) -> Error {
        let url = self.aal2_login_url(return_to);
        Error::new(
            ErrorKind::Aal2Required,
            "An active session was found but it does not fulfill the requested Authenticator Assurance Level. Please verify yourself with a second factor to resolve this issue.",
        )
        .with_detail("redirect_browser_to", Value::String(url.clone()))
        .with_redirect(url)
    }

    /// Whether the session meets `required` for this identity (identity-session-login §7.3).
    pub fn aal_ok(&self, required: crate::config::RequiredAal, a: &Authed) -> bool {
        use crate::model::Aal;
        match required {
            crate::config::RequiredAal::Aal1 => a.session.aal >= Aal::Aal1,
            crate::config::RequiredAal::HighestAvailable => {
                a.session.aal >= Aal::Aal2 || a.identity.available_aal() < Aal::Aal2
            }
        }
    }

    /// Hash a password on the blocking pool.
    pub async fn hash_password(&self, password: String) -> Result<String> {
        let cfg = self.cfg.hashers.clone();
        let started = std::time::Instant::now();
        let max = cfg.max_queue;
        let res = hashpool::run_bounded(max, move || crate::password::hash(&cfg, &password))
            .await
            .map_err(pool_error)?
            .map_err(Error::internal);
        self.observer.password_hashing("hash", started.elapsed());
        res
    }

    /// The hash to store for a changed password, or `None` when `password` is the current one
    /// (`current`). One derivation when the current hash has today's argon2id parameters
    /// ([`crate::password::hash_if_changed`]), else a verification and a fresh hash side by side.
    pub async fn hash_changed_password(&self, password: String, current: Option<String>) -> Result<Option<String>> {
        use crate::password::NewPassword;
        let Some(current) = current else {
            return self.hash_password(password).await.map(Some);
        };
        let cfg = self.cfg.hashers.clone();
        let started = std::time::Instant::now();
        let (pw, cur) = (password.clone(), current.clone());
        let max = cfg.max_queue;
        let once = hashpool::run_bounded(max, move || crate::password::hash_if_changed(&cfg, &pw, &cur))
            .await
            .map_err(pool_error)?
            .map_err(Error::internal)?;
        match once {
            NewPassword::Same => {
                self.observer.password_hashing("hash", started.elapsed());
                Ok(None)
            }
            NewPassword::Changed(h) => {
                self.observer.password_hashing("hash", started.elapsed());
                Ok(Some(h))
            }
            NewPassword::NeedsTwo => {
                let (h, same) =
                    tokio::join!(self.hash_password(password.clone()), self.verify_password(password, Some(current)));
                if same? { Ok(None) } else { h.map(Some) }
            }
        }
    }

    /// Verify a password on the blocking pool (a dummy verification when `hash` is None, so
    /// unknown identifiers cost the same time).
    pub async fn verify_password(&self, password: String, hash: Option<String>) -> Result<bool> {
        let cfg = self.cfg.hashers.clone();
        let started = std::time::Instant::now();
        let max = cfg.max_queue;
        let res = hashpool::run_bounded(max, move || match hash {
            Some(h) => crate::password::verify(&password, &h).unwrap_or(false),
            None => {
                crate::password::verify_dummy(&cfg, &password);
                false
            }
        })
        .await
        .map_err(pool_error);
        self.observer.password_hashing("verify", started.elapsed());
        res
    }

    /// The identity as stored now (after a method wrote to it), else `identity`.
    pub(crate) async fn reload(&self, identity: &Identity) -> Result<Identity> {
        Ok(self.store.get_identity(identity.id).await?.unwrap_or_else(|| identity.clone()))
    }

    /// Rate limit a guessable secret: counts a failure for `key`; Err(429) once over the limit.
    pub async fn rate_check(&self, key: &str, limit: i64, window_secs: i64) -> Result<()> {
        let now = self.clock.now().unix_timestamp();
        let window = now - now.rem_euclid(window_secs.max(1));
        let n = self.store.rate_hit(key, window).await?;
        if n > limit {
            let mut e = Error::new(ErrorKind::RateLimited, "Too many attempts. Please wait before trying again.");
            e.retry_after = Some(u64::try_from(window + window_secs - now).unwrap_or(1).max(1));
            return Err(e);
        }
        Ok(())
    }
}

/// The flow a submit is for: its id, or the flow itself when the caller has read it already
/// (the Kratos routes read it to learn whether it is a browser flow), so it is read once.
pub enum SubmitFlow {
    Id(Uuid),
    Loaded(Box<Flow>),
}

impl From<Uuid> for SubmitFlow {
    fn from(id: Uuid) -> Self {
        SubmitFlow::Id(id)
    }
}

impl From<Flow> for SubmitFlow {
    fn from(f: Flow) -> Self {
        SubmitFlow::Loaded(Box::new(f))
    }
}

/// The steps every submit shares, whatever its flow kind.
impl Engine {
    /// The flow of a submit, read once: unknown ids (or a flow of another kind) are 404.
    pub(crate) async fn submit_flow(&self, flow: SubmitFlow, kind: FlowKind) -> Result<Flow> {
        match flow {
            SubmitFlow::Id(id) => self.load_flow(id, kind).await,
            SubmitFlow::Loaded(f) if f.kind == kind => Ok(*f),
            SubmitFlow::Loaded(f) => self.load_flow(f.id, kind).await,
        }
    }

    /// `FlowDisabled` unless the flow kind is switched on (`selfservice.flows.<kind>.enabled`;
    /// login and settings cannot be switched off).
    pub(crate) fn kind_enabled(&self, kind: FlowKind) -> Result<()> {
        let flows = &self.cfg.selfservice.flows;
        let (enabled, name) = match kind {
            FlowKind::Registration => (flows.registration.enabled, "Registration"),
            FlowKind::Recovery => (flows.recovery.enabled, "Recovery"),
            FlowKind::Verification => (flows.verification.enabled, "Verification"),
            FlowKind::Login | FlowKind::Settings => (true, ""),
        };
        if enabled {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::FlowDisabled, format!("{name} is not allowed because it was disabled.")))
        }
    }

    /// Load the flow of a submit (once): unknown ids are 404; `rules` are the flow kind's
    /// session / identity / AAL rules; an expired flow is refused with its replacement.
    pub(crate) async fn open_flow(
        &self,
        flow: SubmitFlow,
        kind: FlowKind,
        req: &Req,
        rules: impl FnOnce(&Flow) -> Result<()>,
    ) -> Result<Flow> {
        let flow = self.submit_flow(flow, kind).await?;
        rules(&flow)?;
        if flow.expires_at < self.clock.now() {
            return Err(self.expired_error(&flow, req).await);
        }
        Ok(flow)
    }

    /// The checks once a method is chosen: it is enabled (else 404 "disabled"), a decode error
    /// of its own (`precheck`) is a form error, the CSRF token matches (browser flows), and an
    /// API flow carries no browser state (a form error). `Ok(Some(error))` is a form error.
    pub(crate) fn gate(
        &self,
        m: &dyn methods::Method,
        flow: &Flow,
        req: &Req,
        body: &Body,
        precheck: Option<(String, crate::ui::UiText)>,
    ) -> Result<Option<(String, crate::ui::UiText)>> {
        if !m.enabled(self) {
            return Err(methods::disabled());
        }
        if precheck.is_some() {
            return Ok(precheck);
        }
        self.check_csrf(flow, req, body_str(body, "csrf_token"))?;
        Ok(self.check_api_request(flow, req).map(|v| (String::new(), crate::ui::msg::generic(&v))))
    }

    /// How the commit of a completed flow went: `Ok(true)` stored, `Ok(false)` an identifier of
    /// the identity it creates is taken already (`creates`); a concurrent completion is a 409.
    pub(crate) fn completed(res: std::result::Result<u64, crate::store::StoreError>, creates: bool) -> Result<bool> {
        use crate::store::StoreError;
        match res {
            Ok(_) => Ok(true),
            Err(StoreError::Busy(_)) => {
                Err(Error::new(ErrorKind::Conflict, "The flow was completed by a concurrent request."))
            }
            Err(StoreError::Conflict(_)) if creates => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The WebAuthn helper script node, once, right after the last node that needs it
    /// (browser flows with a security-key or passkey node).
    pub(crate) fn place_webauthn_script(&self, flow: &Flow, nodes: &mut Vec<crate::ui::Node>) {
        use crate::ui::Group;
        nodes.retain(|n| n.id() != "webauthn_script");
        if flow.flow_type != FlowType::Browser {
            return;
        }
        if let Some(last) = nodes.iter().rposition(|n| matches!(n.group, Group::Webauthn | Group::Passkey)) {
            nodes.insert(last + 1, self.webauthn_script_node());
        }
    }
}

/// Whether `path` is `allowed` or below it, on whole segments (`/a` admits `/a`, `/a/` and
/// `/a/b`, not `/ab`).
fn path_within(path: &str, allowed: &str) -> bool {
    let allowed = allowed.trim_end_matches('/');
    match path.strip_prefix(allowed) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The error of a hashing job that did not run: a full queue is a 503 with `Retry-After`.
fn pool_error(e: hashpool::PoolError) -> Error {
    match e {
        hashpool::PoolError::Busy => {
            let mut e = Error::new(
                ErrorKind::Unavailable,
                "The server is busy checking other passwords. Please try again in a moment.",
            );
            e.retry_after = Some(1);
            e
        }
        hashpool::PoolError::Gone => Error::internal("the password-hashing pool is gone"),
    }
}

fn is_valid_csrf_secret(c: &str) -> bool {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(c).is_ok_and(|b| b.len() == 32)
}

/// Append query parameters to a URL.
pub fn with_query(base: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(base) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        Err(_) => base.to_string(),
    }
}

/// A submitted body: a JSON object with dot-notation keys unflattened.
pub type Body = Map<String, Value>;

/// Read a string field.
pub fn body_str<'a>(b: &'a Body, k: &str) -> Option<&'a str> {
    b.get(k).and_then(Value::as_str)
}

/// Read a boolean flag that may come as `true` or `"true"` (form posts).
pub fn body_flag(b: &Body, k: &str) -> bool {
    match b.get(k) {
        Some(Value::Bool(v)) => *v,
        Some(Value::String(s)) => s == "true" || s == "1",
        _ => false,
    }
}

/// Why a submit came back with form errors, for dialects that answer with a code (v1). The
/// flow decides it from its own message catalogue and the method; the TOTP method marks an
/// enrolment that was only started (no code yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormReason {
    /// The request could not be decoded (4010002–4010004).
    Malformed,
    /// Wrong identifier or password (4000006, login).
    InvalidCredentials,
    /// The identifier belongs to another account (4000007 only).
    IdentifierTaken,
    /// The change would remove the last way to sign in.
    LastSignInMethod,
    /// The new password breaks the policy.
    WeakPassword,
    /// A wrong TOTP code.
    InvalidTotpCode,
    /// A wrong recovery code, security key or passkey answer.
    InvalidSecondFactor,
    /// A mailed code that is not accepted (wrong, expired, submitted too often).
    InvalidCode,
    /// A TOTP enrolment was started: the form shows the QR code and waits for a code.
    EnrolmentStarted,
    /// Any other validation error.
    Invalid,
}

impl FormReason {
    /// The reason of a flow's error messages after a submit of `method` in a flow of `kind`.
    pub fn classify(kind: FlowKind, method: Option<methods::MethodId>, ui: &crate::ui::Ui) -> FormReason {
        use crate::ui::TextType;
        use methods::MethodId;
        let errors: Vec<&crate::ui::UiText> = ui
            .messages
            .iter()
            .chain(ui.nodes.iter().flat_map(|n| n.messages.iter()))
            .filter(|m| m.kind == TextType::Error)
            .collect();
        let ids: Vec<u32> = errors.iter().map(|m| m.id).collect();
        let last = errors
            .iter()
            .any(|m| m.context.as_ref().and_then(|c| c.get("last_sign_in_method")) == Some(&Value::Bool(true)));
        if last {
            FormReason::LastSignInMethod
        } else if ids.iter().any(|i| (4010002..=4010004).contains(i)) {
            FormReason::Malformed
        } else if kind == FlowKind::Login && ids.contains(&4000006) {
            FormReason::InvalidCredentials
        } else if !ids.is_empty() && ids.iter().all(|i| *i == 4000007) {
            FormReason::IdentifierTaken
        } else {
            match method {
                Some(MethodId::Password)
                    if ids.iter().any(|i| (4000031..=4000039).contains(i) || *i == 4000005 || *i == 4000002) =>
                {
                    FormReason::WeakPassword
                }
                Some(MethodId::Totp) => FormReason::InvalidTotpCode,
                Some(MethodId::LookupSecret | MethodId::Webauthn | MethodId::Passkey) => {
                    FormReason::InvalidSecondFactor
                }
                Some(MethodId::Code) if !ids.contains(&4000002) => FormReason::InvalidCode,
                _ => FormReason::Invalid,
            }
        }
    }
}

/// Mark the form errors of a submit with their reason (unless one was decided already).
pub(crate) fn with_reason<T>(
    mut res: Result<Submitted<T>>,
    kind: FlowKind,
    method: Option<methods::MethodId>,
) -> Result<Submitted<T>> {
    let has_errors = |f: &Flow| {
        f.ui.messages
            .iter()
            .chain(f.ui.nodes.iter().flat_map(|n| n.messages.iter()))
            .any(|m| m.kind == crate::ui::TextType::Error)
    };
    match &mut res {
        // A form shown again (200) may carry errors too: a wrong mailed code keeps the flow.
        Ok(Submitted::Invalid(flow)) | Ok(Submitted::ShowForm(flow)) if flow.reason.is_none() && has_errors(flow) => {
            flow.reason = Some(FormReason::classify(kind, method, &flow.ui));
        }
        _ => {}
    }
    res
}

/// The result of a submit that did not fail hard.
#[derive(Debug)]
pub enum Submitted<T> {
    /// The method succeeded.
    Done(T),
    /// Form errors: the flow carries the messages (HTTP 400 / redirect to the UI).
    Invalid(Flow),
    /// Not an update: show the flow again (lookup reveal/regenerate) — 200 / redirect to UI.
    ShowForm(Flow),
}

/// Flow persistence shared by every flow kind.
impl Engine {
    /// The replacement for an expired flow, and the error that names it.
    pub(crate) async fn expired_error(&self, old: &Flow, req: &Req) -> Error {
        let now = self.clock.now();
        let minutes = (now - old.expires_at).as_seconds_f64() / 60.0;
        let replacement = match old.kind {
            FlowKind::Registration => {
                let r = Req { auth: None, request_url: old.request_url.clone(), ..req.clone() };
                self.create_registration(&r, old.flow_type).await.map(|mut f| {
                    f.ui.messages.push(crate::ui::msg::registration_expired(minutes));
                    f
                })
            }
            FlowKind::Login => {
                let r = Req { request_url: old.request_url.clone(), ..req.clone() };
                self.create_login(&r, old.flow_type, old.refresh, old.requested_aal).await.map(|mut f| {
                    f.ui.messages.push(crate::ui::msg::login_expired(minutes));
                    f
                })
            }
            FlowKind::Settings => match &req.auth {
                Some(a) => {
                    let r = Req { request_url: old.request_url.clone(), ..req.clone() };
                    self.build_settings_flow(&r, a, old.flow_type).await.map(|mut f| {
                        let at =
                            old.expires_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
                        f.ui.messages.push(crate::ui::msg::settings_expired(
                            minutes,
                            &at,
                            old.expires_at.unix_timestamp(),
                        ));
                        f
                    })
                }
                None => Err(Error::new(ErrorKind::Unauthorized, "")),
            },
            FlowKind::Recovery | FlowKind::Verification => {
                let r = Req { auth: None, request_url: old.request_url.clone(), ..req.clone() };
                let fresh = self.new_code_flow(old.kind, &r, old.flow_type);
                match fresh {
                    Ok(mut f) => {
                        let at = old.expires_at.unix_timestamp();
                        f.ui.messages.push(if old.kind == FlowKind::Recovery {
                            crate::ui::msg::recovery_expired(minutes, at)
                        } else {
                            crate::ui::msg::verification_expired(minutes, at)
                        });
                        self.store.create_flow(&f).await.map(|_| f).map_err(Error::from)
                    }
                    Err(e) => Err(e),
                }
            }
        };
        let mut e = Error::new(
            ErrorKind::FlowExpired,
            format!("The self-service flow expired {minutes:.2} minutes ago, initialize a new one."),
        );
        e.expired_at = Some(old.expires_at);
        if let Ok(mut f) = replacement {
            // The message is part of the stored flow.
            f.updated_at = now;
            if self.store.commit(crate::store::Commit { update_flow: Some(&f), ..Default::default() }).await.is_ok() {
                f.version += 1;
            }
            e.use_flow_id = Some(f.id);
        }
        e
    }

    /// Persist a flow that carries form errors (or a re-rendered form).
    pub(crate) async fn save_flow(&self, flow: &mut Flow) -> Result<()> {
        flow.updated_at = self.clock.now();
        self.store.commit(crate::store::Commit { update_flow: Some(flow), ..Default::default() }).await.map_err(
            |e| match e {
                crate::store::StoreError::Busy(_) => {
                    Error::new(ErrorKind::Conflict, "The flow was changed by a concurrent request. Please try again.")
                }
                other => other.into(),
            },
        )?;
        flow.version += 1;
        Ok(())
    }
}
