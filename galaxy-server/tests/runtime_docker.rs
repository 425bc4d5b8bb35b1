//! The dev-mode game flow of `runtime_dev`, with the engine in a real Docker container
//! (image `galaxy-engine:0.2`, built by scripts/test.sh). Skipped, with the reason
//! printed, when Docker or the image is missing, unless `GALAXY_REQUIRE_DOCKER=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;
mod runtime_support;

use std::process::Command;

use runtime_support::play_a_game;

/// The image the default registry names.
const IMAGE: &str = "galaxy-engine:0.2";

/// Why Docker cannot be used here, if it cannot.
fn docker_missing() -> Option<String> {
    let inspect = Command::new("docker")
        .args(["image", "inspect", IMAGE, "--format", "{{.Id}}"])
        .output();
    match inspect {
        Err(error) => Some(format!("the docker CLI cannot run: {error}")),
        Ok(out) if !out.status.success() => Some(format!(
            "image {IMAGE} is not available (scripts/test.sh builds it): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => None,
    }
}

fn containers_of(game: &str) -> String {
    let out = Command::new("docker")
        .args(["ps", "-a", "-q", "--filter"])
        .arg(format!("label=galaxy.game_id={game}"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_game_runs_in_a_docker_container() {
    if let Some(reason) = docker_missing() {
        assert!(
            std::env::var("GALAXY_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "GALAXY_REQUIRE_DOCKER=1 but {reason}"
        );
        eprintln!("skipping the Docker end-to-end test: {reason}");
        return;
    }
    let game = play_a_game(&[
        ("GALAXY_RUNTIME", "docker".to_owned()),
        ("GALAXY_ENGINES", format!("reference={IMAGE}")),
    ])
    .await;
    // The stop job removed the container (its volume stays for the record).
    let mut left = containers_of(&game);
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        left = containers_of(&game);
    }
    assert!(left.is_empty(), "containers left for {game}: {left}");
}
