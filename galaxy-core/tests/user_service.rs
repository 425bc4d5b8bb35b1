//! Profiles and account administration against the in-memory user store; the session
//! revoker is the real auth service where the outcome matters and a mock where the call
//! itself does.

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::TimeDelta;
use galaxy_core::domain::page::PageRequest;
use galaxy_core::domain::user::{Block, Email, Role, User, UserStatus};
use galaxy_core::domain::{Timestamp, UserId};
use galaxy_core::ports::{Clock, SessionRevoker, SessionStore, StoreError, UserStore};
use galaxy_core::service::auth::{AuthConfig, AuthPorts, AuthService};
use galaxy_core::service::user::{ProfileUpdate, UserError, UserService};
use galaxy_core::service::{Actor, ErrorKind, ServiceError};
use galaxy_ports::memory::{MemoryMailStore, MemoryUserStore};
use galaxy_ports::mock::{MockSessionRevoker, MockUserStore};
use galaxy_ports::system::{ManualClock, SeededSecretGenerator};

struct Harness {
    users: UserService,
    store: Arc<MemoryUserStore>,
    clock: Arc<ManualClock>,
    admin: Actor,
    player: User,
}

impl Harness {
    /// A store with one admin and one player; `revoker` defaults to a mock that must
    /// not be called.
    async fn new(revoker: Option<Arc<dyn SessionRevoker>>) -> Self {
        let store = Arc::new(MemoryUserStore::new());
        let clock = Arc::new(ManualClock::at_fixed_start());
        let revoker = revoker
            .unwrap_or_else(|| Arc::new(MockSessionRevoker::new()) as Arc<dyn SessionRevoker>);
        let users = UserService::new(store.clone(), revoker, clock.clone());
        let mut admin = user(1, "root@x.org", clock.now());
        admin.grant(Role::Admin);
        // As stored: "root" reads as staff, so both default to "player", and the second
        // gets a name of its own.
        let admin = store.insert_user(&admin).await.unwrap();
        let player = user(2, "player@x.org", clock.now());
        let player = store.insert_user(&player).await.unwrap();
        Self {
            users,
            store,
            clock,
            admin: Actor::of(&admin),
            player,
        }
    }

    fn player_actor(&self) -> Actor {
        Actor::of(&self.player)
    }

    fn player_id(&self) -> String {
        self.player.id.to_string()
    }

    async fn stored_player(&self) -> User {
        self.store.get_user(self.player.id).await.unwrap()
    }
}

fn user(n: u128, email: &str, now: Timestamp) -> User {
    let id = UserId::from_uuid(uuid::Uuid::from_u128(n));
    User::new(id, Email::parse(email).unwrap(), now)
}

#[tokio::test]
async fn me_and_profile_updates() {
    let h = Harness::new(None).await;
    let actor = h.player_actor();
    assert_eq!(h.users.me(&actor).await.unwrap(), h.player);

    let update = ProfileUpdate {
        display_name: Some("  Captain Zap ".into()),
        locale: Some("pt_br".into()),
        email_notifications: Some(false),
    };
    let updated = h.users.update_profile(&actor, update).await.unwrap();
    assert_eq!(updated.display_name.as_str(), "Captain Zap");
    assert_eq!(updated.locale.as_str(), "pt-BR");
    assert!(!updated.email_notifications);
    assert_eq!(h.stored_player().await, updated);
    let unchanged = h
        .users
        .update_profile(&actor, ProfileUpdate::default())
        .await
        .unwrap();
    assert_eq!(unchanged, updated);
}

#[tokio::test]
async fn an_invalid_field_is_named_and_nothing_is_written() {
    let h = Harness::new(None).await;
    let actor = h.player_actor();
    let cases = [
        (Some("Fine Name"), Some("english"), "locale"),
        (Some("   "), Some("de"), "display_name"),
        (Some("bell\u{7}"), None, "display_name"),
    ];
    for (name, locale, field) in cases {
        let update = ProfileUpdate {
            display_name: name.map(Into::into),
            locale: locale.map(Into::into),
            email_notifications: Some(false),
        };
        let err = h.users.update_profile(&actor, update).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Validation);
        assert!(
            matches!(&err, UserError::InvalidField { field: f, .. } if *f == field),
            "{err:?}"
        );
        assert!(err.to_string().contains(field), "{err}");
        assert_eq!(h.stored_player().await, h.player);
    }
}

#[tokio::test]
async fn admin_calls_refuse_players() {
    let h = Harness::new(None).await;
    let player = h.player_actor();
    let id = h.player_id();
    let page = PageRequest::default();
    let refusals = [
        h.users.list_users(&player, &page).await.err(),
        h.users.get_user(&player, &id).await.err(),
        h.users.block(&player, &id, Block::Permanent).await.err(),
        h.users.unblock(&player, &id).await.err(),
        h.users.get_user(&player, "not-an-id").await.err(),
    ];
    for err in refusals {
        let err = err.expect("refused");
        assert_eq!(err.kind(), ErrorKind::Forbidden, "{err:?}");
    }
    assert_eq!(h.stored_player().await, h.player);
}

#[tokio::test]
async fn admins_list_and_read_users() {
    let h = Harness::new(None).await;
    let page = PageRequest::first(10).unwrap();
    let listed = h.users.list_users(&h.admin, &page).await.unwrap();
    assert_eq!(listed.items.len(), 2);
    let read = h.users.get_user(&h.admin, &h.player_id()).await.unwrap();
    assert_eq!(read, h.player);
    let err = h.users.get_user(&h.admin, "42").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    let unknown = uuid::Uuid::from_u128(99).to_string();
    let err = h.users.get_user(&h.admin, &unknown).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn temporary_block_and_unblock() {
    let h = Harness::new(None).await;
    let id = h.player_id();
    let past = Block::Until(h.clock.now());
    let err = h.users.block(&h.admin, &id, past).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    assert_eq!(h.stored_player().await.status, UserStatus::Active);

    let until = h.clock.now() + TimeDelta::days(1);
    let blocked = h.users.block(&h.admin, &id, Block::Until(until)).await;
    assert_eq!(blocked.unwrap().status, UserStatus::Blocked { until });
    let unblocked = h.users.unblock(&h.admin, &id).await.unwrap();
    assert_eq!(unblocked.status, UserStatus::Active);
    let err = h.users.unblock(&h.admin, &id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);

    let own = h.admin.user_id.to_string();
    let err = h.users.block(&h.admin, &own, Block::Permanent).await;
    assert!(matches!(err, Err(UserError::SelfBlock)), "{err:?}");
}

/// Logs `email` in through `auth`, reading the code from the queued mail.
async fn login(auth: &AuthService, mail: &MemoryMailStore, email: &str) -> String {
    use galaxy_core::ports::MailStore;
    let issued = auth.request_login_code(email, None).await.unwrap();
    let page = PageRequest::first(200).unwrap();
    let mails = mail.list_mail(None, &page).await.unwrap().items;
    let key = format!("login-code:{}", issued.challenge_id);
    let body = &mails
        .iter()
        .find(|m| m.mail.idempotency_key == key)
        .unwrap();
    let after = body.mail.text_body.split("login code is ").nth(1).unwrap();
    let code: String = after.chars().take_while(char::is_ascii_digit).collect();
    let id = issued.challenge_id.to_string();
    let session = auth.create_session(&id, &code, None).await.unwrap();
    session.token.expose()
}

#[tokio::test]
async fn a_permanent_block_revokes_every_session() {
    let store = Arc::new(MemoryUserStore::new());
    let mail = Arc::new(MemoryMailStore::default());
    let clock = Arc::new(ManualClock::at_fixed_start());
    let ports = AuthPorts {
        users: store.clone(),
        challenges: store.clone(),
        sessions: store.clone(),
        mail: mail.clone(),
        clock: clock.clone(),
        secrets: Arc::new(SeededSecretGenerator::new(3)),
    };
    let auth = Arc::new(AuthService::new(ports, AuthConfig::default()).unwrap());
    let users = UserService::new(store.clone(), auth.clone(), clock.clone());

    let tokens = [
        login(&auth, &mail, "victim@x.org").await,
        login(&auth, &mail, "victim@x.org").await,
    ];
    let bystander = login(&auth, &mail, "bystander@x.org").await;
    let victim = auth.authenticate(&tokens[0]).await.unwrap().user;
    let mut admin = user(100, "root@x.org", clock.now());
    admin.grant(Role::Admin);
    store.insert_user(&admin).await.unwrap();

    let id = victim.id.to_string();
    let blocked = users.block(&Actor::of(&admin), &id, Block::Permanent).await;
    assert_eq!(blocked.unwrap().status, UserStatus::BlockedPermanently);
    let active = store.list_active_sessions(victim.id, clock.now()).await;
    assert!(active.unwrap().is_empty());
    for token in &tokens {
        let err = auth.authenticate(token).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    }
    auth.authenticate(&bystander).await.unwrap();
    let again = users.block(&Actor::of(&admin), &id, Block::Permanent).await;
    assert_eq!(again.unwrap_err().kind(), ErrorKind::Conflict);
}

#[tokio::test]
async fn only_a_permanent_block_calls_the_revoker() {
    let player = uuid::Uuid::from_u128(2);
    let mut revoker = MockSessionRevoker::new();
    revoker
        .expect_revoke_all()
        .withf(move |id| id.as_uuid() == player)
        .times(1)
        .returning(|_| Ok(Vec::new()));
    let h = Harness::new(Some(Arc::new(revoker))).await;
    let id = h.player_id();
    let until = Block::Until(h.clock.now() + TimeDelta::hours(2));
    h.users.block(&h.admin, &id, until).await.unwrap();
    h.users.unblock(&h.admin, &id).await.unwrap();
    h.users
        .block(&h.admin, &id, Block::Permanent)
        .await
        .unwrap();
    // The mock checks `times(1)` when the service drops it.
}

#[tokio::test]
async fn a_lost_compare_and_set_is_a_conflict_and_revokes_nothing() {
    let now = ManualClock::at_fixed_start().now();
    let target = user(5, "t@x.org", now);
    let mut store = MockUserStore::new();
    let stored = target.clone();
    store
        .expect_get_user()
        .returning(move |_| Ok(stored.clone()));
    store
        .expect_update_user_status()
        .times(1)
        .returning(|id, _, _| Err(StoreError::conflict("user", id, "status changed")));
    let mut revoker = MockSessionRevoker::new();
    revoker.expect_revoke_all().times(0);
    let users = UserService::new(
        Arc::new(store),
        Arc::new(revoker),
        Arc::new(ManualClock::new(now)),
    );
    let admin = Actor {
        user_id: UserId::from_uuid(uuid::Uuid::from_u128(1)),
        is_admin: true,
    };
    let err = users
        .block(&admin, &target.id.to_string(), Block::Permanent)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
}

#[tokio::test]
async fn a_failed_revocation_is_reported_but_the_block_holds() {
    let mut revoker = MockSessionRevoker::new();
    revoker
        .expect_revoke_all()
        .times(1)
        .returning(|_| Err(StoreError::unavailable("database restarting")));
    let h = Harness::new(Some(Arc::new(revoker))).await;
    let err = h
        .users
        .block(&h.admin, &h.player_id(), Block::Permanent)
        .await
        .unwrap_err();
    assert!(
        matches!(err, UserError::SessionsNotRevoked { .. }),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(
        h.stored_player().await.status,
        UserStatus::BlockedPermanently
    );
}

#[tokio::test]
async fn grant_admin_by_email() {
    let h = Harness::new(None).await;
    let err = h.users.grant_admin("not an email").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    let err = h.users.grant_admin("nobody@x.org").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);

    let granted = h.users.grant_admin("Player@X.org").await.unwrap();
    assert_eq!(granted.roles, vec![Role::Player, Role::Admin]);
    let again = h.users.grant_admin("player@x.org").await.unwrap();
    assert_eq!(again, granted);
    assert!(Actor::of(&h.stored_player().await).is_admin);
}

#[tokio::test]
async fn a_display_name_that_looks_like_another_users_is_refused() {
    let h = Harness::new(None).await;
    let rename = |name: &str| ProfileUpdate {
        display_name: Some(name.into()),
        ..ProfileUpdate::default()
    };
    h.users
        .update_profile(&h.admin, rename("Star Queen"))
        .await
        .unwrap();
    let player = h.player_actor();
    for look_alike in ["STAR QUEEN", "star-queen", "Stаr Queen"] {
        let err = h
            .users
            .update_profile(&player, rename(look_alike))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Validation, "{look_alike}");
        assert!(err.to_string().contains("another user"), "{err}");
    }
    assert_eq!(h.stored_player().await, h.player, "nothing written");
    assert!(
        h.users
            .update_profile(&player, rename("Star King"))
            .await
            .is_ok()
    );
}
