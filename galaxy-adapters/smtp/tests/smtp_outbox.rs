//! The mail outbox end to end: `MailWorker` over the in-memory outbox sending through
//! `SmtpMailer` to a real SMTP server (aiosmtpd) that is up, down, or refusing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use galaxy_core::domain::mail::{AttemptOutcome, MailDelivery, MailStatus};
use galaxy_core::domain::retry::RetryPolicy;
use galaxy_core::domain::{MailId, UserId};
use galaxy_core::ports::{Clock, MailStore, Mailer, SecretGenerator};
use galaxy_core::service::Actor;
use galaxy_core::service::mail::MailAdminService;
use galaxy_core::worker::Worker;
use galaxy_core::worker::mail::{MailWorker, MailWorkerConfig};
use galaxy_ports::memory::MemoryMailStore;
use galaxy_ports::system::{ManualClock, SeededSecretGenerator};
use support::{Sink, SinkOptions, free_port, mail, mailer};

struct Outbox {
    store: Arc<MemoryMailStore>,
    clock: Arc<ManualClock>,
    secrets: Arc<SeededSecretGenerator>,
}

impl Outbox {
    fn new() -> Self {
        Self {
            store: Arc::new(MemoryMailStore::default()),
            clock: Arc::new(ManualClock::at_fixed_start()),
            secrets: Arc::new(SeededSecretGenerator::new(3)),
        }
    }

    async fn queue(&self, key: &str, to: &str) -> MailId {
        let delivery = MailDelivery::new(
            MailId::from_uuid(self.secrets.uuid()),
            mail(key, to, Some("<p>report</p>")),
            self.clock.now(),
        );
        self.store.enqueue_mail(&delivery).await.unwrap().id
    }

    /// A worker sending through an SMTP mailer for `port`, backoff 10 s doubling to 40 s.
    fn worker(&self, port: u16, max_attempts: u32) -> MailWorker {
        let mailer: Arc<dyn Mailer> = Arc::new(mailer(port, Duration::from_secs(10)));
        let config = MailWorkerConfig {
            batch_size: 10,
            lease: TimeDelta::seconds(60),
            retry: RetryPolicy::new(TimeDelta::seconds(10), TimeDelta::seconds(40), max_attempts)
                .unwrap(),
        };
        MailWorker::new(
            self.store.clone(),
            mailer,
            self.clock.clone(),
            self.secrets.clone(),
            config,
        )
    }

    async fn status(&self, id: MailId) -> MailStatus {
        self.store.get_mail(id).await.unwrap().status
    }
}

#[tokio::test]
async fn every_attempt_is_recorded_with_the_servers_reply() {
    let sink = Sink::start().await;
    let outbox = Outbox::new();
    let sent = outbox.queue("ok", "ann@example.org").await;
    let later = outbox.queue("later", "reply-451@example.org").await;
    let refused = outbox.queue("refused", "reply-550@example.org").await;
    let worker = outbox.worker(sink.port, 3);
    assert_eq!(worker.tick().await.unwrap().handled, 3);

    let attempts = outbox.store.mail_attempts(sent).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Sent);
    assert_eq!(attempts[0].detail, "250 2.0.0 OK queued as 1");
    assert_eq!(outbox.status(sent).await, MailStatus::Sent);

    let attempts = outbox.store.mail_attempts(later).await.unwrap();
    assert_eq!(attempts[0].outcome, AttemptOutcome::Transient);
    assert!(
        attempts[0]
            .detail
            .contains("451 4.0.0 test sink answers 451"),
        "{attempts:?}"
    );
    assert_eq!(outbox.status(later).await, MailStatus::Retrying);

    let attempts = outbox.store.mail_attempts(refused).await.unwrap();
    assert_eq!(attempts[0].outcome, AttemptOutcome::Permanent);
    assert!(
        attempts[0]
            .detail
            .contains("550 5.0.0 test sink answers 550"),
        "{attempts:?}"
    );
    assert_eq!(outbox.status(refused).await, MailStatus::Dead);
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn with_smtp_down_for_a_while_mails_are_retried_and_then_sent_none_lost() {
    let port = free_port();
    let outbox = Outbox::new();
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(outbox.queue(&format!("down-{n}"), "ann@example.org").await);
    }
    let worker = outbox.worker(port, 5);

    // Two passes while nothing listens: every mail fails transiently and waits.
    assert_eq!(worker.tick().await.unwrap().handled, 5);
    outbox.clock.advance(TimeDelta::seconds(10));
    assert_eq!(worker.tick().await.unwrap().handled, 5);
    for id in &ids {
        let mail = outbox.store.get_mail(*id).await.unwrap();
        assert_eq!((mail.status, mail.attempts), (MailStatus::Retrying, 2));
        assert!(mail.last_error.unwrap().to_lowercase().contains("refused"));
    }

    // The server comes up; the mails go out at their next due time, each once.
    let sink = Sink::start_with(SinkOptions {
        port,
        ..SinkOptions::default()
    })
    .await;
    assert_eq!(worker.tick().await.unwrap().handled, 0, "not due yet");
    outbox.clock.advance(TimeDelta::seconds(20));
    assert_eq!(worker.run_until_idle(10).await.unwrap(), 5);
    for id in &ids {
        assert_eq!(outbox.status(*id).await, MailStatus::Sent);
        let attempts = outbox.store.mail_attempts(*id).await.unwrap();
        let outcomes: Vec<_> = attempts.iter().map(|a| a.outcome).collect();
        use AttemptOutcome::{Sent, Transient};
        assert_eq!(outcomes, vec![Transient, Transient, Sent]);
    }
    let mut message_ids: Vec<String> = sink
        .messages()
        .iter()
        .map(|m| m["headers"]["message-id"].as_str().unwrap().to_owned())
        .collect();
    message_ids.sort();
    let expected: Vec<String> = (0..5).map(|n| format!("<down-{n}@example.org>")).collect();
    assert_eq!(message_ids, expected, "every mail arrived exactly once");
}

#[tokio::test]
async fn an_exhausted_budget_dead_letters_and_an_admin_retry_sends_it() {
    let port = free_port();
    let outbox = Outbox::new();
    let id = outbox.queue("budget", "ann@example.org").await;
    let worker = outbox.worker(port, 2);
    worker.tick().await.unwrap();
    outbox.clock.advance(TimeDelta::seconds(10));
    worker.tick().await.unwrap();
    assert_eq!(outbox.status(id).await, MailStatus::Dead);
    assert_eq!(outbox.store.mail_attempts(id).await.unwrap().len(), 2);

    let sink = Sink::start_with(SinkOptions {
        port,
        ..SinkOptions::default()
    })
    .await;
    outbox.clock.advance(TimeDelta::hours(1));
    assert_eq!(
        worker.tick().await.unwrap().handled,
        0,
        "dead mail stays dead"
    );
    let admin = Actor {
        user_id: UserId::from_uuid(outbox.secrets.uuid()),
        is_admin: true,
    };
    let service = MailAdminService::new(outbox.store.clone(), outbox.clock.clone());
    service.retry(&admin, &id.to_string()).await.unwrap();
    assert_eq!(worker.run_until_idle(10).await.unwrap(), 1);
    assert_eq!(outbox.status(id).await, MailStatus::Sent);
    let (_, attempts) = service.get(&admin, &id.to_string()).await.unwrap();
    assert_eq!(attempts.len(), 3, "the dead attempts stay on record");
    assert!(attempts[2].detail.starts_with("250 "), "{attempts:?}");
    assert_eq!(sink.messages().len(), 1);
}
