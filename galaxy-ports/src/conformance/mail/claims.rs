//! Mail claims and attempt outcomes.

use std::future::Future;
use std::sync::Arc;

use galaxy_core::domain::MailId;
use galaxy_core::domain::mail::{
    AttemptOutcome, MailAttempt, MailExtras, MailStatus, REDACTED_BODY, RedactedMail,
};
use galaxy_core::domain::user::Email;
use galaxy_core::domain::{LeaseToken, Timestamp};
use galaxy_core::ports::{MailNext, MailStore, StoreError};

use super::{SUITE, claim_ids, delivery};
use crate::conformance::run_case;
use crate::conformance::runtime::support::{
    assert_conflict, assert_not_found, at, claim, ok, token, uuid,
};
use crate::conformance::users::fixtures::race;

pub(super) async fn run<S, F, Fut>(make: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: MailStore + Send + Sync + 'static,
{
    run_case(
        SUITE,
        "claim oldest due first, not before due",
        make,
        oldest_due_first,
    )
    .await;
    run_case(SUITE, "sent, with the attempt recorded", make, sent).await;
    run_case(SUITE, "a secret mail is redacted once sent", make, redacted).await;
    run_case(SUITE, "retry, claimed again only when due", make, retry).await;
    run_case(SUITE, "dead, then the admin retry", make, dead_then_retry).await;
    run_case(
        SUITE,
        "concurrent retries of one dead mail",
        make,
        retry_race,
    )
    .await;
    run_case(SUITE, "release un-counts the attempt", make, release).await;
}

fn attempt(id: MailId, number: u32, outcome: AttemptOutcome, at: Timestamp) -> MailAttempt {
    let detail = match outcome {
        AttemptOutcome::Sent => "250 2.0.0 OK queued",
        AttemptOutcome::Transient => "421 4.7.0 try again later",
        AttemptOutcome::Permanent => "550 5.1.1 no such user",
    };
    MailAttempt {
        mail_id: id,
        number,
        outcome,
        detail: detail.to_owned(),
        at,
    }
}

/// The store writes what the worker says the outbox keeps of a delivered secret-carrying
/// mail (subject, both bodies, extras), nothing else of it changes, and the attempt is
/// recorded in the same write.
async fn redacted<S: MailStore>(store: S) {
    let (id, holder) = queue_and_claim(&store, at(10), 60).await;
    let before = ok(store.get_mail(id).await, "get");
    let kept = RedactedMail {
        subject: "Turn 3 of orders+removed@galaxy.example".to_owned(),
        text_body: "Mail orders to orders+removed@galaxy.example".to_owned(),
        html_body: Some("<p>orders+removed@galaxy.example</p>".to_owned()),
        reply_to: Some(
            Email::parse("orders+removed@galaxy.example")
                .unwrap_or_else(|e| panic!("{SUITE}: the redacted Reply-To is an address: {e}")),
        ),
    };
    let record = attempt(id, 1, AttemptOutcome::Sent, at(11));
    let next = MailNext::SentRedacted(Box::new(kept.clone()));
    let after = ok(
        store
            .finish_mail_attempt(id, holder, Some(record), next, at(11))
            .await,
        "sent redacted",
    );
    let stored = ok(store.get_mail(id).await, "get");
    for mail in [&after, &stored] {
        assert_eq!(mail.status, MailStatus::Sent, "{SUITE}: redacted and sent");
        assert_eq!(mail.sent_at, Some(at(11)));
        assert_eq!(mail.mail.subject, kept.subject, "{SUITE}: the subject kept");
        assert_eq!(
            mail.mail.text_body, kept.text_body,
            "{SUITE}: the text kept"
        );
        assert_eq!(
            mail.mail.html_body, kept.html_body,
            "{SUITE}: the HTML kept"
        );
        assert_eq!(
            mail.mail.extras,
            MailExtras {
                reply_to: kept.reply_to.clone(),
                ..before.mail.extras.clone()
            },
            "{SUITE}: the Reply-To kept, the other extras as they were"
        );
        assert_eq!(mail.mail.to, before.mail.to, "{SUITE}: metadata is kept");
        assert_eq!(mail.mail.kind, before.mail.kind);
    }
    assert_eq!(ok(store.mail_attempts(id).await, "attempts").len(), 1);

    // A login code's form: the HTML body goes (a stored NULL, not the old one).
    let (id, holder) = queue_and_claim(&store, at(20), 60).await;
    let login = RedactedMail {
        html_body: None,
        text_body: REDACTED_BODY.to_owned(),
        ..kept
    };
    let next = MailNext::SentRedacted(Box::new(login.clone()));
    ok(
        store
            .finish_mail_attempt(id, holder, None, next, at(21))
            .await,
        "sent redacted",
    );
    let stored = ok(store.get_mail(id).await, "get");
    assert_eq!(stored.mail.text_body, REDACTED_BODY, "{SUITE}: blanked");
    assert_eq!(stored.mail.html_body, None, "{SUITE}: HTML dropped");
}

/// Queues one fresh mail and claims it at `now` under a new token with `lease_secs`.
async fn queue_and_claim<S: MailStore>(
    store: &S,
    now: Timestamp,
    lease_secs: i64,
) -> (MailId, LeaseToken) {
    let mail = delivery(at(0));
    ok(store.enqueue_mail(&mail).await, "enqueue");
    let holder = token();
    assert_eq!(
        claim_ids(store, &claim(holder, now, lease_secs, 5)).await,
        vec![mail.id]
    );
    (mail.id, holder)
}

async fn oldest_due_first<S: MailStore>(store: S) {
    let mut mails: Vec<_> = (0..4).map(|i| delivery(at(i))).collect();
    // Due order is the reverse of creation order for the first three.
    for (m, due) in mails.iter_mut().zip([30, 20, 10, 100]) {
        m.next_attempt_at = at(due);
        ok(store.enqueue_mail(m).await, "enqueue");
    }
    let holder = token();
    assert_eq!(
        claim_ids(&store, &claim(holder, at(50), 60, 1)).await,
        vec![mails[2].id]
    );
    let next = claim_ids(&store, &claim(holder, at(50), 60, 1)).await;
    assert_eq!(next, vec![mails[1].id], "then the next oldest due");
    assert_eq!(
        claim_ids(&store, &claim(holder, at(50), 60, 5)).await,
        vec![mails[0].id]
    );
    assert!(
        claim_ids(&store, &claim(holder, at(99), 60, 5))
            .await
            .is_empty(),
        "not due"
    );
    let claimed = ok(store.get_mail(mails[0].id).await, "get");
    assert_eq!(claimed.attempts, 1, "a claim counts an attempt");
    assert_eq!(
        claim_ids(&store, &claim(token(), at(100), 60, 5)).await,
        vec![mails[3].id]
    );
}

async fn sent<S: MailStore>(store: S) {
    let (id, holder) = queue_and_claim(&store, at(10), 60).await;
    let record = attempt(id, 1, AttemptOutcome::Sent, at(11));
    let done = ok(
        store
            .finish_mail_attempt(id, holder, Some(record.clone()), MailNext::Sent, at(11))
            .await,
        "sent",
    );
    assert_eq!(
        (done.status, done.lease, done.attempts),
        (MailStatus::Sent, None, 1)
    );
    assert!(done.sent_at.is_some(), "a sent mail records when");
    assert_eq!(ok(store.get_mail(id).await, "get"), done);
    assert_eq!(ok(store.mail_attempts(id).await, "attempts"), vec![record]);
}

async fn retry<S: MailStore>(store: S) {
    let (id, holder) = queue_and_claim(&store, at(10), 60).await;
    let first = attempt(id, 1, AttemptOutcome::Transient, at(11));
    let next = MailNext::Retry(at(100));
    let waiting = ok(
        store
            .finish_mail_attempt(id, holder, Some(first.clone()), next, at(11))
            .await,
        "retry",
    );
    assert_eq!(
        (waiting.status, waiting.next_attempt_at),
        (MailStatus::Retrying, at(100))
    );
    assert_eq!((waiting.lease, waiting.attempts), (None, 1));
    assert!(
        claim_ids(&store, &claim(token(), at(99), 60, 5))
            .await
            .is_empty(),
        "not yet"
    );
    let again = token();
    assert_eq!(
        claim_ids(&store, &claim(again, at(100), 60, 5)).await,
        vec![id]
    );
    assert_eq!(ok(store.get_mail(id).await, "get").attempts, 2);
    let second = attempt(id, 2, AttemptOutcome::Sent, at(101));
    ok(
        store
            .finish_mail_attempt(id, again, Some(second.clone()), MailNext::Sent, at(101))
            .await,
        "sent",
    );
    assert_eq!(
        ok(store.mail_attempts(id).await, "attempts"),
        vec![first, second],
        "in order"
    );
}

/// Admins retrying one dead mail at once (each, or "retry all" on several replicas):
/// exactly one of them queues it again, the others hear it is no longer dead.
async fn retry_race<S: MailStore + Send + Sync + 'static>(store: S) {
    let (id, holder) = queue_and_claim(&store, at(10), 60).await;
    ok(
        store
            .finish_mail_attempt(id, holder, None, MailNext::Dead, at(11))
            .await,
        "dead",
    );
    let store = Arc::new(store);
    let results = race(8, |_| {
        let store = Arc::clone(&store);
        async move { store.retry_dead_mail(id, at(12)).await }
    })
    .await;
    let retried = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(retried, 1, "{SUITE}: one retry wins: {results:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(_) | Err(StoreError::Conflict { .. }))),
        "{SUITE}: the others conflict: {results:?}"
    );
    let mail = ok(store.get_mail(id).await, "get");
    assert_eq!((mail.status, mail.attempts), (MailStatus::Pending, 0));
}

async fn dead_then_retry<S: MailStore>(store: S) {
    let (id, holder) = queue_and_claim(&store, at(10), 60).await;
    let failure = Some(attempt(id, 1, AttemptOutcome::Permanent, at(11)));
    let dead = ok(
        store
            .finish_mail_attempt(id, holder, failure, MailNext::Dead, at(11))
            .await,
        "dead",
    );
    assert_eq!((dead.status, dead.lease), (MailStatus::Dead, None));
    assert!(
        claim_ids(&store, &claim(token(), at(1_000), 60, 5))
            .await
            .is_empty(),
        "dead stays"
    );
    let pending = delivery(at(0));
    ok(store.enqueue_mail(&pending).await, "enqueue");
    assert_conflict(
        store.retry_dead_mail(pending.id, at(12)).await,
        "retry of a pending mail",
    );
    assert_not_found(
        store
            .retry_dead_mail(MailId::from_uuid(uuid()), at(12))
            .await,
        "unknown",
    );
    let revived = ok(store.retry_dead_mail(id, at(500)).await, "admin retry");
    assert_eq!(
        (revived.status, revived.attempts),
        (MailStatus::Pending, 0),
        "fresh budget"
    );
    assert_eq!((revived.next_attempt_at, revived.lease), (at(500), None));
    assert_eq!(ok(store.get_mail(id).await, "get"), revived);
    assert_conflict(store.retry_dead_mail(id, at(501)).await, "retry twice");
    let holder = token();
    let due = claim_ids(&store, &claim(holder, at(499), 60, 5)).await;
    assert_eq!(
        due,
        vec![pending.id],
        "the revived mail waits for its instant"
    );
    assert_eq!(
        claim_ids(&store, &claim(holder, at(500), 60, 5)).await,
        vec![id]
    );
    assert_eq!(ok(store.get_mail(id).await, "get").attempts, 1);
}

async fn release<S: MailStore>(store: S) {
    let (id, holder) = queue_and_claim(&store, at(10), 60).await;
    let back = ok(
        store
            .finish_mail_attempt(id, holder, None, MailNext::Release(at(40)), at(11))
            .await,
        "release",
    );
    assert_eq!(
        (back.status, back.attempts, back.lease),
        (MailStatus::Pending, 0, None)
    );
    assert_eq!(back.next_attempt_at, at(40));
    assert!(
        ok(store.mail_attempts(id).await, "attempts").is_empty(),
        "nothing was attempted"
    );
    assert!(
        claim_ids(&store, &claim(token(), at(39), 60, 5))
            .await
            .is_empty(),
        "not yet"
    );
    assert_eq!(
        claim_ids(&store, &claim(token(), at(40), 60, 5)).await,
        vec![id]
    );
    assert_eq!(ok(store.get_mail(id).await, "get").attempts, 1);
}
