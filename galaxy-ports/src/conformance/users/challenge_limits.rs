//! Login-limit cases of the users suite: which challenges each limit counts, when a full
//! bucket frees, and that under N concurrent callers exactly the limit gets through.
//!
//! The concurrent cases spawn tokio tasks on a shared store and release them at once,
//! so with a multi-thread runtime and a pooled adapter the calls really race.

use std::future::Future;
use std::sync::Arc;

use galaxy_core::domain::Timestamp;
use galaxy_core::domain::auth::{ChallengeStatus, LoginChallenge, LoginCode, RateLimitScope};
use galaxy_core::domain::limit::RateLimit;
use galaxy_core::domain::user::Email;
use galaxy_core::ports::{
    Admission, ChallengeScope, ChallengeStore, IssueLimits, LimitReached, StoreError,
};

use super::challenges::{Unlimited, challenge, email, unlimited, wrong};
use super::fixtures::{Must, assert_err, at, race, secs};
use crate::conformance::run_case;

pub(super) async fn run<S, F, Fut>(suite: &str, make: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: ChallengeStore + 'static,
{
    run_case(suite, "codes per e-mail per window", make, |s| async move {
        per_email_window(&s).await;
    })
    .await;
    run_case(suite, "live codes per e-mail", make, |s| async move {
        live_per_email(&s).await;
    })
    .await;
    run_case(suite, "codes per client per window", make, |s| async move {
        per_client_window(&s).await;
    })
    .await;
    run_case(
        suite,
        "several limits full: the one freeing last",
        make,
        |s| async move {
            latest_limit_reported(&s).await;
        },
    )
    .await;
    run_case(
        suite,
        "wrong codes per e-mail over all its codes",
        make,
        |s| async move {
            failed_codes_budget(&s).await;
        },
    )
    .await;
    run_case(
        suite,
        "200 concurrent codes for one address from one client",
        make,
        |s| async move {
            concurrent_one_address_one_client(Arc::new(s)).await;
        },
    )
    .await;
    run_case(
        suite,
        "40 concurrent codes for one address from 40 clients",
        make,
        |s| async move {
            concurrent_one_address_many_clients(Arc::new(s)).await;
        },
    )
    .await;
    run_case(
        suite,
        "60 concurrent codes for 60 addresses from one client",
        make,
        |s| async move {
            concurrent_one_client_many_addresses(Arc::new(s)).await;
        },
    )
    .await;
    run_case(
        suite,
        "50 concurrent codes against the live-code cap",
        make,
        |s| async move {
            concurrent_live_codes(Arc::new(s)).await;
        },
    )
    .await;
    run_case(
        suite,
        "wrong codes on 30 challenges at once against the budget",
        make,
        |s| async move {
            concurrent_wrong_codes_over_many_challenges(Arc::new(s)).await;
        },
    )
    .await;
}

/// `max` per `window_secs` seconds.
fn limit(max: u32, window_secs: i64) -> RateLimit {
    RateLimit {
        max,
        window: secs(window_secs),
    }
}

/// Only the given limits; the others let everything through.
fn limits(per_email: RateLimit, live: u32, per_client: Option<RateLimit>) -> IssueLimits {
    IssueLimits {
        per_email,
        per_client,
        live_per_email: live,
    }
}

/// Issues a fresh challenge for `who` from `ip` at fixture second `secs`.
async fn issue<S: ChallengeStore>(
    store: &S,
    who: &Email,
    ip: &str,
    secs: i64,
    limits: &IssueLimits,
) -> Admission {
    store
        .issue_challenge(&challenge(who, ip, at(secs)), limits)
        .await
        .must("issue_challenge")
}

fn refused(scope: RateLimitScope, frees_at: Timestamp) -> Admission {
    Admission::Refused(LimitReached { scope, frees_at })
}

/// Challenges stored for `scope`, of any age.
async fn stored<S: ChallengeStore>(store: &S, scope: ChallengeScope) -> usize {
    let times = store.challenge_issue_times(&scope, at(-100_000)).await;
    times.must("challenge_issue_times").len()
}

async fn per_email_window<S: ChallengeStore>(store: &S) {
    let (alice, bob) = (email(), email());
    let three = limits(limit(3, 100), u32::MAX, None);
    for secs in [0, 10, 20] {
        assert_eq!(
            issue(store, &alice, "192.0.2.1", secs, &three).await,
            Admission::Admitted
        );
    }
    assert_eq!(
        issue(store, &alice, "192.0.2.1", 30, &three).await,
        refused(RateLimitScope::Email, at(100)),
        "the fourth within 100 s waits until the first leaves the window"
    );
    assert_eq!(stored(store, ChallengeScope::Email(alice.clone())).await, 3);
    let shouted = Email::parse(&alice.as_str().to_uppercase()).must("email");
    assert_eq!(
        issue(store, &shouted, "192.0.2.1", 99, &three).await,
        refused(RateLimitScope::Email, at(100)),
        "the address in other case is the same bucket"
    );
    assert_eq!(
        issue(store, &bob, "192.0.2.1", 30, &three).await,
        Admission::Admitted,
        "another address has its own bucket"
    );
    assert_eq!(
        issue(store, &alice, "192.0.2.1", 100, &three).await,
        Admission::Admitted,
        "a challenge counts for exactly the window"
    );
    assert_eq!(
        issue(store, &alice, "192.0.2.1", 105, &three).await,
        refused(RateLimitScope::Email, at(110))
    );
    let taken = challenge(&alice, "192.0.2.1", at(1000));
    store.insert_unlimited(&taken).await.must("insert");
    assert_err!(
        store.issue_challenge(&taken, &three).await,
        StoreError::Duplicate { .. },
        "issue with a taken id"
    );
}

async fn live_per_email<S: ChallengeStore>(store: &S) {
    let alice = email();
    // Codes live 600 s; no window limit.
    let two_live = limits(unlimited(), 2, None);
    let first = challenge(&alice, "192.0.2.1", at(0));
    let admission = store.issue_challenge(&first, &two_live).await;
    assert_eq!(admission.must("issue first"), Admission::Admitted);
    assert_eq!(
        issue(store, &alice, "192.0.2.1", 10, &two_live).await,
        Admission::Admitted
    );
    assert_eq!(
        issue(store, &alice, "192.0.2.1", 20, &two_live).await,
        refused(RateLimitScope::LiveCodes, at(600)),
        "full until the first code expires"
    );
    // Using a code frees its place at once.
    let mut used = first.clone();
    used.check(
        &LoginCode::parse("123456").must("code"),
        &crate::conformance::users::fixtures::code_key(),
        at(25),
    );
    assert_eq!(used.status, ChallengeStatus::Consumed);
    store
        .update_unlimited(&used, ChallengeStatus::Issued, 0)
        .await
        .must("consume the first code");
    assert_eq!(
        issue(store, &alice, "192.0.2.1", 30, &two_live).await,
        Admission::Admitted
    );
    assert_eq!(
        issue(store, &alice, "192.0.2.1", 40, &two_live).await,
        refused(RateLimitScope::LiveCodes, at(610))
    );
    assert_eq!(
        issue(store, &alice, "192.0.2.1", 610, &two_live).await,
        Admission::Admitted,
        "a code that expired no longer counts"
    );
}

async fn per_client_window<S: ChallengeStore>(store: &S) {
    let two = limits(unlimited(), u32::MAX, Some(limit(2, 100)));
    for secs in [0, 10] {
        assert_eq!(
            issue(store, &email(), "198.51.100.7", secs, &two).await,
            Admission::Admitted
        );
    }
    assert_eq!(
        issue(store, &email(), "198.51.100.7", 20, &two).await,
        refused(RateLimitScope::ClientIp, at(100))
    );
    assert_eq!(
        stored(store, ChallengeScope::ClientIp("198.51.100.7".to_owned())).await,
        2
    );
    assert_eq!(
        issue(store, &email(), "198.51.100.8", 20, &two).await,
        Admission::Admitted,
        "another client has its own bucket"
    );
    // Unknown clients are not one bucket: the caller passes no client limit.
    let unknown = limits(unlimited(), u32::MAX, None);
    for secs in [0, 1, 2, 3] {
        assert_eq!(
            issue(store, &email(), "unknown", secs, &unknown).await,
            Admission::Admitted
        );
    }
}

async fn latest_limit_reported<S: ChallengeStore>(store: &S) {
    let alice = email();
    // Both the window (2 per 1000 s) and the live cap (2, codes live 600 s) are full
    // after two codes; the window frees last.
    let both = limits(limit(2, 1000), 2, Some(limit(10, 100)));
    for secs in [0, 10] {
        assert_eq!(
            issue(store, &alice, "192.0.2.1", secs, &both).await,
            Admission::Admitted
        );
    }
    assert_eq!(
        issue(store, &alice, "192.0.2.1", 20, &both).await,
        refused(RateLimitScope::Email, at(1000))
    );
    let live_last = limits(limit(2, 300), 2, None);
    assert_eq!(
        issue(store, &alice, "192.0.2.1", 20, &live_last).await,
        refused(RateLimitScope::LiveCodes, at(600))
    );
}

/// A wrong-code update of `c` at fixture second `secs`, against `budget`.
async fn guess_wrong<S: ChallengeStore>(
    store: &S,
    c: &LoginChallenge,
    secs: i64,
    budget: &RateLimit,
) -> (Admission, LoginChallenge) {
    let mut next = c.clone();
    next.check(
        &wrong(),
        &crate::conformance::users::fixtures::code_key(),
        at(secs),
    );
    let admission = store
        .update_challenge(&next, c.status, c.failed_attempts, budget, at(secs))
        .await
        .must("update_challenge");
    (admission, next)
}

async fn failed_codes_budget<S: ChallengeStore>(store: &S) {
    let (alice, bob) = (email(), email());
    let budget = limit(4, 300);
    let (c1, c2) = (
        challenge(&alice, "192.0.2.1", at(0)),
        challenge(&alice, "192.0.2.2", at(10)),
    );
    for c in [&c1, &c2] {
        store.insert_unlimited(c).await.must("insert");
    }
    // Two wrong codes on each challenge use up the address's four.
    let mut c1 = c1;
    let mut c2 = c2;
    for secs in [20, 21] {
        let (admission, next) = guess_wrong(store, &c1, secs, &budget).await;
        assert_eq!(admission, Admission::Admitted);
        c1 = next;
    }
    for secs in [22, 23] {
        let (admission, next) = guess_wrong(store, &c2, secs, &budget).await;
        assert_eq!(admission, Admission::Admitted);
        c2 = next;
    }
    let (admission, _) = guess_wrong(store, &c2, 24, &budget).await;
    assert_eq!(
        admission,
        refused(RateLimitScope::FailedCodes, at(300)),
        "the budget is spent until the first challenge leaves the window"
    );
    // The right code is refused too, so the refusal tells nothing about the code.
    let mut right = c2.clone();
    right.check(
        &LoginCode::parse("123456").must("code"),
        &crate::conformance::users::fixtures::code_key(),
        at(25),
    );
    let update = store
        .update_challenge(&right, ChallengeStatus::Issued, 2, &budget, at(25))
        .await;
    assert_eq!(
        update.must("update_challenge"),
        refused(RateLimitScope::FailedCodes, at(300))
    );
    let stored = store.get_challenge(c2.id).await.must("get");
    assert_eq!(
        (stored.status, stored.failed_attempts),
        (ChallengeStatus::Issued, 2)
    );

    let other = challenge(&bob, "192.0.2.1", at(0));
    store.insert_unlimited(&other).await.must("insert");
    let (admission, _) = guess_wrong(store, &other, 26, &budget).await;
    assert_eq!(
        admission,
        Admission::Admitted,
        "another address has its own budget"
    );

    // At 300 the first challenge's two wrong codes no longer count.
    let update = store
        .update_challenge(&right, ChallengeStatus::Issued, 2, &budget, at(300))
        .await;
    assert_eq!(update.must("update_challenge"), Admission::Admitted);
    // Within the budget, a stale write still loses its compare-and-set.
    let mut late = c1.clone();
    late.failed_attempts = 0;
    late.check(
        &wrong(),
        &crate::conformance::users::fixtures::code_key(),
        at(301),
    );
    assert_err!(
        store
            .update_challenge(&late, ChallengeStatus::Issued, 0, &budget, at(301))
            .await,
        StoreError::Conflict { .. },
        "a stale expected count"
    );
}

/// How many calls were admitted; panics unless every other one was refused by `scope`.
fn admitted(results: &[Result<Admission, StoreError>], scope: RateLimitScope) -> usize {
    let mut count = 0;
    for result in results {
        match result {
            Ok(Admission::Admitted) => count += 1,
            Ok(Admission::Refused(full)) if full.scope == scope => {}
            other => panic!("expected admitted or refused by {scope:?}, got {other:?}"),
        }
    }
    count
}

async fn concurrent_one_address_one_client<S: ChallengeStore + 'static>(store: Arc<S>) {
    let alice = email();
    let results = race(200, |_| {
        let (store, c) = (Arc::clone(&store), challenge(&alice, "192.0.2.9", at(0)));
        let limits = limits(limit(5, 900), u32::MAX, Some(limit(20, 900)));
        async move { store.issue_challenge(&c, &limits).await }
    })
    .await;
    assert_eq!(admitted(&results, RateLimitScope::Email), 5);
    assert_eq!(stored(&*store, ChallengeScope::Email(alice)).await, 5);
}

async fn concurrent_one_address_many_clients<S: ChallengeStore + 'static>(store: Arc<S>) {
    let alice = email();
    let results = race(40, |i| {
        let store = Arc::clone(&store);
        let c = challenge(&alice, &format!("198.51.100.{i}"), at(0));
        let limits = limits(limit(5, 900), u32::MAX, Some(limit(20, 900)));
        async move { store.issue_challenge(&c, &limits).await }
    })
    .await;
    assert_eq!(admitted(&results, RateLimitScope::Email), 5);
    assert_eq!(stored(&*store, ChallengeScope::Email(alice)).await, 5);
}

async fn concurrent_one_client_many_addresses<S: ChallengeStore + 'static>(store: Arc<S>) {
    let results = race(60, |_| {
        let (store, c) = (
            Arc::clone(&store),
            challenge(&email(), "203.0.113.5", at(0)),
        );
        let limits = limits(limit(5, 900), u32::MAX, Some(limit(20, 900)));
        async move { store.issue_challenge(&c, &limits).await }
    })
    .await;
    assert_eq!(admitted(&results, RateLimitScope::ClientIp), 20);
    let client = ChallengeScope::ClientIp("203.0.113.5".to_owned());
    assert_eq!(stored(&*store, client).await, 20);
}

async fn concurrent_live_codes<S: ChallengeStore + 'static>(store: Arc<S>) {
    let alice = email();
    let results = race(50, |i| {
        let store = Arc::clone(&store);
        let c = challenge(&alice, &format!("192.0.2.{i}"), at(0));
        let limits = limits(unlimited(), 3, Some(unlimited()));
        async move { store.issue_challenge(&c, &limits).await }
    })
    .await;
    assert_eq!(admitted(&results, RateLimitScope::LiveCodes), 3);
    assert_eq!(stored(&*store, ChallengeScope::Email(alice)).await, 3);
}

async fn concurrent_wrong_codes_over_many_challenges<S: ChallengeStore + 'static>(store: Arc<S>) {
    let alice = email();
    let list: Vec<LoginChallenge> = (0..30)
        .map(|i| challenge(&alice, &format!("192.0.2.{i}"), at(i)))
        .collect();
    for c in &list {
        store.insert_unlimited(c).await.must("insert");
    }
    let budget = limit(7, 900);
    // One wrong code on each challenge, all at once: only the budget stops them.
    let results = race(list.len(), |i| {
        let store = Arc::clone(&store);
        let mut guessed = list[i].clone();
        guessed.check(
            &wrong(),
            &crate::conformance::users::fixtures::code_key(),
            at(100),
        );
        async move {
            store
                .update_challenge(&guessed, ChallengeStatus::Issued, 0, &budget, at(100))
                .await
        }
    })
    .await;
    assert_eq!(admitted(&results, RateLimitScope::FailedCodes), 7);
    let mut failed = 0;
    for c in &list {
        failed += store.get_challenge(c.id).await.must("get").failed_attempts;
    }
    assert_eq!(failed, 7, "exactly the budget of wrong codes was recorded");
}
