//! End to end through the real server: once a user is logged in, `GET /api/v1/user/me`
//! with their bearer token reaches neither the session store nor the user store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod lifecycle_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use galaxy_core::domain::auth::{SecretHash, Session};
use galaxy_core::domain::page::{Page, PageRequest};
use galaxy_core::domain::user::{Email, Entitlements, Role, User, UserStatus};
use galaxy_core::domain::{SessionId, Timestamp, UserId};
use galaxy_core::ports::{ProfileChange, SessionStore, StoreError, UserStore};
use galaxy_ports::memory::InMemoryStores;
use galaxy_server::{Adapters, App, Config, Listeners};
use galaxy_smtp::FileMailer;
use lifecycle_support::*;
use tokio::net::TcpListener;

/// Counts every call that reaches the wrapped store.
struct Counted<S> {
    inner: Arc<S>,
    calls: Arc<AtomicUsize>,
}

impl<S> Counted<S> {
    fn hit(&self) -> &S {
        self.calls.fetch_add(1, Ordering::SeqCst);
        &self.inner
    }
}

#[async_trait]
impl<S: SessionStore> SessionStore for Counted<S> {
    async fn insert_session(&self, s: &Session) -> Result<(), StoreError> {
        self.hit().insert_session(s).await
    }
    async fn get_session(&self, id: SessionId) -> Result<Session, StoreError> {
        self.hit().get_session(id).await
    }
    async fn find_session_by_token(&self, h: &SecretHash) -> Result<Option<Session>, StoreError> {
        self.hit().find_session_by_token(h).await
    }
    async fn list_active_sessions(
        &self,
        u: UserId,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError> {
        self.hit().list_active_sessions(u, now).await
    }
    async fn all_active_sessions(&self, now: Timestamp) -> Result<Vec<Session>, StoreError> {
        self.hit().all_active_sessions(now).await
    }
    async fn revoke_session(&self, id: SessionId, at: Timestamp) -> Result<Session, StoreError> {
        self.hit().revoke_session(id, at).await
    }
    async fn revoke_user_sessions(
        &self,
        u: UserId,
        at: Timestamp,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.hit().revoke_user_sessions(u, at).await
    }
    async fn purge_sessions(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.hit().purge_sessions(before).await
    }
}

#[async_trait]
impl<S: UserStore> UserStore for Counted<S> {
    async fn insert_user(&self, user: &User) -> Result<User, StoreError> {
        self.hit().insert_user(user).await
    }
    async fn get_user(&self, id: UserId) -> Result<User, StoreError> {
        self.hit().get_user(id).await
    }
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        self.hit().find_user_by_email(email).await
    }
    async fn list_users(&self, page: &PageRequest) -> Result<Page<User>, StoreError> {
        self.hit().list_users(page).await
    }
    async fn search_users(&self, text: &str, page: &PageRequest) -> Result<Page<User>, StoreError> {
        self.hit().search_users(text, page).await
    }
    async fn update_profile(&self, id: UserId, c: &ProfileChange) -> Result<User, StoreError> {
        self.hit().update_profile(id, c).await
    }
    async fn update_user_status(
        &self,
        id: UserId,
        expected: UserStatus,
        to: UserStatus,
    ) -> Result<User, StoreError> {
        self.hit().update_user_status(id, expected, to).await
    }
    async fn set_roles(&self, id: UserId, roles: &[Role]) -> Result<User, StoreError> {
        self.hit().set_roles(id, roles).await
    }
    async fn set_entitlements(&self, id: UserId, e: Entitlements) -> Result<User, StoreError> {
        self.hit().set_entitlements(id, e).await
    }
    async fn touch_user(
        &self,
        id: UserId,
        at: Timestamp,
        country: Option<String>,
    ) -> Result<(), StoreError> {
        self.hit().touch_user(id, at, country).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticated_read_touches_neither_sessions_nor_users_in_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let stores = InMemoryStores::new();
    let (session_calls, user_calls) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mailer = Arc::new(FileMailer::new(tmp.path().join("mail"), "galaxy@localhost"));
    let adapters = Adapters {
        sessions: Arc::new(Counted {
            inner: stores.users.clone(),
            calls: session_calls.clone(),
        }),
        users: Arc::new(Counted {
            inner: stores.users.clone(),
            calls: user_calls.clone(),
        }),
        ..Adapters::from_stores(stores, mailer)
    };
    // Its own data directory: the app keeps its generated secrets there.
    let data = tempfile::tempdir().unwrap();
    let vars = HashMap::from([
        ("GALAXY_MAIL_INTERVAL".to_owned(), "100ms".to_owned()),
        (
            "GALAXY_DATA_DIR".to_owned(),
            data.path().display().to_string(),
        ),
    ]);
    let app = App::build(Config::from_vars(&vars).unwrap(), adapters)
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = app.shutdown_token();
    let served = tokio::spawn(app.serve(Listeners::new(listener), std::future::pending()));

    let bearer = log_in(addr, &tmp.path().join("mail"), "ann@example.com").await;
    let before = (
        session_calls.load(Ordering::SeqCst),
        user_calls.load(Ordering::SeqCst),
    );
    assert!(
        before.0 > 0 && before.1 > 0,
        "logging in wrote through: {before:?}"
    );
    for _ in 0..5 {
        let me = send(
            addr,
            "GET",
            "/api/v1/user/me",
            &[("authorization", &bearer)],
            "",
        )
        .await
        .unwrap();
        assert_eq!(me.status, 200, "{}", me.body);
    }
    let after = (
        session_calls.load(Ordering::SeqCst),
        user_calls.load(Ordering::SeqCst),
    );
    assert_eq!(
        after, before,
        "(session store calls, user store calls) moved"
    );

    stop.cancel();
    assert!(served.await.unwrap().unwrap().is_clean());
}
