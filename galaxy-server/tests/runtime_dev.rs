//! A whole game in dev mode, in-process on port 0, with the process runtime and the real
//! reference engine binary: three players log in and enrol, the host starts the game, it
//! reaches `running`, players submit orders, two turns are forced by an admin and one
//! more is scheduled, each player reads their own turn-3 report (and nobody else can),
//! and stopping the game cancels it and ends its engine process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;
mod runtime_support;

use runtime_support::{engine_binary, play_a_game};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dev_mode_game_runs_on_the_process_runtime() {
    let engines = format!("reference={}", engine_binary().display());
    play_a_game(&[("GALAXY_PROCESS_ENGINES", engines)]).await;
}
