//! The checker against the reference engine, in-process on 127.0.0.1 with a token: as it
//! is (every rule that `--url` can check passes), and behind a proxy that breaks one rule
//! of the contract (exactly the rules it breaks fail). The proxy forwards with the
//! platform's own engine client, the caller's credential passed through.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::path::PathBuf;

use galaxy_core::domain::engine_auth::EngineToken;
use galaxy_core::ports::EngineTarget;
use galaxy_engine::{RunningEngine, Token};
use galaxy_engine_http::{EngineAnswer, EngineRequest, HttpEngineClient};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::input::RACE_NAMES;
use super::{CheckArgs, CheckError, Report, Status, check};

const TOKEN: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0";

/// What the proxy breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Nothing: a transparent proxy.
    None,
    /// Standings rows say `race` where the contract says `name`.
    RenamedStandingsKey,
    /// Orders the engine refuses (200, `accepted: false`) are answered 409 instead.
    RefusalsAsConflict,
    /// Every race reads the first race's reports.
    ReportsOfTheFirstRace,
    /// `/healthz` answers, but only after the platform's probe gave up on it.
    SlowHealth,
}

fn orders_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/engine/check-orders.json")
}

fn args(url: String) -> CheckArgs {
    CheckArgs {
        url: Some(url),
        launch: None,
        token: Some(TOKEN.to_owned()),
        settings: Some(r#"{"max_turns": 3}"#.to_owned()),
        orders: Some(orders_file()),
        max_turns: 5,
        races: 3,
        seed: 7,
        start_timeout: 10,
    }
}

/// The reference engine in-process on 127.0.0.1 with [`TOKEN`], and its data directory
/// (removed when dropped).
async fn reference_engine() -> (RunningEngine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let token = Some(Token::parse(TOKEN).unwrap());
    let engine = RunningEngine::start_with_token("127.0.0.1:0".parse().unwrap(), dir.path(), token)
        .await
        .unwrap();
    (engine, dir)
}

/// Checks the reference engine behind a proxy with `fault`.
async fn check_through(fault: Fault) -> Report {
    let (engine, _dir) = reference_engine().await;
    let url = proxy(engine.url(), fault).await;
    let report = check(args(url)).await.unwrap();
    engine.stop().await.unwrap();
    report
}

fn names(list: &[&'static str]) -> BTreeSet<&'static str> {
    list.iter().copied().collect()
}

#[tokio::test]
async fn the_reference_engine_passes_every_rule_a_url_can_check() {
    let report = check_through(Fault::None).await;
    assert_eq!(report.names(Status::Fail), names(&[]), "{report}");
    assert_eq!(report.names(Status::Warn), names(&[]), "{report}");
    assert_eq!(
        report.names(Status::Skip),
        names(&["restart.resume", "determinism.seed", "lifecycle.sigterm"]),
        "{report}"
    );
    assert_eq!(report.contract.as_deref(), Some("2"));
}

#[tokio::test]
async fn a_renamed_standings_key_fails_the_standings_rule_only() {
    let report = check_through(Fault::RenamedStandingsKey).await;
    assert_eq!(
        report.names(Status::Fail),
        names(&["standings.rows"]),
        "{report}"
    );
}

#[tokio::test]
async fn refusals_answered_409_fail_the_refusal_rules_only() {
    let report = check_through(Fault::RefusalsAsConflict).await;
    assert_eq!(
        report.names(Status::Fail),
        names(&["orders.refused", "orders.wrong_turn", "finish.orders"]),
        "{report}"
    );
}

#[tokio::test]
async fn a_race_reading_another_race_s_report_fails_the_own_race_rule_only() {
    let report = check_through(Fault::ReportsOfTheFirstRace).await;
    assert_eq!(
        report.names(Status::Fail),
        names(&["reports.own_race"]),
        "{report}"
    );
}

#[tokio::test]
async fn without_an_orders_file_or_a_token_those_rules_are_skipped_never_passed() {
    let dir = tempfile::tempdir().unwrap();
    let engine = RunningEngine::start("127.0.0.1:0".parse().unwrap(), dir.path())
        .await
        .unwrap();
    let mut args = args(engine.url());
    args.orders = None;
    args.token = None;
    args.max_turns = 1;
    let report = check(args).await.unwrap();
    engine.stop().await.unwrap();
    assert_eq!(report.names(Status::Fail), names(&[]), "{report}");
    let skipped = report.names(Status::Skip);
    for rule in [
        "auth.required",
        "auth.challenge",
        "orders.accepted",
        "orders.refused",
        "orders.replace",
        "finish.turn",
        "finish.orders",
        "restart.resume",
    ] {
        assert!(skipped.contains(rule), "{rule} not skipped:\n{report}");
    }
    let finish = report
        .results
        .iter()
        .find(|r| r.rule.name == "finish.turn")
        .unwrap();
    assert!(
        finish
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("--max-turns"),
        "{report}"
    );
}

#[tokio::test]
async fn an_engine_that_needs_a_token_or_holds_a_game_is_not_checked() {
    let (engine, _dir) = reference_engine().await;
    let mut without_token = args(engine.url());
    without_token.token = None;
    let error = check(without_token).await.unwrap_err();
    assert!(matches!(error, CheckError::TokenNeeded), "{error}");
    assert_eq!(error.exit_code(), super::EXIT_USAGE);

    // Once checked, the engine holds the checker's game: a second check refuses it.
    check(args(engine.url())).await.unwrap();
    let error = check(args(engine.url())).await.unwrap_err();
    assert!(matches!(error, CheckError::NotFresh(_)), "{error}");
    assert_eq!(error.exit_code(), super::EXIT_UNCHECKABLE);
    engine.stop().await.unwrap();
}

#[tokio::test]
async fn a_health_probe_answered_after_the_platform_s_bound_is_no_answer() {
    let (engine, _dir) = reference_engine().await;
    let url = proxy(engine.url(), Fault::SlowHealth).await;
    let error = check(args(url)).await.unwrap_err();
    engine.stop().await.unwrap();
    assert!(matches!(error, CheckError::Unreachable { .. }), "{error}");
    let shown = error.to_string();
    assert!(
        shown.contains("GET /healthz: engine did not answer within 5s"),
        "{shown}"
    );
}

/// Serves on 127.0.0.1 a proxy to `upstream` that breaks `fault`; its base URL.
async fn proxy(upstream: String, fault: Fault) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = HttpEngineClient::default();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (client, upstream) = (client.clone(), upstream.clone());
            let service = hyper::service::service_fn(move |request| {
                let (client, upstream) = (client.clone(), upstream.clone());
                async move { Ok::<_, Infallible>(forward(&client, &upstream, fault, request).await) }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

async fn forward(
    client: &HttpEngineClient,
    upstream: &str,
    fault: Fault,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let target = match request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        Some(token) => EngineTarget::new(upstream, EngineToken::new(token)),
        None => EngineTarget::anonymous(upstream),
    };
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body = (!body.is_empty()).then(|| body.to_vec());
    if fault == Fault::SlowHealth && path == EngineRequest::healthz().path() {
        let beyond = galaxy_core::service::runtime::DEFAULT_PROBE_TIMEOUT;
        tokio::time::sleep(beyond + std::time::Duration::from_millis(500)).await;
    }
    let mut forwarded = EngineRequest::new(method, path.clone(), body);
    // Only the game's races are redirected: an unknown race still gets its 404.
    if fault == Fault::ReportsOfTheFirstRace
        && let Some(turn) = path
            .strip_prefix("/reports/")
            .and_then(|rest| rest.rsplit_once('/'))
            .and_then(|(_, t)| t.parse().ok())
        && RACE_NAMES[1..]
            .iter()
            .any(|race| EngineRequest::report(race, turn).path() == path)
    {
        forwarded = EngineRequest::report(RACE_NAMES[0], turn);
    }
    let answer = match client.send(&target, forwarded).await {
        Ok(answer) => answer,
        Err(e) => {
            return respond(
                502,
                None,
                json!({"error": e.to_string()}).to_string().into(),
            );
        }
    };
    let json = answer.json();
    match (fault, json) {
        (Fault::RenamedStandingsKey, Some(mut json)) if answer.is_success() => {
            for key in ["standings", "races"] {
                if let Some(Value::Array(rows)) = json.get_mut(key) {
                    for row in rows {
                        if let Some(row) = row.as_object_mut()
                            && let Some(name) = row.remove("name")
                        {
                            row.insert("race".to_owned(), name);
                        }
                    }
                }
            }
            respond(answer.status, None, json.to_string().into())
        }
        (Fault::RefusalsAsConflict, Some(json))
            if path.starts_with("/orders/") && json["accepted"] == json!(false) =>
        {
            let error = json["errors"].to_string();
            respond(409, None, json!({ "error": error }).to_string().into())
        }
        _ => pass_through(answer),
    }
}

fn pass_through(answer: EngineAnswer) -> Response<Full<Bytes>> {
    let challenge = answer.headers.get(WWW_AUTHENTICATE).cloned();
    respond(answer.status, challenge, answer.body)
}

fn respond(
    status: u16,
    challenge: Option<hyper::header::HeaderValue>,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let mut response = Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json");
    if let Some(challenge) = challenge {
        response = response.header(WWW_AUTHENTICATE, challenge);
    }
    response.body(Full::new(body)).unwrap()
}
