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
    // An ignored signal stays ignored across exec, so `sleep` ignores SIGTERM too. The
    // file says the trap is set (a signal before it would end the shell at once).
    let trapped = root.path().join("trapped");
    let command = format!(
        r#"sh -c 'trap "" TERM; : > {}; exec sleep 60'"#,
        trapped.display()
    );
    let created = runtime.create(&spec(&command)).await.unwrap();
    runtime.start(&created.container_id).await.unwrap();
    let limit = Instant::now() + Duration::from_secs(30);
    while !trapped.exists() {
        assert!(Instant::now() < limit, "the engine never set its trap");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
async fn bad_specs_and_vanished_programs_are_typed_errors() {
    let root = tempfile::tempdir().unwrap();
    let runtime = runtime(root.path(), 0);
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

#[tokio::test]
async fn an_exited_engine_reports_its_exit_code_and_its_last_lines() {
    let root = tempfile::tempdir().unwrap();
    let runtime = runtime(root.path(), 0);
    let created = runtime
        .create(&spec("sh -c 'echo one; echo two >&2; echo boom; exit 3'"))
        .await
        .unwrap();
    let id = created.container_id.as_str();
    assert_eq!(runtime.inspect(id).await.unwrap().exit_code, None);
    assert!(runtime.logs(id, 20).await.unwrap().is_empty(), "never ran");
    let mut events = runtime.events().await.unwrap();
    runtime.start(id).await.unwrap();
    next_event(&mut events, "die").await;
    let info = runtime.inspect(id).await.unwrap();
    assert_eq!((info.state.as_str(), info.exit_code), ("exited", Some(3)));
    assert!(info.exited_for_good());
    assert_eq!(runtime.logs(id, 2).await.unwrap(), ["two", "boom"]);
    assert_eq!(runtime.logs(id, 20).await.unwrap(), ["one", "two", "boom"]);
    assert!(matches!(
        runtime.logs("nope", 20).await,
        Err(ContainerError::NotFound(_))
    ));

    // A run of a long log is read from its end only.
    let chatty = runtime
        .create(&spec(
            "sh -c 'i=0; while [ $i -lt 20000 ]; do echo \"line $i\"; i=$((i+1)); done'",
        ))
        .await
        .unwrap();
    runtime.start(&chatty.container_id).await.unwrap();
    next_event(&mut events, "die").await;
    let info = runtime.inspect(&chatty.container_id).await.unwrap();
    assert_eq!(info.exit_code, Some(0));
    let tail = runtime.logs(&chatty.container_id, 3).await.unwrap();
    assert_eq!(tail, ["line 19997", "line 19998", "line 19999"]);
    let most = runtime.logs(&chatty.container_id, 100_000).await.unwrap();
    assert!(most.len() < 20_000, "at most 64 KiB read: {}", most.len());
    assert_eq!(most.last().unwrap(), "line 19999");
    assert!(
        most[0].starts_with("line "),
        "no partial first line: {}",
        most[0]
    );
}

#[tokio::test]
async fn a_crashed_engine_is_restarting_not_exited_while_a_restart_is_due() {
    let root = tempfile::tempdir().unwrap();
    let mut config = ProcessRuntimeConfig::new(root.path());
    config.restart = RestartPolicy {
        max_restarts: 1,
        delay: Duration::from_millis(500),
    };
    let runtime = ProcessRuntime::new(config).unwrap();
    let created = runtime.create(&spec("sh -c 'exit 3'")).await.unwrap();
    let id = created.container_id.as_str();
    let mut events = runtime.events().await.unwrap();
    runtime.start(id).await.unwrap();
    next_event(&mut events, "die").await;
    // The state changes before the event goes out, and a due restart is never `exited`.
    let info = runtime.inspect(id).await.unwrap();
    assert_eq!(
        (info.state.as_str(), info.exit_code),
        ("restarting", Some(3))
    );
    assert!(!info.exited_for_good());
    next_event(&mut events, "start").await;
    next_event(&mut events, "die").await;
    let info = runtime.inspect(id).await.unwrap();
    assert_eq!(
        (info.state.as_str(), info.exit_code, info.restart_count),
        ("exited", Some(3), 1)
    );
    assert!(info.exited_for_good(), "restarts spent");
}

#[tokio::test]
async fn a_stopped_or_killed_engine_reports_the_signal_as_docker_does() {
    let root = tempfile::tempdir().unwrap();
    let runtime = runtime(root.path(), 0);
    let created = runtime
        .create(&spec("sh -c 'exec sleep 60'"))
        .await
        .unwrap();
    let id = created.container_id.as_str();
    let mut events = runtime.events().await.unwrap();
    runtime.start(id).await.unwrap();
    next_event(&mut events, "start").await;
    assert_eq!(runtime.inspect(id).await.unwrap().exit_code, None);
    runtime.stop(id, Duration::from_secs(5)).await.unwrap();
    let info = runtime.inspect(id).await.unwrap();
    assert_eq!((info.state.as_str(), info.exit_code), ("exited", Some(143)));

    runtime.start(id).await.unwrap();
    next_event(&mut events, "start").await;
    assert_eq!(
        runtime.inspect(id).await.unwrap().exit_code,
        None,
        "runs again"
    );
    common::kill_9(runtime.pid(id).unwrap());
    next_event(&mut events, "die").await;
    assert_eq!(runtime.inspect(id).await.unwrap().exit_code, Some(137));
}

/// Whether process `pid` is gone (or a zombie waiting for its reaper).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// Waits until every pid listed in `file` (one per line, at least `n`) is gone.
async fn helpers_gone(file: &std::path::Path, n: usize) {
    let limit = Instant::now() + Duration::from_secs(30);
    loop {
        let pids = std::fs::read_to_string(file).unwrap_or_default();
        let pids: Vec<&str> = pids.split_whitespace().collect();
        if pids.len() >= n && pids.iter().all(|pid| gone(pid)) {
            return;
        }
        assert!(Instant::now() < limit, "helpers left running: {pids:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn what_an_engine_started_dies_with_it_on_a_stop_and_on_a_crash() {
    let root = tempfile::tempdir().unwrap();
    // An engine whose helper ignores SIGTERM (set before the helper's pid is written)
    // and that itself ends at once on SIGTERM (or, the second, crashes).
    let script = |name: &str, then: &str| {
        let pids = root.path().join(format!("{name}.pids"));
        let body = format!(
            "(trap '' TERM; sh -c 'echo $PPID' >> {}; exec sleep 60) &\n{then}\n",
            pids.display()
        );
        let path = root.path().join(format!("{name}.sh"));
        std::fs::write(&path, body).unwrap();
        (format!("sh {}", path.display()), pids)
    };
    let (command, stopped) = script("stopped", "exec sleep 60");
    let runtime_stop = runtime(&root.path().join("stop"), 0);
    let created = runtime_stop.create(&spec(&command)).await.unwrap();
    runtime_stop.start(&created.container_id).await.unwrap();
    let limit = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&stopped)
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        assert!(Instant::now() < limit, "the helper never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runtime_stop
        .stop(&created.container_id, Duration::from_secs(5))
        .await
        .unwrap();
    helpers_gone(&stopped, 1).await;

    // An engine that crashes (and is restarted once) leaves no helper behind either.
    let (command, crashed) = script("crashed", "sleep 0.2; exit 3");
    let runtime_crash = runtime(&root.path().join("crash"), 1);
    let created = runtime_crash.create(&spec(&command)).await.unwrap();
    runtime_crash.start(&created.container_id).await.unwrap();
    eventually("the crashed engine exited for good", || async {
        let info = runtime_crash.inspect(&created.container_id).await.unwrap();
        info.state == "exited"
    })
    .await;
    helpers_gone(&crashed, 2).await;
}
