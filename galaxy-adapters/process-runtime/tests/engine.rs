//! What only the process runtime does: the engine's environment, its process group,
//! rlimits and private data directory. The port's behaviour (start, crash and supervised
//! restart, stop, resume, remove, events, logs) is proven by the conformance suite
//! (tests/conformance.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{eventually, spec};
use galaxy_core::ports::ContainerRuntime;
use galaxy_process_runtime::{ProcessRuntime, ProcessRuntimeConfig, RestartPolicy};

fn runtime(root: &std::path::Path) -> ProcessRuntime {
    let mut config = ProcessRuntimeConfig::new(root);
    config.restart = RestartPolicy {
        max_restarts: 3,
        delay: Duration::from_millis(100),
    };
    ProcessRuntime::new(config).unwrap()
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

/// A program path relative to the server's working directory (`./target/debug/engine`,
/// as an operator types it) names the same file for the engine, although the engine runs
/// in its data directory. Before the fix, the path was resolved from the data directory
/// and the engine exited with status 127.
#[tokio::test]
async fn a_relative_program_path_is_taken_from_the_servers_working_directory() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().unwrap();
    let runtime = runtime(root.path());
    // A directory under this test's working directory (the crate's), named relatively.
    let bin = tempfile::tempdir_in(".").unwrap();
    let name = bin.path().file_name().unwrap().to_str().unwrap();
    let relative = format!("./{name}/engine.sh");
    let script = bin.path().join("engine.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"$@\" > \"$GALAXY_ENGINE_DATA_DIR/ran.txt\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(std::path::Path::new(&relative).is_file(), "{relative}");

    let spec = spec(&format!("{relative} 'an argument'"));
    runtime.ensure_image(&spec.engine).await.unwrap();
    let created = runtime.create(&spec).await.unwrap();
    runtime.start(&created.container_id).await.unwrap();
    eventually("the engine ended", || {
        let runtime = runtime.clone();
        let id = created.container_id.clone();
        async move { runtime.inspect(&id).await.unwrap().state == "exited" }
    })
    .await;
    let info = runtime.inspect(&created.container_id).await.unwrap();
    assert_eq!(info.exit_code, Some(0), "{info:?}");
    let ran = std::fs::read_to_string(runtime.data_dir(&spec.name).join("ran.txt")).unwrap();
    assert_eq!(ran, "an argument\n");
}
