//! Wiring of orders by e-mail: the service (when `GALAXY_MAIL_DOMAIN` is set), its
//! worker, the count of processed mails and the inbound-mail gauge.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::TimeDelta;
use galaxy_core::domain::lease::ClaimRequest;
use galaxy_core::domain::limit::RateLimit;
use galaxy_core::domain::mail_in::{
    InboundMail, InboundOutcome, OrdersAddress, OrdersKey, ReportDelivery, TokenDigest, TokenRecord,
};
use galaxy_core::domain::{GameId, InboundMailId, Timestamp, UserId};
use galaxy_core::ports::{
    InboundFinish, InboundInsert, InboundMailStore, OrdersDesk, StoreError, UserStore,
};
use galaxy_core::service::mail_in::{MailInConfig, MailInPorts, MailInService, MailInWorker};
use tokio_util::sync::CancellationToken;

use crate::adapters::Adapters;
use crate::config::Config;
use crate::schedule::ScheduledWorker;

/// `galaxy_mail_in_total{outcome}`: inbound messages this process finished, by how they
/// ended (`answered`, `answered_silently`, `refused`, `dropped`), counted as each is
/// finished (sum the replicas'), so the retention sweeper deleting old mails never
/// takes anything back.
pub const MAIL_IN_METRIC: &str = "galaxy_mail_in_total";
/// `galaxy_mail_in_waiting`: stored inbound messages not processed yet.
pub const MAIL_IN_WAITING_METRIC: &str = "galaxy_mail_in_waiting";

/// What the service is built on besides the adapters.
pub(crate) struct MailInSources {
    /// Players (through the user cache).
    pub users: Arc<dyn UserStore>,
    /// The runtime, where the orders go.
    pub desk: Arc<dyn OrdersDesk>,
    /// The key the orders tokens are derived under (from the installation's
    /// login-code secret, so every replica shows the same addresses).
    pub key: OrdersKey,
}

/// The service, when orders by e-mail is on.
pub(crate) fn service(
    config: &Config,
    adapters: &Adapters,
    sources: MailInSources,
) -> Option<Arc<MailInService>> {
    let domain = config.mail_in.domain.clone()?;
    let mut settings = MailInConfig::new(domain);
    settings.key = Some(sources.key);
    settings.max_message_bytes = config.mail_in.max_bytes;
    settings.replies = RateLimit {
        max: config.mail_in.replies_per_hour,
        window: TimeDelta::hours(1),
    };
    Some(Arc::new(
        MailInService::new(
            MailInPorts {
                store: Arc::new(CountedInboundMail(adapters.mail_in.clone())),
                users: sources.users,
                mail: adapters.mail.clone(),
                desk: sources.desk,
                clock: adapters.clock.clone(),
                secrets: adapters.secrets.clone(),
            },
            settings,
        )
        .with_templates(adapters.templates.clone()),
    ))
}

/// The mail-in worker, run every `GALAXY_INBOUND_INTERVAL` when idle.
pub(crate) fn worker(
    config: &Config,
    service: &MailInService,
    cancel: CancellationToken,
) -> ScheduledWorker {
    ScheduledWorker {
        worker: Arc::new(MailInWorker::new(service).with_cancellation(cancel)),
        interval: config.mail_in.interval,
    }
}

/// Sets `galaxy_mail_in_waiting` from the store, and registers every outcome of
/// `galaxy_mail_in_total` (at 0 until one is finished), so a dashboard finds each label.
pub(crate) async fn record_metrics(store: &dyn InboundMailStore) {
    for outcome in InboundOutcome::ALL {
        metrics::counter!(MAIL_IN_METRIC, "outcome" => outcome.as_str()).increment(0);
    }
    match store.count_waiting_inbound().await {
        Ok(waiting) => {
            // Precision loss above 2^53 messages is not a concern.
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!(MAIL_IN_WAITING_METRIC).set(waiting as f64);
        }
        Err(error) => tracing::warn!(%error, "inbound mail counts unavailable"),
    }
}

/// The inbound mail store with each finished mail counted in `galaxy_mail_in_total` by
/// its outcome, when its finish is written (a finish refused because another worker took
/// the mail over counts nothing: that worker's does).
struct CountedInboundMail(Arc<dyn InboundMailStore>);

#[async_trait]
impl InboundMailStore for CountedInboundMail {
    async fn insert_inbound(&self, mail: &InboundMail) -> Result<InboundInsert, StoreError> {
        self.0.insert_inbound(mail).await
    }

    async fn get_inbound(&self, id: InboundMailId) -> Result<InboundMail, StoreError> {
        self.0.get_inbound(id).await
    }

    async fn claim_inbound(&self, claim: &ClaimRequest) -> Result<Vec<InboundMail>, StoreError> {
        self.0.claim_inbound(claim).await
    }

    async fn finish_inbound(&self, finish: &InboundFinish) -> Result<InboundMail, StoreError> {
        let finished = self.0.finish_inbound(finish).await;
        if finished.is_ok() {
            let outcome = finish.outcome.outcome.as_str();
            metrics::counter!(MAIL_IN_METRIC, "outcome" => outcome).increment(1);
        }
        finished
    }

    async fn count_inbound(&self) -> Result<Vec<(Option<InboundOutcome>, u64)>, StoreError> {
        self.0.count_inbound().await
    }
    async fn count_waiting_inbound(&self) -> Result<u64, StoreError> {
        self.0.count_waiting_inbound().await
    }
    async fn inbound_pending(
        &self,
        after: Timestamp,
        through: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.0.inbound_pending(after, through, now).await
    }

    async fn purge_inbound(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.0.purge_inbound(before).await
    }

    async fn orders_address(
        &self,
        user_id: UserId,
        game_id: GameId,
    ) -> Result<Option<OrdersAddress>, StoreError> {
        self.0.orders_address(user_id, game_id).await
    }

    async fn ensure_orders_address(
        &self,
        address: &OrdersAddress,
    ) -> Result<OrdersAddress, StoreError> {
        self.0.ensure_orders_address(address).await
    }

    async fn rotate_orders_address(
        &self,
        user_id: UserId,
        game_id: GameId,
        token: &TokenRecord,
        replacing: Option<TokenDigest>,
        at: Timestamp,
    ) -> Result<OrdersAddress, StoreError> {
        self.0
            .rotate_orders_address(user_id, game_id, token, replacing, at)
            .await
    }

    async fn set_report_delivery(
        &self,
        user_id: UserId,
        game_id: GameId,
        delivery: ReportDelivery,
    ) -> Result<OrdersAddress, StoreError> {
        self.0.set_report_delivery(user_id, game_id, delivery).await
    }

    async fn find_orders_address(
        &self,
        digest: &TokenDigest,
    ) -> Result<Option<OrdersAddress>, StoreError> {
        self.0.find_orders_address(digest).await
    }

    async fn take_send(
        &self,
        bucket: &str,
        key: &str,
        limit: RateLimit,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.0.take_send(bucket, key, limit, now).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Utc;
    use galaxy_core::domain::LeaseToken;
    use galaxy_core::domain::lease::Finish;
    use galaxy_core::domain::mail_in::InboundEnd;
    use galaxy_ports::memory::MemoryMailInStore;

    use super::*;

    /// Each finished mail counts once, by its outcome, in the process that finished it;
    /// a finish refused (the lease lost) counts nothing, and the count never falls when
    /// old mails are deleted.
    #[test]
    fn each_finished_mail_counts_once_by_outcome() {
        let text = crate::metering::recorded(async {
            let store = CountedInboundMail(Arc::new(MemoryMailInStore::default()));
            let now = Utc::now();
            let id = InboundMailId::from_uuid(uuid::Uuid::now_v7());
            let mail = InboundMail::new(id, "k".into(), b"x".to_vec(), None, vec![], now);
            store.insert_inbound(&mail).await.unwrap();
            let token = LeaseToken::from_uuid(uuid::Uuid::now_v7());
            let claim = ClaimRequest {
                token,
                now,
                lease: TimeDelta::minutes(5),
                limit: 10,
            };
            assert_eq!(store.claim_inbound(&claim).await.unwrap().len(), 1);
            let finish = |token| Finish {
                id,
                token,
                outcome: InboundEnd {
                    outcome: InboundOutcome::Dropped,
                    detail: "automatic mail".into(),
                },
                at: now,
            };
            let stranger = LeaseToken::from_uuid(uuid::Uuid::now_v7());
            assert!(store.finish_inbound(&finish(stranger)).await.is_err());
            store.finish_inbound(&finish(token)).await.unwrap();
            let later = now + TimeDelta::days(60);
            assert_eq!(store.purge_inbound(later).await.unwrap(), 1);
        });
        assert!(
            text.contains("galaxy_mail_in_total{outcome=\"dropped\"} 1"),
            "{text}"
        );
    }
}
