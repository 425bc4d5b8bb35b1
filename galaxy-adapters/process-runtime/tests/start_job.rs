//! The platform's start job on the process runtime: an engine that prints its lines and
//! exits non-zero fails its game's start as soon as its restarts are spent, long before
//! the 60 s `/healthz` deadline, with the exit code and the engine's last lines of output
//! in the reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::TimeDelta;
use galaxy_core::domain::game::{EngineName, Game, GameName, GameSettings, GameStatus, Visibility};
use galaxy_core::domain::runtime::{JobKind, JobStatus, RuntimeJob, RuntimeStatus};
use galaxy_core::domain::schedule::TurnSchedule;
use galaxy_core::domain::{GameId, JobId, UserId};
use galaxy_core::ports::{
    Clock, ContainerRuntime, GameStore, NewNotification, Notifier, NotifyError, RuntimeJobStore,
    RuntimeRecordStore,
};
use galaxy_core::service::runtime::{
    EngineRegistry, RuntimeConfig, RuntimePorts, StartWorker, container_name,
};
use galaxy_core::worker::Worker;
use galaxy_engine_http::{ClientOptions, HttpEngineClient};
use galaxy_ports::memory::{MemoryLobbyStore, MemoryRuntimeStore, MemoryUserStore};
use galaxy_ports::system::{OsSecretGenerator, SystemClock};
use galaxy_process_runtime::{ProcessRuntime, ProcessRuntimeConfig, RestartPolicy};
use uuid::Uuid;

/// Far longer than the test may take.
const HEALTHZ_DEADLINE: Duration = Duration::from_secs(60);

/// Drops every notification (the start's reason is read from the game's history).
struct Quiet;

#[async_trait]
impl Notifier for Quiet {
    async fn notify(&self, _notification: NewNotification) -> Result<(), NotifyError> {
        Ok(())
    }
}

/// An engine that warms up for 25 lines, complains on stderr and exits with 3.
fn crashing_engine(dir: &std::path::Path) -> String {
    let script = dir.join("crashing-engine.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n\
         i=1\n\
         while [ $i -le 25 ]; do echo \"warming up $i\"; i=$((i+1)); done\n\
         echo 'boom: the map file is missing' >&2\n\
         exit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.display().to_string()
}

#[tokio::test]
async fn a_start_whose_engine_exits_fails_at_once_with_the_exit_code_and_output() {
    let root = tempfile::tempdir().unwrap();
    let mut runtime_config = ProcessRuntimeConfig::new(root.path().join("engines"));
    runtime_config.restart = RestartPolicy {
        max_restarts: 2,
        delay: Duration::from_millis(50),
    };
    let runtime = ProcessRuntime::new(runtime_config).unwrap();
    let games = Arc::new(MemoryLobbyStore::new());
    let store = Arc::new(MemoryRuntimeStore::default());
    let clock = Arc::new(SystemClock);
    let ports = RuntimePorts {
        games: games.clone(),
        applications: games.clone(),
        users: Arc::new(MemoryUserStore::new()),
        records: store.clone(),
        jobs: store.clone(),
        health: store.clone(),
        archive: Arc::new(galaxy_ports::memory::MemoryPlayStore::default()),
        orders: Arc::new(galaxy_ports::memory::MemoryPlayStore::default()),
        pbem: Arc::new(galaxy_ports::memory::MemoryPbemStore::beside(&games)),
        containers: Arc::new(runtime.clone()),
        engine: Arc::new(HttpEngineClient::new(ClientOptions::default())),
        notifier: Arc::new(Quiet),
        clock: clock.clone(),
        ids: Arc::new(OsSecretGenerator),
        inbound: None,
    };
    let engine = crashing_engine(root.path());
    let config = RuntimeConfig {
        engines: EngineRegistry::parse(&format!("reference={engine}")).unwrap(),
        healthz_deadline: HEALTHZ_DEADLINE,
        healthz_poll_interval: Duration::from_millis(50),
        ..RuntimeConfig::default()
    };

    let now = clock.now();
    let settings = GameSettings {
        name: GameName::parse("Crash Course").unwrap(),
        min_players: 2,
        max_players: 4,
        enrollment_deadline: now + TimeDelta::days(1),
        schedule: TurnSchedule::parse("0 18 * * *").unwrap(),
        engine: EngineName::reference(),
        auto_approve: false,
        visibility: Visibility::Private,
        engine_settings: galaxy_core::domain::game::EngineSettings::default(),
        reveal_reports_after_finish: true,
        pbem: Default::default(),
    };
    let game_id = GameId::from_uuid(Uuid::now_v7());
    let mut game = Game::new(game_id, UserId::from_uuid(Uuid::now_v7()), settings, now);
    game.status = GameStatus::Starting;
    games.insert_game(&game).await.unwrap();
    let job = RuntimeJob::new(
        JobId::from_uuid(Uuid::now_v7()),
        game_id,
        JobKind::Start,
        format!("start:{game_id}:0"),
        now,
    );
    store.enqueue_job(&job).await.unwrap();

    let worker = StartWorker::new(ports, config);
    tokio::time::timeout(Duration::from_secs(20), worker.run_until_idle(5))
        .await
        .expect("the start failed long before the /healthz deadline")
        .unwrap();

    assert_eq!(
        games.get_game(game_id).await.unwrap().status,
        GameStatus::StartFailed
    );
    let history = games.game_transitions(game_id).await.unwrap();
    let reason = history.last().unwrap().reason.clone().unwrap();
    assert!(reason.contains("exited with code 3"), "{reason}");
    assert!(reason.contains("warming up 25"), "{reason}");
    assert!(
        reason.ends_with("boom: the map file is missing"),
        "{reason}"
    );
    let job = store.get_job(job.id).await.unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(
        store.get_record(game_id).await.unwrap().status,
        RuntimeStatus::Failed
    );

    // The engine's container: exited for good after its two restarts.
    let name = container_name(game_id);
    let info = runtime.inspect(&name).await.unwrap();
    assert_eq!(
        (info.state.as_str(), info.exit_code, info.restart_count),
        ("exited", Some(3), 2)
    );
    let tail = runtime.logs(&name, 2).await.unwrap();
    assert_eq!(tail, ["warming up 25", "boom: the map file is missing"]);
}
