//! Raising notifications (the [`Notifier`] port every service uses) and administering
//! their dead letters. Dispatching routes to mail and push is the notification worker's
//! job.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Actor, ErrorKind, ServiceError, store_error_kind};
use crate::domain::notification::{
    NotificationIntent, NotificationRoute, RecipientPreference, RouteStatus,
};
use crate::domain::page::{Page, PageRequest};
use crate::domain::{IntentId, RouteId};
use crate::ports::{
    Clock, IntentInsert, NewNotification, NotificationStore, Notifier, NotifyError,
    SecretGenerator, StoreError, UserStore,
};

/// Why a notification admin call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotificationAdminError {
    /// The caller is not an admin.
    #[error("only admins may manage notifications")]
    Forbidden,
    /// A malformed route id.
    #[error(transparent)]
    InvalidId(#[from] crate::domain::ids::InvalidId),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServiceError for NotificationAdminError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Forbidden => ErrorKind::Forbidden,
            Self::InvalidId(_) => ErrorKind::InvalidRequest,
            Self::Store(e) => store_error_kind(e),
        }
    }
}

/// Turns raised notifications into stored intents with one route per recipient and
/// channel, honouring each recipient's mail preference.
pub struct NotificationService {
    /// Intents and routes.
    store: Arc<dyn NotificationStore>,
    /// Recipients' preferences.
    users: Arc<dyn UserStore>,
    /// Creation times.
    clock: Arc<dyn Clock>,
    /// Ids.
    secrets: Arc<dyn SecretGenerator>,
}

impl NotificationService {
    /// A service over the given ports.
    pub fn new(
        store: Arc<dyn NotificationStore>,
        users: Arc<dyn UserStore>,
        clock: Arc<dyn Clock>,
        secrets: Arc<dyn SecretGenerator>,
    ) -> Self {
        Self {
            store,
            users,
            clock,
            secrets,
        }
    }

    /// Lists dead letters (admin).
    pub async fn dead_letters(
        &self,
        actor: &Actor,
        page: &PageRequest,
    ) -> Result<Page<NotificationRoute>, NotificationAdminError> {
        if !actor.is_admin {
            return Err(NotificationAdminError::Forbidden);
        }
        Ok(self
            .store
            .list_routes(Some(RouteStatus::DeadLetter), page)
            .await?)
    }

    /// Re-queues a dead letter (admin).
    pub async fn retry_dead_letter(
        &self,
        actor: &Actor,
        route_id: &str,
    ) -> Result<NotificationRoute, NotificationAdminError> {
        if !actor.is_admin {
            return Err(NotificationAdminError::Forbidden);
        }
        let id = RouteId::parse(route_id)?;
        let retried = self.store.retry_dead_letter(id, self.clock.now()).await?;
        tracing::info!(route_id = %id, by = %actor.user_id, "dead letter queued again by an admin");
        Ok(retried)
    }
}

#[async_trait]
impl Notifier for NotificationService {
    async fn notify(&self, notification: NewNotification) -> Result<(), NotifyError> {
        let now = self.clock.now();
        let intent = NotificationIntent {
            id: IntentId::from_uuid(self.secrets.uuid()),
            kind: notification.kind,
            idempotency_key: notification.idempotency_key,
            recipients: notification.recipients,
            game_id: notification.game_id,
            payload: notification.payload,
            created_at: now,
        };
        let mut prefs = Vec::with_capacity(intent.recipients.len());
        for user_id in &intent.recipients {
            match self.users.get_user(*user_id).await {
                Ok(user) => prefs.push(RecipientPreference {
                    user_id: user.id,
                    email_notifications: user.email_notifications,
                }),
                // A recipient deleted meanwhile just gets no mail copy.
                Err(StoreError::NotFound { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        let routes: Vec<NotificationRoute> = intent
            .plan_routes(&prefs)
            .into_iter()
            .map(|(user_id, channel)| {
                NotificationRoute::new(
                    RouteId::from_uuid(self.secrets.uuid()),
                    intent.id,
                    user_id,
                    channel,
                    now,
                )
            })
            .collect();
        match self.store.insert_intent(&intent, &routes).await? {
            IntentInsert::Inserted => {
                tracing::debug!(kind = %intent.kind, routes = routes.len(), "notification raised");
            }
            IntentInsert::Duplicate(existing) => {
                tracing::debug!(kind = %intent.kind, %existing, "notification already raised");
            }
        }
        Ok(())
    }
}
