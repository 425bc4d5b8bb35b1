//! The process runtime running the real reference engine binary: start, health, crash
//! and supervised restart, stop, resume from the data directory, remove.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{
    client, engine_binary, eventually, init, kill_9, next_event, spec, target, wait_healthy,
};
use galaxy_core::ports::{ContainerError, ContainerRuntime, EngineClient};
use galaxy_process_runtime::{LOG_FILE, ProcessRuntime, ProcessRuntimeConfig, RestartPolicy};

fn runtime(root: &std::path::Path) -> ProcessRuntime {
    let mut config = ProcessRuntimeConfig::new(root);
    config.restart = RestartPolicy {
        max_restarts: 3,
        delay: Duration::from_millis(100),
    };
    ProcessRuntime::new(config).unwrap()
}

#[tokio::test]
async fn an_engine_runs_survives_a_crash_and_resumes_its_game_after_a_stop() {
    let root = tempfile::tempdir().unwrap();
    let runtime = runtime(root.path());
    let engine = engine_binary().display().to_string();
    runtime.ensure_image(&engine).await.unwrap();
    let spec = spec(&engine);
    let client = client();
    let mut events = runtime.events().await.unwrap();

    let created = runtime.create(&spec).await.unwrap();
    assert_eq!(created.container_id, spec.name);
    assert!(created.engine_endpoint.starts_with("http://127.0.0.1:"));
    assert_eq!(
        runtime.inspect(&created.container_id).await.unwrap().state,
        "created"
    );
    let endpoint = &target(&spec, &created);
    runtime.start(&created.container_id).await.unwrap();
    runtime.start(&created.container_id).await.unwrap(); // a no-op while running
    let started = next_event(&mut events, "start").await;
    assert_eq!(started.game_id, Some(spec.game_id));
    wait_healthy(&client, endpoint).await;
    let info = runtime.inspect(&created.container_id).await.unwrap();
    assert_eq!((info.state.as_str(), info.restart_count), ("running", 0));
    assert_eq!(info.labels, spec.labels);
    assert_eq!(info.health, None);

    client.init(endpoint, &init(spec.game_id)).await.unwrap();
    assert_eq!(client.run_turn(endpoint, 1).await.unwrap().turn, 1);

    // kill -9: the supervisor restarts it on the same port, counts it and says so.
    let pid = runtime.pid(&created.container_id).unwrap();
    kill_9(pid);
    assert_eq!(
        next_event(&mut events, "die").await.game_id,
        Some(spec.game_id)
    );
    next_event(&mut events, "start").await;
    let info = runtime.inspect(&created.container_id).await.unwrap();
    assert_eq!((info.state.as_str(), info.restart_count), ("running", 1));
    assert_ne!(runtime.pid(&created.container_id), Some(pid));
    wait_healthy(&client, endpoint).await;
    assert_eq!(client.state(endpoint).await.unwrap().turn, 1);

    // A stop is not a crash: no restart, state exited, and the port is closed.
    runtime
        .stop(&created.container_id, Duration::from_secs(10))
        .await
        .unwrap();
    next_event(&mut events, "stop").await;
    let info = runtime.inspect(&created.container_id).await.unwrap();
    assert_eq!((info.state.as_str(), info.restart_count), ("exited", 1));
    assert!(client.healthz(endpoint).await.is_err());
    runtime
        .stop(&created.container_id, Duration::from_secs(1))
        .await
        .unwrap(); // a no-op when stopped

    // Started again, it resumes the same game from its data directory.
    runtime.start(&created.container_id).await.unwrap();
    wait_healthy(&client, endpoint).await;
    let state = client.state(endpoint).await.unwrap();
    assert_eq!((state.turn, state.standings.len()), (1, 2));
    assert_eq!(client.run_turn(endpoint, 2).await.unwrap().turn, 2);

    let log = std::fs::read_to_string(runtime.data_dir(&spec.name).join(LOG_FILE)).unwrap();
    assert!(log.contains("engine listening"), "{log}");
    runtime.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn remove_keeps_the_data_so_a_new_container_of_the_game_resumes_it() {
    let root = tempfile::tempdir().unwrap();
    let runtime = runtime(root.path());
    let spec = spec(&engine_binary().display().to_string());
    let client = client();
    let mut events = runtime.events().await.unwrap();

    let first = runtime.create(&spec).await.unwrap();
    // A retried create of the same game and engine is the same container.
    assert_eq!(runtime.create(&spec).await.unwrap(), first);
    let mut other = common::spec(&spec.engine);
    other.name = spec.name.clone();
    assert!(matches!(
        runtime.create(&other).await,
        Err(ContainerError::Failed(_))
    ));

    runtime.start(&first.container_id).await.unwrap();
    let first_target = target(&spec, &first);
    wait_healthy(&client, &first_target).await;
    client
        .init(&first_target, &init(spec.game_id))
        .await
        .unwrap();
    client.run_turn(&first_target, 1).await.unwrap();
    let listed = runtime.list_by_label("galaxy.backend", "1").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].container_id, first.container_id);
    assert!(
        runtime
            .list_by_label("galaxy.game_id", "nope")
            .await
            .unwrap()
            .is_empty()
    );

    // Removing a running container kills it and forgets it; the data stays.
    runtime.remove(&first.container_id).await.unwrap();
    let destroyed = next_event(&mut events, "destroy").await;
    assert_eq!(destroyed.container_id, first.container_id);
    assert!(matches!(
        runtime.inspect(&first.container_id).await,
        Err(ContainerError::NotFound(_))
    ));
    assert!(matches!(
        runtime.remove(&first.container_id).await,
        Err(ContainerError::NotFound(_))
    ));
    assert!(client.healthz(&first_target).await.is_err());
    assert!(runtime.data_dir(&spec.name).join("state.json").is_file());

    let second = runtime.create(&spec).await.unwrap();
    runtime.start(&second.container_id).await.unwrap();
    let second_target = target(&spec, &second);
    wait_healthy(&client, &second_target).await;
    assert_eq!(client.state(&second_target).await.unwrap().turn, 1);
    runtime.shutdown(Duration::from_secs(10)).await;
    assert_eq!(
        runtime.inspect(&second.container_id).await.unwrap().state,
        "exited"
    );
}

#[tokio::test]
async fn the_engine_gets_its_address_data_dir_token_and_spec_env_and_nothing_else() {
    let root = tempfile::tempdir().unwrap();
    let runtime = runtime(root.path());
    let script = r#"sh -c 'env > "$GALAXY_ENGINE_DATA_DIR/env.txt"'"#;
    let mut spec = spec(script);
    spec.env
        .insert("GALAXY_ENGINE_ADDR".into(), "0.0.0.0:1".into());
    spec.env.insert("RULES".into(), "classic rules".into());
    let created = runtime.create(&spec).await.unwrap();
    runtime.start(&created.container_id).await.unwrap();
    let file = runtime.data_dir(&spec.name).join("env.txt");
    eventually("the script wrote its environment", || {
        let runtime = runtime.clone();
        let id = created.container_id.clone();
        async move { runtime.inspect(&id).await.unwrap().state == "exited" }
    })
    .await;
    let env = std::fs::read_to_string(file).unwrap();
    let port = created.engine_endpoint.rsplit(':').next().unwrap();
    assert!(
        env.contains(&format!("GALAXY_ENGINE_ADDR=127.0.0.1:{port}\n")),
        "{env}"
    );
    let data_dir = runtime.data_dir(&spec.name);
    assert!(env.contains(&format!("GALAXY_ENGINE_DATA_DIR={}\n", data_dir.display())));
    assert!(env.contains("RULES=classic rules\n"), "{env}");
    let token = format!("GALAXY_ENGINE_TOKEN={}\n", spec.token.expose());
    assert!(env.contains(&token), "the game's token, handed at launch");
    assert!(env.contains("GALAXY_ENGINE_LOG=debug\n"), "{env}");
    // cargo gives this test CARGO_PKG_NAME; the engine must not inherit it.
    assert!(std::env::var("CARGO_PKG_NAME").is_ok());
    assert!(!env.contains("CARGO_PKG_NAME"), "{env}");
    // Exit 0 is an end, not a crash: no restart.
    assert_eq!(
        runtime
            .inspect(&created.container_id)
            .await
            .unwrap()
            .restart_count,
        0
    );
}

#[tokio::test]
async fn the_engine_runs_in_its_own_process_group_with_its_rlimits_in_a_private_directory() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let runtime = runtime(root.path());
    let script = r#"sh -c 'cat /proc/self/limits > limits.txt; echo $$ > pid.txt;
        cat /proc/self/stat > stat.txt'"#;
    let spec = spec(script);
    let created = runtime.create(&spec).await.unwrap();
    let dir = runtime.data_dir(&spec.name);
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o700,
        "a game's state is the server user's only"
    );
    runtime.start(&created.container_id).await.unwrap();
    eventually("the script ended", || {
        let runtime = runtime.clone();
        let id = created.container_id.clone();
        async move { runtime.inspect(&id).await.unwrap().state == "exited" }
    })
    .await;
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    // The engine (`sh`, exec'd by prlimit under its own pid) leads its own group; what it
    // starts (`cat`) is in that group.
    let leader = read("pid.txt").trim().to_owned();
    let stat = read("stat.txt");
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    assert_eq!(
        fields[2], leader,
        "process group of the engine's child: {stat}"
    );
    if which("prlimit") {
        let limits = read("limits.txt");
        let line = |name: &str| {
            limits
                .lines()
                .find(|l| l.starts_with(name))
                .unwrap()
                .split_whitespace()
                .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let memory = (64u64 << 20).to_string();
        assert_eq!(line("Max data size"), [memory.clone(), memory], "{limits}");
        assert_eq!(line("Max core file size"), ["0", "0"], "{limits}");
    } else {
        eprintln!("SKIPPED the rlimit checks: prlimit is not on PATH");
    }
}

/// Whether `program` is on `PATH`.
fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
