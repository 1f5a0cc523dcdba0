//! The mail courier: message types, template rendering and the sending loop.
//!
//! A flow that sends mail renders it with [`Courier::render`] (through
//! [`crate::selfservice::Engine::render_mail`]) and queues the [`Message`] in the same
//! [`crate::store::Commit`] as the flow change that causes it (`Commit::queue_messages`), so a
//! flow change and its mail are one transaction. The [`worker`] claims queued messages from the
//! store (one node per message: a lease), hands them to a [`worker::MailTransport`] (SMTP in the
//! server) and records each attempt as a [`Dispatch`]: sent, retried later with back-off, or
//! abandoned after `courier.message_retries` retries.

mod template;
pub mod worker;

pub use template::{Courier, TemplateError};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// What a message is about (Kratos's template types). The name is stored and shown by the
/// admin API (`template_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateType {
    RecoveryCodeValid,
    RecoveryCodeInvalid,
    RecoveryValid,
    RecoveryInvalid,
    VerificationCodeValid,
    VerificationCodeInvalid,
    VerificationValid,
    VerificationInvalid,
    /// A notice about the account (credential changed, new sign-in, …); data: `Identity`,
    /// `Subject`, `Body` (both plain text).
    SecurityNotification,
    /// The account was scheduled for deletion; data: `Identity`, `DeleteAfter` (RFC 3339),
    /// `DeleteAfterDate` (a readable UTC date), `CancelURL` (where a sign-in offers to cancel).
    AccountDeletionScheduled,
}

impl TemplateType {
    pub const ALL: [TemplateType; 10] = [
        TemplateType::RecoveryCodeValid,
        TemplateType::RecoveryCodeInvalid,
        TemplateType::RecoveryValid,
        TemplateType::RecoveryInvalid,
        TemplateType::VerificationCodeValid,
        TemplateType::VerificationCodeInvalid,
        TemplateType::VerificationValid,
        TemplateType::VerificationInvalid,
        TemplateType::SecurityNotification,
        TemplateType::AccountDeletionScheduled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TemplateType::RecoveryCodeValid => "recovery_code_valid",
            TemplateType::RecoveryCodeInvalid => "recovery_code_invalid",
            TemplateType::RecoveryValid => "recovery_valid",
            TemplateType::RecoveryInvalid => "recovery_invalid",
            TemplateType::VerificationCodeValid => "verification_code_valid",
            TemplateType::VerificationCodeInvalid => "verification_code_invalid",
            TemplateType::VerificationValid => "verification_valid",
            TemplateType::VerificationInvalid => "verification_invalid",
            TemplateType::SecurityNotification => "security_notification",
            TemplateType::AccountDeletionScheduled => "account_deletion_scheduled",
        }
    }

    pub fn parse(s: &str) -> Option<TemplateType> {
        TemplateType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The family (`courier.templates.<family>`, folder under `template_override_path`) and
    /// the variant (`valid` / `invalid`).
    pub fn family_and_variant(self) -> (&'static str, &'static str) {
        match self {
            TemplateType::RecoveryCodeValid => ("recovery_code", "valid"),
            TemplateType::RecoveryCodeInvalid => ("recovery_code", "invalid"),
            TemplateType::RecoveryValid => ("recovery", "valid"),
            TemplateType::RecoveryInvalid => ("recovery", "invalid"),
            TemplateType::VerificationCodeValid => ("verification_code", "valid"),
            TemplateType::VerificationCodeInvalid => ("verification_code", "invalid"),
            TemplateType::VerificationValid => ("verification", "valid"),
            TemplateType::VerificationInvalid => ("verification", "invalid"),
            TemplateType::SecurityNotification => ("security_notification", "valid"),
            TemplateType::AccountDeletionScheduled => ("account_deletion_scheduled", "valid"),
        }
    }

    /// Whether `family` names a template family (a key under `courier.templates`).
    pub fn family_known(family: &str) -> Option<()> {
        TemplateType::ALL.iter().any(|t| t.family_and_variant().0 == family).then_some(())
    }
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Queued,
    /// Claimed by a worker (until its lease runs out).
    Processing,
    Sent,
    /// Failed more than `courier.message_retries` times; never retried again.
    Abandoned,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Processing => "processing",
            MessageStatus::Sent => "sent",
            MessageStatus::Abandoned => "abandoned",
        }
    }

    pub fn parse(s: &str) -> Option<MessageStatus> {
        [MessageStatus::Queued, MessageStatus::Processing, MessageStatus::Sent, MessageStatus::Abandoned]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// One rendered mail and its delivery state.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: Uuid,
    pub status: MessageStatus,
    /// Always `email` for now (Kratos's `channel`; the admin API's `type`).
    pub channel: String,
    pub recipient: String,
    pub subject: String,
    /// The plain-text body (Kratos's `body`).
    pub body: String,
    pub html_body: String,
    pub template_type: TemplateType,
    /// The data the templates were rendered with.
    pub template_data: Value,
    /// Attempts made so far.
    pub send_count: i64,
    /// Not claimed before this time (back-off after a failed attempt).
    pub next_attempt_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Attempts, oldest first (filled by the store's list/get, empty when queueing).
    pub dispatches: Vec<Dispatch>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatchStatus {
    Failed,
    Success,
}

impl DispatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DispatchStatus::Failed => "failed",
            DispatchStatus::Success => "success",
        }
    }
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatch {
    pub id: Uuid,
    pub message_id: Uuid,
    pub status: DispatchStatus,
    /// Why the attempt failed (`{"message": …}`); `None` on success.
    pub error: Option<Value>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The outcome of one attempt, as recorded by [`crate::store::Store::courier_record`].
#[derive(Debug, Clone)]
pub enum Outcome {
    Sent,
    /// Failed: retried at `retry_at`, or abandoned when `retry_at` is `None`.
    Failed {
        error: String,
        retry_at: Option<OffsetDateTime>,
    },
}

/// The admin list's filter.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub status: Option<MessageStatus>,
    pub recipient: Option<String>,
}

/// A position in the admin list (newest first): the last item's `(created_at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageToken {
    pub created_at: OffsetDateTime,
    pub id: Uuid,
}

impl PageToken {
    pub fn of(m: &Message) -> PageToken {
        PageToken { created_at: m.created_at, id: m.id }
    }

    /// Opaque text form: `<microseconds>_<uuid>`.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.created_at.unix_timestamp_nanos() / 1000, self.id.simple())
    }

    pub fn decode(s: &str) -> Option<PageToken> {
        let (t, id) = s.split_once('_')?;
        let micros: i128 = t.parse().ok()?;
        let created_at = OffsetDateTime::from_unix_timestamp_nanos(micros.checked_mul(1000)?).ok()?;
        Some(PageToken { created_at, id: Uuid::parse_str(id).ok()? })
    }
}

/// `courier.smtp.connection_uri`, read with Kratos's meaning: `smtp://` requires STARTTLS
/// unless `?disable_starttls=true`; `smtps://` is TLS from the first byte.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUri {
    pub host: String,
    pub port: u16,
    pub implicit_tls: bool,
    /// STARTTLS required (`smtp://` without `disable_starttls=true`).
    pub starttls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Accept any certificate and host name (`skip_ssl_verify=true`).
    pub skip_ssl_verify: bool,
    /// The name the certificate is checked against (default: the host).
    pub server_name: Option<String>,
}

impl std::fmt::Debug for SmtpUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpUri")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("implicit_tls", &self.implicit_tls)
            .field("starttls", &self.starttls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "**redacted**"))
            .field("skip_ssl_verify", &self.skip_ssl_verify)
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl SmtpUri {
    /// Default ports: 587 for `smtp://` (submission), 465 for `smtps://`.
    pub fn parse(s: &str) -> Result<SmtpUri, String> {
        let u = url::Url::parse(s).map_err(|e| format!("not a URL: {e}"))?;
        let implicit_tls = match u.scheme() {
            "smtp" => false,
            "smtps" => true,
            other => return Err(format!("scheme {other:?} is not supported (smtp:// or smtps://)")),
        };
        let host = u.host_str().filter(|h| !h.is_empty()).ok_or("the URL has no host")?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = u.port().unwrap_or(if implicit_tls { 465 } else { 587 });
        let decode = |v: &str| percent_decode(v);
        let username = (!u.username().is_empty()).then(|| decode(u.username()));
        let password = u.password().map(decode);
        let mut skip_ssl_verify = false;
        let mut disable_starttls = false;
        let mut server_name = None;
        let flag = |k: &str, v: &str| -> Result<bool, String> {
            match v {
                "true" | "1" => Ok(true),
                "false" | "0" | "" => Ok(false),
                _ => Err(format!("query parameter {k} must be true or false")),
            }
        };
        for (k, v) in u.query_pairs() {
            match k.as_ref() {
                "skip_ssl_verify" => skip_ssl_verify = flag(&k, &v)?,
                "disable_starttls" => disable_starttls = flag(&k, &v)?,
                "server_name" => server_name = Some(v.into_owned()).filter(|s| !s.is_empty()),
                // Kratos's legacy spelling of smtps://.
                "legacy_ssl" => {}
                other => return Err(format!("unknown query parameter {other:?}")),
            }
        }
        Ok(SmtpUri {
            host,
            port,
            implicit_tls,
            starttls: !implicit_tls && !disable_starttls,
            username,
            password,
            skip_ssl_verify,
            server_name,
        })
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_uri_semantics() {
        let u = SmtpUri::parse("smtp://user%40x:p%2Bw@mail.example.org").unwrap();
        assert!(u.starttls && !u.implicit_tls);
        assert_eq!((u.host.as_str(), u.port), ("mail.example.org", 587));
        assert_eq!(u.username.as_deref(), Some("user@x"));
        assert_eq!(u.password.as_deref(), Some("p+w"));
        assert!(!format!("{u:?}").contains("p+w"));
        let u = SmtpUri::parse("smtp://h:2525/?disable_starttls=true").unwrap();
        assert!(!u.starttls && !u.implicit_tls);
        let u = SmtpUri::parse("smtps://h/?skip_ssl_verify=true&server_name=mx.example.org").unwrap();
        assert!(u.implicit_tls && !u.starttls && u.skip_ssl_verify);
        assert_eq!((u.port, u.server_name.as_deref()), (465, Some("mx.example.org")));
        assert!(SmtpUri::parse("http://h").is_err());
        assert!(SmtpUri::parse("smtp://h/?skip_ssl_verify=maybe").is_err());
        assert!(SmtpUri::parse("smtp://h/?bogus=1").is_err());
    }

    #[test]
    fn courier_config_is_validated_and_redacted() {
        use crate::config::Config;
        let c = Config::load(
            Some("courier:\n  smtp:\n    connection_uri: smtps://mailer:s3cretpw@mail.example.org:465/\n    from_address: a@example.org\n"),
            vec![("IDFLOW_COURIER__WORKER__PULL_COUNT".to_string(), "7".to_string())],
        )
        .unwrap();
        assert_eq!(c.courier.worker.pull_count, 7);
        assert_eq!(c.courier.message_retries, 5);
        let y = c.redacted_yaml();
        assert!(!y.contains("s3cretpw") && y.contains("mailer:**redacted**@mail.example.org"), "{y}");
        assert!(!format!("{c:?}").contains("s3cretpw"));
        for (yaml, key) in [
            ("courier:\n  smtp:\n    connection_uri: http://x/\n", "courier.smtp.connection_uri"),
            ("courier:\n  smtp:\n    from_address: nobody\n", "courier.smtp.from_address"),
            ("courier:\n  delivery_strategy: http\n", "courier.delivery_strategy"),
            ("courier:\n  worker:\n    pull_count: 0\n", "courier.worker.pull_count"),
            ("courier:\n  worker:\n    lease: 1s\n", "courier.worker.lease"),
            ("courier:\n  templates:\n    recovery_cod: {}\n", "courier.templates.recovery_cod"),
            ("courier:\n  smtp:\n    headers:\n      \"Bad Name\": x\n", "courier.smtp.headers"),
        ] {
            let e = Config::load(Some(yaml), vec![]).unwrap_err();
            assert!(e.0.contains(key), "{yaml}: {}", e.0);
        }
    }

    #[test]
    fn page_token_round_trip() {
        let t =
            PageToken { created_at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(), id: Uuid::new_v4() };
        assert_eq!(PageToken::decode(&t.encode()), Some(t));
        assert_eq!(PageToken::decode("nope"), None);
        assert_eq!(PageToken::decode("1_notauuid"), None);
    }
}
