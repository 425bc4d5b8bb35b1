//! The effects of a played turn (the game's start or finish, the stop job, the turn's
//! notification), completed from the turn archive, which is their outbox.
//!
//! A turn is archived (unannounced) before it is recorded, and its effects follow as
//! separate writes: a crash or a failed write between them would leave a finished game
//! `running` with no schedule, or a turn mail unsent. So every effect is idempotent (the
//! game's change is a compare-and-set, the stop job and the notification carry
//! idempotency keys), everything an effect needs is re-read from the stores (reports from
//! the archive, seats from the approved applications, the deadline from the runtime
//! record), and the turn is marked announced only once all of them are done. The step
//! that played the turn announces it at once; the turn scheduler's follow-up pass, at the
//! start of every tick, announces whatever a failure left owed.

use std::collections::BTreeMap;

use super::archive::{self, Seat};
use super::turns::TurnRunner;
use crate::domain::GameId;
use crate::domain::game::reasons::Ending;
use crate::domain::game::{Game, GameStatus, GameTrigger};
use crate::domain::notification::NotificationKind;
use crate::domain::play::{PlayedTurn, TurnReport};
use crate::domain::runtime::JobKind;
use crate::ports::StoreError;

/// Whether a turn's effects are all done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effects {
    /// Done (or nothing is owed): the turn can be marked announced.
    Done,
    /// Not yet: the step that plays the turn has not recorded it (it is replayed once its
    /// lease lapses), or the game has not reached the status the effect needs.
    NotYet,
}

/// Pages of owed turns one follow-up pass reads at most: a pass whose turns all fail (the
/// notification store down) or must wait stays bounded, and the next pass goes on from
/// where it stopped.
const OWED_PAGES_PER_PASS: usize = 4;

/// The follow-up pass: announces owed turns, oldest first, in pages of `turn_batch`,
/// from `cursor` (the last turn the previous pass read; `None`: from the oldest), at most
/// [`OWED_PAGES_PER_PASS`] pages and up to the turns archived when the pass began (a turn
/// archived since is announced by the step playing it). Leaves in `cursor` where the next
/// pass goes on, `None` once the walk reached the end. Returns how many were announced; a
/// turn whose effects fail or must wait stays owed for a later pass, and the walk goes on
/// past it, so that turns that wait long (a paused game's turn archived but not recorded)
/// never hold up the others.
pub(super) async fn announce_owed(
    turns: &TurnRunner,
    cursor: &mut Option<PlayedTurn>,
) -> Result<usize, StoreError> {
    let limit = turns.settings.batch.max(1);
    let began = turns.statuses.now();
    let mut announced = 0;
    for _ in 0..OWED_PAGES_PER_PASS {
        let owed = turns
            .archive
            .unannounced_turns(cursor.take(), limit)
            .await?;
        let full = owed.len() >= usize::try_from(limit).unwrap_or(usize::MAX);
        for turn in &owed {
            if turn.played_at > began {
                return Ok(announced);
            }
            match announce(turns, turn).await {
                Ok(true) => announced += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, game_id = %turn.game_id, turn = turn.turn, "turn effects not completed; the next pass retries");
                }
            }
        }
        match owed.into_iter().last() {
            Some(last) if full => *cursor = Some(last),
            _ => return Ok(announced),
        }
    }
    Ok(announced)
}

/// Announces a game's latest turn right after it was played. A failure is only logged:
/// the turn stays owed and the follow-up pass completes it.
pub(super) async fn announce_latest(turns: &TurnRunner, game_id: GameId) {
    let result = match turns.archive.latest_turn(game_id).await {
        Ok(Some(turn)) => announce(turns, &turn).await.map(|_| ()),
        Ok(None) => Ok(()),
        Err(error) => Err(error),
    };
    if let Err(error) = result {
        tracing::warn!(%error, %game_id, "turn effects not completed; the turn scheduler's follow-up completes them");
    }
}

/// Completes one archived turn's effects and marks it announced. `Ok(false)` when they
/// cannot be completed yet (see [`Effects::NotYet`]). A turn the game has since moved past
/// owes nothing: only a game's latest turn is announced, as when it is played.
async fn announce(turns: &TurnRunner, turn: &PlayedTurn) -> Result<bool, StoreError> {
    let archive = &turns.archive;
    let latest = archive.latest_turn(turn.game_id).await?;
    let superseded = latest.is_some_and(|latest| latest.turn > turn.turn);
    if superseded {
        // Its players get the later turn's mail instead (their reports of this turn stay
        // readable in the archive); said, so a missing mail can be traced.
        tracing::warn!(
            game_id = %turn.game_id,
            turn = turn.turn,
            "turn played over before its effects were completed: its mail is skipped for the later turn's"
        );
    } else {
        let effects = match turns.statuses.games.get_game(turn.game_id).await {
            Ok(game) => effects(turns, &game, turn).await?,
            Err(StoreError::NotFound { .. }) => {
                tracing::warn!(game_id = %turn.game_id, turn = turn.turn, "archived turn of an unknown game: nothing to announce");
                Effects::Done
            }
            Err(error) => return Err(error),
        };
        if effects == Effects::NotYet {
            return Ok(false);
        }
    }
    archive
        .mark_announced(turn.game_id, turn.turn, turns.statuses.now())
        .await?;
    Ok(true)
}

/// The effects a turn owes: turn 0 starts the game, a finishing turn ends it, any other
/// turn tells the players.
async fn effects(
    turns: &TurnRunner,
    game: &Game,
    turn: &PlayedTurn,
) -> Result<Effects, StoreError> {
    if turn.turn == 0 {
        return started(turns, game, turn).await;
    }
    let record = turns.statuses.records.get_record(game.id).await?;
    if record.current_turn < turn.turn {
        // Archived but not recorded: the turn's claim lapses and the replayed turn
        // records it (and announces it); a game that ended meanwhile never will.
        if game.status.is_terminal() {
            return Ok(Effects::Done);
        }
        return Ok(Effects::NotYet);
    }
    let seats = archive::seats(turns, game.id).await?;
    let reports = reports(turns, turn, &seats).await?;
    if turn.finished {
        return finished(turns, game, turn, &seats, &reports).await;
    }
    if game.status == GameStatus::Cancelled {
        // Stopped while the turn ran: the players were told the game is over, and read
        // the turn's reports on its page; no "orders are due" mail after that.
        return Ok(Effects::Done);
    }
    // A paused game has no deadline until it resumes.
    let deadline = (game.status == GameStatus::Running)
        .then(|| record.deadline(&game.settings.schedule))
        .flatten();
    let payload = archive::turn_payload(game, turn.turn, deadline, &seats, &reports);
    let key = format!("game:{}:turn:{}", game.id, turn.turn);
    let players = seats.iter().map(|s| s.user_id).collect();
    let kind = NotificationKind::TurnCompleted;
    turns
        .notices
        .try_notify(kind, key, players, game.id, payload)
        .await?;
    Ok(Effects::Done)
}

/// Turn 0: `game_started`, once the start job made the game `running`.
async fn started(
    turns: &TurnRunner,
    game: &Game,
    turn: &PlayedTurn,
) -> Result<Effects, StoreError> {
    match game.status {
        // The start job is still at work, or is replayed after a crash and gets here.
        GameStatus::Starting => return Ok(Effects::NotYet),
        GameStatus::Running | GameStatus::Paused | GameStatus::Finished => {}
        // The game never ran: nothing to tell.
        _ => return Ok(Effects::Done),
    }
    let record = turns.statuses.records.get_record(game.id).await?;
    let seats = archive::seats(turns, game.id).await?;
    let reports = reports(turns, turn, &seats).await?;
    let mut audience: Vec<_> = seats.iter().map(|s| s.user_id).collect();
    audience.push(game.host);
    let payload = archive::started_payload(
        game,
        record.deadline(&game.settings.schedule),
        &seats,
        &reports,
    );
    let key = format!("game:{}:started", game.id);
    let kind = NotificationKind::GameStarted;
    turns
        .notices
        .try_notify(kind, key, audience, game.id, payload)
        .await?;
    Ok(Effects::Done)
}

/// How often a finish is tried against a game whose status keeps changing under it
/// before it is left to the follow-up pass.
const FINISH_TRIES: u32 = 3;

/// The engine declared the game over: `finished` (trigger engine), the container goes (a
/// durable stop job), and everyone learns the standings.
async fn finished(
    turns: &TurnRunner,
    game: &Game,
    turn: &PlayedTurn,
    seats: &[Seat],
    reports: &BTreeMap<String, TurnReport>,
) -> Result<Effects, StoreError> {
    let (to, trigger) = (GameStatus::Finished, GameTrigger::Engine);
    let reason = Ending::new(turn.winner.as_deref(), turn.turn).stated();
    let mut game = game.clone();
    let mut tries = 0;
    while game.status != to && game.status.allows(to, trigger) {
        if tries == FINISH_TRIES {
            // Changed under every try: the follow-up pass tries again.
            return Ok(Effects::NotYet);
        }
        tries += 1;
        let statuses = &turns.statuses;
        let change = statuses.change_game(
            game.id,
            game.status,
            to,
            trigger,
            None,
            Some(reason.clone()),
        );
        game = match change.await? {
            Some(finished) => finished,
            // Lost: the game changed meanwhile (finished by a concurrent announcement,
            // paused by an admin: a paused game finishes too). Again from what it is.
            None => statuses.games.get_game(game.id).await?,
        };
    }
    if game.status != to {
        tracing::warn!(game_id = %game.id, status = %game.status, "the engine ended the game, which cannot finish from its status; left as it is");
        return Ok(Effects::Done);
    }
    let key = format!("stop:{}:{}", game.id, GameStatus::Finished);
    turns.queue.enqueue(game.id, JobKind::Stop, key).await?;
    let mut audience: Vec<_> = seats.iter().map(|s| s.user_id).collect();
    audience.push(game.host);
    let payload = archive::finished_payload(&game, turn, seats, reports);
    let key = format!("game:{}:finished", game.id);
    let kind = NotificationKind::GameFinished;
    turns
        .notices
        .try_notify(kind, key, audience, game.id, payload)
        .await?;
    Ok(Effects::Done)
}

/// A turn's archived reports by race, for the seats that have one.
async fn reports(
    turns: &TurnRunner,
    turn: &PlayedTurn,
    seats: &[Seat],
) -> Result<BTreeMap<String, TurnReport>, StoreError> {
    let mut reports = BTreeMap::new();
    for seat in seats {
        let archive = &turns.archive;
        match archive
            .get_report(turn.game_id, turn.turn, &seat.race)
            .await
        {
            Ok(report) => {
                reports.insert(seat.race.clone(), report);
            }
            Err(StoreError::NotFound { .. }) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(reports)
}
