//! The container events listener: `die` and `oom` of a known container become
//! `inspect_unhealthy`, `destroy` becomes `container_disappeared`; each is stored and
//! alerts the admins. Records and game statuses are left to the reconciler, which checks
//! what is really gone, so a container that dies and is restarted by its restart policy
//! leaves a trace without pausing anything.
//!
//! [`EventsListener::run`] consumes the runtime's event stream and reconnects, with a
//! bounded doubling backoff, whenever it ends; [`EventsListener::handle`] is the
//! deterministic step tests drive.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::shared::{HealthLog, Statuses};
use super::{RuntimeConfig, RuntimePorts};
use crate::domain::health::{HealthEvent, HealthEventKind};
use crate::domain::runtime::RuntimeRecord;
use crate::ports::{ContainerEvent, ContainerRuntime, StoreError};

/// Listens to the container runtime's events.
pub struct EventsListener {
    /// The live records an event may concern.
    statuses: Statuses,
    /// The event stream.
    containers: Arc<dyn ContainerRuntime>,
    /// The events' health events and alerts.
    health: HealthLog,
    /// `events_backoff_min`: the first pause before a reconnect...
    backoff_min: Duration,
    /// ...`events_backoff_max`: doubling up to this.
    backoff_max: Duration,
}

impl EventsListener {
    /// A listener over `ports`.
    pub fn new(ports: RuntimePorts, config: RuntimeConfig) -> Self {
        Self {
            statuses: Statuses::new(&ports),
            containers: Arc::clone(&ports.containers),
            health: HealthLog::new(&ports),
            backoff_min: config.events_backoff_min,
            backoff_max: config.events_backoff_max,
        }
    }

    /// Handles one event; returns the stored health event, if the event mattered (an
    /// action of interest on the container a live record is bound to).
    pub async fn handle(&self, event: &ContainerEvent) -> Result<Option<HealthEvent>, StoreError> {
        let (kind, reason) = match event.action.as_str() {
            "die" => (HealthEventKind::InspectUnhealthy, "container_died"),
            "oom" => (HealthEventKind::InspectUnhealthy, "out_of_memory"),
            "destroy" => (HealthEventKind::ContainerDisappeared, "container_destroyed"),
            _ => return Ok(None),
        };
        let Some(record) = self.record_of(event).await? else {
            tracing::debug!(
                container = event.container_id,
                "event of an unknown container"
            );
            return Ok(None);
        };
        let detail = json!({
            "source": "events",
            "reason": reason,
            "action": event.action,
            "container_id": event.container_id,
        });
        let stored = self
            .health
            .store_health_event(record.game_id, kind, detail)
            .await?;
        self.health.alert_observation(&stored).await;
        Ok(Some(stored))
    }

    /// The live record bound to the event's container: found through the game label, or
    /// (without one) by scanning the live records.
    async fn record_of(&self, event: &ContainerEvent) -> Result<Option<RuntimeRecord>, StoreError> {
        let bound_here = |r: &RuntimeRecord| {
            r.status.is_live()
                && r.binding
                    .as_ref()
                    .is_some_and(|b| b.container_id == event.container_id)
        };
        if let Some(game_id) = event.game_id {
            return match self.statuses.records.get_record(game_id).await {
                Ok(record) => Ok(Some(record).filter(bound_here)),
                Err(StoreError::NotFound { .. }) => Ok(None),
                Err(error) => Err(error),
            };
        }
        let records = self.statuses.live_records().await?;
        Ok(records.into_iter().find(bound_here))
    }

    /// Consumes the event stream until `cancel` fires, reconnecting after every end or
    /// error with a doubling backoff between `events_backoff_min` and `_max` (reset once a
    /// connection delivers an event).
    pub async fn run(&self, cancel: CancellationToken) {
        let min = self.backoff_min.max(Duration::from_millis(1));
        let max = self.backoff_max.max(min);
        let mut backoff = min;
        while !cancel.is_cancelled() {
            let connected = tokio::select! {
                _ = cancel.cancelled() => break,
                connected = self.containers.events() => connected,
            };
            match connected {
                Ok(mut stream) => loop {
                    let next = tokio::select! {
                        _ = cancel.cancelled() => break,
                        next = stream.next() => next,
                    };
                    match next {
                        Some(Ok(event)) => {
                            backoff = min;
                            if let Err(error) = self.handle(&event).await {
                                tracing::warn!(%error, container = event.container_id, "container event not handled");
                            }
                        }
                        Some(Err(error)) => {
                            tracing::warn!(%error, "container event stream failed; reconnecting");
                            break;
                        }
                        None => {
                            tracing::info!("container event stream ended; reconnecting");
                            break;
                        }
                    }
                },
                Err(error) => tracing::warn!(%error, "container events unavailable"),
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(max);
        }
        tracing::info!("container events listener stopped");
    }
}
