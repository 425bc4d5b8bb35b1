//! A whole game in dev mode, in-process on port 0, with the process runtime and the
//! reference engine as `galaxy-server reference-engine` serves it (the default when no
//! `galaxy-engine` binary was built, as on a fresh clone): three players log in and enrol, the host starts the game, it
//! reaches `running`, players submit orders, two turns are forced by an admin and one
//! more is scheduled, each player reads their own turn-3 report (and nobody else can),
//! and stopping the game cancels it and ends its engine process. The game loop's metrics
//! count what happened.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;
mod runtime_support;

use runtime_support::play_a_game;

/// The value of the sample `series` (name and labels exactly as rendered), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dev_mode_game_runs_on_the_process_runtime() {
    // The process-wide recorder, installed before anything is measured.
    let handle = galaxy_server::telemetry::prometheus_handle().unwrap();
    let server =
        galaxy_server::config::runtime::quote(env!("CARGO_BIN_EXE_galaxy-server").as_ref());
    let engines = format!("reference={server} reference-engine");
    play_a_game(&[("GALAXY_PROCESS_ENGINES", engines)]).await;

    let text = handle.render();
    let at_least = |series: &str, least: f64| {
        let value = sample(&text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"));
        assert!(value >= least, "{series} = {value}, expected >= {least}");
    };
    // Three turns were played (two forced, one scheduled).
    at_least("galaxy_turns_total{outcome=\"ok\"}", 3.0);
    at_least("galaxy_turn_duration_seconds_count", 3.0);
    at_least(
        "galaxy_engine_requests_total{operation=\"run_turn\",outcome=\"ok\"}",
        3.0,
    );
    at_least(
        "galaxy_engine_requests_total{operation=\"init\",outcome=\"ok\"}",
        1.0,
    );
    at_least(
        "galaxy_engine_requests_total{operation=\"submit_orders\",outcome=\"ok\"}",
        1.0,
    );
    at_least(
        "galaxy_container_operations_total{operation=\"start\",outcome=\"ok\"}",
        1.0,
    );
    at_least(
        "galaxy_container_operations_total{operation=\"stop\",outcome=\"ok\"}",
        1.0,
    );
    // Every login code went out as a mail.
    at_least("galaxy_mail_sends_total{outcome=\"ok\"}", 5.0);
    assert!(
        text.contains("# HELP galaxy_turns_total Turns the engines were asked to run"),
        "{text}"
    );
    assert!(text.contains("galaxy_build_info{version=\""), "{text}");
}
