//! Benchmark of the leased work queues (claim a batch, then finish it) against a raw
//! single-statement queue on a plain table and a peer job queue's shape (the claim locks,
//! the finish deletes), run on the same database in the same run so the ratio holds on a
//! noisy machine. Each queue is drained at two paces: `sequential` (claim, finish, claim
//! again: one statement at a time per worker) and `overlapped` (a batch's finish runs at
//! the same time as the next batch's claim, on two connections, as a consumer with a local
//! queue and batched completion such as graphile-worker does).
//!
//! ```text
//! scripts/store_bench.sh [-- --scale 1.0 --batch 100 --rounds 5 --json bench.json]
//! DATABASE_URL=postgres://... cargo run --release -p galaxy-postgres --example store_bench \
//!     [-- --scale 1.0 --batch 100 --rounds 5 --json bench.json --workers 1,4,16 \
//!     --scenarios peer,jobs,routes,mail,mail-each --paces sequential,overlapped --pool 10]
//! ```
//!
//! The run uses its own fresh database (cloned from the migrated template, dropped at the
//! end), prints the server's durability settings (the figures mean little with `fsync`
//! off: `scripts/store_bench.sh` starts a throwaway cluster with the defaults, fsync on),
//! and one table row per scenario, pace and worker count: items per second, and the ratio
//! to the raw queue with the same number of workers. Every scenario drains a queue seeded
//! (untimed, in one statement) for its measurement; scenarios are interleaved in rounds.
//! The workers of a run share one pool of `--pool` connections (by default the server's
//! own default, `GALAXY_DATABASE_MAX_CONNECTIONS`), as the workers of one server do: with
//! more workers than connections, a worker waits for a connection rather than adding a
//! backend to a database server that has fewer cores than backends.
//! Last, a table of short store calls (`SELECT 1`) through two pools, one pinging every
//! connection before handing it out and one as configured by default
//! (`ConnectOptions::ping_idle_after`): the round trip a ping adds to every store call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use galaxy_core::domain::lease::{ClaimRequest, Finish};
use galaxy_core::domain::mail::{AttemptOutcome, MailAttempt};
use galaxy_core::domain::{LeaseToken, Timestamp};
use galaxy_core::ports::{
    JobCompletion, JobOutcome, MailAttemptEnd, MailFinish, MailNext, MailStore, NotificationStore,
    RouteFinish, RouteNext, RuntimeJobStore,
};
use galaxy_postgres::testing::{SeedQueue, TestDatabases};
use galaxy_postgres::{ConnectOptions, PgStore, connect_with};
use uuid::Uuid;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Worker counts measured by default.
const WORKERS: [usize; 3] = [1, 4, 16];

/// One measured scenario at one worker count (summed over rounds).
struct Measured {
    scenario: Scenario,
    pace: Pace,
    workers: usize,
    items: u64,
    elapsed: Duration,
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.items as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Command-line options.
struct Options {
    /// Multiplies every scenario's item count.
    scale: f64,
    /// Items per claim.
    batch: u32,
    /// Interleaved rounds per worker count.
    rounds: u64,
    /// Where to write the figures as JSON.
    json: Option<String>,
    /// Worker counts (`--workers 1,4,16`).
    workers: Vec<usize>,
    /// Scenarios (`--scenarios raw,peer,jobs,routes,mail,mail-each`); the raw baseline
    /// always runs.
    scenarios: Vec<Scenario>,
    /// Paces (`--paces sequential,overlapped`), for the scenarios that have both.
    paces: Vec<Pace>,
    /// The pool's size limit (`--pool`; the server's default pool size unless given).
    /// Every worker of a run shares the one pool, as the workers of one server do: a
    /// worker that finds every connection busy waits for one.
    pool: u32,
}

impl Options {
    fn parse() -> BenchResult<Self> {
        let args: Vec<String> = std::env::args().collect();
        let value = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1).cloned())
        };
        Ok(Self {
            scale: value("--scale").map_or(Ok(1.0), |s| s.parse())?,
            batch: value("--batch").map_or(Ok(100), |s| s.parse())?,
            rounds: value("--rounds").map_or(Ok(5), |s| s.parse())?,
            json: value("--json"),
            workers: match value("--workers") {
                Some(list) => list.split(',').map(str::parse).collect::<Result<_, _>>()?,
                None => WORKERS.to_vec(),
            },
            scenarios: match value("--scenarios") {
                Some(list) => {
                    let mut chosen = vec![Scenario::Raw];
                    for key in list.split(',') {
                        let scenario = Scenario::ALL
                            .into_iter()
                            .find(|s| s.key() == key)
                            .ok_or_else(|| format!("unknown scenario {key}"))?;
                        if !chosen.contains(&scenario) {
                            chosen.push(scenario);
                        }
                    }
                    chosen
                }
                None => Scenario::ALL.to_vec(),
            },
            pool: value("--pool")
                .map_or(Ok(ConnectOptions::default().max_connections), |s| s.parse())?,
            paces: match value("--paces") {
                Some(list) => list
                    .split(',')
                    .map(|key| {
                        Pace::ALL
                            .into_iter()
                            .find(|p| p.key() == key)
                            .ok_or_else(|| format!("unknown pace {key}"))
                    })
                    .collect::<Result<_, _>>()?,
                None => Pace::ALL.to_vec(),
            },
        })
    }
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let options = Options::parse()?;
    let databases = TestDatabases::from_env().await?;
    let mut connect = ConnectOptions::default();
    connect.max_connections = options.pool.max(1);
    connect.application_name = "galaxy-store-bench".to_owned();
    let database = databases.migrated_database().await?;
    let pool = connect_with(database.clone(), &connect).await?;
    let store = Arc::new(PgStore::new(pool));
    let settings = server_settings(&store).await?;
    println!("server: {settings}");
    println!("load average before: {}", load_average());
    sqlx::raw_sql(
        "CREATE TABLE bench_queue (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
         payload text NOT NULL); \
         CREATE TABLE bench_peer_jobs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
         task text NOT NULL, payload json NOT NULL, run_at timestamptz NOT NULL DEFAULT now(), \
         attempts integer NOT NULL DEFAULT 0, max_attempts integer NOT NULL DEFAULT 25, \
         locked_at timestamptz, locked_by text, \
         is_available boolean GENERATED ALWAYS AS \
         (locked_at IS NULL AND attempts < max_attempts) STORED); \
         CREATE INDEX bench_peer_jobs_main ON bench_peer_jobs (run_at, id) WHERE is_available;",
    )
    .execute(store.pool())
    .await?;
    let mut rows: Vec<Measured> = Vec::new();
    for &workers in &options.workers {
        for _ in 0..options.rounds {
            for &scenario in &options.scenarios {
                for &pace in scenario.paces(&options.paces) {
                    let items = ((scenario.base_items() as f64 * options.scale) as u64).max(10);
                    let run = scenario.run(&store, pace, workers, items, options.batch);
                    add(&mut rows, run.await?);
                }
            }
        }
    }
    let calls = ((2_000.0 * options.scale) as u64).max(10);
    let round_trips = pool_round_trips(&database, &connect, calls, options.rounds).await?;
    println!("load average after: {}", load_average());
    store.pool().close().await;
    databases.cleanup().await?;
    print_table(&rows, options.batch, connect.max_connections);
    print_round_trips(&round_trips, calls, options.rounds);
    if let Some(path) = options.json {
        let json = to_json(&rows, &settings, options.batch, connect.max_connections);
        std::fs::write(&path, json.to_string())?;
        println!("\nwrote {path}");
    }
    Ok(())
}

/// How long one short store call takes through the pool, by when the pool pings a
/// connection before handing it out (`ConnectOptions::ping_idle_after`): before every
/// call (as sqlx's `test_before_acquire` does, and Galaxy did until 2026-12-04), and
/// only after the default idle time. `calls` sequential `SELECT 1` per round and pool,
/// the two pools interleaved in rounds; returns each pool's label and total time.
async fn pool_round_trips(
    database: &sqlx::postgres::PgConnectOptions,
    connect: &ConnectOptions,
    calls: u64,
    rounds: u64,
) -> BenchResult<Vec<(&'static str, Duration)>> {
    let mut every = connect.clone();
    every.ping_idle_after = Duration::ZERO;
    let pools = [
        (
            "ping before every call (ping_idle_after = 0)",
            connect_with(database.clone(), &every).await?,
        ),
        (
            "ping after 1 s idle (ping_idle_after default)",
            connect_with(database.clone(), connect).await?,
        ),
    ];
    let mut totals = vec![Duration::ZERO; pools.len()];
    for _ in 0..rounds {
        for ((_, pool), total) in pools.iter().zip(totals.iter_mut()) {
            let started = Instant::now();
            for _ in 0..calls {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
            *total += started.elapsed();
        }
    }
    for (_, pool) in &pools {
        pool.close().await;
    }
    Ok(pools.iter().map(|(label, _)| *label).zip(totals).collect())
}

/// Prints the round-trip table of [`pool_round_trips`].
fn print_round_trips(measured: &[(&'static str, Duration)], calls: u64, rounds: u64) {
    println!("\n{calls} sequential `SELECT 1` per round through a pool, {rounds} rounds:\n");
    println!("| pool | calls | us/call |\n|---|---:|---:|");
    for (label, total) in measured {
        let all = calls * rounds;
        let micros = total.as_secs_f64() * 1e6 / all.max(1) as f64;
        println!("| {label} | {all} | {micros:.0} |");
    }
}

/// How a worker paces its statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pace {
    /// Claim a batch, finish it, claim the next: one statement in flight per worker.
    Sequential,
    /// Finish a batch while the next is claimed (`tokio::join!` of the two calls, each
    /// on its own pooled connection): two statements in flight per worker, so one worker
    /// waits for the longer of the two rather than for both.
    Overlapped,
}

impl Pace {
    const ALL: [Pace; 2] = [Self::Sequential, Self::Overlapped];

    /// The pace's name on the command line and in the table.
    fn key(self) -> &'static str {
        match self {
            Self::Sequential => "sequential",
            Self::Overlapped => "overlapped",
        }
    }
}

/// What one table row measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// The baseline: one `DELETE ... RETURNING` per batch on a plain table.
    Raw,
    /// A peer job queue's shape (as graphile-worker's): the claim locks the rows (an
    /// `is_available` flag generated from the lock, a partial index on it), the finish
    /// deletes them; both commits durable.
    Peer,
    /// `claim_jobs` of a batch, then one `complete_jobs` (its commit relaxed).
    Jobs,
    /// `claim_routes` of a batch, then one `finish_routes` (both commits relaxed).
    Routes,
    /// `claim_mail` of a batch, then one `finish_mail_attempts` with the attempt rows.
    Mail,
    /// `claim_mail` of a batch, then one `finish_mail_attempt` per mail (the old path).
    MailEach,
}

impl Scenario {
    const ALL: [Scenario; 6] = [
        Self::Raw,
        Self::Peer,
        Self::Jobs,
        Self::Routes,
        Self::Mail,
        Self::MailEach,
    ];

    /// The scenario's name on the command line.
    fn key(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Peer => "peer",
            Self::Jobs => "jobs",
            Self::Routes => "routes",
            Self::Mail => "mail",
            Self::MailEach => "mail-each",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Raw => "raw: DELETE .. SKIP LOCKED RETURNING (1 stmt)",
            Self::Peer => "peer: lock claim + DELETE finish (2 stmts, durable)",
            Self::Jobs => "jobs: claim + complete_jobs (2 stmts, finish relaxed)",
            Self::Routes => "routes: claim + finish_routes (2 stmts, both relaxed)",
            Self::Mail => "mail: claim + finish_mail_attempts (2 stmts, durable)",
            Self::MailEach => "mail: claim + finish each (1+N stmts)",
        }
    }

    /// The paces of `chosen` this scenario runs at: the raw baseline and the old
    /// finish-each path only sequentially (the raw claim is its finish).
    fn paces(self, chosen: &[Pace]) -> &'static [Pace] {
        let sequential = chosen.contains(&Pace::Sequential);
        let overlapped = chosen.contains(&Pace::Overlapped);
        match self {
            Self::Raw | Self::MailEach => &[Pace::Sequential],
            _ if sequential && overlapped => &Pace::ALL,
            _ if overlapped => &[Pace::Overlapped],
            _ => &[Pace::Sequential],
        }
    }

    /// Items per measurement at `--scale 1`.
    fn base_items(self) -> u64 {
        match self {
            Self::MailEach => 1_000,
            _ => 10_000,
        }
    }

    async fn run(
        self,
        store: &Arc<PgStore>,
        pace: Pace,
        workers: usize,
        items: u64,
        batch: u32,
    ) -> BenchResult<Measured> {
        seed(store, self, items).await?;
        let started = Instant::now();
        let tasks: Vec<_> = (0..workers)
            .map(|_| tokio::spawn(drain(Arc::clone(store), self, pace, batch)))
            .collect();
        let mut done = 0;
        for task in tasks {
            done += task.await??;
        }
        let elapsed = started.elapsed();
        if done != items {
            return Err(format!("{}: drained {done} of {items} items", self.name()).into());
        }
        Ok(Measured {
            scenario: self,
            pace,
            workers,
            items: done,
            elapsed,
        })
    }
}

/// Queues `items` for `scenario` in one statement (untimed).
async fn seed(store: &PgStore, scenario: Scenario, items: u64) -> BenchResult<()> {
    let queue = match scenario {
        Scenario::Raw => {
            sqlx::query(
                "INSERT INTO bench_queue (payload) SELECT 'job ' || g \
                 FROM generate_series(1, $1) g",
            )
            .bind(items as i64)
            .execute(store.pool())
            .await?;
            return Ok(());
        }
        Scenario::Peer => {
            sqlx::query(
                "INSERT INTO bench_peer_jobs (task, payload) SELECT 'send', \
                 json_build_object('n', g) FROM generate_series(1, $1) g",
            )
            .bind(items as i64)
            .execute(store.pool())
            .await?;
            return Ok(());
        }
        Scenario::Jobs => SeedQueue::Jobs,
        Scenario::Routes => SeedQueue::Routes,
        Scenario::Mail | Scenario::MailEach => SeedQueue::Mail,
    };
    queue.seed(store.pool(), items, Utc::now()).await?;
    Ok(())
}

/// One worker: claims and finishes batches at `pace` until a claim comes back empty;
/// returns how many items it finished.
async fn drain(
    store: Arc<PgStore>,
    scenario: Scenario,
    pace: Pace,
    batch: u32,
) -> BenchResult<u64> {
    let mut done = 0;
    let mut claimed = claim_batch(&store, scenario, batch).await?;
    while claimed.len() > 0 {
        done += match pace {
            Pace::Sequential => {
                let finished = finish_batch(&store, claimed).await?;
                claimed = claim_batch(&store, scenario, batch).await?;
                finished
            }
            Pace::Overlapped => {
                let (finished, next) = tokio::join!(
                    finish_batch(&store, claimed),
                    claim_batch(&store, scenario, batch)
                );
                claimed = next?;
                finished?
            }
        };
    }
    Ok(done)
}

/// The claim every store scenario makes.
fn claim(batch: u32) -> ClaimRequest {
    ClaimRequest {
        token: LeaseToken::from_uuid(Uuid::new_v4()),
        now: Utc::now(),
        lease: TimeDelta::seconds(60),
        limit: batch,
    }
}

/// A claimed batch with the finishes of its items (the work of each item is a no-op).
enum Claimed {
    /// Raw rows taken (the raw claim is also its finish).
    Raw(u64),
    /// Peer rows locked by `worker`.
    Peer { worker: String, ids: Vec<i64> },
    /// Claimed jobs, each to succeed.
    Jobs(Vec<JobCompletion>),
    /// Claimed routes, each delivered.
    Routes(Vec<RouteFinish>),
    /// Claimed mail, each sent; `batched` finishes them in one call, else one call each.
    Mail {
        finishes: Vec<MailFinish>,
        batched: bool,
    },
}

impl Claimed {
    fn len(&self) -> usize {
        match self {
            Self::Raw(taken) => *taken as usize,
            Self::Peer { ids, .. } => ids.len(),
            Self::Jobs(finishes) => finishes.len(),
            Self::Routes(finishes) => finishes.len(),
            Self::Mail { finishes, .. } => finishes.len(),
        }
    }
}

/// Claims one batch of `scenario`'s queue.
async fn claim_batch(store: &PgStore, scenario: Scenario, batch: u32) -> BenchResult<Claimed> {
    let claim = claim(batch);
    let token = claim.token;
    Ok(match scenario {
        Scenario::Raw => {
            // `id = ANY(ARRAY(...))` runs the locking subquery once per statement. Written
            // `id IN (SELECT ...)`, a plan that rescanned it per outer row left 16 workers
            // in one statement each for over 8 minutes (2026-12-04), locking ever more rows.
            let taken: Vec<(i64, String)> = sqlx::query_as(
                "DELETE FROM bench_queue WHERE id = ANY(ARRAY(SELECT id FROM bench_queue \
                 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)) RETURNING id, payload",
            )
            .bind(i64::from(batch))
            .fetch_all(store.pool())
            .await?;
            Claimed::Raw(taken.len() as u64)
        }
        Scenario::Peer => {
            let worker = Uuid::new_v4().to_string();
            let claimed: Vec<(i64, String, serde_json::Value)> = sqlx::query_as(
                "UPDATE bench_peer_jobs SET attempts = attempts + 1, locked_by = $1, \
                 locked_at = now() WHERE id = ANY(ARRAY(SELECT id FROM bench_peer_jobs \
                 WHERE is_available AND run_at <= now() ORDER BY run_at, id LIMIT $2 \
                 FOR UPDATE SKIP LOCKED)) RETURNING id, task, payload",
            )
            .bind(&worker)
            .bind(i64::from(batch))
            .fetch_all(store.pool())
            .await?;
            let ids = claimed.iter().map(|(id, _, _)| *id).collect();
            Claimed::Peer { worker, ids }
        }
        Scenario::Jobs => {
            let jobs = store.claim_jobs(&claim).await?;
            let ids = jobs.iter().map(|j| j.id);
            Claimed::Jobs(finishes(ids, token, || JobOutcome::Succeeded))
        }
        Scenario::Routes => {
            let routes = store.claim_routes(&claim).await?;
            let ids = routes.iter().map(|r| r.id);
            Claimed::Routes(finishes(ids, token, || RouteNext::Delivered))
        }
        Scenario::Mail | Scenario::MailEach => {
            let mails = store.claim_mail(&claim).await?;
            let finishes = mails
                .iter()
                .map(|m| sent(m.id, m.attempts, token, Utc::now()))
                .collect();
            let batched = scenario == Scenario::Mail;
            Claimed::Mail { finishes, batched }
        }
    })
}

/// One finish per claimed item, each with `outcome()`, stamped now.
fn finishes<I, O>(
    ids: impl Iterator<Item = I>,
    token: LeaseToken,
    outcome: impl Fn() -> O,
) -> Vec<Finish<I, O>> {
    ids.map(|id| Finish {
        id,
        token,
        outcome: outcome(),
        at: Utc::now(),
    })
    .collect()
}

/// Finishes a claimed batch; returns how many items it finished (an error when a held
/// item did not finish).
async fn finish_batch(store: &PgStore, claimed: Claimed) -> BenchResult<u64> {
    let claimed_items = claimed.len();
    let finished = match claimed {
        Claimed::Raw(taken) => taken as usize,
        Claimed::Peer { worker, ids } => {
            let finished =
                sqlx::query("DELETE FROM bench_peer_jobs WHERE id = ANY($1) AND locked_by = $2")
                    .bind(&ids)
                    .bind(&worker)
                    .execute(store.pool())
                    .await?;
            finished.rows_affected() as usize
        }
        Claimed::Jobs(done) => {
            let results = store.complete_jobs(&done).await?;
            results.iter().filter(|r| r.is_ok()).count()
        }
        Claimed::Routes(done) => {
            let results = store.finish_routes(&done).await?;
            results.iter().filter(|r| r.is_ok()).count()
        }
        Claimed::Mail {
            finishes,
            batched: true,
        } => {
            let results = store.finish_mail_attempts(&finishes).await?;
            results.iter().filter(|r| r.is_ok()).count()
        }
        Claimed::Mail {
            finishes,
            batched: false,
        } => {
            for f in &finishes {
                let attempt = f.outcome.attempt.clone();
                store
                    .finish_mail_attempt(f.id, f.token, attempt, MailNext::Sent, f.at)
                    .await?;
            }
            finishes.len()
        }
    };
    all_finished(finished, claimed_items)
}

/// A sent mail's finish, with its attempt row as the mail worker records it.
fn sent(
    id: galaxy_core::domain::MailId,
    number: u32,
    token: LeaseToken,
    at: Timestamp,
) -> MailFinish {
    let attempt = MailAttempt {
        mail_id: id,
        number,
        outcome: AttemptOutcome::Sent,
        detail: "250 2.0.0 OK queued".to_owned(),
        at,
    };
    Finish {
        id,
        token,
        outcome: MailAttemptEnd {
            attempt: Some(attempt),
            next: MailNext::Sent,
        },
        at,
    }
}

/// `finished` as a count, or an error when a held item did not finish.
fn all_finished(finished: usize, claimed: usize) -> BenchResult<u64> {
    if finished == claimed {
        Ok(claimed as u64)
    } else {
        Err(format!("only {finished} of {claimed} claimed items finished").into())
    }
}

/// Adds one round's figures to the row of its scenario and worker count.
fn add(rows: &mut Vec<Measured>, round: Measured) {
    match rows.iter_mut().find(|r| {
        r.scenario == round.scenario && r.pace == round.pace && r.workers == round.workers
    }) {
        Some(row) => {
            row.items += round.items;
            row.elapsed += round.elapsed;
        }
        None => rows.push(round),
    }
}

fn raw_rate(rows: &[Measured], workers: usize) -> f64 {
    rows.iter()
        .find(|r| r.scenario == Scenario::Raw && r.workers == workers)
        .map_or(1.0, Measured::per_second)
}

fn print_table(rows: &[Measured], batch: u32, pool: u32) {
    println!("\nbatch: {batch} items per claim; pool: {pool} connections shared by the workers\n");
    println!("| scenario | pace | workers | items | secs | items/s | vs raw |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.0} | {:.2}x |",
            row.scenario.name(),
            row.pace.key(),
            row.workers,
            row.items,
            row.elapsed.as_secs_f64(),
            row.per_second(),
            row.per_second() / raw_rate(rows, row.workers)
        );
    }
}

fn to_json(rows: &[Measured], settings: &str, batch: u32, pool: u32) -> serde_json::Value {
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "scenario": r.scenario.name(), "pace": r.pace.key(), "workers": r.workers,
                "items": r.items,
                "seconds": r.elapsed.as_secs_f64(), "items_per_second": r.per_second(),
                "vs_raw": r.per_second() / raw_rate(rows, r.workers),
            })
        })
        .collect();
    serde_json::json!({
        "benchmark": "postgres leased queues", "server": settings, "batch": batch, "pool": pool,
        "results": items,
    })
}

/// The server's version and durability settings, as one line.
async fn server_settings(store: &PgStore) -> BenchResult<String> {
    let mut parts = Vec::new();
    for name in [
        "server_version",
        "fsync",
        "synchronous_commit",
        "full_page_writes",
        "wal_sync_method",
        "shared_buffers",
    ] {
        let sql = match name {
            "server_version" => "SHOW server_version",
            "fsync" => "SHOW fsync",
            "synchronous_commit" => "SHOW synchronous_commit",
            "full_page_writes" => "SHOW full_page_writes",
            "wal_sync_method" => "SHOW wal_sync_method",
            _ => "SHOW shared_buffers",
        };
        let value: String = sqlx::query_scalar(sql).fetch_one(store.pool()).await?;
        parts.push(format!("{name}={value}"));
    }
    Ok(parts.join(" "))
}

/// The first three fields of `/proc/loadavg` (empty where there is none).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
