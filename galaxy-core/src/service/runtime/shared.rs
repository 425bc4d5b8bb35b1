//! What the runtime's service and workers share: the ports, the configuration, and the
//! small effects each of them performs (compare-and-set status changes, health events,
//! notifications, engine calls under a deadline).

use std::future::Future;
use std::sync::Arc;

use serde_json::json;

use super::{RuntimeConfig, RuntimePorts};
use crate::domain::application::ApplicationStatus;
use crate::domain::game::{Game, GameStatus, GameTrigger};
use crate::domain::health::{HealthEvent, HealthEventKind};
use crate::domain::notification::NotificationKind;
use crate::domain::page::PageRequest;
use crate::domain::runtime::{JobKind, RuntimeBinding, RuntimeJob, RuntimeRecord, RuntimeStatus};
use crate::domain::{GameId, HealthEventId, JobId, LeaseToken, Timestamp, UserId};
use crate::ports::{
    EngineError, EngineInit, EngineRace, EngineTarget, GameStatusChange, NewNotification,
    NotifyError,
};
use crate::ports::{EngineState, StoreError};

/// Largest page the runtime reads when it walks a whole list.
const WALK_PAGE: u32 = 200;

/// Ports and configuration, cheap to clone.
#[derive(Clone)]
pub(crate) struct Shared {
    /// Where state lives and how the outside world is reached.
    pub(crate) ports: RuntimePorts,
    /// Immutable settings.
    pub(crate) config: Arc<RuntimeConfig>,
}

impl Shared {
    pub(crate) fn new(ports: RuntimePorts, config: RuntimeConfig) -> Self {
        Self {
            ports,
            config: Arc::new(config),
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.ports.clock.now()
    }

    pub(crate) fn lease_token(&self) -> LeaseToken {
        LeaseToken::from_uuid(self.ports.ids.uuid())
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
        };
        match self
            .ports
            .games
            .update_game_status(game_id, from, &change)
            .await
        {
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
        let records = &self.ports.records;
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
            let got = self.ports.records.list_records(status, &page).await?;
            all.extend(got.items);
            match got.next_after {
                Some(after) => {
                    page = PageRequest::after(WALK_PAGE, after).map_err(StoreError::internal)?
                }
                None => return Ok(all),
            }
        }
    }

    /// The races of a game, as `/admin/init` wants them: every approved application.
    pub(crate) async fn races(&self, game_id: GameId) -> Result<Vec<EngineRace>, StoreError> {
        let applications = self.ports.applications.list_applications(game_id).await?;
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
    pub(crate) async fn engine_init(&self, game: &Game) -> Result<EngineInit, StoreError> {
        let (high, low) = game.id.as_uuid().as_u64_pair();
        let mut settings = match &self.config.engine_settings {
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

    /// The approved players of a game.
    pub(crate) async fn players(&self, game_id: GameId) -> Vec<UserId> {
        match self.ports.applications.list_applications(game_id).await {
            Ok(applications) => applications
                .iter()
                .filter(|a| a.status == ApplicationStatus::Approved)
                .map(|a| a.user_id)
                .collect(),
            Err(error) => {
                tracing::warn!(%error, %game_id, "players not listed; they are not notified");
                Vec::new()
            }
        }
    }

    /// Every active admin ([`crate::ports::UserStore::list_admins`], filtered on the
    /// status now). A failure is logged: the alert then reaches fewer people, but the
    /// state change it reports stands.
    pub(crate) async fn admins(&self) -> Vec<UserId> {
        let now = self.now();
        match self.ports.users.list_admins().await {
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

    /// [`Shared::notify`] that says whether the notification was stored, for the effects
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
        match self.ports.notifier.notify(notification).await {
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

    /// Stores a health event of a game.
    pub(crate) async fn store_health_event(
        &self,
        game_id: GameId,
        kind: HealthEventKind,
        detail: serde_json::Value,
    ) -> Result<HealthEvent, StoreError> {
        let event = HealthEvent {
            id: HealthEventId::from_uuid(self.ports.ids.uuid()),
            game_id,
            kind,
            detail,
            occurred_at: self.now(),
        };
        self.ports.health.append_health_event(&event).await?;
        tracing::info!(%game_id, kind = kind.as_str(), "health event stored");
        Ok(event)
    }

    /// Sends the admins a `runtime_health_alert` for a stored event.
    pub(crate) async fn alert(&self, event: &HealthEvent) {
        let payload = json!({
            "game_id": event.game_id,
            "event_id": event.id,
            "kind": event.kind.as_str(),
            "detail": event.detail,
            "occurred_at": event.occurred_at,
        });
        let recipients = self.admins().await;
        let key = format!("health:{}", event.id);
        let kind = NotificationKind::RuntimeHealthAlert;
        self.notify(kind, key, recipients, event.game_id, payload)
            .await;
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
    pub(crate) async fn unschedule(&self, game_id: GameId) {
        let records = &self.ports.records;
        if let Err(error) = records.set_schedule(game_id, None, false, self.now()).await {
            tracing::warn!(%error, %game_id, "schedule not cleared");
        }
    }

    /// The next firing of a game's schedule after now.
    pub(crate) fn next_turn_at(&self, game: &Game) -> Option<Timestamp> {
        game.settings.schedule.next_after(self.now())
    }

    /// Queues a durable job (or finds the one already queued under `key`).
    pub(crate) async fn enqueue(
        &self,
        game_id: GameId,
        kind: JobKind,
        key: String,
    ) -> Result<RuntimeJob, StoreError> {
        let id = JobId::from_uuid(self.ports.ids.uuid());
        let job = RuntimeJob::new(id, game_id, kind, key, self.now());
        self.ports.jobs.enqueue_job(&job).await
    }

    /// Runs an engine call under `engine_call_timeout`.
    pub(crate) async fn engine_call<T>(
        &self,
        call: impl Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        bounded(self.config.engine_call_timeout, call).await
    }

    /// How a game's bound engine is called: its endpoint, with the game's credential.
    pub(crate) fn engine_target(&self, game_id: GameId, binding: &RuntimeBinding) -> EngineTarget {
        let token = self.config.engine_tokens.token_for(game_id);
        EngineTarget::new(binding.engine_endpoint.clone(), token)
    }

    /// Initialises an engine (idempotent by contract).
    pub(crate) async fn init_engine(
        &self,
        game: &Game,
        target: &EngineTarget,
    ) -> Result<Result<EngineState, EngineError>, StoreError> {
        let init = self.engine_init(game).await?;
        let engine = &self.ports.engine;
        Ok(self.engine_call(engine.init(target, &init)).await)
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
