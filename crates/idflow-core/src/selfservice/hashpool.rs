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
//!
//! The queue is bounded: [`run_bounded`] refuses a job when `max_queued` jobs are already
//! waiting ([`PoolError::Busy`], which the engine answers with 503 and `Retry-After`), so a
//! flood of logins cannot queue minutes of work. A job whose caller is gone (the request timed
//! out or the client disconnected) is dropped when its turn comes instead of being computed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Idle time after which a pool thread frees its kept argon2 memory.
const IDLE: Duration = Duration::from_secs(1);

static POOL: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();

/// Jobs accepted and not yet started by a pool thread.
static QUEUED: AtomicUsize = AtomicUsize::new(0);

/// Why a job did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// The queue is full: try again later.
    Busy,
    /// The pool is gone (never in practice).
    Gone,
}

/// Jobs waiting for a pool thread right now.
pub fn queued() -> usize {
    QUEUED.load(Ordering::Relaxed)
}

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

/// Run `f` (a hash or a verification) on the hashing pool and wait for its result, with no
/// bound on the queue.
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, PoolError> {
    run_bounded(usize::MAX, f).await
}

/// Run `f` on the hashing pool unless `max_queued` jobs are already waiting
/// ([`PoolError::Busy`]). If the returned future is dropped before a thread takes the job (the
/// request is gone), the job is skipped.
pub async fn run_bounded<T: Send + 'static>(
    max_queued: usize,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PoolError> {
    if QUEUED.fetch_add(1, Ordering::AcqRel) >= max_queued {
        QUEUED.fetch_sub(1, Ordering::AcqRel);
        return Err(PoolError::Busy);
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        QUEUED.fetch_sub(1, Ordering::AcqRel);
        if tx.is_closed() {
            return;
        }
        let _ = tx.send(f());
    });
    let sent = pool().lock().ok().map(|s| s.send(job).is_ok()).unwrap_or(false);
    if !sent {
        QUEUED.fetch_sub(1, Ordering::AcqRel);
        return Err(PoolError::Gone);
    }
    rx.await.map_err(|_| PoolError::Gone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::Instant;

    #[tokio::test]
    async fn runs_jobs_and_returns_their_results() {
        let handles: Vec<_> = (0..16u64).map(|i| tokio::spawn(super::run(move || i * 2))).collect();
        let mut out = vec![];
        for h in handles {
            out.push(h.await.unwrap().unwrap());
        }
        assert_eq!(out, (0..16u64).map(|i| i * 2).collect::<Vec<_>>());
    }

    /// Occupy every pool thread until `release` is set; returns once all of them are busy.
    async fn occupy(release: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<Result<(), PoolError>>> {
        let started = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..threads())
            .map(|_| {
                let (release, started) = (release.clone(), started.clone());
                tokio::spawn(run(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    while !release.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }))
            })
            .collect();
        let t0 = Instant::now();
        while started.load(Ordering::SeqCst) < threads() && t0.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        handles
    }

    // One test for both properties: the pool and its queue counter are process-wide, so two
    // tests occupying the threads at once would disturb each other.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_queue_refuses_and_abandoned_jobs_are_skipped() {
        let release = Arc::new(AtomicBool::new(false));
        let busy = occupy(release.clone()).await;
        // All threads busy: the first queued job is accepted, the next one is refused.
        let ran = Arc::new(AtomicUsize::new(0));
        let r1 = ran.clone();
        let waiting = tokio::spawn(run_bounded(1, move || r1.fetch_add(1, Ordering::SeqCst)));
        let t0 = Instant::now();
        while queued() < 1 && t0.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let r2 = ran.clone();
        assert_eq!(run_bounded(1, move || r2.fetch_add(1, Ordering::SeqCst)).await, Err(PoolError::Busy));
        // The waiting job's caller goes away (request timeout): the job is never computed.
        waiting.abort();
        let _ = waiting.await;
        release.store(true, Ordering::SeqCst);
        for h in busy {
            h.await.unwrap().unwrap();
        }
        // A later job runs (after the abandoned one was taken off the queue and skipped).
        let r3 = ran.clone();
        run(move || r3.fetch_add(10, Ordering::SeqCst)).await.unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 10, "the abandoned job did not run, the refused one neither");
        assert_eq!(queued(), 0);
    }
}
