//! The world every `runtime_*` test builds (included with `#[path]`): the lobby and the
//! runtime services and workers wired over in-memory stores and the fakes of
//! `runtime_harness.rs`, plus helpers that bring games to a given status.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

#[path = "runtime_support/faults.rs"]
mod faults;
#[path = "runtime_harness.rs"]
mod harness;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{TimeDelta, TimeZone, Utc};
pub use faults::*;
use galaxy_core::domain::game::{EngineName, Game, GameStatus, Visibility};
use galaxy_core::domain::health::HealthEvent;
use galaxy_core::domain::page::PageRequest;
use galaxy_core::domain::runtime::{RuntimeJob, RuntimeRecord};
use galaxy_core::domain::user::{Email, Role, User};
use galaxy_core::domain::{GameId, Timestamp, UserId};
use galaxy_core::ports::*;
use galaxy_core::service::Actor;
use galaxy_core::service::lobby::{LobbyConfig, LobbyPorts, LobbyService, NewGame};
use galaxy_core::service::runtime::*;
use galaxy_core::worker::Worker;
use galaxy_ports::memory::{
    MemoryLobbyStore, MemoryPlayStore, MemoryRuntimeStore, MemoryUserStore,
};
use galaxy_ports::system::{ManualClock, SeededSecretGenerator};
pub use harness::*;

/// Test settings: tiny poll intervals, threshold 3, a 5 s last-resort engine timeout.
pub fn test_config() -> RuntimeConfig {
    RuntimeConfig {
        healthz_deadline: Duration::from_millis(20),
        healthz_poll_interval: Duration::from_millis(1),
        engine_call_timeout: Duration::from_secs(5),
        probe_timeout: Duration::from_secs(1),
        events_backoff_min: Duration::from_millis(10),
        events_backoff_max: Duration::from_millis(40),
        report_retry_delay: Duration::from_millis(1),
        ..RuntimeConfig::default()
    }
}

/// Turns run daily at 18:00 UTC; the clock starts at 2030-01-01 00:00 UTC.
pub const SCHEDULE: &str = "0 18 * * *";

/// 18:00 UTC on 2030-01-`day`.
pub fn evening(day: u32) -> Timestamp {
    Utc.with_ymd_and_hms(2030, 1, day, 18, 0, 0).unwrap()
}

/// The lobby and the runtime, wired over in-memory stores and the fakes.
pub struct World {
    /// The real lobby (it creates, enrolls and starts games).
    pub lobby: LobbyService,
    /// The runtime service under test.
    pub service: RuntimeService,
    /// The job pool.
    pub jobs: StartWorker,
    /// The turn scheduler.
    pub scheduler: TurnScheduler,
    /// The reconciler.
    pub reconciler: Reconciler,
    /// The `/healthz` probe.
    pub probe: HealthProbe,
    /// The inspect pass.
    pub inspect: InspectWorker,
    /// The events listener.
    pub events: EventsListener,
    /// The ports every runtime part was built with.
    pub ports: RuntimePorts,
    /// The configuration every runtime part was built with.
    pub config: RuntimeConfig,
    /// Games, applications and race names.
    pub store: Arc<MemoryLobbyStore>,
    /// Users.
    pub users: Arc<MemoryUserStore>,
    /// Records, jobs and health events, unwrapped.
    pub runtime: Arc<MemoryRuntimeStore>,
    /// The record store the runtime uses.
    pub records: Arc<FlakyRecords>,
    /// The turn archive (failures injectable) over the play store.
    pub archive: Arc<FlakyArchive>,
    /// Turns, reports and orders, unwrapped.
    pub play: Arc<MemoryPlayStore>,
    /// The play-by-email record, unwrapped.
    pub pbem: Arc<galaxy_ports::memory::MemoryPbemStore>,
    /// The time.
    pub clock: Arc<ManualClock>,
    /// Ids.
    pub ids: Arc<SeededSecretGenerator>,
    /// The container runtime.
    pub containers: Arc<FakeContainers>,
    /// The engines.
    pub engine: Arc<FakeEngine>,
    /// Every notification raised.
    pub notes: Arc<Notes>,
    /// Every call, in order.
    pub journal: Arc<Journal>,
    /// Faults injected into the runtime's writes (stores and notifier).
    pub faults: Arc<Faults>,
    /// The game store the runtime uses (concurrent status changes can cut in).
    pub games: Arc<JournalGames>,
    /// An admin.
    pub admin: Actor,
    /// Counts the race names handed out, so every game's races differ.
    races: AtomicUsize,
}

/// A game's players: who they are and the race each plays.
pub struct Seats(pub Vec<(Actor, String)>);

impl World {
    /// A world with [`test_config`].
    pub async fn new() -> Self {
        Self::with(test_config()).await
    }

    /// A world with `config`.
    pub async fn with(config: RuntimeConfig) -> Self {
        Self::build(config, None).await
    }

    /// A world whose lobby accepts `lobby_engines` (default: the runtime's registry).
    pub async fn build(config: RuntimeConfig, lobby_engines: Option<BTreeSet<EngineName>>) -> Self {
        let journal = Arc::new(Journal::default());
        let faults = Arc::new(Faults::default());
        let store = Arc::new(MemoryLobbyStore::new());
        let users = Arc::new(MemoryUserStore::new());
        let runtime = Arc::new(MemoryRuntimeStore::default());
        let records = Arc::new(FlakyRecords::new(runtime.clone(), faults.clone()));
        let jobs = Arc::new(FaultyJobs {
            inner: runtime.clone(),
            faults: faults.clone(),
        });
        let play = Arc::new(MemoryPlayStore::default());
        let archive = Arc::new(FlakyArchive {
            inner: play.clone(),
            failures: AtomicUsize::new(0),
            faults: faults.clone(),
            after_archive: Default::default(),
        });
        let games = Arc::new(JournalGames::new(
            store.clone(),
            journal.clone(),
            faults.clone(),
        ));
        let clock = Arc::new(ManualClock::at_fixed_start());
        let ids = Arc::new(SeededSecretGenerator::new(11));
        let notes = Arc::new(Notes::with_faults(faults.clone()));
        let containers = Arc::new(FakeContainers::new(journal.clone()));
        let engine = Arc::new(FakeEngine::new(journal.clone(), containers.credentials()));
        let lobby = LobbyService::new(
            LobbyPorts {
                games: games.clone(),
                applications: store.clone(),
                race_names: store.clone(),
                users: users.clone(),
                jobs: jobs.clone(),
                notifier: notes.clone(),
                clock: clock.clone(),
                ids: ids.clone(),
            },
            LobbyConfig {
                engines: lobby_engines.unwrap_or_else(|| config.engines.names()),
                ..LobbyConfig::default()
            },
        );
        let pbem = Arc::new(galaxy_ports::memory::MemoryPbemStore::beside(&store));
        let ports = RuntimePorts {
            games: games.clone(),
            applications: store.clone(),
            users: users.clone(),
            records: records.clone(),
            jobs,
            health: runtime.clone(),
            archive: archive.clone(),
            orders: play.clone(),
            pbem: pbem.clone(),
            containers: containers.clone(),
            engine: engine.clone(),
            notifier: notes.clone(),
            clock: clock.clone(),
            ids: ids.clone(),
            inbound: None,
        };
        let mut world = World {
            lobby,
            service: RuntimeService::new(ports.clone(), config.clone()),
            jobs: StartWorker::new(ports.clone(), config.clone()),
            scheduler: TurnScheduler::new(ports.clone(), config.clone()),
            reconciler: Reconciler::new(ports.clone(), config.clone()),
            probe: HealthProbe::new(ports.clone(), config.clone()).unwrap(),
            inspect: InspectWorker::new(ports.clone(), config.clone()),
            events: EventsListener::new(ports.clone(), config.clone()),
            ports,
            config,
            store,
            users,
            runtime,
            records,
            archive,
            play,
            pbem,
            clock,
            ids,
            containers,
            engine,
            notes,
            journal,
            faults,
            games,
            admin: Actor {
                user_id: UserId::from_uuid(uuid::Uuid::nil()),
                is_admin: true,
            },
            races: AtomicUsize::new(1),
        };
        world.admin = world.user_with(|u| u.grant(Role::Admin)).await;
        world
    }

    /// A new user, edited before it is stored.
    pub async fn user_with(&self, edit: impl FnOnce(&mut User)) -> Actor {
        let id = UserId::from_uuid(self.ids.uuid());
        let email = Email::parse(&format!("u{}@example.org", id.as_uuid().simple())).unwrap();
        let mut user = User::new(id, email, self.clock.now());
        edit(&mut user);
        self.users.insert_user(&user).await.unwrap();
        Actor::of(&user)
    }

    /// A new player.
    pub async fn user(&self) -> Actor {
        self.user_with(|_| {}).await
    }

    /// A game whose enrollment closed with `players` approved players (races `Race 1`,
    /// `Race 2`, ...), hosted by a fresh user who does not play.
    pub async fn closed_game(&self, players: usize) -> (Game, Seats) {
        self.closed_game_on(None, players).await
    }

    /// [`World::closed_game`] on a named engine.
    pub async fn closed_game_on(&self, engine: Option<&str>, players: usize) -> (Game, Seats) {
        self.closed_game_with(players, |new| new.engine = engine.map(str::to_owned))
            .await
    }

    /// [`World::closed_game`] with the creation request edited first.
    pub async fn closed_game_with(
        &self,
        players: usize,
        edit: impl FnOnce(&mut NewGame),
    ) -> (Game, Seats) {
        let host = self.user().await;
        let mut new = self.new_game("Andromeda Cup");
        edit(&mut new);
        let game = self.lobby.create_game(host, new).await.unwrap();
        self.lobby.open(host, game.id).await.unwrap();
        let mut seats = Vec::new();
        for _ in 0..players {
            let player = self.user().await;
            let race = format!("Race {}", self.races.fetch_add(1, Ordering::SeqCst));
            let app = self.lobby.apply(player, game.id, &race).await.unwrap();
            self.lobby.approve(host, game.id, app.id).await.unwrap();
            seats.push((player, race));
        }
        let game = self.lobby.close(host, game.id).await.unwrap();
        (game, Seats(seats))
    }

    /// A game the lobby just started: `starting`, its start job queued.
    pub async fn starting_game(&self, players: usize) -> (Game, Seats) {
        let (game, seats) = self.closed_game(players).await;
        let game = self.lobby.start(self.admin, game.id).await.unwrap();
        (game, seats)
    }

    /// A running game (its start job ran).
    pub async fn running_game(&self, players: usize) -> (Game, Seats) {
        self.running_game_with(players, |_| {}).await
    }

    /// A running game made from `edit`ed settings (its start job ran).
    pub async fn running_game_with(
        &self,
        players: usize,
        edit: impl FnOnce(&mut NewGame),
    ) -> (Game, Seats) {
        let (game, seats) = self.closed_game_with(players, edit).await;
        self.lobby.start(self.admin, game.id).await.unwrap();
        self.jobs.run_until_idle(10).await.unwrap();
        let game = self.game(game.id).await;
        assert_eq!(
            game.status,
            GameStatus::Running,
            "{:?}",
            self.journal.entries()
        );
        (game, seats)
    }

    /// One pass of the job pool, run to its end: the jobs it claimed are finished (a
    /// pass alone only starts them). How many it claimed.
    pub async fn job_pass(&self) -> usize {
        self.jobs.tick_and_drain().await.unwrap().handled
    }

    /// The settings of a public game named `name` for 2 to 8 players, enrolling for
    /// three days, on the test schedule, with the defaults otherwise.
    pub fn new_game(&self, name: &str) -> NewGame {
        NewGame {
            name: name.into(),
            min_players: 2,
            max_players: 8,
            enrollment_deadline: self.clock.now() + TimeDelta::days(3),
            turn_schedule: SCHEDULE.into(),
            engine: None,
            auto_approve: false,
            visibility: Visibility::Public,
            engine_settings: serde_json::Value::Null,
            reveal_reports_after_finish: true,
            pbem: Default::default(),
        }
    }

    /// Every game of "my games" of `actor`, walking the pages.
    pub async fn all_my_games(&self, actor: Actor) -> Vec<MyGame> {
        let mut all = Vec::new();
        let mut page = PageRequest::first(2).unwrap();
        loop {
            let got = self
                .service
                .my_games(actor, MyGamesFilter::default(), &page)
                .await
                .unwrap();
            all.extend(got.items);
            match got.next_after {
                Some(after) => page = PageRequest::after(2, after).unwrap(),
                None => return all,
            }
        }
    }

    /// A game as stored.
    pub async fn game(&self, id: GameId) -> Game {
        self.store.get_game(id).await.unwrap()
    }

    /// The reason of a game's last transition.
    pub async fn reason(&self, id: GameId) -> Option<String> {
        let history = self.store.game_transitions(id).await.unwrap();
        history.last().and_then(|t| t.reason.clone())
    }

    /// A game's runtime record.
    pub async fn record(&self, id: GameId) -> RuntimeRecord {
        self.runtime.get_record(id).await.unwrap()
    }

    /// A game's jobs, oldest first.
    pub async fn job_list(&self, id: GameId) -> Vec<RuntimeJob> {
        let page = PageRequest::first(100).unwrap();
        self.runtime.list_jobs(Some(id), &page).await.unwrap().items
    }

    /// A game's health events, newest first.
    pub async fn health(&self, id: GameId) -> Vec<HealthEvent> {
        let page = PageRequest::first(100).unwrap();
        self.runtime
            .list_health_events(Some(id), &page)
            .await
            .unwrap()
            .items
    }

    /// The endpoint the fake runtime gives a game's engine.
    pub fn endpoint(&self, id: GameId) -> String {
        format!("http://{}:8080", container_name(id))
    }

    /// A game's container (it must have one).
    pub fn container(&self, id: GameId) -> ContainerInfo {
        self.containers
            .of_game(id)
            .expect("the game has a container")
    }

    /// The clock's time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// An admin's pause of a running game (its status change, not yet its unscheduling),
    /// as a hook to land inside another caller's steps.
    pub fn pause_by_another_admin(&self, id: GameId) -> futures::future::BoxFuture<'static, ()> {
        let store = self.store.clone();
        let pause = GameStatusChange {
            to: GameStatus::Paused,
            trigger: galaxy_core::domain::game::GameTrigger::Admin,
            actor: Some(self.admin.user_id),
            reason: Some("paused by an admin".into()),
            at: self.now(),
            expected_approved: None,
        };
        Box::pin(async move {
            store
                .update_game_status(id, GameStatus::Running, &pause)
                .await
                .unwrap();
        })
    }

    /// Moves the clock to `at`.
    pub fn at(&self, at: Timestamp) {
        self.clock.set(at);
    }

    /// The world's current instant.
    pub fn clock_now(&self) -> Timestamp {
        use galaxy_core::ports::Clock;
        self.clock.now()
    }
}
