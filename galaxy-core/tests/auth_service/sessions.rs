//! Sessions: blocked users, revocation, and secrets kept out of errors.

use chrono::TimeDelta;
use galaxy_core::domain::user::UserStatus;
use galaxy_core::ports::{Clock, SessionRevoker, UserStore};
use galaxy_core::service::auth::AuthError;
use galaxy_core::service::{Actor, ErrorKind, ServiceError};

use crate::harness::{Harness, email_scope, wrong};

#[tokio::test]
async fn blocked_users_cannot_log_in_or_use_their_sessions() {
    let h = Harness::new();
    let first = h.login("a@x.org").await;
    let token = first.token.expose();
    let until = h.clock.now() + TimeDelta::hours(1);
    let blocked = UserStatus::Blocked { until };
    let users = &h.store;
    users
        .update_user_status(first.user.id, UserStatus::Active, blocked)
        .await
        .unwrap();

    let err = h.auth.authenticate(&token).await.unwrap_err();
    assert!(
        matches!(err, AuthError::Blocked { until: Some(u) } if u == until),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    let issued = h.auth.request_login_code("a@x.org", None).await.unwrap();
    let code = h.code_for(issued.challenge_id).await;
    let id = issued.challenge_id.to_string();
    let err = h.auth.create_session(&id, &code, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);

    // A temporary block that has ended counts as active.
    h.clock.advance(TimeDelta::hours(1));
    h.auth.authenticate(&token).await.unwrap();
    h.login("a@x.org").await;
}

#[tokio::test]
async fn permanently_blocked_users_get_a_challenge_but_no_mail() {
    let h = Harness::new();
    let first = h.login("gone@x.org").await;
    let users = &h.store;
    users
        .update_user_status(
            first.user.id,
            UserStatus::Active,
            UserStatus::BlockedPermanently,
        )
        .await
        .unwrap();
    let mails_before = h.mails().await.len();
    let now = h.clock.now();
    let blocked = h.auth.request_login_code("gone@x.org", None).await.unwrap();
    let unknown = h.auth.request_login_code("new@x.org", None).await.unwrap();
    assert_eq!(blocked.expires_at, now + TimeDelta::minutes(10));
    assert_eq!(blocked.expires_at, unknown.expires_at);
    assert_eq!(h.mails().await.len(), mails_before + 1);
    assert_eq!(h.issued_for(email_scope("gone@x.org")).await, 2);
    let err = h
        .auth
        .authenticate(&first.token.expose())
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Blocked { until: None }), "{err:?}");
}

#[tokio::test]
async fn users_revoke_only_their_own_sessions() {
    let h = Harness::new();
    let alice = h.login("alice@x.org").await;
    let bob = h.login("bob@x.org").await;
    let alice_actor = Actor::of(&alice.user);
    let bob_session = bob.session.id;
    let err = h
        .auth
        .revoke_session(&alice_actor, bob_session)
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::SessionNotFound), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    h.auth.authenticate(&bob.token.expose()).await.unwrap();

    let own = alice.session.id;
    let revoked = h.auth.revoke_session(&alice_actor, own).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(h.auth.authenticate(&alice.token.expose()).await.is_err());
    // Revoking again is idempotent.
    h.auth.revoke_session(&alice_actor, own).await.unwrap();
}

#[tokio::test]
async fn revoke_all_ends_every_session_of_one_user() {
    let h = Harness::new();
    let one = h.login("a@x.org").await;
    let two = h.login("a@x.org").await;
    let other = h.login("b@x.org").await;
    let revoked = h.auth.revoke_all(one.user.id).await.unwrap();
    assert_eq!(revoked, vec![one.session.id, two.session.id]);
    for token in [&one.token, &two.token] {
        assert!(h.auth.authenticate(&token.expose()).await.is_err());
    }
    h.auth.authenticate(&other.token.expose()).await.unwrap();
}

#[tokio::test]
async fn tokens_and_codes_never_appear_in_errors() {
    let h = Harness::new();
    let issued = h.auth.request_login_code("a@x.org", None).await.unwrap();
    let code = h.code_for(issued.challenge_id).await;
    let id = issued.challenge_id.to_string();
    let bad_code = wrong(&code);
    let session = h.login("b@x.org").await;
    let token = session.token.expose();
    let mut errors = vec![
        h.auth
            .create_session(&id, &bad_code, None)
            .await
            .unwrap_err(),
        h.auth.create_session(&code, &code, None).await.unwrap_err(),
        h.auth
            .create_session(&token, &code, None)
            .await
            .unwrap_err(),
        h.auth.authenticate(&token[1..]).await.unwrap_err(),
        h.auth.authenticate(&format!("{token}0")).await.unwrap_err(),
    ];
    h.auth.logout(&token).await.unwrap();
    errors.push(h.auth.authenticate(&token).await.unwrap_err());
    for err in &errors {
        for text in [format!("{err:?}"), err.to_string()] {
            for secret in [
                code.as_str(),
                bad_code.as_str(),
                token.as_str(),
                &token[1..],
            ] {
                assert!(!text.contains(secret), "{text:?} leaks a secret");
            }
        }
    }
    let debug = format!("{session:?}");
    assert!(!debug.contains(&token), "NewSession debug leaks the token");
}
