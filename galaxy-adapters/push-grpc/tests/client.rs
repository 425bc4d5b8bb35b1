#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The reconnecting client over a real socket: live events, exactly-once delivery across a
//! server restart and a cut connection, resync after a foreign epoch, and retries on
//! refusal, ending only on cancellation.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use galaxy_core::domain::push::RESYNC_KIND;
use galaxy_core::service::push::PushService;
use galaxy_push_grpc::{Disconnect, PushClient, PushClientConfig, PushHandler, pb};
use secrecy::SecretString;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tonic::Code;

/// Forwards what the client hands it to the test.
struct Recorder {
    events: UnboundedSender<pb::PushEvent>,
    disconnects: UnboundedSender<(Option<Code>, Duration)>,
}

impl PushHandler for Recorder {
    async fn handle(&mut self, event: pb::PushEvent) {
        let _ = self.events.send(event);
    }

    fn disconnected(&mut self, reason: &Disconnect, retry_in: Duration) {
        let _ = self.disconnects.send((reason.code(), retry_in));
    }
}

/// A client running in a task, and what it received.
struct RunningClient {
    client: Arc<PushClient>,
    events: UnboundedReceiver<pb::PushEvent>,
    disconnects: UnboundedReceiver<(Option<Code>, Duration)>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl RunningClient {
    fn start(url: String, token: &str) -> Self {
        let mut config = PushClientConfig::new(url, "gateway-test", SecretString::from(token));
        config.initial_backoff = Duration::from_millis(20);
        config.max_backoff = Duration::from_millis(200);
        let client = Arc::new(PushClient::new(config).unwrap());
        let (events_tx, events) = unbounded_channel();
        let (disconnects_tx, disconnects) = unbounded_channel();
        let cancel = CancellationToken::new();
        let task = tokio::spawn({
            let (client, cancel) = (client.clone(), cancel.clone());
            async move {
                let mut recorder = Recorder {
                    events: events_tx,
                    disconnects: disconnects_tx,
                };
                client.run(&mut recorder, &cancel).await;
            }
        });
        Self {
            client,
            events,
            disconnects,
            cancel,
            task,
        }
    }

    async fn next_event(&mut self) -> pb::PushEvent {
        within(self.events.recv()).await.unwrap()
    }

    async fn expect_events(&mut self, expected: &[String]) {
        for id in expected {
            assert_eq!(&self.next_event().await.event_id, id);
        }
    }

    /// Cancels and checks that `run` returns promptly and nothing else was delivered.
    async fn stop(mut self) {
        self.cancel.cancel();
        within(self.task).await.unwrap();
        assert!(self.events.try_recv().is_err(), "an unexpected extra event");
    }
}

async fn publish(service: &PushService, range: std::ops::Range<u64>) -> Vec<String> {
    let mut ids = Vec::new();
    for n in range {
        let event = service
            .publish_event(vec![], "test.event", json!({ "n": n }))
            .await
            .unwrap();
        ids.push(event.event_id.to_string());
    }
    ids
}

#[tokio::test]
async fn receives_live_events_and_remembers_the_last_cursor() {
    let service = push_service(64);
    let server = TestServer::start(service.clone()).await;
    let mut client = RunningClient::start(server.url(), TOKEN);
    eventually(|| service.subscriber_count() == 1).await;

    let ids = publish(&service, 0..3).await;
    client.expect_events(&ids).await;
    let latest = service.latest_cursor().to_string();
    eventually(|| client.client.cursor().as_deref() == Some(latest.as_str())).await;
    client.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn a_server_restart_on_the_same_port_loses_and_repeats_nothing() {
    let service = push_service(64);
    let server = TestServer::start(service.clone()).await;
    let addr = server.addr;
    let mut client = RunningClient::start(server.url(), TOKEN);
    eventually(|| service.subscriber_count() == 1).await;

    let before = publish(&service, 0..5).await;
    client.expect_events(&before).await;
    // Some in flight as the server goes down, more while it is down.
    let in_flight = publish(&service, 5..8).await;
    server.stop().await;
    let while_down = publish(&service, 8..12).await;
    let server = TestServer::start_on(service.clone(), addr).await;
    eventually(|| service.subscriber_count() == 1).await;
    let after = publish(&service, 12..15).await;

    let rest: Vec<_> = [in_flight, while_down, after].concat();
    client.expect_events(&rest).await;
    let (code, _) = within(client.disconnects.recv()).await.unwrap();
    assert_eq!(code, Some(Code::Unavailable), "the shutdown status");
    client.stop().await;
    server.stop().await;
}

/// A TCP relay in front of the server; aborting it drops every relayed connection at once,
/// as a crash or a network failure would.
fn start_relay(listener: TcpListener, upstream: SocketAddr) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        while let Ok((mut downstream, _)) = listener.accept().await {
            connections.spawn(async move {
                let mut up = TcpStream::connect(upstream).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut downstream, &mut up).await;
            });
        }
    })
}

#[tokio::test]
async fn a_cut_connection_is_resumed_exactly_once_in_order() {
    let service = push_service(64);
    let server = TestServer::start(service.clone()).await;
    let relay_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_addr = relay_listener.local_addr().unwrap();
    let relay = start_relay(relay_listener, server.addr);
    let mut client = RunningClient::start(format!("http://{relay_addr}"), TOKEN);
    eventually(|| service.subscriber_count() == 1).await;

    let before = publish(&service, 0..5).await;
    client.expect_events(&before).await;
    let in_flight = publish(&service, 5..8).await;
    relay.abort();
    let _ = relay.await;
    // The server notices the dead connection and frees the subscription.
    eventually(|| service.subscriber_count() == 0).await;
    let while_cut = publish(&service, 8..12).await;
    let relay = start_relay(bind_again(relay_addr).await, server.addr);
    eventually(|| service.subscriber_count() == 1).await;
    let after = publish(&service, 12..15).await;

    // What of `in_flight` was handled before the cut is not delivered again; the rest is.
    let expected: Vec<_> = [in_flight, while_cut, after].concat();
    client.expect_events(&expected).await;
    client.stop().await;
    relay.abort();
    server.stop().await;
}

#[tokio::test]
async fn a_new_server_lifetime_sends_the_handler_a_resync() {
    let service = push_service(64);
    let server = TestServer::start(service.clone()).await;
    let addr = server.addr;
    let mut client = RunningClient::start(server.url(), TOKEN);
    eventually(|| service.subscriber_count() == 1).await;
    client.expect_events(&publish(&service, 0..2).await).await;
    server.stop().await;

    // A restarted process: a new service with a new epoch, on the same port.
    let restarted = push_service(64);
    let server = TestServer::start_on(restarted.clone(), addr).await;
    let resync = client.next_event().await;
    assert_eq!(resync.kind, RESYNC_KIND);
    assert_eq!(resync.payload_json, r#"{"reason":"foreign_epoch"}"#);
    let live = publish(&restarted, 0..1).await;
    client.expect_events(&live).await;
    let latest = restarted.latest_cursor().to_string();
    eventually(|| client.client.cursor().as_deref() == Some(latest.as_str())).await;
    client.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn a_refused_subscription_is_reported_and_retried_until_cancelled() {
    let service = push_service(64);
    let server = TestServer::start(service.clone()).await;
    let mut client = RunningClient::start(server.url(), "wrong-token");
    let mut delays = Vec::new();
    for _ in 0..4 {
        let (code, retry_in) = within(client.disconnects.recv()).await.unwrap();
        assert_eq!(code, Some(Code::Unauthenticated));
        delays.push(retry_in);
    }
    // 20, 40, 80, 160 ms nominal, +-20%: the backoff grows while refusals go on.
    assert!(delays[3] > delays[0] * 4, "{delays:?}");
    assert!(delays.iter().all(|d| *d <= Duration::from_millis(240)));
    assert_eq!(service.subscriber_count(), 0);
    client.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_server_is_retried_until_cancelled() {
    // A port with nothing listening.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let mut client = RunningClient::start(format!("http://{addr}"), TOKEN);
    for _ in 0..3 {
        let (code, _) = within(client.disconnects.recv()).await.unwrap();
        assert_eq!(code, None, "a connection error has no status");
    }
    client.stop().await;
}

#[tokio::test]
async fn a_replaced_client_reconnects() {
    let service = push_service(64);
    let server = TestServer::start(service.clone()).await;
    let mut client = RunningClient::start(server.url(), TOKEN);
    eventually(|| service.subscriber_count() == 1).await;

    // Another subscriber takes the id; the client is told ABORTED and takes it back.
    let mut raw = raw_client(server.addr).await;
    let mut intruder = raw
        .subscribe_push(request("gateway-test", "", Some(TOKEN)))
        .await
        .unwrap()
        .into_inner();
    let (code, _) = within(client.disconnects.recv()).await.unwrap();
    assert_eq!(code, Some(Code::Aborted));
    let status = within(intruder.message()).await.unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    let ids = publish(&service, 0..2).await;
    client.expect_events(&ids).await;
    client.stop().await;
    server.stop().await;
}
