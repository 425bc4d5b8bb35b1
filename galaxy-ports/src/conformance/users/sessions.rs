//! Session cases of the users suite.

use std::collections::HashSet;
use std::future::Future;

use galaxy_core::domain::auth::{Session, SessionStatus, SessionToken};
use galaxy_core::domain::{SessionId, UserId};
use galaxy_core::ports::{SessionStore, StoreError};
use uuid::Uuid;

use super::fixtures::{Must, assert_err, at, new_uuid};
use crate::conformance::run_case;

pub(super) async fn run<S, F, Fut>(suite: &str, make: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: SessionStore,
{
    run_case(
        suite,
        "session insert, get, find by token",
        make,
        |s| async move {
            insert_get_find(&s).await;
        },
    )
    .await;
    run_case(
        suite,
        "active sessions exclude revoked and expired",
        make,
        |s| async move {
            list_active(&s).await;
        },
    )
    .await;
    run_case(suite, "revoke one session", make, |s| async move {
        revoke_one(&s).await;
    })
    .await;
    run_case(
        suite,
        "revoke every session of a user",
        make,
        |s| async move {
            revoke_all(&s).await;
        },
    )
    .await;
    run_case(
        suite,
        "purge deletes sessions that ended before the instant",
        make,
        |s| async move {
            purge(&s).await;
        },
    )
    .await;
}

async fn purge<S: SessionStore>(store: &S) {
    let alice = new_user();
    let expired = session(alice, 0, 100);
    let revoked = session(alice, 0, 5000);
    let revoked_late = session(alice, 0, 5000);
    let expires_later = session(alice, 0, 300);
    let live = session(alice, 0, 5000);
    for s in [&expired, &revoked, &revoked_late, &expires_later, &live] {
        store.insert_session(s).await.must("insert_session");
    }
    store
        .revoke_session(revoked.id, at(150))
        .await
        .must("revoke");
    store
        .revoke_session(revoked_late.id, at(250))
        .await
        .must("revoke");
    assert_eq!(store.purge_sessions(at(200)).await.must("purge"), 2);
    for gone in [&expired, &revoked] {
        assert_err!(
            store.get_session(gone.id).await,
            StoreError::NotFound { .. },
            "an ended session is purged"
        );
    }
    for kept in [&revoked_late, &expires_later, &live] {
        store
            .get_session(kept.id)
            .await
            .must("a session ended later is kept");
    }
    assert_eq!(store.purge_sessions(at(200)).await.must("purge again"), 0);
    assert_eq!(store.purge_sessions(at(400)).await.must("purge later"), 2);
    assert_eq!(
        ids(&store
            .list_active_sessions(alice, at(400))
            .await
            .must("list")),
        vec![live.id]
    );
}

/// A fresh random bearer token, as the secret generator makes them.
fn token() -> SessionToken {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    SessionToken::from_bytes(bytes)
}

/// An active session of `user` created at `created`, ending at `expires`.
fn session(user: UserId, created: i64, expires: i64) -> Session {
    Session {
        id: SessionId::from_uuid(new_uuid()),
        user_id: user,
        token_hash: token().hash(),
        status: SessionStatus::Active,
        created_at: at(created),
        expires_at: at(expires),
        revoked_at: None,
    }
}

fn new_user() -> UserId {
    UserId::from_uuid(new_uuid())
}

fn ids(sessions: &[Session]) -> Vec<SessionId> {
    sessions.iter().map(|s| s.id).collect()
}

async fn insert_get_find<S: SessionStore>(store: &S) {
    let t = token();
    let mut s = session(new_user(), 0, 3600);
    s.token_hash = t.hash();
    store.insert_session(&s).await.must("insert_session");
    assert_eq!(store.get_session(s.id).await.must("get_session"), s);
    let parsed = SessionToken::parse(&t.expose()).must("token");
    let found = store
        .find_session_by_token(&parsed.hash())
        .await
        .must("find");
    assert_eq!(found, Some(s));
    let other = store
        .find_session_by_token(&token().hash())
        .await
        .must("find");
    assert_eq!(other, None);
    assert_err!(
        store.get_session(SessionId::from_uuid(new_uuid())).await,
        StoreError::NotFound { .. },
        "get_session of an unknown id"
    );
}

async fn list_active<S: SessionStore>(store: &S) {
    let (alice, bob) = (new_user(), new_user());
    let first = session(alice, 0, 1000);
    let second = session(alice, 10, 1000);
    let short = session(alice, 20, 50);
    let revoked = session(alice, 30, 1000);
    let bobs = session(bob, 5, 1000);
    for s in [&first, &second, &short, &revoked, &bobs] {
        store.insert_session(s).await.must("insert_session");
    }
    store
        .revoke_session(revoked.id, at(31))
        .await
        .must("revoke");

    let at_40 = store.list_active_sessions(alice, at(40)).await.must("list");
    assert_eq!(
        ids(&at_40),
        vec![short.id, second.id, first.id],
        "newest first"
    );
    assert_eq!(at_40[0], short);
    let at_50 = store.list_active_sessions(alice, at(50)).await.must("list");
    assert_eq!(ids(&at_50), vec![second.id, first.id], "expired at its end");
    let none = store
        .list_active_sessions(new_user(), at(40))
        .await
        .must("list");
    assert_eq!(none, Vec::<Session>::new());

    let all: HashSet<SessionId> = ids(&store.all_active_sessions(at(50)).await.must("all"))
        .into_iter()
        .collect();
    assert_eq!(all, HashSet::from([first.id, second.id, bobs.id]));
    let later = store.all_active_sessions(at(1000)).await.must("all");
    assert_eq!(later, Vec::<Session>::new(), "all expired");
}

async fn revoke_one<S: SessionStore>(store: &S) {
    let s = session(new_user(), 0, 3600);
    store.insert_session(&s).await.must("insert_session");
    let revoked = store.revoke_session(s.id, at(100)).await.must("revoke");
    let mut expected = s.clone();
    expected.status = SessionStatus::Revoked;
    expected.revoked_at = Some(at(100));
    assert_eq!(revoked, expected);
    assert_eq!(store.get_session(s.id).await.must("get"), expected);
    let found = store
        .find_session_by_token(&s.token_hash)
        .await
        .must("find");
    assert_eq!(found, Some(expected.clone()), "found whatever its status");

    assert_err!(
        store.revoke_session(s.id, at(200)).await,
        StoreError::Conflict { .. },
        "second revoke"
    );
    assert_eq!(
        store.get_session(s.id).await.must("get"),
        expected,
        "unchanged"
    );
    assert_err!(
        store
            .revoke_session(SessionId::from_uuid(new_uuid()), at(1))
            .await,
        StoreError::NotFound { .. },
        "revoke of an unknown session"
    );
}

async fn revoke_all<S: SessionStore>(store: &S) {
    let (alice, bob) = (new_user(), new_user());
    let mine: Vec<Session> = [0, 10, 20].map(|c| session(alice, c, 1000)).to_vec();
    let old = session(alice, 30, 1000);
    let bobs = session(bob, 0, 1000);
    for s in mine.iter().chain([&old, &bobs]) {
        store.insert_session(s).await.must("insert_session");
    }
    store.revoke_session(old.id, at(40)).await.must("revoke");

    let revoked: HashSet<SessionId> = store
        .revoke_user_sessions(alice, at(100))
        .await
        .must("revoke_user_sessions")
        .into_iter()
        .collect();
    assert_eq!(revoked, ids(&mine).into_iter().collect::<HashSet<_>>());
    for s in &mine {
        let read = store.get_session(s.id).await.must("get");
        assert_eq!(
            (read.status, read.revoked_at),
            (SessionStatus::Revoked, Some(at(100)))
        );
    }
    let read = store.get_session(old.id).await.must("get");
    assert_eq!(
        read.revoked_at,
        Some(at(40)),
        "an already revoked session is left alone"
    );
    assert_eq!(store.get_session(bobs.id).await.must("get"), bobs);
    let again = store
        .revoke_user_sessions(alice, at(200))
        .await
        .must("again");
    assert_eq!(again, Vec::<SessionId>::new());
    assert_eq!(
        store
            .list_active_sessions(alice, at(100))
            .await
            .must("list"),
        Vec::<Session>::new()
    );
}
