//! In-memory mail outbox: deliveries, their recorded attempts and leased claims.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use galaxy_core::domain::lease::{ClaimRequest, Leased};
use galaxy_core::domain::mail::{AttemptOutcome, MailAttempt, MailDelivery, MailStatus};
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::{LeaseToken, MailId, Timestamp};
use galaxy_core::ports::{
    BatchFinished, MailAttemptEnd, MailFinish, MailNext, MailStore, StoreError,
};

use super::paging::{Order, paginate};
use super::queue::LeasedQueue;

/// Entity name of mails in errors.
const MAIL: &str = MailDelivery::ENTITY;

/// The mail outbox behind one mutex, so every call is atomic and no two claimers can
/// receive the same mail.
#[derive(Debug, Default)]
pub struct MemoryMailStore {
    /// Everything; one lock keeps each call a transaction.
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Every mail ever queued (sent ones stay, as rows do), as a leased queue.
    mails: LeasedQueue<MailDelivery>,
    /// Idempotency key -> mail, so a repeated enqueue finds the first mail.
    keys: HashMap<String, MailId>,
    /// Recorded attempts per mail, in the order they were recorded.
    attempts: HashMap<MailId, Vec<MailAttempt>>,
}

impl MemoryMailStore {
    /// The state; every method validates before it mutates, so a lock poisoned by a
    /// panicking caller holds no half-written change and is safe to take over.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `change` to a mail, stamps `updated_at` and returns the result.
    fn update(
        &self,
        id: MailId,
        at: Timestamp,
        change: impl FnOnce(&mut MailDelivery) -> Result<(), StoreError>,
    ) -> Result<MailDelivery, StoreError> {
        let mut state = self.lock();
        let mail = state.mails.get_mut(id)?;
        change(mail)?;
        mail.updated_at = at;
        Ok(mail.clone())
    }
}

#[async_trait]
impl MailStore for MemoryMailStore {
    async fn enqueue_mail(&self, delivery: &MailDelivery) -> Result<MailDelivery, StoreError> {
        let mut state = self.lock();
        let key = &delivery.mail.idempotency_key;
        if let Some(first) = state.keys.get(key).and_then(|id| state.mails.get(*id)) {
            return Ok(first.clone());
        }
        if state.mails.contains(delivery.id) {
            return Err(StoreError::duplicate(MAIL, delivery.id));
        }
        state.keys.insert(key.clone(), delivery.id);
        state.mails.insert(delivery.clone());
        Ok(delivery.clone())
    }

    async fn get_mail(&self, id: MailId) -> Result<MailDelivery, StoreError> {
        let state = self.lock();
        let mail = state.mails.get(id).cloned();
        mail.ok_or_else(|| StoreError::not_found(MAIL, id))
    }

    async fn list_mail(
        &self,
        status: Option<MailStatus>,
        page: &PageRequest,
    ) -> Result<Page<MailDelivery>, StoreError> {
        let state = self.lock();
        let rows = state
            .mails
            .values()
            .filter(|m| status.is_none_or(|s| m.status == s));
        let key = |m: &MailDelivery| (m.created_at, m.id.as_uuid());
        paginate(rows, key, Order::Ascending, page)
    }

    async fn claim_mail(&self, claim: &ClaimRequest) -> Result<Vec<MailDelivery>, StoreError> {
        Ok(self.lock().mails.claim(claim))
    }

    async fn finish_mail_attempt(
        &self,
        id: MailId,
        token: LeaseToken,
        attempt: Option<MailAttempt>,
        next: MailNext,
        at: Timestamp,
    ) -> Result<MailDelivery, StoreError> {
        let end = MailAttemptEnd { attempt, next };
        let mut guard = self.lock();
        let State {
            mails, attempts, ..
        } = &mut *guard;
        mails.finish(id, token, at, |mail| end_attempt(mail, &end, attempts, at))
    }

    async fn finish_mail_attempts(&self, finishes: &[MailFinish]) -> BatchFinished<MailDelivery> {
        let mut guard = self.lock();
        let State {
            mails, attempts, ..
        } = &mut *guard;
        Ok(mails.finish_all(finishes, |mail, end, at| {
            end_attempt(mail, end, attempts, at)
        }))
    }

    async fn mail_attempts(&self, id: MailId) -> Result<Vec<MailAttempt>, StoreError> {
        let state = self.lock();
        if !state.mails.contains(id) {
            return Err(StoreError::not_found(MAIL, id));
        }
        Ok(state.attempts.get(&id).cloned().unwrap_or_default())
    }

    async fn retry_dead_mail(&self, id: MailId, at: Timestamp) -> Result<MailDelivery, StoreError> {
        self.update(id, at, |mail| {
            if mail.status != MailStatus::Dead {
                let detail = format!("status is {}, only dead mail can be retried", mail.status);
                return Err(StoreError::conflict(MAIL, id, detail));
            }
            mail.status = MailStatus::Pending;
            mail.attempts = 0;
            mail.next_attempt_at = at;
            mail.lease = None;
            Ok(())
        })
    }

    async fn count_mail_by_status(&self) -> Result<Vec<(MailStatus, u64)>, StoreError> {
        let state = self.lock();
        let count = |status| state.mails.values().filter(|m| m.status == status).count() as u64;
        Ok(MailStatus::ALL.into_iter().map(|s| (s, count(s))).collect())
    }

    async fn purge_sent_mail(&self, before: Timestamp) -> Result<u64, StoreError> {
        Ok(self.purge(|m| m.status == MailStatus::Sent && m.sent_at.is_some_and(|at| at < before)))
    }

    async fn purge_dead_mail(&self, before: Timestamp) -> Result<u64, StoreError> {
        Ok(self.purge(|m| m.status == MailStatus::Dead && m.updated_at < before))
    }
}

impl MemoryMailStore {
    /// Deletes the mails `gone` picks, with their attempts and keys; how many.
    fn purge(&self, gone: impl Fn(&MailDelivery) -> bool) -> u64 {
        let mut state = self.lock();
        let old: Vec<(MailId, String)> = state
            .mails
            .values()
            .filter(|m| gone(m))
            .map(|m| (m.id, m.mail.idempotency_key.clone()))
            .collect();
        for (id, key) in &old {
            state.mails.remove(*id);
            state.attempts.remove(id);
            state.keys.remove(key);
        }
        old.len() as u64
    }
}

/// Applies how an attempt ended to a mail `token` holds: records the attempt, then moves
/// the mail on (the queue frees the lease afterwards).
fn end_attempt(
    mail: &mut MailDelivery,
    end: &MailAttemptEnd,
    attempts: &mut HashMap<MailId, Vec<MailAttempt>>,
    at: Timestamp,
) {
    if let Some(attempt) = &end.attempt {
        let mut attempt = attempt.clone();
        attempt.mail_id = mail.id;
        if attempt.outcome != AttemptOutcome::Sent {
            mail.last_error = Some(attempt.detail.clone());
        }
        attempts.entry(mail.id).or_default().push(attempt);
    }
    match &end.next {
        MailNext::Sent => {
            mail.status = MailStatus::Sent;
            mail.sent_at = Some(at);
        }
        MailNext::SentRedacted(kept) => {
            mail.status = MailStatus::Sent;
            mail.sent_at = Some(at);
            let kept = kept.as_ref().clone();
            mail.mail.subject = kept.subject;
            mail.mail.text_body = kept.text_body;
            mail.mail.html_body = kept.html_body;
            mail.mail.extras.reply_to = kept.reply_to;
        }
        MailNext::Retry(due) => {
            mail.status = MailStatus::Retrying;
            mail.next_attempt_at = *due;
        }
        MailNext::Dead => mail.status = MailStatus::Dead,
        MailNext::Release(due) => {
            mail.status = MailStatus::Pending;
            mail.next_attempt_at = *due;
            mail.attempts = mail.attempts.saturating_sub(1);
        }
    }
}
