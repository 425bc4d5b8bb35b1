//! `galaxy-cli engine check`: a black-box checker of the engine contract
//! (docs/engine-contract.md) for engine authors.
//!
//! It plays one game against an engine over HTTP, as the platform would and then some
//! (bad bodies, wrong credentials, repeats, kills), and reports one line per rule of
//! [`rules::RULES`]: `PASS`, `FAIL` (a MUST broken), `WARN` (a SHOULD broken) or `SKIP`
//! (something the rule needs was not given: never a pass). The logic is here, testable
//! without the binary; `main.rs` only parses and prints.

mod findings;
mod input;
mod launch;
mod orders;
mod play;
mod rules;
mod session;
mod setup;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use galaxy_core::domain::engine_auth::EngineToken;
use galaxy_core::ports::EngineTarget;
use galaxy_engine_http::{ClientOptions, EngineRequest, HttpEngineClient};

pub use findings::{Report, Status};
pub use input::{InputError, OrdersFile, OrdersFileError};
pub use launch::LaunchError;
pub use rules::{Level, RULES, Rule};

use launch::Launched;
use play::{LaunchedEngine, Played};
use rules::RuleId;
use session::{Abort, Game, Session};

/// Exit status when a MUST failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit status for bad usage: options, files, a missing token.
pub const EXIT_USAGE: u8 = 2;
/// Exit status when the engine cannot be checked at all: not reachable, not launched, or
/// not fresh.
pub const EXIT_UNCHECKABLE: u8 = 3;

/// Options of `galaxy-cli engine check`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("engine").required(true).args(["url", "launch"])))]
pub struct CheckArgs {
    /// Check the engine running at this base URL (it must hold no game yet).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Start the engine with this command line (as the process runtime does: no shell),
    /// on a temporary data directory, with a token; it can then also be killed,
    /// restarted and stopped.
    #[arg(long, value_name = "COMMAND")]
    launch: Option<String>,
    /// The engine's GALAXY_ENGINE_TOKEN, for --url (the credential rules are skipped
    /// without it); --launch makes a token of its own and ignores this.
    #[arg(long, env = "GALAXY_ENGINE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The engine's settings for init, a JSON object.
    #[arg(long, value_name = "JSON")]
    settings: Option<String>,
    /// A JSON file {"valid": ORDERS, "invalid": ORDERS} (optionally "empty": ORDERS);
    /// `{race}` in its strings is replaced by the race.
    #[arg(long, value_name = "FILE")]
    orders: Option<PathBuf>,
    /// How many turns to play at most, waiting for the engine to finish the game.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    max_turns: u64,
    /// How many races the game has (2..=8).
    #[arg(long, default_value_t = 3)]
    races: usize,
    /// The seed sent at init.
    #[arg(long, default_value_t = 20_260_101)]
    seed: u64,
    /// How long a launched engine may take to answer /healthz, in seconds (1 to 3600).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    start_timeout: u64,
}

/// Why an engine could not be checked at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// An option or a file is wrong.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The engine refuses calls without a token and none was given.
    #[error("the engine answers 401 without a token: give its GALAXY_ENGINE_TOKEN with --token")]
    TokenNeeded,
    /// Neither `--url` nor `--launch` was given (clap's argument group makes this
    /// unreachable from the command line).
    #[error("give --url or --launch")]
    NoEngine,
    /// `--launch` did not give a running engine.
    #[error("cannot launch the engine: {0}")]
    Launch(#[from] LaunchError),
    /// Nothing answers at the URL.
    #[error("the engine at {endpoint} cannot be reached: {reason}")]
    Unreachable {
        /// The URL.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// The engine already holds a game: the check needs a fresh one.
    #[error(
        "the engine at {0} already holds a game: check a fresh engine (an empty data directory)"
    )]
    NotFresh(String),
    /// The check was stopped (ctrl-c, SIGTERM) before it finished; a launched engine
    /// was stopped with it.
    #[error("interrupted before the check finished")]
    Interrupted,
}

impl CheckError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Input(_) | Self::TokenNeeded | Self::NoEngine => EXIT_USAGE,
            _ => EXIT_UNCHECKABLE,
        }
    }
}

/// Runs the check `args` ask for; the report, or why the engine could not be checked.
pub async fn check(args: CheckArgs) -> Result<Report, CheckError> {
    check_until(args, std::future::pending()).await
}

/// [`check`], given up as [`CheckError::Interrupted`] when `stop` completes first (the
/// command line's ctrl-c): an engine it launched is stopped either way, so none is left
/// running (the process runtime starts it in a process group of its own, which the
/// terminal's signals do not reach).
pub async fn check_until(
    args: CheckArgs,
    stop: impl Future<Output = ()>,
) -> Result<Report, CheckError> {
    let settings = input::settings(args.settings.as_deref())?;
    let races = input::races(args.races)?;
    let orders = args.orders.as_deref().map(OrdersFile::read).transpose()?;
    let game = Game {
        game_id: uuid::Uuid::now_v7().to_string(),
        seed: args.seed,
        races,
        settings,
    };
    let client = HttpEngineClient::new(ClientOptions {
        // Larger than the platform's bounds, so that an oversized answer is measured and
        // failed by its rule rather than cut.
        max_response_bytes: 16 * 1024 * 1024,
        max_error_body_bytes: 16 * 1024,
        ..ClientOptions::default()
    });
    match (args.url, args.launch) {
        (Some(url), _) => {
            let target = match args.token {
                Some(token) => EngineTarget::new(url, EngineToken::new(token)),
                None => EngineTarget::anonymous(url),
            };
            let mut session = Session::new(client, target, game, orders);
            tokio::select! {
                report = run(&mut session, None, args.max_turns) => report,
                () = stop => Err(CheckError::Interrupted),
            }
        }
        (None, Some(command)) => {
            let token = EngineToken::new(format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ));
            let start_timeout = Duration::from_secs(args.start_timeout);
            let launched = Launched::new(&command, token, start_timeout, client.clone()).await?;
            let checked = async {
                let instance = launched.start("checked").await?;
                let engine = LaunchedEngine {
                    launched: &launched,
                    instance,
                };
                let target = launched.target(&engine.instance);
                let mut session = Session::new(client, target, game, orders);
                run(&mut session, Some(&engine), args.max_turns).await
            };
            let report = tokio::select! {
                report = checked => report,
                () = stop => Err(CheckError::Interrupted),
            };
            launched.shutdown().await;
            report
        }
        (None, None) => Err(CheckError::NoEngine),
    }
}

/// The whole check against the engine of `s`.
async fn run(
    s: &mut Session,
    engine: Option<&LaunchedEngine<'_>>,
    max_turns: u64,
) -> Result<Report, CheckError> {
    let endpoint = s.target.endpoint.clone();
    let unreachable = |Abort(reason)| CheckError::Unreachable {
        endpoint: endpoint.clone(),
        reason,
    };
    let health = s
        .call(RuleId::HealthReady, EngineRequest::healthz())
        .await
        .map_err(unreachable)?;
    let contract = setup::health(s, &health);
    let state = s
        .call(RuleId::StateBeforeInit, EngineRequest::state())
        .await
        .map_err(unreachable)?;
    if state.status() == 401 && s.target.token.is_none() {
        return Err(CheckError::TokenNeeded);
    }
    if state.raw.is_success() {
        return Err(CheckError::NotFresh(endpoint));
    }
    setup::state_before_init(s, &state);

    let outcome = play_game(s, engine, max_turns).await;
    if engine.is_none() {
        for rule in [
            RuleId::RestartResume,
            RuleId::DeterminismSeed,
            RuleId::LifecycleSigterm,
        ] {
            s.findings
                .skip(rule, "needs an engine the checker launches: use --launch");
        }
    }
    let unreached = outcome.err().map(|Abort(reason)| reason);
    Ok(Report {
        results: s.findings.verdict(unreached.as_deref()),
        contract,
        endpoint,
    })
}

/// The game, from init to the end; stops at the first thing that leaves no game to
/// check.
async fn play_game(
    s: &mut Session,
    engine: Option<&LaunchedEngine<'_>>,
    max_turns: u64,
) -> Result<(), Abort> {
    setup::refusals_before_init(s).await?;
    let state = setup::init(s).await?;
    let reports = play::all_reports(s, RuleId::ReportsTurn0, 0).await?;
    let mut played = Played {
        state,
        reports: [(0, reports)].into(),
    };
    play::missing_reports(s, 0).await?;
    setup::credential(s, &played.state).await?;
    orders::before_turn_one(s).await?;
    if let Some(engine) = engine {
        play::restart(s, engine, &played, "with orders pending for turn 1").await?;
    }
    play::turns(s, &mut played, max_turns).await?;
    play::finish(s, &played, max_turns).await?;
    play::reports_unchanged(s, RuleId::ReportsImmutable, &played, "at the end").await?;
    if let Some(engine) = engine {
        play::restart(s, engine, &played, "at the end").await?;
        play::determinism(s, engine, &played).await?;
        play::stop(s, engine).await;
    }
    Ok(())
}

/// `galaxy-cli engine check`: prints the report and returns the exit status.
pub async fn run_cli(args: CheckArgs) -> u8 {
    let stop = match galaxy_server::shutdown_signal() {
        Ok(signal) => until_signal(Some(signal)),
        Err(error) => {
            eprintln!(
                "galaxy-cli engine check: {error}; ctrl-c may leave a launched engine running"
            );
            until_signal(None)
        }
    };
    match check_until(args, stop).await {
        Ok(report) => {
            println!("{report}");
            if report.failed() { EXIT_FAILED } else { 0 }
        }
        Err(error) => {
            eprintln!("galaxy-cli engine check: {error}");
            error.exit_code()
        }
    }
}

/// Completes when `signal` does; never without one (its handlers could not be installed).
async fn until_signal(signal: Option<impl Future<Output = ()>>) {
    match signal {
        Some(signal) => signal.await,
        None => std::future::pending().await,
    }
}
