//! Typed configuration: one YAML file (keys follow Kratos's names), `IDFLOW_*` environment
//! overrides, validated at start with errors that name the offending key.
//!
//! Environment overrides: `IDFLOW_<PATH>` where `<PATH>` is the key path upper-cased with `__`
//! between segments, e.g. `IDFLOW_SERVE__PUBLIC__BASE_URL=https://id.example.org/` or
//! `IDFLOW_SELFSERVICE__FLOWS__SETTINGS__PRIVILEGED_SESSION_MAX_AGE=15m`. Values are parsed as
//! YAML scalars (so `true`, `8`, `[a, b]` work). `IDFLOW_DSN` sets `dsn`.

pub mod oidc;

use crate::password::{HashersConfig, PolicyConfig};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// A duration written like Go/Kratos does: `1h`, `30m`, `1h30m`, `10s`, `500ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl Dur {
    pub fn secs(s: u64) -> Self {
        Dur(Duration::from_secs(s))
    }
    pub fn as_time(self) -> time::Duration {
        time::Duration::microseconds(i64::try_from(self.0.as_micros()).unwrap_or(i64::MAX))
    }
}

/// Parse `1h30m`, `15m`, `10s`, `250ms`, `2d` (days accepted as an extension).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("invalid duration {s:?}: expected a number"));
        }
        let n: u128 = rest[..digits].parse().map_err(|_| format!("invalid duration {s:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ms: u128 = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(format!("invalid duration {s:?}: unknown unit {unit:?} (use ms, s, m, h, d)")),
        };
        total = total.saturating_add(n.saturating_mul(ms));
    }
    let ms = u64::try_from(total).map_err(|_| format!("duration {s:?} too large"))?;
    Ok(Duration::from_millis(ms))
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        match v {
            Value::String(s) => parse_duration(&s).map(Dur).map_err(serde::de::Error::custom),
            Value::Number(n) => n.as_u64().map(|s| Dur(Duration::from_secs(s))).ok_or_else(|| {
                serde::de::Error::custom("duration must be a positive number of seconds or a string like 1h")
            }),
            _ => Err(serde::de::Error::custom("duration must be a string like \"1h\" or \"30m\"")),
        }
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let secs = self.0.as_secs();
        let txt = if self.0.subsec_millis() != 0 {
            format!("{}ms", self.0.as_millis())
        } else if secs.is_multiple_of(3600) && secs > 0 {
            format!("{}h", secs / 3600)
        } else if secs.is_multiple_of(60) && secs > 0 {
            format!("{}m", secs / 60)
        } else {
            format!("{secs}s")
        };
        s.serialize_str(&txt)
    }
}

/// A secret string: never printed by `Debug`, redacted by `config show`.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(**redacted**)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RequiredAal {
    Aal1,
    #[default]
    HighestAvailable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SameSite {
    #[default]
    Lax,
    Strict,
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Database URL: `sqlite://path?mode=rwc` or `postgres://…`. Default: `sqlite://idflow.db?mode=rwc`.
    pub dsn: Option<String>,
    /// Development mode: plain-http cookies, detailed errors.
    pub dev: bool,
    pub serve: Serve,
    pub session: SessionConfig,
    pub cookies: CookiesConfig,
    pub identity: IdentityConfig,
    pub secrets: Secrets,
    pub hashers: HashersConfig,
    pub selfservice: SelfService,
    pub log: LogConfig,
    pub database: DatabaseConfig,
    pub limits: Limits,
    pub courier: CourierConfig,
    pub cleanup: CleanupConfig,
    pub feature_flags: FeatureFlags,
    pub activity: ActivityConfig,
}

/// `activity.*`: the per-identity activity log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActivityConfig {
    /// How long entries are kept; the cleanup worker deletes older ones.
    pub retention: Dur,
}

impl Default for ActivityConfig {
    fn default() -> Self {
        ActivityConfig { retention: Dur::secs(90 * 86_400) }
    }
}

/// The cleanup worker (`cleanup.*`): deletes expired flows, sessions, stored errors and old
/// rate-limit counters in bounded batches (one node at a time on PostgreSQL).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CleanupConfig {
    pub enabled: bool,
    /// Time between two runs (the first runs at start).
    pub interval: Dur,
    /// Rows deleted per table per statement.
    pub batch_size: u32,
    /// How long expired flows and sessions are kept (an expired flow still answers with its
    /// replacement; expired sessions stay listed) before they are deleted.
    pub keep_expired: Dur,
    /// How long a stored error (`/self-service/errors?id=`) stays readable.
    pub error_lifespan: Dur,
}

impl Default for CleanupConfig {
    fn default() -> Self {
        CleanupConfig {
            enabled: true,
            interval: Dur::secs(300),
            batch_size: 1000,
            keep_expired: Dur::secs(3600),
            error_lifespan: Dur::secs(3600),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Listener {
    /// Externally visible base URL (used in every generated link).
    pub base_url: Option<String>,
    /// Interface to listen on (default 127.0.0.1).
    pub host: Option<String>,
    /// Port (default 4433 public, 4434 admin).
    pub port: Option<u16>,
}

impl Listener {
    /// `host:port` with the listener's defaults applied.
    pub fn addr(&self, default_port: u16) -> String {
        format!("{}:{}", self.host.as_deref().unwrap_or("127.0.0.1"), self.port.unwrap_or(default_port))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Serve {
    pub public: Listener,
    pub admin: Listener,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionCookie {
    pub name: String,
    pub persistent: bool,
    pub same_site: Option<SameSite>,
    pub domain: Option<String>,
    pub path: Option<String>,
}

impl Default for SessionCookie {
    fn default() -> Self {
        SessionCookie { name: "ory_kratos_session".into(), persistent: true, same_site: None, domain: None, path: None }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Whoami {
    pub required_aal: RequiredAal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    pub lifespan: Dur,
    pub cookie: SessionCookie,
    pub whoami: Whoami,
    /// Prefix of session tokens (`idf_st_` by default).
    pub token_prefix: String,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            lifespan: Dur::secs(24 * 3600),
            cookie: SessionCookie::default(),
            whoami: Whoami::default(),
            token_prefix: "idf_st_".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CookiesConfig {
    pub domain: Option<String>,
    pub path: Option<String>,
    pub same_site: SameSite,
    /// Name the session and CSRF cookies `__Host-…` (the browser then refuses them from any
    /// other host or path). Applies only with an `https://` base URL outside dev mode, no
    /// cookie domain and the root path; off by default because clients (Ory SDKs) look for
    /// the plain session cookie name.
    pub host_prefix: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRef {
    pub id: String,
    /// `file://…`, `base64://…` (or a plain path).
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    pub default_schema_id: String,
    pub schemas: Vec<SchemaRef>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig { default_schema_id: "default".into(), schemas: vec![] }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Secrets {
    /// Signs session cookies. First entry signs, all verify (rotation).
    pub cookie: Vec<Secret>,
    /// Encrypts secrets at rest (reserved for credential encryption).
    pub cipher: Vec<Secret>,
    pub default: Vec<Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: "info".into(), format: "text".into() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout: Dur,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig { max_connections: 16, min_connections: 0, acquire_timeout: Dur::secs(5) }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Maximum request body size in bytes.
    pub max_body_bytes: usize,
    /// Request timeout.
    pub request_timeout: Dur,
    /// Maximum JSON nesting depth of request bodies.
    pub max_json_depth: usize,
    /// Attempts at TOTP / recovery codes per identity per `second_factor_window` (429 above).
    pub second_factor_attempts: i64,
    pub second_factor_window: Dur,
    /// Password login attempts per account identifier per `login_window` (429 above).
    pub login_attempts: i64,
    pub login_window: Dur,
    /// Time a client has to send the headers of a request, from its first byte: guards against
    /// slow-header (slowloris) clients.
    pub header_read_timeout: Dur,
    /// How long a connection may wait for its next request (a keep-alive connection after a
    /// response, a new connection before its first byte) before it is closed.
    pub idle_timeout: Dur,
    /// Submits per minute per client IP address (the TCP peer, never `X-Forwarded-For`); 0 = off.
    pub per_ip: SubmitRates,
    /// Submits per minute per identity (login: the submitted identifier or the session's
    /// identity; settings: the session's identity); 0 = off.
    pub per_identity: SubmitRates,
}

/// Requests per minute for each self-service submit (`limits.per_ip.*`, `limits.per_identity.*`).
/// Counted in the database, so the limits hold across nodes. 0 turns a limit off.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubmitRates {
    pub login: i64,
    pub registration: i64,
    pub settings: i64,
    /// Recovery submits (per identity: per submitted mail address, which bounds the mail an
    /// address receives).
    pub recovery: i64,
    /// Verification submits (per identity: per submitted mail address).
    pub verification: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024,
            request_timeout: Dur::secs(30),
            max_json_depth: 32,
            second_factor_attempts: 10,
            second_factor_window: Dur::secs(300),
            login_attempts: 100,
            login_window: Dur::secs(3600),
            header_read_timeout: Dur::secs(10),
            // Longer than clients and proxies keep idle connections (reqwest 90 s, nginx
            // upstream 60 s), so they close first and never reuse one idflow is closing.
            idle_timeout: Dur::secs(120),
            // On by default for the unauthenticated, password-hashing submits: one client
            // gets 5 hashes a second at most, a fraction of what the hashing pool does on
            // one core. Behind a reverse proxy every client shares its address: raise or
            // turn off (0) and limit at the proxy. Recovery and verification submits send mail.
            per_ip: SubmitRates { login: 300, registration: 300, settings: 0, recovery: 60, verification: 60 },
            per_identity: SubmitRates::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SelfService {
    pub default_browser_return_url: Option<String>,
    pub allowed_return_urls: Vec<String>,
    pub methods: Methods,
    pub flows: Flows,
    pub notifications: Notifications,
}

/// `selfservice.notifications.*`: which security notifications are mailed to the addresses
/// an account had before a change (all on by default).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Notifications {
    /// The password was changed (settings, or after a recovery).
    pub password_changed: bool,
    /// A profile change altered a login identifier or an email address.
    pub identifier_changed: bool,
    /// A trait the identity schema marks `notify: true` (not an identifier) was changed.
    pub profile_changed: bool,
    /// A second factor was added (TOTP, security key, passkey, recovery codes).
    pub second_factor_added: bool,
    /// A second factor was removed (or recovery codes disabled).
    pub second_factor_removed: bool,
    pub social_linked: bool,
    pub social_unlinked: bool,
    /// All other sessions were signed out by the user (or by a recovery).
    pub sessions_revoked: bool,
}

impl Default for Notifications {
    fn default() -> Self {
        Notifications {
            password_changed: true,
            identifier_changed: true,
            profile_changed: true,
            second_factor_added: true,
            second_factor_removed: true,
            social_linked: true,
            social_unlinked: true,
            sessions_revoked: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Toggle {
    pub enabled: bool,
}

impl Default for Toggle {
    fn default() -> Self {
        Toggle { enabled: true }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordMethod {
    pub enabled: bool,
    pub config: PolicyConfig,
}

impl Default for PasswordMethod {
    fn default() -> Self {
        PasswordMethod { enabled: true, config: PolicyConfig::default() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TotpConfig {
    /// Issuer shown in authenticator apps; default: the public base URL's host.
    pub issuer: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TotpMethod {
    pub enabled: bool,
    pub config: TotpConfig,
}

impl Default for TotpMethod {
    fn default() -> Self {
        TotpMethod { enabled: true, config: TotpConfig::default() }
    }
}

/// The WebAuthn relying party (`selfservice.methods.{webauthn,passkey}.config.rp`).
///
/// Unset values are derived from `serve.public.base_url`: `id` is its host, `origins` its
/// origin, `display_name` the id. A base URL whose host is an IP address gives no usable relying
/// party (browsers refuse IP addresses as RP IDs): the method then offers no nodes until `rp.id`
/// and `rp.origins` are configured.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RelyingParty {
    /// `rp.id`: a registrable domain that every origin is (a subdomain of), e.g. `example.org`.
    pub id: Option<String>,
    /// `rp.display_name`: the name authenticators show; default: the RP ID.
    pub display_name: Option<String>,
    /// `rp.origins`: the origins allowed to use the credentials, e.g. `https://id.example.org`.
    pub origins: Vec<String>,
    /// `rp.origin`: a single allowed origin (older Kratos key), added to `origins`.
    pub origin: Option<String>,
}

/// A relying party with every default applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRp {
    pub id: String,
    pub display_name: String,
    pub origins: Vec<url::Url>,
}

impl RelyingParty {
    /// Whether any key was set explicitly (then it must be valid at start).
    pub fn is_configured(&self) -> bool {
        self.id.is_some() || !self.origins.is_empty() || self.origin.is_some()
    }

    /// Apply the defaults from the public base URL and check that every origin belongs to the
    /// RP ID. The error names the problem (not the key).
    pub fn resolve(&self, public_base: &str) -> Result<ResolvedRp, String> {
        let mut origins: Vec<url::Url> = vec![];
        for o in self.origins.iter().chain(self.origin.iter()) {
            origins.push(url::Url::parse(o).map_err(|e| format!("origin {o:?} is not a URL: {e}"))?);
        }
        if origins.is_empty() {
            origins.push(url::Url::parse(public_base).map_err(|e| format!("public base URL is not a URL: {e}"))?);
        }
        let id = match &self.id {
            Some(id) if !id.trim().is_empty() => id.trim().to_ascii_lowercase(),
            _ => origins[0].host_str().unwrap_or_default().to_ascii_lowercase(),
        };
        if id.is_empty() || id.parse::<std::net::IpAddr>().is_ok() || id.starts_with('[') {
            return Err(format!("the RP ID {id:?} is not a domain name (WebAuthn does not accept IP addresses)"));
        }
        for o in &mut origins {
            let host = o.domain().unwrap_or_default().to_ascii_lowercase();
            if host != id && !host.ends_with(&format!(".{id}")) {
                return Err(format!("origin {o} is not on the RP ID {id:?} or one of its subdomains"));
            }
            o.set_path("");
            o.set_query(None);
            o.set_fragment(None);
        }
        let display_name = self.display_name.clone().filter(|d| !d.trim().is_empty()).unwrap_or_else(|| id.clone());
        Ok(ResolvedRp { id, display_name, origins })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct WebauthnConfig {
    /// `selfservice.methods.webauthn.config.passwordless`: security keys are a first factor
    /// (session method at aal1, login with identifier + key) instead of a second factor (aal2).
    pub passwordless: bool,
    /// `selfservice.methods.webauthn.config.rp`: the relying party (see [`RelyingParty`]).
    pub rp: RelyingParty,
}

/// `selfservice.methods.webauthn`: security keys (browser flows only). On by default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebauthnMethod {
    /// `selfservice.methods.webauthn.enabled` (default `true`).
    pub enabled: bool,
    pub config: WebauthnConfig,
}

impl Default for WebauthnMethod {
    fn default() -> Self {
        WebauthnMethod { enabled: true, config: WebauthnConfig::default() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PasskeyConfig {
    /// `selfservice.methods.passkey.config.rp`: the relying party (see [`RelyingParty`]).
    pub rp: RelyingParty,
}

/// `selfservice.methods.passkey`: passkeys (passwordless first factor). On by default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasskeyMethod {
    /// `selfservice.methods.passkey.enabled` (default `true`).
    pub enabled: bool,
    pub config: PasskeyConfig,
}

impl Default for PasskeyMethod {
    fn default() -> Self {
        PasskeyMethod { enabled: true, config: PasskeyConfig::default() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Methods {
    pub profile: Toggle,
    pub password: PasswordMethod,
    pub totp: TotpMethod,
    pub lookup_secret: Toggle,
    pub webauthn: WebauthnMethod,
    pub passkey: PasskeyMethod,
    pub oidc: OidcMethod,
    pub code: CodeMethod,
    pub delete_account: DeleteAccountMethod,
}

/// `selfservice.methods.delete_account.config`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeleteAccountConfig {
    /// How long after the request the account is deleted for real (a sign-in in between can
    /// cancel). Zero deletes at the next run of the deletion worker.
    pub grace_period: Dur,
}

impl Default for DeleteAccountConfig {
    fn default() -> Self {
        DeleteAccountConfig { grace_period: Dur::secs(14 * 24 * 3600) }
    }
}

/// `selfservice.methods.delete_account`: self-service account deletion (beyond Kratos).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeleteAccountMethod {
    pub enabled: bool,
    pub config: DeleteAccountConfig,
}

impl Default for DeleteAccountMethod {
    fn default() -> Self {
        DeleteAccountMethod { enabled: true, config: DeleteAccountConfig::default() }
    }
}

/// `selfservice.methods.code.config`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodeConfig {
    /// How long a mailed code is valid.
    pub lifespan: Dur,
    /// Code submits allowed per flow; then the flow is refused and replaced.
    pub max_submissions: u32,
}

impl Default for CodeConfig {
    fn default() -> Self {
        CodeConfig { lifespan: Dur::secs(3600), max_submissions: 5 }
    }
}

/// `selfservice.methods.code`: one-time codes sent by mail (recovery). `passwordless_enabled`
/// and `mfa_enabled` are accepted for Kratos compatibility; sign-in with a code is not offered.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CodeMethod {
    pub enabled: bool,
    pub passwordless_enabled: bool,
    pub mfa_enabled: bool,
    pub config: CodeConfig,
}

impl Default for CodeMethod {
    fn default() -> Self {
        CodeMethod { enabled: true, passwordless_enabled: false, mfa_enabled: false, config: CodeConfig::default() }
    }
}

pub use oidc::{OidcConfig, OidcMethod, OidcProvider};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    /// `session`, `revoke_active_sessions`, `web_hook`.
    pub hook: String,
    #[serde(default)]
    pub config: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AfterMethod {
    pub default_browser_return_url: Option<String>,
    pub hooks: Option<Vec<Hook>>,
}

/// `selfservice.flows.<kind>.after`: the flow's return URL and hooks, and per method
/// (`after.<method id>`) their overrides. Unknown keys are refused (they must be method ids).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct After {
    pub default_browser_return_url: Option<String>,
    pub hooks: Vec<Hook>,
    #[serde(flatten)]
    pub methods: std::collections::BTreeMap<crate::model::MethodId, AfterMethod>,
}

impl After {
    pub fn method(&self, m: crate::model::MethodId) -> Option<&AfterMethod> {
        self.methods.get(&m)
    }
    /// The settings of `after.<m>`, created empty when absent.
    pub fn method_mut(&mut self, m: crate::model::MethodId) -> &mut AfterMethod {
        self.methods.entry(m).or_default()
    }
    /// The hooks for a method: its own list when set, else the global list.
    pub fn hooks_for(&self, m: crate::model::MethodId) -> &[Hook] {
        match self.method(m).and_then(|a| a.hooks.as_ref()) {
            Some(h) => h,
            None => &self.hooks,
        }
    }
    pub fn has_hook(&self, m: crate::model::MethodId, name: &str) -> bool {
        self.hooks_for(m).iter().any(|h| h.hook == name)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Before {
    pub hooks: Vec<Hook>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SettingsFlowConfig {
    pub ui_url: Option<String>,
    pub lifespan: Dur,
    pub privileged_session_max_age: Dur,
    pub required_aal: RequiredAal,
    pub after: After,
    pub before: Before,
}

impl Default for SettingsFlowConfig {
    fn default() -> Self {
        SettingsFlowConfig {
            ui_url: None,
            lifespan: Dur::secs(3600),
            privileged_session_max_age: Dur::secs(3600),
            required_aal: RequiredAal::HighestAvailable,
            after: After {
                methods: [(
                    crate::model::MethodId::Password,
                    AfterMethod {
                        default_browser_return_url: None,
                        hooks: Some(vec![Hook { hook: "revoke_active_sessions".into(), config: None }]),
                    },
                )]
                .into(),
                ..After::default()
            },
            before: Before::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginFlowConfig {
    pub ui_url: Option<String>,
    pub lifespan: Dur,
    pub after: After,
}

impl Default for LoginFlowConfig {
    fn default() -> Self {
        LoginFlowConfig { ui_url: None, lifespan: Dur::secs(3600), after: After::default() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationFlowConfig {
    pub enabled: bool,
    pub ui_url: Option<String>,
    pub lifespan: Dur,
    pub after: After,
}

impl Default for RegistrationFlowConfig {
    fn default() -> Self {
        RegistrationFlowConfig {
            enabled: true,
            ui_url: None,
            lifespan: Dur::secs(3600),
            after: After {
                methods: [crate::model::MethodId::Password, crate::model::MethodId::Oidc]
                    .into_iter()
                    .map(|m| {
                        let hooks = Some(vec![Hook { hook: "session".into(), config: None }]);
                        (m, AfterMethod { default_browser_return_url: None, hooks })
                    })
                    .collect(),
                ..After::default()
            },
        }
    }
}

/// `selfservice.flows.recovery`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecoveryFlowConfig {
    pub enabled: bool,
    pub ui_url: Option<String>,
    pub lifespan: Dur,
    /// The recovery method: `code` (the only one offered).
    #[serde(rename = "use")]
    pub use_method: String,
    /// Mail addresses without an account get a "someone tried to recover" notice.
    pub notify_unknown_recipients: bool,
    pub before: Before,
    /// Hooks after a recovery: `revoke_active_sessions` (default) and `web_hook`.
    pub after: After,
}

impl Default for RecoveryFlowConfig {
    fn default() -> Self {
        RecoveryFlowConfig {
            enabled: false,
            ui_url: None,
            lifespan: Dur::secs(3600),
            use_method: "code".into(),
            notify_unknown_recipients: false,
            before: Before::default(),
            after: After {
                hooks: vec![Hook { hook: "revoke_active_sessions".into(), config: None }],
                ..After::default()
            },
        }
    }
}

/// `selfservice.flows.verification`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerificationFlowConfig {
    pub enabled: bool,
    pub ui_url: Option<String>,
    pub lifespan: Dur,
    /// The verification method: `code` (the only one offered).
    #[serde(rename = "use")]
    pub use_method: String,
    /// Mail addresses without an account get a notice instead of a code.
    pub notify_unknown_recipients: bool,
    pub before: Before,
    /// Hooks after a verification: `web_hook`.
    pub after: After,
}

impl Default for VerificationFlowConfig {
    fn default() -> Self {
        VerificationFlowConfig {
            enabled: false,
            ui_url: None,
            lifespan: Dur::secs(3600),
            use_method: "code".into(),
            notify_unknown_recipients: false,
            before: Before::default(),
            after: After::default(),
        }
    }
}

/// `feature_flags` (Kratos's names).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureFlags {
    /// Finished recovery flows answer 200 with `continue_with` instead of a redirect (browser
    /// flows; API flows always do).
    pub use_continue_with_transitions: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct LogoutAfter {
    pub default_browser_return_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct LogoutFlowConfig {
    pub after: LogoutAfter,
}

/// `courier.*`: how queued mail is delivered (keys follow Kratos's).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CourierConfig {
    /// Only `smtp` is supported.
    pub delivery_strategy: String,
    pub smtp: SmtpConfig,
    /// Failed attempts retried after the first one; then the message is `abandoned`.
    pub message_retries: u32,
    pub worker: CourierWorker,
    /// Folder with Kratos-style template files (`recovery_code/valid/email.subject.gotmpl`, …).
    pub template_override_path: Option<String>,
    /// Per-type templates: `templates.<type>.{valid,invalid}.email.{subject,body.html,body.plaintext}`;
    /// each value is a `base64://…` or `file://…` URL, or the template text itself.
    pub templates: std::collections::BTreeMap<String, CourierTemplateVariants>,
}

impl Default for CourierConfig {
    fn default() -> Self {
        CourierConfig {
            delivery_strategy: "smtp".into(),
            smtp: SmtpConfig::default(),
            message_retries: 5,
            worker: CourierWorker::default(),
            template_override_path: None,
            templates: Default::default(),
        }
    }
}

/// `courier.smtp.*`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    /// `smtp://user:pass@host:port/` (STARTTLS required unless `?disable_starttls=true`) or
    /// `smtps://…` (implicit TLS); `?skip_ssl_verify=true`, `?server_name=…`. Unset: messages
    /// are queued but not sent.
    pub connection_uri: Option<Secret>,
    pub from_address: String,
    pub from_name: Option<String>,
    /// Extra headers on every message.
    pub headers: std::collections::BTreeMap<String, String>,
    /// The name sent with EHLO (default: this host's name).
    pub local_name: Option<String>,
    /// Time allowed for one SMTP conversation (connect to end of data).
    pub timeout: Dur,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            connection_uri: None,
            from_address: "no-reply@idflow.local".into(),
            from_name: None,
            headers: Default::default(),
            local_name: None,
            timeout: Dur::secs(30),
        }
    }
}

/// `courier.worker.*`: the sending loop in `serve` and `courier watch`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CourierWorker {
    /// Run the worker inside `idflow serve` (turn off to send from `idflow courier watch` only).
    pub enabled: bool,
    /// Messages claimed per round.
    pub pull_count: u32,
    /// Pause when the queue is empty.
    pub pull_wait: Dur,
    /// Wait before the first retry; doubles per failed attempt, at most `retry_backoff_max`.
    pub retry_backoff: Dur,
    pub retry_backoff_max: Dur,
    /// How long a claim holds: a message claimed by a node that stopped is retried after it.
    /// Must be longer than `courier.smtp.timeout`.
    pub lease: Dur,
}

impl Default for CourierWorker {
    fn default() -> Self {
        CourierWorker {
            enabled: true,
            pull_count: 10,
            pull_wait: Dur::secs(1),
            retry_backoff: Dur::secs(10),
            retry_backoff_max: Dur::secs(3600),
            lease: Dur::secs(300),
        }
    }
}

/// `courier.templates.<type>`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CourierTemplateVariants {
    pub valid: Option<CourierTemplateChannels>,
    pub invalid: Option<CourierTemplateChannels>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CourierTemplateChannels {
    pub email: Option<EmailTemplateConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EmailTemplateConfig {
    pub subject: Option<String>,
    pub body: EmailBodyConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EmailBodyConfig {
    pub html: Option<String>,
    pub plaintext: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct UiUrl {
    pub ui_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Flows {
    pub settings: SettingsFlowConfig,
    pub login: LoginFlowConfig,
    pub registration: RegistrationFlowConfig,
    pub recovery: RecoveryFlowConfig,
    pub verification: VerificationFlowConfig,
    pub logout: LogoutFlowConfig,
    pub error: UiUrl,
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "dsn",
    "dev",
    "serve",
    "session",
    "cookies",
    "identity",
    "secrets",
    "hashers",
    "selfservice",
    "log",
    "database",
    "limits",
    "courier",
    "cleanup",
    "feature_flags",
    "activity",
];

/// Why a configuration could not be loaded. The message names the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Load from optional YAML text plus `IDFLOW_*` variables from `env`.
    pub fn load(yaml: Option<&str>, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let mut root: Value = match yaml {
            Some(text) if !text.trim().is_empty() => {
                serde_yaml_ng::from_str(text).map_err(|e| ConfigError(format!("config file is not valid YAML: {e}")))?
            }
            _ => Value::Object(Default::default()),
        };
        if root.is_null() {
            root = Value::Object(Default::default());
        }
        if !root.is_object() {
            return Err(ConfigError("config file must be a YAML mapping at the top level".into()));
        }
        let mut env: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k.starts_with("IDFLOW_")).collect();
        env.sort();
        for (k, v) in env {
            let path: Vec<String> = k["IDFLOW_".len()..].split("__").map(|s| s.to_ascii_lowercase()).collect();
            // Only keys of the configuration: other IDFLOW_* variables (IDFLOW_CONFIG, IDFLOW_LOG,
            // test variables) are not configuration. `IDFLOW_LOG` is the log filter, not the
            // `log` section, although its name looks like one.
            if k == "IDFLOW_LOG" || path.iter().any(String::is_empty) || !TOP_LEVEL_KEYS.contains(&path[0].as_str()) {
                continue;
            }
            let parsed: Value = serde_yaml_ng::from_str(&v).unwrap_or(Value::String(v.clone()));
            let parsed = match parsed {
                Value::Null => Value::String(v),
                p => p,
            };
            set_path(&mut root, &path, parsed);
        }
        let cfg: Config = serde_path_to_error::deserialize(root).map_err(|e| {
            let path = e.path().to_string();
            ConfigError(format!("invalid configuration at key `{path}`: {}", e.inner()))
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let check_url = |key: &str, v: &Option<String>| -> Result<(), ConfigError> {
            if let Some(u) = v {
                url::Url::parse(u).map_err(|e| ConfigError(format!("invalid configuration at key `{key}`: {e}")))?;
            }
            Ok(())
        };
        check_url("serve.public.base_url", &self.serve.public.base_url)?;
        check_url("serve.admin.base_url", &self.serve.admin.base_url)?;
        check_url("selfservice.default_browser_return_url", &self.selfservice.default_browser_return_url)?;
        check_url("selfservice.flows.settings.ui_url", &self.selfservice.flows.settings.ui_url)?;
        check_url("selfservice.flows.login.ui_url", &self.selfservice.flows.login.ui_url)?;
        check_url("selfservice.flows.registration.ui_url", &self.selfservice.flows.registration.ui_url)?;
        check_url("selfservice.flows.error.ui_url", &self.selfservice.flows.error.ui_url)?;
        for (i, u) in self.selfservice.allowed_return_urls.iter().enumerate() {
            url::Url::parse(u).map_err(|e| {
                ConfigError(format!("invalid configuration at key `selfservice.allowed_return_urls.{i}`: {e}"))
            })?;
        }
        if self.activity.retention.0.is_zero() {
            return Err(ConfigError(
                "invalid configuration at key `activity.retention`: must be longer than zero".into(),
            ));
        }
        let p = &self.selfservice.methods.password.config;
        if p.min_password_length < 6 {
            return Err(ConfigError(
                "invalid configuration at key `selfservice.methods.password.config.min_password_length`: must be at least 6".into(),
            ));
        }
        if p.max_password_length < p.min_password_length {
            return Err(ConfigError(
                "invalid configuration at key `selfservice.methods.password.config.max_password_length`: must be >= min_password_length".into(),
            ));
        }
        self.hashers.validate().map_err(ConfigError)?;
        self.selfservice.methods.oidc.validate().map_err(ConfigError)?;
        let m = &self.selfservice.methods;
        for (key, enabled, rp) in [
            ("selfservice.methods.webauthn.config.rp", m.webauthn.enabled, &m.webauthn.config.rp),
            ("selfservice.methods.passkey.config.rp", m.passkey.enabled, &m.passkey.config.rp),
        ] {
            // Derived relying parties may be unusable (an IP base URL): the method is then
            // simply not offered. Configured ones must be right.
            if enabled && rp.is_configured() {
                rp.resolve(&self.public_base())
                    .map_err(|e| ConfigError(format!("invalid configuration at key `{key}`: {e}")))?;
            }
        }
        if self.cleanup.interval.0.is_zero() {
            return Err(ConfigError("invalid configuration at key `cleanup.interval`: must be more than 0".into()));
        }
        if self.cleanup.batch_size == 0 {
            return Err(ConfigError("invalid configuration at key `cleanup.batch_size`: must be more than 0".into()));
        }
        if self.limits.header_read_timeout.0.is_zero() {
            return Err(ConfigError(
                "invalid configuration at key `limits.header_read_timeout`: must be more than 0".into(),
            ));
        }
        if self.limits.idle_timeout.0 < self.limits.header_read_timeout.0 {
            return Err(ConfigError(
                "invalid configuration at key `limits.idle_timeout`: must be at least `limits.header_read_timeout`"
                    .into(),
            ));
        }
        if self.limits.max_body_bytes < 1024 {
            return Err(ConfigError(
                "invalid configuration at key `limits.max_body_bytes`: must be at least 1024".into(),
            ));
        }
        let flows = &self.selfservice.flows;
        for (key, after, allowed) in [
            ("selfservice.flows.settings.after", &flows.settings.after, &["revoke_active_sessions", "web_hook"][..]),
            (
                "selfservice.flows.login.after",
                &flows.login.after,
                &["revoke_active_sessions", "web_hook", "require_verified_address"][..],
            ),
            (
                "selfservice.flows.registration.after",
                &flows.registration.after,
                &["session", "web_hook", "show_verification_ui"][..],
            ),
            ("selfservice.flows.recovery.after", &flows.recovery.after, &["revoke_active_sessions", "web_hook"][..]),
            ("selfservice.flows.verification.after", &flows.verification.after, &["web_hook"][..]),
        ] {
            let lists = std::iter::once((String::new(), Some(&after.hooks)))
                .chain(after.methods.iter().map(|(m, a)| (format!(".{m}"), a.hooks.as_ref())));
            for (m, list) in lists {
                for h in list.into_iter().flatten() {
                    if !allowed.contains(&h.hook.as_str()) {
                        return Err(ConfigError(format!(
                            "invalid configuration at key `{key}{m}.hooks`: unknown hook {:?} (known here: {})",
                            h.hook,
                            allowed.join(", ")
                        )));
                    }
                    if h.hook == "web_hook" {
                        let url = h.config.as_ref().and_then(|c| c.get("url")).and_then(Value::as_str);
                        if url.is_none_or(|u| url::Url::parse(u).is_err()) {
                            return Err(ConfigError(format!(
                                "invalid configuration at key `{key}{m}.hooks`: web_hook needs config.url (an absolute URL)"
                            )));
                        }
                    }
                }
            }
        }
        for (kind, used) in [
            ("recovery", &self.selfservice.flows.recovery.use_method),
            ("verification", &self.selfservice.flows.verification.use_method),
        ] {
            if used != "code" {
                return Err(ConfigError(format!(
                    "invalid configuration at key `selfservice.flows.{kind}.use`: {used:?} is not supported (only \"code\": the legacy \"link\" method is not offered; a mailed code is what Kratos recommends)"
                )));
            }
        }
        self.validate_courier()?;
        Ok(())
    }

    fn validate_courier(&self) -> Result<(), ConfigError> {
        let c = &self.courier;
        let bad = |key: &str, why: String| ConfigError(format!("invalid configuration at key `courier.{key}`: {why}"));
        if c.delivery_strategy != "smtp" {
            return Err(bad("delivery_strategy", format!("{:?} is not supported (only smtp)", c.delivery_strategy)));
        }
        if let Some(uri) = &c.smtp.connection_uri {
            crate::courier::SmtpUri::parse(&uri.0).map_err(|e| bad("smtp.connection_uri", e))?;
        }
        if !c.smtp.from_address.contains('@') || c.smtp.from_address.trim() != c.smtp.from_address {
            return Err(bad("smtp.from_address", "must be an email address".into()));
        }
        for (name, value) in &c.smtp.headers {
            let ok_name = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
            if !ok_name || value.contains(['\r', '\n']) {
                return Err(bad(&format!("smtp.headers.{name}"), "not a valid mail header".into()));
            }
        }
        if c.worker.pull_count == 0 {
            return Err(bad("worker.pull_count", "must be at least 1".into()));
        }
        if c.worker.pull_wait.0.is_zero() || c.worker.retry_backoff.0.is_zero() {
            return Err(bad("worker.pull_wait", "pull_wait and retry_backoff must be more than 0".into()));
        }
        if c.worker.lease.0 <= c.smtp.timeout.0 {
            return Err(bad("worker.lease", "must be longer than courier.smtp.timeout".into()));
        }
        for name in c.templates.keys() {
            if crate::courier::TemplateType::family_known(name).is_none() {
                return Err(bad(&format!("templates.{name}"), "unknown template type".into()));
            }
        }
        Ok(())
    }

    /// The public base URL with a trailing slash removed. Without `serve.public.base_url` it is
    /// `http://localhost:<port>` while `serve.public.host` is unset (the listener binds loopback;
    /// a host name, unlike an IP address, is a valid WebAuthn relying party id, so security keys
    /// and passkeys work out of the box), else `http://<host>:<port>`.
    pub fn public_base(&self) -> String {
        let b = self.serve.public.base_url.clone().unwrap_or_else(|| match self.serve.public.host {
            None => format!("http://localhost:{}/", self.serve.public.port.unwrap_or(4433)),
            Some(_) => format!("http://{}/", self.serve.public.addr(4433)),
        });
        b.trim_end_matches('/').to_string()
    }

    pub fn admin_base(&self) -> String {
        let b = self.serve.admin.base_url.clone().unwrap_or_else(|| format!("http://{}/", self.serve.admin.addr(4434)));
        b.trim_end_matches('/').to_string()
    }

    /// The effective config as YAML with every secret redacted.
    pub fn redacted_yaml(&self) -> String {
        let mut c = self.clone();
        let red = |v: &mut Vec<Secret>| {
            for s in v.iter_mut() {
                *s = Secret("**redacted**".into());
            }
        };
        red(&mut c.secrets.cookie);
        red(&mut c.secrets.cipher);
        red(&mut c.secrets.default);
        for p in c.selfservice.methods.oidc.config.providers.iter_mut() {
            if p.client_secret.is_some() {
                p.client_secret = Some(Secret("**redacted**".into()));
            }
            if p.apple_private_key.is_some() {
                p.apple_private_key = Some(Secret("**redacted**".into()));
            }
        }
        if let Some(d) = &c.dsn {
            c.dsn = Some(redact_dsn(d));
        }
        if let Some(u) = &c.courier.smtp.connection_uri {
            c.courier.smtp.connection_uri = Some(Secret(redact_dsn(&u.0)));
        }
        serde_yaml_ng::to_string(&c).unwrap_or_else(|e| format!("# could not render config: {e}\n"))
    }
}

/// Remove a password from a database URL.
pub fn redact_dsn(dsn: &str) -> String {
    match url::Url::parse(dsn) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("**redacted**"));
            u.to_string()
        }
        _ => dsn.to_string(),
    }
}

fn set_path(root: &mut Value, path: &[String], v: Value) {
    let Some((last, init)) = path.split_last() else { return };
    let mut cur = root;
    for seg in init {
        if !cur.is_object() {
            *cur = Value::Object(Default::default());
        }
        let Value::Object(m) = cur else { return };
        cur = m.entry(seg.clone()).or_insert_with(|| Value::Object(Default::default()));
    }
    if !cur.is_object() {
        *cur = Value::Object(Default::default());
    }
    if let Value::Object(m) = cur {
        m.insert(last.clone(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn empty_config_has_defaults() {
        let c = Config::load(None, vec![]).unwrap();
        assert_eq!(c.serve.public.addr(4433), "127.0.0.1:4433");
        assert_eq!(c.public_base(), "http://localhost:4433");
        assert_eq!(c.admin_base(), "http://127.0.0.1:4434");
        assert_eq!(c.selfservice.flows.settings.privileged_session_max_age, Dur::secs(3600));
        assert!(
            c.selfservice.flows.settings.after.has_hook(crate::model::MethodId::Password, "revoke_active_sessions")
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::load(Some("selfservice:\n  flows:\n    settings:\n      lifespam: 1h\n"), vec![]).unwrap_err();
        assert!(e.0.contains("selfservice.flows.settings"), "{}", e.0);
        assert!(e.0.contains("lifespam"), "{}", e.0);
    }

    #[test]
    fn idle_timeout_is_at_least_the_head_deadline() {
        let c = Config::load(None, vec![]).unwrap();
        assert_eq!((c.limits.header_read_timeout, c.limits.idle_timeout), (Dur::secs(10), Dur::secs(120)));
        let e = Config::load(Some("limits:\n  header_read_timeout: 30s\n  idle_timeout: 5s\n"), vec![]).unwrap_err();
        assert!(e.0.contains("limits.idle_timeout"), "{}", e.0);
        assert!(Config::load(Some("limits:\n  idle_timeout: 10s\n"), vec![]).is_ok());
    }

    #[test]
    fn bad_value_is_named() {
        let e = Config::load(Some("session:\n  lifespan: forever\n"), vec![]).unwrap_err();
        assert!(e.0.contains("session.lifespan"), "{}", e.0);
    }

    #[test]
    fn env_overrides() {
        let c = Config::load(
            Some("serve:\n  public:\n    base_url: http://a.example/\n"),
            vec![
                ("IDFLOW_SERVE__PUBLIC__BASE_URL".to_string(), "http://b.example/".to_string()),
                ("IDFLOW_SELFSERVICE__FLOWS__SETTINGS__PRIVILEGED_SESSION_MAX_AGE".into(), "15m".into()),
                ("IDFLOW_DEV".into(), "true".into()),
                // The log filter variable, not the `log` section.
                ("IDFLOW_LOG".into(), "debug".into()),
            ],
        )
        .unwrap();
        assert_eq!(c.public_base(), "http://b.example");
        assert_eq!(c.selfservice.flows.settings.privileged_session_max_age, Dur::secs(900));
        assert!(c.dev);
    }

    #[test]
    fn relying_party_defaults_and_checks() {
        let c =
            Config::load(Some("serve:\n  public:\n    base_url: https://id.example.org:8443/base/\n"), vec![]).unwrap();
        let rp = c.selfservice.methods.passkey.config.rp.resolve(&c.public_base()).unwrap();
        assert_eq!(rp.id, "id.example.org");
        assert_eq!(rp.origins[0].as_str(), "https://id.example.org:8443/");
        assert!(RelyingParty::default().resolve("http://127.0.0.1:4433").is_err());
        let e = Config::load(
            Some("selfservice:\n  methods:\n    webauthn:\n      config:\n        rp:\n          id: example.org\n          origins: [https://evil.example.com]\n"),
            vec![],
        )
        .unwrap_err();
        assert!(e.0.contains("selfservice.methods.webauthn.config.rp"), "{}", e.0);
    }

    #[test]
    fn secrets_redacted() {
        let c = Config::load(Some("secrets:\n  cookie: [supersecretvalue123]\ndsn: postgres://u:pw@h/db\n"), vec![])
            .unwrap();
        let y = c.redacted_yaml();
        assert!(!y.contains("supersecretvalue123"));
        assert!(!y.contains(":pw@"));
        assert!(!format!("{:?}", c).contains("supersecretvalue123"));
    }
}
