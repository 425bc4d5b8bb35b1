//! The notification worker against the in-memory stores, with a manual clock, a seeded
//! secret generator and a recording push publisher: fan-out, preferences, retries and
//! dead letters, idempotent mail, shutdown; templates and bad payloads in `templates.rs`,
//! the orders address of game mails in `orders_mail.rs`.

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;
mod orders_mail;
mod templates;

use std::sync::atomic::Ordering;

use chrono::TimeDelta;
use galaxy_core::domain::mail::MailStatus;
use galaxy_core::domain::notification::{NotificationKind, RouteStatus};
use galaxy_core::domain::page::PageRequest;
use galaxy_core::ports::{ProfileChange, UserStore};
use galaxy_core::service::Actor;
use galaxy_core::worker::Worker;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use harness::Harness;

#[tokio::test]
async fn an_intent_fans_out_to_mail_and_push_and_both_are_delivered() {
    let h = Harness::new();
    let ann = h.user("ann", "de", true).await;
    let payload = json!({"game_id": "g1", "game_name": "Andromeda", "turn": 1});
    h.raise(
        NotificationKind::GameStarted,
        "game:g1:started",
        &[&ann],
        payload.clone(),
    )
    .await;
    assert_eq!(h.routes().await.len(), 2, "one push and one email route");

    assert_eq!(h.worker(3).run_until_idle(10).await.unwrap(), 2);
    for route in h.routes().await {
        assert_eq!(route.status, RouteStatus::Delivered, "{route:?}");
        assert_eq!(route.attempts, 1);
    }
    let pushed = h.push.events();
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0].users, vec![ann.id]);
    assert_eq!(pushed[0].kind, "game_started");
    assert_eq!(pushed[0].payload, payload);
    let push_route = h.route(&ann, "push").await;
    assert_eq!(
        pushed[0].event_id,
        push_route.id.as_uuid(),
        "the event id is the route's, so a route delivered twice is one event"
    );

    let mails = h.mails().await;
    assert_eq!(mails.len(), 1);
    let email_route = h.route(&ann, "email").await;
    let mail = &mails[0].mail;
    assert_eq!(
        mail.idempotency_key,
        format!("notification:{}", email_route.id)
    );
    assert_eq!(mail.to, ann.email);
    assert_eq!(mail.kind, "game_started");
    assert_eq!(mail.locale.as_str(), "de");
    assert_eq!(mail.subject, "Andromeda hat begonnen");
    assert!(mail.text_body.contains("Hallo ann,"), "{}", mail.text_body);
    assert!(mail.text_body.contains("Zug 1"), "{}", mail.text_body);
    let html = mail.html_body.as_deref().unwrap();
    assert!(html.contains("<strong>Andromeda</strong>"), "{html}");
    assert_eq!(
        mails[0].status,
        MailStatus::Pending,
        "the mail worker sends it"
    );
}

#[tokio::test]
async fn with_mail_notifications_off_there_is_no_email_route_except_for_login_codes() {
    let h = Harness::new();
    let bob = h.user("bob", "en", false).await;
    h.raise(
        NotificationKind::GameCancelled,
        "game:g2:cancelled",
        &[&bob],
        json!({"game_name": "X"}),
    )
    .await;
    let routes = h.routes().await;
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].channel.as_str(), "push");
    h.worker(3).run_until_idle(10).await.unwrap();
    assert!(h.mails().await.is_empty());
    assert_eq!(h.push.events().len(), 1);

    h.raise(
        NotificationKind::LoginCode,
        "login:1",
        &[&bob],
        json!({"code": "123456"}),
    )
    .await;
    h.worker(3).run_until_idle(10).await.unwrap();
    let mails = h.mails().await;
    assert_eq!(mails.len(), 1, "login codes ignore the preference");
    assert!(mails[0].mail.text_body.contains("123456"));
}

#[tokio::test]
async fn a_preference_turned_off_after_the_fan_out_is_honoured_at_dispatch() {
    let h = Harness::new();
    let cy = h.user("cy", "en", true).await;
    h.raise(
        NotificationKind::GameCancelled,
        "game:g3:cancelled",
        &[&cy],
        json!({"game_name": "Y"}),
    )
    .await;
    let change = ProfileChange {
        email_notifications: Some(false),
        ..Default::default()
    };
    h.users.update_profile(cy.id, &change).await.unwrap();
    h.worker(3).run_until_idle(10).await.unwrap();
    assert!(h.mails().await.is_empty(), "no mail after opting out");
    assert_eq!(h.route(&cy, "email").await.status, RouteStatus::Delivered);
}

#[tokio::test]
async fn a_failing_push_is_retried_with_backoff_dead_lettered_and_an_admin_retry_delivers_it() {
    let h = Harness::new();
    let dee = h.user("dee", "en", true).await;
    h.push.failing.store(true, Ordering::SeqCst);
    h.raise(
        NotificationKind::GameCancelled,
        "game:g4:cancelled",
        &[&dee],
        json!({"game_name": "Z"}),
    )
    .await;
    let w = h.worker(3);

    // Attempt 1: the mail route goes through, the push route waits 10 s (no jitter).
    assert_eq!(w.tick().await.unwrap().handled, 2);
    assert_eq!(h.route(&dee, "email").await.status, RouteStatus::Delivered);
    let push = h.route(&dee, "push").await;
    assert_eq!(push.status, RouteStatus::Retrying);
    assert_eq!(push.next_attempt_at, h.now() + TimeDelta::seconds(10));
    assert!(
        push.last_error
            .as_deref()
            .unwrap()
            .contains("push service restarting")
    );
    assert_eq!(w.tick().await.unwrap().handled, 0, "not due yet");

    // Attempt 2 waits twice as long; attempt 3 spends the budget.
    h.clock.advance(TimeDelta::seconds(10));
    assert_eq!(w.tick().await.unwrap().handled, 1);
    let push = h.route(&dee, "push").await;
    assert_eq!(push.next_attempt_at, h.now() + TimeDelta::seconds(20));
    h.clock.advance(TimeDelta::seconds(20));
    assert_eq!(w.tick().await.unwrap().handled, 1);
    let push = h.route(&dee, "push").await;
    assert_eq!(push.status, RouteStatus::DeadLetter);
    assert_eq!(push.attempts, 3);
    h.clock.advance(TimeDelta::hours(1));
    assert_eq!(w.tick().await.unwrap().handled, 0, "dead letters stay put");

    // The admin sees and retries it; players may not.
    let admin = h.admin();
    let dead = h
        .service
        .dead_letters(&admin, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(dead.items.len(), 1);
    assert_eq!(dead.items[0].id, push.id);
    let player = Actor {
        user_id: dee.id,
        is_admin: false,
    };
    assert!(
        h.service
            .retry_dead_letter(&player, &push.id.to_string())
            .await
            .is_err()
    );
    let requeued = h
        .service
        .retry_dead_letter(&admin, &push.id.to_string())
        .await
        .unwrap();
    assert_eq!(
        (requeued.status, requeued.attempts),
        (RouteStatus::Pending, 0)
    );

    h.push.failing.store(false, Ordering::SeqCst);
    assert_eq!(w.run_until_idle(10).await.unwrap(), 1);
    assert_eq!(h.route(&dee, "push").await.status, RouteStatus::Delivered);
    assert_eq!(h.push.events().len(), 1, "pushed once, after the retry");
}

#[tokio::test]
async fn jitter_spreads_the_backoff() {
    let h = Harness::new();
    let eve = h.user("eve", "en", false).await;
    h.push.failing.store(true, Ordering::SeqCst);
    h.secrets.set_unit(1.0);
    h.raise(
        NotificationKind::GameCancelled,
        "game:g5:cancelled",
        &[&eve],
        json!({}),
    )
    .await;
    h.worker(3).tick().await.unwrap();
    let push = h.route(&eve, "push").await;
    assert_eq!(
        push.next_attempt_at,
        h.now() + TimeDelta::seconds(12),
        "+20%"
    );
}

#[tokio::test]
async fn a_route_dispatched_twice_queues_one_mail() {
    let h = Harness::new();
    let fay = h.user("fay", "en", true).await;
    h.raise(
        NotificationKind::GameCancelled,
        "game:g6:cancelled",
        &[&fay],
        json!({"game_name": "W"}),
    )
    .await;
    // The outcome of the first dispatch is lost (the database drops the connection
    // after the mail was queued), as in a crash between the two writes.
    let email = h.route(&fay, "email").await;
    h.store.fail_finishes.lock().unwrap().insert(email.id, 1);
    let w = h.worker(3);
    assert!(w.tick().await.is_err());
    assert_eq!(h.mails().await.len(), 1);
    assert_eq!(
        h.route(&fay, "email").await.status,
        RouteStatus::Dispatching
    );

    // Nobody else may take it while the lease holds; afterwards it is dispatched again.
    assert_eq!(w.tick().await.unwrap().handled, 0);
    h.clock.advance(TimeDelta::seconds(61));
    assert_eq!(w.run_until_idle(10).await.unwrap(), 1);
    let email = h.route(&fay, "email").await;
    assert_eq!((email.status, email.attempts), (RouteStatus::Delivered, 2));
    let mails = h.mails().await;
    assert_eq!(
        mails.len(),
        1,
        "the second dispatch found the mail already queued"
    );
    assert_eq!(
        mails[0].mail.idempotency_key,
        format!("notification:{}", email.id)
    );
}

#[tokio::test]
async fn raising_the_same_notification_twice_dispatches_once() {
    let h = Harness::new();
    let gus = h.user("gus", "en", true).await;
    for _ in 0..2 {
        h.raise(
            NotificationKind::GameCancelled,
            "game:g7:cancelled",
            &[&gus],
            json!({}),
        )
        .await;
    }
    h.worker(3).run_until_idle(10).await.unwrap();
    assert_eq!(h.mails().await.len(), 1);
    assert_eq!(h.push.events().len(), 1);
}

#[tokio::test]
async fn on_shutdown_the_route_in_progress_finishes_and_the_rest_is_handed_back() {
    let h = Harness::new();
    let hal = h.user("hal", "en", false).await;
    let ida = h.user("ida", "en", false).await;
    h.raise(
        NotificationKind::GameCancelled,
        "game:g8:cancelled",
        &[&hal, &ida],
        json!({}),
    )
    .await;
    let cancel = CancellationToken::new();
    let w = h.worker(3).with_cancellation(cancel.clone());
    // Shutdown arrives while the first push is being published.
    *h.push.cancel_on_publish.lock().unwrap() = Some(cancel.clone());
    assert_eq!(w.tick().await.unwrap().handled, 1);
    assert_eq!(h.push.events().len(), 1);
    let statuses: Vec<_> = h.routes().await.iter().map(|r| r.status).collect();
    assert!(statuses.contains(&RouteStatus::Delivered), "{statuses:?}");
    assert!(statuses.contains(&RouteStatus::Retrying), "{statuses:?}");
    let released = h
        .routes()
        .await
        .into_iter()
        .find(|r| r.status == RouteStatus::Retrying)
        .unwrap();
    assert_eq!(
        released.next_attempt_at,
        h.now(),
        "due at once for the next process"
    );
    assert_eq!(
        w.tick().await.unwrap().handled,
        0,
        "a stopped worker claims nothing"
    );
}
