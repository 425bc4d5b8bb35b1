//! The small effects the runtime's components share, each holding only the ports and
//! settings it uses: time and ids ([`Time`]), game and record status changes
//! ([`Statuses`]), notifications ([`Notices`]), health events ([`HealthLog`]), engine
//! calls ([`Engines`]), engine initialisation ([`Initialiser`]) and durable jobs
//! ([`JobQueue`]).
//!
//! Each component (the service, the turn runner, the job pool, the observers) holds the
//! ones it uses, built from [`RuntimePorts`] and [`RuntimeConfig`] in its constructor,
//! so what a component can touch is what its fields name.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use serde_json::json;

use super::{RuntimeConfig, RuntimePorts};
use crate::domain::application::ApplicationStatus;
use crate::domain::engine_auth::{EngineToken, EngineTokenKey};
use crate::domain::game::{Game, GameStatus, GameTrigger};
use crate::domain::health::{HealthEvent, HealthEventKind};
use crate::domain::notification::NotificationKind;
use crate::domain::page::PageRequest;
use crate::domain::runtime::{JobKind, RuntimeBinding, RuntimeJob, RuntimeRecord, RuntimeStatus};
use crate::domain::{GameId, HealthEventId, JobId, LeaseToken, Timestamp, UserId};
use crate::ports::{
    ApplicationStore, Clock, EngineClient, EngineError, EngineInit, EngineRace, EngineTarget,
    GameStatusChange, GameStore, HealthEventStore, NewNotification, Notifier, NotifyError,
    RuntimeJobStore, RuntimeRecordStore, SecretGenerator, UserStore,
};
use crate::ports::{EngineState, StoreError};

/// Largest page the runtime reads when it walks a whole list.
const WALK_PAGE: u32 = 200;

/// The only sources of time, ids and lease tokens.
#[derive(Clone)]
pub(crate) struct Time {
    /// The clock every timestamp and deadline is read from.
    clock: Arc<dyn Clock>,
    /// Ids of stored rows and lease tokens.
    ids: Arc<dyn SecretGenerator>,
}

impl Time {
    pub(crate) fn new(ports: &RuntimePorts) -> Self {
        Self {
            clock: Arc::clone(&ports.clock),
            ids: Arc::clone(&ports.ids),
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// A fresh id for a stored row.
    pub(crate) fn uuid(&self) -> uuid::Uuid {
        self.ids.uuid()
    }

    pub(crate) fn lease_token(&self) -> LeaseToken {
        LeaseToken::from_uuid(self.ids.uuid())
    }
}

/// Game and runtime-record status changes, each a compare-and-set.
#[derive(Clone)]
pub(crate) struct Statuses {
    /// When each change happens.
    pub(crate) time: Time,
    /// Games: the runtime moves them through `starting`, `running`, `paused`, ...
    pub(crate) games: Arc<dyn GameStore>,
    /// One runtime record per game: status, binding, schedule, health.
    pub(crate) records: Arc<dyn RuntimeRecordStore>,
}

impl Statuses {
    pub(crate) fn new(ports: &RuntimePorts) -> Self {
        Self {
            time: Time::new(ports),
            games: Arc::clone(&ports.games),
            records: Arc::clone(&ports.records),
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.time.now()
    }

    /// The game compare-and-set from `from`. `Ok(None)` when it lost (the game is no
    /// longer in `from`, or the table refuses the change): a replay or a race, which the
    /// caller treats as "someone else already acted".
    pub(crate) async fn change_game(
        &self,
        game_id: GameId,
        from: GameStatus,
        to: GameStatus,
        trigger: GameTrigger,
        actor: Option<UserId>,
        reason: Option<String>,
    ) -> Result<Option<Game>, StoreError> {
        let change = GameStatusChange {
            to,
            trigger,
            actor,
            reason,
            at: self.now(),
            expected_approved: None,
        };
        match self.games.update_game_status(game_id, from, &change).await {
            Ok(game) => Ok(Some(game)),
            Err(StoreError::Conflict { .. } | StoreError::InvalidTransition(_)) => {
                tracing::info!(%game_id, %from, %to, "game status change lost: already handled");
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Moves a runtime record from its status to `to`, if the runtime table allows it;
    /// `Ok(None)` when it does not, or when the record changed meanwhile.
    pub(crate) async fn advance_record(
        &self,
        record: &RuntimeRecord,
        to: RuntimeStatus,
    ) -> Result<Option<RuntimeRecord>, StoreError> {
        if record.status == to {
            return Ok(Some(record.clone()));
        }
        if !record.status.allows(to) {
            return Ok(None);
        }
        let records = &self.records;
        match records
            .update_record_status(record.game_id, record.status, to, self.now())
            .await
        {
            Ok(updated) => Ok(Some(updated)),
            Err(StoreError::Conflict { .. } | StoreError::InvalidTransition(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Every record, optionally of one status.
    pub(crate) async fn all_records(
        &self,
        status: Option<RuntimeStatus>,
    ) -> Result<Vec<RuntimeRecord>, StoreError> {
        let mut all = Vec::new();
        let mut page = PageRequest::first(WALK_PAGE).map_err(StoreError::internal)?;
        loop {
            let got = self.records.list_records(status, &page).await?;
            all.extend(got.items);
            match got.next_after {
                Some(after) => {
                    page = PageRequest::after(WALK_PAGE, after).map_err(StoreError::internal)?
                }
                None => return Ok(all),
            }
        }
    }

    /// Every live record (starting or running): what the passes that look at engines
    /// read, by status, so that they never walk the records of every game ever played
    /// (a finished game's stays, `removed`).
    pub(crate) async fn live_records(&self) -> Result<Vec<RuntimeRecord>, StoreError> {
        let mut live = Vec::new();
        for status in RuntimeStatus::ALL.into_iter().filter(|s| s.is_live()) {
            live.extend(self.all_records(Some(status)).await?);
        }
        Ok(live)
    }

    /// `running -> paused` by the runtime (health), with the schedule cleared so no turn
    /// runs until an admin resumes. `Ok(false)` when the game was not running.
    pub(crate) async fn pause_for_health(
        &self,
        game_id: GameId,
        reason: String,
    ) -> Result<bool, StoreError> {
        let paused = self
            .change_game(
                game_id,
                GameStatus::Running,
                GameStatus::Paused,
                GameTrigger::RuntimeEvent,
                None,
                Some(reason),
            )
            .await?;
        if paused.is_none() {
            return Ok(false);
        }
        self.unschedule(game_id).await;
        Ok(true)
    }

    /// Clears a game's schedule (paused or ended games run no turns); logged on failure,
    /// since the scheduler also unschedules any game it finds not running.
    ///
    /// The status changed first, and a resume may land between that change and this
    /// clear (neither is under a lock), setting its schedule just before this clear wipes
    /// it: the game would run with no turn ever due. So the status is read again after
    /// the clear, and a game running again gets the schedule's next firing back.
    pub(crate) async fn unschedule(&self, game_id: GameId) {
        let records = &self.records;
        if let Err(error) = records.set_schedule(game_id, None, false, self.now()).await {
            tracing::warn!(%error, %game_id, "schedule not cleared");
            return;
        }
        let game = match self.games.get_game_fresh(game_id).await {
            Ok(game) if game.status == GameStatus::Running => game,
            Ok(_) => return,
            Err(error) => {
                tracing::warn!(%error, %game_id, "status not read again after clearing the schedule");
                return;
            }
        };
        let next = self.next_turn_at(&game);
        tracing::info!(%game_id, "resumed while its schedule was cleared: scheduled again");
        if let Err(error) = records.set_schedule(game_id, next, false, self.now()).await {
            tracing::error!(%error, %game_id, "running game not scheduled again");
        }
    }

    /// The next firing of a game's schedule after now.
    pub(crate) fn next_turn_at(&self, game: &Game) -> Option<Timestamp> {
        game.settings.schedule.next_after(self.now())
    }
}

/// Notifications to players and admins.
#[derive(Clone)]
pub(crate) struct Notices {
    /// Admins are active at a time: this is its clock.
    time: Time,
    /// Raises notifications (idempotent by key).
    notifier: Arc<dyn Notifier>,
    /// Where the admins are found ([`UserStore::list_admins`]).
    users: Arc<dyn UserStore>,
}

impl Notices {
    pub(crate) fn new(ports: &RuntimePorts) -> Self {
        Self {
            time: Time::new(ports),
            notifier: Arc::clone(&ports.notifier),
            users: Arc::clone(&ports.users),
        }
    }

    /// Every active admin ([`crate::ports::UserStore::list_admins`], filtered on the
    /// status now). A failure is logged: the alert then reaches fewer people, but the
    /// state change it reports stands.
    pub(crate) async fn admins(&self) -> Vec<UserId> {
        let now = self.time.now();
        match self.users.list_admins().await {
            Ok(admins) => admins
                .iter()
                .filter(|u| u.status.is_active_at(now))
                .map(|u| u.id)
                .collect(),
            Err(error) => {
                tracing::warn!(%error, "admins not listed; the alert reaches fewer people");
                Vec::new()
            }
        }
    }

    /// Raises a notification; a failure is logged, never returned: the state change it
    /// reports is committed, and failing the caller would only invite a refused retry.
    pub(crate) async fn notify(
        &self,
        kind: NotificationKind,
        idempotency_key: String,
        recipients: Vec<UserId>,
        game_id: GameId,
        payload: serde_json::Value,
    ) {
        let key = idempotency_key.clone();
        let raised = self
            .try_notify(kind, idempotency_key, recipients, game_id, payload)
            .await;
        if let Err(error) = raised {
            tracing::warn!(%error, %game_id, key, "runtime notification not raised");
        }
    }

    /// [`Notices::notify`] that says whether the notification was stored, for the effects
    /// that must be retried until it is (a turn's announcement). Raising a key again is a
    /// no-op, so a retry never duplicates one.
    pub(crate) async fn try_notify(
        &self,
        kind: NotificationKind,
        idempotency_key: String,
        mut recipients: Vec<UserId>,
        game_id: GameId,
        payload: serde_json::Value,
    ) -> Result<(), StoreError> {
        recipients.sort();
        recipients.dedup();
        if recipients.is_empty() {
            tracing::info!(%game_id, kind = kind.as_str(), "notification has no recipients");
            return Ok(());
        }
        let notification = NewNotification {
            kind,
            idempotency_key,
            recipients,
            game_id: Some(game_id),
            payload,
        };
        match self.notifier.notify(notification).await {
            Ok(()) => Ok(()),
            Err(NotifyError::Store(error)) => Err(error),
        }
    }

    /// Tells the admins (and, for start failures, the host) about a game.
    pub(crate) async fn notify_admins(
        &self,
        kind: NotificationKind,
        key: String,
        game: &Game,
        also_host: bool,
        payload: serde_json::Value,
    ) {
        let mut recipients = self.admins().await;
        if also_host {
            recipients.push(game.host);
        }
        self.notify(kind, key, recipients, game.id, payload).await;
    }
}

/// How long the alerts of one observed incident are one alert (see
/// [`HealthLog::alert_observation`]).
const OBSERVATION_ALERT_WINDOW: TimeDelta = TimeDelta::minutes(5);

/// Stored health events, each sent to the admins.
#[derive(Clone)]
pub(crate) struct HealthLog {
    /// Ids and times of the events.
    time: Time,
    /// Where the events are kept.
    health: Arc<dyn HealthEventStore>,
    /// Sends the `runtime_health_alert`s.
    notices: Notices,
    /// The games, for the alert to name its game.
    games: Arc<dyn GameStore>,
}

impl HealthLog {
    pub(crate) fn new(ports: &RuntimePorts) -> Self {
        Self {
            time: Time::new(ports),
            health: Arc::clone(&ports.health),
            notices: Notices::new(ports),
            games: Arc::clone(&ports.games),
        }
    }

    /// Stores a health event of a game.
    pub(crate) async fn store_health_event(
        &self,
        game_id: GameId,
        kind: HealthEventKind,
        detail: serde_json::Value,
    ) -> Result<HealthEvent, StoreError> {
        let event = HealthEvent {
            id: HealthEventId::from_uuid(self.time.uuid()),
            game_id,
            kind,
            detail,
            occurred_at: self.time.now(),
        };
        self.health.append_health_event(&event).await?;
        tracing::info!(%game_id, kind = kind.as_str(), "health event stored");
        Ok(event)
    }

    /// Sends the admins a `runtime_health_alert` for a stored event.
    pub(crate) async fn alert(&self, event: &HealthEvent) {
        let key = format!("health:{}", event.id);
        self.send_alert(event, key).await;
    }

    /// Sends the alert for what the observers found (container events, inspect, probe):
    /// every replica runs them against the same engines, so each stores its own event of
    /// one incident. The alert's key names the incident instead (game, kind, reason and
    /// a window of [`OBSERVATION_ALERT_WINDOW`]), so the admins get one alert per
    /// incident, not one per replica, and a container flapping within the window one in
    /// all; every event stays listed.
    pub(crate) async fn alert_observation(&self, event: &HealthEvent) {
        let reason = event
            .detail
            .get("reason")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let window = event
            .occurred_at
            .timestamp()
            .div_euclid(OBSERVATION_ALERT_WINDOW.num_seconds());
        let key = format!(
            "health:{}:{}:{reason}:{window}",
            event.game_id,
            event.kind.as_str()
        );
        self.send_alert(event, key).await;
    }

    async fn send_alert(&self, event: &HealthEvent, key: String) {
        // Named by the game's name an admin knows it by (its id where it cannot be read
        // now), at a time as mails write it.
        let game = match self.games.get_game(event.game_id).await {
            Ok(game) => game.settings.name.as_str().to_owned(),
            Err(_) => event.game_id.to_string(),
        };
        let payload = json!({
            "game_id": event.game_id,
            "game": game,
            "event_id": event.id,
            "kind": event.kind.as_str(),
            "detail": event.detail,
            "occurred_at": event.occurred_at,
            "occurred": event.occurred_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        });
        let recipients = self.notices.admins().await;
        let kind = NotificationKind::RuntimeHealthAlert;
        self.notices
            .notify(kind, key, recipients, event.game_id, payload)
            .await;
    }
}

/// Durable start, stop and restart jobs.
#[derive(Clone)]
pub(crate) struct JobQueue {
    /// Ids and times of queued jobs.
    time: Time,
    /// The job table.
    pub(crate) jobs: Arc<dyn RuntimeJobStore>,
}

impl JobQueue {
    pub(crate) fn new(ports: &RuntimePorts) -> Self {
        Self {
            time: Time::new(ports),
            jobs: Arc::clone(&ports.jobs),
        }
    }

    /// Queues a durable job (or finds the one already queued under `key`).
    pub(crate) async fn enqueue(
        &self,
        game_id: GameId,
        kind: JobKind,
        key: String,
    ) -> Result<RuntimeJob, StoreError> {
        let id = JobId::from_uuid(self.time.uuid());
        let job = RuntimeJob::new(id, game_id, kind, key, self.time.now());
        self.jobs.enqueue_job(&job).await
    }
}

/// Calls to a game's engine: its credential, and a last-resort deadline on every call.
#[derive(Clone)]
pub(crate) struct Engines {
    /// Talks to the engines (SPEC section 9).
    pub(crate) client: Arc<dyn EngineClient>,
    /// `engine_call_timeout`: the bound on any engine call, on top of the client's own.
    call_timeout: Duration,
    /// The installation's secret each game's engine credential derives from.
    tokens: EngineTokenKey,
}

impl Engines {
    pub(crate) fn new(ports: &RuntimePorts, config: &RuntimeConfig) -> Self {
        Self {
            client: Arc::clone(&ports.engine),
            call_timeout: config.engine_call_timeout,
            tokens: config.engine_tokens.clone(),
        }
    }

    /// Runs an engine call under `engine_call_timeout`.
    pub(crate) async fn engine_call<T>(
        &self,
        call: impl Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        bounded(self.call_timeout, call).await
    }

    /// A game's engine credential.
    pub(crate) fn token_for(&self, game_id: GameId) -> EngineToken {
        self.tokens.token_for(game_id)
    }

    /// How a game's bound engine is called: its endpoint, with the game's credential.
    pub(crate) fn engine_target(&self, game_id: GameId, binding: &RuntimeBinding) -> EngineTarget {
        EngineTarget::new(binding.engine_endpoint.clone(), self.token_for(game_id))
    }
}

/// `/admin/init` of a game's engine: the races and the settings it is initialised with.
#[derive(Clone)]
pub(crate) struct Initialiser {
    /// Makes the call.
    engines: Engines,
    /// The approved applications are the races.
    applications: Arc<dyn ApplicationStore>,
    /// The operator's default `settings` (`engine_settings` of the configuration).
    defaults: Arc<serde_json::Value>,
}

impl Initialiser {
    pub(crate) fn new(ports: &RuntimePorts, config: &RuntimeConfig) -> Self {
        Self {
            engines: Engines::new(ports, config),
            applications: Arc::clone(&ports.applications),
            defaults: Arc::new(config.engine_settings.clone()),
        }
    }

    /// The races of a game, as `/admin/init` wants them: every approved application.
    async fn races(&self, game_id: GameId) -> Result<Vec<EngineRace>, StoreError> {
        let applications = self.applications.list_applications(game_id).await?;
        Ok(applications
            .into_iter()
            .filter(|a| a.status == ApplicationStatus::Approved)
            .map(|a| EngineRace {
                race_name: a.race_name.as_str().to_owned(),
                player_id: a.user_id.to_string(),
            })
            .collect())
    }

    /// The `/admin/init` body. The seed derives from the game id, so a replayed init
    /// (idempotent by contract) asks for exactly the same game. The settings are the
    /// operator's defaults (`engine_settings` of the configuration) with the game's own
    /// keys over them.
    async fn engine_init(&self, game: &Game) -> Result<EngineInit, StoreError> {
        let (high, low) = game.id.as_uuid().as_u64_pair();
        let mut settings = match self.defaults.as_ref() {
            serde_json::Value::Object(defaults) => defaults.clone(),
            _ => serde_json::Map::new(),
        };
        for (key, value) in game.settings.engine_settings.as_map() {
            settings.insert(key.clone(), value.clone());
        }
        Ok(EngineInit {
            game_id: game.id.to_string(),
            seed: high ^ low.rotate_left(17),
            settings: serde_json::Value::Object(settings),
            races: self.races(game.id).await?,
        })
    }

    /// Initialises an engine (idempotent by contract).
    pub(crate) async fn init_engine(
        &self,
        game: &Game,
        target: &EngineTarget,
    ) -> Result<Result<EngineState, EngineError>, StoreError> {
        let init = self.engine_init(game).await?;
        let engine = &self.engines.client;
        Ok(self.engines.engine_call(engine.init(target, &init)).await)
    }
}

/// Runs `call`, turning a missed deadline into [`EngineError::Timeout`].
pub(crate) async fn bounded<T>(
    limit: std::time::Duration,
    call: impl Future<Output = Result<T, EngineError>>,
) -> Result<T, EngineError> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result,
        Err(_) => Err(EngineError::Timeout(limit)),
    }
}
