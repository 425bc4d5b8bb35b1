//! The client against the reference engine, started in-process on a real loopback socket
//! and guarded by a token, as the platform runs it: what the conformance suite
//! (tests/conformance.rs) does not cover (a game to its finish, the connection pool
//! across an engine restart, the size bound on orders, how the credential travels).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use galaxy_core::domain::engine_auth::EngineToken;
use galaxy_core::ports::{EngineClient, EngineError, EngineInit, EngineRace, EngineTarget};
use galaxy_engine::{RunningEngine, Token};
use galaxy_engine_http::{ClientOptions, HttpEngineClient, RequestError};
use serde_json::json;

/// The token the tests' engines are started with.
const TOKEN: &str = "5f2c0e6a9b8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b";

async fn engine_at(addr: SocketAddr, dir: &std::path::Path) -> RunningEngine {
    let token = Some(Token::parse(TOKEN).unwrap());
    RunningEngine::start_with_token(addr, dir, token)
        .await
        .unwrap()
}

async fn engine(dir: &std::path::Path) -> RunningEngine {
    engine_at("127.0.0.1:0".parse().unwrap(), dir).await
}

/// How the platform calls `engine`: its URL (plus `suffix`) with the token.
fn target(engine: &RunningEngine, suffix: &str) -> EngineTarget {
    EngineTarget::new(format!("{}{suffix}", engine.url()), EngineToken::new(TOKEN))
}

fn init(game_id: &str) -> EngineInit {
    let race = |name: &str| EngineRace {
        race_name: name.into(),
        player_id: format!("p-{name}"),
    };
    EngineInit {
        game_id: game_id.into(),
        seed: 99,
        settings: json!({"max_turns": 5}),
        races: vec![race("Red Dwarf"), race("Blue/Giant"), race("Ünïcode")],
    }
}

#[tokio::test]
async fn a_game_played_to_its_finish_names_its_winner() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let client = HttpEngineClient::default();
    let url = target(&engine, "");
    let state = client.init(&url, &init("game-1")).await.unwrap();
    assert_eq!(
        state.standings[0].name, "Red Dwarf",
        "standings in race order"
    );
    let mut last = state;
    for expected in 1..=5 {
        last = client.run_turn(&url, expected).await.unwrap();
    }
    assert!(last.finished);
    assert_eq!(last.turn, 5);
    assert_eq!(client.state(&url).await.unwrap().winner, last.winner);
    for race in ["Red Dwarf", "Blue/Giant", "Ünïcode"] {
        let report = client.report(&url, race, 5).await.unwrap();
        assert_eq!(report["race"], race);
        assert!(report["text"].as_str().unwrap().contains(race));
    }
    engine.stop().await.unwrap();
}

#[tokio::test]
async fn a_restarted_engine_is_reached_again_through_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let first = engine(dir.path()).await;
    let addr = first.addr();
    let client = HttpEngineClient::default();
    let url = target(&first, "");
    client.init(&url, &init("g")).await.unwrap();
    client.run_turn(&url, 1).await.unwrap();
    first.stop().await.unwrap();

    let refused = client.state(&url).await.unwrap_err();
    assert!(matches!(refused, EngineError::Refused(_)), "{refused:?}");

    let second = engine_at(addr, dir.path()).await;
    let state = client.state(&url).await.unwrap();
    assert_eq!(state.turn, 1);
    second.stop().await.unwrap();
}

#[tokio::test]
async fn oversized_orders_are_refused_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let options = ClientOptions {
        max_orders_bytes: 64,
        ..ClientOptions::default()
    };
    let client = HttpEngineClient::new(options);
    let url = target(&engine, "");
    client.init(&url, &init("g")).await.unwrap();
    let big =
        json!([{"kind": "build_industry", "planet": 0}, {"kind": "build_industry", "planet": 1}]);
    let err = client
        .submit_orders(&url, "Red Dwarf", 1, &big)
        .await
        .unwrap_err();
    let EngineError::InvalidRequest { source } = err else {
        panic!("{err:?}")
    };
    let request = source.downcast_ref::<RequestError>().unwrap();
    assert!(
        matches!(request, RequestError::OrdersTooLarge { limit: 64, .. }),
        "{request:?}"
    );
    // Orders pass through untouched: a plain-text value reaches the engine as such and
    // is read as the text form.
    let text = client
        .submit_orders(&url, "Red Dwarf", 1, &json!("build"))
        .await
        .unwrap();
    assert!(!text.accepted);
    assert!(
        text.errors[0].contains("unknown order \"build\""),
        "{text:?}"
    );
    engine.stop().await.unwrap();
}

#[tokio::test]
async fn calls_carry_the_token_as_a_bearer_credential_and_are_refused_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let client = HttpEngineClient::default();
    let anonymous = EngineTarget::anonymous(engine.url());
    let wrong = EngineTarget::new(engine.url(), EngineToken::new(TOKEN.replace('5', "6")));

    // `/healthz` is open, the rest is the engine's to refuse: 401, and nothing happens.
    client.healthz(&anonymous).await.unwrap();
    for target in [&anonymous, &wrong] {
        let err = client.init(target, &init("g")).await.unwrap_err();
        assert!(
            matches!(&err, EngineError::Status { status: 401, body } if body.contains("Bearer")),
            "{err:?}"
        );
        let err = client.state(target).await.unwrap_err();
        assert!(
            matches!(err, EngineError::Status { status: 401, .. }),
            "{err:?}"
        );
    }
    let right = target(&engine, "");
    assert!(
        matches!(
            client.state(&right).await.unwrap_err(),
            EngineError::Status { status: 409, .. }
        ),
        "not initialised: the anonymous init changed nothing"
    );
    assert_eq!(client.init(&right, &init("g")).await.unwrap().turn, 0);

    // A token that cannot travel in a header is refused before anything is sent.
    let broken = EngineTarget::new(engine.url(), EngineToken::new("line\nbreak"));
    let err = client.state(&broken).await.unwrap_err();
    assert!(matches!(err, EngineError::InvalidRequest { .. }), "{err:?}");
    engine.stop().await.unwrap();
}

#[tokio::test]
async fn send_gives_raw_answers_whatever_their_status_and_health_reads_the_contract() {
    use galaxy_engine_http::{CONTRACT_VERSION, EngineRequest};

    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let client = HttpEngineClient::default();
    let url = target(&engine, "");

    let health = client.health(&url).await.unwrap();
    assert_eq!(health.contract.as_deref(), Some(CONTRACT_VERSION));

    // Before init the state is a 409: an answer, not an error.
    let answer = client.send(&url, EngineRequest::state()).await.unwrap();
    assert_eq!(answer.status, 409);
    assert!(!answer.is_success());
    assert!(
        answer.json().unwrap()["error"].is_string(),
        "{}",
        answer.text()
    );

    // Without the credential: 401 with its challenge header.
    let anonymous = EngineTarget::anonymous(engine.url());
    let answer = client
        .send(&anonymous, EngineRequest::state())
        .await
        .unwrap();
    assert_eq!(answer.status, 401);
    assert_eq!(answer.headers["www-authenticate"], "Bearer");

    // A body that is not JSON reaches the engine as sent and gets its 400.
    let answer = client
        .send(&url, EngineRequest::init(b"{not json".to_vec()))
        .await
        .unwrap();
    assert_eq!(answer.status, 400, "{}", answer.text());

    let body = serde_json::to_vec(&init("game-raw")).unwrap();
    let answer = client.send(&url, EngineRequest::init(body)).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json().unwrap()["turn"], json!(0));
    let answer = client
        .send(&url, EngineRequest::report("Blue/Giant", 0))
        .await
        .unwrap();
    assert_eq!(answer.json().unwrap()["race"], json!("Blue/Giant"));
    let answer = client
        .send(&url, EngineRequest::report("Nobody", 0))
        .await
        .unwrap();
    assert_eq!(answer.status, 404);
    engine.stop().await.unwrap();
}
