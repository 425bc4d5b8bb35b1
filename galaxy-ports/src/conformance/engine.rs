//! Conformance suite for [`EngineClient`]: every call of the engine contract against a
//! real engine over HTTP, and every failure mapped to the port's error kind: a status
//! the engine answers is `Status` with that status, nothing listening is `Refused`, no
//! answer in time is `Timeout`, an answer that is not the contract's is `Malformed`, an
//! endpoint that cannot be called is `InvalidRequest`.
//!
//! A client author implements [`EngineFixture`] (the client, a fresh engine per case,
//! orders it accepts and refuses) and calls [`run_all`]:
//!
//! ```rust,ignore
//! galaxy_ports::conformance::engine::run_all(&MyFixture::new()).await;
//! ```
//!
//! The misbehaving engines of the transport cases are small raw TCP servers the suite
//! runs on 127.0.0.1 itself.

use std::time::Duration;

use async_trait::async_trait;
use galaxy_core::ports::{EngineClient, EngineError, EngineInit, EngineRace, EngineTarget};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::runtime::support::uuid;

const SUITE: &str = "engine client";

/// The races of every game the suite initialises.
pub const RACES: [&str; 3] = ["Red Dwarf", "Blue/Giant", "Ünïcode"];

/// The test set-up of one engine client adapter.
#[async_trait]
pub trait EngineFixture: Send + Sync {
    /// The client under test.
    type Client: EngineClient;

    /// The client, with a request and turn timeout no longer than [`Self::timeout`].
    fn client(&self) -> Self::Client;

    /// A fresh engine that has not been initialised (called once per case): its base URL
    /// and the credential it requires (`EngineTarget::token` must be `Some`).
    async fn engine(&self) -> EngineTarget;

    /// The engine-specific settings of init (`{}` for the reference engine).
    fn settings(&self) -> Value {
        serde_json::json!({})
    }

    /// Orders the engine accepts from any race for turn 1 (`[]` for the reference engine).
    fn valid_orders(&self) -> Value;

    /// Orders the engine refuses with `accepted: false` and at least one error.
    fn invalid_orders(&self) -> Value;

    /// The client's timeout: the suite's hanging engine must fail within twice this.
    fn timeout(&self) -> Duration;
}

/// Runs every case, each on a fresh engine from `fixture`.
pub async fn run_all<F: EngineFixture>(fixture: &F) {
    let (client, target) = case(fixture, "healthz answers, with or without a credential").await;
    healthz(client, target).await;
    let (client, target) = case(fixture, "init starts turn 0, idempotently").await;
    init(client, target, fixture).await;
    let (client, target) = case(fixture, "state before and after init").await;
    state(client, target, fixture).await;
    let (client, target) = case(fixture, "every race's report of a played turn").await;
    reports(client, target, fixture).await;
    let (client, target) = case(fixture, "orders are judged, not failed").await;
    orders(client, target, fixture).await;
    let (client, target) = case(fixture, "a turn runs once for its expected turn").await;
    turns(client, target, fixture).await;
    let (client, target) = case(fixture, "a wrong or missing credential is 401").await;
    credentials(client, target, fixture).await;
    transport(fixture).await;
}

/// Announces a case and sets it up: the client and a fresh engine.
async fn case<F: EngineFixture>(fixture: &F, name: &str) -> (F::Client, EngineTarget) {
    eprintln!("conformance {SUITE}: {name}");
    let target = fixture.engine().await;
    assert!(target.token.is_some(), "the fixture's engine needs a token");
    (fixture.client(), target)
}

fn ok<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what}: {error}"),
    }
}

/// Asserts `result` is `Status` with a status in `range`.
fn status<T: std::fmt::Debug>(
    result: Result<T, EngineError>,
    range: std::ops::RangeInclusive<u16>,
    what: &str,
) {
    assert!(
        matches!(&result, Err(EngineError::Status { status, .. }) if range.contains(status)),
        "{what}: expected a status in {range:?}, got {result:?}"
    );
}

fn game(settings: Value, game_id: &str) -> EngineInit {
    EngineInit {
        game_id: game_id.to_owned(),
        seed: 42,
        settings,
        races: RACES
            .iter()
            .map(|name| EngineRace {
                race_name: (*name).to_owned(),
                player_id: format!("player-{}", uuid()),
            })
            .collect(),
    }
}

async fn started<C: EngineClient, F: EngineFixture>(
    client: &C,
    target: &EngineTarget,
    fixture: &F,
) -> EngineInit {
    let init = game(fixture.settings(), &uuid().to_string());
    ok(client.init(target, &init).await, "init");
    init
}

async fn healthz<C: EngineClient>(client: C, target: EngineTarget) {
    ok(client.healthz(&target).await, "healthz");
    let anonymous = EngineTarget::anonymous(target.endpoint.clone());
    ok(
        client.healthz(&anonymous).await,
        "healthz without a credential",
    );
    let slash = EngineTarget::anonymous(format!("{}/", target.endpoint));
    ok(client.healthz(&slash).await, "a base URL ending in /");
}

async fn init<C: EngineClient, F: EngineFixture>(client: C, target: EngineTarget, fixture: &F) {
    let init = game(fixture.settings(), &uuid().to_string());
    let state = ok(client.init(&target, &init).await, "init");
    assert_eq!((state.turn, state.finished), (0, false), "{state:?}");
    let mut names: Vec<_> = state.standings.iter().map(|r| r.name.as_str()).collect();
    names.sort_unstable();
    let mut expected = RACES.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected, "one standing per race");
    let again = ok(client.init(&target, &init).await, "a repeated init");
    assert_eq!(again, state, "init is idempotent");
    let other = game(fixture.settings(), "another-game");
    status(
        client.init(&target, &other).await,
        409..=409,
        "another game",
    );
}

async fn state<C: EngineClient, F: EngineFixture>(client: C, target: EngineTarget, fixture: &F) {
    status(client.state(&target).await, 409..=409, "state before init");
    let init = game(fixture.settings(), &uuid().to_string());
    let answered = ok(client.init(&target, &init).await, "init");
    assert_eq!(ok(client.state(&target).await, "state"), answered);
}

async fn reports<C: EngineClient, F: EngineFixture>(client: C, target: EngineTarget, fixture: &F) {
    started(&client, &target, fixture).await;
    for race in RACES {
        let report = ok(client.report(&target, race, 0).await, "a turn-0 report");
        assert!(
            report.is_object() || report.is_string(),
            "{race}: a JSON document, got {report}"
        );
    }
    status(
        client.report(&target, "Nobody", 0).await,
        404..=404,
        "an unknown race",
    );
    status(
        client.report(&target, RACES[0], 1).await,
        404..=404,
        "an unplayed turn",
    );
}

async fn orders<C: EngineClient, F: EngineFixture>(client: C, target: EngineTarget, fixture: &F) {
    started(&client, &target, fixture).await;
    for race in RACES {
        let verdict = ok(
            client
                .submit_orders(&target, race, 1, &fixture.valid_orders())
                .await,
            "valid orders",
        );
        assert!(verdict.accepted, "{race}: {verdict:?}");
    }
    let verdict = ok(
        client
            .submit_orders(&target, RACES[1], 1, &fixture.invalid_orders())
            .await,
        "invalid orders",
    );
    assert!(!verdict.accepted, "{verdict:?}");
    assert!(!verdict.errors.is_empty(), "a refusal says why");
    status(
        client
            .submit_orders(&target, "Nobody", 1, &fixture.valid_orders())
            .await,
        404..=404,
        "orders of an unknown race",
    );
}

async fn turns<C: EngineClient, F: EngineFixture>(client: C, target: EngineTarget, fixture: &F) {
    started(&client, &target, fixture).await;
    let turn = ok(client.run_turn(&target, 1).await, "turn 1");
    assert_eq!(turn.turn, 1);
    assert_eq!(turn.standings.len(), RACES.len());
    let repeat = ok(client.run_turn(&target, 1).await, "turn 1 again");
    assert_eq!(repeat, turn, "a repeated turn runs nothing");
    status(client.run_turn(&target, 5).await, 409..=409, "a turn ahead");
    assert_eq!(ok(client.state(&target).await, "state").turn, 1);
    for race in RACES {
        ok(client.report(&target, race, 1).await, "a turn-1 report");
    }
}

async fn credentials<C: EngineClient, F: EngineFixture>(
    client: C,
    target: EngineTarget,
    fixture: &F,
) {
    let anonymous = EngineTarget::anonymous(target.endpoint.clone());
    let init = game(fixture.settings(), &uuid().to_string());
    status(
        client.init(&anonymous, &init).await,
        401..=403,
        "anonymous init",
    );
    status(client.state(&anonymous).await, 401..=403, "anonymous state");
    let wrong = EngineTarget::new(
        target.endpoint.clone(),
        galaxy_core::domain::engine_auth::EngineToken::new(format!("wrong-{}", uuid().simple())),
    );
    status(client.state(&wrong).await, 401..=403, "a wrong token");
    // The refused init changed nothing.
    status(
        client.state(&target).await,
        409..=409,
        "state after a refused init",
    );
}

/// The transport cases, on raw TCP servers of the suite's own.
async fn transport<F: EngineFixture>(fixture: &F) {
    eprintln!("conformance {SUITE}: nothing listening is Refused");
    let client = fixture.client();
    let closed = ok(TcpListener::bind("127.0.0.1:0").await, "bind");
    let addr = ok(closed.local_addr(), "address");
    drop(closed);
    let refused = client
        .healthz(&EngineTarget::anonymous(format!("http://{addr}")))
        .await;
    assert!(
        matches!(refused, Err(EngineError::Refused(_))),
        "{refused:?}"
    );

    eprintln!("conformance {SUITE}: no answer in time is Timeout");
    let hanging = raw_engine(None).await;
    let began = tokio::time::Instant::now();
    let result = client.state(&hanging).await;
    assert!(matches!(result, Err(EngineError::Timeout(_))), "{result:?}");
    assert!(
        began.elapsed() < fixture.timeout() * 2,
        "{:?}",
        began.elapsed()
    );

    eprintln!("conformance {SUITE}: an answer off the contract is Malformed");
    let garbage = raw_engine(Some(raw_answer("200 OK", b"this is not json"))).await;
    let result = client.state(&garbage).await;
    assert!(
        matches!(result, Err(EngineError::Malformed(_))),
        "{result:?}"
    );
    let shape = raw_engine(Some(raw_answer("200 OK", br#"{"turn": "one"}"#))).await;
    let result = client.run_turn(&shape, 1).await;
    assert!(
        matches!(result, Err(EngineError::Malformed(_))),
        "{result:?}"
    );

    eprintln!("conformance {SUITE}: an error status is Status, with its body");
    let failing = raw_engine(Some(raw_answer(
        "503 Service Unavailable",
        br#"{"error":"busy"}"#,
    )))
    .await;
    let result = client.state(&failing).await;
    assert!(
        matches!(&result, Err(EngineError::Status { status: 503, body }) if body.contains("busy")),
        "{result:?}"
    );

    eprintln!("conformance {SUITE}: an endpoint that cannot be called is InvalidRequest");
    for bad in ["", "not a url", "http://"] {
        let result = client.healthz(&EngineTarget::anonymous(bad)).await;
        assert!(
            matches!(result, Err(EngineError::InvalidRequest { .. })),
            "{bad:?}: {result:?}"
        );
    }
}

/// A misbehaving engine for fault tests of an [`EngineClient`]: a server on 127.0.0.1
/// answering every request with `response` (raw HTTP bytes, see [`raw_answer`]) after
/// reading its head; `None` reads and never answers (a hang).
pub async fn raw_engine(response: Option<Vec<u8>>) -> EngineTarget {
    let listener = ok(TcpListener::bind("127.0.0.1:0").await, "bind");
    let addr = ok(listener.local_addr(), "address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                match response {
                    Some(bytes) => {
                        let _ = socket.write_all(&bytes).await;
                        let _ = socket.shutdown().await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(600)).await,
                }
            });
        }
    });
    EngineTarget::anonymous(format!("http://{addr}"))
}

/// A raw HTTP/1.1 answer with a JSON content type, for [`raw_engine`].
pub fn raw_answer(status: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}
