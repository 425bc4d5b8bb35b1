//! The push path end to end: the app served in-process on port 0 (dev adapters, internal
//! token set), a reconnecting `PushClient` over the real gRPC socket, a lobby action whose
//! notification the worker publishes, and the token check.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use galaxy_push_grpc::pb::PushEvent;
use galaxy_push_grpc::{Disconnect, PushClient, PushClientConfig, PushHandler};
use galaxy_server::{App, Config, Listeners, ShutdownReport, dev};
use lifecycle_support::{eventually, log_in, send};
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "delivery-test-internal-token";

async fn dev_app(data_dir: &Path) -> App {
    let map: HashMap<String, String> = [
        ("GALAXY_DATA_DIR", data_dir.display().to_string()),
        ("GALAXY_MAIL_INTERVAL", "100ms".to_owned()),
        ("GALAXY_NOTIFICATION_INTERVAL", "50ms".to_owned()),
        ("GALAXY_INTERNAL_TOKEN", TOKEN.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    dev::build(Config::from_vars(&map).unwrap()).await.unwrap()
}

/// Forwards events and disconnects to the test.
struct Forward {
    events: mpsc::UnboundedSender<PushEvent>,
    disconnects: mpsc::UnboundedSender<Option<tonic::Code>>,
}

impl PushHandler for Forward {
    fn handle(&mut self, event: PushEvent) -> impl Future<Output = ()> + Send {
        let _ = self.events.send(event);
        async {}
    }

    fn disconnected(&mut self, reason: &Disconnect, _retry_in: Duration) {
        let _ = self.disconnects.send(reason.code());
    }
}

struct Gateway {
    events: mpsc::UnboundedReceiver<PushEvent>,
    disconnects: mpsc::UnboundedReceiver<Option<tonic::Code>>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    fn start(grpc: SocketAddr, id: &str, token: &str) -> Self {
        let mut config = PushClientConfig::new(
            format!("http://{grpc}"),
            id,
            SecretString::from(token.to_owned()),
        );
        config.initial_backoff = Duration::from_millis(50);
        config.max_backoff = Duration::from_millis(200);
        let client = PushClient::new(config).unwrap();
        let (events_tx, events) = mpsc::unbounded_channel();
        let (disconnects_tx, disconnects) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            let mut handler = Forward {
                events: events_tx,
                disconnects: disconnects_tx,
            };
            client.run(&mut handler, &stop).await;
        });
        Self {
            events,
            disconnects,
            cancel,
            task,
        }
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.task.await.unwrap();
    }
}

struct Running {
    http: SocketAddr,
    grpc: SocketAddr,
    stop: CancellationToken,
    served: tokio::task::JoinHandle<Result<ShutdownReport, galaxy_server::AppError>>,
}

async fn serve(app: App) -> Running {
    let listeners = Listeners::new(TcpListener::bind("127.0.0.1:0").await.unwrap())
        .with_grpc(TcpListener::bind("127.0.0.1:0").await.unwrap());
    let (http, grpc) = (
        listeners.http_addr().unwrap(),
        listeners.grpc_addr().unwrap(),
    );
    let stop = app.shutdown_token();
    let served = tokio::spawn(app.serve(listeners, std::future::pending()));
    Running {
        http,
        grpc,
        stop,
        served,
    }
}

/// `POST path` with a bearer token and a JSON body; returns the JSON answer.
async fn post(
    addr: SocketAddr,
    auth: &str,
    path: &str,
    body: &str,
    status: u16,
) -> serde_json::Value {
    let response = send(addr, "POST", path, &[("authorization", auth)], body)
        .await
        .unwrap();
    assert_eq!(response.status, status, "{path}: {}", response.body);
    response.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_reaches_the_hosts_gateway_as_a_push_event() {
    let tmp = tempfile::tempdir().unwrap();
    let mail_dir = tmp.path().join("mail");
    let app = dev_app(tmp.path()).await;
    let push = app.push().clone();
    let running = serve(app).await;
    let mut gateway = Gateway::start(running.grpc, "test-gateway-1", TOKEN);
    eventually(Duration::from_secs(10), "the gateway subscribes", || {
        let push = push.clone();
        async move { (push.subscriber_count() == 1).then_some(()) }
    })
    .await;

    let host = log_in(running.http, &mail_dir, "host@example.org").await;
    let player = log_in(running.http, &mail_dir, "player@example.org").await;
    let me = send(
        running.http,
        "GET",
        "/api/v1/user/me",
        &[("authorization", &host)],
        "",
    )
    .await
    .unwrap()
    .json();
    let host_id = me["id"].as_str().unwrap().to_owned();
    let game = serde_json::json!({
        "name": "Push Test",
        "min_players": 2,
        "max_players": 4,
        "enrollment_deadline": "2030-02-01T00:00:00Z",
        "turn_schedule": "0 18 * * 1,3,5",
    });
    let game = post(
        running.http,
        &host,
        "/api/v1/user/games",
        &game.to_string(),
        201,
    )
    .await;
    let game_id = game["id"].as_str().unwrap().to_owned();
    post(
        running.http,
        &host,
        &format!("/api/v1/user/games/{game_id}/open"),
        "",
        200,
    )
    .await;
    let body = serde_json::json!({ "race_name": "Vogons" }).to_string();
    let path = format!("/api/v1/user/games/{game_id}/applications");
    post(running.http, &player, &path, &body, 201).await;

    let event = loop {
        let event = tokio::time::timeout(Duration::from_secs(15), gateway.events.recv())
            .await
            .expect("no push event within 15 s")
            .unwrap();
        if event.kind == "application_submitted" {
            break event;
        }
    };
    assert_eq!(event.user_ids, vec![host_id]);
    assert!(!event.cursor.is_empty());
    let payload: serde_json::Value = serde_json::from_str(&event.payload_json).unwrap();
    assert_eq!(payload["race_name"], "Vogons", "{payload}");

    gateway.stop().await;
    running.stop.cancel();
    let report = running.served.await.unwrap().unwrap();
    assert!(report.push_flushed, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_internal_token_is_unauthenticated() {
    let tmp = tempfile::tempdir().unwrap();
    let app = dev_app(tmp.path()).await;
    let push = app.push().clone();
    let running = serve(app).await;
    let mut gateway = Gateway::start(running.grpc, "test-gateway-2", "not-the-internal-token");
    let code = tokio::time::timeout(Duration::from_secs(10), gateway.disconnects.recv())
        .await
        .expect("no disconnect within 10 s")
        .unwrap();
    assert_eq!(code, Some(tonic::Code::Unauthenticated));
    assert_eq!(push.subscriber_count(), 0);
    gateway.stop().await;
    running.stop.cancel();
    let report = running.served.await.unwrap().unwrap();
    assert!(report.is_clean(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_internal_token_no_push_listener_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let map = HashMap::from([(
        "GALAXY_DATA_DIR".to_owned(),
        tmp.path().display().to_string(),
    )]);
    let config = Config::from_vars(&map).unwrap();
    // Listeners::bind skips GALAXY_GRPC_ADDR without a token.
    let mut config_port_0 = config.clone();
    config_port_0.http_addr = "127.0.0.1:0".parse().unwrap();
    let listeners = Listeners::bind(&config_port_0).await.unwrap();
    assert_eq!(listeners.grpc_addr(), None);
}
