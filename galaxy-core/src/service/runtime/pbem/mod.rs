//! The play-by-email habits (issue 11) on top of the record of play: who plays each race
//! (a replacement player takes a race over), readiness and `ready` without orders,
//! per-game preferences, vacation, open seats and messages. The scheduler's pass
//! ([`pass`]) derives early turns, missed-turn tallies and reminders from stored state
//! on every tick, so nothing depends on an in-memory timer.
//!
//! Everything here is a `RuntimeService` method or a function of [`Pbem`] (the ports and
//! settings these habits use), kept apart from the rest of the runtime so pages and the
//! API call the same code.

mod messages;
pub(super) mod pass;
mod seats;

use std::collections::BTreeSet;
use std::sync::Arc;

pub use messages::{MessageTo, MessageView};
pub use seats::SeatApplicationView;

use super::shared::{Notices, Statuses};
use super::{RuntimeConfig, RuntimeError, RuntimePorts, RuntimeService};
use crate::domain::application::ApplicationStatus;
use crate::domain::game::{Game, GameStatus};
use crate::domain::limit::RateLimit;
use crate::domain::pbem::{GamePreferences, RaceRecord, RaceState, ReadyMark, Vacation};
use crate::domain::play::PlayedTurn;
use crate::domain::{GameId, Timestamp, UserId};
use crate::ports::{
    ApplicationStore, OrdersCount, OrdersStore, PbemStore, StoreError, TurnArchiveStore, UserStore,
    VacationOutcome,
};
use crate::service::Actor;

/// What the play-by-email habits use: the stores they read and write, the notifications
/// they raise, and the message rate limit.
#[derive(Clone)]
pub(crate) struct Pbem {
    /// Games and runtime records (the coming turn, the deadline), and the time.
    pub(super) statuses: Statuses,
    /// The approved applications: the races of a game before it has race records.
    pub(super) applications: Arc<dyn ApplicationStore>,
    /// The turn archive: the last played turn and who the engine eliminated.
    pub(super) archive: Arc<dyn TurnArchiveStore>,
    /// The orders submissions: whose orders are in.
    pub(super) orders: Arc<dyn OrdersStore>,
    /// Race records, seats, preferences, messages.
    pub(super) store: Arc<dyn PbemStore>,
    /// Users: a blocked account may not act.
    pub(super) users: Arc<dyn UserStore>,
    /// Reminders, idle races, seat changes, messages.
    pub(super) notices: Notices,
    /// `message_rate`: messages per player and game per window.
    pub(super) message_rate: RateLimit,
}

impl Pbem {
    pub(crate) fn new(ports: &RuntimePorts, config: &RuntimeConfig) -> Self {
        Self {
            statuses: Statuses::new(ports),
            applications: Arc::clone(&ports.applications),
            archive: Arc::clone(&ports.archive),
            orders: Arc::clone(&ports.orders),
            store: Arc::clone(&ports.pbem),
            users: Arc::clone(&ports.users),
            notices: Notices::new(ports),
            message_rate: config.message_rate,
        }
    }

    pub(super) fn now(&self) -> crate::domain::Timestamp {
        self.statuses.now()
    }

    pub(super) fn uuid(&self) -> uuid::Uuid {
        self.statuses.time.uuid()
    }

    /// Takes back a race's "ready without orders" for `turn` (an orders submission by
    /// `player` for it replaces it; a mark for a turn already played stays for its tally).
    /// A race without a record (a game before its first read of races) has
    /// none, and a race handed to another player since is no longer `player`'s to
    /// change; a store failure is logged: the race then stays ready as it marked itself.
    pub(super) async fn unmark_ready(
        &self,
        game_id: GameId,
        race: &str,
        player: UserId,
        turn: u32,
    ) {
        let clear = ReadyMark::Clear(turn);
        match self.store.mark_ready(game_id, race, player, clear).await {
            Ok(()) | Err(StoreError::NotFound { .. } | StoreError::Conflict { .. }) => {}
            Err(error) => tracing::warn!(%error, %game_id, race, "ready mark not cleared"),
        }
    }
}

/// One race of a game as every player sees it (never its orders).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaceView {
    /// The race.
    pub race: String,
    /// Whether it is ready for the coming turn (orders accepted, or marked ready).
    pub ready: bool,
    /// Active, idle, on vacation, an open seat, or eliminated.
    pub state: RaceState,
}

/// Whether a game has races the platform keeps records of: once it started.
fn started(status: GameStatus) -> bool {
    matches!(
        status,
        GameStatus::Running | GameStatus::Paused | GameStatus::Finished | GameStatus::Cancelled
    )
}

/// Every race record of a started game, created from the approved applications the
/// first time (a replacement player's record is kept as it is). Empty before the start.
pub(super) async fn race_records(p: &Pbem, game: &Game) -> Result<Vec<RaceRecord>, StoreError> {
    if !started(game.status) {
        return Ok(Vec::new());
    }
    let pbem = &p.store;
    let existing = pbem.list_races(game.id).await?;
    let applications = p.applications.list_applications(game.id).await?;
    let seats: Vec<(String, UserId)> = applications
        .into_iter()
        .filter(|a| a.status == ApplicationStatus::Approved)
        .map(|a| (a.race_name.as_str().to_owned(), a.user_id))
        .collect();
    if seats
        .iter()
        .all(|(race, _)| existing.iter().any(|r| &r.race == race))
    {
        return Ok(existing);
    }
    pbem.ensure_races(game.id, &seats).await
}

/// The game an owed notice (a message's, a seat handover's) is about, to raise it now;
/// `None` when it is to wait (the game could not be read) or is settled (the game is
/// gone: nobody to tell, so `settle` marks the notice raised). `what` names the notice
/// in the logs.
pub(super) async fn owed_notice_game<F>(
    p: &Pbem,
    game_id: GameId,
    what: &str,
    settle: impl FnOnce() -> F,
) -> Option<Game>
where
    F: std::future::Future<Output = Result<(), StoreError>>,
{
    match p.statuses.games.get_game(game_id).await {
        Ok(game) => Some(game),
        Err(StoreError::NotFound { .. }) => {
            if let Err(error) = settle().await {
                tracing::warn!(%error, %game_id, what, "notice of a game gone still owed");
            }
            None
        }
        Err(error) => {
            tracing::warn!(%error, %game_id, what, "owed notice waits");
            None
        }
    }
}

/// The turn being played next: the record's current turn + 1 (1 before any record).
pub(super) async fn next_turn(p: &Pbem, game_id: GameId) -> Result<u32, StoreError> {
    match p.statuses.records.get_record(game_id).await {
        Ok(record) => Ok(record.current_turn.saturating_add(1)),
        Err(StoreError::NotFound { .. }) => Ok(1),
        Err(error) => Err(error),
    }
}

/// The races of `records` with orders for `turn` or who marked themselves ready for it.
/// Without `as_of`, whether they are ready now (their latest submission accepted); with
/// it, whether they had played a turn played then (any accepted submission, and marks,
/// made by then): see [`OrdersCount`].
pub(super) async fn ready_races(
    p: &Pbem,
    game_id: GameId,
    records: &[RaceRecord],
    turn: u32,
    as_of: Option<Timestamp>,
) -> Result<BTreeSet<String>, StoreError> {
    let count = as_of.map_or(OrdersCount::Latest, OrdersCount::PlayedAt);
    let with_orders = p.orders.races_with_orders_in(game_id, turn, count).await?;
    Ok(records
        .iter()
        .filter(|r| r.ready(turn, with_orders.contains(&r.race), as_of))
        .map(|r| r.race.clone())
        .collect())
}

/// The races the engine eliminated, from the latest archived standings.
pub(super) fn eliminated(latest: Option<&PlayedTurn>) -> BTreeSet<String> {
    latest
        .map(|t| {
            t.standings
                .iter()
                .filter(|s| !s.alive)
                .map(|s| s.race.clone())
                .collect()
        })
        .unwrap_or_default()
}

impl RuntimeService {
    /// The races of a game with their readiness for the coming turn and their state:
    /// what the game view and "my games" show every player. Empty before the start.
    pub async fn races(&self, game: &Game) -> Result<Vec<RaceView>, RuntimeError> {
        let p = &self.pbem;
        let records = race_records(p, game).await?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let turn = next_turn(p, game.id).await?;
        let in_play = matches!(game.status, GameStatus::Running | GameStatus::Paused);
        let ready = if in_play {
            ready_races(p, game.id, &records, turn, None).await?
        } else {
            BTreeSet::new()
        };
        // Out of the game by the latest standings: neither ready nor owing orders.
        let dead = eliminated(p.archive.latest_turn(game.id).await?.as_ref());
        Ok(records
            .into_iter()
            .map(|r| match dead.contains(&r.race) {
                true => RaceView {
                    ready: false,
                    state: RaceState::Eliminated,
                    race: r.race,
                },
                false => RaceView {
                    ready: ready.contains(&r.race),
                    state: r.state(turn),
                    race: r.race,
                },
            })
            .collect())
    }

    /// The caller's race record in a started game. Anyone without one (never a player,
    /// or a player whose seat went to a replacement) gets `NotFound`.
    pub(super) async fn own_record(
        &self,
        actor: Actor,
        game: &Game,
    ) -> Result<RaceRecord, RuntimeError> {
        race_records(&self.pbem, game)
            .await?
            .into_iter()
            .find(|r| r.user_id == actor.user_id)
            .ok_or_else(|| RuntimeError::not_found("game", game.id))
    }

    /// The caller's race in a game: from the race records once the game started (so a
    /// replacement player has it and the replaced one no longer does), else from the
    /// caller's approved application.
    pub(super) async fn own_race(
        &self,
        actor: Actor,
        game_id: GameId,
    ) -> Result<String, RuntimeError> {
        let game = self.game(game_id).await?;
        if started(game.status) {
            return Ok(self.own_record(actor, &game).await?.race);
        }
        let application = self.application(actor, game_id).await?;
        Ok(application.race_name.as_str().to_owned())
    }

    /// Refuses a race the latest standings have out of the game
    /// ([`RuntimeError::RaceEliminated`]): what it would send (orders, a ready mark, a
    /// vacation) has no turn to count for.
    pub(super) async fn still_in_game(
        &self,
        game_id: GameId,
        race: &str,
    ) -> Result<(), RuntimeError> {
        let latest = self.pbem.archive.latest_turn(game_id).await?;
        if eliminated(latest.as_ref()).contains(race) {
            return Err(RuntimeError::RaceEliminated {
                race: race.to_owned(),
            });
        }
        Ok(())
    }

    /// The caller's running or paused game and their race record in it (a race still in
    /// the game).
    async fn in_play(
        &self,
        actor: Actor,
        game_id: GameId,
        action: &'static str,
    ) -> Result<(Game, RaceRecord), RuntimeError> {
        let game = self.game(game_id).await?;
        let record = self.own_record(actor, &game).await?;
        if !matches!(game.status, GameStatus::Running | GameStatus::Paused) {
            return Err(RuntimeError::WrongStatus {
                action,
                status: game.status,
            });
        }
        self.still_in_game(game_id, &record.race).await?;
        Ok((game, record))
    }

    /// Marks the caller's race ready for `turn` (the coming turn) without orders, so an
    /// early turn need not wait for it; a later orders submission replaces this.
    pub async fn mark_ready(
        &self,
        actor: Actor,
        game_id: GameId,
        turn: u32,
    ) -> Result<(), RuntimeError> {
        let (game, record) = self.in_play(actor, game_id, "mark ready in").await?;
        let next = next_turn(&self.pbem, game_id).await?;
        if turn != next {
            return Err(RuntimeError::validation(
                "turn",
                format!("the coming turn is {next}, not {turn}"),
            ));
        }
        // The race has one ready mark: the turn played last is tallied first, so its mark
        // counts before this one replaces it.
        pass::tally_last_played(&self.pbem, &game, next.saturating_sub(1)).await?;
        let at = self.pbem.now();
        let pbem = &self.pbem.store;
        pbem.mark_ready(
            game_id,
            &record.race,
            actor.user_id,
            ReadyMark::Set(turn, at),
        )
        .await?;
        // The turn may have been played since the check above (or archived, not yet
        // recorded, before it): its tally ignores a mark made after it was played, and
        // the player is told rather than answered as if the mark had counted.
        let latest = self.pbem.archive.latest_turn(game_id).await?;
        if let Some(played) =
            latest.filter(|t| t.turn > turn || (t.turn == turn && t.played_at < at))
        {
            return Err(RuntimeError::validation(
                "turn",
                format!(
                    "turn {turn} was played before the mark arrived; the coming turn is {}",
                    played.turn.saturating_add(1)
                ),
            ));
        }
        Ok(())
    }

    /// The caller's preferences for a game they play in.
    pub async fn preferences(
        &self,
        actor: Actor,
        game_id: GameId,
    ) -> Result<GamePreferences, RuntimeError> {
        let game = self.game(game_id).await?;
        self.own_record(actor, &game).await?;
        Ok(self.pbem.store.preferences(game_id, actor.user_id).await?)
    }

    /// Sets the caller's preferences for a game they play in.
    pub async fn set_preferences(
        &self,
        actor: Actor,
        game_id: GameId,
        preferences: GamePreferences,
    ) -> Result<GamePreferences, RuntimeError> {
        let game = self.game(game_id).await?;
        self.own_record(actor, &game).await?;
        let pbem = &self.pbem.store;
        pbem.set_preferences(game_id, actor.user_id, preferences)
            .await?;
        Ok(preferences)
    }

    /// The caller's vacation in a game they play in: what is booked and what is left of
    /// the game's `vacation_turns` budget.
    pub async fn vacation(&self, actor: Actor, game_id: GameId) -> Result<Vacation, RuntimeError> {
        let game = self.game(game_id).await?;
        let record = self.own_record(actor, &game).await?;
        Ok(record.vacation(game.settings.pbem.vacation_turns))
    }

    /// Declares the caller absent for `turns` turns from the coming one, out of the
    /// game's `vacation_turns` budget: no reminders, the missed-turn count pauses, early
    /// turns do not wait. Returns the vacation after the booking.
    pub async fn take_vacation(
        &self,
        actor: Actor,
        game_id: GameId,
        turns: u32,
    ) -> Result<Vacation, RuntimeError> {
        if turns == 0 {
            return Err(RuntimeError::validation("turns", "at least one turn"));
        }
        let (game, record) = self.in_play(actor, game_id, "take vacation in").await?;
        let from = next_turn(&self.pbem, game_id).await?;
        let budget = game.settings.pbem.vacation_turns;
        let pbem = &self.pbem.store;
        match pbem
            .book_vacation(game_id, &record.race, actor.user_id, from, turns, budget)
            .await?
        {
            VacationOutcome::Booked(record) => Ok(record.vacation(budget)),
            VacationOutcome::OverBudget { left } => Err(RuntimeError::validation(
                "turns",
                format!("{turns} vacation turns asked, {left} of {budget} left"),
            )),
        }
    }

    /// Which of `candidates` have open seats, with the open races: for the public list
    /// (`open_seats=true`) and the public game view.
    pub async fn open_seats(
        &self,
        candidates: &[GameId],
    ) -> Result<Vec<(GameId, Vec<String>)>, RuntimeError> {
        Ok(self.pbem.store.open_seats(candidates).await?)
    }
}
