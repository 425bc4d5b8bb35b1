//! `galaxy-cli demo`: a whole game played by bot players against a dev server.
//!
//! Without `--url` the dev server runs in this process (the `galaxy_server` library in dev
//! mode: in-memory stores, mail as `.eml` files in a temporary directory, engines as child
//! processes of the process runtime). With `--url` it talks HTTP to a running
//! `galaxy-server dev` and reads login codes from its mail directory (`--mail-dir`).
//!
//! The flow uses only the HTTP API: `admin@localhost` and the bots log in, the first bot
//! hosts a game, every bot applies and is approved, the game is closed and started; then,
//! turn by turn, each bot reads its report, computes orders with
//! [`galaxy_engine::bot::orders`] and submits them, and the admin forces the next turn,
//! until the game is finished or `--turns` turns were played. The final standings come
//! from the API: the game's result, or the last turn of its history.

mod http;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use galaxy_engine::game::report::Report;
use galaxy_server::{Config, Listeners, dev};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use http::{Api, Caller};

/// How long a started game may take to reach `running`.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Race names of the bots, in order.
const RACES: [&str; 8] = [
    "Aldebarans",
    "Betelgeusians",
    "Capellans",
    "Denebians",
    "Eridanians",
    "Fomalhautians",
    "Gemmans",
    "Hadarians",
];

/// How long a forced turn is retried while a scheduled turn holds the game.
const FORCE_TIMEOUT: Duration = Duration::from_secs(60);

/// Arguments of `galaxy-cli demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// A running dev server (`galaxy-server dev`); without it one runs in this process.
    #[arg(long, requires = "mail_dir")]
    url: Option<String>,
    /// The dev server's mail directory (`$GALAXY_DATA_DIR/mail`), where login codes are
    /// read from; required with `--url`.
    #[arg(long, requires = "url")]
    mail_dir: Option<PathBuf>,
    /// Bot players.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=8))]
    players: u32,
    /// Most turns to force; the game may finish earlier (the reference engine ends after
    /// its `max_turns`, 50 by default).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    turns: u32,
    /// The reference engine binary for the in-process server (default: `galaxy-engine`
    /// beside this binary, else this binary's own copy of the engine).
    #[arg(long, env = "GALAXY_ENGINE_BIN")]
    engine_bin: Option<PathBuf>,
}

/// A dev server running in this process, stopped by [`LocalServer::stop`].
struct LocalServer {
    /// Holds the data directory (stores, mail, engine data) for the server's lifetime.
    _data: tempfile::TempDir,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<Result<galaxy_server::ShutdownReport, galaxy_server::AppError>>,
}

impl LocalServer {
    /// Stops the server and waits until its workers and engines are gone.
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.served
            .await
            .context("the dev server task failed")?
            .map(drop)
            .context("the dev server stopped with an error")
    }
}

/// Runs the demo; the standings are the returned message.
pub async fn run(args: DemoArgs) -> anyhow::Result<String> {
    match &args.url {
        Some(url) => {
            // Clap requires it with --url; said again should the library be called so.
            let mail_dir = args.mail_dir.clone().context(
                "--mail-dir (the dev server's $GALAXY_DATA_DIR/mail) is needed with --url",
            )?;
            let api = Api::new(url);
            api.ready()
                .await
                .with_context(|| format!("the server at {url} is not ready"))?;
            play(&api, &mail_dir, &args).await
        }
        None => {
            // Installed before the server starts its engines: a ctrl-c then stops the
            // server (and with it the engines, which run in process groups of their own
            // that the terminal's signal does not reach) instead of killing this process
            // and leaving them running.
            let interrupted =
                galaxy_server::shutdown_signal().context("cannot install the signal handlers")?;
            let (server, api, mail_dir) = start_local(&args).await?;
            let result = tokio::select! {
                result = play(&api, &mail_dir, &args) => result,
                () = interrupted => Err(anyhow!("interrupted; the demo's server and engines are stopped")),
            };
            let stopped = server.stop().await;
            let message = result?;
            stopped?;
            Ok(message)
        }
    }
}

/// The engine command for the process runtime: `--engine-bin`/`GALAXY_ENGINE_BIN`, else
/// the process runtime's default (`galaxy-engine` beside this binary, else this binary's
/// hidden `reference-engine` subcommand).
fn engine_command(args: &DemoArgs) -> String {
    let configured = args
        .engine_bin
        .as_ref()
        .filter(|p| !p.as_os_str().is_empty());
    match configured {
        Some(path) => galaxy_server::config::runtime::quote(path),
        None => galaxy_server::config::runtime::self_engine_command(),
    }
}

/// Starts a dev-mode server on a loopback port with fast workers.
async fn start_local(args: &DemoArgs) -> anyhow::Result<(LocalServer, Api, PathBuf)> {
    let data = tempfile::tempdir().context("cannot make a data directory")?;
    let config = Config::builder()
        .set("GALAXY_DATA_DIR", data.path().display().to_string())
        .set("GALAXY_MAIL_INTERVAL", "50ms")
        .set("GALAXY_RUNTIME_INTERVAL", "100ms")
        .set("GALAXY_HEALTH_INTERVAL", "1s")
        .set("GALAXY_RUNTIME", "process")
        .set(
            "GALAXY_PROCESS_ENGINES",
            format!("reference={}", engine_command(args)),
        )
        .build()
        .context("cannot configure the in-process dev server")?;
    let mail_dir = dev::mail_dir(&config);
    let app = dev::build(config)
        .await
        .context("cannot build the in-process dev server")?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on loopback")?;
    let listeners = Listeners::new(listener);
    let addr = listeners
        .http_addr()
        .context("the dev server's listener has no address")?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(app.serve(listeners, async {
        let _ = stopped.await;
    }));
    let server = LocalServer {
        _data: data,
        stop,
        served,
    };
    let api = Api::new(&format!("http://{addr}"));
    let started = Instant::now();
    while let Err(why) = api.ready().await {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = server.stop().await;
            return Err(why.context("the in-process dev server did not become ready"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((server, api, mail_dir))
}

/// One bot: its session and race.
struct Bot {
    caller: Caller,
    race: &'static str,
}

/// Plays the whole game; returns the standings as text.
async fn play(api: &Api, mail_dir: &Path, args: &DemoArgs) -> anyhow::Result<String> {
    let admin = api.log_in(mail_dir, dev::DEV_ADMIN).await?;
    let mut bots = Vec::new();
    for (i, race) in RACES.iter().take(args.players as usize).enumerate() {
        let caller = api
            .log_in(mail_dir, &format!("bot{}@example.org", i + 1))
            .await?;
        bots.push(Bot { caller, race });
    }
    let host = &bots.first().context("no bots")?.caller;

    let (game, games) = host_game(host, &bots).await?;
    let mut turn = wait_running(&admin, host, &game, &games).await?;
    println!(
        "game {game} is running with {} bots; playing up to {} turns",
        bots.len(),
        args.turns
    );

    let bar = ProgressBar::new(u64::from(args.turns)).with_style(
        ProgressStyle::with_template("{spinner} turn {pos}/{len} [{bar:30}] {elapsed} {msg}")
            .context("the progress bar's template")?
            .progress_chars("=> "),
    );
    let mut last = reports(&bots, &games, turn).await?;
    let mut played = 0;
    while played < args.turns && !last.iter().any(|r| r.finished) {
        bar.set_message("bots writing orders");
        let mut refused = 0;
        for (bot, report) in bots.iter().zip(&last) {
            let orders = galaxy_engine::bot::orders(report);
            let body = json!({ "turn": turn + 1, "orders": orders });
            let verdict = bot
                .caller
                .expect("PUT", &format!("{games}/orders"), Some(&body), 200)
                .await?;
            if verdict["accepted"] != true {
                refused += 1;
                bar.println(format!(
                    "turn {}: orders of {} refused: {}",
                    turn + 1,
                    bot.race,
                    verdict["errors"]
                ));
            }
        }
        bar.set_message(format!("running turn {} ({refused} refused)", turn + 1));
        turn = force(&admin, &game, turn + 1).await?;
        played += 1;
        bar.inc(1);
        // Reports come from the platform's archive: readable even once the game is over
        // and its engine gone.
        last = reports(&bots, &games, turn).await?;
    }
    bar.finish_and_clear();
    let game_view = host.expect("GET", &games, None, 200).await?;
    let history = host
        .expect("GET", &format!("{games}/turns"), None, 200)
        .await?;
    Ok(standings(&game_view, &history, played))
}

/// The first bot hosts a game, every bot applies and is approved, enrollment closes and
/// the game starts; returns the game id and its path.
async fn host_game(host: &Caller, bots: &[Bot]) -> anyhow::Result<(String, String)> {
    let players = bots.len();
    let created = host
        .expect(
            "POST",
            "/api/v1/user/games",
            Some(&json!({
                "name": "Bot demo",
                "min_players": players,
                "max_players": players,
                "enrollment_deadline": "2099-01-01T00:00:00Z",
                // Yearly: the demo forces every turn itself.
                "turn_schedule": "0 0 1 1 *",
            })),
            201,
        )
        .await?;
    let game = created["id"]
        .as_str()
        .with_context(|| format!("no id in the new game {created}"))?
        .to_owned();
    let games = format!("/api/v1/user/games/{game}");
    host.expect("POST", &format!("{games}/open"), None, 200)
        .await?;
    for bot in bots {
        let application = bot
            .caller
            .expect(
                "POST",
                &format!("{games}/applications"),
                Some(&json!({ "race_name": bot.race })),
                201,
            )
            .await?;
        let id = application["id"]
            .as_str()
            .with_context(|| format!("no id in the application {application}"))?;
        host.expect(
            "POST",
            &format!("{games}/applications/{id}/approve"),
            None,
            200,
        )
        .await?;
    }
    // The approval that fills the game closes enrollment by itself.
    if game_status(host, &games).await? == "enrollment_open" {
        host.expect("POST", &format!("{games}/close"), None, 200)
            .await?;
    }
    host.expect("POST", &format!("{games}/start"), None, 200)
        .await?;
    Ok((game, games))
}

/// The game's lobby status.
async fn game_status(caller: &Caller, games: &str) -> anyhow::Result<String> {
    let game = caller.expect("GET", games, None, 200).await?;
    Ok(game["status"].as_str().unwrap_or_default().to_owned())
}

/// Waits until the game runs; returns its current turn.
async fn wait_running(
    admin: &Caller,
    host: &Caller,
    game: &str,
    games: &str,
) -> anyhow::Result<u32> {
    let started = Instant::now();
    loop {
        match game_status(host, games).await?.as_str() {
            "running" => break,
            "start_failed" => {
                let view = host.expect("GET", games, None, 200).await?;
                let reason = view["status_reason"].as_str().unwrap_or("no reason given");
                return Err(anyhow!("game {game} failed to start: {reason}"));
            }
            _ if started.elapsed() > START_TIMEOUT => {
                return Err(anyhow!("game {game} did not run within {START_TIMEOUT:?}"));
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let record = admin
        .expect(
            "GET",
            &format!("/api/v1/admin/runtime/records/{game}"),
            None,
            200,
        )
        .await?;
    current_turn(&record)
}

/// `current_turn` of a runtime record.
fn current_turn(record: &Value) -> anyhow::Result<u32> {
    record["current_turn"]
        .as_u64()
        .and_then(|t| u32::try_from(t).ok())
        .with_context(|| format!("no current_turn in {record}"))
}

/// Forces `turn` (retrying while another run holds the game); returns the turn the game
/// is at afterwards. The game runs early turns (every bot's orders accepted): when the
/// scheduler played `turn` first, forcing is refused as `turn_not_next` and the game is
/// where it should be, rather than a second turn being forced with no orders.
async fn force(admin: &Caller, game: &str, turn: u32) -> anyhow::Result<u32> {
    let path = format!("/api/v1/admin/games/{game}/force-next-turn?turn={turn}");
    let started = Instant::now();
    loop {
        match admin.call("POST", &path, None).await? {
            (200, record) => return current_turn(&record),
            (409, error) if error["error"]["code"] == "turn_not_next" => {
                let record = admin
                    .expect(
                        "GET",
                        &format!("/api/v1/admin/runtime/records/{game}"),
                        None,
                        200,
                    )
                    .await?;
                let now = current_turn(&record)?;
                if now < turn {
                    return Err(anyhow!(
                        "force-next-turn: turn {turn} is not next, yet the game is at turn {now}"
                    ));
                }
                return Ok(now);
            }
            (409, error)
                if error["error"]["code"] == "turn_in_progress"
                    && started.elapsed() < FORCE_TIMEOUT =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (status, body) => return Err(anyhow!("force-next-turn: {status} {body}")),
        }
    }
}

/// Every bot's report of `turn`, in the bots' order.
async fn reports(bots: &[Bot], games: &str, turn: u32) -> anyhow::Result<Vec<Report>> {
    let mut reports = Vec::with_capacity(bots.len());
    for bot in bots {
        let body = bot
            .caller
            .expect("GET", &format!("{games}/reports/{turn}"), None, 200)
            .await?;
        let report: Report = serde_json::from_value(body)
            .with_context(|| format!("the turn-{turn} report of {} is not a report", bot.race))?;
        reports.push(report);
    }
    Ok(reports)
}

/// The standings as a table, best score first, from the API: the game's `result` once it
/// is finished, else the standings of the last turn in its history.
fn standings(game: &Value, history: &Value, played: u32) -> String {
    let status = game["status"].as_str().unwrap_or("unknown");
    let turn = game["current_turn"].as_u64().unwrap_or_default();
    let finished = game["result"].is_object();
    let rows = if finished {
        game["result"]["standings"].as_array()
    } else {
        history["items"]
            .as_array()
            .and_then(|turns| turns.last())
            .and_then(|last| last["standings"].as_array())
    };
    let mut rows: Vec<(&str, f64, bool)> = rows
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|row| {
            (
                row["race"].as_str().unwrap_or("?"),
                row["score"].as_f64().unwrap_or_default(),
                row["alive"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let mut out =
        format!("final standings after turn {turn} ({played} turn(s) played, game {status}):\n");
    out.push_str(&format!(
        "{:>4}  {:<16} {:>10}  {}\n",
        "rank", "race", "score", "alive"
    ));
    for (rank, (race, score, alive)) in rows.iter().enumerate() {
        out.push_str(&format!(
            "{:>4}  {:<16} {:>10.1}  {}\n",
            rank + 1,
            race,
            score,
            if *alive { "yes" } else { "no" }
        ));
    }
    match (game["result"]["winner"].as_str(), finished) {
        (Some(winner), _) => out.push_str(&format!("winner: {winner}")),
        (None, true) => out.push_str("no winner (a tie for first place)"),
        (None, false) => out.push_str("the game goes on: no winner yet"),
    }
    out
}

/// Serves the reference engine from `GALAXY_ENGINE_ADDR`, `GALAXY_ENGINE_DATA_DIR` and
/// `GALAXY_ENGINE_TOKEN` until SIGTERM or ctrl-c (what the process runtime runs when no
/// `galaxy-engine` binary is found).
pub async fn serve_engine() -> anyhow::Result<()> {
    let config = galaxy_engine::Config::from_vars(|k| std::env::var(k).ok())
        .context("the engine's configuration")?;
    galaxy_engine::serve_config(config, galaxy_engine::shutdown_signal())
        .await
        .context("the reference engine stopped with an error")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn standings_are_ranked_by_score() {
        let game = json!({
            "status": "finished", "current_turn": 7,
            "result": {
                "winner": "B", "finished_at": "2030-01-01T00:00:00Z",
                "standings": [
                    {"race": "A", "alive": true, "score": 1.0},
                    {"race": "B", "alive": true, "score": 9.0}
                ]
            }
        });
        let table = standings(&game, &json!({"items": []}), 7);
        let b = table.find("   1  B").unwrap();
        let a = table.find("   2  A").unwrap();
        assert!(b < a, "{table}");
        assert!(
            table.starts_with("final standings after turn 7 (7 turn(s) played, game finished)")
        );
        assert!(table.ends_with("winner: B"), "{table}");
    }

    #[test]
    fn a_running_game_shows_its_last_turns_standings() {
        let game = json!({"status": "running", "current_turn": 2, "result": null});
        let history = json!({"items": [
            {"turn": 1, "standings": [{"race": "A", "alive": true, "score": 1.0}]},
            {"turn": 2, "standings": [{"race": "A", "alive": true, "score": 3.0}]}
        ]});
        let table = standings(&game, &history, 2);
        assert!(table.contains("3.0"), "{table}");
        assert!(
            table.ends_with("the game goes on: no winner yet"),
            "{table}"
        );
    }
}
