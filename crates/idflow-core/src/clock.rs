//! Injected time, so expiry and privileged-session age are testable.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

/// A source of "now". The real clock plus an adjustable offset (tests move time forward via
/// the admin test endpoint when `dev` is on; production never sets it).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_micros: Arc<AtomicI64>,
}

impl Clock {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn now(&self) -> OffsetDateTime {
        let off = self.offset_micros.load(Ordering::Relaxed);
        let now = OffsetDateTime::now_utc() + time::Duration::microseconds(off);
        // Microsecond precision everywhere (what both databases store).
        now.replace_nanosecond((now.nanosecond() / 1000) * 1000).unwrap_or(now)
    }
    /// Move the clock forward (or back) by `secs` seconds relative to real time.
    pub fn advance(&self, secs: i64) {
        self.offset_micros.fetch_add(secs.saturating_mul(1_000_000), Ordering::Relaxed);
    }
    pub fn offset_secs(&self) -> i64 {
        self.offset_micros.load(Ordering::Relaxed) / 1_000_000
    }
}
