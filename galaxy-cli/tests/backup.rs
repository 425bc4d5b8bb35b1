//! `galaxy-cli backup` and `restore` on real things: a server on Postgres with the
//! process runtime (and again with the Docker runtime, whose engine data lives in a Docker
//! volume the backup archives) plays a turn; the backup holds the game between turns while it copies
//! the database and the data directory; the server stops; the backup is restored into a
//! fresh database and a fresh data directory, which hold the game as it was at the backup
//! (sessions, archive, records, secrets, the engine's state files), and a server started
//! on them serves it.
//!
//! On the fresh machine no engine runs for the game (a backup leaves out the process
//! runtime's saved engine processes, which belong to the live machine; a Docker container
//! is lost with its host): the reconciler marks
//! its record `removed` and pauses the game, the admin has the engine created again from
//! the restored data (`recreate-engine`) and resumes it, and the restored game plays its
//! next turn.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../galaxy-server/tests/lifecycle_support/mod.rs"]
mod lifecycle_support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use galaxy_docker::{network_name, volume_name};
use galaxy_postgres::testing::TestDatabases;
use galaxy_server::{Config, Listeners};
use lifecycle_support::{eventually, log_in, send};
use serde_json::{Value, json};

fn url_of(database: &str) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL (run scripts/test.sh)");
    let (server, _) = base.rsplit_once('/').unwrap();
    format!("{server}/{database}")
}

fn engine_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(2).unwrap().join("galaxy-engine")
}

struct Server {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<bool>,
}

/// The engine image the Docker round trip runs (scripts/test.sh builds it).
const DOCKER_IMAGE: &str = "galaxy-engine:0.2";

/// Which container runtime a round trip runs its engine on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Runtime {
    Process,
    Docker,
}

impl Runtime {
    fn name(self) -> &'static str {
        match self {
            Self::Process => "process",
            Self::Docker => "docker",
        }
    }
}

async fn serve(url: &str, data: &Path, runtime: Runtime) -> Server {
    let engines = match runtime {
        Runtime::Process => (
            "GALAXY_PROCESS_ENGINES",
            format!("reference={}", engine_binary().display()),
        ),
        Runtime::Docker => ("GALAXY_ENGINES", format!("reference={DOCKER_IMAGE}")),
    };
    let config: Config = Config::builder()
        .set("GALAXY_DATABASE_URL", url)
        .set("GALAXY_DATA_DIR", data.display().to_string())
        .set("GALAXY_RUNTIME", runtime.name())
        .set(engines.0, engines.1)
        .set("GALAXY_BOOTSTRAP_ADMINS", "admin@example.org")
        .set("GALAXY_MAIL_INTERVAL", "50ms")
        .set("GALAXY_RUNTIME_INTERVAL", "100ms")
        .set("GALAXY_HEALTH_INTERVAL", "300ms")
        .build()
        .unwrap();
    let app = galaxy_server::database::build(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        app.serve(Listeners::new(listener), async {
            let _ = stopped.await;
        })
        .await
        .unwrap()
        .is_clean()
    });
    Server { addr, stop, served }
}

async fn call(
    addr: SocketAddr,
    auth: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let r = send(addr, method, path, &[("authorization", auth)], &body)
        .await
        .unwrap();
    (
        r.status,
        serde_json::from_str(&r.body).unwrap_or(Value::Null),
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

fn cli(args: &[&str], url: &str, data: &Path, runtime: Runtime) -> Output {
    Command::new(env!("CARGO_BIN_EXE_galaxy-cli"))
        .args(args)
        .env("GALAXY_DATABASE_URL", url)
        .env("GALAXY_DATA_DIR", data)
        .env("GALAXY_RUNTIME", runtime.name())
        .output()
        .unwrap()
}

/// `docker` with `args`; whether it succeeded.
fn docker(args: &[&str]) -> bool {
    Command::new("docker")
        .args(args)
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Removes a game's engine container, its network and its data volume, as a lost Docker
/// host would (and at the end of the test).
fn forget_docker_game(container: &str) {
    docker(&["rm", "-f", container]);
    docker(&["network", "rm", &network_name(container)]);
    docker(&["volume", "rm", &volume_name(container)]);
    assert!(!docker(&["volume", "inspect", &volume_name(container)]));
}

/// Whether the Docker round trip can run: a daemon and the engine image. Without them
/// it is skipped loudly, unless `GALAXY_REQUIRE_DOCKER=1`.
fn docker_ready() -> bool {
    if docker(&["image", "inspect", DOCKER_IMAGE]) {
        return true;
    }
    assert!(
        std::env::var("GALAXY_REQUIRE_DOCKER").as_deref() != Ok("1"),
        "GALAXY_REQUIRE_DOCKER=1 but no Docker daemon with {DOCKER_IMAGE} answers"
    );
    eprintln!("SKIPPED: the Docker backup round trip needs a Docker daemon and {DOCKER_IMAGE}");
    false
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_into_a_fresh_database_and_data_directory() {
    assert!(
        engine_binary().is_file(),
        "cargo build -p galaxy-engine first"
    );
    round_trip(Runtime::Process).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_engines_volume_is_backed_up_and_restored_on_a_fresh_host() {
    if docker_ready() {
        // The lock galaxy-server's Docker tests share (`runtime_support::docker_lock`):
        // one Docker game at a time on the test daemon.
        let started = std::time::Instant::now();
        let _lock = loop {
            if let Ok(lock) = std::net::TcpListener::bind(("127.0.0.1", 29517)) {
                break lock;
            }
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "Docker test lock"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        round_trip(Runtime::Docker).await;
    }
}

/// A game plays a turn, is backed up while the server runs, plays on; the backup is
/// restored into a fresh database, data directory and (Docker) volume, and the restored
/// game plays its next turn from the engine state of the backup.
async fn round_trip(runtime: Runtime) {
    let databases = TestDatabases::from_env().await.unwrap();
    let first = url_of(
        databases
            .empty_database()
            .await
            .unwrap()
            .get_database()
            .unwrap(),
    );
    let second = url_of(
        databases
            .empty_database()
            .await
            .unwrap()
            .get_database()
            .unwrap(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let (data, restored_data, out) = (
        tmp.path().join("data"),
        tmp.path().join("restored"),
        tmp.path().join("backup"),
    );

    let server = serve(&first, &data, runtime).await;
    let addr = server.addr;
    let mail = data.join("mail");
    let admin = log_in(addr, &mail, "admin@example.org").await;
    let host = log_in(addr, &mail, "ann@example.org").await;
    let guest = log_in(addr, &mail, "bob@example.org").await;
    let game = expect(
        addr,
        &host,
        "POST",
        "/api/v1/user/games",
        Some(json!({
            "name": "Kept game", "min_players": 2, "max_players": 3,
            "enrollment_deadline": "2099-01-01T00:00:00Z", "turn_schedule": "0 0 0 1 1 *",
        })),
        201,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let games = format!("/api/v1/user/games/{game}");
    expect(addr, &host, "POST", &format!("{games}/open"), None, 200).await;
    for (player, race) in [(&host, "Aldebarans"), (&guest, "Betelgeusians")] {
        let application = expect(
            addr,
            player,
            "POST",
            &format!("{games}/applications"),
            Some(json!({"race_name": race})),
            201,
        )
        .await;
        let approve = format!(
            "{games}/applications/{}/approve",
            application["id"].as_str().unwrap()
        );
        expect(addr, &host, "POST", &approve, None, 200).await;
    }
    expect(addr, &host, "POST", &format!("{games}/close"), None, 200).await;
    expect(addr, &host, "POST", &format!("{games}/start"), None, 200).await;
    eventually(Duration::from_secs(60), "the game running", || async {
        let (_, g) = call(addr, &host, "GET", &games, None).await;
        assert_ne!(g["status"], "start_failed", "{g}");
        (g["status"] == "running").then_some(())
    })
    .await;
    let force = format!("/api/v1/admin/games/{game}/force-next-turn");
    let record = format!("/api/v1/admin/runtime/records/{game}");
    assert_eq!(
        expect(addr, &admin, "POST", &force, None, 200).await["current_turn"],
        1
    );

    let container = format!("galaxy-game-{game}");
    let resume = format!("/api/v1/admin/games/{game}/resume");
    let recreate = format!("/api/v1/admin/games/{game}/recreate-engine");
    if runtime == Runtime::Docker {
        // Under Docker the engine's container vanishes first (its volume stays): the game
        // pauses until its engine is re-created, and a backup taken meanwhile copies the
        // engine's data from the volume alone.
        assert!(docker(&["rm", "-f", &container]));
        eventually(Duration::from_secs(30), "the game paused", || async {
            let (_, g) = call(addr, &host, "GET", &games, None).await;
            (g["status"] == "paused").then_some(())
        })
        .await;
    }

    if runtime == Runtime::Process {
        // Into the data directory it copies: refused before anything is held or written.
        let inside = data.join("backups/today");
        let refused = cli(
            &["backup", "--out", &inside.display().to_string()],
            &first,
            &data,
            runtime,
        );
        assert!(!refused.status.success(), "{}", text(&refused));
        assert!(
            text(&refused).contains("inside the data directory"),
            "{}",
            text(&refused)
        );
        assert!(!data.join("backups").exists());
        // Without pg_dump on PATH, the backup stops before it holds or copies anything
        // (here, before it would fail to create an --out below a file).
        let backup_with_path = |path: &Path, out: &Path| {
            Command::new(env!("CARGO_BIN_EXE_galaxy-cli"))
                .args(["backup", "--out", &out.display().to_string()])
                .env("GALAXY_DATABASE_URL", &first)
                .env("GALAXY_DATA_DIR", &data)
                .env("GALAXY_RUNTIME", runtime.name())
                .env("PATH", path)
                .output()
                .unwrap()
        };
        let file = tmp.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let missing = backup_with_path(Path::new("/nonexistent"), &file.join("backup"));
        assert!(!missing.status.success(), "{}", text(&missing));
        assert!(
            text(&missing).contains("cannot run pg_dump"),
            "{}",
            text(&missing)
        );
        // A backup that fails midway (a pg_dump that answers its version, then fails the
        // dump, after the copies) leaves no partial directory, and lets the games go.
        let bin = tempfile::tempdir().unwrap();
        let fake = bin.path().join("pg_dump");
        std::fs::write(
            &fake,
            "#!/bin/sh\n[ \"$1\" = --version ] && { echo 'pg_dump (PostgreSQL) 99.0'; exit 0; }\n\
             exit 3\n",
        )
        .unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let failed = backup_with_path(bin.path(), &out);
        assert!(!failed.status.success(), "{}", text(&failed));
        assert!(
            text(&failed).contains("pg_dump exited with"),
            "{}",
            text(&failed)
        );
        assert!(!out.exists(), "a partial backup was left behind");
    }

    // The backup while the server runs; it lets the game go afterwards.
    let backup = cli(
        &["backup", "--out", &out.display().to_string()],
        &first,
        &data,
        runtime,
    );
    assert!(backup.status.success(), "{}", text(&backup));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the backup is its owner's alone");
    }
    let held = match runtime {
        Runtime::Process => "1 running game(s) held",
        Runtime::Docker => "0 running game(s) held",
    };
    assert!(text(&backup).contains(held), "{}", text(&backup));
    if runtime == Runtime::Docker {
        assert!(
            !text(&backup).contains("no engine data copied"),
            "{}",
            text(&backup)
        );
        expect(addr, &admin, "POST", &recreate, None, 200).await;
        eventually(Duration::from_secs(60), "the engine back", || async {
            let (_, r) = call(addr, &admin, "GET", &record, None).await;
            (r["status"] == "running" && r["healthy"] == true).then_some(())
        })
        .await;
        expect(addr, &admin, "POST", &resume, None, 200).await;
    }
    assert_eq!(
        expect(addr, &admin, "POST", &force, None, 200).await["current_turn"],
        2,
        "the live game is free again"
    );
    server.stop.send(()).unwrap();
    assert!(server.served.await.unwrap());
    if runtime == Runtime::Docker {
        let copied = out.join("volumes").join(format!("{container}.tar"));
        assert!(copied.is_file(), "{}: {}", copied.display(), text(&backup));
        // A fresh Docker host: the engine's container, network and volume are gone.
        forget_docker_game(&container);
    }

    if runtime == Runtime::Docker {
        // A Docker host without the engine's image is refused before anything is
        // restored: the database stays empty for the real restore below.
        let other = tmp.path().join("backup-other-image");
        copy_dir(&out, &other);
        let manifest = other.join("manifest.json");
        let mut edited: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
        edited["volumes"][0]["image"] = "galaxy-no-such-engine:0".into();
        std::fs::write(&manifest, edited.to_string()).unwrap();
        let refused = cli(
            &["restore", "--from", &other.display().to_string()],
            &second,
            &tmp.path().join("other-data"),
            runtime,
        );
        let said = text(&refused);
        assert!(
            !refused.status.success()
                && said.contains("galaxy-no-such-engine:0")
                && said.contains("nothing was restored"),
            "{said}"
        );
    }

    // Restore refuses a used database or data directory, then restores into fresh ones.
    let refused = cli(
        &["restore", "--from", &out.display().to_string()],
        &first,
        &restored_data,
        runtime,
    );
    assert!(
        !refused.status.success() && text(&refused).contains("not empty"),
        "{}",
        text(&refused)
    );
    let refused = cli(
        &["restore", "--from", &out.display().to_string()],
        &second,
        &data,
        runtime,
    );
    assert!(
        !refused.status.success() && text(&refused).contains("not empty"),
        "{}",
        text(&refused)
    );
    // A data directory that cannot be made (or written) is refused before the database
    // is touched: the restore below finds it empty. (A path under a plain file: as
    // root, the tests cannot take write permission away.)
    let blocker = tmp.path().join("a-file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let refused = cli(
        &["restore", "--from", &out.display().to_string()],
        &second,
        &blocker.join("data"),
        runtime,
    );
    assert!(
        !refused.status.success()
            && text(&refused).contains("cannot write into the data directory"),
        "{}",
        text(&refused)
    );
    let restored = cli(
        &["restore", "--from", &out.display().to_string()],
        &second,
        &restored_data,
        runtime,
    );
    assert!(restored.status.success(), "{}", text(&restored));
    assert!(
        text(&restored).contains("a new push epoch"),
        "{}",
        text(&restored)
    );
    if runtime == Runtime::Docker {
        assert!(
            text(&restored).contains("1 engine volume(s) filled"),
            "{}",
            text(&restored)
        );
        assert!(docker(&["volume", "inspect", &volume_name(&container)]));
        // Restoring again onto this host is refused: its volume exists now.
        let again = cli(
            &["restore", "--from", &out.display().to_string()],
            &second,
            &tmp.path().join("again"),
            runtime,
        );
        assert!(
            !again.status.success() && text(&again).contains("exists"),
            "{}",
            text(&again)
        );
    }

    // The restored copy: the database at the backup's turn (sessions, archive, records)
    // and the data directory (secrets, the engine's state) as they were when the game was
    // held between turns.
    fn files(dir: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>, root: &Path) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                files(&path, out, root);
            } else if path.file_name().is_some_and(|n| n != "engine.log") {
                let key = path.strip_prefix(root).unwrap().display().to_string();
                out.insert(key, std::fs::read(&path).unwrap());
            }
        }
    }
    let engines = |root: &Path| {
        let mut out = std::collections::BTreeMap::new();
        files(&root.join("engines"), &mut out, root);
        out
    };
    if runtime == Runtime::Process {
        // The live server's saved engine processes (its ports) stay out of the backup.
        let saved = Path::new("engines").join(galaxy_process_runtime::SAVED_CONTAINERS_DIR);
        assert!(
            data.join(&saved).is_dir(),
            "the live server saved its engines"
        );
        assert!(!out.join("data").join(&saved).exists());
        assert!(!restored_data.join(&saved).exists());
        let restored_files = engines(&restored_data);
        assert!(!restored_files.is_empty(), "no engine data restored");
        assert_eq!(restored_files, engines(&out.join("data")));
    }
    for secret in ["login-code-key", "engine-secret"] {
        let (a, b) = (out.join("data").join(secret), restored_data.join(secret));
        if a.exists() {
            assert_eq!(
                std::fs::read(a).unwrap(),
                std::fs::read(b).unwrap(),
                "{secret}"
            );
        }
    }
    let server = serve(&second, &restored_data, runtime).await;
    let addr = server.addr;
    let (status, restored_game) = call(addr, &host, "GET", &games, None).await;
    assert_eq!(
        status, 200,
        "the session of the backup's time works: {restored_game}"
    );
    let report = expect(addr, &host, "GET", &format!("{games}/reports/1"), None, 200).await;
    assert_eq!(report["turn"], 1, "{report}");
    let (status, _) = call(addr, &host, "GET", &format!("{games}/reports/2"), None).await;
    assert_eq!(status, 404, "turn 2 was played after the backup");
    let restored_record = expect(addr, &admin, "GET", &record, None, 200).await;
    assert_eq!(restored_record["current_turn"], 1, "{restored_record}");

    // No engine runs for it on this machine: the reconciler marks the record `removed`
    // and pauses the game. The admin has the engine created again from the restored data
    // (it resumes its state, it is not initialised again), resumes the game, and the
    // restored game plays its next turn.
    let pause_seen = eventually(Duration::from_secs(30), "the game paused", || async {
        let (_, g) = call(addr, &host, "GET", &games, None).await;
        (g["status"] == "paused").then_some(g)
    })
    .await;
    assert_eq!(
        pause_seen["status_reason"], "the game's container disappeared",
        "{pause_seen}"
    );
    let (status, refused) = call(addr, &admin, "POST", &resume, None).await;
    assert_eq!(status, 409, "no engine to resume on yet: {refused}");
    expect(addr, &admin, "POST", &recreate, None, 200).await;
    eventually(
        Duration::from_secs(60),
        "the engine created again",
        || async {
            let (_, r) = call(addr, &admin, "GET", &record, None).await;
            (r["status"] == "running" && r["healthy"] == true).then_some(())
        },
    )
    .await;
    let (status, twice) = call(addr, &admin, "POST", &recreate, None).await;
    assert_eq!(status, 409, "the engine exists again: {twice}");
    expect(addr, &admin, "POST", &resume, None, 200).await;
    assert_eq!(
        expect(addr, &admin, "POST", &force, None, 200).await["current_turn"],
        2,
        "the restored game plays its next turn from the restored engine state"
    );
    let report = expect(addr, &host, "GET", &format!("{games}/reports/2"), None, 200).await;
    assert_eq!(report["turn"], 2, "{report}");
    server.stop.send(()).unwrap();
    assert!(server.served.await.unwrap());
    if runtime == Runtime::Docker {
        forget_docker_game(&container);
    }
    databases.cleanup().await.unwrap();
}

/// Copies the directory tree `from` into `to` (created).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
