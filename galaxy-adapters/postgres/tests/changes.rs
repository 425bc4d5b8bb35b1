//! The change bus on Postgres: the conformance suite with two "processes" (two buses,
//! each on its own pool) per fresh database, and the gap a broken listening connection
//! leaves, announced as `Interrupted` then `Resumed`.
#![allow(clippy::expect_used)]

use std::time::Duration;

use galaxy_core::ports::{ChangeBus, ChangeNote};
use galaxy_ports::conformance;
use galaxy_postgres::testing::TestDatabases;
use galaxy_postgres::{ChangeBusOptions, PgChangeBus};

/// How long the bus may take to notice and repair a gap before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

async fn databases() -> TestDatabases {
    match TestDatabases::from_env().await {
        Ok(databases) => databases,
        Err(error) => panic!("{error}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_change_bus_passes_the_suite() {
    let dbs = databases().await;
    conformance::changes::run_all(|| async {
        let options = dbs.migrated_database().await.expect("a fresh database");
        let a = dbs.pool(options.clone()).await.expect("pool a");
        let b = dbs.pool(options).await.expect("pool b");
        let a = PgChangeBus::start(a, ChangeBusOptions::default()).await;
        let b = PgChangeBus::start(b, ChangeBusOptions::default()).await;
        (a.expect("bus a"), b.expect("bus b"))
    })
    .await;
    dbs.cleanup().await.expect("drop test databases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listener_is_announced_and_replaced() {
    let dbs = databases().await;
    let options = dbs.migrated_database().await.expect("a fresh database");
    let pool = dbs.pool(options).await.expect("pool");
    let bus = PgChangeBus::start(pool.clone(), ChangeBusOptions::default())
        .await
        .expect("bus");
    let mut notes = bus.subscribe();

    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&pool)
    .await
    .expect("terminate the listener");
    assert_eq!(killed, [true], "exactly one listening connection");

    for expected in [ChangeNote::Interrupted, ChangeNote::Resumed] {
        let note = tokio::time::timeout(PATIENCE, notes.next())
            .await
            .expect("the gap is announced in time");
        assert_eq!(note, Some(expected));
    }
    pool.close().await;
    dbs.cleanup().await.expect("drop test databases");
}
