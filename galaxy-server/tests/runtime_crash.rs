//! A running game survives a crash of its engine: after a turn, the engine process is
//! killed with SIGKILL (in dev mode the process runtime's child; on Docker the container's
//! process, seen from the host, which the `on-failure` restart policy restarts). The
//! restart is detected (an `inspect_unhealthy` health event, listed by
//! `GET /api/v1/admin/health-events`), the game keeps its turn (the engine resumes from
//! its data directory / volume) and the next forced turn works.
//!
//! `docker kill` is different: Docker takes it for a manual stop and never restarts the
//! container. The platform does: the inspect pass sees the running game's container
//! `exited`, stores a health event and queues a restart job, which starts the same
//! container again (same volume, same endpoint); the game keeps its turn and the next
//! forced turn works. Docker tests are skipped, with the reason printed, unless
//! `GALAXY_REQUIRE_DOCKER=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;
mod runtime_support;

use std::net::SocketAddr;
use std::time::Duration;

use lifecycle_support::{eventually, send};
use runtime_support::{
    RunningGame, containers_of, docker, docker_vars, engine_pid, process_vars, record, run_a_game,
    skip_without_docker,
};
use serde_json::Value;

/// `kill -9 pid`.
fn kill_9(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -9 {pid}");
}

/// Plays one forced turn and lets the inspect worker take its restart-count baseline.
async fn before_the_crash(running: &RunningGame) -> u64 {
    let turn = force_turn(running).await;
    assert_eq!(turn, 1);
    // The inspect pass runs every 500 ms; its first look only sets the baseline.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let events = running.health_events().await;
    assert!(events.is_empty(), "{events:?}");
    turn
}

/// Waits for a health event of `kind` about this game; returns it.
async fn event_of(running: &RunningGame, kind: &str) -> Value {
    eventually(Duration::from_secs(30), kind, || async {
        running
            .health_events()
            .await
            .into_iter()
            .find(|event| event["kind"] == kind)
    })
    .await
}

/// Waits for the crash to be reported: an `inspect_unhealthy` event, from the inspect
/// worker (restart count 1 over its baseline) or from the events listener (the process
/// died) when the inspect pass had not yet taken its baseline on a loaded machine.
async fn restart_detected(running: &RunningGame) -> Value {
    eventually(Duration::from_secs(30), "the restart detected", || async {
        running.health_events().await.into_iter().find(|event| {
            event["kind"] == "inspect_unhealthy"
                && (event["detail"]["restart_count"] == 1
                    || event["detail"]["reason"] == "container_died")
        })
    })
    .await
}

/// Forces one turn, retrying while the engine is not answering yet (503).
async fn force_turn(running: &RunningGame) -> u64 {
    let path = format!("/api/v1/admin/games/{}/force-next-turn", running.game);
    eventually(Duration::from_secs(30), "a forced turn", || async {
        match running.admin.request("POST", &path, None).await {
            (200, record) => record["current_turn"].as_u64(),
            (503, _) => None,
            (409, error) if error["error"]["code"] == "turn_in_progress" => None,
            (status, body) => panic!("force-next-turn: {status} {body}"),
        }
    })
    .await
}

/// After a restart: same turn, the engine answers again, and the next forced turn works.
async fn after_the_restart(running: &RunningGame, turn: u64) {
    // Docker's port proxy accepts connections before the engine listens: ask `/healthz`.
    let engine_addr: SocketAddr = running
        .endpoint
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    eventually(Duration::from_secs(30), "the engine back", || async move {
        let answer = send(engine_addr, "GET", "/healthz", &[], "").await;
        answer.ok().filter(|r| r.status == 200).map(|_| ())
    })
    .await;
    let record = record(&running.admin, &running.game).await;
    assert_eq!(record["current_turn"], turn, "{record}");
    assert_eq!(running.game_view().await["status"], "running");
    let next = force_turn(running).await;
    assert_eq!(next, turn + 1, "the engine resumed its state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dev_mode_engine_killed_is_restarted_and_the_game_goes_on() {
    let running = run_a_game(&process_vars()).await;
    let turn = before_the_crash(&running).await;
    let pid = engine_pid(&running.endpoint).expect("the engine process");
    kill_9(pid);
    let event = restart_detected(&running).await;
    eprintln!("health event: {event}");
    eventually(Duration::from_secs(30), "a new engine process", || async {
        engine_pid(&running.endpoint).filter(|p| *p != pid)
    })
    .await;
    after_the_restart(&running, turn).await;
    running.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_whose_engine_is_killed_is_restarted_and_the_game_goes_on() {
    if skip_without_docker("the Docker crash test") {
        return;
    }
    let running = run_a_game(&docker_vars()).await;
    let turn = before_the_crash(&running).await;
    let container = containers_of(&running.game);
    let pid: u32 = docker(&["inspect", "-f", "{{.State.Pid}}", &container])
        .parse()
        .unwrap();
    kill_9(pid);
    let event = restart_detected(&running).await;
    eprintln!("health event: {event}");
    let restarts = docker(&["inspect", "-f", "{{.RestartCount}}", &container]);
    assert_eq!(restarts, "1", "the restart policy restarted it");
    after_the_restart(&running, turn).await;
    // Stopped, so its container and network do not outlive the test.
    let stop = format!("/api/v1/admin/games/{}/stop", running.game);
    let (status, game) = running.admin.request("POST", &stop, None).await;
    assert_eq!(status, 200, "{game}");
    let game_id = running.game.clone();
    eventually(Duration::from_secs(30), "the container removed", || async {
        containers_of(&game_id).is_empty().then_some(())
    })
    .await;
    running.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_killed_container_is_started_again_and_the_game_goes_on() {
    if skip_without_docker("the docker kill test") {
        return;
    }
    let running = run_a_game(&docker_vars()).await;
    let turn = before_the_crash(&running).await;
    let container = containers_of(&running.game);
    docker(&["kill", &container]);
    let event = event_of(&running, "inspect_unhealthy").await;
    eprintln!("health event: {event}");
    // Docker never restarts a container stopped by `docker kill`: the restart job does,
    // the same container (its restart count stays 0).
    let restarted = eventually(
        Duration::from_secs(60),
        "the container running again",
        || {
            let container = container.clone();
            async move {
                let state = docker(&[
                    "inspect",
                    "-f",
                    "{{.State.Status}} {{.RestartCount}}",
                    &container,
                ]);
                (state == "running 0").then_some(state)
            }
        },
    )
    .await;
    eprintln!("container after the restart job: {restarted}");
    assert_eq!(
        containers_of(&running.game),
        container,
        "the same container"
    );
    after_the_restart(&running, turn).await;
    let game = running.game.clone();
    let admin = &running.admin;
    let healthy = eventually(Duration::from_secs(30), "the record healthy", || async {
        let record = record(admin, &game).await;
        (record["healthy"] == true).then_some(record)
    })
    .await;
    eprintln!("record after the restart: {healthy}");
    // Stopping the game still cleans up.
    let stop = format!("/api/v1/admin/games/{}/stop", running.game);
    let (status, game) = running.admin.request("POST", &stop, None).await;
    assert_eq!(status, 200, "{game}");
    let game_id = running.game.clone();
    eventually(Duration::from_secs(30), "the container removed", || async {
        containers_of(&game_id).is_empty().then_some(())
    })
    .await;
    running.shut_down().await;
}

/// `kill -<signal> pid`.
fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

#[cfg(feature = "web")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_sent_from_the_page_come_back_with_it_when_they_are_not_taken() {
    let running = run_a_game(&process_vars()).await;
    let (player, _) = &running.players[1];
    let page = format!("/games/{}", running.game);
    let action = format!("{page}/orders");
    let typed = "kept across the outage";
    // The engine hangs (stopped): the call times out, and the page answers 503 with the
    // reason and what was typed, not an error page without either.
    let pid = engine_pid(&running.endpoint).expect("the engine process");
    signal(pid, "-STOP");
    let (status, html) = player
        .post_form(&page, &action, &[("turn", "1"), ("orders", typed)])
        .await;
    signal(pid, "-CONT");
    assert_eq!(status, 503, "{html}");
    assert!(html.contains("These orders were not taken"), "{html}");
    assert!(html.contains(typed), "the typed orders are lost: {html}");
    assert!(html.contains("id=\"orders-text\""), "{html}");
    // The game ended meanwhile (an admin stopped it): the page still says why, and keeps
    // the text where the editor was.
    let stop = format!("/api/v1/admin/games/{}/stop", running.game);
    let (stopped, body) = running.admin.request("POST", &stop, None).await;
    assert_eq!(stopped, 200, "{body}");
    let (status, html) = player
        .post_form(&page, &action, &[("turn", "1"), ("orders", typed)])
        .await;
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("These orders were not taken"), "{html}");
    assert!(html.contains(typed), "the typed orders are lost: {html}");
    running.shut_down().await;
}

/// The orders form sent again (Reload after sending, Back from a report, a second tab)
/// does not replace the orders sent since: it carries the submission its page showed,
/// and is refused, its text kept, once another is latest.
#[cfg(feature = "web")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orders_form_sent_again_does_not_replace_orders_sent_since() {
    let running = run_a_game(&process_vars()).await;
    let (player, _) = &running.players[1];
    let page = format!("/games/{}", running.game);
    let action = format!("{page}/orders");
    let shown_on = |html: &str| {
        html.split("name=\"shown\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_owned)
            .expect("the orders form names what it showed")
    };
    let (_, html) = player.page(&page).await;
    let first = shown_on(&html);
    assert_eq!(first, "", "no orders yet: {html}");
    let sent = [("turn", "1"), ("orders", "[]"), ("shown", first.as_str())];
    let (status, html) = player.post_form(&page, &action, &sent).await;
    assert_eq!(status, 200, "{html}");
    let taken = shown_on(&html);
    assert!(
        !taken.is_empty(),
        "the answer's form shows the orders just sent"
    );
    // Reload of that answer (the same form, the same text): its verdict again, 200.
    let (status, html) = player.post_form(&page, &action, &sent).await;
    assert_eq!(status, 200, "{html}");
    // The form sent again with other orders (edited after Back): refused, the text
    // kept, nothing recorded (the reload above recorded nothing either).
    let again = [
        ("turn", "1"),
        ("orders", "[\"again\"]"),
        ("shown", first.as_str()),
    ];
    let (status, html) = player.post_form(&page, &action, &again).await;
    assert_eq!(status, 409, "{html}");
    assert!(
        html.contains("changed after this page was loaded"),
        "{html}"
    );
    assert!(
        html.contains("[&quot;again&quot;]"),
        "the text is lost: {html}"
    );
    let orders = format!("/api/v1/user/games/{}/orders/1", running.game);
    let (_, read) = player.request("GET", &orders, None).await;
    assert_eq!(read["latest"]["orders"], serde_json::json!([]), "{read}");
    assert_eq!(read["history"].as_array().map(Vec::len), Some(0), "{read}");
    // Sent from the page that came back (it showed the orders in force): taken.
    let next = [
        ("turn", "1"),
        ("orders", " [ ] "),
        ("shown", taken.as_str()),
    ];
    let (status, html) = player.post_form(&page, &action, &next).await;
    assert_eq!(status, 200, "{html}");
    let (_, read) = player.request("GET", &orders, None).await;
    assert_eq!(read["history"].as_array().map(Vec::len), Some(1), "{read}");
    running.shut_down().await;
}
