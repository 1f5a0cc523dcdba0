//! Kratos JSON shapes of identities, sessions, flows and errors. The only place that knows the
//! Kratos wire format (the v1 dialect converts these in `v1.rs`); a flow's `ui` object is in
//! [`ui`].

pub mod ui;

use base64::Engine as _;
use idflow_core::error::Error;
use idflow_core::model::{Flow, FlowKind, Identity, Session};
use serde::Serialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use uuid::Uuid;

pub fn ts(t: OffsetDateTime) -> Value {
    Value::String(t.format(&Rfc3339).unwrap_or_default())
}

/// Which identity fields to include.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityView {
    /// whoami, flows, login/registration responses.
    Public,
    /// admin responses: credentials (without config) and metadata_admin.
    Admin,
    /// admin with the credential configs of these types.
    AdminWithConfigs,
}

pub fn schema_url(base: &str, schema_id: &str) -> String {
    format!("{base}/schemas/{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(schema_id))
}

/// `2006-01-02T15:04:05Z` (RFC 3339).
fn ts_str(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A credential of an identity (admin views).
#[derive(Serialize, ToSchema)]
#[schema(as = IdentityCredentials)]
pub struct CredentialJson {
    /// `password`, `totp`, `lookup_secret`, `webauthn`, `passkey`, `oidc`, …
    #[serde(rename = "type")]
    pub kind: String,
    pub identifiers: Vec<String>,
    /// The credential's configuration: only with `include_credential=<type>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
    pub version: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// An address the identity can verify.
#[derive(Serialize, ToSchema)]
#[schema(as = VerifiableIdentityAddress)]
pub struct VerifiableAddressJson {
    pub id: Uuid,
    pub value: String,
    pub verified: bool,
    /// `email` or `sms`.
    pub via: String,
    /// `pending`, `sent`, `completed`.
    pub status: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub verified_at: Option<String>,
}

/// An address recovery codes can be sent to.
#[derive(Serialize, ToSchema)]
#[schema(as = RecoveryIdentityAddress)]
pub struct RecoveryAddressJson {
    pub id: Uuid,
    pub value: String,
    pub via: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// An identity (Kratos `identity`).
#[derive(Serialize, ToSchema)]
#[schema(as = Identity)]
pub struct IdentityJson {
    pub id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Admin views only: the credentials by type.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<HashMap<String, CredentialJson>>)]
    pub credentials: Option<Map<String, Value>>,
    pub schema_id: String,
    pub schema_url: String,
    /// `active` or `inactive`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub state_changed_at: Option<String>,
    /// The traits, as the identity schema describes them.
    #[schema(value_type = Object)]
    pub traits: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verifiable_addresses: Option<Vec<VerifiableAddressJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_addresses: Option<Vec<RecoveryAddressJson>>,
    pub metadata_public: Value,
    /// Admin views only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_admin: Option<Value>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Always null (no organizations).
    pub organization_id: Option<Uuid>,
    /// idflow extension: when a self-service deletion is scheduled, the date it happens.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub delete_after: Option<String>,
}

pub fn identity(base: &str, i: &Identity, view: IdentityView, include: &[String]) -> Value {
    let credentials = (view != IdentityView::Public && !i.credentials.is_empty()).then(|| {
        i.credentials
            .values()
            .map(|c| {
                let with_config =
                    view == IdentityView::AdminWithConfigs && include.iter().any(|t| t == c.kind.as_str());
                let cj = CredentialJson {
                    kind: c.kind.as_str().into(),
                    identifiers: c.identifiers.clone(),
                    config: with_config.then(|| c.config.clone()),
                    version: 0,
                    created_at: ts_str(c.created_at),
                    updated_at: ts_str(c.updated_at),
                };
                (c.kind.as_str().to_string(), serde_json::to_value(cj).unwrap_or(Value::Null))
            })
            .collect()
    });
    let verifiable = (!i.verifiable_addresses.is_empty()).then(|| {
        i.verifiable_addresses
            .iter()
            .map(|a| VerifiableAddressJson {
                id: a.id,
                value: a.value.clone(),
                verified: a.verified,
                via: a.via.clone(),
                status: a.status.clone(),
                created_at: ts_str(a.created_at),
                updated_at: ts_str(a.updated_at),
                verified_at: a.verified_at.map(ts_str),
            })
            .collect()
    });
    let recovery = (!i.recovery_addresses.is_empty()).then(|| {
        i.recovery_addresses
            .iter()
            .map(|a| RecoveryAddressJson {
                id: a.id,
                value: a.value.clone(),
                via: a.via.clone(),
                created_at: ts_str(a.created_at),
                updated_at: ts_str(a.updated_at),
            })
            .collect()
    });
    let j = IdentityJson {
        id: i.id,
        external_id: i.external_id.clone(),
        credentials,
        schema_id: i.schema_id.clone(),
        schema_url: schema_url(base, &i.schema_id),
        state: i.state.as_str().into(),
        state_changed_at: i.state_changed_at.map(ts_str),
        traits: i.traits.clone(),
        verifiable_addresses: verifiable,
        recovery_addresses: recovery,
        metadata_public: i.metadata_public.clone(),
        metadata_admin: (view != IdentityView::Public && !i.metadata_admin.is_null()).then(|| i.metadata_admin.clone()),
        created_at: ts_str(i.created_at),
        updated_at: ts_str(i.updated_at),
        organization_id: None,
        delete_after: i.delete_after.map(ts_str),
    };
    serde_json::to_value(j).unwrap_or(Value::Null)
}

/// How a session was authenticated.
#[derive(Serialize, ToSchema)]
#[schema(as = SessionAuthenticationMethod)]
pub struct AuthMethodJson {
    pub method: String,
    pub aal: String,
    #[schema(format = DateTime)]
    pub completed_at: String,
    /// The social sign-in provider (`oidc`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

/// A device a session was used from.
#[derive(Serialize, ToSchema)]
#[schema(as = SessionDevice)]
pub struct DeviceJson {
    pub id: Uuid,
    pub ip_address: String,
    pub user_agent: String,
    pub location: String,
}

/// A session (Kratos `session`).
#[derive(Serialize, ToSchema)]
#[schema(as = Session)]
pub struct SessionJson {
    pub id: Uuid,
    pub active: bool,
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(format = DateTime)]
    pub authenticated_at: String,
    /// `aal0`, `aal1`, `aal2`.
    pub authenticator_assurance_level: String,
    pub authentication_methods: Vec<AuthMethodJson>,
    #[schema(format = DateTime)]
    pub issued_at: String,
    /// The identity (absent in session lists; null when a second factor is still required).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<IdentityJson>)]
    pub identity: Option<Value>,
    pub devices: Vec<DeviceJson>,
}

/// Session JSON. `identity` may be omitted (`None`) or null (`Some(Value::Null)`).
pub fn session(s: &Session, identity: Option<Value>, now: OffsetDateTime) -> Value {
    let j = SessionJson {
        id: s.id,
        active: s.is_active(now),
        expires_at: ts_str(s.expires_at),
        authenticated_at: ts_str(s.authenticated_at),
        authenticator_assurance_level: s.aal.as_str().into(),
        authentication_methods: s
            .authentication_methods
            .iter()
            .map(|a| AuthMethodJson {
                method: a.method.clone(),
                aal: a.aal.as_str().into(),
                completed_at: ts_str(a.completed_at),
                provider: a.provider.clone(),
            })
            .collect(),
        issued_at: ts_str(s.issued_at),
        identity,
        devices: s
            .devices
            .iter()
            .map(|d| DeviceJson {
                id: d.id,
                ip_address: d.ip_address.clone(),
                user_agent: d.user_agent.clone(),
                location: d.location.clone(),
            })
            .collect(),
    };
    serde_json::to_value(j).unwrap_or(Value::Null)
}

/// A self-service flow in Kratos shape (login, registration, settings, recovery, verification):
/// the fields after `ui` depend on the flow kind.
#[derive(Serialize, ToSchema)]
#[schema(as = Flow)]
pub struct FlowJson {
    pub id: Uuid,
    /// `api` or `browser` (the v1 dialect: the flow kind).
    #[serde(rename = "type")]
    pub flow_type: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    #[schema(format = DateTime)]
    pub issued_at: String,
    pub request_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_to: Option<String>,
    /// The method in use (login, registration, settings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<String>,
    pub ui: ui::UiJson,
    /// Settings flows: the identity whose settings these are.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<IdentityJson>)]
    pub identity: Option<Value>,
    /// Login flows.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub created_at: Option<String>,
    /// Login flows.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub updated_at: Option<String>,
    /// Login flows: a re-authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<bool>,
    /// Login flows: `aal1` or `aal2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_aal: Option<String>,
    /// `choose_method`, `show_form`, `sent_email`, `passed_challenge`, `success`, …
    pub state: String,
    /// Recovery and verification flows (and completed settings flows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continue_with: Option<Vec<Value>>,
    /// Recovery and verification flows.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub transient_payload: Option<Value>,
    /// Always null (no organizations).
    pub organization_id: Option<Uuid>,
}

/// A flow in Kratos shape, as a JSON value (the v1 dialect rewrites it).
pub fn flow(f: &Flow, identity: Option<Value>) -> Value {
    serde_json::to_value(flow_json(f, identity)).unwrap_or(Value::Null)
}

/// A flow in Kratos shape. `identity` is required for settings flows. Serialised straight
/// into a response ([`Body`]), without a `serde_json::Value` in between.
pub fn flow_json(f: &Flow, identity: Option<Value>) -> FlowJson {
    let login = f.kind == FlowKind::Login;
    let code = matches!(f.kind, FlowKind::Recovery | FlowKind::Verification);
    FlowJson {
        id: f.id,
        flow_type: f.flow_type.as_str().into(),
        expires_at: ts_str(f.expires_at),
        issued_at: ts_str(f.issued_at),
        request_url: f.request_url.clone(),
        return_to: f.return_to.clone(),
        active: f.active.clone(),
        ui: (&f.ui).into(),
        identity: (f.kind == FlowKind::Settings).then(|| identity.unwrap_or(Value::Null)),
        created_at: login.then(|| ts_str(f.created_at)),
        updated_at: login.then(|| ts_str(f.updated_at)),
        refresh: login.then_some(f.refresh),
        requested_aal: login.then(|| f.requested_aal.as_str().into()),
        state: f.state.clone(),
        continue_with: code.then(Vec::new),
        transient_payload: code.then(|| json!({})),
        organization_id: None,
    }
}

/// The JSON answer of a flow route: a typed flow written straight into the response, or any
/// other JSON value (`untagged`: either is written as itself).
#[derive(Serialize)]
#[serde(untagged)]
pub enum Body {
    Flow(Box<FlowJson>),
    Value(Value),
}

impl From<FlowJson> for Body {
    fn from(f: FlowJson) -> Self {
        Body::Flow(Box::new(f))
    }
}

impl From<Value> for Body {
    fn from(v: Value) -> Self {
        Body::Value(v)
    }
}

fn reason_phrase(status: u16) -> &'static str {
    axum::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error")
}

/// The Kratos error envelope (`since` measured against the system time).
pub fn error(e: &Error, request_id: &str) -> Value {
    error_at(e, request_id, OffsetDateTime::now_utc())
}

/// The error object of the Kratos envelope.
#[derive(Serialize, ToSchema)]
#[schema(as = GenericError)]
pub struct ErrorBody {
    /// A stable error id (`session_inactive`, `self_service_flow_expired`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The HTTP status code.
    pub code: u16,
    /// The HTTP status text.
    pub status: String,
    /// The request id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Map<String, Value>>,
    pub message: String,
}

/// The Kratos error envelope (`errorGeneric`, with the flow-expiry and browser-redirect fields).
#[derive(Serialize, ToSchema)]
#[schema(as = ErrorGeneric)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
    /// 422 `browser_location_change_required`: where to send the browser.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_browser_to: Option<String>,
    /// An expired flow: the replacement flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_flow_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub expired_at: Option<String>,
    /// Nanoseconds since the flow expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
}

/// The Kratos error envelope; `now` is the server clock (for `since` of expired flows).
pub fn error_at(e: &Error, request_id: &str, now: OffsetDateTime) -> Value {
    let j = ErrorEnvelope {
        error: ErrorBody {
            id: e.kind.id().map(str::to_string),
            code: e.status(),
            status: reason_phrase(e.status()).into(),
            request: (!request_id.is_empty()).then(|| request_id.to_string()),
            reason: (!e.reason.is_empty()).then(|| e.reason.clone()),
            details: (!e.details.is_empty()).then(|| e.details.clone()),
            message: e.message().to_string(),
        },
        redirect_browser_to: e.redirect_browser_to.clone(),
        use_flow_id: e.use_flow_id,
        expired_at: e.expired_at.map(ts_str),
        since: e.expired_at.map(|t| i64::try_from((now - t).whole_nanoseconds()).unwrap_or(i64::MAX)),
    };
    serde_json::to_value(j).unwrap_or(Value::Null)
}

// ---- response shapes built around the types above (documented in the OpenAPI document; the
// integration tests validate real responses against them) ------------------------------------

/// An item of `continue_with`: what the client does next. `action` is
/// `set_ory_session_token`, `redirect_browser_to`, `show_settings_ui`, `show_verification_ui`, …
#[derive(Serialize, ToSchema)]
#[schema(as = ContinueWith)]
pub struct ContinueWithJson {
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ory_session_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_browser_to: Option<String>,
    /// `show_settings_ui` / `show_verification_ui`: the flow to show (`id`, `url`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub flow: Option<Value>,
}

/// A successful login (`successfulNativeLogin`): the session; API flows also get the token.
#[derive(Serialize, ToSchema)]
#[schema(as = SuccessfulNativeLogin)]
pub struct LoginResultJson {
    /// API flows only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
    #[schema(value_type = SessionJson)]
    pub session: Value,
    /// Null for API flows; a browser's `redirect_browser_to`.
    #[schema(value_type = Option<Vec<ContinueWithJson>>)]
    pub continue_with: Option<Vec<Value>>,
    /// idflow extension: present when the account is scheduled for deletion — the date and
    /// how to cancel (signing in never cancels).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<AccountDeletionOffer>)]
    pub account_deletion: Option<Value>,
}

/// idflow extension: a scheduled self-service account deletion and how to cancel it.
#[derive(Serialize, ToSchema)]
pub struct AccountDeletionOffer {
    pub scheduled: bool,
    #[schema(format = DateTime)]
    pub delete_after: Option<String>,
    /// The request that cancels: `{method, url}`.
    #[schema(value_type = Object)]
    pub cancel: Option<Value>,
}

/// A successful registration (`successfulNativeRegistration`): the identity, and the session
/// (and, for API flows, its token) when the `session` hook runs.
#[derive(Serialize, ToSchema)]
#[schema(as = SuccessfulNativeRegistration)]
pub struct RegistrationResultJson {
    #[schema(value_type = IdentityJson)]
    pub identity: Value,
    /// Hook items (`show_verification_ui`) first, then `set_ory_session_token` (API flows) or
    /// `redirect_browser_to` (browsers); null for an API flow without session and hook items.
    #[schema(value_type = Option<Vec<ContinueWithJson>>)]
    pub continue_with: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<SessionJson>)]
    pub session: Option<Value>,
}

/// `GET /self-service/logout/browser`: where to send the browser to sign out.
#[derive(Serialize, ToSchema)]
#[schema(as = LogoutFlow)]
pub struct LogoutUrlJson {
    pub logout_url: String,
    pub logout_token: String,
}

/// `DELETE /sessions`: how many sessions were revoked.
#[derive(Serialize, ToSchema)]
#[schema(as = DeleteMySessionsCount)]
pub struct SessionCountJson {
    pub count: u64,
}

/// An identity schema of `GET /schemas`.
#[derive(Serialize, ToSchema)]
#[schema(as = IdentitySchemaContainer)]
pub struct SchemaEntryJson {
    pub id: String,
    /// The JSON schema.
    #[schema(value_type = Object)]
    pub schema: Value,
}

/// A stored self-service error (`GET /self-service/errors?id=`), shown by the error UI.
#[derive(Serialize, ToSchema)]
#[schema(as = FlowError)]
pub struct StoredErrorJson {
    pub id: Uuid,
    pub error: ErrorBody,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// `POST /admin/recovery/code` (201) and `/admin/recovery/link` (200; no code).
#[derive(Serialize, ToSchema)]
#[schema(as = RecoveryCodeForIdentity)]
pub struct AdminRecoveryJson {
    pub recovery_link: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_code: Option<String>,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// A submit answered with the form and its messages (the flow), or with an error.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[schema(as = FlowOrError)]
pub enum FlowOrErrorJson {
    Flow(FlowJson),
    Error(ErrorEnvelope),
}

/// One activity-log entry (an idflow extension; the same shape in every dialect).
/// An activity-log entry (idflow extension): never a secret.
#[derive(Serialize, ToSchema)]
#[schema(as = ActivityEntry)]
pub struct ActivityJson {
    pub id: Uuid,
    pub identity_id: Uuid,
    /// `login`, `login_refresh`, `login_step_up`, `registration`, `settings_changed`, `recovery`,
    /// `verification`, `logout`, `session_revoked`, `other_sessions_revoked`,
    /// `admin_identity_updated`, `admin_credential_deleted`, `admin_session_revoked`.
    pub kind: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// The method (`password`, `totp`, …), if any.
    pub method: Option<String>,
    pub session_id: Option<Uuid>,
    pub ip_address: String,
    pub user_agent: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

pub fn activity(e: &idflow_core::activity::ActivityEvent) -> Value {
    let j = ActivityJson {
        id: e.id,
        identity_id: e.identity_id,
        kind: e.kind.as_str().into(),
        outcome: e.outcome.as_str().into(),
        method: e.method.map(|m| m.as_str().to_string()),
        session_id: e.session_id,
        ip_address: e.ip_address.clone(),
        user_agent: e.user_agent.clone(),
        created_at: ts_str(e.created_at),
    };
    serde_json::to_value(j).unwrap_or(Value::Null)
}
