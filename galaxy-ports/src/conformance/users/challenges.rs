//! Login-challenge cases of the users suite: storage and the compare-and-set of a code
//! check (the limits are in `challenge_limits`).

use std::future::Future;

use futures::future::join_all;
use galaxy_core::domain::auth::{ChallengeStatus, CodeCheck, LoginChallenge, LoginCode};
use galaxy_core::domain::limit::RateLimit;
use galaxy_core::domain::user::Email;
use galaxy_core::domain::{ChallengeId, Timestamp};
use galaxy_core::ports::{Admission, ChallengeScope, ChallengeStore, IssueLimits, StoreError};

use super::fixtures::{Must, assert_err, at, new_uuid, secs, tag};
use crate::conformance::run_case;

/// The right code of every fixture challenge.
const CODE: &str = "123456";

pub(super) async fn run<S, F, Fut>(suite: &str, make: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: ChallengeStore,
{
    run_case(
        suite,
        "challenge insert, get, not found",
        make,
        |s| async move {
            insert_get(&s).await;
        },
    )
    .await;
    run_case(suite, "challenge compare-and-set", make, |s| async move {
        compare_and_set(&s).await;
    })
    .await;
    run_case(
        suite,
        "concurrent wrong codes count once",
        make,
        |s| async move {
            concurrent_wrong_codes(&s).await;
        },
    )
    .await;
    run_case(
        suite,
        "challenge issue times by e-mail and IP",
        make,
        |s| async move {
            issue_times(&s).await;
        },
    )
    .await;
    run_case(suite, "purge expired challenges", make, |s| async move {
        purge(&s).await;
    })
    .await;
    run_case(
        suite,
        "withdraw an unmailed challenge",
        make,
        |s| async move {
            withdraw(&s).await;
        },
    )
    .await;
}

/// A limit nothing reaches.
pub(super) fn unlimited() -> RateLimit {
    RateLimit {
        max: u32::MAX,
        window: secs(3600),
    }
}

/// Issue limits nothing reaches.
pub(super) fn no_issue_limits() -> IssueLimits {
    IssueLimits {
        per_email: unlimited(),
        per_client: Some(unlimited()),
        live_per_email: u32::MAX,
    }
}

/// Writes of fixtures that no limit may refuse: a refusal fails the case.
pub(super) trait Unlimited: ChallengeStore {
    /// Stores `challenge` with no limit in the way.
    async fn insert_unlimited(&self, challenge: &LoginChallenge) -> Result<(), StoreError> {
        match self.issue_challenge(challenge, &no_issue_limits()).await? {
            Admission::Admitted => Ok(()),
            Admission::Refused(full) => panic!("no limit applies, yet refused: {full:?}"),
        }
    }

    /// The compare-and-set of a code check with no wrong-code budget in the way.
    async fn update_unlimited(
        &self,
        challenge: &LoginChallenge,
        expected_status: ChallengeStatus,
        expected_failed_attempts: u32,
    ) -> Result<(), StoreError> {
        let (budget, now) = (unlimited(), challenge.issued_at);
        let update = self.update_challenge(
            challenge,
            expected_status,
            expected_failed_attempts,
            &budget,
            now,
        );
        match update.await? {
            Admission::Admitted => Ok(()),
            Admission::Refused(full) => panic!("no budget applies, yet refused: {full:?}"),
        }
    }
}

impl<S: ChallengeStore> Unlimited for S {}

pub(super) fn email() -> Email {
    Email::parse(&format!("login-{}@example.org", tag())).must("email")
}

/// An issued challenge for `email` from `ip`, issued at `issued` and valid 10 minutes,
/// allowing 3 wrong codes.
pub(super) fn challenge(email: &Email, ip: &str, issued: Timestamp) -> LoginChallenge {
    let id = ChallengeId::from_uuid(new_uuid());
    LoginChallenge {
        id,
        email: email.clone(),
        code_hash: LoginCode::parse(CODE)
            .must("code")
            .hash_for(id, &crate::conformance::users::fixtures::code_key()),
        client_ip: ip.to_owned(),
        status: ChallengeStatus::Issued,
        failed_attempts: 0,
        max_attempts: 3,
        issued_at: issued,
        expires_at: issued + secs(600),
    }
}

pub(super) fn wrong() -> LoginCode {
    LoginCode::parse("000000").must("code")
}

async fn insert_get<S: ChallengeStore>(store: &S) {
    let c = challenge(&email(), "192.0.2.1", at(0));
    store.insert_unlimited(&c).await.must("insert_challenge");
    assert_eq!(store.get_challenge(c.id).await.must("get_challenge"), c);
    assert_err!(
        store
            .get_challenge(ChallengeId::from_uuid(new_uuid()))
            .await,
        StoreError::NotFound { .. },
        "get_challenge of an unknown id"
    );
}

async fn compare_and_set<S: ChallengeStore>(store: &S) {
    let original = challenge(&email(), "192.0.2.1", at(0));
    store.insert_unlimited(&original).await.must("insert");

    let mut once = original.clone();
    assert_eq!(
        once.check(
            &wrong(),
            &crate::conformance::users::fixtures::code_key(),
            at(10)
        ),
        CodeCheck::Rejected { remaining: 2 }
    );
    store
        .update_unlimited(&once, ChallengeStatus::Issued, 0)
        .await
        .must("first wrong code");
    assert_eq!(store.get_challenge(original.id).await.must("get"), once);

    // A second writer that read the challenge before the first wrong code loses.
    let mut stale = original.clone();
    stale.check(
        &wrong(),
        &crate::conformance::users::fixtures::code_key(),
        at(11),
    );
    assert_err!(
        store
            .update_unlimited(&stale, ChallengeStatus::Issued, 0)
            .await,
        StoreError::Conflict { .. },
        "failed attempts moved since the read"
    );

    let mut consumed = once.clone();
    let code = LoginCode::parse(CODE).must("code");
    assert_eq!(
        consumed.check(
            &code,
            &crate::conformance::users::fixtures::code_key(),
            at(12)
        ),
        CodeCheck::Accepted
    );
    store
        .update_unlimited(&consumed, ChallengeStatus::Issued, 1)
        .await
        .must("right code");
    let mut late = once.clone();
    late.check(
        &wrong(),
        &crate::conformance::users::fixtures::code_key(),
        at(13),
    );
    assert_err!(
        store
            .update_unlimited(&late, ChallengeStatus::Issued, 1)
            .await,
        StoreError::Conflict { .. },
        "status moved since the read"
    );
    let stored = store.get_challenge(original.id).await.must("get");
    assert_eq!(
        (stored.status, stored.failed_attempts),
        (ChallengeStatus::Consumed, 1)
    );

    let unknown = challenge(&email(), "192.0.2.1", at(0));
    assert_err!(
        store
            .update_unlimited(&unknown, ChallengeStatus::Issued, 0)
            .await,
        StoreError::NotFound { .. },
        "update of an unknown challenge"
    );
}

async fn concurrent_wrong_codes<S: ChallengeStore>(store: &S) {
    let original = challenge(&email(), "192.0.2.1", at(0));
    store.insert_unlimited(&original).await.must("insert");
    let mut guessed = original.clone();
    guessed.check(
        &wrong(),
        &crate::conformance::users::fixtures::code_key(),
        at(5),
    );
    let results =
        join_all((0..10).map(|_| store.update_unlimited(&guessed, ChallengeStatus::Issued, 0)))
            .await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let lost = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Conflict { .. })))
        .count();
    assert_eq!(
        (won, lost),
        (1, 9),
        "one write wins, the rest conflict: {results:?}"
    );
    let stored = store.get_challenge(original.id).await.must("get");
    assert_eq!(stored.failed_attempts, 1);
}

async fn issue_times<S: ChallengeStore>(store: &S) {
    let (alice, bob) = (email(), email());
    let (x, y) = ("198.51.100.7", "2001:db8::1");
    // Inserted out of order: the store sorts.
    for (who, ip, secs) in [
        (&alice, x, 20),
        (&alice, x, 0),
        (&bob, x, 15),
        (&alice, y, 30),
        (&alice, x, 10),
    ] {
        store
            .insert_unlimited(&challenge(who, ip, at(secs)))
            .await
            .must("insert");
    }
    let times = |scope: ChallengeScope, since: i64| async move {
        store
            .challenge_issue_times(&scope, at(since))
            .await
            .must("challenge_issue_times")
    };
    let shouted = Email::parse(&alice.as_str().to_uppercase()).must("email");
    assert_eq!(
        times(ChallengeScope::Email(shouted), 10).await,
        vec![at(10), at(20), at(30)],
        "by e-mail, `since` inclusive, oldest first"
    );
    assert_eq!(
        times(ChallengeScope::ClientIp(x.to_owned()), 0).await,
        vec![at(0), at(10), at(15), at(20)]
    );
    assert_eq!(
        times(ChallengeScope::ClientIp(y.to_owned()), 31).await,
        Vec::<Timestamp>::new()
    );
    assert_eq!(times(ChallengeScope::Email(bob), 0).await, vec![at(15)]);
    let nobody = ChallengeScope::ClientIp("203.0.113.9".to_owned());
    assert_eq!(times(nobody, 0).await, Vec::<Timestamp>::new());
}

async fn withdraw<S: ChallengeStore>(store: &S) {
    let who = email();
    let [issued, consumed] = [0, 10].map(|secs| challenge(&who, "192.0.2.1", at(secs)));
    for c in [&issued, &consumed] {
        store.insert_unlimited(c).await.must("insert");
    }
    let mut used = consumed.clone();
    used.status = ChallengeStatus::Consumed;
    store
        .update_unlimited(&used, ChallengeStatus::Issued, 0)
        .await
        .must("consume");
    // The issued one goes, and with it its place in the limits' counts.
    assert!(store.withdraw_challenge(issued.id).await.must("withdraw"));
    assert_err!(
        store.get_challenge(issued.id).await,
        StoreError::NotFound { .. },
        "a withdrawn challenge is gone"
    );
    assert_eq!(
        store
            .challenge_issue_times(&ChallengeScope::Email(who.clone()), at(0))
            .await
            .must("times"),
        vec![at(10)]
    );
    // One already used stays; an unknown one is no error.
    assert!(!store.withdraw_challenge(consumed.id).await.must("withdraw"));
    assert_eq!(
        store.get_challenge(consumed.id).await.must("get").status,
        ChallengeStatus::Consumed
    );
    assert!(!store.withdraw_challenge(issued.id).await.must("again"));
}

async fn purge<S: ChallengeStore>(store: &S) {
    let who = email();
    // Expiring at 600, 700 and 800.
    let list: Vec<LoginChallenge> = [0, 100, 200]
        .into_iter()
        .map(|secs| challenge(&who, "192.0.2.1", at(secs)))
        .collect();
    for c in &list {
        store.insert_unlimited(c).await.must("insert");
    }
    assert_eq!(
        store.purge_challenges(at(600)).await.must("purge"),
        0,
        "strictly before"
    );
    assert_eq!(store.purge_challenges(at(700)).await.must("purge"), 1);
    assert_err!(
        store.get_challenge(list[0].id).await,
        StoreError::NotFound { .. },
        "a purged challenge is gone"
    );
    assert_eq!(store.get_challenge(list[1].id).await.must("get"), list[1]);
    assert_eq!(store.purge_challenges(at(700)).await.must("purge"), 0);
    assert_eq!(store.purge_challenges(at(10_000)).await.must("purge"), 2);
}
