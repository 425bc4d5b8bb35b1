//! What the mail store's decorator counts.
#![allow(clippy::unwrap_used)]

use chrono::TimeDelta;
use galaxy_core::domain::lease::Finish;
use galaxy_core::domain::mail::{MailDelivery, OutgoingMail};
use galaxy_core::domain::user::{Email, Locale};
use galaxy_core::ports::{Clock, MailAttemptEnd};
use galaxy_ports::memory::MemoryMailStore;
use galaxy_ports::system::ManualClock;

use super::*;

fn mail(key: &str, clock: &ManualClock) -> MailDelivery {
    let mail = OutgoingMail {
        idempotency_key: key.to_owned(),
        to: Email::parse("ann@example.org").unwrap(),
        kind: "game_started".to_owned(),
        locale: Locale::default(),
        subject: "Vega".to_owned(),
        text_body: "started".to_owned(),
        html_body: None,
        extras: Default::default(),
    };
    MailDelivery::new(MailId::from_uuid(uuid::Uuid::now_v7()), mail, clock.now())
}

/// Each mail given up on counts once, whether finished alone or in a batch; a mail
/// sent or retried counts nothing, nor does a finish whose lease was lost.
#[test]
fn dead_letters_count_once_each() {
    let text = crate::metering::recorded(async {
        let clock = ManualClock::at_fixed_start();
        let store = MeteredMail(Arc::new(MemoryMailStore::default()));
        for key in ["a", "b", "c", "d"] {
            store.enqueue_mail(&mail(key, &clock)).await.unwrap();
        }
        let token = LeaseToken::from_uuid(uuid::Uuid::now_v7());
        let claim = ClaimRequest {
            token,
            now: clock.now(),
            lease: TimeDelta::minutes(1),
            limit: 10,
        };
        let mails = store.claim_mail(&claim).await.unwrap();
        assert_eq!(mails.len(), 4);
        let stranger = LeaseToken::from_uuid(uuid::Uuid::now_v7());
        let lost = store
            .finish_mail_attempt(mails[0].id, stranger, None, MailNext::Dead, clock.now())
            .await;
        assert!(lost.is_err(), "{lost:?}");
        store
            .finish_mail_attempt(mails[0].id, token, None, MailNext::Dead, clock.now())
            .await
            .unwrap();
        let nexts = [
            MailNext::Dead,
            MailNext::Sent,
            MailNext::Retry(clock.now() + TimeDelta::minutes(5)),
        ];
        let finishes: Vec<MailFinish> = mails[1..]
            .iter()
            .zip(nexts)
            .map(|(m, next)| Finish {
                id: m.id,
                token,
                outcome: MailAttemptEnd {
                    attempt: None,
                    next,
                },
                at: clock.now(),
            })
            .collect();
        let done = store.finish_mail_attempts(&finishes).await.unwrap();
        assert!(done.iter().all(Result::is_ok), "{done:?}");
        // Finishing the dead one again (a lost lease now) counts nothing more.
        let again = store.finish_mail_attempts(&finishes[..1]).await.unwrap();
        assert!(again[0].is_err(), "{again:?}");
    });
    assert!(text.contains("galaxy_mail_dead_letters_total 2"), "{text}");
}
