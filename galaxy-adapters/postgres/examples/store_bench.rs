//! Benchmark of the hottest store paths against a raw single-statement sqlx loop run on
//! the same database in the same run, so the ratio holds on a noisy machine.
//!
//! ```text
//! DATABASE_URL=postgres://... cargo run --release -p galaxy-postgres --example store_bench \
//!     [-- --scale 1.0 --json bench.json]
//! ```
//!
//! The run uses its own fresh database (cloned from the migrated template, dropped at the
//! end) and prints one table row per scenario and worker count: operations per second,
//! and the ratio to the raw loop with the same number of workers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use galaxy_core::domain::game::{
    EngineName, Game, GameName, GameSettings, GameStatus, GameTrigger, Visibility,
};
use galaxy_core::domain::lease::ClaimRequest;
use galaxy_core::domain::mail::{MailDelivery, OutgoingMail};
use galaxy_core::domain::schedule::TurnSchedule;
use galaxy_core::domain::user::{Email, Locale};
use galaxy_core::domain::{GameId, LeaseToken, MailId, Timestamp, UserId};
use galaxy_core::ports::{GameStatusChange, GameStore, MailNext, MailStore, StoreError};
use galaxy_postgres::PgStore;
use galaxy_postgres::testing::TestDatabases;
use uuid::Uuid;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// One measured scenario.
struct Measured {
    scenario: &'static str,
    workers: usize,
    ops: u64,
    elapsed: Duration,
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let scale: f64 = value("--scale").map_or(Ok(1.0), |s| s.parse())?;
    let json_path = value("--json");
    let n = |base: u64| ((base as f64 * scale) as u64).max(10);

    let databases = TestDatabases::from_env().await?;
    let store = Arc::new(databases.store().await?);
    // Scenarios are interleaved in rounds so that load from elsewhere on the machine
    // hits the baseline and the store paths alike.
    let rounds = 5;
    let mut rows: Vec<Measured> = Vec::new();
    for workers in [1, 4] {
        for _ in 0..rounds {
            for scenario in Scenario::ALL {
                let ops = n(scenario.base_ops()) / rounds;
                let measured = scenario.run(&store, workers, ops).await?;
                add(&mut rows, measured);
            }
        }
    }
    store.pool().close().await;
    databases.cleanup().await?;
    print_table(&rows);
    if let Some(path) = json_path {
        std::fs::write(&path, to_json(&rows).to_string())?;
        println!("\nwrote {path}");
    }
    Ok(())
}

/// What one table row measures.
#[derive(Debug, Clone, Copy)]
enum Scenario {
    Raw,
    MailSingle,
    MailBatched,
    GameCas,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Self::Raw,
        Self::MailSingle,
        Self::MailBatched,
        Self::GameCas,
    ];

    /// Operations at `--scale 1`, over all rounds.
    fn base_ops(self) -> u64 {
        match self {
            Self::MailBatched => 20_000,
            _ => 5_000,
        }
    }

    async fn run(self, store: &Arc<PgStore>, workers: usize, ops: u64) -> BenchResult<Measured> {
        match self {
            Self::Raw => raw_update(store, workers, ops).await,
            Self::MailSingle => mail_claims(store, workers, ops, 1).await,
            Self::MailBatched => mail_claims(store, workers, ops, 50).await,
            Self::GameCas => game_cas(store, workers, ops).await,
        }
    }
}

/// Adds one round's figures to the row of its scenario and worker count.
fn add(rows: &mut Vec<Measured>, round: Measured) {
    match rows
        .iter_mut()
        .find(|r| r.scenario == round.scenario && r.workers == round.workers)
    {
        Some(row) => {
            row.ops += round.ops;
            row.elapsed += round.elapsed;
        }
        None => rows.push(round),
    }
}

fn print_table(rows: &[Measured]) {
    println!(
        "{:<44} {:>7} {:>8} {:>8} {:>10} {:>8}",
        "scenario", "workers", "ops", "secs", "ops/s", "vs raw"
    );
    for row in rows {
        let raw = rows
            .iter()
            .find(|r| r.scenario == RAW && r.workers == row.workers)
            .map_or(1.0, Measured::per_second);
        println!(
            "{:<44} {:>7} {:>8} {:>8.2} {:>10.0} {:>7.2}x",
            row.scenario,
            row.workers,
            row.ops,
            row.elapsed.as_secs_f64(),
            row.per_second(),
            row.per_second() / raw
        );
    }
}

fn to_json(rows: &[Measured]) -> serde_json::Value {
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "scenario": r.scenario, "workers": r.workers, "ops": r.ops,
                "seconds": r.elapsed.as_secs_f64(), "ops_per_second": r.per_second(),
            })
        })
        .collect();
    serde_json::json!({ "benchmark": "postgres store", "results": items })
}

/// Runs `workers` copies of `work` at once, each doing `ops / workers` operations, and
/// times the whole.
async fn timed<F, Fut>(
    scenario: &'static str,
    workers: usize,
    ops: u64,
    work: F,
) -> BenchResult<Measured>
where
    F: Fn(usize, u64) -> Fut,
    Fut: std::future::Future<Output = BenchResult<u64>> + Send + 'static,
{
    let per_worker = ops / workers as u64;
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| tokio::spawn(work(w, per_worker)))
        .collect();
    let mut done = 0;
    for task in tasks {
        done += task.await??;
    }
    Ok(Measured {
        scenario,
        workers,
        ops: done,
        elapsed: started.elapsed(),
    })
}

const RAW: &str = "raw sqlx: one UPDATE by primary key";

/// The baseline: one single-row UPDATE statement per operation, each worker on its own
/// row, through the same pool.
async fn raw_update(store: &Arc<PgStore>, workers: usize, ops: u64) -> BenchResult<Measured> {
    let games = insert_games(store, workers, GameStatus::Running).await?;
    timed(RAW, workers, ops, |w, n| {
        let (store, id) = (Arc::clone(store), games[w].as_uuid());
        async move {
            for _ in 0..n {
                sqlx::query("UPDATE games SET updated_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(Utc::now())
                    .execute(store.pool())
                    .await?;
            }
            Ok(n)
        }
    })
    .await
}

/// Claim (`limit` at a time) and complete mails until this worker's share is done.
async fn mail_claims(
    store: &Arc<PgStore>,
    workers: usize,
    ops: u64,
    limit: u32,
) -> BenchResult<Measured> {
    let now = Utc::now();
    let run = Uuid::new_v4().simple().to_string();
    for i in 0..ops {
        store.enqueue_mail(&mail(&run, i, now)?).await?;
    }
    let scenario = if limit == 1 {
        "mail: claim 1 + finish (2 statements)"
    } else {
        "mail: claim 50 + finish each (1+50 stmts)"
    };
    timed(scenario, workers, ops, |_, n| {
        let store = Arc::clone(store);
        async move {
            let token = LeaseToken::from_uuid(Uuid::new_v4());
            let mut done = 0;
            while done < n {
                let claim = ClaimRequest {
                    token,
                    now: Utc::now(),
                    lease: TimeDelta::seconds(60),
                    limit: limit.min(u32::try_from(n - done).unwrap_or(limit)),
                };
                let batch = store.claim_mail(&claim).await?;
                if batch.is_empty() {
                    break;
                }
                for m in batch {
                    store
                        .finish_mail_attempt(m.id, token, None, MailNext::Sent, Utc::now())
                        .await?;
                    done += 1;
                }
            }
            Ok(done)
        }
    })
    .await
}

/// Status compare-and-set with its history row, each worker flipping its own game
/// between running and paused.
async fn game_cas(store: &Arc<PgStore>, workers: usize, ops: u64) -> BenchResult<Measured> {
    let games = insert_games(store, workers, GameStatus::Running).await?;
    timed(
        "game: status CAS + history row (1 stmt)",
        workers,
        ops,
        |w, n| {
            let (store, id) = (Arc::clone(store), games[w]);
            async move {
                let mut from = GameStatus::Running;
                for _ in 0..n {
                    let to = match from {
                        GameStatus::Running => GameStatus::Paused,
                        _ => GameStatus::Running,
                    };
                    let change = GameStatusChange {
                        to,
                        trigger: GameTrigger::Admin,
                        actor: None,
                        reason: None,
                        at: Utc::now(),
                    };
                    store.update_game_status(id, from, &change).await?;
                    from = to;
                }
                Ok(n)
            }
        },
    )
    .await
}

async fn insert_games(
    store: &PgStore,
    count: usize,
    status: GameStatus,
) -> Result<Vec<GameId>, StoreError> {
    let now = Utc::now();
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let settings = GameSettings {
            name: GameName::parse("Benchmark").map_err(StoreError::internal)?,
            min_players: 2,
            max_players: 8,
            enrollment_deadline: now + TimeDelta::days(7),
            schedule: TurnSchedule::parse("0 18 * * *").map_err(StoreError::internal)?,
            engine: EngineName::reference(),
            auto_approve: false,
            visibility: Visibility::Public,
            engine_settings: galaxy_core::domain::game::EngineSettings::default(),
            reveal_reports_after_finish: true,
        };
        let id = GameId::from_uuid(Uuid::now_v7());
        let mut game = Game::new(id, UserId::from_uuid(Uuid::now_v7()), settings, now);
        game.status = status;
        store.insert_game(&game).await?;
        ids.push(id);
    }
    Ok(ids)
}

fn mail(run: &str, i: u64, now: Timestamp) -> BenchResult<MailDelivery> {
    let outgoing = OutgoingMail {
        idempotency_key: format!("bench-{run}-{i}"),
        to: Email::parse(&format!("player{i}@example.org"))?,
        kind: "turn_completed".to_owned(),
        locale: Locale::default(),
        subject: format!("Turn report {i}"),
        text_body: "Your turn report is ready.".to_owned(),
        html_body: None,
    };
    Ok(MailDelivery::new(
        MailId::from_uuid(Uuid::now_v7()),
        outgoing,
        now,
    ))
}
