//! Every conformance suite of galaxy-ports, unchanged, against Postgres: each case runs
//! on its own fresh database cloned from the migrated template.
#![allow(clippy::expect_used)]

use galaxy_ports::conformance;
use galaxy_postgres::PgStore;
use galaxy_postgres::testing::TestDatabases;

/// The databases of one test; panics with the set-up hint when DATABASE_URL is unset.
async fn databases() -> TestDatabases {
    match TestDatabases::from_env().await {
        Ok(databases) => databases,
        Err(error) => panic!("{error}"),
    }
}

/// A store on a fresh database.
async fn fresh(databases: &TestDatabases) -> PgStore {
    databases.store().await.expect("a fresh test database")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_sessions_and_challenges() {
    let dbs = databases().await;
    conformance::users::run_all(|| fresh(&dbs)).await;
    dbs.cleanup().await.expect("drop test databases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lobby_games_and_applications() {
    let dbs = databases().await;
    conformance::lobby::run_all(|| fresh(&dbs)).await;
    dbs.cleanup().await.expect("drop test databases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lobby_and_pbem_together() {
    let dbs = databases().await;
    conformance::lobby::run_with_pbem(|| async {
        let store = fresh(&dbs).await;
        (store.clone(), store)
    })
    .await;
    dbs.cleanup().await.expect("drop test databases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn race_name_directory() {
    let dbs = databases().await;
    conformance::race_names::run_all(|| fresh(&dbs)).await;
    dbs.cleanup().await.expect("drop test databases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_records_jobs_and_health() {
    let dbs = databases().await;
    conformance::runtime::run_all(|| fresh(&dbs)).await;
    dbs.cleanup().await.expect("drop test databases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_outbox() {
    let dbs = databases().await;
    conformance::mail::run_all(|| fresh(&dbs)).await;
    dbs.cleanup().await.expect("drop test databases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications() {
    let dbs = databases().await;
    conformance::notification::run_all(|| fresh(&dbs)).await;
    dbs.cleanup().await.expect("drop test databases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geo_counters() {
    let dbs = databases().await;
    conformance::geo::run_all(|| fresh(&dbs)).await;
    dbs.cleanup().await.expect("drop test databases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installation_keys() {
    let dbs = databases().await;
    conformance::keys::run_all(|| fresh(&dbs)).await;
    dbs.cleanup().await.expect("drop test databases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_archive_and_orders() {
    let dbs = databases().await;
    conformance::play::run_all(|| fresh(&dbs)).await;
    dbs.cleanup().await.expect("drop test databases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pbem_races_seats_and_messages() {
    let dbs = databases().await;
    conformance::pbem::run_all(|| fresh(&dbs)).await;
    dbs.cleanup().await.expect("drop test databases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_by_mail() {
    let dbs = databases().await;
    conformance::mail_in::run_all(|| fresh(&dbs)).await;
    dbs.cleanup().await.expect("drop test databases");
}
