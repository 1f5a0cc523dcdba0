//! Sessions: activation on login/registration, refresh and step-up, whoami, logout.

use super::notify::Notice;
use super::{Authed, Engine, Req};
use crate::activity::{ActivityEvent, ActivityKind, Outcome};
use crate::crypto;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Aal, AuthMethod, Device, Identity, Session};
use crate::store::Commit;
use uuid::Uuid;

/// A session with the raw tokens that were just minted (only known at issue time).
#[derive(Debug, Clone)]
pub struct Issued {
    pub session: Session,
    pub token: String,
    pub logout_token: String,
}

impl Engine {
    /// The AAL a method contributes.
    pub fn method_aal(&self, method: &str) -> Aal {
        super::methods::MethodId::parse(method).map_or(Aal::Aal1, |id| super::methods::get(id).aal(self))
    }

    /// A brand-new session for `identity` after `method` (not stored yet).
    pub fn new_session(&self, identity: &Identity, method: &str, req: &Req) -> Issued {
        let now = self.clock.now();
        let token = crypto::random_token(&self.cfg.session.token_prefix);
        let logout_token = crypto::random_token("idf_lo_");
        let mut s = Session {
            id: Uuid::new_v4(),
            token_hash: crypto::token_hash(&token),
            logout_token_hash: crypto::token_hash(&logout_token),
            identity_id: identity.id,
            active: true,
            aal: Aal::Aal0,
            authentication_methods: vec![AuthMethod {
                method: method.into(),
                aal: self.method_aal(method),
                completed_at: now,
                provider: None,
            }],
            authenticated_at: now,
            issued_at: now,
            expires_at: now + self.cfg.session.lifespan.as_time(),
            devices: vec![Device {
                id: Uuid::new_v4(),
                ip_address: req.ip.clone(),
                user_agent: req.user_agent.clone(),
                location: String::new(),
            }],
            created_at: now,
            updated_at: now,
        };
        s.recompute_aal();
        Issued { session: s, token, logout_token }
    }

    /// Add a factor enrolled in settings to the session: its AAL may rise, but an enrolment is
    /// not a sign-in, so `authenticated_at` (the privileged window) and `expires_at` stay.
    pub fn add_enrolled_method(&self, s: &Session, method: &str) -> Issued {
        let now = self.clock.now();
        let mut s = s.clone();
        s.authentication_methods.push(AuthMethod {
            method: method.into(),
            aal: self.method_aal(method),
            completed_at: now,
            provider: None,
        });
        s.recompute_aal();
        s.updated_at = now;
        Issued { session: s, token: String::new(), logout_token: String::new() }
    }

    /// Add a completed method to an existing session (refresh / step-up):
    /// `authenticated_at` and `expires_at` move to now, and the token is rotated (the old one
    /// stops working) when `rotate` is set.
    pub fn extend_session(&self, s: &Session, method: &str, rotate: bool) -> Issued {
        // The method is added as for an enrolment; a sign-in also moves the windows.
        let mut issued = self.add_enrolled_method(s, method);
        let s = &mut issued.session;
        s.authenticated_at = s.updated_at;
        s.expires_at = s.updated_at + self.cfg.session.lifespan.as_time();
        if rotate {
            issued.token = crypto::random_token(&self.cfg.session.token_prefix);
            issued.logout_token = crypto::random_token("idf_lo_");
            s.token_hash = crypto::token_hash(&issued.token);
            s.logout_token_hash = crypto::token_hash(&issued.logout_token);
        }
        issued
    }

    /// `GET /sessions/whoami`: 401 without a valid session, 403 when the AAL is too low.
    pub fn whoami(&self, auth: Option<Authed>) -> Result<Authed> {
        let a = auth
            .ok_or_else(|| Error::new(ErrorKind::Unauthorized, "No valid session credentials found in the request."))?;
        if !self.aal_ok(self.cfg.session.whoami.required_aal, &a) {
            return Err(self.aal2_error(None));
        }
        Ok(a)
    }

    /// End `session` with its activity-log `events` in one commit. A session that is not
    /// active (any more) stays as it is and records nothing: `Ok(false)`.
    pub(crate) async fn end_session(&self, session: &Session, events: &[ActivityEvent]) -> Result<bool> {
        if !session.active {
            return Ok(false);
        }
        let mut s = session.clone();
        s.active = false;
        s.updated_at = self.clock.now();
        match self
            .store
            .commit(Commit { update_session: Some(&s), record_activity: events, ..Default::default() })
            .await
        {
            Ok(_) => Ok(true),
            Err(crate::store::StoreError::SessionRevoked) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Revoke the caller's session (logout).
    pub async fn logout(&self, a: &Authed, req: &Req) -> Result<()> {
        let event = self.activity(a.identity.id, ActivityKind::Logout, Outcome::Success, None, Some(a.session.id), req);
        self.end_session(&a.session, &[event]).await?;
        Ok(())
    }

    /// `DELETE /self-service/logout/api`: revoke by token; unknown tokens are 403.
    pub async fn logout_by_token(&self, token: &str, req: &Req) -> Result<()> {
        let s = self.store.get_session_by_token_hash(&crypto::token_hash(token)).await?;
        match s {
            Some(s) => {
                let event = self.activity(s.identity_id, ActivityKind::Logout, Outcome::Success, None, Some(s.id), req);
                self.end_session(&s, &[event]).await?;
                Ok(())
            }
            None => Err(Error::new(
                ErrorKind::Forbidden,
                "The provided Ory Session Token could not be found, is invalid, or otherwise malformed.",
            )),
        }
    }

    /// Browser logout with a logout token: must belong to the caller's session.
    pub async fn logout_with_logout_token(&self, a: &Authed, logout_token: &str, req: &Req) -> Result<()> {
        if !crypto::ct_eq(crypto::token_hash(logout_token).as_bytes(), a.session.logout_token_hash.as_bytes()) {
            return Err(Error::new(
                ErrorKind::Forbidden,
                "Unable to log out because the logout token in the URL query does not match the session cookie.",
            ));
        }
        self.logout(a, req).await
    }

    /// A fresh logout token for the caller's session (browser logout flow).
    pub async fn new_logout_token(&self, a: &Authed) -> Result<String> {
        let token = crypto::random_token("idf_lo_");
        let mut s = a.session.clone();
        s.logout_token_hash = crypto::token_hash(&token);
        s.updated_at = self.clock.now();
        self.store.commit(Commit { update_session: Some(&s), ..Default::default() }).await?;
        Ok(token)
    }

    /// The caller's other active sessions.
    pub async fn my_other_sessions(&self, a: &Authed) -> Result<Vec<Session>> {
        let now = self.clock.now();
        let all = self.store.list_sessions(Some(a.identity.id), true, None, 1000).await?;
        Ok(all.into_iter().filter(|s| s.id != a.session.id && s.is_active(now)).collect())
    }

    /// Revoke all other sessions of the caller: one commit with its activity entry and the
    /// `sessions_revoked` notification.
    pub async fn revoke_my_other_sessions(&self, a: &Authed, req: &Req) -> Result<u64> {
        let event = self.activity(
            a.identity.id,
            ActivityKind::OtherSessionsRevoked,
            Outcome::Success,
            None,
            Some(a.session.id),
            req,
        );
        let mails = self.notification_mails(&a.identity, &[Notice::SessionsRevoked])?;
        Ok(self
            .store
            .commit(Commit {
                revoke_other_sessions: Some((a.identity.id, Some(a.session.id))),
                queue_messages: &mails,
                record_activity: &[event],
                ..Default::default()
            })
            .await?)
    }

    /// Revoke one of the caller's other sessions.
    pub async fn revoke_my_session(&self, a: &Authed, id: Uuid, req: &Req) -> Result<()> {
        if id == a.session.id {
            return Err(Error::bad_request("You tried to revoke the current session. Use the logout flow instead."));
        }
        match self.store.get_session(id).await? {
            Some(s) if s.identity_id == a.identity.id => {
                let event =
                    self.activity(a.identity.id, ActivityKind::SessionRevoked, Outcome::Success, None, Some(id), req);
                self.end_session(&s, &[event]).await?;
                Ok(())
            }
            _ => Err(Error::not_found("The requested session could not be found.")),
        }
    }

    /// `DELETE /admin/sessions/{id}`: end a session (an administrator's change, logged on its
    /// identity). `Ok(false)` when there is no such session.
    pub async fn admin_revoke_session(&self, id: Uuid, req: &Req) -> Result<bool> {
        let Some(s) = self.store.get_session(id).await? else { return Ok(false) };
        let event =
            self.activity(s.identity_id, ActivityKind::AdminSessionRevoked, Outcome::Success, None, Some(id), req);
        self.end_session(&s, &[event]).await?;
        Ok(true)
    }

    /// `DELETE /admin/identities/{id}/sessions`: delete all sessions of an identity, then log it
    /// (the deletion is its own statement; a failed log write is reported, not undone).
    pub async fn admin_delete_sessions(&self, identity_id: Uuid, req: &Req) -> Result<u64> {
        let n = self.store.delete_sessions_of(identity_id).await?;
        let event = self.activity(identity_id, ActivityKind::AdminSessionRevoked, Outcome::Success, None, None, req);
        if let Err(e) = self.store.record_activity(&[event]).await {
            tracing::warn!(error = %e, identity_id = %identity_id, "could not record account activity");
        }
        Ok(n)
    }
}
