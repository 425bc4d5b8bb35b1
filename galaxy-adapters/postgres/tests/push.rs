//! The push log on Postgres: the conformance suite (each case on a fresh database), two
//! replicas reading one log with the same cursors, and a follower whose listening
//! connection drops catching up, without loss, once it listens again.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use galaxy_core::domain::UserId;
use galaxy_core::domain::push::PushEvent;
use galaxy_core::ports::PushLog;
use galaxy_core::service::push::{PushConfig, PushService, Subscription};
use galaxy_ports::conformance;
use galaxy_ports::system::{OsSecretGenerator, SystemClock};
use galaxy_postgres::testing::TestDatabases;
use galaxy_postgres::{ConnectOptions, PgPushLog, PushLogOptions, connect_with};
use serde_json::json;
use sqlx::{AssertSqlSafe, Connection as _, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

/// How long an event may take to reach the other replica before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

async fn databases() -> TestDatabases {
    match TestDatabases::from_env().await {
        Ok(databases) => databases,
        Err(error) => panic!("{error}"),
    }
}

fn options() -> PushLogOptions {
    PushLogOptions {
        heartbeat: Duration::from_millis(200),
        ..PushLogOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_push_log_passes_the_suite() {
    let dbs = databases().await;
    conformance::push::run_all(|| async {
        let options = dbs.migrated_database().await.expect("a fresh database");
        let pool = dbs.pool(options).await.expect("pool");
        PgPushLog::start(pool, PushLogOptions::default())
            .await
            .expect("push log")
    })
    .await;
    dbs.cleanup().await.expect("drop test databases");
}

/// A replica's push service on `pool`, following the log with a poll of `poll`.
async fn replica(pool: PgPool, poll: Duration, stop: &CancellationToken) -> Arc<PushService> {
    let log = PgPushLog::start(pool, options()).await.expect("push log");
    let service = Arc::new(PushService::new(
        Arc::new(SystemClock),
        Arc::new(OsSecretGenerator),
        PushConfig::default(),
        Arc::new(log),
    ));
    service.catch_up().await.expect("warm");
    tokio::spawn(service.clone().follow(poll, stop.clone()));
    service
}

async fn publish(service: &PushService, n: u64) -> Arc<PushEvent> {
    let user = UserId::from_uuid(uuid::Uuid::from_u128(u128::from(n) + 1));
    service
        .publish_event(vec![user], "test.event", json!({ "n": n }))
        .await
        .expect("published")
}

async fn next(subscription: &mut Subscription) -> Arc<PushEvent> {
    tokio::time::timeout(PATIENCE, subscription.next())
        .await
        .expect("an event in time")
        .expect("the subscription is live")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_log_and_its_cursors() {
    let dbs = databases().await;
    let options = dbs.migrated_database().await.expect("a fresh database");
    let stop = CancellationToken::new();
    // A long poll: only the log's wake-ups can bring B the events in time.
    let a = replica(
        dbs.pool(options.clone()).await.unwrap(),
        PATIENCE * 4,
        &stop,
    )
    .await;
    let b = replica(dbs.pool(options).await.unwrap(), PATIENCE * 4, &stop).await;
    assert_eq!(a.epoch(), b.epoch(), "one log, one epoch");

    let mut on_b = b.subscribe("gateway-b", None).unwrap();
    let published: Vec<_> = [
        publish(&a, 1).await,
        publish(&b, 2).await,
        publish(&a, 3).await,
    ]
    .into_iter()
    .collect();
    for expected in &published {
        assert_eq!(&next(&mut on_b).await, expected, "same event, same cursor");
    }
    // A gateway moving to A with B's cursor of the first event gets exactly the rest.
    let mut on_a = a
        .subscribe("gateway-b", Some(&published[0].cursor.to_string()))
        .unwrap();
    assert_eq!(next(&mut on_a).await, published[1]);
    assert_eq!(next(&mut on_a).await, published[2]);
    stop.cancel();
    dbs.cleanup().await.expect("drop test databases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_whose_listener_drops_catches_up_without_loss() {
    let dbs = databases().await;
    let options = dbs.migrated_database().await.expect("a fresh database");
    let stop = CancellationToken::new();
    let pool_a = dbs.pool(options.clone()).await.unwrap();
    // B on a pool of its own, named so the test can cut it off.
    let mut settings = ConnectOptions::default();
    settings.max_connections = 4;
    settings.acquire_timeout = Duration::from_secs(5);
    settings.connect_attempts = 1;
    let pool_b = connect_with(options.application_name("push-replica-b"), &settings)
        .await
        .unwrap();
    // No poll within the test: B gets events only from wake-ups (notes, or resuming).
    let a = replica(pool_a.clone(), PATIENCE * 4, &stop).await;
    let b = replica(pool_b, PATIENCE * 4, &stop).await;
    let mut on_b = b.subscribe("gateway-b", None).unwrap();
    let first = publish(&a, 0).await;
    assert_eq!(next(&mut on_b).await, first, "B hears A");

    // A keeps idle connections to publish with while nobody may connect: every one its
    // pool may open, so its publishing and its own follower's reads never need a new
    // one, however they overlap.
    let held = hold_all(&pool_a).await;
    assert!(held.len() >= 3, "A holds {} connections", held.len());
    drop(held);
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool_a)
        .await
        .unwrap();
    // A database cannot close itself to connections: the cluster's admin database can.
    let admin_url = std::env::var("DATABASE_URL").unwrap();
    let allow = |allowed: bool| {
        let sql = format!("ALTER DATABASE \"{database}\" WITH ALLOW_CONNECTIONS {allowed}");
        let admin_url = admin_url.clone();
        async move {
            let mut admin = PgConnection::connect(&admin_url).await.unwrap();
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut admin)
                .await
                .unwrap();
        }
    };
    allow(false).await;
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'push-replica-b'",
    )
    .fetch_all(&pool_a)
    .await
    .unwrap();
    assert!(
        !killed.is_empty() && killed.iter().all(|k| *k),
        "B is cut off"
    );

    // Published while B cannot listen: their notes are lost to it.
    let mut missed = Vec::new();
    for n in 1..=20 {
        missed.push(publish(&a, n).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(on_b.try_next().is_none(), "B heard nothing while cut off");

    allow(true).await;
    for expected in &missed {
        assert_eq!(&next(&mut on_b).await, expected, "caught up, in order");
    }
    let after = publish(&a, 21).await;
    assert_eq!(next(&mut on_b).await, after, "and listening again");
    assert!(on_b.try_next().is_none(), "nothing twice");
    stop.cancel();
    dbs.cleanup().await.expect("drop test databases");
}

/// Every connection `pool` can still hand out (opening new ones up to its maximum); dropped, they
/// stay idle in it.
async fn hold_all(pool: &PgPool) -> Vec<sqlx::pool::PoolConnection<sqlx::Postgres>> {
    let max = pool.options().get_max_connections();
    let mut held = Vec::new();
    // Until the pool is at its maximum with none idle: each acquire may open a connection,
    // which takes its time on a busy machine.
    while pool.size() < max || pool.num_idle() > 0 {
        let connection = tokio::time::timeout(Duration::from_secs(10), pool.acquire())
            .await
            .expect("a connection within 10 s")
            .expect("a connection");
        held.push(connection);
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_started_late_replays_what_the_log_keeps() {
    let dbs = databases().await;
    let options = dbs.migrated_database().await.expect("a fresh database");
    let stop = CancellationToken::new();
    let pool = dbs.pool(options.clone()).await.unwrap();
    let a = replica(pool.clone(), PATIENCE, &stop).await;
    let events = [
        publish(&a, 1).await,
        publish(&a, 2).await,
        publish(&a, 3).await,
    ];
    // The retention sweeper keeps the newest two.
    let log = PgPushLog::start(pool, PushLogOptions::default())
        .await
        .unwrap();
    assert_eq!(log.purge(chrono::DateTime::UNIX_EPOCH, 2).await.unwrap(), 1);

    let late = replica(dbs.pool(options).await.unwrap(), PATIENCE, &stop).await;
    assert_eq!(late.ring_len(), 2, "warmed with what the log keeps");
    let mut resumed = late
        .subscribe("gateway-1", Some(&events[0].cursor.to_string()))
        .unwrap();
    assert_eq!(next(&mut resumed).await, events[1]);
    assert_eq!(next(&mut resumed).await, events[2]);
    // A cursor before the purged event: its events are gone, so a resync.
    let before = galaxy_core::domain::push::PushCursor::new(late.epoch(), 0);
    let mut stale = late
        .subscribe("gateway-2", Some(&before.to_string()))
        .unwrap();
    assert_eq!(
        next(&mut stale).await.kind,
        galaxy_core::domain::push::RESYNC_KIND
    );
    stop.cancel();
    dbs.cleanup().await.expect("drop test databases");
}

/// A restored database gets a new epoch (`galaxy-cli restore`): cursors of the live log,
/// which went on past the backup, are then from another log and get a resync.
#[tokio::test]
async fn a_rotated_epoch_is_the_one_the_log_starts_with() {
    let dbs = databases().await;
    let options = dbs.migrated_database().await.expect("a fresh database");
    let pool = dbs.pool(options).await.expect("pool");
    let before = PgPushLog::start(pool.clone(), PushLogOptions::default())
        .await
        .expect("push log")
        .epoch();
    let rotated = galaxy_postgres::backup::rotate_push_epoch(&pool)
        .await
        .expect("rotate");
    assert_ne!(rotated, before);
    let after = PgPushLog::start(pool.clone(), PushLogOptions::default())
        .await
        .expect("push log")
        .epoch();
    assert_eq!(after, rotated);
    pool.close().await;
    dbs.cleanup().await.expect("drop test databases");
}
