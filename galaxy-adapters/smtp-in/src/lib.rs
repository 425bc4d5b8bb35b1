#![doc = include_str!("../README.md")]

mod limits;
mod session;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use galaxy_core::service::mail_in::MailInService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use tls::{TlsError, load_tls};

use limits::Limits;

/// How the listener behaves; every field is a documented setting of galaxy-server.
#[derive(Clone)]
pub struct SmtpInConfig {
    /// The name in the greeting and `EHLO` answer (the MX host name).
    pub hostname: String,
    /// The largest message taken, in bytes.
    pub max_message_bytes: usize,
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections per client (an IPv4 address or an IPv6 /64) at most.
    pub client_connections: usize,
    /// Messages per client per `rate_window`.
    pub rate_count: u32,
    /// The window of `rate_count`.
    pub rate_window: Duration,
    /// The longest wait for a client's next line.
    pub timeout: Duration,
    /// The longest a whole session lasts, however busy: a client sending a line just
    /// within `timeout` would otherwise hold its connection (and its place under
    /// `max_connections`) for ever.
    pub session_limit: Duration,
    /// STARTTLS, when a certificate is configured.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for SmtpInConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpInConfig")
            .field("hostname", &self.hostname)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// Accepts connections on `listener` until `cancel` fires, each served as one SMTP
/// session handing its messages to `service`; then tells every open session to close
/// (`421`) and waits for them.
pub async fn serve(
    listener: TcpListener,
    service: Arc<MailInService>,
    config: SmtpInConfig,
    cancel: CancellationToken,
) {
    let limits = Arc::new(Limits::new(&config));
    let config = Arc::new(config);
    let mut sessions = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
        };
        let (stream, peer): (_, SocketAddr) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "inbound SMTP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let admission = limits.admit(peer.ip());
        let (service, config, cancel) = (service.clone(), config.clone(), cancel.clone());
        let limits = limits.clone();
        sessions.spawn(async move {
            session::run(stream, peer, admission, service, config, limits, cancel).await;
        });
    }
    while sessions.join_next().await.is_some() {}
}
