//! Scheduler overhead: 10,000 running games in the in-memory runtime store, an in-process
//! fake engine that answers every turn at once, and [`TurnScheduler::tick`] driven by a
//! [`ManualClock`] standing at the games' due time, so every game is due.
//!
//! Measured beside a baseline that only calls the fake engine 10,000 times: turns per
//! second, process CPU time (`/proc/self/stat`, all threads) and resident memory per game
//! (`VmRSS` of `/proc/self/status` before and after the games are stored). Linux only.
//!
//! ```sh
//! cargo run --release -p galaxy-core --example scheduler_bench [-- GAMES [ROUNDS [PLAYERS]]]
//! ```
//!
//! With `PLAYERS` (default 0) approved players per game, every turn also lists the game's
//! applications and raises a turn-completed notification to them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::TimeDelta;
use galaxy_core::domain::application::{Application, ApplicationStatus};
use galaxy_core::domain::game::{EngineName, Game, GameName, GameSettings, GameStatus, Visibility};
use galaxy_core::domain::race_name::RaceName;
use galaxy_core::domain::runtime::{RuntimeBinding, RuntimeRecord, RuntimeStatus};
use galaxy_core::domain::schedule::TurnSchedule;
use galaxy_core::domain::{ApplicationId, GameId, Timestamp, UserId};
use galaxy_core::ports::{
    ApplicationInsert, ApplicationStore, Clock, EngineClient, EngineError, EngineInit, EngineState,
    EngineTarget, GameStore, MockContainerRuntime, NewNotification, Notifier, NotifyError,
    OrdersVerdict, RuntimeRecordStore, SecretGenerator,
};
use galaxy_core::service::runtime::{RuntimeConfig, RuntimePorts, TurnScheduler};
use galaxy_core::worker::Worker;
use galaxy_ports::memory::{MemoryLobbyStore, MemoryRuntimeStore, MemoryUserStore};
use galaxy_ports::system::{ManualClock, SeededSecretGenerator};

/// Games in the store (first argument).
const DEFAULT_GAMES: usize = 10_000;
/// Scheduled turns every game plays (second argument).
const DEFAULT_ROUNDS: u32 = 3;
/// Approved players per game (third argument).
const DEFAULT_PLAYERS: usize = 0;
/// Clock ticks per second of `/proc/self/stat` (`USER_HZ`, 100 on Linux).
const USER_HZ: f64 = 100.0;
/// Turns run daily at 18:00 UTC; the clock stands at each due instant in turn.
const SCHEDULE: &str = "0 18 * * *";

/// An engine that answers every call at once: a turn is the expected one, never the end.
#[derive(Default)]
struct InstantEngine {
    turns: AtomicU64,
}

#[async_trait]
impl EngineClient for InstantEngine {
    async fn healthz(&self, _target: &EngineTarget) -> Result<(), EngineError> {
        Ok(())
    }
    async fn init(
        &self,
        _target: &EngineTarget,
        _init: &EngineInit,
    ) -> Result<EngineState, EngineError> {
        Ok(state(0))
    }
    async fn run_turn(
        &self,
        _target: &EngineTarget,
        expected: u32,
    ) -> Result<EngineState, EngineError> {
        self.turns.fetch_add(1, Ordering::Relaxed);
        Ok(state(expected))
    }
    async fn submit_orders(
        &self,
        _target: &EngineTarget,
        _race: &str,
        _turn: u32,
        _orders: &serde_json::Value,
    ) -> Result<OrdersVerdict, EngineError> {
        Ok(OrdersVerdict {
            accepted: true,
            errors: Vec::new(),
        })
    }
    async fn report(
        &self,
        _target: &EngineTarget,
        _race: &str,
        _turn: u32,
    ) -> Result<serde_json::Value, EngineError> {
        Ok(serde_json::Value::Null)
    }
    async fn state(&self, _target: &EngineTarget) -> Result<EngineState, EngineError> {
        Ok(state(0))
    }
}

/// A running game's state after `turn`.
fn state(turn: u32) -> EngineState {
    EngineState {
        turn,
        finished: false,
        winner: None,
        standings: Vec::new(),
    }
}

/// Counts notifications and drops them (the turn-completed intents).
#[derive(Default)]
struct CountingNotifier(AtomicU64);

#[async_trait]
impl Notifier for CountingNotifier {
    async fn notify(&self, _notification: NewNotification) -> Result<(), NotifyError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Process CPU time (user + system, every thread) so far.
fn cpu_time() -> Result<Duration, String> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|e| e.to_string())?;
    // Fields after the command (which may hold spaces) start at field 3 (state).
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("no ) in /proc/self/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the state (field 3).
    let ticks = |i: usize| -> Result<f64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .ok_or_else(|| format!("no field {} in /proc/self/stat", i + 3))
    };
    Ok(Duration::from_secs_f64((ticks(11)? + ticks(12)?) / USER_HZ))
}

/// Resident memory (`VmRSS`) in KiB.
fn rss_kib() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmRSS in /proc/self/status".to_owned())
}

/// One measured run: turns, wall time, CPU time.
struct Measure {
    turns: u64,
    wall: Duration,
    cpu: Duration,
}

impl Measure {
    /// `name | turns | wall | wall per turn | turns/s | CPU | CPU per turn` as a table row.
    fn row(&self, name: &str) -> String {
        let turns = self.turns.max(1) as f64;
        format!(
            "| {name} | {} | {:.4} s | {:.3} µs | {:.0} | {:.2} s | {:.1} µs |",
            self.turns,
            self.wall.as_secs_f64(),
            self.wall.as_secs_f64() * 1e6 / turns,
            self.turns as f64 / self.wall.as_secs_f64().max(f64::EPSILON),
            self.cpu.as_secs_f64(),
            self.cpu.as_secs_f64() * 1e6 / turns,
        )
    }
}

/// Runs `work`, measuring wall and CPU time; `work` returns the turns it ran.
async fn measure<F, Fut>(work: F) -> Result<Measure, String>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<u64, String>>,
{
    let (cpu, started) = (cpu_time()?, Instant::now());
    let turns = work().await?;
    Ok(Measure {
        turns,
        wall: started.elapsed(),
        cpu: cpu_time()?.saturating_sub(cpu),
    })
}

/// Stores `games` running games, each bound to a (fake) engine and due at `due`.
async fn store_games(
    games: &MemoryLobbyStore,
    records: &MemoryRuntimeStore,
    ids: &SeededSecretGenerator,
    count: usize,
    players: usize,
    now: Timestamp,
    due: Timestamp,
) -> Result<(), String> {
    let host = UserId::from_uuid(ids.uuid());
    let engine = EngineName::parse("reference").map_err(|e| e.to_string())?;
    let settings = GameSettings {
        name: GameName::parse("Bench game").map_err(|e| e.to_string())?,
        min_players: 2,
        max_players: 8,
        enrollment_deadline: now + TimeDelta::days(3),
        schedule: TurnSchedule::parse(SCHEDULE).map_err(|e| e.to_string())?,
        engine: engine.clone(),
        auto_approve: false,
        visibility: Visibility::Public,
        engine_settings: galaxy_core::domain::game::EngineSettings::default(),
        reveal_reports_after_finish: true,
        pbem: Default::default(),
    };
    for i in 0..count {
        let id = GameId::from_uuid(ids.uuid());
        let mut game = Game::new(id, host, settings.clone(), now);
        game.status = GameStatus::Running;
        games.insert_game(&game).await.map_err(|e| e.to_string())?;
        for p in 0..players {
            let race = RaceName::parse(&format!("Race {i} {p}")).map_err(|e| e.to_string())?;
            let user = UserId::from_uuid(ids.uuid());
            let id = ApplicationId::from_uuid(ids.uuid());
            let mut application = Application::new(id, game.id, user, race, now);
            application.status = ApplicationStatus::Approved;
            // Bench players join one game each, so no limit applies.
            let inserted = games
                .insert_application(&application, u32::MAX)
                .await
                .map_err(|e| e.to_string())?;
            if inserted != ApplicationInsert::Inserted {
                return Err(format!("application not inserted: {inserted:?}"));
            }
        }
        let mut record = RuntimeRecord::new(id, engine.clone(), now);
        record.status = RuntimeStatus::Running;
        record.binding = Some(RuntimeBinding {
            container_id: format!("galaxy-game-{i}"),
            engine_endpoint: format!("http://galaxy-game-{i}:8080"),
        });
        record.next_turn_at = Some(due);
        records
            .insert_record(&record)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Ticks until a pass claims nothing and no turn is left in flight (the scheduler runs its
/// turns in the background); returns the games claimed.
async fn drain(scheduler: &TurnScheduler) -> Result<u64, String> {
    let mut handled = 0;
    loop {
        let report = scheduler.tick().await.map_err(|e| e.to_string())?;
        if report.handled == 0 && scheduler.drain().await == 0 {
            return Ok(handled);
        }
        handled += report.handled as u64;
    }
}

async fn run() -> Result<String, String> {
    let mut args = std::env::args().skip(1);
    let games: usize = match args.next() {
        Some(n) => n
            .parse()
            .map_err(|_| format!("GAMES must be a number, got {n}"))?,
        None => DEFAULT_GAMES,
    };
    let rounds: u32 = match args.next() {
        Some(n) => n
            .parse()
            .map_err(|_| format!("ROUNDS must be a number, got {n}"))?,
        None => DEFAULT_ROUNDS,
    };
    let players: usize = match args.next() {
        Some(n) => n
            .parse()
            .map_err(|_| format!("PLAYERS must be a number, got {n}"))?,
        None => DEFAULT_PLAYERS,
    };

    // Baseline: the fake engine alone, `games` calls.
    let alone: Arc<dyn EngineClient> = Arc::new(InstantEngine::default());
    let target = EngineTarget::anonymous("http://baseline:8080");
    let baseline = measure(|| async {
        for i in 0..games {
            let target = std::hint::black_box(&target);
            let state = alone
                .run_turn(target, u32::try_from(i).unwrap_or(u32::MAX))
                .await
                .map_err(|e| e.to_string())?;
            std::hint::black_box(state);
        }
        Ok(games as u64)
    })
    .await?;
    let engine = Arc::new(InstantEngine::default());

    let clock = Arc::new(ManualClock::at_fixed_start());
    let start = clock.now();
    let schedule = TurnSchedule::parse(SCHEDULE).map_err(|e| e.to_string())?;
    let lobby = Arc::new(MemoryLobbyStore::new());
    let runtime = Arc::new(MemoryRuntimeStore::default());
    let ids = Arc::new(SeededSecretGenerator::new(7));
    let notifier = Arc::new(CountingNotifier::default());
    let first_due = schedule
        .next_after(start)
        .ok_or("the schedule never fires")?;

    let rss_before = rss_kib()?;
    store_games(&lobby, &runtime, &ids, games, players, start, first_due).await?;
    let rss_after = rss_kib()?;

    let ports = RuntimePorts {
        games: lobby.clone(),
        applications: lobby.clone(),
        users: Arc::new(MemoryUserStore::new()),
        records: runtime.clone(),
        jobs: runtime.clone(),
        health: runtime.clone(),
        archive: Arc::new(galaxy_ports::memory::MemoryPlayStore::default()),
        orders: Arc::new(galaxy_ports::memory::MemoryPlayStore::default()),
        pbem: Arc::new(galaxy_ports::memory::MemoryPbemStore::beside(&lobby)),
        // A turn that does not finish the game never touches the containers.
        containers: Arc::new(MockContainerRuntime::new()),
        engine: engine.clone(),
        notifier: notifier.clone(),
        clock: clock.clone(),
        ids: ids.clone(),
        inbound: None,
    };
    let mut out = format!(
        "{games} running games with {players} player(s), {rounds} scheduled turn(s) each, in-memory stores, instant fake engine\n\n\
         | run | turns | wall | wall per turn | turns/s | CPU | CPU per turn |\n|---|---|---|---|---|---|---|\n{}\n",
        baseline.row("baseline: fake engine alone")
    );
    for (batch, concurrency) in [(32, 8), (256, 64)] {
        let config = RuntimeConfig {
            turn_batch: batch,
            turn_concurrency: concurrency,
            ..RuntimeConfig::default()
        };
        let scheduler = TurnScheduler::new(ports.clone(), config);
        let mut due = runtime
            .get_record(lobby_first(&runtime).await?)
            .await
            .map_err(|e| e.to_string())?
            .next_turn_at
            .ok_or("no game is scheduled")?;
        let run = measure(|| async {
            let mut turns = 0;
            for _ in 0..rounds {
                clock.set(due);
                turns += drain(&scheduler).await?;
                due = schedule.next_after(due).ok_or("the schedule ends")?;
            }
            Ok(turns)
        })
        .await?;
        if run.turns != games as u64 * u64::from(rounds) {
            return Err(format!(
                "expected {} turns, the scheduler ran {}",
                games as u64 * u64::from(rounds),
                run.turns
            ));
        }
        out.push_str(&run.row(&format!(
            "TurnScheduler::tick (batch {batch}, concurrency {concurrency})"
        )));
        out.push('\n');
    }
    let per_game = (rss_after.saturating_sub(rss_before)) as f64 * 1024.0 / games.max(1) as f64;
    out.push_str(&format!(
        "\nRSS {rss_before} KiB before, {rss_after} KiB after storing the games: {per_game:.0} bytes per game \
         (game, runtime record, applications); RSS at the end {} KiB; scheduler engine calls {}, turn notifications {}",
        rss_kib()?,
        engine.turns.load(Ordering::Relaxed),
        notifier.0.load(Ordering::Relaxed),
    ));
    Ok(out)
}

/// The id of any stored record (all games share one due time).
async fn lobby_first(runtime: &MemoryRuntimeStore) -> Result<GameId, String> {
    let page = galaxy_core::domain::page::PageRequest::first(1).map_err(|e| e.to_string())?;
    runtime
        .list_records(None, &page)
        .await
        .map_err(|e| e.to_string())?
        .items
        .first()
        .map(|r| r.game_id)
        .ok_or_else(|| "no records".to_owned())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(table) => {
            println!("{table}");
            std::process::ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("scheduler_bench: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
