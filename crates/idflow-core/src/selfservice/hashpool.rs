//! The password-hashing pool: one thread per core, fed in order.
//!
//! argon2id is memory-hard (19 MiB per hash with the defaults). On tokio's blocking pool every
//! concurrent request got its own thread, so 32 concurrent password changes ran 64 hashes at
//! once (1.2 GiB live) without any gain in throughput (the CPU is the limit), and glibc kept
//! the freed 19 MiB blocks in its per-thread arenas: the benchmark saw the server's resident
//! memory stay above 2 GiB after a burst of password changes. A fixed set of threads does the
//! same work at the same speed with at most one hash per core in memory; each pool thread
//! keeps its argon2 memory for the next hash (`password::keep_argon2_memory`), so the
//! allocator is not involved while hashes keep coming, and frees it after a second without
//! work, so an idle server is small again.

use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Idle time after which a pool thread frees its kept argon2 memory.
const IDLE: Duration = Duration::from_secs(1);

static POOL: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();

fn threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).clamp(1, 64)
}

fn pool() -> &'static Mutex<Sender<Job>> {
    POOL.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads() {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("idflow-hash-{i}")).spawn(move || {
                crate::password::keep_argon2_memory();
                loop {
                    // The lock is held only while waiting for the next job. After a second
                    // without work the kept argon2 memory is given back.
                    let job = match rx.lock() {
                        Ok(r) => r.recv_timeout(IDLE),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(RecvTimeoutError::Timeout) => crate::password::release_argon2_memory(),
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            });
            if spawned.is_err() {
                tracing::warn!("could not start a password-hashing thread");
            }
        }
        Mutex::new(tx)
    })
}

/// Run `f` (a hash or a verification) on the hashing pool and wait for its result. `None` if
/// the pool is gone (never in practice); callers treat that as an internal error.
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    let sent = pool().lock().ok().map(|s| s.send(job).is_ok()).unwrap_or(false);
    if !sent {
        return None;
    }
    rx.await.ok()
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn runs_jobs_and_returns_their_results() {
        let handles: Vec<_> = (0..16u64).map(|i| tokio::spawn(super::run(move || i * 2))).collect();
        let mut out = vec![];
        for h in handles {
            out.push(h.await.unwrap().unwrap());
        }
        assert_eq!(out, (0..16u64).map(|i| i * 2).collect::<Vec<_>>());
    }
}
