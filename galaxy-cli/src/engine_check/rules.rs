//! The rules of the engine contract (docs/engine-contract.md) the checker verifies, as
//! data: a stable id, how binding the contract's wording makes it, and its text.
//!
//! Ids are stable: engine authors and CI scripts refer to them. Add rules; never rename
//! or reuse an id.

/// How binding a rule is: what a failure of it makes of the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The platform breaks (or a game goes wrong) without it: a failure is `FAIL`.
    Must,
    /// The contract recommends it (the platform copes, worse): a failure is `WARN`.
    Should,
}

/// Declares [`RuleId`] and the list of all its variants in one place, so a test can
/// check that every id has its row in [`RULES`].
macro_rules! rule_ids {
    ($($id:ident),* $(,)?) => {
        /// Names one rule; the checks record what they observe under it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[allow(missing_docs)] // each variant is described by its row in RULES
        pub enum RuleId { $($id),* }

        impl RuleId {
            /// Every id.
            pub const ALL: &[RuleId] = &[$(RuleId::$id),*];
        }
    };
}

rule_ids![
    HealthReady,
    HealthContract,
    HttpTimely,
    HttpBadJson,
    HttpErrorBody,
    SizesAnswers,
    AuthRequired,
    AuthChallenge,
    StateBeforeInit,
    InitInvalid,
    InitAccepts,
    InitIdempotent,
    InitOtherGame,
    StateShape,
    StandingsRows,
    StateCurrent,
    ReportsTurn0,
    ReportsShape,
    ReportsOwnRace,
    ReportsMissing,
    ReportsImmutable,
    OrdersAccepted,
    OrdersRefused,
    OrdersReasons,
    OrdersReplace,
    OrdersWrongTurn,
    OrdersUnknownRace,
    TurnRuns,
    TurnRepeat,
    TurnAhead,
    TurnReports,
    FinishTurn,
    FinishOrders,
    RestartResume,
    DeterminismSeed,
    LifecycleSigterm,
];

/// One rule: what the checker reports a line about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// How the checks name it.
    pub id: RuleId,
    /// Its stable name in the output, `area.rule`.
    pub name: &'static str,
    /// MUST or SHOULD.
    pub level: Level,
    /// What the engine must (or should) do, in one line.
    pub text: &'static str,
}

const fn rule(id: RuleId, name: &'static str, level: Level, text: &'static str) -> Rule {
    Rule {
        id,
        name,
        level,
        text,
    }
}

use Level::{Must, Should};
use RuleId as R;

/// Every rule, in the order of the output (roughly the order of a game).
pub const RULES: &[Rule] = &[
    rule(
        R::HealthReady,
        "health.ready",
        Must,
        "GET /healthz answers 200 once the state is loaded",
    ),
    rule(
        R::HealthContract,
        "health.contract",
        Should,
        "GET /healthz says the contract version it implements: {\"contract\": \"2\"}",
    ),
    rule(
        R::HttpTimely,
        "http.timely",
        Must,
        "every call is answered within the platform's timeouts (10 s; 5 s for /healthz; 120 s for init and turn)",
    ),
    rule(
        R::HttpBadJson,
        "http.bad_json",
        Should,
        "a body that does not parse is answered 400",
    ),
    rule(
        R::HttpErrorBody,
        "http.error_body",
        Should,
        "error answers are JSON {\"error\": \"...\"}",
    ),
    rule(
        R::SizesAnswers,
        "sizes.answers",
        Must,
        "every answer, reports included, is at most 1 MiB (the platform's default bound)",
    ),
    rule(
        R::AuthRequired,
        "auth.required",
        Must,
        "every route but /healthz answers 401 to a call without the token (or with a wrong one) and does nothing for it",
    ),
    rule(
        R::AuthChallenge,
        "auth.challenge",
        Should,
        "a 401 carries WWW-Authenticate: Bearer",
    ),
    rule(
        R::StateBeforeInit,
        "state.before_init",
        Must,
        "GET /admin/state before init answers 409",
    ),
    rule(
        R::InitInvalid,
        "init.invalid",
        Should,
        "invalid init data (no races) is refused with 422 and details",
    ),
    rule(
        R::InitAccepts,
        "init.accepts",
        Must,
        "init answers 200 with the state of turn 0, not finished",
    ),
    rule(
        R::InitIdempotent,
        "init.idempotent",
        Must,
        "init again with the same game_id answers the same state and changes nothing",
    ),
    rule(
        R::InitOtherGame,
        "init.other_game",
        Must,
        "init with another game_id is refused (409) and changes nothing",
    ),
    rule(
        R::StateShape,
        "state.shape",
        Must,
        "init, turn and state answers carry turn, finished, winner (absent, null or a race) and standings (or races)",
    ),
    rule(
        R::StandingsRows,
        "standings.rows",
        Must,
        "standings have one row per race: {\"name\": <race>, \"alive\": <bool>, \"score\": <number>}",
    ),
    rule(
        R::StateCurrent,
        "state.current",
        Must,
        "GET /admin/state answers the state last answered by init or turn",
    ),
    rule(
        R::ReportsTurn0,
        "reports.turn0",
        Must,
        "after init every race has its turn-0 report",
    ),
    rule(
        R::ReportsShape,
        "reports.shape",
        Must,
        "a report is JSON with race, turn (the one asked) and text (a string)",
    ),
    rule(
        R::ReportsOwnRace,
        "reports.own_race",
        Must,
        "the report asked for a race is that race's own (race names arrive percent-encoded)",
    ),
    rule(
        R::ReportsMissing,
        "reports.missing",
        Must,
        "the report of an unknown race or an unplayed turn is 404",
    ),
    rule(
        R::ReportsImmutable,
        "reports.immutable",
        Must,
        "a report once written never changes",
    ),
    rule(
        R::OrdersAccepted,
        "orders.accepted",
        Must,
        "valid orders for the next turn are answered 200 {\"accepted\": true}",
    ),
    rule(
        R::OrdersRefused,
        "orders.refused",
        Must,
        "invalid orders are answered 200 {\"accepted\": false, \"errors\": [...]}, not a 4xx",
    ),
    rule(
        R::OrdersReasons,
        "orders.reasons",
        Should,
        "a refusal of orders says why (errors is not empty)",
    ),
    rule(
        R::OrdersReplace,
        "orders.replace",
        Must,
        "a later submission for the same turn is accepted and replaces the earlier one",
    ),
    rule(
        R::OrdersWrongTurn,
        "orders.wrong_turn",
        Must,
        "orders for another turn than the next are answered 200 {\"accepted\": false}",
    ),
    rule(
        R::OrdersUnknownRace,
        "orders.unknown_race",
        Must,
        "orders for an unknown race are 404",
    ),
    rule(
        R::TurnRuns,
        "turn.runs",
        Must,
        "expected_turn = current + 1 runs exactly that turn and answers its state",
    ),
    rule(
        R::TurnRepeat,
        "turn.repeat",
        Must,
        "expected_turn <= current runs nothing and answers the current state",
    ),
    rule(
        R::TurnAhead,
        "turn.ahead",
        Must,
        "expected_turn > current + 1 is refused (409) and runs nothing",
    ),
    rule(
        R::TurnReports,
        "turn.reports",
        Must,
        "after each turn every race has its report of that turn",
    ),
    rule(
        R::FinishTurn,
        "finish.turn",
        Must,
        "after the end a turn runs nothing and answers the final state",
    ),
    rule(
        R::FinishOrders,
        "finish.orders",
        Must,
        "after the end orders are answered 200 {\"accepted\": false}",
    ),
    rule(
        R::RestartResume,
        "restart.resume",
        Must,
        "killed and restarted on its data directory, the engine resumes: same state, same reports, init still idempotent",
    ),
    rule(
        R::DeterminismSeed,
        "determinism.seed",
        Should,
        "the same init and orders on a fresh data directory give the same reports",
    ),
    rule(
        R::LifecycleSigterm,
        "lifecycle.sigterm",
        Should,
        "SIGTERM stops the engine cleanly (exit status 0 within 10 s)",
    ),
];

/// The rule of `id`.
pub fn rule_of(id: RuleId) -> &'static Rule {
    // Every id has its row (a unit test checks it); the first row is a harmless fallback.
    RULES.iter().find(|r| r.id == id).unwrap_or(&RULES[0])
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{RULES, RuleId, rule_of};

    #[test]
    fn every_rule_has_one_row_with_a_unique_well_formed_name() {
        let ids: BTreeSet<RuleId> = RULES.iter().map(|r| r.id).collect();
        let names: BTreeSet<&str> = RULES.iter().map(|r| r.name).collect();
        assert_eq!(ids.len(), RULES.len(), "an id has two rows");
        assert_eq!(
            ids,
            RuleId::ALL.iter().copied().collect(),
            "an id has no row"
        );
        assert_eq!(names.len(), RULES.len(), "a name is used twice");
        for rule in RULES {
            assert_eq!(rule_of(rule.id), rule);
            let (area, name) = rule.name.split_once('.').unwrap_or_default();
            let word = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            };
            assert!(word(area) && word(name), "{}", rule.name);
            assert!(!rule.text.is_empty());
        }
    }

    #[test]
    fn the_contract_page_lists_every_rule() {
        let page = include_str!("../../../docs/engine-contract.md");
        for rule in RULES {
            let level = match rule.level {
                super::Level::Must => "MUST",
                super::Level::Should => "SHOULD",
            };
            let row = format!("| `{}` | {level} |", rule.name);
            assert!(
                page.contains(&row),
                "docs/engine-contract.md has no row {row}"
            );
        }
    }
}
