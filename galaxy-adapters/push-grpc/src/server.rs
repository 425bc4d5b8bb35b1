//! The tonic `Push` service over the [`PushSubscriptions`] port, and a listener loop with
//! graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use galaxy_core::domain::push::{GatewayClientId, PushCursor, SubscriptionEnded};
use galaxy_core::ports::{PushFeed, PushSubscriptions};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::listener::{ConnectionLimits, PushConnectInfo, incoming};
use crate::pb;
use crate::pb::push_server::{Push, PushServer};

/// The metadata key carrying the internal token on every call.
pub const INTERNAL_TOKEN_HEADER: &str = "x-internal-token";

/// How often an idle connection is pinged, so a vanished gateway is noticed (and its
/// subscription freed) even when no event is published.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a ping may go unanswered before the connection is closed.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of the open connections [`PushGrpcServer::serve`] allows: gateways are few,
/// each holds one connection.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;
/// Default of how long a new connection may take to begin HTTP/2 (send its preface) and
/// make its first authorised call.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The push listener failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listener's address could not be read.
    #[error("push listener has no local address: {0}")]
    LocalAddr(#[source] std::io::Error),
    /// The gRPC server stopped with an error.
    #[error("push gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The gRPC `Push` service: authenticates the gateway, subscribes it through the
/// [`PushSubscriptions`] port (the push service of galaxy-core) and streams its events.
///
/// Streams end with `ABORTED` when replaced by a subscription with the same gateway client
/// id, `RESOURCE_EXHAUSTED` when the gateway lagged (see the crate docs), and `UNAVAILABLE`
/// on shutdown. Calls without the right `x-internal-token` get `UNAUTHENTICATED`; a
/// malformed cursor or gateway client id gets `INVALID_ARGUMENT`.
#[derive(Clone)]
pub struct PushGrpcServer {
    /// Where subscriptions come from.
    service: Arc<dyn PushSubscriptions>,
    /// SHA-256 of the internal token: comparing digests in constant time hides both the
    /// token and its length, and the token itself is not kept. `None` for an empty token,
    /// which refuses every call rather than accepting an empty header.
    token_digest: Option<[u8; 32]>,
    /// Cancelled on shutdown: every open stream then ends with `UNAVAILABLE`, which lets
    /// a graceful shutdown finish instead of waiting on endless streams.
    shutdown: CancellationToken,
    /// The bounds [`PushGrpcServer::serve`] puts on connections.
    limits: ConnectionLimits,
}

impl PushGrpcServer {
    /// A server over `service`, accepting calls that carry `internal_token`.
    pub fn new(service: Arc<dyn PushSubscriptions>, internal_token: SecretString) -> Self {
        let token = internal_token.expose_secret();
        let token_digest = (!token.is_empty()).then(|| Sha256::digest(token.as_bytes()).into());
        Self {
            service,
            token_digest,
            shutdown: CancellationToken::new(),
            limits: ConnectionLimits {
                max_connections: DEFAULT_MAX_CONNECTIONS,
                handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            },
        }
    }

    /// Bounds the connections [`PushGrpcServer::serve`] keeps: at most `max_connections`
    /// open (one more is closed at once), and each must begin HTTP/2 and make an
    /// authorised call within `handshake_timeout` of connecting. A client authenticates
    /// only with its calls, so without them a process that reaches the port could hold
    /// every place for ever without a token. Defaults: [`DEFAULT_MAX_CONNECTIONS`],
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub fn with_connection_limits(
        mut self,
        max_connections: usize,
        handshake_timeout: Duration,
    ) -> Self {
        self.limits = ConnectionLimits {
            max_connections: max_connections.max(1),
            handshake_timeout,
        };
        self
    }

    /// Ends every stream with `UNAVAILABLE` when `token` is cancelled; for embedding the
    /// service in a router of one's own ([`PushGrpcServer::serve`] does this itself).
    pub fn with_shutdown(mut self, token: CancellationToken) -> Self {
        self.shutdown = token;
        self
    }

    /// The tonic service, to add to a `tonic::transport::Server` or a router.
    pub fn into_service(self) -> PushServer<Self> {
        PushServer::new(self)
    }

    /// Serves gRPC on `listener` until `shutdown` completes, then ends every stream with
    /// `UNAVAILABLE`, waits for connections to close and returns. Connections are bounded
    /// as [`PushGrpcServer::with_connection_limits`] says. Connections that do not
    /// read (and so never see the end of their stream) can delay the return; bound the
    /// wait with a timeout of your own.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServeError> {
        let address: SocketAddr = listener.local_addr().map_err(ServeError::LocalAddr)?;
        let streams = self.shutdown.child_token();
        let incoming = incoming(listener, self.limits);
        let service = self.with_shutdown(streams.clone()).into_service();
        tracing::info!(%address, "push gRPC listener ready");
        tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, async move {
                shutdown.await;
                tracing::info!(%address, "push gRPC listener stopping");
                streams.cancel();
            })
            .await?;
        Ok(())
    }

    /// Checks the call's internal token; an authorised call on a connection of this
    /// server's listener marks the connection, which may then outlive its handshake
    /// timeout (see the listener).
    fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let Some(presented) = request.metadata().get(INTERNAL_TOKEN_HEADER) else {
            return Err(Status::unauthenticated("missing x-internal-token"));
        };
        let digest = Sha256::digest(presented.as_bytes());
        match &self.token_digest {
            Some(expected) if bool::from(digest.as_slice().ct_eq(expected)) => {
                if let Some(connection) = request.extensions().get::<PushConnectInfo>() {
                    connection.authorised();
                }
                Ok(())
            }
            _ => Err(Status::unauthenticated("invalid x-internal-token")),
        }
    }
}

impl std::fmt::Debug for PushGrpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushGrpcServer").finish_non_exhaustive()
    }
}

/// The stream of one subscription as tonic sends it.
type EventStream = Pin<Box<dyn Stream<Item = Result<pb::PushEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Push for PushGrpcServer {
    type SubscribePushStream = EventStream;

    async fn subscribe_push(
        &self,
        request: Request<pb::GatewaySubscribeRequest>,
    ) -> Result<Response<Self::SubscribePushStream>, Status> {
        self.authorize(&request)?;
        let request = request.into_inner();
        let invalid = |error: &dyn std::fmt::Display| Status::invalid_argument(error.to_string());
        let gateway =
            GatewayClientId::parse(&request.gateway_client_id).map_err(|e| invalid(&e))?;
        let cursor = PushCursor::parse_optional(&request.cursor).map_err(|e| invalid(&e))?;
        let subscription = self.service.subscribe(gateway, cursor).await;
        tracing::info!(
            gateway = %subscription.gateway_client_id(),
            cursor = %request.cursor,
            "push gateway subscribed"
        );
        Ok(Response::new(event_stream(
            subscription,
            self.shutdown.clone(),
        )))
    }
}

/// Yields the subscription's events until it ends or the server shuts down, then one
/// final status. Dropping the stream (the gateway went away) drops the subscription,
/// which unregisters it.
fn event_stream(subscription: Box<dyn PushFeed>, shutdown: CancellationToken) -> EventStream {
    let state = Some((subscription, shutdown));
    Box::pin(futures::stream::unfold(state, |state| async move {
        let (mut subscription, shutdown) = state?;
        let next = tokio::select! {
            biased;
            () = shutdown.cancelled() => Err(Status::unavailable(
                "push server is shutting down; resubscribe with the last cursor",
            )),
            next = subscription.next() => next
                .map(|event| pb::PushEvent::from(&*event))
                .map_err(|ended| ended_status(subscription.as_ref(), ended)),
        };
        Some(match next {
            Ok(event) => (Ok(event), Some((subscription, shutdown))),
            Err(status) => (Err(status), None),
        })
    }))
}

fn ended_status(subscription: &dyn PushFeed, ended: SubscriptionEnded) -> Status {
    let gateway = subscription.gateway_client_id();
    match ended {
        SubscriptionEnded::Replaced => {
            tracing::info!(%gateway, "push stream replaced");
            Status::aborted(ended.to_string())
        }
        SubscriptionEnded::Lagged { .. } => {
            tracing::warn!(%gateway, "push stream ended: gateway lagged");
            Status::resource_exhausted(ended.to_string())
        }
        SubscriptionEnded::Gap { .. } => {
            tracing::warn!(%gateway, "push stream ended: events purged before this replica read them");
            Status::unavailable(ended.to_string())
        }
        _ => Status::unavailable(ended.to_string()),
    }
}
