//! Conformance suite for [`PbemStore`]: race records, the once-per-turn tally, vacation
//! budgets, seats changing hands, preferences and messages with their rate limit (each
//! check-then-write raced by concurrent callers).

use std::future::Future;
use std::sync::Arc;

use galaxy_core::domain::limit::RateLimit;
use galaxy_core::domain::page::PageRequest;
use galaxy_core::domain::pbem::{
    GamePreferences, MAX_MESSAGE_CHARS, RaceMessage, RaceRecord, ReadyMark, SeatApplication,
    SeatApplicationStatus,
};
use galaxy_core::domain::{GameId, MessageId, SeatApplicationId, UserId};
use galaxy_core::ports::{PbemStore, SeatApplicationInsert, StoreError, VacationOutcome};

use super::run_case;
use super::users::fixtures::{Must, assert_err, at, new_uuid, race, secs};

const SUITE: &str = "pbem";

/// Runs every case; `make` must return a fresh, empty store each time.
pub async fn run_all<S, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: PbemStore + Send + Sync + 'static,
{
    run_case(
        SUITE,
        "races are created once and listed in order",
        &make,
        |s| async move {
            races(&s).await;
        },
    )
    .await;
    run_case(
        SUITE,
        "a turn is tallied once, even when raced",
        &make,
        |s| async move {
            tally(Arc::new(s)).await;
        },
    )
    .await;
    run_case(
        SUITE,
        "vacation within the budget, raced",
        &make,
        |s| async move {
            vacation(Arc::new(s)).await;
        },
    )
    .await;
    run_case(
        SUITE,
        "seats open, change hands, are reclaimed",
        &make,
        |s| async move {
            seats(Arc::new(s)).await;
        },
    )
    .await;
    run_case(
        SUITE,
        "seat applications count against the active-games limit, raced",
        &make,
        |s| async move {
            seat_limit(Arc::new(s)).await;
        },
    )
    .await;
    run_case(
        SUITE,
        "preferences default and update",
        &make,
        |s| async move {
            preferences(&s).await;
        },
    )
    .await;
    run_case(
        SUITE,
        "messages: visibility, paging, rate limit raced",
        &make,
        |s| async move {
            messages(Arc::new(s)).await;
        },
    )
    .await;
    run_case(
        SUITE,
        "a message of the longest text, in characters of several bytes",
        &make,
        |s| async move {
            longest_message(&s).await;
        },
    )
    .await;
}

/// The domain bounds a message in characters ([`MAX_MESSAGE_CHARS`]): a store keeps the
/// longest one whole, whatever its bytes (4096 umlauts are 8 KiB of UTF-8).
async fn longest_message<S: PbemStore>(store: &S) {
    let g = game();
    let users = seated(store, g, 2).await;
    let mut long = message(g, ("Ayrans", users[0]), &["Bolgs"], 10);
    long.text = "ä".repeat(MAX_MESSAGE_CHARS);
    let generous = RateLimit {
        max: 100,
        window: secs(3600),
    };
    assert_eq!(store.post_message(&long, generous).await.must("post"), None);
    let first = PageRequest::first(10).must("page");
    let read = store.list_messages(g, "Bolgs", &first).await.must("list");
    assert_eq!(read.items, vec![long]);
}

fn game() -> GameId {
    GameId::from_uuid(new_uuid())
}

fn user() -> UserId {
    UserId::from_uuid(new_uuid())
}

async fn seated<S: PbemStore>(store: &S, g: GameId, n: usize) -> Vec<UserId> {
    let users: Vec<UserId> = (0..n).map(|_| user()).collect();
    let seats: Vec<(String, UserId)> = users
        .iter()
        .enumerate()
        .map(|(i, u)| (race_name(i), *u))
        .collect();
    store.ensure_races(g, &seats).await.must("ensure races");
    users
}

fn race_name(i: usize) -> String {
    ["Ayrans", "Bolgs", "Cyrox", "Dwims"][i % 4].to_owned()
}

async fn races<S: PbemStore>(store: &S) {
    let g = game();
    let users = seated(store, g, 2).await;
    store
        .mark_ready(g, "Bolgs", users[1], ReadyMark::Set(3, at(10)))
        .await
        .must("ready");
    // Again, with a third race: existing records are kept.
    let cyrox = user();
    let again = vec![
        ("Cyrox".to_owned(), cyrox),
        ("Ayrans".to_owned(), user()),
        ("Bolgs".to_owned(), users[1]),
    ];
    let all = store.ensure_races(g, &again).await.must("ensure again");
    let names: Vec<&str> = all.iter().map(|r| r.race.as_str()).collect();
    assert_eq!(names, ["Ayrans", "Bolgs", "Cyrox"]);
    assert_eq!(
        all[0].user_id, users[0],
        "an existing record keeps its player"
    );
    assert_eq!(all[1].ready_turn, Some(3));
    assert_eq!(all[1].ready_at, Some(at(10)), "the mark keeps its time");
    // Marked again later (another device, a retry): the earlier time stands.
    store
        .mark_ready(g, "Bolgs", users[1], ReadyMark::Set(3, at(20)))
        .await
        .must("ready again");
    assert_eq!(
        store.list_races(g).await.must("list")[1].ready_at,
        Some(at(10))
    );
    assert_eq!(store.list_races(g).await.must("list"), all);
    store
        .mark_ready(g, "Cyrox", cyrox, ReadyMark::Set(4, at(10)))
        .await
        .must("ready");
    // Orders for the next turn leave this turn's mark (its tally reads it)...
    store
        .mark_ready(g, "Cyrox", cyrox, ReadyMark::Clear(5))
        .await
        .must("unready another turn");
    let cyrox_race = &store.list_races(g).await.must("list")[2];
    assert_eq!(
        (cyrox_race.ready_turn, cyrox_race.ready_at),
        (Some(4), Some(at(10)))
    );
    // ...orders for this turn take it back.
    store
        .mark_ready(g, "Cyrox", cyrox, ReadyMark::Clear(4))
        .await
        .must("unready");
    let cyrox_race = &store.list_races(g).await.must("list")[2];
    assert_eq!((cyrox_race.ready_turn, cyrox_race.ready_at), (None, None));
    assert_eq!(store.list_races(game()).await.must("other game"), vec![]);
    assert_err!(
        store
            .mark_ready(g, "Nobody", cyrox, ReadyMark::Set(3, at(10)))
            .await,
        StoreError::NotFound { .. },
        "ready of an unknown race"
    );
    assert_err!(
        store
            .mark_ready(g, "Cyrox", users[0], ReadyMark::Set(4, at(10)))
            .await,
        StoreError::Conflict { .. },
        "ready of another player's race"
    );
    assert_eq!(store.list_races(g).await.must("list")[2].ready_turn, None);
}

async fn tally<S: PbemStore + 'static>(store: Arc<S>) {
    let g = game();
    let users = seated(&*store, g, 3).await;
    // Cyrox is on vacation for turn 2.
    let booked = store
        .book_vacation(g, "Cyrox", users[2], 2, 1, 2)
        .await
        .must("vacation");
    assert!(matches!(booked, VacationOutcome::Booked(_)));
    let ready = vec!["Ayrans".to_owned()];
    let results = race(8, |_| {
        let (store, ready) = (Arc::clone(&store), ready.clone());
        async move { store.tally_turn(g, 1, &ready, 2).await }
    })
    .await;
    let counted: Vec<_> = results
        .into_iter()
        .filter_map(|r| r.must("tally"))
        .collect();
    assert_eq!(
        counted,
        vec![Vec::<String>::new()],
        "exactly one tally counts"
    );
    let idle = store.tally_turn(g, 2, &ready, 2).await.must("turn 2");
    assert_eq!(
        idle,
        Some(vec!["Bolgs".to_owned()]),
        "Cyrox paused on vacation"
    );
    let all = store.list_races(g).await.must("list");
    assert_eq!((all[0].missed_turns, all[0].idle), (0, false));
    assert_eq!((all[1].missed_turns, all[1].idle), (2, true));
    assert_eq!((all[2].missed_turns, all[2].idle), (1, false));
    // Bolgs's idle notice is owed from the tally's own write until raised; a raise of
    // another turn's notice clears nothing.
    assert_eq!((all[1].idle_notice, all[0].idle_notice), (Some(2), None));
    let owed = store.owed_idle_notices(1000).await.must("owed");
    let owed: Vec<_> = owed.iter().filter(|r| r.game_id == g).collect();
    assert_eq!(owed.len(), 1, "{owed:?}");
    assert_eq!(
        (owed[0].race.as_str(), owed[0].idle_notice),
        ("Bolgs", Some(2))
    );
    store
        .idle_notice_raised(g, "Bolgs", 1)
        .await
        .must("another turn's notice");
    assert_eq!(
        store.list_races(g).await.must("list")[1].idle_notice,
        Some(2)
    );
    store
        .idle_notice_raised(g, "Bolgs", 2)
        .await
        .must("notice raised");
    assert_eq!(store.list_races(g).await.must("list")[1].idle_notice, None);
    let owed = store.owed_idle_notices(1000).await.must("owed");
    assert!(owed.iter().all(|r| r.game_id != g), "{owed:?}");
    assert_err!(
        store.idle_notice_raised(g, "Nobody", 2).await,
        StoreError::NotFound { .. },
        "notice of an unknown race"
    );
    // Idle races keep counting but go idle once; orders bring them back.
    let turn3 = store.tally_turn(g, 3, &[], 2).await.must("turn 3");
    assert_eq!(turn3, Some(vec!["Cyrox".to_owned()]));
    assert_eq!(
        store.list_races(g).await.must("list")[2].idle_notice,
        Some(3)
    );
    let back = store
        .tally_turn(g, 4, &["Bolgs".to_owned()], 2)
        .await
        .must("turn 4");
    assert_eq!(
        back,
        Some(vec!["Ayrans".to_owned()]),
        "Ayrans missed 3 and 4"
    );
    let all = store.list_races(g).await.must("list");
    assert_eq!((all[1].missed_turns, all[1].idle), (0, false));
    // Cyrox, back with orders before its notice was raised, owes none any more.
    let ready = vec!["Cyrox".to_owned()];
    store.tally_turn(g, 5, &ready, 2).await.must("turn 5");
    assert_eq!(store.list_races(g).await.must("list")[2].idle_notice, None);
    assert_eq!(store.tally_turn(g, 4, &[], 2).await.must("again"), None);
}

async fn vacation<S: PbemStore + 'static>(store: Arc<S>) {
    let g = game();
    let users = seated(&*store, g, 1).await;
    let ayrans = users[0];
    // Eight callers ask for one turn each of a budget of three.
    let results = race(8, |_| {
        let store = Arc::clone(&store);
        async move { store.book_vacation(g, "Ayrans", ayrans, 5, 1, 3).await }
    })
    .await;
    let booked = results
        .into_iter()
        .map(|r| r.must("book"))
        .filter(|o| matches!(o, VacationOutcome::Booked(_)))
        .count();
    assert_eq!(booked, 3);
    let record = &store.list_races(g).await.must("list")[0];
    assert_eq!(record.vacation_used, 3);
    assert_eq!(
        (record.vacation_from, record.vacation_until),
        (Some(5), Some(7))
    );
    assert_eq!(
        store
            .book_vacation(g, "Ayrans", ayrans, 9, 1, 3)
            .await
            .must("over"),
        VacationOutcome::OverBudget { left: 0 }
    );
    assert_err!(
        store.book_vacation(g, "Nobody", ayrans, 1, 1, 3).await,
        StoreError::NotFound { .. },
        "vacation of an unknown race"
    );
}

fn application(g: GameId, race: &str, user: UserId, secs_: i64) -> SeatApplication {
    SeatApplication {
        id: SeatApplicationId::from_uuid(new_uuid()),
        game_id: g,
        race: race.to_owned(),
        user_id: user,
        status: SeatApplicationStatus::Pending,
        created_at: at(secs_),
    }
}

/// Stores a seat application with no active-games limit in the way: a refusal by the
/// limit fails the case.
async fn apply<S: PbemStore>(store: &S, application: &SeatApplication) -> Result<(), StoreError> {
    match store.apply_for_seat(application, u32::MAX).await? {
        SeatApplicationInsert::Inserted => Ok(()),
        refused => panic!("no limit applies, yet refused: {refused:?}"),
    }
}

/// A game of `players` (the first is `player`, the others strangers) whose last race
/// went idle and had its seat opened: returns the game and the open race.
async fn open_seat_game<S: PbemStore>(store: &S, player: Option<UserId>) -> (GameId, String) {
    let g = game();
    let mut seats = vec![(race_name(1), user())];
    if let Some(player) = player {
        seats.insert(0, (race_name(0), player));
    }
    store.ensure_races(g, &seats).await.must("ensure races");
    let ready: Vec<String> = seats[..seats.len() - 1]
        .iter()
        .map(|(race, _)| race.clone())
        .collect();
    store.tally_turn(g, 1, &ready, 1).await.must("tally");
    store.open_seat(g, &race_name(1)).await.must("open seat");
    (g, race_name(1))
}

/// The races a user plays and their pending seat applications make them active in
/// those games (with no lobby in the store, every game counts as not ended): a seat
/// application at the limit is refused and not stored, and concurrent applications
/// never together pass it.
async fn seat_limit<S: PbemStore + 'static>(store: Arc<S>) {
    let u = user();
    open_seat_game(&*store, Some(u)).await;
    open_seat_game(&*store, Some(u)).await;
    let (g3, race3) = open_seat_game(&*store, None).await;
    let refused = store
        .apply_for_seat(&application(g3, &race3, u, 1), 2)
        .await
        .must("apply at the limit");
    assert_eq!(
        refused,
        SeatApplicationInsert::TooManyActiveGames { live: 2 }
    );
    let stored = store.list_seat_applications(g3, &race3).await.must("list");
    assert_eq!(stored, vec![], "a refused application is not stored");
    let first = application(g3, &race3, u, 2);
    let inserted = store.apply_for_seat(&first, 3).await.must("apply");
    assert_eq!(inserted, SeatApplicationInsert::Inserted);
    let (g4, race4) = open_seat_game(&*store, None).await;
    let pending = store
        .apply_for_seat(&application(g4, &race4, u, 3), 3)
        .await
        .must("apply with one pending");
    assert_eq!(
        pending,
        SeatApplicationInsert::TooManyActiveGames { live: 3 },
        "a pending seat application counts"
    );
    // Another applicant for the seat, rejected by the approval: a rejected application
    // counts for nobody.
    let w = user();
    let rival = application(g3, &race3, w, 2);
    let rival_in = store
        .apply_for_seat(&rival, 1)
        .await
        .must("a rival applies");
    assert_eq!(rival_in, SeatApplicationInsert::Inserted);
    // Handed over, the seat still counts once (the race now, not the application).
    store
        .approve_seat_application(g3, &race3, first.id)
        .await
        .must("approve");
    let (g5, race5) = open_seat_game(&*store, None).await;
    let again = store
        .apply_for_seat(&application(g5, &race5, w, 3), 1)
        .await
        .must("the rival applies elsewhere");
    assert_eq!(
        again,
        SeatApplicationInsert::Inserted,
        "rejected: not counted"
    );
    // At the limit, a second application for the same seat is the duplicate it is.
    assert_err!(
        store
            .apply_for_seat(&application(g5, &race5, w, 4), 1)
            .await,
        StoreError::Duplicate { .. },
        "the same seat again, at the limit"
    );
    let after = store
        .apply_for_seat(&application(g4, &race4, u, 4), 3)
        .await
        .must("apply after the handover");
    assert_eq!(after, SeatApplicationInsert::TooManyActiveGames { live: 3 });

    // Two open seats of one game: applying for both adds one game.
    let g6 = game();
    let seats6 = vec![
        (race_name(0), user()),
        (race_name(1), user()),
        (race_name(2), user()),
    ];
    store.ensure_races(g6, &seats6).await.must("ensure races");
    store
        .tally_turn(g6, 1, &[race_name(0)], 1)
        .await
        .must("tally");
    for i in [1, 2] {
        store.open_seat(g6, &race_name(i)).await.must("open seat");
    }
    let y = user();
    for i in [1, 2] {
        let inserted = store
            .apply_for_seat(&application(g6, &race_name(i), y, 5), 1)
            .await
            .must("apply in one game");
        assert_eq!(inserted, SeatApplicationInsert::Inserted, "seat {i}");
    }
    let (g7, race7) = open_seat_game(&*store, None).await;
    let elsewhere = store
        .apply_for_seat(&application(g7, &race7, y, 6), 1)
        .await
        .must("apply in another game");
    assert_eq!(
        elsewhere,
        SeatApplicationInsert::TooManyActiveGames { live: 1 }
    );

    // One new user, room for two games, eight open seats raced for.
    let v = user();
    let mut seats = Vec::new();
    for _ in 0..8 {
        seats.push(open_seat_game(&*store, None).await);
    }
    let results = race(seats.len(), |i| {
        let store = Arc::clone(&store);
        let (g, race) = seats[i].clone();
        async move { store.apply_for_seat(&application(g, &race, v, 10), 2).await }
    })
    .await;
    let inserted = results
        .iter()
        .filter(|r| matches!(r, Ok(SeatApplicationInsert::Inserted)))
        .count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Ok(SeatApplicationInsert::TooManyActiveGames { live: 2 })))
        .count();
    assert_eq!((inserted, refused), (2, 6), "{results:?}");
}

async fn seats<S: PbemStore + 'static>(store: Arc<S>) {
    let g = game();
    let users = seated(&*store, g, 2).await;
    assert_err!(
        store.open_seat(g, "Bolgs").await,
        StoreError::Conflict { .. },
        "opening an active race"
    );
    store
        .tally_turn(g, 1, &["Ayrans".to_owned()], 1)
        .await
        .must("idle");
    let open = store.open_seat(g, "Bolgs").await.must("open");
    assert!(open.seat_open);
    assert_err!(
        store.open_seat(g, "Bolgs").await,
        StoreError::Conflict { .. },
        "opening twice"
    );
    assert_eq!(
        store.open_seats(&[game(), g]).await.must("open seats"),
        vec![(g, vec!["Bolgs".to_owned()])]
    );
    // A player of the game may not apply; strangers may, once each.
    assert_err!(
        apply(&*store, &application(g, "Bolgs", users[0], 1)).await,
        StoreError::Conflict { .. },
        "a player applies"
    );
    let (x, y) = (user(), user());
    let ax = application(g, "Bolgs", x, 2);
    let ay = application(g, "Bolgs", y, 3);
    apply(&*store, &ax).await.must("x applies");
    apply(&*store, &ay).await.must("y applies");
    assert_err!(
        apply(&*store, &application(g, "Bolgs", x, 4)).await,
        StoreError::Duplicate { .. },
        "x applies twice"
    );
    assert_err!(
        apply(&*store, &application(g, "Ayrans", x, 5)).await,
        StoreError::Conflict { .. },
        "applying for a closed seat"
    );
    // Two approvals race each other and the old player's last writes (checked by the
    // service before the handover): one seat, one winner, and whatever order the writes
    // land in, the new player finds the race afresh: a write before the handover is
    // undone by it, one after it is refused.
    let old = users[1];
    let results = race(6, |i| {
        let store = Arc::clone(&store);
        async move {
            match i {
                0 | 1 => {
                    let id = if i == 0 { ax.id } else { ay.id };
                    let handover = store.approve_seat_application(g, "Bolgs", id).await;
                    handover.map(Some)
                }
                2 => store
                    .mark_ready(g, "Bolgs", old, ReadyMark::Set(2, at(10)))
                    .await
                    .map(|_| None),
                3 => store
                    .book_vacation(g, "Bolgs", old, 2, 2, 3)
                    .await
                    .map(|_| None),
                4 => store
                    .mark_ready(g, "Bolgs", old, ReadyMark::Set(3, at(10)))
                    .await
                    .map(|_| None),
                _ => store
                    .book_vacation(g, "Bolgs", old, 4, 1, 3)
                    .await
                    .map(|_| None),
            }
        }
    })
    .await;
    let winners: Vec<_> = results[..2]
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for result in &results[2..] {
        if let Err(error) = result {
            assert!(
                matches!(error, StoreError::Conflict { .. }),
                "an old player's write failed otherwise: {error:?}"
            );
        }
    }
    let handover = winners[0].as_ref().must_some().clone();
    assert_eq!(handover.previous, old);
    // The handover's notice is owed from the approval, with whom to tell.
    let owed_here = |store: Arc<S>| async move {
        let all = store.owed_seat_notices(1000).await.must("owed");
        all.into_iter()
            .filter(|n| n.application.game_id == g)
            .collect::<Vec<_>>()
    };
    let owed = owed_here(Arc::clone(&store)).await;
    assert_eq!(owed.len(), 1, "{owed:?}");
    assert_eq!(owed[0].previous, old);
    assert_eq!(owed[0].application.user_id, handover.record.user_id);
    assert_eq!(owed[0].application.status, SeatApplicationStatus::Approved);
    store
        .seat_notice_raised(owed[0].application.id)
        .await
        .must("raised");
    assert!(owed_here(Arc::clone(&store)).await.is_empty());
    assert_err!(
        store
            .seat_notice_raised(SeatApplicationId::from_uuid(new_uuid()))
            .await,
        StoreError::NotFound { .. },
        "notice of an unknown application"
    );
    let taken = store
        .races_of_user(handover.record.user_id)
        .await
        .must("races of");
    assert_eq!(taken, vec![handover.record.clone()]);
    assert_eq!(store.races_of_user(old).await.must("old player"), vec![]);
    assert_eq!(
        handover.record,
        RaceRecord::new(g, "Bolgs", handover.record.user_id),
        "the race afresh for its new player"
    );
    // Once handed over, the old player's writes no longer reach the race.
    assert_err!(
        store
            .mark_ready(g, "Bolgs", old, ReadyMark::Set(2, at(10)))
            .await,
        StoreError::Conflict { .. },
        "ready by the replaced player"
    );
    assert_err!(
        store.book_vacation(g, "Bolgs", old, 2, 1, 3).await,
        StoreError::Conflict { .. },
        "vacation by the replaced player"
    );
    let bolgs = store
        .list_races(g)
        .await
        .must("list")
        .into_iter()
        .find(|r| r.race == "Bolgs")
        .must_some();
    assert_eq!(bolgs, handover.record, "the stored race afresh");
    store
        .mark_ready(
            g,
            "Bolgs",
            handover.record.user_id,
            ReadyMark::Set(2, at(10)),
        )
        .await
        .must("ready by the new player");
    store
        .mark_ready(g, "Bolgs", handover.record.user_id, ReadyMark::Clear(2))
        .await
        .must("unready by the new player");
    let apps = store.list_seat_applications(g, "Bolgs").await.must("apps");
    let statuses: Vec<_> = apps.iter().map(|a| a.status).collect();
    assert_eq!(apps.len(), 2);
    assert!(statuses.contains(&SeatApplicationStatus::Approved));
    assert!(statuses.contains(&SeatApplicationStatus::Rejected));
    assert_eq!(store.open_seats(&[g]).await.must("none open"), vec![]);
    // Reclaim: only the seat's own player, only while open.
    store
        .tally_turn(g, 2, &["Bolgs".to_owned()], 1)
        .await
        .must("turn 2");
    store.open_seat(g, "Ayrans").await.must("open Ayrans");
    assert_err!(
        store.reclaim_seat(g, "Ayrans", x).await,
        StoreError::Conflict { .. },
        "reclaim by another"
    );
    let az = application(g, "Ayrans", user(), 9);
    apply(&*store, &az).await.must("z applies");
    let back = store
        .reclaim_seat(g, "Ayrans", users[0])
        .await
        .must("reclaim");
    assert!(!back.seat_open && !back.idle);
    assert_err!(
        store.approve_seat_application(g, "Ayrans", az.id).await,
        StoreError::Conflict { .. },
        "approving after the reclaim"
    );
    assert_err!(
        store
            .approve_seat_application(g, "Ayrans", SeatApplicationId::from_uuid(new_uuid()))
            .await,
        StoreError::NotFound { .. },
        "approving an unknown application"
    );
}

async fn preferences<S: PbemStore>(store: &S) {
    let (g, u) = (game(), user());
    assert_eq!(
        store.preferences(g, u).await.must("default"),
        GamePreferences::default()
    );
    let off = GamePreferences {
        reminders: false,
        message_mail: true,
    };
    store.set_preferences(g, u, off).await.must("set");
    store.set_preferences(g, u, off).await.must("set again");
    assert_eq!(store.preferences(g, u).await.must("read"), off);
    assert_eq!(
        store.preferences(game(), u).await.must("other game"),
        GamePreferences::default()
    );
}

fn message(g: GameId, from: (&str, UserId), to: &[&str], secs_: i64) -> RaceMessage {
    RaceMessage {
        id: MessageId::from_uuid(new_uuid()),
        game_id: g,
        turn: 1,
        sender_user: from.1,
        sender_race: from.0.to_owned(),
        to_all: false,
        recipients: to.iter().map(|s| (*s).to_owned()).collect(),
        text: format!("hello at {secs_}"),
        sent_at: at(secs_),
    }
}

async fn messages<S: PbemStore + 'static>(store: Arc<S>) {
    let g = game();
    let users = seated(&*store, g, 3).await;
    let generous = RateLimit {
        max: 100,
        window: secs(3600),
    };
    let a_to_b = message(g, ("Ayrans", users[0]), &["Bolgs"], 10);
    let b_to_all = message(g, ("Bolgs", users[1]), &["Ayrans", "Cyrox"], 20);
    let c_to_b = message(g, ("Cyrox", users[2]), &["Bolgs"], 30);
    for m in [&a_to_b, &b_to_all, &c_to_b] {
        assert_eq!(store.post_message(m, generous).await.must("post"), None);
    }
    let first = PageRequest::first(10).must("page");
    let ids = |page: Vec<RaceMessage>| page.into_iter().map(|m| m.id).collect::<Vec<_>>();
    // Every notice is owed until said raised, oldest first.
    let owed = |store: Arc<S>| async move {
        let all = store.owed_message_notices(1000).await.must("owed");
        all.into_iter()
            .filter(|m| m.game_id == g)
            .map(|m| m.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        owed(Arc::clone(&store)).await,
        vec![a_to_b.id, b_to_all.id, c_to_b.id]
    );
    store.message_noticed(b_to_all.id).await.must("noticed");
    assert_eq!(owed(Arc::clone(&store)).await, vec![a_to_b.id, c_to_b.id]);
    let first_only = store.owed_message_notices(1).await.must("owed");
    assert_eq!(first_only.len(), 1, "at most the limit");
    assert_err!(
        store
            .message_noticed(MessageId::from_uuid(new_uuid()))
            .await,
        StoreError::NotFound { .. },
        "notice of an unknown message"
    );
    let of_a = store.list_messages(g, "Ayrans", &first).await.must("a");
    assert_eq!(
        ids(of_a.items),
        vec![b_to_all.id, a_to_b.id],
        "newest first, own only"
    );
    let of_c = store.list_messages(g, "Cyrox", &first).await.must("c");
    assert_eq!(ids(of_c.items), vec![c_to_b.id, b_to_all.id]);
    // Paging.
    let one = PageRequest::first(1).must("page");
    let p1 = store.list_messages(g, "Bolgs", &one).await.must("p1");
    let after = p1.next_after.clone().must_some();
    let p2 = store
        .list_messages(g, "Bolgs", &PageRequest::after(2, after).must("page 2"))
        .await
        .must("p2");
    assert_eq!(ids(p1.items), vec![c_to_b.id]);
    assert_eq!(ids(p2.items), vec![b_to_all.id, a_to_b.id]);
    assert_eq!(p2.next_after, None);
    // A race speaks only for its own player (a seat handed over since the check).
    assert_err!(
        store
            .post_message(&message(g, ("Bolgs", users[0]), &["Ayrans"], 40), generous)
            .await,
        StoreError::Conflict { .. },
        "a message under another player's race"
    );
    // The rate limit: 16 concurrent senders, room for 5 in the window.
    let tight = RateLimit {
        max: 5,
        window: secs(3600),
    };
    let results = race(16, |i| {
        let store = Arc::clone(&store);
        let m = message(g, ("Dwims", users[0]), &["Ayrans"], 100 + i as i64);
        async move { store.post_message(&m, tight).await }
    })
    .await;
    // Dwims has no race record: every post is NotFound, nothing stored.
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(StoreError::NotFound { .. })))
    );
    let results = race(16, |_| {
        let store = Arc::clone(&store);
        let m = message(g, ("Cyrox", users[2]), &["Ayrans"], 100);
        async move { store.post_message(&m, tight).await }
    })
    .await;
    let stored = results.iter().filter(|r| matches!(r, Ok(None))).count();
    // Cyrox sent one at 30 already: four more fit.
    assert_eq!(stored, 4, "{results:?}");
    assert!(results.iter().all(|r| r.is_ok()));
    let later = message(g, ("Cyrox", users[2]), &["Ayrans"], 3631);
    assert_eq!(
        store
            .post_message(&later, tight)
            .await
            .must("after the first left"),
        None
    );
}

trait MustSome<T> {
    fn must_some(self) -> T;
}

impl<T> MustSome<T> for Option<T> {
    #[track_caller]
    fn must_some(self) -> T {
        match self {
            Some(value) => value,
            None => panic!("expected a value"),
        }
    }
}
