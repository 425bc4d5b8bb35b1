//! A notification service and worker over fresh in-memory stores, a recording push
//! publisher, and helpers to raise notifications and inspect what came out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::TimeDelta;
use galaxy_core::domain::lease::ClaimRequest;
use galaxy_core::domain::mail::MailDelivery;
use galaxy_core::domain::notification::{
    NotificationIntent, NotificationKind, NotificationRoute, RouteStatus,
};
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::retry::RetryPolicy;
use galaxy_core::domain::user::{DisplayName, Email, Locale, User};
use galaxy_core::domain::{IntentId, LeaseToken, RouteId, Timestamp, UserId};
use galaxy_core::ports::{
    Clock, IntentInsert, MailStore, NewNotification, NotificationStore, Notifier, PushError,
    PushPublisher, RouteNext, SecretGenerator, StoreError, UserStore,
};
use galaxy_core::service::Actor;
use galaxy_core::service::notification::NotificationService;
use galaxy_core::service::templates::MailTemplates;
use galaxy_core::worker::notification::{
    NotificationWorker, NotificationWorkerConfig, NotificationWorkerPorts,
};
use galaxy_ports::memory::{MemoryMailStore, MemoryNotificationStore, MemoryUserStore};
use galaxy_ports::system::{ManualClock, SeededSecretGenerator};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// One published push event.
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    pub event_id: uuid::Uuid,
    pub users: Vec<UserId>,
    pub kind: String,
    pub payload: Value,
}

/// Records every publish; fails while `failing` is set; fires `cancel_on_publish` (a
/// shutdown arriving mid-dispatch) when one is set.
#[derive(Debug, Default)]
pub struct RecordingPush {
    pub events: Mutex<Vec<Pushed>>,
    pub failing: AtomicBool,
    pub cancel_on_publish: Mutex<Option<CancellationToken>>,
}

impl RecordingPush {
    pub fn events(&self) -> Vec<Pushed> {
        self.events.lock().unwrap().clone()
    }
}

#[async_trait]
impl PushPublisher for RecordingPush {
    async fn publish(
        &self,
        event_id: uuid::Uuid,
        user_ids: &[UserId],
        kind: &str,
        payload: &Value,
    ) -> Result<String, PushError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(PushError::Unavailable {
                source: "push service restarting".into(),
            });
        }
        if let Some(cancel) = self.cancel_on_publish.lock().unwrap().as_ref() {
            cancel.cancel();
        }
        let mut events = self.events.lock().unwrap();
        events.push(Pushed {
            event_id,
            users: user_ids.to_vec(),
            kind: kind.to_owned(),
            payload: payload.clone(),
        });
        Ok(format!("cursor-{}", events.len()))
    }
}

/// The memory notification store, except that `finish_route` of the routes in
/// `fail_finishes` fails (as a database outage would) as many times as counted there.
#[derive(Debug, Default)]
pub struct FlakyNotificationStore {
    pub inner: MemoryNotificationStore,
    pub fail_finishes: Mutex<HashMap<RouteId, usize>>,
}

#[async_trait]
impl NotificationStore for FlakyNotificationStore {
    async fn insert_intent(
        &self,
        intent: &NotificationIntent,
        routes: &[NotificationRoute],
    ) -> Result<IntentInsert, StoreError> {
        self.inner.insert_intent(intent, routes).await
    }
    async fn get_intent(&self, id: IntentId) -> Result<NotificationIntent, StoreError> {
        self.inner.get_intent(id).await
    }
    async fn list_routes(
        &self,
        status: Option<RouteStatus>,
        page: &PageRequest,
    ) -> Result<Page<NotificationRoute>, StoreError> {
        self.inner.list_routes(status, page).await
    }
    async fn claim_routes(
        &self,
        claim: &ClaimRequest,
    ) -> Result<Vec<NotificationRoute>, StoreError> {
        self.inner.claim_routes(claim).await
    }
    async fn finish_route(
        &self,
        id: RouteId,
        token: LeaseToken,
        next: &RouteNext,
        at: Timestamp,
    ) -> Result<NotificationRoute, StoreError> {
        let failing = match self.fail_finishes.lock().unwrap().get_mut(&id) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        };
        if failing {
            return Err(StoreError::Unavailable {
                source: "connection reset".into(),
            });
        }
        self.inner.finish_route(id, token, next, at).await
    }
    async fn retry_dead_letter(
        &self,
        id: RouteId,
        at: Timestamp,
    ) -> Result<NotificationRoute, StoreError> {
        self.inner.retry_dead_letter(id, at).await
    }
    async fn purge_notifications(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.inner.purge_notifications(before).await
    }
}

/// Stores, service, clock and push recorder of one test.
pub struct Harness {
    pub store: Arc<FlakyNotificationStore>,
    pub users: Arc<MemoryUserStore>,
    pub mail: Arc<MemoryMailStore>,
    pub push: Arc<RecordingPush>,
    pub clock: Arc<ManualClock>,
    pub secrets: Arc<SeededSecretGenerator>,
    pub service: NotificationService,
}

impl Harness {
    pub fn new() -> Self {
        let store = Arc::new(FlakyNotificationStore::default());
        let users = Arc::new(MemoryUserStore::new());
        let clock = Arc::new(ManualClock::at_fixed_start());
        let secrets = Arc::new(SeededSecretGenerator::new(11));
        let service =
            NotificationService::new(store.clone(), users.clone(), clock.clone(), secrets.clone());
        Self {
            store,
            users,
            mail: Arc::new(MemoryMailStore::default()),
            push: Arc::new(RecordingPush::default()),
            clock,
            secrets,
            service,
        }
    }

    /// A worker with a budget of `max_attempts` (backoff 10 s doubling to 40 s, lease 60 s).
    pub fn worker(&self, max_attempts: u32) -> NotificationWorker {
        let ports = NotificationWorkerPorts {
            store: self.store.clone(),
            users: self.users.clone(),
            mail: self.mail.clone(),
            push: self.push.clone(),
            clock: self.clock.clone(),
            secrets: self.secrets.clone(),
        };
        let config = NotificationWorkerConfig {
            batch_size: 10,
            lease: TimeDelta::seconds(60),
            retry: RetryPolicy::new(TimeDelta::seconds(10), TimeDelta::seconds(40), max_attempts)
                .unwrap(),
        };
        NotificationWorker::new(ports, config)
    }

    /// A worker with its own template set.
    pub fn worker_with_templates(&self, templates: MailTemplates) -> NotificationWorker {
        self.worker(3).with_templates(Arc::new(templates))
    }

    /// Stores a user with a display name, locale and mail preference.
    pub async fn user(&self, name: &str, locale: &str, wants_mail: bool) -> User {
        let email = Email::parse(&format!("{name}@example.org")).unwrap();
        let mut user = User::new(
            UserId::from_uuid(self.secrets.uuid()),
            email,
            self.clock.now(),
        );
        user.display_name = DisplayName::parse(name).unwrap();
        user.locale = Locale::parse(locale).unwrap();
        user.email_notifications = wants_mail;
        self.users.insert_user(&user).await.unwrap();
        user
    }

    pub fn admin(&self) -> Actor {
        Actor {
            user_id: UserId::from_uuid(self.secrets.uuid()),
            is_admin: true,
        }
    }

    /// Raises a notification through the service, as the lobby and runtime do.
    pub async fn raise(&self, kind: NotificationKind, key: &str, to: &[&User], payload: Value) {
        self.service
            .notify(NewNotification {
                kind,
                idempotency_key: key.to_owned(),
                recipients: to.iter().map(|u| u.id).collect(),
                game_id: None,
                payload,
            })
            .await
            .unwrap();
    }

    pub async fn routes(&self) -> Vec<NotificationRoute> {
        let page = PageRequest::first(200).unwrap();
        self.store.list_routes(None, &page).await.unwrap().items
    }

    pub async fn route(&self, user: &User, channel: &str) -> NotificationRoute {
        self.routes()
            .await
            .into_iter()
            .find(|r| r.user_id == user.id && r.channel.as_str() == channel)
            .unwrap_or_else(|| panic!("no {channel} route for {}", user.email))
    }

    pub async fn mails(&self) -> Vec<MailDelivery> {
        let page = PageRequest::first(200).unwrap();
        self.mail.list_mail(None, &page).await.unwrap().items
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}
