//! Shared helpers: the reference engine's binary, specs, and waiting for things.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use galaxy_core::domain::GameId;
use galaxy_core::domain::engine_auth::EngineTokenKey;
use galaxy_core::ports::{
    ContainerError, ContainerEvent, ContainerSpec, CreatedContainer, EngineClient, EngineInit,
    EngineLimits, EngineRace, EngineTarget,
};
use galaxy_engine_http::{ClientOptions, HttpEngineClient};
use uuid::Uuid;

/// The reference engine's binary, `galaxy-engine`.
///
/// `GALAXY_ENGINE_BIN` wins when set. Otherwise it is the one beside this test's own
/// profile directory (`target/debug/galaxy-engine`): `cargo test --workspace` and
/// `cargo nextest run --workspace` build it there (the engine crate has integration
/// tests, so cargo builds its binary). When it is missing (e.g. `cargo test -p
/// galaxy-process-runtime` on a clean tree) it is built once with `cargo build -p
/// galaxy-engine` into the same target directory.
pub fn engine_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("GALAXY_ENGINE_BIN") {
                return PathBuf::from(path);
            }
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().unwrap().parent().unwrap();
            let binary = profile_dir.join("galaxy-engine");
            if !binary.is_file() {
                build_engine(profile_dir);
            }
            assert!(binary.is_file(), "{} was not built", binary.display());
            binary
        })
        .clone()
}

fn build_engine(profile_dir: &Path) {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args(["build", "-p", "galaxy-engine", "--bin", "galaxy-engine"])
        .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap());
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        command.arg("--release");
    }
    let status = command.status().expect("cargo runs");
    assert!(status.success(), "building galaxy-engine failed");
}

/// The spec of one game's engine, labelled like the platform does.
pub fn spec(engine: &str) -> ContainerSpec {
    let game_id = GameId::from_uuid(Uuid::now_v7());
    ContainerSpec {
        name: format!("galaxy-game-{game_id}"),
        game_id,
        engine: engine.to_owned(),
        labels: BTreeMap::from([
            ("galaxy.backend".to_owned(), "1".to_owned()),
            ("galaxy.game_id".to_owned(), game_id.to_string()),
        ]),
        env: BTreeMap::from([("GALAXY_ENGINE_LOG".to_owned(), "debug".to_owned())]),
        token: token_key().token_for(game_id),
        limits: EngineLimits {
            memory_bytes: Some(64 << 20),
            cpus: Some(0.5),
            pids: Some(64),
        },
    }
}

/// The installation key of the tests: every game's token derives from it.
pub fn token_key() -> EngineTokenKey {
    EngineTokenKey::from_array(*b"process runtime tests, no secret")
}

/// How the platform calls the engine of `created`, a container of `spec`.
pub fn target(spec: &ContainerSpec, created: &CreatedContainer) -> EngineTarget {
    EngineTarget::new(created.engine_endpoint.clone(), spec.token.clone())
}

/// The platform's engine client.
pub fn client() -> HttpEngineClient {
    HttpEngineClient::new(ClientOptions::default())
}

/// Polls `/healthz` until it answers (as the runtime worker does) or 30 s pass.
pub async fn wait_healthy(client: &HttpEngineClient, target: &EngineTarget) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match client.healthz(target).await {
            Ok(()) => return,
            Err(error) if tokio::time::Instant::now() > deadline => {
                panic!("{} never became healthy: {error}", target.endpoint)
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A two-race init for `game_id`.
pub fn init(game_id: GameId) -> EngineInit {
    EngineInit {
        game_id: game_id.to_string(),
        seed: 7,
        settings: serde_json::json!({ "max_turns": 30 }),
        races: ["Red Dwarf", "Blue Giant"]
            .iter()
            .map(|name| EngineRace {
                race_name: (*name).to_owned(),
                player_id: Uuid::now_v7().to_string(),
            })
            .collect(),
    }
}

/// The next event whose action is `action`, skipping others; panics after 30 s.
pub async fn next_event(
    events: &mut BoxStream<'static, Result<ContainerEvent, ContainerError>>,
    action: &str,
) -> ContainerEvent {
    let wait = async {
        loop {
            let event = events.next().await.expect("event stream open").unwrap();
            if event.action == action {
                return event;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .unwrap_or_else(|_| panic!("no {action} event within 30 s"))
}

/// Polls `check` every 20 ms until it holds or 30 s pass.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends SIGKILL to `pid` (a crash, as far as any supervisor can tell).
pub fn kill_9(pid: u32) {
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
