//! The engine HTTP contract (SPEC section 9) over the game and its data directory.
//!
//! Every answer is JSON, errors included (`{"error": ..., "details"?: [...]}`). Bodies
//! are read with a size bound and parsed here, so bad input gets a 4xx with a reason,
//! never a panic. One lock serialises every change; each change is persisted before it
//! is answered, and in memory only once persisted.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post, put};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::auth::{self, Token};
use crate::game::{self, Game, MAX_RACE_NAME, MAX_RACES, Settings, Standing, TurnLog};
use crate::store::{Store, StoreError};

/// The version of the engine contract this engine implements, said by `GET /healthz`
/// (docs/engine-contract.md, "Versions": 2 is the contract with the credential).
pub const CONTRACT_VERSION: &str = "2";

/// Largest accepted request body, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest accepted game id or player id, in characters.
const MAX_ID: usize = 128;

/// One game's engine: the game (once initialised) and its data directory.
#[derive(Debug)]
pub struct Engine {
    /// `None` until `/admin/init`; held across persistence so changes apply in order.
    game: Mutex<Option<Game>>,
    /// Where every change is written before it is answered.
    store: Store,
    /// The credential every call but `/healthz` must carry; `None` serves anyone (an
    /// engine run by hand, or by tests).
    token: Option<Token>,
}

impl Engine {
    /// Opens a data directory and resumes the game stored there, if any. It serves
    /// anyone until given a token ([`Engine::with_token`]).
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let (store, game) = Store::open(data_dir)?;
        Ok(Self {
            game: Mutex::new(game),
            store,
            token: None,
        })
    }

    /// The same engine, answering only calls that carry `token` (when `Some`).
    pub fn with_token(mut self, token: Option<Token>) -> Self {
        self.token = token;
        self
    }
}

/// The contract's routes over `engine`, behind its credential check.
pub fn router(engine: Arc<Engine>) -> Router {
    let token = engine.token.clone();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/admin/init", post(init))
        .route("/admin/turn", post(turn))
        .route("/admin/state", get(state))
        .route("/orders/{race}", put(orders))
        .route("/reports/{race}/{turn}", get(report))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async {
            error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed", &[])
        })
        .with_state(engine)
        .layer(axum::middleware::from_fn_with_state(token, auth::require))
}

/// A request the engine refuses, or a failure of its own.
#[derive(Debug)]
enum ApiError {
    BadRequest(String),
    NotFound(String),
    Conflict(String),
    Unprocessable(Vec<String>),
    TooLarge,
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::BadRequest(m) => error(StatusCode::BAD_REQUEST, &m, &[]),
            Self::NotFound(m) => error(StatusCode::NOT_FOUND, &m, &[]),
            Self::Conflict(m) => error(StatusCode::CONFLICT, &m, &[]),
            Self::Unprocessable(details) => error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid request",
                &details,
            ),
            Self::TooLarge => {
                let m = format!("body larger than {MAX_BODY_BYTES} bytes");
                error(StatusCode::PAYLOAD_TOO_LARGE, &m, &[])
            }
            Self::Internal(m) => error(StatusCode::INTERNAL_SERVER_ERROR, &m, &[]),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "data directory failure");
        Self::Internal(format!("storage failure: {e}"))
    }
}

fn error(status: StatusCode, message: &str, details: &[String]) -> Response {
    let body = if details.is_empty() {
        json!({ "error": message })
    } else {
        json!({ "error": message, "details": details })
    };
    (status, Json(body)).into_response()
}

/// Reads a JSON body of at most [`MAX_BODY_BYTES`].
async fn read_json<T: DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    let bytes = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => return Err(ApiError::TooLarge),
        Err(e) => return Err(ApiError::BadRequest(format!("cannot read the body: {e}"))),
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

fn not_initialised() -> ApiError {
    ApiError::Conflict("the engine has not been initialised (POST /admin/init)".into())
}

/// Ready (the state was loaded before the port opened), and which contract it speaks.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok", "contract": CONTRACT_VERSION }))
}

/// `/admin/init` body.
#[derive(Deserialize)]
struct InitRequest {
    game_id: String,
    seed: u64,
    #[serde(default)]
    settings: Value,
    races: Vec<InitRace>,
}

#[derive(Deserialize)]
struct InitRace {
    race_name: String,
    player_id: String,
}

/// The answer of init and `/admin/state`.
#[derive(Serialize)]
struct StateView<'a> {
    game_id: &'a str,
    turn: u32,
    finished: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    winner: Option<&'a str>,
    races: Vec<Standing>,
}

fn state_view(game: &Game) -> Json<StateView<'_>> {
    Json(StateView {
        game_id: &game.game_id,
        turn: game.turn,
        finished: game.finished,
        winner: game.winner.as_deref(),
        races: game.standings(),
    })
}

async fn init(State(engine): State<Arc<Engine>>, body: Body) -> Result<Response, ApiError> {
    let request: InitRequest = read_json(body).await?;
    let mut guard = engine.game.lock().await;
    if let Some(game) = guard.as_ref() {
        return if game.game_id == request.game_id {
            Ok(state_view(game).into_response())
        } else {
            Err(ApiError::Conflict(format!(
                "this engine already runs game {}",
                game.game_id
            )))
        };
    }
    let (settings, races) = validate_init(&request).map_err(ApiError::Unprocessable)?;
    let game = Game::new(request.game_id, request.seed, settings, races);
    let reports = game::report::all(&game, &TurnLog::default());
    engine.store.save_turn(&game, &reports).await?;
    tracing::info!(game_id = %game.game_id, races = game.races.len(), "game initialised");
    let answer = state_view(&game).into_response();
    *guard = Some(game);
    Ok(answer)
}

/// (race name, player id) pairs, in init order.
type RaceList = Vec<(String, String)>;

fn validate_init(request: &InitRequest) -> Result<(Settings, RaceList), Vec<String>> {
    let mut errors = Vec::new();
    let id_ok =
        |s: &str| !s.is_empty() && s.chars().count() <= MAX_ID && !s.chars().any(char::is_control);
    if !id_ok(&request.game_id) {
        errors.push(format!(
            "game_id must have 1..={MAX_ID} characters and no control characters"
        ));
    }
    if request.races.is_empty() || request.races.len() > MAX_RACES {
        errors.push(format!("races must list 1..={MAX_RACES} races"));
    }
    let mut seen = BTreeMap::new();
    for (i, race) in request.races.iter().enumerate() {
        let name = &race.race_name;
        let chars = name.chars().count();
        if chars == 0
            || chars > MAX_RACE_NAME
            || name.trim() != name
            || name.chars().any(char::is_control)
        {
            errors.push(format!(
                "races[{i}].race_name must have 1..={MAX_RACE_NAME} characters, no surrounding spaces and no control characters"
            ));
        }
        if seen.insert(name.as_str(), i).is_some() {
            errors.push(format!("races[{i}].race_name {name:?} is not unique"));
        }
        if !id_ok(&race.player_id) {
            errors.push(format!(
                "races[{i}].player_id must have 1..={MAX_ID} characters"
            ));
        }
    }
    match Settings::parse(&request.settings) {
        Ok(settings) if errors.is_empty() => Ok((
            settings,
            request
                .races
                .iter()
                .map(|r| (r.race_name.clone(), r.player_id.clone()))
                .collect(),
        )),
        Ok(_) => Err(errors),
        Err(mut more) => {
            errors.append(&mut more);
            Err(errors)
        }
    }
}

/// `/admin/turn` body.
#[derive(Deserialize)]
struct TurnRequest {
    expected_turn: u32,
}

/// The answer of `/admin/turn`.
#[derive(Serialize)]
struct TurnView<'a> {
    turn: u32,
    finished: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    winner: Option<&'a str>,
    standings: Vec<Standing>,
}

fn turn_view(game: &Game) -> Response {
    Json(TurnView {
        turn: game.turn,
        finished: game.finished,
        winner: game.winner.as_deref(),
        standings: game.standings(),
    })
    .into_response()
}

async fn turn(State(engine): State<Arc<Engine>>, body: Body) -> Result<Response, ApiError> {
    let request: TurnRequest = read_json(body).await?;
    let mut guard = engine.game.lock().await;
    let game = guard.as_ref().ok_or_else(not_initialised)?;
    // A repeat (or a call after the end) runs nothing: the caller may be retrying.
    if game.finished || request.expected_turn <= game.turn {
        return Ok(turn_view(game));
    }
    if request.expected_turn > game.turn + 1 {
        return Err(ApiError::Conflict(format!(
            "expected_turn {} is ahead of the next turn, {}",
            request.expected_turn,
            game.turn + 1
        )));
    }
    let mut next = game.clone();
    let reports = next.run_turn();
    engine.store.save_turn(&next, &reports).await?;
    tracing::info!(turn = next.turn, finished = next.finished, "turn completed");
    let answer = turn_view(&next);
    *guard = Some(next);
    Ok(answer)
}

async fn state(State(engine): State<Arc<Engine>>) -> Result<Response, ApiError> {
    let guard = engine.game.lock().await;
    let game = guard.as_ref().ok_or_else(not_initialised)?;
    Ok(state_view(game).into_response())
}

/// `PUT /orders/{race}` body.
#[derive(Deserialize)]
struct OrdersRequest {
    turn: u32,
    orders: Value,
}

fn verdict(accepted: bool, errors: Vec<String>) -> Response {
    Json(json!({ "accepted": accepted, "errors": errors })).into_response()
}

async fn orders(
    State(engine): State<Arc<Engine>>,
    race: Result<UrlPath<String>, PathRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let UrlPath(race) = race.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let request: OrdersRequest = read_json(body).await?;
    let mut guard = engine.game.lock().await;
    let game = guard.as_mut().ok_or_else(not_initialised)?;
    let Some(r) = game.race(&race) else {
        return Err(ApiError::NotFound(format!("no race {race:?} in this game")));
    };
    let next = game.turn + 1;
    if game.finished {
        return Ok(verdict(false, vec!["the game is over".into()]));
    }
    if !r.alive {
        return Ok(verdict(false, vec!["your race has been eliminated".into()]));
    }
    if request.turn != next {
        let why = format!(
            "these orders are for turn {}, but the next turn is {next}",
            request.turn
        );
        return Ok(verdict(false, vec![why]));
    }
    let orders = match game::orders::validate(game, &race, &request.orders) {
        Ok(orders) => orders,
        Err(errors) => return Ok(verdict(false, errors)),
    };
    let previous = game.orders.insert(race.clone(), orders);
    if let Err(e) = engine.store.save_state(game).await {
        // Memory must match the disk: the earlier submission stays in force.
        match previous {
            Some(previous) => game.orders.insert(race, previous),
            None => game.orders.remove(&race),
        };
        return Err(e.into());
    }
    Ok(verdict(true, Vec::new()))
}

async fn report(
    State(engine): State<Arc<Engine>>,
    params: Result<UrlPath<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let UrlPath((race, turn)) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let turn: u32 = turn
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("turn must be a turn number, got {turn:?}")))?;
    {
        let guard = engine.game.lock().await;
        let game = guard.as_ref().ok_or_else(not_initialised)?;
        if game.race(&race).is_none() {
            return Err(ApiError::NotFound(format!("no race {race:?} in this game")));
        }
        if turn > game.turn {
            return Err(ApiError::NotFound(format!(
                "turn {turn} has not been played; the last turn is {}",
                game.turn
            )));
        }
    }
    // Played turns' reports never change, so they are read without the lock.
    let mut reports = engine.store.load_reports(turn).await?;
    match reports.remove(&race) {
        Some(report) => Ok(Json(report).into_response()),
        None => Err(ApiError::Internal(format!(
            "turn {turn}'s reports lack race {race:?}"
        ))),
    }
}
