//! Conformance suite for [`RaceNameStore`], the Race Name Directory.
//!
//! Run it against any implementation:
//! `galaxy_ports::conformance::race_names::run_all(|| async { MyStore::new().await }).await`.
//! Uniqueness is decided on [`RaceNameKey`], so the cases use case and look-alike
//! variants ("Zorg", "ZORG", "Zоrg" with a Cyrillic `о`) that must collide.

use std::future::Future;

use futures::future::join_all;
use galaxy_core::domain::race_name::{RaceName, RaceNameEntry, RaceNameKey, RaceNameStatus};
use galaxy_core::domain::{ApplicationId, GameId, UserId};
use galaxy_core::ports::{RaceNameStore, StoreError};

use super::run_case;
use super::users::fixtures::{Must, assert_err, at, new_uuid, secs};

const SUITE: &str = "race names";

/// "Zorg" with a Cyrillic small letter o (U+043E).
const CYRILLIC_ZORG: &str = "Z\u{43e}rg";

/// Runs every Race Name Directory case, each on a fresh store from `make`.
pub async fn run_all<S, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: RaceNameStore,
{
    let make = &make;
    run_case(SUITE, "reserve and get", make, |s| async move {
        reserve_get(&s).await
    })
    .await;
    run_case(
        SUITE,
        "another owner's variant is a duplicate",
        make,
        |s| async move {
            duplicate_variants(&s).await;
        },
    )
    .await;
    run_case(
        SUITE,
        "the owner's pending claim is replaced",
        make,
        |s| async move {
            own_pending_replaced(&s).await;
        },
    )
    .await;
    run_case(
        SUITE,
        "the owner's registered name is kept",
        make,
        |s| async move {
            registered_kept(&s).await;
        },
    )
    .await;
    run_case(
        SUITE,
        "expired or released names are free",
        make,
        |s| async move {
            lapsed_taken_over(&s).await;
        },
    )
    .await;
    run_case(
        SUITE,
        "register",
        make,
        |s| async move { register(&s).await },
    )
    .await;
    run_case(SUITE, "release compare-and-set", make, |s| async move {
        release(&s).await;
    })
    .await;
    run_case(
        SUITE,
        "a decided application's release keeps a claim taken over",
        make,
        |s| async move {
            release_claim(&s).await;
        },
    )
    .await;
    run_case(
        SUITE,
        "the sweeper's release keeps a renewed claim",
        make,
        |s| async move {
            release_expired(&s).await;
        },
    )
    .await;
    run_case(SUITE, "list an owner's names", make, |s| async move {
        list(&s).await;
    })
    .await;
    run_case(
        SUITE,
        "expired pending names, oldest first",
        make,
        |s| async move {
            expired_pending(&s).await;
        },
    )
    .await;
    run_case(SUITE, "concurrent claims: one wins", make, |s| async move {
        concurrent_claims(&s).await;
    })
    .await;
}

fn new_user() -> UserId {
    UserId::from_uuid(new_uuid())
}

fn key(name: &str) -> RaceNameKey {
    RaceName::parse(name).must("race name").key()
}

/// A pending claim of `name` by `owner`, made at fixture second `now`, lapsing `ttl`
/// seconds later, for a fresh game and application.
fn claim(name: &str, owner: UserId, now: i64, ttl: i64) -> RaceNameEntry {
    RaceNameEntry::pending(
        RaceName::parse(name).must("race name"),
        owner,
        GameId::from_uuid(new_uuid()),
        ApplicationId::from_uuid(new_uuid()),
        at(now),
        secs(ttl),
    )
}

async fn get<S: RaceNameStore>(store: &S, name: &str) -> Option<RaceNameEntry> {
    store.get_race_name(&key(name)).await.must("get_race_name")
}

async fn reserve_get<S: RaceNameStore>(store: &S) {
    let entry = claim("Zorg", new_user(), 0, 600);
    let reserved = store.reserve_race_name(&entry, at(0)).await.must("reserve");
    assert_eq!(reserved, entry);
    assert_eq!(get(store, "Zorg").await, Some(entry.clone()));
    assert_eq!(
        get(store, "zorg").await,
        Some(entry),
        "read by a variant's key"
    );
    assert_eq!(get(store, "Zerg").await, None);
}

async fn duplicate_variants<S: RaceNameStore>(store: &S) {
    let (alice, bob) = (new_user(), new_user());
    let entry = claim("Zorg", alice, 0, 600);
    store.reserve_race_name(&entry, at(0)).await.must("reserve");
    for variant in ["Zorg", "ZORG", CYRILLIC_ZORG, "Z0rg"] {
        assert_err!(
            store
                .reserve_race_name(&claim(variant, bob, 10, 600), at(10))
                .await,
            StoreError::Duplicate { .. },
            "{variant:?} claimed by another owner"
        );
    }
    assert_eq!(
        get(store, "Zorg").await,
        Some(entry),
        "the first claim stands"
    );
    store
        .reserve_race_name(&claim("Zerg", bob, 10, 600), at(10))
        .await
        .must("a different name is free");
}

async fn own_pending_replaced<S: RaceNameStore>(store: &S) {
    let alice = new_user();
    store
        .reserve_race_name(&claim("Zorg", alice, 0, 600), at(0))
        .await
        .must("reserve");
    let again = claim(CYRILLIC_ZORG, alice, 10, 600);
    let reserved = store
        .reserve_race_name(&again, at(10))
        .await
        .must("re-reserve");
    assert_eq!(
        reserved, again,
        "the owner's new claim (new game, spelling, expiry)"
    );
    assert_eq!(get(store, "Zorg").await, Some(again));
}

async fn registered_kept<S: RaceNameStore>(store: &S) {
    let (alice, bob) = (new_user(), new_user());
    store
        .reserve_race_name(&claim("Zorg", alice, 0, 600), at(0))
        .await
        .must("reserve");
    let registered = store
        .register_race_name(&key("Zorg"), alice, at(5))
        .await
        .must("register");
    let kept = store
        .reserve_race_name(&claim("ZORG", alice, 10, 600), at(10))
        .await
        .must("reserve a registered name for another game");
    assert_eq!(kept, registered, "returned unchanged");
    assert_eq!(get(store, "Zorg").await, Some(registered));
    assert_err!(
        store
            .reserve_race_name(&claim("zorg", bob, 10_000, 600), at(10_000))
            .await,
        StoreError::Duplicate { .. },
        "a registered name blocks others for good"
    );
}

async fn lapsed_taken_over<S: RaceNameStore>(store: &S) {
    let (alice, bob, carol) = (new_user(), new_user(), new_user());
    store
        .reserve_race_name(&claim("Zorg", alice, 0, 60), at(0))
        .await
        .must("reserve");
    assert_err!(
        store
            .reserve_race_name(&claim("ZORG", bob, 59, 600), at(59))
            .await,
        StoreError::Duplicate { .. },
        "a claim one second before it lapses"
    );
    let taken = claim("ZORG", bob, 60, 600);
    let reserved = store
        .reserve_race_name(&taken, at(60))
        .await
        .must("take over a lapsed claim");
    assert_eq!(reserved, taken);
    assert_eq!(get(store, "zorg").await, Some(taken));

    store
        .release_race_name(
            &key("Zorg"),
            bob,
            RaceNameStatus::PendingRegistration,
            at(70),
        )
        .await
        .must("release");
    let after_release = claim(CYRILLIC_ZORG, carol, 80, 600);
    let reserved = store
        .reserve_race_name(&after_release, at(80))
        .await
        .must("take over a released name");
    assert_eq!(reserved, after_release);
}

async fn register<S: RaceNameStore>(store: &S) {
    let (alice, bob) = (new_user(), new_user());
    let zorg = key("Zorg");
    assert_err!(
        store.register_race_name(&zorg, alice, at(0)).await,
        StoreError::NotFound { .. },
        "register an unknown name"
    );
    let entry = claim("Zorg", alice, 0, 600);
    store.reserve_race_name(&entry, at(0)).await.must("reserve");
    assert_err!(
        store.register_race_name(&zorg, bob, at(5)).await,
        StoreError::Conflict { .. },
        "register someone else's claim"
    );
    let registered = store
        .register_race_name(&zorg, alice, at(5))
        .await
        .must("register");
    let mut expected = entry.clone();
    expected.status = RaceNameStatus::Registered;
    expected.expires_at = None;
    expected.updated_at = at(5);
    assert_eq!(registered, expected);
    let again = store
        .register_race_name(&zorg, alice, at(9))
        .await
        .must("again");
    assert_eq!(again, expected, "idempotent: unchanged");
    assert_eq!(get(store, "Zorg").await, Some(expected));

    store
        .release_race_name(&zorg, alice, RaceNameStatus::Registered, at(20))
        .await
        .must("release");
    assert_err!(
        store.register_race_name(&zorg, alice, at(30)).await,
        StoreError::Conflict { .. },
        "register a released name"
    );

    let lapsed = claim("Zerg", alice, 0, 60);
    store
        .reserve_race_name(&lapsed, at(0))
        .await
        .must("reserve");
    assert_err!(
        store.register_race_name(&key("Zerg"), alice, at(60)).await,
        StoreError::InvalidTransition(_),
        "register a claim that lapsed"
    );
    assert_eq!(get(store, "Zerg").await, Some(lapsed), "unchanged");
}

async fn release<S: RaceNameStore>(store: &S) {
    let (alice, bob) = (new_user(), new_user());
    let zorg = key("Zorg");
    let (pending, registered) = (
        RaceNameStatus::PendingRegistration,
        RaceNameStatus::Registered,
    );
    assert_err!(
        store.release_race_name(&zorg, alice, pending, at(0)).await,
        StoreError::NotFound { .. },
        "release an unknown name"
    );
    let entry = claim("Zorg", alice, 0, 600);
    store.reserve_race_name(&entry, at(0)).await.must("reserve");
    assert_err!(
        store
            .release_race_name(&zorg, alice, registered, at(5))
            .await,
        StoreError::Conflict { .. },
        "release expecting registered while pending"
    );
    assert_err!(
        store.release_race_name(&zorg, bob, pending, at(5)).await,
        StoreError::Conflict { .. },
        "release someone else's claim"
    );
    assert_err!(
        store
            .release_race_name(&zorg, alice, RaceNameStatus::Released, at(5))
            .await,
        StoreError::InvalidTransition(_),
        "released -> released is not a transition"
    );
    assert_eq!(
        get(store, "Zorg").await,
        Some(entry.clone()),
        "refusals change nothing"
    );

    let released = store
        .release_race_name(&zorg, alice, pending, at(7))
        .await
        .must("release");
    let mut expected = entry;
    expected.status = RaceNameStatus::Released;
    expected.expires_at = None;
    expected.updated_at = at(7);
    assert_eq!(released, expected);
    assert_eq!(get(store, "Zorg").await, Some(expected));
    assert_err!(
        store.release_race_name(&zorg, alice, pending, at(8)).await,
        StoreError::Conflict { .. },
        "second release"
    );

    // A registered name is released by its owner the same way.
    store
        .reserve_race_name(&claim("Zerg", bob, 10, 600), at(10))
        .await
        .must("reserve");
    let zerg = key("Zerg");
    store
        .register_race_name(&zerg, bob, at(11))
        .await
        .must("register");
    let freed = store
        .release_race_name(&zerg, bob, registered, at(12))
        .await
        .must("release registered");
    assert_eq!(
        (freed.status, freed.updated_at),
        (RaceNameStatus::Released, at(12))
    );
}

async fn release_claim<S: RaceNameStore>(store: &S) {
    let (alice, bob) = (new_user(), new_user());
    let zorg = key("Zorg");
    let first = claim("Zorg", alice, 0, 600);
    let stranger = ApplicationId::from_uuid(new_uuid());
    assert_err!(
        store.release_claim(&zorg, alice, stranger, at(1)).await,
        StoreError::NotFound { .. },
        "release an unknown name"
    );
    store.reserve_race_name(&first, at(0)).await.must("reserve");
    let first_app = first
        .application_id
        .ok_or("none")
        .must("the claim's application");
    assert_err!(
        store.release_claim(&zorg, bob, first_app, at(1)).await,
        StoreError::Conflict { .. },
        "release someone else's claim"
    );
    // Alice applies elsewhere with the name: the new application takes the claim over,
    // and the first one's release keeps it.
    let second = claim("Zorg", alice, 2, 600);
    store
        .reserve_race_name(&second, at(2))
        .await
        .must("take over");
    assert_err!(
        store.release_claim(&zorg, alice, first_app, at(3)).await,
        StoreError::Conflict { .. },
        "release a claim taken over"
    );
    assert_eq!(get(store, "Zorg").await, Some(second.clone()), "kept");
    let second_app = second
        .application_id
        .ok_or("none")
        .must("the claim's application");
    let released = store
        .release_claim(&zorg, alice, second_app, at(4))
        .await
        .must("release the current claim");
    assert_eq!(
        (released.status, released.expires_at, released.updated_at),
        (RaceNameStatus::Released, None, at(4))
    );
    assert_err!(
        store.release_claim(&zorg, alice, second_app, at(5)).await,
        StoreError::Conflict { .. },
        "second release"
    );
    // A registered name is never released this way.
    store
        .reserve_race_name(&claim("Zerg", bob, 10, 600), at(10))
        .await
        .must("reserve");
    let zerg = key("Zerg");
    let entry = get(store, "Zerg").await.ok_or("none").must("entry");
    store
        .register_race_name(&zerg, bob, at(11))
        .await
        .must("register");
    let app = entry
        .application_id
        .ok_or("none")
        .must("the claim's application");
    assert_err!(
        store.release_claim(&zerg, bob, app, at(12)).await,
        StoreError::Conflict { .. },
        "release a registered name as a claim"
    );
}

async fn release_expired<S: RaceNameStore>(store: &S) {
    let (alice, bob) = (new_user(), new_user());
    let zorg = key("Zorg");
    assert_err!(
        store.release_expired_race_name(&zorg, alice, at(20)).await,
        StoreError::NotFound { .. },
        "release an unknown name"
    );
    // Claimed at 0, lapsing at 10.
    let first = claim("Zorg", alice, 0, 10);
    store.reserve_race_name(&first, at(0)).await.must("reserve");
    assert_err!(
        store.release_expired_race_name(&zorg, alice, at(9)).await,
        StoreError::Conflict { .. },
        "release a claim not expired yet"
    );
    assert_err!(
        store.release_expired_race_name(&zorg, bob, at(20)).await,
        StoreError::Conflict { .. },
        "release someone else's claim"
    );
    // Listed as expired at 20; before the sweeper releases it, its owner applies with the
    // name again (a fresh claim, lapsing at 620): the release keeps it.
    assert_eq!(
        store
            .expired_pending_race_names(at(20), 10)
            .await
            .must("expired"),
        vec![first]
    );
    let renewed = claim("Zorg", alice, 15, 605);
    store
        .reserve_race_name(&renewed, at(15))
        .await
        .must("renew");
    assert_err!(
        store.release_expired_race_name(&zorg, alice, at(20)).await,
        StoreError::Conflict { .. },
        "release a renewed claim"
    );
    assert_eq!(get(store, "Zorg").await, Some(renewed.clone()), "kept");
    // Lapsed again: released.
    let released = store
        .release_expired_race_name(&zorg, alice, at(700))
        .await
        .must("release the lapsed claim");
    let mut expected = renewed;
    expected.status = RaceNameStatus::Released;
    expected.expires_at = None;
    expected.updated_at = at(700);
    assert_eq!(released, expected);
    assert_eq!(get(store, "Zorg").await, Some(expected));
    // A registered name never expires.
    store
        .reserve_race_name(&claim("Zerg", bob, 0, 10), at(0))
        .await
        .must("reserve");
    store
        .register_race_name(&key("Zerg"), bob, at(5))
        .await
        .must("register");
    assert_err!(
        store
            .release_expired_race_name(&key("Zerg"), bob, at(700))
            .await,
        StoreError::Conflict { .. },
        "release a registered name as expired"
    );
}

async fn list<S: RaceNameStore>(store: &S) {
    let (alice, bob) = (new_user(), new_user());
    // Names whose order is the same in every collation (one case, distinct initials).
    for name in ["Delta", "Bravo", "Charlie", "Alpha"] {
        store
            .reserve_race_name(&claim(name, alice, 0, 600), at(0))
            .await
            .must("reserve");
    }
    store
        .reserve_race_name(&claim("Echo", bob, 0, 600), at(0))
        .await
        .must("reserve");
    store
        .register_race_name(&key("Bravo"), alice, at(5))
        .await
        .must("register");
    store
        .release_race_name(
            &key("Charlie"),
            alice,
            RaceNameStatus::PendingRegistration,
            at(6),
        )
        .await
        .must("release");

    let listed = store.list_race_names(alice).await.must("list_race_names");
    let names: Vec<(&str, RaceNameStatus)> =
        listed.iter().map(|e| (e.name.as_str(), e.status)).collect();
    assert_eq!(
        names,
        vec![
            ("Alpha", RaceNameStatus::PendingRegistration),
            ("Bravo", RaceNameStatus::Registered),
            ("Delta", RaceNameStatus::PendingRegistration),
        ],
        "pending and registered, by name; released left out"
    );
    assert!(listed.iter().all(|e| e.owner == alice));
    assert_eq!(store.list_race_names(new_user()).await.must("list"), vec![]);
}

async fn expired_pending<S: RaceNameStore>(store: &S) {
    // Claims made at 0, 5 and 10 lapsing at 10, 15 and 20; one long claim; one that was
    // registered and one released before lapsing.
    let first = claim("Alpha", new_user(), 0, 10);
    let second = claim("Bravo", new_user(), 5, 10);
    let third = claim("Charlie", new_user(), 10, 10);
    let long = claim("Delta", new_user(), 0, 10_000);
    let kept = claim("Echo", new_user(), 0, 10);
    let dropped = claim("Foxtrot", new_user(), 0, 10);
    for entry in [&third, &long, &first, &kept, &second, &dropped] {
        store
            .reserve_race_name(entry, entry.created_at)
            .await
            .must("reserve");
    }
    store
        .register_race_name(&kept.key, kept.owner, at(1))
        .await
        .must("register");
    let pending = RaceNameStatus::PendingRegistration;
    store
        .release_race_name(&dropped.key, dropped.owner, pending, at(1))
        .await
        .must("release");

    let expired = |now: i64, limit: u32| async move {
        store
            .expired_pending_race_names(at(now), limit)
            .await
            .must("expired_pending_race_names")
    };
    let all = vec![first.clone(), second.clone(), third];
    assert_eq!(expired(20, 10).await, all, "expiry inclusive, oldest first");
    assert_eq!(expired(20, 2).await, vec![first.clone(), second], "limit");
    assert_eq!(expired(14, 10).await, vec![first]);
    assert_eq!(expired(9, 10).await, vec![]);
}

async fn concurrent_claims<S: RaceNameStore>(store: &S) {
    let variants = ["Zorg", "ZORG", "zorg", CYRILLIC_ZORG, "Z0rg"];
    let claims: Vec<RaceNameEntry> = (0..20)
        .map(|i| claim(variants[i % variants.len()], new_user(), 0, 600))
        .collect();
    let results = join_all(claims.iter().map(|c| store.reserve_race_name(c, at(0)))).await;
    let winners: Vec<&RaceNameEntry> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let duplicates = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Duplicate { .. })))
        .count();
    assert_eq!((winners.len(), duplicates), (1, 19), "{results:?}");
    assert_eq!(get(store, "Zorg").await.as_ref(), Some(winners[0]));
}
