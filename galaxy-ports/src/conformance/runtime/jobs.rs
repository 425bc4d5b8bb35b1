//! Durable runtime jobs: idempotent enqueue, leased claims, outcomes, listing.

use std::future::Future;

use galaxy_core::domain::lease::ClaimRequest;
use galaxy_core::domain::runtime::{JobKind, JobStatus, RuntimeJob};
use galaxy_core::domain::{GameId, JobId, Timestamp};
use galaxy_core::ports::{JobOutcome, RuntimeJobStore};

use super::records::game;
use super::support::{
    assert_conflict, assert_not_found, at, claim, first_page, ok, token, uuid, walk_pages,
};
use crate::conformance::run_case;

const SUITE: &str = "runtime jobs";

pub(super) async fn run<S, F, Fut>(make: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: RuntimeJobStore + Send + Sync + 'static,
{
    run_case(
        SUITE,
        "enqueue, get, not found, idempotency key",
        make,
        enqueue,
    )
    .await;
    run_case(
        SUITE,
        "claim oldest runnable first, then complete",
        make,
        claim_complete,
    )
    .await;
    run_case(
        SUITE,
        "requeue runs again at the given instant",
        make,
        requeue,
    )
    .await;
    run_case(
        SUITE,
        "a renewed lease holds past its first expiry",
        make,
        renewal,
    )
    .await;
    run_case(SUITE, "list by game, every page", make, list_pages).await;
}

/// A fresh queued start job of `game_id`, created (and runnable) at `now`.
fn job(game_id: GameId, now: Timestamp) -> RuntimeJob {
    let key = format!("start:{game_id}:{}", uuid().simple());
    RuntimeJob::new(JobId::from_uuid(uuid()), game_id, JobKind::Start, key, now)
}

async fn claim_ids<S: RuntimeJobStore>(store: &S, request: &ClaimRequest) -> Vec<JobId> {
    let claimed = ok(store.claim_jobs(request).await, "claim jobs");
    assert!(
        claimed.len() <= request.limit as usize,
        "claim over its limit"
    );
    for j in &claimed {
        assert_eq!(j.status, JobStatus::Running, "a claimed job is running");
        assert_eq!(
            j.lease,
            Some(request.lease()),
            "a claimed job carries the claim's lease"
        );
    }
    claimed.into_iter().map(|j| j.id).collect()
}

async fn enqueue<S: RuntimeJobStore>(store: S) {
    let first = job(game(), at(0));
    assert_eq!(ok(store.enqueue_job(&first).await, "enqueue"), first);
    assert_eq!(ok(store.get_job(first.id).await, "get"), first);
    let mut replay = job(first.game_id, at(5));
    replay.idempotency_key = first.idempotency_key.clone();
    replay.kind = JobKind::Stop;
    assert_eq!(
        ok(store.enqueue_job(&replay).await, "replay"),
        first,
        "the first job"
    );
    assert_not_found(
        store.get_job(replay.id).await,
        "a replayed job is not queued",
    );
    let listed = ok(store.list_jobs(None, &first_page(10)).await, "list");
    assert_eq!(listed.items, vec![first]);
    assert_not_found(store.get_job(JobId::from_uuid(uuid())).await, "unknown job");
}

async fn claim_complete<S: RuntimeJobStore>(store: S) {
    let g = game();
    let (oldest, second) = (job(g, at(0)), job(g, at(1)));
    let mut later = job(g, at(2));
    later.run_after = at(100);
    for j in [&later, &second, &oldest] {
        ok(store.enqueue_job(j).await, "enqueue");
    }
    let holder = token();
    assert_eq!(
        claim_ids(&store, &claim(holder, at(10), 60, 1)).await,
        vec![oldest.id]
    );
    assert_eq!(
        claim_ids(&store, &claim(holder, at(10), 60, 5)).await,
        vec![second.id]
    );
    let claimed = ok(store.get_job(oldest.id).await, "get");
    assert_eq!(claimed.attempts, 1, "a claim counts an attempt");

    let done = ok(
        store
            .complete_job(oldest.id, holder, &JobOutcome::Succeeded, at(11))
            .await,
        "ok",
    );
    assert_eq!(
        (done.status, done.lease, done.error),
        (JobStatus::Succeeded, None, None)
    );
    let failed = JobOutcome::Failed("engine image missing".to_owned());
    let failed = ok(
        store.complete_job(second.id, holder, &failed, at(12)).await,
        "fail",
    );
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("engine image missing"));
    assert_eq!(ok(store.get_job(second.id).await, "get"), failed);

    assert!(
        claim_ids(&store, &claim(token(), at(99), 60, 5))
            .await
            .is_empty(),
        "not due"
    );
    assert_eq!(
        claim_ids(&store, &claim(token(), at(100), 60, 5)).await,
        vec![later.id]
    );
}

async fn requeue<S: RuntimeJobStore>(store: S) {
    let j = job(game(), at(0));
    ok(store.enqueue_job(&j).await, "enqueue");
    let holder = token();
    assert_eq!(
        claim_ids(&store, &claim(holder, at(1), 60, 5)).await,
        vec![j.id]
    );
    let back = ok(
        store
            .complete_job(j.id, holder, &JobOutcome::Requeue(at(60)), at(2))
            .await,
        "requeue",
    );
    assert_eq!(
        (back.status, back.run_after, back.lease),
        (JobStatus::Queued, at(60), None)
    );
    assert!(
        claim_ids(&store, &claim(token(), at(59), 60, 5))
            .await
            .is_empty(),
        "not yet"
    );
    assert_eq!(
        claim_ids(&store, &claim(token(), at(60), 60, 5)).await,
        vec![j.id]
    );
}

async fn renewal<S: RuntimeJobStore>(store: S) {
    let j = job(game(), at(0));
    ok(store.enqueue_job(&j).await, "enqueue");
    let (holder, other) = (token(), token());
    assert_eq!(
        claim_ids(&store, &claim(holder, at(10), 30, 5)).await,
        vec![j.id]
    );
    let renewed = ok(
        store.renew_job_lease(j.id, holder, at(70), at(30)).await,
        "renew",
    );
    assert_eq!(
        renewed.lease.map(|l| (l.token, l.until)),
        Some((holder, at(70)))
    );
    assert_eq!(
        (renewed.status, renewed.attempts),
        (JobStatus::Running, 1),
        "a renewal is no new attempt"
    );
    assert!(
        claim_ids(&store, &claim(other, at(50), 30, 5))
            .await
            .is_empty(),
        "the renewed lease holds past the first expiry"
    );
    let stranger = store.renew_job_lease(j.id, other, at(90), at(51)).await;
    assert_conflict(stranger, "renewing a lease held by another token");
    assert_eq!(
        claim_ids(&store, &claim(other, at(70), 30, 5)).await,
        vec![j.id],
        "lapsed after the renewed expiry"
    );
    let lost = store.renew_job_lease(j.id, holder, at(120), at(71)).await;
    assert_conflict(lost, "renewing a lease another claim took");
    ok(
        store
            .complete_job(j.id, other, &JobOutcome::Succeeded, at(72))
            .await,
        "the new holder completes",
    );
    let done = store.renew_job_lease(j.id, other, at(130), at(73)).await;
    assert_conflict(done, "renewing a finished job");
    let unknown = JobId::from_uuid(uuid());
    assert_not_found(
        store.renew_job_lease(unknown, holder, at(80), at(74)).await,
        "renewing an unknown job",
    );
}

async fn list_pages<S: RuntimeJobStore>(store: S) {
    let store = &store;
    let (a, b) = (game(), game());
    // Pairs share a creation instant, so the id tie-break is exercised across pages.
    let mut jobs: Vec<RuntimeJob> = (0..9)
        .map(|i| job(if i % 3 == 0 { b } else { a }, at(i / 2)))
        .collect();
    for j in &jobs {
        ok(store.enqueue_job(j).await, "enqueue");
    }
    jobs.sort_by_key(|j| (j.created_at, j.id.as_uuid()));
    let all = walk_pages(
        2,
        jobs.len(),
        |p| async move { store.list_jobs(None, &p).await },
    )
    .await;
    assert_eq!(all, jobs, "every job once, by creation then id");
    let of_b: Vec<_> = jobs.iter().filter(|j| j.game_id == b).cloned().collect();
    let listed = walk_pages(2, of_b.len(), |p| async move {
        store.list_jobs(Some(b), &p).await
    })
    .await;
    assert_eq!(listed, of_b, "game filter");
}
