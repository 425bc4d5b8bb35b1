//! Application cases of the lobby suite: storage, liveness, decisions and approvals.

use std::future::Future;

use galaxy_core::domain::application::{Application, ApplicationStatus};
use galaxy_core::domain::game::{GameStatus, Visibility};
use galaxy_core::domain::{ApplicationId, GameId};
use galaxy_core::ports::{
    ApplicationInsert, ApplicationStore, ApprovalOutcome, GameStore, StoreError,
};

use super::{
    CANCELLED, CLOSED, FINISHED, InsertFixture, OPEN, advance, application, game, insert_along,
    new_user,
};
use crate::conformance::run_case;
use crate::conformance::users::fixtures::{Must, assert_err, at, new_uuid};

pub(super) async fn run<S, F, Fut>(suite: &str, make: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: GameStore + ApplicationStore,
{
    run_case(
        suite,
        "application insert, get, list, find live",
        make,
        |s| async move {
            insert_get_list(&s).await;
        },
    )
    .await;
    run_case(
        suite,
        "one live application per user and game",
        make,
        |s| async move {
            duplicate_live(&s).await;
        },
    )
    .await;
    run_case(
        suite,
        "decide application compare-and-set",
        make,
        |s| async move {
            decide(&s).await;
        },
    )
    .await;
    run_case(suite, "approval outcomes", make, |s| async move {
        approve_outcomes(&s).await;
    })
    .await;
    run_case(
        suite,
        "applications owe the notification of each announced status",
        make,
        |s| async move {
            unannounced(&s).await;
        },
    )
    .await;
    run_case(
        suite,
        "active games: live applications in unfinished games; the limit",
        make,
        |s| async move {
            count_active(&s).await;
        },
    )
    .await;
}

/// An open public game for up to `max` players, created at fixture second `created`.
async fn open_game<S: GameStore>(store: &S, created: i64, max: u32) -> GameId {
    let g = game(new_user(), created, max, Visibility::Public);
    insert_along(store, &g, OPEN).await.id
}

async fn insert_get_list<S: GameStore + ApplicationStore>(store: &S) {
    let g = open_game(store, 0, 8).await;
    let (u1, u2, u3) = (new_user(), new_user(), new_user());
    let a1 = application(g, u1, 30);
    let a2 = application(g, u2, 10);
    let a3 = application(g, u3, 20);
    for a in [&a1, &a2, &a3] {
        store.insert_fixture(a).await.must("insert_application");
    }
    assert_eq!(store.get_application(a1.id).await.must("get"), a1);
    let listed = store.list_applications(g).await.must("list_applications");
    assert_eq!(listed, vec![a2.clone(), a3, a1.clone()], "oldest first");
    assert_eq!(
        store.find_live_application(g, u1).await.must("find"),
        Some(a1.clone())
    );
    assert_eq!(
        store
            .find_live_application(g, new_user())
            .await
            .must("find"),
        None
    );
    let other = open_game(store, 1, 8).await;
    assert_eq!(
        store.find_live_application(other, u2).await.must("find"),
        None
    );
    assert_eq!(store.list_applications(other).await.must("list"), vec![]);
    let a4 = application(other, u1, 5);
    store.insert_fixture(&a4).await.must("insert_application");
    assert_eq!(
        store.list_user_applications(u1).await.must("list_user"),
        vec![a4, a1.clone()],
        "every game of the user, oldest first"
    );
    assert_eq!(
        store
            .list_user_applications(new_user())
            .await
            .must("list_user"),
        vec![]
    );
    assert_err!(
        store
            .get_application(ApplicationId::from_uuid(new_uuid()))
            .await,
        StoreError::NotFound { .. },
        "get_application of an unknown id"
    );
}

async fn duplicate_live<S: GameStore + ApplicationStore>(store: &S) {
    let (g, h) = (open_game(store, 0, 8).await, open_game(store, 1, 8).await);
    let user = new_user();
    let first = application(g, user, 10);
    store.insert_fixture(&first).await.must("insert first");
    let twin = application(g, user, 11);
    assert_err!(
        store.insert_fixture(&twin).await,
        StoreError::Duplicate { .. },
        "second pending application to the same game"
    );
    assert_err!(
        store.get_application(twin.id).await,
        StoreError::NotFound { .. },
        "the refused application was not stored"
    );
    store
        .insert_fixture(&application(h, user, 12))
        .await
        .must("the same user applies to another game");
    store
        .insert_fixture(&application(g, new_user(), 13))
        .await
        .must("another user applies to the same game");

    store
        .decide_application(first.id, ApplicationStatus::Withdrawn, at(20))
        .await
        .must("withdraw");
    let again = application(g, user, 30);
    store
        .insert_fixture(&again)
        .await
        .must("apply again after withdrawing");
    assert_eq!(
        store.find_live_application(g, user).await.must("find"),
        Some(again.clone())
    );
    match store
        .approve_application(again.id, at(40))
        .await
        .must("approve")
    {
        ApprovalOutcome::Approved { .. } => {}
        other => panic!("approving an open game's application: {other:?}"),
    }
    assert_err!(
        store.insert_fixture(&application(g, user, 50)).await,
        StoreError::Duplicate { .. },
        "pending application beside an approved one"
    );
}

async fn decide<S: GameStore + ApplicationStore>(store: &S) {
    let g = open_game(store, 0, 8).await;
    let rejected = application(g, new_user(), 10);
    let other = application(g, new_user(), 11);
    for a in [&rejected, &other] {
        store.insert_fixture(a).await.must("insert_application");
    }
    let decided = store
        .decide_application(rejected.id, ApplicationStatus::Rejected, at(50))
        .await
        .must("reject");
    let mut expected = rejected.clone();
    expected.status = ApplicationStatus::Rejected;
    expected.decided_at = Some(at(50));
    assert_eq!(decided, expected);
    assert_eq!(
        store.get_application(rejected.id).await.must("get"),
        expected
    );
    assert_err!(
        store
            .decide_application(rejected.id, ApplicationStatus::Withdrawn, at(60))
            .await,
        StoreError::Conflict { .. },
        "withdrawing a rejected application"
    );
    assert_eq!(
        store.get_application(rejected.id).await.must("get"),
        expected
    );

    // Approval only goes through `approve_application`, which counts it.
    for to in [ApplicationStatus::Approved, ApplicationStatus::Pending] {
        assert_err!(
            store.decide_application(other.id, to, at(60)).await,
            StoreError::InvalidTransition(_),
            "decide_application to {to}"
        );
    }
    assert_eq!(store.get_application(other.id).await.must("get"), other);
    let withdrawn = store
        .decide_application(other.id, ApplicationStatus::Withdrawn, at(70))
        .await
        .must("withdraw");
    assert_eq!(withdrawn.status, ApplicationStatus::Withdrawn);
    assert_eq!(store.get_game(g).await.must("get_game").approved_count, 0);
    assert_err!(
        store
            .decide_application(
                ApplicationId::from_uuid(new_uuid()),
                ApplicationStatus::Rejected,
                at(1)
            )
            .await,
        StoreError::NotFound { .. },
        "decide_application of an unknown id"
    );
}

async fn unannounced<S: GameStore + ApplicationStore>(store: &S) {
    let g = open_game(store, 0, 8).await;
    let (a, b, c) = (
        application(g, new_user(), 30),
        application(g, new_user(), 10),
        application(g, new_user(), 20),
    );
    for app in [&a, &b, &c] {
        store.insert_fixture(app).await.must("insert_application");
    }
    let owed = |list: Vec<Application>| -> Vec<(ApplicationId, ApplicationStatus)> {
        list.into_iter().map(|x| (x.id, x.status)).collect()
    };
    let pending = ApplicationStatus::Pending;
    assert_eq!(
        owed(store.unannounced_applications(10).await.must("owed")),
        vec![(b.id, pending), (c.id, pending), (a.id, pending)],
        "a new application owes its submission, oldest first"
    );
    assert_eq!(
        owed(store.unannounced_applications(1).await.must("owed")),
        vec![(b.id, pending)],
        "at most `limit`"
    );
    for app in [&a, &b, &c] {
        store
            .mark_application_announced(app.id, pending)
            .await
            .must("announce");
    }
    assert!(
        store
            .unannounced_applications(10)
            .await
            .must("owed")
            .is_empty()
    );
    approve_ok(store, &b, 40).await;
    store
        .decide_application(a.id, ApplicationStatus::Withdrawn, at(50))
        .await
        .must("withdraw");
    assert_eq!(
        owed(store.unannounced_applications(10).await.must("owed")),
        vec![(b.id, ApplicationStatus::Approved)],
        "an approval owes its notification, a withdrawal nothing"
    );
    // Announcing a status the application has left settles nothing.
    store
        .mark_application_announced(b.id, pending)
        .await
        .must("announce a stale status");
    assert_eq!(
        store.unannounced_applications(10).await.must("owed").len(),
        1
    );
    store
        .mark_application_announced(b.id, ApplicationStatus::Approved)
        .await
        .must("announce");
    assert!(
        store
            .unannounced_applications(10)
            .await
            .must("owed")
            .is_empty()
    );
    assert_err!(
        store
            .mark_application_announced(ApplicationId::from_uuid(new_uuid()), pending)
            .await,
        StoreError::NotFound { .. },
        "an unknown application"
    );
}

/// Approves `a` and checks the returned rows against the stored ones.
async fn approve_ok<S: GameStore + ApplicationStore>(store: &S, a: &Application, secs: i64) -> u32 {
    match store
        .approve_application(a.id, at(secs))
        .await
        .must("approve")
    {
        ApprovalOutcome::Approved { application, game } => {
            let mut expected = a.clone();
            expected.status = ApplicationStatus::Approved;
            expected.decided_at = Some(at(secs));
            assert_eq!(application, expected);
            assert_eq!(store.get_application(a.id).await.must("get"), expected);
            assert_eq!(store.get_game(a.game_id).await.must("get_game"), game);
            game.approved_count
        }
        other => panic!("approving {}: {other:?}", a.id),
    }
}

async fn approve_outcomes<S: GameStore + ApplicationStore>(store: &S) {
    let g = open_game(store, 0, 2).await;
    let apps: Vec<Application> = (0..3).map(|i| application(g, new_user(), 10 + i)).collect();
    for a in &apps {
        store.insert_fixture(a).await.must("insert_application");
    }
    assert_eq!(approve_ok(store, &apps[0], 100).await, 1);
    let outcome = store
        .approve_application(apps[0].id, at(101))
        .await
        .must("approve");
    assert_eq!(
        outcome,
        ApprovalOutcome::NotPending(ApplicationStatus::Approved)
    );
    assert_eq!(approve_ok(store, &apps[1], 102).await, 2);
    let outcome = store
        .approve_application(apps[2].id, at(103))
        .await
        .must("approve");
    assert_eq!(outcome, ApprovalOutcome::GameFull);
    assert_eq!(
        store.get_application(apps[2].id).await.must("get"),
        apps[2],
        "unchanged"
    );
    assert_eq!(store.get_game(g).await.must("get_game").approved_count, 2);
    store
        .decide_application(apps[2].id, ApplicationStatus::Rejected, at(104))
        .await
        .must("reject");
    let outcome = store
        .approve_application(apps[2].id, at(105))
        .await
        .must("approve");
    assert_eq!(
        outcome,
        ApprovalOutcome::NotPending(ApplicationStatus::Rejected)
    );

    // A pending application reaches only a game open for enrollment: the insert checks
    // the game's status in the same step (a game closed since the caller read it).
    let draft = insert_along(store, &game(new_user(), 0, 8, Visibility::Public), &[]).await;
    let early = application(draft.id, new_user(), 10);
    assert_eq!(
        store
            .insert_application(&early, u32::MAX)
            .await
            .must("insert_application"),
        ApplicationInsert::NotEnrolling(GameStatus::Draft)
    );
    assert_err!(
        store.get_application(early.id).await,
        StoreError::NotFound { .. },
        "nothing stored"
    );
    assert_eq!(
        store.get_game(draft.id).await.must("get_game"),
        draft,
        "unchanged"
    );
    let cancelled = open_game(store, 0, 8).await;
    advance(store, cancelled, GameStatus::EnrollmentOpen, CANCELLED, 20).await;
    assert_eq!(
        store
            .insert_application(&application(cancelled, new_user(), 30), u32::MAX)
            .await
            .must("insert_application"),
        ApplicationInsert::NotEnrolling(GameStatus::Cancelled)
    );

    let closed = open_game(store, 0, 8).await;
    let late = application(closed, new_user(), 10);
    store.insert_fixture(&late).await.must("insert_application");
    advance(store, closed, GameStatus::EnrollmentOpen, &CLOSED[1..], 20).await;
    let outcome = store
        .approve_application(late.id, at(30))
        .await
        .must("approve");
    assert_eq!(
        outcome,
        ApprovalOutcome::NotEnrolling(GameStatus::EnrollmentClosed)
    );
    assert_eq!(
        store.get_game(closed).await.must("get_game").approved_count,
        0
    );

    assert_err!(
        store
            .approve_application(ApplicationId::from_uuid(new_uuid()), at(1))
            .await,
        StoreError::NotFound { .. },
        "approve_application of an unknown id"
    );
}

async fn count_active<S: GameStore + ApplicationStore>(store: &S) {
    let (user, other) = (new_user(), new_user());
    let count = |who| async move { store.count_active_games(who).await.must("count") };
    let mut games = Vec::new();
    for created in 0..6 {
        games.push(open_game(store, created, 8).await);
    }
    let apps: Vec<Application> = games.iter().map(|&g| application(g, user, 100)).collect();
    for a in &apps {
        store.insert_fixture(a).await.must("insert_application");
    }
    store
        .insert_fixture(&application(games[0], other, 100))
        .await
        .must("insert_application");
    assert_eq!(count(user).await, 6);

    // games[0] pending; games[1] approved; games[2] rejected; games[3] cancelled;
    // games[4] approved then closed (still counts); games[5] approved then finished.
    for i in [1, 4, 5] {
        approve_ok(store, &apps[i], 200).await;
    }
    store
        .decide_application(apps[2].id, ApplicationStatus::Rejected, at(200))
        .await
        .must("reject");
    advance(store, games[3], GameStatus::EnrollmentOpen, CANCELLED, 300).await;
    advance(
        store,
        games[4],
        GameStatus::EnrollmentOpen,
        &CLOSED[1..],
        300,
    )
    .await;
    advance(
        store,
        games[5],
        GameStatus::EnrollmentOpen,
        &FINISHED[1..],
        300,
    )
    .await;

    assert_eq!(
        count(user).await,
        3,
        "pending, approved, approved in a closed game"
    );
    assert_eq!(count(other).await, 1);
    assert_eq!(count(new_user()).await, 0);

    // The limit counts exactly what `count_active_games` counts.
    let next = open_game(store, 400, 8).await;
    let refused = store
        .insert_application(&application(next, user, 400), 3)
        .await
        .must("insert_application at the limit");
    assert_eq!(refused, ApplicationInsert::TooManyActiveGames { live: 3 });
    assert_eq!(count(user).await, 3, "a refused application is not stored");
    assert_eq!(store.list_applications(next).await.must("list"), vec![]);
    let mut withdrawn = application(next, user, 401);
    withdrawn.status = ApplicationStatus::Withdrawn;
    let inserted = store.insert_application(&withdrawn, 0).await;
    assert_eq!(
        inserted.must("insert a withdrawn application"),
        ApplicationInsert::Inserted,
        "an application that is not live takes no place"
    );
    let below = store
        .insert_application(&application(next, user, 402), 4)
        .await
        .must("insert_application below the limit");
    assert_eq!(below, ApplicationInsert::Inserted);
    assert_eq!(count(user).await, 4);
}
