//! Orders for turn 1: refused ones (200 with `accepted: false`, never a 4xx), accepted
//! ones, replacement, and the wrong turn or race. They need `--orders`: the checker
//! cannot know what an engine's orders look like.

use galaxy_engine_http::EngineRequest;
use serde_json::Value;

use super::input::{OrdersFile, for_race};
use super::rules::RuleId;
use super::session::{Abort, Session};

/// The rules that need an orders file.
pub const NEED_ORDERS: [RuleId; 7] = [
    RuleId::OrdersAccepted,
    RuleId::OrdersRefused,
    RuleId::OrdersReasons,
    RuleId::OrdersReplace,
    RuleId::OrdersWrongTurn,
    RuleId::OrdersUnknownRace,
    RuleId::FinishOrders,
];

/// Skips the rules that need an orders file, when there is none; `None` then.
pub fn file_or_skip(s: &mut Session) -> Option<OrdersFile> {
    if s.orders.is_none() {
        for rule in NEED_ORDERS {
            s.findings.skip(rule, "no orders file: give --orders");
        }
    }
    s.orders.clone()
}

/// Every orders rule on turn 1, leaving the valid set in force for every race.
pub async fn before_turn_one(s: &mut Session) -> Result<(), Abort> {
    let Some(file) = file_or_skip(s) else {
        return Ok(());
    };
    let races = s.game.races.clone();

    let answer = s
        .call(
            RuleId::HttpBadJson,
            EngineRequest::orders(&races[0], b"{\"turn\": ".to_vec()),
        )
        .await?;
    s.findings
        .expect(RuleId::HttpBadJson, answer.status() == 400, || {
            answer.describe()
        });

    let unknown = "Nobody Here";
    let answer = s
        .submit(
            RuleId::OrdersUnknownRace,
            unknown,
            1,
            &for_race(&file.valid, unknown),
        )
        .await?;
    s.findings
        .expect(RuleId::OrdersUnknownRace, answer.status() == 404, || {
            answer.describe()
        });

    for race in &races {
        let valid = for_race(&file.valid, race);
        let invalid = for_race(&file.invalid, race);
        for wrong_turn in [0, 2] {
            let why = format!("orders for turn {wrong_turn} when the next is 1");
            s.expect_refused(RuleId::OrdersWrongTurn, race, wrong_turn, &valid, &why)
                .await?;
        }
        s.expect_refused(
            RuleId::OrdersRefused,
            race,
            1,
            &invalid,
            "the invalid orders",
        )
        .await?;
        s.expect_accepted(RuleId::OrdersAccepted, race, 1, &valid)
            .await?;
    }

    // Replacement: resubmitting, withdrawing (the empty set) and submitting again are all
    // accepted; the valid set is what stays in force (the determinism rule replays turn 1
    // with it alone, which shows what a merge would have changed).
    let race = &races[0];
    let sequence: [(&str, &Value); 3] = [
        ("valid", &file.valid),
        ("empty", &file.empty),
        ("valid", &file.valid),
    ];
    for (name, template) in sequence {
        let answer = s
            .submit(RuleId::OrdersReplace, race, 1, &for_race(template, race))
            .await?;
        let accepted = matches!(answer.verdict(), Some((true, _)));
        s.findings.expect(RuleId::OrdersReplace, accepted, || {
            format!("resubmitting the {name} set: {}", answer.describe())
        });
    }
    Ok(())
}

/// The empty set for every race still alive, for a later turn (must be accepted).
pub async fn empty_for(s: &mut Session, turn: u64, alive: &[String]) -> Result<(), Abort> {
    let Some(file) = s.orders.clone() else {
        return Ok(());
    };
    for race in alive {
        s.expect_accepted(
            RuleId::OrdersAccepted,
            race,
            turn,
            &for_race(&file.empty, race),
        )
        .await?;
    }
    Ok(())
}

/// After turn `played`: orders for it (now played) are refused.
pub async fn for_a_played_turn(s: &mut Session, played: u64) -> Result<(), Abort> {
    let Some(file) = s.orders.clone() else {
        return Ok(());
    };
    let race = s.game.races[0].clone();
    let why = format!("orders for turn {played}, already played");
    s.expect_refused(
        RuleId::OrdersWrongTurn,
        &race,
        played,
        &for_race(&file.valid, &race),
        &why,
    )
    .await
}

/// After the end: orders for the turn after the last are refused, for every race.
pub async fn after_the_end(s: &mut Session, last: u64) -> Result<(), Abort> {
    let Some(file) = s.orders.clone() else {
        return Ok(());
    };
    for race in s.game.races.clone() {
        s.expect_refused(
            RuleId::FinishOrders,
            &race,
            last + 1,
            &for_race(&file.empty, &race),
            "orders after the end",
        )
        .await?;
    }
    Ok(())
}
