//! The reconciler: compares the containers labelled `galaxy.backend=1` with the runtime
//! records and repairs the difference.
//!
//! - A labelled container with no record is **adopted** when its game is live: a record
//!   bound to it is stored (running and scheduled if the container runs and the game is
//!   running; the turn counter is learnt at the first turn, since an engine already past
//!   the expected turn answers its state). Binding needs the engine's address, which a
//!   runtime can give through the [`ENDPOINT_LABEL`] label; without it the record is
//!   stored `failed` and unbound, visible to admins, and a retried start replaces the
//!   container. A container of a finished, cancelled or unknown game is stopped and
//!   removed instead: nothing will ever use it. So is a leftover the record is not bound
//!   to (a failed start's) once its game ended.
//! - A live record (`starting`, `running`) whose container is missing is marked
//!   `removed` and reported to the lobby as a start result would be: a `starting` game
//!   becomes `start_failed`; a running game is paused. Both store `container_disappeared`
//!   and alert the admins.
//! - A running record of a game that ended gets its stop job (again): a safety net for a
//!   stop job that could not be queued when the game ended.
//! - A running, unscheduled and unclaimed record of a running game whose last turn did
//!   not finish it is scheduled again (the schedule's next firing): a game "running" with
//!   no turn ever due would otherwise wait for good, unnoticed. Every path that clears a
//!   running game's schedule is ordered not to leave it so, but a status read and a
//!   release of two processes can still interleave that way; this is the safety net.
//!
//! Records are read before containers are listed: a container created after the listing
//! is bound only after it, so a fresh binding is never mistaken for a missing container.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::shared::{HealthLog, JobQueue, Notices, Statuses};
use super::start::ignore_missing;
use super::{
    BACKEND_LABEL, ENDPOINT_LABEL, GAME_LABEL, INSTANCE_LABEL, RuntimeConfig, RuntimePorts,
};
use crate::domain::GameId;
use crate::domain::game::{Game, GameStatus, GameTrigger};
use crate::domain::health::HealthEventKind;
use crate::domain::notification::NotificationKind;
use crate::domain::runtime::{JobKind, RuntimeBinding, RuntimeRecord, RuntimeStatus};
use crate::ports::{ContainerInfo, ContainerRuntime, StoreError, TurnArchiveStore};
use crate::worker::{TickReport, Worker};

/// What one reconciler pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Unrecorded containers adopted into a new record.
    pub adopted: usize,
    /// Unrecorded containers of ended or unknown games stopped and removed.
    pub removed_containers: usize,
    /// Records whose container was missing, marked `removed`.
    pub marked_removed: usize,
    /// Stop jobs queued for running records of ended games.
    pub stops_queued: usize,
    /// Running games found with no turn due, scheduled again.
    pub rescheduled: usize,
}

impl ReconcileReport {
    fn total(&self) -> usize {
        self.adopted + self.removed_containers + self.marked_removed
    }
}

/// Repairs differences between the container runtime and the records.
pub struct Reconciler {
    /// The records compared, and the games whose container went.
    statuses: Statuses,
    /// The containers compared.
    containers: Arc<dyn ContainerRuntime>,
    /// A vanished container's health event and alert.
    health: HealthLog,
    /// A start failed by a vanished container, told to the admins and the host.
    notices: Notices,
    /// The stop jobs of running records of ended games.
    queue: JobQueue,
    /// Whether a game's last turn finished it (an unscheduled running game whose last
    /// turn did is about to be marked finished, not to be scheduled again).
    archive: Arc<dyn TurnArchiveStore>,
    /// `instance`: only containers carrying this installation's label are looked at.
    instance: String,
    /// `stop_grace`: how long a stray container may take to stop.
    stop_grace: Duration,
}

impl Reconciler {
    /// A reconciler over `ports`.
    pub fn new(ports: RuntimePorts, config: RuntimeConfig) -> Self {
        Self {
            statuses: Statuses::new(&ports),
            containers: Arc::clone(&ports.containers),
            health: HealthLog::new(&ports),
            notices: Notices::new(&ports),
            queue: JobQueue::new(&ports),
            archive: Arc::clone(&ports.archive),
            instance: config.instance,
            stop_grace: config.stop_grace,
        }
    }

    /// One pass. A container runtime that cannot list changes nothing.
    pub async fn pass(&self) -> Result<ReconcileReport, StoreError> {
        let mut report = ReconcileReport::default();
        // The live records only: a container of a game whose record is not live (or
        // missing) is looked up on its own below.
        let records = self.statuses.live_records().await?;
        let containers = match self
            .containers
            .list_by_label(INSTANCE_LABEL, &self.instance)
            .await
        {
            // Only Galaxy game containers of this installation.
            Ok(containers) => containers
                .into_iter()
                .filter(|c| c.labels.get(BACKEND_LABEL).map(String::as_str) == Some("1"))
                .collect::<Vec<_>>(),
            Err(error) => {
                tracing::warn!(%error, "containers not listed; nothing reconciled");
                return Ok(report);
            }
        };
        let by_game: HashMap<GameId, &RuntimeRecord> =
            records.iter().map(|r| (r.game_id, r)).collect();
        for info in &containers {
            let Some(Ok(game_id)) = info.labels.get(GAME_LABEL).map(|id| GameId::parse(id)) else {
                tracing::warn!(
                    container = info.container_id,
                    "labelled container without a valid game label"
                );
                continue;
            };
            let outcome = match by_game.get(&game_id) {
                Some(record) if is_bound_live(record, &info.container_id) => Ok(()),
                Some(_) => self.unbound(info, game_id, &mut report).await,
                None => match self.statuses.records.get_record(game_id).await {
                    Ok(_) => self.unbound(info, game_id, &mut report).await,
                    Err(StoreError::NotFound { .. }) => {
                        self.unrecorded(info, game_id, &mut report).await
                    }
                    Err(error) => Err(error),
                },
            };
            if let Err(error) = outcome {
                tracing::warn!(%error, %game_id, "container not reconciled");
            }
        }
        let present: HashSet<&str> = containers.iter().map(|c| c.container_id.as_str()).collect();
        for record in &records {
            let live = record.status.is_live();
            let Some(binding) = record.binding.as_ref().filter(|_| live) else {
                continue;
            };
            let outcome = if present.contains(binding.container_id.as_str()) {
                self.unscheduled(record, &mut report).await
            } else {
                self.gone(record, &mut report).await
            };
            if let Err(error) = outcome {
                tracing::warn!(%error, game_id = %record.game_id, "record not reconciled");
            }
        }
        Ok(report)
    }

    /// A labelled container without a record: adopt it, or remove it.
    async fn unrecorded(
        &self,
        info: &ContainerInfo,
        game_id: GameId,
        report: &mut ReconcileReport,
    ) -> Result<(), StoreError> {
        let statuses = &self.statuses;
        // A start job may have recorded the game since the records were read.
        match statuses.records.get_record(game_id).await {
            Ok(_) => return Ok(()),
            Err(StoreError::NotFound { .. }) => {}
            Err(error) => return Err(error),
        }
        let game = match statuses.games.get_game(game_id).await {
            Ok(game) if !game.status.is_terminal() => game,
            Ok(_) | Err(StoreError::NotFound { .. }) => {
                self.remove(info, game_id, report).await;
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        let record = adopted_record(statuses, &game, info);
        match statuses.records.insert_record(&record).await {
            Ok(()) => {
                tracing::info!(%game_id, container = info.container_id, status = %record.status, "container adopted");
                report.adopted += 1;
                Ok(())
            }
            Err(StoreError::Duplicate { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// A container of a recorded game that the record is not (live and) bound to: a
    /// leftover of a failed or ended start. Removed once its game ended; until then a
    /// retried start replaces it.
    async fn unbound(
        &self,
        info: &ContainerInfo,
        game_id: GameId,
        report: &mut ReconcileReport,
    ) -> Result<(), StoreError> {
        match self.statuses.games.get_game(game_id).await {
            Ok(game) if !game.status.is_terminal() => Ok(()),
            Ok(_) | Err(StoreError::NotFound { .. }) => {
                self.remove(info, game_id, report).await;
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Stops and removes a container nothing will use again.
    async fn remove(&self, info: &ContainerInfo, game_id: GameId, report: &mut ReconcileReport) {
        let containers = &self.containers;
        let id = &info.container_id;
        let grace = self.stop_grace;
        let removed = match ignore_missing(containers.stop(id, grace).await) {
            Ok(()) => ignore_missing(containers.remove(id).await),
            Err(error) => Err(error),
        };
        match removed {
            Ok(()) => report.removed_containers += 1,
            Err(error) => tracing::warn!(%error, %game_id, "stray container not removed"),
        }
    }

    /// A live record whose container is missing: `removed`, and the game told.
    async fn gone(
        &self,
        record: &RuntimeRecord,
        report: &mut ReconcileReport,
    ) -> Result<(), StoreError> {
        let statuses = &self.statuses;
        if statuses
            .advance_record(record, RuntimeStatus::Removed)
            .await?
            .is_none()
        {
            return Ok(());
        }
        report.marked_removed += 1;
        let game = match statuses.games.get_game(record.game_id).await {
            Ok(game) => game,
            Err(StoreError::NotFound { .. }) => return Ok(()),
            Err(error) => return Err(error),
        };
        if !matches!(
            game.status,
            GameStatus::Starting | GameStatus::Running | GameStatus::Paused
        ) {
            return Ok(());
        }
        let container = record.binding.as_ref().map(|b| b.container_id.clone());
        let detail = json!({ "source": "reconciler", "container_id": container });
        let kind = HealthEventKind::ContainerDisappeared;
        let event = self
            .health
            .store_health_event(game.id, kind, detail)
            .await?;
        self.health.alert(&event).await;
        let records = &statuses.records;
        records.set_healthy(game.id, false, statuses.now()).await?;
        let reason = crate::domain::game::reasons::CONTAINER_DISAPPEARED.to_owned();
        match game.status {
            GameStatus::Starting => self.start_failed(&game, reason).await,
            GameStatus::Running => statuses.pause_for_health(game.id, reason).await.map(|_| ()),
            _ => Ok(()),
        }
    }

    async fn start_failed(&self, game: &Game, reason: String) -> Result<(), StoreError> {
        let failed = self
            .statuses
            .change_game(
                game.id,
                GameStatus::Starting,
                GameStatus::StartFailed,
                GameTrigger::RuntimeEvent,
                None,
                Some(reason.clone()),
            )
            .await?;
        if let Some(failed) = failed {
            let payload = json!({
                "game_id": failed.id,
                "game_name": failed.settings.name.as_str(),
                "reason": reason,
            });
            let key = format!("game:{}:start_failed:reconciler", failed.id);
            let kind = NotificationKind::GameStartFailed;
            self.notices
                .notify_admins(kind, key, &failed, true, payload)
                .await;
        }
        Ok(())
    }

    /// A running, unscheduled record: its game ended (queue its stop job, idempotent by
    /// key, so an already queued one is found, not doubled), or it is running with no
    /// turn due ([`Reconciler::reschedule`]).
    async fn unscheduled(
        &self,
        record: &RuntimeRecord,
        report: &mut ReconcileReport,
    ) -> Result<(), StoreError> {
        if record.status != RuntimeStatus::Running || record.next_turn_at.is_some() {
            return Ok(());
        }
        let game = self.statuses.games.get_game_fresh(record.game_id).await?;
        if game.status.is_terminal() {
            let key = format!("stop:{}:{}", game.id, game.status);
            self.queue.enqueue(game.id, JobKind::Stop, key).await?;
            report.stops_queued += 1;
        } else if game.status == GameStatus::Running {
            self.reschedule(&game, report).await?;
        }
        Ok(())
    }

    /// A running game whose record has no turn due: scheduled again at the schedule's
    /// next firing, unless a turn holds it (it writes its own schedule), the record moved
    /// on since the pass read it, or its last turn finished the game (its end is being
    /// announced).
    async fn reschedule(
        &self,
        game: &Game,
        report: &mut ReconcileReport,
    ) -> Result<(), StoreError> {
        let statuses = &self.statuses;
        let now = statuses.now();
        let record = statuses.records.get_record(game.id).await?;
        let held = record.turn_lease.is_some_and(|l| l.is_held_at(now));
        if record.status != RuntimeStatus::Running || record.next_turn_at.is_some() || held {
            return Ok(());
        }
        let latest = self.archive.latest_turn(game.id).await?;
        if latest.is_some_and(|turn| turn.finished) {
            return Ok(());
        }
        // A schedule with no firing left (one bounded by a year) has nothing to give.
        let Some(next) = statuses.next_turn_at(game) else {
            return Ok(());
        };
        statuses
            .records
            .set_schedule(game.id, Some(next), false, now)
            .await?;
        tracing::warn!(game_id = %game.id, %next, "running game had no turn due: scheduled again");
        report.rescheduled += 1;
        Ok(())
    }
}

/// Whether `record` is live and bound to `container`.
fn is_bound_live(record: &RuntimeRecord, container: &str) -> bool {
    record.status.is_live()
        && record
            .binding
            .as_ref()
            .is_some_and(|b| b.container_id == container)
}

/// The record an adopted container gets (see the module doc).
fn adopted_record(statuses: &Statuses, game: &Game, info: &ContainerInfo) -> RuntimeRecord {
    let mut record = RuntimeRecord::new(game.id, game.settings.engine.clone(), statuses.now());
    let Some(endpoint) = info.labels.get(ENDPOINT_LABEL) else {
        record.status = RuntimeStatus::Failed;
        record.healthy = false;
        return record;
    };
    record.binding = Some(RuntimeBinding {
        container_id: info.container_id.clone(),
        engine_endpoint: endpoint.clone(),
    });
    if info.state == "running" {
        record.status = RuntimeStatus::Running;
        if game.status == GameStatus::Running {
            record.next_turn_at = statuses.next_turn_at(game);
        }
    } else {
        record.status = RuntimeStatus::Stopped;
    }
    record
}

#[async_trait]
impl Worker for Reconciler {
    fn name(&self) -> &'static str {
        "runtime_reconciler"
    }

    async fn tick(&self) -> Result<TickReport, StoreError> {
        let report = self.pass().await?;
        Ok(TickReport {
            handled: report.total(),
        })
    }
}
