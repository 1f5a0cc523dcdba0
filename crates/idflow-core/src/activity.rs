//! The activity log of an identity: every security-relevant event (sign-in success and
//! failure, step-up, refresh, settings changes by method, recovery, verification, sessions
//! ended, changes by an administrator) with its time, the client's IP address and user agent,
//! the method, the outcome and the session involved. Never a secret: an event has no field
//! that could hold a token, code, password or hash.
//!
//! Events caused by a change are stored in the change's own [`crate::store::Commit`]
//! (`record_activity`), so a change and its entry are one transaction; events without a
//! change (a failed sign-in) use [`crate::store::Store::record_activity`]. Users read their log
//! newest first ([`crate::store::Store::list_activity`], keyset pagination with
//! [`ActivityCursor`]); the cleanup purges entries older than `activity.retention`.

use crate::model::MethodId;
use crate::selfservice::{Engine, Req};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The longest user agent kept (longer ones are cut).
pub const MAX_USER_AGENT: usize = 512;

/// What happened. The wire names ([`ActivityKind::as_str`]) are stable: they are stored and
/// returned by the APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// A first-factor sign-in (success, or a failure for an identifier that belongs to the
    /// identity).
    Login,
    /// A re-authentication of the session's identity (`refresh=true`).
    LoginRefresh,
    /// A second factor completed on an existing session (aal2).
    LoginStepUp,
    /// The identity was created by a self-service registration.
    Registration,
    /// A settings change (`method` names which).
    SettingsChanged,
    /// The account was recovered with a mailed code.
    Recovery,
    /// An address was verified.
    Verification,
    /// The session was ended by its own user (logout).
    Logout,
    /// One other session was ended by the user.
    SessionRevoked,
    /// All other sessions were ended: by the user, or as part of a change (password change,
    /// recovery, a factor removed).
    OtherSessionsRevoked,
    /// An administrator replaced or patched the identity.
    AdminIdentityUpdated,
    /// An administrator deleted a credential (`method` names its kind when it is a method).
    AdminCredentialDeleted,
    /// An administrator ended one session or all of them.
    AdminSessionRevoked,
}

impl ActivityKind {
    pub const ALL: [ActivityKind; 13] = [
        ActivityKind::Login,
        ActivityKind::LoginRefresh,
        ActivityKind::LoginStepUp,
        ActivityKind::Registration,
        ActivityKind::SettingsChanged,
        ActivityKind::Recovery,
        ActivityKind::Verification,
        ActivityKind::Logout,
        ActivityKind::SessionRevoked,
        ActivityKind::OtherSessionsRevoked,
        ActivityKind::AdminIdentityUpdated,
        ActivityKind::AdminCredentialDeleted,
        ActivityKind::AdminSessionRevoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Login => "login",
            ActivityKind::LoginRefresh => "login_refresh",
            ActivityKind::LoginStepUp => "login_step_up",
            ActivityKind::Registration => "registration",
            ActivityKind::SettingsChanged => "settings_changed",
            ActivityKind::Recovery => "recovery",
            ActivityKind::Verification => "verification",
            ActivityKind::Logout => "logout",
            ActivityKind::SessionRevoked => "session_revoked",
            ActivityKind::OtherSessionsRevoked => "other_sessions_revoked",
            ActivityKind::AdminIdentityUpdated => "admin_identity_updated",
            ActivityKind::AdminCredentialDeleted => "admin_credential_deleted",
            ActivityKind::AdminSessionRevoked => "admin_session_revoked",
        }
    }

    pub fn parse(s: &str) -> Option<ActivityKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// A short description for people (the settings UI).
    pub fn describe(self, method: Option<MethodId>) -> String {
        let m = method.map(method_name);
        match self {
            ActivityKind::Login => match m {
                Some(m) => format!("Sign-in with {m}"),
                None => "Sign-in".into(),
            },
            ActivityKind::LoginRefresh => "Identity confirmed (re-authentication)".into(),
            ActivityKind::LoginStepUp => match m {
                Some(m) => format!("Second factor ({m})"),
                None => "Second factor".into(),
            },
            ActivityKind::Registration => "Account created".into(),
            ActivityKind::SettingsChanged => match method {
                Some(MethodId::Profile) => "Profile updated".into(),
                Some(MethodId::Password) => "Password changed".into(),
                Some(MethodId::Totp) => "Authenticator app changed".into(),
                Some(MethodId::LookupSecret) => "Recovery codes changed".into(),
                Some(MethodId::Webauthn) => "Security keys changed".into(),
                Some(MethodId::Passkey) => "Passkeys changed".into(),
                Some(MethodId::Oidc) => "Linked accounts changed".into(),
                _ => "Settings changed".into(),
            },
            ActivityKind::Recovery => "Account recovered".into(),
            ActivityKind::Verification => "Email address verified".into(),
            ActivityKind::Logout => "Signed out".into(),
            ActivityKind::SessionRevoked => "Another session signed out".into(),
            ActivityKind::OtherSessionsRevoked => "All other sessions signed out".into(),
            ActivityKind::AdminIdentityUpdated => "Account changed by an administrator".into(),
            ActivityKind::AdminCredentialDeleted => "Credential removed by an administrator".into(),
            ActivityKind::AdminSessionRevoked => "Session ended by an administrator".into(),
        }
    }
}

/// How a method is named for people.
pub fn method_name(m: MethodId) -> &'static str {
    match m {
        MethodId::Profile => "profile",
        MethodId::Password => "password",
        MethodId::Totp => "authenticator app",
        MethodId::LookupSecret => "recovery code",
        MethodId::Passkey => "passkey",
        MethodId::Webauthn => "security key",
        MethodId::Oidc => "social sign-in",
        MethodId::Code => "email code",
        MethodId::DeleteAccount => "account deletion",
    }
}

/// Whether the event succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        match s {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            _ => None,
        }
    }
}

/// One entry of an identity's activity log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityEvent {
    pub id: Uuid,
    pub identity_id: Uuid,
    pub kind: ActivityKind,
    pub outcome: Outcome,
    /// The method involved, by its wire name (none for logout, admin changes, …).
    pub method: Option<MethodId>,
    /// The session the event happened in (or that it ended), when there is one.
    pub session_id: Option<Uuid>,
    /// The TCP peer address of the request (`Req.ip`).
    pub ip_address: String,
    /// The request's `User-Agent` (at most [`MAX_USER_AGENT`] characters).
    pub user_agent: String,
    pub created_at: OffsetDateTime,
}

impl ActivityEvent {
    /// The position right after this entry in a newest-first listing.
    pub fn cursor(&self) -> ActivityCursor {
        ActivityCursor { created_at: self.created_at, id: self.id }
    }
}

/// A position in a newest-first listing: the last entry's `(created_at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityCursor {
    pub created_at: OffsetDateTime,
    pub id: Uuid,
}

impl ActivityCursor {
    /// Opaque text form (`page_token`): `<microseconds>_<uuid>`.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.created_at.unix_timestamp_nanos() / 1000, self.id.simple())
    }

    pub fn decode(s: &str) -> Option<ActivityCursor> {
        let (t, id) = s.split_once('_')?;
        let micros: i128 = t.parse().ok()?;
        let created_at = OffsetDateTime::from_unix_timestamp_nanos(micros.checked_mul(1000)?).ok()?;
        Some(ActivityCursor { created_at, id: Uuid::parse_str(id).ok()? })
    }
}

impl Engine {
    /// A new event about `identity_id` from the request `req`, at the engine's time.
    pub fn activity(
        &self,
        identity_id: Uuid,
        kind: ActivityKind,
        outcome: Outcome,
        method: Option<MethodId>,
        session_id: Option<Uuid>,
        req: &Req,
    ) -> ActivityEvent {
        ActivityEvent {
            id: Uuid::new_v4(),
            identity_id,
            kind,
            outcome,
            method,
            session_id,
            ip_address: req.ip.chars().take(64).collect(),
            user_agent: req.user_agent.chars().take(MAX_USER_AGENT).collect(),
            created_at: self.clock.now(),
        }
    }

    /// The successful events of one change, in order, for its commit
    /// (`Commit::record_activity`): e.g. the change itself, then the other sessions it ended.
    pub fn successes(
        &self,
        identity_id: Uuid,
        kinds: impl IntoIterator<Item = ActivityKind>,
        method: Option<MethodId>,
        session_id: Option<Uuid>,
        req: &Req,
    ) -> Vec<ActivityEvent> {
        kinds.into_iter().map(|k| self.activity(identity_id, k, Outcome::Success, method, session_id, req)).collect()
    }

    /// A page of `identity_id`'s activity, newest first, after `cursor`.
    pub async fn list_activity(
        &self,
        identity_id: Uuid,
        cursor: Option<ActivityCursor>,
        limit: u32,
    ) -> crate::error::Result<Vec<ActivityEvent>> {
        Ok(self.store.list_activity(identity_id, cursor, limit.clamp(1, 1000)).await?)
    }

    /// Store events that come without a change (a failed sign-in), off the request's path: a
    /// known identifier then answers as fast as an unknown one (the write is not a timing
    /// signal), and a failing write costs the request nothing (it is logged).
    pub fn record_activity_detached(&self, events: Vec<ActivityEvent>) {
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.record_activity(&events).await {
                tracing::warn!(error = %e, "could not record account activity");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in ActivityKind::ALL {
            assert_eq!(ActivityKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap_or_default(), serde_json::json!(k.as_str()));
            assert!(!k.describe(None).is_empty());
        }
        assert_eq!(ActivityKind::parse("nope"), None);
        assert_eq!(Outcome::parse(Outcome::Failure.as_str()), Some(Outcome::Failure));
    }

    #[test]
    fn cursor_round_trip() {
        let c = ActivityCursor {
            created_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH),
            id: Uuid::new_v4(),
        };
        assert_eq!(ActivityCursor::decode(&c.encode()), Some(c));
        assert_eq!(ActivityCursor::decode("x"), None);
        assert_eq!(ActivityCursor::decode("99999999999999999999999999_00000000000000000000000000000000"), None);
    }
}
