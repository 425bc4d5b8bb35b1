//! A runtime started again on the same data root (a server restart) knows the containers
//! of the one before it and resumes the engines the platform had running: same endpoint,
//! same token, same game state. One the platform stopped stays stopped, one it removed is
//! gone; the saved records are private and never print the token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{client, engine_binary, init, spec, target, wait_healthy};
use galaxy_core::ports::{ContainerRuntime, EngineClient};
use galaxy_process_runtime::{ProcessRuntime, ProcessRuntimeConfig};

fn runtime(root: &std::path::Path) -> ProcessRuntime {
    ProcessRuntime::new(ProcessRuntimeConfig::new(root)).unwrap()
}

#[tokio::test]
async fn a_new_runtime_resumes_the_engines_the_last_one_had_running() {
    let root = tempfile::tempdir().unwrap();
    let engine = engine_binary().display().to_string();
    let first = runtime(root.path());
    let client = client();
    // Three containers: one running (initialised), one started then stopped, one removed.
    let (running, stopped, removed) = (spec(&engine), spec(&engine), spec(&engine));
    let mut created = Vec::new();
    for spec in [&running, &stopped, &removed] {
        let container = first.create(spec).await.unwrap();
        first.start(&container.container_id).await.unwrap();
        wait_healthy(&client, &target(spec, &container)).await;
        created.push(container);
    }
    let live = target(&running, &created[0]);
    client.init(&live, &init(running.game_id)).await.unwrap();
    let state = client.state(&live).await.unwrap();
    first
        .stop(&created[1].container_id, Duration::from_secs(5))
        .await
        .unwrap();
    first.remove(&created[2].container_id).await.unwrap();
    // The server goes away: its engines stop with it.
    first.shutdown(Duration::from_secs(5)).await;
    assert!(client.healthz(&live).await.is_err(), "the engine stopped");

    let second = runtime(root.path());
    let listed = second.list_by_label("galaxy.backend", "1").await.unwrap();
    let mut names: Vec<&str> = listed.iter().map(|c| c.container_id.as_str()).collect();
    names.sort_unstable();
    let mut expected = vec![running.name.as_str(), stopped.name.as_str()];
    expected.sort_unstable();
    assert_eq!(names, expected, "the removed container is gone");
    assert!(listed.iter().all(|c| c.state == "exited"), "{listed:?}");

    let resumable = second.resumable();
    assert_eq!(resumable.len(), 1, "{resumable:?}");
    let saved = &resumable[0];
    assert_eq!(
        (&saved.container_id, saved.game_id, &saved.engine),
        (&running.name, running.game_id, &running.engine)
    );
    assert!(
        saved.token == running.token,
        "the token it was created with"
    );
    assert!(!format!("{resumable:?} {second:?}").contains(running.token.expose()));
    let resumed = second
        .resume(
            &[running.name.clone(), "unknown".to_owned()],
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(resumed, vec![running.name.clone()]);
    // Listening once resume returns, at the same endpoint, with the same token and the
    // game where it was.
    client.healthz(&live).await.unwrap();
    assert_eq!(client.state(&live).await.unwrap(), state);
    let info = second.inspect(&running.name).await.unwrap();
    assert_eq!(info.state, "running");
    assert_eq!(second.inspect(&stopped.name).await.unwrap().state, "exited");
    // A create retried after the restart (a start job claimed again) finds it.
    let again = second.create(&running).await.unwrap();
    assert_eq!(again.engine_endpoint, created[0].engine_endpoint);
    // The saved records are private to the server's user, and none lies in the
    // engine's own data directory.
    use std::os::unix::fs::PermissionsExt;
    let saved_dir = root
        .path()
        .join(galaxy_process_runtime::SAVED_CONTAINERS_DIR);
    for entry in std::fs::read_dir(&saved_dir).unwrap().flatten() {
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", entry.path().display());
    }
    let data = second.data_dir(&running.name);
    for entry in std::fs::read_dir(&data).unwrap().flatten() {
        let text = std::fs::read(entry.path()).unwrap_or_default();
        let token = running.token.expose().as_bytes();
        assert!(
            !text.windows(token.len()).any(|w| w == token),
            "{} holds the token",
            entry.path().display()
        );
    }
    second.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_hidden_container_name_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let runtime = runtime(root.path());
    let mut hidden = spec(&engine_binary().display().to_string());
    hidden.name = ".containers".to_owned();
    assert!(runtime.create(&hidden).await.is_err());
}
