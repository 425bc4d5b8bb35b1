//! The active `/healthz` probe of running engines (seed 003 semantics): the domain's
//! [`ProbeTracker`] turns results into `probe_failed` after N consecutive failures and
//! `probe_recovered` on the first success after that; its state is pruned every pass
//! against the freshly read running records, so a game that stops and later runs again
//! starts from a clean counter.
//!
//! Each stored event alerts the admins; a `probe_failed` pauses the game when
//! `pause_on_unhealthy` is configured. The record's `healthy` flag follows what the
//! probes saw: an answer sets it, N failures in a row clear it, anything between leaves
//! it (so replicas probing the same engine, each counting its own failures, agree), and
//! an engine marked unhealthy by a failed turn is healthy again after its next good
//! probe and may be resumed.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;

use super::shared::{Engines, HealthLog, Statuses, bounded};
use super::{ObservationReport, RuntimeConfig, RuntimePorts};
use crate::domain::GameId;
use crate::domain::health::{InvalidFailureThreshold, ProbeTracker, ProbeTransition};
use crate::domain::runtime::{RuntimeRecord, RuntimeStatus};
use crate::ports::{EngineError, StoreError};
use crate::worker::{TickReport, Worker};

/// Probes every running engine's `/healthz`.
pub struct HealthProbe {
    /// The running records, their `healthy` flag, and the pause of a failed game.
    statuses: Statuses,
    /// Each engine's `/healthz`, with its credential.
    engines: Engines,
    /// The transitions' health events and alerts.
    health: HealthLog,
    /// `probe_concurrency`: probes one pass runs at once.
    concurrency: usize,
    /// `probe_timeout`: the bound on one probe.
    timeout: Duration,
    /// `pause_on_unhealthy`: whether a `probe_failed` engine's game is paused.
    pause_on_unhealthy: bool,
    /// Hysteresis state; never held across an await.
    tracker: Mutex<ProbeTracker>,
}

impl HealthProbe {
    /// A probe over `ports`; refuses a zero failure threshold.
    pub fn new(
        ports: RuntimePorts,
        config: RuntimeConfig,
    ) -> Result<Self, InvalidFailureThreshold> {
        let tracker = ProbeTracker::new(config.probe_failure_threshold)?;
        Ok(Self {
            statuses: Statuses::new(&ports),
            engines: Engines::new(&ports, &config),
            health: HealthLog::new(&ports),
            concurrency: config.probe_concurrency,
            timeout: config.probe_timeout,
            pause_on_unhealthy: config.pause_on_unhealthy,
            tracker: Mutex::new(tracker),
        })
    }

    fn tracker(&self) -> std::sync::MutexGuard<'_, ProbeTracker> {
        // The tracker is only mutated by pure, non-panicking calls; a poisoned lock still
        // holds consistent state.
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One pass: list running records, prune, probe each (bounded concurrency), then
    /// apply the verdicts.
    pub async fn pass(&self) -> Result<ObservationReport, StoreError> {
        let records = self
            .statuses
            .all_records(Some(RuntimeStatus::Running))
            .await?;
        self.tracker().prune(records.iter().map(|r| r.game_id));
        let bound: Vec<RuntimeRecord> = records
            .into_iter()
            .filter(|r| r.binding.is_some())
            .collect();
        let results: Vec<(RuntimeRecord, Result<(), EngineError>)> = futures::stream::iter(bound)
            .map(|record| async move {
                let result = self.probe(&record).await;
                (record, result)
            })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        let mut report = ObservationReport {
            observed: results.len(),
            ..ObservationReport::default()
        };
        for (record, result) in results {
            if let Err(error) = self.apply(&record, result, &mut report).await {
                tracing::warn!(%error, game_id = %record.game_id, "probe verdict not applied");
            }
        }
        Ok(report)
    }

    async fn probe(&self, record: &RuntimeRecord) -> Result<(), EngineError> {
        let Some(binding) = &record.binding else {
            return Ok(());
        };
        let target = self.engines.engine_target(record.game_id, binding);
        let call = self.engines.client.healthz(&target);
        bounded(self.timeout, call).await
    }

    async fn apply(
        &self,
        record: &RuntimeRecord,
        result: Result<(), EngineError>,
        report: &mut ObservationReport,
    ) -> Result<(), StoreError> {
        let game_id = record.game_id;
        let (transition, failed) = {
            let mut tracker = self.tracker();
            let transition = tracker.observe(game_id, result.is_ok());
            let failed = tracker.consecutive_failures(game_id) >= tracker.failure_threshold();
            (transition, failed)
        };
        if let Some(transition) = transition {
            self.publish(game_id, transition, &result, report).await?;
        }
        // The flag moves only on what this probe saw: an answer makes it healthy, N
        // failures in a row here make it unhealthy. Fewer failures leave it as it is, so
        // a replica whose count is lower (it started later) never writes back `true`
        // over another's verdict while the engine is down.
        let verdict = match (&result, failed) {
            (Ok(()), _) => Some(true),
            (Err(_), true) => Some(false),
            (Err(_), false) => None,
        };
        if let Some(healthy) = verdict.filter(|v| *v != record.healthy) {
            let records = &self.statuses.records;
            records
                .set_healthy(game_id, healthy, self.statuses.now())
                .await?;
        }
        Ok(())
    }

    /// Stores and announces a probe transition; pauses the game when configured.
    async fn publish(
        &self,
        game_id: GameId,
        transition: ProbeTransition,
        result: &Result<(), EngineError>,
        report: &mut ObservationReport,
    ) -> Result<(), StoreError> {
        let (status, error) = match result {
            Ok(()) => (None, String::new()),
            Err(EngineError::Status { status, .. }) => (Some(*status), format!("status {status}")),
            Err(error) => (None, error.to_string()),
        };
        let detail = transition.detail(status, &error);
        let event = self
            .health
            .store_health_event(game_id, transition.kind(), detail)
            .await?;
        self.health.alert_observation(&event).await;
        report.events.push(event);
        if matches!(transition, ProbeTransition::Failed { .. }) && self.pause_on_unhealthy {
            let reason = format!("engine failed its health probe: {error}");
            if self.statuses.pause_for_health(game_id, reason).await? {
                report.paused += 1;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Worker for HealthProbe {
    fn name(&self) -> &'static str {
        "health_probe"
    }

    async fn tick(&self) -> Result<TickReport, StoreError> {
        self.pass().await?;
        Ok(TickReport { handled: 0 })
    }
}
