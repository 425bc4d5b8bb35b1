//! A server killed mid-start is restarted and the start job completes: the real
//! `galaxy-server serve` binary on Postgres with the process runtime; a game is started,
//! the server is killed with SIGKILL while the start job is in flight (its engine takes
//! two seconds to come up, like an image pull, so the job is still waiting for
//! `/healthz`), a new server starts on the same database, and once the job's lease
//! (`GALAXY_RUNTIME_JOB_LEASE=2s`) lapses the job is claimed again and the game reaches
//! `running`.
//!
//! A server stopped and started again on the same data directory resumes its engines,
//! and its running game goes on.
//!
//! Needs `DATABASE_URL` (scripts/test.sh starts a throwaway Postgres).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;
mod runtime_support;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use galaxy_postgres::testing::{DATABASE_URL, TestDatabases};
use lifecycle_support::{eventually, free_port, log_in, send};
use runtime_support::engine_binary;
use serde_json::{Value, json};

/// `DATABASE_URL` pointed at another database of the same server.
fn url_for(database: &str) -> String {
    let url = std::env::var(DATABASE_URL).unwrap();
    let (url, query) = url
        .split_once('?')
        .map_or((url.as_str(), None), |(u, q)| (u, Some(q)));
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let base = match url[authority_start..].find('/') {
        Some(slash) => &url[..authority_start + slash],
        None => url,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// A slow-starting reference engine: a script that waits two seconds, then runs it.
fn slow_engine(dir: &Path) -> String {
    let script = dir.join("slow-engine.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nsleep 2\nexec '{}' \"$@\"\n",
            engine_binary().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script.display().to_string()
}

/// Starts `galaxy-server serve` on `database_url`, `addr` and `data`.
fn server(database_url: &str, addr: SocketAddr, data: &Path, engine: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_galaxy-server"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GALAXY_DATABASE_URL", database_url)
        .env(
            "GALAXY_LOGIN_CODE_KEY",
            "runtime-restart-test-login-code-key-0123456789",
        )
        .env("GALAXY_HTTP_ADDR", addr.to_string())
        .env("GALAXY_DATA_DIR", data)
        .env("GALAXY_RUNTIME", "process")
        .env("GALAXY_BOOTSTRAP_ADMINS", "admin@example.org")
        .env("GALAXY_PROCESS_ENGINES", format!("reference={engine}"))
        .env("GALAXY_RUNTIME_JOB_LEASE", "2s")
        .env("GALAXY_RUNTIME_INTERVAL", "100ms")
        .env("GALAXY_MAIL_INTERVAL", "100ms")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// One authenticated call; the status and the JSON body.
async fn call(
    addr: SocketAddr,
    auth: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let response = send(addr, method, path, &[("authorization", auth)], &body)
        .await
        .unwrap();
    (
        response.status,
        serde_json::from_str(&response.body).unwrap_or(Value::Null),
    )
}

async fn expect(
    addr: SocketAddr,
    auth: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    status: u16,
) -> Value {
    let (got, json) = call(addr, auth, method, path, body).await;
    assert_eq!(got, status, "{method} {path}: {json}");
    json
}

/// The pids of engines (or their start scripts) whose data lies under `data`.
fn engines_under(data: &Path) -> Vec<u32> {
    let wanted = format!("GALAXY_ENGINE_DATA_DIR={}", data.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            environ
                .split(|b| *b == 0)
                .any(|var| var.starts_with(wanted.as_bytes()))
                .then_some(pid)
        })
        .collect()
}

/// Logs in two players, has the first host a two-race game and start it; the host's
/// authorization and the game's path. The game is `starting` (or already `running`).
async fn start_a_game(addr: SocketAddr, mail: &Path, name: &str) -> (String, String) {
    let ann = log_in(addr, mail, "ann@example.org").await;
    let bob = log_in(addr, mail, "bob@example.org").await;
    let game = expect(
        addr,
        &ann,
        "POST",
        "/api/v1/user/games",
        Some(json!({
            "name": name,
            "min_players": 2,
            "max_players": 3,
            "enrollment_deadline": "2099-01-01T00:00:00Z",
            "turn_schedule": "0 0 1 1 *",
        })),
        201,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let games = format!("/api/v1/user/games/{game}");
    expect(addr, &ann, "POST", &format!("{games}/open"), None, 200).await;
    for (player, race) in [(&ann, "Aldebarans"), (&bob, "Betelgeusians")] {
        let application = expect(
            addr,
            player,
            "POST",
            &format!("{games}/applications"),
            Some(json!({ "race_name": race })),
            201,
        )
        .await;
        let id = application["id"].as_str().unwrap();
        let approve = format!("{games}/applications/{id}/approve");
        expect(addr, &ann, "POST", &approve, None, 200).await;
    }
    expect(addr, &ann, "POST", &format!("{games}/close"), None, 200).await;
    expect(addr, &ann, "POST", &format!("{games}/start"), None, 200).await;
    (ann, games)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_start_is_restarted_and_the_start_completes() {
    let dbs = match TestDatabases::from_env().await {
        Ok(databases) => databases,
        Err(error) => panic!("{error}"),
    };
    let options = dbs.empty_database().await.unwrap();
    let database_url = url_for(options.get_database().unwrap());
    let data = tempfile::tempdir().unwrap();
    let engine = slow_engine(data.path());
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mail = data.path().join("mail");

    let mut first = server(&database_url, addr, data.path(), &engine);
    lifecycle_support::wait_ready(addr, Duration::from_secs(60)).await;
    let (ann, games) = start_a_game(addr, &mail, "Interrupted start").await;
    let starting = expect(addr, &ann, "GET", &games, None, 200).await;
    assert_eq!(starting["status"], "starting");

    // Once the job is claimed its engine is being launched (the slow script is running):
    // the job is in flight. Kill the server then.
    eventually(
        Duration::from_secs(10),
        "the start job in flight",
        || async { (!engines_under(data.path()).is_empty()).then_some(()) },
    )
    .await;
    first.kill().unwrap();
    first.wait().unwrap();
    // The orphaned engine of the dead server is not the platform's any more.
    for pid in engines_under(data.path()) {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }

    let mut second = server(&database_url, addr, data.path(), &engine);
    lifecycle_support::wait_ready(addr, Duration::from_secs(60)).await;
    let (_, view) = call(addr, &ann, "GET", &games, None).await;
    assert_eq!(
        view["status"], "starting",
        "the start did not complete before the kill"
    );
    eventually(Duration::from_secs(60), "the game running", || async {
        let (_, view) = call(addr, &ann, "GET", &games, None).await;
        assert_ne!(view["status"], "start_failed", "{view}");
        (view["status"] == "running").then_some(())
    })
    .await;

    second.kill().unwrap();
    second.wait().unwrap();
    for pid in engines_under(data.path()) {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    dbs.cleanup().await.unwrap();
}

/// A game running on a server stopped gracefully (as systemd does), and a second server
/// started on the same database and data directory with `engine` as the reference
/// engine's command.
struct Restarted {
    addr: SocketAddr,
    ann: String,
    admin: String,
    games: String,
    game: String,
    before: Value,
    second: Child,
    data: tempfile::TempDir,
    dbs: TestDatabases,
}

async fn run_then_restart(second_engine: impl FnOnce(&Path) -> String) -> Restarted {
    let dbs = match TestDatabases::from_env().await {
        Ok(databases) => databases,
        Err(error) => panic!("{error}"),
    };
    let options = dbs.empty_database().await.unwrap();
    let database_url = url_for(options.get_database().unwrap());
    let data = tempfile::tempdir().unwrap();
    let engine = engine_binary().display().to_string();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mail = data.path().join("mail");

    let first = server(&database_url, addr, data.path(), &engine);
    lifecycle_support::wait_ready(addr, Duration::from_secs(60)).await;
    let (ann, games) = start_a_game(addr, &mail, "Restarted").await;
    eventually(Duration::from_secs(60), "the game running", || async {
        let (_, view) = call(addr, &ann, "GET", &games, None).await;
        (view["status"] == "running").then_some(())
    })
    .await;
    let admin = log_in(addr, &mail, "admin@example.org").await;
    let game = games.rsplit('/').next().unwrap().to_owned();
    let record_path = format!("/api/v1/admin/runtime/records/{game}");
    let before = expect(addr, &admin, "GET", &record_path, None, 200).await;
    let status = Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_exit(first);
    assert!(engines_under(data.path()).is_empty(), "the engines stopped");

    let engine = second_engine(data.path());
    let second = server(&database_url, addr, data.path(), &engine);
    lifecycle_support::wait_ready(addr, Duration::from_secs(60)).await;
    Restarted {
        addr,
        ann,
        admin,
        games,
        game,
        before,
        second,
        data,
        dbs,
    }
}

impl Restarted {
    async fn end(mut self) {
        self.second.kill().unwrap();
        self.second.wait().unwrap();
        for pid in engines_under(self.data.path()) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        self.dbs.cleanup().await.unwrap();
    }
}

/// A server restarted on the same data directory (an upgrade, `systemctl restart`) starts
/// its process-runtime engines again: the running game stays `running`, with no
/// `container_disappeared` pause, and plays its next turn on the same engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_resumes_its_engines_and_the_game_goes_on() {
    let r = run_then_restart(|_| engine_binary().display().to_string()).await;
    // Listening means resumed: the engine was started before the workers.
    assert!(
        !engines_under(r.data.path()).is_empty(),
        "the engine is back"
    );
    // A reconciler pass and an inspect pass (GALAXY_RUNTIME_INTERVAL=100ms) later, the
    // game still runs on the same binding.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, view) = call(r.addr, &r.ann, "GET", &r.games, None).await;
    assert_eq!(view["status"], "running", "{view}");
    let record_path = format!("/api/v1/admin/runtime/records/{}", r.game);
    let after = expect(r.addr, &r.admin, "GET", &record_path, None, 200).await;
    assert_eq!(after["status"], "running", "{after}");
    assert_eq!(after["container_id"], r.before["container_id"], "{after}");
    assert_eq!(
        after["engine_endpoint"], r.before["engine_endpoint"],
        "{after}"
    );
    let force = format!("/api/v1/admin/games/{}/force-next-turn?turn=1", r.game);
    let played = expect(r.addr, &r.admin, "POST", &force, None, 200).await;
    assert_eq!(played["current_turn"], 1, "{played}");
    r.end().await;
}

/// An engine the restarted server would launch differently (here its command line
/// changed) is not resumed on the old one: it is removed, its game pauses, and the admin
/// re-creates it with the current command, from its data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_whose_command_changed_is_not_resumed_but_created_again() {
    let r = run_then_restart(|dir| {
        let link = dir.join("engine-v2");
        std::os::unix::fs::symlink(engine_binary(), &link).unwrap();
        link.display().to_string()
    })
    .await;
    assert!(engines_under(r.data.path()).is_empty(), "nothing resumed");
    let paused = eventually(Duration::from_secs(30), "the game paused", || async {
        let (_, view) = call(r.addr, &r.ann, "GET", &r.games, None).await;
        (view["status"] == "paused").then_some(view)
    })
    .await;
    assert_eq!(
        paused["status_reason"], "the game's container disappeared",
        "{paused}"
    );
    let recreate = format!("/api/v1/admin/games/{}/recreate-engine", r.game);
    expect(r.addr, &r.admin, "POST", &recreate, None, 200).await;
    let record_path = format!("/api/v1/admin/runtime/records/{}", r.game);
    eventually(
        Duration::from_secs(60),
        "the engine created again",
        || async {
            let (_, record) = call(r.addr, &r.admin, "GET", &record_path, None).await;
            (record["status"] == "running" && record["healthy"] == true).then_some(())
        },
    )
    .await;
    let resume = format!("/api/v1/admin/games/{}/resume", r.game);
    expect(r.addr, &r.admin, "POST", &resume, None, 200).await;
    let force = format!("/api/v1/admin/games/{}/force-next-turn?turn=1", r.game);
    let played = expect(r.addr, &r.admin, "POST", &force, None, 200).await;
    assert_eq!(
        played["current_turn"], 1,
        "the engine resumed its state: {played}"
    );
    r.end().await;
}

/// Waits for a server to exit on its own (after SIGTERM), up to 60 s.
fn wait_exit(mut child: Child) {
    for _ in 0..600 {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    panic!("the server did not stop within 60 s of SIGTERM");
}
