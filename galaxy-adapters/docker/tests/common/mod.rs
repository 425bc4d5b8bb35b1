//! Shared helpers of the real-daemon tests: connecting (or skipping), the engine image,
//! labelled specs, cleanup that also runs on failure, waiting.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use galaxy_core::domain::GameId;
use galaxy_core::domain::engine_auth::EngineTokenKey;
use galaxy_core::ports::{
    ContainerError, ContainerEvent, ContainerSpec, CreatedContainer, EngineClient, EngineInit,
    EngineLimits, EngineRace, EngineTarget,
};
use galaxy_docker::{DockerConfig, DockerRuntime, image};
use galaxy_engine_http::{ClientOptions, HttpEngineClient};
use uuid::Uuid;

/// The label that marks what a test made, valued with the test's name.
pub const TEST_LABEL: &str = "galaxy.test";

/// The repository the tests build the reference engine image under; the tag is
/// `test-<hash of the binary and the Dockerfile>`, so test runs of different builds on one
/// daemon (other checkouts) never replace each other's image.
pub const TEST_REPOSITORY: &str = "galaxy-engine";

/// A runtime on the local daemon, or `None` (with the reason printed) when no daemon
/// answers and `GALAXY_REQUIRE_DOCKER` is unset; with it set, no daemon is a failure.
pub async fn runtime_or_skip(config: DockerConfig) -> Option<DockerRuntime> {
    match DockerRuntime::connect(config).await {
        Ok(runtime) => Some(runtime),
        Err(error) if std::env::var_os("GALAXY_REQUIRE_DOCKER").is_some() => {
            panic!("GALAXY_REQUIRE_DOCKER is set but Docker is not usable: {error}")
        }
        Err(error) => {
            eprintln!(
                "SKIPPED: no Docker daemon ({error}); start dockerd (scripts/docker.sh) or set GALAXY_REQUIRE_DOCKER=1 to fail instead"
            );
            None
        }
    }
}

/// The static reference engine binary: `GALAXY_ENGINE_STATIC_BIN` when set, else
/// `<target>/static/x86_64-unknown-linux-gnu/release/galaxy-engine` (where
/// `galaxy-cli engine image` and scripts/docker.sh build it), built here when missing.
pub async fn static_engine_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("GALAXY_ENGINE_STATIC_BIN") {
        return PathBuf::from(path);
    }
    // target/<profile>/deps/<this test> -> target
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap().to_owned();
    let static_dir = target.join("static");
    let binary = image::static_binary_path(&static_dir);
    if binary.is_file() {
        return binary;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    image::build_static_engine(&workspace, &static_dir)
        .await
        .unwrap()
}

/// Builds the reference engine image as `galaxy-cli engine image` does, tagged
/// `galaxy-engine:test-<hash>` (see [`TEST_REPOSITORY`]); `GALAXY_TEST_ENGINE_IMAGE`
/// names an image already built instead (e.g. `galaxy-engine:0.2`), which saves the
/// static build of the engine.
pub async fn engine_image(docker: &Docker) -> String {
    use std::hash::{Hash, Hasher};
    if let Ok(image) = std::env::var("GALAXY_TEST_ENGINE_IMAGE") {
        return image;
    }
    let binary = static_engine_binary().await;
    let mut hasher = std::hash::DefaultHasher::new();
    std::fs::read(&binary).unwrap().hash(&mut hasher);
    image::dockerfile().hash(&mut hasher);
    let tag = format!("{TEST_REPOSITORY}:test-{:016x}", hasher.finish());
    image::build_engine_image(docker, &binary, &tag)
        .await
        .unwrap();
    tag
}

/// The installation key of the tests: every game's token derives from it.
pub fn token_key() -> EngineTokenKey {
    EngineTokenKey::from_array(*b"galaxy docker tests, not secret!")
}

/// A game's spec as the platform makes it, plus the test label.
pub fn spec(test: &str, engine: &str) -> ContainerSpec {
    let game_id = GameId::from_uuid(Uuid::now_v7());
    ContainerSpec {
        name: format!("galaxy-game-{game_id}"),
        game_id,
        engine: engine.to_owned(),
        labels: BTreeMap::from([
            ("galaxy.backend".to_owned(), "1".to_owned()),
            ("galaxy.game_id".to_owned(), game_id.to_string()),
            (TEST_LABEL.to_owned(), test.to_owned()),
        ]),
        env: BTreeMap::new(),
        token: token_key().token_for(game_id),
        limits: EngineLimits {
            memory_bytes: Some(128 << 20),
            cpus: Some(0.5),
            pids: Some(64),
        },
    }
}

/// How the platform calls the engine of `created`, a container of `spec`.
pub fn target(spec: &ContainerSpec, created: &CreatedContainer) -> EngineTarget {
    EngineTarget::new(created.engine_endpoint.clone(), spec.token.clone())
}

/// Removes the containers, networks and volumes labelled `galaxy.test=<test>`: at the
/// start of a test (leftovers of a run that died) and, through [`Cleanup`], at its end,
/// pass or fail.
pub async fn remove_labelled(docker: &Docker, test: &str) {
    let filters = HashMap::from([("label", vec![format!("{TEST_LABEL}={test}")])]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    for summary in docker
        .list_containers(Some(options))
        .await
        .unwrap_or_default()
    {
        let force = RemoveContainerOptionsBuilder::default().force(true).build();
        let id = summary.id.unwrap_or_default();
        let _ = docker.remove_container(&id, Some(force)).await;
    }
    let options = bollard::query_parameters::ListNetworksOptionsBuilder::default()
        .filters(&filters)
        .build();
    for network in docker
        .list_networks(Some(options))
        .await
        .unwrap_or_default()
    {
        if let Some(name) = network.name {
            let _ = docker.remove_network(&name).await;
        }
    }
    let options = ListVolumesOptionsBuilder::default()
        .filters(&filters)
        .build();
    if let Ok(volumes) = docker.list_volumes(Some(options)).await {
        for volume in volumes.volumes.unwrap_or_default() {
            let _ = docker
                .remove_volume(
                    &volume.name,
                    None::<bollard::query_parameters::RemoveVolumeOptions>,
                )
                .await;
        }
    }
}

/// Cleans up a test's containers and volumes (and its network, if any) when dropped,
/// also when the test panics.
pub struct Cleanup {
    /// The test's label value.
    pub test: &'static str,
    /// A network the test made.
    pub network: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let test = self.test;
        let network = self.network.take();
        // Drop cannot await, and the test's runtime may be unwinding: use a fresh
        // connection on a fresh runtime in a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(docker) = Docker::connect_with_local_defaults() {
                    remove_labelled(&docker, test).await;
                    if let Some(network) = network {
                        let _ = docker.remove_network(&network).await;
                    }
                }
            });
        })
        .join();
    }
}

/// The platform's engine client.
pub fn client() -> HttpEngineClient {
    HttpEngineClient::new(ClientOptions::default())
}

/// Polls `/healthz` until it answers or 60 s pass.
pub async fn wait_healthy(client: &HttpEngineClient, target: &EngineTarget) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match client.healthz(target).await {
            Ok(()) => return,
            Err(error) if tokio::time::Instant::now() > deadline => {
                panic!("{} never became healthy: {error}", target.endpoint)
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A two-race init for `game_id`.
pub fn init(game_id: GameId) -> EngineInit {
    EngineInit {
        game_id: game_id.to_string(),
        seed: 11,
        settings: serde_json::json!({}),
        races: ["Red Dwarf", "Blue Giant"]
            .iter()
            .map(|name| EngineRace {
                race_name: (*name).to_owned(),
                player_id: Uuid::now_v7().to_string(),
            })
            .collect(),
    }
}

/// The next event of `container_id` with action `action`; panics after 60 s.
pub async fn next_event(
    events: &mut BoxStream<'static, Result<ContainerEvent, ContainerError>>,
    container_id: &str,
    action: &str,
) -> ContainerEvent {
    let wait = async {
        loop {
            let event = events.next().await.expect("event stream open").unwrap();
            if event.container_id == container_id && event.action == action {
                return event;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .unwrap_or_else(|_| panic!("no {action} event of {container_id} within 60 s"))
}

/// Polls `check` every 100 ms until it holds or 60 s pass.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
