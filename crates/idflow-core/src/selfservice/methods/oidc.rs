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

use crate::config::{OidcMethod, OidcProvider};
use crate::crypto;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Credential, CredentialType, Flow, FlowKind, FlowType, Identity, IdentityState};
use crate::selfservice::login::LoggedIn;
use crate::selfservice::registration::Registered;
use crate::selfservice::settings::{Change, SettingsDone};
use crate::selfservice::{Authed, Body, Engine, Req, Submitted, body_str};
use crate::store::{Commit, StoreError};
use crate::ui::{Group, Node, UiText, msg};
use async_trait::async_trait;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

/// `flow.internal` key of a started provider round trip.
pub const ROUND_TRIP: &str = "oidc";
/// `flow.internal` key of verified claims waiting for missing traits (registration flows).
pub const PENDING: &str = "oidc_pending";

/// Provider presets.
pub const PRESETS: &[&str] = &["generic", "google", "github", "microsoft", "apple", "gitlab"];

/// Upstream parameters a client may forward to the provider's authorization endpoint.
const UPSTREAM_ALLOWED: &[&str] = &["login_hint", "hd", "prompt", "acr_values", "auth_type", "domain_hint"];

/// The verified identity of the end user at a provider.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderClaims {
    /// `iss` of the ID token (`https://github.com` for GitHub).
    pub issuer: String,
    /// `sub` of the ID token (GitHub: the numeric user id).
    pub subject: String,
    /// Every claim (ID token merged with userinfo): the input of the mapper.
    pub claims: Value,
}

/// What the core needs to start a round trip.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub redirect_uri: String,
    pub state: String,
    pub nonce: String,
    /// The PKCE verifier (the client derives the S256 challenge).
    pub pkce_verifier: String,
    /// Allow-listed parameters forwarded to the provider (`login_hint`, `prompt`, …).
    pub upstream: Vec<(String, String)>,
}

/// Talks to providers. Implemented by the server; errors are human-readable reasons.
#[async_trait]
pub trait OidcClient: Send + Sync {
    /// The provider's authorization URL for this request (discovery as needed).
    async fn authorization_url(&self, p: &OidcProvider, r: &AuthRequest) -> std::result::Result<String, String>;
    /// Exchange an authorization code (with the PKCE verifier) and verify the ID token
    /// (signature, issuer, audience, expiry at `now`, `nonce`); merge userinfo claims.
    async fn exchange_code(
        &self,
        p: &OidcProvider,
        redirect_uri: &str,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        now: OffsetDateTime,
    ) -> std::result::Result<ProviderClaims, String>;
    /// Verify an ID token a native app obtained (signature, issuer, audience incl.
    /// `additional_id_token_audiences`, expiry at `now`). The nonce is checked by the caller.
    async fn verify_id_token(
        &self,
        p: &OidcProvider,
        id_token: &str,
        now: OffsetDateTime,
    ) -> std::result::Result<ProviderClaims, String>;
}

/// The client used until the server installs a real one.
pub struct NoOidcClient;

#[async_trait]
impl OidcClient for NoOidcClient {
    async fn authorization_url(&self, _: &OidcProvider, _: &AuthRequest) -> std::result::Result<String, String> {
        Err("no OpenID Connect client is installed".into())
    }
    async fn exchange_code(
        &self,
        _: &OidcProvider,
        _: &str,
        _: &str,
        _: &str,
        _: &str,
        _: OffsetDateTime,
    ) -> std::result::Result<ProviderClaims, String> {
        Err("no OpenID Connect client is installed".into())
    }
    async fn verify_id_token(
        &self,
        _: &OidcProvider,
        _: &str,
        _: OffsetDateTime,
    ) -> std::result::Result<ProviderClaims, String> {
        Err("no OpenID Connect client is installed".into())
    }
}

// ---- provider presets --------------------------------------------------------------------

impl OidcProvider {
    /// The client secret to send to the token endpoint at `now` (unix seconds): the configured
    /// `client_secret`, or for `apple` with a private key, a fresh ES256 JWT signed with it
    /// (`iss` = team id, `sub` = client id, `aud` = `https://appleid.apple.com`, valid for
    /// five minutes), as Apple requires.
    pub fn client_secret_at(&self, now: i64) -> std::result::Result<Option<String>, String> {
        if self.provider == "apple"
            && let (Some(team), Some(kid), Some(key)) =
                (&self.apple_team_id, &self.apple_private_key_id, &self.apple_private_key)
        {
            let claims = json!({
                "iss": team,
                "iat": now,
                "exp": now + 300,
                "aud": "https://appleid.apple.com",
                "sub": self.client_id,
            });
            return es256_jwt(&key.0, kid, &claims).map(Some);
        }
        Ok(self.client_secret.as_ref().map(|s| s.0.clone()).filter(|s| !s.is_empty()))
    }

    /// The issuer (discovery base) of this provider.
    pub fn issuer(&self) -> String {
        let configured = self.issuer_url.as_deref().map(|u| u.trim_end_matches('/').to_string());
        match self.provider.as_str() {
            "google" => "https://accounts.google.com".into(),
            "apple" => "https://appleid.apple.com".into(),
            "microsoft" => format!("https://login.microsoftonline.com/{}/v2.0", self.microsoft_tenant()),
            "gitlab" => configured.unwrap_or_else(|| "https://gitlab.com".into()),
            "github" => configured.unwrap_or_else(|| "https://github.com".into()),
            _ => configured.unwrap_or_default(),
        }
    }

    /// The Microsoft tenant (`common` by default).
    pub fn microsoft_tenant(&self) -> String {
        self.microsoft_tenant.clone().filter(|t| !t.trim().is_empty()).unwrap_or_else(|| "common".into())
    }

    /// A Microsoft multi-tenant endpoint: ID tokens carry the user's tenant as issuer
    /// (`https://login.microsoftonline.com/<tid>/v2.0`), checked against the `tid` claim.
    pub fn is_multi_tenant(&self) -> bool {
        self.provider == "microsoft"
            && matches!(self.microsoft_tenant().as_str(), "common" | "organizations" | "consumers")
    }

    /// GitHub speaks OAuth2 with a user API, not OpenID Connect (no ID tokens, no discovery).
    pub fn is_oauth2_only(&self) -> bool {
        self.provider == "github"
    }

    /// The requested scopes.
    pub fn scopes(&self) -> Vec<String> {
        let mut s: Vec<String> = self.scope.iter().filter(|s| !s.trim().is_empty()).cloned().collect();
        if s.is_empty() {
            s = match self.provider.as_str() {
                "github" => vec!["user:email".into()],
                "apple" => vec!["email".into(), "name".into()],
                _ => vec!["email".into(), "profile".into()],
            };
        }
        if !self.is_oauth2_only() && !s.iter().any(|x| x == "openid") {
            s.insert(0, "openid".into());
        }
        s
    }

    /// The label shown on buttons.
    pub fn display_label(&self) -> String {
        if let Some(l) = self.label.as_ref().filter(|l| !l.trim().is_empty()) {
            return l.clone();
        }
        match self.provider.as_str() {
            "google" => "Google".into(),
            "github" => "GitHub".into(),
            "microsoft" => "Microsoft".into(),
            "apple" => "Apple".into(),
            "gitlab" => "GitLab".into(),
            _ => self.id.clone(),
        }
    }

    /// The mapper in effect.
    pub fn mapper_or_default(&self) -> Value {
        self.mapper.clone().unwrap_or_else(|| json!({"traits": {"email": "{{ claims.email }}"}}))
    }
}

/// Check `selfservice.methods.oidc` at start; the error names the key.
pub fn validate_config(m: &OidcMethod) -> std::result::Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for (i, p) in m.config.providers.iter().enumerate() {
        let key = format!("selfservice.methods.oidc.config.providers.{i}");
        let bad = |k: &str, why: String| format!("invalid configuration at key `{key}.{k}`: {why}");
        if p.id.is_empty()
            || !p.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            || p.id.len() > 64
        {
            return Err(bad("id", format!("{:?} must be 1-64 characters of A-Z, a-z, 0-9, - and _", p.id)));
        }
        if !seen.insert(p.id.clone()) {
            return Err(bad("id", format!("the id {:?} is used by more than one provider", p.id)));
        }
        if !PRESETS.contains(&p.provider.as_str()) {
            return Err(bad("provider", format!("unknown provider {:?} (known: {})", p.provider, PRESETS.join(", "))));
        }
        if p.client_id.trim().is_empty() {
            return Err(bad("client_id", "must not be empty".into()));
        }
        match &p.issuer_url {
            Some(u) => {
                let parsed = url::Url::parse(u).map_err(|e| bad("issuer_url", e.to_string()))?;
                if !matches!(parsed.scheme(), "https" | "http")
                    || parsed.query().is_some()
                    || parsed.fragment().is_some()
                {
                    return Err(bad("issuer_url", "must be an http(s) URL without query or fragment".into()));
                }
                if matches!(p.provider.as_str(), "google" | "apple" | "microsoft") {
                    return Err(bad("issuer_url", format!("is fixed for the {} preset; remove it", p.provider)));
                }
            }
            None if p.provider == "generic" => {
                return Err(bad("issuer_url", "is required for the generic provider".into()));
            }
            None => {}
        }
        if p.microsoft_tenant.is_some() && p.provider != "microsoft" {
            return Err(bad("microsoft_tenant", "only applies to the microsoft provider".into()));
        }
        if let Some(t) = &p.microsoft_tenant
            && (t.trim().is_empty() || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
        {
            return Err(bad("microsoft_tenant", format!("{t:?} is not a tenant id or domain")));
        }
        validate_apple_key(p).map_err(|(k, e)| bad(k, e))?;
        if let Some(mapper) = &p.mapper {
            validate_mapper(mapper).map_err(|e| bad("mapper", e))?;
        }
    }
    Ok(())
}

// ---- Apple's client secret ---------------------------------------------------------------

/// The DER of a PKCS#8 `PRIVATE KEY` PEM block.
fn pkcs8_der(pem: &str) -> std::result::Result<Vec<u8>, String> {
    use base64::Engine as _;
    let body = pem
        .split("-----BEGIN PRIVATE KEY-----")
        .nth(1)
        .and_then(|rest| rest.split("-----END PRIVATE KEY-----").next())
        .ok_or("is not a PEM block \"-----BEGIN PRIVATE KEY-----\" (the .p8 file from Apple)")?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| format!("is not valid PEM: {e}"))
}

fn p256_key(pem: &str) -> std::result::Result<ring::signature::EcdsaKeyPair, String> {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let der = pkcs8_der(pem)?;
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &ring::rand::SystemRandom::new())
        .map_err(|_| "is not a PKCS#8 P-256 (ES256) private key".to_string())
}

/// A compact JWS (ES256) of `claims` with key id `kid`.
fn es256_jwt(pem: &str, kid: &str, claims: &Value) -> std::result::Result<String, String> {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let key = p256_key(pem).map_err(|e| format!("apple_private_key {e}"))?;
    let header = json!({"alg": "ES256", "kid": kid, "typ": "JWT"});
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let sig = key
        .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
        .map_err(|_| "could not sign the Apple client secret".to_string())?;
    Ok(format!("{input}.{}", b64(sig.as_ref())))
}

/// Config checks of the Apple key fields (all three or none; a key that loads).
fn validate_apple_key(p: &OidcProvider) -> std::result::Result<(), (&'static str, String)> {
    let set = [p.apple_team_id.is_some(), p.apple_private_key_id.is_some(), p.apple_private_key.is_some()];
    if !set.contains(&true) {
        return Ok(());
    }
    if p.provider != "apple" {
        return Err(("apple_private_key", "only applies to the apple provider".into()));
    }
    if set.contains(&false) {
        return Err((
            "apple_private_key",
            "needs apple_team_id, apple_private_key_id and apple_private_key together".into(),
        ));
    }
    if p.client_secret.is_some() {
        return Err(("client_secret", "remove it: with apple_private_key idflow signs the client secret".into()));
    }
    if p.apple_team_id.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(("apple_team_id", "must not be empty".into()));
    }
    if p.apple_private_key_id.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(("apple_private_key_id", "must not be empty".into()));
    }
    if let Some(k) = &p.apple_private_key {
        p256_key(&k.0).map(|_| ()).map_err(|e| ("apple_private_key", e))?;
    }
    Ok(())
}

// ---- the claims mapper -------------------------------------------------------------------

/// What a mapper produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapped {
    pub traits: Value,
    pub metadata_public: Value,
    pub metadata_admin: Value,
}

/// One `{{ … }}` expression: alternatives separated by `||`, each `claims.<path>` or a quoted
/// literal; the first alternative that is present (not absent, not null) wins.
#[derive(Debug, Clone, PartialEq)]
enum Alt {
    Claim(Vec<String>),
    Literal(String),
}

fn parse_expr(expr: &str) -> std::result::Result<Vec<Alt>, String> {
    let mut alts = vec![];
    for part in expr.split("||") {
        let part = part.trim();
        if let Some(path) = part.strip_prefix("claims.") {
            let segs: Vec<String> = path.split('.').map(str::to_string).collect();
            if segs
                .iter()
                .any(|s| s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
            {
                return Err(format!("{part:?} is not a claim path (use claims.<name> or claims.<name>.<field>)"));
            }
            alts.push(Alt::Claim(segs));
        } else if part.len() >= 2 && part.starts_with('"') && part.ends_with('"') {
            alts.push(Alt::Literal(part[1..part.len() - 1].to_string()));
        } else {
            return Err(format!("{part:?} is not claims.<name> or a \"quoted\" text"));
        }
    }
    Ok(alts)
}

/// A template string split into literal text and expressions.
enum Piece {
    Text(String),
    Expr(Vec<Alt>),
}

fn parse_template(s: &str) -> std::result::Result<Vec<Piece>, String> {
    let mut out = vec![];
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            out.push(Piece::Text(rest[..start].to_string()));
        }
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| format!("unclosed {{{{ in {s:?}"))?;
        out.push(Piece::Expr(parse_expr(&after[..end])?));
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        return Err(format!("unbalanced }}}} in {s:?}"));
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_string()));
    }
    Ok(out)
}

fn validate_value(v: &Value, at: &str) -> std::result::Result<(), String> {
    match v {
        Value::String(s) => parse_template(s).map(|_| ()).map_err(|e| format!("at `{at}`: {e}")),
        Value::Array(a) => a.iter().enumerate().try_for_each(|(i, x)| validate_value(x, &format!("{at}.{i}"))),
        Value::Object(m) => m.iter().try_for_each(|(k, x)| validate_value(x, &format!("{at}.{k}"))),
        _ => Ok(()),
    }
}

/// Check a mapper: an object with `traits` (object) and optional `metadata_public`,
/// `metadata_admin`; every template must parse.
pub fn validate_mapper(mapper: &Value) -> std::result::Result<(), String> {
    let Value::Object(m) = mapper else {
        return Err("must be an object with a `traits` object".into());
    };
    for (k, v) in m {
        if !matches!(k.as_str(), "traits" | "metadata_public" | "metadata_admin") {
            return Err(format!("unknown key `{k}` (known: traits, metadata_public, metadata_admin)"));
        }
        if !v.is_object() {
            return Err(format!("`{k}` must be an object"));
        }
        validate_value(v, k)?;
    }
    Ok(())
}

fn lookup<'a>(claims: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = claims;
    for seg in path {
        cur = match cur {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    (!cur.is_null()).then_some(cur)
}

fn eval(alts: &[Alt], claims: &Value) -> Option<Value> {
    alts.iter().find_map(|a| match a {
        Alt::Claim(p) => lookup(claims, p).cloned(),
        Alt::Literal(s) => Some(Value::String(s.clone())),
    })
}

fn render(v: &Value, claims: &Value) -> Option<Value> {
    match v {
        Value::String(s) => {
            let pieces = parse_template(s).ok()?;
            if let [Piece::Expr(alts)] = pieces.as_slice() {
                // A whole-string template keeps the claim's JSON type.
                return eval(alts, claims);
            }
            let mut out = String::new();
            for p in pieces {
                match p {
                    Piece::Text(t) => out.push_str(&t),
                    Piece::Expr(alts) => match eval(&alts, claims)? {
                        Value::String(s) => out.push_str(&s),
                        other => out.push_str(&other.to_string()),
                    },
                }
            }
            Some(Value::String(out))
        }
        Value::Array(a) => Some(Value::Array(a.iter().filter_map(|x| render(x, claims)).collect())),
        Value::Object(m) => {
            let out: Map<String, Value> =
                m.iter().filter_map(|(k, x)| render(x, claims).map(|r| (k.clone(), r))).collect();
            (!out.is_empty()).then_some(Value::Object(out))
        }
        other => Some(other.clone()),
    }
}

/// Apply a mapper to claims. Keys whose templates refer to absent claims are left out (and
/// objects left empty by that too); a whole-string `"{{ claims.x }}"` keeps the claim's type.
pub fn apply_mapper(mapper: &Value, claims: &Value) -> Mapped {
    let part = |k: &str| mapper.get(k).and_then(|v| render(v, claims));
    Mapped {
        traits: part("traits").unwrap_or_else(|| Value::Object(Map::new())),
        metadata_public: part("metadata_public").unwrap_or(Value::Null),
        metadata_admin: part("metadata_admin").unwrap_or(Value::Null),
    }
}

/// Overlay `over` onto `base`: objects merge key by key; empty strings and nulls in `over` do
/// not replace anything (an untouched form field must not erase a mapped value).
fn overlay(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => overlay(existing, v),
                    None => {
                        if !matches!(v, Value::Null) && v.as_str() != Some("") {
                            b.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
        }
        (_, Value::Null) => {}
        (_, Value::String(s)) if s.is_empty() => {}
        (b, o) => *b = o.clone(),
    }
}

// ---- helpers -----------------------------------------------------------------------------

/// Whether the oidc method handles a login/registration submit: `provider` is set and `method`
/// is `oidc` or absent (a provider button posts only its own name and value).
pub fn responsible(body: &Body) -> bool {
    let method = body_str(body, "method").unwrap_or_default();
    body_str(body, "provider").is_some_and(|p| !p.is_empty()) && (method.is_empty() || method == "oidc")
}

fn nonempty<'a>(body: &'a Body, k: &str) -> Option<&'a str> {
    body_str(body, k).filter(|s| !s.is_empty())
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
fn duplicate_on_oidc() -> UiText {
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

/// The outcome of a callback.
#[derive(Debug)]
pub enum OidcDone {
    Login(LoggedIn),
    Registration(Registered),
    Settings(Submitted<SettingsDone>),
    /// Form errors on the flow: show its UI again.
    Invalid(Flow),
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

    fn oidc_disabled() -> Error {
        Error::new(
            ErrorKind::Disabled,
            "This endpoint was disabled by system administrator. Please check your url or contact the system administrator to enable it.",
        )
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

    // ---- login ---------------------------------------------------------------------------

    /// `method=oidc` (or a `provider` button) on a login flow.
    pub(crate) async fn login_oidc(&self, flow: Flow, body: &Body, req: &Req) -> Result<Submitted<LoggedIn>> {
        if !self.cfg.selfservice.methods.oidc.enabled {
            return Err(Self::oidc_disabled());
        }
        if flow.requested_aal == crate::model::Aal::Aal2 {
            return self.login_invalid(flow, req, "", msg::no_strategy_login(), None).await;
        }
        self.check_csrf(&flow, req, body_str(body, "csrf_token"))?;
        if let Some(v) = self.check_api_request(&flow, req) {
            return self.login_invalid(flow, req, "", msg::generic(&v), None).await;
        }
        let pid = body_str(body, "provider").unwrap_or_default();
        let Some(p) = self.oidc_provider(pid).cloned() else {
            return self
                .login_invalid(flow, req, "provider", msg::generic(&format!("Unknown sign-in provider {pid:?}.")), None)
                .await;
        };
        if flow.flow_type == FlowType::Api || nonempty(body, "id_token").is_some() {
            return match self.oidc_verify_submitted(&flow, &p, body).await? {
                Ok(pc) => self.oidc_login_with(flow, &p, pc, req).await,
                Err(m) => self.login_invalid(flow, req, "", m, None).await,
            };
        }
        let mut flow = flow;
        Err(self.oidc_start(&mut flow, &p, "login", body).await?)
    }

    /// Complete a login with verified claims: the linked identity signs in; an unknown account
    /// registers.
    async fn oidc_login_with(
        &self,
        flow: Flow,
        p: &OidcProvider,
        pc: ProviderClaims,
        req: &Req,
    ) -> Result<Submitted<LoggedIn>> {
        let ident = identifier(&p.id, &pc.subject);
        let found = self.store.find_identity_by_identifier(CredentialType::Oidc, &ident).await?;
        let Some(identity) = found else {
            return self.oidc_login_registers(flow, p, pc, req).await;
        };
        if identity.state != IdentityState::Active {
            return self.login_invalid(flow, req, "", msg::identity_disabled(), None).await;
        }
        let (mut issued, is_new) = match (&req.auth, flow.refresh) {
            (Some(a), true) if a.identity.id == identity.id => (self.extend_session(&a.session, "oidc", true), false),
            _ => (self.new_session(&identity, "oidc", req), true),
        };
        if let Some(m) = issued.session.authentication_methods.last_mut() {
            m.provider = Some(p.id.clone());
        }
        self.finish_login(flow, identity, issued, is_new, "oidc").await
    }

    /// A login with an account nobody linked yet: register it (registration must be enabled).
    async fn oidc_login_registers(
        &self,
        flow: Flow,
        p: &OidcProvider,
        pc: ProviderClaims,
        req: &Req,
    ) -> Result<Submitted<LoggedIn>> {
        let label = p.display_label();
        if !self.cfg.selfservice.flows.registration.enabled || flow.refresh || req.auth.is_some() {
            let m = msg::generic(&format!("No account is linked to this {label} account."));
            return self.login_invalid(flow, req, "", m, None).await;
        }
        let identity = match self.oidc_new_identity(p, &pc, None)? {
            Ok(i) => i,
            Err(errors) => {
                if flow.flow_type == FlowType::Browser {
                    // The user completes the missing traits on a registration form.
                    let reg = self.oidc_pending_registration(p, &pc, req, errors).await?;
                    let url = self.ui_url_for_flow(FlowKind::Registration, reg.id);
                    return Err(Error::new(
                        ErrorKind::BrowserLocationChange,
                        format!("In order to complete this flow please redirect the browser to: {url}"),
                    )
                    .with_redirect(url));
                }
                let m = msg::generic(&format!(
                    "The {label} account does not provide every required profile field: register with a registration flow (method oidc) and submit the missing traits."
                ));
                let mut invalid = match self.login_invalid(flow, req, "", m, None).await? {
                    Submitted::Invalid(f) => f,
                    other => return Ok(other),
                };
                for (node, m) in errors {
                    invalid.ui.add_message(&node, m);
                }
                self.save_flow(&mut invalid).await?;
                return Ok(Submitted::Invalid(invalid));
            }
        };
        let mut issued = self.new_session(&identity, "oidc", req);
        if let Some(m) = issued.session.authentication_methods.last_mut() {
            m.provider = Some(p.id.clone());
        }
        let mut flow = flow;
        flow.active = Some("oidc".into());
        flow.state = "passed_challenge".into();
        flow.updated_at = self.clock.now();
        let res = self
            .store
            .commit(Commit {
                create_identity: Some(&identity),
                create_session: Some(&issued.session),
                update_flow: Some(&flow),
                ..Default::default()
            })
            .await;
        match res {
            Ok(_) => flow.version += 1,
            Err(StoreError::Busy(_)) => {
                return Err(Error::new(ErrorKind::Conflict, "The flow was completed by a concurrent request."));
            }
            Err(StoreError::Conflict(_)) => {
                let flow = self.load_flow(flow.id, FlowKind::Login).await?;
                return self.login_invalid(flow, req, "", duplicate_on_oidc(), None).await;
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(identity_id = %identity.id, provider = %p.id, "identity registered through a login with a sign-in provider");
        let a = Authed { session: issued.session.clone(), identity: identity.clone() };
        let aal_satisfied = self.aal_ok(self.cfg.session.whoami.required_aal, &a);
        Ok(Submitted::Done(LoggedIn { flow, identity, issued, aal_satisfied }))
    }

    /// A new identity from verified claims (+ traits the user typed). `Ok(Err(errors))` when the
    /// traits do not validate.
    fn oidc_new_identity(
        &self,
        p: &OidcProvider,
        pc: &ProviderClaims,
        submitted: Option<&Value>,
    ) -> Result<std::result::Result<Identity, Vec<(String, UiText)>>> {
        let schema = self.default_schema()?.clone();
        let mapped = apply_mapper(&p.mapper_or_default(), &pc.claims);
        let mut traits = mapped.traits;
        if let Some(s) = submitted {
            overlay(&mut traits, s);
        }
        let errors = schema.validate(&traits);
        if !errors.is_empty() {
            return Ok(Err(errors
                .into_iter()
                .chain(std::iter::once((String::new(), msg::generic("Please complete the missing profile fields."))))
                .collect()));
        }
        let now = self.clock.now();
        let extracted = schema.extract(&traits);
        let mut identity = Identity::new(&schema.id, traits, now);
        identity.metadata_public = mapped.metadata_public;
        identity.metadata_admin = mapped.metadata_admin;
        identity.credentials.insert(
            CredentialType::Oidc,
            Credential::new(
                CredentialType::Oidc,
                vec![identifier(&p.id, &pc.subject)],
                json!({"providers": [{"provider": p.id, "subject": pc.subject}]}),
                now,
            ),
        );
        // The login identifiers are reserved like a password account's (no password yet): a
        // second account with the same email is refused, and a password can be set later.
        if !extracted.password_identifiers.is_empty() {
            identity.credentials.insert(
                CredentialType::Password,
                Credential::new(CredentialType::Password, extracted.password_identifiers.clone(), json!({}), now),
            );
        }
        self.apply_extracted_addresses(&mut identity, &extracted, now);
        // The provider vouches for its email address.
        if is_true(pc.claims.get("email_verified"))
            && let Some(email) = pc.claims.get("email").and_then(Value::as_str)
        {
            let email = email.trim().to_lowercase();
            for a in
                identity.verifiable_addresses.iter_mut().filter(|a| a.via == "email" && a.value.to_lowercase() == email)
            {
                a.verified = true;
                a.status = "completed".into();
                a.verified_at = Some(now);
            }
        }
        Ok(Ok(identity))
    }

    /// A registration flow holding verified claims, prefilled with the mapped traits.
    async fn oidc_pending_registration(
        &self,
        p: &OidcProvider,
        pc: &ProviderClaims,
        req: &Req,
        errors: Vec<(String, UiText)>,
    ) -> Result<Flow> {
        let url = self.url("/self-service/registration/browser");
        let mut flow = self.new_flow(
            FlowKind::Registration,
            FlowType::Browser,
            &url,
            self.cfg.selfservice.flows.registration.lifespan.0,
        );
        let traits = apply_mapper(&p.mapper_or_default(), &pc.claims).traits;
        self.registration_ui(&mut flow, req, Some(&traits))?;
        for (node, m) in errors {
            flow.ui.add_message(&node, m);
        }
        flow.internal_set(
            PENDING,
            json!({"provider": p.id, "issuer": pc.issuer, "subject": pc.subject, "claims": pc.claims}),
        );
        self.store.create_flow(&flow).await?;
        Ok(flow)
    }

    // ---- registration --------------------------------------------------------------------

    /// `method=oidc` (or a `provider` button) on a registration flow.
    pub(crate) async fn registration_oidc(
        &self,
        mut flow: Flow,
        body: &Body,
        req: &Req,
    ) -> Result<Submitted<Registered>> {
        if !self.cfg.selfservice.methods.oidc.enabled {
            return Err(Self::oidc_disabled());
        }
        self.check_csrf(&flow, req, body_str(body, "csrf_token"))?;
        let pid = body_str(body, "provider").unwrap_or_default().to_string();
        let submitted = body.get("traits").filter(|t| t.is_object()).cloned();
        if let Some(v) = self.check_api_request(&flow, req) {
            return self.oidc_registration_invalid(flow, req, submitted.as_ref(), msg::generic(&v)).await;
        }
        let Some(p) = self.oidc_provider(&pid).cloned() else {
            let m = msg::generic(&format!("Unknown sign-in provider {pid:?}."));
            return self.oidc_registration_invalid(flow, req, submitted.as_ref(), m).await;
        };
        // Verified claims waiting for the traits the provider did not give.
        if let Some(pending) = flow.internal_get(PENDING).cloned()
            && pending.get("provider").and_then(Value::as_str) == Some(p.id.as_str())
        {
            let pc = ProviderClaims {
                issuer: pending.get("issuer").and_then(Value::as_str).unwrap_or_default().to_string(),
                subject: pending.get("subject").and_then(Value::as_str).unwrap_or_default().to_string(),
                claims: pending.get("claims").cloned().unwrap_or(Value::Null),
            };
            return self.oidc_register_with(flow, &p, pc, submitted.as_ref(), req).await;
        }
        if flow.flow_type == FlowType::Api || nonempty(body, "id_token").is_some() {
            return match self.oidc_verify_submitted(&flow, &p, body).await? {
                Ok(pc) => self.oidc_register_with(flow, &p, pc, submitted.as_ref(), req).await,
                Err(m) => self.oidc_registration_invalid(flow, req, submitted.as_ref(), m).await,
            };
        }
        Err(self.oidc_start(&mut flow, &p, "registration", body).await?)
    }

    async fn oidc_registration_invalid(
        &self,
        mut flow: Flow,
        req: &Req,
        traits: Option<&Value>,
        m: UiText,
    ) -> Result<Submitted<Registered>> {
        self.registration_ui(&mut flow, req, traits)?;
        flow.ui.add_message("", m);
        self.save_flow(&mut flow).await?;
        Ok(Submitted::Invalid(flow))
    }

    /// Complete a registration with verified claims. An account that is already linked signs in.
    async fn oidc_register_with(
        &self,
        mut flow: Flow,
        p: &OidcProvider,
        pc: ProviderClaims,
        submitted: Option<&Value>,
        req: &Req,
    ) -> Result<Submitted<Registered>> {
        let ident = identifier(&p.id, &pc.subject);
        if let Some(identity) = self.store.find_identity_by_identifier(CredentialType::Oidc, &ident).await? {
            if identity.state != IdentityState::Active {
                self.registration_ui(&mut flow, req, submitted)?;
                flow.ui.add_message("", msg::identity_disabled());
                self.save_flow(&mut flow).await?;
                return Ok(Submitted::Invalid(flow));
            }
            let mut issued = self.new_session(&identity, "oidc", req);
            if let Some(m) = issued.session.authentication_methods.last_mut() {
                m.provider = Some(p.id.clone());
            }
            flow.active = Some("oidc".into());
            flow.state = "passed_challenge".into();
            flow.internal_remove(PENDING);
            flow.updated_at = self.clock.now();
            self.store
                .commit(Commit {
                    create_session: Some(&issued.session),
                    update_flow: Some(&flow),
                    ..Default::default()
                })
                .await
                .map_err(|e| match e {
                    StoreError::Busy(_) => {
                        Error::new(ErrorKind::Conflict, "The flow was completed by a concurrent request.")
                    }
                    other => other.into(),
                })?;
            flow.version += 1;
            tracing::info!(identity_id = %identity.id, provider = %p.id, "registration with a linked provider account signed in");
            return Ok(Submitted::Done(Registered { flow, identity, session: Some(issued) }));
        }
        let identity = match self.oidc_new_identity(p, &pc, submitted)? {
            Ok(i) => i,
            Err(errors) => {
                let mut traits = apply_mapper(&p.mapper_or_default(), &pc.claims).traits;
                if let Some(s) = submitted {
                    overlay(&mut traits, s);
                }
                self.registration_ui(&mut flow, req, Some(&traits))?;
                for (node, m) in errors {
                    flow.ui.add_message(&node, m);
                }
                flow.internal_set(
                    PENDING,
                    json!({"provider": p.id, "issuer": pc.issuer, "subject": pc.subject, "claims": pc.claims}),
                );
                self.save_flow(&mut flow).await?;
                return Ok(Submitted::Invalid(flow));
            }
        };
        let with_session = self.cfg.selfservice.flows.registration.after.has_hook("oidc", "session");
        let issued = with_session.then(|| {
            let mut i = self.new_session(&identity, "oidc", req);
            if let Some(m) = i.session.authentication_methods.last_mut() {
                m.provider = Some(p.id.clone());
            }
            i
        });
        flow.active = Some("oidc".into());
        flow.state = "passed_challenge".into();
        flow.internal_remove(PENDING);
        flow.updated_at = self.clock.now();
        let res = self
            .store
            .commit(Commit {
                create_identity: Some(&identity),
                create_session: issued.as_ref().map(|i| &i.session),
                update_flow: Some(&flow),
                ..Default::default()
            })
            .await;
        match res {
            Ok(_) => {
                flow.version += 1;
                tracing::info!(identity_id = %identity.id, provider = %p.id, "identity registered with a sign-in provider");
                Ok(Submitted::Done(Registered { flow, identity, session: issued }))
            }
            Err(StoreError::Busy(_)) => {
                Err(Error::new(ErrorKind::Conflict, "The flow was completed by a concurrent request."))
            }
            Err(StoreError::Conflict(_)) => {
                let mut flow = self.load_flow(flow.id, FlowKind::Registration).await?;
                self.registration_ui(&mut flow, req, Some(&identity.traits))?;
                flow.ui.add_message("", duplicate_on_oidc());
                flow.internal_remove(PENDING);
                self.save_flow(&mut flow).await?;
                Ok(Submitted::Invalid(flow))
            }
            Err(e) => Err(e.into()),
        }
    }

    // ---- settings ------------------------------------------------------------------------

    /// Settings `link` / `unlink`. A browser link answers "go to the provider" (an `Err`);
    /// an API flow links with a submitted ID token.
    pub(crate) async fn settings_oidc(&self, flow: &mut Flow, a: &Authed, body: &Body) -> Result<Change> {
        let link = nonempty(body, "link");
        let unlink = nonempty(body, "unlink");
        let invalid = |m: UiText| Ok(Change::Invalid { errors: vec![(String::new(), m)], echo: None });
        if link.is_some() && unlink.is_some() {
            return invalid(msg::generic("it is not possible to link and unlink providers in the same request"));
        }
        if !self.privileged(a) {
            let pending = match (link, unlink) {
                (Some(l), _) => json!({ "link": l }),
                (_, Some(u)) => json!({ "unlink": u }),
                _ => json!({}),
            };
            return Ok(Change::NeedsPrivilege { pending });
        }
        let linked_now = linked(&a.identity);
        if let Some(pid) = unlink {
            if !linked_now.iter().any(|(p, _)| p == pid) {
                return invalid(msg::generic("can not unlink non-existing OpenID Connect connection"));
            }
            if a.identity.first_factor_count() < 2 {
                return invalid(msg::last_sign_in_method(
                    "can not unlink OpenID Connect connection because it is the last remaining first factor credential",
                ));
            }
            let mut identity = a.identity.clone();
            let now = self.clock.now();
            let remove = |c: &mut Credential| {
                if let Some(Value::Array(list)) = c.config.get_mut("providers") {
                    list.retain(|e| e.get("provider").and_then(Value::as_str) != Some(pid));
                }
                c.identifiers.retain(|i| !i.starts_with(&format!("{pid}:")));
                c.updated_at = now;
            };
            let mut empty = false;
            if let Some(c) = identity.credentials.get_mut(&CredentialType::Oidc) {
                remove(c);
                empty = c.identifiers.is_empty();
            }
            if empty {
                identity.credentials.remove(&CredentialType::Oidc);
            }
            return Ok(Change::Update { identity, add_method: None, revoke_others: false });
        }
        let pid = link.unwrap_or_default();
        let Some(p) = self.oidc_provider(pid).cloned().filter(|p| !linked_now.iter().any(|(l, _)| *l == p.id)) else {
            return invalid(msg::generic("can not link unknown or already existing OpenID Connect connection"));
        };
        if flow.flow_type == FlowType::Api || nonempty(body, "id_token").is_some() {
            return match self.oidc_verify_submitted(flow, &p, body).await? {
                Ok(pc) => self.oidc_link_change(a, &p, &pc).await,
                Err(m) => invalid(m),
            };
        }
        Err(self.oidc_start(flow, &p, "link", body).await?)
    }

    /// The identity with `pc` linked, or why not.
    async fn oidc_link_change(&self, a: &Authed, p: &OidcProvider, pc: &ProviderClaims) -> Result<Change> {
        let ident = identifier(&p.id, &pc.subject);
        let label = p.display_label();
        if let Some(owner) = self.store.find_identity_by_identifier(CredentialType::Oidc, &ident).await? {
            let m = if owner.id == a.identity.id {
                msg::generic("can not link unknown or already existing OpenID Connect connection")
            } else {
                already_linked_elsewhere(&label)
            };
            return Ok(Change::Invalid { errors: vec![(String::new(), m)], echo: None });
        }
        if linked(&a.identity).iter().any(|(l, _)| *l == p.id) {
            let m = msg::generic("can not link unknown or already existing OpenID Connect connection");
            return Ok(Change::Invalid { errors: vec![(String::new(), m)], echo: None });
        }
        let now = self.clock.now();
        let mut identity = a.identity.clone();
        let entry = json!({"provider": p.id, "subject": pc.subject});
        match identity.credentials.get_mut(&CredentialType::Oidc) {
            Some(c) => {
                match c.config.get_mut("providers") {
                    Some(Value::Array(list)) => list.push(entry),
                    _ => c.config = json!({"providers": [entry]}),
                }
                c.identifiers.push(ident);
                c.updated_at = now;
            }
            None => {
                identity.credentials.insert(
                    CredentialType::Oidc,
                    Credential::new(CredentialType::Oidc, vec![ident], json!({"providers": [entry]}), now),
                );
            }
        }
        Ok(Change::Update { identity, add_method: Some("oidc"), revoke_others: false })
    }

    // ---- the callback --------------------------------------------------------------------

    /// `GET /self-service/methods/oidc/callback/<provider>`. Returns the flow kind (when the
    /// state named a flow) with the outcome.
    pub async fn oidc_callback(
        &self,
        provider_id: &str,
        params: &CallbackParams,
        req: &Req,
    ) -> (Option<FlowKind>, Result<OidcDone>) {
        let mut kind = None;
        let res = self.oidc_callback_inner(provider_id, params, req, &mut kind).await;
        (kind, res)
    }

    async fn oidc_callback_inner(
        &self,
        provider_id: &str,
        params: &CallbackParams,
        req: &Req,
        kind: &mut Option<FlowKind>,
    ) -> Result<OidcDone> {
        if !self.cfg.selfservice.methods.oidc.enabled {
            return Err(Self::oidc_disabled());
        }
        let Some(p) = self.oidc_provider(provider_id).cloned() else {
            return Err(Error::not_found(format!("The sign-in provider {provider_id:?} is not configured.")));
        };
        let state_error = || {
            Error::bad_request(
                "The sign-in could not be completed: the state parameter is missing, unknown, already used, or belongs to another provider. Please start again.",
            )
        };
        let flow_id =
            params.state.split_once('.').and_then(|(id, _)| Uuid::parse_str(id).ok()).ok_or_else(state_error)?;
        let mut flow = self.store.get_flow(flow_id).await?.ok_or_else(state_error)?;
        *kind = Some(flow.kind);
        let rt = flow.internal_get(ROUND_TRIP).cloned().ok_or_else(state_error)?;
        let expected = rt.get("state_hash").and_then(Value::as_str).unwrap_or_default();
        let got = crypto::sha256_hex(params.state.as_bytes());
        if !crypto::ct_eq(expected.as_bytes(), got.as_bytes())
            || rt.get("provider").and_then(Value::as_str) != Some(p.id.as_str())
        {
            tracing::warn!(flow_id = %flow.id, provider = %p.id, "sign-in callback with a state that does not match the flow");
            return Err(state_error());
        }
        // The browser that comes back must be the one that started the flow.
        if flow.flow_type != FlowType::Browser
            || !req.csrf_cookie.as_deref().is_some_and(|c| crypto::csrf_matches(c, &flow.csrf_token))
        {
            tracing::warn!(flow_id = %flow.id, provider = %p.id, "sign-in callback from another browser");
            return Err(Error::new(
                ErrorKind::Csrf,
                "The sign-in was started in another browser (or its cookies were cleared), so it can not be completed here. Please start again.",
            )
            .with_detail("reject_reason", json!("The anti-CSRF cookie of this browser does not belong to the flow of this sign-in.")));
        }
        // A state is good for one callback.
        flow.internal_remove(ROUND_TRIP);
        self.save_flow(&mut flow).await?;
        if flow.expires_at < self.clock.now() {
            return Err(self.expired_error(&flow, req).await);
        }
        let label = p.display_label();
        let form_error = |reason: String| failed(&label, &reason);
        let outcome: std::result::Result<ProviderClaims, UiText> = if !params.error.is_empty() {
            let mut reason = format!("the provider answered {:?}", params.error);
            if !params.error_description.is_empty() {
                reason.push_str(&format!(" ({})", params.error_description));
            }
            Err(form_error(reason))
        } else if !params.iss.is_empty() && !p.is_multi_tenant() && params.iss.trim_end_matches('/') != p.issuer() {
            Err(form_error(format!("the authorization response names the issuer {:?}", params.iss)))
        } else if params.code.is_empty() {
            Err(form_error("the provider sent no authorization code".into()))
        } else {
            let verifier = rt.get("pkce_verifier").and_then(Value::as_str).unwrap_or_default();
            let nonce = rt.get("nonce").and_then(Value::as_str).unwrap_or_default();
            let redirect_uri = self.oidc_redirect_uri(&p.id);
            self.oidc.exchange_code(&p, &redirect_uri, &params.code, verifier, nonce, self.clock.now()).await.map_err(
                |reason| {
                    tracing::info!(flow_id = %flow.id, provider = %p.id, %reason, "sign-in callback rejected");
                    form_error(reason)
                },
            )
        };
        let intent = rt.get("intent").and_then(Value::as_str).unwrap_or_default().to_string();
        match flow.kind {
            FlowKind::Login => {
                if intent != "login" {
                    return Err(state_error());
                }
                let pc = match outcome {
                    Ok(pc) => pc,
                    Err(m) => {
                        return match self.login_invalid(flow, req, "", m, None).await? {
                            Submitted::Invalid(f) | Submitted::ShowForm(f) => Ok(OidcDone::Invalid(f)),
                            Submitted::Done(d) => Ok(OidcDone::Login(d)),
                        };
                    }
                };
                match self.oidc_login_with(flow, &p, pc, req).await? {
                    Submitted::Done(d) => Ok(OidcDone::Login(d)),
                    Submitted::Invalid(f) | Submitted::ShowForm(f) => Ok(OidcDone::Invalid(f)),
                }
            }
            FlowKind::Registration => {
                if intent != "registration" {
                    return Err(state_error());
                }
                if req.auth.is_some() {
                    return Err(Error::new(
                        ErrorKind::SessionAlreadyAvailable,
                        "A valid session was detected and thus registration is not possible.",
                    ));
                }
                let submitted = rt.get("traits").cloned();
                let pc = match outcome {
                    Ok(pc) => pc,
                    Err(m) => {
                        self.registration_ui(&mut flow, req, submitted.as_ref())?;
                        flow.ui.add_message("", m);
                        self.save_flow(&mut flow).await?;
                        return Ok(OidcDone::Invalid(flow));
                    }
                };
                match self.oidc_register_with(flow, &p, pc, submitted.as_ref(), req).await? {
                    Submitted::Done(d) => Ok(OidcDone::Registration(d)),
                    Submitted::Invalid(f) | Submitted::ShowForm(f) => Ok(OidcDone::Invalid(f)),
                }
            }
            FlowKind::Settings => {
                if intent != "link" {
                    return Err(state_error());
                }
                let a = req.auth.as_ref().ok_or_else(|| {
                    Error::new(ErrorKind::Unauthorized, "A valid Ory Session Cookie or Ory Session Token is missing.")
                })?;
                if flow.identity_id != Some(a.identity.id) {
                    return Err(Error::new(
                        ErrorKind::IdentityMismatch,
                        "The request was initiated by someone else and has been blocked for security reasons. Please go back and try again.",
                    ));
                }
                let change = match outcome {
                    Err(m) => Change::Invalid { errors: vec![(String::new(), m)], echo: None },
                    Ok(_) if !self.privileged(a) => Change::NeedsPrivilege { pending: json!({ "link": p.id }) },
                    Ok(pc) => self.oidc_link_change(a, &p, &pc).await?,
                };
                self.settings_apply(flow, a, req, "oidc", change).await.map(OidcDone::Settings)
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapper_keeps_types_and_omits_absent_claims() {
        let mapper = json!({"traits": {
            "email": "{{ claims.email }}",
            "name": {"first": "{{ claims.given_name }}", "last": "{{ claims.family_name }}"},
            "verified": "{{ claims.email_verified }}",
            "greeting": "Hi {{ claims.given_name }}!",
            "nick": "{{ claims.preferred_username || claims.nickname || \"anonymous\" }}",
            "tenant": "{{ claims.org.id }}",
        }});
        validate_mapper(&mapper).unwrap();
        let claims = json!({"email": "a@example.org", "given_name": "Ada", "email_verified": true, "nickname": "ada", "org": {"id": 7}});
        let m = apply_mapper(&mapper, &claims);
        assert_eq!(
            m.traits,
            json!({"email": "a@example.org", "name": {"first": "Ada"}, "verified": true, "greeting": "Hi Ada!", "nick": "ada", "tenant": 7})
        );
        let none = apply_mapper(&mapper, &json!({}));
        assert_eq!(none.traits, json!({"nick": "anonymous"}));
        assert_eq!(none.metadata_public, Value::Null);
    }

    #[test]
    fn mapper_validation_names_the_problem() {
        assert!(validate_mapper(&json!({"traits": {"a": "{{ claims.a "}})).unwrap_err().contains("unclosed"));
        assert!(validate_mapper(&json!({"traits": {"a": "{{ user.a }}"}})).unwrap_err().contains("traits.a"));
        assert!(validate_mapper(&json!({"trait": {}})).unwrap_err().contains("unknown key"));
        assert!(validate_mapper(&json!({"traits": "x"})).is_err());
    }

    #[test]
    fn overlay_ignores_empty_form_values() {
        let mut base = json!({"email": "a@example.org", "name": {"first": "Ada"}});
        overlay(&mut base, &json!({"email": "", "name": {"first": "", "last": "Lovelace"}, "x": null}));
        assert_eq!(base, json!({"email": "a@example.org", "name": {"first": "Ada", "last": "Lovelace"}}));
    }

    #[test]
    fn presets() {
        let p: OidcProvider =
            serde_json::from_value(json!({"id": "ms", "provider": "microsoft", "client_id": "x"})).unwrap();
        assert_eq!(p.issuer(), "https://login.microsoftonline.com/common/v2.0");
        assert!(p.is_multi_tenant());
        assert_eq!(p.scopes(), vec!["openid", "email", "profile"]);
        let g: OidcProvider =
            serde_json::from_value(json!({"id": "gh", "provider": "github", "client_id": "x"})).unwrap();
        assert_eq!(g.scopes(), vec!["user:email"]);
        assert_eq!(g.display_label(), "GitHub");
    }

    /// A fresh P-256 key as Apple hands it out (`.p8`: PKCS#8 PEM), and its public key.
    fn apple_key() -> (String, Vec<u8>) {
        use base64::Engine as _;
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = ring::rand::SystemRandom::new();
        let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_ref(), &rng).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"));
        (pem, pair.public_key().as_ref().to_vec())
    }

    #[test]
    fn apple_client_secret_is_a_signed_jwt() {
        use base64::Engine as _;
        let (pem, public) = apple_key();
        let p: OidcProvider = serde_json::from_value(json!({
            "id": "apple", "provider": "apple", "client_id": "com.example.web",
            "apple_team_id": "TEAM123456", "apple_private_key_id": "KEY123", "apple_private_key": pem,
        }))
        .unwrap();
        validate_config(
            &serde_json::from_value(json!({"enabled": true, "config": {"providers": [p.clone()]}})).unwrap(),
        )
        .unwrap();
        let jwt = p.client_secret_at(1_800_000_000).unwrap().unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let dec = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap();
        let header: Value = serde_json::from_slice(&dec(parts[0])).unwrap();
        assert_eq!(header, json!({"alg": "ES256", "kid": "KEY123", "typ": "JWT"}));
        let claims: Value = serde_json::from_slice(&dec(parts[1])).unwrap();
        assert_eq!(
            claims,
            json!({"iss": "TEAM123456", "iat": 1_800_000_000, "exp": 1_800_000_300,
                   "aud": "https://appleid.apple.com", "sub": "com.example.web"})
        );
        let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, public);
        key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &dec(parts[2])).expect("a valid ES256 signature");
        // Without the key fields the configured secret is used as is.
        let plain: OidcProvider = serde_json::from_value(
            json!({"id": "g", "provider": "google", "client_id": "x", "client_secret": "s3cret"}),
        )
        .unwrap();
        assert_eq!(plain.client_secret_at(0).unwrap().as_deref(), Some("s3cret"));
    }

    #[test]
    fn apple_key_config_errors_name_the_key() {
        let (pem, _) = apple_key();
        let check = |p: Value| {
            validate_config(&serde_json::from_value(json!({"enabled": true, "config": {"providers": [p]}})).unwrap())
                .unwrap_err()
        };
        let base = json!({"id": "apple", "provider": "apple", "client_id": "c", "apple_team_id": "T",
                          "apple_private_key_id": "K", "apple_private_key": pem});
        let with = |k: &str, v: Value| {
            let mut p = base.clone();
            p[k] = v;
            p
        };
        let without = |k: &str| {
            let mut p = base.clone();
            p.as_object_mut().unwrap().remove(k);
            p
        };
        assert!(check(with("apple_private_key", json!("not a key"))).contains("apple_private_key"));
        let garbage = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----";
        assert!(check(with("apple_private_key", json!(garbage))).contains("P-256"));
        assert!(check(without("apple_team_id")).contains("together"));
        assert!(check(with("client_secret", json!("x"))).contains("client_secret"));
        assert!(check(with("provider", json!("google"))).contains("only applies to the apple provider"));
        assert!(check(with("apple_team_id", json!(" "))).contains("apple_team_id"));
        let yaml = format!(
            "selfservice:\n  methods:\n    oidc:\n      config:\n        providers:\n          - id: a\n            provider: apple\n            client_id: c\n            apple_team_id: T\n            apple_private_key_id: K\n            apple_private_key: |\n{}",
            pem.lines().map(|l| format!("              {l}\n")).collect::<String>()
        );
        let c = crate::config::Config::load(Some(&yaml), vec![]).unwrap();
        let shown = c.redacted_yaml();
        assert!(!shown.contains(pem.lines().nth(1).unwrap()), "the key is redacted in `config show`");
    }

    #[test]
    fn client_secrets_are_redacted() {
        let yaml = "selfservice:\n  methods:\n    oidc:\n      enabled: true\n      config:\n        providers:\n          - id: g\n            provider: google\n            client_id: abc\n            client_secret: topsecretvalue42\n";
        let c = crate::config::Config::load(Some(yaml), vec![]).unwrap();
        assert!(!c.redacted_yaml().contains("topsecretvalue42"));
        assert!(!format!("{c:?}").contains("topsecretvalue42"));
        let bad = "selfservice:\n  methods:\n    oidc:\n      config:\n        providers:\n          - id: g\n            provider: generic\n            client_id: abc\n            mapper: {traits: {email: '{{ claim.email }}'}}\n            issuer_url: https://x.example\n";
        let e = crate::config::Config::load(Some(bad), vec![]).unwrap_err();
        assert!(e.0.contains("selfservice.methods.oidc.config.providers.0.mapper"), "{}", e.0);
    }

    #[test]
    fn config_validation() {
        let cfg = |p: Value| -> OidcMethod {
            serde_json::from_value(json!({"enabled": true, "config": {"providers": [p]}})).unwrap()
        };
        assert!(
            validate_config(&cfg(json!({"id": "a", "provider": "generic", "client_id": "x"})))
                .unwrap_err()
                .contains("issuer_url")
        );
        assert!(
            validate_config(&cfg(json!({"id": "a b", "provider": "google", "client_id": "x"})))
                .unwrap_err()
                .contains(".id")
        );
        assert!(
            validate_config(&cfg(json!({"id": "a", "provider": "yahoo", "client_id": "x"})))
                .unwrap_err()
                .contains("unknown provider")
        );
        validate_config(&cfg(
            json!({"id": "a", "provider": "generic", "client_id": "x", "issuer_url": "https://id.example.org"}),
        ))
        .unwrap();
    }
}
