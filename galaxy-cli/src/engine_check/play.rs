//! The game the checker plays, from the first turn to the end (or `--max-turns`), with the
//! restarts, the replay and the stop of a launched engine.

use std::collections::BTreeMap;

use galaxy_engine_http::EngineRequest;
use serde_json::Value;

use super::input::for_race;
use super::launch::{Instance, Launched};
use super::orders;
use super::rules::RuleId;
use super::session::{Abort, Game, Session, Snapshot};

/// Every race's report of one turn.
pub type Reports = BTreeMap<String, Value>;

/// What the game has shown so far, to compare later answers with.
#[derive(Debug, Clone)]
pub struct Played {
    /// The last state answered.
    pub state: Snapshot,
    /// Every report read, by turn.
    pub reports: BTreeMap<u64, Reports>,
}

/// The engine launched by the checker, when it was.
pub struct LaunchedEngine<'a> {
    /// The runtime.
    pub launched: &'a Launched,
    /// The engine checked.
    pub instance: Instance,
}

/// Reads every race's report of `turn` under `rule`.
pub async fn all_reports(s: &mut Session, rule: RuleId, turn: u64) -> Result<Reports, Abort> {
    let mut reports = Reports::new();
    for race in s.game.races.clone() {
        if let Some(report) = s.report(rule, &race, turn).await? {
            reports.insert(race, report);
        }
    }
    Ok(reports)
}

/// Checks that the reports of every turn in `played` are still what they were.
pub async fn reports_unchanged(
    s: &mut Session,
    rule: RuleId,
    played: &Played,
    when: &str,
) -> Result<(), Abort> {
    for (turn, reports) in &played.reports {
        for (race, before) in reports {
            let now = s.report(rule, race, *turn).await?;
            s.findings.expect(rule, now.as_ref() == Some(before), || {
                format!("{when}: the report of {race:?} for turn {turn} changed")
            });
        }
    }
    Ok(())
}

/// Unknown races and unplayed turns have no report.
pub async fn missing_reports(s: &mut Session, current: u64) -> Result<(), Abort> {
    let race = s.game.races[0].clone();
    let turn = u32::try_from(current + 1).unwrap_or(u32::MAX);
    for request in [
        EngineRequest::report("Nobody Here", 0),
        EngineRequest::report(&race, turn),
    ] {
        let answer = s.call(RuleId::ReportsMissing, request).await?;
        s.findings
            .expect(RuleId::ReportsMissing, answer.status() == 404, || {
                answer.describe()
            });
    }
    Ok(())
}

/// Plays turns until the game ends or `max_turns` were played; the turn rules, the
/// reports of every turn, and the empty order sets of later turns.
pub async fn turns(s: &mut Session, played: &mut Played, max_turns: u64) -> Result<(), Abort> {
    // Ahead of the next turn: refused, nothing run.
    let ahead = played.state.turn + 2;
    let answer = s
        .call(
            RuleId::TurnAhead,
            EngineRequest::turn(Game::turn_body(ahead)),
        )
        .await?;
    match answer.status() {
        409 => s.findings.pass(RuleId::TurnAhead),
        status if (400..500).contains(&status) => s.findings.warn(
            RuleId::TurnAhead,
            format!("{} (the contract says 409)", answer.describe()),
        ),
        _ => s.findings.fail(
            RuleId::TurnAhead,
            format!("expected_turn {ahead}: {}", answer.describe()),
        ),
    }
    let before = played.state.clone();
    s.state_is(
        RuleId::TurnAhead,
        &before,
        "after a turn call ahead of the next",
    )
    .await?;

    for _ in 0..max_turns {
        let next = played.state.turn + 1;
        if next > 1 {
            let alive = alive_races(&played.state);
            orders::empty_for(s, next, &alive).await?;
        }
        let answer = s
            .call(RuleId::TurnRuns, EngineRequest::turn(Game::turn_body(next)))
            .await?;
        let state = if answer.status() == 200 {
            s.state_of(&answer)
        } else {
            None
        };
        let Some(state) = state.filter(|st| st.turn == next) else {
            s.findings.fail(
                RuleId::TurnRuns,
                format!("expected_turn {next}: {}", answer.describe()),
            );
            return Err(Abort(format!("turn {next} did not run")));
        };
        s.findings.pass(RuleId::TurnRuns);
        s.state_is(RuleId::StateCurrent, &state, &format!("after turn {next}"))
            .await?;

        // Repeats run nothing: the same turn again, and (once) an older one.
        let mut repeats = vec![next];
        if next == 1 {
            repeats.push(0);
        }
        for expected in repeats {
            let again = s
                .call(
                    RuleId::TurnRepeat,
                    EngineRequest::turn(Game::turn_body(expected)),
                )
                .await?;
            let same = again.status() == 200 && s.state_of(&again).as_ref() == Some(&state);
            s.findings.expect(RuleId::TurnRepeat, same, || {
                format!(
                    "expected_turn {expected} after turn {next}: {}",
                    again.describe()
                )
            });
        }
        s.state_is(
            RuleId::TurnRepeat,
            &state,
            &format!("after repeating turn {next}"),
        )
        .await?;

        let reports = all_reports(s, RuleId::TurnReports, next).await?;
        played.reports.insert(next, reports);
        played.state = state;
        if next == 1 {
            missing_reports(s, next).await?;
            orders::for_a_played_turn(s, next).await?;
            reports_unchanged(
                s,
                RuleId::ReportsImmutable,
                &Played {
                    state: played.state.clone(),
                    reports: played
                        .reports
                        .range(..1)
                        .map(|(t, r)| (*t, r.clone()))
                        .collect(),
                },
                "after turn 1",
            )
            .await?;
        }
        if played.state.finished {
            break;
        }
    }
    Ok(())
}

/// The races alive in `state` (all of them when the standings do not say).
fn alive_races(state: &Snapshot) -> Vec<String> {
    state
        .standings
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter(|row| row.get("alive").and_then(Value::as_bool) != Some(false))
                .filter_map(|row| row.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// After the end: turns run nothing, orders are refused. Skipped when the game did not
/// end within `max_turns`.
pub async fn finish(s: &mut Session, played: &Played, max_turns: u64) -> Result<(), Abort> {
    if !played.state.finished {
        let why = format!(
            "the game did not finish within {max_turns} turn(s): raise --max-turns (or end it sooner with --settings)"
        );
        for rule in [RuleId::FinishTurn, RuleId::FinishOrders] {
            s.findings.skip(rule, why.clone());
        }
        return Ok(());
    }
    let last = played.state.turn;
    for expected in [last + 1, last] {
        let answer = s
            .call(
                RuleId::FinishTurn,
                EngineRequest::turn(Game::turn_body(expected)),
            )
            .await?;
        let same = answer.status() == 200 && s.state_of(&answer).as_ref() == Some(&played.state);
        s.findings.expect(RuleId::FinishTurn, same, || {
            format!(
                "expected_turn {expected} after the end: {}",
                answer.describe()
            )
        });
    }
    s.state_is(
        RuleId::FinishTurn,
        &played.state,
        "after turn calls past the end",
    )
    .await?;
    orders::after_the_end(s, last).await
}

/// Kills the launched engine, restarts it on its data directory, and checks that it
/// resumed: the same state as soon as `/healthz` answers, the same reports, init still
/// idempotent.
pub async fn restart(
    s: &mut Session,
    engine: &LaunchedEngine<'_>,
    played: &Played,
    when: &str,
) -> Result<(), Abort> {
    if let Err(e) = engine.launched.crash_and_restart(&engine.instance).await {
        s.findings
            .fail(RuleId::RestartResume, format!("{when}: {e}"));
        return Err(Abort(format!(
            "the engine did not come back after a kill: {e}"
        )));
    }
    s.state_is(
        RuleId::RestartResume,
        &played.state,
        &format!("restarted {when}"),
    )
    .await?;
    reports_unchanged(
        s,
        RuleId::RestartResume,
        played,
        &format!("restarted {when}"),
    )
    .await?;
    let body = s.game.init_body(&s.game.game_id);
    let again = s
        .call(RuleId::RestartResume, EngineRequest::init(body))
        .await?;
    let same = again.status() == 200 && s.state_of(&again).as_ref() == Some(&played.state);
    s.findings.expect(RuleId::RestartResume, same, || {
        format!("restarted {when}, init again: {}", again.describe())
    });
    Ok(())
}

/// Replays the game's start on a fresh engine: the same init gives the same turn-0
/// reports, and turn 1 with the valid orders alone the same turn-1 reports.
pub async fn determinism(
    s: &mut Session,
    engine: &LaunchedEngine<'_>,
    played: &Played,
) -> Result<(), Abort> {
    let replay = match engine.launched.start("replay").await {
        Ok(replay) => replay,
        Err(e) => {
            s.findings.fail(
                RuleId::DeterminismSeed,
                format!("a second engine did not start: {e}"),
            );
            return Ok(());
        }
    };
    let main = std::mem::replace(&mut s.target, engine.launched.target(&replay));
    let outcome = replay_start(s, played).await;
    s.target = main;
    let _ = engine.launched.stop(&replay).await;
    outcome
}

async fn replay_start(s: &mut Session, played: &Played) -> Result<(), Abort> {
    let body = s.game.init_body(&s.game.game_id);
    let answer = s
        .call(RuleId::DeterminismSeed, EngineRequest::init(body))
        .await?;
    if answer.status() != 200 {
        s.findings.fail(
            RuleId::DeterminismSeed,
            format!("replay: {}", answer.describe()),
        );
        return Ok(());
    }
    compare(s, played, 0, "the same init").await?;
    let (Some(file), true) = (s.orders.clone(), played.reports.contains_key(&1)) else {
        return Ok(());
    };
    for race in s.game.races.clone() {
        s.expect_accepted(
            RuleId::OrdersAccepted,
            &race,
            1,
            &for_race(&file.valid, &race),
        )
        .await?;
    }
    let answer = s
        .call(
            RuleId::DeterminismSeed,
            EngineRequest::turn(Game::turn_body(1)),
        )
        .await?;
    s.findings
        .expect(RuleId::DeterminismSeed, answer.status() == 200, || {
            format!("replay: {}", answer.describe())
        });
    compare(
        s,
        played,
        1,
        "turn 1 with the valid orders alone (were earlier submissions merged rather than replaced, orders lost across the restart, or is the turn not deterministic?)",
    )
    .await
}

async fn compare(s: &mut Session, played: &Played, turn: u64, what: &str) -> Result<(), Abort> {
    let replayed = all_reports(s, RuleId::DeterminismSeed, turn).await?;
    let original = played.reports.get(&turn);
    let differing: Vec<&String> = replayed
        .iter()
        .filter(|(race, report)| original.and_then(|o| o.get(*race)) != Some(*report))
        .map(|(race, _)| race)
        .collect();
    s.findings
        .expect(RuleId::DeterminismSeed, differing.is_empty(), || {
            format!("the turn-{turn} reports of {differing:?} differ after {what}")
        });
    Ok(())
}

/// Stops the engine as the platform does and judges how it exited.
pub async fn stop(s: &mut Session, engine: &LaunchedEngine<'_>) {
    match engine.launched.stop(&engine.instance).await {
        Ok(Some(0)) => s.findings.pass(RuleId::LifecycleSigterm),
        Ok(Some(137)) => s.findings.fail(
            RuleId::LifecycleSigterm,
            "still running 10 s after SIGTERM: killed",
        ),
        Ok(Some(143)) => s.findings.fail(
            RuleId::LifecycleSigterm,
            "ended by the signal itself (no SIGTERM handler: a turn in progress would be lost)",
        ),
        Ok(code) => s
            .findings
            .fail(RuleId::LifecycleSigterm, format!("exit status {code:?}")),
        Err(e) => s.findings.fail(RuleId::LifecycleSigterm, e.to_string()),
    }
}
