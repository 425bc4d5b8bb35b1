//! Faults on a real server: a connection lost mid-operation surfaces as a retryable
//! `StoreError`, and the pool recovers once Postgres is back.
//!
//! Runs on a dedicated cluster this test starts itself (initdb + pg_ctl from `$PG_BIN`
//! or the machine's Postgres, as the `postgres` user when root, in a temporary
//! directory, on a free port) because it stops and restarts the server; the shared
//! cluster of the other tests is never touched.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use galaxy_core::domain::game::{
    EngineName, Game, GameName, GameSettings, GameStatus, GameTrigger, Visibility,
};
use galaxy_core::domain::schedule::TurnSchedule;
use galaxy_core::domain::{GameId, UserId};
use galaxy_core::ports::{GameStatusChange, GameStore, MailStore};
use galaxy_postgres::{ConnectOptions, PgStore};
use uuid::Uuid;

/// The directory holding `initdb` and `pg_ctl`.
fn pg_bin() -> PathBuf {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let mut candidates: Vec<PathBuf> = std::env::var_os("PG_BIN")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    if let Ok(versions) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut dirs: Vec<PathBuf> = versions.flatten().map(|v| v.path().join("bin")).collect();
        dirs.sort();
        candidates.extend(dirs.into_iter().rev());
    }
    candidates
        .into_iter()
        .find(|dir| has_tools(dir))
        .unwrap_or_else(|| {
            panic!(
                "Postgres server binaries (initdb, pg_ctl) not found: install them (Debian: \
             apt-get install postgresql) or set PG_BIN to their directory"
            )
        })
}

/// A throwaway cluster, stopped and deleted when dropped (also when the test fails).
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    fn start() -> Self {
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false);
        let dir =
            std::env::temp_dir().join(format!("galaxy-pg-recovery-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&dir));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Self {
            bin: pg_bin(),
            dir,
            port,
            as_postgres,
        };
        let data = cluster.dir.join("data");
        run(cluster.tool("initdb").arg("-D").arg(&data).args([
            "-U",
            "galaxy",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ]));
        cluster.pg_ctl_start();
        cluster
    }

    /// A command running one of the server tools, as `postgres` when root.
    fn tool(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        run(self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]));
    }

    fn pg_ctl_stop(&self, mode: &str) {
        run(self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", mode, "-w", "stop"]));
    }

    fn url(&self) -> String {
        format!("postgres://galaxy@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(command: &mut Command) {
    let output = command.output().expect("run a Postgres tool");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn game() -> Game {
    let now = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap();
    let settings = GameSettings {
        name: GameName::parse("Recovery").unwrap(),
        min_players: 2,
        max_players: 4,
        enrollment_deadline: now + chrono::TimeDelta::days(1),
        schedule: TurnSchedule::parse("0 18 * * *").unwrap(),
        engine: EngineName::reference(),
        auto_approve: false,
        visibility: Visibility::Public,
        engine_settings: galaxy_core::domain::game::EngineSettings::default(),
        reveal_reports_after_finish: true,
        pbem: Default::default(),
    };
    let id = GameId::from_uuid(Uuid::now_v7());
    Game::new(id, UserId::from_uuid(Uuid::now_v7()), settings, now)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_is_retryable_and_the_pool_recovers() {
    let cluster = tokio::task::spawn_blocking(Cluster::start).await.unwrap();
    let mut options = ConnectOptions::default();
    options.acquire_timeout = Duration::from_secs(1);
    options.max_connections = 4;
    let store = Arc::new(PgStore::open(&cluster.url(), &options).await.expect("open"));
    let g = game();
    store.insert_game(&g).await.unwrap();

    // A store call in flight when the server goes: it waits on a row lock held by
    // another session, so it is surely mid-operation when the backends are terminated.
    let mut blocker = store.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM games WHERE id = $1 FOR UPDATE")
        .bind(g.id.as_uuid())
        .execute(&mut *blocker)
        .await
        .unwrap();
    let in_flight = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let change = GameStatusChange {
                to: GameStatus::EnrollmentOpen,
                trigger: GameTrigger::Host,
                actor: None,
                reason: None,
                at: g.created_at,
                expected_approved: None,
            };
            store
                .update_game_status(g.id, GameStatus::Draft, &change)
                .await
        })
    };

    // A worker loop of store calls running through the outage.
    let stop = Arc::new(AtomicBool::new(false));
    let (oks, retryable) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let worker = {
        let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
        let (oks, retryable) = (Arc::clone(&oks), Arc::clone(&retryable));
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                match store.count_mail_by_status().await {
                    Ok(_) => oks.fetch_add(1, Ordering::SeqCst),
                    Err(e) if e.is_retryable() => retryable.fetch_add(1, Ordering::SeqCst),
                    Err(e) => panic!("a lost connection must be retryable, got: {e:?}"),
                };
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    wait_for("the worker to run", || oks.load(Ordering::SeqCst) >= 3).await;

    // Kill exactly the backend of the in-flight call while it waits on the lock. (Stopping
    // the whole server races: the blocker's backend may die first, releasing the lock, and
    // the waiting update may commit before its own backend is told to stop.)
    let looking = Instant::now();
    let waiting = loop {
        // Bounded: a call that never waits (it failed before reaching the lock) must fail
        // the test with its outcome, not hang it.
        assert!(
            !in_flight.is_finished(),
            "the in-flight call ended before it waited on the lock"
        );
        assert!(
            looking.elapsed() < Duration::from_secs(60),
            "no backend waited on the lock within 60 s"
        );
        let pid: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity \
             WHERE wait_event_type = 'Lock' AND datname = current_database() LIMIT 1",
        )
        .fetch_optional(&mut *blocker)
        .await
        .unwrap();
        match pid {
            Some(pid) => break pid,
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(waiting)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let lost = in_flight
        .await
        .unwrap()
        .expect_err("the connection went away mid-call");
    eprintln!("the in-flight call failed with: {lost}");
    assert!(
        lost.is_retryable(),
        "mid-operation loss must be retryable: {lost:?}"
    );
    drop(blocker);

    let cluster = Arc::new(cluster);
    let stopper = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || stopper.pg_ctl_stop("fast"))
        .await
        .unwrap();
    wait_for("errors while the server is down", || {
        retryable.load(Ordering::SeqCst) >= 3
    })
    .await;

    let starter = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || starter.pg_ctl_start())
        .await
        .unwrap();
    let before = oks.load(Ordering::SeqCst);
    wait_for("the pool to recover", || {
        oks.load(Ordering::SeqCst) >= before + 3
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    eprintln!(
        "worker: {} calls succeeded, {} failed retryably",
        oks.load(Ordering::SeqCst),
        retryable.load(Ordering::SeqCst)
    );
    worker.await.expect("the worker saw only retryable errors");

    // Writes work again, and the game is untouched by the lost call.
    let after = store.get_game(g.id).await.expect("read after recovery");
    assert_eq!(after.status, GameStatus::Draft);
    store.pool().close().await;
}

/// Polls `done` every 50 ms for at most 60 s.
async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
