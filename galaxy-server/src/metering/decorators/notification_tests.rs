//! What the notification store's decorator counts.
#![allow(clippy::unwrap_used)]

use chrono::TimeDelta;
use galaxy_core::domain::UserId;
use galaxy_core::domain::lease::Finish;
use galaxy_core::domain::notification::NotificationKind;
use galaxy_core::domain::user::{Email, User};
use galaxy_core::ports::{Clock, NewNotification, Notifier, UserStore};
use galaxy_core::service::notification::NotificationService;
use galaxy_ports::memory::{MemoryNotificationStore, MemoryUserStore};
use galaxy_ports::system::{ManualClock, SeededSecretGenerator};

use super::*;

/// Each route finished counts once by channel and outcome; a finish whose lease was
/// lost counts nothing.
#[test]
fn finished_routes_count_by_channel_and_outcome() {
    let text = crate::metering::recorded(async {
        let store = Arc::new(MeteredNotifications(Arc::new(
            MemoryNotificationStore::default(),
        )));
        let users = Arc::new(MemoryUserStore::new());
        let clock = Arc::new(ManualClock::at_fixed_start());
        let secrets = Arc::new(SeededSecretGenerator::new(5));
        let user = User::new(
            UserId::from_uuid(uuid::Uuid::now_v7()),
            Email::parse("ann@example.org").unwrap(),
            clock.now(),
        );
        users.insert_user(&user).await.unwrap();
        let service = NotificationService::new(store.clone(), users, clock.clone(), secrets);
        service
            .notify(NewNotification {
                kind: NotificationKind::GameCancelled,
                idempotency_key: "cancelled:1".into(),
                recipients: vec![user.id],
                game_id: None,
                payload: serde_json::json!({"game_name": "Vega"}),
            })
            .await
            .unwrap();
        let token = LeaseToken::from_uuid(uuid::Uuid::now_v7());
        let claim = ClaimRequest {
            token,
            now: clock.now(),
            lease: TimeDelta::minutes(1),
            limit: 10,
        };
        let routes = store.claim_routes(&claim).await.unwrap();
        assert_eq!(routes.len(), 2, "{routes:?}");
        let finishes: Vec<RouteFinish> = routes
            .iter()
            .map(|route| Finish {
                id: route.id,
                token,
                outcome: if route.channel.as_str() == "push" {
                    RouteNext::Delivered
                } else {
                    RouteNext::DeadLetter {
                        error: "relay refused".into(),
                    }
                },
                at: clock.now(),
            })
            .collect();
        let stranger = LeaseToken::from_uuid(uuid::Uuid::now_v7());
        let lost = store
            .finish_route(routes[0].id, stranger, &RouteNext::Delivered, clock.now())
            .await;
        assert!(lost.is_err());
        let done = store.finish_routes(&finishes).await.unwrap();
        assert!(done.iter().all(Result::is_ok), "{done:?}");
        register_alerted_series();
    });
    for line in [
        "galaxy_notification_routes_total{channel=\"push\",outcome=\"dead_letter\"} 0",
        "galaxy_notification_routes_total{channel=\"email\",outcome=\"retry\"} 0",
        "galaxy_notification_routes_total{channel=\"push\",outcome=\"delivered\"} 1",
        "galaxy_notification_routes_total{channel=\"email\",outcome=\"dead_letter\"} 1",
        "galaxy_turns_total{outcome=\"failed\"} 0",
        "galaxy_engine_health_events_total{kind=\"turn_failed\"} 0",
        "galaxy_engine_health_events_total{kind=\"probe_failed\"} 0",
        "galaxy_mail_sends_total{outcome=\"transient\"} 0",
        "galaxy_mail_dead_letters_total 0",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
}
