//! Connections to the server: TLS as the URL asks for it (`sslmode`, `sslrootcert`), and
//! the pool's pings (`ConnectOptions::ping_idle_after`): a pooled connection whose
//! backend died while it sat idle for longer than the setting is pinged, found dead and
//! replaced before a store call gets it, so the call succeeds; one idle for less is
//! handed out without a ping (that round trip is what the setting saves), and its death
//! surfaces as one retryable error, after which the pool has replaced it.
//!
//! Each case runs on a pool of exactly one connection, named so that only its backend is
//! terminated (`pg_terminate_backend`, as a server restart or a killed backend would).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use galaxy_core::ports::{MailStore, StoreError};
use galaxy_postgres::testing::TestDatabases;
use galaxy_postgres::{ConnectOptions, PgStore, Ping, SetupError, connect, connect_with};
use sqlx::PgPool;
use uuid::Uuid;

async fn databases() -> TestDatabases {
    match TestDatabases::from_env().await {
        Ok(databases) => databases,
        Err(error) => panic!("{error}"),
    }
}

/// A store on one connection, pinging it after `ping_idle_after` idle, and the pool the
/// test kills its backend from.
async fn one_connection_store(
    databases: &TestDatabases,
    ping_idle_after: Duration,
) -> (PgStore, PgPool, String) {
    let options = databases.migrated_database().await.unwrap();
    let name = format!("pool-test-{}", Uuid::new_v4().simple());
    let mut connect = ConnectOptions::default();
    connect.max_connections = 1;
    connect.connect_attempts = 1;
    connect.ping_idle_after = ping_idle_after;
    let named = options.clone().application_name(&name);
    let store = PgStore::new(connect_with(named, &connect).await.unwrap());
    let killer = databases.pool(options).await.unwrap();
    (store, killer, name)
}

/// A store call that needs a connection.
async fn call(store: &PgStore) -> Result<(), StoreError> {
    store.count_mail_by_status().await.map(|_| ())
}

/// Waits until the store's one connection is back in the pool (the pool tests it on its
/// way back, after the call returned), then terminates its backend.
async fn kill_idle_backend(store: &PgStore, killer: &PgPool, name: &str) {
    let started = Instant::now();
    while store.pool().num_idle() < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the connection never came back to the pool"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(name)
    .fetch_all(killer)
    .await
    .unwrap();
    assert_eq!(killed, vec![true], "exactly the store's one backend");
    // Terminating is asynchronous: wait until the backend is gone.
    while sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(name)
    .fetch_one(killer)
    .await
    .unwrap()
        > 0
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "backend never went"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn close(store: PgStore, killer: PgPool, dbs: TestDatabases) {
    store.pool().close().await;
    killer.close().await;
    dbs.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_connection_that_died_while_idle_is_replaced_before_a_call_gets_it() {
    let dbs = databases().await;
    let (store, killer, name) = one_connection_store(&dbs, Duration::from_millis(50)).await;
    call(&store).await.expect("first call");
    kill_idle_backend(&store, &killer, &name).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    call(&store)
        .await
        .expect("the dead connection is pinged and replaced, the call goes through");
    close(store, killer, dbs).await;
}

#[tokio::test]
async fn a_connection_used_moments_ago_is_handed_out_without_a_ping() {
    let dbs = databases().await;
    let (store, killer, name) = one_connection_store(&dbs, Duration::from_secs(3600)).await;
    call(&store).await.expect("first call");
    kill_idle_backend(&store, &killer, &name).await;

    // Not pinged: the call meets the dead backend, and says the failure is worth a retry.
    let lost = call(&store)
        .await
        .expect_err("an unpinged dead connection fails the call");
    assert!(lost.is_retryable(), "{lost:?}");
    // The broken connection was closed: the next call gets a new one.
    call(&store)
        .await
        .expect("the pool replaced the connection");
    close(store, killer, dbs).await;
}

#[tokio::test]
async fn a_ping_tells_a_busy_pool_from_a_database_that_does_not_answer() {
    let dbs = databases().await;
    let options = dbs.migrated_database().await.unwrap();
    let mut connect = ConnectOptions::default();
    connect.max_connections = 1;
    connect.connect_attempts = 1;
    connect.acquire_timeout = Duration::from_millis(200);
    let store = PgStore::new(connect_with(options.clone(), &connect).await.unwrap());
    assert_eq!(store.ping().await.unwrap(), Ping::Answered);

    // Its one connection held past the acquire timeout: busy, which is no failure.
    let held = store.pool().acquire().await.unwrap();
    assert_eq!(store.ping().await.unwrap(), Ping::Busy);
    drop(held);
    assert_eq!(store.ping().await.unwrap(), Ping::Answered);

    // A database nobody can reach: the ping fails, with a retryable error.
    let gone = options.port(1);
    let unreachable = PgStore::new(
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_millis(500))
            .connect_lazy_with(gone),
    );
    let error = unreachable.ping().await.unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    store.pool().close().await;
    dbs.cleanup().await.unwrap();
}

/// `DATABASE_URL` with `query` in place of its own query string.
fn database_url_with(query: &str) -> String {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL (run scripts/test.sh)");
    let base = url.split_once('?').map_or(url.as_str(), |(base, _)| base);
    format!("{base}?{query}")
}

/// Whether the connection of `pool` speaks TLS, as the server sees it.
async fn speaks_tls(pool: &PgPool) -> bool {
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A managed Postgres that requires TLS (`sslmode=require`, or `verify-full` with the
/// provider's CA in `sslrootcert`) is reached over TLS; a server whose certificate the
/// URL's CA does not vouch for is refused at once, as a set-up error, not retried as if
/// the server were down. Needs the test server of scripts/test.sh, which serves TLS with
/// a CA of its own (`GALAXY_TEST_PG_CA`).
#[tokio::test]
async fn connections_speak_tls_as_the_url_asks_and_refuse_an_untrusted_server() {
    let Ok(ca) = std::env::var("GALAXY_TEST_PG_CA") else {
        eprintln!(
            "\n!!!!!!!! SKIPPED tls: GALAXY_TEST_PG_CA is not set (scripts/test.sh sets it for \
             the Postgres it starts itself, with openssl installed) !!!!!!!!\n"
        );
        return;
    };
    let mut options = ConnectOptions::default();
    options.max_connections = 1;
    options.connect_attempts = 3;
    for query in [
        format!("sslmode=verify-full&sslrootcert={ca}"),
        "sslmode=require".to_owned(),
    ] {
        let pool = connect(&database_url_with(&query), &options)
            .await
            .unwrap_or_else(|error| panic!("{query}: {error}"));
        assert!(speaks_tls(&pool).await, "{query}");
        pool.close().await;
    }
    let pool = connect(&database_url_with("sslmode=disable"), &options)
        .await
        .unwrap();
    assert!(!speaks_tls(&pool).await, "sslmode=disable");
    pool.close().await;
    // The public roots do not hold the test CA: refused on the first attempt.
    let refused = connect(&database_url_with("sslmode=verify-full"), &options).await;
    assert!(
        matches!(refused, Err(SetupError::Refused { .. })),
        "{:?}",
        refused.map(drop)
    );
}
