//! Domain model: identities, credentials, sessions and self-service flows.
//!
//! These are storage-neutral structs; the Kratos wire shape of each is produced by the
//! http layer from them (see `idflow-server/src/wire.rs`).

use crate::ui::Ui;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// Authenticator assurance level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Aal {
    #[default]
    Aal0,
    Aal1,
    Aal2,
}

impl Aal {
    pub fn as_str(self) -> &'static str {
        match self {
            Aal::Aal0 => "aal0",
            Aal::Aal1 => "aal1",
            Aal::Aal2 => "aal2",
        }
    }
    pub fn parse(s: &str) -> Option<Aal> {
        match s.to_ascii_lowercase().as_str() {
            "aal0" => Some(Aal::Aal0),
            "aal1" => Some(Aal::Aal1),
            "aal2" => Some(Aal::Aal2),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IdentityState {
    #[default]
    Active,
    Inactive,
}

impl IdentityState {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityState::Active => "active",
            IdentityState::Inactive => "inactive",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "inactive" => Some(Self::Inactive),
            _ => None,
        }
    }
}

/// The id of a self-service method: its wire name (`method` in bodies, `active` on flows,
/// `authentication_methods[].method`), its config key (`selfservice.methods.<id>`,
/// `….after.<id>`) and its metric label. The implementations are listed in
/// `selfservice::methods::REGISTRY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodId {
    Profile,
    Password,
    Totp,
    LookupSecret,
    Passkey,
    Webauthn,
    Oidc,
    /// One-time codes sent by mail (account recovery).
    Code,
    /// Self-service account deletion (scheduled after a grace period; beyond Kratos).
    DeleteAccount,
}

impl MethodId {
    pub const ALL: [MethodId; 9] = [
        MethodId::Profile,
        MethodId::Password,
        MethodId::Totp,
        MethodId::LookupSecret,
        MethodId::Webauthn,
        MethodId::Passkey,
        MethodId::Oidc,
        MethodId::Code,
        MethodId::DeleteAccount,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MethodId::Profile => "profile",
            MethodId::Password => "password",
            MethodId::Totp => "totp",
            MethodId::LookupSecret => "lookup_secret",
            MethodId::Passkey => "passkey",
            MethodId::Webauthn => "webauthn",
            MethodId::Oidc => "oidc",
            MethodId::Code => "code",
            MethodId::DeleteAccount => "delete_account",
        }
    }

    /// The method named `s` (exact wire name), if there is one.
    pub fn parse(s: &str) -> Option<MethodId> {
        Self::ALL.into_iter().find(|id| id.as_str() == s)
    }
}

impl std::fmt::Display for MethodId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Credential types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialType {
    Password,
    Oidc,
    Totp,
    LookupSecret,
    Webauthn,
    Passkey,
}

impl CredentialType {
    pub const ALL: [CredentialType; 6] = [
        CredentialType::Password,
        CredentialType::Oidc,
        CredentialType::Totp,
        CredentialType::LookupSecret,
        CredentialType::Webauthn,
        CredentialType::Passkey,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialType::Password => "password",
            CredentialType::Oidc => "oidc",
            CredentialType::Totp => "totp",
            CredentialType::LookupSecret => "lookup_secret",
            CredentialType::Webauthn => "webauthn",
            CredentialType::Passkey => "passkey",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
    /// Whether a credential of this type is a first factor.
    pub fn is_first_factor(self) -> bool {
        matches!(self, CredentialType::Password | CredentialType::Oidc | CredentialType::Passkey)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credential {
    pub id: Uuid,
    pub kind: CredentialType,
    pub identifiers: Vec<String>,
    /// Type-specific configuration (password hash, TOTP URL, lookup codes, …).
    pub config: Value,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Credential {
    pub fn new(kind: CredentialType, identifiers: Vec<String>, config: Value, now: OffsetDateTime) -> Self {
        Credential { id: Uuid::new_v4(), kind, identifiers, config, version: 0, created_at: now, updated_at: now }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifiableAddress {
    pub id: Uuid,
    pub value: String,
    pub verified: bool,
    pub via: String,
    pub status: String,
    pub verified_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A trait change waiting for the verification of its new address (`verify_before_apply`):
/// until then the identity keeps the old value, identifier and address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingChange {
    pub identity_id: Uuid,
    /// The trait's node name (`traits.email`).
    pub path: String,
    /// The new trait value.
    pub value: Value,
    /// The value the change replaces (it applies only while the trait still has it).
    pub previous: Value,
    /// The new address (normalised) the verification code went to.
    pub address: String,
    /// The verification flow whose code applies the change.
    pub flow_id: Uuid,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryAddress {
    pub id: Uuid,
    pub value: String,
    pub via: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub id: Uuid,
    pub schema_id: String,
    pub state: IdentityState,
    pub state_changed_at: Option<OffsetDateTime>,
    pub traits: Value,
    pub metadata_public: Value,
    pub metadata_admin: Value,
    pub external_id: Option<String>,
    pub verifiable_addresses: Vec<VerifiableAddress>,
    pub recovery_addresses: Vec<RecoveryAddress>,
    pub credentials: BTreeMap<CredentialType, Credential>,
    /// When the account is deleted for real: set by the `delete_account` settings method
    /// (now + grace period), cleared by a cancel; the deletion worker deletes the identity
    /// once this has passed.
    pub delete_after: Option<OffsetDateTime>,
    /// Optimistic-concurrency version; every store update bumps it.
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// The trait changes waiting for an address verification, as read with the identity's
    /// other rows (one query: the settings flow needs them on every request); `None` when the
    /// identity was not read from the store. Not written by a commit: they change through
    /// `Commit::put_pending_changes` / `delete_pending_change`.
    pub pending_changes: Option<Vec<PendingChange>>,
}

impl Identity {
    pub fn new(schema_id: &str, traits: Value, now: OffsetDateTime) -> Self {
        Identity {
            id: Uuid::new_v4(),
            schema_id: schema_id.into(),
            state: IdentityState::Active,
            state_changed_at: Some(now),
            traits,
            metadata_public: Value::Null,
            metadata_admin: Value::Null,
            external_id: None,
            verifiable_addresses: vec![],
            recovery_addresses: vec![],
            credentials: BTreeMap::new(),
            delete_after: None,
            version: 0,
            created_at: now,
            updated_at: now,
            pending_changes: Some(vec![]),
        }
    }

    pub fn credential(&self, t: CredentialType) -> Option<&Credential> {
        self.credentials.get(&t)
    }

    /// The password hash, if the identity has one.
    pub fn password_hash(&self) -> Option<&str> {
        self.credential(CredentialType::Password)?.config.get("hashed_password")?.as_str().filter(|s| !s.is_empty())
    }

    /// Whether any usable second factor is configured (available AAL is aal2).
    pub fn has_second_factor(&self) -> bool {
        self.credentials.values().any(|c| match c.kind {
            CredentialType::Totp => c.config.get("totp_url").and_then(Value::as_str).is_some_and(|u| !u.is_empty()),
            // Recovery codes alone are no second factor: leftover codes must not lock a user
            // into aal2 once the authenticator they backed up is gone (beyond Kratos).
            CredentialType::Webauthn => {
                c.config.get("credentials").and_then(Value::as_array).is_some_and(|a| {
                    a.iter().any(|k| !k.get("is_passwordless").and_then(Value::as_bool).unwrap_or(false))
                })
            }
            _ => false,
        })
    }

    /// Number of usable first-factor credentials (password, each social link, each passkey).
    pub fn first_factor_count(&self) -> usize {
        self.credentials
            .values()
            .map(|c| match c.kind {
                CredentialType::Password => usize::from(self.password_hash().is_some()),
                CredentialType::Oidc => c.config.get("providers").and_then(Value::as_array).map_or(0, Vec::len),
                CredentialType::Passkey => c.config.get("credentials").and_then(Value::as_array).map_or(0, Vec::len),
                CredentialType::Webauthn => c.config.get("credentials").and_then(Value::as_array).map_or(0, |a| {
                    a.iter().filter(|k| k.get("is_passwordless").and_then(Value::as_bool) == Some(true)).count()
                }),
                _ => 0,
            })
            .sum()
    }

    /// How many of each kind of credential the identity has (a password, linked providers,
    /// keys, an authenticator app, a set of recovery codes).
    pub fn factor_counts(&self) -> std::collections::BTreeMap<CredentialType, usize> {
        self.credentials
            .values()
            .map(|c| {
                let n = match c.kind {
                    CredentialType::Password => usize::from(self.password_hash().is_some()),
                    CredentialType::Oidc => c.config.get("providers").and_then(Value::as_array).map_or(0, Vec::len),
                    CredentialType::Passkey | CredentialType::Webauthn => {
                        c.config.get("credentials").and_then(Value::as_array).map_or(0, Vec::len)
                    }
                    CredentialType::Totp | CredentialType::LookupSecret => 1,
                };
                (c.kind, n)
            })
            .collect()
    }

    /// Highest AAL the identity can reach.
    pub fn available_aal(&self) -> Aal {
        if self.has_second_factor() {
            Aal::Aal2
        } else if self.first_factor_count() > 0 {
            Aal::Aal1
        } else {
            Aal::Aal0
        }
    }
}

/// One completed authentication method of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthMethod {
    pub method: String,
    pub aal: Aal,
    #[serde(with = "time::serde::rfc3339")]
    pub completed_at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub provider: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub id: Uuid,
    pub ip_address: String,
    pub user_agent: String,
    pub location: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id: Uuid,
    /// SHA-256 of the session token (hex). The token itself is never stored.
    pub token_hash: String,
    pub logout_token_hash: String,
    pub identity_id: Uuid,
    pub active: bool,
    pub aal: Aal,
    pub authentication_methods: Vec<AuthMethod>,
    pub authenticated_at: OffsetDateTime,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub devices: Vec<Device>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Session {
    /// Recompute the AAL from the methods (identity-session-login §7.3).
    pub fn recompute_aal(&mut self) {
        let has1 = self.authentication_methods.iter().any(|m| m.aal == Aal::Aal1);
        let has2 = self.authentication_methods.iter().any(|m| m.aal == Aal::Aal2);
        self.aal = if self.authentication_methods.is_empty() {
            Aal::Aal0
        } else if has1 && has2 {
            Aal::Aal2
        } else {
            Aal::Aal1
        };
    }

    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.active && self.expires_at > now
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowKind {
    Login,
    Registration,
    Settings,
    Recovery,
    Verification,
}

impl FlowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowKind::Login => "login",
            FlowKind::Registration => "registration",
            FlowKind::Settings => "settings",
            FlowKind::Recovery => "recovery",
            FlowKind::Verification => "verification",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "login" => Some(Self::Login),
            "registration" => Some(Self::Registration),
            "settings" => Some(Self::Settings),
            "recovery" => Some(Self::Recovery),
            "verification" => Some(Self::Verification),
            _ => None,
        }
    }
}

/// Who the flow is for: a native app (`api`) or a browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowType {
    Api,
    Browser,
}

impl FlowType {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowType::Api => "api",
            FlowType::Browser => "browser",
        }
    }
}

/// A self-service flow (login, registration or settings). Stored as one row; `internal`
/// holds method state that never leaves the server (TOTP secret being enrolled, generated
/// recovery codes, a change paused for re-authentication).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub id: Uuid,
    pub kind: FlowKind,
    pub flow_type: FlowType,
    pub identity_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    pub request_url: String,
    pub return_to: Option<String>,
    pub ui: Ui,
    /// `show_form`/`success` (settings), `choose_method` (login, registration).
    pub state: String,
    pub active: Option<String>,
    pub refresh: bool,
    pub requested_aal: Aal,
    /// The flow's CSRF secret (base64, unmasked) for browser flows; empty for API flows.
    pub csrf_token: String,
    /// Server-side method context (never serialised to clients).
    pub internal: Value,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Why the last submit came back with form errors (set by the flow; never stored).
    #[serde(skip)]
    pub reason: Option<crate::selfservice::FormReason>,
}

impl Flow {
    pub fn internal_get(&self, key: &str) -> Option<&Value> {
        self.internal.get(key)
    }
    pub fn internal_set(&mut self, key: &str, v: Value) {
        if !self.internal.is_object() {
            self.internal = Value::Object(Default::default());
        }
        if let Value::Object(m) = &mut self.internal {
            m.insert(key.into(), v);
        }
    }
    pub fn internal_remove(&mut self, key: &str) -> Option<Value> {
        match &mut self.internal {
            Value::Object(m) => m.remove(key),
            _ => None,
        }
    }
}
