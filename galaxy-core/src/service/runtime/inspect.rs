//! The periodic container inspect (seed 004 semantics): the domain's [`InspectTracker`]
//! reports a restart-count increase (the first observation only sets the baseline), a
//! state other than `running`, or health `unhealthy`, as `inspect_unhealthy` — once per
//! change of state: a condition that holds is reported again only as a digest every
//! few hours, so a container left exited does not mail every admin on every pass.
//!
//! A bound container found `exited` or `dead` while its game is `running` (Docker does
//! not restart a container stopped by `docker kill`) also gets a durable restart job,
//! one per incident (see `restart.rs`).
//!
//! A container that is gone is left to the reconciler and the events listener, so that
//! `container_disappeared` has those two sources only. Containers are inspected one after
//! the other: the calls are cheap and the runtime daemon is spared a fan-out.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::restart::{CRASH_LOOP_WINDOW, RestartQueued, queue_restart};
use super::shared::{HealthLog, JobQueue, Statuses};
use super::{ObservationReport, RuntimeConfig, RuntimePorts};
use crate::domain::health::{HealthEventKind, InspectObservation, InspectTracker};
use crate::domain::runtime::{RuntimeRecord, RuntimeStatus};
use crate::ports::{ContainerError, ContainerRuntime, StoreError};
use crate::worker::{TickReport, Worker};

/// Inspects every running game's container.
pub struct InspectWorker {
    /// The running records, and the games a restart is queued for.
    statuses: Statuses,
    /// Inspects the containers.
    containers: Arc<dyn ContainerRuntime>,
    /// The restart jobs of containers found stopped.
    queue: JobQueue,
    /// The findings' health events and alerts.
    health: HealthLog,
    /// Restart-count baselines; never held across an await.
    tracker: Mutex<InspectTracker>,
}

impl InspectWorker {
    /// An inspect worker over `ports`.
    pub fn new(ports: RuntimePorts, _config: RuntimeConfig) -> Self {
        Self {
            statuses: Statuses::new(&ports),
            containers: Arc::clone(&ports.containers),
            queue: JobQueue::new(&ports),
            health: HealthLog::new(&ports),
            tracker: Mutex::new(InspectTracker::new()),
        }
    }

    fn tracker(&self) -> std::sync::MutexGuard<'_, InspectTracker> {
        // Only pure, non-panicking calls mutate it; a poisoned lock holds consistent state.
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One pass over the running records.
    pub async fn pass(&self) -> Result<ObservationReport, StoreError> {
        let records = self
            .statuses
            .all_records(Some(RuntimeStatus::Running))
            .await?;
        self.tracker().prune(records.iter().map(|r| r.game_id));
        let mut report = ObservationReport::default();
        for record in records {
            if let Err(error) = self.inspect(&record, &mut report).await {
                tracing::warn!(%error, game_id = %record.game_id, "inspect finding not stored");
            }
        }
        Ok(report)
    }

    async fn inspect(
        &self,
        record: &RuntimeRecord,
        report: &mut ObservationReport,
    ) -> Result<(), StoreError> {
        let Some(binding) = &record.binding else {
            return Ok(());
        };
        let containers = &self.containers;
        // Before the call: a restart that finishes after this instant answered what the
        // call sees (see `queue_restart`).
        let seen = self.statuses.now();
        let info = match containers.inspect(&binding.container_id).await {
            Ok(info) => info,
            Err(ContainerError::NotFound(_)) => {
                tracing::debug!(game_id = %record.game_id, "inspect skipped: container missing");
                return Ok(());
            }
            Err(error) => {
                tracing::warn!(%error, game_id = %record.game_id, "inspect failed");
                return Ok(());
            }
        };
        report.observed += 1;
        // Down and nobody will start it again (`docker kill`, a restart policy that gave
        // up); a `restarting` container is the restart policy's business.
        if info.exited_for_good() {
            // Queued before the finding is stored: a store failure there must not leave
            // the game without its recovery. One job per incident (see `restart_key`).
            let games = self.statuses.games.as_ref();
            match queue_restart(games, &self.queue, record.game_id, seen).await {
                Ok(RestartQueued::CrashLoop { restarts }) => {
                    self.pause_crash_loop(record, &binding.container_id, restarts, report)
                        .await?;
                }
                Ok(RestartQueued::Queued | RestartQueued::Handled | RestartQueued::NotRunning) => {}
                Err(error) => {
                    tracing::warn!(%error, game_id = %record.game_id, "restart job not queued; the next pass tries again");
                }
            }
        }
        let observation = InspectObservation {
            restart_count: info.restart_count,
            state: info.state,
            health: info.health,
        };
        let now = self.statuses.now();
        let finding = self.tracker().observe(record.game_id, observation, now);
        let Some(finding) = finding else {
            return Ok(());
        };
        let mut detail = finding.detail();
        detail["container_id"] = binding.container_id.clone().into();
        let event = self
            .health
            .store_health_event(record.game_id, finding.kind(), detail)
            .await?;
        self.health.alert_observation(&event).await;
        report.events.push(event);
        Ok(())
    }
}

impl InspectWorker {
    /// An engine that stopped again after
    /// [`CRASH_LOOP_RESTARTS`](super::CRASH_LOOP_RESTARTS) restarts within the window:
    /// the game pauses for an admin (who can look at the engine's output, then re-create
    /// it), with a health event and an alert, instead of one more restart.
    async fn pause_crash_loop(
        &self,
        record: &RuntimeRecord,
        container_id: &str,
        restarts: usize,
        report: &mut ObservationReport,
    ) -> Result<(), StoreError> {
        let game_id = record.game_id;
        let window = CRASH_LOOP_WINDOW.num_minutes();
        tracing::warn!(%game_id, restarts, "engine in a crash loop: pausing the game");
        let reason = format!(
            "the engine stopped again after {restarts} restarts within {window} minutes; \
             an admin can read its output and re-create it"
        );
        let paused = self.statuses.pause_for_health(game_id, reason).await?;
        let now = self.statuses.now();
        self.statuses
            .records
            .set_healthy(game_id, false, now)
            .await?;
        let detail = serde_json::json!({
            "reason": "crash_loop",
            "container_id": container_id,
            "restarts": restarts,
            "window_minutes": window,
            "paused": paused,
        });
        let event = self
            .health
            .store_health_event(game_id, HealthEventKind::InspectUnhealthy, detail)
            .await?;
        self.health.alert(&event).await;
        report.events.push(event);
        Ok(())
    }
}

#[async_trait]
impl Worker for InspectWorker {
    fn name(&self) -> &'static str {
        "container_inspect"
    }

    async fn tick(&self) -> Result<TickReport, StoreError> {
        self.pass().await?;
        Ok(TickReport { handled: 0 })
    }
}
