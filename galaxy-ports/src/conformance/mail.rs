//! Conformance suite for [`MailStore`]: the outbox's idempotent enqueue, leased claims,
//! attempt outcomes (sent, retry, dead, release), the admin retry, listing and counts.
//!
//! Every case uses fresh ids and whole-second instants so it runs unchanged against
//! Postgres.

mod claims;

use std::future::Future;

use galaxy_core::domain::lease::ClaimRequest;
use galaxy_core::domain::mail::{
    MailDelivery, MailExtras, MailStatus, OutgoingMail, TextAttachment,
};
use galaxy_core::domain::user::{Email, Locale};
use galaxy_core::domain::{MailId, Timestamp};
use galaxy_core::ports::{MailNext, MailStore};

use super::run_case;
use super::runtime::support::{
    assert_not_found, at, claim, first_page, ok, token, uuid, walk_pages,
};

const SUITE: &str = "mail";

/// Runs every mail case; `make` must return a fresh, empty store each time.
pub async fn run_all<S, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: MailStore + Send + Sync + 'static,
{
    run_case(
        SUITE,
        "enqueue, get, not found, idempotency key",
        &make,
        enqueue,
    )
    .await;
    run_case(SUITE, "list by status, every page", &make, list_pages).await;
    run_case(SUITE, "count by status, queue depth", &make, counts).await;
    run_case(SUITE, "purge old sent mail only", &make, purge_sent).await;
    run_case(SUITE, "purge long dead mail only", &make, purge_dead).await;
    claims::run(&make).await;
    super::queue::mail(make).await;
}

/// A fresh pending mail queued at `now` (due at once), with its own id and key.
fn delivery(now: Timestamp) -> MailDelivery {
    let id = uuid();
    let mail = OutgoingMail {
        idempotency_key: format!("conformance:{id}"),
        to: Email::parse("player@example.com").unwrap_or_else(|e| panic!("fixture email: {e}")),
        kind: "login_code".to_owned(),
        locale: Locale::default(),
        subject: "Your Galaxy login code".to_owned(),
        text_body: "Your code is 123456.".to_owned(),
        html_body: Some("<p>Your code is <b>123456</b>.</p>".to_owned()),
        // Extras the stores keep as they are through every step (a redaction changes
        // the Reply-To alone).
        extras: MailExtras {
            references: vec!["turn-3@galaxy.example".to_owned()],
            attachment: Some(TextAttachment {
                file_name: "report-turn-3.txt".to_owned(),
                text: "The report.".to_owned(),
            }),
            ..MailExtras::default()
        },
    };
    MailDelivery::new(MailId::from_uuid(id), mail, now)
}

/// Claims and returns the ids, checking each claimed mail's state.
async fn claim_ids<S: MailStore>(store: &S, request: &ClaimRequest) -> Vec<MailId> {
    let claimed = ok(store.claim_mail(request).await, "claim mail");
    assert!(
        claimed.len() <= request.limit as usize,
        "claim over its limit"
    );
    for m in &claimed {
        assert_eq!(m.status, MailStatus::Sending, "a claimed mail is sending");
        assert_eq!(
            m.lease,
            Some(request.lease()),
            "a claimed mail carries the claim's lease"
        );
    }
    claimed.into_iter().map(|m| m.id).collect()
}

async fn enqueue<S: MailStore>(store: S) {
    let first = delivery(at(0));
    assert_eq!(ok(store.enqueue_mail(&first).await, "enqueue"), first);
    assert_eq!(ok(store.get_mail(first.id).await, "get"), first);
    let mut replay = delivery(at(5));
    replay.mail.idempotency_key = first.mail.idempotency_key.clone();
    replay.mail.subject = "another subject".to_owned();
    assert_eq!(
        ok(store.enqueue_mail(&replay).await, "replay"),
        first,
        "the first mail"
    );
    assert_not_found(
        store.get_mail(replay.id).await,
        "a replayed mail is not queued",
    );
    let listed = ok(store.list_mail(None, &first_page(10)).await, "list");
    assert_eq!(listed.items, vec![first.clone()]);
    assert!(ok(store.mail_attempts(first.id).await, "attempts").is_empty());
    assert_not_found(
        store.get_mail(MailId::from_uuid(uuid())).await,
        "unknown mail",
    );
}

async fn list_pages<S: MailStore>(store: S) {
    let store = &store;
    // Pairs share a creation instant, so the id tie-break is exercised across pages.
    let mut mails: Vec<_> = (0..9).map(|i| delivery(at(i / 2))).collect();
    for m in &mails {
        ok(store.enqueue_mail(m).await, "enqueue");
    }
    let request = claim(token(), at(2), 60, 3);
    let sending = claim_ids(store, &request).await;
    for m in &mut mails {
        *m = ok(store.get_mail(m.id).await, "get");
    }
    mails.sort_by_key(|m| (m.created_at, m.id.as_uuid()));
    let all = walk_pages(4, mails.len(), |p| async move {
        store.list_mail(None, &p).await
    })
    .await;
    assert_eq!(all, mails, "every mail once, by creation then id");
    for status in [MailStatus::Sending, MailStatus::Pending, MailStatus::Dead] {
        let expected: Vec<_> = mails
            .iter()
            .filter(|m| m.status == status)
            .cloned()
            .collect();
        let only = Some(status);
        let listed = walk_pages(2, expected.len(), |p| async move {
            store.list_mail(only, &p).await
        })
        .await;
        assert_eq!(listed, expected, "status filter {status}");
    }
    assert_eq!(sending.len(), 3);
}

async fn counts<S: MailStore>(store: S) {
    let count_of = |counts: &[(MailStatus, u64)], status| {
        let found = counts.iter().filter(|(s, _)| *s == status);
        found.map(|(_, n)| *n).sum::<u64>()
    };
    let empty = ok(store.count_mail_by_status().await, "count empty");
    for status in MailStatus::ALL {
        assert_eq!(count_of(&empty, status), 0, "{status} of an empty outbox");
    }
    let mails: Vec<_> = (0..5).map(|i| delivery(at(i))).collect();
    for m in &mails {
        ok(store.enqueue_mail(m).await, "enqueue");
    }
    let holder = token();
    let request = claim(holder, at(10), 60, 3);
    let claimed = claim_ids(&store, &request).await;
    let (sent, dead) = match claimed.as_slice() {
        [sent, dead, _] => (*sent, *dead),
        other => panic!("expected 3 claimed mails, got {other:?}"),
    };
    ok(
        store
            .finish_mail_attempt(sent, holder, None, MailNext::Sent, at(11))
            .await,
        "sent",
    );
    ok(
        store
            .finish_mail_attempt(dead, holder, None, MailNext::Dead, at(11))
            .await,
        "dead",
    );
    let counts = ok(store.count_mail_by_status().await, "count");
    let got: Vec<u64> = MailStatus::ALL
        .iter()
        .map(|s| count_of(&counts, *s))
        .collect();
    // pending, sending, sent, retrying, dead
    assert_eq!(got, vec![2, 1, 1, 0, 1]);
    // The queue's depth is the same without the sent mail; the dead one is listed.
    let queued = [
        MailStatus::Pending,
        MailStatus::Sending,
        MailStatus::Retrying,
        MailStatus::Dead,
    ];
    let depth_of = |counts: &[(MailStatus, u64)]| -> Vec<u64> {
        assert_eq!(count_of(counts, MailStatus::Sent), 0, "sent is not queue");
        queued.iter().map(|s| count_of(counts, *s)).collect()
    };
    let depth = ok(store.mail_queue_depth().await, "depth");
    assert_eq!(depth_of(&depth), vec![2, 1, 0, 1]);
    let first = first_page(10);
    let dead_page = || store.list_mail(Some(MailStatus::Dead), &first);
    let listed = ok(dead_page().await, "list dead");
    assert_eq!(
        listed.items.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![dead]
    );
    // Retried, it is queued again and no longer dead.
    ok(store.retry_dead_mail(dead, at(12)).await, "retry");
    let depth = ok(store.mail_queue_depth().await, "depth after retry");
    assert_eq!(depth_of(&depth), vec![3, 1, 0, 0]);
    assert!(
        ok(dead_page().await, "list dead").items.is_empty(),
        "retried"
    );
}

async fn purge_sent<S: MailStore>(store: S) {
    let mails: Vec<_> = (0..4).map(|i| delivery(at(i))).collect();
    for m in &mails {
        ok(store.enqueue_mail(m).await, "enqueue");
    }
    let holder = token();
    let claimed = claim_ids(&store, &claim(holder, at(10), 60, 3)).await;
    let [old, recent, dead] = claimed.as_slice() else {
        panic!("expected 3 claimed mails, got {claimed:?}");
    };
    let finish = |id, next, secs| store.finish_mail_attempt(id, holder, None, next, at(secs));
    ok(finish(*old, MailNext::Sent, 20).await, "sent");
    ok(finish(*recent, MailNext::Sent, 40).await, "sent");
    ok(finish(*dead, MailNext::Dead, 20).await, "dead");
    assert_eq!(
        ok(store.purge_sent_mail(at(20)).await, "purge"),
        0,
        "strictly before"
    );
    assert_eq!(ok(store.purge_sent_mail(at(30)).await, "purge"), 1);
    assert!(
        store.get_mail(*old).await.is_err(),
        "the old sent mail is gone"
    );
    let pending: Vec<MailId> = mails
        .iter()
        .map(|m| m.id)
        .filter(|id| !claimed.contains(id))
        .collect();
    for kept in pending.iter().chain([recent, dead]) {
        ok(store.get_mail(*kept).await, "kept");
    }
    // The purged mail's key is free: the same mail queued again is a new mail.
    for mut again in mails.into_iter().filter(|m| m.id == *old) {
        again.id = MailId::from_uuid(uuid());
        let queued = ok(store.enqueue_mail(&again).await, "enqueue again");
        assert_eq!(queued.id, again.id);
    }
}

async fn purge_dead<S: MailStore>(store: S) {
    let mails: Vec<_> = (0..4).map(|i| delivery(at(i))).collect();
    for m in &mails {
        ok(store.enqueue_mail(m).await, "enqueue");
    }
    let holder = token();
    let claimed = claim_ids(&store, &claim(holder, at(10), 60, 3)).await;
    let [old, recent, sent] = claimed.as_slice() else {
        panic!("expected 3 claimed mails, got {claimed:?}");
    };
    let finish = |id, next, secs| store.finish_mail_attempt(id, holder, None, next, at(secs));
    ok(finish(*old, MailNext::Dead, 20).await, "dead");
    ok(finish(*recent, MailNext::Dead, 40).await, "dead");
    ok(finish(*sent, MailNext::Sent, 20).await, "sent");
    assert_eq!(
        ok(store.purge_dead_mail(at(20)).await, "purge"),
        0,
        "strictly before"
    );
    assert_eq!(ok(store.purge_dead_mail(at(30)).await, "purge"), 1);
    assert!(
        store.get_mail(*old).await.is_err(),
        "the long dead mail is gone"
    );
    let pending: Vec<MailId> = mails
        .iter()
        .map(|m| m.id)
        .filter(|id| !claimed.contains(id))
        .collect();
    for kept in pending.iter().chain([recent, sent]) {
        ok(store.get_mail(*kept).await, "kept");
    }
    // A dead mail retried since is not dead any more, and stays.
    ok(store.retry_dead_mail(*recent, at(50)).await, "retry");
    assert_eq!(ok(store.purge_dead_mail(at(100)).await, "purge"), 0);
    ok(store.get_mail(*recent).await, "retried, kept");
}
