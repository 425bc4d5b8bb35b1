//! The push listener's bounds on connections, before gRPC sees them: at most
//! `max_connections` open at once (one more is closed at once), and a client must send
//! the HTTP/2 connection preface, and make a call the server authorises, within
//! `handshake_timeout` of connecting. Without them a process that can reach the port
//! could hold every place without ever authenticating: the gateway's token is only read
//! from its calls, and a connection that makes none but answers the server's keepalive
//! pings (any HTTP/2 library does) would stay open for good, while the gateway's own
//! connection is closed at once, again and again.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use galaxy_core::domain::limit::{OpenSlot, OpenSlots};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tonic::transport::server::Connected;

/// Length of the HTTP/2 client connection preface (`PRI * HTTP/2.0...`, RFC 9113 3.4).
const PREFACE_BYTES: usize = 24;

/// How long to wait before accepting again after a failed accept (out of descriptors):
/// accepting again at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The bounds of [`incoming`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// How long a new connection may take to send the HTTP/2 preface.
    pub handshake_timeout: Duration,
}

/// One admitted connection: the socket, its place under the bound (freed when tonic drops
/// the connection), and its deadlines.
pub(crate) struct Admitted {
    /// The socket.
    stream: TcpStream,
    /// Its place among the open connections.
    _slot: OpenSlot<()>,
    /// Preface bytes still to come before the deadline is lifted.
    preface_left: usize,
    /// When the preface and the first authorised call must have come; `None` once both
    /// have. Read as an instant on every read (a timer is only armed once polled, and a
    /// client that keeps the socket readable would never let it be), and polled as a
    /// timer when the connection is idle, to wake it.
    deadline: Option<(Instant, Pin<Box<Sleep>>)>,
    /// Set by the server when it authorises a call on this connection.
    authorised: Arc<AtomicBool>,
}

/// What tonic hands every request of an admitted connection (in its extensions): the
/// connection's flag, which [`PushConnectInfo::authorised`] sets.
#[derive(Debug, Clone)]
pub(crate) struct PushConnectInfo {
    /// Shared with the connection's [`Admitted`].
    authorised: Arc<AtomicBool>,
}

impl PushConnectInfo {
    /// Marks the connection as one that made an authorised call: it is no longer closed
    /// when its handshake timeout lapses.
    pub(crate) fn authorised(&self) {
        self.authorised.store(true, Ordering::Release);
    }
}

impl Connected for Admitted {
    type ConnectInfo = PushConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        PushConnectInfo {
            authorised: Arc::clone(&self.authorised),
        }
    }
}

impl Admitted {
    /// Whether the connection has done what it must before its deadline: the preface
    /// read, and a call authorised.
    fn settled(&self) -> bool {
        self.preface_left == 0 && self.authorised.load(Ordering::Acquire)
    }

    /// The error that closes a connection whose deadline lapsed.
    fn lapsed(&self) -> io::Error {
        let missing = if self.preface_left > 0 {
            "no HTTP/2 preface within the handshake timeout"
        } else {
            "no authorised call within the handshake timeout"
        };
        io::Error::new(io::ErrorKind::TimedOut, missing)
    }
}

impl AsyncRead for Admitted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.deadline.is_some() && this.settled() {
            this.deadline = None;
        }
        // A client that keeps sending (pings) is never `Pending`: the deadline is read
        // on every call, and polled (so that it wakes the connection) when idle.
        if this
            .deadline
            .as_ref()
            .is_some_and(|(at, _)| Instant::now() >= *at)
        {
            return Poll::Ready(Err(this.lapsed()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                this.preface_left = this.preface_left.saturating_sub(read);
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let lapsed = this
                    .deadline
                    .as_mut()
                    .is_some_and(|(_, timer)| timer.as_mut().poll(cx).is_ready());
                if lapsed && !this.settled() {
                    Poll::Ready(Err(this.lapsed()))
                } else {
                    Poll::Pending
                }
            }
            error => error,
        }
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The connections of `listener` within `limits`, for tonic's `serve_with_incoming`. A
/// connection over the bound is closed at once; a failed accept is logged and retried
/// after a pause. Never ends and never yields an error.
pub(crate) fn incoming(
    listener: TcpListener,
    limits: ConnectionLimits,
) -> impl Stream<Item = Result<Admitted, io::Error>> {
    let slots: Arc<OpenSlots<()>> = OpenSlots::new(limits.max_connections, limits.max_connections);
    futures::stream::unfold((listener, slots), move |(listener, slots)| async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "push listener could not accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let Ok(slot) = slots.admit(()) else {
                tracing::warn!(%peer, max = limits.max_connections, "push listener full; connection closed");
                continue;
            };
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%peer, %error, "TCP_NODELAY not set");
            }
            let admitted = Admitted {
                stream,
                _slot: slot,
                preface_left: PREFACE_BYTES,
                deadline: Some({
                    let at = Instant::now() + limits.handshake_timeout;
                    (at, Box::pin(tokio::time::sleep_until(at)))
                }),
                authorised: Arc::new(AtomicBool::new(false)),
            };
            return Some((Ok(admitted), (listener, slots)));
        }
    })
}
