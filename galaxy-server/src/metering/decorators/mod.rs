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
use galaxy_core::domain::lease::ClaimRequest;
use galaxy_core::domain::mail::{MailAttempt, MailDelivery, MailStatus, OutgoingMail};
use galaxy_core::domain::notification::{NotificationIntent, NotificationRoute, RouteStatus};
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::{IntentId, LeaseToken, MailId, RouteId, Timestamp};
use galaxy_core::ports::{
    BatchFinished, ContainerError, ContainerEvent, ContainerInfo, ContainerRuntime, ContainerSpec,
    CreatedContainer, EngineClient, EngineError, EngineInit, EngineState, EngineTarget,
    HealthEventStore, IntentInsert, MailFinish, MailNext, MailStore, Mailer, MailerError,
    NotificationStore, OrdersVerdict, RouteFinish, RouteNext, StoreError,
};

use super::{
    CONTAINER_OPERATION_DURATION, CONTAINER_OPERATIONS, ENGINE_REQUEST_DURATION, ENGINE_REQUESTS,
    HEALTH_EVENTS, MAIL_DEAD_LETTERS, MAIL_SEND_DURATION, MAIL_SENDS, NOTIFICATION_ROUTES,
    TURN_DURATION, TURNS,
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

/// Counts every notification route finished (the finish written), by its channel and
/// how it ended: `galaxy_notification_routes_total`. Dead letters there are what an
/// operator retries from the admin pages.
pub struct MeteredNotifications(pub Arc<dyn NotificationStore>);

/// The outcome label of a route's finish.
fn route_outcome(next: &RouteNext) -> &'static str {
    match next {
        RouteNext::Delivered => "delivered",
        RouteNext::Retry { .. } => "retry",
        RouteNext::DeadLetter { .. } => "dead_letter",
    }
}

/// Registers at 0 every series an alert reads with `increase` or `rate`
/// (`deploy/prometheus/alerts.yaml`): notification routes by channel and outcome, turns
/// by outcome, engine health events by kind, mail sends by outcome, dead mail. A series born at 1
/// has no earlier sample to compare with, so the first failed turn or dead letter after a
/// start (often the only one: a failed turn pauses its game) would be an increase of 0
/// and no alert would fire.
pub fn register_alerted_series() {
    use galaxy_core::domain::health::HealthEventKind;
    use galaxy_core::domain::notification::Channel;
    for channel in [Channel::Push, Channel::Email] {
        for outcome in ["delivered", "retry", "dead_letter"] {
            metrics::counter!(
                NOTIFICATION_ROUTES,
                "channel" => channel.as_str(),
                "outcome" => outcome
            )
            .increment(0);
        }
    }
    for outcome in ["ok", "failed"] {
        metrics::counter!(TURNS, "outcome" => outcome).increment(0);
    }
    for kind in HealthEventKind::ALL {
        metrics::counter!(HEALTH_EVENTS, "kind" => kind.as_str()).increment(0);
    }
    for outcome in ["ok", "permanent", "transient"] {
        metrics::counter!(MAIL_SENDS, "outcome" => outcome).increment(0);
    }
    metrics::counter!(MAIL_DEAD_LETTERS).increment(0);
}

fn count_route(route: &NotificationRoute, next: &RouteNext) {
    metrics::counter!(
        NOTIFICATION_ROUTES,
        "channel" => route.channel.as_str(),
        "outcome" => route_outcome(next)
    )
    .increment(1);
}

#[async_trait]
impl NotificationStore for MeteredNotifications {
    async fn insert_intent(
        &self,
        intent: &NotificationIntent,
        routes: &[NotificationRoute],
    ) -> Result<IntentInsert, StoreError> {
        self.0.insert_intent(intent, routes).await
    }

    async fn get_intent(&self, id: IntentId) -> Result<NotificationIntent, StoreError> {
        self.0.get_intent(id).await
    }

    async fn list_routes(
        &self,
        status: Option<RouteStatus>,
        page: &PageRequest,
    ) -> Result<Page<NotificationRoute>, StoreError> {
        self.0.list_routes(status, page).await
    }

    async fn claim_routes(
        &self,
        claim: &ClaimRequest,
    ) -> Result<Vec<NotificationRoute>, StoreError> {
        self.0.claim_routes(claim).await
    }

    async fn finish_route(
        &self,
        id: RouteId,
        token: LeaseToken,
        next: &RouteNext,
        at: Timestamp,
    ) -> Result<NotificationRoute, StoreError> {
        let finished = self.0.finish_route(id, token, next, at).await;
        if let Ok(route) = &finished {
            count_route(route, next);
        }
        finished
    }

    async fn finish_routes(&self, finishes: &[RouteFinish]) -> BatchFinished<NotificationRoute> {
        let results = self.0.finish_routes(finishes).await?;
        for (finish, result) in finishes.iter().zip(&results) {
            if let Ok(route) = result {
                count_route(route, &finish.outcome);
            }
        }
        Ok(results)
    }

    async fn retry_dead_letter(
        &self,
        id: RouteId,
        at: Timestamp,
    ) -> Result<NotificationRoute, StoreError> {
        self.0.retry_dead_letter(id, at).await
    }

    async fn purge_notifications(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.0.purge_notifications(before).await
    }
}

/// Counts every mail the outbox gives up on (`galaxy_mail_dead_letters_total`): a
/// permanent refusal, or the attempts spent. The alert on new dead letters reads this
/// counter rather than the dead-mail gauge, which admin retries and the retention sweep
/// lower in the same hour.
pub struct MeteredMail(pub Arc<dyn MailStore>);

#[async_trait]
impl MailStore for MeteredMail {
    async fn enqueue_mail(&self, delivery: &MailDelivery) -> Result<MailDelivery, StoreError> {
        self.0.enqueue_mail(delivery).await
    }

    async fn get_mail(&self, id: MailId) -> Result<MailDelivery, StoreError> {
        self.0.get_mail(id).await
    }

    async fn list_mail(
        &self,
        status: Option<MailStatus>,
        page: &PageRequest,
    ) -> Result<Page<MailDelivery>, StoreError> {
        self.0.list_mail(status, page).await
    }

    async fn claim_mail(&self, claim: &ClaimRequest) -> Result<Vec<MailDelivery>, StoreError> {
        self.0.claim_mail(claim).await
    }

    async fn finish_mail_attempt(
        &self,
        id: MailId,
        token: LeaseToken,
        attempt: Option<MailAttempt>,
        next: MailNext,
        at: Timestamp,
    ) -> Result<MailDelivery, StoreError> {
        let dead = next == MailNext::Dead;
        let finished = self
            .0
            .finish_mail_attempt(id, token, attempt, next, at)
            .await;
        if finished.is_ok() && dead {
            metrics::counter!(MAIL_DEAD_LETTERS).increment(1);
        }
        finished
    }

    async fn finish_mail_attempts(&self, finishes: &[MailFinish]) -> BatchFinished<MailDelivery> {
        let results = self.0.finish_mail_attempts(finishes).await?;
        let dead = finishes
            .iter()
            .zip(&results)
            .filter(|(finish, result)| result.is_ok() && finish.outcome.next == MailNext::Dead)
            .count();
        metrics::counter!(MAIL_DEAD_LETTERS).increment(dead as u64);
        Ok(results)
    }

    async fn mail_attempts(&self, id: MailId) -> Result<Vec<MailAttempt>, StoreError> {
        self.0.mail_attempts(id).await
    }

    async fn retry_dead_mail(&self, id: MailId, at: Timestamp) -> Result<MailDelivery, StoreError> {
        self.0.retry_dead_mail(id, at).await
    }

    async fn count_mail_by_status(&self) -> Result<Vec<(MailStatus, u64)>, StoreError> {
        self.0.count_mail_by_status().await
    }

    async fn mail_queue_depth(&self) -> Result<Vec<(MailStatus, u64)>, StoreError> {
        self.0.mail_queue_depth().await
    }

    async fn purge_sent_mail(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.0.purge_sent_mail(before).await
    }

    async fn purge_dead_mail(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.0.purge_dead_mail(before).await
    }
}

#[cfg(test)]
mod mail_tests;
#[cfg(test)]
mod notification_tests;
