//! Play: orders and their read-back, archived reports, the turn history, results and "my
//! games".

use chrono::{DateTime, Utc};
use galaxy_core::domain::play::{GameResult, OrdersSubmission, PlayedTurn, Standing};
use galaxy_core::service::runtime::{GameProgress, MyGame, OrdersReadBack};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::GameView;

/// One race's standing after a turn.
#[derive(Debug, Serialize, ToSchema)]
pub struct StandingView {
    /// The race (the engine contract's `name`).
    pub race: String,
    /// The engine's score.
    pub score: f64,
    /// Whether the race is still in the game.
    pub alive: bool,
}

impl From<Standing> for StandingView {
    fn from(standing: Standing) -> Self {
        Self {
            race: standing.race,
            score: standing.score,
            alive: standing.alive,
        }
    }
}

/// How a finished game ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct GameResultView {
    /// The winning race; `null` when the engine named none.
    pub winner: Option<String>,
    /// When the last turn was played.
    pub finished_at: DateTime<Utc>,
    /// The final standings, as the engine listed them.
    pub standings: Vec<StandingView>,
}

impl From<GameResult> for GameResultView {
    fn from(result: GameResult) -> Self {
        Self {
            winner: result.winner,
            finished_at: result.finished_at,
            standings: result.standings.into_iter().map(Into::into).collect(),
        }
    }
}

impl GameView {
    /// The view with where the game stands: turn, next turn time, result, status reason.
    pub fn with_progress(mut self, progress: GameProgress) -> Self {
        self.current_turn = progress.current_turn;
        self.next_turn_at = progress.next_turn_at;
        self.result = progress.result.map(Into::into);
        self.status_reason = progress.status_reason.map(|r| r.text().to_owned());
        self
    }
}

/// One played turn: when, whether it ended the game, and the standings after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TurnView {
    /// The turn (0 is the start).
    pub turn: u32,
    /// When it was played.
    pub played_at: DateTime<Utc>,
    /// Whether it ended the game.
    pub finished: bool,
    /// The winner, on the finishing turn.
    pub winner: Option<String>,
    /// Every race's standing after the turn (empty when the engine told none).
    pub standings: Vec<StandingView>,
}

impl From<PlayedTurn> for TurnView {
    fn from(turn: PlayedTurn) -> Self {
        Self {
            turn: turn.turn,
            played_at: turn.played_at,
            finished: turn.finished,
            winner: turn.winner,
            standings: turn.standings.into_iter().map(Into::into).collect(),
        }
    }
}

/// Every played turn of a game, turn 0 first: the score history.
#[derive(Debug, Serialize, ToSchema)]
pub struct TurnList {
    /// The turns.
    pub items: Vec<TurnView>,
}

/// `?race=` on `GET /user/games/{id}/reports/{turn}`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// Another race of the game (case-insensitive): allowed once the game is finished
    /// and its host left the end-of-game reveal on; 404 otherwise. Absent: the caller's.
    pub race: Option<String>,
}

/// `?role=&limit=&after=` on `GET /user/games`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MyGamesQuery {
    /// `player` (games the caller plays in), `host` (games they host); both when absent.
    pub role: Option<String>,
    /// `true`: only ended games (`finished`, `cancelled`); `false`: only the others;
    /// both when absent.
    #[param(value_type = Option<bool>)]
    pub ended: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// The `next_after` of the previous page; absent for the first page.
    pub after: Option<String>,
}

/// One of the caller's games.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyGameView {
    /// The game, with its turn, next turn time and result.
    #[serde(flatten)]
    pub game: GameView,
    /// Whether the caller hosts it.
    pub hosting: bool,
    /// The caller's race, when they play in it.
    pub race: Option<String>,
    /// For a player of a running or paused game: whether the engine accepted their
    /// latest orders for the next turn. `null` otherwise.
    pub orders_in: Option<bool>,
    /// For a player, with orders by e-mail on: where to mail orders for this game
    /// (`orders+<token>@<domain>`). `null` otherwise.
    pub orders_address: Option<String>,
}

impl From<MyGame> for MyGameView {
    fn from(mine: MyGame) -> Self {
        Self {
            game: GameView::from(mine.game)
                .with_progress(mine.progress)
                .with_races(mine.races),
            hosting: mine.hosting,
            race: mine.race,
            orders_in: mine.orders_in,
            orders_address: None,
        }
    }
}

/// One page of the caller's games, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyGamePage {
    /// The games.
    pub items: Vec<MyGameView>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next_after: Option<String>,
}

/// One orders submission and the engine's verdict on it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmissionView {
    /// Stable id.
    pub id: Uuid,
    /// When the engine answered.
    pub submitted_at: DateTime<Utc>,
    /// The orders' serialised size in bytes.
    pub size: u64,
    /// Whether the engine took them.
    pub accepted: bool,
    /// The engine's errors or warnings.
    pub errors: Vec<String>,
    /// The orders as sent.
    #[schema(value_type = Object)]
    pub orders: Value,
}

impl From<OrdersSubmission> for SubmissionView {
    fn from(submission: OrdersSubmission) -> Self {
        Self {
            id: submission.id.as_uuid(),
            submitted_at: submission.submitted_at,
            size: submission.size,
            accepted: submission.accepted,
            errors: submission.errors,
            orders: submission.orders,
        }
    }
}

/// The caller's orders for one turn.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrdersReadBackView {
    /// The caller's race.
    pub race: String,
    /// The turn.
    pub turn: u32,
    /// The latest submission (in force when accepted); `null` when none was sent.
    pub latest: Option<SubmissionView>,
    /// The earlier submissions of the turn, newest first.
    pub history: Vec<SubmissionView>,
}

impl From<OrdersReadBack> for OrdersReadBackView {
    fn from(read: OrdersReadBack) -> Self {
        Self {
            race: read.race,
            turn: read.turn,
            latest: read.latest.map(Into::into),
            history: read.history.into_iter().map(Into::into).collect(),
        }
    }
}
