//! The login-code and active-games limits hold when the services run on Postgres and
//! many requests race: each case fires its calls from tokio tasks on a multi-thread
//! runtime, all released at once, over one pooled store, and checks that exactly the
//! limit got through and that the refused calls stored nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use galaxy_core::domain::game::{
    EngineName, EngineSettings, Game, GameName, GameSettings, GameStatus, Visibility,
};
use galaxy_core::domain::page::PageRequest;
use galaxy_core::domain::schedule::TurnSchedule;
use galaxy_core::domain::user::{Email, User};
use galaxy_core::domain::{GameId, UserId};
use galaxy_core::ports::{
    ApplicationStore, ChallengeScope, ChallengeStore, Clock, GameStore, MailStore, NewNotification,
    Notifier, NotifyError, UserStore,
};
use galaxy_core::service::auth::{AuthConfig, AuthError, AuthPorts, AuthService, RateLimitScope};
use galaxy_core::service::lobby::{LobbyConfig, LobbyError, LobbyPorts, LobbyService};
use galaxy_core::service::{Actor, ErrorKind, ServiceError};
use galaxy_ports::system::{ManualClock, SeededSecretGenerator};
use galaxy_postgres::PgStore;
use galaxy_postgres::testing::TestDatabases;
use tokio::sync::Barrier;

/// A fresh store on its own database, and the databases to drop at the end.
async fn store() -> (Arc<PgStore>, TestDatabases) {
    let databases = match TestDatabases::from_env().await {
        Ok(databases) => databases,
        Err(error) => panic!("{error}"),
    };
    let store = databases.store().await.expect("a fresh test database");
    (Arc::new(store), databases)
}

/// Runs `call(i)` for every `i < n` in its own task, all released at once; returns the
/// results in task order.
async fn race<T, C, Fut>(n: usize, call: C) -> Vec<T>
where
    T: Send + 'static,
    C: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let call = call(i);
            tokio::spawn(async move {
                barrier.wait().await;
                call.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.expect("a racing task"));
    }
    results
}

/// An auth service with `config` on `store`, its clock standing still.
fn auth(store: &Arc<PgStore>, config: AuthConfig) -> (AuthService, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at_fixed_start());
    let ports = AuthPorts {
        users: store.clone(),
        challenges: store.clone(),
        sessions: store.clone(),
        mail: store.clone(),
        clock: clock.clone(),
        secrets: Arc::new(SeededSecretGenerator::new(11)),
    };
    let service = AuthService::new(ports, config).expect("a valid auth config");
    (service, clock)
}

/// How many login calls succeeded, and whether every other one was refused with 429 by
/// the `expected` limit.
fn tally<T: std::fmt::Debug>(results: &[Result<T, AuthError>], expected: RateLimitScope) -> usize {
    for result in results {
        match result {
            Ok(_) => {}
            Err(AuthError::RateLimited { scope, .. }) if *scope == expected => {}
            Err(other) => panic!("expected success or {expected:?} refusal, got {other:?}"),
        }
    }
    results.iter().filter(|r| r.is_ok()).count()
}

/// Mails in the outbox.
async fn mails(store: &PgStore) -> usize {
    let page = PageRequest::first(200).unwrap();
    store.list_mail(None, &page).await.unwrap().items.len()
}

/// Challenges stored for `scope` (issued today).
async fn issued(store: &PgStore, clock: &ManualClock, scope: ChallengeScope) -> usize {
    let since = clock.now() - chrono::TimeDelta::days(1);
    store
        .challenge_issue_times(&scope, since)
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_codes_for_one_address_from_one_client_issue_the_live_cap() {
    let (store, databases) = store().await;
    let (auth, clock) = auth(&store, AuthConfig::default());
    let results = race(200, |_| {
        let auth = auth.clone();
        async move {
            let client: IpAddr = "192.0.2.10".parse().unwrap();
            auth.request_login_code("victim@example.org", Some(client))
                .await
        }
    })
    .await;
    // By default an address may hold 3 unused codes, fewer than the 5 per window.
    let live = AuthConfig::default().live_per_email;
    assert_eq!(live, 3);
    assert_eq!(tally(&results, RateLimitScope::LiveCodes), 3);
    let email = Email::parse("victim@example.org").unwrap();
    assert_eq!(
        issued(&store, &clock, ChallengeScope::Email(email)).await,
        3
    );
    assert_eq!(mails(&store).await, 3);
    databases.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_clients_asking_for_one_address_get_five_codes() {
    let (store, databases) = store().await;
    // The live cap out of the way, the 5 per window is what holds.
    let config = AuthConfig {
        live_per_email: 100,
        ..AuthConfig::default()
    };
    let (auth, clock) = auth(&store, config);
    let results = race(40, |i| {
        let auth = auth.clone();
        async move {
            let client = IpAddr::from([198, 51, 100, u8::try_from(i + 1).unwrap()]);
            auth.request_login_code("victim@example.org", Some(client))
                .await
        }
    })
    .await;
    assert_eq!(tally(&results, RateLimitScope::Email), 5);
    let email = Email::parse("victim@example.org").unwrap();
    assert_eq!(
        issued(&store, &clock, ChallengeScope::Email(email)).await,
        5
    );
    assert_eq!(mails(&store).await, 5);
    databases.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_client_spraying_sixty_addresses_gets_twenty_codes() {
    let (store, databases) = store().await;
    let (auth, clock) = auth(&store, AuthConfig::default());
    let results = race(60, |i| {
        let auth = auth.clone();
        async move {
            let client: IpAddr = "203.0.113.5".parse().unwrap();
            let email = format!("sprayed{i}@example.org");
            auth.request_login_code(&email, Some(client)).await
        }
    })
    .await;
    assert_eq!(tally(&results, RateLimitScope::ClientIp), 20);
    let client = ChallengeScope::ClientIp("203.0.113.5".to_owned());
    assert_eq!(issued(&store, &clock, client).await, 20);
    assert_eq!(mails(&store).await, 20);
    databases.cleanup().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_codes_spread_over_an_address_s_codes_stop_at_its_budget() {
    let (store, databases) = store().await;
    // 3 live codes of 5 attempts each could take 15 wrong codes; the address takes 4.
    let mut config = AuthConfig::default();
    config.failed_per_email.max = 4;
    let (auth, _clock) = auth(&store, config);
    let mut challenges = Vec::new();
    for _ in 0..3 {
        let issued = auth
            .request_login_code("victim@example.org", None)
            .await
            .unwrap();
        challenges.push(issued.challenge_id);
    }
    let results = race(30, |i| {
        let (auth, id) = (auth.clone(), challenges[i % 3].to_string());
        // No code is 10 zeros long: 6 digits are issued, so this one is always wrong.
        async move { auth.create_session(&id, "0000000000", None).await }
    })
    .await;
    let mut wrong = 0;
    for result in &results {
        match result {
            Err(AuthError::InvalidCode { .. }) => wrong += 1,
            Err(AuthError::RateLimited {
                scope: RateLimitScope::FailedCodes,
                ..
            })
            | Err(AuthError::ChallengeContended) => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(wrong, 4, "exactly the budget of wrong codes was answered");
    let mut recorded = 0;
    for id in &challenges {
        recorded += store.get_challenge(*id).await.unwrap().failed_attempts;
    }
    assert_eq!(
        recorded, 4,
        "exactly the budget of wrong codes was recorded"
    );
    databases.cleanup().await.unwrap();
}

/// Drops every notification: the cases count stored applications.
struct Quiet;

#[async_trait]
impl Notifier for Quiet {
    async fn notify(&self, _notification: NewNotification) -> Result<(), NotifyError> {
        Ok(())
    }
}

/// A lobby on `store`, its clock standing still.
fn lobby(store: &Arc<PgStore>) -> (LobbyService, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at_fixed_start());
    let ports = LobbyPorts {
        games: store.clone(),
        applications: store.clone(),
        race_names: store.clone(),
        users: store.clone(),
        jobs: store.clone(),
        notifier: Arc::new(Quiet),
        clock: clock.clone(),
        ids: Arc::new(SeededSecretGenerator::new(13)),
    };
    (LobbyService::new(ports, LobbyConfig::default()), clock)
}

/// A public game of `host` open for enrollment, for up to 10 players.
async fn open_game(store: &PgStore, clock: &ManualClock, host: UserId) -> Game {
    let now = clock.now();
    let settings = GameSettings {
        name: GameName::parse("Limits Cup").unwrap(),
        min_players: 2,
        max_players: 10,
        enrollment_deadline: now + chrono::TimeDelta::days(1),
        schedule: TurnSchedule::parse("0 18 * * 1,3,5").unwrap(),
        engine: EngineName::reference(),
        auto_approve: false,
        visibility: Visibility::Public,
        engine_settings: EngineSettings::default(),
        reveal_reports_after_finish: false,
        pbem: Default::default(),
    };
    let mut game = Game::new(GameId::from_uuid(uuid::Uuid::now_v7()), host, settings, now);
    game.status = GameStatus::EnrollmentOpen;
    store.insert_game(&game).await.unwrap();
    game
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn applying_to_thirty_games_at_once_enrolls_in_max_active_games() {
    let (store, databases) = store().await;
    let (lobby, clock) = lobby(&store);
    let email = Email::parse("eager@example.org").unwrap();
    let player = User::new(UserId::from_uuid(uuid::Uuid::now_v7()), email, clock.now());
    store.insert_user(&player).await.unwrap();
    let limit = player.entitlements.max_active_games;
    let host = UserId::from_uuid(uuid::Uuid::now_v7());
    let mut games = Vec::new();
    for _ in 0..30 {
        games.push(open_game(&store, &clock, host).await.id);
    }
    let actor = Actor::of(&player);
    let results = race(games.len(), |i| {
        let (lobby, game) = (lobby.clone(), games[i]);
        async move { lobby.apply(actor, game, &format!("Eager{i}")).await }
    })
    .await;
    for result in &results {
        if let Err(error) = result {
            assert!(
                matches!(error, LobbyError::Forbidden { .. }),
                "expected success or the active-games refusal, got {error:?}"
            );
            assert_eq!(error.kind(), ErrorKind::Forbidden);
        }
    }
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(accepted, usize::try_from(limit).unwrap());
    assert_eq!(store.count_active_games(player.id).await.unwrap(), limit);
    databases.cleanup().await.unwrap();
}

/// First logins as `bob@` of many domains at once each get a name that looks like no one
/// else's; and a user whose name's look-alike key another account shares (stored before
/// defaults were kept apart) still saves a profile that keeps that name.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn default_names_stay_apart_under_racing_first_logins() {
    use galaxy_core::domain::user::DisplayName;
    use galaxy_core::domain::user::Locale;
    use galaxy_core::ports::ProfileChange;

    let (store, databases) = store().await;
    let users = race(12, |i| {
        let store = Arc::clone(&store);
        async move {
            let email = Email::parse(&format!("bob@d{i}.example")).unwrap();
            let now = ManualClock::at_fixed_start().now();
            let user = User::new(UserId::from_uuid(uuid::Uuid::now_v7()), email, now);
            store.insert_user(&user).await.unwrap()
        }
    })
    .await;
    let mut keys: Vec<String> = users.iter().map(|u| u.display_name.key()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 12, "{users:?}");
    assert!(users.iter().any(|u| u.display_name.as_str() == "bob"));
    for user in &users {
        assert_eq!(&store.get_user(user.id).await.unwrap(), user);
    }

    // Two accounts made to share a key, as before this rule.
    let (first, second) = (&users[0], &users[1]);
    sqlx::query("UPDATE users SET display_name = $2, display_name_key = $3 WHERE id = $1")
        .bind(second.id.as_uuid())
        .bind(first.display_name.as_str())
        .bind(first.display_name.key())
        .execute(store.pool())
        .await
        .unwrap();
    let change = ProfileChange {
        display_name: Some(DisplayName::parse(first.display_name.as_str()).unwrap()),
        locale: Some(Locale::parse("de").unwrap()),
        ..ProfileChange::default()
    };
    let saved = store.update_profile(second.id, &change).await.unwrap();
    assert_eq!(saved.locale.as_str(), "de");
    // Taking a third user's look-alike is still refused.
    let third = DisplayName::parse(users[2].display_name.as_str()).unwrap();
    let taken = ProfileChange {
        display_name: Some(third),
        ..ProfileChange::default()
    };
    assert!(store.update_profile(second.id, &taken).await.is_err());
    databases.cleanup().await.unwrap();
}
