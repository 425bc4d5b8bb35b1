//! What only the Docker runtime does, on a real daemon with the reference engine image:
//! a network and a volume per game, the addressing modes, exit codes and logs of an engine
//! that refuses its state, and the confinement of every engine as `docker inspect` shows
//! it. The port's behaviour (create, start, crash and restart, stop, remove, list by
//! label, events, logs, NotFound) is proven by the conformance suite
//! (tests/conformance.rs).
//!
//! Skipped (with the reason printed) when no daemon answers, unless GALAXY_REQUIRE_DOCKER
//! is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Cleanup, client, engine_image, eventually, init, next_event, remove_labelled, runtime_or_skip,
    spec, target, wait_healthy,
};
use galaxy_core::ports::{ContainerError, ContainerRuntime, EngineClient, EngineTarget};
use galaxy_docker::{
    Addressing, DockerConfig, DockerRuntime, EngineDataExport, network_name, volume_name,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_game_has_its_own_network_which_goes_with_it_while_its_volume_stays() {
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
    let missing = runtime
        .ensure_image("galaxy-engine:no-such-tag")
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("galaxy-cli engine image"),
        "the error says how to build it: {missing}"
    );

    let client = client();
    let spec = spec(TEST, &image);
    let created = runtime.create(&spec).await.unwrap();
    // A retried create finds it; the same name made by another installation is refused.
    let again = runtime.create(&spec).await.unwrap();
    assert_eq!(again.container_id, created.container_id);
    let mut foreign = spec.clone();
    foreign
        .labels
        .insert("galaxy.instance".to_owned(), "elsewhere".to_owned());
    let refused = runtime.create(&foreign).await.unwrap_err();
    assert!(refused.to_string().contains("installation"), "{refused}");
    // Alone on its game's network, at the network's fixed engine address.
    assert!(
        created.engine_endpoint.starts_with("http://10.213.")
            && created.engine_endpoint.ends_with(":8080"),
        "{}",
        created.engine_endpoint
    );
    let id = created.container_id.as_str();
    assert_eq!(
        runtime.engine_endpoint(id).await.unwrap(),
        created.engine_endpoint
    );
    runtime.start(id).await.unwrap();
    let endpoint = &target(&spec, &created);
    wait_healthy(&client, endpoint).await;
    assert_eq!(runtime.inspect(id).await.unwrap().health, None); // no HEALTHCHECK
    client.init(endpoint, &init(spec.game_id)).await.unwrap();

    // `docker kill` is a manual stop to Docker: the feed sees it die, nothing restarts
    // it, and a start brings the same game back.
    let mut events = runtime.events().await.unwrap();
    runtime
        .client()
        .kill_container(id, None::<bollard::query_parameters::KillContainerOptions>)
        .await
        .unwrap();
    next_event(&mut events, id, "die").await;
    eventually("exited", || async {
        runtime.inspect(id).await.unwrap().state == "exited"
    })
    .await;
    runtime.start(id).await.unwrap();
    wait_healthy(&client, endpoint).await;
    assert_eq!(client.state(endpoint).await.unwrap().turn, 0);

    // Remove: the container and its network go, its volume stays.
    runtime.remove(id).await.unwrap();
    let network = runtime
        .client()
        .inspect_network(&network_name(&spec.name), None)
        .await;
    assert!(network.is_err(), "the game's network is removed with it");
    runtime
        .client()
        .inspect_volume(&volume_name(&spec.name))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engines_data_goes_out_as_an_archive_and_back_into_a_fresh_volume() {
    const TEST: &str = "docker-volume-backup";
    let Some(runtime) = runtime_or_skip(DockerConfig::default()).await else {
        return;
    };
    remove_labelled(runtime.client(), TEST).await;
    let _cleanup = Cleanup {
        test: TEST,
        network: None,
    };
    let image = engine_image(runtime.client()).await;
    let client = client();
    let spec = spec(TEST, &image);
    let created = runtime.create(&spec).await.unwrap();
    runtime.start(&created.container_id).await.unwrap();
    let endpoint = &target(&spec, &created);
    wait_healthy(&client, endpoint).await;
    client.init(endpoint, &init(spec.game_id)).await.unwrap();
    client.run_turn(endpoint, 1).await.unwrap();
    assert_eq!(client.state(endpoint).await.unwrap().turn, 1);
    assert_eq!(runtime.image_of(&spec.name).await.unwrap(), image);

    let archive = runtime.export_data(&spec.name).await.unwrap();
    let names: Vec<String> = tar::Archive::new(archive.as_slice())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("data/") && n.len() > 5),
        "the data mount's files: {names:?}"
    );

    // The container vanishes, its volume stays (the game waits for its engine to be
    // created again): the data comes out of the volume alone, with the image it names.
    runtime.remove(&created.container_id).await.unwrap();
    // A helper left behind by a backup that died half-way does not block the next one.
    let leftover = bollard::models::ContainerCreateBody {
        image: Some(image.clone()),
        ..Default::default()
    };
    let name = format!("{}-backup", spec.name);
    let options = bollard::query_parameters::CreateContainerOptionsBuilder::default()
        .name(&name)
        .build();
    runtime
        .client()
        .create_container(Some(options), leftover)
        .await
        .unwrap();
    let EngineDataExport::Copied(kept) = runtime.export_engine_data(&spec.name).await.unwrap()
    else {
        panic!("the lone volume's data is copied");
    };
    assert_eq!(kept.image, image);
    let kept_names: Vec<String> = tar::Archive::new(kept.archive.as_slice())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(kept_names, names, "the same files as through the container");

    // The host is gone: no volume either. The data (as copied from the lone volume) goes
    // into a fresh volume, and a container created under the same name resumes the game
    // without an init.
    let volume = volume_name(&spec.name);
    runtime
        .client()
        .remove_volume(
            &volume,
            None::<bollard::query_parameters::RemoveVolumeOptions>,
        )
        .await
        .unwrap();
    runtime
        .import_data(&spec.name, &image, kept.archive)
        .await
        .unwrap();
    // A restored volume names its image too, so it can be copied again before its
    // container exists.
    let again_copied = runtime.export_engine_data(&spec.name).await.unwrap();
    assert!(
        matches!(&again_copied, EngineDataExport::Copied(data) if data.image == image),
        "{again_copied:?}"
    );
    let again = runtime.create(&spec).await.unwrap();
    runtime.start(&again.container_id).await.unwrap();
    let endpoint = &target(&spec, &again);
    wait_healthy(&client, endpoint).await;
    assert_eq!(
        client.state(endpoint).await.unwrap().turn,
        1,
        "the engine resumed its state from the restored volume"
    );
    runtime.remove(&again.container_id).await.unwrap();
    runtime
        .client()
        .remove_volume(
            &volume,
            None::<bollard::query_parameters::RemoveVolumeOptions>,
        )
        .await
        .unwrap();
    // An archive for a missing container is a typed NotFound.
    let missing = runtime.export_data("galaxy-game-nobody").await.unwrap_err();
    assert!(matches!(missing, ContainerError::NotFound(_)), "{missing}");
    let missing = runtime
        .export_engine_data("galaxy-game-nobody")
        .await
        .unwrap();
    assert_eq!(missing, EngineDataExport::Absent);

    // A lone volume that names no image (made before volumes named theirs) is reported,
    // never guessed at.
    let old = format!("galaxy-game-{TEST}-unlabelled");
    let old_volume = volume_name(&old);
    runtime
        .client()
        .create_volume(bollard::models::VolumeCreateRequest {
            name: Some(old_volume.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let unknown = runtime.export_engine_data(&old).await.unwrap();
    assert_eq!(
        unknown,
        EngineDataExport::UnknownImage {
            volume: old_volume.clone()
        }
    );
    runtime
        .client()
        .remove_volume(
            &old_volume,
            None::<bollard::query_parameters::RemoveVolumeOptions>,
        )
        .await
        .unwrap();
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
    let by_address = EngineTarget::new(format!("http://{address}:8080"), spec.token.clone());
    wait_healthy(&client(), &by_address).await;
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
    // Neither is the configuration's fault: a daemon started (again) fixes both.
    assert!(!missing.is_configuration() && !dead.is_configuration());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `DOCKER_HOST=tcp://...` reaches a daemon over TCP: here the real daemon's socket
/// behind a TCP forwarder on loopback (the test daemon listens on its socket only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_docker_host_is_honoured() {
    let Some(_local) = runtime_or_skip(DockerConfig::default()).await else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let forwarder = tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let Ok(mut unix) = tokio::net::UnixStream::connect("/var/run/docker.sock").await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
            });
        }
    });
    let host = galaxy_docker::DockerHost::parse(Some(&format!("tcp://{addr}")), false).unwrap();
    let runtime = DockerRuntime::connect_host(&host, DockerConfig::default())
        .await
        .unwrap();
    let version = runtime.client().version().await.unwrap();
    assert!(version.api_version.is_some(), "{version:?}");

    // Nothing listening: a typed error, not the local socket in its place.
    forwarder.abort();
    let _ = forwarder.await;
    let closed = galaxy_docker::DockerHost::parse(Some(&format!("tcp://{addr}")), false).unwrap();
    let error = DockerRuntime::connect_host(&closed, DockerConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(error, galaxy_docker::ConnectError::Unreachable(_)),
        "{error}"
    );
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

/// Runs `curl` in the network namespace of the process `pid` (a container's engine), as
/// a probe from inside that container: `Some(true)` when `url` answered, `Some(false)`
/// when it could not be reached within 3 s, `None` when the host lacks `nsenter` or
/// `curl`, or the right to use them (the probe is then skipped, saying so).
fn reachable_from(pid: i64, url: &str, token: Option<&str>) -> Option<bool> {
    let mut command = std::process::Command::new("nsenter");
    command.args([
        "-t",
        &pid.to_string(),
        "-n",
        "curl",
        "-s",
        "-o",
        "/dev/null",
    ]);
    command.args(["-m", "3", "-w", "%{http_code}"]);
    if let Some(token) = token {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    let output = command.arg(url).output().ok()?;
    let code = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    match output.status.code() {
        Some(0) => Some(code.starts_with('2') || code.starts_with('4')),
        // curl: 7 refused, 28 timed out (dropped by Docker's isolation rules).
        Some(7 | 28) => Some(false),
        _ => {
            eprintln!(
                "SKIPPED probe of {url} from pid {pid}: nsenter/curl unusable ({})",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            None
        }
    }
}

/// One line of `/proc/<pid>/status`, e.g. `Uid`.
fn proc_status(pid: i64, key: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key}:")))
        .map(|value| value.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_game_container_is_confined_as_docker_inspect_shows() {
    const TEST: &str = "docker-confined";
    let Some(runtime) = runtime_or_skip(DockerConfig::default()).await else {
        return;
    };
    remove_labelled(runtime.client(), TEST).await;
    let _cleanup = Cleanup {
        test: TEST,
        network: None,
    };
    let image = engine_image(runtime.client()).await;
    let client = client();
    let docker = runtime.client();
    let mut games = Vec::new();
    for _ in 0..2 {
        let spec = spec(TEST, &image);
        let created = runtime.create(&spec).await.unwrap();
        runtime.start(&created.container_id).await.unwrap();
        wait_healthy(&client, &target(&spec, &created)).await;
        games.push((spec, created));
    }
    let (spec, created) = &games[0];
    let engine = target(spec, created);
    let network = network_name(&spec.name);

    // The container's configuration, as `docker inspect` shows it.
    let inspected = docker
        .inspect_container(&created.container_id, None)
        .await
        .unwrap();
    let config = inspected.config.clone().unwrap();
    assert_eq!(config.user.as_deref(), Some("65534:65534"));
    let env = config.env.unwrap();
    assert!(env.contains(&format!("GALAXY_ENGINE_TOKEN={}", spec.token.expose())));
    let host = inspected.host_config.clone().unwrap();
    assert_eq!(host.readonly_rootfs, Some(true));
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
    assert_eq!(
        host.security_opt,
        Some(vec!["no-new-privileges".to_owned()])
    );
    assert_eq!(host.pids_limit, Some(64));
    assert_eq!(host.memory, Some(128 << 20));
    assert_eq!(host.nano_cpus, Some(500_000_000));
    assert!(
        host.port_bindings.unwrap_or_default().is_empty(),
        "nothing published"
    );
    assert_eq!(host.network_mode.as_deref(), Some(network.as_str()));
    let mounts = inspected.mounts.clone().unwrap();
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(mounts[0].destination.as_deref(), Some("/data"));
    assert_eq!(
        mounts[0].rw,
        Some(true),
        "the volume is the one writable path"
    );
    let networks = inspected.network_settings.unwrap().networks.unwrap();
    assert_eq!(
        networks.keys().collect::<Vec<_>>(),
        [&network],
        "one network"
    );
    let address = networks[&network].ip_address.clone().unwrap();
    assert_eq!(engine.endpoint, format!("http://{address}:8080"));

    // Its network: internal (no way out), a /29 of the configured range, the game's own.
    let net = docker.inspect_network(&network, None).await.unwrap();
    assert_eq!(net.internal, Some(true));
    let subnet = net.ipam.unwrap().config.unwrap()[0].subnet.clone().unwrap();
    assert!(
        subnet.starts_with("10.213.") && subnet.ends_with("/29"),
        "{subnet}"
    );
    assert_eq!(
        net.labels.unwrap()["galaxy.game_id"],
        spec.game_id.to_string()
    );
    let other_address = games[1].1.engine_endpoint.clone();
    assert_ne!(other_address, engine.endpoint, "a network of its own");

    // The process itself: not root, no capability, no privilege gain.
    let pid = inspected.state.unwrap().pid.unwrap();
    if let Some(uid) = proc_status(pid, "Uid") {
        assert_eq!(uid, "65534 65534 65534 65534");
        assert_eq!(proc_status(pid, "CapEff").unwrap(), "0000000000000000");
        assert_eq!(proc_status(pid, "NoNewPrivs").unwrap(), "1");
    }

    // The engine checks its credential; with it, it writes its state to the volume.
    let anonymous = EngineTarget::anonymous(engine.endpoint.clone());
    let refused = client.state(&anonymous).await.unwrap_err();
    assert!(
        matches!(
            refused,
            galaxy_core::ports::EngineError::Status { status: 401, .. }
        ),
        "{refused:?}"
    );
    client.init(&engine, &init(spec.game_id)).await.unwrap();
    assert_eq!(client.run_turn(&engine, 1).await.unwrap().turn, 1);

    // From inside the engine's network namespace: its own address answers, the other
    // game's engine does not.
    let own = reachable_from(pid, &format!("{}/healthz", engine.endpoint), None);
    if own == Some(true) {
        let other = reachable_from(pid, &format!("{other_address}/healthz"), None);
        assert_eq!(
            other,
            Some(false),
            "an engine reaches another game's engine"
        );
    } else {
        assert_eq!(own, None, "the probe itself must work");
    }
    for (_, created) in &games {
        runtime.remove(&created.container_id).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_container_is_published_on_127_0_0_1_only() {
    const TEST: &str = "docker-loopback";
    let config = DockerConfig {
        addressing: Addressing::LoopbackPort,
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
    assert!(created.engine_endpoint.starts_with("http://127.0.0.1:"));
    runtime.start(&created.container_id).await.unwrap();
    let engine = target(&spec, &created);
    wait_healthy(&client(), &engine).await;
    let inspected = runtime
        .client()
        .inspect_container(&created.container_id, None)
        .await
        .unwrap();
    let host = inspected.host_config.unwrap();
    let bindings = host.port_bindings.unwrap()["8080/tcp"].clone().unwrap();
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0].host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        format!(
            "http://127.0.0.1:{}",
            bindings[0].host_port.as_deref().unwrap()
        ),
        created.engine_endpoint
    );
    // Confined the same way, the network apart.
    assert_eq!(host.readonly_rootfs, Some(true));
    assert_eq!(
        inspected.config.unwrap().user.as_deref(),
        Some("65534:65534")
    );
    client().init(&engine, &init(spec.game_id)).await.unwrap();
    assert_eq!(
        runtime
            .engine_endpoint(&created.container_id)
            .await
            .unwrap(),
        created.engine_endpoint
    );
    // Stopped, its port is free on the host but still the container's: no new container
    // gets it.
    let port: u16 = created
        .engine_endpoint
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        runtime
            .loopback_ports_in_use()
            .await
            .unwrap()
            .contains(&port)
    );
    runtime
        .stop(&created.container_id, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
    assert!(
        runtime
            .loopback_ports_in_use()
            .await
            .unwrap()
            .contains(&port),
        "a stopped container's port is still its own"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_container_joins_each_game_network_and_leaves_it_with_the_game() {
    const TEST: &str = "docker-server-container";
    let Some(probe) = runtime_or_skip(DockerConfig::default()).await else {
        return;
    };
    let docker = probe.client().clone();
    remove_labelled(&docker, TEST).await;
    let _cleanup = Cleanup {
        test: TEST,
        network: None,
    };
    let image = engine_image(&docker).await;
    // A stand-in for the server's own container, on Docker's default bridge.
    let server = format!("galaxy-test-server-{}", std::process::id());
    let body = bollard::models::ContainerCreateBody {
        image: Some(image.clone()),
        env: Some(vec!["GALAXY_ENGINE_DATA_DIR=/tmp".to_owned()]),
        user: Some("0:0".to_owned()),
        labels: Some([(common::TEST_LABEL.to_owned(), TEST.to_owned())].into()),
        ..Default::default()
    };
    let options = bollard::query_parameters::CreateContainerOptionsBuilder::default()
        .name(&server)
        .build();
    docker
        .create_container(Some(options), body.clone())
        .await
        .unwrap();
    docker.start_container(&server, None).await.unwrap();

    let settings = galaxy_docker::GameNetworks {
        server_container: Some(server.clone()),
        ..Default::default()
    };
    let config = DockerConfig {
        addressing: Addressing::GameNetworks(settings),
        max_restarts: 0,
        ..DockerConfig::default()
    };
    let runtime = DockerRuntime::with_client(docker.clone(), config)
        .await
        .unwrap();
    let spec = spec(TEST, &image);
    let network = network_name(&spec.name);
    let created = runtime.create(&spec).await.unwrap();
    runtime.start(&created.container_id).await.unwrap();
    let joined = docker.inspect_container(&server, None).await.unwrap();
    let networks = joined.network_settings.unwrap().networks.unwrap();
    assert!(networks.contains_key(&network), "{:?}", networks.keys());
    assert!(
        networks.contains_key("bridge"),
        "the server keeps its own network"
    );

    // The server reaches the engine from inside its container, with the credential.
    let pid = joined.state.unwrap().pid.unwrap();
    let url = format!("{}/admin/state", created.engine_endpoint);
    let token = spec.token.expose();
    if let Some(reached) = reachable_from(pid, &url, Some(token)) {
        assert!(reached, "the server's container cannot reach the engine");
    }

    // A second replica's container was never joined: its runtime joins it on the first
    // inspect of the game's container (the inspect pass, the reconciler).
    let replica = format!("galaxy-test-replica-{}", std::process::id());
    let options = bollard::query_parameters::CreateContainerOptionsBuilder::default()
        .name(&replica)
        .build();
    docker.create_container(Some(options), body).await.unwrap();
    docker.start_container(&replica, None).await.unwrap();
    let on_network = |container: String| {
        let docker = docker.clone();
        let network = network.clone();
        async move {
            let inspected = docker.inspect_container(&container, None).await.unwrap();
            let networks = inspected.network_settings.unwrap().networks.unwrap();
            networks.contains_key(&network)
        }
    };
    let config_of = |server: &str| DockerConfig {
        addressing: Addressing::GameNetworks(galaxy_docker::GameNetworks {
            server_container: Some(server.to_owned()),
            ..Default::default()
        }),
        max_restarts: 0,
        ..DockerConfig::default()
    };
    let second = DockerRuntime::with_client(docker.clone(), config_of(&replica))
        .await
        .unwrap();
    assert!(!on_network(replica.clone()).await);
    second.inspect(&created.container_id).await.unwrap();
    assert!(on_network(replica.clone()).await, "the replica joined");

    // The first server's container off the network, as one made anew by an upgrade is: a
    // new process's runtime joins it again when it starts (or inspects) the engine.
    let leave = bollard::models::NetworkDisconnectRequest {
        container: server.clone(),
        force: Some(true),
    };
    docker.disconnect_network(&network, leave).await.unwrap();
    assert!(!on_network(server.clone()).await);
    let restarted = DockerRuntime::with_client(docker.clone(), config_of(&server))
        .await
        .unwrap();
    restarted.start(&created.container_id).await.unwrap();
    assert!(on_network(server.clone()).await, "joined again");

    // The engine made anew on a network that outlived it (its removal failed once every
    // server was taken off): a replica that saw the network before joins it again.
    let leave = bollard::models::NetworkDisconnectRequest {
        container: replica.clone(),
        force: Some(true),
    };
    docker.disconnect_network(&network, leave).await.unwrap();
    let force = bollard::query_parameters::RemoveContainerOptionsBuilder::default()
        .force(true)
        .build();
    docker
        .remove_container(&created.container_id, Some(force))
        .await
        .unwrap();
    let created = runtime.create(&spec).await.unwrap();
    runtime.start(&created.container_id).await.unwrap();
    assert!(!on_network(replica.clone()).await);
    second.inspect(&created.container_id).await.unwrap();
    assert!(
        on_network(replica.clone()).await,
        "the replica joined the new engine's network"
    );

    // Removing the game's container takes every server off the network and removes it.
    runtime.remove(&created.container_id).await.unwrap();
    assert!(!on_network(server.clone()).await);
    assert!(!on_network(replica.clone()).await);
    assert!(docker.inspect_network(&network, None).await.is_err());
}
