//! The Docker runtime on a real daemon with the reference engine image: create and start
//! a game's container, reach its engine, crash it and see Docker restart it, stop,
//! remove, list by label, the event feed, and the network addressing mode.
//!
//! Skipped (with the reason printed) when no daemon answers, unless GALAXY_REQUIRE_DOCKER
//! is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{
    Cleanup, client, engine_image, eventually, init, next_event, remove_labelled, runtime_or_skip,
    spec, wait_healthy,
};
use galaxy_core::ports::{ContainerError, ContainerRuntime, EngineClient};
use galaxy_docker::{Addressing, DockerConfig, DockerRuntime, volume_name};

/// SIGKILLs the engine process from the host: a crash as far as Docker can tell (unlike
/// `docker kill`, which Docker counts as a manual stop and never restarts).
async fn crash(runtime: &DockerRuntime, container_id: &str) {
    let inspected = runtime
        .client()
        .inspect_container(container_id, None)
        .await
        .unwrap();
    let pid = inspected.state.unwrap().pid.unwrap();
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -KILL {pid} (the tests run as root)");
}

async fn info_is(runtime: &DockerRuntime, id: &str, state: &str, restarts: u64) -> bool {
    let info = runtime.inspect(id).await.unwrap();
    info.state == state && info.restart_count == restarts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_game_container_runs_restarts_after_a_crash_stops_and_keeps_its_volume() {
    const TEST: &str = "docker-lifecycle";
    let Some(runtime) = runtime_or_skip(DockerConfig::default()).await else {
        return;
    };
    remove_labelled(runtime.client(), TEST).await;
    let _cleanup = Cleanup {
        test: TEST,
        network: None,
    };
    let image = engine_image(runtime.client()).await;
    runtime.ensure_image(&image).await.unwrap();
    let missing = runtime
        .ensure_image("galaxy-engine:no-such-tag")
        .await
        .unwrap_err();
    assert!(matches!(missing, ContainerError::NotFound(_)), "{missing}");
    assert!(
        missing.to_string().contains("galaxy-cli engine image"),
        "{missing}"
    );

    let client = client();
    let mut events = runtime.events().await.unwrap();
    let spec = spec(TEST, &image);
    let created = runtime.create(&spec).await.unwrap();
    assert!(created.engine_endpoint.starts_with("http://127.0.0.1:"));
    // A retried create is the same container.
    assert_eq!(runtime.create(&spec).await.unwrap(), created);
    let (id, endpoint) = (
        created.container_id.as_str(),
        created.engine_endpoint.as_str(),
    );
    assert_eq!(runtime.inspect(id).await.unwrap().state, "created");
    assert_eq!(runtime.engine_endpoint(id).await.unwrap(), endpoint);

    runtime.start(id).await.unwrap();
    runtime.start(id).await.unwrap(); // a no-op while running
    let started = next_event(&mut events, id, "start").await;
    assert_eq!(started.game_id, Some(spec.game_id));
    wait_healthy(&client, endpoint).await;
    let info = runtime.inspect(id).await.unwrap();
    assert_eq!((info.state.as_str(), info.restart_count), ("running", 0));
    assert_eq!(info.labels["galaxy.game_id"], spec.game_id.to_string());
    assert_eq!(info.health, None); // the image has no HEALTHCHECK
    client.init(endpoint, &init(spec.game_id)).await.unwrap();
    assert_eq!(client.run_turn(endpoint, 1).await.unwrap().turn, 1);

    // A crash: Docker's on-failure policy restarts it on the same host port.
    crash(&runtime, id).await;
    let died = next_event(&mut events, id, "die").await;
    assert_eq!(died.game_id, Some(spec.game_id));
    next_event(&mut events, id, "start").await;
    eventually("restart counted", || info_is(&runtime, id, "running", 1)).await;
    wait_healthy(&client, endpoint).await;
    assert_eq!(client.state(endpoint).await.unwrap().turn, 1);

    // `docker kill`: the event feed sees it die; a start brings the same game back.
    runtime
        .client()
        .kill_container(id, None::<bollard::query_parameters::KillContainerOptions>)
        .await
        .unwrap();
    next_event(&mut events, id, "die").await;
    runtime.start(id).await.unwrap();
    wait_healthy(&client, endpoint).await;
    assert_eq!(client.state(endpoint).await.unwrap().turn, 1);

    // Stop: exited and not restarted; listed by its labels.
    runtime.stop(id, Duration::from_secs(10)).await.unwrap();
    next_event(&mut events, id, "stop").await;
    let info = runtime.inspect(id).await.unwrap();
    assert_eq!(info.state, "exited");
    runtime.stop(id, Duration::from_secs(1)).await.unwrap(); // a no-op when stopped
    let game = spec.game_id.to_string();
    let listed = runtime
        .list_by_label("galaxy.game_id", &game)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].container_id.as_str(), listed[0].state.as_str()),
        (id, "exited")
    );
    let backend = runtime.list_by_label("galaxy.backend", "1").await.unwrap();
    assert!(backend.iter().any(|info| info.container_id == id));

    // Remove: the container goes, its volume stays, and a new container resumes the game.
    runtime.remove(id).await.unwrap();
    next_event(&mut events, id, "destroy").await;
    assert!(matches!(
        runtime.inspect(id).await,
        Err(ContainerError::NotFound(_))
    ));
    assert!(matches!(
        runtime.remove(id).await,
        Err(ContainerError::NotFound(_))
    ));
    assert!(matches!(
        runtime.stop(id, Duration::ZERO).await,
        Err(ContainerError::NotFound(_))
    ));
    runtime
        .client()
        .inspect_volume(&volume_name(&spec.name))
        .await
        .unwrap();
    assert!(
        runtime
            .list_by_label("galaxy.game_id", &game)
            .await
            .unwrap()
            .is_empty()
    );
    let again = runtime.create(&spec).await.unwrap();
    runtime.start(&again.container_id).await.unwrap();
    wait_healthy(&client, &again.engine_endpoint).await;
    assert_eq!(client.state(&again.engine_endpoint).await.unwrap().turn, 1);
    runtime.remove(&again.container_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_container_is_reached_by_name_on_its_network() {
    const TEST: &str = "docker-network";
    let network = format!("galaxy-test-{}", std::process::id());
    let config = DockerConfig {
        addressing: Addressing::Network(network.clone()),
        max_restarts: 0,
        ..DockerConfig::default()
    };
    let Some(runtime) = runtime_or_skip(config).await else {
        return;
    };
    remove_labelled(runtime.client(), TEST).await;
    let _cleanup = Cleanup {
        test: TEST,
        network: Some(network.clone()),
    };
    let image = engine_image(runtime.client()).await;
    let spec = spec(TEST, &image);
    let created = runtime.create(&spec).await.unwrap();
    assert_eq!(
        created.engine_endpoint,
        format!("http://{}:8080", spec.name)
    );
    runtime.start(&created.container_id).await.unwrap();

    // The test runs on the host, outside the network: it reaches the engine (a container
    // this test made) at its address on the network instead of by name.
    let inspected = runtime
        .client()
        .inspect_container(&created.container_id, None)
        .await
        .unwrap();
    let settings = inspected.network_settings.unwrap().networks.unwrap();
    let address = settings[&network].ip_address.clone().unwrap();
    let aliases = settings[&network].aliases.clone().unwrap_or_default();
    assert!(aliases.contains(&spec.name), "{aliases:?}");
    assert!(
        inspected
            .host_config
            .unwrap()
            .port_bindings
            .unwrap_or_default()
            .is_empty(),
        "nothing is published in network mode"
    );
    wait_healthy(&client(), &format!("http://{address}:8080")).await;
    assert_eq!(
        runtime
            .engine_endpoint(&created.container_id)
            .await
            .unwrap(),
        created.engine_endpoint
    );
}

#[tokio::test]
async fn a_missing_or_dead_socket_is_a_typed_error_at_connect() {
    let missing =
        DockerRuntime::connect_socket("/nonexistent/docker.sock", DockerConfig::default())
            .await
            .unwrap_err();
    assert!(
        matches!(missing, galaxy_docker::ConnectError::SocketMissing(_)),
        "{missing}"
    );
    assert!(
        missing.to_string().contains("is dockerd running"),
        "{missing}"
    );

    // A socket file nobody listens on (a daemon that died and left it behind).
    let dir = std::env::temp_dir().join(format!("galaxy-docker-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let dead = DockerRuntime::connect_socket(path.to_str().unwrap(), DockerConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(dead, galaxy_docker::ConnectError::Unreachable(_)),
        "{dead}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A tar archive holding one file, `name`, with `contents`.
fn one_file_tar(name: &str, contents: &[u8]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(contents.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, name, contents).unwrap();
    tar.into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_exits_reports_its_exit_code_and_its_last_lines() {
    const TEST: &str = "docker-exit";
    let config = DockerConfig {
        max_restarts: 0,
        ..DockerConfig::default()
    };
    let Some(runtime) = runtime_or_skip(config).await else {
        return;
    };
    remove_labelled(runtime.client(), TEST).await;
    let _cleanup = Cleanup {
        test: TEST,
        network: None,
    };
    let image = engine_image(runtime.client()).await;
    let spec = spec(TEST, &image);
    let created = runtime.create(&spec).await.unwrap();
    let id = created.container_id.as_str();
    let info = runtime.inspect(id).await.unwrap();
    assert_eq!((info.state.as_str(), info.exit_code), ("created", None));
    assert!(runtime.logs(id, 20).await.unwrap().is_empty(), "never ran");

    // A corrupt state file on its volume: the engine refuses to start, says why, and
    // exits with 1; with no restart policy, Docker leaves it exited.
    let archive = one_file_tar("state.json", b"this is not the engine's state");
    let options = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
        .path(galaxy_docker::DATA_MOUNT)
        .build();
    runtime
        .client()
        .upload_to_container(id, Some(options), bollard::body_full(archive.into()))
        .await
        .unwrap();
    let mut events = runtime.events().await.unwrap();
    runtime.start(id).await.unwrap();
    next_event(&mut events, id, "die").await;
    eventually("exited", || async {
        runtime.inspect(id).await.unwrap().state == "exited"
    })
    .await;
    let info = runtime.inspect(id).await.unwrap();
    assert_eq!(info.exit_code, Some(1));
    assert!(info.exited_for_good());
    let lines = runtime.logs(id, 20).await.unwrap();
    let last = lines.last().expect("the engine wrote something");
    assert!(last.contains("is not a valid engine file"), "{lines:?}");
    assert_eq!(
        runtime.logs(id, 1).await.unwrap(),
        std::slice::from_ref(last)
    );
    assert!(matches!(
        runtime.logs("galaxy-no-such-container", 20).await,
        Err(ContainerError::NotFound(_))
    ));
}
