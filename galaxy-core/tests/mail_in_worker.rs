//! The mail-in worker on in-memory stores with a scripted orders desk: the per-player
//! reply budget (orders still applied, no reply), an engine that is down (the message is
//! left claimed and taken again after its lease, then answered after the last attempt),
//! a mail without orders (answered, the engine never asked), a blocked player (dropped),
//! and a crash between claiming and finishing (the message is processed again and its
//! reply queued once).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::TimeDelta;
use galaxy_core::domain::lease::ClaimRequest;
use galaxy_core::domain::limit::RateLimit;
use galaxy_core::domain::mail::{MailStatus, OutgoingMail};
use galaxy_core::domain::mail_in::{
    InboundOutcome, OrdersAddress, OrdersToken, ReportDelivery, TokenRecord, TokenSeed,
};
use galaxy_core::domain::page::PageRequest;
use galaxy_core::domain::user::{Block, Email, User};
use galaxy_core::domain::{GameId, LeaseToken, Timestamp, UserId};
use galaxy_core::ports::{
    Clock, InboundMailStore, MailStore, MailedOrdersVerdict, OrdersDesk, OrdersDeskError, UserStore,
};
use galaxy_core::service::mail_in::{
    Envelope, MailInConfig, MailInPorts, MailInService, MailInWorker,
};
use galaxy_core::worker::Worker;
use galaxy_ports::memory::InMemoryStores;
use galaxy_ports::system::{ManualClock, SeededSecretGenerator};

/// What the desk answers, and every orders text it was given.
#[derive(Default)]
struct Desk {
    down: Mutex<bool>,
    calls: Mutex<Vec<String>>,
    /// The game of every call.
    games: Mutex<Vec<GameId>>,
    /// The `received_at` of every call.
    received: Mutex<Vec<Timestamp>>,
    /// When set, every call takes this long on this clock (a slow engine).
    slow: Mutex<Option<(Arc<ManualClock>, TimeDelta)>>,
    /// Runs once during the call of this number (1 for the first): what another replica
    /// does while an engine call is in flight.
    during_call: Mutex<Option<(usize, futures::future::BoxFuture<'static, ()>)>>,
}

#[async_trait]
impl OrdersDesk for Desk {
    async fn submit_mailed_orders(
        &self,
        _: UserId,
        game: GameId,
        orders: &str,
        received_at: Timestamp,
    ) -> Result<MailedOrdersVerdict, OrdersDeskError> {
        self.received.lock().unwrap().push(received_at);
        self.games.lock().unwrap().push(game);
        let number = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(orders.to_owned());
            calls.len()
        };
        if let Some((clock, takes)) = self.slow.lock().unwrap().as_ref() {
            clock.advance(*takes);
        }
        let hook = {
            let mut armed = self.during_call.lock().unwrap();
            match armed.take() {
                Some((at, hook)) if at == number => Some(hook),
                other => {
                    *armed = other;
                    None
                }
            }
        };
        if let Some(hook) = hook {
            hook.await;
        }
        if *self.down.lock().unwrap() {
            return Err(OrdersDeskError::Unavailable("engine down".into()));
        }
        Ok(MailedOrdersVerdict {
            game_name: "Andromeda".into(),
            turn: 4,
            deadline: None,
            accepted: true,
            errors: vec![],
        })
    }
    async fn game_name(&self, _: GameId) -> Option<String> {
        Some("Andromeda".into())
    }

    async fn plays_in(&self, _: UserId, _: GameId) -> Result<bool, OrdersDeskError> {
        Ok(true)
    }
}

struct World {
    stores: InMemoryStores,
    clock: Arc<ManualClock>,
    desk: Arc<Desk>,
    service: MailInService,
    worker: MailInWorker,
    player: User,
    address: String,
}

async fn world(replies: u32) -> World {
    world_with(replies, |stores| stores.users.clone()).await
}

/// [`world`] whose service reads users from the store `users` gives.
async fn world_with(
    replies: u32,
    users: impl FnOnce(&InMemoryStores) -> Arc<dyn galaxy_core::ports::UserStore>,
) -> World {
    let stores = InMemoryStores::new();
    let clock = Arc::new(ManualClock::at_fixed_start());
    let desk = Arc::new(Desk::default());
    let mut config = MailInConfig::new("galaxy.test");
    config.replies = RateLimit {
        max: replies,
        window: TimeDelta::hours(1),
    };
    config.max_attempts = 3;
    let service = MailInService::new(
        MailInPorts {
            store: stores.mail_in.clone(),
            users: users(&stores),
            mail: stores.mail.clone(),
            desk: desk.clone(),
            clock: clock.clone(),
            secrets: Arc::new(SeededSecretGenerator::new(3)),
        },
        config,
    );
    let player = User::new(
        UserId::from_uuid(uuid::Uuid::now_v7()),
        Email::parse("ann@example.org").unwrap(),
        clock.now(),
    );
    stores.users.insert_user(&player).await.unwrap();
    let game_id = GameId::from_uuid(uuid::Uuid::now_v7());
    let address = service.ensure(player.id, game_id).await.unwrap().address;
    let worker = MailInWorker::new(&service);
    World {
        stores,
        clock,
        desk,
        service,
        worker,
        address,
        player,
    }
}

impl World {
    async fn receive(&self, id: &str, body: &str) {
        let raw = format!(
            "From: {}\r\nTo: {}\r\nMessage-ID: <{id}@example.org>\r\nSubject: o\r\n\r\n{body}\r\n",
            self.player.email, self.address
        );
        self.service
            .receive(raw.as_bytes(), &Envelope::default())
            .await
            .unwrap();
    }

    async fn outcomes(&self) -> Vec<(Option<InboundOutcome>, u64)> {
        self.stores.mail_in.count_inbound().await.unwrap()
    }

    async fn mails(&self) -> Vec<(String, String)> {
        self.outgoing()
            .await
            .into_iter()
            .map(|m| (m.kind, m.text_body))
            .collect()
    }

    /// Every mail queued, whole.
    async fn outgoing(&self) -> Vec<OutgoingMail> {
        outgoing(&self.stores).await
    }
}

/// Every mail queued in `stores`, whole.
async fn outgoing(stores: &InMemoryStores) -> Vec<OutgoingMail> {
    let page = stores
        .mail
        .list_mail(None, &PageRequest::first(100).unwrap())
        .await
        .unwrap();
    page.items.into_iter().map(|m| m.mail).collect()
}

#[tokio::test]
async fn over_the_reply_budget_orders_are_applied_without_a_reply() {
    let w = world(2).await;
    for i in 0..3 {
        w.receive(&format!("m{i}"), &format!("design D{i} 1 1 1 0"))
            .await;
    }
    w.worker.run_until_idle(10).await.unwrap();
    assert_eq!(
        w.desk.calls.lock().unwrap().len(),
        3,
        "every mail's orders were applied"
    );
    let mails = w.mails().await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(mails.iter().all(|(kind, _)| kind == "orders_accepted"));
    let outcomes = w.outcomes().await;
    assert!(
        outcomes.contains(&(Some(InboundOutcome::Answered), 2)),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&(Some(InboundOutcome::AnsweredSilently), 1)),
        "{outcomes:?}"
    );
    // An hour later the budget has room again.
    w.clock.advance(TimeDelta::minutes(61));
    w.receive("m3", "design D3 1 1 1 0").await;
    w.worker.run_until_idle(10).await.unwrap();
    assert_eq!(w.mails().await.len(), 3);
}

#[tokio::test]
async fn a_slow_engine_never_has_one_mail_sent_by_two_replicas() {
    let w = world(20).await;
    // Each engine call takes 100 s; the lease is 5 minutes, each mail claimed alone.
    *w.desk.slow.lock().unwrap() = Some((w.clock.clone(), TimeDelta::seconds(100)));
    for i in 0..4 {
        w.receive(&format!("m{i}"), &format!("design D{i} 1 1 1 0"))
            .await;
    }
    let worker = MailInWorker::new(&w.service);
    let other = Arc::new(MailInWorker::new(&w.service));
    // While the first worker's third engine call is in flight (300 s after it began),
    // another replica runs a pass: it finds only the mail nobody holds.
    let replica = Arc::clone(&other);
    *w.desk.during_call.lock().unwrap() = Some((
        3,
        Box::pin(async move {
            replica.tick().await.unwrap();
        }),
    ));
    worker.run_until_idle(5).await.unwrap();
    other.run_until_idle(5).await.unwrap();
    let calls = w.desk.calls.lock().unwrap().clone();
    let mut distinct = calls.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        (calls.len(), distinct.len()),
        (4, 4),
        "every mail sent once: {calls:?}"
    );
}

#[tokio::test]
async fn an_engine_that_is_down_is_retried_after_the_lease_then_answered() {
    let w = world(20).await;
    *w.desk.down.lock().unwrap() = true;
    let arrived = w.clock.now();
    w.receive("m1", "design D 1 1 1 0").await;
    // `max_attempts` is 3: two tries are left for later, the third answers.
    for attempt in 1..=2 {
        w.worker.run_until_idle(3).await.unwrap();
        assert_eq!(
            w.desk.calls.lock().unwrap().len(),
            attempt,
            "one try per lease"
        );
        // Nothing more until the lease lapses.
        w.worker.run_until_idle(3).await.unwrap();
        assert_eq!(w.desk.calls.lock().unwrap().len(), attempt);
        w.clock.advance(TimeDelta::minutes(6));
    }
    assert!(w.mails().await.is_empty(), "no answer while tries are left");
    w.worker.run_until_idle(3).await.unwrap();
    assert_eq!(w.desk.calls.lock().unwrap().len(), 3);
    assert_eq!(
        *w.desk.received.lock().unwrap(),
        vec![arrived; 3],
        "every try tells the desk when the mail arrived, not when it was tried"
    );
    let mails = w.mails().await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].0, "orders_not_taken");
    assert!(
        mails[0].1.contains("could not be reached after 3 tries"),
        "{}",
        mails[0].1
    );
}

/// A mail whose processing fails on every try with a lasting store error (a row the
/// store cannot read) is given up after `max_attempts`, not claimed every five minutes
/// for ever; one whose store is down is not given up.
#[tokio::test]
async fn a_mail_failing_on_every_try_is_given_up_after_its_attempts() {
    let w = world_with(20, |_| {
        let mut users = galaxy_ports::MockUserStore::new();
        users.expect_get_user().returning(|_| {
            Err(galaxy_core::ports::StoreError::internal(
                "user row: email is not an address",
            ))
        });
        Arc::new(users)
    })
    .await;
    w.receive("m1", "design D 1 1 1 0").await;
    for _ in 1..=2 {
        w.worker.run_until_idle(3).await.unwrap();
        assert_eq!(w.outcomes().await, vec![(None, 1)], "left for a later try");
        w.clock.advance(TimeDelta::minutes(6));
    }
    w.worker.run_until_idle(3).await.unwrap();
    assert_eq!(
        w.outcomes().await,
        vec![(Some(InboundOutcome::Dropped), 1)],
        "given up at the third try"
    );
    assert!(w.desk.calls.lock().unwrap().is_empty());
    w.clock.advance(TimeDelta::minutes(6));
    assert_eq!(
        w.worker.run_until_idle(3).await.unwrap(),
        0,
        "never claimed again"
    );
    // A store that is down is waited for, however many tries it takes.
    let w = world_with(20, |_| {
        let mut users = galaxy_ports::MockUserStore::new();
        users.expect_get_user().returning(|_| {
            Err(galaxy_core::ports::StoreError::unavailable(
                "pool timed out",
            ))
        });
        Arc::new(users)
    })
    .await;
    w.receive("m2", "design D 1 1 1 0").await;
    for _ in 1..=5 {
        w.worker.run_until_idle(3).await.unwrap();
        w.clock.advance(TimeDelta::minutes(6));
    }
    assert_eq!(w.outcomes().await, vec![(None, 1)], "still waiting");
}

#[tokio::test]
async fn a_mail_without_orders_is_answered_without_asking_the_engine() {
    let w = world(20).await;
    w.receive("m1", "> only the quoted report\r\n-- \r\nAnn")
        .await;
    w.worker.run_until_idle(3).await.unwrap();
    assert!(w.desk.calls.lock().unwrap().is_empty());
    let mails = w.mails().await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].1.contains("no orders found"), "{}", mails[0].1);
}

/// A mail whose orders cannot be taken is answered with the reason in the player's
/// language, not English pasted into a German mail, nor "turn -" and "Galaxy".
#[tokio::test]
async fn a_reply_that_takes_nothing_speaks_the_players_language() {
    use galaxy_core::domain::user::Locale;
    use galaxy_core::ports::ProfileChange;

    let w = world(20).await;
    let german = ProfileChange {
        locale: Some(Locale::parse("de").unwrap()),
        ..ProfileChange::default()
    };
    w.stores
        .users
        .update_profile(w.player.id, &german)
        .await
        .unwrap();
    w.receive("m1", "> nur der zitierte Bericht").await;
    w.worker.run_until_idle(3).await.unwrap();
    let mails = w.outgoing().await;
    let mail = &mails[0];
    assert_eq!(mail.kind, "orders_not_taken");
    // The game named, though the orders never reached it.
    assert_eq!(
        mail.subject,
        "Andromeda: deine Befehle wurden NICHT angenommen"
    );
    assert!(
        mail.text_body
            .contains("keine Befehle in der Mail gefunden (Zitate und Signatur werden ignoriert)"),
        "{}",
        mail.text_body
    );
    assert!(!mail.text_body.contains("no orders"), "{}", mail.text_body);
}

/// The replies come from the application's template set (the one its notification
/// mails use), not always from the built-in one.
#[tokio::test]
async fn replies_use_the_applications_templates() {
    use galaxy_core::domain::notification::NotificationKind;
    use galaxy_core::domain::user::Locale;
    use galaxy_core::service::templates::{MailTemplate, MailTemplates};

    let w = world(20).await;
    let mut templates = MailTemplates::builtin();
    templates.insert(
        &Locale::default(),
        NotificationKind::OrdersNotTaken,
        MailTemplate {
            subject: "Not taken for {{game_name}}".into(),
            text: "Our own words: {{reason}}".into(),
            html: "<p>Our own words</p>".into(),
        },
    );
    let service = w.service.with_templates(Arc::new(templates));
    let worker = MailInWorker::new(&service);
    let raw = format!(
        "From: {}\r\nTo: {}\r\nMessage-ID: <t1@example.org>\r\nSubject: o\r\n\r\n\
         > quoted only\r\n",
        w.player.email, w.address
    );
    service
        .receive(raw.as_bytes(), &Envelope::default())
        .await
        .unwrap();
    worker.run_until_idle(3).await.unwrap();
    let mails = outgoing(&w.stores).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert!(
        mail.subject.starts_with("Not taken for"),
        "{}",
        mail.subject
    );
    assert!(
        mail.text_body
            .starts_with("Our own words: no orders found in the mail"),
        "{}",
        mail.text_body
    );
}

#[tokio::test]
async fn a_blocked_player_is_dropped() {
    let w = world(20).await;
    let until = w.clock.now() + TimeDelta::days(1);
    let mut user = w.stores.users.get_user(w.player.id).await.unwrap();
    let before = user.status;
    user.block(Block::Until(until)).unwrap();
    w.stores
        .users
        .update_user_status(w.player.id, before, user.status)
        .await
        .unwrap();
    w.receive("m1", "design D 1 1 1 0").await;
    w.worker.run_until_idle(3).await.unwrap();
    assert!(w.desk.calls.lock().unwrap().is_empty());
    assert!(w.mails().await.is_empty());
    assert_eq!(w.outcomes().await, vec![(Some(InboundOutcome::Dropped), 1)]);
}

#[tokio::test]
async fn a_crash_after_the_claim_is_resumed_and_answered_once() {
    let w = world(20).await;
    w.receive("m1", "design D 1 1 1 0").await;
    // A worker claims the message and dies.
    let claimed = w
        .stores
        .mail_in
        .claim_inbound(&ClaimRequest {
            token: LeaseToken::from_uuid(uuid::Uuid::now_v7()),
            now: w.clock.now(),
            lease: TimeDelta::minutes(2),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    w.worker.run_until_idle(3).await.unwrap();
    assert!(
        w.mails().await.is_empty(),
        "held by the dead worker's lease"
    );
    w.clock.advance(TimeDelta::minutes(6));
    w.worker.run_until_idle(3).await.unwrap();
    w.worker.run_until_idle(3).await.unwrap();
    let mails = w.mails().await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let counts = w.stores.mail.count_mail_by_status().await.unwrap();
    let pending = counts
        .iter()
        .find(|(s, _)| *s == MailStatus::Pending)
        .map(|(_, n)| *n);
    assert_eq!(pending, Some(1), "{counts:?}");
}

/// A service on `w`'s stores whose orders tokens are derived under a key made from
/// `material` (what a server makes from its `GALAXY_LOGIN_CODE_KEY`).
fn keyed_service(w: &World, material: &[u8]) -> MailInService {
    let mut config = MailInConfig::new("galaxy.test");
    config.key = Some(galaxy_core::domain::mail_in::OrdersKey::derive(material).unwrap());
    MailInService::new(
        MailInPorts {
            store: w.stores.mail_in.clone(),
            users: w.stores.users.clone(),
            mail: w.stores.mail.clone(),
            desk: w.desk.clone(),
            clock: w.clock.clone(),
            secrets: Arc::new(galaxy_ports::system::OsSecretGenerator),
        },
        config,
    )
}

/// Orders tokens are derived under the server's key, never stored: a server with the
/// same key (a restart, another replica) shows the same address; one with another key
/// (the key was changed) cannot show it, so it gives the player a new address, callers
/// at once agree on it, and mail to the old one is refused from then on.
#[tokio::test]
async fn orders_addresses_are_derived_under_the_key() {
    let w = world(20).await;
    let game = GameId::from_uuid(uuid::Uuid::now_v7());
    let first = keyed_service(&w, &[1; 32]);
    let shown = first.ensure(w.player.id, game).await.unwrap().address;
    let stored = w
        .stores
        .mail_in
        .orders_address(w.player.id, game)
        .await
        .unwrap()
        .unwrap();
    let token = shown
        .strip_prefix("orders+")
        .and_then(|rest| rest.split('@').next())
        .unwrap();
    assert!(
        !format!("{stored:?}").contains(token),
        "the store keeps no token: {stored:?}"
    );
    let restarted = keyed_service(&w, &[1; 32]);
    assert_eq!(
        restarted.ensure(w.player.id, game).await.unwrap().address,
        shown,
        "the same key shows the same address"
    );

    let mail_to = |service: &MailInService, address: &str, id: &str| {
        let raw = format!(
            "From: {}\r\nTo: {address}\r\nMessage-ID: <{id}@example.org>\r\nSubject: o\r\n\r\n\
             design D 1 1 1 0\r\n",
            w.player.email
        );
        let service = service.clone();
        async move {
            service
                .receive(raw.as_bytes(), &Envelope::default())
                .await
                .unwrap();
            MailInWorker::new(&service).run_until_idle(3).await.unwrap();
        }
    };
    mail_to(&first, &shown, "k1").await;
    assert_eq!(w.desk.calls.lock().unwrap().len(), 1, "the address works");

    // The key changes (after a leak, say): the old address stops working at once, before
    // anything shows the player a new one.
    let changed = keyed_service(&w, &[2; 32]);
    mail_to(&changed, &shown, "k0").await;
    assert_eq!(
        w.desk.calls.lock().unwrap().len(),
        1,
        "a token no longer derived is refused"
    );
    // Eight callers at once (pages, turn mails) all get one new address.
    let calls = (0..8).map(|_| {
        let changed = changed.clone();
        let user = w.player.id;
        tokio::spawn(async move { changed.ensure(user, game).await.unwrap().address })
    });
    let mut seen: Vec<String> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    seen.dedup();
    assert_eq!(seen.len(), 1, "one new address: {seen:?}");
    let renewed = seen.remove(0);
    assert_ne!(renewed, shown);
    assert_eq!(
        changed.ensure(w.player.id, game).await.unwrap().address,
        renewed,
        "and it stays"
    );

    mail_to(&changed, &shown, "k2").await;
    assert_eq!(
        w.desk.calls.lock().unwrap().len(),
        1,
        "the old address is dead"
    );
    mail_to(&changed, &renewed, "k3").await;
    assert_eq!(w.desk.calls.lock().unwrap().len(), 2, "the new one works");
    let refused: u64 = w
        .outcomes()
        .await
        .iter()
        .filter(|(o, _)| *o == Some(InboundOutcome::Refused))
        .map(|(_, n)| n)
        .sum();
    assert!(refused >= 1, "{:?}", w.outcomes().await);

    // An address made before tokens were derived (migration 0029 gave it a seed of
    // zeros and its old token's digest) still takes mail until it is shown again.
    let legacy_game = GameId::from_uuid(uuid::Uuid::now_v7());
    let legacy = OrdersToken::parse("abcdefghijkmnpqrstuv").unwrap();
    w.stores
        .mail_in
        .ensure_orders_address(&OrdersAddress {
            user_id: w.player.id,
            game_id: legacy_game,
            token: TokenRecord {
                seed: TokenSeed::from_bytes([0; TokenSeed::LENGTH]),
                digest: legacy.digest(),
            },
            report_delivery: ReportDelivery::Body,
            rotated_at: w.clock.now(),
        })
        .await
        .unwrap();
    mail_to(&changed, &legacy.address("galaxy.test"), "k4").await;
    assert_eq!(
        w.desk.calls.lock().unwrap().len(),
        3,
        "the old address works"
    );
    let reissued = changed.ensure(w.player.id, legacy_game).await.unwrap();
    assert_ne!(reissued.address, legacy.address("galaxy.test"));
    mail_to(&changed, &legacy.address("galaxy.test"), "k5").await;
    assert_eq!(
        w.desk.calls.lock().unwrap().len(),
        3,
        "until it is shown again and re-issued"
    );
}

/// The return path as an MTA may pass it to `galaxy-cli mail-in`: `<>` is a bounce
/// (dropped, never answered, its orders never applied), `<a@b>` the address.
#[tokio::test]
async fn a_return_path_in_angle_brackets_is_read_as_the_listener_reads_it() {
    let w = world(20).await;
    let raw = |id: &str| {
        format!(
            "From: {}\r\nTo: {}\r\nMessage-ID: <{id}@example.org>\r\nSubject: o\r\n\r\ndesign D 1 1 1 0\r\n",
            w.player.email, w.address
        )
    };
    for (id, path) in [("bounce", "<>"), ("spaced", " < > ")] {
        let envelope = Envelope {
            mail_from: Some(path.to_owned()),
            ..Envelope::default()
        };
        let receipt = w
            .service
            .receive(raw(id).as_bytes(), &envelope)
            .await
            .unwrap();
        let stored = w.stores.mail_in.get_inbound(receipt.id).await.unwrap();
        assert_eq!(stored.envelope_from.as_deref(), Some(""), "{path:?}");
    }
    w.worker.run_until_idle(3).await.unwrap();
    assert!(
        w.desk.calls.lock().unwrap().is_empty(),
        "a bounce's orders applied"
    );
    assert!(w.mails().await.is_empty(), "a bounce answered");
    assert_eq!(w.outcomes().await, vec![(Some(InboundOutcome::Dropped), 2)]);

    let envelope = Envelope {
        mail_from: Some("<ann@example.org>".to_owned()),
        ..Envelope::default()
    };
    let receipt = w
        .service
        .receive(raw("bracketed").as_bytes(), &envelope)
        .await
        .unwrap();
    let stored = w.stores.mail_in.get_inbound(receipt.id).await.unwrap();
    assert_eq!(stored.envelope_from.as_deref(), Some("ann@example.org"));
}

/// A mail to the player's orders address from another address (an alias, an old
/// address, a forgery) is not taken; the player is told, at their account's address and
/// naming the sender, once an hour; the sender, who may be anyone, never.
#[tokio::test]
async fn mail_from_another_address_is_told_to_the_player_not_the_sender() {
    let w = world(20).await;
    for (id, sender) in [
        ("alias-1", "ann.alias@example.net"),
        ("alias-2", "eve@example.net"),
    ] {
        let raw = format!(
            "From: {sender}\r\nTo: {}\r\nMessage-ID: <{id}@example.org>\r\nSubject: o\r\n\r\ndesign D 1 1 1 0\r\n",
            w.address
        );
        w.service
            .receive(raw.as_bytes(), &Envelope::default())
            .await
            .unwrap();
    }
    w.worker.run_until_idle(3).await.unwrap();
    assert!(w.desk.calls.lock().unwrap().is_empty(), "orders taken");
    let sent = w.outgoing().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].to, w.player.email);
    assert_eq!(sent[0].kind, "orders_refused");
    assert!(
        sent[0].text_body.contains("from ann.alias@example.net"),
        "{}",
        sent[0].text_body
    );
    assert_eq!(
        w.outcomes().await,
        vec![
            (Some(InboundOutcome::Dropped), 1),
            (Some(InboundOutcome::Refused), 1)
        ]
    );
    // The player's own mail to an address that does not exist still gets its own
    // refusal that hour: the two budgets are apart.
    let raw = format!(
        "From: {}\r\nTo: orders+aaaaaaaaaaaaaaaaaaaa@galaxy.test\r\nMessage-ID: <own@example.org>\r\nSubject: o\r\n\r\ndesign D 1 1 1 0\r\n",
        w.player.email
    );
    w.service
        .receive(raw.as_bytes(), &Envelope::default())
        .await
        .unwrap();
    w.worker.run_until_idle(3).await.unwrap();
    let sent = w.outgoing().await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(
        sent.iter()
            .any(|m| m.text_body.contains(&format!("from {}", w.player.email))),
        "{sent:?}"
    );
}

/// One mail to the orders addresses of two of the player's games reaches both games,
/// whether the SMTP listener gives both recipients in one envelope, an MTA pipes it once
/// per recipient, or only the headers name them; each copy delivered again is kept once.
#[tokio::test]
async fn one_mail_to_two_orders_addresses_reaches_both_games() {
    let w = world(20).await;
    let second_game = GameId::from_uuid(uuid::Uuid::now_v7());
    let second = w
        .service
        .ensure(w.player.id, second_game)
        .await
        .unwrap()
        .address;
    let raw = |id: &str| {
        format!(
            "From: {}\r\nTo: {}\r\nCc: {second}\r\nMessage-ID: <{id}@example.org>\r\n\
             Subject: o\r\n\r\ndesign D 1 1 1 0\r\n",
            w.player.email, w.address
        )
    };
    let envelope = |rcpt_to: &[&String]| Envelope {
        mail_from: Some(w.player.email.to_string()),
        rcpt_to: rcpt_to.iter().map(|r| r.to_uppercase()).collect(),
    };
    let receive = |id: &'static str, envelope: Envelope| {
        let raw = raw(id);
        let service = w.service.clone();
        async move { service.receive(raw.as_bytes(), &envelope).await.unwrap() }
    };
    // The listener: both recipients at once, then the same delivery again.
    let both = envelope(&[&w.address, &second]);
    let first = receive("listener", both.clone()).await;
    assert!(!first.duplicate);
    assert!(receive("listener", both).await.duplicate);
    // The first copy is for the first address alone; its key names the address by its
    // token's digest, never the token.
    let stored = w.stores.mail_in.get_inbound(first.id).await.unwrap();
    assert_eq!(stored.envelope_to, vec![w.address.to_lowercase()]);
    for address in [&w.address, &second] {
        let (_, token) = address.split_once('+').unwrap();
        let (token, _) = token.split_once('@').unwrap();
        assert!(!stored.dedupe_key.contains(token), "{}", stored.dedupe_key);
    }
    // A pipe: once per recipient (each its own copy), the second recipient again.
    assert!(!receive("piped", envelope(&[&w.address])).await.duplicate);
    assert!(!receive("piped", envelope(&[&second])).await.duplicate);
    assert!(receive("piped", envelope(&[&second])).await.duplicate);
    // A pipe that does not pass the recipient: the headers name both.
    assert!(!receive("headers", Envelope::default()).await.duplicate);
    assert!(receive("headers", Envelope::default()).await.duplicate);

    w.worker.run_until_idle(10).await.unwrap();
    let games = w.desk.games.lock().unwrap().clone();
    assert_eq!(games.len(), 6, "{games:?}");
    let to_second = games.iter().filter(|g| **g == second_game).count();
    assert_eq!(to_second, 3, "{games:?}");
    assert_eq!(
        w.outcomes().await,
        vec![(Some(InboundOutcome::Answered), 6)]
    );
}

/// A message naming many orders addresses is taken only for those a player holds, and
/// of those only among the first `MAX_ORDERS_RECIPIENTS` looked up: guesses make no
/// rows, and one message never becomes dozens.
#[tokio::test]
async fn a_message_is_taken_for_at_most_a_few_orders_addresses() {
    use galaxy_core::service::mail_in::MAX_ORDERS_RECIPIENTS;
    let w = world(20).await;
    let message = |id: &str, to: &[String]| {
        format!(
            "From: {}\r\nTo: {}\r\nMessage-ID: <{id}@example.org>\r\nSubject: o\r\n\r\n\
             design D 1 1 1 0\r\n",
            w.player.email,
            to.join(", ")
        )
    };
    let rows = || async {
        let counts = w.outcomes().await;
        counts.iter().map(|(_, n)| n).sum::<u64>()
    };
    // Forty guesses of the right shape, the player's own address fourth: one row, for
    // the player's own address (taken below, though guesses come first).
    let alphabet: Vec<char> = "abcdefghijkmnpqrstuvwxyz23456789".chars().collect();
    let mut to: Vec<String> = (0..40)
        .map(|i| {
            let token = format!("{}{}{}", "a".repeat(18), alphabet[i / 32], alphabet[i % 32]);
            format!("orders+{token}@galaxy.test")
        })
        .collect();
    to.insert(3, w.address.clone());
    w.service
        .receive(message("guesses", &to).as_bytes(), &Envelope::default())
        .await
        .unwrap();
    assert_eq!(rows().await, 1);
    // Twelve of the player's own games: a copy for each of the first eight.
    let mut own = Vec::new();
    for _ in 0..12 {
        let game = GameId::from_uuid(uuid::Uuid::now_v7());
        own.push(w.service.ensure(w.player.id, game).await.unwrap().address);
    }
    w.service
        .receive(message("own", &own).as_bytes(), &Envelope::default())
        .await
        .unwrap();
    assert_eq!(rows().await, 1 + MAX_ORDERS_RECIPIENTS as u64);
    w.worker.run_until_idle(20).await.unwrap();
    assert_eq!(
        w.desk.calls.lock().unwrap().len(),
        1 + MAX_ORDERS_RECIPIENTS
    );
}
