//! The whole-game flow shared by the runtime end-to-end tests (process runtime and
//! Docker): log in, enrol, start, play forced and scheduled turns, read reports, stop.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use galaxy_server::{Config, Listeners, dev};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use crate::lifecycle_support::{self, eventually, log_in, send};

/// The reference engine's binary: `GALAXY_ENGINE_BIN`, else `target/<profile>/galaxy-engine`
/// (built with `cargo build -p galaxy-engine` when missing).
pub fn engine_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("GALAXY_ENGINE_BIN") {
                return PathBuf::from(path);
            }
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
            let binary = profile_dir.join("galaxy-engine");
            if !binary.is_file() {
                let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
                let mut command = Command::new(cargo);
                command
                    .current_dir(&workspace)
                    .args(["build", "-p", "galaxy-engine", "--bin", "galaxy-engine"])
                    .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap());
                if profile_dir.file_name().is_some_and(|n| n == "release") {
                    command.arg("--release");
                }
                assert!(
                    command.status().unwrap().success(),
                    "building galaxy-engine failed"
                );
            }
            assert!(binary.is_file(), "{} was not built", binary.display());
            binary
        })
        .clone()
}

/// One signed-in caller of the served API.
#[derive(Clone)]
pub struct Caller {
    addr: SocketAddr,
    auth: String,
}

impl Caller {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let headers = [("authorization", self.auth.as_str())];
        let response = send(self.addr, method, path, &headers, &body)
            .await
            .unwrap();
        let json = serde_json::from_str(&response.body).unwrap_or(Value::Null);
        (response.status, json)
    }

    async fn expect(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let (got, json) = self.call(method, path, body).await;
        assert_eq!(got, status, "{method} {path}: {json}");
        json
    }
}

pub async fn record(admin: &Caller, game: &str) -> Value {
    let path = format!("/api/v1/admin/runtime/records/{game}");
    admin.expect("GET", &path, None, 200).await
}

/// Forces one turn, retrying while a scheduled turn holds the game; returns the turn.
pub async fn force(admin: &Caller, game: &str) -> u64 {
    let path = format!("/api/v1/admin/games/{game}/force-next-turn");
    eventually(Duration::from_secs(30), "a forced turn", || async {
        match admin.call("POST", &path, None).await {
            (200, record) => record["current_turn"].as_u64(),
            (409, error) if error["error"]["code"] == "turn_in_progress" => None,
            (status, body) => panic!("force-next-turn: {status} {body}"),
        }
    })
    .await
}

/// Plays one game on a dev-mode app configured by `runtime_vars` (on top of a temporary
/// data directory and fast workers); returns the game's id once it is stopped and its
/// engine no longer answers.
pub async fn play_a_game(runtime_vars: &[(&str, String)]) -> String {
    let data = tempfile::tempdir().unwrap();
    let vars: HashMap<String, String> = [
        ("GALAXY_DATA_DIR", data.path().display().to_string()),
        ("GALAXY_MAIL_INTERVAL", "100ms".to_owned()),
        ("GALAXY_RUNTIME_INTERVAL", "100ms".to_owned()),
        ("GALAXY_HEALTH_INTERVAL", "1s".to_owned()),
    ]
    .into_iter()
    .chain(runtime_vars.iter().cloned())
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let app = dev::build(Config::from_vars(&vars).unwrap()).await.unwrap();
    let listeners = Listeners::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
    let addr = listeners.http_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(app.serve(listeners, async {
        let _ = stopped.await;
    }));
    lifecycle_support::wait_ready(addr, Duration::from_secs(10)).await;

    let mail = dev::mail_dir(&Config::from_vars(&vars).unwrap());
    let login = |email: &'static str| {
        let mail = mail.clone();
        async move {
            let auth = log_in(addr, &mail, email).await;
            Caller { addr, auth }
        }
    };
    let admin = login(dev::DEV_ADMIN).await;
    let players = [
        (login("ann@example.org").await, "Aldebarans"),
        (login("bob@example.org").await, "Betelgeusians"),
        (login("cy@example.org").await, "Capellans"),
    ];
    let outsider = login("dee@example.org").await;
    let host = &players[0].0;

    // A schedule every 5 seconds, so a scheduled turn comes soon after the forced ones.
    let game = host
        .expect(
            "POST",
            "/api/v1/user/games",
            Some(json!({
                "name": "Dev game",
                "min_players": 3,
                "max_players": 4,
                "enrollment_deadline": "2099-01-01T00:00:00Z",
                "turn_schedule": "*/5 * * * * *",
            })),
            201,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let games = format!("/api/v1/user/games/{game}");
    host.expect("POST", &format!("{games}/open"), None, 200)
        .await;
    for (player, race) in &players {
        let application = player
            .expect(
                "POST",
                &format!("{games}/applications"),
                Some(json!({ "race_name": race })),
                201,
            )
            .await;
        let id = application["id"].as_str().unwrap();
        let approve = format!("{games}/applications/{id}/approve");
        host.expect("POST", &approve, None, 200).await;
    }
    host.expect("POST", &format!("{games}/close"), None, 200)
        .await;
    let starting = host
        .expect("POST", &format!("{games}/start"), None, 200)
        .await;
    assert_eq!(starting["status"], "starting");
    eventually(Duration::from_secs(60), "the game running", || async {
        let (_, game) = host.call("GET", &games, None).await;
        assert_ne!(game["status"], "start_failed", "{game}");
        (game["status"] == "running").then_some(())
    })
    .await;
    let bound = record(&admin, &game).await;
    assert_eq!(bound["status"], "running", "{bound}");
    let endpoint = bound["engine_endpoint"].as_str().unwrap().to_owned();

    // Orders from every player for the next turn; a malformed set is refused by the engine.
    let next = bound["current_turn"].as_u64().unwrap() + 1;
    for (player, _) in &players {
        let verdict = player
            .expect(
                "PUT",
                &format!("{games}/orders"),
                Some(json!({ "turn": next, "orders": [] })),
                200,
            )
            .await;
        assert_eq!(verdict["accepted"], true, "{verdict}");
    }
    let refused = host
        .expect(
            "PUT",
            &format!("{games}/orders"),
            Some(json!({ "turn": next, "orders": "not a list" })),
            200,
        )
        .await;
    assert_eq!(refused["accepted"], false, "{refused}");
    assert!(!refused["errors"].as_array().unwrap().is_empty());
    outsider
        .expect(
            "PUT",
            &format!("{games}/orders"),
            Some(json!({ "turn": next, "orders": [] })),
            404,
        )
        .await;

    // Two forced turns, then a scheduled one (the first due tick after a force is skipped).
    let first = force(&admin, &game).await;
    let second = force(&admin, &game).await;
    assert!(second > first, "{first} then {second}");
    let turn = eventually(Duration::from_secs(30), "a scheduled turn", || async {
        let turn = record(&admin, &game).await["current_turn"]
            .as_u64()
            .unwrap();
        (turn > second).then_some(turn)
    })
    .await;
    assert!(turn >= 3);

    for (player, race) in &players {
        let report = player
            .expect("GET", &format!("{games}/reports/3"), None, 200)
            .await;
        assert_eq!(report["race"], *race, "{report}");
        assert_eq!(report["turn"], 3, "{report}");
        assert!(report["text"].is_string(), "{report}");
    }
    // Nobody else's race: a non-player (and an admin, who plays no race) gets 404.
    outsider
        .expect("GET", &format!("{games}/reports/3"), None, 404)
        .await;
    admin
        .expect("GET", &format!("{games}/reports/3"), None, 404)
        .await;

    // Stop: the game is cancelled and its engine process goes away.
    let stopped_game = admin
        .expect(
            "POST",
            &format!("/api/v1/admin/games/{game}/stop"),
            None,
            200,
        )
        .await;
    assert_eq!(stopped_game["status"], "cancelled", "{stopped_game}");
    let engine_addr = endpoint.trim_start_matches("http://").to_owned();
    eventually(Duration::from_secs(30), "the engine process gone", || {
        let engine_addr = engine_addr.clone();
        async move { TcpStream::connect(engine_addr).await.is_err().then_some(()) }
    })
    .await;

    stop.send(()).unwrap();
    let report = served.await.unwrap().unwrap();
    assert!(report.workers_stopped, "{report:?}");
    game
}
