//! Per-connection timeouts of the HTTP/1.1 listeners.
//!
//! hyper has one timer for a connection waiting for a request head: it starts when the
//! connection opens and again after each response, and covers both the idle wait and the
//! reading of the head. idflow wants two, as Go's `IdleTimeout` / `ReadHeaderTimeout`: a long
//! idle time for keep-alive connections (`limits.idle_timeout`, given to hyper's timer), so that
//! a client or proxy that keeps idle connections for a minute does not send a request on a
//! connection idflow is closing; and a short deadline for the head itself
//! (`limits.header_read_timeout`, the slowloris guard), which [`HeadDeadline`] starts at the
//! first byte of each request and the service stops when the head is complete. (Bytes read
//! after a response has started, such as a body sent after `100 Continue`, count as a head.)

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Shared by a connection's [`HeadDeadline`] and its service: whether the bytes read next
/// belong to a request head (the connection is new, or a response has been written since), and
/// how many heads were completed (a deadline armed for an earlier head no longer applies).
#[derive(Debug)]
pub struct HeadState {
    awaiting_head: AtomicBool,
    heads: AtomicU64,
}

impl HeadState {
    pub fn new() -> Arc<Self> {
        Arc::new(HeadState { awaiting_head: AtomicBool::new(true), heads: AtomicU64::new(0) })
    }

    /// The service got a request: its head is complete.
    pub fn head_complete(&self) {
        self.awaiting_head.store(false, Ordering::Relaxed);
        self.heads.fetch_add(1, Ordering::Relaxed);
    }
}

/// A connection's IO with the head deadline: the first byte read while a head is awaited starts
/// a timer of `limit`; if the head is not complete when it fires, reads fail (`TimedOut`) and
/// hyper closes the connection.
pub struct HeadDeadline<S> {
    io: S,
    limit: Duration,
    state: Arc<HeadState>,
    /// The running deadline, and the number of completed heads when it was armed.
    deadline: Option<(Pin<Box<tokio::time::Sleep>>, u64)>,
}

impl<S> HeadDeadline<S> {
    pub fn new(io: S, limit: Duration, state: Arc<HeadState>) -> Self {
        HeadDeadline { io, limit, state, deadline: None }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "request head not received in time")
}

impl<S: AsyncRead + Unpin> AsyncRead for HeadDeadline<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let heads = this.state.heads.load(Ordering::Relaxed);
        if this.deadline.as_ref().is_some_and(|(_, armed_at)| *armed_at != heads) {
            this.deadline = None; // that head was completed
        }
        if let Some((d, _)) = this.deadline.as_mut()
            && d.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(timed_out()));
        }
        let before = buf.filled().len();
        let res = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res
            && buf.filled().len() > before
            && this.deadline.is_none()
            && this.state.awaiting_head.load(Ordering::Relaxed)
        {
            let mut d = Box::pin(tokio::time::sleep(this.limit));
            // Registers the waker, so a client that stalls mid-head is still cut off.
            let _ = d.as_mut().poll(cx);
            this.deadline = Some((d, heads));
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HeadDeadline<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.io).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = res
            && n > 0
        {
            // A response is going out: what is read next is the head of the next request.
            self.state.awaiting_head.store(true, Ordering::Relaxed);
        }
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = res
            && n > 0
        {
            self.state.awaiting_head.store(true, Ordering::Relaxed);
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
