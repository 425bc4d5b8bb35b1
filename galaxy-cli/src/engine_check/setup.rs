//! The first part of a check: health and contract version, what an engine does before
//! init, init itself, and the credential.

use galaxy_core::domain::engine_auth::EngineToken;
use galaxy_core::ports::EngineTarget;
use galaxy_engine_http::{CONTRACT_VERSION, EngineRequest, Health};
use serde_json::json;

use super::rules::RuleId;
use super::session::{Abort, Answer, Game, Session, Snapshot};

/// Judges the first `/healthz` answer; the contract version it says, if any.
pub fn health(s: &mut Session, answer: &Answer) -> Option<String> {
    s.findings
        .expect(RuleId::HealthReady, answer.status() == 200, || {
            answer.describe()
        });
    let contract = Health::from_body(&answer.raw.body).contract;
    match contract.as_deref() {
        Some(CONTRACT_VERSION) => s.findings.pass(RuleId::HealthContract),
        Some(other) => s.findings.fail(
            RuleId::HealthContract,
            format!("it says contract {other:?}; this checker knows {CONTRACT_VERSION:?} and checks that"),
        ),
        None => s.findings.fail(
            RuleId::HealthContract,
            format!("it does not say: taken as version 1 (checked against {CONTRACT_VERSION} all the same)"),
        ),
    }
    contract
}

/// Judges the first `/admin/state` answer, made before init.
pub fn state_before_init(s: &mut Session, answer: &Answer) {
    s.findings
        .expect(RuleId::StateBeforeInit, answer.status() == 409, || {
            answer.describe()
        });
}

/// Bodies that do not parse, and init data no engine can take, before the real init.
pub async fn refusals_before_init(s: &mut Session) -> Result<(), Abort> {
    let answer = s
        .call(
            RuleId::HttpBadJson,
            EngineRequest::init(b"{\"game_id\": ".to_vec()),
        )
        .await?;
    s.findings
        .expect(RuleId::HttpBadJson, answer.status() == 400, || {
            answer.describe()
        });

    let mut no_races =
        serde_json::from_slice::<serde_json::Value>(&s.game.init_body(&s.game.game_id))
            .unwrap_or_default();
    no_races["races"] = json!([]);
    let answer = s
        .call(
            RuleId::InitInvalid,
            EngineRequest::init(no_races.to_string()),
        )
        .await?;
    let details = answer
        .json
        .as_ref()
        .is_some_and(|j| j.get("details").is_some_and(serde_json::Value::is_array));
    match answer.status() {
        422 if details => s.findings.pass(RuleId::InitInvalid),
        422 => s.findings.fail(
            RuleId::InitInvalid,
            format!("no \"details\" list: {}", answer.describe()),
        ),
        status if (400..500).contains(&status) => s.findings.fail(
            RuleId::InitInvalid,
            format!("{} (the contract says 422)", answer.describe()),
        ),
        _ => s.findings.fail(
            RuleId::InitInvalid,
            format!("a game without races: {}", answer.describe()),
        ),
    }
    Ok(())
}

/// Init, its repeat, and init of another game; the state of turn 0.
pub async fn init(s: &mut Session) -> Result<Snapshot, Abort> {
    let body = s.game.init_body(&s.game.game_id);
    let answer = s
        .call(RuleId::InitAccepts, EngineRequest::init(body.clone()))
        .await?;
    if answer.status() != 200 {
        s.findings.fail(RuleId::InitAccepts, answer.describe());
        return Err(Abort("init failed".to_owned()));
    }
    let Some(state) = s.state_of(&answer) else {
        s.findings.fail(
            RuleId::InitAccepts,
            format!("not a state: {}", answer.describe()),
        );
        return Err(Abort("init answered no state".to_owned()));
    };
    s.findings.expect(
        RuleId::InitAccepts,
        state.turn == 0 && !state.finished,
        || {
            format!(
                "init answered turn {}, finished {}",
                state.turn, state.finished
            )
        },
    );

    let again = s
        .call(RuleId::InitIdempotent, EngineRequest::init(body))
        .await?;
    let same = again.status() == 200 && s.state_of(&again).as_ref() == Some(&state);
    s.findings
        .expect(RuleId::InitIdempotent, same, || again.describe());
    s.state_is(RuleId::InitIdempotent, &state, "after init twice")
        .await?;

    let other = uuid::Uuid::now_v7().to_string();
    let answer = s
        .call(
            RuleId::InitOtherGame,
            EngineRequest::init(s.game.init_body(&other)),
        )
        .await?;
    match answer.status() {
        409 => s.findings.pass(RuleId::InitOtherGame),
        status if (400..500).contains(&status) => s.findings.warn(
            RuleId::InitOtherGame,
            format!("{} (the contract says 409)", answer.describe()),
        ),
        _ => s.findings.fail(RuleId::InitOtherGame, answer.describe()),
    }
    s.state_is(RuleId::InitOtherGame, &state, "after init of another game")
        .await?;
    Ok(state)
}

/// Without the credential, or with a wrong one, every route but `/healthz` is 401 and
/// does nothing. Checked after init, so that a refusal cannot be mistaken for "not
/// initialised".
pub async fn credential(s: &mut Session, state: &Snapshot) -> Result<(), Abort> {
    if s.target.token.is_none() {
        for rule in [RuleId::AuthRequired, RuleId::AuthChallenge] {
            s.findings.skip(
                rule,
                "no token to check against: give --token, or use --launch",
            );
        }
        return Ok(());
    }
    let race = s.game.races[0].clone();
    let wrong = EngineToken::new("0".repeat(64));
    let targets = [
        (
            "without a token",
            EngineTarget::anonymous(s.target.endpoint.clone()),
        ),
        (
            "with a wrong token",
            EngineTarget::new(s.target.endpoint.clone(), wrong),
        ),
    ];
    for (how, target) in targets {
        let requests = [
            EngineRequest::state(),
            EngineRequest::init(s.game.init_body(&s.game.game_id)),
            EngineRequest::turn(Game::turn_body(1)),
            EngineRequest::orders(&race, Game::orders_body(1, &json!([]))),
            EngineRequest::report(&race, 0),
        ];
        for request in requests {
            let answer = s.call_as(RuleId::AuthRequired, &target, request).await?;
            match answer.status() {
                401 => {
                    s.findings.pass(RuleId::AuthRequired);
                    let challenge = answer
                        .raw
                        .headers
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("bearer"));
                    s.findings.expect(RuleId::AuthChallenge, challenge, || {
                        format!("{how}: {} has no WWW-Authenticate: Bearer", answer.what)
                    });
                }
                // The platform's start check takes 403 too.
                403 => s.findings.warn(
                    RuleId::AuthRequired,
                    format!("{how}: {} (the contract says 401)", answer.describe()),
                ),
                _ => s.findings.fail(
                    RuleId::AuthRequired,
                    format!("{how}: {}", answer.describe()),
                ),
            }
        }
    }
    s.state_is(RuleId::AuthRequired, state, "after calls without the token")
        .await
}
