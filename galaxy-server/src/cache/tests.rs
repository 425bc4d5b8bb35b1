//! Each decorator, warmed from a mock store, answers its reads without calling the store
//! (`.times(0)`), writes through, and forgets what a failed write contradicts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::TimeDelta;
use galaxy_core::domain::auth::{Session, SessionStatus};
use galaxy_core::domain::game::{
    EngineName, Game, GameName, GameSettings, GameStatus, GameTrigger, Visibility,
};
use galaxy_core::domain::page::Page;
use galaxy_core::domain::schedule::TurnSchedule;
use galaxy_core::domain::user::{Email, User};
use galaxy_core::domain::{ApplicationId, GameId, SessionId, Timestamp, UserId};
use galaxy_core::ports::{
    ApplicationStore, ApprovalOutcome, GameStatusChange, GameStore, SecretGenerator, SessionStore,
    StoreError, UserStore,
};
use galaxy_ports::mock::{MockApplicationStore, MockGameStore, MockSessionStore, MockUserStore};
use galaxy_ports::system::OsSecretGenerator;

use super::{GameCache, SessionCache, Shared, UserCache};

fn now() -> Timestamp {
    Timestamp::from_timestamp(1_893_456_000, 0).unwrap()
}

fn session(user_id: UserId) -> Session {
    Session {
        id: SessionId::from_uuid(uuid::Uuid::now_v7()),
        user_id,
        token_hash: OsSecretGenerator.session_token().hash(),
        status: SessionStatus::Active,
        created_at: now(),
        expires_at: now() + TimeDelta::days(30),
        revoked_at: None,
    }
}

fn user(email: &str) -> User {
    User::new(
        UserId::from_uuid(uuid::Uuid::now_v7()),
        Email::parse(email).unwrap(),
        now(),
    )
}

fn game() -> Game {
    let settings = GameSettings {
        name: GameName::parse("Cache Cup").unwrap(),
        min_players: 2,
        max_players: 4,
        enrollment_deadline: now() + TimeDelta::days(1),
        schedule: TurnSchedule::parse("0 18 * * 1,3,5").unwrap(),
        engine: EngineName::reference(),
        auto_approve: false,
        visibility: Visibility::Public,
        engine_settings: galaxy_core::domain::game::EngineSettings::default(),
        reveal_reports_after_finish: true,
        pbem: Default::default(),
    };
    let host = UserId::from_uuid(uuid::Uuid::now_v7());
    Game::new(
        GameId::from_uuid(uuid::Uuid::now_v7()),
        host,
        settings,
        now(),
    )
}

#[tokio::test]
async fn warm_sessions_are_found_by_token_and_id_without_the_store() {
    let stored = session(UserId::from_uuid(uuid::Uuid::now_v7()));
    let mut inner = MockSessionStore::new();
    let warm = vec![stored.clone()];
    inner
        .expect_all_active_sessions()
        .times(1)
        .return_once(move |_| Ok(warm));
    inner.expect_find_session_by_token().times(0);
    inner.expect_get_session().times(0);
    let cache = SessionCache::new(Arc::new(inner));
    assert_eq!(cache.warm(now()).await.unwrap(), 1);
    for _ in 0..3 {
        let found = cache.find_session_by_token(&stored.token_hash).await;
        assert_eq!(found.unwrap().unwrap().id, stored.id);
        assert_eq!(cache.get_session(stored.id).await.unwrap(), stored);
    }
}

#[tokio::test]
async fn revocations_write_through_and_show_at_once() {
    let owner = UserId::from_uuid(uuid::Uuid::now_v7());
    let (one, two) = (session(owner), session(owner));
    let mut inner = MockSessionStore::new();
    let warm = vec![one.clone(), two.clone()];
    inner
        .expect_all_active_sessions()
        .return_once(move |_| Ok(warm));
    let mut revoked = one.clone();
    revoked.revoke(now()).unwrap();
    let answer = revoked.clone();
    inner
        .expect_revoke_session()
        .times(1)
        .return_once(move |_, _| Ok(answer));
    let two_id = two.id;
    inner
        .expect_revoke_user_sessions()
        .times(1)
        .return_once(move |_, _| Ok(vec![two_id]));
    inner.expect_find_session_by_token().times(0);
    let cache = SessionCache::new(Arc::new(inner));
    cache.warm(now()).await.unwrap();

    cache.revoke_session(one.id, now()).await.unwrap();
    let seen = cache.find_session_by_token(&one.token_hash).await.unwrap();
    assert_eq!(seen, Some(revoked));

    cache.revoke_user_sessions(owner, now()).await.unwrap();
    let seen = cache.find_session_by_token(&two.token_hash).await.unwrap();
    assert_eq!(seen.unwrap().status, SessionStatus::Revoked);
}

#[tokio::test]
async fn a_miss_asks_the_store_once_and_a_failed_write_leaves_memory_alone() {
    let fresh = session(UserId::from_uuid(uuid::Uuid::now_v7()));
    let mut inner = MockSessionStore::new();
    let answer = fresh.clone();
    inner
        .expect_find_session_by_token()
        .times(1)
        .return_once(move |_| Ok(Some(answer)));
    inner
        .expect_insert_session()
        .times(1)
        .return_once(|_| Err(StoreError::duplicate("session", "id")));
    let cache = SessionCache::new(Arc::new(inner));
    for _ in 0..2 {
        let found = cache
            .find_session_by_token(&fresh.token_hash)
            .await
            .unwrap();
        assert_eq!(found.map(|s| s.id), Some(fresh.id));
    }
    let other = session(fresh.user_id);
    assert!(cache.insert_session(&other).await.is_err());
    assert_eq!(cache.len(), 1, "a refused insert is not cached");
}

#[tokio::test]
async fn warm_users_are_read_by_id_and_email_without_the_store() {
    let (ann, bob) = (user("ann@example.com"), user("bob@example.com"));
    let mut inner = MockUserStore::new();
    let (first, second) = (ann.clone(), bob.clone());
    let mut pages = vec![
        Page {
            items: vec![second],
            next_after: None,
        },
        Page {
            items: vec![first],
            next_after: Some("cursor".to_owned()),
        },
    ];
    inner
        .expect_list_users()
        .times(2)
        .returning(move |_| Ok(pages.pop().unwrap()));
    inner.expect_get_user().times(0);
    inner.expect_find_user_by_email().times(0);
    inner
        .expect_touch_user()
        .times(1)
        .returning(|_, _, _| Ok(()));
    let cache = UserCache::new(Arc::new(inner));
    assert_eq!(cache.warm().await.unwrap(), 2, "both pages loaded");
    assert_eq!(cache.get_user(ann.id).await.unwrap(), ann);
    let found = cache.find_user_by_email(&bob.email).await.unwrap();
    assert_eq!(found.map(|u| u.id), Some(bob.id));

    let later = now() + TimeDelta::hours(1);
    cache
        .touch_user(ann.id, later, Some("NL".to_owned()))
        .await
        .unwrap();
    let touched = cache.get_user(ann.id).await.unwrap();
    assert_eq!(
        (touched.last_seen_at, touched.country.as_str()),
        (later, "NL")
    );
}

#[tokio::test]
async fn a_conflicting_user_write_sends_the_next_read_to_the_store() {
    let ann = user("ann@example.com");
    let mut inner = MockUserStore::new();
    let warm = ann.clone();
    inner.expect_list_users().return_once(move |_| {
        Ok(Page {
            items: vec![warm],
            next_after: None,
        })
    });
    inner
        .expect_set_roles()
        .times(1)
        .return_once(|_, _| Err(StoreError::conflict("user", "id", "changed")));
    let reread = ann.clone();
    inner
        .expect_get_user()
        .times(1)
        .return_once(move |_| Ok(reread));
    let cache = UserCache::new(Arc::new(inner));
    cache.warm().await.unwrap();
    assert!(cache.set_roles(ann.id, &[]).await.is_err());
    assert_eq!(cache.get_user(ann.id).await.unwrap(), ann);
}

#[tokio::test]
async fn warm_games_are_read_without_the_store_and_approvals_update_the_count() {
    let stored = game();
    let mut games = MockGameStore::new();
    let warm = stored.clone();
    games.expect_list_games().times(1).return_once(move |_, _| {
        Ok(Page {
            items: vec![warm],
            next_after: None,
        })
    });
    games.expect_get_game().times(0);
    let mut opened = stored.clone();
    opened.status = GameStatus::EnrollmentOpen;
    let answer = opened.clone();
    games
        .expect_update_game_status()
        .times(1)
        .return_once(move |_, _, _| Ok(answer));
    let mut applications = MockApplicationStore::new();
    let mut counted = opened.clone();
    counted.approved_count = 1;
    let approved_game = counted.clone();
    applications
        .expect_approve_application()
        .times(1)
        .return_once(move |_, _| {
            Ok(ApprovalOutcome::Approved {
                application: dummy_application(&approved_game),
                game: approved_game,
            })
        });
    let cache = GameCache::new(Arc::new(games), Arc::new(applications));
    assert_eq!(cache.warm().await.unwrap(), 1);
    assert_eq!(cache.get_game(stored.id).await.unwrap(), stored);

    let change = GameStatusChange {
        to: GameStatus::EnrollmentOpen,
        trigger: GameTrigger::Host,
        actor: None,
        reason: None,
        at: now(),
        expected_approved: None,
    };
    cache
        .update_game_status(stored.id, GameStatus::Draft, &change)
        .await
        .unwrap();
    assert_eq!(cache.get_game(stored.id).await.unwrap(), opened);

    let id = ApplicationId::from_uuid(uuid::Uuid::now_v7());
    cache.approve_application(id, now()).await.unwrap();
    assert_eq!(cache.get_game(stored.id).await.unwrap().approved_count, 1);
}

fn dummy_application(game: &Game) -> galaxy_core::domain::application::Application {
    use galaxy_core::domain::application::{Application, ApplicationStatus};
    use galaxy_core::domain::race_name::RaceName;
    Application {
        id: ApplicationId::from_uuid(uuid::Uuid::now_v7()),
        game_id: game.id,
        user_id: UserId::from_uuid(uuid::Uuid::now_v7()),
        race_name: RaceName::parse("Vegans").unwrap(),
        status: ApplicationStatus::Approved,
        created_at: now(),
        decided_at: Some(now()),
    }
}

#[test]
fn a_miss_that_raced_a_write_does_not_store_what_it_read() {
    let shared: Shared<Vec<&str>> = Shared::default();
    let before = shared.epoch();
    shared.write(|v| v.push("written"));
    shared.fill(before, |v| v.push("stale read"));
    assert_eq!(shared.read(Clone::clone), vec!["written"]);
    let now = shared.epoch();
    shared.fill(now, |v| v.push("fresh read"));
    assert_eq!(shared.read(Vec::len), 2);
}

#[tokio::test]
async fn a_fresh_read_goes_to_the_store_and_refreshes_memory() {
    let stored = game();
    let mut games = MockGameStore::new();
    let warm = stored.clone();
    games.expect_list_games().times(1).return_once(move |_, _| {
        Ok(Page {
            items: vec![warm],
            next_after: None,
        })
    });
    // Another replica opened the game; this one has not heard yet.
    let mut opened = stored.clone();
    opened.status = GameStatus::EnrollmentOpen;
    let truth = opened.clone();
    games
        .expect_get_game()
        .times(1)
        .return_once(move |_| Ok(truth));
    let cache = GameCache::new(Arc::new(games), Arc::new(MockApplicationStore::new()));
    assert_eq!(cache.warm().await.unwrap(), 1);
    assert_eq!(cache.get_game(stored.id).await.unwrap(), stored, "stale");
    assert_eq!(cache.get_game_fresh(stored.id).await.unwrap(), opened);
    assert_eq!(
        cache.get_game(stored.id).await.unwrap(),
        opened,
        "memory refreshed, no second store read"
    );
}

/// A bus whose first `failures` publishes fail, in front of a hub's process.
struct FlakyBus {
    inner: galaxy_ports::memory::MemoryChangeBus,
    failures: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl galaxy_core::ports::ChangeBus for FlakyBus {
    async fn publish(&self, change: galaxy_core::ports::Change) -> Result<(), StoreError> {
        let failing = self
            .failures
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok();
        if failing {
            return Err(StoreError::unavailable("pool timed out"));
        }
        self.inner.publish(change).await
    }

    fn subscribe(&self) -> galaxy_core::ports::ChangeSubscription {
        self.inner.subscribe()
    }
}

#[tokio::test]
async fn a_revocation_whose_note_failed_still_reaches_the_other_replicas() {
    let owner = UserId::from_uuid(uuid::Uuid::now_v7());
    let one = session(owner);
    let mut inner = MockSessionStore::new();
    let warm = vec![one.clone()];
    inner
        .expect_all_active_sessions()
        .return_once(move |_| Ok(warm));
    let mut revoked = one.clone();
    revoked.revoke(now()).unwrap();
    inner
        .expect_revoke_session()
        .times(1)
        .return_once(move |_, _| Ok(revoked));
    let hub = galaxy_ports::memory::MemoryChangeBus::new();
    let mut other_replica = galaxy_core::ports::ChangeBus::subscribe(&hub.replica());
    let bus = FlakyBus {
        inner: hub,
        failures: std::sync::atomic::AtomicUsize::new(3),
    };
    let cache = SessionCache::new(Arc::new(inner)).with_bus(Arc::new(bus));
    cache.warm(now()).await.unwrap();
    // The logout commits; its note fails three times, then goes out.
    cache.revoke_session(one.id, now()).await.unwrap();
    let heard = tokio::time::timeout(std::time::Duration::from_secs(10), other_replica.next())
        .await
        .expect("the other replica never heard of the revocation");
    assert_eq!(
        heard,
        Some(galaxy_core::ports::ChangeNote::Changed(
            galaxy_core::ports::Change::Session(one.id)
        ))
    );
}

/// The user store of one test, whose next `update_profile` answers only once `gate`
/// opens: its reply is in flight while other writes land.
struct GatedUsers {
    inner: Arc<galaxy_ports::memory::MemoryUserStore>,
    gate: tokio::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

#[async_trait::async_trait]
impl UserStore for GatedUsers {
    async fn insert_user(&self, user: &User) -> Result<User, StoreError> {
        self.inner.insert_user(user).await
    }
    async fn get_user(&self, id: UserId) -> Result<User, StoreError> {
        self.inner.get_user(id).await
    }
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        self.inner.find_user_by_email(email).await
    }
    async fn list_users(
        &self,
        page: &galaxy_core::domain::page::PageRequest,
    ) -> Result<Page<User>, StoreError> {
        self.inner.list_users(page).await
    }
    async fn search_users(
        &self,
        text: &str,
        page: &galaxy_core::domain::page::PageRequest,
    ) -> Result<Page<User>, StoreError> {
        self.inner.search_users(text, page).await
    }
    async fn update_profile(
        &self,
        id: UserId,
        change: &galaxy_core::ports::ProfileChange,
    ) -> Result<User, StoreError> {
        let answer = self.inner.update_profile(id, change).await;
        let gate = self.gate.lock().await.take();
        if let Some(gate) = gate {
            let _ = gate.await;
        }
        answer
    }
    async fn update_user_status(
        &self,
        id: UserId,
        expected: galaxy_core::domain::user::UserStatus,
        to: galaxy_core::domain::user::UserStatus,
    ) -> Result<User, StoreError> {
        self.inner.update_user_status(id, expected, to).await
    }
    async fn set_roles(
        &self,
        id: UserId,
        roles: &[galaxy_core::domain::user::Role],
    ) -> Result<User, StoreError> {
        self.inner.set_roles(id, roles).await
    }
    async fn set_entitlements(
        &self,
        id: UserId,
        entitlements: galaxy_core::domain::user::Entitlements,
    ) -> Result<User, StoreError> {
        self.inner.set_entitlements(id, entitlements).await
    }
    async fn touch_user(
        &self,
        id: UserId,
        at: Timestamp,
        country: Option<String>,
    ) -> Result<(), StoreError> {
        self.inner.touch_user(id, at, country).await
    }
}

#[tokio::test]
async fn a_write_whose_reply_was_overtaken_does_not_put_its_older_row_back() {
    use galaxy_core::domain::user::UserStatus;
    let store = Arc::new(galaxy_ports::memory::MemoryUserStore::new());
    let ada = user("ada@example.org");
    store.insert_user(&ada).await.unwrap();
    let (open, gate) = tokio::sync::oneshot::channel();
    let gated = GatedUsers {
        inner: store.clone(),
        gate: tokio::sync::Mutex::new(Some(gate)),
    };
    let cache = Arc::new(UserCache::new(Arc::new(gated)));
    cache.warm().await.unwrap();
    // Ada renames herself; the store commits, and its reply (Ada active) is in flight...
    let renaming = tokio::spawn({
        let cache = cache.clone();
        let change = galaxy_core::ports::ProfileChange {
            display_name: Some(galaxy_core::domain::user::DisplayName::parse("Ada L").unwrap()),
            locale: None,
            email_notifications: None,
        };
        async move { cache.update_profile(ada.id, &change).await }
    });
    tokio::task::yield_now().await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    // ...when another replica blocks her for good, and its note arrives here.
    let blocked = store
        .update_user_status(ada.id, UserStatus::Active, UserStatus::BlockedPermanently)
        .await
        .unwrap();
    cache.forget(galaxy_core::ports::Change::User(ada.id));
    let _ = open.send(());
    let renamed = renaming.await.unwrap().unwrap();
    assert_eq!(renamed.status, UserStatus::Active, "the reply was older");
    // The cache does not serve that older row: the block stands.
    let seen = cache.get_user(ada.id).await.unwrap();
    assert_eq!(seen.status, blocked.status);
}
