//! The accept loop behind every listener: HTTP/1.1 connections served by hyper, each in
//! a task this loop owns, so that stopping is exact.
//!
//! On `stop` the loop stops accepting (the socket is closed), tells every connection to
//! finish the request in hand and close, and waits for them. If it is itself aborted
//! (its drain bound ran out), the connection tasks are aborted with it: a request that
//! outlives the drain bound is cut, not left running behind a "stopped" app.
//! (`axum::serve` spawns connections as detached tasks, which aborting does not reach.)

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long a client may take to send a request's headers (slow-loris guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Open connections of a listener (`listener` label: `http` or `metrics`).
pub const CONNECTIONS_METRIC: &str = "galaxy_http_connections";
/// Times a listener was at its connection cap and left new clients waiting in the
/// kernel's accept queue.
pub const CONNECTIONS_CAPPED_METRIC: &str = "galaxy_http_connections_capped_total";

/// Serves `router` on `listener` until `stop` fires, then drains the connections. At
/// most `max_connections` are open at once: at the cap the loop stops accepting until
/// one closes (new clients wait in the kernel's backlog), counted in
/// [`CONNECTIONS_CAPPED_METRIC`].
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    name: &'static str,
    max_connections: usize,
) {
    let graceful = GracefulShutdown::new();
    // Owned here: dropping the set (when this task is aborted) aborts every connection.
    let mut connections = JoinSet::new();
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    let open = metrics::gauge!(CONNECTIONS_METRIC, "listener" => name);
    let capped = metrics::counter!(CONNECTIONS_CAPPED_METRIC, "listener" => name);
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                capped.increment(1);
                tracing::warn!(
                    listener = name,
                    max_connections,
                    "connection cap reached; new clients wait"
                );
                tokio::select! {
                    () = stop.cancelled() => break,
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                }
            }
        };
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        // Reap finished connections so the set does not grow with the process's age.
        while connections.try_join_next().is_some() {}
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // The client's address as a request extension, as axum's
        // `into_make_service_with_connect_info` adds it (rate limits and geo read it).
        let service = tower::ServiceExt::map_request(
            router.clone(),
            move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(remote));
                request
            },
        );
        let service = TowerToHyperService::new(service);
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        let open = open.clone();
        open.increment(1.0);
        connections.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %remote, "connection ended with an error");
            }
            open.decrement(1.0);
            // The slot frees when the connection ends.
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    while connections.join_next().await.is_some() {}
}
