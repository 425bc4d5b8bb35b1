//! The scheduler's play-by-email pass, run on every tick before due turns are claimed:
//! per running game it tallies the last played turn's missed orders (once, by a marker
//! written with the tally), raises the deadline reminder owed now (once per player,
//! turn and offset, by the notification's idempotency key), and finds the games whose
//! coming turn may run early, every live race being ready. The scheduler runs those
//! ([`run_early`]) in its pool of turns, as it runs due ones: under the same turn lease as
//! a scheduled tick, with the expected turn and the readiness checked again after the
//! claim, so each runs once.
//!
//! It also raises the notices still owed: a race's idle notice (owed in the tally's own
//! write), a message's (owed from its storing) and a seat handover's (owed from the
//! approval), whose first raise failed or never came.
//!
//! Everything is derived from stored state each time, so a restart or a second replica
//! picks up exactly where the last pass stopped.

use std::collections::BTreeSet;

use chrono::TimeDelta;
use serde_json::json;

use super::super::turns::{TurnRunner, holding_turn, play_turn};
use super::{Pbem, eliminated, owed_notice_game, race_records, ready_races};
use crate::domain::Timestamp;
use crate::domain::game::{Game, GameStatus};
use crate::domain::lease::ClaimRequest;
use crate::domain::notification::NotificationKind;
use crate::domain::pbem::{RaceRecord, early_turn_ready, format_time_left};
use crate::domain::runtime::{RuntimeRecord, RuntimeStatus};
use crate::ports::{StoreError, TurnUpdate};

/// What one pass did and found.
#[derive(Debug, Clone, Default)]
pub(crate) struct PassReport {
    /// The games whose coming turn may run early, with that turn, for [`run_early`].
    pub early: Vec<(Game, u32)>,
    /// Turns tallied.
    pub tallied: usize,
}

/// Runs the pass over every running game; a failing game is logged and skipped.
pub(in crate::service::runtime) async fn run(p: &Pbem) -> PassReport {
    let mut report = PassReport::default();
    let records = match p.statuses.all_records(Some(RuntimeStatus::Running)).await {
        Ok(records) => records,
        Err(error) => {
            tracing::warn!(%error, "running games not listed; no PBEM pass");
            return report;
        }
    };
    for record in records {
        if let Err(error) = one_game(p, &record, &mut report).await {
            tracing::warn!(%error, game_id = %record.game_id, "PBEM pass failed for a game");
        }
    }
    owed_idle_notices(p).await;
    super::messages::owed_message_notices(p).await;
    super::seats::owed_seat_notices(p).await;
    report
}

async fn one_game(
    p: &Pbem,
    record: &RuntimeRecord,
    report: &mut PassReport,
) -> Result<(), StoreError> {
    let game = p.statuses.games.get_game(record.game_id).await?;
    if game.status != GameStatus::Running {
        return Ok(());
    }
    let mut races = race_records(p, &game).await?;
    // Races out of the game owe no orders: never counted as missing a turn, reminded or
    // waited for.
    let dead = eliminated(p.archive.latest_turn(game.id).await?.as_ref());
    if tally_last_played(p, &game, record.current_turn).await? {
        report.tallied += 1;
        races = p.store.list_races(game.id).await?;
    }
    let Some(deadline) = record.deadline(&game.settings.schedule) else {
        return Ok(());
    };
    let now = p.now();
    let turn = record.current_turn.saturating_add(1);
    races.retain(|r| !dead.contains(&r.race));
    let ready = ready_races(p, game.id, &races, turn, None).await?;
    if game.settings.pbem.reminder_due(deadline, now).is_some() && still_at(p, record).await? {
        remind(p, &game, turn, deadline, &races, &ready).await;
    }
    let early = game.settings.pbem.early_turn
        && deadline > now
        && early_turn_ready(&races, turn, |r| ready.contains(&r.race));
    if early {
        report.early.push((game, turn));
    }
    Ok(())
}

/// Whether the game's record is still at the turn and deadline of `record`, read when
/// the pass began: a pass over many games takes a while, and another replica, an
/// admin's forced turn or this replica's turns in flight may have played the turn
/// since. Read only when a reminder is due, so that none names a turn already run.
async fn still_at(p: &Pbem, record: &RuntimeRecord) -> Result<bool, StoreError> {
    let now = p.statuses.records.get_record(record.game_id).await?;
    Ok(now.current_turn == record.current_turn
        && now.next_turn_at == record.next_turn_at
        && now.skip_next_tick == record.skip_next_tick)
}

/// Tallies `turn`, the game's last played turn, if it is not yet; whether this call
/// counted it. It is tallied from what was in force when it was played (its archive
/// time): while the next turn is archived but not yet recorded that time is not at hand,
/// and the tally waits rather than count late submissions. Also run before a race's
/// ready mark moves on to the next turn, so the mark of the turn played is counted, and
/// before a forced turn, which may come before the next pass.
pub(in crate::service::runtime) async fn tally_last_played(
    p: &Pbem,
    game: &Game,
    turn: u32,
) -> Result<bool, StoreError> {
    let latest = p.archive.latest_turn(game.id).await?;
    let dead = eliminated(latest.as_ref());
    let Some(played_at) = latest.filter(|t| t.turn == turn).map(|t| t.played_at) else {
        return Ok(false);
    };
    let races = race_records(p, game).await?;
    tally(p, game, (turn, played_at), &races, &dead).await
}

/// Tallies `turn` (the last played, with the instant it was played) once. Returns
/// whether this call counted it. The races in `dead` count as present: eliminated, they
/// owe nothing. Orders count as they stood when the turn was played: a submission for it
/// recorded later (refused: the turn was over) changes nothing, and a ready mark for it
/// stays when the player sends orders for the next turn.
async fn tally(
    p: &Pbem,
    game: &Game,
    (turn, played_at): (u32, Timestamp),
    races: &[RaceRecord],
    dead: &BTreeSet<String>,
) -> Result<bool, StoreError> {
    if turn == 0 || races.is_empty() {
        return Ok(false);
    }
    let mut ready = ready_races(p, game.id, races, turn, Some(played_at)).await?;
    ready.extend(dead.iter().cloned());
    let ready: Vec<String> = ready.into_iter().collect();
    let idle_after = game.settings.pbem.idle_after;
    let pbem = &p.store;
    let Some(went_idle) = pbem.tally_turn(game.id, turn, &ready, idle_after).await? else {
        return Ok(false);
    };
    if !went_idle.is_empty() {
        for race in &went_idle {
            tracing::info!(game_id = %game.id, race, turn, "race went idle");
        }
        // Their notices are owed in the tally's own write: raised now, or by the next
        // pass should this fail.
        match pbem.list_races(game.id).await {
            Ok(races) => raise_idle_notices(p, game, &races).await,
            Err(error) => {
                tracing::warn!(%error, game_id = %game.id, "idle notices wait for the next pass");
            }
        }
    }
    Ok(true)
}

/// How many owed idle notices one pass raises at most.
const OWED_PER_PASS: u32 = 100;

/// Raises the idle notices an earlier tally owed and could not raise, in every game
/// whatever its status now (paused or finished since), up to [`OWED_PER_PASS`].
async fn owed_idle_notices(p: &Pbem) {
    let owed = match p.store.owed_idle_notices(OWED_PER_PASS).await {
        Ok(owed) => owed,
        Err(error) => {
            tracing::warn!(%error, "owed idle notices not read");
            return;
        }
    };
    for record in owed {
        let Some(turn) = record.idle_notice else {
            continue;
        };
        let settle = || {
            p.store
                .idle_notice_raised(record.game_id, &record.race, turn)
        };
        let Some(game) = owed_notice_game(p, record.game_id, "race_idle", settle).await else {
            continue;
        };
        raise_idle_notices(p, &game, std::slice::from_ref(&record)).await;
    }
}

/// Raises the `race_idle` notices still owed ([`RaceRecord::idle_notice`]) to each
/// race's player and the host, and marks each one raised. A failure is logged and the
/// notice stays owed: the next pass raises it again (its key makes a repeat a no-op).
async fn raise_idle_notices(p: &Pbem, game: &Game, races: &[RaceRecord]) {
    for record in races {
        let Some(turn) = record.idle_notice else {
            continue;
        };
        let race = record.race.as_str();
        let payload = json!({
            "game_id": game.id,
            "game_name": game.settings.name.as_str(),
            "race": race,
            "turn": turn,
            "missed_turns": game.settings.pbem.idle_after,
        });
        let key = format!("race_idle:{}:{race}:{turn}", game.id);
        let recipients = vec![record.user_id, game.host];
        let kind = NotificationKind::RaceIdle;
        let raised = p
            .notices
            .try_notify(kind, key, recipients, game.id, payload)
            .await;
        let marked = match raised {
            Ok(()) => p.store.idle_notice_raised(game.id, race, turn).await,
            Err(error) => Err(error),
        };
        if let Err(error) = marked {
            tracing::warn!(%error, game_id = %game.id, race, turn, "idle notice owed; the next pass raises it");
        }
    }
}

/// Raises the reminder owed now, if any, to every live player without orders for
/// `turn` (not on vacation, reminders not turned off). The key names player, turn and
/// offset, so every pass and every replica raise it once.
async fn remind(
    p: &Pbem,
    game: &Game,
    turn: u32,
    deadline: Timestamp,
    races: &[RaceRecord],
    ready: &std::collections::BTreeSet<String>,
) {
    let Some(offset) = game.settings.pbem.reminder_due(deadline, p.now()) else {
        return;
    };
    for race in races {
        // On vacation whatever else it is: an idle race whose player booked vacation on
        // coming back is not owed a reminder either.
        if ready.contains(&race.race) || race.on_vacation(turn) {
            continue;
        }
        match p.store.preferences(game.id, race.user_id).await {
            Ok(p) if !p.reminders => continue,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, game_id = %game.id, "preferences not read; reminder waits");
                continue;
            }
        }
        let key = reminder_key(game, race, turn, offset);
        let payload = json!({
            "game_id": game.id,
            "game_name": game.settings.name.as_str(),
            "race": race.race,
            "turn": turn,
            "deadline": deadline.format("%Y-%m-%d %H:%M UTC").to_string(),
            "before": format_time_left(deadline - p.now()),
        });
        let kind = NotificationKind::TurnReminder;
        p.notices
            .notify(kind, key, vec![race.user_id], game.id, payload)
            .await;
    }
}

/// The reminder's idempotency key: one per player, turn and offset.
fn reminder_key(game: &Game, race: &RaceRecord, turn: u32, offset: TimeDelta) -> String {
    format!(
        "turn_reminder:{}:{}:{turn}:{}",
        game.id,
        race.user_id,
        offset.num_seconds()
    )
}

/// Whether every race still in the game is ready for `turn`, read from the store now.
async fn every_live_race_ready(p: &Pbem, game: &Game, turn: u32) -> Result<bool, StoreError> {
    let dead = eliminated(p.archive.latest_turn(game.id).await?.as_ref());
    let mut races = race_records(p, game).await?;
    races.retain(|r| !dead.contains(&r.race));
    let ready = ready_races(p, game.id, &races, turn, None).await?;
    Ok(early_turn_ready(&races, turn, |r| ready.contains(&r.race)))
}

/// Runs turn `turn` of `game` now, under the turn lease; `false` when another claim holds
/// the game or the turn already ran (this claim is then released unchanged).
pub(in crate::service::runtime) async fn run_early(
    p: &Pbem,
    turns: &TurnRunner,
    game: &Game,
    turn: u32,
) -> Result<bool, StoreError> {
    let claim = ClaimRequest {
        token: p.statuses.time.lease_token(),
        now: p.now(),
        lease: turns.settings.lease,
        limit: 1,
    };
    let records = &p.statuses.records;
    let claimed = match records.claim_turn(game.id, &claim).await {
        Ok(claimed) => claimed,
        Err(StoreError::Conflict { .. }) => return Ok(false),
        Err(error) => return Err(error),
    };
    let next_turn_at = claimed.next_turn_at.filter(|at| *at > claim.now);
    // Read again under the claim, from the store: an admin may have paused the game
    // since this pass read it (a pause changes the status, then unschedules), and a race
    // may not be ready any more (a player took their seat back, a seat changed hands and
    // its mark went, new orders were refused).
    let still = async {
        let running = p.statuses.games.get_game_fresh(game.id).await?.status == GameStatus::Running;
        Ok::<_, StoreError>(running && every_live_race_ready(p, game, turn).await?)
    };
    let checked = still.await;
    let go = matches!(checked, Ok(true));
    if claimed.current_turn.saturating_add(1) != turn || next_turn_at.is_none() || !go {
        // Another replica (or the scheduled tick) ran it meanwhile, it is due anyway, the
        // game stopped running, a race is not ready after all, or the store could not
        // say: the claim goes back at once (a due turn must not wait out its lease).
        let unchanged = TurnUpdate {
            current_turn: claimed.current_turn,
            next_turn_at: claimed.next_turn_at,
            skip_next_tick: claimed.skip_next_tick,
        };
        records
            .complete_turn(game.id, claim.token, &unchanged, p.now())
            .await?;
        checked?;
        return Ok(false);
    }
    let pbem = &game.settings.pbem;
    let deadline = pbem.deadline_after_early(&game.settings.schedule, claim.now);
    tracing::info!(game_id = %game.id, turn, "every live race is ready: running the turn early");
    let play = play_turn(turns, game, &claimed, claim.token, turn, deadline, false);
    match holding_turn(turns, game.id, claim.token, play).await {
        Ok(played) => Ok(played.is_some()),
        Err(error) => {
            tracing::warn!(%error, game_id = %game.id, turn, "early turn failed");
            Ok(false)
        }
    }
}
