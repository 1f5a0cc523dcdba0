//! Cleanup of what expires: flows, sessions, stored self-service errors, rate-limit
//! counters, pending trait changes and activity-log entries older than `activity.retention`.
//! Without it every unauthenticated flow creation or error page left a row behind forever. The
//! server runs [`Engine::cleanup_expired`] every `cleanup.interval`; each run
//! deletes in batches of `cleanup.batch_size` rows per table (short transactions, no long
//! locks) until a batch comes back short, and on PostgreSQL only one node runs at a time (an
//! advisory lock; the others skip). Time comes from the engine's clock.

use crate::error::Result;
use crate::selfservice::Engine;
use crate::store::{Cleaned, Cleanup};

/// Upper bound on batches per run, so one run cannot hold the database for long; what is
/// left waits for the next run.
const MAX_BATCHES_PER_RUN: u32 = 100;

impl Engine {
    /// The cutoffs of a cleanup run at the engine's current time.
    pub fn cleanup_cutoffs(&self) -> Cleanup {
        let now = self.clock.now();
        let c = &self.cfg.cleanup;
        let l = &self.cfg.limits;
        let keep = c.keep_expired.as_time();
        // A rate-limit counter is dead once its window (the longest one configured) is over.
        let longest_window =
            [60, l.login_window.0.as_secs(), l.second_factor_window.0.as_secs()].into_iter().max().unwrap_or(60);
        Cleanup {
            flows_expired_before: now - keep,
            sessions_expired_before: now - keep,
            kv_expired_before: now,
            pending_changes_expired_before: now,
            rate_windows_before: now.unix_timestamp() - i64::try_from(longest_window).unwrap_or(i64::MAX),
            activity_before: now
                .checked_sub(self.cfg.activity.retention.as_time())
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
            batch: c.batch_size,
        }
    }

    /// One cleanup run: batches until none is full (or [`MAX_BATCHES_PER_RUN`]). Returns the
    /// rows deleted; all zero when another node holds the cleanup lock.
    pub async fn cleanup_expired(&self) -> Result<Cleaned> {
        let cut = self.cleanup_cutoffs();
        let mut total = Cleaned::default();
        for _ in 0..MAX_BATCHES_PER_RUN {
            let Some(n) = self.store.cleanup(&cut).await? else { break };
            total.flows += n.flows;
            total.sessions += n.sessions;
            total.kv += n.kv;
            total.rate_limits += n.rate_limits;
            total.pending_changes += n.pending_changes;
            total.activity += n.activity;
            if !n.full(cut.batch) {
                break;
            }
        }
        if total != Cleaned::default() {
            tracing::info!(
                flows = total.flows,
                sessions = total.sessions,
                errors = total.kv,
                rate_limits = total.rate_limits,
                pending_changes = total.pending_changes,
                activity = total.activity,
                "cleanup deleted expired rows"
            );
        }
        Ok(total)
    }
}
