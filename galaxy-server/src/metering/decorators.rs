//! Decorators that meter the game loop where it meets the outside world: every engine
//! call (and so every turn), every container operation, every mail send and every
//! health event recorded. They change nothing they pass on; the runtime's services stay
//! unaware of metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::stream::BoxStream;
use galaxy_core::domain::GameId;
use galaxy_core::domain::health::{HealthEvent, HealthEventKind};
use galaxy_core::domain::mail::OutgoingMail;
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::ports::{
    ContainerError, ContainerEvent, ContainerInfo, ContainerRuntime, ContainerSpec,
    CreatedContainer, EngineClient, EngineError, EngineInit, EngineState, EngineTarget,
    HealthEventStore, Mailer, MailerError, OrdersVerdict, StoreError,
};

use super::{
    CONTAINER_OPERATION_DURATION, CONTAINER_OPERATIONS, ENGINE_REQUEST_DURATION, ENGINE_REQUESTS,
    HEALTH_EVENTS, MAIL_SEND_DURATION, MAIL_SENDS, TURN_DURATION, TURNS,
};

/// The outcome label of an engine call: `ok`, `refused` (the engine said no: a 4xx,
/// or a request that could not be sent as asked) or `unavailable` (anything else).
fn engine_outcome<T>(result: &Result<T, EngineError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(EngineError::Status { status, .. }) if (400..500).contains(status) => "refused",
        Err(EngineError::InvalidRequest { .. }) => "refused",
        Err(_) => "unavailable",
    }
}

fn record_engine<T>(operation: &'static str, started: Instant, result: &Result<T, EngineError>) {
    let outcome = engine_outcome(result);
    metrics::counter!(ENGINE_REQUESTS, "operation" => operation, "outcome" => outcome).increment(1);
    metrics::histogram!(ENGINE_REQUEST_DURATION, "operation" => operation)
        .record(started.elapsed().as_secs_f64());
}

/// Meters an [`EngineClient`].
pub struct MeteredEngine(pub Arc<dyn EngineClient>);

#[async_trait]
impl EngineClient for MeteredEngine {
    async fn healthz(&self, target: &EngineTarget) -> Result<(), EngineError> {
        let started = Instant::now();
        let result = self.0.healthz(target).await;
        record_engine("healthz", started, &result);
        result
    }

    async fn init(
        &self,
        target: &EngineTarget,
        init: &EngineInit,
    ) -> Result<EngineState, EngineError> {
        let started = Instant::now();
        let result = self.0.init(target, init).await;
        record_engine("init", started, &result);
        result
    }

    async fn run_turn(
        &self,
        target: &EngineTarget,
        expected_turn: u32,
    ) -> Result<EngineState, EngineError> {
        let started = Instant::now();
        let result = self.0.run_turn(target, expected_turn).await;
        record_engine("run_turn", started, &result);
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        metrics::counter!(TURNS, "outcome" => outcome).increment(1);
        if result.is_ok() {
            metrics::histogram!(TURN_DURATION).record(started.elapsed().as_secs_f64());
        }
        result
    }

    async fn submit_orders(
        &self,
        target: &EngineTarget,
        race: &str,
        turn: u32,
        orders: &serde_json::Value,
    ) -> Result<OrdersVerdict, EngineError> {
        let started = Instant::now();
        let result = self.0.submit_orders(target, race, turn, orders).await;
        record_engine("submit_orders", started, &result);
        result
    }

    async fn report(
        &self,
        target: &EngineTarget,
        race: &str,
        turn: u32,
    ) -> Result<serde_json::Value, EngineError> {
        let started = Instant::now();
        let result = self.0.report(target, race, turn).await;
        record_engine("report", started, &result);
        result
    }

    async fn state(&self, target: &EngineTarget) -> Result<EngineState, EngineError> {
        let started = Instant::now();
        let result = self.0.state(target).await;
        record_engine("state", started, &result);
        result
    }
}

fn record_container<T>(
    operation: &'static str,
    started: Instant,
    result: &Result<T, ContainerError>,
) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(ContainerError::NotFound(_)) => "not_found",
        Err(_) => "failed",
    };
    metrics::counter!(CONTAINER_OPERATIONS, "operation" => operation, "outcome" => outcome)
        .increment(1);
    metrics::histogram!(CONTAINER_OPERATION_DURATION, "operation" => operation)
        .record(started.elapsed().as_secs_f64());
}

/// Meters a [`ContainerRuntime`]'s lifecycle operations and inspections (logs, listings
/// and the event stream pass through unmetered).
pub struct MeteredContainers(pub Arc<dyn ContainerRuntime>);

#[async_trait]
impl ContainerRuntime for MeteredContainers {
    async fn ensure_image(&self, engine: &str) -> Result<(), ContainerError> {
        let started = Instant::now();
        let result = self.0.ensure_image(engine).await;
        record_container("ensure_image", started, &result);
        result
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<CreatedContainer, ContainerError> {
        let started = Instant::now();
        let result = self.0.create(spec).await;
        record_container("create", started, &result);
        result
    }

    async fn start(&self, container_id: &str) -> Result<(), ContainerError> {
        let started = Instant::now();
        let result = self.0.start(container_id).await;
        record_container("start", started, &result);
        result
    }

    async fn stop(&self, container_id: &str, grace: Duration) -> Result<(), ContainerError> {
        let started = Instant::now();
        let result = self.0.stop(container_id, grace).await;
        record_container("stop", started, &result);
        result
    }

    async fn remove(&self, container_id: &str) -> Result<(), ContainerError> {
        let started = Instant::now();
        let result = self.0.remove(container_id).await;
        record_container("remove", started, &result);
        result
    }

    async fn inspect(&self, container_id: &str) -> Result<ContainerInfo, ContainerError> {
        let started = Instant::now();
        let result = self.0.inspect(container_id).await;
        record_container("inspect", started, &result);
        result
    }

    async fn logs(&self, container_id: &str, lines: usize) -> Result<Vec<String>, ContainerError> {
        self.0.logs(container_id, lines).await
    }

    async fn list_by_label(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<ContainerInfo>, ContainerError> {
        self.0.list_by_label(key, value).await
    }

    async fn events(
        &self,
    ) -> Result<BoxStream<'static, Result<ContainerEvent, ContainerError>>, ContainerError> {
        self.0.events().await
    }
}

/// Meters a [`Mailer`]: each send's outcome and duration.
pub struct MeteredMailer(pub Arc<dyn Mailer>);

#[async_trait]
impl Mailer for MeteredMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<String, MailerError> {
        let started = Instant::now();
        let result = self.0.send(mail).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) if e.is_permanent() => "permanent",
            Err(_) => "transient",
        };
        metrics::counter!(MAIL_SENDS, "outcome" => outcome).increment(1);
        metrics::histogram!(MAIL_SEND_DURATION).record(started.elapsed().as_secs_f64());
        result
    }
}

/// Counts every health event recorded, by kind.
pub struct MeteredHealthEvents(pub Arc<dyn HealthEventStore>);

#[async_trait]
impl HealthEventStore for MeteredHealthEvents {
    async fn append_health_event(&self, event: &HealthEvent) -> Result<(), StoreError> {
        let result = self.0.append_health_event(event).await;
        if result.is_ok() {
            metrics::counter!(HEALTH_EVENTS, "kind" => event.kind.as_str()).increment(1);
        }
        result
    }

    async fn list_health_events(
        &self,
        game_id: Option<GameId>,
        page: &PageRequest,
    ) -> Result<Page<HealthEvent>, StoreError> {
        self.0.list_health_events(game_id, page).await
    }

    async fn count_health_events(
        &self,
        game_id: Option<GameId>,
        kind: HealthEventKind,
    ) -> Result<u64, StoreError> {
        self.0.count_health_events(game_id, kind).await
    }
}
