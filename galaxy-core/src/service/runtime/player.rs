//! Players' orders and reports. Orders are forwarded to the engine for the caller's own
//! race only (the race is looked up from the caller's approved application, never taken
//! from the request) and every answered submission is recorded. Reports, the turn history
//! and results are read from the turn archive, never from the engine, so they work in
//! every status after the start, `finished` and `cancelled` included.

use super::{RuntimeError, RuntimeService};
use crate::domain::application::{Application, ApplicationStatus};
use crate::domain::game::{Game, GameStatus, GameTrigger};
use crate::domain::page::{Page, PageRequest};
use crate::domain::play::{GameResult, OrdersSubmission, PlayedTurn, TurnReport};
use crate::domain::{GameId, Timestamp};
use crate::ports::{EngineTarget, StoreError, UserGame, UserGamesFilter};
use crate::service::Actor;

/// Where a player's orders go: the engine and the caller's race.
pub(super) struct Seat {
    /// The engine, with the game's credential.
    pub(super) target: EngineTarget,
    /// The caller's race name.
    pub(super) race: String,
}

/// Where a game stands, for the game view and "my games".
#[derive(Debug, Clone, PartialEq)]
pub struct GameProgress {
    /// The last played turn (0 once the engine is initialised); `None` before the start.
    pub current_turn: Option<u32>,
    /// When the next turn runs ([`RuntimeRecord::deadline`](crate::domain::runtime::RuntimeRecord::deadline): after a forced turn, the
    /// firing after the skipped one); `None` unless the game is running and scheduled.
    pub next_turn_at: Option<Timestamp>,
    /// How the game ended, once finished.
    pub result: Option<GameResult>,
    /// Why the game is in its status, when a transition said so (a start failure with
    /// the engine's reason, a pause, the finish), as the viewer may see it.
    pub status_reason: Option<StatusReason>,
}

/// Why a game is in its status, as one viewer may see it.
///
/// A status the runtime changed on an engine's or container's failure (a failed start, a
/// pause for health) carries the failure's own text: the engine's answer, a transport
/// error naming the engine's address, the container runtime's message. That text is what
/// the game's host needs to fix the settings and what an admin needs to repair the engine,
/// but it is nobody else's business (the public game view included): other viewers get
/// [`StatusReason::EngineFailure`] instead.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusReason {
    /// The reason as the transition recorded it.
    Stated(String),
    /// The engine or its container failed; the details are for the host and admins.
    EngineFailure,
}

impl StatusReason {
    /// The sentence an API client shows for this reason (English).
    pub fn text(&self) -> &str {
        match self {
            Self::Stated(text) => text,
            Self::EngineFailure => {
                "the game's engine failed; its host and the platform's admins see the details"
            }
        }
    }
}

/// Which of the caller's games "my games" lists: all of them (the default), or only one
/// role, or only those still going or only those ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MyGamesFilter {
    /// Only the games of this role.
    pub role: Option<MyGamesRole>,
    /// Only ended games (`finished` or `cancelled`: `Some(true)`) or only the others
    /// (`Some(false)`).
    pub ended: Option<bool>,
}

/// Which of the caller's games "my games" lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MyGamesRole {
    /// Games the caller plays in (an approved application for a race not handed over, or
    /// a race taken over).
    Player,
    /// Games the caller hosts.
    Host,
}

/// One of the caller's games with what a player needs to see first.
#[derive(Debug, Clone, PartialEq)]
pub struct MyGame {
    /// The game.
    pub game: Game,
    /// Whether the caller hosts it.
    pub hosting: bool,
    /// The caller's race, when they play in it.
    pub race: Option<String>,
    /// Turn, schedule and result.
    pub progress: GameProgress,
    /// For a player of a running or paused game: whether the engine accepted their
    /// latest orders for the next turn.
    pub orders_in: Option<bool>,
    /// Every race with its readiness and state (empty before the start).
    pub races: Vec<super::RaceView>,
}

/// A race's orders for one turn as its player sent them.
#[derive(Debug, Clone, PartialEq)]
pub struct OrdersReadBack {
    /// The caller's race.
    pub race: String,
    /// The turn.
    pub turn: u32,
    /// The latest submission (the one in force when accepted), if any.
    pub latest: Option<OrdersSubmission>,
    /// The earlier submissions of the turn, newest first.
    pub history: Vec<OrdersSubmission>,
}

impl RuntimeService {
    /// The caller's orders for `turn`: the latest submission and the earlier ones.
    pub async fn orders(
        &self,
        actor: Actor,
        game_id: GameId,
        turn: u32,
    ) -> Result<OrdersReadBack, RuntimeError> {
        let race = self.own_race(actor, game_id).await?;
        let mut all = self
            .orders
            .list_orders(game_id, &race, turn)
            .await?
            .into_iter();
        let latest = all.next();
        Ok(OrdersReadBack {
            race,
            turn,
            latest,
            history: all.collect(),
        })
    }

    /// The caller's race and its orders in force for `turn` (the latest submission),
    /// without the turn's earlier ones: what a page showing the orders to come reads.
    pub async fn orders_in_force(
        &self,
        actor: Actor,
        game_id: GameId,
        turn: u32,
    ) -> Result<(String, Option<OrdersSubmission>), RuntimeError> {
        let race = self.own_race(actor, game_id).await?;
        let latest = self.orders.latest_orders(game_id, &race, turn).await?;
        Ok((race, latest))
    }

    /// A report of `turn` from the archive: the caller's own, or, with `race`, another
    /// race's once the game is finished and its host left the reveal on. A race the
    /// caller may not read is `NotFound`, as is a turn not played yet.
    pub async fn report(
        &self,
        actor: Actor,
        game_id: GameId,
        turn: u32,
        race: Option<&str>,
    ) -> Result<TurnReport, RuntimeError> {
        let own_race = self.own_race(actor, game_id).await?;
        let own = own_race.as_str();
        let wanted = match race {
            None => own.to_owned(),
            Some(name) if same_race(name, own) => own.to_owned(),
            Some(name) => self.revealed_race(game_id, name).await?,
        };
        let archive = &self.archive;
        match archive.get_report(game_id, turn, &wanted).await {
            Ok(report) => Ok(report),
            Err(StoreError::NotFound { .. }) => {
                let last = archive.latest_turn(game_id).await?.map(|t| t.turn);
                if last.is_some_and(|last| turn <= last) {
                    // The turn was played but this race has no report of it (it joined
                    // the archive later, or the engine never listed it).
                    Err(RuntimeError::not_found(
                        "report",
                        format!("{wanted}/{turn}"),
                    ))
                } else {
                    Err(RuntimeError::TurnNotPlayed { turn, last })
                }
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Every played turn of a game (turn 0 first) with its time and standings: the score
    /// history. Visible to whoever may see the game (a draft only to its host and
    /// admins; `actor` is `None` on public routes).
    pub async fn turns(
        &self,
        actor: Option<Actor>,
        game_id: GameId,
    ) -> Result<Vec<PlayedTurn>, RuntimeError> {
        let game = self.game(game_id).await?;
        let sees_drafts = actor.is_some_and(|a| a.is_admin || a.user_id == game.host);
        if game.status == GameStatus::Draft && !sees_drafts {
            return Err(RuntimeError::not_found("game", game_id));
        }
        Ok(self.archive.list_turns(game_id).await?)
    }

    /// Where `game` stands for `viewer` (`None`: an anonymous visitor): its last played
    /// turn, next turn time, result and the reason of its status (an engine failure's
    /// details only for the host and admins, see [`StatusReason`]).
    pub async fn progress(
        &self,
        game: &Game,
        viewer: Option<&Actor>,
    ) -> Result<GameProgress, RuntimeError> {
        let latest = self.archive.latest_turn(game.id).await?;
        let next_turn_at = if game.status == GameStatus::Running {
            match self.statuses.records.get_record(game.id).await {
                Ok(record) => record.deadline(&game.settings.schedule),
                Err(StoreError::NotFound { .. }) => None,
                Err(error) => return Err(error.into()),
            }
        } else {
            None
        };
        let status_reason = if matches!(
            game.status,
            GameStatus::StartFailed
                | GameStatus::Paused
                | GameStatus::Finished
                | GameStatus::Cancelled
        ) {
            let transitions = self.statuses.games.game_transitions(game.id).await?;
            let entitled = viewer.is_some_and(|v| v.is_admin || v.user_id == game.host);
            transitions
                .into_iter()
                .rev()
                .find(|t| t.to == game.status)
                .and_then(|t| match (t.reason, t.trigger) {
                    (Some(_), GameTrigger::RuntimeEvent) if !entitled => {
                        Some(StatusReason::EngineFailure)
                    }
                    (reason, _) => reason.map(StatusReason::Stated),
                })
        } else {
            None
        };
        Ok(GameProgress {
            current_turn: latest.as_ref().map(|t| t.turn),
            next_turn_at,
            result: latest
                .filter(|_| game.status == GameStatus::Finished)
                .and_then(|t| t.result()),
            status_reason,
        })
    }

    /// One page of the caller's games, newest first: those they play in (an approved
    /// application, or a race taken over) and those they host, as `filter` says. The
    /// page is one store read
    /// ([`list_user_games`](crate::ports::ApplicationStore::list_user_games)); where
    /// each game stands (turn, orders, races: several reads a game) is read for the
    /// page's games only. The cursor is the store's: the next page starts after the last game's place
    /// in the order, so a game that ended or left the list in between does not break the
    /// walk ([`StoreError::InvalidCursor`] for one that is not a cursor of this list).
    pub async fn my_games(
        &self,
        actor: Actor,
        filter: MyGamesFilter,
        page: &PageRequest,
    ) -> Result<Page<MyGame>, RuntimeError> {
        let wanted = UserGamesFilter {
            plays: filter.role != Some(MyGamesRole::Host),
            hosts: filter.role != Some(MyGamesRole::Player),
            ended: filter.ended,
        };
        let games = self
            .applications
            .list_user_games(actor.user_id, wanted, page)
            .await?;
        let mut mine = Vec::with_capacity(games.items.len());
        for UserGame { game, race } in games.items {
            let progress = self.progress(&game, Some(&actor)).await?;
            let orders_in = match (&race, game.status) {
                (Some(race), GameStatus::Running | GameStatus::Paused) => {
                    let next = progress.current_turn.map_or(1, |t| t.saturating_add(1));
                    let latest = self.orders.latest_orders(game.id, race, next).await?;
                    Some(latest.is_some_and(|s| s.accepted))
                }
                _ => None,
            };
            let races = self.races(&game).await?;
            mine.push(MyGame {
                races,
                hosting: game.host == actor.user_id,
                game,
                race,
                progress,
                orders_in,
            });
        }
        Ok(Page {
            items: mine,
            next_after: games.next_after,
        })
    }

    /// Another race of the game, when the reveal lets the caller read its reports.
    async fn revealed_race(&self, game_id: GameId, name: &str) -> Result<String, RuntimeError> {
        let game = self.game(game_id).await?;
        let hidden = || RuntimeError::not_found("race", name);
        if game.status != GameStatus::Finished || !game.settings.reveal_reports_after_finish {
            return Err(hidden());
        }
        let applications = self.applications.list_applications(game_id).await?;
        applications
            .iter()
            .filter(|a| a.status == ApplicationStatus::Approved)
            .map(|a| a.race_name.as_str())
            .find(|race| same_race(race, name))
            .map(str::to_owned)
            .ok_or_else(hidden)
    }

    /// The caller's approved application to the game; anyone else gets `NotFound` (the
    /// game's play is none of their business).
    pub(super) async fn application(
        &self,
        actor: Actor,
        game_id: GameId,
    ) -> Result<Application, RuntimeError> {
        self.applications
            .find_live_application(game_id, actor.user_id)
            .await?
            .filter(|a| a.status == ApplicationStatus::Approved)
            .ok_or_else(|| RuntimeError::not_found("game", game_id))
    }

    /// The caller's seat in a running or paused game. Not a player -> `NotFound`; a game
    /// not in play, or a race out of it ([`RuntimeError::RaceEliminated`]) -> `Conflict`.
    pub(super) async fn seat(&self, actor: Actor, game_id: GameId) -> Result<Seat, RuntimeError> {
        let game: Game = self.game(game_id).await?;
        let race = self.own_race(actor, game_id).await?;
        if !matches!(game.status, GameStatus::Running | GameStatus::Paused) {
            return Err(RuntimeError::WrongStatus {
                action: "play",
                status: game.status,
            });
        }
        self.still_in_game(game_id, &race).await?;
        let record = self.runtime_of(game_id).await?;
        let binding = record.binding.ok_or_else(|| RuntimeError::Unhealthy {
            reason: "no engine is bound to the game".into(),
        })?;
        Ok(Seat {
            target: self.engines.engine_target(game_id, &binding),
            race,
        })
    }
}

/// Whether a race name a player typed names a stored race (case does not matter).
fn same_race(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}
