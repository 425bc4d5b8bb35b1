//! Game mails with orders by e-mail on: which carry the player's orders address (as
//! `Reply-To` and in the text), and which must not.

use std::sync::Arc;

use async_trait::async_trait;
use galaxy_core::domain::notification::NotificationKind;
use galaxy_core::domain::user::User;
use galaxy_core::domain::{GameId, Timestamp, UserId};
use galaxy_core::ports::{
    MailedOrdersVerdict, NewNotification, Notifier, OrdersDesk, OrdersDeskError,
};
use galaxy_core::service::mail_in::{MailInConfig, MailInPorts, MailInService};
use galaxy_core::worker::Worker;
use galaxy_ports::memory::InMemoryStores;
use serde_json::{Value, json};

use crate::harness::Harness;

/// A desk no test here sends orders to.
struct NoDesk;

#[async_trait]
impl OrdersDesk for NoDesk {
    async fn submit_mailed_orders(
        &self,
        _: UserId,
        _: GameId,
        _: &str,
        _: Timestamp,
    ) -> Result<MailedOrdersVerdict, OrdersDeskError> {
        unreachable!("no orders are mailed in these tests")
    }

    async fn plays_in(&self, _: UserId, _: GameId) -> Result<bool, OrdersDeskError> {
        unreachable!("the worker makes addresses for the players its payload names")
    }
}

fn orders_by_mail(h: &Harness) -> Arc<MailInService> {
    orders_by_mail_over(h, InMemoryStores::new().mail_in.clone())
}

/// Orders by e-mail keeping its addresses in `store`.
fn orders_by_mail_over(
    h: &Harness,
    store: Arc<dyn galaxy_core::ports::InboundMailStore>,
) -> Arc<MailInService> {
    Arc::new(MailInService::new(
        MailInPorts {
            store,
            users: h.users.clone(),
            mail: h.mail.clone(),
            desk: Arc::new(NoDesk),
            clock: h.clock.clone(),
            secrets: h.secrets.clone(),
        },
        MailInConfig::new("galaxy.test"),
    ))
}

async fn raise(h: &Harness, kind: NotificationKind, key: &str, to: &[&User], payload: Value) {
    let game_id = GameId::from_uuid(uuid::Uuid::from_u128(42));
    h.service
        .notify(NewNotification {
            kind,
            idempotency_key: key.to_owned(),
            recipients: to.iter().map(|u| u.id).collect(),
            game_id: Some(game_id),
            payload,
        })
        .await
        .unwrap();
}

/// A turn mail gives its players their orders address; a host who plays no race gets
/// the mail without one (a reply would only be refused), and a reminder carries it too
/// (a player answers it with orders).
#[tokio::test]
async fn the_orders_address_goes_to_players_in_turn_mails_and_reminders_only() {
    let h = Harness::new();
    let host = h.user("host", "en", true).await;
    let ann = h.user("ann", "en", true).await;
    let payload = json!({
        "game_name": "Andromeda",
        "turn": 5,
        "race": null,
        "report_text": null,
        "deadline": "2030-01-02 18:00 UTC",
        "per_recipient": { ann.id.to_string(): {"race": "Aldebarans", "report_text": "3 planets"} },
    });
    raise(
        &h,
        NotificationKind::TurnCompleted,
        "turn:5",
        &[&host, &ann],
        payload,
    )
    .await;
    let reminder = json!({
        "game_name": "Andromeda",
        "race": "Aldebarans",
        "turn": 6,
        "deadline": "2030-01-03 18:00 UTC",
        "before": "2h",
    });
    raise(
        &h,
        NotificationKind::TurnReminder,
        "remind:6",
        &[&ann],
        reminder,
    )
    .await;
    let worker = h.worker(3).with_orders_by_mail(orders_by_mail(&h));
    worker.run_until_idle(10).await.unwrap();
    let mails = h.mails().await;
    let mail = |user: &User, kind: NotificationKind| {
        mails
            .iter()
            .find(|m| m.mail.to == user.email && m.mail.kind == kind.as_str())
            .unwrap_or_else(|| panic!("no {kind:?} mail to {}", user.email))
            .mail
            .clone()
    };
    let turn = mail(&ann, NotificationKind::TurnCompleted);
    let address = turn
        .extras
        .reply_to
        .clone()
        .expect("a player's orders address");
    assert!(address.as_str().starts_with("orders+"), "{address:?}");
    assert!(
        turn.text_body.contains(address.as_str()),
        "{}",
        turn.text_body
    );
    let hosts = mail(&host, NotificationKind::TurnCompleted);
    assert_eq!(hosts.extras.reply_to, None);
    assert!(!hosts.text_body.contains("orders+"), "{}", hosts.text_body);
    let reminded = mail(&ann, NotificationKind::TurnReminder);
    assert_eq!(reminded.extras.reply_to, Some(address.clone()));
    assert!(
        reminded.text_body.contains(address.as_str()),
        "{}",
        reminded.text_body
    );

    // Delivered, the rendered mails (text, HTML, Reply-To) keep no token in the outbox.
    let token = address.as_str()["orders+".len()..]
        .split('@')
        .next()
        .unwrap()
        .to_owned();
    let mut mailer = galaxy_ports::mock::MockMailer::new();
    mailer.expect_send().returning(|_| Ok("250 ok".to_owned()));
    let mail_worker = galaxy_core::worker::mail::MailWorker::new(
        h.mail.clone(),
        Arc::new(mailer),
        h.clock.clone(),
        h.secrets.clone(),
        galaxy_core::worker::mail::MailWorkerConfig {
            batch_size: 10,
            lease: chrono::TimeDelta::seconds(60),
            retry: galaxy_core::domain::retry::RetryPolicy::new(
                chrono::TimeDelta::seconds(10),
                chrono::TimeDelta::seconds(40),
                3,
            )
            .unwrap(),
        },
    );
    mail_worker.run_until_idle(10).await.unwrap();
    let kept = h.mails().await;
    assert_eq!(kept.len(), mails.len());
    for mail in &kept {
        assert_eq!(mail.status, galaxy_core::domain::mail::MailStatus::Sent);
        assert!(!format!("{mail:?}").contains(&token), "{mail:?}");
    }
    let turn = kept
        .iter()
        .find(|m| m.mail.to == ann.email && m.mail.kind == "turn_completed")
        .unwrap();
    assert!(
        turn.mail.text_body.contains("3 planets"),
        "the report stays"
    );
    assert!(
        turn.mail.text_body.contains("orders+removed@"),
        "{}",
        turn.mail.text_body
    );
}

/// A report too long for a mail's body is attached as a file whatever the player chose
/// (mail clients clip long mails, and a reply quoting it would be too large to take),
/// with orders by e-mail on or off; a short one stays in the body.
#[tokio::test]
async fn a_long_report_is_attached_even_to_a_body_mail() {
    use galaxy_core::worker::notification::INLINE_REPORT_MAX;

    for with_orders_by_mail in [true, false] {
        let h = Harness::new();
        let ann = h.user("ann", "en", true).await;
        let bea = h.user("bea", "de", true).await;
        let long = "planet ".repeat(INLINE_REPORT_MAX / 7 + 1);
        let payload = json!({
            "game_name": "Andromeda",
            "turn": 5,
            "race": null,
            "report_text": null,
            "deadline": null,
            "per_recipient": {
                ann.id.to_string(): {"race": "Aldebarans", "report_text": long},
                bea.id.to_string(): {"race": "Betans", "report_text": "3 planets"},
            },
        });
        raise(
            &h,
            NotificationKind::TurnCompleted,
            "turn:5",
            &[&ann, &bea],
            payload,
        )
        .await;
        let mut worker = h.worker(3);
        if with_orders_by_mail {
            worker = worker.with_orders_by_mail(orders_by_mail(&h));
        }
        worker.run_until_idle(10).await.unwrap();
        let mails = h.mails().await;
        let to = |user: &User| {
            mails
                .iter()
                .find(|m| m.mail.to == user.email)
                .unwrap_or_else(|| panic!("no mail to {}", user.email))
                .mail
                .clone()
        };
        let anns = to(&ann);
        let attached = anns.extras.attachment.clone().expect("the report attached");
        assert_eq!(attached.text, long);
        assert_eq!(attached.file_name, "report-turn-5.txt");
        assert!(anns.text_body.len() < 8 * 1024, "{}", anns.text_body.len());
        assert!(
            anns.text_body.contains("report-turn-5.txt"),
            "{}",
            anns.text_body
        );
        assert!(!anns.html_body.unwrap_or_default().contains("planet planet"));
        let beas = to(&bea);
        assert_eq!(
            beas.extras.attachment, None,
            "a short report stays in the body"
        );
        assert!(beas.text_body.contains("3 planets"), "{}", beas.text_body);
    }
}

/// A player's orders address that cannot be made (the store refuses for good, not
/// unavailable) no longer holds the turn mail back until its route dies: the mail goes
/// without the address, its report in it. A store that does not answer still makes the
/// route wait, as the mail could not be queued either.
#[tokio::test]
async fn a_turn_mail_goes_without_its_orders_address_when_none_can_be_made() {
    use galaxy_core::ports::StoreError;
    use galaxy_ports::mock::MockInboundMailStore;

    let h = Harness::new();
    let ann = h.user("ann", "en", true).await;
    let mut store = MockInboundMailStore::new();
    store
        .expect_orders_address()
        .returning(|_, _| Err(StoreError::internal("no free orders token after 3 draws")));
    let desk = orders_by_mail_over(&h, Arc::new(store));
    let payload = json!({
        "game_name": "Andromeda",
        "turn": 5,
        "race": null,
        "report_text": null,
        "deadline": "2030-01-02 18:00 UTC",
        "per_recipient": { ann.id.to_string(): {"race": "Aldebarans", "report_text": "3 planets"} },
    });
    raise(
        &h,
        NotificationKind::TurnCompleted,
        "turn:5",
        &[&ann],
        payload,
    )
    .await;
    let worker = h.worker(3).with_orders_by_mail(desk);
    worker.run_until_idle(10).await.unwrap();
    let mails = h.mails().await;
    let turn = mails
        .iter()
        .find(|m| m.mail.to == ann.email && m.mail.kind == "turn_completed")
        .expect("the turn mail went out")
        .mail
        .clone();
    assert_eq!(turn.extras.reply_to, None);
    assert!(turn.text_body.contains("3 planets"), "{}", turn.text_body);
    assert!(!turn.text_body.contains("orders+"), "{}", turn.text_body);

    // A store that does not answer: the mail waits for it (its route is retried later),
    // rather than going without the address at the first blip.
    let h = Harness::new();
    let bea = h.user("bea", "en", true).await;
    let mut store = MockInboundMailStore::new();
    store.expect_orders_address().returning(|_, _| {
        Err(StoreError::unavailable(std::io::Error::other(
            "connection refused",
        )))
    });
    let desk = orders_by_mail_over(&h, Arc::new(store));
    let payload = json!({
        "game_name": "Andromeda",
        "turn": 5,
        "race": null,
        "report_text": null,
        "deadline": "2030-01-02 18:00 UTC",
        "per_recipient": { bea.id.to_string(): {"race": "Capellans", "report_text": "2 planets"} },
    });
    raise(
        &h,
        NotificationKind::TurnCompleted,
        "turn:5",
        &[&bea],
        payload,
    )
    .await;
    let worker = h.worker(3).with_orders_by_mail(desk);
    worker.run_until_idle(10).await.unwrap();
    assert!(
        h.mails().await.is_empty(),
        "no mail while the store is away"
    );
}

/// The note on orders by mail is the template set's word `orders_note`: German players
/// get the built-in German one, and an embedder's own locale its own (it was English or
/// German whatever the set), the address in it as text and in `<code>` in the HTML.
#[tokio::test]
async fn the_orders_note_is_the_template_sets_word_in_the_players_locale() {
    use galaxy_core::domain::user::Locale;
    use galaxy_core::service::templates::MailTemplates;

    let h = Harness::new();
    let fritz = h.user("fritz", "de", true).await;
    let jean = h.user("jean", "fr", true).await;
    let mut templates = MailTemplates::builtin();
    let french = Locale::parse("fr").unwrap();
    templates.insert_word(
        &french,
        "orders_note",
        "Ordres par courriel : répondez ou écrivez à {{address}} <une ligne par ordre>.",
    );
    let payload = json!({
        "game_name": "Andromeda",
        "turn": 5,
        "race": null,
        "report_text": null,
        "deadline": "2030-01-02 18:00 UTC",
        "per_recipient": {
            fritz.id.to_string(): {"race": "Aldebarans", "report_text": "3 Planeten"},
            jean.id.to_string(): {"race": "Capellans", "report_text": "2 planètes"},
        },
    });
    raise(
        &h,
        NotificationKind::TurnCompleted,
        "turn:5",
        &[&fritz, &jean],
        payload,
    )
    .await;
    let worker = h
        .worker(3)
        .with_templates(Arc::new(templates))
        .with_orders_by_mail(orders_by_mail(&h));
    worker.run_until_idle(10).await.unwrap();
    let mails = h.mails().await;
    let mail_to = |user: &User| {
        mails
            .iter()
            .find(|m| m.mail.to == user.email)
            .unwrap_or_else(|| panic!("no mail to {}", user.email))
            .mail
            .clone()
    };
    let german = mail_to(&fritz);
    let address = german.extras.reply_to.clone().unwrap();
    assert!(
        german.text_body.contains(&format!(
            "Befehle per Mail: antworte auf diese Mail oder schreibe an {address}"
        )),
        "{}",
        german.text_body
    );
    let french = mail_to(&jean);
    let address = french.extras.reply_to.clone().unwrap();
    assert!(
        french.text_body.contains(&format!(
            "Ordres par courriel : répondez ou écrivez à {address} <une ligne par ordre>."
        )),
        "{}",
        french.text_body
    );
    assert!(
        !french.text_body.contains("Orders by mail"),
        "{}",
        french.text_body
    );
    let html = french.html_body.unwrap();
    assert!(
        html.contains(&format!(
            "<p>Ordres par courriel : répondez ou écrivez à <code>{address}</code> &lt;une ligne par ordre&gt;.</p>"
        )),
        "{html}"
    );
}
