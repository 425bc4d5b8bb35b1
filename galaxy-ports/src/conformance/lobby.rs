//! Conformance suite for [`GameStore`] and [`ApplicationStore`], which share the game
//! rows (an approval changes an application and its game atomically).
//!
//! Run it against a store that implements both:
//! `galaxy_ports::conformance::lobby::run_all(|| async { MyStore::new().await }).await`.
//! The concurrency cases spawn tokio tasks, so call it from a multi-thread runtime to
//! exercise real parallelism.

mod applications;
mod concurrency;
mod games;
mod with_pbem;

use std::future::Future;
use std::sync::Arc;

use galaxy_core::domain::application::Application;
use galaxy_core::domain::game::{
    EngineName, Game, GameName, GameSettings, GameStatus, GameTrigger, Visibility,
};
use galaxy_core::domain::race_name::RaceName;
use galaxy_core::domain::schedule::TurnSchedule;
use galaxy_core::domain::{ApplicationId, GameId, UserId};
use galaxy_core::ports::{
    ApplicationInsert, ApplicationStore, GameStatusChange, GameStore, PbemStore, RaceNameStore,
    StoreError,
};

use super::users::fixtures::{Must, at, new_uuid};

const SUITE: &str = "lobby";

/// Runs every game and application case, each on a fresh store from `make`.
pub async fn run_all<S, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: GameStore + ApplicationStore + RaceNameStore + 'static + Send + Sync,
{
    games::run(SUITE, &make).await;
    applications::run(SUITE, &make).await;
    concurrency::run(SUITE, &make).await;
}

/// Runs the cases that read across the lobby and the play-by-email record (the
/// active-games entitlement, a user's games), each on a fresh pair of stores from
/// `make`: a store of games
/// and applications and a [`PbemStore`] over the same data (the same Postgres database;
/// for the in-memory stores, a [`MemoryPbemStore`](crate::memory::MemoryPbemStore) built
/// [`beside`](crate::memory::MemoryPbemStore::beside) the lobby store).
pub async fn run_with_pbem<L, P, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = (L, P)>,
    L: GameStore + ApplicationStore + 'static + Send + Sync,
    P: PbemStore + 'static + Send + Sync,
{
    let pair = || async {
        let (lobby, pbem) = make().await;
        with_pbem::Pair::new(lobby, pbem)
    };
    super::run_case(
        SUITE,
        "applications to games and to seats count together",
        &pair,
        with_pbem::seats_and_games_count_together,
    )
    .await;
    super::run_case(
        SUITE,
        "applications to games and to seats raced at the limit",
        &pair,
        |stores| with_pbem::seats_and_games_raced(Arc::new(stores)),
    )
    .await;
    super::run_case(
        SUITE,
        "a user's games: played, taken over, hosted, a page at a time",
        &pair,
        with_pbem::user_games,
    )
    .await;
}

/// A draft game of `host`, created at fixture second `created`, for 2..=`max_players`,
/// whose enrollment deadline is a day after its creation.
fn game(host: UserId, created: i64, max_players: u32, visibility: Visibility) -> Game {
    let settings = GameSettings {
        name: GameName::parse("Conformance Cup").must("game name"),
        min_players: 2,
        max_players,
        enrollment_deadline: at(created + 86_400),
        schedule: TurnSchedule::parse("0 18 * * 1,3,5").must("schedule"),
        engine: EngineName::reference(),
        auto_approve: false,
        visibility,
        engine_settings: galaxy_core::domain::game::EngineSettings::parse(
            serde_json::json!({"galaxy_size": 3, "options": ["fast"]}),
        )
        .unwrap_or_default(),
        reveal_reports_after_finish: false,
        pbem: Default::default(),
    };
    Game::new(GameId::from_uuid(new_uuid()), host, settings, at(created))
}

fn new_user() -> UserId {
    UserId::from_uuid(new_uuid())
}

/// A status change without actor or reason.
fn change(to: GameStatus, trigger: GameTrigger, secs: i64) -> GameStatusChange {
    GameStatusChange {
        to,
        trigger,
        actor: None,
        reason: None,
        at: at(secs),
        expected_approved: None,
    }
}

/// Draft -> enrollment open.
const OPEN: &[(GameStatus, GameTrigger)] = &[(GameStatus::EnrollmentOpen, GameTrigger::Host)];
/// Draft -> enrollment open -> enrollment closed.
const CLOSED: &[(GameStatus, GameTrigger)] = &[
    (GameStatus::EnrollmentOpen, GameTrigger::Host),
    (GameStatus::EnrollmentClosed, GameTrigger::Host),
];
/// Draft -> cancelled.
const CANCELLED: &[(GameStatus, GameTrigger)] = &[(GameStatus::Cancelled, GameTrigger::Host)];
/// Draft all the way to finished.
const FINISHED: &[(GameStatus, GameTrigger)] = &[
    (GameStatus::EnrollmentOpen, GameTrigger::Host),
    (GameStatus::EnrollmentClosed, GameTrigger::Host),
    (GameStatus::Starting, GameTrigger::System),
    (GameStatus::Running, GameTrigger::RuntimeEvent),
    (GameStatus::Finished, GameTrigger::Engine),
];

/// Inserts a draft `game` and walks it along `path` (one second apart, after its
/// creation); returns the game as stored.
async fn insert_along<S: GameStore>(
    store: &S,
    game: &Game,
    path: &[(GameStatus, GameTrigger)],
) -> Game {
    store.insert_game(game).await.must("insert_game");
    let created = game.created_at.timestamp() - at(0).timestamp();
    advance(store, game.id, game.status, path, created + 1).await
}

/// Walks a stored game from status `from` along `path`, one step per second starting
/// at fixture second `start`; returns the game as stored.
async fn advance<S: GameStore>(
    store: &S,
    id: GameId,
    mut from: GameStatus,
    path: &[(GameStatus, GameTrigger)],
    start: i64,
) -> Game {
    for (secs, &(to, trigger)) in (start..).zip(path) {
        store
            .update_game_status(id, from, &change(to, trigger, secs))
            .await
            .must("update_game_status along a fixture path");
        from = to;
    }
    store.get_game(id).await.must("get_game")
}

/// Inserts of fixtures, which no active-games limit may refuse: a refusal fails the case.
trait InsertFixture: ApplicationStore {
    /// Stores `application` with no active-games limit in the way.
    async fn insert_fixture(&self, application: &Application) -> Result<(), StoreError> {
        match self.insert_application(application, u32::MAX).await? {
            ApplicationInsert::Inserted => Ok(()),
            refused => panic!("no limit applies, yet refused: {refused:?}"),
        }
    }
}

impl<S: ApplicationStore> InsertFixture for S {}

/// A pending application of `user` to `game_id` made at fixture second `created`.
fn application(game_id: GameId, user: UserId, created: i64) -> Application {
    let race = RaceName::parse("Zorg").must("race name");
    let id = ApplicationId::from_uuid(new_uuid());
    Application::new(id, game_id, user, race, at(created))
}
