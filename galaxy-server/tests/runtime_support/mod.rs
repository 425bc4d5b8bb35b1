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

/// Held while a test runs games on the shared Docker daemon. Each app's reconciler
/// removes every `galaxy.backend` container its own store does not know, so two apps on
/// one daemon (tests in parallel, in one process or several under nextest) would remove
/// each other's containers. The lock is a listener on a fixed loopback port: exclusive
/// across processes and released when its holder exits, even by a crash.
pub struct DockerLock(Option<std::net::TcpListener>);

/// The port of [`DockerLock`] (below the ephemeral range).
const DOCKER_LOCK_PORT: u16 = 29517;

/// Takes the [`DockerLock`] when `runtime_vars` choose the Docker runtime.
pub async fn docker_lock(runtime_vars: &[(&str, String)]) -> DockerLock {
    let docker = runtime_vars
        .iter()
        .any(|(k, v)| *k == "GALAXY_RUNTIME" && v == "docker");
    if !docker {
        return DockerLock(None);
    }
    let started = std::time::Instant::now();
    loop {
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", DOCKER_LOCK_PORT)) {
            return DockerLock(Some(listener));
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the Docker test lock (127.0.0.1:{DOCKER_LOCK_PORT}) was not free in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    let _docker = docker_lock(runtime_vars).await;
    let data = tempfile::tempdir().unwrap();
    let DevServer {
        addr,
        stop,
        served,
        mail,
    } = start_dev(&data, "1s", runtime_vars).await;

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
                // Every player's orders are in before the forced turns: a turn run early
                // once every race is ready would push the next deadline `min_turn_gap`
                // (an hour) away, and the scheduled turn this test waits for with it
                // (seen in CI: turn 3 with `next_turn_at` an hour out).
                "early_turn": false,
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
    // Waited for here rather than with `eventually`, so that a timeout tells what the
    // game and its engine were doing (paused by the health watcher, a failed turn, ...).
    let waiting = std::time::Instant::now();
    let turn = loop {
        let runtime = record(&admin, &game).await;
        let turn = runtime["current_turn"].as_u64().unwrap();
        if turn > second {
            eprintln!(
                "scheduled turn {turn} came {:?} after turn {second}",
                waiting.elapsed()
            );
            break turn;
        }
        if waiting.elapsed() > Duration::from_secs(30) {
            let (status, state) = host.call("GET", &games, None).await;
            panic!(
                "no scheduled turn after turn {second} within 30 s; runtime record: \
                 {runtime}; game ({status}): {state}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
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

impl Caller {
    /// One call as this caller: the status and the JSON body (`Null` when not JSON).
    pub async fn request(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call(method, path, body).await
    }

    /// A web page as this caller sees it, signed in (the session cookie holds the same
    /// session token as the API's bearer): the status and the HTML.
    pub async fn page(&self, path: &str) -> (u16, String) {
        let token = self.auth.trim_start_matches("Bearer ");
        let cookie = format!("galaxy_session={token}");
        let response = send(self.addr, "GET", path, &[("cookie", cookie.as_str())], "")
            .await
            .unwrap();
        (response.status, response.body)
    }

    /// Posts a form of the pages as this caller: `fields`, with the CSRF token read from
    /// `page` first, as a browser does. The status and the HTML.
    #[cfg(feature = "web")]
    pub async fn post_form(
        &self,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> (u16, String) {
        let (_, html) = self.page(page).await;
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_owned();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let body = serde_urlencoded::to_string(&all).unwrap();
        let token = self.auth.trim_start_matches("Bearer ");
        let cookie = format!("galaxy_session={token}");
        let headers = [
            ("cookie", cookie.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ];
        let response = send(self.addr, "POST", action, &headers, &body)
            .await
            .unwrap();
        (response.status, response.body)
    }
}

/// A dev-mode app serving on port 0 with one game of three players already `running`
/// (no turn schedule: turns are forced). Used by the finish and crash tests.
pub struct RunningGame {
    /// The dev admin.
    pub admin: Caller,
    /// The game's host (a player).
    pub host: Caller,
    /// The game's id.
    pub game: String,
    /// The engine's base URL from the runtime record.
    pub endpoint: String,
    /// Every player (the host first) with their race.
    pub players: Vec<(Caller, String)>,
    /// A signed-in user who plays no race in the game.
    pub outsider: Caller,
    /// Where the dev mailer writes its `.eml` files.
    pub mail: PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<Result<galaxy_server::ShutdownReport, galaxy_server::AppError>>,
    _data: tempfile::TempDir,
    _docker: DockerLock,
}

/// Builds a dev-mode app configured by `runtime_vars` (as [`play_a_game`]) and brings one
/// game of two players to `running`.
pub async fn run_a_game(runtime_vars: &[(&str, String)]) -> RunningGame {
    let players = [
        ("ann@example.org", "Aldebarans"),
        ("bob@example.org", "Betelgeusians"),
    ];
    run_a_game_with(runtime_vars, &players, json!({})).await
}

/// As [`run_a_game`], with these players (`(e-mail, race)`, the first hosts) and these
/// extra fields of the game's creation body (e.g. `engine_settings`).
pub async fn run_a_game_with(
    runtime_vars: &[(&str, String)],
    seats: &[(&'static str, &'static str)],
    extra: Value,
) -> RunningGame {
    let mut running = start_game_with(runtime_vars, seats, extra).await;
    let games = format!("/api/v1/user/games/{}", running.game);
    let host = running.host.clone();
    eventually(Duration::from_secs(60), "the game running", || async {
        let (_, game) = host.call("GET", &games, None).await;
        assert_ne!(game["status"], "start_failed", "{game}");
        (game["status"] == "running").then_some(())
    })
    .await;
    let bound = record(&running.admin, &running.game).await;
    running.endpoint = bound["engine_endpoint"].as_str().unwrap().to_owned();
    running
}

/// Creates, fills and starts a game as [`run_a_game_with`] does, without waiting for the
/// start's outcome (`endpoint` is empty).
pub async fn start_game_with(
    runtime_vars: &[(&str, String)],
    seats: &[(&'static str, &'static str)],
    extra: Value,
) -> RunningGame {
    let docker = docker_lock(runtime_vars).await;
    let data = tempfile::tempdir().unwrap();
    let DevServer {
        addr,
        stop,
        served,
        mail,
    } = start_dev(&data, "500ms", runtime_vars).await;
    let login = |email: &'static str| {
        let mail = mail.clone();
        async move {
            let auth = log_in(addr, &mail, email).await;
            Caller { addr, auth }
        }
    };
    let admin = login(dev::DEV_ADMIN).await;
    let mut players = Vec::new();
    for (email, race) in seats {
        players.push((login(email).await, race.to_string()));
    }
    let outsider = login("outsider@example.org").await;
    let host = players[0].0.clone();
    let mut body = json!({
        "name": "Short game",
        "min_players": 2,
        "max_players": 4,
        "enrollment_deadline": "2099-01-01T00:00:00Z",
        "turn_schedule": "0 0 1 1 *",
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let game = host
        .expect("POST", "/api/v1/user/games", Some(body), 201)
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
    host.expect("POST", &format!("{games}/start"), None, 200)
        .await;
    RunningGame {
        admin,
        host,
        game,
        endpoint: String::new(),
        players,
        outsider,
        mail,
        stop,
        served,
        _data: data,
        _docker: docker,
    }
}

impl RunningGame {
    /// The game as its host sees it.
    pub async fn game_view(&self) -> Value {
        let path = format!("/api/v1/user/games/{}", self.game);
        self.host.expect("GET", &path, None, 200).await
    }

    /// This game's health events, newest first.
    pub async fn health_events(&self) -> Vec<Value> {
        let path = format!("/api/v1/admin/health-events?game_id={}", self.game);
        let page = self.admin.expect("GET", &path, None, 200).await;
        page["items"].as_array().cloned().unwrap_or_default()
    }

    /// Stops serving; the workers must stop.
    pub async fn shut_down(self) {
        self.stop.send(()).unwrap();
        let report = self.served.await.unwrap().unwrap();
        assert!(report.workers_stopped, "{report:?}");
    }
}

/// The pid of the process-runtime engine listening on `endpoint` (found by its
/// `GALAXY_ENGINE_ADDR` in /proc), if any.
pub fn engine_pid(endpoint: &str) -> Option<u32> {
    let addr = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let wanted = format!("GALAXY_ENGINE_ADDR={addr}");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // A zombie (state Z) is already dead.
            let state = stat.rsplit(')').next()?.split_whitespace().next()?;
            (state != "Z"
                && environ
                    .split(|b| *b == 0)
                    .any(|var| var == wanted.as_bytes()))
            .then_some(pid)
        })
}

/// The reference engine's image on Docker.
pub const DOCKER_IMAGE: &str = "galaxy-engine:0.2";

/// `true` when the Docker tests must be skipped (the reason is printed); panics instead
/// when `GALAXY_REQUIRE_DOCKER=1`.
pub fn skip_without_docker(test: &str) -> bool {
    let inspect = Command::new("docker")
        .args(["image", "inspect", DOCKER_IMAGE, "--format", "{{.Id}}"])
        .output();
    let reason = match inspect {
        Err(error) => format!("the docker CLI cannot run: {error}"),
        Ok(out) if !out.status.success() => format!(
            "image {DOCKER_IMAGE} is not available (scripts/test.sh builds it): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Ok(_) => return false,
    };
    assert!(
        std::env::var("GALAXY_REQUIRE_DOCKER").as_deref() != Ok("1"),
        "GALAXY_REQUIRE_DOCKER=1 but {reason}"
    );
    eprintln!("skipping {test}: {reason}");
    true
}

/// The runtime variables of a Docker-run game.
pub fn docker_vars() -> Vec<(&'static str, String)> {
    vec![
        ("GALAXY_RUNTIME", "docker".to_owned()),
        ("GALAXY_ENGINES", format!("reference={DOCKER_IMAGE}")),
    ]
}

/// The runtime variables of a process-run game.
pub fn process_vars() -> Vec<(&'static str, String)> {
    vec![
        ("GALAXY_RUNTIME", "process".to_owned()),
        (
            "GALAXY_PROCESS_ENGINES",
            format!("reference={}", engine_binary().display()),
        ),
    ]
}

/// `docker` with `args`: its trimmed stdout (panics when it fails).
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The ids of every container (running or not) labelled with `game`.
pub fn containers_of(game: &str) -> String {
    docker(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label=galaxy.game_id={game}"),
    ])
}

/// An installation name no other test process uses at the same time.
pub fn unique_instance() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    format!("test-{}-{n}", std::process::id())
}

/// A dev-mode app served on a loopback port for one test.
pub struct DevServer {
    /// Where it serves HTTP.
    pub addr: std::net::SocketAddr,
    /// Sent, it shuts the app down.
    pub stop: tokio::sync::oneshot::Sender<()>,
    /// The serving task.
    pub served:
        tokio::task::JoinHandle<Result<galaxy_server::ShutdownReport, galaxy_server::AppError>>,
    /// Where the dev mailer writes its `.eml` files.
    pub mail: std::path::PathBuf,
}

/// Starts a dev-mode app with its data in `data`, fast workers, its own instance name,
/// the given health interval and `runtime_vars` on top.
pub async fn start_dev(
    data: &tempfile::TempDir,
    health_interval: &str,
    runtime_vars: &[(&str, String)],
) -> DevServer {
    let vars: HashMap<String, String> = [
        ("GALAXY_DATA_DIR", data.path().display().to_string()),
        ("GALAXY_MAIL_INTERVAL", "100ms".to_owned()),
        ("GALAXY_RUNTIME_INTERVAL", "100ms".to_owned()),
        // Players host the test games, and some schedule a turn every few seconds.
        ("GALAXY_MIN_TURN_PERIOD", "1s".to_owned()),
        // Tests share one Docker daemon: each reconciler must see only its own containers.
        ("GALAXY_INSTANCE", unique_instance()),
        ("GALAXY_HEALTH_INTERVAL", health_interval.to_owned()),
    ]
    .into_iter()
    .chain(runtime_vars.iter().cloned())
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::from_vars(&vars).unwrap();
    let mail = dev::mail_dir(&config);
    let app = dev::build(config).await.unwrap();
    let listeners = Listeners::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
    let addr = listeners.http_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(app.serve(listeners, async {
        let _ = stopped.await;
    }));
    lifecycle_support::wait_ready(addr, Duration::from_secs(10)).await;
    DevServer {
        addr,
        stop,
        served,
        mail,
    }
}

/// One mail the dev mailer wrote, parsed.
#[derive(Debug, Clone)]
pub struct SentMail {
    /// `X-Galaxy-Kind`: the notification kind.
    pub kind: String,
    /// The subject.
    pub subject: String,
    /// The plain-text body, decoded.
    pub text: String,
}

/// Every mail in `dir` addressed to `email`, parsed as a mail client would.
pub fn mails_to(dir: &Path, email: &str) -> Vec<SentMail> {
    let parser = mail_parser::MessageParser::default();
    lifecycle_support::eml_files(dir)
        .into_iter()
        .filter_map(|path| std::fs::read(path).ok())
        .filter_map(|raw| {
            let message = parser.parse(&raw)?;
            let to = message.to()?.first()?.address()?.to_owned();
            (to == email).then(|| SentMail {
                kind: message
                    .header_raw("X-Galaxy-Kind")
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
                subject: message.subject().unwrap_or_default().to_owned(),
                text: message
                    .body_text(0)
                    .map(|t| t.replace("\r\n", "\n"))
                    .unwrap_or_default(),
            })
        })
        .collect()
}
