//! The archive step of a turn: after the engine answers a turn (or init, for turn 0), every
//! race's report is fetched and stored with the turn's standings, before the turn is
//! recorded on the runtime record.
//!
//! That order is what makes the step crash-safe: a crash (or a store failure) between the
//! engine's answer and the archive leaves the record on the previous turn with its lease
//! lapsing, so the turn is claimed again; the engine, already past the expected turn,
//! answers its state and runs nothing, and the archive is written then. A turn is thus
//! never recorded without its reports. A report the engine cannot give (after retries
//! with backoff) fails the turn like any engine fault: a health event, never a silent gap.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::RuntimeError;
use super::turns::TurnRunner;
use crate::domain::application::ApplicationStatus;
use crate::domain::game::Game;
use crate::domain::play::{PlayedTurn, Standing, TurnReport, standings_table};
use crate::domain::{GameId, Timestamp, UserId};
use crate::ports::{EngineError, EngineState, EngineTarget, StoreError};
use crate::service::templates::PER_RECIPIENT_KEY;

/// One player's seat: the user and the race they play.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Seat {
    /// The player.
    pub user_id: UserId,
    /// Their race.
    pub race: String,
}

/// The players of a game with their races, in application order: the approved
/// applications, with each race's current player from the race records.
pub(super) async fn seats(turns: &TurnRunner, game_id: GameId) -> Result<Vec<Seat>, StoreError> {
    let applications = turns.applications.list_applications(game_id).await?;
    // A race taken over by a replacement player (see `pbem`) goes to its new player.
    let records = turns.races.list_races(game_id).await?;
    Ok(applications
        .into_iter()
        .filter(|a| a.status == ApplicationStatus::Approved)
        .map(|a| {
            let race = a.race_name.as_str().to_owned();
            let user_id = records
                .iter()
                .find(|r| r.race == race)
                .map_or(a.user_id, |r| r.user_id);
            Seat { user_id, race }
        })
        .collect())
}

/// The most turns an engine may be found ahead of the platform's record and still be
/// caught up with (each archived with every race's report): enough for an engine whose
/// platform database was restored from a backup a few days old, not for an engine that
/// answers a turn number from nowhere (four billion turns of report fetches).
pub const MAX_CATCH_UP_TURNS: u32 = 100;

/// The engine's state checked against the game before anything of it is kept: its turn
/// at least `first` and at most [`MAX_CATCH_UP_TURNS`] beyond, each standing a race of
/// the game, once, and the winner none or one of them. An engine is third-party code: a
/// standing of a race that does not exist (or a megabyte-long name, repeated) would be
/// archived, shown on every game page and rendered into every finish mail.
fn vet_state(seats: &[Seat], first: u32, state: &EngineState) -> Result<(), RuntimeError> {
    let malformed = |what: String| RuntimeError::Engine(EngineError::Malformed(what));
    if state.turn < first {
        return Err(RuntimeError::UnexpectedTurn {
            expected: first,
            got: state.turn,
        });
    }
    if state.turn - first > MAX_CATCH_UP_TURNS {
        return Err(malformed(format!(
            "turn {} is more than {MAX_CATCH_UP_TURNS} turns beyond turn {first}, the one asked for",
            state.turn
        )));
    }
    let is_seat = |name: &str| seats.iter().any(|seat| seat.race == name);
    let mut seen = std::collections::BTreeSet::new();
    for standing in &state.standings {
        if !is_seat(&standing.name) {
            return Err(malformed(format!(
                "the standings name a race not in the game: {}",
                quoted_prefix(&standing.name)
            )));
        }
        if !seen.insert(standing.name.as_str()) {
            return Err(malformed(format!(
                "the standings name the race {} twice",
                quoted_prefix(&standing.name)
            )));
        }
    }
    match &state.winner {
        Some(winner) if !is_seat(winner) => Err(malformed(format!(
            "the winner is not a race of the game: {}",
            quoted_prefix(winner)
        ))),
        _ => Ok(()),
    }
}

/// An engine's text in an error: quoted, at most 64 characters of it.
fn quoted_prefix(text: &str) -> String {
    const SHOWN: usize = 64;
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// Archives every turn from `first` up to the engine's `state.turn` (one turn, unless the
/// engine was found further ahead, by at most [`MAX_CATCH_UP_TURNS`]) and returns the
/// reports of `state.turn` by race. Turns before `state.turn` are archived with the
/// reports but without standings (the engine only tells the current ones). A state that
/// does not fit the game ([`vet_state`]) is an engine fault, and nothing is archived.
///
/// `played_at` is when the engine answered with `state`: the turn was played then, not
/// once its reports are fetched (a ready mark or orders arriving meanwhile came after
/// the turn, and the tally, which counts what came by the turn's time, leaves them out).
pub(super) async fn archive_turns(
    turns: &TurnRunner,
    game_id: GameId,
    target: &EngineTarget,
    seats: &[Seat],
    first: u32,
    (state, played_at): (&EngineState, Timestamp),
) -> Result<BTreeMap<String, TurnReport>, RuntimeError> {
    vet_state(seats, first, state)?;
    let mut last = BTreeMap::new();
    for turn in first.min(state.turn)..=state.turn {
        let current = turn == state.turn;
        let mut reports = BTreeMap::new();
        for seat in seats {
            let report = fetch_report(turns, target, game_id, &seat.race, turn).await?;
            reports.insert(seat.race.clone(), report);
        }
        let played = PlayedTurn {
            game_id,
            turn,
            played_at,
            finished: current && state.finished,
            winner: state.winner.clone().filter(|_| current),
            standings: if current {
                standings(state)
            } else {
                Vec::new()
            },
        };
        let all: Vec<TurnReport> = reports.values().cloned().collect();
        let stored = turns.archive.archive_turn(&played, &all).await?;
        tracing::info!(%game_id, turn, stored, races = all.len(), "turn archived");
        last = reports;
    }
    Ok(last)
}

/// The engine's standings as the domain keeps them (the contract's `name` is the race).
fn standings(state: &EngineState) -> Vec<Standing> {
    state
        .standings
        .iter()
        .map(|s| Standing {
            race: s.name.clone(),
            score: s.score,
            alive: s.alive,
        })
        .collect()
}

/// One race's report, retried with a doubling pause while the engine fails; bounded in
/// size by `max_report_bytes`.
async fn fetch_report(
    turns: &TurnRunner,
    target: &EngineTarget,
    game_id: GameId,
    race: &str,
    turn: u32,
) -> Result<TurnReport, RuntimeError> {
    let settings = &turns.settings;
    let mut pause = settings.report_retry_delay;
    let mut reason = String::new();
    for attempt in 0..settings.report_attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(pause).await;
            pause = pause.saturating_mul(2);
        }
        let call = turns.engines.client.report(target, race, turn);
        match turns.engines.engine_call(call).await {
            Ok(report) => return bounded(turns, game_id, race, turn, report),
            Err(error) => {
                tracing::warn!(%error, %game_id, race, turn, attempt, "report not fetched");
                reason = error.to_string();
            }
        }
    }
    Err(RuntimeError::ReportUnavailable {
        race: race.to_owned(),
        turn,
        reason,
    })
}

/// Keeps a report within `max_report_bytes` (its serialised size).
fn bounded(
    turns: &TurnRunner,
    game_id: GameId,
    race: &str,
    turn: u32,
    report: Value,
) -> Result<TurnReport, RuntimeError> {
    let max = turns.settings.max_report_bytes;
    let size = serde_json::to_vec(&report).map_or(usize::MAX, |bytes| bytes.len());
    if size > max {
        return Err(RuntimeError::ReportUnavailable {
            race: race.to_owned(),
            turn,
            reason: format!("the report is {size} bytes, at most {max} are archived"),
        });
    }
    Ok(TurnReport {
        game_id,
        turn,
        race: race.to_owned(),
        report,
    })
}

/// The fields each recipient of a turn mail sees of their own: their race and report
/// text, under [`PER_RECIPIENT_KEY`]. Everyone else (a host who does not play) gets the
/// top-level fields, `null`, which the mail templates word in the recipient's language
/// (as they do a report without text), so no template field is ever missing.
fn per_recipient(seats: &[Seat], reports: &BTreeMap<String, TurnReport>) -> Value {
    let mut per = serde_json::Map::new();
    for seat in seats {
        // A blank text is no text: the mail says so rather than showing nothing.
        let text = reports
            .get(&seat.race)
            .and_then(TurnReport::text)
            .filter(|t| !t.trim().is_empty());
        per.insert(
            seat.user_id.to_string(),
            json!({ "race": seat.race, "report_text": text }),
        );
    }
    Value::Object(per)
}

/// A deadline as mail shows it: `2026-12-04 18:00 UTC`; `null` when unscheduled (the
/// templates say so in the recipient's language).
fn deadline_text(next_turn_at: Option<Timestamp>) -> Value {
    json!(next_turn_at.map(|at| at.format("%Y-%m-%d %H:%M UTC").to_string()))
}

/// The fields every play mail shares: the game, and each recipient's race and report
/// text (with the defaults a recipient without a race sees).
fn play_payload(
    game: &Game,
    turn: u32,
    seats: &[Seat],
    reports: &BTreeMap<String, TurnReport>,
) -> serde_json::Map<String, Value> {
    let mut fields = serde_json::Map::new();
    fields.insert("game_id".into(), json!(game.id));
    fields.insert("game_name".into(), json!(game.settings.name.as_str()));
    fields.insert("turn".into(), json!(turn));
    fields.insert("race".into(), Value::Null);
    fields.insert("report_text".into(), Value::Null);
    fields.insert(PER_RECIPIENT_KEY.into(), per_recipient(seats, reports));
    fields
}

/// Adds the next deadline, as data and as text.
fn with_deadline(
    mut fields: serde_json::Map<String, Value>,
    next_turn_at: Option<Timestamp>,
) -> Value {
    fields.insert("next_turn_at".into(), json!(next_turn_at));
    fields.insert("deadline".into(), deadline_text(next_turn_at));
    Value::Object(fields)
}

/// The `game_started` payload: the first deadline and each player's turn-0 report.
pub(super) fn started_payload(
    game: &Game,
    next_turn_at: Option<Timestamp>,
    seats: &[Seat],
    reports: &BTreeMap<String, TurnReport>,
) -> Value {
    // The first orders are for turn 1; the report is turn 0's.
    let mut fields = play_payload(game, 1, seats, reports);
    fields.insert("report_turn".into(), json!(0));
    with_deadline(fields, next_turn_at)
}

/// The `turn_completed` payload: the turn, the next deadline and each player's report.
pub(super) fn turn_payload(
    game: &Game,
    turn: u32,
    next_turn_at: Option<Timestamp>,
    seats: &[Seat],
    reports: &BTreeMap<String, TurnReport>,
) -> Value {
    let mut fields = play_payload(game, turn, seats, reports);
    fields.insert("report_turn".into(), json!(turn));
    fields.insert("next_turn".into(), json!(turn.saturating_add(1)));
    with_deadline(fields, next_turn_at)
}

/// The `game_finished` payload: the winner, the standings (as data and as a text table)
/// and each player's final report.
pub(super) fn finished_payload(
    game: &Game,
    turn: &PlayedTurn,
    seats: &[Seat],
    reports: &BTreeMap<String, TurnReport>,
) -> Value {
    let mut fields = play_payload(game, turn.turn, seats, reports);
    fields.insert("winner".into(), json!(turn.winner.as_deref()));
    fields.insert(
        "standings_table".into(),
        json!(standings_table(&turn.standings)),
    );
    fields.insert("standings".into(), json!(turn.standings));
    Value::Object(fields)
}
