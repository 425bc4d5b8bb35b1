//! The push listener's bounds on connections, before gRPC sees them: at most
//! `max_connections` open at once (one more is closed at once), and a client must send
//! the HTTP/2 connection preface within `handshake_timeout` of connecting. Without them a
//! local process could hold descriptors without ever authenticating: the gateway's token
//! is only read from its first call, and HTTP/2 keepalive pings begin only once the
//! handshake is done.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use galaxy_core::domain::limit::{OpenSlot, OpenSlots};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tonic::transport::server::{Connected, TcpConnectInfo};

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
/// the connection), and the preface deadline.
pub(crate) struct Admitted {
    /// The socket.
    stream: TcpStream,
    /// Its place among the open connections.
    _slot: OpenSlot<()>,
    /// Preface bytes still to come before the deadline is lifted.
    preface_left: usize,
    /// When the preface must have arrived; `None` once it has.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl Connected for Admitted {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Admitted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                this.preface_left = this.preface_left.saturating_sub(read);
                if this.preface_left == 0 {
                    this.deadline = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let lapsed = this
                    .deadline
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if lapsed {
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no HTTP/2 preface within the handshake timeout",
                    )))
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
                deadline: Some(Box::pin(tokio::time::sleep(limits.handshake_timeout))),
            };
            return Some((Ok(admitted), (listener, slots)));
        }
    })
}
