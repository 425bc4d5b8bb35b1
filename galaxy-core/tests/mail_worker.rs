#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The mail outbox worker against the in-memory outbox: success, retries with backoff,
//! dead-lettering after the budget, admin retry, shutdown release.

use std::sync::Arc;

use chrono::TimeDelta;
use galaxy_core::domain::mail::{AttemptOutcome, MailDelivery, MailStatus, OutgoingMail};
use galaxy_core::domain::page::PageRequest;
use galaxy_core::domain::retry::RetryPolicy;
use galaxy_core::domain::user::{Email, Locale};
use galaxy_core::domain::{MailId, UserId};
use galaxy_core::ports::{Clock, MailStore, MailerError, SecretGenerator};
use galaxy_core::service::Actor;
use galaxy_core::service::mail::MailAdminService;
use galaxy_core::worker::Worker;
use galaxy_core::worker::mail::{MailWorker, MailWorkerConfig};
use galaxy_ports::memory::MemoryMailStore;
use galaxy_ports::mock::MockMailer;
use galaxy_ports::system::{ManualClock, SeededSecretGenerator};
use tokio_util::sync::CancellationToken;

struct Fixture {
    store: Arc<MemoryMailStore>,
    clock: Arc<ManualClock>,
    secrets: Arc<SeededSecretGenerator>,
}

fn fixture() -> Fixture {
    Fixture {
        store: Arc::new(MemoryMailStore::default()),
        clock: Arc::new(ManualClock::at_fixed_start()),
        secrets: Arc::new(SeededSecretGenerator::new(7)),
    }
}

fn config(max_attempts: u32) -> MailWorkerConfig {
    MailWorkerConfig {
        batch_size: 10,
        lease: TimeDelta::seconds(60),
        retry: RetryPolicy::new(TimeDelta::seconds(10), TimeDelta::seconds(40), max_attempts)
            .unwrap(),
    }
}

async fn queue(f: &Fixture, key: &str) -> MailId {
    queue_kind(f, key, "login_code").await
}

async fn queue_kind(f: &Fixture, key: &str, kind: &str) -> MailId {
    let mail = OutgoingMail {
        idempotency_key: key.to_owned(),
        to: Email::parse("player@example.org").unwrap(),
        kind: kind.to_owned(),
        locale: Locale::default(),
        subject: "Your code".to_owned(),
        text_body: "123456".to_owned(),
        html_body: None,
        extras: Default::default(),
    };
    enqueue(f, mail).await
}

async fn enqueue(f: &Fixture, mail: OutgoingMail) -> MailId {
    let delivery = MailDelivery::new(MailId::from_uuid(f.secrets.uuid()), mail, f.clock.now());
    f.store.enqueue_mail(&delivery).await.unwrap().id
}

fn worker(f: &Fixture, mailer: MockMailer, max_attempts: u32) -> MailWorker {
    MailWorker::new(
        f.store.clone(),
        Arc::new(mailer),
        f.clock.clone(),
        f.secrets.clone(),
        config(max_attempts),
    )
}

#[tokio::test]
async fn a_mail_is_sent_once_and_its_attempt_recorded() {
    let f = fixture();
    let id = queue(&f, "k1").await;
    let mut mailer = MockMailer::new();
    mailer
        .expect_send()
        .withf(|m| m.to.as_str() == "player@example.org" && m.subject == "Your code")
        .times(1)
        .returning(|_| Ok("250 queued as ABC".to_owned()));
    let w = worker(&f, mailer, 3);
    assert_eq!(w.run_until_idle(10).await.unwrap(), 1);
    let mail = f.store.get_mail(id).await.unwrap();
    assert_eq!(mail.status, MailStatus::Sent);
    let attempts = f.store.mail_attempts(id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Sent);
    assert_eq!(attempts[0].detail, "250 queued as ABC");
    assert_eq!(
        mail.mail.text_body,
        galaxy_core::domain::mail::REDACTED_BODY,
        "a login code does not stay in the outbox once delivered"
    );
}

#[tokio::test]
async fn only_secret_mail_is_redacted_and_only_once_delivered() {
    let f = fixture();
    let turn = queue_kind(&f, "t1", "turn_completed").await;
    let code = queue(&f, "c1").await;
    let mut mailer = MockMailer::new();
    mailer
        .expect_send()
        .times(1)
        .returning(|_| Err(MailerError::Transient("421 busy".into())));
    mailer.expect_send().returning(|_| Ok("250 ok".to_owned()));
    let w = worker(&f, mailer, 3);
    w.tick().await.unwrap();
    // The failed one (whichever it was) keeps its body for the retry.
    let mut retrying = Vec::new();
    for id in [turn, code] {
        let mail = f.store.get_mail(id).await.unwrap();
        if mail.status == MailStatus::Retrying {
            retrying.push(mail);
        }
    }
    assert_eq!(retrying.len(), 1);
    assert_eq!(retrying[0].mail.text_body, "123456");
    f.clock.advance(TimeDelta::minutes(5));
    w.run_until_idle(10).await.unwrap();
    assert_eq!(
        f.store.get_mail(turn).await.unwrap().mail.text_body,
        "123456"
    );
    let code = f.store.get_mail(code).await.unwrap();
    assert_eq!(code.status, MailStatus::Sent);
    assert_eq!(
        code.mail.text_body,
        galaxy_core::domain::mail::REDACTED_BODY
    );
}

/// A turn mail goes out with the player's orders address (Reply-To, text, HTML link);
/// the outbox then keeps it without the token, the report untouched.
#[tokio::test]
async fn a_delivered_turn_mail_keeps_the_report_but_not_the_orders_token() {
    let f = fixture();
    let token = "abcdefghijkmnpqrstuv";
    let address = format!("orders+{token}@galaxy.example");
    let mail = OutgoingMail {
        idempotency_key: "turn-3".to_owned(),
        to: Email::parse("player@example.org").unwrap(),
        kind: "turn_completed".to_owned(),
        locale: Locale::default(),
        subject: "Turn 3".to_owned(),
        text_body: format!("Reply to {address} with your orders.\n\nThe report of turn 3."),
        html_body: Some(format!("<a href=\"mailto:{address}\">{address}</a>")),
        extras: galaxy_core::domain::mail::MailExtras {
            reply_to: Some(Email::parse(&address).unwrap()),
            ..Default::default()
        },
    };
    let id = enqueue(&f, mail).await;
    let mut mailer = MockMailer::new();
    let sent_with = address.clone();
    mailer
        .expect_send()
        .withf(move |m| {
            m.text_body.contains(&sent_with)
                && m.extras.reply_to.as_ref().map(Email::as_str) == Some(sent_with.as_str())
        })
        .times(1)
        .returning(|_| Ok("250 ok".to_owned()));
    worker(&f, mailer, 3).run_until_idle(10).await.unwrap();
    let kept = f.store.get_mail(id).await.unwrap();
    assert_eq!(kept.status, MailStatus::Sent);
    assert!(!format!("{kept:?}").contains(token), "{kept:?}");
    assert_eq!(
        kept.mail.text_body,
        "Reply to orders+removed@galaxy.example with your orders.\n\nThe report of turn 3."
    );
    assert_eq!(
        kept.mail.extras.reply_to.map(|a| a.as_str().to_owned()),
        Some("orders+removed@galaxy.example".to_owned())
    );
}

#[tokio::test]
async fn transient_failures_retry_with_backoff_then_dead_letter_and_admin_retry_sends() {
    let f = fixture();
    let id = queue(&f, "k2").await;
    let mut failing = MockMailer::new();
    failing
        .expect_send()
        .times(3)
        .returning(|_| Err(MailerError::Transient("421 try later".to_owned())));
    let w = worker(&f, failing, 3);

    // Attempt 1 fails; the mail waits 10 s (no jitter: unit() is 0.5).
    assert_eq!(w.tick().await.unwrap().handled, 1);
    let mail = f.store.get_mail(id).await.unwrap();
    assert_eq!(mail.status, MailStatus::Retrying);
    assert_eq!(mail.next_attempt_at, f.clock.now() + TimeDelta::seconds(10));
    assert_eq!(w.tick().await.unwrap().handled, 0, "not due yet");

    f.clock.advance(TimeDelta::seconds(10));
    assert_eq!(w.tick().await.unwrap().handled, 1);
    let mail = f.store.get_mail(id).await.unwrap();
    assert_eq!(
        mail.next_attempt_at,
        f.clock.now() + TimeDelta::seconds(20),
        "doubled"
    );

    f.clock.advance(TimeDelta::seconds(20));
    assert_eq!(w.tick().await.unwrap().handled, 1);
    let mail = f.store.get_mail(id).await.unwrap();
    assert_eq!(mail.status, MailStatus::Dead, "budget of 3 spent");
    assert_eq!(mail.attempts, 3);
    let attempts = f.store.mail_attempts(id).await.unwrap();
    assert_eq!(attempts.len(), 3);
    assert!(
        attempts
            .iter()
            .all(|a| a.outcome == AttemptOutcome::Transient && a.detail.contains("421"))
    );

    // An admin retries it; a healthy mailer now sends it.
    let admin = Actor {
        user_id: UserId::from_uuid(f.secrets.uuid()),
        is_admin: true,
    };
    let service = MailAdminService::new(f.store.clone(), f.clock.clone());
    let dead = service
        .list(&admin, Some("dead"), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(dead.items.len(), 1);
    let player = Actor {
        is_admin: false,
        ..admin
    };
    assert!(
        service.retry(&player, &id.to_string()).await.is_err(),
        "players may not retry"
    );
    service.retry(&admin, &id.to_string()).await.unwrap();
    assert!(
        service.retry(&admin, &id.to_string()).await.is_err(),
        "only dead mail is retried"
    );

    let mut healthy = MockMailer::new();
    healthy
        .expect_send()
        .times(1)
        .returning(|_| Ok("250 ok".to_owned()));
    let w = worker(&f, healthy, 3);
    assert_eq!(w.run_until_idle(10).await.unwrap(), 1);
    assert_eq!(f.store.get_mail(id).await.unwrap().status, MailStatus::Sent);
}

#[tokio::test]
async fn a_permanent_failure_is_dead_at_once() {
    let f = fixture();
    let id = queue(&f, "k3").await;
    let mut mailer = MockMailer::new();
    mailer
        .expect_send()
        .times(1)
        .returning(|_| Err(MailerError::Permanent("550 no such user".to_owned())));
    let w = worker(&f, mailer, 5);
    w.tick().await.unwrap();
    let mail = f.store.get_mail(id).await.unwrap();
    assert_eq!(mail.status, MailStatus::Dead);
    assert_eq!(
        f.store.mail_attempts(id).await.unwrap()[0].outcome,
        AttemptOutcome::Permanent
    );
}

#[tokio::test]
async fn enqueueing_the_same_key_twice_queues_one_mail() {
    let f = fixture();
    let a = queue(&f, "same").await;
    let b = queue(&f, "same").await;
    assert_eq!(a, b);
    let all = f
        .store
        .list_mail(None, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 1);
}

#[tokio::test]
async fn on_shutdown_the_attempt_in_progress_finishes_and_the_rest_of_the_batch_is_released() {
    let f = fixture();
    let first = queue(&f, "k4").await;
    f.clock.advance(TimeDelta::seconds(1));
    let second = queue(&f, "k5").await;
    let cancel = CancellationToken::new();
    let mut mailer = MockMailer::new();
    // Shutdown arrives while the first mail is being sent.
    let during_send = cancel.clone();
    mailer.expect_send().times(1).returning(move |_| {
        during_send.cancel();
        Ok("250 ok".to_owned())
    });
    let w = worker(&f, mailer, 3).with_cancellation(cancel.clone());
    assert_eq!(w.tick().await.unwrap().handled, 1);
    assert_eq!(
        f.store.get_mail(first).await.unwrap().status,
        MailStatus::Sent
    );
    let released = f.store.get_mail(second).await.unwrap();
    assert_eq!(released.status, MailStatus::Pending);
    assert_eq!(released.attempts, 0, "a released claim is not an attempt");
    assert!(f.store.mail_attempts(second).await.unwrap().is_empty());
    assert_eq!(
        w.tick().await.unwrap().handled,
        0,
        "a stopped worker claims nothing"
    );
}

/// A mailer whose first send answers at once and whose later sends hang until released.
struct HangingMailer {
    release: tokio::sync::Notify,
    sends: std::sync::Mutex<u32>,
}

#[async_trait::async_trait]
impl galaxy_core::ports::Mailer for HangingMailer {
    async fn send(&self, _mail: &OutgoingMail) -> Result<String, MailerError> {
        let nth = {
            let mut sends = self.sends.lock().unwrap();
            *sends += 1;
            *sends
        };
        if nth > 1 {
            self.release.notified().await;
        }
        Ok("250 ok".to_owned())
    }
}

/// Shutdown while a send hangs: the mails sent before it are written at once, so a
/// shutdown bound that cuts the hanging send off (the tick aborted) leaves them sent,
/// not to be sent again once their lease lapses.
#[tokio::test]
async fn shutdown_during_a_hanging_send_writes_the_mails_sent_before_it() {
    let f = fixture();
    let first = queue(&f, "h1").await;
    f.clock.advance(TimeDelta::seconds(1));
    let second = queue(&f, "h2").await;
    let cancel = CancellationToken::new();
    let mailer = Arc::new(HangingMailer {
        release: tokio::sync::Notify::new(),
        sends: std::sync::Mutex::new(0),
    });
    let w = Arc::new(
        MailWorker::new(
            f.store.clone(),
            mailer.clone(),
            f.clock.clone(),
            f.secrets.clone(),
            config(3),
        )
        .with_cancellation(cancel.clone()),
    );
    let ticking = tokio::spawn({
        let w = w.clone();
        async move { w.tick().await }
    });
    while *mailer.sends.lock().unwrap() < 2 {
        tokio::task::yield_now().await;
    }
    cancel.cancel();
    let mut waited = 0;
    while f.store.get_mail(first).await.unwrap().status != MailStatus::Sent {
        waited += 1;
        assert!(waited < 10_000, "the first mail's outcome was not written");
        tokio::task::yield_now().await;
    }
    // The shutdown bound runs out: the hanging send is cut off.
    ticking.abort();
    assert!(ticking.await.unwrap_err().is_cancelled());
    assert_eq!(
        f.store.get_mail(first).await.unwrap().status,
        MailStatus::Sent
    );
    let cut = f.store.get_mail(second).await.unwrap();
    assert_eq!(
        cut.status,
        MailStatus::Sending,
        "its lease lapses; it goes again"
    );
}

#[tokio::test]
async fn the_retention_sweeper_purges_expired_challenges_and_old_sent_mail_only() {
    use galaxy_core::domain::ChallengeId;
    use galaxy_core::domain::auth::{ChallengeStatus, LoginChallenge};
    use galaxy_core::ports::ChallengeStore;
    use galaxy_core::worker::retention::{RetentionConfig, RetentionSweeper};
    use galaxy_ports::memory::MemoryUserStore;

    let f = fixture();
    let users = Arc::new(MemoryUserStore::new());
    let start = f.clock.now();
    for (n, expires) in [(1, start), (2, start + TimeDelta::days(2))] {
        let challenge = LoginChallenge {
            id: ChallengeId::from_uuid(f.secrets.uuid()),
            email: Email::parse(&format!("c{n}@example.org")).unwrap(),
            code_hash: galaxy_core::domain::auth::LoginCode::parse("123456")
                .unwrap()
                .hash_for(
                    ChallengeId::from_uuid(f.secrets.uuid()),
                    &galaxy_core::domain::auth::CodeKey::derive(&[7; 32]).unwrap(),
                ),
            client_ip: "203.0.113.1".into(),
            status: ChallengeStatus::Issued,
            failed_attempts: 0,
            max_attempts: 5,
            issued_at: start,
            expires_at: expires,
        };
        let generous = galaxy_core::ports::IssueLimits {
            per_email: galaxy_core::service::auth::RateLimit {
                max: 100,
                window: TimeDelta::hours(1),
            },
            per_client: None,
            live_per_email: 100,
        };
        let admitted = users.issue_challenge(&challenge, &generous).await.unwrap();
        assert!(matches!(admitted, galaxy_core::ports::Admission::Admitted));
    }
    let sent = queue_kind(&f, "old", "turn_completed").await;
    let mut mailer = MockMailer::new();
    mailer.expect_send().returning(|_| Ok("250".to_owned()));
    worker(&f, mailer, 3).run_until_idle(5).await.unwrap();
    let failing = queue_kind(&f, "dead", "turn_completed").await;
    let mut mailer = MockMailer::new();
    mailer
        .expect_send()
        .returning(|_| Err(MailerError::Permanent("550 no".into())));
    worker(&f, mailer, 3).run_until_idle(5).await.unwrap();
    assert_eq!(
        f.store.get_mail(failing).await.unwrap().status,
        MailStatus::Dead
    );

    let sweeper = RetentionSweeper::new(
        users.clone(),
        f.store.clone(),
        f.clock.clone(),
        RetentionConfig::default(),
    );
    f.clock.advance(TimeDelta::days(1) + TimeDelta::minutes(1));
    sweeper.tick().await.unwrap();
    assert!(f.store.get_mail(sent).await.is_ok(), "sent a day ago: kept");
    let issued = users
        .challenge_issue_times(
            &galaxy_core::ports::ChallengeScope::ClientIp("203.0.113.1".into()),
            start,
        )
        .await
        .unwrap();
    assert_eq!(
        issued.len(),
        1,
        "the challenge expired over a day ago is gone"
    );
    f.clock.advance(TimeDelta::days(30));
    sweeper.tick().await.unwrap();
    assert!(
        f.store.get_mail(sent).await.is_err(),
        "sent over 30 days ago: purged"
    );
    assert!(
        f.store.get_mail(failing).await.is_ok(),
        "dead mail stays for an admin"
    );
    f.clock.advance(TimeDelta::days(59));
    sweeper.tick().await.unwrap();
    assert!(
        f.store.get_mail(failing).await.is_err(),
        "dead over 90 days ago: purged"
    );
}

/// One purge failing (its store down) does not keep the others from running; the tick
/// reports the failure.
#[tokio::test]
async fn a_failing_purge_leaves_the_others_to_run() {
    use galaxy_core::ports::StoreError;
    use galaxy_core::worker::retention::{RetentionConfig, RetentionSweeper};
    use galaxy_ports::mock::MockChallengeStore;

    let f = fixture();
    let sent = queue_kind(&f, "old", "turn_completed").await;
    let mut mailer = MockMailer::new();
    mailer.expect_send().returning(|_| Ok("250".to_owned()));
    worker(&f, mailer, 3).run_until_idle(5).await.unwrap();
    let mut challenges = MockChallengeStore::new();
    challenges.expect_purge_challenges().returning(|_| {
        Err(StoreError::Unavailable {
            source: "connection reset".into(),
        })
    });
    let sweeper = RetentionSweeper::new(
        Arc::new(challenges),
        f.store.clone(),
        f.clock.clone(),
        RetentionConfig::default(),
    );
    f.clock.advance(TimeDelta::days(31));
    assert!(sweeper.tick().await.is_err(), "the failure is reported");
    assert!(
        f.store.get_mail(sent).await.is_err(),
        "the sent mail was purged all the same"
    );
}

#[tokio::test]
async fn the_retention_sweeper_purges_handled_inbound_mail_after_its_period() {
    use galaxy_core::domain::InboundMailId;
    use galaxy_core::domain::lease::{ClaimRequest, Finish};
    use galaxy_core::domain::mail_in::{InboundEnd, InboundMail, InboundOutcome};
    use galaxy_core::ports::InboundMailStore;
    use galaxy_core::worker::retention::{RetentionConfig, RetentionSweeper};
    use galaxy_ports::memory::{MemoryMailInStore, MemoryUserStore};

    let f = fixture();
    let inbound = Arc::new(MemoryMailInStore::default());
    let mail = InboundMail::new(
        InboundMailId::from_uuid(uuid::Uuid::now_v7()),
        "m1".to_owned(),
        b"From: a@example.com\r\n\r\nmove 1 2\r\n".to_vec(),
        None,
        vec![],
        f.clock.now(),
    );
    inbound.insert_inbound(&mail).await.unwrap();
    let token = galaxy_core::domain::LeaseToken::from_uuid(uuid::Uuid::now_v7());
    let claim = ClaimRequest {
        token,
        now: f.clock.now(),
        lease: TimeDelta::minutes(5),
        limit: 1,
    };
    inbound.claim_inbound(&claim).await.unwrap();
    let end = InboundEnd {
        outcome: InboundOutcome::Answered,
        detail: "answered".to_owned(),
    };
    let finish = Finish {
        id: mail.id,
        token,
        outcome: end,
        at: f.clock.now(),
    };
    inbound.finish_inbound(&finish).await.unwrap();
    let sweeper = RetentionSweeper::new(
        Arc::new(MemoryUserStore::new()),
        f.store.clone(),
        f.clock.clone(),
        RetentionConfig::default(),
    )
    .with_inbound_mail(inbound.clone(), TimeDelta::days(30));
    f.clock.advance(TimeDelta::days(29));
    sweeper.tick().await.unwrap();
    assert!(
        inbound.get_inbound(mail.id).await.is_ok(),
        "kept for 30 days"
    );
    f.clock.advance(TimeDelta::days(2));
    sweeper.tick().await.unwrap();
    assert!(inbound.get_inbound(mail.id).await.is_err(), "purged after");
}

#[tokio::test]
async fn the_retention_sweeper_compacts_delivered_notifications_after_their_period() {
    use galaxy_core::domain::notification::NotificationRoute;
    use galaxy_core::domain::notification::{Channel, NotificationIntent, NotificationKind};
    use galaxy_core::domain::{IntentId, RouteId, UserId};
    use galaxy_core::ports::{NotificationStore, RouteNext};
    use galaxy_core::worker::retention::{RetentionConfig, RetentionSweeper};
    use galaxy_ports::memory::{MemoryNotificationStore, MemoryUserStore};

    let f = fixture();
    let store = Arc::new(MemoryNotificationStore::default());
    let intent = NotificationIntent {
        id: IntentId::from_uuid(f.secrets.uuid()),
        kind: NotificationKind::TurnCompleted,
        idempotency_key: "turn_completed:g:1".to_owned(),
        recipients: vec![UserId::from_uuid(f.secrets.uuid())],
        game_id: None,
        payload: serde_json::json!({"report_text": "a long report"}),
        created_at: f.clock.now(),
    };
    let route = NotificationRoute::new(
        RouteId::from_uuid(f.secrets.uuid()),
        intent.id,
        intent.recipients[0],
        Channel::Push,
        f.clock.now(),
    );
    store.insert_intent(&intent, &[route]).await.unwrap();
    let token = galaxy_core::domain::LeaseToken::from_uuid(f.secrets.uuid());
    let claim = galaxy_core::domain::lease::ClaimRequest {
        token,
        now: f.clock.now(),
        lease: TimeDelta::minutes(1),
        limit: 10,
    };
    let claimed = store.claim_routes(&claim).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let next = RouteNext::Delivered;
    store
        .finish_route(claimed[0].id, token, &next, f.clock.now())
        .await
        .unwrap();
    let sweeper = RetentionSweeper::new(
        Arc::new(MemoryUserStore::new()),
        f.store.clone(),
        f.clock.clone(),
        RetentionConfig::default(),
    )
    .with_notifications(store.clone(), TimeDelta::days(30));
    f.clock.advance(TimeDelta::days(29));
    sweeper.tick().await.unwrap();
    assert!(
        store.get_intent(intent.id).await.is_ok(),
        "kept for 30 days"
    );
    assert_ne!(
        store.get_intent(intent.id).await.unwrap().payload,
        serde_json::json!({})
    );
    f.clock.advance(TimeDelta::days(2));
    sweeper.tick().await.unwrap();
    let compacted = store.get_intent(intent.id).await.unwrap();
    assert_eq!(compacted.payload, serde_json::json!({}), "compacted after");
}

#[tokio::test]
async fn the_retention_sweeper_trims_the_push_log_to_the_window_and_the_ring_capacity() {
    use galaxy_core::domain::push::NewPushEvent;
    use galaxy_core::ports::PushLog;
    use galaxy_core::worker::retention::{RetentionConfig, RetentionSweeper};
    use galaxy_ports::memory::{MemoryPushLog, MemoryUserStore};

    let f = fixture();
    let log = Arc::new(MemoryPushLog::new());
    let append = |minutes_ago: i64| {
        let log = log.clone();
        let event = NewPushEvent {
            event_id: f.secrets.uuid(),
            user_ids: Vec::new(),
            kind: "test.event".into(),
            payload: serde_json::json!({}),
            occurred_at: f.clock.now() - TimeDelta::minutes(minutes_ago),
        };
        async move { log.append(&event).await.unwrap().sequence }
    };
    // One event from before the window, then five recent ones.
    let old = append(30).await;
    let mut recent = Vec::new();
    for _ in 0..5 {
        recent.push(append(1).await);
    }
    let sweeper = RetentionSweeper::new(
        Arc::new(MemoryUserStore::new()),
        f.store.clone(),
        f.clock.clone(),
        RetentionConfig::default(),
    )
    .with_push_log(log.clone(), TimeDelta::minutes(10), 3);
    sweeper.tick().await.unwrap();
    let page = log.read_after(0, 100).await.unwrap();
    let kept: Vec<u64> = page.events.iter().map(|e| e.sequence).collect();
    assert_eq!(kept, recent[2..], "the newest three, all within the window");
    assert_eq!(page.purged_through, recent[1]);
    assert!(old < recent[0]);
}

#[tokio::test]
async fn the_retention_sweeper_deletes_sessions_a_while_after_they_ended() {
    use galaxy_core::domain::SessionId;
    use galaxy_core::domain::auth::{Session, SessionStatus, SessionToken};
    use galaxy_core::ports::SessionStore;
    use galaxy_core::worker::retention::{RetentionConfig, RetentionSweeper};
    use galaxy_ports::memory::MemoryUserStore;

    let f = fixture();
    let users = Arc::new(MemoryUserStore::new());
    let now = f.clock.now();
    let session = |expires_in: TimeDelta| {
        let mut token = [0u8; 32];
        token[..16].copy_from_slice(f.secrets.uuid().as_bytes());
        Session {
            id: SessionId::from_uuid(f.secrets.uuid()),
            user_id: UserId::from_uuid(f.secrets.uuid()),
            token_hash: SessionToken::from_bytes(token).hash(),
            status: SessionStatus::Active,
            created_at: now - TimeDelta::days(60),
            expires_at: now + expires_in,
            revoked_at: None,
        }
    };
    let long_expired = session(-TimeDelta::days(31));
    let just_expired = session(-TimeDelta::days(1));
    let live = session(TimeDelta::days(10));
    let signed_out = session(TimeDelta::days(10));
    for s in [&long_expired, &just_expired, &live, &signed_out] {
        users.insert_session(s).await.unwrap();
    }
    users
        .revoke_session(signed_out.id, now - TimeDelta::days(40))
        .await
        .unwrap();
    let sweeper = RetentionSweeper::new(
        users.clone(),
        f.store.clone(),
        f.clock.clone(),
        RetentionConfig::default(),
    )
    .with_sessions(users.clone(), TimeDelta::days(30));
    sweeper.tick().await.unwrap();
    for gone in [&long_expired, &signed_out] {
        assert!(users.get_session(gone.id).await.is_err(), "{:?}", gone.id);
    }
    for kept in [&just_expired, &live] {
        assert!(users.get_session(kept.id).await.is_ok(), "{:?}", kept.id);
    }
    f.clock.advance(TimeDelta::days(30));
    sweeper.tick().await.unwrap();
    assert!(users.get_session(just_expired.id).await.is_err());
    assert!(
        users.get_session(live.id).await.is_ok(),
        "ended 20 days ago"
    );
}

/// A mailer whose every send takes `took` on the manual clock.
struct SlowMailer {
    clock: Arc<ManualClock>,
    took: TimeDelta,
    sends: std::sync::Mutex<u32>,
}

#[async_trait::async_trait]
impl galaxy_core::ports::Mailer for SlowMailer {
    async fn send(&self, _mail: &OutgoingMail) -> Result<String, MailerError> {
        self.clock.advance(self.took);
        *self.sends.lock().unwrap() += 1;
        Ok("250 ok".to_owned())
    }
}

#[tokio::test]
async fn a_slow_batch_sends_only_within_half_its_lease_and_releases_the_rest() {
    let f = fixture();
    let ids = [
        queue(&f, "s1").await,
        queue(&f, "s2").await,
        queue(&f, "s3").await,
    ];
    let mailer = Arc::new(SlowMailer {
        clock: f.clock.clone(),
        took: TimeDelta::seconds(31),
        sends: std::sync::Mutex::new(0),
    });
    // Lease 60 s, sends of 31 s: a second send would start past half the lease and end
    // after it lapsed, while another worker could have taken the mail and sent it too.
    let w = MailWorker::new(
        f.store.clone(),
        mailer.clone(),
        f.clock.clone(),
        f.secrets.clone(),
        config(3),
    );
    let report = w.tick().await.unwrap();
    assert_eq!(*mailer.sends.lock().unwrap(), 1, "one send started in time");
    assert_eq!(report.handled, 1);
    assert_eq!(
        f.store.get_mail(ids[0]).await.unwrap().status,
        MailStatus::Sent
    );
    // The other two went back at once: another worker claims them now, and nothing else
    // holds them.
    let claim = galaxy_core::domain::lease::ClaimRequest {
        token: galaxy_core::domain::LeaseToken::from_uuid(uuid::Uuid::from_u128(99)),
        now: f.clock.now(),
        lease: TimeDelta::seconds(60),
        limit: 10,
    };
    let taken: Vec<MailId> = f
        .store
        .claim_mail(&claim)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(taken, ids[1..].to_vec());
}

/// After an outage, every dead mail but login codes is queued again at once, past the
/// first page of them; admins doing it at the same time queue each mail once between
/// them, and a mail that is not dead (here: sent) stays as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_dead_mail_is_queued_again_once_whoever_asks() {
    let f = fixture();
    let mut ids = Vec::new();
    for n in 0..150 {
        ids.push(queue_kind(&f, &format!("dead-{n}"), "turn_completed").await);
    }
    let code = queue(&f, "dead-code").await;
    let mut failing = MockMailer::new();
    failing
        .expect_send()
        .returning(|_| Err(MailerError::Permanent("550 relay down".to_owned())));
    worker(&f, failing, 1).run_until_idle(100).await.unwrap();
    let sent = queue_kind(&f, "sent", "turn_completed").await;
    let mut healthy = MockMailer::new();
    healthy
        .expect_send()
        .times(1)
        .returning(|_| Ok("250 ok".to_owned()));
    worker(&f, healthy, 1).run_until_idle(10).await.unwrap();
    for id in &ids {
        assert_eq!(
            f.store.get_mail(*id).await.unwrap().status,
            MailStatus::Dead
        );
    }

    let admin = Actor {
        user_id: UserId::from_uuid(f.secrets.uuid()),
        is_admin: true,
    };
    let service = Arc::new(MailAdminService::new(f.store.clone(), f.clock.clone()));
    let player = Actor {
        is_admin: false,
        ..admin
    };
    assert!(
        service.retry_all_dead(&player).await.is_err(),
        "admins only"
    );
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let service = service.clone();
            tokio::spawn(async move { service.retry_all_dead(&admin).await.unwrap() })
        })
        .collect();
    let mut retried = 0;
    for caller in callers {
        retried += caller.await.unwrap();
    }
    assert_eq!(
        retried, 150,
        "each dead mail queued once between the callers"
    );
    for id in &ids {
        let mail = f.store.get_mail(*id).await.unwrap();
        assert_eq!((mail.status, mail.attempts), (MailStatus::Pending, 0));
    }
    assert_eq!(
        f.store.get_mail(sent).await.unwrap().status,
        MailStatus::Sent
    );
    assert_eq!(
        f.store.get_mail(code).await.unwrap().status,
        MailStatus::Dead,
        "a login code is not sent again"
    );
    assert_eq!(service.retry_all_dead(&admin).await.unwrap(), 0);
}
