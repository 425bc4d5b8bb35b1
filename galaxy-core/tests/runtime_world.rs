//! The world every `runtime_*` test builds (included with `#[path]`): the lobby and the
//! runtime services and workers wired over in-memory stores and the fakes of
//! `runtime_harness.rs`, plus helpers that bring games to a given status.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

#[path = "runtime_harness.rs"]
mod harness;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeDelta, TimeZone, Utc};
use galaxy_core::domain::game::{EngineName, Game, GameStatus, GameTransition, Visibility};
use galaxy_core::domain::health::HealthEvent;
use galaxy_core::domain::lease::ClaimRequest;
use galaxy_core::domain::notification::NotificationKind;
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::play::{PlayedTurn, TurnReport};
use galaxy_core::domain::runtime::{RuntimeBinding, RuntimeJob, RuntimeRecord, RuntimeStatus};
use galaxy_core::domain::user::{Email, Role, User};
use galaxy_core::domain::{GameId, JobId, LeaseToken, Timestamp, UserId};
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

/// A fault injector shared by the wrapped stores and the notifier: once armed, every
/// write they take is counted and the `k`-th fails, as if the database went away there.
#[derive(Default)]
pub struct Faults {
    /// Writes counted since the last [`Faults::arm`].
    writes: AtomicUsize,
    /// The write that fails (1-based); 0 never fails.
    fail_at: AtomicUsize,
    /// What each counted write was, in order (to name the step a failing case broke).
    log: Mutex<Vec<String>>,
}

impl Faults {
    /// Starts counting writes from zero; the `k`-th fails (`0`: none, only count).
    pub fn arm(&self, k: usize) {
        self.log.lock().unwrap().clear();
        self.writes.store(0, Ordering::SeqCst);
        self.fail_at.store(k, Ordering::SeqCst);
    }

    /// No write fails any more.
    pub fn disarm(&self) {
        self.fail_at.store(0, Ordering::SeqCst);
    }

    /// The writes counted since the last [`Faults::arm`], in order.
    pub fn writes(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Counts a write; fails if it is the armed one.
    fn write(&self, what: &str) -> Result<(), StoreError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        self.log.lock().unwrap().push(what.to_owned());
        if n == self.fail_at.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable(format!(
                "injected fault at write {n} ({what})"
            )));
        }
        Ok(())
    }
}

/// Remembers every notification raised; idempotent by key like the real notifier (a
/// repeat with a stored key stores nothing), and its writes can fail ([`Faults`]).
#[derive(Default)]
pub struct Notes(Mutex<Vec<NewNotification>>, Arc<Faults>);

impl Notes {
    /// Notes whose writes `faults` can fail.
    pub fn with_faults(faults: Arc<Faults>) -> Self {
        Self(Mutex::default(), faults)
    }

    /// The notifications stored under one idempotency key.
    pub fn keyed(&self, key: &str) -> Vec<NewNotification> {
        let notes = self.0.lock().unwrap();
        notes
            .iter()
            .filter(|n| n.idempotency_key == key)
            .cloned()
            .collect()
    }

    /// Every notification raised, in order.
    pub fn all(&self) -> Vec<NewNotification> {
        self.0.lock().unwrap().clone()
    }

    /// The notifications of one kind, in order.
    pub fn of(&self, kind: NotificationKind) -> Vec<NewNotification> {
        let notes = self.0.lock().unwrap();
        notes.iter().filter(|n| n.kind == kind).cloned().collect()
    }
}

#[async_trait]
impl Notifier for Notes {
    async fn notify(&self, notification: NewNotification) -> Result<(), NotifyError> {
        self.1.write("notify")?;
        let mut notes = self.0.lock().unwrap();
        if notes
            .iter()
            .all(|n| n.idempotency_key != notification.idempotency_key)
        {
            notes.push(notification);
        }
        Ok(())
    }
}

/// The turn archive, which can be made to fail `archive_turn` as if the database went
/// away between the engine's answer and the archive.
pub struct FlakyArchive {
    /// The real store.
    pub inner: Arc<MemoryPlayStore>,
    /// `archive_turn` calls that fail before it works again.
    pub failures: AtomicUsize,
    /// Injected faults on every write.
    pub faults: Arc<Faults>,
}

#[async_trait]
impl TurnArchiveStore for FlakyArchive {
    async fn archive_turn(&self, t: &PlayedTurn, r: &[TurnReport]) -> Result<bool, StoreError> {
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(StoreError::unavailable("connection reset"));
        }
        self.faults.write("archive_turn")?;
        self.inner.archive_turn(t, r).await
    }
    async fn list_turns(&self, g: GameId) -> Result<Vec<PlayedTurn>, StoreError> {
        self.inner.list_turns(g).await
    }
    async fn latest_turn(&self, g: GameId) -> Result<Option<PlayedTurn>, StoreError> {
        self.inner.latest_turn(g).await
    }
    async fn unannounced_turns(&self, n: u32) -> Result<Vec<PlayedTurn>, StoreError> {
        self.inner.unannounced_turns(n).await
    }
    async fn mark_announced(&self, g: GameId, t: u32, at: Timestamp) -> Result<(), StoreError> {
        self.faults.write("mark_announced")?;
        self.inner.mark_announced(g, t, at).await
    }
    async fn get_report(&self, g: GameId, t: u32, r: &str) -> Result<TurnReport, StoreError> {
        self.inner.get_report(g, t, r).await
    }
}

/// The game store, journaling every status change it commits.
pub struct JournalGames {
    inner: Arc<MemoryLobbyStore>,
    journal: Arc<Journal>,
    /// Injected faults on status changes.
    faults: Arc<Faults>,
}

impl JournalGames {
    /// Wraps `inner`, journaling to `journal`; `faults` can fail status changes.
    pub fn new(inner: Arc<MemoryLobbyStore>, journal: Arc<Journal>, faults: Arc<Faults>) -> Self {
        Self {
            inner,
            journal,
            faults,
        }
    }
}

#[async_trait]
impl GameStore for JournalGames {
    async fn insert_game(&self, game: &Game) -> Result<(), StoreError> {
        self.inner.insert_game(game).await
    }
    async fn insert_hosted_game(&self, game: &Game, max: u32) -> Result<bool, StoreError> {
        self.inner.insert_hosted_game(game, max).await
    }
    async fn get_game(&self, id: GameId) -> Result<Game, StoreError> {
        self.inner.get_game(id).await
    }
    async fn list_games(&self, f: &GameFilter, p: &PageRequest) -> Result<Page<Game>, StoreError> {
        self.inner.list_games(f, p).await
    }
    async fn update_game_status(
        &self,
        id: GameId,
        from: GameStatus,
        change: &GameStatusChange,
    ) -> Result<Game, StoreError> {
        self.faults.write("update_game_status")?;
        let game = self.inner.update_game_status(id, from, change).await?;
        self.journal.push(format!("game {}", change.to));
        Ok(game)
    }
    async fn game_transitions(&self, id: GameId) -> Result<Vec<GameTransition>, StoreError> {
        self.inner.game_transitions(id).await
    }
    async fn unannounced_transitions(&self, n: u32) -> Result<Vec<GameTransition>, StoreError> {
        self.inner.unannounced_transitions(n).await
    }
    async fn mark_transition_announced(
        &self,
        id: GameId,
        to: GameStatus,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.faults.write("mark_transition_announced")?;
        self.inner.mark_transition_announced(id, to, at).await
    }
    async fn games_past_deadline(&self, now: Timestamp, n: u32) -> Result<Vec<Game>, StoreError> {
        self.inner.games_past_deadline(now, n).await
    }
}

/// The record store, whose `set_binding` can be made to fail (the orphan path).
pub struct FlakyRecords {
    inner: Arc<MemoryRuntimeStore>,
    /// While set, `set_binding` fails as if the database went away.
    pub fail_binding: AtomicBool,
    /// Injected faults on every write.
    faults: Arc<Faults>,
}

impl FlakyRecords {
    /// Wraps `inner`, working normally until `faults` or `fail_binding` say otherwise.
    pub fn new(inner: Arc<MemoryRuntimeStore>, faults: Arc<Faults>) -> Self {
        let fail_binding = AtomicBool::new(false);
        Self {
            inner,
            fail_binding,
            faults,
        }
    }
}

#[async_trait]
impl RuntimeRecordStore for FlakyRecords {
    async fn insert_record(&self, r: &RuntimeRecord) -> Result<(), StoreError> {
        self.inner.insert_record(r).await
    }
    async fn get_record(&self, g: GameId) -> Result<RuntimeRecord, StoreError> {
        self.inner.get_record(g).await
    }
    async fn list_records(
        &self,
        s: Option<RuntimeStatus>,
        p: &PageRequest,
    ) -> Result<Page<RuntimeRecord>, StoreError> {
        self.inner.list_records(s, p).await
    }
    async fn update_record_status(
        &self,
        g: GameId,
        e: RuntimeStatus,
        t: RuntimeStatus,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        self.faults.write("update_record_status")?;
        self.inner.update_record_status(g, e, t, at).await
    }
    async fn set_binding(
        &self,
        g: GameId,
        b: Option<RuntimeBinding>,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        if self.fail_binding.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("connection reset"));
        }
        self.faults.write("set_binding")?;
        self.inner.set_binding(g, b, at).await
    }
    async fn set_healthy(
        &self,
        g: GameId,
        h: bool,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        self.faults.write("set_healthy")?;
        self.inner.set_healthy(g, h, at).await
    }
    async fn set_schedule(
        &self,
        g: GameId,
        n: Option<Timestamp>,
        s: bool,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        self.faults.write("set_schedule")?;
        self.inner.set_schedule(g, n, s, at).await
    }
    async fn claim_due_turns(&self, c: &ClaimRequest) -> Result<Vec<RuntimeRecord>, StoreError> {
        self.faults.write("claim_due_turns")?;
        self.inner.claim_due_turns(c).await
    }
    async fn claim_turn(&self, g: GameId, c: &ClaimRequest) -> Result<RuntimeRecord, StoreError> {
        self.faults.write("claim_turn")?;
        self.inner.claim_turn(g, c).await
    }
    async fn complete_turn(
        &self,
        g: GameId,
        t: LeaseToken,
        u: &TurnUpdate,
        at: Timestamp,
    ) -> Result<RuntimeRecord, StoreError> {
        self.faults.write("complete_turn")?;
        self.inner.complete_turn(g, t, u, at).await
    }
}

/// The job store, whose writes can fail ([`Faults`]).
pub struct FaultyJobs {
    inner: Arc<MemoryRuntimeStore>,
    faults: Arc<Faults>,
}

#[async_trait]
impl RuntimeJobStore for FaultyJobs {
    async fn enqueue_job(&self, job: &RuntimeJob) -> Result<RuntimeJob, StoreError> {
        self.faults.write("enqueue_job")?;
        self.inner.enqueue_job(job).await
    }
    async fn get_job(&self, id: JobId) -> Result<RuntimeJob, StoreError> {
        self.inner.get_job(id).await
    }
    async fn list_jobs(
        &self,
        g: Option<GameId>,
        p: &PageRequest,
    ) -> Result<Page<RuntimeJob>, StoreError> {
        self.inner.list_jobs(g, p).await
    }
    async fn claim_jobs(&self, c: &ClaimRequest) -> Result<Vec<RuntimeJob>, StoreError> {
        self.faults.write("claim_jobs")?;
        self.inner.claim_jobs(c).await
    }
    async fn renew_job_lease(
        &self,
        id: JobId,
        t: LeaseToken,
        until: Timestamp,
        at: Timestamp,
    ) -> Result<RuntimeJob, StoreError> {
        self.faults.write("renew_job_lease")?;
        self.inner.renew_job_lease(id, t, until, at).await
    }
    async fn complete_job(
        &self,
        id: JobId,
        t: LeaseToken,
        o: &JobOutcome,
        at: Timestamp,
    ) -> Result<RuntimeJob, StoreError> {
        self.faults.write("complete_job")?;
        self.inner.complete_job(id, t, o, at).await
    }
}

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
        let ports = RuntimePorts {
            games,
            applications: store.clone(),
            users: users.clone(),
            records: records.clone(),
            jobs,
            health: runtime.clone(),
            archive: archive.clone(),
            orders: play.clone(),
            containers: containers.clone(),
            engine: engine.clone(),
            notifier: notes.clone(),
            clock: clock.clone(),
            ids: ids.clone(),
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
            clock,
            ids,
            containers,
            engine,
            notes,
            journal,
            faults,
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
        let mut new = NewGame {
            name: "Andromeda Cup".into(),
            min_players: 2,
            max_players: 8,
            enrollment_deadline: self.clock.now() + TimeDelta::days(3),
            turn_schedule: SCHEDULE.into(),
            engine: None,
            auto_approve: false,
            visibility: Visibility::Public,
            engine_settings: serde_json::Value::Null,
            reveal_reports_after_finish: true,
        };
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
        let (game, seats) = self.starting_game(players).await;
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
        let handled = self.jobs.tick().await.unwrap().handled;
        self.jobs.drain().await;
        handled
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
