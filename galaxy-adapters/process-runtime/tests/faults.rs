//! Bad engines and bad input: missing or non-executable programs, crash loops, engines
//! that ignore SIGTERM, unknown containers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{eventually, next_event, spec};
use galaxy_core::ports::{ContainerError, ContainerRuntime};
use galaxy_process_runtime::{ProcessRuntime, ProcessRuntimeConfig, RestartPolicy};

fn runtime(root: &std::path::Path, max_restarts: u32) -> ProcessRuntime {
    let mut config = ProcessRuntimeConfig::new(root);
    config.restart = RestartPolicy {
        max_restarts,
        delay: Duration::from_millis(10),
    };
    ProcessRuntime::new(config).unwrap()
}

#[tokio::test]
async fn ensure_image_names_what_is_wrong_with_the_command() {
    let root = tempfile::tempdir().unwrap();
    let runtime = runtime(root.path(), 0);
    runtime.ensure_image("sh -c true").await.unwrap();

    let missing = root.path().join("no-such-engine");
    let error = runtime
        .ensure_image(&format!("{} --flag", missing.display()))
        .await
        .unwrap_err();
    assert!(matches!(error, ContainerError::NotFound(_)), "{error}");
    assert!(error.to_string().contains("no-such-engine"), "{error}");

    let error = runtime
        .ensure_image("galaxy-engine-that-is-not-installed")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("in PATH"), "{error}");

    let plain = root.path().join("engine.txt");
    std::fs::write(&plain, "not a program").unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = runtime
        .ensure_image(&plain.display().to_string())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("not executable"), "{error}");
    let error = runtime
        .ensure_image(&root.path().display().to_string())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("not a file"), "{error}");

    let error = runtime.ensure_image("engine 'unclosed").await.unwrap_err();
    assert!(error.to_string().contains("unterminated"), "{error}");
    assert!(runtime.ensure_image("  ").await.is_err());
}

#[tokio::test]
async fn a_crash_loop_is_restarted_up_to_the_policy_then_left_exited() {
    let root = tempfile::tempdir().unwrap();
    let runtime = runtime(root.path(), 2);
    let created = runtime.create(&spec("sh -c 'exit 3'")).await.unwrap();
    let mut events = runtime.events().await.unwrap();
    runtime.start(&created.container_id).await.unwrap();
    for _ in 0..3 {
        next_event(&mut events, "die").await;
    }
    eventually("the loop ends", || {
        let runtime = runtime.clone();
        let id = created.container_id.clone();
        async move {
            let info = runtime.inspect(&id).await.unwrap();
            info.state == "exited" && info.restart_count == 2
        }
    })
    .await;
    // A manual start runs it again under the same life-long count.
    runtime.start(&created.container_id).await.unwrap();
    next_event(&mut events, "die").await;
    eventually("the second run ends", || {
        let runtime = runtime.clone();
        let id = created.container_id.clone();
        async move { runtime.inspect(&id).await.unwrap().state == "exited" }
    })
    .await;
    assert_eq!(
        runtime
            .inspect(&created.container_id)
            .await
            .unwrap()
            .restart_count,
        2
    );
}

#[tokio::test]
async fn stop_kills_an_engine_that_ignores_sigterm_after_the_grace() {
    let root = tempfile::tempdir().unwrap();
    let runtime = runtime(root.path(), 5);
    // An ignored signal stays ignored across exec, so `sleep` ignores SIGTERM too.
    let created = runtime
        .create(&spec(r#"sh -c 'trap "" TERM; exec sleep 60'"#))
        .await
        .unwrap();
    runtime.start(&created.container_id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let began = Instant::now();
    runtime
        .stop(&created.container_id, Duration::from_millis(500))
        .await
        .unwrap();
    let took = began.elapsed();
    assert!(took >= Duration::from_millis(450), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let info = runtime.inspect(&created.container_id).await.unwrap();
    assert_eq!((info.state.as_str(), info.restart_count), ("exited", 0));
    assert_eq!(runtime.pid(&created.container_id), None);
}

#[tokio::test]
async fn unknown_containers_and_bad_specs_are_typed_errors() {
    let root = tempfile::tempdir().unwrap();
    let runtime = runtime(root.path(), 0);
    for result in [
        runtime.start("nope").await,
        runtime.stop("nope", Duration::ZERO).await,
        runtime.remove("nope").await,
        runtime.inspect("nope").await.map(drop),
    ] {
        assert!(
            matches!(result, Err(ContainerError::NotFound(_))),
            "{result:?}"
        );
    }
    let mut bad = spec("sh -c true");
    bad.name = "../escape".into();
    let error = runtime.create(&bad).await.unwrap_err();
    assert!(
        error.to_string().contains("invalid container name"),
        "{error}"
    );
    assert!(!root.path().join("../escape").exists());

    // A program that vanished after create fails start with its name.
    let gone = root.path().join("gone-engine");
    std::fs::write(&gone, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&gone, std::fs::Permissions::from_mode(0o755)).unwrap();
    let created = runtime
        .create(&spec(&gone.display().to_string()))
        .await
        .unwrap();
    std::fs::remove_file(&gone).unwrap();
    let error = runtime.start(&created.container_id).await.unwrap_err();
    assert!(error.to_string().contains("gone-engine"), "{error}");
    assert_eq!(
        runtime.inspect(&created.container_id).await.unwrap().state,
        "created"
    );
}
