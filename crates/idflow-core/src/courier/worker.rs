//! The sending loop: claim due messages, hand each to the transport, record the outcome.
//!
//! A claim is a lease (`courier.worker.lease`): the store marks the message `processing` for
//! one claim id until the lease ends, so two nodes never hold the same message (PostgreSQL:
//! `FOR UPDATE SKIP LOCKED`; SQLite: one writer). A node that stops mid-send leaves its claim
//! to expire and the message is sent by the next round of any node: never lost, at worst sent
//! again when a node died between the SMTP server's acceptance and the database write.

use super::{Message, Outcome};
use crate::clock::Clock;
use crate::config::CourierConfig;
use crate::store::{Store, StoreError};
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// Delivers one message (SMTP in the server; a recorder in tests).
#[async_trait]
pub trait MailTransport: Send + Sync + 'static {
    /// `Err` holds why delivery failed; the message is retried or abandoned.
    async fn send(&self, message: &Message) -> Result<(), String>;
}

/// A transport that delivers nothing: every attempt fails (no SMTP server configured).
pub struct NoTransport;

#[async_trait]
impl MailTransport for NoTransport {
    async fn send(&self, _: &Message) -> Result<(), String> {
        Err("no SMTP server is configured (courier.smtp.connection_uri)".into())
    }
}

/// One node's courier worker.
pub struct Worker {
    store: Arc<dyn Store>,
    clock: Clock,
    cfg: CourierConfig,
    transport: Arc<dyn MailTransport>,
}

impl Worker {
    pub fn new(store: Arc<dyn Store>, clock: Clock, cfg: CourierConfig, transport: Arc<dyn MailTransport>) -> Worker {
        Worker { store, clock, cfg, transport }
    }

    /// When to try again after `attempts` failed attempts, or `None` when the message is to be
    /// abandoned (more than `message_retries` retries).
    pub fn retry_at(cfg: &CourierConfig, attempts: i64, now: OffsetDateTime) -> Option<OffsetDateTime> {
        if attempts > i64::from(cfg.message_retries) {
            return None;
        }
        let base = cfg.worker.retry_backoff.0;
        let shift = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let wait = base.saturating_mul(1u32 << shift).min(cfg.worker.retry_backoff_max.0.max(base));
        Some(now + time::Duration::microseconds(i64::try_from(wait.as_micros()).unwrap_or(i64::MAX)))
    }

    /// One round: claim up to `pull_count` due messages and attempt each. Returns how many
    /// were claimed.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        self.round(&AtomicBool::new(false)).await
    }

    /// A round that stops before the next message once `stop` is set; messages it claimed but
    /// did not attempt are taken over by any node when their lease ends.
    async fn round(&self, stop: &AtomicBool) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let claim = Uuid::new_v4();
        let lease_until = now + crate::config::Dur(self.cfg.worker.lease.0).as_time();
        let batch = self.store.courier_claim(now, lease_until, claim, self.cfg.worker.pull_count).await?;
        for m in &batch {
            if stop.load(Ordering::Relaxed) {
                tracing::info!(message_id = %m.id, "courier stopping: message left for the next worker after its lease");
                continue;
            }
            let result = self.transport.send(m).await;
            let now = self.clock.now();
            let outcome = match result {
                Ok(()) => Outcome::Sent,
                Err(error) => {
                    let retry_at = Self::retry_at(&self.cfg, m.send_count + 1, now);
                    match retry_at {
                        Some(_) => {
                            tracing::warn!(message_id = %m.id, attempt = m.send_count + 1, %error, "mail delivery failed; will retry")
                        }
                        None => {
                            tracing::error!(message_id = %m.id, attempt = m.send_count + 1, %error, "mail delivery failed; message abandoned")
                        }
                    }
                    Outcome::Failed { error, retry_at }
                }
            };
            if !self.store.courier_record(m.id, claim, &outcome, now).await? {
                tracing::warn!(message_id = %m.id, "courier claim expired before the attempt was recorded (raise courier.worker.lease)");
            }
        }
        Ok(batch.len())
    }

    /// Run rounds until `shutdown` resolves: a full batch is followed at once by the next round,
    /// otherwise the worker waits `pull_wait`. Database errors are logged and retried.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let wait = self.cfg.worker.pull_wait.0;
        let stop = AtomicBool::new(false);
        loop {
            let round = self.round(&stop);
            tokio::pin!(round);
            // On shutdown the message being sent is finished and recorded; the rest wait.
            let (result, stopping) = tokio::select! {
                r = &mut round => (r, false),
                () = &mut shutdown => {
                    stop.store(true, Ordering::Relaxed);
                    ((&mut round).await, true)
                }
            };
            if stopping {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "courier: could not record the last attempt");
                }
                break;
            }
            let pause = match result {
                Ok(n) if n >= self.cfg.worker.pull_count as usize => Duration::ZERO,
                Ok(_) => wait,
                Err(e) => {
                    tracing::warn!(error = %e, "courier: could not read the mail queue");
                    wait
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_then_abandons() {
        let mut cfg = CourierConfig { message_retries: 3, ..CourierConfig::default() };
        cfg.worker.retry_backoff = crate::config::Dur::secs(10);
        cfg.worker.retry_backoff_max = crate::config::Dur::secs(25);
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let secs = |a| Worker::retry_at(&cfg, a, t0).map(|t| (t - t0).whole_seconds());
        assert_eq!([secs(1), secs(2), secs(3), secs(4)], [Some(10), Some(20), Some(25), None]);
    }
}
