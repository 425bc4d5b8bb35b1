//! The lobby service and sweeper against the in-memory stores, a manual clock and seeded
//! ids: whole enrollment flows, race-name uniqueness, deadlines, concurrency, permissions
//! and bad input (which must change nothing).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::TimeDelta;
use galaxy_core::domain::application::{Application, ApplicationStatus};
use galaxy_core::domain::game::{Game, GameStatus, GameTransition, GameTrigger, Visibility};
use galaxy_core::domain::lease::ClaimRequest;
use galaxy_core::domain::notification::NotificationKind;
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::race_name::{RaceName, RaceNameEntry, RaceNameStatus};
use galaxy_core::domain::runtime::{JobKind, RuntimeJob};
use galaxy_core::domain::user::{Email, Role, User, UserStatus};
use galaxy_core::domain::{ApplicationId, GameId, LeaseToken, Timestamp, UserId};
use galaxy_core::ports::{
    ApplicationStore, Clock, GameFilter, GameStatusChange, GameStore, JobOutcome, NewNotification,
    Notifier, NotifyError, RaceNameStore, RuntimeJobStore, SecretGenerator, StoreError, UserStore,
};
use galaxy_core::service::lobby::{
    LobbyConfig, LobbyError, LobbyPorts, LobbyService, LobbySweeper, NewGame,
};
use galaxy_core::service::{Actor, ErrorKind, ServiceError};
use galaxy_core::worker::Worker;
use galaxy_ports::memory::{MemoryLobbyStore, MemoryRuntimeStore, MemoryUserStore};
use galaxy_ports::mock::MockNotifier;
use galaxy_ports::system::{ManualClock, SeededSecretGenerator};
use uuid::Uuid;

mod flows;
mod guards;

/// Remembers every notification raised.
#[derive(Default)]
struct RecordingNotifier(Mutex<Vec<NewNotification>>);

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn notify(&self, notification: NewNotification) -> Result<(), NotifyError> {
        self.0.lock().unwrap().push(notification);
        Ok(())
    }
}

/// A game store whose next status change fails as if the process died before it, and
/// which can answer `get_game` from a stale snapshot, as the game cache of a replica that
/// has not yet heard of another replica's change does. It can also let an approval land
/// just before the next status change, as another request's would between the caller's
/// read and its compare-and-set.
struct CrashingGames {
    inner: Arc<MemoryLobbyStore>,
    crash_next_change: AtomicBool,
    stale: Mutex<std::collections::HashMap<GameId, Game>>,
    approve_before_next_change: Mutex<Option<ApplicationId>>,
}

#[async_trait]
impl GameStore for CrashingGames {
    async fn insert_game(&self, game: &Game) -> Result<(), StoreError> {
        self.inner.insert_game(game).await
    }
    async fn insert_hosted_game(&self, game: &Game, max: u32) -> Result<bool, StoreError> {
        self.inner.insert_hosted_game(game, max).await
    }
    async fn get_game(&self, id: GameId) -> Result<Game, StoreError> {
        if let Some(game) = self.stale.lock().unwrap().get(&id).cloned() {
            return Ok(game);
        }
        self.inner.get_game(id).await
    }
    async fn get_game_fresh(&self, id: GameId) -> Result<Game, StoreError> {
        self.stale.lock().unwrap().remove(&id);
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
        if self.crash_next_change.swap(false, Ordering::SeqCst) {
            return Err(StoreError::unavailable("connection reset"));
        }
        let approval = self.approve_before_next_change.lock().unwrap().take();
        if let Some(application) = approval {
            self.inner
                .approve_application(application, change.at)
                .await?;
        }
        self.inner.update_game_status(id, from, change).await
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
        self.inner.mark_transition_announced(id, to, at).await
    }
    async fn games_past_deadline(&self, now: Timestamp, n: u32) -> Result<Vec<Game>, StoreError> {
        self.inner.games_past_deadline(now, n).await
    }
}

/// The race-name store with one hook: run once just before the next `release_claim`
/// (another request landing between a caller's checks and its write).
struct HookedNames {
    inner: Arc<MemoryLobbyStore>,
    before_release_claim: Mutex<Option<futures::future::BoxFuture<'static, ()>>>,
    /// The next `register_race_name` fails, as if the process died before it.
    fail_next_register: AtomicBool,
}

impl HookedNames {
    fn before_next_release_claim(&self, hook: futures::future::BoxFuture<'static, ()>) {
        *self.before_release_claim.lock().unwrap() = Some(hook);
    }
}

#[async_trait]
impl RaceNameStore for HookedNames {
    async fn reserve_race_name(
        &self,
        entry: &RaceNameEntry,
        now: Timestamp,
    ) -> Result<RaceNameEntry, StoreError> {
        self.inner.reserve_race_name(entry, now).await
    }
    async fn get_race_name(
        &self,
        key: &galaxy_core::domain::race_name::RaceNameKey,
    ) -> Result<Option<RaceNameEntry>, StoreError> {
        self.inner.get_race_name(key).await
    }
    async fn register_race_name(
        &self,
        key: &galaxy_core::domain::race_name::RaceNameKey,
        owner: UserId,
        at: Timestamp,
    ) -> Result<RaceNameEntry, StoreError> {
        if self.fail_next_register.swap(false, Ordering::SeqCst) {
            return Err(StoreError::unavailable("connection reset"));
        }
        self.inner.register_race_name(key, owner, at).await
    }
    async fn release_race_name(
        &self,
        key: &galaxy_core::domain::race_name::RaceNameKey,
        owner: UserId,
        expected: RaceNameStatus,
        at: Timestamp,
    ) -> Result<RaceNameEntry, StoreError> {
        self.inner.release_race_name(key, owner, expected, at).await
    }
    async fn release_claim(
        &self,
        key: &galaxy_core::domain::race_name::RaceNameKey,
        owner: UserId,
        application: ApplicationId,
        at: Timestamp,
    ) -> Result<RaceNameEntry, StoreError> {
        let hook = self.before_release_claim.lock().unwrap().take();
        if let Some(hook) = hook {
            hook.await;
        }
        self.inner.release_claim(key, owner, application, at).await
    }
    async fn release_expired_race_name(
        &self,
        key: &galaxy_core::domain::race_name::RaceNameKey,
        owner: UserId,
        now: Timestamp,
    ) -> Result<RaceNameEntry, StoreError> {
        self.inner.release_expired_race_name(key, owner, now).await
    }
    async fn list_race_names(&self, owner: UserId) -> Result<Vec<RaceNameEntry>, StoreError> {
        self.inner.list_race_names(owner).await
    }
    async fn expired_pending_race_names(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<RaceNameEntry>, StoreError> {
        self.inner.expired_pending_race_names(now, limit).await
    }
}

struct World {
    lobby: LobbyService,
    race_names: Arc<HookedNames>,
    store: Arc<MemoryLobbyStore>,
    games: Arc<CrashingGames>,
    users: Arc<MemoryUserStore>,
    runtime: Arc<MemoryRuntimeStore>,
    clock: Arc<ManualClock>,
    ids: Arc<SeededSecretGenerator>,
    notes: Arc<RecordingNotifier>,
    /// Counts the race names `fresh_name` handed out.
    names: AtomicUsize,
}

impl World {
    fn new() -> Self {
        Self::build(LobbyConfig::default(), None)
    }

    fn build(config: LobbyConfig, notifier: Option<Arc<dyn Notifier>>) -> Self {
        let store = Arc::new(MemoryLobbyStore::new());
        let games = Arc::new(CrashingGames {
            inner: store.clone(),
            crash_next_change: AtomicBool::new(false),
            stale: Mutex::default(),
            approve_before_next_change: Mutex::default(),
        });
        let race_names = Arc::new(HookedNames {
            inner: store.clone(),
            before_release_claim: Mutex::default(),
            fail_next_register: AtomicBool::new(false),
        });
        let users = Arc::new(MemoryUserStore::new());
        let runtime = Arc::new(MemoryRuntimeStore::default());
        let clock = Arc::new(ManualClock::at_fixed_start());
        let ids = Arc::new(SeededSecretGenerator::new(7));
        let notes = Arc::new(RecordingNotifier::default());
        let ports = LobbyPorts {
            games: games.clone(),
            applications: store.clone(),
            race_names: race_names.clone(),
            users: users.clone(),
            jobs: runtime.clone(),
            notifier: notifier.unwrap_or_else(|| notes.clone()),
            clock: clock.clone(),
            ids: ids.clone(),
        };
        let lobby = LobbyService::new(ports, config);
        let names = AtomicUsize::new(0);
        World {
            lobby,
            race_names,
            store,
            games,
            users,
            runtime,
            clock,
            ids,
            notes,
            names,
        }
    }

    async fn user_with(&self, edit: impl FnOnce(&mut User)) -> Actor {
        let id = UserId::from_uuid(self.ids.uuid());
        let email = Email::parse(&format!("u{}@example.org", id.as_uuid().simple())).unwrap();
        let mut user = User::new(id, email, self.clock.now());
        edit(&mut user);
        self.users.insert_user(&user).await.unwrap();
        Actor::of(&user)
    }

    async fn user(&self) -> Actor {
        self.user_with(|_| {}).await
    }

    async fn admin(&self) -> Actor {
        self.user_with(|u| u.grant(Role::Admin)).await
    }

    fn new_game(&self, min: u32, max: u32) -> NewGame {
        NewGame {
            name: "Andromeda Cup".into(),
            min_players: min,
            max_players: max,
            enrollment_deadline: self.clock.now() + TimeDelta::days(3),
            turn_schedule: "0 18 * * 1,3,5".into(),
            engine: None,
            auto_approve: false,
            visibility: Visibility::Public,
            engine_settings: serde_json::Value::Null,
            reveal_reports_after_finish: true,
            pbem: Default::default(),
        }
    }

    async fn open_game(&self, host: Actor, min: u32, max: u32) -> Game {
        let game = self
            .lobby
            .create_game(host, self.new_game(min, max))
            .await
            .unwrap();
        self.lobby.open(host, game.id).await.unwrap()
    }

    async fn game(&self, id: GameId) -> Game {
        self.store.get_game(id).await.unwrap()
    }

    async fn jobs(&self, game: GameId) -> Vec<RuntimeJob> {
        let page = PageRequest::first(100).unwrap();
        self.runtime
            .list_jobs(Some(game), &page)
            .await
            .unwrap()
            .items
    }

    async fn name(&self, name: &str) -> Option<RaceNameEntry> {
        let key = RaceName::parse(name).unwrap().key();
        self.store.get_race_name(&key).await.unwrap()
    }

    fn kinds(&self) -> Vec<NotificationKind> {
        self.notes
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|n| n.kind)
            .collect()
    }

    /// A game with `players` approved players (each applying as `Race<i>`).
    async fn game_with(&self, host: Actor, min: u32, max: u32, players: usize) -> Game {
        let game = self.open_game(host, min, max).await;
        for _ in 0..players {
            let player = self.user().await;
            let name = format!("Player {}", self.names.fetch_add(1, Ordering::SeqCst));
            let app = self.lobby.apply(player, game.id, &name).await.unwrap();
            self.lobby.approve(host, game.id, app.id).await.unwrap();
        }
        self.game(game.id).await
    }
}

fn kind<T: std::fmt::Debug>(result: Result<T, LobbyError>) -> (ErrorKind, &'static str) {
    let error = result.unwrap_err();
    (error.kind(), error.code())
}

const CONFLICT: ErrorKind = ErrorKind::Conflict;
