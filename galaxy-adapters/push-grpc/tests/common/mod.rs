//! Shared set-up: a push service, a real gRPC listener on 127.0.0.1, raw clients.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use galaxy_core::service::push::{PushConfig, PushService};
use galaxy_ports::memory::MemoryPushLog;
use galaxy_ports::system::{OsSecretGenerator, SystemClock};
use galaxy_push_grpc::{INTERNAL_TOKEN_HEADER, PushGrpcServer, ServeError, pb};
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

pub const TOKEN: &str = "internal-secret-token";
pub const WAIT: Duration = Duration::from_secs(10);

pub fn push_service(subscriber_buffer: usize) -> Arc<PushService> {
    Arc::new(PushService::new(
        Arc::new(SystemClock),
        Arc::new(OsSecretGenerator),
        PushConfig {
            ring_capacity: NonZeroUsize::new(10_000).unwrap(),
            freshness_window: TimeDelta::minutes(5),
            subscriber_buffer: NonZeroUsize::new(subscriber_buffer).unwrap(),
        },
        Arc::new(MemoryPushLog::new()),
    ))
}

/// A push listener running in a task, stopped through its shutdown future.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<Result<(), ServeError>>,
}

impl TestServer {
    pub async fn start(service: Arc<PushService>) -> Self {
        Self::start_with(service, |server| server).await
    }

    /// Starts a server `edit` configured further.
    pub async fn start_with(
        service: Arc<PushService>,
        edit: impl FnOnce(PushGrpcServer) -> PushGrpcServer,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(service, listener, edit)
    }

    /// Starts again on `addr`, retrying while the port is still being released.
    pub async fn start_on(service: Arc<PushService>, addr: SocketAddr) -> Self {
        Self::serve(service, bind_again(addr).await, |server| server)
    }

    fn serve(
        service: Arc<PushService>,
        listener: TcpListener,
        edit: impl FnOnce(PushGrpcServer) -> PushGrpcServer,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let server = edit(PushGrpcServer::new(service, SecretString::from(TOKEN)));
        let signal = stop.clone();
        let task = tokio::spawn(server.serve(listener, async move { signal.cancelled().await }));
        Self { addr, stop, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Graceful stop: streams end with UNAVAILABLE, then `serve` returns.
    pub async fn stop(self) {
        self.stop.cancel();
        within(self.task).await.unwrap().unwrap();
    }
}

/// Binds `addr` again, retrying while the port is still being released.
pub async fn bind_again(addr: SocketAddr) -> TcpListener {
    within(async {
        loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await
}

pub async fn raw_client(addr: SocketAddr) -> pb::push_client::PushClient<Channel> {
    raw_client_with(Endpoint::from_shared(format!("http://{addr}")).unwrap()).await
}

pub async fn raw_client_with(endpoint: Endpoint) -> pb::push_client::PushClient<Channel> {
    pb::push_client::PushClient::new(endpoint.connect().await.unwrap())
}

pub fn request(
    gateway: &str,
    cursor: &str,
    token: Option<&str>,
) -> tonic::Request<pb::GatewaySubscribeRequest> {
    let mut request = tonic::Request::new(pb::GatewaySubscribeRequest {
        gateway_client_id: gateway.into(),
        cursor: cursor.into(),
    });
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert(INTERNAL_TOKEN_HEADER, token.parse().unwrap());
    }
    request
}

/// Awaits `future`, failing the test after [`WAIT`].
pub async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future).await.expect("timed out")
}

/// Polls `condition` until it holds, failing the test after [`WAIT`].
pub async fn eventually(mut condition: impl FnMut() -> bool) {
    within(async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}
