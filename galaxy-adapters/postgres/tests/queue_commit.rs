//! The queues' relaxed commits (`set_config('synchronous_commit', 'off', true)` inside the
//! statement, for its own transaction, see `queue.rs`): the setting never outlives the
//! statement, so a pooled connection that just finished runtime jobs (relaxed) finishes
//! mail (durable) with the session's durable `synchronous_commit`; and a relaxed finish
//! that fails half-way changes nothing, leaves its items leased by their token, and leaves
//! its connection usable. (That the setting takes effect was checked on a cluster with
//! fsync on, see docs/benchmarks.md: 200 relaxed single-row updates made 3 WAL syncs, 200
//! plain ones 200. The test cluster runs with fsync off, where the count cannot tell.)
//!
//! Every case runs on a pool of one connection, so each statement after a finish runs on
//! the connection the finish used.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeDelta, TimeZone, Utc};
use galaxy_core::domain::lease::{ClaimRequest, Finish};
use galaxy_core::domain::runtime::{JobKind, JobStatus, RuntimeJob};
use galaxy_core::domain::{GameId, JobId, LeaseToken, Timestamp};
use galaxy_core::ports::{JobCompletion, JobOutcome, RuntimeJobStore};
use galaxy_postgres::testing::TestDatabases;
use galaxy_postgres::{ConnectOptions, PgStore, connect_with};
use uuid::Uuid;

fn at(second: u32) -> Timestamp {
    Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, second).unwrap()
}

/// A store on a fresh database over a pool of exactly one connection whose session
/// commits synchronously, whatever the test server's own default (the test cluster of
/// `scripts/postgres.sh` runs with `synchronous_commit = off` for speed): only against a
/// durable session can a leaked relaxed setting be told apart.
async fn one_connection_store(databases: &TestDatabases) -> PgStore {
    let options = databases
        .migrated_database()
        .await
        .unwrap()
        .options([("synchronous_commit", "on")]);
    let mut connect = ConnectOptions::default();
    connect.max_connections = 1;
    connect.application_name = "queue-commit-test".to_owned();
    PgStore::new(connect_with(options, &connect).await.unwrap())
}

async fn synchronous_commit(store: &PgStore) -> String {
    sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// Queues `n` start jobs and claims them all under one token.
async fn claimed_jobs(store: &PgStore, n: u32) -> (Vec<RuntimeJob>, LeaseToken) {
    for i in 0..n {
        let id = JobId::from_uuid(Uuid::new_v4());
        let game = GameId::from_uuid(Uuid::new_v4());
        let job = RuntimeJob::new(id, game, JobKind::Start, format!("start:{i}"), at(0));
        store.enqueue_job(&job).await.unwrap();
    }
    let claim = ClaimRequest {
        token: LeaseToken::from_uuid(Uuid::new_v4()),
        now: at(1),
        lease: TimeDelta::minutes(5),
        limit: n,
    };
    let jobs = store.claim_jobs(&claim).await.unwrap();
    assert_eq!(jobs.len(), n as usize);
    (jobs, claim.token)
}

fn succeeded(jobs: &[RuntimeJob], token: LeaseToken) -> Vec<JobCompletion> {
    jobs.iter()
        .map(|j| Finish {
            id: j.id,
            token,
            outcome: JobOutcome::Succeeded,
            at: at(2),
        })
        .collect()
}

#[tokio::test]
async fn a_relaxed_finish_leaves_its_connection_with_the_servers_setting() {
    let databases = TestDatabases::from_env().await.unwrap();
    let store = one_connection_store(&databases).await;
    let server_setting = synchronous_commit(&store).await;
    assert_eq!(
        server_setting, "on",
        "the test session commits synchronously"
    );
    let (jobs, token) = claimed_jobs(&store, 3).await;
    let results = store.complete_jobs(&succeeded(&jobs, token)).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // The same (only) connection: `SET LOCAL` ended with the finish's transaction, so
    // whatever runs next on it (a mail finish, which must stay durable) commits as the
    // server says. A plain `SET` would fail this.
    assert_eq!(synchronous_commit(&store).await, server_setting);
    let open: bool = sqlx::query_scalar("SELECT now() = statement_timestamp()")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(
        !open,
        "the connection is not left inside the finish's transaction"
    );
    // Finished is finished: nothing is handed out again.
    let again = ClaimRequest {
        token: LeaseToken::from_uuid(Uuid::new_v4()),
        now: at(59),
        lease: TimeDelta::minutes(5),
        limit: 10,
    };
    assert!(store.claim_jobs(&again).await.unwrap().is_empty());
    store.pool().close().await;
    databases.cleanup().await.unwrap();
}

#[tokio::test]
async fn a_relaxed_finish_that_fails_midway_changes_nothing() {
    let databases = TestDatabases::from_env().await.unwrap();
    let store = one_connection_store(&databases).await;
    let (jobs, token) = claimed_jobs(&store, 3).await;
    // A fault inside the finish's transaction, after the first rows of the batch were
    // updated: the update of the last job raises.
    let last = jobs[2].id.as_uuid();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE FUNCTION fail_finish() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.id = '{last}' AND NEW.status = 'succeeded' THEN \
         RAISE EXCEPTION 'injected fault'; END IF; RETURN NEW; END $$; \
         CREATE TRIGGER fail_finish BEFORE UPDATE ON runtime_jobs \
         FOR EACH ROW EXECUTE FUNCTION fail_finish();"
    )))
    .execute(store.pool())
    .await
    .unwrap();
    let failed = store.complete_jobs(&succeeded(&jobs, token)).await;
    assert!(failed.is_err(), "the fault surfaces: {failed:?}");
    // Nothing of the batch committed: every job is still running under its lease.
    for job in &jobs {
        let stored = store.get_job(job.id).await.unwrap();
        assert_eq!(stored.status, JobStatus::Running, "{stored:?}");
        assert_eq!(stored.lease.map(|l| l.token), Some(token));
    }
    // The connection went back clean: usable, not in an aborted transaction, and with
    // the session's durable setting.
    assert_eq!(synchronous_commit(&store).await, "on");
    // Once the fault is gone, the same token finishes the same batch, and only then are
    // the jobs done for good.
    sqlx::raw_sql("DROP TRIGGER fail_finish ON runtime_jobs")
        .execute(store.pool())
        .await
        .unwrap();
    let results = store.complete_jobs(&succeeded(&jobs, token)).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for job in &jobs {
        let stored = store.get_job(job.id).await.unwrap();
        assert_eq!(stored.status, JobStatus::Succeeded);
    }
    store.pool().close().await;
    databases.cleanup().await.unwrap();
}
