//! Conformance suite for the record of play: [`TurnArchiveStore`] (turns archived whole
//! and once, listed in order, reports by race) and [`OrdersStore`] (submissions newest
//! first, which races have their orders in, one orders lease per race).

use std::future::Future;
use std::sync::Arc;

use galaxy_core::domain::lease::Lease;
use galaxy_core::domain::play::{OrdersSubmission, PlayedTurn, Standing, TurnReport};
use galaxy_core::domain::{GameId, LeaseToken, SubmissionId, UserId};
use galaxy_core::ports::{OrdersCount, OrdersStore, StoreError, TurnArchiveStore};
use serde_json::json;

use super::run_case;
use super::users::fixtures::{Must, assert_err, at, new_uuid, race};

const SUITE: &str = "play";

/// Runs every case; `make` must return a fresh, empty store each time.
pub async fn run_all<S, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: TurnArchiveStore + OrdersStore + Send + Sync + 'static,
{
    run_case(
        SUITE,
        "archive a turn, list, latest, reports",
        &make,
        |s| async move {
            archive_and_read(&s).await;
        },
    )
    .await;
    run_case(
        SUITE,
        "a turn is archived once, whole",
        &make,
        |s| async move {
            archive_once(&s).await;
        },
    )
    .await;
    run_case(
        SUITE,
        "concurrent archives of one turn",
        &make,
        |s| async move {
            concurrent_archive(Arc::new(s)).await;
        },
    )
    .await;
    run_case(
        SUITE,
        "unannounced turns, oldest first, until announced",
        &make,
        |s| async move {
            announcing(&s).await;
        },
    )
    .await;
    run_case(SUITE, "reports keep any JSON", &make, |s| async move {
        reports_keep_json(&s).await;
    })
    .await;
    run_case(
        SUITE,
        "orders newest first, orders in",
        &make,
        |s| async move {
            orders(&s).await;
        },
    )
    .await;
    run_case(
        SUITE,
        "one orders lease per race: held, lapsed, released, raced",
        &make,
        |s| async move {
            orders_lease(Arc::new(s)).await;
        },
    )
    .await;
}

/// A race's orders lease is one holder's while it holds: others are refused, its own
/// holder renews it, it lapses at its end and is taken over, a release by anyone else
/// changes nothing; races and games have a lease each; of concurrent takers, one wins.
async fn orders_lease<S: OrdersStore + Send + Sync + 'static>(store: Arc<S>) {
    let g = game();
    let token = || LeaseToken::from_uuid(new_uuid());
    let (a, b) = (token(), token());
    let lease = |token, until| Lease {
        token,
        until: at(until),
    };
    let take = |token, until, now| {
        let store = Arc::clone(&store);
        async move {
            store
                .lease_orders(g, "Zorg", lease(token, until), at(now))
                .await
                .must("lease_orders")
        }
    };
    assert!(take(a, 10, 0).await, "a free lease");
    assert!(!take(b, 10, 1).await, "held by another");
    assert!(take(a, 20, 2).await, "renewed by its holder");
    assert!(!take(b, 30, 15).await, "the renewal holds");
    let other_race = store.lease_orders(g, "Kree", lease(b, 30), at(3)).await;
    assert!(other_race.must("lease_orders"), "each race has its own");
    let other_game = store
        .lease_orders(game(), "Zorg", lease(b, 30), at(3))
        .await;
    assert!(other_game.must("lease_orders"), "each game has its own");
    assert!(take(b, 40, 20).await, "lapsed at its end: taken over");
    store
        .release_orders(g, "Zorg", a)
        .await
        .must("release by the old holder");
    assert!(
        !take(a, 50, 21).await,
        "a release by another changes nothing"
    );
    let renew = |token, until| {
        let store = Arc::clone(&store);
        async move {
            store
                .renew_orders(g, "Zorg", lease(token, until))
                .await
                .must("renew_orders")
        }
    };
    assert!(!renew(a, 45).await, "not the holder's: not renewed");
    assert!(renew(b, 45).await, "the holder's: renewed");
    assert!(!take(a, 50, 42).await, "the renewal holds");
    store.release_orders(g, "Zorg", b).await.must("release");
    assert!(
        !renew(b, 60).await,
        "a renewal after the release brings nothing back"
    );
    assert!(take(a, 50, 22).await, "released: free");
    store.release_orders(g, "Zorg", a).await.must("release");
    store
        .release_orders(g, "Zorg", a)
        .await
        .must("release again");

    // A submission is recorded only while its holder's lease is the race's: one that
    // lost it (it lapsed and another took it) or gave it up is refused, and nothing of
    // it is stored; a lapsed lease nobody took since is still its holder's.
    let (c, d) = (token(), token());
    let user = UserId::from_uuid(new_uuid());
    let of = |secs| submission(g, "Zorg", user, 1, secs, true);
    let (first, lapsed) = (of(31), of(75));
    assert!(take(c, 70, 30).await);
    store
        .record_orders(&first, c)
        .await
        .must("recorded under the lease");
    store
        .record_orders(&lapsed, c)
        .await
        .must("lapsed, nobody took it: still the holder's");
    assert_err!(
        store.record_orders(&of(32), d).await,
        StoreError::Conflict { .. },
        "not the holder"
    );
    assert!(take(d, 90, 80).await, "lapsed: taken over");
    assert_err!(
        store.record_orders(&of(81), c).await,
        StoreError::Conflict { .. },
        "the lease was lost"
    );
    store.release_orders(g, "Zorg", d).await.must("release");
    assert_err!(
        store.record_orders(&of(82), d).await,
        StoreError::Conflict { .. },
        "released"
    );
    let recorded = store.list_orders(g, "Zorg", 1).await.must("list");
    assert_eq!(recorded, vec![lapsed.clone(), first], "only the holder's");
    assert_eq!(store.count_orders(g, "Zorg", 1).await.must("count"), 2);
    assert_eq!(store.count_orders(g, "Zorg", 2).await.must("count"), 0);
    assert_eq!(store.count_orders(g, "Ayrans", 1).await.must("count"), 0);
    // The one in force is the newest, as the list says.
    let latest = store.latest_orders(g, "Zorg", 1).await.must("latest");
    assert_eq!(latest, Some(lapsed));
    assert_eq!(store.latest_orders(g, "Zorg", 2).await.must("none"), None);
    assert_eq!(store.latest_orders(g, "Ayrans", 1).await.must("none"), None);

    let tokens: Vec<LeaseToken> = (0..12).map(|_| token()).collect();
    let taken = race(tokens.len(), |i| take(tokens[i], 100, 60)).await;
    assert_eq!(taken.iter().filter(|t| **t).count(), 1, "{taken:?}");
    // Raced again once that lease lapsed (at its very end): one takes it over.
    let tokens: Vec<LeaseToken> = (0..12).map(|_| token()).collect();
    let taken = race(tokens.len(), |i| take(tokens[i], 200, 100)).await;
    assert_eq!(taken.iter().filter(|t| **t).count(), 1, "{taken:?}");
}

fn game() -> GameId {
    GameId::from_uuid(new_uuid())
}

/// Records `submission` as the runtime does: under its race's orders lease, taken (or
/// still held) by `holder`.
async fn leased<S: OrdersStore>(
    store: &S,
    submission: &OrdersSubmission,
    holder: LeaseToken,
) -> Result<(), StoreError> {
    let lease = Lease {
        token: holder,
        until: at(1_000_000),
    };
    let taken = store
        .lease_orders(submission.game_id, &submission.race, lease, at(0))
        .await
        .must("lease_orders");
    assert!(taken, "the lease of {} is the holder's", submission.race);
    store.record_orders(submission, holder).await
}

fn played(game_id: GameId, turn: u32, finished: bool) -> PlayedTurn {
    PlayedTurn {
        game_id,
        turn,
        played_at: at(i64::from(turn) * 60),
        finished,
        winner: finished.then(|| "Ayrans".to_owned()),
        standings: vec![
            Standing {
                race: "Ayrans".into(),
                score: 10.5 + f64::from(turn),
                alive: true,
            },
            Standing {
                race: "Bolgs".into(),
                score: 3.0,
                alive: !finished,
            },
        ],
    }
}

fn report(game_id: GameId, turn: u32, race: &str) -> TurnReport {
    TurnReport {
        game_id,
        turn,
        race: race.into(),
        report: json!({"race": race, "turn": turn, "text": format!("{race} report {turn}")}),
    }
}

fn reports(game_id: GameId, turn: u32) -> Vec<TurnReport> {
    vec![
        report(game_id, turn, "Ayrans"),
        report(game_id, turn, "Bolgs"),
    ]
}

async fn archive_and_read<S: TurnArchiveStore>(store: &S) {
    let g = game();
    assert_eq!(store.latest_turn(g).await.must("latest of none"), None);
    assert_eq!(store.list_turns(g).await.must("list of none"), vec![]);
    for turn in [0, 1, 2] {
        let stored = store
            .archive_turn(&played(g, turn, turn == 2), &reports(g, turn))
            .await
            .must("archive_turn");
        assert!(stored, "turn {turn} is new");
    }
    let listed = store.list_turns(g).await.must("list_turns");
    assert_eq!(
        listed,
        vec![played(g, 0, false), played(g, 1, false), played(g, 2, true)],
        "turn 0 first, every field kept"
    );
    assert_eq!(
        store.latest_turn(g).await.must("latest"),
        Some(played(g, 2, true))
    );
    assert_eq!(
        store.get_report(g, 1, "Bolgs").await.must("get_report"),
        report(g, 1, "Bolgs")
    );
    assert_err!(
        store.get_report(g, 3, "Bolgs").await,
        StoreError::NotFound { .. },
        "a turn not played"
    );
    assert_err!(
        store.get_report(g, 1, "Zeds").await,
        StoreError::NotFound { .. },
        "a race without a report"
    );
    let other = game();
    assert_err!(
        store.get_report(other, 1, "Bolgs").await,
        StoreError::NotFound { .. },
        "another game's report"
    );
}

async fn archive_once<S: TurnArchiveStore>(store: &S) {
    let g = game();
    let first = played(g, 4, false);
    assert!(
        store
            .archive_turn(&first, &reports(g, 4))
            .await
            .must("archive")
    );
    let mut replay = played(g, 4, true);
    replay.played_at = at(9_999);
    let changed = vec![TurnReport {
        report: json!({"race": "Ayrans", "turn": 4, "text": "rewritten"}),
        ..report(g, 4, "Ayrans")
    }];
    let stored = store
        .archive_turn(&replay, &changed)
        .await
        .must("archive again");
    assert!(!stored, "the second archive of a turn stores nothing");
    assert_eq!(store.list_turns(g).await.must("list"), vec![first]);
    assert_eq!(
        store.get_report(g, 4, "Ayrans").await.must("report"),
        report(g, 4, "Ayrans"),
        "the first write wins"
    );
    assert_eq!(
        store.get_report(g, 4, "Bolgs").await.must("report"),
        report(g, 4, "Bolgs")
    );
}

async fn announcing<S: TurnArchiveStore>(store: &S) {
    let (g, h) = (game(), game());
    // Archived out of time order: `played` times are a minute per turn number.
    for (game_id, turn) in [(g, 2), (h, 1), (g, 0)] {
        store
            .archive_turn(&played(game_id, turn, false), &reports(game_id, turn))
            .await
            .must("archive_turn");
    }
    let owed = |list: Vec<PlayedTurn>| -> Vec<(GameId, u32)> {
        list.into_iter().map(|t| (t.game_id, t.turn)).collect()
    };
    assert_eq!(
        owed(store.unannounced_turns(None, 10).await.must("unannounced")),
        vec![(g, 0), (h, 1), (g, 2)],
        "oldest archive first, across games"
    );
    assert_eq!(
        owed(store.unannounced_turns(None, 1).await.must("unannounced")),
        vec![(g, 0)],
        "at most `limit`"
    );
    let first = store.unannounced_turns(None, 1).await.must("unannounced");
    assert_eq!(
        owed(
            store
                .unannounced_turns(first.last().cloned(), 1)
                .await
                .must("unannounced")
        ),
        vec![(h, 1)],
        "the next page, after the last turn of one"
    );
    let second = store
        .unannounced_turns(first.last().cloned(), 1)
        .await
        .must("unannounced");
    assert_eq!(
        owed(
            store
                .unannounced_turns(second.last().cloned(), 10)
                .await
                .must("unannounced")
        ),
        vec![(g, 2)],
        "and the page after it"
    );
    store.mark_announced(h, 1, at(500)).await.must("announce");
    store
        .mark_announced(h, 1, at(900))
        .await
        .must("announce again");
    assert_eq!(
        owed(store.unannounced_turns(None, 10).await.must("unannounced")),
        vec![(g, 0), (g, 2)],
        "an announced turn is owed nothing"
    );
    assert_err!(
        store.mark_announced(h, 7, at(500)).await,
        StoreError::NotFound { .. },
        "a turn not archived"
    );
    assert_eq!(
        store.list_turns(h).await.must("list"),
        vec![played(h, 1, false)],
        "announcing keeps the turn as archived"
    );
    // Two turns archived at one instant: pages go on by game.
    let (k, m) = (game(), game());
    for game_id in [k, m] {
        store
            .archive_turn(&played(game_id, 9, false), &reports(game_id, 9))
            .await
            .must("archive_turn");
    }
    let (mut walked, mut after) = (Vec::new(), None);
    for _ in 0..10 {
        let page = store
            .unannounced_turns(after.clone(), 1)
            .await
            .must("unannounced");
        let Some(last) = page.into_iter().last() else {
            break;
        };
        walked.push((last.game_id, last.turn));
        after = Some(last);
    }
    let mut tied = vec![(k, 9), (m, 9)];
    tied.sort();
    assert_eq!(
        walked,
        [vec![(g, 0), (g, 2)], tied].concat(),
        "pages of one walk every owed turn once, ties by game"
    );
}

async fn concurrent_archive<S: TurnArchiveStore + Send + Sync + 'static>(store: Arc<S>) {
    let g = game();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .archive_turn(&played(g, 1, false), &reports(g, 1))
                .await
        }));
    }
    let mut stored = 0;
    for task in tasks {
        if task.await.must("join").must("archive") {
            stored += 1;
        }
    }
    assert_eq!(stored, 1, "exactly one concurrent archive stores the turn");
    assert_eq!(store.list_turns(g).await.must("list").len(), 1);
}

async fn reports_keep_json<S: TurnArchiveStore>(store: &S) {
    let g = game();
    let odd = TurnReport {
        game_id: g,
        turn: 0,
        race: "Ünïcødé Race".into(),
        report: json!({
            "race": "Ünïcødé Race",
            "turn": 0,
            "text": "line one\nline two\ttabbed \u{0} nul and \"quotes\"",
            "planets": [{"name": "P1", "size": 1.5}],
        }),
    };
    store
        .archive_turn(&played(g, 0, false), std::slice::from_ref(&odd))
        .await
        .must("archive");
    assert_eq!(
        store
            .get_report(g, 0, "Ünïcødé Race")
            .await
            .must("get_report"),
        odd
    );
}

fn submission(
    game_id: GameId,
    race: &str,
    user: UserId,
    turn: u32,
    secs: i64,
    accepted: bool,
) -> OrdersSubmission {
    let orders = json!({"text": format!("orders of {race} at {secs}\u{0}")});
    OrdersSubmission {
        id: SubmissionId::from_uuid(new_uuid()),
        game_id,
        race: race.into(),
        user_id: user,
        turn,
        submitted_at: at(secs),
        size: 42,
        accepted,
        errors: if accepted {
            vec![]
        } else {
            vec!["no such planet".into()]
        },
        orders,
    }
}

async fn orders<S: OrdersStore>(store: &S) {
    use OrdersCount::{Latest, PlayedAt};
    let g = game();
    let (ua, ub) = (UserId::from_uuid(new_uuid()), UserId::from_uuid(new_uuid()));
    assert_eq!(store.list_orders(g, "Ayrans", 1).await.must("list"), vec![]);
    assert_eq!(
        store.races_with_orders_in(g, 1, Latest).await.must("in"),
        Vec::<String>::new()
    );
    let a1 = submission(g, "Ayrans", ua, 1, 10, false);
    let a2 = submission(g, "Ayrans", ua, 1, 20, true);
    // Same instant as a2: arrival order decides which is newest.
    let a3 = submission(g, "Ayrans", ua, 1, 20, false);
    let b1 = submission(g, "Bolgs", ub, 1, 15, true);
    let b_next = submission(g, "Bolgs", ub, 2, 30, true);
    let holder = LeaseToken::from_uuid(new_uuid());
    for s in [&a1, &a2, &b1, &b_next] {
        leased(store, s, holder).await.must("record_orders");
    }
    assert_eq!(
        store.list_orders(g, "Ayrans", 1).await.must("list"),
        vec![a2.clone(), a1.clone()],
        "newest first"
    );
    assert_eq!(
        store.races_with_orders_in(g, 1, Latest).await.must("in"),
        vec!["Ayrans".to_owned(), "Bolgs".to_owned()]
    );
    leased(store, &a3, holder).await.must("record_orders");
    assert_eq!(
        store.list_orders(g, "Ayrans", 1).await.must("list"),
        vec![a3.clone(), a2, a1],
        "a later arrival at the same instant is newer"
    );
    assert_eq!(
        store.races_with_orders_in(g, 1, Latest).await.must("in"),
        vec!["Bolgs".to_owned()],
        "a refused latest submission takes the race's orders out"
    );
    assert_eq!(
        store.races_with_orders_in(g, 2, Latest).await.must("in"),
        vec!["Bolgs".to_owned()]
    );
    // As of a turn played at an instant: any accepted submission recorded by then (the
    // engine played it; a refusal after it left it in force).
    let b_late = submission(g, "Bolgs", ub, 1, 40, false);
    leased(store, &b_late, holder).await.must("record_orders");
    assert_eq!(
        store.races_with_orders_in(g, 1, Latest).await.must("in"),
        Vec::<String>::new(),
        "a later refusal takes Bolgs out of the ready"
    );
    let both = vec!["Ayrans".to_owned(), "Bolgs".to_owned()];
    for (secs, races, why) in [
        (
            50,
            both.clone(),
            "refusals after accepted orders leave them in force",
        ),
        (
            40,
            both.clone(),
            "Bolgs's refusal at the instant changes nothing",
        ),
        (
            20,
            both.clone(),
            "an accepted submission at the instant counts",
        ),
        (
            19,
            vec!["Bolgs".to_owned()],
            "Ayrans had only refused orders",
        ),
        (14, vec![], "only Ayrans's refused orders"),
        (5, vec![], "nothing yet"),
    ] {
        assert_eq!(
            store
                .races_with_orders_in(g, 1, PlayedAt(at(secs)))
                .await
                .must("in"),
            races,
            "played at {secs}: {why}"
        );
    }
    assert_eq!(
        store
            .races_with_orders_in(g, 2, PlayedAt(at(29)))
            .await
            .must("in"),
        Vec::<String>::new(),
        "turn 2's orders came at 30"
    );
    assert_err!(
        leased(store, &a3, holder).await,
        StoreError::Duplicate { .. },
        "a replayed submission id"
    );
    assert_eq!(
        store.list_orders(game(), "Ayrans", 1).await.must("list"),
        vec![]
    );
}
