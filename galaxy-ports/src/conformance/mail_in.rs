//! Conformance suite for [`InboundMailStore`]: the intake that keeps a message delivered
//! twice once, the orders addresses (one per player and game, unique tokens, rotation,
//! report delivery), the send budgets (atomic under concurrent callers, idempotent per
//! key), and the leased queue rules (through [`super::queue::inbound`]).

use std::future::Future;
use std::sync::Arc;

use chrono::TimeDelta;
use galaxy_core::domain::limit::RateLimit;
use galaxy_core::domain::mail_in::{
    InboundMail, OrdersAddress, ReportDelivery, TokenDigest, TokenRecord, TokenSeed,
};
use galaxy_core::domain::{GameId, InboundMailId, LeaseToken, UserId};
use galaxy_core::ports::{InboundInsert, InboundMailStore, StoreError};

use super::queue::inbound_finish;
use super::run_case;
use super::runtime::support::{assert_not_found, at, claim, ok, uuid};
use super::users::fixtures::race;

const SUITE: &str = "mail in";

/// Runs every case; `make` must return a fresh, empty store each time.
pub async fn run_all<S, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: InboundMailStore + Send + Sync + 'static,
{
    run_case(SUITE, "a message stored twice is one", &make, dedupe).await;
    run_case(
        SUITE,
        "concurrent deliveries of one message",
        &make,
        dedupe_race,
    )
    .await;
    run_case(SUITE, "orders addresses", &make, addresses).await;
    run_case(
        SUITE,
        "one address under concurrent ensures",
        &make,
        address_race,
    )
    .await;
    run_case(SUITE, "send budgets", &make, sends).await;
    run_case(SUITE, "purge of handled mail", &make, purge).await;
    run_case(SUITE, "mail a due turn waits for", &make, pending).await;
    run_case(
        SUITE,
        "a handled mail keeps no message",
        &make,
        handled_forgets,
    )
    .await;
    run_case(
        SUITE,
        "send budget under concurrent callers",
        &make,
        send_race,
    )
    .await;
    super::queue::inbound(make).await;
}

/// What a store keeps of a random token (the store never derives: any seed and digest).
fn token() -> TokenRecord {
    let seed = *uuid().as_bytes();
    let mut digest = [0u8; 32];
    digest[..16].copy_from_slice(uuid().as_bytes());
    digest[16..].copy_from_slice(uuid().as_bytes());
    TokenRecord {
        seed: TokenSeed::from_bytes(seed),
        digest: TokenDigest::from_bytes(digest),
    }
}

fn message(key: &str) -> InboundMail {
    InboundMail::new(
        InboundMailId::from_uuid(uuid()),
        key.to_owned(),
        b"From: a@example.com\r\nSubject: orders\r\n\r\nmove 1 2\r\n".to_vec(),
        Some("a@example.com".to_owned()),
        vec!["orders+x@example.org".to_owned()],
        at(0),
    )
}

async fn dedupe<S: InboundMailStore>(store: S) {
    let first = message("m1");
    assert_eq!(
        ok(store.insert_inbound(&first).await, "insert"),
        InboundInsert::Stored
    );
    let again = message("m1");
    assert_eq!(
        ok(store.insert_inbound(&again).await, "insert again"),
        InboundInsert::Duplicate(first.id)
    );
    let stored = ok(store.get_inbound(first.id).await, "get");
    assert_eq!(stored, first, "stored whole, bytes and envelope included");
    assert_not_found(
        store.get_inbound(again.id).await,
        "the duplicate is not stored",
    );
    let counts = ok(store.count_inbound().await, "count");
    assert_eq!(counts, vec![(None, 1)]);
}

async fn dedupe_race<S: InboundMailStore + Send + Sync + 'static>(store: S) {
    let store = Arc::new(store);
    let results = race(8, |_| {
        let store = Arc::clone(&store);
        async move { store.insert_inbound(&message("same")).await }
    })
    .await;
    let stored = results
        .iter()
        .filter(|r| matches!(r, Ok(InboundInsert::Stored)))
        .count();
    assert_eq!(stored, 1, "exactly one delivery stored: {results:?}");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

fn address(user: UserId, game: GameId) -> OrdersAddress {
    OrdersAddress {
        user_id: user,
        game_id: game,
        token: token(),
        report_delivery: ReportDelivery::Body,
        rotated_at: at(0),
    }
}

async fn addresses<S: InboundMailStore>(store: S) {
    let (user, game) = (UserId::from_uuid(uuid()), GameId::from_uuid(uuid()));
    assert_eq!(ok(store.orders_address(user, game).await, "none yet"), None);
    let first = address(user, game);
    assert_eq!(
        ok(store.ensure_orders_address(&first).await, "ensure"),
        first
    );
    let second = address(user, game);
    assert_eq!(
        ok(store.ensure_orders_address(&second).await, "ensure again"),
        first,
        "the first address stays"
    );
    assert_eq!(
        ok(store.find_orders_address(&first.token.digest).await, "find"),
        Some(first.clone())
    );
    // Another player cannot take the token.
    let mut thief = address(UserId::from_uuid(uuid()), game);
    thief.token = first.token;
    assert!(
        matches!(
            store.ensure_orders_address(&thief).await,
            Err(StoreError::Duplicate { .. })
        ),
        "a taken token is Duplicate"
    );
    let fresh = token();
    let rotated = ok(
        store
            .rotate_orders_address(user, game, &fresh, None, at(5))
            .await,
        "rotate",
    );
    assert_eq!((rotated.token, rotated.rotated_at), (fresh, at(5)));
    assert_eq!(
        ok(store.find_orders_address(&first.token.digest).await, "old"),
        None
    );
    assert_eq!(
        ok(store.find_orders_address(&fresh.digest).await, "new").map(|a| a.user_id),
        Some(user)
    );
    // Replacing a token that is no longer the address's changes nothing: the address
    // comes back as it stands.
    let late = ok(
        store
            .rotate_orders_address(user, game, &token(), Some(first.token.digest), at(6))
            .await,
        "replace a stale token",
    );
    assert_eq!((late.token, late.rotated_at), (fresh, at(5)));
    // A taken digest is Duplicate on rotation too.
    let other = address(UserId::from_uuid(uuid()), game);
    ok(
        store.ensure_orders_address(&other).await,
        "another player's",
    );
    assert!(
        matches!(
            store
                .rotate_orders_address(user, game, &other.token, None, at(6))
                .await,
            Err(StoreError::Duplicate { .. })
        ),
        "rotating onto a taken token is Duplicate"
    );
    let attached = ok(
        store
            .set_report_delivery(user, game, ReportDelivery::Attachment)
            .await,
        "attach",
    );
    assert_eq!(attached.report_delivery, ReportDelivery::Attachment);
    assert_eq!(attached.token, fresh, "the delivery choice keeps the token");
    let nobody = UserId::from_uuid(uuid());
    assert_not_found(
        store
            .rotate_orders_address(nobody, game, &token(), None, at(6))
            .await,
        "rotate without an address",
    );
    assert_not_found(
        store
            .set_report_delivery(nobody, game, ReportDelivery::Body)
            .await,
        "delivery without an address",
    );
}

async fn address_race<S: InboundMailStore + Send + Sync + 'static>(store: S) {
    let store = Arc::new(store);
    let (user, game) = (UserId::from_uuid(uuid()), GameId::from_uuid(uuid()));
    let results = race(8, |_| {
        let store = Arc::clone(&store);
        async move { store.ensure_orders_address(&address(user, game)).await }
    })
    .await;
    let tokens: std::collections::BTreeSet<TokenDigest> = results
        .iter()
        .map(|r| match r {
            Ok(a) => a.token.digest,
            Err(e) => panic!("ensure failed: {e}"),
        })
        .collect();
    assert_eq!(tokens.len(), 1, "every caller gets the one address");

    // Replicas re-issuing the same address at once (each found its token unreadable
    // under its key): one replacement wins and every caller is shown it.
    let stale = ok(store.orders_address(user, game).await, "read")
        .map(|a| a.token.digest)
        .unwrap_or_else(|| panic!("the address is gone"));
    let candidates: Vec<TokenRecord> = (0..8).map(|_| token()).collect();
    let results = race(8, |i| {
        let store = Arc::clone(&store);
        let record = candidates[i];
        async move {
            store
                .rotate_orders_address(user, game, &record, Some(stale), at(7))
                .await
        }
    })
    .await;
    let shown: std::collections::BTreeSet<TokenDigest> = results
        .iter()
        .map(|r| match r {
            Ok(a) => a.token.digest,
            Err(e) => panic!("re-issue failed: {e}"),
        })
        .collect();
    assert_eq!(
        shown.len(),
        1,
        "every re-issuing caller is shown one address: {shown:?}"
    );
    let winner = shown.first().copied();
    assert!(
        candidates.iter().any(|c| Some(c.digest) == winner),
        "the address in force is one of the replacements"
    );
    assert_eq!(
        ok(store.orders_address(user, game).await, "read").map(|a| a.token.digest),
        winner
    );
}

fn hourly(max: u32) -> RateLimit {
    RateLimit {
        max,
        window: TimeDelta::hours(1),
    }
}

async fn sends<S: InboundMailStore>(store: S) {
    let limit = hourly(2);
    assert!(ok(
        store.take_send("reply:a", "m1", limit, at(0)).await,
        "1st"
    ));
    assert!(ok(
        store.take_send("reply:a", "m2", limit, at(10)).await,
        "2nd"
    ));
    assert!(!ok(
        store.take_send("reply:a", "m3", limit, at(20)).await,
        "3rd is over"
    ));
    assert!(
        ok(
            store.take_send("reply:a", "m1", limit, at(30)).await,
            "m1 again"
        ),
        "a key already counted is free"
    );
    assert!(ok(
        store.take_send("reply:b", "m3", limit, at(20)).await,
        "other bucket"
    ));
    // An hour after the first, one send has room again.
    assert!(ok(
        store.take_send("reply:a", "m3", limit, at(3600)).await,
        "window slid"
    ));
    assert!(!ok(
        store.take_send("reply:a", "m4", limit, at(3605)).await,
        "full again"
    ));
}

/// Finishing a mail empties its message and its envelope recipients (both hold the
/// orders token) and keeps what a second delivery and the operators need; a mail not yet
/// handled keeps all of it.
async fn handled_forgets<S: InboundMailStore>(store: S) {
    let (handled, waiting) = (message("handled"), message("waiting"));
    ok(store.insert_inbound(&handled).await, "insert");
    let token = LeaseToken::from_uuid(uuid());
    let claimed = ok(
        store.claim_inbound(&claim(token, at(10), 600, 10)).await,
        "claim",
    );
    assert_eq!(claimed.len(), 1);
    ok(store.insert_inbound(&waiting).await, "insert waiting");
    let done = ok(
        store
            .finish_inbound(&inbound_finish(handled.id, token, at(20)))
            .await,
        "finish",
    );
    let stored = ok(store.get_inbound(handled.id).await, "get");
    for mail in [&done, &stored] {
        assert!(mail.raw.is_empty(), "{SUITE}: the message went: {mail:?}");
        assert!(mail.envelope_to.is_empty(), "{SUITE}: the recipients went");
        assert_eq!(
            mail.dedupe_key, handled.dedupe_key,
            "{SUITE}: the key stays"
        );
        assert_eq!(mail.envelope_from, handled.envelope_from);
        assert!(mail.outcome.is_some() && mail.detail.is_some());
    }
    assert_eq!(
        ok(store.get_inbound(waiting.id).await, "get waiting"),
        waiting,
        "{SUITE}: a mail not handled keeps everything"
    );
    // A second delivery of the handled message is still known as one.
    assert_eq!(
        ok(store.insert_inbound(&message("handled")).await, "again"),
        InboundInsert::Duplicate(handled.id)
    );
}

async fn purge<S: InboundMailStore>(store: S) {
    let (old, recent) = (message("old"), message("recent"));
    for mail in [&old, &recent] {
        ok(store.insert_inbound(mail).await, "insert");
    }
    let token = LeaseToken::from_uuid(uuid());
    let claimed = ok(
        store.claim_inbound(&claim(token, at(10), 600, 10)).await,
        "claim",
    );
    assert_eq!(claimed.len(), 2);
    let waiting = InboundMail {
        received_at: at(20),
        ..message("waiting")
    };
    ok(store.insert_inbound(&waiting).await, "insert waiting");
    // Two claimed (being processed) and one received: three wait to be done.
    assert_eq!(ok(store.count_waiting_inbound().await, "waiting"), 3);
    let finish = |id, secs| inbound_finish(id, token, at(secs));
    ok(
        store.finish_inbound(&finish(old.id, 100)).await,
        "finish old",
    );
    assert_eq!(ok(store.count_waiting_inbound().await, "waiting"), 2);
    ok(
        store.finish_inbound(&finish(recent.id, 5000)).await,
        "finish recent",
    );
    let budget = hourly(1);
    assert!(ok(
        store.take_send("reply:a", "old", budget, at(50)).await,
        "send"
    ));
    assert!(!ok(
        store.take_send("reply:a", "other", budget, at(1001)).await,
        "the budget counts the send at 50"
    ));

    // Handled before 1000: the old one (and the send taken at 50) go; the one handled
    // later and the one not handled yet stay.
    assert_eq!(ok(store.purge_inbound(at(1000)).await, "purge"), 1);
    assert_not_found(store.get_inbound(old.id).await, "the old mail is gone");
    ok(store.get_inbound(recent.id).await, "handled later: kept");
    ok(store.get_inbound(waiting.id).await, "not handled: kept");
    assert!(ok(
        store.take_send("reply:a", "other", budget, at(1001)).await,
        "the send record went too"
    ));
    assert_eq!(ok(store.purge_inbound(at(1000)).await, "again"), 0);
    assert_eq!(ok(store.count_waiting_inbound().await, "waiting"), 1);
}

/// What a due turn waits for: mail received in its window that waits for its first try
/// or is in a worker's hands; not mail tried already whose lease lapsed, nor mail done.
async fn pending<S: InboundMailStore>(store: S) {
    let pending = |after, through, now| store.inbound_pending(at(after), at(through), at(now));
    assert!(!ok(pending(0, 100, 0).await, "empty"));
    let (early, late) = (
        InboundMail {
            received_at: at(5),
            ..message("early")
        },
        InboundMail {
            received_at: at(20),
            ..message("late")
        },
    );
    for mail in [&early, &late] {
        ok(store.insert_inbound(mail).await, "insert");
    }
    // Untried: in the window (after, through] only.
    assert!(ok(pending(0, 10, 0).await, "early, untried"));
    assert!(!ok(
        pending(5, 10, 0).await,
        "received at the lower bound: before it"
    ));
    assert!(ok(pending(10, 20, 0).await, "late, at the upper bound"));
    assert!(!ok(pending(20, 100, 0).await, "nothing after 20"));
    // Claimed (a lease to 30): in hand until 30, then a lapsed try that counts no more.
    let token = LeaseToken::from_uuid(uuid());
    let claimed = ok(
        store.claim_inbound(&claim(token, at(25), 5, 10)).await,
        "claim",
    );
    assert_eq!(claimed.len(), 2);
    assert!(ok(pending(0, 10, 29).await, "in a worker's hands"));
    assert!(!ok(
        pending(0, 10, 31).await,
        "its lease lapsed: tried, not in hand"
    ));
    // Done: never pending.
    ok(
        store
            .finish_inbound(&inbound_finish(early.id, token, at(29)))
            .await,
        "finish",
    );
    assert!(!ok(pending(0, 10, 29).await, "done"));
    assert!(ok(pending(10, 20, 29).await, "the other still in hand"));
}

async fn send_race<S: InboundMailStore + Send + Sync + 'static>(store: S) {
    let store = Arc::new(store);
    let results = race(10, |i| {
        let store = Arc::clone(&store);
        async move {
            store
                .take_send("refusal:x@example.com", &format!("m{i}"), hourly(1), at(0))
                .await
        }
    })
    .await;
    let taken = results.iter().filter(|r| matches!(r, Ok(true))).count();
    assert_eq!(
        taken, 1,
        "one refusal per hour however many race: {results:?}"
    );
}
