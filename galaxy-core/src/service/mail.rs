//! Admin use cases of the mail outbox: list mail by status, see its attempts, retry
//! dead mail.

use std::sync::Arc;

use super::{Actor, ErrorKind, ServiceError, store_error_kind};
use crate::domain::MailId;
use crate::domain::mail::{MailAttempt, MailDelivery, MailStatus};
use crate::domain::page::{Page, PageRequest};
use crate::ports::{Clock, MailStore, StoreError};

/// Why a mail admin call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailAdminError {
    /// The caller is not an admin.
    #[error("only admins may manage the mail outbox")]
    Forbidden,
    /// A malformed mail id.
    #[error(transparent)]
    InvalidId(#[from] crate::domain::ids::InvalidId),
    /// An unknown status filter.
    #[error("unknown mail status {0:?}; expected one of pending, sending, sent, retrying, dead")]
    InvalidStatus(String),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServiceError for MailAdminError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Forbidden => ErrorKind::Forbidden,
            Self::InvalidId(_) | Self::InvalidStatus(_) => ErrorKind::InvalidRequest,
            Self::Store(e) => store_error_kind(e),
        }
    }
}

/// Mail outbox administration.
pub struct MailAdminService {
    /// The outbox.
    store: Arc<dyn MailStore>,
    /// Time for retries.
    clock: Arc<dyn Clock>,
}

impl MailAdminService {
    /// A service over the outbox.
    pub fn new(store: Arc<dyn MailStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    fn admin(actor: &Actor) -> Result<(), MailAdminError> {
        if actor.is_admin {
            Ok(())
        } else {
            Err(MailAdminError::Forbidden)
        }
    }

    /// Lists mail, optionally filtered by a status name.
    pub async fn list(
        &self,
        actor: &Actor,
        status: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<MailDelivery>, MailAdminError> {
        Self::admin(actor)?;
        let status = status
            .map(|s| {
                MailStatus::parse(s).ok_or_else(|| MailAdminError::InvalidStatus(s.to_owned()))
            })
            .transpose()?;
        Ok(self.store.list_mail(status, page).await?)
    }

    /// One mail and its attempts.
    pub async fn get(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<(MailDelivery, Vec<MailAttempt>), MailAdminError> {
        Self::admin(actor)?;
        let id = MailId::parse(id)?;
        let mail = self.store.get_mail(id).await?;
        let attempts = self.store.mail_attempts(id).await?;
        Ok((mail, attempts))
    }

    /// Re-queues a dead mail with a fresh attempt budget.
    pub async fn retry(&self, actor: &Actor, id: &str) -> Result<MailDelivery, MailAdminError> {
        Self::admin(actor)?;
        let id = MailId::parse(id)?;
        let mail = self.store.get_mail(id).await?;
        mail.check_retry().map_err(StoreError::from)?;
        let retried = self.store.retry_dead_mail(id, self.clock.now()).await?;
        tracing::info!(mail_id = %id, by = %actor.user_id, "dead mail queued again by an admin");
        Ok(retried)
    }
}
