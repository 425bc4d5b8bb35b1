//! Game cases of the lobby suite: storage, the status compare-and-set, history, lists.

use std::future::Future;

use galaxy_core::domain::game::{
    Game, GameName, GameStatus, GameTransition, GameTrigger, Visibility,
};
use galaxy_core::domain::page::PageRequest;
use galaxy_core::domain::{GameId, UserId};
use galaxy_core::ports::{GameFilter, GameStatusChange, GameStore, StoreError};

use super::{CANCELLED, CLOSED, OPEN, change, game, insert_along, new_user};
use crate::conformance::run_case;
use crate::conformance::users::fixtures::{Must, assert_err, at, new_uuid};

pub(super) async fn run<S, F, Fut>(suite: &str, make: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: GameStore,
{
    run_case(suite, "game insert, get, not found", make, |s| async move {
        insert_get(&s).await;
    })
    .await;
    run_case(
        suite,
        "game status: conflict vs invalid transition",
        make,
        |s| async move {
            conflict_vs_invalid(&s).await;
        },
    )
    .await;
    run_case(suite, "game history, oldest first", make, |s| async move {
        history(&s).await;
    })
    .await;
    run_case(
        suite,
        "transitions owing lobby effects, until announced",
        make,
        |s| async move {
            unannounced(&s).await;
        },
    )
    .await;
    run_case(
        suite,
        "list games by status, visibility, host",
        make,
        |s| async move {
            list_filters(&s).await;
        },
    )
    .await;
    run_case(
        suite,
        "list games by name and free seat",
        make,
        |s| async move {
            list_by_name_and_seat(&s).await;
        },
    )
    .await;
    run_case(suite, "list games in pages", make, |s| async move {
        list_pages(&s).await;
    })
    .await;
    run_case(
        suite,
        "games past their enrollment deadline",
        make,
        |s| async move {
            past_deadline(&s).await;
        },
    )
    .await;
}

async fn insert_get<S: GameStore>(store: &S) {
    let g = game(new_user(), 0, 8, Visibility::Public);
    store.insert_game(&g).await.must("insert_game");
    assert_eq!(store.get_game(g.id).await.must("get_game"), g);
    assert_eq!(store.game_transitions(g.id).await.must("history"), vec![]);
    assert_err!(
        store.get_game(GameId::from_uuid(new_uuid())).await,
        StoreError::NotFound { .. },
        "get_game of an unknown id"
    );
}

async fn conflict_vs_invalid<S: GameStore>(store: &S) {
    let host = new_user();
    let g = game(host, 0, 8, Visibility::Public);
    store.insert_game(&g).await.must("insert_game");
    let open = GameStatusChange {
        actor: Some(host),
        ..change(GameStatus::EnrollmentOpen, GameTrigger::Host, 10)
    };
    let opened = store
        .update_game_status(g.id, GameStatus::Draft, &open)
        .await
        .must("draft -> enrollment_open");
    let mut expected = g.clone();
    expected.status = GameStatus::EnrollmentOpen;
    expected.updated_at = at(10);
    assert_eq!(opened, expected);
    assert_eq!(store.get_game(g.id).await.must("get_game"), expected);

    // In the table, but the stored status moved on: a replay is a conflict.
    assert_err!(
        store
            .update_game_status(g.id, GameStatus::Draft, &open)
            .await,
        StoreError::Conflict { .. },
        "replayed draft -> enrollment_open"
    );
    // Not in the table, whatever is stored.
    let run = change(GameStatus::Running, GameTrigger::Host, 20);
    assert_err!(
        store
            .update_game_status(g.id, GameStatus::EnrollmentOpen, &run)
            .await,
        StoreError::InvalidTransition(_),
        "enrollment_open -> running by host"
    );
    // The table is checked before the stored status.
    let finish = change(GameStatus::Finished, GameTrigger::Engine, 20);
    assert_err!(
        store
            .update_game_status(g.id, GameStatus::Draft, &finish)
            .await,
        StoreError::InvalidTransition(_),
        "draft -> finished with a stale expected status"
    );
    let by_sweeper = change(GameStatus::EnrollmentOpen, GameTrigger::Sweeper, 20);
    assert_err!(
        store
            .update_game_status(g.id, GameStatus::Draft, &by_sweeper)
            .await,
        StoreError::InvalidTransition(_),
        "draft -> enrollment_open by the sweeper"
    );
    // A change that expects another approved count than the stored one (an approval
    // landed since the caller read the game) is a conflict, as a changed status is.
    let cancel = GameStatusChange {
        expected_approved: Some(g.approved_count + 1),
        ..change(GameStatus::Cancelled, GameTrigger::Sweeper, 20)
    };
    assert_err!(
        store
            .update_game_status(g.id, GameStatus::EnrollmentOpen, &cancel)
            .await,
        StoreError::Conflict { .. },
        "enrollment_open -> cancelled expecting another approved count"
    );
    assert_eq!(
        store.get_game(g.id).await.must("get_game"),
        expected,
        "refusals change nothing"
    );
    let history = store.game_transitions(g.id).await.must("history");
    assert_eq!(history.len(), 1, "refusals append nothing: {history:?}");

    let close = change(GameStatus::EnrollmentClosed, GameTrigger::Host, 30);
    assert_err!(
        store
            .update_game_status(
                GameId::from_uuid(new_uuid()),
                GameStatus::EnrollmentOpen,
                &close
            )
            .await,
        StoreError::NotFound { .. },
        "status change of an unknown game"
    );
    // The count as stored: the change applies.
    let cancel = GameStatusChange {
        expected_approved: Some(g.approved_count),
        ..change(GameStatus::Cancelled, GameTrigger::Sweeper, 40)
    };
    let cancelled = store
        .update_game_status(g.id, GameStatus::EnrollmentOpen, &cancel)
        .await
        .must("enrollment_open -> cancelled expecting the stored approved count");
    assert_eq!(cancelled.status, GameStatus::Cancelled);
}

async fn history<S: GameStore>(store: &S) {
    let (host, admin) = (new_user(), new_user());
    let g = game(host, 0, 8, Visibility::Public);
    store.insert_game(&g).await.must("insert_game");
    let steps = [
        (
            GameStatus::Draft,
            GameStatus::EnrollmentOpen,
            GameTrigger::Host,
            Some(host),
            None,
        ),
        (
            GameStatus::EnrollmentOpen,
            GameStatus::EnrollmentClosed,
            GameTrigger::System,
            None,
            Some("full"),
        ),
        (
            GameStatus::EnrollmentClosed,
            GameStatus::Starting,
            GameTrigger::System,
            None,
            None,
        ),
        (
            GameStatus::Starting,
            GameStatus::Running,
            GameTrigger::RuntimeEvent,
            None,
            None,
        ),
        (
            GameStatus::Running,
            GameStatus::Paused,
            GameTrigger::Admin,
            Some(admin),
            Some("maintenance"),
        ),
    ];
    let mut expected = Vec::new();
    for (n, (from, to, trigger, actor, reason)) in (1..).zip(steps) {
        let reason = reason.map(str::to_owned);
        let step = GameStatusChange {
            actor,
            reason: reason.clone(),
            ..change(to, trigger, n * 10)
        };
        let updated = store
            .update_game_status(g.id, from, &step)
            .await
            .must("step");
        assert_eq!((updated.status, updated.updated_at), (to, at(n * 10)));
        expected.push(GameTransition {
            game_id: g.id,
            from,
            to,
            trigger,
            actor,
            reason,
            at: at(n * 10),
        });
    }
    assert_eq!(store.game_transitions(g.id).await.must("history"), expected);
}

async fn unannounced<S: GameStore>(store: &S) {
    let host = new_user();
    let closed = insert_along(store, &game(host, 0, 8, Visibility::Public), CLOSED).await;
    let cancelled = insert_along(store, &game(host, 100, 8, Visibility::Public), CANCELLED).await;
    let _open = insert_along(store, &game(host, 200, 8, Visibility::Public), OPEN).await;
    let owed = |list: Vec<GameTransition>| -> Vec<(GameId, GameStatus)> {
        list.into_iter().map(|t| (t.game_id, t.to)).collect()
    };
    assert_eq!(
        owed(store.unannounced_transitions(10).await.must("unannounced")),
        vec![
            (closed.id, GameStatus::EnrollmentClosed),
            (cancelled.id, GameStatus::Cancelled)
        ],
        "only closing and cancelling owe effects, oldest first"
    );
    assert_eq!(
        owed(store.unannounced_transitions(1).await.must("unannounced")).len(),
        1,
        "at most `limit`"
    );
    let to = GameStatus::EnrollmentClosed;
    store
        .mark_transition_announced(closed.id, to, at(500))
        .await
        .must("announce");
    store
        .mark_transition_announced(closed.id, to, at(900))
        .await
        .must("announce again");
    assert_eq!(
        owed(store.unannounced_transitions(10).await.must("unannounced")),
        vec![(cancelled.id, GameStatus::Cancelled)],
        "an announced transition is owed nothing"
    );
    assert_err!(
        store
            .mark_transition_announced(cancelled.id, to, at(500))
            .await,
        StoreError::NotFound { .. },
        "a status the game never entered"
    );
    assert_eq!(
        store
            .game_transitions(closed.id)
            .await
            .must("history")
            .len(),
        2,
        "announcing keeps the history"
    );
}

fn filter(
    statuses: &[GameStatus],
    visibility: Option<Visibility>,
    host: Option<UserId>,
) -> GameFilter {
    GameFilter {
        statuses: statuses.to_vec(),
        visibility,
        host,
        ..GameFilter::default()
    }
}

async fn list_by_name_and_seat<S: GameStore>(store: &S) {
    let host = new_user();
    let named = |name: &str, created: i64, max: u32, approved: u32| {
        let mut g = game(host, created, max, Visibility::Public);
        g.settings.name = GameName::parse(name).must("name");
        g.approved_count = approved;
        g
    };
    let full = insert_along(store, &named("Vega Cup", 0, 2, 2), &[]).await;
    let league = insert_along(store, &named("the vega_league", 100, 8, 3), &[]).await;
    let altair = insert_along(store, &named("Altair", 200, 8, 0), &[]).await;
    let percent = insert_along(store, &named("100% Vega", 300, 4, 1), &[]).await;
    let by = |name: Option<&str>, free_seat: bool| GameFilter {
        name_contains: name.map(str::to_owned),
        free_seat,
        ..GameFilter::default()
    };
    let cases = [
        (by(Some("VEGA"), false), vec![&full, &league, &percent]),
        (by(Some("vega"), true), vec![&league, &percent]),
        (by(None, true), vec![&league, &altair, &percent]),
        (by(Some("_"), false), vec![&league]),
        (by(Some("%"), false), vec![&percent]),
        (by(Some("Sirius"), false), vec![]),
    ];
    let all = PageRequest::first(50).must("page");
    for (filter, expected) in cases {
        let page = store.list_games(&filter, &all).await.must("list_games");
        let expected: Vec<Game> = expected.into_iter().cloned().collect();
        assert_eq!(page.items, expected, "{filter:?}");
    }
    // Paged like every listing.
    let (items, pages) = walk(store, &by(Some("vega"), false), 2).await;
    assert_eq!(items, vec![full, league, percent]);
    assert_eq!(pages, 2);
}

async fn list_filters<S: GameStore>(store: &S) {
    let (alice, bob) = (new_user(), new_user());
    let (public, private) = (Visibility::Public, Visibility::Private);
    let a_draft = insert_along(store, &game(alice, 0, 8, public), &[]).await;
    let a_open = insert_along(store, &game(alice, 100, 8, public), OPEN).await;
    let a_secret = insert_along(store, &game(alice, 200, 8, private), OPEN).await;
    let b_open = insert_along(store, &game(bob, 300, 8, public), OPEN).await;
    let b_gone = insert_along(store, &game(bob, 400, 8, private), CANCELLED).await;

    let open = GameStatus::EnrollmentOpen;
    let cases = [
        (
            filter(&[], None, None),
            vec![&a_draft, &a_open, &a_secret, &b_open, &b_gone],
        ),
        (
            filter(&[open], None, None),
            vec![&a_open, &a_secret, &b_open],
        ),
        (
            filter(&[GameStatus::Cancelled, GameStatus::Draft], None, None),
            vec![&a_draft, &b_gone],
        ),
        (filter(&[], Some(private), None), vec![&a_secret, &b_gone]),
        (
            filter(&[], None, Some(alice)),
            vec![&a_draft, &a_open, &a_secret],
        ),
        (filter(&[open], Some(public), Some(alice)), vec![&a_open]),
        (filter(&[GameStatus::Running], None, None), vec![]),
        (filter(&[], None, Some(new_user())), vec![]),
    ];
    let all = PageRequest::first(50).must("page");
    for (filter, expected) in cases {
        let page = store.list_games(&filter, &all).await.must("list_games");
        let expected: Vec<Game> = expected.into_iter().cloned().collect();
        assert_eq!(page.items, expected, "{filter:?}");
        assert_eq!(page.next_after, None, "{filter:?} fits in one page");
    }
}

/// Every item of the list selected by `filter`, walking pages of `limit`; checks each
/// page's size and returns the items and the number of pages.
async fn walk<S: GameStore>(store: &S, filter: &GameFilter, limit: u32) -> (Vec<Game>, usize) {
    let mut items = Vec::new();
    let mut request = PageRequest::first(limit).must("page");
    for pages in 1..=20 {
        let page = store.list_games(filter, &request).await.must("list_games");
        assert!(
            page.items.len() <= limit as usize,
            "page {pages} exceeds {limit}"
        );
        items.extend(page.items);
        match page.next_after {
            Some(after) => request = PageRequest::after(limit, after).must("page"),
            None => return (items, pages),
        }
    }
    panic!("pagination with limit {limit} does not end");
}

async fn list_pages<S: GameStore>(store: &S) {
    let host = new_user();
    // Inserted out of creation order; two share an instant, so the id decides.
    let mut games: Vec<Game> = [5, 1, 3, 3, 7, 2, 6]
        .into_iter()
        .map(|secs| game(host, secs, 8, Visibility::Public))
        .collect();
    for g in &games {
        store.insert_game(g).await.must("insert_game");
    }
    // Noise another host's filter must skip.
    store
        .insert_game(&game(new_user(), 4, 8, Visibility::Public))
        .await
        .must("insert_game");
    games.sort_by_key(|g| (g.created_at, g.id));

    let mine = filter(&[], None, Some(host));
    for (limit, pages) in [(3, 3), (7, 1), (6, 2), (1, 7)] {
        let (items, walked) = walk(store, &mine, limit).await;
        assert_eq!(
            items, games,
            "limit {limit}: every game once, in creation order"
        );
        assert_eq!(
            walked, pages,
            "limit {limit}: pages until next_after is None"
        );
    }

    // A cursor the store never handed out is bad input, not a missing row.
    let forged = PageRequest::after(3, "not-a-cursor").must("page");
    match store.list_games(&mine, &forged).await {
        Err(StoreError::InvalidCursor(_)) => {}
        other => panic!("a forged cursor must give InvalidCursor, got {other:?}"),
    }
}

async fn past_deadline<S: GameStore>(store: &S) {
    let host = new_user();
    let day = 86_400;
    // Deadlines (a day after creation): draft at day+100, open at day+50.
    let draft = insert_along(store, &game(host, 100, 8, Visibility::Public), &[]).await;
    let open = insert_along(store, &game(host, 50, 8, Visibility::Private), OPEN).await;
    let later = insert_along(store, &game(host, 200, 8, Visibility::Public), &[]).await;
    insert_along(store, &game(host, 10, 8, Visibility::Public), CLOSED).await;
    insert_along(store, &game(host, 20, 8, Visibility::Public), CANCELLED).await;

    let due = |now: i64, limit: u32| async move {
        store
            .games_past_deadline(at(now), limit)
            .await
            .must("games_past_deadline")
    };
    assert_eq!(
        due(day + 100, 10).await,
        vec![open.clone(), draft],
        "deadline inclusive"
    );
    assert_eq!(
        due(day + 100, 1).await,
        vec![open.clone()],
        "limit, oldest deadline first"
    );
    assert_eq!(due(day + 49, 10).await, vec![]);
    assert_eq!(due(day + 1000, 10).await.len(), 3);
    assert!(due(day + 1000, 10).await.contains(&later));
}
