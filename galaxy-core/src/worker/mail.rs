//! The mail outbox worker: claims due mail under a lease, sends it through the
//! [`Mailer`] port, records every attempt, and retries with backoff until the attempt
//! budget is spent (then the mail is dead and an admin may retry it).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::TimeDelta;
use tokio_util::sync::CancellationToken;

use super::{TickReport, Worker};
use crate::domain::LeaseToken;
use crate::domain::lease::{ClaimRequest, Finish};
use crate::domain::mail::{AttemptOutcome, MailAttempt, MailDelivery, MailFailureOutcome};
use crate::domain::retry::RetryPolicy;
use crate::ports::{
    Clock, MailAttemptEnd, MailFinish, MailNext, MailStore, Mailer, SecretGenerator, StoreError,
};

/// How the mail worker paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailWorkerConfig {
    /// Mails claimed per pass.
    pub batch_size: u32,
    /// How long a claim holds; must be at least twice the slowest send (SMTP timeouts):
    /// a send starts only in the lease's first half, so it ends before the lease lapses
    /// and no other worker can take the mail over while it is being sent. The outcomes
    /// of a batch are written together, or as soon as half of the lease is used; mails
    /// of the batch not started by then are released, to be claimed again.
    pub lease: TimeDelta,
    /// Backoff and attempt budget.
    pub retry: RetryPolicy,
}

impl Default for MailWorkerConfig {
    fn default() -> Self {
        Self {
            batch_size: 16,
            lease: TimeDelta::minutes(2),
            retry: RetryPolicy::default(),
        }
    }
}

/// Delivers the outbox.
pub struct MailWorker {
    /// The outbox.
    store: Arc<dyn MailStore>,
    /// Where mail goes.
    mailer: Arc<dyn Mailer>,
    /// Time for leases, attempts and backoff.
    clock: Arc<dyn Clock>,
    /// Lease tokens and jitter.
    secrets: Arc<dyn SecretGenerator>,
    /// Pacing.
    config: MailWorkerConfig,
    /// Fires on shutdown: claimed mail not yet attempted is released, not sent.
    cancel: CancellationToken,
}

impl MailWorker {
    /// A worker over the given ports.
    pub fn new(
        store: Arc<dyn MailStore>,
        mailer: Arc<dyn Mailer>,
        clock: Arc<dyn Clock>,
        secrets: Arc<dyn SecretGenerator>,
        config: MailWorkerConfig,
    ) -> Self {
        Self {
            store,
            mailer,
            clock,
            secrets,
            config,
            cancel: CancellationToken::new(),
        }
    }

    /// Ties the worker to a shutdown token: once it fires, the attempt in progress
    /// finishes and the rest of the claimed batch goes back to `pending` at once, for the
    /// next process.
    pub fn with_cancellation(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Sends one claimed mail and says how its attempt ended (written with the batch).
    async fn deliver(&self, delivery: &MailDelivery, token: LeaseToken) -> MailFinish {
        let result = self.mailer.send(&delivery.mail).await;
        let now = self.clock.now();
        let (outcome, detail, next) = match result {
            Ok(reply) => {
                let next = match delivery.mail.redacted() {
                    Some(kept) => MailNext::SentRedacted(Box::new(kept)),
                    None => MailNext::Sent,
                };
                (AttemptOutcome::Sent, reply, next)
            }
            Err(error) => {
                let permanent = error.is_permanent();
                let next = match delivery.after_failure(
                    &self.config.retry,
                    permanent,
                    self.secrets.unit(),
                    now,
                ) {
                    MailFailureOutcome::Retry { next_attempt_at } => {
                        MailNext::Retry(next_attempt_at)
                    }
                    MailFailureOutcome::Dead => MailNext::Dead,
                };
                let outcome = if permanent {
                    AttemptOutcome::Permanent
                } else {
                    AttemptOutcome::Transient
                };
                (outcome, error.to_string(), next)
            }
        };
        tracing::info!(
            mail_id = %delivery.id,
            kind = %delivery.mail.kind,
            attempt = delivery.attempts,
            outcome = outcome.as_str(),
            "mail attempt"
        );
        let attempt = MailAttempt {
            mail_id: delivery.id,
            number: delivery.attempts,
            outcome,
            detail,
            at: now,
        };
        Finish {
            id: delivery.id,
            token,
            outcome: MailAttemptEnd {
                attempt: Some(attempt),
                next,
            },
            at: now,
        }
    }
}

#[async_trait]
impl Worker for MailWorker {
    fn name(&self) -> &'static str {
        "mail"
    }

    async fn tick(&self) -> Result<TickReport, StoreError> {
        if self.cancel.is_cancelled() {
            return Ok(TickReport::default());
        }
        let claim = ClaimRequest {
            token: LeaseToken::from_uuid(self.secrets.uuid()),
            now: self.clock.now(),
            lease: self.config.lease,
            limit: self.config.batch_size,
        };
        let batch = self.store.claim_mail(&claim).await?;
        // The batch's outcomes are written together with one batch finish (one round
        // trip, not one per mail), or earlier once half the lease is used, so a batch of
        // slow sends never outlives its lease; mails not started by then are released. A crash in between leaves the leases to
        // lapse and the mails to be sent again: delivery is at-least-once either way,
        // and the idempotency keys keep a mail from being queued twice.
        let flush_at = claim.now + self.config.lease / 2;
        let mut pending = Vec::with_capacity(batch.len());
        let mut outcome = Outcome::default();
        for delivery in &batch {
            // Past half the lease no send starts: one that ran on beyond the lease could
            // be taken over and sent by another worker at the same time.
            let finish = if self.cancel.is_cancelled() || self.clock.now() >= flush_at {
                let now = self.clock.now();
                Finish {
                    id: delivery.id,
                    token: claim.token,
                    outcome: MailAttemptEnd {
                        attempt: None,
                        next: MailNext::Release(now),
                    },
                    at: now,
                }
            } else {
                // Shutdown while a send hangs (a slow SMTP server): the mails sent
                // before it are written at once, so a shutdown bound that cuts the
                // send off does not lose their outcomes (they would be sent again).
                let send = self.deliver(delivery, claim.token);
                tokio::pin!(send);
                tokio::select! {
                    biased;
                    done = &mut send => done,
                    () = self.cancel.cancelled(), if !pending.is_empty() => {
                        self.finish(&mut pending, &mut outcome).await?;
                        send.await
                    }
                }
            };
            pending.push(finish);
            if self.clock.now() >= flush_at {
                self.finish(&mut pending, &mut outcome).await?;
            }
        }
        self.finish(&mut pending, &mut outcome).await?;
        if let Some(error) = outcome.failure {
            return Err(error);
        }
        Ok(TickReport {
            handled: outcome.handled,
        })
    }
}

/// What the batch finishes of one tick came to.
#[derive(Default)]
struct Outcome {
    /// Mails attempted whose outcome was written.
    handled: usize,
    /// The first unexpected store error of an item (returned once the batch is done).
    failure: Option<StoreError>,
}

impl MailWorker {
    /// Writes `pending` with one batch finish and empties it. A lost lease is logged
    /// (another worker took the mail over: its result wins); other item errors are kept
    /// for the end of the tick.
    async fn finish(
        &self,
        pending: &mut Vec<MailFinish>,
        outcome: &mut Outcome,
    ) -> Result<(), StoreError> {
        if pending.is_empty() {
            return Ok(());
        }
        let results = self.store.finish_mail_attempts(pending).await?;
        for (finish, result) in pending.iter().zip(results) {
            let released = finish.outcome.attempt.is_none();
            match result {
                Ok(_) if !released => outcome.handled += 1,
                Ok(_) => {}
                Err(StoreError::Conflict { .. }) => {
                    tracing::warn!(mail_id = %finish.id, "mail lease lost during attempt");
                }
                Err(error) => {
                    outcome.failure.get_or_insert(error);
                }
            }
        }
        pending.clear();
        Ok(())
    }
}
