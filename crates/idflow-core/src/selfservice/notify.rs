//! Security notifications (checklist T21): which notice a change causes, and the mails that
//! carry it to the addresses the account had BEFORE the change.
//!
//! One place decides: [`settings_notices`] compares the identity before and after a settings
//! change (whatever the method), [`Notice::SessionsRevoked`] is what the user ending all other
//! sessions (or a recovery that ends them) causes. The flows only queue the mails of
//! [`Engine::notification_mails`] in the commit of the change itself (`Commit::queue_messages`),
//! so there is no change without its mail and no mail without its change. Each notice has a
//! switch `selfservice.notifications.<event>` (on by default). A mail never carries a secret:
//! its text is fixed per notice, and its "this wasn't me" link starts account recovery.

use super::Engine;
use crate::config::Notifications;
use crate::courier::{Message, TemplateType};
use crate::error::Result;
use crate::model::{CredentialType, Identity, MethodId};
use crate::schema::IdentitySchema;
use serde_json::json;
use std::collections::BTreeSet;

/// A security notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Notice {
    PasswordChanged,
    IdentifierChanged,
    /// A trait the identity schema marks `notify` (and that is no identifier) was changed.
    ProfileChanged,
    /// A second factor was added; the credential says which (recovery codes: regenerated).
    SecondFactorAdded(CredentialType),
    SecondFactorRemoved(CredentialType),
    SocialLinked,
    SocialUnlinked,
    SessionsRevoked,
}

impl Notice {
    /// The switch name (`selfservice.notifications.<event>`).
    pub fn event(self) -> &'static str {
        match self {
            Notice::PasswordChanged => "password_changed",
            Notice::IdentifierChanged => "identifier_changed",
            Notice::ProfileChanged => "profile_changed",
            Notice::SecondFactorAdded(_) => "second_factor_added",
            Notice::SecondFactorRemoved(_) => "second_factor_removed",
            Notice::SocialLinked => "social_linked",
            Notice::SocialUnlinked => "social_unlinked",
            Notice::SessionsRevoked => "sessions_revoked",
        }
    }

    /// Whether the configuration sends this notice.
    pub fn enabled(self, n: &Notifications) -> bool {
        match self {
            Notice::PasswordChanged => n.password_changed,
            Notice::IdentifierChanged => n.identifier_changed,
            Notice::ProfileChanged => n.profile_changed,
            Notice::SecondFactorAdded(_) => n.second_factor_added,
            Notice::SecondFactorRemoved(_) => n.second_factor_removed,
            Notice::SocialLinked => n.social_linked,
            Notice::SocialUnlinked => n.social_unlinked,
            Notice::SessionsRevoked => n.sessions_revoked,
        }
    }

    /// Subject and text of the mail (fixed texts: nothing from the request, never a secret).
    pub fn text(self) -> (&'static str, String) {
        let factor = |t: CredentialType| match t {
            CredentialType::Totp => "an authenticator app",
            CredentialType::LookupSecret => "recovery codes",
            CredentialType::Webauthn => "a security key",
            CredentialType::Passkey => "a passkey",
            CredentialType::Password => "a password",
            CredentialType::Oidc => "a social sign-in account",
        };
        match self {
            Notice::PasswordChanged => ("Your password was changed", "The password of your account was changed.".into()),
            Notice::IdentifierChanged => (
                "Your email address or sign-in identifier was changed",
                "An email address or sign-in identifier of your account was changed. This message goes to the addresses your account had before the change.".into(),
            ),
            Notice::ProfileChanged => (
                "Your account details were changed",
                "Details of your account that you asked to be told about were changed.".into(),
            ),
            Notice::SecondFactorAdded(CredentialType::LookupSecret) => (
                "New recovery codes were created",
                "New recovery codes were created for your account; the previous codes no longer work.".into(),
            ),
            Notice::SecondFactorAdded(t) => {
                ("A sign-in method was added", format!("{} was added to your account for signing in.", capital(factor(t))))
            }
            Notice::SecondFactorRemoved(CredentialType::LookupSecret) => {
                ("Your recovery codes were disabled", "The recovery codes of your account were disabled.".into())
            }
            Notice::SecondFactorRemoved(t) => (
                "A sign-in method was removed",
                format!("{} was removed from your account.", capital(factor(t))),
            ),
            Notice::SocialLinked => {
                ("A social sign-in account was linked", "A social sign-in account was linked to your account.".into())
            }
            Notice::SocialUnlinked => (
                "A social sign-in account was unlinked",
                "A social sign-in account was unlinked from your account.".into(),
            ),
            Notice::SessionsRevoked => (
                "You were signed out everywhere else",
                "All other sessions of your account were signed out.".into(),
            ),
        }
    }
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// The notices a settings change of `method` causes, from the identity before and after it.
/// `schema` (the identity's) applies the per-trait `notify` policy: an identifier or address
/// change notifies unless every changed trait opts out (`notify: false`), and a change of any
/// other trait marked `notify: true` sends [`Notice::ProfileChanged`].
pub fn settings_notices(
    before: &Identity,
    after: &Identity,
    method: MethodId,
    schema: Option<&IdentitySchema>,
) -> Vec<Notice> {
    let mut out = BTreeSet::new();
    // A password set or changed (its stored hash differs; a rehash never happens in settings).
    if after.password_hash().is_some() && before.password_hash() != after.password_hash() {
        out.insert(Notice::PasswordChanged);
    }
    let changed = schema.map(|s| s.changed_fields(&before.traits, &after.traits)).unwrap_or_default();
    let wanted = changed.is_empty() || changed.iter().any(|(_, p)| p.notify);
    if identifier_change_notifies(before, after) {
        if wanted {
            out.insert(Notice::IdentifierChanged);
        }
    } else if changed.iter().any(|(_, p)| p.notify) {
        out.insert(Notice::ProfileChanged);
    }
    let (b, a) = (before.factor_counts(), after.factor_counts());
    let count = |m: &std::collections::BTreeMap<CredentialType, usize>, t| m.get(&t).copied().unwrap_or(0);
    let config = |i: &Identity, t| i.credential(t).map(|c| c.config.clone());
    for t in [CredentialType::Totp, CredentialType::Webauthn, CredentialType::Passkey, CredentialType::LookupSecret] {
        let (nb, na) = (count(&b, t), count(&a, t));
        if na > nb {
            out.insert(Notice::SecondFactorAdded(t));
        } else if na < nb {
            out.insert(Notice::SecondFactorRemoved(t));
        } else if na > 0
            && matches!(
                (t, method),
                (CredentialType::Totp, MethodId::Totp) | (CredentialType::LookupSecret, MethodId::LookupSecret)
            )
            && config(before, t) != config(after, t)
        {
            // Replaced in place: a new authenticator app, regenerated recovery codes.
            out.insert(Notice::SecondFactorAdded(t));
        }
    }
    let (nb, na) = (count(&b, CredentialType::Oidc), count(&a, CredentialType::Oidc));
    if na > nb {
        out.insert(Notice::SocialLinked);
    } else if na < nb {
        out.insert(Notice::SocialUnlinked);
    }
    out.into_iter().collect()
}

/// The notices of a completed recovery: it signs out the other sessions (the recovery hook
/// `revoke_active_sessions`, on by default). The new password is set in the settings flow the
/// recovery opens, which notifies `password_changed` like any settings change.
pub fn recovery_notices(revoked_sessions: bool) -> Vec<Notice> {
    if revoked_sessions { vec![Notice::SessionsRevoked] } else { vec![] }
}

/// Whether a profile change notifies: it altered a login identifier or an email address
/// (verifiable or recovery). The ONE place deciding "does this trait change notify": a
/// per-trait schema flag (`notify`) plugs in here.
pub fn identifier_change_notifies(before: &Identity, after: &Identity) -> bool {
    let identifiers = |i: &Identity| -> BTreeSet<String> {
        i.credential(CredentialType::Password).map(|c| c.identifiers.iter().cloned().collect()).unwrap_or_default()
    };
    let addresses = |i: &Identity| -> BTreeSet<(String, String)> {
        i.verifiable_addresses
            .iter()
            .map(|a| (a.via.clone(), a.value.to_lowercase()))
            .chain(i.recovery_addresses.iter().map(|a| (a.via.clone(), a.value.to_lowercase())))
            .collect()
    };
    identifiers(before) != identifiers(after) || addresses(before) != addresses(after)
}

/// The email addresses an identity has (verifiable and recovery, lower case, each once): where
/// its notifications go.
pub fn notification_recipients(i: &Identity) -> Vec<String> {
    let all: BTreeSet<String> = i
        .verifiable_addresses
        .iter()
        .filter(|a| a.via == "email")
        .map(|a| a.value.to_lowercase())
        .chain(i.recovery_addresses.iter().filter(|a| a.via == "email").map(|a| a.value.to_lowercase()))
        .filter(|v| !v.is_empty())
        .collect();
    all.into_iter().collect()
}

impl Engine {
    /// The mails of `notices` to the addresses of `before` (the identity as it was before the
    /// change), switched-off notices left out; queue them in the change's commit.
    pub fn notification_mails(&self, before: &Identity, notices: &[Notice]) -> Result<Vec<Message>> {
        let cfg = &self.cfg.selfservice.notifications;
        let recipients = notification_recipients(before);
        let recovery_url = self.url("/self-service/recovery/browser");
        let mut out = vec![];
        for n in notices.iter().filter(|n| n.enabled(cfg)) {
            let (subject, body) = n.text();
            for to in &recipients {
                let data = json!({
                    "Identity": super::methods::code::template_identity(before),
                    "Subject": subject,
                    "Body": body,
                    "RecoveryURL": recovery_url,
                    "Event": n.event(),
                });
                out.push(self.render_mail(TemplateType::SecurityNotification, to, data)?);
            }
        }
        if !out.is_empty() {
            tracing::info!(identity_id = %before.id, mails = out.len(), "security notifications queued");
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Credential;
    use time::OffsetDateTime;

    fn identity() -> Identity {
        Identity::new("default", json!({"email": "a@example.org"}), OffsetDateTime::UNIX_EPOCH)
    }

    fn with(mut i: Identity, t: CredentialType, config: serde_json::Value) -> Identity {
        i.credentials.insert(t, Credential::new(t, vec![], config, OffsetDateTime::UNIX_EPOCH));
        i
    }

    #[test]
    fn decisions() {
        let base = with(identity(), CredentialType::Password, json!({"hashed_password": "h1"}));
        let changed = with(base.clone(), CredentialType::Password, json!({"hashed_password": "h2"}));
        assert_eq!(settings_notices(&base, &changed, MethodId::Password, None), vec![Notice::PasswordChanged]);
        assert_eq!(settings_notices(&base, &base, MethodId::Profile, None), vec![]);
        let totp = with(base.clone(), CredentialType::Totp, json!({"totp_url": "otpauth://x"}));
        assert_eq!(
            settings_notices(&base, &totp, MethodId::Totp, None),
            vec![Notice::SecondFactorAdded(CredentialType::Totp)]
        );
        assert_eq!(
            settings_notices(&totp, &base, MethodId::Totp, None),
            vec![Notice::SecondFactorRemoved(CredentialType::Totp)]
        );
        let codes = with(base.clone(), CredentialType::LookupSecret, json!({"codes": [1]}));
        let regenerated = with(base.clone(), CredentialType::LookupSecret, json!({"codes": [2]}));
        assert_eq!(
            settings_notices(&codes, &regenerated, MethodId::LookupSecret, None),
            vec![Notice::SecondFactorAdded(CredentialType::LookupSecret)]
        );
        let linked = with(base.clone(), CredentialType::Oidc, json!({"providers": [{"provider": "g"}]}));
        assert_eq!(settings_notices(&base, &linked, MethodId::Oidc, None), vec![Notice::SocialLinked]);
        assert_eq!(settings_notices(&linked, &base, MethodId::Oidc, None), vec![Notice::SocialUnlinked]);
        for n in [Notice::PasswordChanged, Notice::SessionsRevoked, Notice::SecondFactorAdded(CredentialType::Webauthn)]
        {
            assert!(n.enabled(&Notifications::default()));
            assert!(!n.text().1.is_empty());
        }
    }
}
