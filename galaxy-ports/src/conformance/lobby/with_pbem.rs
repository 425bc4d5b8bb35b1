//! What reads across the lobby and the play-by-email record. The active-games
//! entitlement: a user is active in a game through a live application for a race they
//! still play, a race taken over, or a pending seat application, and both kinds of
//! application are refused at the limit, even when raced against each other. A user's
//! games: those they play in (a race taken over too, not one handed over) and host.

use std::sync::Arc;

use galaxy_core::domain::application::Application;
use galaxy_core::domain::game::{GameStatus, Visibility};
use galaxy_core::domain::page::PageRequest;
use galaxy_core::domain::pbem::{SeatApplication, SeatApplicationStatus};
use galaxy_core::domain::race_name::RaceName;
use galaxy_core::domain::{ApplicationId, GameId, SeatApplicationId, UserId};
use galaxy_core::ports::{
    ApplicationInsert, ApplicationStore, ApprovalOutcome, GameStore, PbemStore,
    SeatApplicationInsert, StoreError, UserGame, UserGamesFilter,
};

use super::{FINISHED, InsertFixture, OPEN, advance, at, game, insert_along, new_user, new_uuid};
use crate::conformance::users::fixtures::{Must, assert_err, race};

/// Open -> closed -> starting -> running.
const TO_RUNNING: std::ops::Range<usize> = 1..4;

/// The stores of one case: the lobby's and the play-by-email record's, over one database
/// (or one shared state).
pub(super) struct Pair<L, P> {
    lobby: L,
    pbem: P,
}

impl<L, P> Pair<L, P>
where
    L: GameStore + ApplicationStore,
    P: PbemStore,
{
    pub(super) fn new(lobby: L, pbem: P) -> Self {
        Self { lobby, pbem }
    }

    async fn count(&self, user: UserId) -> u32 {
        self.lobby.count_active_games(user).await.must("count")
    }

    /// A game whose `players` applied under their race names and were approved, now
    /// running, with the race records made from those applications (as the runtime
    /// makes them at the start).
    async fn running(&self, created: i64, players: &[(UserId, &str)]) -> GameId {
        let g = game(new_user(), created, 8, Visibility::Public);
        let g = insert_along(&self.lobby, &g, OPEN).await.id;
        for (i, (user, race)) in (0..).zip(players) {
            let a = applied_as(g, *user, race, created + i);
            self.lobby.insert_fixture(&a).await.must("apply");
            let outcome = self.lobby.approve_application(a.id, at(created + i)).await;
            assert!(
                matches!(outcome, Ok(ApprovalOutcome::Approved { .. })),
                "{outcome:?}"
            );
        }
        let path = &FINISHED[TO_RUNNING];
        advance(
            &self.lobby,
            g,
            GameStatus::EnrollmentOpen,
            path,
            created + 10,
        )
        .await;
        let seats: Vec<(String, UserId)> = players
            .iter()
            .map(|(user, race)| ((*race).to_owned(), *user))
            .collect();
        self.pbem.ensure_races(g, &seats).await.must("ensure races");
        g
    }

    /// A running game of two strangers whose second race went idle and had its seat
    /// opened: returns the game, the open race and its (old) player.
    async fn open_seat(&self, created: i64) -> (GameId, &'static str, UserId) {
        let old = new_user();
        let g = self
            .running(created, &[(new_user(), "Ayrans"), (old, "Bolgs")])
            .await;
        let ready = ["Ayrans".to_owned()];
        self.pbem.tally_turn(g, 1, &ready, 1).await.must("tally");
        self.pbem.open_seat(g, "Bolgs").await.must("open seat");
        (g, "Bolgs", old)
    }
}

/// A pending application of `user` to `game_id` under race name `race`.
fn applied_as(game_id: GameId, user: UserId, race: &str, created: i64) -> Application {
    let race = RaceName::parse(race).must("race name");
    let id = ApplicationId::from_uuid(new_uuid());
    Application::new(id, game_id, user, race, at(created))
}

/// A pending application of `user` for the open seat of `race`.
fn seat_application(game_id: GameId, race: &str, user: UserId, created: i64) -> SeatApplication {
    SeatApplication {
        id: SeatApplicationId::from_uuid(new_uuid()),
        game_id,
        race: race.to_owned(),
        user_id: user,
        status: SeatApplicationStatus::Pending,
        created_at: at(created),
    }
}

/// Applications to games and to seats count together; a handover moves the game from
/// the old player's count to the new one's; an ended game counts for nobody.
pub(super) async fn seats_and_games_count_together<L, P>(stores: Pair<L, P>)
where
    L: GameStore + ApplicationStore,
    P: PbemStore,
{
    let u = new_user();
    // A pending application to a game open for enrollment (no race record anywhere).
    let g1 = game(new_user(), 0, 8, Visibility::Public);
    let g1 = insert_along(&stores.lobby, &g1, OPEN).await.id;
    let pending = applied_as(g1, u, "Zorg", 1);
    stores.lobby.insert_fixture(&pending).await.must("apply");
    let (g2, race2, old) = stores.open_seat(100).await;
    assert_eq!((stores.count(u).await, stores.count(old).await), (1, 1));

    let at_limit = seat_application(g2, race2, u, 200);
    let refused = stores.pbem.apply_for_seat(&at_limit, 1).await.must("apply");
    assert_eq!(
        refused,
        SeatApplicationInsert::TooManyActiveGames { live: 1 },
        "a pending application to a game counts for a seat"
    );
    let listed = stores.pbem.list_seat_applications(g2, race2).await;
    assert_eq!(listed.must("list"), vec![], "nothing stored");
    let applied = seat_application(g2, race2, u, 201);
    let inserted = stores.pbem.apply_for_seat(&applied, 2).await.must("apply");
    assert_eq!(inserted, SeatApplicationInsert::Inserted);
    assert_eq!(
        stores.count(u).await,
        2,
        "a pending seat application counts"
    );

    let g3 = game(new_user(), 300, 8, Visibility::Public);
    let g3 = insert_along(&stores.lobby, &g3, OPEN).await.id;
    let refused = stores
        .lobby
        .insert_application(&applied_as(g3, u, "Zorg", 301), 2)
        .await
        .must("apply to a game");
    assert_eq!(
        refused,
        ApplicationInsert::TooManyActiveGames { live: 2 },
        "a pending seat application counts for a game"
    );

    stores
        .pbem
        .approve_seat_application(g2, race2, applied.id)
        .await
        .must("approve");
    assert_eq!(stores.count(u).await, 2, "the seat taken over counts");
    assert_eq!(
        stores.count(old).await,
        0,
        "an application for a race handed over does not"
    );
    let back = stores
        .lobby
        .insert_application(&applied_as(g3, old, "Bolgs", 302), 1)
        .await
        .must("the old player applies elsewhere");
    assert_eq!(back, ApplicationInsert::Inserted);
    assert_eq!(stores.count(old).await, 1);

    let path = &FINISHED[TO_RUNNING.end..];
    advance(&stores.lobby, g2, GameStatus::Running, path, 400).await;
    assert_eq!(
        stores.count(u).await,
        1,
        "a finished game counts for nobody"
    );
}

/// One user at one game short of the limit applies to eight games and eight open seats
/// at once: exactly one application lands.
pub(super) async fn seats_and_games_raced<L, P>(stores: Arc<Pair<L, P>>)
where
    L: GameStore + ApplicationStore + 'static,
    P: PbemStore + 'static,
{
    let u = new_user();
    stores
        .running(0, &[(u, "Zorg"), (new_user(), "Xeno")])
        .await;
    let mut games = Vec::new();
    let mut seats = Vec::new();
    for i in 0..8 {
        let g = game(new_user(), 100 + i, 8, Visibility::Public);
        games.push(insert_along(&stores.lobby, &g, OPEN).await.id);
        seats.push(stores.open_seat(200 + 100 * i).await);
    }
    let results = race(16, |i| {
        let stores = Arc::clone(&stores);
        let (game, seat) = (games[i % 8], seats[i % 8]);
        async move {
            if i < 8 {
                let a = applied_as(game, u, "Zorg", 2000);
                match stores.lobby.insert_application(&a, 2).await {
                    Ok(ApplicationInsert::Inserted) => Ok(true),
                    Ok(ApplicationInsert::TooManyActiveGames { live: 2 }) => Ok(false),
                    other => Err(format!("{other:?}")),
                }
            } else {
                let a = seat_application(seat.0, seat.1, u, 2000);
                match stores.pbem.apply_for_seat(&a, 2).await {
                    Ok(SeatApplicationInsert::Inserted) => Ok(true),
                    Ok(SeatApplicationInsert::TooManyActiveGames { live: 2 }) => Ok(false),
                    other => Err(format!("{other:?}")),
                }
            }
        }
    })
    .await;
    let landed = results.iter().filter(|r| matches!(r, Ok(true))).count();
    let refused = results.iter().filter(|r| matches!(r, Ok(false))).count();
    assert_eq!((landed, refused), (1, 15), "{results:?}");
    assert_eq!(stores.count(u).await, 2);
}

/// Every page of `user`'s games under `filter`, walked two at a time, as (game, race).
async fn walk<L: ApplicationStore>(
    lobby: &L,
    user: UserId,
    filter: UserGamesFilter,
) -> Vec<(GameId, Option<String>)> {
    let mut all = Vec::new();
    let mut page = PageRequest::first(2).must("page");
    loop {
        let got = lobby.list_user_games(user, filter, &page).await;
        let got = got.must("list_user_games");
        assert!(got.items.len() <= 2);
        all.extend(
            got.items
                .into_iter()
                .map(|UserGame { game, race }| (game.id, race)),
        );
        match got.next_after {
            Some(after) => page = PageRequest::after(2, after).must("next page"),
            None => return all,
        }
    }
}

/// A user's games: an approved application before the start (its race name), a race
/// record (its race), a race taken over, a hosted game; not a pending application, not
/// a race handed over, not another user's game. Newest first, a page at a time, each
/// once; the filters by role and by end.
pub(super) async fn user_games<L, P>(stores: Pair<L, P>)
where
    L: GameStore + ApplicationStore,
    P: PbemStore,
{
    let u = new_user();
    let other = new_user();
    let mine = |ids: &[(GameId, Option<&str>)]| -> Vec<(GameId, Option<String>)> {
        ids.iter()
            .map(|(g, r)| (*g, r.map(str::to_owned)))
            .collect()
    };
    // Oldest first: a hosted draft, an approved application of a closed game, a running
    // game, a race taken over, a race handed over, a pending application, a finished
    // game, another user's game.
    let hosted = game(u, 0, 8, Visibility::Public);
    let hosted = insert_along(&stores.lobby, &hosted, &[]).await.id;
    let closed = game(new_user(), 100, 8, Visibility::Public);
    let closed = insert_along(&stores.lobby, &closed, OPEN).await.id;
    let applied = applied_as(closed, u, "Zorg", 101);
    stores.lobby.insert_fixture(&applied).await.must("apply");
    let outcome = stores.lobby.approve_application(applied.id, at(102)).await;
    assert!(matches!(outcome, Ok(ApprovalOutcome::Approved { .. })));
    let path = &FINISHED[1..2];
    advance(&stores.lobby, closed, GameStatus::EnrollmentOpen, path, 103).await;
    let running = stores
        .running(200, &[(u, "Yrrk"), (new_user(), "Xeno")])
        .await;
    let (taken, race, _) = stores.open_seat(300).await;
    let seat = seat_application(taken, race, u, 350);
    let applied = stores.pbem.apply_for_seat(&seat, 100).await;
    assert_eq!(applied.must("apply"), SeatApplicationInsert::Inserted);
    stores
        .pbem
        .approve_seat_application(taken, race, seat.id)
        .await
        .must("approve");
    let handed = stores
        .running(500, &[(u, "Wisp"), (new_user(), "Vorn")])
        .await;
    stores
        .pbem
        .tally_turn(handed, 1, &["Vorn".to_owned()], 1)
        .await
        .must("tally");
    stores.pbem.open_seat(handed, "Wisp").await.must("open");
    let taker = seat_application(handed, "Wisp", other, 550);
    let applied = stores.pbem.apply_for_seat(&taker, 100).await;
    assert_eq!(applied.must("apply"), SeatApplicationInsert::Inserted);
    stores
        .pbem
        .approve_seat_application(handed, "Wisp", taker.id)
        .await
        .must("hand over");
    let pending = game(new_user(), 600, 8, Visibility::Public);
    let pending = insert_along(&stores.lobby, &pending, OPEN).await.id;
    let waiting = applied_as(pending, u, "Umber", 601);
    stores.lobby.insert_fixture(&waiting).await.must("apply");
    let finished = stores
        .running(700, &[(u, "Tarn"), (new_user(), "Sorl")])
        .await;
    let path = &FINISHED[TO_RUNNING.end..];
    advance(&stores.lobby, finished, GameStatus::Running, path, 720).await;
    stores
        .running(800, &[(other, "Rho"), (new_user(), "Quill")])
        .await;

    let every = UserGamesFilter {
        plays: true,
        hosts: true,
        ended: None,
    };
    assert_eq!(
        walk(&stores.lobby, u, every).await,
        mine(&[
            (finished, Some("Tarn")),
            (taken, Some(race)),
            (running, Some("Yrrk")),
            (closed, Some("Zorg")),
            (hosted, None),
        ]),
        "newest first; not a pending application, not a race handed over"
    );
    let plays = UserGamesFilter {
        hosts: false,
        ..every
    };
    let going = UserGamesFilter {
        ended: Some(false),
        ..plays
    };
    assert_eq!(
        walk(&stores.lobby, u, going).await,
        mine(&[
            (taken, Some(race)),
            (running, Some("Yrrk")),
            (closed, Some("Zorg")),
        ])
    );
    let ended = UserGamesFilter {
        ended: Some(true),
        ..every
    };
    assert_eq!(
        walk(&stores.lobby, u, ended).await,
        mine(&[(finished, Some("Tarn"))])
    );
    let hosts = UserGamesFilter {
        plays: false,
        ..every
    };
    assert_eq!(walk(&stores.lobby, u, hosts).await, mine(&[(hosted, None)]));
    assert_eq!(
        walk(&stores.lobby, other, plays).await.len(),
        2,
        "the taker of a seat plays it"
    );
    let garbage = PageRequest::after(2, "not a cursor".to_owned()).must("page");
    assert_err!(
        stores.lobby.list_user_games(u, every, &garbage).await,
        StoreError::InvalidCursor(_),
        "a cursor that is not one"
    );
}
