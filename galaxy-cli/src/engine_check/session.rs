//! One check's conversation with the engine: every call goes through here, so the rules
//! that hold for every answer (sizes, timeouts, error bodies) are checked on all of them,
//! and the shapes of states and reports are judged in one place.

use std::collections::BTreeSet;

use galaxy_core::ports::{EngineError, EngineTarget};
use galaxy_core::service::runtime::DEFAULT_PROBE_TIMEOUT;
use galaxy_engine_http::{EngineAnswer, EngineRequest, HttpEngineClient};
use serde_json::{Value, json};

use super::findings::Findings;
use super::input::OrdersFile;
use super::rules::RuleId;

/// The platform's default bound on an answer (`GALAXY_MAX_REPORT_BYTES` and the engine
/// client's `max_response_bytes`).
pub const PLATFORM_MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// The game the checker plays.
#[derive(Debug, Clone)]
pub struct Game {
    /// Its id (a fresh UUID, as the platform's are).
    pub game_id: String,
    /// The seed sent at init.
    pub seed: u64,
    /// The races, in init order.
    pub races: Vec<String>,
    /// `--settings`.
    pub settings: Value,
}

impl Game {
    /// The init body of this game (or of another game id).
    pub fn init_body(&self, game_id: &str) -> Vec<u8> {
        let races: Vec<Value> = self
            .races
            .iter()
            .enumerate()
            .map(|(i, race)| json!({"race_name": race, "player_id": format!("player-{}", i + 1)}))
            .collect();
        body(&json!({
            "game_id": game_id,
            "seed": self.seed,
            "settings": self.settings,
            "races": races,
        }))
    }

    /// The body of a submission of `orders` for `turn`.
    pub fn orders_body(turn: u64, orders: &Value) -> Vec<u8> {
        body(&json!({"turn": turn, "orders": orders}))
    }

    /// The body of a turn call.
    pub fn turn_body(expected_turn: u64) -> Vec<u8> {
        body(&json!({ "expected_turn": expected_turn }))
    }
}

/// A JSON value as bytes (serialising a `Value` cannot fail).
fn body(value: &Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

/// Why the check stops before its end (the engine stopped answering, or init failed):
/// the rules not yet observed are skipped with this reason.
#[derive(Debug, Clone)]
pub struct Abort(pub String);

/// An answer, with what was asked, for details.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The raw answer.
    pub raw: EngineAnswer,
    /// Its body as JSON, if it is.
    pub json: Option<Value>,
    /// `METHOD /path`.
    pub what: String,
}

impl Answer {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.raw.status
    }

    /// `PUT /orders/x answered 409: {"error": ...}`, for a detail.
    pub fn describe(&self) -> String {
        let text = self.raw.text();
        let body: String = text.chars().take(200).collect();
        format!("{} answered {}: {body}", self.what, self.raw.status)
    }

    /// The verdict of a 200 answer to orders: `accepted` and `errors`; `None` when the
    /// answer is not one.
    pub fn verdict(&self) -> Option<(bool, Vec<String>)> {
        if self.status() != 200 {
            return None;
        }
        let json = self.json.as_ref()?;
        let accepted = json.get("accepted")?.as_bool()?;
        let errors = match json.get("errors") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|e| e.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()?,
            Some(_) => return None,
        };
        Some((accepted, errors))
    }
}

/// What a state answer says, as far as the contract gives it meaning: two answers with
/// equal snapshots are the same state.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The last completed turn.
    pub turn: u64,
    /// Whether the game is over.
    pub finished: bool,
    /// The winner, if any.
    pub winner: Option<String>,
    /// The standings as answered (under `standings` or `races`).
    pub standings: Value,
}

/// The check in progress: the engine's address, the game, and what was observed.
pub struct Session {
    /// The platform's engine client (its raw layer).
    client: HttpEngineClient,
    /// The engine, with the token when one is known.
    pub target: EngineTarget,
    /// The observations so far.
    pub findings: Findings,
    /// The game played.
    pub game: Game,
    /// `--orders`, if given.
    pub orders: Option<OrdersFile>,
}

impl Session {
    /// A session with `target`.
    pub fn new(
        client: HttpEngineClient,
        target: EngineTarget,
        game: Game,
        orders: Option<OrdersFile>,
    ) -> Self {
        Self {
            client,
            target,
            findings: Findings::default(),
            game,
            orders,
        }
    }

    /// Sends `request` to the engine as the platform does.
    pub async fn call(&mut self, rule: RuleId, request: EngineRequest) -> Result<Answer, Abort> {
        let target = self.target.clone();
        self.call_as(rule, &target, request).await
    }

    /// Sends `request` to `target` (the engine, with another credential or none), checks
    /// what holds for every answer, and stops the check when there is no answer at all
    /// (recorded under `rule`).
    pub async fn call_as(
        &mut self,
        rule: RuleId,
        target: &EngineTarget,
        request: EngineRequest,
    ) -> Result<Answer, Abort> {
        let what = format!("{} {}", request.method(), request.path());
        // The health probe is bounded tighter than the client's other calls.
        let bound =
            (request.path() == EngineRequest::healthz().path()).then_some(DEFAULT_PROBE_TIMEOUT);
        let sent = self.client.send(target, request);
        let sent = match bound {
            Some(bound) => tokio::time::timeout(bound, sent)
                .await
                .unwrap_or(Err(EngineError::Timeout(bound))),
            None => sent.await,
        };
        let raw = match sent {
            Ok(raw) => raw,
            Err(error) => {
                let detail = format!("{what}: {error}");
                match &error {
                    EngineError::Timeout(_) => {
                        self.findings.fail(RuleId::HttpTimely, detail.clone())
                    }
                    EngineError::Malformed(_) => {
                        self.findings.fail(RuleId::SizesAnswers, detail.clone())
                    }
                    _ => {}
                }
                self.findings.fail(rule, detail.clone());
                return Err(Abort(format!("the engine gave no answer ({detail})")));
            }
        };
        self.findings.pass(RuleId::HttpTimely);
        let size = raw.body.len();
        self.findings.expect(
            RuleId::SizesAnswers,
            size <= PLATFORM_MAX_ANSWER_BYTES,
            || format!("{what} answered {size} bytes"),
        );
        let json = raw.json();
        let answer = Answer { raw, json, what };
        if !answer.raw.is_success() {
            let has_error = answer
                .json
                .as_ref()
                .is_some_and(|j| j.get("error").is_some_and(Value::is_string));
            self.findings
                .expect(RuleId::HttpErrorBody, has_error, || answer.describe());
        }
        Ok(answer)
    }

    /// Judges a state answer (of init, turn or state): its shape and its standings rows.
    /// `None` when it is not a state at all.
    pub fn state_of(&mut self, answer: &Answer) -> Option<Snapshot> {
        let what = &answer.what;
        let Some(json) = answer.json.as_ref().filter(|j| j.is_object()) else {
            self.findings
                .fail(RuleId::StateShape, format!("{what}: not a JSON object"));
            return None;
        };
        let turn = json.get("turn").and_then(Value::as_u64);
        let finished = json.get("finished").and_then(Value::as_bool);
        let standings = json.get("standings").or_else(|| json.get("races"));
        let winner = match json.get("winner") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(w)) if self.game.races.contains(w) => Ok(Some(w.clone())),
            Some(other) => Err(other.clone()),
        };
        let mut problems = Vec::new();
        if turn.is_none() {
            problems.push("no integer turn");
        }
        if finished.is_none() {
            problems.push("no boolean finished");
        }
        if !standings.is_some_and(Value::is_array) {
            problems.push("no standings (or races) list");
        }
        if winner.is_err() {
            problems.push("a winner that is not a race");
        }
        if !problems.is_empty() {
            self.findings.fail(
                RuleId::StateShape,
                format!("{what}: {} in {json}", problems.join(", ")),
            );
        } else {
            self.findings.pass(RuleId::StateShape);
        }
        if let Some(Value::Array(rows)) = standings {
            self.judge_rows(what, rows);
        }
        Some(Snapshot {
            turn: turn?,
            finished: finished?,
            winner: winner.ok()?,
            standings: standings?.clone(),
        })
    }

    fn judge_rows(&mut self, what: &str, rows: &[Value]) {
        let mut names = Vec::new();
        for row in rows {
            let name = row.get("name").and_then(Value::as_str);
            let ok = name.is_some()
                && row.get("alive").is_some_and(Value::is_boolean)
                && row.get("score").is_some_and(Value::is_number);
            if !ok {
                self.findings.fail(
                    RuleId::StandingsRows,
                    format!("{what}: the row {row} is not {{name, alive, score}}"),
                );
                return;
            }
            names.extend(name.map(str::to_owned));
        }
        let expected: BTreeSet<&String> = self.game.races.iter().collect();
        let got: BTreeSet<&String> = names.iter().collect();
        self.findings.expect(
            RuleId::StandingsRows,
            got == expected && names.len() == expected.len(),
            || {
                format!(
                    "{what}: rows for {names:?}, races are {:?}",
                    self.game.races
                )
            },
        );
    }

    /// `GET /admin/state`, judged; a failure to answer 200 is recorded under `rule`.
    pub async fn current_state(&mut self, rule: RuleId) -> Result<Option<Snapshot>, Abort> {
        let answer = self.call(rule, EngineRequest::state()).await?;
        if answer.status() != 200 {
            self.findings.fail(rule, answer.describe());
            return Ok(None);
        }
        Ok(self.state_of(&answer))
    }

    /// Checks, under `rule`, that `GET /admin/state` is `expected`: the comparison is
    /// about `rule` (a repeat that ran nothing, a restart that resumed), so a difference
    /// is recorded there alone.
    pub async fn state_is(
        &mut self,
        rule: RuleId,
        expected: &Snapshot,
        when: &str,
    ) -> Result<(), Abort> {
        let state = self.current_state(rule).await?;
        self.findings
            .expect(rule, state.as_ref() == Some(expected), || {
                format!("{when}: GET /admin/state is {state:?}, expected {expected:?}")
            });
        Ok(())
    }

    /// `GET /reports/{race}/{turn}`: recorded under `rule` (the report must exist), its
    /// shape and owner judged; the report when there is one.
    pub async fn report(
        &mut self,
        rule: RuleId,
        race: &str,
        turn: u64,
    ) -> Result<Option<Value>, Abort> {
        let turn32 = u32::try_from(turn).unwrap_or(u32::MAX);
        let answer = self.call(rule, EngineRequest::report(race, turn32)).await?;
        if answer.status() != 200 {
            self.findings.fail(rule, answer.describe());
            return Ok(None);
        }
        self.findings.pass(rule);
        let Some(report) = answer.json.clone().filter(Value::is_object) else {
            self.findings.fail(
                RuleId::ReportsShape,
                format!("{}: not a JSON object", answer.what),
            );
            return Ok(None);
        };
        let shaped = report.get("race").is_some_and(Value::is_string)
            && report.get("turn").and_then(Value::as_u64) == Some(turn)
            && report.get("text").is_some_and(Value::is_string);
        self.findings.expect(RuleId::ReportsShape, shaped, || {
            let keys: Vec<&String> = report
                .as_object()
                .map(|o| o.keys().collect())
                .unwrap_or_default();
            format!(
                "{}: race {}, turn {} (asked {turn}), keys {keys:?}",
                answer.what, report["race"], report["turn"]
            )
        });
        if let Some(owner) = report.get("race").and_then(Value::as_str) {
            self.findings
                .expect(RuleId::ReportsOwnRace, owner == race, || {
                    format!("{}: the report of {race:?} is {owner:?}'s", answer.what)
                });
        }
        Ok(Some(report))
    }

    /// `PUT /orders/{race}` with `orders` for `turn`.
    pub async fn submit(
        &mut self,
        rule: RuleId,
        race: &str,
        turn: u64,
        orders: &Value,
    ) -> Result<Answer, Abort> {
        let request = EngineRequest::orders(race, Game::orders_body(turn, orders));
        self.call(rule, request).await
    }

    /// Submits `orders` and expects them accepted (under `rule`).
    pub async fn expect_accepted(
        &mut self,
        rule: RuleId,
        race: &str,
        turn: u64,
        orders: &Value,
    ) -> Result<(), Abort> {
        let answer = self.submit(rule, race, turn, orders).await?;
        let accepted = matches!(answer.verdict(), Some((true, _)));
        self.findings.expect(rule, accepted, || {
            format!("turn {turn}: {}", answer.describe())
        });
        Ok(())
    }

    /// Submits `orders` and expects a refusal: 200 with `accepted: false` (under `rule`),
    /// with reasons ([`RuleId::OrdersReasons`]).
    pub async fn expect_refused(
        &mut self,
        rule: RuleId,
        race: &str,
        turn: u64,
        orders: &Value,
        why: &str,
    ) -> Result<(), Abort> {
        let answer = self.submit(rule, race, turn, orders).await?;
        match answer.verdict() {
            Some((false, errors)) => {
                self.findings.pass(rule);
                self.findings
                    .expect(RuleId::OrdersReasons, !errors.is_empty(), || {
                        format!("{why}: {} gave no errors", answer.what)
                    });
            }
            _ => self
                .findings
                .fail(rule, format!("{why}: {}", answer.describe())),
        }
        Ok(())
    }
}
