//! An in-process SMTP sink (plain, or STARTTLS with a self-signed certificate) that records
//! every message it accepts, the courier settings that send to it, and `eventually` (poll until
//! a condition holds).

use idflow_core::config::{Config, Dur, Secret};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::rustls;

// ---------------------------------------------------------------------------------------------
// The SMTP sink

/// How the sink answers.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Accept,
    /// `550` to every RCPT TO.
    RejectRecipient,
    /// Wait this long before the greeting (longer than the client's timeout).
    Slow(Duration),
}

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
    pub tls: bool,
}

pub struct Sink {
    pub addr: SocketAddr,
    pub mails: Arc<Mutex<Vec<Mail>>>,
    /// RCPT TO commands seen (accepted or not).
    pub rcpts: Arc<Mutex<Vec<String>>>,
}

impl Sink {
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

pub async fn start_sink(mode: Mode, tls: Option<Arc<rustls::ServerConfig>>) -> Sink {
    start_sink_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), mode, tls)
}

pub fn start_sink_on(listener: TcpListener, mode: Mode, tls: Option<Arc<rustls::ServerConfig>>) -> Sink {
    let addr = listener.local_addr().unwrap();
    let mails = Arc::new(Mutex::new(vec![]));
    let rcpts = Arc::new(Mutex::new(vec![]));
    let (m, r) = (mails.clone(), rcpts.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (m, r, tls) = (m.clone(), r.clone(), tls.clone());
            tokio::spawn(async move {
                if let Mode::Slow(d) = mode {
                    tokio::time::sleep(d).await;
                }
                let Ok(Some(plain)) = session(stream, mode, tls.is_some(), false, &m, &r).await else { return };
                // STARTTLS: handshake, then the conversation starts again (without a greeting).
                let Some(cfg) = tls else { return };
                let Ok(secure) = tokio_rustls::TlsAcceptor::from(cfg).accept(plain).await else { return };
                let _ = session(secure, mode, false, true, &m, &r).await;
            });
        }
    });
    Sink { addr, mails, rcpts }
}

/// One SMTP conversation. Returns the stream when the client asked for STARTTLS.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    mode: Mode,
    offer_tls: bool,
    tls: bool,
    mails: &Mutex<Vec<Mail>>,
    rcpts: &Mutex<Vec<String>>,
) -> std::io::Result<Option<S>> {
    let mut io = BufReader::new(stream);
    if !tls {
        io.write_all(b"220 sink.test ESMTP\r\n").await?;
    }
    let (mut from, mut to) = (String::new(), Vec::<String>::new());
    loop {
        let mut line = String::new();
        if io.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            let starttls = if offer_tls { "250-STARTTLS\r\n" } else { "" };
            format!("250-sink.test\r\n{starttls}250-8BITMIME\r\n250 SIZE 10000000\r\n")
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            "250 OK\r\n".into()
        } else if upper == "STARTTLS" && offer_tls {
            io.write_all(b"220 ready to start TLS\r\n").await?;
            io.flush().await?;
            return Ok(Some(io.into_inner()));
        } else if upper.starts_with("MAIL FROM:") {
            from = cmd[10..].trim().trim_matches(['<', '>']).split_whitespace().next().unwrap_or("").to_string();
            to.clear();
            "250 OK\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            let rcpt = cmd[8..].trim().trim_matches(['<', '>']).to_string();
            rcpts.lock().unwrap().push(rcpt.clone());
            if matches!(mode, Mode::RejectRecipient) {
                "550 5.1.1 no such user here\r\n".into()
            } else {
                to.push(rcpt);
                "250 OK\r\n".into()
            }
        } else if upper == "DATA" {
            io.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if io.read_line(&mut l).await? == 0 {
                    return Ok(None);
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
            }
            mails.lock().unwrap().push(Mail { from: from.clone(), to: std::mem::take(&mut to), data, tls });
            "250 OK queued\r\n".into()
        } else if upper == "RSET" {
            to.clear();
            "250 OK\r\n".into()
        } else if upper == "QUIT" {
            io.write_all(b"221 bye\r\n").await?;
            return Ok(None);
        } else {
            "502 command not implemented\r\n".into()
        };
        io.write_all(reply.as_bytes()).await?;
        io.flush().await?;
    }
}

/// A TLS server configuration with a fresh self-signed certificate for `localhost`.
pub fn self_signed_tls() -> Arc<rustls::ServerConfig> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    Arc::new(cfg)
}

/// Fast courier settings for tests, sending to `uri`.
pub fn courier_cfg(c: &mut Config, uri: Option<String>) {
    c.courier.smtp.connection_uri = uri.map(Secret);
    c.courier.smtp.from_address = "accounts@idflow.test".into();
    c.courier.smtp.from_name = Some("Idflow Accounts".into());
    c.courier.smtp.timeout = Dur(Duration::from_secs(1));
    c.courier.worker.pull_wait = Dur(Duration::from_millis(30));
    c.courier.worker.retry_backoff = Dur(Duration::from_millis(100));
    c.courier.worker.lease = Dur(Duration::from_secs(20));
}

pub fn plain_uri(addr: SocketAddr) -> String {
    format!("smtp://{addr}/?disable_starttls=true")
}

/// Poll until `f` holds (or fail after `secs`).
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Sink {
    /// Wait for a mail to `to` (`n`-th, counting from 1) and return its data.
    pub async fn mail_to(&self, to: &str, n: usize) -> String {
        let to = to.to_string();
        eventually(20, "mail delivered", || {
            let c = self.mails().iter().filter(|m| m.to.contains(&to)).count();
            async move { c >= n }
        })
        .await;
        self.mails().into_iter().filter(|m| m.to.contains(&to)).nth(n - 1).map(|m| m.data).unwrap_or_default()
    }
}

/// The code in a mail: the first line that is exactly six digits (the plain-text body).
pub fn six_digit_code(data: &str) -> String {
    data.lines()
        .map(str::trim)
        .find(|l| l.len() == 6 && l.bytes().all(|c| c.is_ascii_digit()))
        .unwrap_or_default()
        .to_string()
}

/// Undo quoted-printable encoding (soft line breaks, `=XX`) in a mail's data.
pub fn quoted_printable_decode(data: &str) -> String {
    let joined = data.replace("=\r\n", "").replace("=\n", "");
    let b = joined.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && let Some(v) = joined.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
