//! The one conformance suite of the leased work queue, run on every queue of every store:
//! the mail outbox ([`mail`]), the notification routes ([`notifications`]) and the
//! runtime jobs ([`jobs`]). It checks the rules of
//! [`Leased`]: the claim limit, due instants,
//! attempts counted per claim, lease expiry and re-claim, finishing under a token
//! (`Conflict` for any other token, `NotFound` for an unknown item), batch finishes in
//! which one lost lease fails alone, and concurrent claimers that never share an item.
//!
//! Each queue's own outcomes (retry, dead letters, redaction, requeue...) stay in its
//! store's suite; the mail, notification and runtime suites run this one too, so an
//! adapter that passes them passes the queue rules.

mod cases;

use std::fmt::Debug;
use std::future::Future;

use async_trait::async_trait;
use galaxy_core::domain::lease::{ClaimRequest, Finish, Leased};
use galaxy_core::domain::mail::{MailDelivery, OutgoingMail};
use galaxy_core::domain::mail_in::{InboundEnd, InboundMail, InboundOutcome};
use galaxy_core::domain::notification::{
    Channel, NotificationIntent, NotificationKind, NotificationRoute,
};
use galaxy_core::domain::page::PageRequest;
use galaxy_core::domain::runtime::{JobKind, RuntimeJob};
use galaxy_core::domain::user::{Email, Locale};
use galaxy_core::domain::{
    GameId, InboundMailId, IntentId, JobId, LeaseToken, MailId, RouteId, Timestamp, UserId,
};
use galaxy_core::ports::{
    BatchFinished, InboundFinish, InboundInsert, InboundMailStore, IntentInsert, JobOutcome,
    MailAttemptEnd, MailNext, MailStore, NotificationStore, RouteNext, RuntimeJobStore, StoreError,
};

use super::runtime::support::{ok, uuid};

/// Runs the queue suite on the mail outbox of stores from `make`.
pub async fn mail<S, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: MailStore + Send + Sync + 'static,
{
    cases::run("mail queue", &|| async { MailQueue(make().await) }).await;
}

/// Runs the queue suite on the notification routes of stores from `make`.
pub async fn notifications<S, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: NotificationStore + Send + Sync + 'static,
{
    cases::run("notification queue", &|| async { RouteQueue(make().await) }).await;
}

/// Runs the queue suite on the runtime jobs of stores from `make`.
pub async fn jobs<S, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: RuntimeJobStore + Send + Sync + 'static,
{
    cases::run("job queue", &|| async { JobQueue(make().await) }).await;
}

/// Runs the queue suite on the inbound mail of stores from `make` (orders by e-mail).
pub async fn inbound<S, F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: InboundMailStore + Send + Sync + 'static,
{
    cases::run("inbound mail queue", &|| async {
        InboundQueue(make().await)
    })
    .await;
}

/// One store's queue as the cases drive it: enqueue, claim, read, and finish for good
/// (sent, delivered, succeeded) alone or in a batch.
#[async_trait]
trait QueueUnderTest: Send + Sync + 'static {
    /// The queued item.
    type Item: Leased + Clone + Debug + PartialEq + Send + Sync;

    /// Queues a fresh item created at `created` and due at `due`; returns its id.
    async fn enqueue(&self, created: Timestamp, due: Timestamp) -> <Self::Item as Leased>::Id;
    /// Claims.
    async fn claim(&self, claim: &ClaimRequest) -> Result<Vec<Self::Item>, StoreError>;
    /// Reads one item.
    async fn get(&self, id: <Self::Item as Leased>::Id) -> Self::Item;
    /// Finishes one item for good.
    async fn finish(
        &self,
        id: <Self::Item as Leased>::Id,
        token: LeaseToken,
        at: Timestamp,
    ) -> Result<Self::Item, StoreError>;
    /// Finishes a batch for good, each item under its own token.
    async fn finish_all(
        &self,
        batch: &[(<Self::Item as Leased>::Id, LeaseToken)],
        at: Timestamp,
    ) -> BatchFinished<Self::Item>;
    /// An id no item has.
    fn unknown_id(&self) -> <Self::Item as Leased>::Id;
}

/// The finish batch of `(id, token)` pairs with `outcome` for each.
fn batch<I: Copy, O: Clone>(
    items: &[(I, LeaseToken)],
    outcome: &O,
    at: Timestamp,
) -> Vec<Finish<I, O>> {
    let finish = |(id, token): &(I, LeaseToken)| Finish {
        id: *id,
        token: *token,
        outcome: outcome.clone(),
        at,
    };
    items.iter().map(finish).collect()
}

/// The mail outbox; finishing for good is `Sent` without an attempt record.
struct MailQueue<S>(S);

#[async_trait]
impl<S: MailStore + Send + Sync + 'static> QueueUnderTest for MailQueue<S> {
    type Item = MailDelivery;

    async fn enqueue(&self, created: Timestamp, due: Timestamp) -> MailId {
        let id = uuid();
        let mail = OutgoingMail {
            idempotency_key: format!("queue:{id}"),
            to: Email::parse("player@example.com").unwrap_or_else(|e| panic!("fixture email: {e}")),
            kind: "turn_completed".to_owned(),
            locale: Locale::default(),
            subject: "Turn 1".to_owned(),
            text_body: "Your report is ready.".to_owned(),
            html_body: None,
            extras: Default::default(),
        };
        let mut delivery = MailDelivery::new(MailId::from_uuid(id), mail, created);
        delivery.next_attempt_at = due;
        ok(self.0.enqueue_mail(&delivery).await, "enqueue mail").id
    }

    async fn claim(&self, claim: &ClaimRequest) -> Result<Vec<MailDelivery>, StoreError> {
        self.0.claim_mail(claim).await
    }

    async fn get(&self, id: MailId) -> MailDelivery {
        ok(self.0.get_mail(id).await, "get mail")
    }

    async fn finish(
        &self,
        id: MailId,
        token: LeaseToken,
        at: Timestamp,
    ) -> Result<MailDelivery, StoreError> {
        self.0
            .finish_mail_attempt(id, token, None, MailNext::Sent, at)
            .await
    }

    async fn finish_all(
        &self,
        items: &[(MailId, LeaseToken)],
        at: Timestamp,
    ) -> BatchFinished<MailDelivery> {
        let sent = MailAttemptEnd {
            attempt: None,
            next: MailNext::Sent,
        };
        self.0.finish_mail_attempts(&batch(items, &sent, at)).await
    }

    fn unknown_id(&self) -> MailId {
        MailId::from_uuid(uuid())
    }
}

/// The notification routes (one route per intent); finishing for good is `Delivered`.
struct RouteQueue<S>(S);

#[async_trait]
impl<S: NotificationStore + Send + Sync + 'static> QueueUnderTest for RouteQueue<S> {
    type Item = NotificationRoute;

    async fn enqueue(&self, created: Timestamp, due: Timestamp) -> RouteId {
        let user = UserId::from_uuid(uuid());
        let intent = NotificationIntent {
            id: IntentId::from_uuid(uuid()),
            kind: NotificationKind::GameCancelled,
            idempotency_key: format!("queue:{}", uuid()),
            recipients: vec![user],
            game_id: Some(GameId::from_uuid(uuid())),
            payload: serde_json::json!({}),
            created_at: created,
        };
        let id = RouteId::from_uuid(uuid());
        let mut route = NotificationRoute::new(id, intent.id, user, Channel::Push, created);
        route.next_attempt_at = due;
        let inserted = ok(
            self.0.insert_intent(&intent, &[route]).await,
            "insert intent",
        );
        assert_eq!(inserted, IntentInsert::Inserted);
        id
    }

    async fn claim(&self, claim: &ClaimRequest) -> Result<Vec<NotificationRoute>, StoreError> {
        self.0.claim_routes(claim).await
    }

    async fn get(&self, id: RouteId) -> NotificationRoute {
        // The port has no single-route read: walk the list.
        let mut request = PageRequest::first(200).unwrap_or_else(|e| panic!("page: {e}"));
        loop {
            let page = ok(self.0.list_routes(None, &request).await, "list routes");
            if let Some(found) = page.items.into_iter().find(|r| r.id == id) {
                return found;
            }
            let Some(after) = page.next_after else {
                panic!("route {id} is not listed");
            };
            request = PageRequest::after(200, after).unwrap_or_else(|e| panic!("page: {e}"));
        }
    }

    async fn finish(
        &self,
        id: RouteId,
        token: LeaseToken,
        at: Timestamp,
    ) -> Result<NotificationRoute, StoreError> {
        self.0
            .finish_route(id, token, &RouteNext::Delivered, at)
            .await
    }

    async fn finish_all(
        &self,
        items: &[(RouteId, LeaseToken)],
        at: Timestamp,
    ) -> BatchFinished<NotificationRoute> {
        self.0
            .finish_routes(&batch(items, &RouteNext::Delivered, at))
            .await
    }

    fn unknown_id(&self) -> RouteId {
        RouteId::from_uuid(uuid())
    }
}

/// The runtime jobs; finishing for good is `Succeeded`.
struct JobQueue<S>(S);

#[async_trait]
impl<S: RuntimeJobStore + Send + Sync + 'static> QueueUnderTest for JobQueue<S> {
    type Item = RuntimeJob;

    async fn enqueue(&self, created: Timestamp, due: Timestamp) -> JobId {
        let game = GameId::from_uuid(uuid());
        let key = format!("start:{game}:{}", uuid().simple());
        let id = JobId::from_uuid(uuid());
        let mut job = RuntimeJob::new(id, game, JobKind::Start, key, created);
        job.run_after = due;
        ok(self.0.enqueue_job(&job).await, "enqueue job").id
    }

    async fn claim(&self, claim: &ClaimRequest) -> Result<Vec<RuntimeJob>, StoreError> {
        self.0.claim_jobs(claim).await
    }

    async fn get(&self, id: JobId) -> RuntimeJob {
        ok(self.0.get_job(id).await, "get job")
    }

    async fn finish(
        &self,
        id: JobId,
        token: LeaseToken,
        at: Timestamp,
    ) -> Result<RuntimeJob, StoreError> {
        self.0
            .complete_job(id, token, &JobOutcome::Succeeded, at)
            .await
    }

    async fn finish_all(
        &self,
        items: &[(JobId, LeaseToken)],
        at: Timestamp,
    ) -> BatchFinished<RuntimeJob> {
        self.0
            .complete_jobs(&batch(items, &JobOutcome::Succeeded, at))
            .await
    }

    fn unknown_id(&self) -> JobId {
        JobId::from_uuid(uuid())
    }
}

/// The inbound mail queue; an item is due when it was received (so `created` is taken
/// as the due instant too), and finishing for good is `Answered`.
struct InboundQueue<S>(S);

#[async_trait]
impl<S: InboundMailStore + Send + Sync + 'static> QueueUnderTest for InboundQueue<S> {
    type Item = InboundMail;

    async fn enqueue(&self, _created: Timestamp, due: Timestamp) -> InboundMailId {
        let id = InboundMailId::from_uuid(uuid());
        let mail = InboundMail::new(
            id,
            format!("queue:{id}"),
            b"Subject: x\r\n\r\nbody\r\n".to_vec(),
            None,
            vec![],
            due,
        );
        let inserted = ok(self.0.insert_inbound(&mail).await, "insert inbound");
        assert_eq!(inserted, InboundInsert::Stored);
        id
    }

    async fn claim(&self, claim: &ClaimRequest) -> Result<Vec<InboundMail>, StoreError> {
        self.0.claim_inbound(claim).await
    }

    async fn get(&self, id: InboundMailId) -> InboundMail {
        ok(self.0.get_inbound(id).await, "get inbound")
    }

    async fn finish(
        &self,
        id: InboundMailId,
        token: LeaseToken,
        at: Timestamp,
    ) -> Result<InboundMail, StoreError> {
        self.0.finish_inbound(&inbound_finish(id, token, at)).await
    }

    async fn finish_all(
        &self,
        items: &[(InboundMailId, LeaseToken)],
        at: Timestamp,
    ) -> BatchFinished<InboundMail> {
        let mut results = Vec::with_capacity(items.len());
        for (id, token) in items {
            results.push(
                self.0
                    .finish_inbound(&inbound_finish(*id, *token, at))
                    .await,
            );
        }
        Ok(results)
    }

    fn unknown_id(&self) -> InboundMailId {
        InboundMailId::from_uuid(uuid())
    }
}

/// Finishing an inbound mail for good.
pub(super) fn inbound_finish(id: InboundMailId, token: LeaseToken, at: Timestamp) -> InboundFinish {
    Finish {
        id,
        token,
        outcome: InboundEnd {
            outcome: InboundOutcome::Answered,
            detail: "conformance".to_owned(),
        },
        at,
    }
}
