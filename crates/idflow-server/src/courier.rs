//! SMTP delivery for the core's courier worker: `courier.smtp.*` mapped onto lettre (rustls),
//! and the worker task started by `serve` (unless `courier.worker.enabled` is false) and by
//! `idflow courier watch`.
//!
//! The connection URI is read with Kratos's meaning, by hand (lettre's own URL parser treats
//! `smtp://` as plain text): `smtp://` requires STARTTLS unless `?disable_starttls=true`,
//! `smtps://` is TLS from the first byte, `?skip_ssl_verify=true` accepts any certificate,
//! `?server_name=` names the certificate's host.

use idflow_core::config::CourierConfig;
use idflow_core::courier::worker::{MailTransport, Worker};
use idflow_core::courier::{Message, SmtpUri};
use idflow_core::selfservice::Engine;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::sync::Arc;

/// Sends messages through one SMTP server.
pub struct SmtpTransport {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    headers: Vec<(HeaderName, String)>,
    /// Bound on one whole attempt (lettre's own timeout covers single reads, not a server
    /// that trickles or never greets).
    timeout: std::time::Duration,
}

impl SmtpTransport {
    /// Build the transport from `courier.smtp.*` (the URI is checked when the config loads;
    /// errors here name the key too).
    pub fn from_config(cfg: &CourierConfig) -> anyhow::Result<Option<SmtpTransport>> {
        let smtp = &cfg.smtp;
        let Some(uri) = &smtp.connection_uri else { return Ok(None) };
        let uri = SmtpUri::parse(&uri.0)
            .map_err(|e| anyhow::anyhow!("invalid configuration at key `courier.smtp.connection_uri`: {e}"))?;
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(uri.host.clone())
            .port(uri.port)
            .timeout(Some(smtp.timeout.0))
            .pool_config(PoolConfig::new().max_size(4));
        if uri.implicit_tls || uri.starttls {
            let domain = uri.server_name.clone().unwrap_or_else(|| uri.host.clone());
            let params = TlsParameters::builder(domain)
                .dangerous_accept_invalid_certs(uri.skip_ssl_verify)
                .dangerous_accept_invalid_hostnames(uri.skip_ssl_verify)
                .build_rustls()
                .map_err(|e| anyhow::anyhow!("courier.smtp.connection_uri: could not set up TLS: {e}"))?;
            b = b.tls(if uri.implicit_tls { Tls::Wrapper(params) } else { Tls::Required(params) });
        } else {
            b = b.tls(Tls::None);
        }
        if let Some(user) = &uri.username {
            b = b.credentials(Credentials::new(user.clone(), uri.password.clone().unwrap_or_default()));
        }
        if let Some(name) = &smtp.local_name {
            b = b.hello_name(ClientId::Domain(name.clone()));
        }
        let address = smtp
            .from_address
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid configuration at key `courier.smtp.from_address`: {e}"))?;
        let from = Mailbox::new(smtp.from_name.clone(), address);
        let mut headers = vec![];
        for (k, v) in &smtp.headers {
            let name = HeaderName::new_from_ascii(k.clone())
                .map_err(|_| anyhow::anyhow!("invalid configuration at key `courier.smtp.headers.{k}`"))?;
            headers.push((name, v.clone()));
        }
        Ok(Some(SmtpTransport { transport: b.build(), from, headers, timeout: smtp.timeout.0 }))
    }
}

#[async_trait::async_trait]
impl MailTransport for SmtpTransport {
    async fn send(&self, m: &Message) -> Result<(), String> {
        let to: Mailbox = m.recipient.parse().map_err(|e| format!("invalid recipient address: {e}"))?;
        let mut b = lettre::Message::builder().from(self.from.clone()).to(to).subject(m.subject.clone());
        for (name, value) in &self.headers {
            b = b.raw_header(HeaderValue::new(name.clone(), value.clone()));
        }
        let mail = b
            .multipart(MultiPart::alternative_plain_html(m.body.clone(), m.html_body.clone()))
            .map_err(|e| format!("could not build the message: {e}"))?;
        match tokio::time::timeout(self.timeout, self.transport.send(mail)).await {
            Ok(r) => r.map(|_| ()).map_err(|e| e.to_string()),
            Err(_) => Err(format!("the SMTP server did not complete within {} ms", self.timeout.as_millis())),
        }
    }
}

/// The transport `courier.smtp.*` describes; without a connection URI, a transport that fails
/// every attempt (messages wait in the queue as `queued`, see [`start_worker`]).
pub fn transport(cfg: &CourierConfig) -> anyhow::Result<Option<Arc<dyn MailTransport>>> {
    Ok(SmtpTransport::from_config(cfg)?.map(|t| Arc::new(t) as Arc<dyn MailTransport>))
}

/// Warn that mail is queued but not sent.
pub fn warn_unconfigured() {
    tracing::warn!(
        "no SMTP server configured: mail is queued in the database but not sent; set \
         `courier.smtp.connection_uri` (e.g. smtps://user:password@mail.example.org:465/) to deliver it"
    );
}

/// Run the courier worker until `shutdown` resolves. Without SMTP configured nothing is
/// claimed: messages stay `queued` until a node with SMTP sends them.
pub async fn run_worker(
    engine: Arc<Engine>,
    transport: Option<Arc<dyn MailTransport>>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let Some(transport) = transport else {
        shutdown.await;
        return;
    };
    let worker = Worker::new(engine.store.clone(), engine.clock.clone(), engine.cfg.courier.clone(), transport);
    worker.run_until(shutdown).await;
}
