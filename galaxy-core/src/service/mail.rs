//! Admin use cases of the mail outbox: list mail by status, see its attempts, retry
//! dead mail (one, or all of it).

use std::sync::Arc;

use super::{Actor, ErrorKind, ServiceError, store_error_kind};
use crate::domain::MailId;
use crate::domain::mail::{LOGIN_CODE_KIND, MailAttempt, MailDelivery, MailStatus};
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

    /// Re-queues every dead mail but login codes, each with a fresh attempt budget (after
    /// an outage of the relay, once it is fixed: the mail that died meanwhile goes out
    /// without an admin retrying it one by one). A dead login code stays dead: its code
    /// has expired or will have by the time it arrives, and anyone may have asked for it
    /// to any address (one retried alone still can be). Walks the dead mail a page at a
    /// time behind a cursor, so a mail that dies again while this runs is not retried
    /// twice by this call; one another admin retried first is skipped. Returns how many
    /// this call queued again.
    pub async fn retry_all_dead(&self, actor: &Actor) -> Result<u64, MailAdminError> {
        Self::admin(actor)?;
        let mut page = PageRequest::first(RETRY_PAGE).map_err(StoreError::internal)?;
        let mut retried = 0u64;
        loop {
            let dead = self.store.list_mail(Some(MailStatus::Dead), &page).await?;
            for mail in dead.items.iter().filter(|m| m.mail.kind != LOGIN_CODE_KIND) {
                match self.store.retry_dead_mail(mail.id, self.clock.now()).await {
                    Ok(_) => retried += 1,
                    // Retried (or purged) by someone else since the page was read.
                    Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => {}
                    Err(error) => return Err(error.into()),
                }
            }
            match dead.next_after {
                Some(after) => {
                    page = PageRequest::after(RETRY_PAGE, after).map_err(StoreError::internal)?;
                }
                None => break,
            }
        }
        tracing::info!(retried, by = %actor.user_id, "every dead mail queued again by an admin");
        Ok(retried)
    }
}

/// How many dead mails [`MailAdminService::retry_all_dead`] reads at a time.
const RETRY_PAGE: u32 = 100;
