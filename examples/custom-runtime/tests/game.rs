//! The start of a game played through the in-process runtime plugged into a full server
//! (in-memory stores, every worker running, the API on a loopback port): the game starts,
//! its engine answers, a forced turn runs, and a player reads the turn's report.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use galaxy_core::domain::mail::OutgoingMail;
use galaxy_core::ports::{ContainerRuntime, Mailer, MailerError};
use galaxy_core::service::runtime::EngineRegistry;
use galaxy_custom_runtime_example::{ENGINE, InProcessRuntime, StopEnginesOnShutdown};
use galaxy_server::{Adapters, App, Config, Listeners};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

/// Keeps every mail, so the test can read login codes.
#[derive(Default)]
struct Inbox(Mutex<Vec<OutgoingMail>>);

#[async_trait]
impl Mailer for Inbox {
    async fn send(&self, mail: &OutgoingMail) -> Result<String, MailerError> {
        self.0.lock().unwrap().push(mail.clone());
        Ok("250 kept".to_owned())
    }
}

impl Inbox {
    fn login_code(&self, email: &str) -> Option<String> {
        self.0.lock().unwrap().iter().rev().find_map(|mail| {
            let line = mail.text_body.lines().next()?;
            let code = line.strip_prefix("Your Galaxy login code is ")?;
            (mail.to.as_str() == email).then(|| code.trim().to_owned())
        })
    }
}

/// The served API, called as one signed-in user.
#[derive(Clone)]
struct Caller {
    base: String,
    auth: Option<String>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Caller {
    fn anonymous(addr: SocketAddr) -> Self {
        Self {
            base: format!("http://{addr}"),
            auth: None,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if let Some(auth) = &self.auth {
            request = request.header("authorization", auth);
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let response = self
            .client
            .request(request.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn expect(&self, method: Method, path: &str, body: Option<Value>, status: u16) -> Value {
        let (got, json) = self.call(method.clone(), path, body).await;
        assert_eq!(got, status, "{method} {path}: {json}");
        json
    }

    async fn log_in(addr: SocketAddr, inbox: &Inbox, email: &str) -> Self {
        let anonymous = Self::anonymous(addr);
        let issued = anonymous
            .expect(
                Method::POST,
                "/api/v1/public/auth/login-codes",
                Some(json!({ "email": email })),
                202,
            )
            .await;
        let code = eventually("the login code", || async { inbox.login_code(email) }).await;
        let body = json!({ "challenge_id": issued["challenge_id"], "code": code });
        let session = anonymous
            .expect(
                Method::POST,
                "/api/v1/public/auth/sessions",
                Some(body),
                201,
            )
            .await;
        Self {
            auth: Some(format!("Bearer {}", session["token"].as_str().unwrap())),
            ..anonymous
        }
    }
}

async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_game_starts_and_plays_a_turn_on_engines_run_in_process() {
    let data = tempfile::tempdir().unwrap();
    let vars: HashMap<String, String> = [
        ("GALAXY_DATA_DIR", data.path().display().to_string()),
        ("GALAXY_MAIL_INTERVAL", "50ms".to_owned()),
        ("GALAXY_RUNTIME_INTERVAL", "50ms".to_owned()),
        ("GALAXY_HEALTH_INTERVAL", "500ms".to_owned()),
        ("GALAXY_BOOTSTRAP_ADMINS", "admin@example.org".to_owned()),
        // Docker is never asked: the plugged runtime replaces GALAXY_RUNTIME's.
        ("GALAXY_RUNTIME", "docker".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::from_vars(&vars).unwrap();
    let inbox = Arc::new(Inbox::default());
    let runtime = InProcessRuntime::new(data.path().join("engines"));
    let engines = EngineRegistry::parse(&format!("reference={ENGINE}")).unwrap();
    let adapters = Adapters::in_memory(inbox.clone())
        .with_container_runtime(Arc::new(runtime.clone()), Some(engines))
        .with_readiness_check(Arc::new(StopEnginesOnShutdown(runtime.clone())));
    let app = App::build(config, adapters).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(app.serve(Listeners::new(listener), async {
        let _ = stopped.await;
    }));

    let admin = Caller::log_in(addr, &inbox, "admin@example.org").await;
    let host = Caller::log_in(addr, &inbox, "ann@example.org").await;
    let guest = Caller::log_in(addr, &inbox, "bob@example.org").await;
    let game = host
        .expect(
            Method::POST,
            "/api/v1/user/games",
            Some(json!({
                "name": "In-process game",
                "min_players": 2,
                "max_players": 4,
                "enrollment_deadline": "2099-01-01T00:00:00Z",
                "turn_schedule": "0 0 1 1 *",
            })),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let games = format!("/api/v1/user/games/{game}");
    host.expect(Method::POST, &format!("{games}/open"), None, 200)
        .await;
    for (player, race) in [(&host, "Aldebarans"), (&guest, "Betelgeusians")] {
        let application = player
            .expect(
                Method::POST,
                &format!("{games}/applications"),
                Some(json!({ "race_name": race })),
                201,
            )
            .await;
        let approve = format!(
            "{games}/applications/{}/approve",
            application["id"].as_str().unwrap()
        );
        host.expect(Method::POST, &approve, None, 200).await;
    }
    host.expect(Method::POST, &format!("{games}/close"), None, 200)
        .await;
    host.expect(Method::POST, &format!("{games}/start"), None, 200)
        .await;

    // The start job ran the engine on our runtime and initialised the game.
    eventually("the game running", || async {
        let (_, view) = host.call(Method::GET, &games, None).await;
        assert_ne!(view["status"], "start_failed", "{view}");
        (view["status"] == "running").then_some(())
    })
    .await;
    let record = admin
        .expect(
            Method::GET,
            &format!("/api/v1/admin/runtime/records/{game}"),
            None,
            200,
        )
        .await;
    let endpoint = record["engine_endpoint"].as_str().unwrap();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{record}");
    let containers = runtime
        .list_by_label("galaxy.game_id", &game)
        .await
        .unwrap();
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert_eq!(containers[0].state, "running");

    // Orders reach the engine and a forced turn runs on it.
    let verdict = guest
        .expect(
            Method::PUT,
            &format!("{games}/orders"),
            Some(json!({ "turn": 1, "orders": [] })),
            200,
        )
        .await;
    assert_eq!(verdict["accepted"], true, "{verdict}");
    let forced = admin
        .expect(
            Method::POST,
            &format!("/api/v1/admin/games/{game}/force-next-turn"),
            None,
            200,
        )
        .await;
    assert_eq!(forced["current_turn"], 1, "{forced}");
    let report = guest
        .expect(Method::GET, &format!("{games}/reports/1"), None, 200)
        .await;
    assert_eq!(report["race"], "Betelgeusians", "{report}");

    // Shutdown stops the engine through the plugged runtime's close hook.
    stop.send(()).unwrap();
    let report = served.await.unwrap().unwrap();
    assert!(report.workers_stopped, "{report:?}");
    let info = runtime.inspect(&containers[0].container_id).await.unwrap();
    assert_eq!(info.state, "exited");
}
