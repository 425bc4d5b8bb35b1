//! A game played to its end: the reference engine ends it at its turn limit (50 turns by
//! default), the game becomes `finished`, its stop job runs and the engine goes away — a
//! child process in dev mode, a container (no container left with the game's label) on
//! Docker. Docker is skipped, with the reason printed, unless `GALAXY_REQUIRE_DOCKER=1`.
//! A game an admin stops instead keeps its reports for its players, on the pages too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;
mod runtime_support;

use std::time::Duration;

use lifecycle_support::eventually;
use runtime_support::{
    RunningGame, containers_of, docker_vars, engine_pid, force, process_vars, record, run_a_game,
    skip_without_docker,
};
use tokio::net::TcpStream;

/// The reference engine's default `max_turns`.
const MAX_TURNS: u64 = 50;

/// Forces turns until the game is `finished`; returns the game's last turn.
async fn play_to_the_end(running: &RunningGame) -> u64 {
    let path = format!("/api/v1/admin/games/{}/force-next-turn", running.game);
    let mut last = 0;
    for _ in 0..MAX_TURNS * 3 {
        match running.admin.request("POST", &path, None).await {
            (200, record) => {
                let turn = record["current_turn"].as_u64().unwrap();
                assert!(turn > last, "turn {turn} after {last}");
                last = turn;
            }
            (409, error) if error["error"]["code"] == "turn_in_progress" => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (status, body) => {
                let game = running.game_view().await;
                assert_eq!(game["status"], "finished", "{status} {body}; {game}");
                break;
            }
        }
        if running.game_view().await["status"] == "finished" {
            break;
        }
    }
    let game = running.game_view().await;
    assert_eq!(game["status"], "finished", "{game}");
    last
}

/// Plays `running` to its end and checks that its engine stopped answering.
async fn finish(running: &RunningGame) {
    let last = play_to_the_end(running).await;
    assert_eq!(last, MAX_TURNS, "the engine ends at its turn limit");
    // The stop job ran: the record leaves `running` and the engine no longer answers.
    let admin = running.admin.clone();
    eventually(
        Duration::from_secs(30),
        "the runtime record stopped",
        || {
            let admin = admin.clone();
            async move {
                let record = record(&admin, &running.game).await;
                (record["status"] != "running" && record["status"] != "starting").then_some(())
            }
        },
    )
    .await;
    let engine_addr = running.endpoint.trim_start_matches("http://").to_owned();
    eventually(Duration::from_secs(30), "the engine gone", || {
        let engine_addr = engine_addr.clone();
        async move { TcpStream::connect(engine_addr).await.is_err().then_some(()) }
    })
    .await;
    // A finished game takes no more turns.
    let path = format!("/api/v1/admin/games/{}/force-next-turn", running.game);
    let (status, _) = running.admin.request("POST", &path, None).await;
    assert_ne!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_dev_mode_game_ends_its_engine_process() {
    let running = run_a_game(&process_vars()).await;
    let pid = engine_pid(&running.endpoint).expect("the engine process");
    finish(&running).await;
    eventually(
        Duration::from_secs(30),
        "the engine process gone",
        || async { engine_pid(&running.endpoint).is_none().then_some(()) },
    )
    .await;
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}/environ")).exists()
            || engine_pid(&running.endpoint).is_none()
    );
    running.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_game_has_its_container_removed() {
    if skip_without_docker("the Docker finish test") {
        return;
    }
    let running = run_a_game(&docker_vars()).await;
    assert!(!containers_of(&running.game).is_empty());
    finish(&running).await;
    let game = running.game.clone();
    eventually(Duration::from_secs(30), "the container removed", || async {
        containers_of(&game).is_empty().then_some(())
    })
    .await;
    running.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_games_players_still_read_their_reports_on_its_page() {
    let running = run_a_game(&process_vars()).await;
    assert_eq!(force(&running.admin, &running.game).await, 1);
    let stop = format!("/api/v1/admin/games/{}/stop", running.game);
    let (status, game) = running.admin.request("POST", &stop, None).await;
    assert_eq!(
        (status, game["status"].as_str()),
        (200, Some("cancelled")),
        "{game}"
    );
    let (player, race) = &running.players[1];
    let (status, page) = player.page(&format!("/games/{}", running.game)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"reports\""), "{page}");
    assert!(
        page.contains(&format!(" 1 · {race}")),
        "turn 1's report: {page}"
    );
    // The turn list offers turn 0 too.
    assert!(page.contains("<option value=\"0\""), "{page}");
    // A turn never played is said so, not shown as an empty section.
    let (status, page) = player
        .page(&format!("/games/{}?turn=7", running.game))
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("id=\"report-missing\"") && page.contains("turn 7 has not been played"),
        "{page}"
    );
    let (_, outsider) = running
        .outsider
        .page(&format!("/games/{}", running.game))
        .await;
    assert!(
        !outsider.contains("id=\"reports\""),
        "no reports for an outsider"
    );
    running.shut_down().await;
}

/// The admin games page's force button posts the turn it was shown for: a second click
/// of the same button (or a stale page) is refused as not the next turn, and the game
/// plays one turn, not two.
#[cfg(feature = "web")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_pages_force_button_plays_one_turn_however_often_it_is_clicked() {
    let running = run_a_game(&process_vars()).await;
    let page = "/admin/games?status=running";
    let (status, html) = running.admin.page(page).await;
    assert_eq!(status, 200, "{html}");
    let action = format!("/admin/games/{}/force-next-turn", running.game);
    let form = html
        .split(&format!("action=\"{action}\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no force button: {html}"));
    let (attributes, fields) = form.split_once('>').unwrap_or_default();
    assert!(
        fields.starts_with("<input type=\"hidden\" name=\"csrf\"")
            && fields.contains("name=\"turn\" value=\"1\""),
        "the button posts turn 1: {form}"
    );
    assert!(
        attributes.contains("data-confirm="),
        "forcing a turn asks first: {form}"
    );
    let first = running
        .admin
        .post_form(page, &action, &[("turn", "1")])
        .await;
    assert_eq!(first.0, 303, "{}", first.1);
    let again = running
        .admin
        .post_form(page, &action, &[("turn", "1")])
        .await;
    assert_eq!(again.0, 409, "{}", again.1);
    assert!(again.1.contains("not the next turn"), "{}", again.1);
    let record = record(&running.admin, &running.game).await;
    assert_eq!(record["current_turn"], 1, "{record}");
    running.shut_down().await;
}
