//! The login flow and sessions against the in-memory stores, with a manual clock and a
//! seeded secret generator; mocks where the interaction itself is the point.

// A failed unwrap is a failed test, with the value in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod codes;
mod harness;
mod rate_limits;
mod sessions;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::TimeDelta;
use galaxy_core::domain::auth::LoginCode;
use galaxy_core::domain::user::{Email, Role};
use galaxy_core::ports::{
    ChallengeScope, ChallengeStore, Clock, SessionStore, StoreError, UserStore,
};
use galaxy_core::service::auth::{AuthConfig, AuthConfigError, AuthError, AuthPorts, AuthService};
use galaxy_core::service::{Actor, ErrorKind, ServiceError};
use galaxy_ports::memory::{MemoryMailStore, MemoryUserStore};
use galaxy_ports::mock::{MockMailStore, MockSessionStore};
use galaxy_ports::system::{ManualClock, SeededSecretGenerator};

use harness::{Harness, ip};

#[tokio::test]
async fn full_login_flow() {
    let h = Harness::new();
    let now = h.clock.now();
    let issued = h
        .auth
        .request_login_code(" Alice@Example.org ", ip("192.0.2.1"))
        .await
        .unwrap();
    assert_eq!(issued.expires_at, now + TimeDelta::minutes(10));

    let mails = h.mails().await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0].mail;
    assert_eq!(mail.to.as_str(), "alice@example.org");
    assert_eq!(mail.kind, "login_code");
    assert_eq!(
        mail.idempotency_key,
        format!("login-code:{}", issued.challenge_id)
    );
    let code = h.code_for(issued.challenge_id).await;
    assert_eq!(code.len(), 6);
    assert!(!mail.subject.contains(&code));
    let stored = h.challenge(issued.challenge_id).await;
    let parsed = LoginCode::parse(&code).unwrap();
    assert_eq!(
        stored.code_hash,
        parsed.hash_for(stored.id, &crate::harness::test_key())
    );
    let unkeyed = galaxy_core::domain::auth::CodeKey::derive(&[0; 32]).unwrap();
    assert_ne!(stored.code_hash, parsed.hash_for(stored.id, &unkeyed));
    assert_eq!(stored.client_ip, "192.0.2.1");

    let id = issued.challenge_id.to_string();
    let new = h.auth.create_session(&id, &code, None).await.unwrap();
    assert_eq!(new.user.email.as_str(), "alice@example.org");
    assert_eq!(new.user.roles, vec![Role::Player]);
    assert_eq!(new.session.expires_at, now + TimeDelta::days(30));
    let token = new.token.expose();
    assert_eq!(token.len(), 64);
    let stored = h.store.get_session(new.session.id).await.unwrap();
    assert_eq!(stored.token_hash, new.token.hash());
    assert!(!format!("{new:?}").contains(&token));

    let who = h.auth.authenticate(&token).await.unwrap();
    assert_eq!(who.user.id, new.user.id);
    assert_eq!(who.session.id, new.session.id);
    let actor = Actor::of(&who.user);
    assert_eq!(h.auth.list_sessions(&actor).await.unwrap().len(), 1);

    h.auth.logout(&token).await.unwrap();
    let err = h.auth.authenticate(&token).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(h.auth.list_sessions(&actor).await.unwrap().is_empty());
    h.auth.logout(&token).await.unwrap();

    let again = h.auth.create_session(&id, &code, None).await.unwrap_err();
    assert!(matches!(again, AuthError::ChallengeUsed), "{again:?}");
    assert_eq!(again.kind(), ErrorKind::Conflict);
}

#[tokio::test]
async fn second_login_finds_the_same_account() {
    let h = Harness::new();
    let first = h.login("bob@example.org").await;
    let second = h.login("BOB@example.org").await;
    assert_eq!(first.user.id, second.user.id);
    assert_ne!(first.token, second.token);
    let actor = Actor::of(&first.user);
    assert_eq!(h.auth.list_sessions(&actor).await.unwrap().len(), 2);
}

#[tokio::test]
async fn bootstrap_admins_get_the_admin_role_at_login() {
    let config = AuthConfig {
        bootstrap_admins: BTreeSet::from([Email::parse("boss@example.org").unwrap()]),
        ..AuthConfig::default()
    };
    let h = Harness::with_config(config);
    let boss = h.login("Boss@Example.org").await;
    assert!(boss.user.has_role(Role::Admin));
    assert!(Actor::of(&boss.user).is_admin);
    let stored = h.store.get_user(boss.user.id).await.unwrap();
    assert_eq!(stored.roles, vec![Role::Player, Role::Admin]);
    let player = h.login("player@example.org").await;
    assert!(!player.user.has_role(Role::Admin));
}

#[tokio::test]
async fn the_mail_is_queued_once_with_its_key() {
    let mut mail = MockMailStore::new();
    mail.expect_enqueue_mail()
        .withf(|d| {
            d.mail.kind == "login_code"
                && d.mail.to.as_str() == "a@x.org"
                && d.mail.idempotency_key.starts_with("login-code:")
        })
        .times(1)
        .returning(|d| Ok(d.clone()));
    let h = Harness::with_outbox(AuthConfig::default(), Arc::new(mail));
    h.auth.request_login_code("a@x.org", None).await.unwrap();
}

#[tokio::test]
async fn a_code_whose_mail_could_not_be_queued_does_not_count_against_the_address() {
    // The outbox fails the first request's mail (the store went away), then answers.
    let mut mail = MockMailStore::new();
    let mut calls = 0;
    mail.expect_enqueue_mail().times(2).returning(move |d| {
        calls += 1;
        if calls == 1 {
            Err(StoreError::unavailable("connection reset"))
        } else {
            Ok(d.clone())
        }
    });
    // Asked whether the failed one is in the outbox after all: it is not.
    mail.expect_get_mail()
        .times(1)
        .returning(|id| Err(StoreError::not_found("mail", id)));
    // One unused code per address at a time: the unmailed one would hold the retry back.
    let config = AuthConfig {
        live_per_email: 1,
        ..AuthConfig::default()
    };
    let h = Harness::with_outbox(config, Arc::new(mail));
    let (auth, store) = (&h.auth, &h.store);
    let failed = auth.request_login_code("a@x.org", None).await.unwrap_err();
    assert_eq!(failed.kind(), ErrorKind::Unavailable, "{failed}");
    let scope = ChallengeScope::Email(Email::parse("a@x.org").unwrap());
    let since = chrono::DateTime::UNIX_EPOCH;
    let stored = store.challenge_issue_times(&scope, since).await.unwrap();
    assert!(stored.is_empty(), "the unmailed code was kept: {stored:?}");
    auth.request_login_code("a@x.org", None)
        .await
        .expect("the retry was refused");
}

#[tokio::test]
async fn a_code_whose_mail_was_queued_though_the_answer_was_lost_stays() {
    // The outbox stores the mail, but its answer is lost (the connection dropped after
    // the commit): the mail goes out, so its code must still work.
    let mut mail = MockMailStore::new();
    let outbox = Arc::new(std::sync::Mutex::new(None));
    let stored = outbox.clone();
    mail.expect_enqueue_mail().times(1).returning(move |d| {
        *stored.lock().unwrap() = Some(d.clone());
        Err(StoreError::unavailable("connection reset"))
    });
    // Asked whether it is in the outbox after all: it is, as the service built it.
    let found = outbox.clone();
    mail.expect_get_mail().times(1).returning(move |id| {
        found
            .lock()
            .unwrap()
            .clone()
            .filter(|d| d.id == id)
            .ok_or_else(|| StoreError::not_found("mail", id))
    });
    let h = Harness::with_outbox(AuthConfig::default(), Arc::new(mail));
    let (auth, store) = (&h.auth, &h.store);
    let issued = auth
        .request_login_code("a@x.org", None)
        .await
        .expect("the code was queued");
    let kept = store.get_challenge(issued.challenge_id).await.unwrap();
    assert_eq!(
        kept.status,
        galaxy_core::domain::auth::ChallengeStatus::Issued
    );
}

#[tokio::test]
async fn a_code_spent_on_a_session_the_store_failed_to_write_can_be_used_again() {
    // The session store fails the first session's write (the store went away), then
    // answers.
    let mut sessions = MockSessionStore::new();
    let mut calls = 0;
    sessions
        .expect_insert_session()
        .times(2)
        .returning(move |_| {
            calls += 1;
            if calls == 1 {
                Err(StoreError::unavailable("connection reset"))
            } else {
                Ok(())
            }
        });
    let h = Harness::with_sessions(AuthConfig::default(), Arc::new(sessions));
    let auth = &h.auth;
    let issued = auth.request_login_code("a@x.org", None).await.unwrap();
    let code = h.code_for(issued.challenge_id).await;
    let id = issued.challenge_id.to_string();
    let failed = auth.create_session(&id, &code, None).await.unwrap_err();
    assert_eq!(failed.kind(), ErrorKind::Unavailable, "{failed}");
    // The retry with the same code gets in, rather than "code already used".
    let session = auth
        .create_session(&id, &code, None)
        .await
        .expect("the code was spent on the failed session");
    assert_eq!(session.user.email.as_str(), "a@x.org");
    assert!(
        auth.create_session(&id, &code, None).await.is_err(),
        "used once only"
    );
}

#[tokio::test]
async fn config_is_checked_at_construction() {
    for digits in [5, 11] {
        let config = AuthConfig {
            code_digits: digits,
            ..AuthConfig::default()
        };
        let store = Arc::new(MemoryUserStore::new());
        let ports = AuthPorts {
            users: store.clone(),
            challenges: store.clone(),
            sessions: store,
            mail: Arc::new(MemoryMailStore::default()),
            clock: Arc::new(ManualClock::at_fixed_start()),
            secrets: Arc::new(SeededSecretGenerator::new(1)),
        };
        let err = AuthService::new(ports, config).err();
        assert_eq!(err, Some(AuthConfigError::CodeDigits(digits)));
    }
    let h = Harness::with_config(AuthConfig {
        code_digits: 8,
        ..AuthConfig::default()
    });
    let issued = h.auth.request_login_code("a@x.org", None).await.unwrap();
    assert_eq!(h.code_for(issued.challenge_id).await.len(), 8);
}
