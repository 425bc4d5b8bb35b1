//! Concurrency cases of the lobby suite: compare-and-set and approvals under contention.
//!
//! Each case spawns tokio tasks on a shared store and lines them up on a barrier, so
//! with a multi-thread runtime and a pooled adapter the calls really race.

use std::future::Future;
use std::sync::Arc;

use galaxy_core::domain::application::{Application, ApplicationStatus};
use galaxy_core::domain::game::{Game, GameStatus, GameTrigger, Visibility};
use galaxy_core::domain::race_name::{RaceName, RaceNameEntry, RaceNameStatus};
use galaxy_core::domain::{ApplicationId, GameId, UserId};
use galaxy_core::ports::{
    ApplicationInsert, ApplicationStore, ApprovalOutcome, GameStore, RaceNameStore, StoreError,
};

use super::{InsertFixture, OPEN, application, change, game, insert_along, new_user};
use crate::conformance::run_case;
use crate::conformance::users::fixtures::{Must, assert_err, at, new_uuid, race};

pub(super) async fn run<S, F, Fut>(suite: &str, make: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: GameStore + ApplicationStore + RaceNameStore + 'static + Send + Sync,
{
    run_case(
        suite,
        "a name's release and an application under it: each sees the other",
        make,
        |s| async move {
            release_and_application_see_each_other(Arc::new(s)).await;
        },
    )
    .await;
    run_case(
        suite,
        "a player's applications to a game are bounded, also when racing",
        make,
        |s| async move {
            applications_per_game_are_bounded(Arc::new(s)).await;
        },
    )
    .await;
    run_case(
        suite,
        "20 concurrent status changes: one wins",
        make,
        |s| async move {
            one_status_change_wins(Arc::new(s)).await;
        },
    )
    .await;
    run_case(
        suite,
        "50 concurrent approvals for 10 places",
        make,
        |s| async move {
            approvals_respect_max_players(Arc::new(s)).await;
        },
    )
    .await;
    run_case(
        suite,
        "30 concurrent applications of one user against max active games",
        make,
        |s| async move {
            applications_respect_max_active_games(Arc::new(s)).await;
        },
    )
    .await;
    run_case(
        suite,
        "30 concurrent applications racing the close of enrollment",
        make,
        |s| async move {
            applications_race_the_close(Arc::new(s)).await;
        },
    )
    .await;
    run_case(
        suite,
        "one application approved concurrently",
        make,
        |s| async move {
            one_application_approved_once(Arc::new(s)).await;
        },
    )
    .await;
    run_case(
        suite,
        "30 concurrent games of one host against a cap of 4",
        make,
        |s| async move {
            hosted_games_respect_the_cap(Arc::new(s)).await;
        },
    )
    .await;
}

async fn hosted_games_respect_the_cap<S: GameStore + 'static>(store: Arc<S>) {
    let host = new_user();
    // A game cancelled more than a day ago does not count; one its host cancelled within
    // the day does (create-and-cancel loops stop at the cap), as an open one does.
    let long_ago = game(host, -200_000, 4, Visibility::Public);
    super::insert_along(&*store, &long_ago, super::CANCELLED).await;
    let lately = game(host, -3_600, 4, Visibility::Public);
    super::insert_along(&*store, &lately, super::CANCELLED).await;
    // Cancelled as lately, but by the sweeper at its enrollment deadline: not the
    // host's doing, so it does not count.
    let expired = game(host, -3_500, 4, Visibility::Public);
    let swept = [
        (GameStatus::EnrollmentOpen, GameTrigger::Host),
        (GameStatus::Cancelled, GameTrigger::Sweeper),
    ];
    super::insert_along(&*store, &expired, &swept).await;
    let open = game(host, 1, 4, Visibility::Public);
    insert_along(&*store, &open, OPEN).await;
    let results = race(30, |i| {
        let store = Arc::clone(&store);
        let created = game(host, 10 + i as i64, 4, Visibility::Public);
        async move { store.insert_hosted_game(&created, 4).await }
    })
    .await;
    let stored = results.iter().filter(|r| matches!(r, Ok(true))).count();
    let refused = results.iter().filter(|r| matches!(r, Ok(false))).count();
    assert_eq!((stored, refused), (2, 28), "{results:?}");
    // Another host is not held back by this one's games.
    let other = game(new_user(), 50, 4, Visibility::Public);
    assert!(store.insert_hosted_game(&other, 1).await.must("other host"));
    assert!(
        !store
            .insert_hosted_game(&game(host, 60, 4, Visibility::Public), 4)
            .await
            .must("at cap")
    );
    // A day after its cancellation, the slot is free again.
    assert!(
        store
            .insert_hosted_game(&game(host, 90_000, 4, Visibility::Public), 4)
            .await
            .must("a day later")
    );
}

/// One short line per approval result, for failure messages.
fn labels(results: &[Result<ApprovalOutcome, StoreError>]) -> Vec<String> {
    results
        .iter()
        .map(|r| match r {
            Ok(ApprovalOutcome::Approved { game, .. }) => {
                format!("approved (count {})", game.approved_count)
            }
            Ok(other) => format!("{other:?}"),
            Err(e) => e.to_string(),
        })
        .collect()
}

async fn one_status_change_wins<S: GameStore + 'static>(store: Arc<S>) {
    let g = game(new_user(), 0, 8, Visibility::Public);
    store.insert_game(&g).await.must("insert_game");
    // Half open the game, half cancel it, all from draft.
    let results = race(20, |i| {
        let store = Arc::clone(&store);
        let to = if i % 2 == 0 {
            GameStatus::EnrollmentOpen
        } else {
            GameStatus::Cancelled
        };
        let step = change(to, GameTrigger::Host, 10);
        async move {
            store
                .update_game_status(g.id, GameStatus::Draft, &step)
                .await
        }
    })
    .await;
    let winners: Vec<&Game> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Conflict { .. })))
        .count();
    let labels: Vec<String> = results
        .iter()
        .map(|r| match r {
            Ok(game) => format!("ok: {}", game.status),
            Err(e) => e.to_string(),
        })
        .collect();
    assert_eq!((winners.len(), conflicts), (1, 19), "{labels:?}");
    let stored = store.get_game(g.id).await.must("get_game");
    assert_eq!(&stored, winners[0]);
    let history = store.game_transitions(g.id).await.must("history");
    assert_eq!(history.len(), 1, "one history row: {history:?}");
    assert_eq!(
        (history[0].from, history[0].to),
        (GameStatus::Draft, stored.status)
    );
}

async fn approvals_respect_max_players<S>(store: Arc<S>)
where
    S: GameStore + ApplicationStore + 'static,
{
    let g = insert_along(&*store, &game(new_user(), 0, 10, Visibility::Public), OPEN).await;
    let apps: Vec<Application> = (0..50).map(|i| application(g.id, new_user(), i)).collect();
    for a in &apps {
        store.insert_fixture(a).await.must("insert_application");
    }
    let results = race(50, |i| {
        let store = Arc::clone(&store);
        let id = apps[i].id;
        async move { store.approve_application(id, at(100)).await }
    })
    .await;
    let approved = results
        .iter()
        .filter(|r| matches!(r, Ok(ApprovalOutcome::Approved { .. })))
        .count();
    let full = results
        .iter()
        .filter(|r| matches!(r, Ok(ApprovalOutcome::GameFull)))
        .count();
    assert_eq!((approved, full), (10, 40), "{:?}", labels(&results));
    assert_eq!(
        store.get_game(g.id).await.must("get_game").approved_count,
        10
    );
    let stored = store
        .list_applications(g.id)
        .await
        .must("list_applications");
    let stored_approved = stored
        .iter()
        .filter(|a| a.status == ApplicationStatus::Approved)
        .count();
    let stored_pending = stored
        .iter()
        .filter(|a| a.status == ApplicationStatus::Pending)
        .count();
    assert_eq!((stored_approved, stored_pending), (10, 40));
}

async fn applications_race_the_close<S>(store: Arc<S>)
where
    S: GameStore + ApplicationStore + 'static,
{
    let g = insert_along(&*store, &game(new_user(), 0, 40, Visibility::Public), OPEN).await;
    let results = race(31, |i| {
        let store = Arc::clone(&store);
        async move {
            if i == 0 {
                let close = change(GameStatus::EnrollmentClosed, GameTrigger::Host, 100);
                store
                    .update_game_status(g.id, GameStatus::EnrollmentOpen, &close)
                    .await
                    .map(|_| None)
            } else {
                let a = application(g.id, new_user(), 50);
                store.insert_application(&a, u32::MAX).await.map(Some)
            }
        }
    })
    .await;
    assert!(results[0].is_ok(), "the close: {:?}", results[0]);
    let mut inserted = 0;
    for result in &results[1..] {
        match result {
            Ok(Some(ApplicationInsert::Inserted)) => inserted += 1,
            Ok(Some(ApplicationInsert::NotEnrolling(GameStatus::EnrollmentClosed))) => {}
            other => panic!("an application racing the close: {other:?}"),
        }
    }
    let stored = store.list_applications(g.id).await.must("list").len();
    assert_eq!(stored, inserted, "exactly the applications told Inserted");
    assert_eq!(
        store
            .insert_application(&application(g.id, new_user(), 200), u32::MAX)
            .await
            .must("insert after the close"),
        ApplicationInsert::NotEnrolling(GameStatus::EnrollmentClosed)
    );
}

async fn one_application_approved_once<S>(store: Arc<S>)
where
    S: GameStore + ApplicationStore + 'static,
{
    let g = insert_along(&*store, &game(new_user(), 0, 10, Visibility::Public), OPEN).await;
    let a = application(g.id, new_user(), 10);
    store.insert_fixture(&a).await.must("insert_application");
    let results = race(10, |_| {
        let store = Arc::clone(&store);
        async move { store.approve_application(a.id, at(100)).await }
    })
    .await;
    let approved = results
        .iter()
        .filter(|r| matches!(r, Ok(ApprovalOutcome::Approved { .. })))
        .count();
    let already = results
        .iter()
        .filter(|r| {
            matches!(
                r,
                Ok(ApprovalOutcome::NotPending(ApplicationStatus::Approved))
            )
        })
        .count();
    assert_eq!((approved, already), (1, 9), "{:?}", labels(&results));
    assert_eq!(
        store.get_game(g.id).await.must("get_game").approved_count,
        1
    );
}

async fn applications_respect_max_active_games<S>(store: Arc<S>)
where
    S: GameStore + ApplicationStore + 'static,
{
    let (user, max) = (new_user(), 5);
    let mut games = Vec::new();
    for created in 0..30 {
        let g = game(new_user(), created, 10, Visibility::Public);
        games.push(insert_along(&*store, &g, OPEN).await.id);
    }
    let results = race(games.len(), |i| {
        let store = Arc::clone(&store);
        let a = application(games[i], user, 100);
        async move { store.insert_application(&a, max).await }
    })
    .await;
    let inserted = results
        .iter()
        .filter(|r| matches!(r, Ok(ApplicationInsert::Inserted)))
        .count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Ok(ApplicationInsert::TooManyActiveGames { live: 5 })))
        .count();
    assert_eq!((inserted, refused), (5, 25), "{results:?}");
    let live = store.count_active_games(user).await.must("count");
    assert_eq!(live, max);
    let mine = store.list_user_applications(user).await.must("list");
    assert_eq!(mine.len(), 5, "refused applications are not stored");
}

async fn applications_per_game_are_bounded<S>(store: Arc<S>)
where
    S: GameStore + ApplicationStore + 'static,
{
    use galaxy_core::domain::application::MAX_APPLICATIONS_PER_GAME;

    let g = insert_along(&*store, &game(new_user(), 0, 10, Visibility::Public), OPEN).await;
    let user = new_user();
    // All but one withdrawn already (a loop of apply and withdraw).
    for i in 1..MAX_APPLICATIONS_PER_GAME {
        let mut withdrawn = application(g.id, user, i64::from(i));
        withdrawn.status = ApplicationStatus::Withdrawn;
        store.insert_fixture(&withdrawn).await.must("withdrawn");
    }
    let results = race(8, |i| {
        let store = Arc::clone(&store);
        let a = application(g.id, user, 100 + i as i64);
        async move { store.insert_application(&a, 5).await }
    })
    .await;
    let inserted = results
        .iter()
        .filter(|r| matches!(r, Ok(ApplicationInsert::Inserted)))
        .count();
    assert_eq!(inserted, 1, "{results:?}");
    let mine = store.list_user_applications(user).await.must("list");
    assert_eq!(
        mine.len(),
        usize::try_from(MAX_APPLICATIONS_PER_GAME).must("fits")
    );
    // At the bound: refused, whatever else would allow it (no live application now).
    for a in mine
        .iter()
        .filter(|a| a.status == ApplicationStatus::Pending)
    {
        store
            .decide_application(a.id, ApplicationStatus::Withdrawn, at(150))
            .await
            .must("withdraw");
    }
    let again = application(g.id, user, 200);
    let refused = store.insert_application(&again, 5).await.must("insert");
    assert_eq!(
        refused,
        ApplicationInsert::TooManyApplications {
            made: MAX_APPLICATIONS_PER_GAME
        }
    );
    // Another player is not held back by it.
    let other = application(g.id, new_user(), 300);
    let inserted = store.insert_application(&other, 5).await.must("other");
    assert_eq!(inserted, ApplicationInsert::Inserted);
}

/// `owner`'s registered name `name`.
async fn registered<S: RaceNameStore>(store: &S, name: &str, owner: UserId) -> RaceNameEntry {
    let claim = RaceNameEntry::pending(
        RaceName::parse(name).must("race name"),
        owner,
        GameId::from_uuid(new_uuid()),
        ApplicationId::from_uuid(new_uuid()),
        at(0),
        chrono::TimeDelta::days(1),
    );
    store.reserve_race_name(&claim, at(0)).await.must("reserve");
    let key = claim.key.clone();
    store
        .register_race_name(&key, owner, at(1))
        .await
        .must("register")
}

/// `owner`'s pending application under `name` to a new open game.
async fn under<S: GameStore>(store: &S, name: &str, owner: UserId) -> Application {
    let g = insert_along(store, &game(new_user(), 0, 40, Visibility::Public), OPEN).await;
    let id = ApplicationId::from_uuid(new_uuid());
    Application::new(
        id,
        g.id,
        owner,
        RaceName::parse(name).must("race name"),
        at(50),
    )
}

async fn release_and_application_see_each_other<S>(store: Arc<S>)
where
    S: GameStore + ApplicationStore + RaceNameStore + 'static,
{
    let release = |store: Arc<S>, entry: RaceNameEntry| async move {
        let registered = RaceNameStatus::Registered;
        store
            .release_race_name(&entry.key, entry.owner, registered, at(60))
            .await
    };
    // One after the other: a live application keeps the name; a game over does not.
    let owner = new_user();
    let entry = registered(&*store, "Quorrax", owner).await;
    let applied = under(&*store, "QUORRAX", owner).await;
    let inserted = store.insert_application(&applied, u32::MAX).await;
    assert_eq!(inserted.must("insert"), ApplicationInsert::Inserted);
    assert_err!(
        release(Arc::clone(&store), entry.clone()).await,
        StoreError::Conflict { .. },
        "a pending application uses the name"
    );
    let cancel = change(GameStatus::Cancelled, GameTrigger::Host, 70);
    store
        .update_game_status(applied.game_id, GameStatus::EnrollmentOpen, &cancel)
        .await
        .must("cancel");
    release(Arc::clone(&store), entry)
        .await
        .must("released once the game is over");
    let late = under(&*store, "Quorrax", owner).await;
    let refused = store
        .insert_application(&late, u32::MAX)
        .await
        .must("insert");
    assert_eq!(
        refused,
        ApplicationInsert::RaceNameNotHeld,
        "a released name"
    );
    let other = registered(&*store, "Vellith", new_user()).await;
    let theirs = under(&*store, other.name.as_str(), owner).await;
    let refused = store
        .insert_application(&theirs, u32::MAX)
        .await
        .must("insert");
    assert_eq!(
        refused,
        ApplicationInsert::RaceNameNotHeld,
        "another's name"
    );
    // At once, twenty times: exactly one of the two goes through.
    for round in 0..20u8 {
        let owner = new_user();
        let name = format!("Zarrak{}", char::from(b'a' + round));
        let entry = registered(&*store, &name, owner).await;
        let applied = under(&*store, &name, owner).await;
        let results = race(2, |i| {
            let (store, entry, applied) = (Arc::clone(&store), entry.clone(), applied.clone());
            async move {
                if i == 0 {
                    release(store, entry).await.is_ok()
                } else {
                    let inserted = store.insert_application(&applied, u32::MAX).await;
                    matches!(inserted, Ok(ApplicationInsert::Inserted))
                }
            }
        })
        .await;
        assert_eq!(
            results.iter().filter(|went| **went).count(),
            1,
            "round {round}: release went {}, application went {}",
            results[0],
            results[1]
        );
    }
}
